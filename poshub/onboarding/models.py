"""Applications, their documents, checks and timeline; the blacklist."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from poshub.core.db import Base


class ApplicantKind(StrEnum):
    INDIVIDUAL = "individual"
    """个人 / 小微: a natural person without a business licence."""
    INDIVIDUAL_BUSINESS = "individual_business"
    """个体工商户: an individual business with a licence."""
    ENTERPRISE = "enterprise"
    """企业: a company."""

    @property
    def needs_licence(self) -> bool:
        return self is not ApplicantKind.INDIVIDUAL


class Application(Base):
    __tablename__ = "applications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tracking_number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the applicant's bearer token; the token itself is shown once."""
    locale: Mapped[str] = mapped_column(String(8))
    """Language the applicant used; notifications go out in it."""
    applicant_kind: Mapped[str] = mapped_column(String(24))
    legal_name: Mapped[str] = mapped_column(String(100))
    """Legal person / individual applicant's name as on the resident ID."""
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    """Resident ID number, AES-GCM under the vault's data key."""
    id_number_token: Mapped[str] = mapped_column(String(64), index=True)
    """HMAC lookup token of the resident ID number (duplicates, blacklist)."""
    id_number_masked: Mapped[str] = mapped_column(String(18))
    mobile: Mapped[str] = mapped_column(String(11))
    business_name: Mapped[str] = mapped_column(String(100))
    uscc: Mapped[str | None] = mapped_column(String(18), index=True)
    licence_expiry: Mapped[dt.date | None] = mapped_column(Date)
    """None for a long-term (长期) licence or an individual without one."""
    established_on: Mapped[dt.date | None] = mapped_column(Date)
    mcc: Mapped[str] = mapped_column(String(4))
    province: Mapped[str] = mapped_column(String(32))
    city: Mapped[str] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(32))
    address_detail: Mapped[str] = mapped_column(String(300))
    region_code: Mapped[str] = mapped_column(String(6))
    """GB/T 2260 county code of the shop; its first four digits go into the MID."""
    bank_name: Mapped[str] = mapped_column(String(100))
    account_name: Mapped[str] = mapped_column(String(100))
    account_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    account_number_token: Mapped[str] = mapped_column(String(64), index=True)
    account_number_masked: Mapped[str] = mapped_column(String(40))
    expected_monthly_volume_fen: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    submitted_at: Mapped[dt.datetime | None]
    sla_start_date: Mapped[dt.date | None] = mapped_column(Date)
    """Business date (Asia/Shanghai) from which the review clock counts."""
    sla_paused_working_days: Mapped[int] = mapped_column(default=0)
    """Working days spent waiting for the applicant (needs_info), added to the deadlines."""
    info_requested_at: Mapped[dt.datetime | None]
    sla_target_date: Mapped[dt.date | None] = mapped_column(Date)
    sla_breach_date: Mapped[dt.date | None] = mapped_column(Date)
    sla_breach_reported_at: Mapped[dt.datetime | None]
    """When the worker first flagged this application as past its breach date."""
    assigned_reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[dt.datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decision_reasons: Mapped[list[str] | None]
    """Reason codes of a rejection (or conditions of an approval)."""
    decision_note: Mapped[str | None] = mapped_column(Text)
    check_run: Mapped[int] = mapped_column(default=0)
    """Number of the latest automated check run."""
    checks_requested_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    """Set when a check run is queued (on submit, on an answer); cleared by the worker
    once it has run them. Checks call outside providers, so they never hold up a request."""


class TerminalRequest(Base):
    __tablename__ = "application_terminals"
    __table_args__ = (UniqueConstraint("application_id", "model_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    model_code: Mapped[str] = mapped_column(ForeignKey("terminal_models.code"))
    count: Mapped[int]


class Document(Base):
    __tablename__ = "application_documents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(40))
    """Decided from the bytes, never from the file name."""
    sha256: Mapped[str] = mapped_column(String(64))
    """Address of the bytes in the content-addressed store."""
    size_bytes: Mapped[int]
    file_name: Mapped[str] = mapped_column(String(120))
    """The name the applicant gave, sanitised; for display only."""
    uploaded_at: Mapped[dt.datetime]
    uploaded_by: Mapped[str] = mapped_column(String(64))


class CheckStatus(StrEnum):
    PASS = "pass"  # noqa: S105 - a check outcome, not a password
    FAIL = "fail"
    WARN = "warn"
    """Needs a person's attention but is not a failure (e.g. a site survey is required)."""
    PENDING = "pending"
    """Could not be decided now (provider outage); rerun later."""


class ApplicationCheck(Base):
    __tablename__ = "application_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    run: Mapped[int]
    code: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10))
    detail_code: Mapped[str | None] = mapped_column(String(80))
    """Message code explaining the outcome, translated on display."""
    params: Mapped[dict[str, Any]]
    checked_at: Mapped[dt.datetime]


class EventKind(StrEnum):
    SUBMITTED = "submitted"
    CLAIMED = "claimed"
    PHONE_CONFIRMATION = "phone_confirmation"
    SITE_SURVEY = "site_survey"
    NOTE = "note"
    INFO_REQUESTED = "info_requested"
    APPLICANT_ANSWERED = "applicant_answered"
    EDITED = "edited"
    APPROVED = "approved"
    REJECTED = "rejected"
    SLA_BREACHED = "sla_breached"


class ApplicationEvent(Base):
    """The application's timeline: notes, requests for information, answers, decisions."""

    __tablename__ = "application_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(24))
    author_kind: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]]
    """Structured part: outcome of a phone check, fields edited, reason codes."""
    visible_to_applicant: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime]


class ApplicationEditor(Base):
    """Staff who changed an application's data: none of them may approve it (maker-checker)."""

    __tablename__ = "application_editors"

    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True
    )
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), primary_key=True)


class BlacklistKind(StrEnum):
    ID_NUMBER = "id_number"
    USCC = "uscc"
    ACCOUNT_NUMBER = "account_number"
    MOBILE = "mobile"


class BlacklistEntry(Base):
    __tablename__ = "blacklist_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    value_token: Mapped[str] = mapped_column(String(64), index=True)
    """HMAC lookup token of the normalised value; the value itself is not kept."""
    value_masked: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(500))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[dt.datetime]
    removed_at: Mapped[dt.datetime | None]
    removed_by: Mapped[str | None] = mapped_column(String(64))
