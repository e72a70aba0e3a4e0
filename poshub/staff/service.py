"""Staff accounts, throttled login, and server-side sessions."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from poshub.core import audit, limits
from poshub.core.audit import Actor, ActorKind
from poshub.core.db import utcnow
from poshub.core.errors import N_, Conflict, FieldError, Unauthorized, ValidationFailed
from poshub.core.roles import Role
from poshub.staff import passwords, repository
from poshub.staff.models import LoginThrottle, StaffRole, StaffSession, StaffUser


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


INVALID_LOGIN = N_(
    "Wrong user name or password. After {failures} failures from one address, logins from"
    " there to that account pause for {minutes} minutes."
)
"""The one answer to every refused login: unknown user, wrong password, or throttled."""


def _throttle_key(kind: str, client_ip: str, username: str = "") -> str:
    return hashlib.sha256(f"{kind}\n{client_ip}\n{username.casefold()}".encode()).hexdigest()


def _throttle_limits() -> dict[str, int]:
    return {
        "pair": limits.LOGIN_FAILURES_PER_SOURCE_ACCOUNT_MAX,
        "source": limits.LOGIN_FAILURES_PER_SOURCE_MAX,
    }


def _refused() -> Unauthorized:
    return Unauthorized(
        INVALID_LOGIN,
        code="invalid_login",
        failures=str(limits.LOGIN_FAILURES_PER_SOURCE_ACCOUNT_MAX),
        minutes=str(limits.LOGIN_THROTTLE_MINUTES),
    )


def _count_failure(
    session: Session,
    rows: dict[str, LoginThrottle],
    keys: dict[str, str],
    *,
    username: str,
    client_ip: str,
    now: dt.datetime,
) -> None:
    """One more failure on the pair's and the source's counters; a counter at its limit
    blocks for ``LOGIN_THROTTLE_MINUTES`` (a block is never extended by failures in it)."""
    window = dt.timedelta(minutes=limits.LOGIN_THROTTLE_WINDOW_MINUTES)
    for kind, key in keys.items():
        row = rows[key]
        if row.blocked_until is not None and row.blocked_until > now:
            continue
        if row.window_started_at + window <= now or row.blocked_until is not None:
            row.failures, row.window_started_at, row.blocked_until = 0, now, None
        row.failures += 1
        if row.failures >= _throttle_limits()[kind]:
            row.blocked_until = now + dt.timedelta(minutes=limits.LOGIN_THROTTLE_MINUTES)
            audit.record(
                session,
                Actor(ActorKind.SYSTEM, "login-throttle"),
                "staff.login_throttled",
                "staff_user" if kind == "pair" else "client_address",
                username[:64] if kind == "pair" else client_ip[:64],
                {"client_ip": client_ip, "scope": kind},
            )


def login(
    session: Session,
    *,
    username: str,
    password: str,
    client_ip: str,
    now: dt.datetime | None = None,
) -> LoginResult:
    """Check credentials and open a session, throttled per (address, account) and per
    address, never per account alone.

    Every attempt does the same work whatever the outcome: one argon2 verification
    (against a dummy hash for an unknown or inactive user, and still for a throttled
    one), the throttle rows read, and on refusal both counters written; every refusal
    is the same :data:`INVALID_LOGIN` 401. So neither the answer nor its time tells a
    guesser whether the user exists or the address is paused. The caller commits on
    refusal too (the web layer does), to keep the counts.
    """
    now = now or utcnow()
    keys = {
        "pair": _throttle_key("pair", client_ip, username),
        "source": _throttle_key("source", client_ip),
    }
    rows = repository.throttles(session, list(keys.values()), now)
    throttled = any(
        row.blocked_until is not None and row.blocked_until > now for row in rows.values()
    )
    user = repository.by_username(session, username)
    known = user is not None and user.active
    checked_hash = user.password_hash if user is not None and known else passwords.DUMMY_HASH
    right = passwords.verify_password(checked_hash, password)
    if user is None or not known or not right or throttled:
        _count_failure(session, rows, keys, username=username, client_ip=client_ip, now=now)
        raise _refused()
    repository.forget_throttle(session, keys["pair"])
    source = rows[keys["source"]]
    if source.failures == 0 and source.blocked_until is None:
        repository.forget_throttle(session, keys["source"])  # keep only rows that count
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
