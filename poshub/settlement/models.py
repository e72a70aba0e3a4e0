"""What the double-entry ledger keeps: accounts, journal entries and their lines; and the
reconciliation exceptions queue (poshub/settlement/reconcile.py).

Amounts are signed integer fen (debit positive, credit negative). Entries and lines are
append-only: triggers (migration 0016) refuse UPDATE and DELETE on both, so a correction
is always a new adjusting entry under its own source event, never a rewrite.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from poshub.core.db import Base, UTCDateTime
from poshub.gateway.models import BigId


class LedgerAccount(Base):
    """One account: ``kind`` (poshub.settlement.ledger.AccountKind) and, for per-merchant
    kinds, ``subject`` (the MID); ``code`` is ``kind`` or ``kind:subject``."""

    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(24), index=True)
    subject: Mapped[str] = mapped_column(String(32), default="")
    normal_side: Mapped[str] = mapped_column(String(6))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LedgerEntry(Base):
    """One balanced posting, at most one per source event (the idempotency key)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_business_date", "business_date"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_event: Mapped[str] = mapped_column(String(64), unique=True)
    business_date: Mapped[dt.date] = mapped_column(Date)
    posted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    description: Mapped[str] = mapped_column(String(200), default="")


class LedgerLine(Base):
    __tablename__ = "ledger_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    """Signed: a debit is positive, a credit negative."""


class ReconciliationExceptionRow(Base):
    """One difference reconciliation found, for operations to look into and resolve.

    At most one per (business date, kind, RRN), so running a day again adds nothing twice;
    for ``batch_totals`` the RRN column holds the settlement's RRN (or ``tid-batch``), our
    amount is the host's net total and the network's is the terminal's."""

    __tablename__ = "reconciliation_exceptions"
    __table_args__ = (
        UniqueConstraint("business_date", "kind", "rrn"),
        Index("ix_reconciliation_exceptions_status", "status", "business_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    business_date: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(24))
    rrn: Mapped[str] = mapped_column(String(24))
    mid: Mapped[str | None] = mapped_column(String(15))
    tid: Mapped[str | None] = mapped_column(String(8))
    our_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    network_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(8))
    """``open`` or ``resolved``."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolution_note: Mapped[str | None] = mapped_column(String(1000))
