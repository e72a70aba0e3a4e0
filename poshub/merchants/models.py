"""The merchant: what an approved application becomes, and what every later domain
(contracts, terminals, fieldwork, the gateway, settlement) reads."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from poshub.core.db import Base


class MerchantStatus(StrEnum):
    APPROVED = "approved"
    CONTRACTED = "contracted"
    PROVISIONING = "provisioning"
    LIVE = "live"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    mid: Mapped[str] = mapped_column(String(15), unique=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    applicant_kind: Mapped[str] = mapped_column(String(24))
    legal_name: Mapped[str] = mapped_column(String(100))
    business_name: Mapped[str] = mapped_column(String(100))
    id_number_token: Mapped[str] = mapped_column(String(64), index=True)
    uscc: Mapped[str | None] = mapped_column(String(18), index=True)
    mcc: Mapped[str] = mapped_column(String(4))
    region_code: Mapped[str] = mapped_column(String(6))
    mobile: Mapped[str] = mapped_column(String(11))
    bank_name: Mapped[str] = mapped_column(String(100))
    account_name: Mapped[str] = mapped_column(String(100))
    account_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    account_number_masked: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime]
    contracted_at: Mapped[dt.datetime | None]
    """When the first contract was signed by both parties."""
    live_at: Mapped[dt.datetime | None]
    """When the first terminal passed its acceptance test."""
    terminated_on: Mapped[dt.date | None] = mapped_column(Date, index=True)
    """Date the merchant relationship ended (closure); the retention period counts from it
    (poshub/privacy/retention.py)."""
    closed_at: Mapped[dt.datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closure_reason: Mapped[str | None] = mapped_column(String(500))
    purged_at: Mapped[dt.datetime | None]
    """When the purge job anonymised the merchant's personal data."""
    risk_grade: Mapped[str | None] = mapped_column(String(8))
    """The grade in force (poshub/risk/grading.py); its history is merchant_risk_grades."""
    opening_time: Mapped[str | None] = mapped_column(String(5))
    """Declared business hours, ``HH:MM`` Beijing time; NULL when none were declared.
    A closing time before the opening time means the business runs past midnight."""
    closing_time: Mapped[str | None] = mapped_column(String(5))
