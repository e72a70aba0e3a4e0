from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict


class TerminalModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    kind: str
    manufacturer: str
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    chip: bool
    contactless: bool
    magstripe: bool
    qr_scan: bool
    printer: bool
    multi_currency: bool
    connectivity: str
    price_fen: int


class FeePlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    version: int
    effective_from: dt.date
    name_zh: str
    name_en: str
    applicant_kinds: str
    debit_rate: Decimal
    debit_cap_fen: int | None
    credit_rate: Decimal
    qr_rate: Decimal
    d0_surcharge_rate: Decimal
    deposit_fen: int
    deposit_refund_volume_fen: int | None
    deposit_refund_days: int | None
    monthly_rent_fen: int
    rent_waiver_volume_fen: int | None
    maintenance_fee_fen: int
