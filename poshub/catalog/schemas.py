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


class PlanEstimateOut(BaseModel):
    fee_plan_code: str
    fee_plan_version: int
    name: str
    monthly_total_fen: int
    transaction_fees_fen: int
    rent_fen: int
    maintenance_fen: int
    rent_waived: bool
    deposit_fen: int
    deposit_refundable: bool


class RecommendationOut(BaseModel):
    model_code: str
    model_name: str
    terminal_count: int
    fee_plan_code: str
    fee_plan_version: int
    fee_plan_name: str
    monthly_total_fen: int
    reasons: list[str]
    options: list[PlanEstimateOut]
