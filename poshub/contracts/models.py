"""Merchant contracts (R5, R18): generated from the approved application and a fee-plan
version, signed by the merchant from the tracking link, countersigned by staff.

A contract row is one *version*. Version 1 is the original agreement; an amendment (fee
change, settlement-account change) is a new row with the same ``contract_number``, the
next ``version`` and its own ``effective_from``. Once a version is signed its terms, its
PDF and its hash never change (``poshub.contracts.states`` refuses; the service never
writes them again); what was in force on a date is the latest signed version whose
``effective_from`` is on or before that date.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from poshub.core.db import Base


class ContractStatus(StrEnum):
    AWAITING_MERCHANT = "awaiting_merchant"
    """Generated; the merchant reviews and signs from the tracking link."""
    AWAITING_COUNTERSIGN = "awaiting_countersign"
    """Signed by the merchant; staff countersign (seal) it."""
    SIGNED = "signed"
    """Signed by both parties: immutable."""
    WITHDRAWN = "withdrawn"
    """Replaced before anyone signed it (e.g. a different plan was chosen)."""


class SettlementCycle(StrEnum):
    D0 = "D0"
    """Same-day settlement (当日到账), with the plan's D0 surcharge."""
    T1 = "T1"
    """Next Chinese working day (T+1)."""


class AmendmentKind(StrEnum):
    FEE_CHANGE = "fee_change"
    SETTLEMENT_ACCOUNT_CHANGE = "settlement_account_change"
    SETTLEMENT_CYCLE_CHANGE = "settlement_cycle_change"
    TERMINAL_CHANGE = "terminal_change"
    """A supplementary agreement (补充协议) raising the number of terminals or adding models:
    allocation follows the terminal lines of the version in effect."""


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        UniqueConstraint("contract_number", "version"),
        Index("ix_contracts_merchant_effective", "merchant_id", "effective_from"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    contract_number: Mapped[str] = mapped_column(String(32))
    version: Mapped[int]
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    amendment_kind: Mapped[str | None] = mapped_column(String(32))
    change_summary: Mapped[str | None] = mapped_column(String(500))
    fee_plan_id: Mapped[int] = mapped_column(ForeignKey("fee_plans.id"))
    """The exact fee-plan version the contract quotes."""
    settlement_cycle: Mapped[str] = mapped_column(String(4))
    term_months: Mapped[int]
    effective_from: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    language: Mapped[str] = mapped_column(String(8))
    bank_name: Mapped[str] = mapped_column(String(100))
    account_name: Mapped[str] = mapped_column(String(100))
    account_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    """The settlement account this version pays out to, encrypted (AES-GCM, key vault)."""
    account_number_masked: Mapped[str] = mapped_column(String(40))
    terms: Mapped[dict[str, Any]]
    """Snapshot of every rendered term (no clear account number): the HTML is re-rendered
    from it, so a later change to a plan or to the merchant never changes this contract."""
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the exact PDF bytes the merchant reviews and signs; the bytes are in the
    content-addressed store under this name."""
    pdf_size_bytes: Mapped[int] = mapped_column(BigInteger)
    generated_at: Mapped[dt.datetime]
    generated_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    merchant_signer_name: Mapped[str | None] = mapped_column(String(100))
    merchant_signed_at: Mapped[dt.datetime | None]
    merchant_signed_ip: Mapped[str | None] = mapped_column(String(64))
    merchant_signed_user_agent: Mapped[str | None] = mapped_column(String(300))
    merchant_signed_sha256: Mapped[str | None] = mapped_column(String(64))
    """The hash the merchant's client presented when signing (must equal ``pdf_sha256``)."""
    countersigned_at: Mapped[dt.datetime | None]
    countersigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    countersigned_ip: Mapped[str | None] = mapped_column(String(64))
    withdrawn_at: Mapped[dt.datetime | None]
    purged_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    """When the merchant's personal data was purged after its retention period: the signer,
    account holder and number, signing address and the personal terms are blanked and the
    PDF deleted (``poshub.privacy``); the only change a signed contract accepts (migration
    0013's trigger), and none after it."""
