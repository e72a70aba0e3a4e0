"""The real-time rules (R19): one pure function per rule of ``schemas.RULES`` that runs in
the gateway.

Each takes the request (``RiskContext``, never a PAN), the counts and totals the engine
keeps for it (windows, daily and monthly figures — passed in, not looked up) and the
rule's thresholds, and returns a ``Hit`` with the values it saw, or None. No clock, no
database: the engine (poshub/risk/engine.py) and the preview (poshub/risk/preview.py)
call the same functions, so a preview counts exactly what the running rule would do.

Counts and totals include the request being decided, as if it went through.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final

from poshub.gateway.constants import Rc
from poshub.gateway.models import TxnKind
from poshub.gateway.risk import RiskContext
from poshub.risk import schemas
from poshub.risk.models import Channel
from poshub.risk.schemas import RuleCode

PAYMENT_KINDS: Final = frozenset({TxnKind.SALE, TxnKind.QR_SALE, TxnKind.PREAUTH})
"""What the payment rules look at, and what consumes limits: money the merchant asks for
now. A completion captures what its pre-authorization already reserved; voids, cancels
and refunds give money back."""

CARD_KINDS: Final = frozenset({TxnKind.SALE, TxnKind.PREAUTH, TxnKind.COMPLETION})
"""Requests that present a card the blocked list is checked against."""

REFUND_KINDS: Final = frozenset({TxnKind.REFUND})

DECLINE_CODES: Final[Mapping[RuleCode, Rc]] = {
    RuleCode.CARD_VELOCITY: Rc.FREQUENCY_LIMIT,
    RuleCode.TERMINAL_VELOCITY: Rc.FREQUENCY_LIMIT,
    RuleCode.CARD_TESTING: Rc.CARD_VERIFICATION,
    RuleCode.CASHOUT: Rc.CARD_VERIFICATION,
    RuleCode.BUSINESS_HOURS: Rc.NOT_PERMITTED_TERMINAL,
    RuleCode.TICKET_ABOVE_NORM: Rc.EXCEEDS_AMOUNT_LIMIT,
    RuleCode.NEW_MERCHANT_VOLUME: Rc.EXCEEDS_AMOUNT_LIMIT,
    RuleCode.REFUND_RATIO: Rc.INVALID_TRANSACTION,
    RuleCode.BLOCKED_CARD: Rc.RESTRICTED_CARD,
}
"""The response code a terminal gets when a rule set to ``decline`` fires: 65 for
frequency, 59 for suspected fraud (card testing, cash-out), 58 outside business hours,
61 for amounts, 62 for a blocked card."""


@dataclass(frozen=True, slots=True)
class Hit:
    code: RuleCode
    detail: dict[str, Any]
    """The values the rule saw (the alert's ``detail``)."""
    dedupe: str | None = None
    """Set when the rule raises one alert per subject and period, not one per request."""
    by_transaction: bool = field(default=True)
    """False when the hit is about the merchant's day or month rather than this payment
    alone (a ``hold`` then holds the transaction that tipped it all the same)."""


def _hour(context: RiskContext) -> str:
    at = context.local or context.received_at
    return f"{at.year:04d}{at.month:02d}{at.day:02d}{at.hour:02d}"


def _day(context: RiskContext) -> str:
    day = context.host_date
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _velocity(
    code: RuleCode, context: RiskContext, count: int, max_count: int, window_minutes: int, of: str
) -> Hit | None:
    if context.kind not in PAYMENT_KINDS or count <= max_count:
        return None
    return Hit(
        code,
        {"count": count, "max_count": max_count, "window_minutes": window_minutes},
        dedupe=f"{code.value}:{of}:{_hour(context)}",
    )


def card_velocity(context: RiskContext, count: int, params: schemas.CardVelocity) -> Hit | None:
    """``count``: this card's payments (at any merchant) within the window."""
    if context.pan_token is None:
        return None
    return _velocity(
        RuleCode.CARD_VELOCITY, context, count, params.max_count, params.window_minutes,
        context.pan_token,
    )  # fmt: skip


def terminal_velocity(
    context: RiskContext, count: int, params: schemas.TerminalVelocity
) -> Hit | None:
    """``count``: this terminal's payments within the window."""
    return _velocity(
        RuleCode.TERMINAL_VELOCITY, context, count, params.max_count, params.window_minutes,
        context.tid,
    )  # fmt: skip


def card_testing(
    context: RiskContext,
    declines: int,
    cooling_until: dt.datetime | None,
    params: schemas.CardTesting,
) -> Hit | None:
    """``declines``: the issuer's declines on this terminal within the window, before this
    request; ``cooling_until``: the end of the terminal's cooldown after an earlier hit."""
    if context.kind not in PAYMENT_KINDS:
        return None
    cooling = cooling_until is not None and context.received_at < cooling_until
    if not cooling and declines < params.max_declines:
        return None
    until = (
        cooling_until
        if cooling and cooling_until is not None
        else context.received_at + dt.timedelta(minutes=params.cooldown_minutes)
    )
    return Hit(
        RuleCode.CARD_TESTING,
        {
            "declines": declines,
            "max_declines": params.max_declines,
            "window_minutes": params.window_minutes,
            "cooldown_until": until.isoformat(),
            "cooling": cooling,
        },
        dedupe=f"card_testing:{context.tid}:{until:%Y%m%d%H%M}",
    )


MINUTES_PER_DAY: Final = 24 * 60
_clock: Final = functools.lru_cache(maxsize=256)(schemas.clock_minutes)
"""``HH:MM`` → minutes, parsed once per distinct setting."""


def _minutes_of_day(moment: dt.datetime) -> int:
    return moment.hour * 60 + moment.minute


def _within(minute: int, start: int, end: int) -> bool:
    """Whether ``minute`` lies in [start, end) on a 24-hour clock that may wrap."""
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end


def cashout_signals(
    context: RiskContext,
    *,
    same_card_today: int,
    per_transaction_limit_fen: int | None,
    params: schemas.Cashout,
) -> list[str]:
    """The cash-out signs one credit-card payment shows."""
    amount = context.amount_fen or 0
    signals: list[str] = []
    if amount >= params.round_min_fen and amount % params.round_unit_fen == 0:
        signals.append("round_amount")
    if per_transaction_limit_fen is not None and (
        amount * 100 >= per_transaction_limit_fen * (100 - params.near_limit_percent)
        and amount <= per_transaction_limit_fen
    ):
        signals.append("near_limit")
    local = context.local or context.received_at
    if _within(_minutes_of_day(local), _clock(params.night_start), _clock(params.night_end)):
        signals.append("night")
    if same_card_today >= params.same_card_per_day:
        signals.append("same_card_repeated")
    return signals


def cashout(
    context: RiskContext,
    *,
    same_card_today: int,
    per_transaction_limit_fen: int | None,
    params: schemas.Cashout,
) -> Hit | None:
    """Credit-card payments only. ``same_card_today``: this card's payments at this
    merchant in the business day; ``per_transaction_limit_fen``: the lowest single-payment
    limit in force for it (risk limit or terminal parameter)."""
    if context.kind not in PAYMENT_KINDS or context.channel != Channel.CREDIT:
        return None
    signals = cashout_signals(
        context,
        same_card_today=same_card_today,
        per_transaction_limit_fen=per_transaction_limit_fen,
        params=params,
    )
    if len(signals) < params.min_signals:
        return None
    return Hit(
        RuleCode.CASHOUT,
        {
            "signals": signals,
            "min_signals": params.min_signals,
            "amount_fen": context.amount_fen,
            "same_card_today": same_card_today,
            "per_transaction_limit_fen": per_transaction_limit_fen,
        },
    )


def business_hours(
    context: RiskContext,
    opening_time: str | None,
    closing_time: str | None,
    params: schemas.BusinessHours,
) -> Hit | None:
    """A payment outside the merchant's declared hours (Beijing time) and their grace.
    No declared hours: nothing to compare with. A closing time before the opening time
    means the business runs past midnight."""
    if context.kind not in PAYMENT_KINDS or not opening_time or not closing_time:
        return None
    opening = _clock(opening_time)
    closing = _clock(closing_time)
    if opening == closing:
        return None  # open around the clock
    grace = params.grace_minutes
    if (closing - opening) % MINUTES_PER_DAY + 2 * grace >= MINUTES_PER_DAY:
        return None  # the grace closes the gap
    start = (opening - grace) % MINUTES_PER_DAY
    end = (closing + grace) % MINUTES_PER_DAY
    local = context.local or context.received_at
    if _within(_minutes_of_day(local), start, end):
        return None
    return Hit(
        RuleCode.BUSINESS_HOURS,
        {
            "local_time": local.strftime("%H:%M"),
            "opening_time": opening_time,
            "closing_time": closing_time,
            "grace_minutes": grace,
        },
        dedupe=f"business_hours:{context.tid}:{_hour(context)}",
    )


@dataclass(frozen=True, slots=True)
class TicketNorms:
    default_fen: int
    by_mcc: Mapping[str, int]
    ranges: tuple[tuple[str, str, int], ...]

    def norm_fen(self, mcc: str | None) -> int:
        """The category's typical ticket: the MCC's own, else its range's, else the
        default."""
        if mcc:
            exact = self.by_mcc.get(mcc)
            if exact is not None:
                return exact
            for low, high, value in self.ranges:
                if low <= mcc <= high:
                    return value
        return self.default_fen


@functools.cache
def ticket_norms() -> TicketNorms:
    """The shipped table (poshub/risk/data/mcc_ticket_norms.json; its ``_basis`` says
    where the numbers come from)."""
    text = resources.files("poshub.risk").joinpath("data/mcc_ticket_norms.json").read_text()
    data = json.loads(text)
    return TicketNorms(
        default_fen=int(data["default_fen"]),
        by_mcc={str(k): int(v) for k, v in data["mcc"].items()},
        ranges=tuple((str(r[0]), str(r[1]), int(r[2])) for r in data["ranges"]),
    )


def ticket_above_norm(
    context: RiskContext,
    *,
    norm_fen: int,
    day_count: int,
    day_total_fen: int,
    params: schemas.TicketAboveNorm,
) -> Hit | None:
    """One ticket above ``factor`` × the category's norm, or the merchant's average ticket
    of the business day above ``average_factor`` × the norm once the day has
    ``min_transactions`` payments (``day_count``/``day_total_fen`` include this one)."""
    if context.kind not in PAYMENT_KINDS:
        return None
    amount = context.amount_fen or 0
    if amount > params.factor * norm_fen:
        return Hit(
            RuleCode.TICKET_ABOVE_NORM,
            {
                "amount_fen": amount,
                "norm_fen": norm_fen,
                "factor": params.factor,
                "basis": "ticket",
            },
        )
    if day_count >= params.min_transactions and day_total_fen > (
        params.average_factor * norm_fen * day_count
    ):
        return Hit(
            RuleCode.TICKET_ABOVE_NORM,
            {
                "average_fen": day_total_fen // day_count,
                "count": day_count,
                "norm_fen": norm_fen,
                "average_factor": params.average_factor,
                "basis": "average",
            },
            dedupe=f"ticket_above_norm:{context.mid}:{_day(context)}",
            by_transaction=False,
        )
    return None


def new_merchant_volume(
    context: RiskContext,
    *,
    live_on: dt.date | None,
    expected_monthly_fen: int | None,
    month_volume_fen: int,
    params: schemas.NewMerchantVolume,
) -> Hit | None:
    """A merchant live for fewer than ``new_days`` whose month-to-date volume
    (``month_volume_fen``, this payment included) is above ``factor`` × what it declared
    it would take in a month."""
    if context.kind not in PAYMENT_KINDS or live_on is None or not expected_monthly_fen:
        return None
    age_days = (context.host_date - live_on).days
    if age_days >= params.new_days:
        return None
    if month_volume_fen <= params.factor * expected_monthly_fen:
        return None
    return Hit(
        RuleCode.NEW_MERCHANT_VOLUME,
        {
            "month_volume_fen": month_volume_fen,
            "expected_monthly_fen": expected_monthly_fen,
            "factor": params.factor,
            "age_days": age_days,
            "new_days": params.new_days,
        },
        dedupe=f"new_merchant_volume:{context.mid}:{_day(context)}",
        by_transaction=False,
    )


def refund_ratio(
    context: RiskContext,
    *,
    day_sales_fen: int,
    day_refunds_fen: int,
    params: schemas.RefundRatio,
) -> Hit | None:
    """Refunds of the business day (this one included) above ``max_percent`` of the
    day's sales, once the sales reach ``min_sales_fen``."""
    if context.kind not in REFUND_KINDS:
        return None
    if day_sales_fen < params.min_sales_fen:
        return None
    if day_refunds_fen * 100 <= params.max_percent * day_sales_fen:
        return None
    return Hit(
        RuleCode.REFUND_RATIO,
        {
            "refunds_fen": day_refunds_fen,
            "sales_fen": day_sales_fen,
            "percent": round(day_refunds_fen * 100 / day_sales_fen, 1),
            "max_percent": params.max_percent,
        },
        dedupe=f"refund_ratio:{context.mid}:{_day(context)}",
        by_transaction=False,
    )


def blocked_card(context: RiskContext, blocked: bool, params: schemas.BlockedCard) -> Hit | None:
    """A card whose token is on the blocked list."""
    if context.kind not in CARD_KINDS or not blocked:
        return None
    return Hit(RuleCode.BLOCKED_CARD, {"pan_masked": context.pan_masked})
