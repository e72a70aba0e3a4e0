"""Enqueue notifications in the caller's transaction; deliver them after commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from poshub.core import limits
from poshub.core.db import utcnow
from poshub.core.i18n import Translator
from poshub.notify import repository
from poshub.notify.adapters import DeliveryFailed, Notifier
from poshub.notify.models import Notification, NotificationStatus
from poshub.notify.templates import TEMPLATES


def enqueue(
    session: Session,
    *,
    subject_type: str,
    subject_id: str,
    recipient: str,
    template: str,
    params: dict[str, Any],
    locale: str,
    channel: str = "sms",
) -> None:
    if template not in TEMPLATES:
        raise ValueError(f"unknown notification template {template!r}")
    # A plain INSERT: notifications are queued on every state change (hot path).
    session.execute(
        insert(Notification).values(
            subject_type=subject_type,
            subject_id=subject_id,
            channel=channel,
            recipient=recipient,
            template=template,
            params=params,
            locale=locale,
            status=str(NotificationStatus.PENDING),
            attempts=0,
            created_at=utcnow(),
        )
    )


def render(notification: Notification) -> str:
    """The message in the recipient's language. Parameter values that are message ids
    (labels, reasons) are translated too; a list is translated item by item and joined."""
    t = Translator(notification.locale)
    separator = "、" if t.locale == "zh_CN" else ", "
    params: dict[str, object] = {}
    for key, value in notification.params.items():
        if isinstance(value, list):
            params[key] = separator.join(t(str(item)) for item in value)
        else:
            params[key] = t(str(value))
    return t(TEMPLATES[notification.template], params)


def dispatch_pending(
    session: Session, notifier: Notifier, *, batch_max: int = limits.NOTIFICATION_DISPATCH_BATCH_MAX
) -> int:
    """Deliver up to ``batch_max`` pending notifications; return how many were sent."""
    sent = 0
    for notification in repository.pending(session, batch_max):
        notification.attempts += 1
        try:
            notifier.send(notification.channel, notification.recipient, render(notification))
        except DeliveryFailed as exc:
            notification.last_error = str(exc)[:300]
            if notification.attempts >= limits.NOTIFICATION_ATTEMPTS_MAX:
                notification.status = NotificationStatus.FAILED
            continue
        notification.status = NotificationStatus.SENT
        notification.sent_at = utcnow()
        sent += 1
    return sent
