"""Request and response bodies of the onboarding API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from poshub.core import limits
from poshub.core.text import PersonName, PlainTextInput
from poshub.onboarding.models import ApplicantKind, BlacklistKind, CheckStatus, ConsentKind
from poshub.onboarding.rules import AccountType, DocumentKind, OwnershipBasis

Name = Annotated[str, Field(min_length=1, max_length=limits.TEXT_FIELD_LENGTH_MAX)]
ShortName = Annotated[str, Field(min_length=1, max_length=100)]


class _In(PlainTextInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddressIn(_In):
    province: Annotated[str, Field(min_length=2, max_length=32)]
    city: Annotated[str, Field(min_length=2, max_length=32)]
    district: Annotated[str, Field(min_length=2, max_length=32)]
    detail: Annotated[str, Field(min_length=4, max_length=limits.ADDRESS_DETAIL_LENGTH_MAX)]
    region_code: Annotated[str | None, Field(default=None, pattern=r"^\d{6}$")] = None
    """GB/T 2260 county code; needed only where the district name is ambiguous."""


class SettlementAccountIn(_In):
    bank_name: ShortName
    """Bank and branch (开户行)."""
    account_name: ShortName
    """Account holder (户名): the legal person or the business."""
    account_number: Annotated[str, Field(min_length=8, max_length=40)]
    account_type: AccountType
    """``unit`` (单位银行结算账户, in the business's name) or ``personal`` (个人银行结算账户,
    the holder's own): an enterprise settles only to a unit account."""


ClockIn = Annotated[str | None, Field(default=None, max_length=8)]
"""A time of day as typed; poshub/merchants/hours.py says what is wrong with it."""

IdNumberIn = Annotated[str, Field(min_length=1, max_length=40)]
"""A resident ID number as typed (spaces allowed); its rules say what is wrong with it."""


class AgentIn(_In):
    """The person applying for the legal representative (代理人), with a letter of
    authorisation (授权委托书)."""

    name: Annotated[PersonName, Field(min_length=1, max_length=100)]
    id_number: IdNumberIn


class BeneficialOwnerIn(_In):
    """A beneficial owner (受益所有人) of an enterprise."""

    name: Annotated[PersonName, Field(min_length=1, max_length=100)]
    id_number: IdNumberIn
    basis: OwnershipBasis
    """``share`` (holds 25% or more) or ``control`` (controls it otherwise)."""
    share_percent: Annotated[
        Decimal | None, Field(default=None, gt=0, le=100, max_digits=5, decimal_places=2)
    ] = None


class TerminalLineIn(_In):
    model_code: Annotated[str, Field(min_length=1, max_length=32)]
    count: Annotated[int, Field(ge=1, le=limits.TERMINAL_LINE_COUNT_MAX)]


class ConsentsIn(_In):
    """The applicant's consents, each given separately (poshub/onboarding/consent.py)."""

    notice_version: Annotated[str, Field(min_length=1, max_length=16)]
    """Version of the privacy notice the applicant was shown (``GET /api/v1/privacy-notice``)."""
    privacy_notice: bool = False
    """Agreement to the processing the privacy notice describes; needed to apply."""
    verification_provider: bool = False
    """Consent to send name, ID number, account number and mobile to the verification
    provider; needed to submit."""


class ConsentWithdrawalIn(_In):
    kind: ConsentKind


class ConsentOut(BaseModel):
    kind: str
    granted: bool
    notice_version: str | None
    at: dt.datetime | None


class ApplicationIn(_In):
    applicant_kind: ApplicantKind
    legal_name: Annotated[PersonName, Field(min_length=1, max_length=100)]
    """Individual applicant or legal representative, as on the resident ID."""
    id_number: IdNumberIn
    id_expiry: dt.date | None = None
    """The resident ID card's expiry date (证件有效期), from the back of the card."""
    id_long_term: bool = False
    """A long-term (长期) card, issued at 46 or older; then ``id_expiry`` stays empty."""
    applied_by_agent: bool = False
    """The person applying is not the legal representative but an agent for them."""
    agent: AgentIn | None = None
    """The agent's name and ID number, when ``applied_by_agent``."""
    beneficial_owners: Annotated[
        list[BeneficialOwnerIn], Field(max_length=limits.BENEFICIAL_OWNERS_MAX)
    ] = []
    """An enterprise's beneficial owners; required before it submits."""
    mobile: Annotated[str, Field(min_length=11, max_length=20)]
    business_name: ShortName
    """Shop or company name (for an individual: the shop's sign)."""
    uscc: Annotated[str | None, Field(default=None, max_length=20)] = None
    licence_expiry: dt.date | None = None
    licence_long_term: bool = False
    """A licence valid without end (长期); then ``licence_expiry`` stays empty."""
    established_on: dt.date | None = None
    mcc: Annotated[str, Field(min_length=1, max_length=8)]
    address: AddressIn
    settlement_account: SettlementAccountIn
    expected_monthly_volume_fen: Annotated[
        int, Field(ge=0, le=limits.EXPECTED_MONTHLY_VOLUME_FEN_MAX)
    ]
    opening_time: ClockIn = None
    """Declared opening time ``HH:MM`` (Beijing time), optional; with ``closing_time``."""
    closing_time: ClockIn = None
    """Declared closing time; earlier than the opening time: open past midnight."""
    terminals: Annotated[
        list[TerminalLineIn], Field(min_length=1, max_length=limits.TERMINAL_LINES_MAX)
    ]
    consents: ConsentsIn | None = None
    """Given with the application (the privacy notice agreement is required to apply);
    later ones through ``POST /api/v1/applications/{id}/consents``."""


class ApplicationPatch(_In):
    """Changes by the applicant while the application is a draft or needs information."""

    legal_name: Annotated[PersonName | None, Field(default=None, min_length=1, max_length=100)] = (
        None
    )
    id_number: IdNumberIn | None = None
    id_expiry: dt.date | None = None
    id_long_term: bool | None = None
    applied_by_agent: bool | None = None
    agent: AgentIn | None = None
    beneficial_owners: Annotated[
        list[BeneficialOwnerIn] | None, Field(default=None, max_length=limits.BENEFICIAL_OWNERS_MAX)
    ] = None
    mobile: Annotated[str | None, Field(default=None, min_length=11, max_length=20)] = None
    business_name: ShortName | None = None
    uscc: Annotated[str | None, Field(default=None, max_length=20)] = None
    licence_expiry: dt.date | None = None
    licence_long_term: bool | None = None
    established_on: dt.date | None = None
    mcc: Annotated[str | None, Field(default=None, min_length=1, max_length=8)] = None
    address: AddressIn | None = None
    settlement_account: SettlementAccountIn | None = None
    expected_monthly_volume_fen: Annotated[
        int | None, Field(default=None, ge=0, le=limits.EXPECTED_MONTHLY_VOLUME_FEN_MAX)
    ] = None
    opening_time: ClockIn = None
    closing_time: ClockIn = None
    terminals: Annotated[
        list[TerminalLineIn] | None,
        Field(default=None, min_length=1, max_length=limits.TERMINAL_LINES_MAX),
    ] = None


class StaffEditIn(_In):
    """Corrections a reviewer may make (e.g. after a phone confirmation)."""

    business_name: ShortName | None = None
    mcc: Annotated[str | None, Field(default=None, min_length=1, max_length=8)] = None
    address: AddressIn | None = None
    expected_monthly_volume_fen: Annotated[
        int | None, Field(default=None, ge=0, le=limits.EXPECTED_MONTHLY_VOLUME_FEN_MAX)
    ] = None
    bank_name: ShortName | None = None
    reason: Annotated[str, Field(min_length=2, max_length=500)]


class MessageIn(_In):
    message: Annotated[str, Field(min_length=2, max_length=limits.MESSAGE_LENGTH_MAX)]


class NoteIn(_In):
    kind: Annotated[str, Field(pattern="^(phone_confirmation|site_survey|note)$")]
    body: Annotated[str, Field(min_length=2, max_length=limits.MESSAGE_LENGTH_MAX)]
    outcome: Annotated[
        str | None, Field(default=None, pattern="^(confirmed|not_confirmed|feasible|not_feasible)$")
    ] = None


InternalNote = Annotated[str | None, Field(default=None, max_length=limits.MESSAGE_LENGTH_MAX)]
"""Staff's note on a decision: internal, never shown to the applicant."""
ApplicantMessage = Annotated[str | None, Field(default=None, max_length=limits.MESSAGE_LENGTH_MAX)]
"""Text the applicant will see on their tracking page."""


class ApproveIn(_In):
    note: InternalNote = None
    """Internal: why approving is right (required over failed or pending checks)."""
    message: ApplicantMessage = None
    """Visible to the applicant."""


class RejectIn(_In):
    reasons: Annotated[list[str], Field(min_length=1, max_length=10)]
    note: InternalNote = None
    """Internal."""
    message: ApplicantMessage = None
    """Visible to the applicant (required with the reason ``other``)."""


class RequestInfoIn(_In):
    message: Annotated[str, Field(min_length=2, max_length=limits.MESSAGE_LENGTH_MAX)]
    """Visible to the applicant: what they must provide."""
    note: InternalNote = None
    """Internal."""


class OverrideDecisionIn(_In):
    """A risk officer's answer to an override request; the reason is required."""

    note: Annotated[str, Field(min_length=2, max_length=limits.MESSAGE_LENGTH_MAX)]


class BlacklistIn(_In):
    kind: BlacklistKind
    value: Annotated[str, Field(min_length=4, max_length=40)]
    reason: Annotated[str, Field(min_length=2, max_length=500)]


# --- Responses ---------------------------------------------------------------


class ApplicationCreated(BaseModel):
    id: str
    tracking_number: str
    status: str
    access_token: str
    """Shown once: the applicant's key to this application. Keep it safe."""
    tracking_url: str


class ApplicationStatusOut(BaseModel):
    """Where an application stands, without its details (the answer to submit)."""

    id: str
    tracking_number: str
    status: str
    submitted_at: dt.datetime | None
    sla_target_date: dt.date | None
    """Date by which a decision is expected (working days, Asia/Shanghai)."""


class AddressOut(BaseModel):
    province: str
    city: str
    district: str
    detail: str
    region_code: str


class SettlementAccountOut(BaseModel):
    bank_name: str
    account_name: str
    account_number_masked: str
    account_type: str | None = None


class AgentOut(BaseModel):
    name: str
    id_number_masked: str


class BeneficialOwnerOut(BaseModel):
    name: str
    id_number_masked: str
    basis: str
    share_percent: Decimal | None


class TerminalLineOut(BaseModel):
    model_code: str
    count: int


class DocumentOut(BaseModel):
    id: str
    kind: str
    content_type: str
    size_bytes: int
    sha256: str
    file_name: str
    uploaded_at: dt.datetime
    duplicate_of: list[str] = []
    """Other kinds of document in the same application with exactly these bytes (SHA-256):
    the same file uploaded as two different documents, flagged to the reviewer."""


class RequiredDocumentOut(BaseModel):
    kind: DocumentKind
    label: str
    provided: bool


class EventOut(BaseModel):
    kind: str
    author_kind: str
    author_id: str
    body: str
    data: dict[str, object]
    created_at: dt.datetime


class ApplicationOut(BaseModel):
    id: str
    tracking_number: str
    status: str
    applicant_kind: str
    legal_name: str
    id_number_masked: str
    id_expiry: dt.date | None = None
    id_long_term: bool = False
    applied_by_agent: bool = False
    agent: AgentOut | None = None
    beneficial_owners: list[BeneficialOwnerOut] = []
    mobile: str
    mobile_verified: bool = False
    """Whether the applicant proved the mobile number with a one-time SMS code."""
    business_name: str
    uscc: str | None
    licence_expiry: dt.date | None
    established_on: dt.date | None
    mcc: str
    address: AddressOut
    settlement_account: SettlementAccountOut
    expected_monthly_volume_fen: int
    opening_time: str | None = None
    """Declared business hours (``HH:MM``), or None."""
    closing_time: str | None = None
    terminals: list[TerminalLineOut]
    documents: list[DocumentOut]
    required_documents: list[RequiredDocumentOut]
    events: list[EventOut]
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    sla_target_date: dt.date | None
    merchant_mid: str | None = None
    consents: list[ConsentOut] = Field(default_factory=list)
    """Each consent's state: granted or not, under which notice version, when."""


class CheckOut(BaseModel):
    code: str
    status: CheckStatus
    detail_code: str | None
    message: str
    params: dict[str, object]
    checked_at: dt.datetime


class ApprovalBlockerOut(BaseModel):
    code: str
    message: str


class OverrideOut(BaseModel):
    """A request to approve over failed or pending checks (maker-checker)."""

    id: int
    application_id: str
    status: str
    checks: list[str]
    reason: str
    """Internal."""
    message: str | None
    """For the applicant once approved."""
    requested_by: str
    requested_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_note: str | None


class ReviewApplicationOut(ApplicationOut):
    checks: list[CheckOut]
    checks_running: bool
    """A check run is queued: ``checks`` are from the previous run (or empty)."""
    assigned_reviewer: str | None
    editors: list[str]
    sla_breach_date: dt.date | None
    working_days_elapsed: int | None
    decision_reasons: list[str] | None
    decision_note: str | None
    """Internal."""
    decision_message: str | None
    """What the applicant was told."""
    approval_blockers: list[ApprovalBlockerOut]
    """What must happen before anyone may approve (e.g. a site survey)."""
    override_checks: list[str]
    """Failed or pending checks a reviewer's approval would send to a risk officer."""
    override: OverrideOut | None
    """The pending override request, if any."""


class QueueItemOut(BaseModel):
    id: str
    tracking_number: str
    status: str
    applicant_kind: str
    business_name: str
    mcc: str
    submitted_at: dt.datetime | None
    sla_target_date: dt.date | None
    sla_breach_date: dt.date | None
    sla_state: str
    """on_track, due_today, overdue (past target) or breached (past the breach date)."""
    assigned_reviewer: str | None
    failed_checks: int
    pending_checks: int
    checks_running: bool


class BlacklistOut(BaseModel):
    id: int
    kind: str
    value_masked: str
    reason: str
    added_by: str
    added_at: dt.datetime
    removed_at: dt.datetime | None


class MobileCodeOut(BaseModel):
    """A one-time code was sent by SMS to the application's mobile number."""

    mobile_masked: str
    expires_at: dt.datetime
    resend_after_seconds: int
    """Wait this long before asking for another code."""
    demo_code: str | None = None
    """The code itself, only in demo mode (no SMS leaves a demo)."""


class MobileCodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=20)
    """The code from the SMS (spaces allowed)."""


class MobileVerifiedOut(BaseModel):
    mobile_masked: str
    mobile_verified: bool
    mobile_verified_at: dt.datetime | None
