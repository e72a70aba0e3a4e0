"""What risk control keeps (R14, R19, R20): rule versions, limits and their change
requests, the counters that enforce limits, alerts, cases with their evidence, freezes and
settlement holds, blocked card tokens, merchant risk grades and external list checks.

Evidence is never deleted: alerts, case events, case items and attachments refuse DELETE
(triggers in migration 0014), and a case event never changes once written. No column
holds a full PAN: cards appear as the journal's keyed token and masked form.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from poshub.core.db import Base


class Channel(StrEnum):
    """What a limit applies to (R14): the card's kind from its BIN, or a QR payment."""

    DEBIT = "debit"
    CREDIT = "credit"
    QR = "qr"


class RuleAction(StrEnum):
    """What a rule hit does to the authorization."""

    DECLINE = "decline"
    ALERT = "alert"
    """Approve (or let the network decide) and raise an alert for a risk officer."""
    HOLD = "hold"
    """Approve, raise an alert and hold the transaction's settlement."""


class AlertStatus(StrEnum):
    OPEN = "open"
    IN_CASE = "in_case"
    DISMISSED = "dismissed"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class FreezeScope(StrEnum):
    MERCHANT = "merchant"
    TERMINAL = "terminal"
    TRANSACTION = "transaction"


class ChangeStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ListCheckStatus(StrEnum):
    PENDING = "pending"
    """Not answered yet, or the provider was unreachable: never counts as passed."""
    CLEAR = "clear"
    HIT = "hit"


class RiskRuleVersion(Base):
    """One version of one rule's settings; the highest version of a code is in force.
    A change is a new row: the old settings stay readable for every alert they raised."""

    __tablename__ = "risk_rule_versions"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean)
    action: Mapped[str] = mapped_column(String(8))
    params: Mapped[dict[str, Any]]
    """The rule's thresholds, validated by its pydantic model (poshub/risk/schemas.py)."""
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]


class RiskLimit(Base):
    """One version of the limits of one channel at one level. ``scope`` is ``default``
    (subject ``*``: everyone without their own), ``merchant`` (subject the MID) or
    ``terminal`` (subject the TID). A NULL amount means no limit at that level."""

    __tablename__ = "risk_limits"
    __table_args__ = (UniqueConstraint("scope", "subject", "channel", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(12))
    subject: Mapped[str] = mapped_column(String(15))
    channel: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer)
    per_transaction_fen: Mapped[int | None] = mapped_column(BigInteger)
    per_day_fen: Mapped[int | None] = mapped_column(BigInteger)
    per_month_fen: Mapped[int | None] = mapped_column(BigInteger)
    per_card_per_day_fen: Mapped[int | None] = mapped_column(BigInteger)
    """One card at one merchant in one business day (merchant and default scopes)."""
    change_id: Mapped[int | None] = mapped_column(ForeignKey("risk_limit_changes.id"))
    """The approved request that made this version (NULL for the seeded defaults)."""
    created_at: Mapped[dt.datetime]


class RiskLimitChange(Base):
    """A request to change limits: a risk officer other than the requester approves it
    (maker-checker); only then does a new ``RiskLimit`` version exist."""

    __tablename__ = "risk_limit_changes"
    __table_args__ = (
        # One pending request per level and channel: a second would be decided against
        # limits the first one changes. The database enforces it, so two risk officers
        # asking at once cannot both succeed.
        Index(
            "uq_risk_limit_changes_pending",
            "scope",
            "subject",
            "channel",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(12))
    subject: Mapped[str] = mapped_column(String(15))
    channel: Mapped[str] = mapped_column(String(8))
    per_transaction_fen: Mapped[int | None] = mapped_column(BigInteger)
    per_day_fen: Mapped[int | None] = mapped_column(BigInteger)
    per_month_fen: Mapped[int | None] = mapped_column(BigInteger)
    per_card_per_day_fen: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(500))


class RiskCounter(Base):
    """A running total that a limit is checked against, one row per key and period
    (``m:<mid>:qr:d:20261204``). The gateway reserves an amount with one conditional
    upsert in the same transaction as the journal row, so several gateway processes on
    one PostgreSQL database never together pass a limit, and a restart loses nothing."""

    __tablename__ = "risk_counters"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    expires_on: Mapped[dt.date] = mapped_column(Date, index=True)
    """The business date after which the row is no longer read (the worker deletes it)."""


class RiskAlert(Base):
    """One rule hit (R19): what fired, on which transaction, and what was done."""

    __tablename__ = "risk_alerts"
    __table_args__ = (
        Index("ix_risk_alerts_status_created", "status", "created_at"),
        Index("ix_risk_alerts_mid_created", "mid", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_code: Mapped[str] = mapped_column(String(40), index=True)
    rule_version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(8))
    """What the rule did: decline, alert or hold."""
    severity: Mapped[str] = mapped_column(String(8))
    mid: Mapped[str | None] = mapped_column(String(15))
    tid: Mapped[str | None] = mapped_column(String(8))
    rrn: Mapped[str | None] = mapped_column(String(12), index=True)
    pan_token: Mapped[str | None] = mapped_column(String(64))
    pan_masked: Mapped[str | None] = mapped_column(String(19))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]]
    """The values the rule saw (counts, totals, thresholds, distances): why it fired."""
    status: Mapped[str] = mapped_column(String(12))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("risk_cases.id"), index=True)
    created_at: Mapped[dt.datetime]
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    """Rules that fire once per subject and period (a daily ratio, a relocation) set it so
    that several gateway processes raise one alert, not one each."""


class RiskCase(Base):
    """An investigation (R19): opened from alerts or by hand, closed with an outcome."""

    __tablename__ = "risk_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(24), unique=True)
    mid: Mapped[str | None] = mapped_column(String(15), index=True)
    tid: Mapped[str | None] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(8), index=True)
    outcome: Mapped[str | None] = mapped_column(String(24))
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[dt.datetime]
    assigned_to: Mapped[str | None] = mapped_column(String(64))
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[dt.datetime | None]


class RiskCaseEvent(Base):
    """Every action on a case, in order; never changed or deleted."""

    __tablename__ = "risk_case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("risk_cases.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(2000))
    detail: Mapped[dict[str, Any]]
    at: Mapped[dt.datetime]


class RiskCaseItem(Base):
    """Evidence linked to a case: a transaction (RRN) or an alert; never unlinked."""

    __tablename__ = "risk_case_items"
    __table_args__ = (UniqueConstraint("case_id", "kind", "ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("risk_cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    """``transaction`` or ``alert``."""
    ref: Mapped[str] = mapped_column(String(24))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[dt.datetime]


class RiskCaseAttachment(Base):
    """A file attached to a case, stored encrypted (core/storage) by its SHA-256."""

    __tablename__ = "risk_case_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("risk_cases.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[dt.datetime]


class RiskFreeze(Base):
    """A freeze or hold in force until released. A merchant freeze declines new
    authorizations and holds settlement; a terminal freeze declines the terminal's
    authorizations; a settlement hold (merchant or one transaction) only holds money."""

    __tablename__ = "risk_freezes"
    __table_args__ = (Index("ix_risk_freezes_subject", "scope", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(12))
    subject: Mapped[str] = mapped_column(String(15))
    """MID, TID or RRN by scope."""
    mid: Mapped[str | None] = mapped_column(String(15), index=True)
    """The merchant concerned, whatever the scope (settlement reads holds by MID)."""
    blocks_authorization: Mapped[bool] = mapped_column(Boolean)
    holds_settlement: Mapped[bool] = mapped_column(Boolean)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("risk_cases.id"), index=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("risk_alerts.id"))
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    released_by: Mapped[str | None] = mapped_column(String(64))
    released_at: Mapped[dt.datetime | None]
    release_reason: Mapped[str | None] = mapped_column(String(500))


class BlockedCard(Base):
    """A card token refused at every merchant (a stolen card reported, a fraud case)."""

    __tablename__ = "risk_blocked_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    pan_token: Mapped[str] = mapped_column(String(64), index=True)
    pan_masked: Mapped[str | None] = mapped_column(String(19))
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    released_by: Mapped[str | None] = mapped_column(String(64))
    released_at: Mapped[dt.datetime | None]


class MerchantRiskGrade(Base):
    """One grading of a merchant (特约商户风险评级): at approval, monthly, or by a risk
    officer. The latest row is the grade in force; ``merchants.risk_grade`` mirrors it."""

    __tablename__ = "merchant_risk_grades"
    __table_args__ = (
        Index("ix_merchant_risk_grades_mid_at", "mid", "graded_at"),
        UniqueConstraint("mid", "period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mid: Mapped[str] = mapped_column(String(15))
    grade: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(Integer)
    factors: Mapped[dict[str, Any]]
    """Each factor's points and the values behind them: the explanation staff read."""
    source: Mapped[str] = mapped_column(String(12))
    """``approval``, ``monthly`` or ``manual``."""
    period: Mapped[str | None] = mapped_column(String(7))
    """YYYY-MM of a monthly regrade: one per merchant and month, by the unique constraint
    (NULL, for the other sources, never collides)."""
    previous_grade: Mapped[str | None] = mapped_column(String(8))
    graded_by: Mapped[str] = mapped_column(String(64))
    graded_at: Mapped[dt.datetime]


class RiskListCheck(Base):
    """One check of a merchant or application against an external risk list (the
    industry's shared merchant risk information, sanctions). Pending until answered."""

    __tablename__ = "risk_list_checks"
    __table_args__ = (Index("ix_risk_list_checks_subject", "subject_kind", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(12))
    """``application`` or ``merchant``."""
    subject: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8), index=True)
    detail: Mapped[dict[str, Any]]
    attempts: Mapped[int] = mapped_column(Integer)
    requested_at: Mapped[dt.datetime]
    checked_at: Mapped[dt.datetime | None]
    next_attempt_at: Mapped[dt.datetime | None]
