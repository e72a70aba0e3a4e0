"""What the gateway keeps: the journal, terminal sessions, batches and the reversals it
owes the network (store-and-forward).

No column holds a full PAN, track data, a PIN block or a clear key: the PAN is kept as
its masked form, its last four digits and a keyed token (HMAC-SHA256 under a key derived
from the KEK); working keys are sealed with AES-GCM under the key vault.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, Date, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from poshub.core.db import Base

BigId = BigInteger().with_variant(Integer, "sqlite")
"""A 64-bit key on PostgreSQL; SQLite autoincrements only ``INTEGER PRIMARY KEY``."""


class TxnKind(StrEnum):
    """What a journal row is, from MTI + 3 + 25 + 60.1 + 60.3 (spec §5.1)."""

    SIGN_ON = "sign_on"
    SIGN_OFF = "sign_off"
    ECHO = "echo"
    PARAMETERS = "parameters"
    BALANCE = "balance_inquiry"
    SALE = "sale"
    QR_SALE = "qr_sale"
    VOID = "void"
    REFUND = "refund"
    PREAUTH = "preauth"
    PREAUTH_CANCEL = "preauth_cancel"
    COMPLETION = "completion"
    COMPLETION_VOID = "completion_void"
    COMPLETION_ADVICE = "completion_advice"
    REVERSAL = "reversal"
    SETTLEMENT = "settlement"
    BATCH_UPLOAD = "batch_upload"
    BATCH_UPLOAD_END = "batch_upload_end"
    UNKNOWN = "unknown"
    """Undecodable or unidentifiable requests (answered 30 or the connection closed)."""


class TxnStatus(StrEnum):
    PENDING = "pending"
    """Forwarded to the network, no answer yet. After a crash, such a row is reversed
    upstream (store-and-forward) and marked ``reversed``."""
    APPROVED = "approved"
    DECLINED = "declined"
    VOIDED = "voided"
    """An approved sale, completion or pre-auth later voided or cancelled."""
    REVERSED = "reversed"
    """Approved upstream (or unknown) and then reversed: no financial effect."""
    COMPLETED = "completed"
    """A pre-authorization captured by a completion."""
    ANSWERED = "answered"
    """Non-financial requests (management, settlement, voids, reversals themselves)."""


class GatewayTransaction(Base):
    """One request and the response it got: the journal (R12, R13).

    Every index costs each of the thousands of inserts a second, so there are only those
    that the gateway's own lookups and the staff search need: the RRN, the repeat key,
    (TID, batch) for voids, reversals and settlement, (MID, time) and the business date
    for searches, and the original RRN for what acts on a transaction. A search by last
    four digits or response code narrows one of those.
    """

    __tablename__ = "gateway_transactions"
    __table_args__ = (
        Index("ix_gateway_transactions_tid_batch", "tid", "batch_no"),
        Index("ix_gateway_transactions_mid_received", "mid", "received_at"),
    )

    rrn: Mapped[str] = mapped_column(String(12), primary_key=True)
    """Retrieval reference number assigned by the host to every request (field 37)."""
    tid: Mapped[str | None] = mapped_column(String(8))
    mid: Mapped[str | None] = mapped_column(String(15))
    kind: Mapped[str] = mapped_column(String(24))
    mti: Mapped[str] = mapped_column(String(4))
    processing_code: Mapped[str | None] = mapped_column(String(6))
    type_code: Mapped[str | None] = mapped_column(String(2))
    """60.1."""
    network_code: Mapped[str | None] = mapped_column(String(3))
    """60.3."""
    stan: Mapped[str | None] = mapped_column(String(6))
    batch_no: Mapped[str | None] = mapped_column(String(6))
    host_date: Mapped[dt.date] = mapped_column(Date, index=True)
    """Business date (Asia/Shanghai) the host answered on."""
    dedupe_key: Mapped[str | None] = mapped_column(String(48), unique=True)
    """``tid:batch:stan:class`` for financial requests: a repeat of the same key
    gets the stored answer and changes nothing (spec §11.9); NULL for the rest."""
    pan_masked: Mapped[str | None] = mapped_column(String(19))
    """First six and last four digits, the rest ``*``."""
    pan_last4: Mapped[str | None] = mapped_column(String(4))
    pan_token: Mapped[str | None] = mapped_column(String(64))
    """HMAC-SHA256 of the PAN under a KEK-derived key: finds a card's transactions
    without storing the number."""
    entry_mode: Mapped[str | None] = mapped_column(String(3))
    channel: Mapped[str | None] = mapped_column(String(8))
    """``debit``, ``credit`` (the card's kind from its BIN) or ``qr``: what limits,
    risk rules and fees go by (poshub/risk/bins.py)."""
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    response_code: Mapped[str | None] = mapped_column(String(2))
    auth_code: Mapped[str | None] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(12))
    original_rrn: Mapped[str | None] = mapped_column(String(12), index=True)
    """For voids, refunds, reversals, cancels and completions: the transaction they act on."""
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    """Sum of approved refunds against this sale."""
    reversal_reason: Mapped[str | None] = mapped_column(String(2))
    """Field 39 of a 0400 (98, A0, 06, 96)."""
    qr_voucher: Mapped[str | None] = mapped_column(String(64))
    """The payment voucher number (59 tag A4) of a QR payment."""
    wallet: Mapped[str | None] = mapped_column(String(3))
    """63.1 of a QR payment: CUP, WXP, ALP."""
    local_time: Mapped[str | None] = mapped_column(String(6))
    local_date: Mapped[str | None] = mapped_column(String(4))
    settlement_date: Mapped[str | None] = mapped_column(String(4))
    network_stan: Mapped[str | None] = mapped_column(String(6))
    """STAN used on the network link (the host's own counter)."""
    upstream: Mapped[str] = mapped_column(String(10), default="none")
    """none, forwarded, answered, timeout."""
    upstream_us: Mapped[int | None] = mapped_column(Integer)
    total_us: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[dt.datetime]
    responded_at: Mapped[dt.datetime | None]


class TerminalSession(Base):
    """A terminal's sign-on state: working keys (sealed), open batch, MAC failures."""

    __tablename__ = "terminal_sessions"

    tid: Mapped[str] = mapped_column(String(8), primary_key=True)
    keys_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    """PIK, MAK, TDK sealed with AES-256-GCM under the vault (context: the TID); NULL
    after sign-off or before the first sign-on."""
    key_mode: Mapped[str | None] = mapped_column(String(3))
    pik_kcv: Mapped[str | None] = mapped_column(String(8))
    mak_kcv: Mapped[str | None] = mapped_column(String(8))
    batch_no: Mapped[str] = mapped_column(String(6))
    """The host's open batch for the terminal (spec §11.13)."""
    signed_on_at: Mapped[dt.datetime | None]
    signed_off_at: Mapped[dt.datetime | None]
    mac_failures: Mapped[int] = mapped_column(default=0)
    """Consecutive MAC failures; reset by a good MAC or a sign-on; the terminal is locked
    when it reaches ``limits.GATEWAY_MAC_FAILURES_BEFORE_LOCK``."""
    last_mac_failure_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]


class BatchStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class TerminalBatch(Base):
    """A terminal batch and its settlement (0500) totals, as the terminal sent them and
    as the host counted them."""

    __tablename__ = "terminal_batches"
    __table_args__ = (Index("ix_terminal_batches_tid_batch", "tid", "batch_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[str] = mapped_column(String(8))
    batch_no: Mapped[str] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(8))
    opened_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]
    settlement_rrn: Mapped[str | None] = mapped_column(String(12))
    terminal_debit_fen: Mapped[int | None] = mapped_column(BigInteger)
    terminal_debit_count: Mapped[int | None]
    terminal_credit_fen: Mapped[int | None] = mapped_column(BigInteger)
    terminal_credit_count: Mapped[int | None]
    host_debit_fen: Mapped[int | None] = mapped_column(BigInteger)
    host_debit_count: Mapped[int | None]
    host_credit_fen: Mapped[int | None] = mapped_column(BigInteger)
    host_credit_count: Mapped[int | None]
    result: Mapped[str | None] = mapped_column(String(1))
    """48 digit 31 of the 0510: 1 balanced, 2 not balanced."""
    uploaded_records: Mapped[int] = mapped_column(default=0)
    settled_at: Mapped[dt.datetime | None]


class NetworkReversal(Base):
    """A reversal the host owes the network (store-and-forward, R13): written in the same
    transaction that records the timeout or the terminal's reversal, sent until the
    network acknowledges it, across restarts. One per original (unique ``rrn``)."""

    __tablename__ = "network_reversals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rrn: Mapped[str] = mapped_column(String(12), unique=True)
    """The original request's RRN."""
    network_stan: Mapped[str] = mapped_column(String(6))
    tid: Mapped[str] = mapped_column(String(8))
    mid: Mapped[str] = mapped_column(String(15))
    mti: Mapped[str] = mapped_column(String(4))
    """The original's MTI."""
    processing_code: Mapped[str] = mapped_column(String(6))
    condition_code: Mapped[str] = mapped_column(String(2))
    type_code: Mapped[str] = mapped_column(String(2))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(index=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(String(64))
