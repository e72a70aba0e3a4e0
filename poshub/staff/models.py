"""Staff accounts, their roles and their sessions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from poshub.core.db import Base


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    """argon2id hash; the password itself is never stored."""
    password_changed_at: Mapped[dt.datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime]


class StaffRole(Base):
    __tablename__ = "staff_roles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)


class StaffSession(Base):
    """A server-side login session. The cookie carries a random token; only its SHA-256
    is stored, so a database reader cannot hijack a session."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    """Absolute end of the session, whatever the activity."""
    revoked_at: Mapped[dt.datetime | None]
    client_ip: Mapped[str] = mapped_column(String(64))


class LoginThrottle(Base):
    """Failed logins counted for one source address and one account together ("pair"),
    or for one source address over every account ("source"). Nothing is counted against
    an account alone: a guesser elsewhere cannot lock its owner out."""

    __tablename__ = "staff_login_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the kind, the address and the user name: neither is kept in clear."""
    failures: Mapped[int]
    """Failures in the window that started at ``window_started_at``."""
    window_started_at: Mapped[dt.datetime]
    blocked_until: Mapped[dt.datetime | None]
