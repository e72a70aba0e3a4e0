"""Which terminal model and fee plan to propose, and why (R1): a pure function of the
applicant kind, the MCC and the expected volume, over the catalogue in force.

Rules, in order (documented in docs/contracts.md):

* terminal model — mobile trades (taxis, delivery, home services) get the electronic-
  signature terminal (wireless, no paper); an individual with a small volume gets the
  pocket mPOS (cheapest device, pairs with a phone); shops and restaurants get the smart
  POS (scans payment codes, prints receipts); everyone else the traditional countertop
  terminal (wired, robust, the cheapest per transaction at high volume);
* number of terminals — one per started ¥500,000 of monthly volume, within the limit
  for the applicant kind;
* fee plan — of the plans offered to the applicant kind, the one with the lowest
  estimated monthly cost (``catalog.fees.estimate_month``) at the expected volume.

Reasons are message ids with parameters, translated where they are shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from poshub.catalog.fees import MonthlyEstimate, estimate_month
from poshub.catalog.models import FeePlan, TerminalKind, TerminalModel
from poshub.core import limits
from poshub.core.errors import N_
from poshub.core.money import format_fen

MOBILE_TRADE_MCCS = frozenset(
    {"4121", "4111", "4131", "4214", "4215", "7349", "7299", "1520", "1711", "1731", "7623"}
)
"""Taxis, transport, courier and delivery, cleaning and home services, contractors."""

COUNTER_TRADE_MCCS = frozenset(
    {
        "5411", "5412", "5422", "5441", "5451", "5462", "5499", "5311", "5331", "5399",
        "5812", "5813", "5814", "5912", "5942", "5945", "5977", "5992", "5993", "5999",
        "5611", "5621", "5631", "5641", "5651", "5661", "5691", "5699", "5732", "7230",
    }
)  # fmt: skip
"""Supermarkets, food shops, restaurants, pharmacies, clothing, small retail, salons."""

SMALL_VOLUME_FEN = 5_000_000
"""¥50,000 a month: below this an individual is best served by a pocket device."""
VOLUME_PER_TERMINAL_FEN = 50_000_000
"""¥500,000 a month per terminal before a second one is proposed."""


@dataclass(frozen=True)
class Reason:
    message: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanOption:
    plan: FeePlan
    estimate: MonthlyEstimate


@dataclass(frozen=True)
class Recommendation:
    model: TerminalModel
    count: int
    plan: FeePlan
    estimate: MonthlyEstimate
    reasons: list[Reason]
    alternatives: list[PlanOption]
    """Every plan offered to the applicant kind, cheapest first (the chosen one included)."""


class NoPlanOffered(Exception):
    """No fee plan in force is offered to this applicant kind."""


def _kind_for(applicant_kind: str, mcc: str, volume_fen: int) -> tuple[TerminalKind, Reason]:
    if mcc in MOBILE_TRADE_MCCS:
        return TerminalKind.ESIGN, Reason(
            N_(
                "Your trade works on the move: a wireless electronic-signature terminal needs "
                "no paper and no fixed line."
            )
        )
    if applicant_kind == "individual" and volume_fen < SMALL_VOLUME_FEN:
        return TerminalKind.MOBILE, Reason(
            N_("At under {volume} a month, a pocket mPOS paired with your phone costs the least."),
            {"volume": format_fen(SMALL_VOLUME_FEN)},
        )
    if mcc in COUNTER_TRADE_MCCS:
        return TerminalKind.SMART, Reason(
            N_(
                "Shops and restaurants take many payment-code (QR) payments: the smart POS "
                "scans them and prints receipts."
            )
        )
    return TerminalKind.TRADITIONAL, Reason(
        N_("A countertop terminal on a wired line is the most robust at a fixed counter.")
    )


def recommend(
    *,
    applicant_kind: str,
    mcc: str,
    expected_monthly_volume_fen: int,
    models: Sequence[TerminalModel],
    plans: Sequence[FeePlan],
    terminals_max: int | None = None,
) -> Recommendation:
    """The proposal for one applicant. ``plans`` are the versions in force today."""
    kind, model_reason = _kind_for(applicant_kind, mcc, expected_monthly_volume_fen)
    candidates = [m for m in models if m.active and m.kind == kind] or [
        m for m in models if m.active
    ]
    if not candidates:
        raise NoPlanOffered("no active terminal model")
    model = min(candidates, key=lambda m: (m.price_fen, m.code))
    ceiling = terminals_max or limits.TERMINALS_PER_APPLICANT_MAX.get(applicant_kind, 1)
    count = max(1, min(ceiling, -(-expected_monthly_volume_fen // VOLUME_PER_TERMINAL_FEN)))
    offered = [p for p in plans if applicant_kind in p.applicant_kinds.split(",")]
    if not offered:
        raise NoPlanOffered(applicant_kind)
    options = sorted(
        (
            PlanOption(
                p,
                estimate_month(p, monthly_volume_fen=expected_monthly_volume_fen, terminals=count),
            )
            for p in offered
        ),
        key=lambda o: (o.estimate.total_fen, o.plan.deposit_fen, o.plan.code),
    )
    best = options[0]
    reasons = [model_reason]
    if count > 1:
        reasons.append(
            Reason(
                N_("{count} terminals: one for each {volume} of monthly volume."),
                {"count": str(count), "volume": format_fen(VOLUME_PER_TERMINAL_FEN)},
            )
        )
    reasons.append(
        Reason(
            N_(
                "The {plan} plan has the lowest estimated monthly cost at your volume: {total} "
                "(fees {fees}, rent {rent}, maintenance {maintenance})."
            ),
            {
                "plan": best.plan.code,
                "total": format_fen(best.estimate.total_fen),
                "fees": format_fen(best.estimate.transaction_fees_fen),
                "rent": format_fen(best.estimate.rent_fen),
                "maintenance": format_fen(best.estimate.maintenance_fen),
            },
        )
    )
    if best.estimate.rent_waived:
        reasons.append(Reason(N_("At this volume the monthly rent is waived.")))
    if best.estimate.deposit_fen:
        if best.estimate.deposit_refundable:
            reasons.append(
                Reason(
                    N_(
                        "The deposit of {deposit} comes back once your volume reaches {threshold} "
                        "within {days} days, which your expected volume does."
                    ),
                    {
                        "deposit": format_fen(best.estimate.deposit_fen),
                        "threshold": format_fen(best.plan.deposit_refund_volume_fen or 0),
                        "days": str(best.plan.deposit_refund_days or 0),
                    },
                )
            )
        else:
            reasons.append(
                Reason(
                    N_("A deposit of {deposit} is due and is not refunded at this volume."),
                    {"deposit": format_fen(best.estimate.deposit_fen)},
                )
            )
    reasons.append(
        Reason(
            N_(
                "Estimates assume 40% debit card, 30% credit card and 30% QR payments, "
                "¥200 per card payment, and T+1 settlement."
            )
        )
    )
    return Recommendation(model, count, best.plan, best.estimate, reasons, options)
