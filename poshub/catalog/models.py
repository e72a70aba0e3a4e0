"""Terminal models and fee plans: the product catalogue (R1)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, Date, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from poshub.core.db import Base

RATE = Numeric(8, 6)


class TerminalKind(StrEnum):
    TRADITIONAL = "traditional"
    """Countertop or wireless terminal reading magstripe and chip (传统POS)."""
    SMART = "smart"
    """Android smart POS with touch screen and apps (智能POS)."""
    MOBILE = "mobile"
    """Pocket device paired with a phone (手机POS / mPOS)."""
    ESIGN = "esign"
    """Electronic-signature POS: the cardholder signs on screen (电签POS)."""


class TerminalModel(Base):
    __tablename__ = "terminal_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    """Stable code used in applications and the API, e.g. ``SMART-A8``."""
    kind: Mapped[str] = mapped_column(String(16))
    manufacturer: Mapped[str] = mapped_column(String(64))
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    description_zh: Mapped[str] = mapped_column(String(500))
    description_en: Mapped[str] = mapped_column(String(500))
    chip: Mapped[bool] = mapped_column(Boolean)
    contactless: Mapped[bool] = mapped_column(Boolean)
    magstripe: Mapped[bool] = mapped_column(Boolean)
    qr_scan: Mapped[bool] = mapped_column(Boolean)
    """Scans a customer's payment code (付款码)."""
    printer: Mapped[bool] = mapped_column(Boolean)
    multi_currency: Mapped[bool] = mapped_column(Boolean)
    connectivity: Mapped[str] = mapped_column(String(64))
    """Comma-separated links: ``4g,wifi,ethernet,bluetooth``."""
    price_fen: Mapped[int] = mapped_column(BigInteger)
    """List price of the device if bought outright."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class FeePlan(Base):
    """One version of a fee plan. A change is a new row with a later ``effective_from``;
    a version that has taken effect is never edited (R18)."""

    __tablename__ = "fee_plans"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    version: Mapped[int]
    effective_from: Mapped[dt.date] = mapped_column(Date)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    applicant_kinds: Mapped[str] = mapped_column(String(64))
    """Comma-separated applicant kinds the plan is offered to."""
    debit_rate: Mapped[Decimal] = mapped_column(RATE)
    """Debit-card fee as a fraction (0.005 = 0.5 %)."""
    debit_cap_fen: Mapped[int | None] = mapped_column(BigInteger)
    """Per-transaction cap on the debit-card fee; None for no cap."""
    credit_rate: Mapped[Decimal] = mapped_column(RATE)
    qr_rate: Mapped[Decimal] = mapped_column(RATE)
    d0_surcharge_rate: Mapped[Decimal] = mapped_column(RATE)
    """Added to the rate for same-day (D0) settlement."""
    deposit_fen: Mapped[int] = mapped_column(BigInteger)
    deposit_refund_volume_fen: Mapped[int | None] = mapped_column(BigInteger)
    """Cumulative volume that earns the deposit back, within ``deposit_refund_days``."""
    deposit_refund_days: Mapped[int | None]
    monthly_rent_fen: Mapped[int] = mapped_column(BigInteger)
    rent_waiver_volume_fen: Mapped[int | None] = mapped_column(BigInteger)
    """Monthly volume at or above which that month's rent is waived."""
    maintenance_fee_fen: Mapped[int] = mapped_column(BigInteger)
    """Yearly maintenance fee per terminal."""
