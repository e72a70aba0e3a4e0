from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from poshub.notify.models import Notification, NotificationStatus


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
