"""Response bodies of the transactions API (staff).

A journal row as staff may see it. The PAN token is deliberately absent: it is a lookup
key (HMAC of the card number) that finds every transaction of a card, not something to
display or export. No full PAN exists anywhere to include.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class TransactionOut(BaseModel):
    rrn: str
    """Retrieval reference number the host gave the request (field 37)."""
    tid: str | None
    mid: str | None
    kind: str
    """``sale``, ``void``, ``refund``, ``reversal``, ``qr_sale``, ``preauth``, …"""
    status: str
    """``pending``, ``approved``, ``declined``, ``voided``, ``reversed``, ``completed``,
    ``answered``."""
    amount_fen: int | None
    amount: str | None = Field(examples=["¥12.34"])
    """The amount as people read it."""
    currency: str | None = Field(examples=["CNY"])
    pan_masked: str | None = Field(examples=["622202******1234"])
    pan_last4: str | None
    response_code: str | None
    """Field 39 as sent to the terminal; None while pending."""
    response_meaning: str | None
    """What the code means, in the request's language."""
    auth_code: str | None
    stan: str | None
    """The terminal's trace number (field 11)."""
    batch_no: str | None
    host_date: dt.date
    """Business date (Asia/Shanghai) the host answered on."""
    received_at: dt.datetime
    """Asia/Shanghai time, with its offset."""
    responded_at: dt.datetime | None
    upstream: str
    """``none`` (answered by the host), ``forwarded``, ``answered``, ``timeout``."""
    upstream_ms: float | None
    """Time the network took to answer, in milliseconds."""
    total_ms: float | None
    """Time from the request's arrival to the answer, in milliseconds."""
    original_rrn: str | None
    """For voids, refunds, reversals, cancels and completions: what they act on."""
    refunded_fen: int
    refunded: str
    reversal_reason: str | None
    """Field 39 of a reversal request (98, A0, 06, 96)."""
    reversal_reason_meaning: str | None
    qr_voucher: str | None
    wallet: str | None
    """QR payments: ``CUP``, ``WXP`` or ``ALP``."""


class TransactionPageOut(BaseModel):
    date_from: dt.date | None
    date_to: dt.date | None
    """The business dates searched, both included: as given, or filled in (the last 7 days
    without dates; none for an RRN lookup without dates)."""
    items: list[TransactionOut]
    total: int
    """Every transaction matching the filters."""
    page: int
    page_size: int
    pages: int


class TransactionDetailOut(BaseModel):
    transaction: TransactionOut
    original: TransactionOut | None
    acting: list[TransactionOut]
    """What acts on this transaction (voids, refunds, reversals, completions), oldest first."""
    timeline: list[TransactionOut]
    """The whole chain from the first original, in time order."""
