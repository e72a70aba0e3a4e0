from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from poshub.staff.models import StaffRole, StaffSession, StaffUser


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
