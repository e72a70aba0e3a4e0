"""Staff accounts, login with lock-out, and server-side sessions."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from poshub.core import audit, limits
from poshub.core.audit import Actor, ActorKind
from poshub.core.clock import local_time
from poshub.core.db import utcnow
from poshub.core.errors import N_, Conflict, FieldError, Unauthorized, ValidationFailed
from poshub.core.roles import Role
from poshub.staff import passwords, repository
from poshub.staff.models import StaffRole, StaffSession, StaffUser


@dataclass(frozen=True)
class Principal:
    """Who is making a staff request, and with which roles."""

    user_id: int
    username: str
    display_name: str
    roles: frozenset[str]

    @property
    def actor(self) -> Actor:
        return Actor(ActorKind.STAFF, self.username)

    def has_any(self, roles: Iterable[str]) -> bool:
        return not self.roles.isdisjoint(roles)


@dataclass(frozen=True)
class LoginResult:
    principal: Principal
    session_token: str
    """Goes into the cookie; only its hash is stored."""


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str,
    roles: Iterable[Role],
    actor: Actor,
    enforce_policy: bool = True,
) -> StaffUser:
    if repository.by_username(session, username) is not None:
        raise Conflict(
            N_("A user named {username} already exists."), code="user_exists", username=username
        )
    if enforce_policy:
        problems = passwords.password_problems(password, username)
        if problems:
            raise ValidationFailed(
                [
                    FieldError(
                        "password",
                        "password.policy",
                        p,
                        {"min_length": str(limits.PASSWORD_LENGTH_MIN)},
                    )
                    for p in problems
                ]
            )
    now = utcnow()
    user = StaffUser(
        username=username,
        display_name=display_name,
        password_hash=passwords.hash_password(password),
        password_changed_at=now,
        active=True,
        failed_logins=0,
        created_at=now,
    )
    session.add(user)
    session.flush()
    role_values = sorted({Role(r) for r in roles})
    for role in role_values:
        session.add(StaffRole(user_id=user.id, role=role))
    audit.record(
        session,
        actor,
        "staff.created",
        "staff_user",
        username,
        {"roles": [str(r) for r in role_values]},
    )
    return user


def _local(moment: dt.datetime) -> str:
    return local_time(moment).strftime("%Y-%m-%d %H:%M")


INVALID_LOGIN = N_("Wrong user name or password.")
LOCKED = N_("Too many failed attempts: this account is locked until {until}.")


def login(
    session: Session,
    *,
    username: str,
    password: str,
    client_ip: str,
    now: dt.datetime | None = None,
) -> LoginResult:
    """Check credentials, count failures, lock after the limit, open a session.

    The failure counter and the lock are written even when the login fails, so the
    caller must commit on failure too (the web layer does).
    """
    now = now or utcnow()
    user = repository.by_username(session, username)
    if user is None or not user.active:
        passwords.verify_password(passwords.DUMMY_HASH, password)
        raise Unauthorized(INVALID_LOGIN, code="invalid_login")
    if user.locked_until is not None and user.locked_until > now:
        raise Unauthorized(LOCKED, code="locked", until=_local(user.locked_until))
    if not passwords.verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= limits.LOGIN_FAILURES_BEFORE_LOCKOUT:
            user.locked_until = now + dt.timedelta(minutes=limits.LOCKOUT_MINUTES)
            user.failed_logins = 0
            audit.record(
                session,
                Actor(ActorKind.STAFF, username),
                "staff.locked",
                "staff_user",
                username,
                {"client_ip": client_ip},
            )
            raise Unauthorized(LOCKED, code="locked", until=_local(user.locked_until))
        raise Unauthorized(INVALID_LOGIN, code="invalid_login")
    user.failed_logins = 0
    user.locked_until = None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_hash=_hash_token(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + dt.timedelta(hours=limits.SESSION_ABSOLUTE_HOURS),
            client_ip=client_ip[:64],
        )
    )
    audit.record(
        session,
        Actor(ActorKind.STAFF, username),
        "staff.login",
        "staff_user",
        username,
        {"client_ip": client_ip},
    )
    principal = Principal(
        user.id, user.username, user.display_name, repository.roles_of(session, user.id)
    )
    return LoginResult(principal, token)


SESSION_TOUCH_INTERVAL = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class ResolvedSession:
    principal: Principal
    needs_touch: bool
    """The idle clock should move forward (done at most once a minute, in a write)."""


def resolve_session(
    session: Session, token: str, *, idle_minutes: int, now: dt.datetime | None = None
) -> ResolvedSession | None:
    """The principal behind a session cookie, or None if unknown, revoked or expired.

    Read-only, so that reading pages does not turn every request into a write; the caller
    calls :func:`touch_session` when ``needs_touch`` says the idle clock is due to move.
    """
    now = now or utcnow()
    row = repository.session_by_hash(session, _hash_token(token))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    if row.last_seen_at + dt.timedelta(minutes=idle_minutes) <= now:
        return None
    user = repository.by_id(session, row.user_id)
    if user is None or not user.active:
        return None
    principal = Principal(
        user.id, user.username, user.display_name, repository.roles_of(session, user.id)
    )
    return ResolvedSession(principal, needs_touch=now - row.last_seen_at > SESSION_TOUCH_INTERVAL)


def touch_session(session: Session, token: str, now: dt.datetime | None = None) -> None:
    row = repository.session_by_hash(session, _hash_token(token))
    if row is not None:
        row.last_seen_at = now or utcnow()


def logout(session: Session, token: str, now: dt.datetime | None = None) -> None:
    row = repository.session_by_hash(session, _hash_token(token))
    if row is not None and row.revoked_at is None:
        row.revoked_at = now or utcnow()
