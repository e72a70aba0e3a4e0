from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from poshub.core.db import table_of
from poshub.notify.models import Notification, NotificationStatus

_notifications = table_of(Notification)
_RECORD_ATTEMPT = update(_notifications).where(_notifications.c.id == bindparam("_id"))


def pending(session: Session, limit: int) -> Sequence[Notification]:
    return (
        session.execute(
            select(Notification)
            .where(Notification.status == NotificationStatus.PENDING)
            .order_by(Notification.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def record_attempts(
    session: Session, attempts: Sequence[tuple[Notification, dict[str, Any]]]
) -> None:
    """Write each notification's new values with one executemany UPDATE for the batch (the
    rows must all set the same columns), applied to the objects as committed state."""
    if not attempts:
        return
    session.execute(
        _RECORD_ATTEMPT, [{"_id": notification.id, **values} for notification, values in attempts]
    )
    for notification, values in attempts:
        for key, value in values.items():
            set_committed_value(notification, key, value)
