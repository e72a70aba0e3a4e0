"""Every query of the ledger. Aggregates run in SQL: nothing here loads the lines of a
day (or of the ledger) into Python; problem lists are capped (poshub/core/limits.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from poshub.core.clock import SHANGHAI
from poshub.core.limits import LEDGER_BALANCES_ACCOUNTS_MAX, LEDGER_VERIFY_PROBLEMS_MAX
from poshub.gateway.models import GatewayTransaction, TerminalBatch, TxnStatus
from poshub.settlement.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerLine,
    ReconciliationExceptionRow,
)

T = TypeVar("T")


def account_ids(session: Session, codes: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = session.execute(
        select(LedgerAccount.code, LedgerAccount.id).where(LedgerAccount.code.in_(wanted))
    )
    return {row[0]: row[1] for row in rows}


def insert_account(
    session: Session, *, code: str, kind: str, subject: str, normal_side: str, now: dt.datetime
) -> None:
    session.execute(
        insert(LedgerAccount).values(
            code=code, kind=kind, subject=subject, normal_side=normal_side, created_at=now
        )
    )


def entry_by_event(session: Session, source_event: str) -> LedgerEntry | None:
    return session.scalars(
        select(LedgerEntry).where(LedgerEntry.source_event == source_event)
    ).one_or_none()


def entry_lines(session: Session, entry_id: int) -> list[tuple[str, int]]:
    """(account code, signed amount) of an entry's lines, sorted."""
    rows = session.execute(
        select(LedgerAccount.code, LedgerLine.amount_fen)
        .join(LedgerAccount, LedgerAccount.id == LedgerLine.account_id)
        .where(LedgerLine.entry_id == entry_id)
    )
    return sorted((code, amount) for code, amount in rows)


def insert_entry(
    session: Session,
    *,
    source_event: str,
    business_date: dt.date,
    description: str,
    now: dt.datetime,
    lines: list[tuple[int, int]],
) -> int:
    """The entry and its (account id, amount) lines; returns the entry's id."""
    entry_id = session.execute(
        insert(LedgerEntry)
        .values(
            source_event=source_event,
            business_date=business_date,
            posted_at=now,
            description=description,
        )
        .returning(LedgerEntry.id)
    ).scalar_one()
    session.execute(
        insert(LedgerLine),
        [
            {"entry_id": entry_id, "account_id": account_id, "amount_fen": amount}
            for account_id, amount in lines
        ],
    )
    return entry_id


def account_balances(session: Session, as_of: dt.date | None) -> list[tuple[str, str, str, int]]:
    """(code, kind, normal side, signed balance) of each account with lines, by code,
    counting entries of business dates up to ``as_of`` (all when None); at most
    LEDGER_BALANCES_ACCOUNTS_MAX + 1 rows (the extra one tells the caller it is cut)."""
    total = func.sum(LedgerLine.amount_fen)
    statement = (
        select(LedgerAccount.code, LedgerAccount.kind, LedgerAccount.normal_side, total)
        .join(LedgerLine, LedgerLine.account_id == LedgerAccount.id)
        .join(LedgerEntry, LedgerEntry.id == LedgerLine.entry_id)
        .group_by(LedgerAccount.code, LedgerAccount.kind, LedgerAccount.normal_side)
        .order_by(LedgerAccount.code)
        .limit(LEDGER_BALANCES_ACCOUNTS_MAX + 1)
    )
    if as_of is not None:
        statement = statement.where(LedgerEntry.business_date <= as_of)
    return [
        (code, kind, side, int(amount)) for code, kind, side, amount in session.execute(statement)
    ]


def side_totals(session: Session, as_of: dt.date | None) -> tuple[int, int]:
    """(sum of debit balances, sum of credit balances as a positive number) over every
    account, computed in SQL."""
    per_account = select(func.sum(LedgerLine.amount_fen).label("balance")).join(
        LedgerEntry, LedgerEntry.id == LedgerLine.entry_id
    )
    if as_of is not None:
        per_account = per_account.where(LedgerEntry.business_date <= as_of)
    balances = per_account.group_by(LedgerLine.account_id).subquery()
    debit = func.coalesce(func.sum(balances.c.balance).filter(balances.c.balance > 0), 0)
    credit = func.coalesce(func.sum(balances.c.balance).filter(balances.c.balance < 0), 0)
    row = session.execute(select(debit, credit)).one()
    return int(row[0]), -int(row[1])


def kind_totals(session: Session, as_of: dt.date | None = None) -> dict[str, int]:
    """Signed total of each account kind (lines with an unknown account are left out)."""
    statement = (
        select(LedgerAccount.kind, func.sum(LedgerLine.amount_fen))
        .join(LedgerLine, LedgerLine.account_id == LedgerAccount.id)
        .join(LedgerEntry, LedgerEntry.id == LedgerLine.entry_id)
        .group_by(LedgerAccount.kind)
        .order_by(LedgerAccount.kind)
    )
    if as_of is not None:
        statement = statement.where(LedgerEntry.business_date <= as_of)
    return {kind: int(amount) for kind, amount in session.execute(statement)}


def counts(session: Session) -> tuple[int, int, int, int]:
    """(entries, lines, accounts, sum of every line)."""
    entries = session.scalar(select(func.count()).select_from(LedgerEntry)) or 0
    lines, total = session.execute(
        select(func.count(), func.coalesce(func.sum(LedgerLine.amount_fen), 0))
    ).one()
    accounts = session.scalar(select(func.count()).select_from(LedgerAccount)) or 0
    return int(entries), int(lines), int(accounts), int(total)


def unbalanced_entries(session: Session) -> tuple[int, list[tuple[int, str, int]]]:
    """(how many entries' lines do not sum to zero, the first few as (id, event, sum))."""
    sums = (
        select(LedgerLine.entry_id, func.sum(LedgerLine.amount_fen).label("total"))
        .group_by(LedgerLine.entry_id)
        .having(func.sum(LedgerLine.amount_fen) != 0)
        .subquery()
    )
    count = session.scalar(select(func.count()).select_from(sums)) or 0
    rows = session.execute(
        select(sums.c.entry_id, func.coalesce(LedgerEntry.source_event, ""), sums.c.total)
        .outerjoin(LedgerEntry, LedgerEntry.id == sums.c.entry_id)
        .order_by(sums.c.entry_id)
        .limit(LEDGER_VERIFY_PROBLEMS_MAX)
    )
    return int(count), [(entry_id, event, int(total)) for entry_id, event, total in rows]


def _count_and_first(
    session: Session,
    table: type[LedgerEntry] | type[LedgerLine],
    shown: InstrumentedAttribute[T],
    condition: ColumnElement[bool],
) -> tuple[int, list[T]]:
    """(how many rows of ``table`` meet ``condition``, ``shown`` of the first few by id)."""
    count = session.scalar(select(func.count()).select_from(table).where(condition)) or 0
    first = session.scalars(
        select(shown).where(condition).order_by(table.id).limit(LEDGER_VERIFY_PROBLEMS_MAX)
    ).all()
    return int(count), list(first)


def empty_entries(session: Session) -> tuple[int, list[str]]:
    """(how many entries have no line, the first few source events)."""
    has_lines = select(LedgerLine.id).where(LedgerLine.entry_id == LedgerEntry.id).exists()
    return _count_and_first(session, LedgerEntry, LedgerEntry.source_event, ~has_lines)


def orphan_lines(session: Session) -> tuple[int, list[int]]:
    """(how many lines reference an account or entry that does not exist, the first ids)."""
    account = select(LedgerAccount.id).where(LedgerAccount.id == LedgerLine.account_id).exists()
    entry = select(LedgerEntry.id).where(LedgerEntry.id == LedgerLine.entry_id).exists()
    return _count_and_first(session, LedgerLine, LedgerLine.id, ~account | ~entry)


# --- reconciliation ---

_CLEARED_KINDS = (
    "sale",
    "qr_sale",
    "completion",
    "completion_advice",
    "void",
    "completion_void",
    "refund",
)
"""Journal kinds that move money (what the network's clearing file lists)."""
_CLEARED_STATUSES = (TxnStatus.APPROVED.value, TxnStatus.VOIDED.value)
"""Approved and not reversed; a voided sale stays, as on the network's side (its void is
a credit line of its own)."""
_JOURNAL_CHUNK_ROWS = 1_000


def clearing_items(
    session: Session, business_date: dt.date
) -> Iterator[tuple[str, str, int, str | None, str | None]]:
    """(rrn, kind, unsigned amount, mid, tid) of the day's cleared journal rows, streamed."""
    statement = (
        select(
            GatewayTransaction.rrn,
            GatewayTransaction.kind,
            GatewayTransaction.amount_fen,
            GatewayTransaction.mid,
            GatewayTransaction.tid,
        )
        .where(
            GatewayTransaction.host_date == business_date,
            GatewayTransaction.kind.in_(_CLEARED_KINDS),
            GatewayTransaction.status.in_(_CLEARED_STATUSES),
            GatewayTransaction.amount_fen.is_not(None),
        )
        .order_by(GatewayTransaction.rrn)
        .execution_options(yield_per=_JOURNAL_CHUNK_ROWS)
    )
    for rrn, kind, amount, mid, tid in session.execute(statement):
        if amount is not None:  # excluded by the query; narrows the type
            yield rrn, kind, int(amount), mid, tid


def settled_batches(session: Session, business_date: dt.date) -> list[TerminalBatch]:
    """Terminal batches settled (0500 answered) on the day, Beijing time."""
    start = dt.datetime.combine(business_date, dt.time(0), SHANGHAI).astimezone(dt.UTC)
    end = start + dt.timedelta(days=1)
    return list(
        session.scalars(
            select(TerminalBatch)
            .where(TerminalBatch.settled_at >= start, TerminalBatch.settled_at < end)
            .order_by(TerminalBatch.id)
        )
    )


def insert_exceptions(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert the exceptions not yet queued (the unique (business date, kind, rrn) decides);
    returns how many were new."""
    if not rows:
        return 0
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    added = 0
    for row in rows:
        statement = (
            dialect.insert(ReconciliationExceptionRow)
            .values(dict(row))
            .on_conflict_do_nothing(index_elements=["business_date", "kind", "rrn"])
            .returning(ReconciliationExceptionRow.id)
        )
        if session.execute(statement).scalar_one_or_none() is not None:
            added += 1
    return added


def exception_for_update(session: Session, exception_id: int) -> ReconciliationExceptionRow | None:
    return session.scalars(
        select(ReconciliationExceptionRow)
        .where(ReconciliationExceptionRow.id == exception_id)
        .with_for_update()
    ).one_or_none()


def exceptions_of_day(session: Session, business_date: dt.date) -> list[ReconciliationExceptionRow]:
    return list(
        session.scalars(
            select(ReconciliationExceptionRow)
            .where(ReconciliationExceptionRow.business_date == business_date)
            .order_by(ReconciliationExceptionRow.id)
        )
    )
