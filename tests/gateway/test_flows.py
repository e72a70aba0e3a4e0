"""The gateway end to end: the demo terminal, the real gateway, the network simulator.

Each test runs the gateway and the simulator on ephemeral ports against the demo data
(SQLite, and PostgreSQL when configured) and talks to them as a terminal would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from poshub.core.db import Base, Database, table_of
from poshub.core.settings import Settings
from poshub.gateway.models import GatewayTransaction, NetworkReversal, TerminalBatch
from poshub.simulators.terminal import Card, JournalEntry, Result, TerminalClient
from tests.gateway.support import CARD, DEMO_MID, DEMO_TID, Env, run


def _rows(database: Database, model: type[Base], order: str) -> list[Any]:
    """Plain rows (no ORM state to expire) of one gateway table."""
    table = table_of(model)
    with database.unit_of_work(read_only=True) as uow:
        return list(uow.session.execute(select(table).order_by(table.c[order])).all())


def _original(terminal: TerminalClient, result: Result) -> JournalEntry:
    """The terminal's own record of an approved transaction, for a void or refund of it."""
    assert result.rrn is not None
    entry = terminal.state.find(result.rrn)
    assert entry is not None
    return entry


def _journal(database: Database) -> list[Any]:
    return _rows(database, GatewayTransaction, "rrn")


def test_sign_on_sale_and_the_journal(gateway_settings: Settings, demo_database: Database) -> None:
    async def scenario(env: Env) -> dict[str, Any]:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            signed = await terminal.sign_on()
            sale = await terminal.sale(CARD, 1234)
        return {
            "signed": signed,
            "sale": sale,
            "spent": before - env.simulator.balance_fen(CARD.pan),
        }

    outcome = run(gateway_settings, demo_database, scenario)
    assert outcome["signed"].response_code == "00"
    sale = outcome["sale"]
    assert sale.response_code == "00"
    assert len(sale.rrn) == 12
    assert sale.rrn.isdigit()
    assert len(sale.auth_code) == 6
    assert outcome["spent"] == 1234
    rows = {row.kind: row for row in _journal(demo_database)}
    row = rows["sale"]
    assert (row.tid, row.mid, row.rrn, row.status, row.response_code) == (
        DEMO_TID,
        DEMO_MID,
        sale.rrn,
        "approved",
        "00",
    )
    assert row.amount_fen == 1234
    assert row.pan_masked == "622588******6783"
    assert row.pan_last4 == "6783"
    assert row.pan_token
    assert CARD.pan not in row.pan_token
    assert row.upstream == "answered"
    assert rows["sign_on"].response_code == "00"


def test_every_transaction_type_of_the_demo_terminal(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> dict[str, str]:
        codes: dict[str, str] = {}
        async with env.terminal() as terminal:
            for mode in ("001", "004", "003"):
                codes[f"sign_on {mode}"] = (await terminal.sign_on(mode)).response_code
            codes["echo"] = (await terminal.echo()).response_code
            codes["parameters"] = (await terminal.parameters()).response_code
            balance = await terminal.balance(CARD)
            codes["balance"] = balance.response_code
            sale = await terminal.sale(CARD, 10_000)
            codes["sale"] = sale.response_code
            other = await terminal.sale(CARD, 2_000)
            codes["void"] = (await terminal.void(_original(terminal, other), CARD)).response_code
            codes["refund"] = (
                await terminal.refund(_original(terminal, sale), CARD, 3_000)
            ).response_code
            preauth = await terminal.preauth(CARD, 50_000)
            codes["preauth"] = preauth.response_code
            cancelled = await terminal.preauth(CARD, 7_000)
            codes["preauth_cancel"] = (
                await terminal.preauth_cancel(_original(terminal, cancelled), CARD)
            ).response_code
            completion = await terminal.completion(_original(terminal, preauth), CARD, 55_000)
            codes["completion"] = completion.response_code
            codes["completion_void"] = (
                await terminal.completion_void(_original(terminal, completion), CARD)
            ).response_code
            qr = await terminal.qr_sale("6212345678901234567", 800)
            codes["qr_sale"] = qr.response_code
            qr2 = await terminal.qr_sale("134567890123456789", 900)
            codes["qr_void"] = (await terminal.qr_void(_original(terminal, qr2))).response_code
            codes["qr_refund"] = (
                await terminal.qr_refund(_original(terminal, qr), 300)
            ).response_code
            report = await terminal.settle()
            codes["settle"] = report.response_code
            codes["balanced"] = report.settlement.result if report.settlement else "?"
            codes["sign_off"] = (await terminal.sign_off()).response_code
        return codes

    codes = run(gateway_settings, demo_database, scenario)
    assert codes == {
        "sign_on 001": "00",
        "sign_on 004": "00",
        "sign_on 003": "00",
        "echo": "00",
        "parameters": "00",
        "balance": "00",
        "sale": "00",
        "void": "00",
        "refund": "00",
        "preauth": "00",
        "preauth_cancel": "00",
        "completion": "00",
        "completion_void": "00",
        "qr_sale": "00",
        "qr_void": "00",
        "qr_refund": "00",
        "settle": "00",
        "balanced": "1",
        "sign_off": "00",
    }
    batches = _rows(demo_database, TerminalBatch, "id")
    assert [(b.batch_no, b.status, b.result) for b in batches] == [
        ("000001", "closed", "1"),
        ("000002", "open", None),
    ]
    assert batches[0].host_debit_fen == 10_000 + 800
    assert batches[0].host_credit_fen == 3_000 + 300


def test_a_network_timeout_answers_98_and_reverses_upstream_once(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> dict[str, Any]:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            timed_out = await terminal.sale(CARD, 1_91)
            # The terminal reverses too (spec §5.5); both reversals together undo it once.
            after = await terminal.sale(CARD, 1_00)
        for _ in range(100):
            if env.gateway.store_and_forward.acknowledged:
                break
            await __import__("asyncio").sleep(0.05)
        return {
            "code": timed_out.response_code,
            "after": after.response_code,
            "spent": before - env.simulator.balance_fen(CARD.pan),
            "applied": env.simulator.counters.reversals_applied,
        }

    outcome = run(gateway_settings, demo_database, scenario)
    assert outcome["code"] == "98"
    assert outcome["after"] == "00"
    assert outcome["spent"] == 100  # the 1.91 was taken by the issuer, then given back
    assert outcome["applied"] == 1
    owed = _rows(demo_database, NetworkReversal, "id")
    assert len(owed) == 1
    assert owed[0].acknowledged_at is not None
    assert owed[0].reason == "98"


def test_declines_by_the_issuer_and_by_the_host(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> dict[str, str]:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            return {
                "51": (await terminal.sale(CARD, 151)).response_code,
                "05": (await terminal.sale(CARD, 205)).response_code,
                "61": (await terminal.sale(CARD, 361)).response_code,
                "96": (await terminal.sale(CARD, 496)).response_code,
                "wrong pin": (
                    await terminal.sale(Card(pan=CARD.pan, expiry="3012", pin="654321"), 100)
                ).response_code,
                "expired": (
                    await terminal.sale(Card(pan=CARD.pan, expiry="2001"), 100)
                ).response_code,
                "over the terminal limit": (await terminal.sale(CARD, 5_000_001)).response_code,
            }

    codes = run(gateway_settings, demo_database, scenario)
    assert codes == {
        "51": "51",
        "05": "05",
        "61": "61",
        "96": "96",
        "wrong pin": "55",
        "expired": "54",
        "over the terminal limit": "61",
    }
