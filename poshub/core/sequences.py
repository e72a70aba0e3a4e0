"""Named gap-free counters kept in the database (MID sequences and the like)."""

from __future__ import annotations

from sqlalchemy import BigInteger, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from poshub.core.db import Base


class IdSequence(Base):
    """Next value of a named counter (e.g. the MID sequence for one prefix)."""

    __tablename__ = "id_sequences"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_value: Mapped[int] = mapped_column(BigInteger)


def take_next(session: Session, name: str, *, maximum: int) -> int:
    """Take the next value of ``name`` inside the caller's transaction.

    The row is locked (``FOR UPDATE`` on PostgreSQL; SQLite writers are already
    serialised), so two transactions never receive the same value.
    """
    row = session.execute(
        select(IdSequence).where(IdSequence.name == name).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        row = IdSequence(name=name, next_value=1)
        session.add(row)
    value = row.next_value
    if value > maximum:
        raise OverflowError(f"sequence {name} is exhausted (maximum {maximum})")
    row.next_value = value + 1
    return value
