"""Applications, their documents, checks and timeline; the blacklist."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
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
    __table_args__ = (
        Index("ix_applications_mobile_created_at", "mobile", "created_at"),
        Index("ix_applications_source_address_created_at", "source_address", "created_at"),
    )

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
    id_expiry: Mapped[dt.date | None] = mapped_column(Date, default=None)
    """Expiry of the resident ID card; None with ``id_long_term`` for a long-term card,
    None without it for an application made before the date was asked (checks fail)."""
    id_long_term: Mapped[bool] = mapped_column(default=False)
    applied_by_agent: Mapped[bool] = mapped_column(default=False)
    """An agent, not the legal representative, applies (a letter of authorisation is due)."""
    agent_name: Mapped[str | None] = mapped_column(String(100), default=None)
    agent_id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    """The agent's resident ID number, AES-GCM like ``id_number_enc``."""
    agent_id_number_token: Mapped[str | None] = mapped_column(String(64), default=None)
    agent_id_number_masked: Mapped[str | None] = mapped_column(String(18), default=None)
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
    account_type: Mapped[str] = mapped_column(String(10), default="personal")
    """``unit`` (单位银行结算账户) or ``personal`` (个人银行结算账户); see rules.AccountType."""
    account_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    account_number_token: Mapped[str] = mapped_column(String(64), index=True)
    account_number_masked: Mapped[str] = mapped_column(String(40))
    expected_monthly_volume_fen: Mapped[int] = mapped_column(BigInteger)
    opening_time: Mapped[str | None] = mapped_column(String(5), default=None)
    """Declared business hours, ``HH:MM`` Beijing time (optional, both or neither); copied
    to the merchant on approval, where the business-hours risk rule reads them."""
    closing_time: Mapped[str | None] = mapped_column(String(5), default=None)
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
    """Staff's internal note on the decision: never shown to the applicant."""
    decision_message: Mapped[str | None] = mapped_column(Text, default=None)
    """The decision's message to the applicant (shown on their tracking page)."""
    check_run: Mapped[int] = mapped_column(default=0)
    """Number of the latest automated check run."""
    checks_requested_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    """Set when a check run is queued (on submit, on an answer); cleared by the worker
    once it has run them. Checks call outside providers, so they never hold up a request."""
    purged_at: Mapped[dt.datetime | None]
    """When the retention period ended and the personal data was anonymised
    (poshub/privacy/service.py)."""
    mobile_verified_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    """When the applicant proved ``mobile`` with a one-time SMS code; None until then, and
    again after the number changes. Nothing but the code goes to an unproved number."""
    source_address: Mapped[str | None] = mapped_column(String(64), default=None)
    """Network address the application was started from (per-address rate limit)."""


class ConsentKind(StrEnum):
    """The two consents the application form asks for, separately (PIPL arts. 14, 23)."""

    PRIVACY_NOTICE = "privacy_notice"
    """Agreement to the processing the privacy notice describes."""
    VERIFICATION_PROVIDER = "verification_provider"
    """Separate consent to send identity and bank data to the verification provider."""


class ConsentAction(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class ApplicationConsent(Base):
    """One grant or withdrawal of a consent: the evidence, never changed. The latest row
    of a kind is that consent's state (poshub/onboarding/consent.py)."""

    __tablename__ = "application_consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(12))
    notice_version: Mapped[str] = mapped_column(String(16))
    """Version of the privacy notice shown when the consent was given or withdrawn."""
    source_address: Mapped[str] = mapped_column(String(64))
    """Client address of the request; emptied when the application's data is purged."""
    at: Mapped[dt.datetime]


class BeneficialOwner(Base):
    """A beneficial owner (受益所有人) an enterprise named; ID number kept like the
    applicant's (encrypted, a lookup token and a masked form)."""

    __tablename__ = "application_beneficial_owners"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(100))
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_token: Mapped[str] = mapped_column(String(64), index=True)
    id_number_masked: Mapped[str] = mapped_column(String(18))
    basis: Mapped[str] = mapped_column(String(10))
    """``share`` or ``control`` (rules.OwnershipBasis)."""
    share_percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))


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
    OVERRIDE_REQUESTED = "override_requested"
    OVERRIDE_APPROVED = "override_approved"
    OVERRIDE_DECLINED = "override_declined"
    CONSENT_GIVEN = "consent_given"
    CONSENT_WITHDRAWN = "consent_withdrawn"


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


class OverrideStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


class ApplicationOverride(Base):
    """A reviewer's request to approve over failed or pending checks, and the risk
    officer's answer (maker-checker). One row per request; a declined request stays."""

    __tablename__ = "application_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), index=True)
    checks: Mapped[list[str]]
    """Codes of the failed or pending checks approved over."""
    check_run: Mapped[int]
    """The check run those results came from."""
    reason: Mapped[str] = mapped_column(Text)
    """The reviewer's written reason (internal)."""
    message: Mapped[str | None] = mapped_column(Text)
    """The reviewer's message to the applicant, sent once the approval is final."""
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    requested_at: Mapped[dt.datetime]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[dt.datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    """The risk officer's reason for approving or declining (internal)."""


class MobileChallenge(Base):
    """One one-time code sent to prove an application's mobile number. Only a keyed hash
    of the code is kept (poshub/onboarding/mobile.py); the rows also count the codes sent
    per number and per address for the rate limits."""

    __tablename__ = "mobile_challenges"
    __table_args__ = (
        Index("ix_mobile_challenges_mobile_sent_at", "mobile", "sent_at"),
        Index("ix_mobile_challenges_source_address_sent_at", "source_address", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    mobile: Mapped[str] = mapped_column(String(11))
    code_hash: Mapped[str] = mapped_column(String(64))
    """HMAC-SHA256 of the code under a key derived from the KEK, salted with ``nonce``."""
    nonce: Mapped[str] = mapped_column(String(32))
    source_address: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    """Wrong codes entered against this challenge."""
    verified_at: Mapped[dt.datetime | None]


class AccessCodeFailure(Base):
    """A wrong access code entered on the tracking login, kept to throttle guessing per
    source address (limits.ACCESS_CODE_FAILURES_PER_ADDRESS)."""

    __tablename__ = "access_code_failures"
    __table_args__ = (Index("ix_access_code_failures_source_address_at", "source_address", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_address: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]
