from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from poshub.staff.models import LoginThrottle, StaffRole, StaffSession, StaffUser


def by_username(session: Session, username: str) -> StaffUser | None:
    return session.execute(
        select(StaffUser).where(StaffUser.username == username)
    ).scalar_one_or_none()


def by_id(session: Session, user_id: int) -> StaffUser | None:
    return session.get(StaffUser, user_id)


def roles_of(session: Session, user_id: int) -> frozenset[str]:
    rows = session.execute(select(StaffRole.role).where(StaffRole.user_id == user_id)).scalars()
    return frozenset(rows)


def session_by_hash(session: Session, token_hash: str) -> StaffSession | None:
    return session.get(StaffSession, token_hash)


def names_by_id(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(StaffUser.id, StaffUser.username).where(StaffUser.id.in_(ids)))
    return {row.id: row.username for row in rows}


def throttles(session: Session, keys: list[str], now: dt.datetime) -> dict[str, LoginThrottle]:
    """The throttle rows of these keys, created empty where missing (an insert that two
    concurrent logins may both attempt, so conflicts are ignored) and locked for the
    update that follows (PostgreSQL; SQLite serialises writers anyway)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(LoginThrottle)
        .values([{"key": k, "failures": 0, "window_started_at": now} for k in keys])
        .on_conflict_do_nothing(index_elements=["key"])
    )
    rows = session.execute(
        select(LoginThrottle).where(LoginThrottle.key.in_(keys)).with_for_update()
    ).scalars()
    return {row.key: row for row in rows}


def forget_throttle(session: Session, key: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
