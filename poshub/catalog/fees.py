"""Fee maths of a fee plan (R1, R18): pure functions on integer fen and Decimal rates.

One rounding rule (``poshub.core.money.round_half_up_fen``) applied once per transaction;
monthly estimates are sums of rounded parts, so what a merchant is quoted is what
settlement will charge for the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from poshub.catalog.models import FeePlan
from poshub.core.money import round_half_up_fen


class Channel(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"
    QR = "qr"


def fee_on(
    amount_fen: int,
    rate: Decimal,
    *,
    surcharge_rate: Decimal = Decimal(0),
    cap_fen: int | None = None,
) -> int:
    """The one fee rule every contract states: the amount times the card's rate, capped
    where the contract caps it ("单笔手续费超过封顶的，按封顶收取"), plus the amount times
    the D0 surcharge ("在上述费率基础上加收": it pays for same-day funding, not for the
    card, so it is not inside the cap), rounded half-up to the fen **once**. The
    catalogue's quotes and settlement (poshub/settlement/fees.py) both charge through this
    function, so a quote is what settlement takes.

    ¥5,000.00 debit at 0.50 % capped at ¥20 with a 0.03 % surcharge: min(2,500, 2,000) +
    150 = 2,150 fen. ¥0.80 credit at 0.60 % + 0.03 %: 0.48 + 0.024 = 0.504 → 1 fen (two
    roundings would give 0)."""
    card = Decimal(amount_fen) * rate
    if cap_fen is not None:
        card = min(card, Decimal(cap_fen))
    return round_half_up_fen(card + Decimal(amount_fen) * surcharge_rate)


def transaction_fee_fen(
    plan: FeePlan, channel: Channel, amount_fen: int, *, same_day: bool = False
) -> int:
    """The acquirer's fee on one transaction of ``plan`` (:func:`fee_on`; the debit cap
    applies to debit cards only)."""
    if amount_fen < 0:
        raise ValueError("amount must not be negative")
    rate = {
        Channel.DEBIT: plan.debit_rate,
        Channel.CREDIT: plan.credit_rate,
        Channel.QR: plan.qr_rate,
    }[channel]
    return fee_on(
        amount_fen,
        Decimal(rate),
        surcharge_rate=Decimal(plan.d0_surcharge_rate) if same_day else Decimal(0),
        cap_fen=plan.debit_cap_fen if channel == Channel.DEBIT else None,
    )


@dataclass(frozen=True)
class ChannelMix:
    """Share of monthly volume by channel, used for estimates only."""

    debit: Decimal = Decimal("0.40")
    credit: Decimal = Decimal("0.30")
    qr: Decimal = Decimal("0.30")

    def __post_init__(self) -> None:
        if self.debit + self.credit + self.qr != 1 or min(self.debit, self.credit, self.qr) < 0:
            raise ValueError("channel shares must be non-negative and add up to 1")


DEFAULT_MIX = ChannelMix()
"""A typical Chinese small-merchant mix; the recommendation says it assumed it."""


@dataclass(frozen=True)
class MonthlyEstimate:
    transaction_fees_fen: int
    rent_fen: int
    maintenance_fen: int
    """A twelfth of the yearly maintenance fee per terminal."""
    rent_waived: bool
    deposit_fen: int
    deposit_refundable: bool
    """Whether the expected volume reaches the refund threshold within the refund window."""

    @property
    def total_fen(self) -> int:
        return self.transaction_fees_fen + self.rent_fen + self.maintenance_fen


def estimate_month(
    plan: FeePlan,
    *,
    monthly_volume_fen: int,
    terminals: int = 1,
    average_ticket_fen: int = 20_000,
    mix: ChannelMix = DEFAULT_MIX,
    same_day: bool = False,
) -> MonthlyEstimate:
    """What one month costs the merchant under ``plan`` at the expected volume.

    The debit cap is per transaction, so the debit volume is priced as transactions of
    ``average_ticket_fen`` each.
    """
    if monthly_volume_fen < 0 or terminals < 1 or average_ticket_fen < 1:
        raise ValueError("volume must be >= 0, terminals >= 1, average ticket >= 1 fen")
    debit_volume = round_half_up_fen(Decimal(monthly_volume_fen) * mix.debit)
    count, remainder = divmod(debit_volume, average_ticket_fen)
    debit_fees = count * transaction_fee_fen(
        plan, Channel.DEBIT, average_ticket_fen, same_day=same_day
    ) + transaction_fee_fen(plan, Channel.DEBIT, remainder, same_day=same_day)
    credit_fees = transaction_fee_fen(
        plan,
        Channel.CREDIT,
        round_half_up_fen(Decimal(monthly_volume_fen) * mix.credit),
        same_day=same_day,
    )
    qr_fees = transaction_fee_fen(
        plan,
        Channel.QR,
        round_half_up_fen(Decimal(monthly_volume_fen) * mix.qr),
        same_day=same_day,
    )
    waived = (
        plan.rent_waiver_volume_fen is not None
        and monthly_volume_fen >= plan.rent_waiver_volume_fen
    )
    rent = 0 if waived else plan.monthly_rent_fen * terminals
    maintenance = round_half_up_fen(Decimal(plan.maintenance_fee_fen * terminals) / 12)
    refundable = False
    if plan.deposit_fen and plan.deposit_refund_volume_fen is not None and plan.deposit_refund_days:
        volume_in_window = Decimal(monthly_volume_fen) * plan.deposit_refund_days / 30
        refundable = volume_in_window >= plan.deposit_refund_volume_fen
    return MonthlyEstimate(
        transaction_fees_fen=debit_fees + credit_fees + qr_fees,
        rent_fen=rent,
        maintenance_fen=maintenance,
        rent_waived=waived,
        deposit_fen=plan.deposit_fen * terminals,
        deposit_refundable=refundable,
    )
