"""Each real-time rule (poshub/risk/rules.py) on its own: a hit, no hit, the threshold's
edges, and the requests it does not look at. Pure functions: no database, no clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poshub.core.clock import SHANGHAI
from poshub.gateway.constants import Rc
from poshub.gateway.models import TxnKind
from poshub.gateway.risk import RiskContext
from poshub.risk import bins, rules, schemas
from poshub.risk.models import Channel
from poshub.risk.schemas import RULES, RuleCode
from poshub.simulators import issuer

NOON = dt.datetime(2026, 12, 4, 12, 0, tzinfo=SHANGHAI)


def context(**changes: Any) -> RiskContext:
    local = changes.pop("local", NOON)
    base = RiskContext(
        kind=TxnKind.SALE,
        tid="10000001",
        mid="898340154110001",
        amount_fen=10_000,
        pan_token="t" * 64,
        pan_masked="622588******6783",
        entry_mode="021",
        rrn="000000000001",
        received_at=local.astimezone(dt.UTC),
        channel=Channel.CREDIT.value,
        local=local,
    )
    return dataclasses.replace(base, **changes)


def test_every_gateway_rule_has_a_function_and_a_decline_code() -> None:
    in_gateway = {code for code, rule in RULES.items() if rule.in_gateway}
    assert in_gateway == set(rules.DECLINE_CODES)
    assert all(hasattr(rules, code.value) for code in in_gateway)
    assert rules.DECLINE_CODES[RuleCode.CARD_VELOCITY] == Rc.FREQUENCY_LIMIT
    assert rules.DECLINE_CODES[RuleCode.CARD_TESTING] == Rc.CARD_VERIFICATION
    assert rules.DECLINE_CODES[RuleCode.BLOCKED_CARD] == Rc.RESTRICTED_CARD


# --- Channels from the BIN ------------------------------------------------------------------
def test_the_simulators_credit_bins_are_credit_here_too() -> None:
    for prefix in issuer.CREDIT_BINS:
        assert bins.card_channel(prefix + "0123456789") == Channel.CREDIT
    assert bins.card_channel("6225880123456783") == Channel.CREDIT
    assert bins.card_channel("622588******6783") == Channel.CREDIT  # the masked form
    assert bins.card_channel("6222021234567890128") == Channel.DEBIT  # not in the table
    assert bins.card_channel(None) == Channel.DEBIT


def test_qr_and_what_acts_on_an_original_take_their_channel() -> None:
    assert bins.channel_of(TxnKind.QR_SALE, None, qr=True, original_channel=None) == Channel.QR
    assert bins.channel_of(TxnKind.REFUND, None, qr=True, original_channel=None) == Channel.QR
    assert (
        bins.channel_of(TxnKind.VOID, "6222021234567890128", qr=False, original_channel="qr")
        == Channel.QR
    )
    assert (
        bins.channel_of(TxnKind.SALE, "6222021234567890128", qr=False, original_channel=None)
        == Channel.DEBIT
    )
    # A channel the table does not know falls back to the card's.
    assert (
        bins.channel_of(TxnKind.VOID, "6225880123456783", qr=False, original_channel="bogus")
        == Channel.CREDIT
    )


# --- Velocity -------------------------------------------------------------------------------
def test_card_velocity_fires_above_max_count_only() -> None:
    params = schemas.CardVelocity(max_count=5, window_minutes=10)
    assert rules.card_velocity(context(), 5, params) is None
    hit = rules.card_velocity(context(), 6, params)
    assert hit is not None
    assert hit.detail == {"count": 6, "max_count": 5, "window_minutes": 10}
    assert hit.dedupe is not None
    assert "t" * 64 in hit.dedupe
    assert "2026120412" in hit.dedupe


def test_card_velocity_ignores_requests_without_a_card_or_not_payments() -> None:
    params = schemas.CardVelocity(max_count=1)
    assert rules.card_velocity(context(pan_token=None), 99, params) is None
    assert rules.card_velocity(context(kind=TxnKind.REFUND), 99, params) is None
    assert rules.card_velocity(context(kind=TxnKind.VOID), 99, params) is None
    assert rules.card_velocity(context(kind=TxnKind.PREAUTH), 2, params) is not None


def test_terminal_velocity_fires_above_max_count_for_qr_too() -> None:
    params = schemas.TerminalVelocity(max_count=30, window_minutes=5)
    qr = context(kind=TxnKind.QR_SALE, pan_token=None, channel="qr")
    assert rules.terminal_velocity(qr, 30, params) is None
    hit = rules.terminal_velocity(qr, 31, params)
    assert hit is not None
    assert hit.code == RuleCode.TERMINAL_VELOCITY
    assert hit.detail["count"] == 31


@given(count=st.integers(min_value=0, max_value=200), limit=st.integers(min_value=1, max_value=100))
def test_velocity_hits_exactly_when_the_count_passes_the_threshold(count: int, limit: int) -> None:
    params = schemas.CardVelocity(max_count=limit)
    assert (rules.card_velocity(context(), count, params) is not None) == (count > limit)


# --- Card testing ---------------------------------------------------------------------------
def test_card_testing_fires_at_max_declines_and_sets_a_cooldown() -> None:
    params = schemas.CardTesting(max_declines=5, window_minutes=10, cooldown_minutes=30)
    assert rules.card_testing(context(), 4, None, params) is None
    hit = rules.card_testing(context(), 5, None, params)
    assert hit is not None
    until = dt.datetime.fromisoformat(hit.detail["cooldown_until"])
    assert until == context().received_at + dt.timedelta(minutes=30)
    assert hit.detail["cooling"] is False


def test_card_testing_keeps_declining_during_the_cooldown_and_not_after() -> None:
    params = schemas.CardTesting()
    start = context().received_at
    until = start + dt.timedelta(minutes=30)
    during = context(received_at=start + dt.timedelta(minutes=29))
    hit = rules.card_testing(during, 0, until, params)
    assert hit is not None
    assert hit.detail["cooling"] is True
    after = context(received_at=until)
    assert rules.card_testing(after, 0, until, params) is None
    assert rules.card_testing(context(kind=TxnKind.REFUND), 99, None, params) is None


# --- Cash-out -------------------------------------------------------------------------------
def test_cashout_needs_min_signals_on_a_credit_card() -> None:
    params = schemas.Cashout()  # round ≥ 5,000 CNY in 1,000s; 23:00–06:00; 3 a day; 2 signs
    round_amount = context(amount_fen=800_000)
    assert rules.cashout(
        round_amount, same_card_today=1, per_transaction_limit_fen=None, params=params
    ) is None  # fmt: skip
    hit = rules.cashout(
        round_amount, same_card_today=3, per_transaction_limit_fen=None, params=params
    )
    assert hit is not None
    assert hit.detail["signals"] == ["round_amount", "same_card_repeated"]
    at_night = context(amount_fen=800_000, local=NOON.replace(hour=23, minute=30))
    night = rules.cashout(
        at_night, same_card_today=1, per_transaction_limit_fen=None, params=params
    )
    assert night is not None
    assert night.detail["signals"] == ["round_amount", "night"]
    debit = context(amount_fen=800_000, channel="debit")
    assert (
        rules.cashout(debit, same_card_today=9, per_transaction_limit_fen=None, params=params)
        is None
    )


@pytest.mark.parametrize(
    ("amount_fen", "signals"),
    [
        (499_900, []),  # below the round minimum, not a multiple
        (500_000, ["round_amount"]),  # the edge: 5,000 CNY exactly
        (500_001, []),
        (950_000, ["near_limit"]),  # 95 % of a 10,000 CNY limit
        (949_999, []),
        (1_000_000, ["round_amount", "near_limit"]),  # the limit itself
    ],
)
def test_cashout_signal_edges(amount_fen: int, signals: list[str]) -> None:
    found = rules.cashout_signals(
        context(amount_fen=amount_fen),
        same_card_today=1,
        per_transaction_limit_fen=1_000_000,
        params=schemas.Cashout(),
    )
    assert found == signals


@pytest.mark.parametrize(
    ("hour", "minute", "night"), [(22, 59, False), (23, 0, True), (5, 59, True), (6, 0, False)]
)
def test_cashout_night_wraps_midnight(hour: int, minute: int, night: bool) -> None:
    found = rules.cashout_signals(
        context(amount_fen=100, local=NOON.replace(hour=hour, minute=minute)),
        same_card_today=0,
        per_transaction_limit_fen=None,
        params=schemas.Cashout(),
    )
    assert ("night" in found) == night


# --- Business hours ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("opening", "closing", "at", "hit"),
    [
        ("09:00", "21:00", "12:00", False),
        ("09:00", "21:00", "08:30", False),  # within the 30 minutes' grace
        ("09:00", "21:00", "08:29", True),
        ("09:00", "21:00", "21:29", False),
        ("09:00", "21:00", "21:30", True),
        ("18:00", "02:00", "01:00", False),  # runs past midnight
        ("18:00", "02:00", "03:00", True),
        ("18:00", "02:00", "17:29", True),
        ("00:00", "00:00", "03:00", False),  # around the clock
        ("08:00", "07:30", "07:45", False),  # the grace closes the gap
    ],
)
def test_business_hours(opening: str, closing: str, at: str, hit: bool) -> None:
    local = NOON.replace(hour=int(at[:2]), minute=int(at[3:]))
    found = rules.business_hours(context(local=local), opening, closing, schemas.BusinessHours())
    assert (found is not None) == hit
    if found is not None:
        assert found.detail == {
            "local_time": at,
            "opening_time": opening,
            "closing_time": closing,
            "grace_minutes": 30,
        }


def test_business_hours_without_declared_hours_or_for_refunds_says_nothing() -> None:
    midnight = context(local=NOON.replace(hour=0))
    assert rules.business_hours(midnight, None, None, schemas.BusinessHours()) is None
    refund = context(kind=TxnKind.REFUND, local=NOON.replace(hour=0))
    assert rules.business_hours(refund, "09:00", "17:00", schemas.BusinessHours()) is None


# --- Ticket above norm ------------------------------------------------------------------------
def test_ticket_norms_come_from_the_shipped_table() -> None:
    norms = rules.ticket_norms()
    assert norms.norm_fen("5411") == 8_000  # supermarkets: the MCC's own
    assert norms.norm_fen("5399") == 30_000  # its range
    assert norms.norm_fen(None) == norms.default_fen


def test_ticket_above_norm_single_ticket_and_day_average() -> None:
    params = schemas.TicketAboveNorm(factor=10, average_factor=4, min_transactions=5)
    # One ticket of exactly ten times the norm is still within it.
    assert rules.ticket_above_norm(
        context(amount_fen=80_000), norm_fen=8_000, day_count=1, day_total_fen=80_000,
        params=params,
    ) is None  # fmt: skip
    single = rules.ticket_above_norm(
        context(amount_fen=80_001), norm_fen=8_000, day_count=1, day_total_fen=80_001,
        params=params,
    )  # fmt: skip
    assert single is not None
    assert single.detail["basis"] == "ticket"
    assert single.dedupe is None
    # Five payments averaging just over four times the norm.
    average = rules.ticket_above_norm(
        context(amount_fen=32_001), norm_fen=8_000, day_count=5, day_total_fen=160_005,
        params=params,
    )  # fmt: skip
    assert average is not None
    assert average.detail["basis"] == "average"
    assert average.dedupe == "ticket_above_norm:898340154110001:20261204"
    # The same average after four payments says nothing yet.
    assert rules.ticket_above_norm(
        context(amount_fen=32_001), norm_fen=8_000, day_count=4, day_total_fen=128_004,
        params=params,
    ) is None  # fmt: skip


# --- New merchant volume --------------------------------------------------------------------
def test_new_merchant_volume() -> None:
    params = schemas.NewMerchantVolume(new_days=90, factor=3)
    live = NOON.date() - dt.timedelta(days=10)
    assert rules.new_merchant_volume(
        context(), live_on=live, expected_monthly_fen=1_000_000, month_volume_fen=3_000_000,
        params=params,
    ) is None  # fmt: skip
    hit = rules.new_merchant_volume(
        context(), live_on=live, expected_monthly_fen=1_000_000, month_volume_fen=3_000_001,
        params=params,
    )  # fmt: skip
    assert hit is not None
    assert hit.detail["age_days"] == 10
    old = NOON.date() - dt.timedelta(days=90)
    assert rules.new_merchant_volume(
        context(), live_on=old, expected_monthly_fen=1_000_000, month_volume_fen=9_000_000,
        params=params,
    ) is None  # fmt: skip
    assert rules.new_merchant_volume(
        context(), live_on=None, expected_monthly_fen=1_000_000, month_volume_fen=9_000_000,
        params=params,
    ) is None  # fmt: skip


# --- Refund ratio ---------------------------------------------------------------------------
def test_refund_ratio() -> None:
    params = schemas.RefundRatio(max_percent=30, min_sales_fen=100_000)
    refund = context(kind=TxnKind.REFUND)
    assert rules.refund_ratio(
        refund, day_sales_fen=100_000, day_refunds_fen=30_000, params=params
    ) is None  # fmt: skip
    hit = rules.refund_ratio(refund, day_sales_fen=100_000, day_refunds_fen=30_001, params=params)
    assert hit is not None
    assert hit.detail["percent"] == 30.0
    assert hit.dedupe == "refund_ratio:898340154110001:20261204"
    # Too little sold for a ratio to mean anything; sales are not refunds.
    assert rules.refund_ratio(
        refund, day_sales_fen=99_999, day_refunds_fen=99_999, params=params
    ) is None  # fmt: skip
    assert rules.refund_ratio(
        context(), day_sales_fen=100_000, day_refunds_fen=90_000, params=params
    ) is None  # fmt: skip


@given(
    sales=st.integers(min_value=100_000, max_value=10**9),
    refunds=st.integers(min_value=0, max_value=10**9),
    percent=st.integers(min_value=1, max_value=1000),
)
def test_refund_ratio_matches_integer_percentages(sales: int, refunds: int, percent: int) -> None:
    params = schemas.RefundRatio(max_percent=percent, min_sales_fen=100_000)
    hit = rules.refund_ratio(
        context(kind=TxnKind.REFUND), day_sales_fen=sales, day_refunds_fen=refunds, params=params
    )
    assert (hit is not None) == (refunds * 100 > percent * sales)


# --- Blocked card -----------------------------------------------------------------------------
def test_blocked_card() -> None:
    params = schemas.BlockedCard()
    hit = rules.blocked_card(context(), True, params)
    assert hit is not None
    assert hit.detail == {"pan_masked": "622588******6783"}
    assert rules.blocked_card(context(), False, params) is None
    assert rules.blocked_card(context(kind=TxnKind.VOID), True, params) is None
    assert rules.blocked_card(context(kind=TxnKind.COMPLETION), True, params) is not None


def test_no_hit_detail_holds_a_card_number() -> None:
    pan = "6225880123456783"
    hits = [
        rules.blocked_card(context(), True, schemas.BlockedCard()),
        rules.card_velocity(context(), 99, schemas.CardVelocity()),
        rules.cashout(
            context(amount_fen=800_000), same_card_today=9, per_transaction_limit_fen=None,
            params=schemas.Cashout(),
        ),
    ]  # fmt: skip
    assert all(hit is not None and pan not in repr(hit) for hit in hits)
