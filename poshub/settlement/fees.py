"""Fee maths of clearing and settlement (issue 10): pure functions on integer fen.

Three fees meet on every transaction:

* the **merchant fee** (收单服务费 plus what the acquirer passes on), from the contract's
  frozen terms in force on the transaction date (:class:`FeeTerms`);
* the **issuer interchange** (发卡行服务费) and the **network fee** (网络服务费), set by
  the 2016 NDRC schedule (《关于完善银行卡刷卡手续费定价机制的通知》, 发改价格〔2016〕557号)
  and charged to the acquirer in the network's clearing file;
* what is left is the **acquirer's margin**, known per transaction.

Money is integer fen, rates are Decimal fractions (``Decimal("0.0055")`` is 0.55 %); no
float anywhere. Every fee is rounded once, half-up to the fen, per transaction
(``poshub.core.money.round_half_up_fen``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from poshub.catalog.fees import Channel, fee_on
from poshub.core.money import round_half_up_fen

__all__ = [
    "CREDIT_INTERCHANGE_RATE",
    "DEBIT_INTERCHANGE_CAP_FEN",
    "DEBIT_INTERCHANGE_RATE",
    "NETWORK_FEE_CAP_FEN",
    "NETWORK_FEE_RATE",
    "PUBLIC_WELFARE_MCCS",
    "CategoryRates",
    "Channel",
    "FeeBreakdown",
    "FeeTerms",
    "FeeTermsError",
    "MccCategory",
    "fee_breakdown",
    "interchange_fee_fen",
    "mcc_category",
    "merchant_fee_fen",
    "network_fee_fen",
    "terms_in_force",
]

# --- NDRC 2016 schedule (发改价格〔2016〕557号, in force since 6 September 2016) ----------

DEBIT_INTERCHANGE_RATE: Final = Decimal("0.0035")
"""发卡行服务费, debit cards: at most 0.35 % of the amount ..."""
DEBIT_INTERCHANGE_CAP_FEN: Final = 1300
"""... and at most ¥13 per transaction."""
CREDIT_INTERCHANGE_RATE: Final = Decimal("0.0045")
"""发卡行服务费, credit cards: at most 0.45 %, uncapped."""
NETWORK_FEE_RATE: Final = Decimal("0.000325")
"""网络服务费: at most 0.0325 %, charged separately to the acquirer and to the issuer ..."""
NETWORK_FEE_CAP_FEN: Final = 325
"""... and at most ¥3.25 per transaction and side, whatever the card."""

PUBLIC_WELFARE_MCCS: Final[frozenset[str]] = frozenset(
    {
        "8062",  # hospitals (非营利性医疗机构)
        "8211",  # elementary and secondary schools (教育机构)
        "8220",  # colleges and universities
        "8241",  # correspondence schools
        "8244",  # business and secretarial schools
        "8249",  # trade and vocational schools
        "8299",  # schools and educational services not elsewhere classified
        "8351",  # child care services (社会福利机构)
        "8398",  # charitable and social service organisations (慈善机构, 养老机构)
    }
)
"""Categories whose *non-profit* merchants have interchange and network fees waived in full.

发改价格〔2016〕557号 §2: "对非营利性医疗机构、教育机构、社会福利机构、养老机构、慈善机构
刷卡交易，实行发卡行服务费、网络服务费全额减免". The notice names institutions, not codes; this
is our mapping onto ISO 18245 codes, and a code alone does not prove non-profit status,
so :func:`mcc_category` also needs the onboarding check (registration as 事业单位 or
社会组织). Elderly care has no code of its own and is registered under 8398.

The notice's preferential rates for supermarkets, warehouse stores, utilities, fuel and
transport ticketing were a two-year transition (to September 2018) and are not applied.
"""


class MccCategory(StrEnum):
    """How a merchant's category prices its transactions."""

    STANDARD = "standard"
    PUBLIC_WELFARE = "public_welfare"
    """A non-profit under :data:`PUBLIC_WELFARE_MCCS`: no interchange, no network fee."""


def mcc_category(mcc: str, *, non_profit: bool) -> MccCategory:
    """The pricing category of a merchant: public welfare needs both the code and the
    merchant's verified non-profit status (a private hospital under 8062 pays in full)."""
    if non_profit and mcc in PUBLIC_WELFARE_MCCS:
        return MccCategory.PUBLIC_WELFARE
    return MccCategory.STANDARD


def _signed(amount_fen: int, fee_of_magnitude: int) -> int:
    """Fees of a credit line (refund, void) are returned: the fee of its magnitude, negated."""
    return -fee_of_magnitude if amount_fen < 0 else fee_of_magnitude


def interchange_fee_fen(
    channel: Channel, amount_fen: int, *, category: MccCategory = MccCategory.STANDARD
) -> int:
    """The issuer's fee on one transaction; QR (wallet) payments as debit cards, as the
    network's clearing file has them. A negative amount (refund) returns the fee."""
    if category is MccCategory.PUBLIC_WELFARE:
        return 0
    amount = abs(amount_fen)
    if channel is Channel.CREDIT:
        fee = round_half_up_fen(amount * CREDIT_INTERCHANGE_RATE)
    else:
        fee = min(round_half_up_fen(amount * DEBIT_INTERCHANGE_RATE), DEBIT_INTERCHANGE_CAP_FEN)
    return _signed(amount_fen, fee)


def network_fee_fen(amount_fen: int, *, category: MccCategory = MccCategory.STANDARD) -> int:
    """The network's fee on one side (the acquirer's) of one transaction."""
    if category is MccCategory.PUBLIC_WELFARE:
        return 0
    fee = min(round_half_up_fen(abs(amount_fen) * NETWORK_FEE_RATE), NETWORK_FEE_CAP_FEN)
    return _signed(amount_fen, fee)


# --- The contract's terms ---------------------------------------------------------------

FEE_TERMS_SCHEMA_VERSION: Final = 1

_RATE_KEYS: Final = ("debit_rate", "credit_rate", "qr_rate", "d0_surcharge_rate")
_KNOWN_FEE_KEYS: Final = frozenset({*_RATE_KEYS, "debit_cap_fen", "category_rates"})
"""Every fee key of a contract snapshot that the fee maths reads. A snapshot key that looks
like a transaction fee (``*_rate``, ``*_cap_fen``) and is not here is refused: a term the
maths would silently ignore is a fee charged wrongly."""


class FeeTermsError(ValueError):
    """A contract's terms cannot be read as fee terms; the message names the key."""


def _rate(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0 or value >= 1:
        raise ValueError("a rate is a fraction: at least 0 and below 1")
    return value


class CategoryRates(BaseModel):
    """A plan's own rates for one MCC category, replacing the standard ones."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    debit_rate: Decimal
    debit_cap_fen: int | None = Field(default=None, ge=0)
    credit_rate: Decimal
    qr_rate: Decimal

    _check_rates = field_validator("debit_rate", "credit_rate", "qr_rate")(_rate)


class FeeTerms(BaseModel):
    """The fee terms one contract version froze, typed and validated (schema version 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    schema_version: Literal[1] = FEE_TERMS_SCHEMA_VERSION
    contract_number: str = Field(min_length=1)
    contract_version: int = Field(ge=1)
    effective_from: dt.date
    plan_code: str = Field(min_length=1)
    plan_version: int = Field(ge=1)
    settlement_cycle: Literal["D0", "T1"]
    debit_rate: Decimal
    debit_cap_fen: int | None = Field(ge=0)
    credit_rate: Decimal
    qr_rate: Decimal
    d0_surcharge_rate: Decimal
    category_rates: Mapping[MccCategory, CategoryRates] = Field(default_factory=dict)
    """Per-category prices, when the plan has them; contracts store none today."""

    _check_rates = field_validator("debit_rate", "credit_rate", "qr_rate", "d0_surcharge_rate")(
        _rate
    )

    @classmethod
    def from_contract_terms(cls, terms: Mapping[str, Any]) -> FeeTerms:
        """Read the ``terms`` snapshot a contract version froze
        (``poshub.contracts.service``): rates are decimal strings, the cap fen or None."""
        unknown = sorted(
            key
            for key in terms
            if (key.endswith("_rate") or key.endswith("_cap_fen")) and key not in _KNOWN_FEE_KEYS
        )
        if unknown:
            raise FeeTermsError(
                f"contract terms carry fee keys the fee maths does not know: {unknown}"
            )
        required = (
            "contract_number",
            "version",
            "effective_from",
            "plan_code",
            "plan_version",
            "settlement_cycle",
            *_RATE_KEYS,
            "debit_cap_fen",
        )
        missing = [key for key in required if key not in terms]
        if missing:
            raise FeeTermsError(f"contract terms lack {missing}")
        try:
            rates = {key: Decimal(_text(terms[key], key)) for key in _RATE_KEYS}
            category_rates = {
                MccCategory(category): CategoryRates(
                    debit_rate=Decimal(_text(value["debit_rate"], "debit_rate")),
                    debit_cap_fen=value.get("debit_cap_fen"),
                    credit_rate=Decimal(_text(value["credit_rate"], "credit_rate")),
                    qr_rate=Decimal(_text(value["qr_rate"], "qr_rate")),
                )
                for category, value in (terms.get("category_rates") or {}).items()
            }
            return cls(
                contract_number=terms["contract_number"],
                contract_version=terms["version"],
                effective_from=dt.date.fromisoformat(
                    _text(terms["effective_from"], "effective_from")
                ),
                plan_code=terms["plan_code"],
                plan_version=terms["plan_version"],
                settlement_cycle=terms["settlement_cycle"],
                debit_cap_fen=terms["debit_cap_fen"],
                category_rates=category_rates,
                debit_rate=rates["debit_rate"],
                credit_rate=rates["credit_rate"],
                qr_rate=rates["qr_rate"],
                d0_surcharge_rate=rates["d0_surcharge_rate"],
            )
        except (InvalidOperation, KeyError, TypeError, ValidationError, ValueError) as exc:
            if isinstance(exc, FeeTermsError):
                raise
            raise FeeTermsError(f"contract terms are not valid fee terms: {exc}") from exc

    def rates_for(self, category: MccCategory) -> CategoryRates:
        """The channel rates and debit cap that price a merchant of ``category``."""
        own = self.category_rates.get(category)
        if own is not None:
            return own
        return CategoryRates(
            debit_rate=self.debit_rate,
            debit_cap_fen=self.debit_cap_fen,
            credit_rate=self.credit_rate,
            qr_rate=self.qr_rate,
        )


def _text(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise FeeTermsError(f"contract terms: {key} must be a string, not {value!r}")
    return value


def terms_in_force(versions: Iterable[FeeTerms], on_date: dt.date) -> FeeTerms:
    """The version in force on ``on_date``: the latest ``effective_from`` on or before it
    (an amendment on the same day wins by its higher contract version)."""
    candidates = [v for v in versions if v.effective_from <= on_date]
    if not candidates:
        raise LookupError(f"no contract version is in force on {on_date.isoformat()}")
    numbers = {v.contract_number for v in candidates}
    if len(numbers) > 1:
        raise ValueError(f"versions of different contracts: {sorted(numbers)}")
    return max(candidates, key=lambda v: (v.effective_from, v.contract_version))


# --- The merchant's fee and the margin ----------------------------------------------------


def merchant_fee_fen(
    terms: FeeTerms,
    channel: Channel,
    amount_fen: int,
    *,
    d0: bool,
    mcc_category: MccCategory = MccCategory.STANDARD,
) -> int:
    """The fee the merchant pays on one transaction, as the contract states it
    (:func:`poshub.catalog.fees.fee_on`, the one function quotes use too).

    The channel's rate is applied to the amount and, for a debit card, capped
    ("单笔手续费超过封顶的，按封顶收取"); the D0 surcharge is added on top ("在上述费率基础上
    加收": it pays for same-day funding, not for the card); the sum is rounded **once**,
    half-up to the fen.

    Worked example, credit at 0.60 % with the 0.03 % D0 surcharge, 80 fen (¥0.80):
    80 × 0.0060 + 80 × 0.0003 = 0.504 fen → **1 fen**. Rounding each part would give 0.48
    → 0 plus 0.024 → 0, so 0 fen: the contract prices one combined rate. A ¥5,000.00
    debit sale at 0.50 % capped at ¥20 with D0: min(2,500, 2,000) + 150 = **2,150 fen**.

    A refund (negative amount) costs the merchant no fee and returns none: the contract's
    refund clause says "原交易已收取的手续费不予退还" (``RefundPolicy.fee_refunded`` is
    False for every contract today). A void cancels the sale before settlement, so its
    sale is simply not charged; that is the caller's business, not this function's.
    """
    if amount_fen <= 0:
        return 0
    if d0 and terms.settlement_cycle != "D0":
        raise ValueError("the D0 surcharge applies only to a contract settled D0")
    rates = terms.rates_for(mcc_category)
    rate = {
        Channel.DEBIT: rates.debit_rate,
        Channel.CREDIT: rates.credit_rate,
        Channel.QR: rates.qr_rate,
    }[channel]
    return fee_on(
        amount_fen,
        rate,
        surcharge_rate=terms.d0_surcharge_rate if d0 else Decimal(0),
        cap_fen=rates.debit_cap_fen if channel is Channel.DEBIT else None,
    )


@dataclass(frozen=True, slots=True)
class FeeBreakdown:
    """One transaction's fees, signed like the amount (a refund's network fees are negative:
    the network returns them)."""

    merchant_fee_fen: int
    interchange_fee_fen: int
    network_fee_fen: int
    """The acquirer's side only; the issuer pays its own."""

    @property
    def acquirer_margin_fen(self) -> int:
        return self.merchant_fee_fen - self.interchange_fee_fen - self.network_fee_fen


def fee_breakdown(
    terms: FeeTerms,
    channel: Channel,
    amount_fen: int,
    *,
    d0: bool,
    mcc_category: MccCategory = MccCategory.STANDARD,
) -> FeeBreakdown:
    """Merchant fee, interchange, network fee and so the acquirer's margin of one
    transaction."""
    return FeeBreakdown(
        merchant_fee_fen=merchant_fee_fen(
            terms, channel, amount_fen, d0=d0, mcc_category=mcc_category
        ),
        interchange_fee_fen=interchange_fee_fen(channel, amount_fen, category=mcc_category),
        network_fee_fen=network_fee_fen(amount_fen, category=mcc_category),
    )
