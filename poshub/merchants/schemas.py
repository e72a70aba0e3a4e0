"""Response bodies of the merchant API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


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
