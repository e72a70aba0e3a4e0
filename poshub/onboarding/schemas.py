"""Request and response bodies of the onboarding API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from poshub.core import limits
from poshub.onboarding.models import ApplicantKind, BlacklistKind, CheckStatus
from poshub.onboarding.rules import DocumentKind

Name = Annotated[str, Field(min_length=1, max_length=limits.TEXT_FIELD_LENGTH_MAX)]
ShortName = Annotated[str, Field(min_length=1, max_length=100)]


class _In(BaseModel):
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


class TerminalLineIn(_In):
    model_code: Annotated[str, Field(min_length=1, max_length=32)]
    count: Annotated[int, Field(ge=1, le=limits.TERMINAL_LINE_COUNT_MAX)]


class ApplicationIn(_In):
    applicant_kind: ApplicantKind
    legal_name: ShortName
    """Individual applicant or legal representative, as on the resident ID."""
    id_number: Annotated[str, Field(min_length=15, max_length=20)]
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
    terminals: Annotated[
        list[TerminalLineIn], Field(min_length=1, max_length=limits.TERMINAL_LINES_MAX)
    ]


class ApplicationPatch(_In):
    """Changes by the applicant while the application is a draft or needs information."""

    legal_name: ShortName | None = None
    id_number: Annotated[str | None, Field(default=None, min_length=15, max_length=20)] = None
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


class ApproveIn(_In):
    note: Annotated[str | None, Field(default=None, max_length=limits.MESSAGE_LENGTH_MAX)] = None


class RejectIn(_In):
    reasons: Annotated[list[str], Field(min_length=1, max_length=10)]
    note: Annotated[str | None, Field(default=None, max_length=limits.MESSAGE_LENGTH_MAX)] = None


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
    mobile: str
    business_name: str
    uscc: str | None
    licence_expiry: dt.date | None
    established_on: dt.date | None
    mcc: str
    address: AddressOut
    settlement_account: SettlementAccountOut
    expected_monthly_volume_fen: int
    terminals: list[TerminalLineOut]
    documents: list[DocumentOut]
    required_documents: list[RequiredDocumentOut]
    events: list[EventOut]
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    sla_target_date: dt.date | None
    merchant_mid: str | None = None


class CheckOut(BaseModel):
    code: str
    status: CheckStatus
    detail_code: str | None
    message: str
    params: dict[str, object]
    checked_at: dt.datetime


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
