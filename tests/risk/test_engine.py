"""The risk engine's decisions (poshub/risk/engine.py) fed requests directly, and the
journal operations it hands the gateway: what is declined with which code, what is
reserved, released, alerted and held. Then the journal's guarded writes on a real
database (SQLite and PostgreSQL): one reservation too many fails alone."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from poshub.core.clock import SHANGHAI
from poshub.core.db import Database
from poshub.gateway import repository as statements
from poshub.gateway.constants import Rc
from poshub.gateway.journal import Journal, LimitReached, Op
from poshub.gateway.models import TxnKind
from poshub.gateway.risk import RiskContext, RiskDecision
from poshub.risk import counters
from poshub.risk.engine import RiskEngine
from poshub.risk.models import RiskAlert, RiskCounter, RiskFreeze
from poshub.risk.repository import EngineSnapshot, MerchantProfile
from poshub.risk.schemas import RULES, RuleCode

MID = "898340154110001"
TID = "10000001"
TOKEN = "a" * 64
NOON = dt.datetime(2026, 12, 4, 12, 0, tzinfo=SHANGHAI)
TODAY = NOON.date()


def snapshot(
    *,
    rules: Iterable[tuple[str, int, bool, str, dict[str, Any]]] = (),
    limits: Iterable[tuple[str, str, str, tuple[int | None, ...]]] = (),
    frozen: Iterable[tuple[str, str]] = (),
    blocked: Iterable[str] = (),
    profiles: Iterable[MerchantProfile] | None = None,
    counter_rows: Iterable[tuple[str, int]] = (),
) -> EngineSnapshot:
    if profiles is None:
        profiles = [profile()]
    return EngineSnapshot(
        rules=list(rules),
        limits=list(limits),  # type: ignore[arg-type]
        frozen=list(frozen),
        blocked=list(blocked),
        profiles=list(profiles),
        counters=list(counter_rows),
    )


def profile(**changes: Any) -> MerchantProfile:
    base = MerchantProfile(
        mid=MID,
        mcc="5411",
        live_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        opening_time=None,
        closing_time=None,
        risk_grade=None,
        expected_monthly_fen=50_000_000,
    )
    return dataclasses.replace(base, **changes)


def rule(code: RuleCode, *, action: str | None = None, enabled: bool = True, **params: Any) -> Any:
    return (code.value, 1, enabled, action or RULES[code].action.value, params)


def engine(snap: EngineSnapshot | None = None) -> RiskEngine:
    found = RiskEngine(clock=lambda: NOON.astimezone(dt.UTC))
    found.install(snap or snapshot(), today=TODAY, full=True)
    return found


def context(**changes: Any) -> RiskContext:
    local = changes.pop("local", NOON)
    base = RiskContext(
        kind=TxnKind.SALE,
        tid=TID,
        mid=MID,
        amount_fen=1_000,
        pan_token=TOKEN,
        pan_masked="622202*********0128",
        entry_mode="021",
        rrn="000000000001",
        received_at=local.astimezone(dt.UTC),
        channel="debit",
        local=local,
    )
    return dataclasses.replace(base, **changes)


def statements_of(ops: Iterable[Op]) -> list[str]:
    return [op.statement for op in ops]


# --- Freezes and blocked cards ----------------------------------------------------------------
def test_a_merchant_or_terminal_freeze_declines_58_until_released() -> None:
    risk = engine(snapshot(frozen=[("merchant", MID)]))
    decision = risk.before_forward(context())
    assert (decision.allow, decision.response_code) == (False, Rc.NOT_PERMITTED_TERMINAL)
    assert risk.before_forward(context(kind=TxnKind.REFUND)).allow is False
    # A void reduces what the merchant is owed: it still goes through.
    assert risk.before_forward(context(kind=TxnKind.VOID)).allow is True
    risk.install(snapshot(frozen=[("terminal", TID)]), today=TODAY, full=False)
    assert risk.before_forward(context()).response_code == Rc.NOT_PERMITTED_TERMINAL
    assert risk.before_forward(context(tid="10000002")).allow is True
    risk.install(snapshot(), today=TODAY, full=False)  # released
    assert risk.before_forward(context()).allow is True


def test_a_blocked_card_is_declined_62_with_an_alert_and_never_its_pan() -> None:
    risk = engine(snapshot(blocked=[TOKEN]))
    decision = risk.before_forward(context())
    assert (decision.allow, decision.response_code) == (False, Rc.RESTRICTED_CARD)
    (alert,) = decision.ops
    assert alert.statement == statements.INSERT_ALERT
    assert alert.params["rule_code"] == "blocked_card"
    assert alert.params["action"] == "decline"
    assert alert.params["detail"] == {"pan_masked": "622202*********0128"}
    assert risk.before_forward(context(pan_token="b" * 64)).allow is True


def test_a_blocked_card_set_to_alert_goes_through_and_alerts_once_approved() -> None:
    risk = engine(snapshot(blocked=[TOKEN], rules=[rule(RuleCode.BLOCKED_CARD, action="alert")]))
    decision = risk.before_forward(context())
    assert decision.allow is True
    assert statements.INSERT_ALERT not in statements_of(decision.ops)
    assert statements.INSERT_ALERT in statements_of(risk.finish(context(), decision, "00", True))
    declined = risk.before_forward(context(rrn="000000000002"))
    assert statements.INSERT_ALERT not in statements_of(
        risk.finish(context(rrn="000000000002"), declined, "51", False)
    )


# --- Velocity and card testing ----------------------------------------------------------------
def test_card_velocity_declines_65_after_max_count_in_the_window() -> None:
    risk = engine(snapshot(rules=[rule(RuleCode.CARD_VELOCITY, max_count=3, window_minutes=10)]))
    at = [NOON + dt.timedelta(minutes=m) for m in (0, 1, 2, 3)]
    codes = [risk.before_forward(context(local=t)).response_code for t in at]
    assert codes == [Rc.APPROVED, Rc.APPROVED, Rc.APPROVED, Rc.FREQUENCY_LIMIT]
    # Declined attempts count too; once two have left the window there is room again.
    later = risk.before_forward(context(local=NOON + dt.timedelta(minutes=11, seconds=1)))
    assert later.allow is True
    # Another card is not affected.
    assert risk.before_forward(context(pan_token="c" * 64)).allow is True


def test_terminal_velocity_alerts_by_default_and_declines_when_set_to() -> None:
    risk = engine(snapshot(rules=[rule(RuleCode.TERMINAL_VELOCITY, max_count=2)]))
    decisions = [
        risk.before_forward(context(pan_token=f"{i:064d}", rrn=f"{i:012d}")) for i in range(3)
    ]
    assert all(d.allow for d in decisions)
    last = decisions[-1]
    ops = risk.finish(context(rrn="000000000002"), last, "00", True)
    (alert,) = [op for op in ops if op.statement == statements.INSERT_ALERT]
    assert alert.params["rule_code"] == "terminal_velocity"
    assert alert.params["detail"]["count"] == 3
    strict = engine(
        snapshot(rules=[rule(RuleCode.TERMINAL_VELOCITY, action="decline", max_count=2)])
    )
    codes = [strict.before_forward(context(pan_token=f"{i:064d}")).response_code for i in range(3)]
    assert codes[-1] == Rc.FREQUENCY_LIMIT


def test_card_testing_declines_59_after_issuer_declines_and_cools_down() -> None:
    risk = engine(
        snapshot(
            rules=[
                rule(RuleCode.CARD_TESTING, max_declines=3, window_minutes=10, cooldown_minutes=30)
            ]
        )
    )
    for minute in range(3):
        ctx = context(pan_token=f"{minute:064d}", local=NOON + dt.timedelta(minutes=minute))
        decision = risk.before_forward(ctx)
        assert decision.allow
        risk.finish(ctx, decision, "14", False)  # the issuer: no such card
    hit = risk.before_forward(context(local=NOON + dt.timedelta(minutes=3)))
    assert hit.response_code == Rc.CARD_VERIFICATION
    (alert,) = hit.ops
    assert alert.params["detail"]["declines"] == 3
    # Cooling down: declined even with a good card, and the alert is not raised again.
    cooling = risk.before_forward(context(local=NOON + dt.timedelta(minutes=20)))
    assert cooling.response_code == Rc.CARD_VERIFICATION
    assert cooling.ops == ()
    # After the cooldown, the old declines are out of the window too.
    assert risk.before_forward(context(local=NOON + dt.timedelta(minutes=34))).allow


def test_timeouts_and_our_own_declines_are_not_card_testing() -> None:
    risk = engine(snapshot(rules=[rule(RuleCode.CARD_TESTING, max_declines=2)]))
    for code in ("98", "92", "96"):
        ctx = context(pan_token=code * 32)
        risk.finish(ctx, risk.before_forward(ctx), code, False)
    assert risk.before_forward(context()).allow


# --- Cash-out, hours, tickets, new merchants, refunds --------------------------------------
def test_cashout_holds_the_transaction_settlement_by_default() -> None:
    risk = engine(snapshot(profiles=[profile(mcc="5944")]))  # jewellery: big tickets are normal
    credit = context(channel="credit", amount_fen=800_000, local=NOON.replace(hour=23, minute=10))
    decision = risk.before_forward(credit)
    assert decision.allow is True
    ops = risk.finish(credit, decision, "00", True)
    assert statements_of(ops) == [statements.INSERT_ALERT, statements.INSERT_HOLD]
    alert, hold = ops
    assert alert.params["action"] == "hold"
    assert sorted(alert.params["detail"]["signals"]) == ["night", "round_amount"]
    assert hold.params | {"created_at": None} == {
        "scope": "transaction",
        "subject": credit.rrn,
        "mid": MID,
        "blocks_authorization": False,
        "holds_settlement": True,
        "reason": "rule cashout (version 0) set to hold",
        "created_by": "risk-engine",
        "created_at": None,
    }
    # Not a credit card: no cash-out signs counted.
    debit = dataclasses.replace(credit, channel="debit")
    assert risk.finish(debit, risk.before_forward(debit), "00", True) == []


def test_business_hours_decline_58_when_set_to_decline() -> None:
    risk = engine(
        snapshot(
            profiles=[profile(opening_time="09:00", closing_time="17:00")],
            rules=[rule(RuleCode.BUSINESS_HOURS, action="decline")],
        )
    )
    assert risk.before_forward(context()).allow
    late = risk.before_forward(context(local=NOON.replace(hour=20)))
    assert late.response_code == Rc.NOT_PERMITTED_TERMINAL
    assert late.ops[0].params["detail"]["local_time"] == "20:00"


def test_ticket_above_norm_alerts_on_one_ticket_and_once_a_day_on_the_average() -> None:
    risk = engine(snapshot(rules=[rule(RuleCode.TICKET_ABOVE_NORM, min_transactions=3)]))
    big = context(amount_fen=80_001)  # 5411: typical ticket 80 CNY, ten times is 800
    decision = risk.before_forward(big)
    (alert,) = risk.finish(big, decision, "00", True)
    assert alert.params["detail"]["basis"] == "ticket"
    raised = []
    for i in range(4):
        ctx = context(amount_fen=40_000, rrn=f"{i + 10:012d}", pan_token=f"{i:064d}")
        raised += risk.finish(ctx, risk.before_forward(ctx), "00", True)
    averages = [op for op in raised if op.params["detail"].get("basis") == "average"]
    assert len(averages) == 1  # once per merchant and day


def test_new_merchant_volume_alerts_when_the_month_passes_three_times_the_declared() -> None:
    month_key = counters.merchant_keys(MID, "debit", TODAY)[1]
    young = profile(live_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC), expected_monthly_fen=100_000)
    risk = engine(snapshot(profiles=[young], counter_rows=[(month_key, 299_000)]))
    quiet = context(amount_fen=1_000)
    assert risk.finish(quiet, risk.before_forward(quiet), "00", True) == []
    loud = context(amount_fen=1_001, rrn="000000000009")
    (alert,) = risk.finish(loud, risk.before_forward(loud), "00", True)
    assert alert.params["rule_code"] == "new_merchant_volume"
    assert alert.params["detail"]["month_volume_fen"] == 300_001


def test_refund_ratio_alerts_once_the_days_refunds_pass_the_share_of_sales() -> None:
    risk = engine()
    sale = context(amount_fen=200_000)
    risk.finish(sale, risk.before_forward(sale), "00", True)
    small = context(kind=TxnKind.REFUND, amount_fen=60_000, rrn="000000000002")
    assert risk.finish(small, risk.before_forward(small), "00", True) == []
    tipping = context(kind=TxnKind.REFUND, amount_fen=1, rrn="000000000003")
    (alert,) = risk.finish(tipping, risk.before_forward(tipping), "00", True)
    assert alert.params["detail"]["refunds_fen"] == 60_001
    again = context(kind=TxnKind.REFUND, amount_fen=1, rrn="000000000004")
    assert risk.finish(again, risk.before_forward(again), "00", True) == []  # once a day


def test_a_rule_switched_off_does_not_fire() -> None:
    risk = engine(snapshot(blocked=[TOKEN], rules=[rule(RuleCode.BLOCKED_CARD, enabled=False)]))
    assert risk.before_forward(context()).allow


def test_an_invalid_saved_rule_falls_back_to_the_default() -> None:
    risk = engine(snapshot(rules=[("card_velocity", 3, True, "decline", {"max_count": -1})]))
    assert risk.settings[RuleCode.CARD_VELOCITY].version == 0


# --- Limits ---------------------------------------------------------------------------------
def test_qr_limits_per_payment_and_per_day_by_default() -> None:
    risk = engine()
    qr = context(kind=TxnKind.QR_SALE, channel="qr", pan_token=None)
    over = risk.before_forward(dataclasses.replace(qr, amount_fen=1_000_001))
    assert (over.allow, over.response_code, over.reason) == (
        False,
        Rc.EXCEEDS_AMOUNT_LIMIT,
        "limit:per_transaction",
    )
    at_limit = risk.before_forward(dataclasses.replace(qr, amount_fen=1_000_000))
    assert at_limit.allow
    reserve, count_month = at_limit.ops
    assert reserve.guarded is True
    assert reserve.params == {
        "key": f"m:{MID}:qr:d:20261204",
        "amount_fen": 1_000_000,
        "count": 1,
        "expires_on": TODAY,
        "limit_fen": 10_000_000,
    }
    assert (count_month.statement, count_month.guarded) == (statements.ADD_COUNTER, False)
    assert count_month.params["expires_on"] == dt.date(2026, 12, 31)


def test_the_known_day_total_declines_early() -> None:
    day_key = counters.merchant_keys(MID, "qr", TODAY)[0]
    risk = engine(snapshot(counter_rows=[(day_key, 9_500_000)]))
    qr = context(kind=TxnKind.QR_SALE, channel="qr", pan_token=None)
    assert risk.before_forward(dataclasses.replace(qr, amount_fen=500_000)).allow
    late = risk.before_forward(dataclasses.replace(qr, amount_fen=500_001))
    assert late.reason == "limit:merchant_day"


def test_merchant_terminal_and_card_limits_and_the_grade() -> None:
    limits = [
        ("merchant", MID, "debit", (50_000, 100_000, 1_000_000, 60_000)),
        ("terminal", TID, "debit", (40_000, 80_000, 500_000, None)),
    ]
    risk = engine(snapshot(limits=limits))
    assert risk.before_forward(context(amount_fen=40_001)).reason == "limit:per_transaction"
    decision = risk.before_forward(context(amount_fen=40_000))
    keys = {op.params["key"]: op.params.get("limit_fen") for op in decision.ops}
    assert keys == {
        f"m:{MID}:debit:d:20261204": 100_000,
        f"m:{MID}:debit:m:202612": 1_000_000,
        f"t:{TID}:debit:d:20261204": 80_000,
        f"t:{TID}:debit:m:202612": 500_000,
        f"c:{MID}:{TOKEN}:d:20261204": 60_000,
    }
    # A high-risk grade halves the default limits (not a merchant's own).
    high = engine(snapshot(profiles=[profile(risk_grade="high")]))
    qr = context(kind=TxnKind.QR_SALE, channel="qr", pan_token=None, amount_fen=500_001)
    assert high.before_forward(qr).reason == "limit:per_transaction"


def test_a_declined_reservation_is_released_and_an_approved_void_gives_back_the_sale() -> None:
    risk = engine()
    qr = context(kind=TxnKind.QR_SALE, channel="qr", pan_token=None, amount_fen=5_000)
    decision = risk.before_forward(qr)
    released = risk.finish(qr, decision, "51", False)
    assert {op.params["b_key"] for op in released} == {
        f"m:{MID}:qr:d:20261204",
        f"m:{MID}:qr:m:202612",
    }
    assert all(op.params["delta_fen"] == 5_000 for op in released)
    assert risk.finish(qr, risk.before_forward(qr), "00", True) == []
    void = context(
        kind=TxnKind.VOID,
        channel="qr",
        pan_token=None,
        amount_fen=5_000,
        original_amount_fen=5_000,
        original_host_date=TODAY,
        original_tid=TID,
    )
    assert risk.before_forward(void).allow
    given_back = risk.finish(void, RiskDecision(True), "00", True)
    assert {op.params["b_key"] for op in given_back} >= {
        f"m:{MID}:qr:d:20261204",
        f"m:{MID}:qr:m:202612",
    }


def test_reversals_release_a_payment_and_retake_a_voided_one() -> None:
    risk = engine()
    sale = SimpleNamespace(
        kind="sale", status="approved", amount_fen=7_000, mid=MID, tid=TID, channel="debit",
        pan_token=TOKEN, host_date=TODAY,
    )  # fmt: skip
    ops = risk.undone(sale, None)
    assert {op.statement for op in ops} == {statements.RELEASE_COUNTER}
    assert f"c:{MID}:{TOKEN}:d:20261204" in {op.params["b_key"] for op in ops}
    void = SimpleNamespace(
        kind="void", status="approved", amount_fen=7_000, mid=MID, tid=TID, channel="debit",
        pan_token=TOKEN, host_date=TODAY,
    )  # fmt: skip
    retaken = risk.undone(void, sale)
    assert {op.statement for op in retaken} == {statements.ADD_COUNTER}
    assert all(op.params["amount_fen"] == 7_000 for op in retaken)
    declined = SimpleNamespace(**(vars(sale) | {"status": "declined"}))
    assert risk.undone(declined, None) == []


def test_a_race_lost_in_the_database_asks_for_a_fresh_read() -> None:
    risk = engine()
    qr = context(kind=TxnKind.QR_SALE, channel="qr", pan_token=None, amount_fen=5_000)
    decision = risk.before_forward(qr)
    risk.limit_reached(qr, decision)
    assert risk.stats.limit_races == 1
    assert f"m:{MID}:qr:d:20261204" in risk.counters.watched()


# --- Restart: windows from the journal -----------------------------------------------------
def test_windows_and_the_days_figures_rebuild_from_journal_rows() -> None:
    risk = engine(snapshot(rules=[rule(RuleCode.CARD_VELOCITY, max_count=2)]))
    rows = [
        SimpleNamespace(
            kind="sale",
            tid=TID,
            mid=MID,
            pan_token=TOKEN,
            amount_fen=1_000,
            response_code="00",
            status="approved",
            upstream="answered",
            host_date=TODAY,
            received_at=(NOON - dt.timedelta(minutes=2 - i)).astimezone(dt.UTC),
        )
        for i in range(2)
    ]
    risk.replay(rows, today=TODAY)
    assert risk.before_forward(context()).response_code == Rc.FREQUENCY_LIMIT


# --- The journal's guarded writes on a real database ---------------------------------------
def _reserve(key: str, amount: int, limit: int) -> Op:
    return counters.reserve_ops([counters.Slot(key, limit, TODAY, "merchant_day")], amount)[0]


def _write_all(database: Database, requests: list[list[Op]]) -> list[BaseException | None]:
    async def main() -> list[BaseException | None]:
        journal = Journal(database)
        journal.start(asyncio.get_running_loop())
        try:
            futures = [journal.submit(ops) for ops in requests]
            results = await asyncio.gather(*futures, return_exceptions=True)
        finally:
            await asyncio.get_running_loop().run_in_executor(None, journal.stop)
        return [r if isinstance(r, BaseException) else None for r in results]

    return asyncio.run(main())


def test_one_reservation_too_many_fails_alone(database: Database) -> None:
    key = f"m:{MID}:qr:d:20261204"
    alert = Op(
        statements.INSERT_ALERT,
        {
            "rule_code": "refund_ratio", "rule_version": 0, "action": "alert",
            "severity": "medium", "mid": MID, "tid": TID, "rrn": "000000000001",
            "pan_token": None, "pan_masked": None, "amount_fen": 1, "detail": {"percent": 40.0},
            "status": "open", "created_at": NOON, "dedupe_key": "refund_ratio:x:20261204",
        },
    )  # fmt: skip
    outcomes = _write_all(
        database,
        [
            [_reserve(key, 600, 1_000), alert],
            [_reserve(key, 600, 1_000)],  # no room left after the first
            [_reserve(key, 400, 1_000), alert],  # fits; its alert is a repeat, skipped
            [_reserve("fresh", 1_001, 1_000)],  # alone above the limit: not even created
        ],
    )
    assert [type(o).__name__ if o else None for o in outcomes] == [
        None,
        "LimitReached",
        None,
        "LimitReached",
    ]
    assert isinstance(outcomes[1], LimitReached)
    with database.unit_of_work(read_only=True) as uow:
        rows = {c.key: (c.amount_fen, c.count) for c in uow.session.scalars(select(RiskCounter))}
        assert rows == {key: (1_000, 2)}
        (saved,) = uow.session.scalars(select(RiskAlert)).all()
        assert saved.detail == {"percent": 40.0}


def test_release_never_goes_below_zero_and_holds_are_written(database: Database) -> None:
    key = f"m:{MID}:debit:d:20261204"
    hold = Op(
        statements.INSERT_HOLD,
        {
            "scope": "transaction", "subject": "000000000007", "mid": MID,
            "blocks_authorization": False, "holds_settlement": True, "reason": "test",
            "created_by": "risk-engine", "created_at": NOON,
        },
    )  # fmt: skip
    outcomes = _write_all(
        database,
        [
            counters.add_ops([(key, TODAY)], 500),
            [*counters.release_ops([key, "no such key"], 800), hold],
        ],
    )
    assert outcomes == [None, None]
    with database.unit_of_work(read_only=True) as uow:
        counter = uow.session.get(RiskCounter, key)
        assert counter is not None
        assert (counter.amount_fen, counter.count) == (0, 0)
        (freeze,) = uow.session.scalars(select(RiskFreeze)).all()
        assert (freeze.scope, freeze.subject, freeze.holds_settlement) == (
            "transaction",
            "000000000007",
            True,
        )


@pytest.mark.parametrize("amount", [1, 999, 1_000])
def test_reservations_up_to_the_limit_exactly(database: Database, amount: int) -> None:
    key = "k"
    outcomes = _write_all(
        database, [[_reserve(key, amount, 1_000)] for _ in range(1_000 // amount + 1)]
    )
    assert sum(o is None for o in outcomes) == 1_000 // amount


def test_counters_of_ended_periods_are_purged(database: Database) -> None:
    day_key, month_key = counters.merchant_keys(MID, "qr", TODAY)
    outcomes = _write_all(
        database,
        [counters.add_ops([(day_key, TODAY), (month_key, counters.month_end(TODAY))], 100)],
    )
    assert outcomes == [None]
    with database.unit_of_work() as uow:
        assert counters.purge_expired(uow.session, today=TODAY) == 0
        assert counters.purge_expired(uow.session, today=TODAY + dt.timedelta(days=1)) == 1
        uow.commit()
    with database.unit_of_work(read_only=True) as uow:
        assert [c.key for c in uow.session.scalars(select(RiskCounter))] == [month_key]
