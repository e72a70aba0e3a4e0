"""Request and response bodies of the contracts API."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from poshub.contracts.models import AmendmentKind, SettlementCycle
from poshub.core import limits
from poshub.core.text import PersonName, PlainTextInput


class ContractIn(PlainTextInput):
    """Generate the first contract of an approved merchant."""

    model_config = ConfigDict(extra="forbid")

    fee_plan_code: str = Field(min_length=1, max_length=32)
    settlement_cycle: SettlementCycle = SettlementCycle.T1
    term_months: int = Field(
        default=limits.CONTRACT_TERM_MONTHS_DEFAULT,
        ge=limits.CONTRACT_TERM_MONTHS_MIN,
        le=limits.CONTRACT_TERM_MONTHS_MAX,
    )
    effective_from: dt.date | None = None
    """Defaults to the day of generation."""
    language: Literal["zh", "en"] = "zh"


class SettlementAccountIn(PlainTextInput):
    model_config = ConfigDict(extra="forbid")

    bank_name: str = Field(min_length=2, max_length=limits.TEXT_FIELD_LENGTH_MAX)
    account_name: str = Field(min_length=2, max_length=limits.TEXT_FIELD_LENGTH_MAX)
    account_number: str = Field(min_length=8, max_length=40, repr=False)


class TerminalLineIn(BaseModel):
    """One model and how many of it the amended contract covers."""

    model_config = ConfigDict(extra="forbid")

    model_code: str = Field(min_length=1, max_length=32)
    count: int = Field(ge=1, le=limits.TERMINAL_LINE_COUNT_MAX)


class AmendmentIn(PlainTextInput):
    """A new version of a signed contract, effective from a date (never in the past)."""

    model_config = ConfigDict(extra="forbid")

    kind: AmendmentKind
    effective_from: dt.date
    fee_plan_code: str | None = Field(default=None, min_length=1, max_length=32)
    settlement_cycle: SettlementCycle | None = None
    settlement_account: SettlementAccountIn | None = None
    terminals: list[TerminalLineIn] | None = Field(
        default=None, max_length=limits.TERMINAL_LINES_MAX
    )
    """``terminal_change``: every model the amended contract covers and its count (the new
    totals; a model left out keeps its current count)."""
    summary: str = Field(default="", max_length=500)
    language: Literal["zh", "en"] | None = None


class SignIn(PlainTextInput):
    """The merchant's signature: their name, their consent, and the SHA-256 of the PDF
    they reviewed (the client computes it from the bytes it downloaded)."""

    model_config = ConfigDict(extra="forbid")

    signer_name: PersonName = Field(min_length=1, max_length=limits.SIGNER_NAME_LENGTH_MAX)
    agree: bool
    pdf_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class ContractOut(BaseModel):
    id: str
    contract_number: str
    version: int
    mid: str
    status: str
    amendment_kind: str | None
    change_summary: str | None
    fee_plan_code: str
    fee_plan_version: int
    settlement_cycle: str
    term_months: int
    effective_from: dt.date
    end_date: dt.date
    language: str
    account_number_masked: str
    pdf_sha256: str
    pdf_size_bytes: int
    pdf_url: str
    generated_at: dt.datetime
    merchant_signer_name: str | None
    merchant_signed_at: dt.datetime | None
    merchant_signed_ip: str | None
    countersigned_at: dt.datetime | None
    countersigned_by: str | None
    terms: dict[str, Any]


class VerifyOut(BaseModel):
    sha256: str
    matches: bool
    contract_number: str | None = None
    version: int | None = None
    status: str | None = None
    message: str
