"""Enqueue notifications in the caller's transaction; deliver them after commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from poshub.core import limits
from poshub.core.db import table_of, utcnow
from poshub.core.i18n import Translator
from poshub.notify import repository
from poshub.notify.adapters import DeliveryFailed, Notifier
from poshub.notify.models import Notification, NotificationStatus
from poshub.notify.templates import TEMPLATES

# Notifications are queued on every state change (a hot path): one INSERT built once,
# against the table, so that neither the statement nor an ORM object is made per call.
_INSERT = insert(table_of(Notification))


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
    session.execute(
        _INSERT,
        {
            "subject_type": subject_type,
            "subject_id": subject_id,
            "channel": channel,
            "recipient": recipient,
            "template": template,
            "params": params,
            "locale": locale,
            "status": str(NotificationStatus.PENDING),
            "attempts": 0,
            "created_at": utcnow(),
        },
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
    attempts: list[tuple[Notification, dict[str, Any]]] = []
    sent = 0
    for notification in repository.pending(session, batch_max):
        count = notification.attempts + 1
        status, sent_at, error = notification.status, notification.sent_at, notification.last_error
        try:
            notifier.send(notification.channel, notification.recipient, render(notification))
        except DeliveryFailed as exc:
            error = str(exc)[:300]
            if count >= limits.NOTIFICATION_ATTEMPTS_MAX:
                status = str(NotificationStatus.FAILED)
        else:
            status, sent_at = str(NotificationStatus.SENT), utcnow()
            sent += 1
        values = {"attempts": count, "status": status, "sent_at": sent_at, "last_error": error}
        attempts.append((notification, values))
    # One UPDATE for the batch rather than an ORM flush per notification: the worker
    # dispatches two per application, inside its write transaction.
    repository.record_attempts(session, attempts)
    return sent
