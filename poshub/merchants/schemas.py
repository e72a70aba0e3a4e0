"""Response bodies of the merchant API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from poshub.core import limits


class MerchantOut(BaseModel):
    id: int
    mid: str
    status: str
    applicant_kind: str
    legal_name: str
    business_name: str
    mcc: str
    region_code: str
    settlement_account_masked: str
    created_at: dt.datetime
    terminated_on: dt.date | None = None
    retained_until: dt.date | None = None
    """Last day the closed merchant's records are kept whole; purged after it."""
    purged_at: dt.datetime | None = None
    """When the personal data was anonymised (names read ``***``)."""


class MerchantCloseIn(BaseModel):
    """End the merchant relationship (staff)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    terminated_on: dt.date
    """The day the relationship ended (today or earlier); retention counts from it."""
    reason: Annotated[str, Field(min_length=2, max_length=limits.CLOSURE_REASON_LENGTH_MAX)]
