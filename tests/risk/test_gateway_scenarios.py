"""Risk control end to end (issue 9's "done when"): scripted terminals through the real
gateway and the network simulator trigger every rule and every limit, as a merchant and a
risk officer would notice — the response code on the terminal, the alerts in the queue,
the settlement hold, the limit counters — on SQLite and PostgreSQL.

Thresholds a scenario needs lower are saved as rule and limit versions before the gateway
starts (what a risk officer does in the back office); freezes and blocked cards are rows
that the running engine rereads (``refresh``, which it otherwise does every
``limits.RISK_REFRESH_SECONDS``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select, update

from poshub.bootstrap import build_state
from poshub.core.clock import SHANGHAI
from poshub.core.crypto import KeyVault, load_kek
from poshub.core.db import Database, table_of, utcnow
from poshub.core.settings import Settings
from poshub.demo import seed_load_terminals
from poshub.gateway.link import TcpNetworkLink
from poshub.gateway.models import GatewayTransaction
from poshub.gateway.process import RunningGateway, start_gateway
from poshub.merchants.models import Merchant
from poshub.notify.adapters import MemoryNotifier
from poshub.onboarding.models import Application
from poshub.risk import holds
from poshub.risk.engine import RiskEngine
from poshub.risk.models import BlockedCard, RiskAlert, RiskCounter, RiskFreeze, RiskLimit
from poshub.risk.schemas import RuleCode
from poshub.simulators.loadgen import luhn_complete
from poshub.simulators.network import NetworkSimulator
from poshub.simulators.terminal import Card, JournalEntry, Result, TerminalClient
from tests.gateway.conftest import (  # noqa: F401  (fixtures)
    demo_database,
    demo_template,
    gateway_settings,
)
from tests.gateway.support import (
    CARD,
    DEMO_MID,
    OTHER_CARD,
    TEST_TMK,
    Env,
    running,
    set_rule,
)

QR_LIMIT_FEN = 1_000_000
"""10,000 CNY: the default QR limit per payment."""


def debit_card(index: int) -> Card:
    """A debit test card of its own (622202: not a credit BIN)."""
    return Card(pan=luhn_complete(f"622202{index:09d}"), expiry="3012", pin="123456")


def qr_code(index: int) -> str:
    """A UnionPay payment code of its own wallet account (10,000 CNY in the sandbox)."""
    return f"62{index:017d}"


def engine_of(env: Env) -> RiskEngine:
    risk = env.gateway.gateway.risk
    assert isinstance(risk, RiskEngine)
    return risk


def original(terminal: TerminalClient, result: Result) -> JournalEntry:
    assert result.rrn is not None
    entry = terminal.state.find(result.rrn)
    assert entry is not None
    return entry


@pytest.fixture
def load_merchant(gateway_settings: Settings, demo_database: Database) -> tuple[str, list[str]]:  # noqa: F811
    """An enterprise merchant with eight active terminals keyed with the test key."""
    state = build_state(gateway_settings, database=demo_database, notifier=MemoryNotifier())
    with demo_database.unit_of_work() as uow:
        mid, tids = seed_load_terminals(uow.session, state.onboarding, 8)
        uow.commit()
    return mid, tids


# --- Rows a risk officer's actions leave --------------------------------------------------------
def add_limit(
    database: Database,
    scope: str,
    subject: str,
    channel: str,
    *,
    per_transaction: int | None = None,
    per_day: int | None = None,
    per_month: int | None = None,
    per_card_per_day: int | None = None,
) -> None:
    with database.unit_of_work() as uow:
        uow.session.add(
            RiskLimit(
                scope=scope, subject=subject, channel=channel, version=1,
                per_transaction_fen=per_transaction, per_day_fen=per_day,
                per_month_fen=per_month, per_card_per_day_fen=per_card_per_day,
                created_at=utcnow(),
            )
        )  # fmt: skip
        uow.commit()


def freeze_merchant(database: Database, mid: str) -> int:
    with database.unit_of_work() as uow:
        row = RiskFreeze(
            scope="merchant", subject=mid, mid=mid, blocks_authorization=True,
            holds_settlement=True, reason="case RC-1", created_by="risk", created_at=utcnow(),
        )  # fmt: skip
        uow.session.add(row)
        uow.session.flush()
        freeze_id = row.id
        uow.commit()
    return freeze_id


def release(database: Database, freeze_id: int) -> None:
    with database.unit_of_work() as uow:
        uow.session.execute(
            update(RiskFreeze)
            .where(RiskFreeze.id == freeze_id)
            .values(released_at=utcnow(), released_by="risk", release_reason="cleared")
        )
        uow.commit()


def alerts(database: Database, *, after: int = 0) -> list[Any]:
    """The alert queue's rows after id ``after`` (the demo data has alerts of its own)."""
    table = table_of(RiskAlert)
    with database.unit_of_work(read_only=True) as uow:
        return list(
            uow.session.execute(select(table).where(table.c.id > after).order_by(table.c.id)).all()
        )


def last_alert_id(database: Database) -> int:
    found = alerts(database)
    return found[-1].id if found else 0


def journal_row(database: Database, rrn: str | None) -> Any:
    table = table_of(GatewayTransaction)
    with database.unit_of_work(read_only=True) as uow:
        row = uow.session.execute(select(table).where(table.c.rrn == rrn)).first()
        assert row is not None
        return row


def counter(database: Database, key: str) -> int:
    with database.unit_of_work(read_only=True) as uow:
        row = uow.session.get(RiskCounter, key)
        return row.amount_fen if row is not None else 0


def held(database: Database, mid: str, rrn: str | None = None) -> bool:
    with database.unit_of_work(read_only=True) as uow:
        return holds.settlement_held(uow.session, mid, rrn)


def today_tag() -> str:
    return utcnow().astimezone(SHANGHAI).strftime("%Y%m%d")


# --- QR limits ----------------------------------------------------------------------------------
def test_qr_limits_per_payment_and_per_day_across_terminals(
    gateway_settings: Settings,  # noqa: F811
    demo_database: Database,  # noqa: F811
    load_merchant: tuple[str, list[str]],
) -> None:
    mid, tids = load_merchant

    async def scenario(env: Env) -> None:
        # 10,000.01 CNY: one fen above the QR limit per payment, declined with 61 before
        # the network sees it.
        async with env.terminal() as demo:
            await demo.sign_on()
            over = await demo.qr_sale(qr_code(1), QR_LIMIT_FEN + 1)
            assert over.response_code == "61"
            assert env.simulator.counters.requests == 0
            row = journal_row(env.database, over.rrn)
            assert (row.channel, row.response_code, row.status) == ("qr", "61", "declined")
            assert (await demo.qr_sale(qr_code(2), QR_LIMIT_FEN)).response_code == "00"
        # 100,000 CNY a day per merchant, whichever of its terminals takes it.
        first = env.terminal(tid=tids[0], mid=mid)
        second = env.terminal(tid=tids[1], mid=mid)
        async with first, second:
            await first.sign_on()
            await second.sign_on()
            codes = []
            for index in range(10):
                terminal = first if index % 2 == 0 else second
                codes.append(
                    (await terminal.qr_sale(qr_code(100 + index), QR_LIMIT_FEN)).response_code
                )
            assert codes == ["00"] * 10
            assert counter(env.database, f"m:{mid}:qr:d:{today_tag()}") == 10 * QR_LIMIT_FEN
            # Not one fen more today, at either terminal; cards are another channel.
            assert (await second.qr_sale(qr_code(120), 100)).response_code == "61"
            assert (await first.qr_sale(qr_code(121), 100)).response_code == "61"
            assert (await first.sale(debit_card(1), 100)).response_code == "00"
        assert counter(env.database, f"m:{mid}:qr:d:{today_tag()}") == 10 * QR_LIMIT_FEN

    asyncio.run(_with_gateway(gateway_settings, demo_database, scenario))


async def _with_gateway(settings: Settings, database: Database, scenario: Any) -> Any:
    async with running(settings, database) as env:
        return await scenario(env)


# --- Freeze and release -------------------------------------------------------------------------
def test_a_freeze_declines_the_next_authorization_and_holds_settlement_until_released(
    gateway_settings: Settings,  # noqa: F811
    demo_database: Database,  # noqa: F811
) -> None:
    async def scenario(env: Env) -> None:
        risk = engine_of(env)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            before = await terminal.sale(OTHER_CARD, 1_000)
            assert before.response_code == "00"
            freeze_id = freeze_merchant(env.database, DEMO_MID)
            await risk.refresh()
            frozen = await terminal.sale(OTHER_CARD, 1_000)
            assert frozen.response_code == "58"
            assert held(env.database, DEMO_MID)
            assert held(env.database, DEMO_MID, before.rrn)
            release(env.database, freeze_id)
            await risk.refresh()
            after = await terminal.sale(OTHER_CARD, 1_000)
            assert after.response_code == "00"
            assert not held(env.database, DEMO_MID)
            assert not held(env.database, DEMO_MID, after.rrn)

    asyncio.run(_with_gateway(gateway_settings, demo_database, scenario))


# --- Every rule ---------------------------------------------------------------------------------
def test_velocity_card_testing_and_a_blocked_card(
    gateway_settings: Settings,  # noqa: F811
    demo_database: Database,  # noqa: F811
    load_merchant: tuple[str, list[str]],
) -> None:
    mid, tids = load_merchant
    set_rule(demo_database, RuleCode.CARD_VELOCITY, max_count=2)
    set_rule(demo_database, RuleCode.TERMINAL_VELOCITY, max_count=3)
    set_rule(demo_database, RuleCode.CARD_TESTING, max_declines=2)
    vault = KeyVault(load_kek(gateway_settings))
    seen = last_alert_id(demo_database)

    async def scenario(env: Env) -> dict[str, list[str]]:
        terminals = [env.terminal(tid=tid, mid=mid) for tid in tids[:4]]
        codes: dict[str, list[str]] = {}
        for terminal in terminals:
            await terminal.sign_on()
        try:
            velocity, busy, testing, blocked = terminals
            # One card thrice: the third is above the card's two in ten minutes.
            card = debit_card(10)
            codes["card_velocity"] = [
                (await velocity.sale(card, 100)).response_code for _ in range(3)
            ]
            # Four cards on one terminal: the fourth payment is above its three (alert).
            codes["terminal_velocity"] = [
                (await busy.sale(debit_card(20 + i), 100)).response_code for i in range(4)
            ]
            # Two issuer declines (51), then even a good card is refused for a while.
            codes["card_testing"] = [
                (await testing.sale(debit_card(30 + i), amount)).response_code
                for i, amount in enumerate((151, 251, 300, 400))
            ]
            # A card on the blocked list.
            stolen = debit_card(40)
            with env.database.unit_of_work() as uow:
                uow.session.add(
                    BlockedCard(
                        pan_token=vault.token(stolen.pan, purpose="pan"),
                        pan_masked=stolen.pan[:6] + "******" + stolen.pan[-4:],
                        reason="reported stolen", created_by="risk", created_at=utcnow(),
                    )
                )  # fmt: skip
                uow.commit()
            await engine_of(env).refresh()
            codes["blocked_card"] = [(await blocked.sale(stolen, 100)).response_code]
        finally:
            for terminal in terminals:
                await terminal.close()
        return codes

    codes = asyncio.run(_with_gateway(gateway_settings, demo_database, scenario))
    assert codes == {
        "card_velocity": ["00", "00", "65"],
        "terminal_velocity": ["00", "00", "00", "00"],
        "card_testing": ["51", "51", "59", "59"],
        "blocked_card": ["62"],
    }
    raised = {(a.rule_code, a.action) for a in alerts(demo_database, after=seen)}
    assert raised >= {
        ("card_velocity", "decline"),
        ("terminal_velocity", "alert"),
        ("card_testing", "decline"),
        ("blocked_card", "decline"),
    }
    (testing_alert,) = [
        a for a in alerts(demo_database, after=seen) if a.rule_code == "card_testing"
    ]
    assert testing_alert.detail["declines"] == 2
    assert testing_alert.tid == tids[2]
    assert all(a.pan_masked is None or "*" in a.pan_masked for a in alerts(demo_database))
    assert all(a.status == "open" for a in alerts(demo_database, after=seen))


def test_cashout_hold_ticket_and_business_hours_alerts(
    gateway_settings: Settings,  # noqa: F811
    demo_database: Database,  # noqa: F811
) -> None:
    # Declared hours that the present moment is well outside of.
    now = utcnow().astimezone(SHANGHAI)
    opening, closing = (now + dt.timedelta(hours=3)), (now + dt.timedelta(hours=5))
    with demo_database.unit_of_work() as uow:
        uow.session.execute(
            update(Merchant)
            .where(Merchant.mid == DEMO_MID)
            .values(opening_time=f"{opening:%H:%M}", closing_time=f"{closing:%H:%M}")
        )
        uow.commit()
    seen = last_alert_id(demo_database)

    async def scenario(env: Env) -> list[Result]:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            # A credit card (BIN 622588), 5,000 CNY three times: round amounts, the same
            # card again and again at one supermarket (typical ticket 80 CNY).
            return [await terminal.sale(CARD, 500_000) for _ in range(3)]

    results = asyncio.run(_with_gateway(gateway_settings, demo_database, scenario))
    assert [r.response_code for r in results] == ["00", "00", "00"]
    third = results[2].rrn
    assert journal_row(demo_database, third).channel == "credit"
    found = alerts(demo_database, after=seen)
    (cashout,) = [a for a in found if a.rule_code == "cashout" and a.rrn == third]
    assert cashout.action == "hold"
    assert {"round_amount", "same_card_repeated"} <= set(cashout.detail["signals"])
    assert held(demo_database, DEMO_MID, third)
    assert not held(demo_database, DEMO_MID)  # the transaction, not the merchant
    tickets = [a for a in found if a.rule_code == "ticket_above_norm"]
    assert {a.rrn for a in tickets} == {r.rrn for r in results}
    assert tickets[0].detail["norm_fen"] == 8_000
    (hours,) = [a for a in found if a.rule_code == "business_hours"]  # once an hour
    assert hours.detail["opening_time"] == f"{opening:%H:%M}"
    assert hours.action == "alert"


def test_new_merchant_volume_and_refund_ratio_alerts(
    gateway_settings: Settings,  # noqa: F811
    demo_database: Database,  # noqa: F811
) -> None:
    # The demo merchant declared 100 CNY a month when it applied; it went live today.
    with demo_database.unit_of_work() as uow:
        merchant = uow.session.scalars(select(Merchant).where(Merchant.mid == DEMO_MID)).one()
        merchant.live_at = utcnow()
        uow.session.execute(
            update(Application)
            .where(Application.id == merchant.application_id)
            .values(expected_monthly_volume_fen=10_000)
        )
        uow.commit()
    seen = last_alert_id(demo_database)

    async def scenario(env: Env) -> list[str]:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            small = await terminal.sale(OTHER_CARD, 40_000)
            big = await terminal.sale(OTHER_CARD, 100_000)
            refund = await terminal.refund(original(terminal, big), OTHER_CARD, 50_000)
            return [small.response_code, big.response_code, refund.response_code]

    assert asyncio.run(_with_gateway(gateway_settings, demo_database, scenario)) == ["00"] * 3
    found = {a.rule_code: a for a in alerts(demo_database, after=seen)}
    volume = found["new_merchant_volume"]
    assert volume.detail["expected_monthly_fen"] == 10_000
    assert volume.detail["month_volume_fen"] == 40_000
    ratio = found["refund_ratio"]
    assert ratio.detail == {
        "refunds_fen": 50_000,
        "sales_fen": 140_000,
        "percent": 35.7,
        "max_percent": 30,
    }


# --- Every limit --------------------------------------------------------------------------------
def test_every_limit_declines_61(
    gateway_settings: Settings,  # noqa: F811
    demo_database: Database,  # noqa: F811
    load_merchant: tuple[str, list[str]],
) -> None:
    mid, tids = load_merchant
    add_limit(demo_database, "merchant", mid, "debit", per_transaction=50_000, per_day=200_000,
              per_month=1_000_000, per_card_per_day=60_000)  # fmt: skip
    add_limit(demo_database, "terminal", tids[0], "debit", per_transaction=40_000, per_day=70_000)
    add_limit(demo_database, "terminal", tids[2], "debit", per_month=50_000)
    # The demo merchant took 95,000 fen on debit cards earlier this month.
    add_limit(demo_database, "merchant", DEMO_MID, "debit", per_month=100_000)
    month = utcnow().astimezone(SHANGHAI)
    with demo_database.unit_of_work() as uow:
        uow.session.add(
            RiskCounter(
                key=f"m:{DEMO_MID}:debit:m:{month:%Y%m}", amount_fen=95_000, count=3,
                expires_on=month.date() + dt.timedelta(days=31),
            )
        )  # fmt: skip
        uow.commit()

    async def scenario(env: Env) -> dict[str, str]:
        one, two, three = (env.terminal(tid=tid, mid=mid) for tid in tids[:3])
        outcome: dict[str, str] = {}
        async with one, two, three, env.terminal() as demo:
            for terminal in (one, two, three, demo):
                await terminal.sign_on()

            async def sale(terminal: TerminalClient, card: int, amount: int) -> str:
                return (await terminal.sale(debit_card(card), amount)).response_code

            outcome["merchant per payment"] = await sale(two, 1, 50_001)
            outcome["terminal per payment"] = await sale(one, 1, 40_001)
            outcome["within"] = await sale(two, 1, 40_000)
            outcome["card per day"] = await sale(two, 1, 20_001)
            outcome["within 2"] = await sale(one, 2, 40_000)
            outcome["terminal per day"] = await sale(one, 3, 30_001)
            outcome["within 3"] = await sale(three, 4, 40_000)
            outcome["terminal per month"] = await sale(three, 5, 10_001)
            outcome["within 4"] = await sale(two, 6, 40_000)
            outcome["within 5"] = await sale(two, 7, 40_000)
            outcome["merchant per day"] = await sale(two, 8, 1)
            outcome["within 6"] = await sale(demo, 9, 5_000)
            outcome["merchant per month"] = await sale(demo, 10, 1)
        return outcome

    outcome = asyncio.run(_with_gateway(gateway_settings, demo_database, scenario))
    assert outcome == {
        "merchant per payment": "61",
        "terminal per payment": "61",
        "within": "00",
        "card per day": "61",
        "within 2": "00",
        "terminal per day": "61",
        "within 3": "00",
        "terminal per month": "61",
        "within 4": "00",
        "within 5": "00",
        "merchant per day": "61",
        "within 6": "00",
        "merchant per month": "61",
    }
    day = today_tag()
    assert counter(demo_database, f"m:{mid}:debit:d:{day}") == 200_000
    assert counter(demo_database, f"t:{tids[0]}:debit:d:{day}") == 40_000
    assert counter(demo_database, f"m:{DEMO_MID}:debit:m:{day[:6]}") == 100_000


# --- Several gateway processes and a restart ----------------------------------------------------
@asynccontextmanager
async def two_gateways(
    settings: Settings, database: Database
) -> AsyncIterator[tuple[NetworkSimulator, RunningGateway, RunningGateway]]:
    simulator = NetworkSimulator(settings, host="127.0.0.1", port=0)
    await simulator.start()
    gateways: list[RunningGateway] = []
    try:
        for primary in (True, False):
            link = TcpNetworkLink("127.0.0.1", simulator.port)
            gateways.append(
                await start_gateway(settings, database=database, link=link, host="127.0.0.1",
                                    port=0, primary=primary)
            )  # fmt: skip
        yield simulator, gateways[0], gateways[1]
    finally:
        for gateway in gateways:
            await gateway.stop()
        await simulator.stop()


def test_two_gateways_racing_for_the_last_room_approve_exactly_the_limit_and_a_restart_keeps_it(
    gateway_settings: Settings,  # noqa: F811
    demo_database: Database,  # noqa: F811
    load_merchant: tuple[str, list[str]],
) -> None:
    mid, tids = load_merchant
    add_limit(demo_database, "merchant", mid, "qr", per_day=500_000)
    set_rule(demo_database, RuleCode.CARD_VELOCITY, max_count=2)
    amount = 100_000

    states: dict[str, Any] = {}

    async def race() -> list[str]:
        async with two_gateways(gateway_settings, demo_database) as (_, first, second):
            terminals = [
                TerminalClient("127.0.0.1", (first if i % 2 == 0 else second).port, tid=tid,
                               mid=mid, tmk=TEST_TMK, timeout_seconds=5.0)
                for i, tid in enumerate(tids)
            ]  # fmt: skip
            try:
                await asyncio.gather(*(t.sign_on() for t in terminals))

                async def two_sales(index: int, terminal: TerminalClient) -> list[str]:
                    return [
                        (await terminal.qr_sale(qr_code(200 + 2 * index + k), amount)).response_code
                        for k in range(2)
                    ]

                codes = await asyncio.gather(*(two_sales(i, t) for i, t in enumerate(terminals)))
                # A card used twice, through one process: remembered after the restart.
                for _ in range(2):
                    assert (await terminals[0].sale(debit_card(77), 100)).response_code == "00"
            finally:
                for terminal in terminals:
                    states[terminal.tid] = terminal.state
                    await terminal.close()
        return [code for pair in codes for code in pair]

    codes = asyncio.run(race())
    assert sorted(codes) == ["00"] * 5 + ["61"] * 11
    key = f"m:{mid}:qr:d:{today_tag()}"
    assert counter(demo_database, key) == 500_000
    with demo_database.unit_of_work(read_only=True) as uow:
        approved = uow.session.scalars(
            select(GatewayTransaction.amount_fen).where(
                GatewayTransaction.mid == mid,
                GatewayTransaction.kind == "qr_sale",
                GatewayTransaction.response_code == "00",
            )
        ).all()
    assert sum(a or 0 for a in approved) == 500_000

    async def after_restart(env: Env) -> list[str]:
        risk = engine_of(env)
        terminal = env.terminal(tid=tids[0], mid=mid, state=states[tids[0]])
        async with terminal:
            await terminal.sign_on()
            qr = await terminal.qr_sale(qr_code(300), 100)
            card = await terminal.sale(debit_card(77), 100)
        # Declined from what the engine read at start: no write was needed to know.
        assert risk.stats.declines.get("limit:merchant_day") == 1
        return [qr.response_code, card.response_code]

    assert asyncio.run(_with_gateway(gateway_settings, demo_database, after_restart)) == [
        "61",
        "65",
    ]
    assert counter(demo_database, key) == 500_000
