"""Every query of the gateway: the journal writer's prebuilt statements and the reads.

Writes are Core statements built once (the journal writer runs them with executemany in
group commits); reads return plain rows for the event loop to use without ORM state.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    Integer,
    Row,
    String,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from poshub.core.db import table_of
from poshub.core.sequences import IdSequence
from poshub.gateway.models import (
    BatchStatus,
    GatewayTransaction,
    NetworkReversal,
    TerminalBatch,
    TerminalSession,
    TxnKind,
    TxnStatus,
)
from poshub.merchants.models import Merchant
from poshub.risk.models import RiskAlert, RiskCounter, RiskFreeze
from poshub.terminals.models import Terminal, TerminalKey, TmsParameterSet

TXN = table_of(GatewayTransaction)
SESSION = table_of(TerminalSession)
BATCH = table_of(TerminalBatch)
REVERSAL = table_of(NetworkReversal)
COUNTER = table_of(RiskCounter)
ALERT = table_of(RiskAlert)
FREEZE = table_of(RiskFreeze)

TXN_COLUMNS: Final = tuple(c.name for c in TXN.columns)

# --- Statements for the journal writer ---------------------------------------------------
INSERT_TXN: Final = "insert_txn"
FINISH_TXN: Final = "finish_txn"
SET_STATUS: Final = "set_status"
ADD_REFUNDED: Final = "add_refunded"
INSERT_REVERSAL: Final = "insert_reversal"
ACK_REVERSAL: Final = "ack_reversal"
RETRY_REVERSAL: Final = "retry_reversal"
UPSERT_SESSION: Final = "upsert_session"
INSERT_BATCH: Final = "insert_batch"
SETTLE_BATCH: Final = "settle_batch"
UPLOADED_RECORDS: Final = "uploaded_records"
CLOSE_BATCH: Final = "close_batch"
MAC_FAILURE: Final = "mac_failure"
RESERVE_COUNTER: Final = "reserve_counter"
ADD_COUNTER: Final = "add_counter"
RELEASE_COUNTER: Final = "release_counter"
INSERT_ALERT: Final = "insert_alert"
INSERT_HOLD: Final = "insert_hold"

COUNTER_ORDER: Final = (RESERVE_COUNTER, ADD_COUNTER, RELEASE_COUNTER)
COUNTER_STATEMENTS: Final = frozenset(COUNTER_ORDER)
"""Statements on ``risk_counters`` (poshub/risk/counters.py). The writer runs them first in
a group, one row at a time in key order: every process locks counter rows in the same
order (no deadlock on PostgreSQL), and a guarded reservation's row count is its answer."""

FINISH_COLUMNS: Final = (
    "status",
    "response_code",
    "auth_code",
    "local_time",
    "local_date",
    "settlement_date",
    "qr_voucher",
    "wallet",
    "upstream",
    "upstream_us",
    "total_us",
    "responded_at",
    "original_rrn",
)
"""What the final write of a forwarded request sets on its pending row."""

SESSION_COLUMNS: Final = (
    "keys_sealed",
    "key_mode",
    "pik_kcv",
    "mak_kcv",
    "batch_no",
    "signed_on_at",
    "signed_off_at",
    "mac_failures",
    "last_mac_failure_at",
    "updated_at",
)


def _upsert_session(dialect: str) -> Executable:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(SESSION).values({c: bindparam(c) for c in ("tid", *SESSION_COLUMNS)})
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[SESSION.c.tid],
        set_={c: statement.excluded[c] for c in SESSION_COLUMNS},
    )
    return upsert


UPSERT_COLUMNS: Final = tuple(c for c in FINISH_COLUMNS if c != "original_rrn")
"""Columns the final write of a forwarded request sets on its pending row. The original
RRN and everything indexed were known before forwarding and do not change."""


def _upsert_transaction(dialect: str) -> Executable:
    """Insert a journal row, or replace the pending row of the same RRN with its final
    form. One statement for both writes of a forwarded request lets a group commit send
    all its rows to the database in one multi-row statement."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(TXN)
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[TXN.c.rrn],
        # Only what the answer changes, none of it indexed: SQLite then rewrites the row
        # but leaves every index alone.
        set_={c: statement.excluded[c] for c in UPSERT_COLUMNS},
    )
    return upsert


def _counter_upsert(dialect: str, *, guarded: bool) -> Executable:
    """Add to a limit counter, creating it at need. Guarded: only while the total stays
    within ``limit_fen`` — both the insert (a SELECT that yields no row when the amount
    alone passes the limit) and the update (``ON CONFLICT … WHERE``) change nothing
    otherwise, so the statement's row count says whether the reservation was made. On
    PostgreSQL the conflicting row is locked and its latest committed total compared, so
    concurrent gateway processes queue on it and never pass the limit together."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    columns = ("key", "amount_fen", "count", "expires_on")
    if guarded:
        types: dict[str, Any] = {"key": String(96), "amount_fen": BigInteger(),
                                 "count": Integer(), "expires_on": Date()}  # fmt: skip
        source = select(*(bindparam(c, type_=types[c]) for c in columns)).where(
            bindparam("amount_fen", type_=BigInteger())
            <= bindparam("limit_fen", type_=BigInteger())
        )
        statement = module.insert(COUNTER).from_select(list(columns), source)
    else:
        statement = module.insert(COUNTER).values({c: bindparam(c) for c in columns})
    excluded = statement.excluded
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[COUNTER.c.key],
        set_={
            "amount_fen": COUNTER.c.amount_fen + excluded.amount_fen,
            "count": COUNTER.c["count"] + excluded["count"],
        },
        where=(COUNTER.c.amount_fen + excluded.amount_fen <= bindparam("limit_fen"))
        if guarded
        else None,
    )
    # The row count is the answer; SQLAlchemy only keeps an INSERT's when asked.
    return upsert.execution_options(preserve_rowcount=True)


_SQLITE_COUNTER_SET: Final = (
    ' ON CONFLICT ("key") DO UPDATE SET amount_fen = risk_counters.amount_fen'
    " + excluded.amount_fen, count = risk_counters.count + excluded.count"
)
_SQLITE_RESERVE_HEAD: Final = (
    'INSERT INTO risk_counters ("key", amount_fen, count, expires_on)'
    " SELECT v.column1, v.column2, v.column3, v.column4 FROM (VALUES "
)
_SQLITE_RESERVE_TAIL: Final = (
    ") AS v WHERE v.column2 + COALESCE((SELECT c.amount_fen FROM risk_counters AS c"
    ' WHERE c."key" = v.column1), 0) <= v.column5'
)


@functools.cache
def sqlite_reserve_many(rows: int) -> str:
    """SQLite: reserve on ``rows`` distinct counters in one statement (one step of the
    driver, one GIL hand-over, however many rows). Parameters per row: key, amount, count,
    expires_on, limit. A row whose total would pass its limit is left out (the statement
    reads the counters as they were before it, SQLite's rule for an INSERT that selects
    from its own table), so the row count says how many fitted. Only right with one writer
    at a time, which SQLite is; PostgreSQL uses ``RESERVE_COUNTER`` row by row."""
    values = ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    return _SQLITE_RESERVE_HEAD + values + _SQLITE_RESERVE_TAIL + _SQLITE_COUNTER_SET


def _counter_release() -> Executable:
    """Take an amount off a counter (a reservation that did not become a payment, or a
    payment undone), never below zero."""
    delta = bindparam("delta_fen", type_=BigInteger())
    return (
        update(COUNTER)
        .where(COUNTER.c.key == bindparam("b_key"))
        .values(
            amount_fen=case((COUNTER.c.amount_fen > delta, COUNTER.c.amount_fen - delta), else_=0),
            count=case((COUNTER.c["count"] > 0, COUNTER.c["count"] - 1), else_=0),
        )
    )


def _insert_alert(dialect: str) -> Executable:
    """A risk alert; one whose ``dedupe_key`` exists already (another request or process
    raised it for the same subject and period) is skipped, never an error."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement: Executable = module.insert(ALERT).on_conflict_do_nothing()
    return statement


MULTI_ROW: Final = frozenset({"insert_txn"})
"""Statements the SQLite writer may send as one multi-row INSERT for a whole group."""


def writer_statements(dialect: str) -> dict[str, Executable]:
    """The journal writer's statements, keyed by the names above. Parameters are plain
    dicts; ``b_`` names bind the WHERE clause."""
    return {
        INSERT_TXN: _upsert_transaction(dialect),
        FINISH_TXN: update(TXN)
        .where(TXN.c.rrn == bindparam("b_rrn"))
        .values({c: bindparam(c) for c in FINISH_COLUMNS}),
        SET_STATUS: update(TXN)
        .where(TXN.c.rrn == bindparam("b_rrn"))
        .values(status=bindparam("status")),
        ADD_REFUNDED: update(TXN)
        .where(TXN.c.rrn == bindparam("b_rrn"))
        .values(refunded_fen=TXN.c.refunded_fen + bindparam("delta_fen")),
        INSERT_REVERSAL: insert(REVERSAL),
        ACK_REVERSAL: update(REVERSAL)
        .where(REVERSAL.c.id == bindparam("b_id"))
        .values(acknowledged_at=bindparam("acknowledged_at"), attempts=bindparam("attempts")),
        RETRY_REVERSAL: update(REVERSAL)
        .where(REVERSAL.c.id == bindparam("b_id"))
        .values(
            attempts=bindparam("attempts"),
            next_attempt_at=bindparam("next_attempt_at"),
            last_error=bindparam("last_error"),
        ),
        UPSERT_SESSION: _upsert_session(dialect),
        INSERT_BATCH: insert(BATCH),
        SETTLE_BATCH: update(BATCH)
        .where(BATCH.c.id == bindparam("b_id"))
        .values(
            {
                c: bindparam(c)
                for c in (
                    "settlement_rrn",
                    "terminal_debit_fen",
                    "terminal_debit_count",
                    "terminal_credit_fen",
                    "terminal_credit_count",
                    "host_debit_fen",
                    "host_debit_count",
                    "host_credit_fen",
                    "host_credit_count",
                    "result",
                    "settled_at",
                )
            }
        ),
        UPLOADED_RECORDS: update(BATCH)
        .where(BATCH.c.id == bindparam("b_id"))
        .values(uploaded_records=BATCH.c.uploaded_records + bindparam("delta")),
        CLOSE_BATCH: update(BATCH)
        .where(BATCH.c.id == bindparam("b_id"))
        .values(status=BatchStatus.CLOSED.value, closed_at=bindparam("closed_at")),
        MAC_FAILURE: update(SESSION)
        .where(SESSION.c.tid == bindparam("b_tid"))
        .values(
            mac_failures=bindparam("mac_failures"),
            last_mac_failure_at=bindparam("last_mac_failure_at"),
        ),
        RESERVE_COUNTER: _counter_upsert(dialect, guarded=True),
        ADD_COUNTER: _counter_upsert(dialect, guarded=False),
        RELEASE_COUNTER: _counter_release(),
        INSERT_ALERT: _insert_alert(dialect),
        INSERT_HOLD: insert(FREEZE),
    }


STATEMENT_ORDER: Final = (
    RESERVE_COUNTER,
    ADD_COUNTER,
    RELEASE_COUNTER,
    INSERT_TXN,
    INSERT_BATCH,
    INSERT_REVERSAL,
    FINISH_TXN,
    SET_STATUS,
    ADD_REFUNDED,
    ACK_REVERSAL,
    RETRY_REVERSAL,
    SETTLE_BATCH,
    UPLOADED_RECORDS,
    CLOSE_BATCH,
    UPSERT_SESSION,
    MAC_FAILURE,
    INSERT_ALERT,
    INSERT_HOLD,
)
"""Order in which a group commit runs its statements: rows are inserted before anything
that could update them; within one statement, in arrival order."""


# --- Reads ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TerminalRecord:
    terminal_id: int
    tid: str
    terminal_status: str
    mid: str
    merchant_status: str
    merchant_name: str
    params: dict[str, Any]
    key_block: str | None


def terminal_record(session: Session, tid: str) -> TerminalRecord | None:
    """What the gateway needs to know about one terminal (see ``terminal_records``)."""
    return terminal_records(session, [tid]).get(tid)


TERMINAL_REFRESH_CHUNK: Final = 500


def terminal_records(session: Session, tids: Sequence[str]) -> dict[str, TerminalRecord]:
    """``terminal_record`` for many terminals in three queries per chunk of TIDs: how the
    gateway refreshes every terminal it has seen (status, merchant, parameters, key) at
    once instead of one read per terminal and request."""
    records: dict[str, TerminalRecord] = {}
    for start in range(0, len(tids), TERMINAL_REFRESH_CHUNK):
        chunk = list(tids[start : start + TERMINAL_REFRESH_CHUNK])
        rows = session.execute(
            select(
                Terminal.id,
                Terminal.tid,
                Terminal.status,
                Merchant.mid,
                Merchant.status,
                Merchant.business_name,
            )
            .join(Merchant, Merchant.id == Terminal.merchant_id)
            .where(Terminal.tid.in_(chunk))
        ).all()
        ids = [row[0] for row in rows]
        latest = (
            select(TmsParameterSet.terminal_id, func.max(TmsParameterSet.version).label("version"))
            .where(TmsParameterSet.terminal_id.in_(ids))
            .group_by(TmsParameterSet.terminal_id)
            .subquery()
        )
        params: dict[int, dict[str, Any]] = dict(
            session.execute(
                select(TmsParameterSet.terminal_id, TmsParameterSet.params).join(
                    latest,
                    and_(
                        TmsParameterSet.terminal_id == latest.c.terminal_id,
                        TmsParameterSet.version == latest.c.version,
                    ),
                )
            ).all()
        )
        keys = dict(
            session.execute(
                select(TerminalKey.terminal_id, TerminalKey.key_block).where(
                    TerminalKey.terminal_id.in_(ids), TerminalKey.retired_at.is_(None)
                )
            ).all()
        )
        for terminal_id, tid, status, mid, merchant_status, business_name in rows:
            terminal_params = dict(params.get(terminal_id) or {})
            records[tid] = TerminalRecord(
                terminal_id=terminal_id,
                tid=tid,
                terminal_status=status,
                mid=mid,
                merchant_status=merchant_status,
                merchant_name=terminal_params.get("receipt_name_zh") or business_name,
                params=terminal_params,
                key_block=keys.get(terminal_id),
            )
    return records


def terminal_session(session: Session, tid: str) -> Row[Any] | None:
    return session.execute(select(SESSION).where(SESSION.c.tid == tid)).first()


def open_batch(session: Session, tid: str) -> Row[Any] | None:
    return session.execute(
        select(BATCH)
        .where(BATCH.c.tid == tid, BATCH.c.status == BatchStatus.OPEN.value)
        .order_by(BATCH.c.id.desc())
        .limit(1)
    ).first()


def transaction(session: Session, rrn: str) -> Row[Any] | None:
    return session.execute(select(TXN).where(TXN.c.rrn == rrn)).first()


def transaction_by_dedupe(session: Session, dedupe_key: str) -> Row[Any] | None:
    return session.execute(select(TXN).where(TXN.c.dedupe_key == dedupe_key)).first()


REVERSIBLE_KINDS: Final = (
    TxnKind.SALE.value,
    TxnKind.QR_SALE.value,
    TxnKind.VOID.value,
    TxnKind.PREAUTH.value,
    TxnKind.PREAUTH_CANCEL.value,
    TxnKind.COMPLETION.value,
    TxnKind.COMPLETION_VOID.value,
)


def original_for_reversal(session: Session, tid: str, batch_no: str, stan: str) -> Row[Any] | None:
    """The reversible request a 0400 names by (TID, 60.2, 11), newest first."""
    return session.execute(
        select(TXN)
        .where(
            TXN.c.tid == tid,
            TXN.c.batch_no == batch_no,
            TXN.c.stan == stan,
            TXN.c.kind.in_(REVERSIBLE_KINDS),
        )
        .order_by(TXN.c.received_at.desc())
        .limit(1)
    ).first()


def original_in_batch(
    session: Session, tid: str, batch_no: str, stan: str, kinds: Sequence[str]
) -> Row[Any] | None:
    return session.execute(
        select(TXN)
        .where(
            TXN.c.tid == tid,
            TXN.c.batch_no == batch_no,
            TXN.c.stan == stan,
            TXN.c.kind.in_(kinds),
            TXN.c.response_code == "00",
        )
        .order_by(TXN.c.received_at.desc())
        .limit(1)
    ).first()


def preauth_by_auth_code(
    session: Session, mid: str, auth_code: str, pan_token: str | None
) -> Row[Any] | None:
    """The approved pre-authorization a cancel or completion names by its approval code
    (38) and card (spec §11.8)."""
    conditions = [
        TXN.c.mid == mid,
        TXN.c.kind == TxnKind.PREAUTH.value,
        TXN.c.auth_code == auth_code,
        TXN.c.response_code == "00",
    ]
    if pan_token is not None:
        conditions.append(TXN.c.pan_token == pan_token)
    return session.execute(
        select(TXN).where(*conditions).order_by(TXN.c.received_at.desc()).limit(1)
    ).first()


DEBIT_KINDS: Final = (
    TxnKind.SALE.value,
    TxnKind.QR_SALE.value,
    TxnKind.COMPLETION.value,
    TxnKind.COMPLETION_ADVICE.value,
)
CREDIT_KINDS: Final = (TxnKind.REFUND.value,)


def batch_totals(session: Session, tid: str, batch_no: str) -> tuple[int, int, int, int]:
    """Host totals of a batch by the spec's counting rules (§5.6): debits are approved
    sales, QR sales and completions not voided or reversed; credits approved refunds."""
    rows = session.execute(
        select(TXN.c.kind, func.count(), func.coalesce(func.sum(TXN.c.amount_fen), 0))
        .where(
            TXN.c.tid == tid,
            TXN.c.batch_no == batch_no,
            TXN.c.status == TxnStatus.APPROVED.value,
            TXN.c.kind.in_(DEBIT_KINDS + CREDIT_KINDS),
        )
        .group_by(TXN.c.kind)
    ).all()
    debit_fen = debit_count = credit_fen = credit_count = 0
    for kind, count, total in rows:
        if kind in CREDIT_KINDS:
            credit_fen += int(total)
            credit_count += int(count)
        else:
            debit_fen += int(total)
            debit_count += int(count)
    return debit_fen, debit_count, credit_fen, credit_count


def pending_transactions(
    session: Session, limit: int, kinds: Sequence[str] = REVERSIBLE_KINDS
) -> Sequence[Row[Any]]:
    """Rows still ``pending`` of the given kinds (by default the reversible ones: what
    recovery reverses; advices left pending are resent by their terminals)."""
    return session.execute(
        select(TXN)
        .where(TXN.c.status == TxnStatus.PENDING.value, TXN.c.kind.in_(kinds))
        .limit(limit)
    ).all()


def due_reversals(session: Session, now: dt.datetime, limit: int) -> Sequence[Row[Any]]:
    return session.execute(
        select(REVERSAL)
        .where(REVERSAL.c.acknowledged_at.is_(None), REVERSAL.c.next_attempt_at <= now)
        .order_by(REVERSAL.c.next_attempt_at)
        .limit(limit)
    ).all()


def unacknowledged_reversal_count(session: Session) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(REVERSAL).where(REVERSAL.c.acknowledged_at.is_(None))
        ).scalar_one()
    )


def reserve_block(connection: Connection | Session, name: str, size: int) -> int:
    """Reserve ``size`` consecutive values of the counter ``name``; returns the first."""
    table = table_of(IdSequence)
    current = connection.execute(
        select(table.c.next_value).where(table.c.name == name).with_for_update()
    ).scalar_one_or_none()
    if current is None:
        connection.execute(insert(table).values(name=name, next_value=1 + size))
        return 1
    connection.execute(update(table).where(table.c.name == name).values(next_value=current + size))
    return int(current)


# --- Staff-facing search -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SearchFilter:
    mid: str | None = None
    tid: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    rrn: str | None = None
    last4: str | None = None
    response_code: str | None = None
    kind: str | None = None


def search(
    session: Session, criteria: SearchFilter, *, limit: int, offset: int = 0
) -> tuple[Sequence[GatewayTransaction], int]:
    conditions = []
    if criteria.mid:
        conditions.append(GatewayTransaction.mid == criteria.mid)
    if criteria.tid:
        conditions.append(GatewayTransaction.tid == criteria.tid)
    if criteria.date_from:
        conditions.append(GatewayTransaction.host_date >= criteria.date_from)
    if criteria.date_to:
        conditions.append(GatewayTransaction.host_date <= criteria.date_to)
    if criteria.rrn:
        conditions.append(
            or_(
                GatewayTransaction.rrn == criteria.rrn,
                GatewayTransaction.original_rrn == criteria.rrn,
            )
        )
    if criteria.last4:
        conditions.append(GatewayTransaction.pan_last4 == criteria.last4)
    if criteria.response_code:
        conditions.append(GatewayTransaction.response_code == criteria.response_code)
    if criteria.kind:
        conditions.append(GatewayTransaction.kind == criteria.kind)
    where = and_(*conditions) if conditions else None
    query = select(GatewayTransaction)
    count_query = select(func.count()).select_from(GatewayTransaction)
    if where is not None:
        query = query.where(where)
        count_query = count_query.where(where)
    total = int(session.execute(count_query).scalar_one())
    rows = (
        session.execute(
            query.order_by(GatewayTransaction.received_at.desc(), GatewayTransaction.rrn.desc())
            .limit(limit)
            .offset(offset)
        )
        .scalars()
        .all()
    )
    return rows, total


def transaction_model(session: Session, rrn: str) -> GatewayTransaction | None:
    return session.get(GatewayTransaction, rrn)


def related(session: Session, rrn: str, *, limit: int) -> Sequence[GatewayTransaction]:
    """Transactions that act on ``rrn`` (voids, refunds, reversals, completions)."""
    return (
        session.execute(
            select(GatewayTransaction)
            .where(GatewayTransaction.original_rrn == rrn)
            .order_by(GatewayTransaction.received_at)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def batches_of(session: Session, tid: str, *, limit: int) -> Sequence[TerminalBatch]:
    return (
        session.execute(
            select(TerminalBatch)
            .where(TerminalBatch.tid == tid)
            .order_by(TerminalBatch.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


def session_of(session: Session, tid: str) -> TerminalSession | None:
    return session.get(TerminalSession, tid)
