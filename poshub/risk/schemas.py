"""Risk control's typed values: every rule's thresholds (a pydantic model per rule, so
an edit with a bad threshold is a 422 naming the field), the catalogue of rules with
their defaults, limits and how the limit in force is found, and what each merchant risk
grade carries.

Pure: no database, no clock. The engine (poshub/risk/engine.py), rule management
(poshub/risk/controls.py) and the preview all read the same definitions.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from poshub.core import limits
from poshub.core.errors import N_, FieldError
from poshub.risk.models import Channel, RuleAction

Fen = Annotated[int, Field(ge=1, le=limits.AMOUNT_FEN_MAX)]
Count = Annotated[int, Field(ge=1, le=100_000)]
Minutes = Annotated[int, Field(ge=1, le=7 * 24 * 60)]
Percent = Annotated[int, Field(ge=1, le=1000)]
Factor = Annotated[float, Field(gt=0, le=1000)]
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def clock_minutes(text: str) -> int:
    """``HH:MM`` → minutes after midnight."""
    return int(text[:2]) * 60 + int(text[3:])


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CardVelocity(_Params):
    """One card used too often, at any merchant, within a window."""

    max_count: Count = 12
    """A cardholder at a till pays a few times in ten minutes; staff testing a terminal, a
    canteen card at several counters or a split bill a few more. Beyond a dozen it is a
    script running through a card's details."""
    window_minutes: Minutes = 10


class TerminalVelocity(_Params):
    """One terminal taking card or QR payments faster than a shop can serve people."""

    max_count: Count = 30
    window_minutes: Minutes = 5


class CardTesting(_Params):
    """Repeated declines on one terminal: someone trying card numbers (试卡)."""

    max_declines: Count = 5
    window_minutes: Minutes = 10
    cooldown_minutes: Minutes = 30
    """After a hit, the terminal's authorizations are declined for this long."""


class Cashout(_Params):
    """Cash-out (套现) signs on credit cards: round amounts, amounts just under a limit,
    late at night, the same card again and again at one merchant. ``min_signals`` of
    them together make a hit."""

    round_unit_fen: Fen = 100_000
    """An amount that is a multiple of this (1,000 CNY) counts as round."""
    round_min_fen: Fen = 500_000
    """Round amounts below this (5,000 CNY) are ordinary prices, not a sign."""
    near_limit_percent: Annotated[int, Field(ge=1, le=50)] = 5
    """Within this many percent below the card's per-transaction limit."""
    night_start: str = "23:00"
    night_end: str = "06:00"
    same_card_per_day: Count = 3
    """The same card at the same merchant this many times in a business day."""
    min_signals: Annotated[int, Field(ge=1, le=4)] = 2

    @field_validator("night_start", "night_end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError("a time of day HH:MM (00:00–23:59)")
        return value

    @field_validator("night_end")
    @classmethod
    def _night_has_length(cls, value: str, info: ValidationInfo) -> str:
        # Equal ends would be a night of no minutes or of the whole day: neither is meant.
        if value == info.data.get("night_start"):
            raise ValueError("the night cannot end when it starts")
        return value


class BusinessHours(_Params):
    """A payment outside the merchant's declared business hours."""

    grace_minutes: Annotated[int, Field(ge=0, le=240)] = 30


class TicketAboveNorm(_Params):
    """Tickets far above what the merchant's category (MCC) usually sees."""

    factor: Factor = 10.0
    """A single ticket above ``factor`` × the category's typical ticket."""
    average_factor: Factor = 4.0
    """The merchant's average ticket of the day above this × the typical ticket…"""
    min_transactions: Count = 5
    """…once the day has this many approved payments."""


class NewMerchantVolume(_Params):
    """A new merchant taking far more than it declared when it applied."""

    new_days: Annotated[int, Field(ge=1, le=730)] = 90
    factor: Factor = 3.0
    """Month-to-date volume above ``factor`` × the declared monthly volume."""


class RefundRatio(_Params):
    """Refunds out of proportion to sales at one merchant in one business day."""

    max_percent: Percent = 30
    min_sales_fen: Fen = 100_000
    """Below this much in sales (1,000 CNY) the ratio says nothing."""


class BlockedCard(_Params):
    """A card on the blocked list (a reported theft, a fraud case)."""


class Relocation(_Params):
    """A terminal's reported location far from where it was installed (移机)."""

    max_km: Annotated[float, Field(gt=0, le=5000)] = 5.0
    lock_terminal: bool = False
    """Also lock the terminal through the TMS when it moves."""


class RuleCode(StrEnum):
    CARD_VELOCITY = "card_velocity"
    TERMINAL_VELOCITY = "terminal_velocity"
    CARD_TESTING = "card_testing"
    CASHOUT = "cashout"
    BUSINESS_HOURS = "business_hours"
    TICKET_ABOVE_NORM = "ticket_above_norm"
    NEW_MERCHANT_VOLUME = "new_merchant_volume"
    REFUND_RATIO = "refund_ratio"
    BLOCKED_CARD = "blocked_card"
    RELOCATION = "relocation"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class RuleDefinition:
    code: RuleCode
    params: type[_Params]
    action: RuleAction
    """The default action."""
    actions: frozenset[RuleAction]
    """The actions this rule may be set to (a rule that looks at a day's refunds after
    the fact cannot decline the refund that tipped it, say)."""
    severity: Severity
    in_gateway: bool = True
    """False for rules that run outside the authorization (relocation: heartbeats)."""


_ALL_ACTIONS: Final = frozenset(RuleAction)

RULES: Final[dict[RuleCode, RuleDefinition]] = {
    d.code: d
    for d in (
        RuleDefinition(
            RuleCode.CARD_VELOCITY, CardVelocity, RuleAction.DECLINE, _ALL_ACTIONS, Severity.MEDIUM
        ),
        RuleDefinition(
            RuleCode.TERMINAL_VELOCITY,
            TerminalVelocity,
            RuleAction.ALERT,
            _ALL_ACTIONS,
            Severity.MEDIUM,
        ),
        RuleDefinition(
            RuleCode.CARD_TESTING, CardTesting, RuleAction.DECLINE, _ALL_ACTIONS, Severity.HIGH
        ),
        RuleDefinition(RuleCode.CASHOUT, Cashout, RuleAction.HOLD, _ALL_ACTIONS, Severity.HIGH),
        RuleDefinition(
            RuleCode.BUSINESS_HOURS, BusinessHours, RuleAction.ALERT, _ALL_ACTIONS, Severity.LOW
        ),
        RuleDefinition(
            RuleCode.TICKET_ABOVE_NORM,
            TicketAboveNorm,
            RuleAction.ALERT,
            _ALL_ACTIONS,
            Severity.MEDIUM,
        ),
        RuleDefinition(
            RuleCode.NEW_MERCHANT_VOLUME,
            NewMerchantVolume,
            RuleAction.ALERT,
            frozenset({RuleAction.ALERT, RuleAction.HOLD}),
            Severity.MEDIUM,
        ),
        RuleDefinition(
            RuleCode.REFUND_RATIO,
            RefundRatio,
            RuleAction.ALERT,
            frozenset({RuleAction.ALERT, RuleAction.HOLD}),
            Severity.MEDIUM,
        ),
        RuleDefinition(
            RuleCode.BLOCKED_CARD,
            BlockedCard,
            RuleAction.DECLINE,
            frozenset({RuleAction.DECLINE, RuleAction.ALERT}),
            Severity.HIGH,
        ),
        RuleDefinition(
            RuleCode.RELOCATION,
            Relocation,
            RuleAction.ALERT,
            frozenset({RuleAction.ALERT}),
            Severity.HIGH,
            in_gateway=False,
        ),
    )
}


RULE_LABELS: Final[dict[str, str]] = {
    RuleCode.CARD_VELOCITY: N_("Card used too often"),
    RuleCode.TERMINAL_VELOCITY: N_("Terminal too busy"),
    RuleCode.CARD_TESTING: N_("Card testing (repeated declines)"),
    RuleCode.CASHOUT: N_("Cash-out pattern"),
    RuleCode.BUSINESS_HOURS: N_("Outside business hours"),
    RuleCode.TICKET_ABOVE_NORM: N_("Ticket far above the category's norm"),
    RuleCode.NEW_MERCHANT_VOLUME: N_("New merchant above declared volume"),
    RuleCode.REFUND_RATIO: N_("Refund ratio too high"),
    RuleCode.BLOCKED_CARD: N_("Blocked card"),
    RuleCode.RELOCATION: N_("Terminal moved (relocation)"),
}
"""Each rule's name as staff read it (translated where shown: pages, the STR report)."""

EXTERNAL_LIST_ALERT: Final = "external_list"
"""``risk_alerts.rule_code`` of a live merchant found on an external risk list by the
daily check (poshub/risk/lists.py): not a rule of the engine, so not in ``RULES``."""
ALERT_CODE_LABELS: Final[dict[str, str]] = {
    **RULE_LABELS,
    EXTERNAL_LIST_ALERT: N_("External risk list hit"),
}
"""The name of every ``risk_alerts.rule_code``: the rules' and the external list's."""


@dataclass(frozen=True, slots=True)
class RuleSetting:
    """One rule as it runs: its version's switch, action and validated thresholds.
    Version 0 is the code's default (no version saved yet)."""

    code: RuleCode
    version: int
    enabled: bool
    action: RuleAction
    params: Any


def default_setting(code: RuleCode) -> RuleSetting:
    definition = RULES[code]
    return RuleSetting(code, 0, True, definition.action, definition.params())


def setting_from_row(
    code: str, version: int, enabled: bool, action: str, params: dict[str, Any]
) -> RuleSetting:
    """A saved version as it runs (raises ``KeyError``/``ValidationError`` for a row no
    longer valid: the caller falls back to the default and logs it)."""
    rule = RuleCode(code)
    definition = RULES[rule]
    return RuleSetting(
        rule, version, enabled, RuleAction(action), definition.params.model_validate(params)
    )


class RuleEdit(BaseModel):
    """A risk officer's change to one rule (a new version)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    action: RuleAction
    params: dict[str, Any]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class RulePreviewIn(BaseModel):
    """A setting tried before it is saved: how many alerts it would have raised over the
    last ``days`` of the journal. Nothing is saved."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    action: RuleAction
    params: dict[str, Any]
    days: Annotated[int, Field(ge=1, le=limits.RISK_PREVIEW_DAYS_MAX)] = (
        limits.RISK_PREVIEW_DAYS_DEFAULT
    )


# --- Limits (R14) ---------------------------------------------------------------------------


class LimitScope(StrEnum):
    DEFAULT = "default"
    MERCHANT = "merchant"
    TERMINAL = "terminal"


DEFAULT_SUBJECT: Final = "*"


@dataclass(frozen=True, slots=True)
class LimitValues:
    """One channel's limits at one level; None is "no limit here"."""

    per_transaction_fen: int | None = None
    per_day_fen: int | None = None
    per_month_fen: int | None = None
    per_card_per_day_fen: int | None = None


DEFAULT_LIMITS: Final[dict[Channel, LimitValues]] = {
    Channel.QR: LimitValues(
        per_transaction_fen=limits.RISK_QR_PER_TRANSACTION_FEN,
        per_day_fen=limits.RISK_QR_PER_DAY_FEN,
    ),
    Channel.DEBIT: LimitValues(),
    Channel.CREDIT: LimitValues(),
}
"""Before a risk officer sets any: the seeds' QR limits (10,000 CNY a payment, 100,000
CNY a day per merchant); cards are limited by their issuers."""


def _tighter(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def merchant_limits(
    default: LimitValues, merchant: LimitValues | None, grade_factor_percent: int = 100
) -> LimitValues:
    """The merchant level in force: the merchant's own limits where a risk officer set
    them (they may be higher or lower than the default: an approved decision), else the
    default scaled by the merchant's risk grade (a high-risk grade lowers them)."""

    def scaled(value: int | None) -> int | None:
        return None if value is None else value * grade_factor_percent // 100

    if merchant is None:
        return LimitValues(
            scaled(default.per_transaction_fen),
            scaled(default.per_day_fen),
            scaled(default.per_month_fen),
            scaled(default.per_card_per_day_fen),
        )
    return LimitValues(
        merchant.per_transaction_fen
        if merchant.per_transaction_fen is not None
        else scaled(default.per_transaction_fen),
        merchant.per_day_fen if merchant.per_day_fen is not None else scaled(default.per_day_fen),
        merchant.per_month_fen
        if merchant.per_month_fen is not None
        else scaled(default.per_month_fen),
        merchant.per_card_per_day_fen
        if merchant.per_card_per_day_fen is not None
        else scaled(default.per_card_per_day_fen),
    )


def terminal_limits(merchant: LimitValues, terminal: LimitValues | None) -> LimitValues:
    """A terminal's own limits can only tighten its merchant's: the per-transaction limit
    is the lower of the two; its daily and monthly totals are counted on their own (and
    the merchant's totals still apply)."""
    if terminal is None:
        return LimitValues(per_transaction_fen=merchant.per_transaction_fen)
    return LimitValues(
        per_transaction_fen=_tighter(merchant.per_transaction_fen, terminal.per_transaction_fen),
        per_day_fen=terminal.per_day_fen,
        per_month_fen=terminal.per_month_fen,
    )


def _below(wider: int | None, narrower: int | None) -> bool:
    return wider is not None and narrower is not None and wider < narrower


class LimitChangeIn(BaseModel):
    """A request to change one channel's limits at one level (a risk officer approves)."""

    model_config = ConfigDict(extra="forbid")

    scope: LimitScope
    subject: Annotated[str, Field(min_length=1, max_length=15)] = DEFAULT_SUBJECT
    """``*`` for the default, else the MID or TID."""
    channel: Channel
    per_transaction_fen: Annotated[int | None, Field(ge=1, le=limits.AMOUNT_FEN_MAX)] = None
    per_day_fen: Annotated[int | None, Field(ge=1, le=limits.AMOUNT_FEN_MAX)] = None
    per_month_fen: Annotated[int | None, Field(ge=1, le=limits.AMOUNT_FEN_MAX)] = None
    per_card_per_day_fen: Annotated[int | None, Field(ge=1, le=limits.AMOUNT_FEN_MAX)] = None
    reason: Annotated[str, Field(min_length=1, max_length=500)]

    def problems(self) -> list[FieldError]:
        """The rules between fields, each naming its field so that one 422 lists them all
        (a pydantic model validator could only name the whole body): each wider period
        allows at least what a narrower one does, the default's subject is ``*``, and a
        card's daily limit is set per merchant. ``poshub.risk.controls`` adds the checks
        that need the database (the MID or TID exists, a terminal stays under its
        merchant)."""
        found: list[FieldError] = []
        if _below(self.per_day_fen, self.per_transaction_fen):
            found.append(
                FieldError(
                    "per_day_fen",
                    "limit.below_per_transaction",
                    N_("The daily limit cannot be below the per-transaction limit."),
                )
            )
        if _below(self.per_month_fen, self.per_day_fen or self.per_transaction_fen):
            found.append(
                FieldError(
                    "per_month_fen",
                    "limit.below_narrower",
                    N_("The monthly limit cannot be below the daily or per-transaction limit."),
                )
            )
        if self.per_card_per_day_fen is not None:
            if self.scope == LimitScope.TERMINAL:
                found.append(
                    FieldError(
                        "per_card_per_day_fen",
                        "limit.card_per_merchant",
                        N_("A card's daily limit is set per merchant, not per terminal."),
                    )
                )
            elif _below(self.per_card_per_day_fen, self.per_transaction_fen):
                found.append(
                    FieldError(
                        "per_card_per_day_fen",
                        "limit.below_per_transaction",
                        N_("A card's daily limit cannot be below the per-transaction limit."),
                    )
                )
        if self.scope == LimitScope.DEFAULT and self.subject != DEFAULT_SUBJECT:
            found.append(
                FieldError(
                    "subject",
                    "limit.default_subject",
                    N_("The default limits apply to every merchant: their subject is *."),
                )
            )
        return found


# --- Merchant risk grades (特约商户风险评级) ------------------------------------------------


class Grade(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class GradeControls:
    """What a grade carries."""

    limit_percent: int
    """Default limits scaled to this percentage (a merchant's own limits are not)."""
    settlement_hold_days: int
    """Extra working days before money is paid out (0: the contract's cycle)."""
    review_months: int
    """How often a person reviews the merchant (on-site or documents)."""


GRADE_CONTROLS: Final[dict[Grade, GradeControls]] = {
    Grade.LOW: GradeControls(limit_percent=100, settlement_hold_days=0, review_months=12),
    Grade.MEDIUM: GradeControls(limit_percent=100, settlement_hold_days=0, review_months=6),
    Grade.HIGH: GradeControls(limit_percent=50, settlement_hold_days=1, review_months=3),
}


def grade_controls(grade: str | None) -> GradeControls:
    """Controls of a stored grade; an ungraded merchant is treated as medium."""
    try:
        return GRADE_CONTROLS[Grade(grade)] if grade else GRADE_CONTROLS[Grade.MEDIUM]
    except ValueError:
        return GRADE_CONTROLS[Grade.MEDIUM]


def business_date_bounds(day: dt.date) -> tuple[str, str]:
    """Counter period names of a business date: (day, month)."""
    return day.strftime("%Y%m%d"), day.strftime("%Y%m")
