"""The notification outbox."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from poshub.core.db import Base


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    """Gave up after the maximum number of attempts."""


class Notification(Base):
    """Written in the same transaction as the change it reports; delivered afterwards by
    :func:`poshub.notify.service.dispatch_pending`, so a rolled-back change never
    notifies anyone and a committed one always does."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    """``sms`` today; ``email`` or an app push later."""
    recipient: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]]
    locale: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
