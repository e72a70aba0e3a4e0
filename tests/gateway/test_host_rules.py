"""The host's rules (spec §11.8, §11.9, §5.5, §5.6, §6.4) through the real gateway and the
network simulator, asserted as a terminal or a cardholder would notice them: the response
code and header, whether the answer is MACed, and whether money moved at the issuer.

Requests are built by the demo terminal (``TerminalClient``) and, where a rule needs a
request no honest terminal sends, changed field by field before they are MACed."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from poshub.core import limits
from poshub.core.audit import AuditEntry
from poshub.core.db import Database
from poshub.core.settings import Settings
from poshub.gateway.constants import MTI
from poshub.gateway.crypto import WorkingKeys, issue_working_keys, read_field62
from poshub.gateway.fields import Settlement48, Totals
from poshub.gateway.models import TerminalBatch
from poshub.simulators.terminal import Card, JournalEntry, Kind, SignOnRefused, TerminalClient
from poshub.terminals import hsm
from tests.gateway import probes
from tests.gateway.probes import Reply, request, send, spoil_mac
from tests.gateway.support import CARD, DEMO_MID, DEMO_TID, OTHER_CARD, TEST_TMK, Env, run

SIMULATOR_TIMEOUT = 5.0
"""Upper bound for the store-and-forward loop to deliver a reversal (it is woken at once)."""


def _random_keys() -> WorkingKeys:
    return issue_working_keys(TEST_TMK, "003")[0]


async def _send_request(env: Env, terminal: TerminalClient, message: dict[str, str]) -> Reply:
    reply = await send(env.port, terminal.encode_frame(message))
    assert reply is not None, "the host closed the connection instead of answering"
    return reply


def _sign_on_message(tid: str, mid: str, mode: str = "003", stan: str = "000001") -> dict[str, str]:
    return {MTI: "0800", "11": stan, "41": tid, "42": mid, "60": f"00000001{mode}", "63": "01 "}


async def _acknowledged(env: Env, count: int = 1) -> list[Any]:
    def done() -> list[Any] | None:
        owed = probes.reversals_owed(env.database)
        if len(owed) >= count and all(r.acknowledged_at is not None for r in owed):
            return owed
        return None

    owed = await probes.eventually(done, timeout=SIMULATOR_TIMEOUT)
    assert owed, "the network never acknowledged the reversal"
    return list(owed)


# --- Who may transact (spec §11.9, §6.4) ------------------------------------------------------
def test_an_unknown_terminal_gets_97_without_mac_or_keys(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        stranger = env.terminal(tid="99999999")
        with pytest.raises(SignOnRefused) as refused:
            await stranger.sign_on()
        assert refused.value.code == "97"
        sign_on = await send(
            env.port, stranger.encode_frame(_sign_on_message("99999999", DEMO_MID))
        )
        assert sign_on is not None
        assert (sign_on.code, "62" in sign_on.message) == ("97", False)
        stranger.install_keys(_random_keys())
        sale = await _send_request(
            env, stranger, request(stranger, Kind.SALE, card=CARD, amount_fen=100)
        )
        assert (sale.code, sale.mac) == ("97", False)
        assert env.simulator.counters.requests == 0
        await stranger.close()

    run(gateway_settings, demo_database, scenario)


def test_a_terminal_presenting_another_merchant_gets_03(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        wrong_mid = "898340154119999"
        impostor = env.terminal(mid=wrong_mid)
        sign_on = await send(env.port, impostor.encode_frame(_sign_on_message(DEMO_TID, wrong_mid)))
        assert sign_on is not None
        assert (sign_on.code, sign_on.mac, "62" in sign_on.message) == ("03", False, False)
        async with env.terminal() as genuine:
            await genuine.sign_on()
            impostor.install_keys(genuine.keys)
            sale = await _send_request(
                env, impostor, request(impostor, Kind.SALE, card=CARD, amount_fen=100)
            )
            assert (sale.code, sale.mac) == ("03", False)
            assert env.simulator.counters.requests == 0
            # The genuine terminal is unaffected.
            assert (await genuine.sale(CARD, 100)).response_code == "00"

    run(gateway_settings, demo_database, scenario)


def test_not_signed_on_or_signed_off_is_77_with_sign_on_requirement(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            terminal.install_keys(_random_keys())
            never = await terminal.sale(CARD, 100)
            assert (never.response_code, never.processing_requirement) == ("77", 3)
            assert "64" not in never.response
            assert not terminal.signed_on  # the terminal dropped its keys as told
            await terminal.sign_on()
            keys = terminal.keys
            assert (await terminal.sign_off()).response_code == "00"
            terminal.install_keys(keys)  # a terminal that kept its old keys
            after = await terminal.sale(CARD, 100)
            assert (after.response_code, after.processing_requirement) == ("77", 3)
            assert "64" not in after.response
            await terminal.sign_on()
            assert (await terminal.sale(CARD, 100)).response_code == "00"
        assert env.simulator.counters.requests == 1

    run(gateway_settings, demo_database, scenario)


def test_a_batch_other_than_the_hosts_open_batch_is_77_and_sign_on_resynchronises(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            terminal.state.batch = "000007"
            wrong = await terminal.sale(CARD, 100)
            assert (wrong.response_code, wrong.processing_requirement) == ("77", 3)
            assert env.simulator.counters.requests == 0
            await terminal.sign_on()
            assert terminal.state.batch == "000001"
            assert (await terminal.sale(CARD, 100)).response_code == "00"

    run(gateway_settings, demo_database, scenario)


# --- MAC (spec §7, §11.9) ------------------------------------------------------------------------
def test_a_wrong_mac_is_a0_unsigned_and_moves_no_money(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            message = request(terminal, Kind.SALE, card=CARD, amount_fen=1_500)
            frame = terminal.encode_frame(message)
            reply = await send(env.port, spoil_mac(frame))
            assert reply is not None
            assert (reply.code, reply.mac) == ("A0", False)
            assert env.simulator.counters.requests == 0
            assert env.simulator.balance_fen(CARD.pan) == before
            rows = [r for r in probes.journal(env.database) if r.stan == message["11"]]
            assert [(r.kind, r.response_code, r.status) for r in rows] == [
                ("sale", "A0", "declined")
            ]
            # The refused request used up nothing: the same request, MACed right, is served.
            good = await send(env.port, frame)
            assert good is not None
            assert good.code == "00"
            assert good.verifies(terminal.keys)
        assert before - env.simulator.balance_fen(CARD.pan) == 1_500

    run(gateway_settings, demo_database, scenario)


def test_five_wrong_macs_lock_the_terminal_until_staff_unlock_it(
    gateway_settings: Settings, demo_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "GATEWAY_TERMINAL_CACHE_SECONDS", 0.3)

    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            for attempt in range(limits.GATEWAY_MAC_FAILURES_BEFORE_LOCK):
                assert probes.terminal_status(env.database, DEMO_TID) == "active", attempt
                message = request(terminal, Kind.SALE, card=CARD, amount_fen=100)
                reply = await send(env.port, spoil_mac(terminal.encode_frame(message)))
                assert reply is not None
                assert (reply.code, reply.mac) == ("A0", False)
            assert probes.terminal_status(env.database, DEMO_TID) == "locked"
            with env.database.unit_of_work(read_only=True) as uow:
                audit = uow.session.execute(
                    select(AuditEntry.actor_id, AuditEntry.details).where(
                        AuditEntry.action == "terminal.locked", AuditEntry.entity_id == DEMO_TID
                    )
                ).all()
            assert len(audit) == 1
            assert audit[0].actor_id == "gateway"
            assert "MAC" in audit[0].details["reason"]
            # Even a correct MAC is refused now, and so is a new sign-on.
            locked = await _send_request(
                env, terminal, request(terminal, Kind.SALE, card=CARD, amount_fen=100)
            )
            assert locked.code == "58"
            assert locked.verifies(terminal.keys)
            keys = terminal.keys
            with pytest.raises(SignOnRefused) as refused:
                await terminal.sign_on()
            assert refused.value.code == "58"
            assert env.simulator.counters.requests == 0

            await probes.in_thread(probes.staff_unlock, env.database, DEMO_TID)
            terminal.install_keys(keys)
            codes = []
            for _ in range(40):
                reply = await _send_request(
                    env, terminal, request(terminal, Kind.SALE, card=CARD, amount_fen=100)
                )
                codes.append(reply.code)
                if reply.code == "00":
                    break
                await asyncio.sleep(0.1)
            assert codes[-1] == "00", codes
            assert set(codes[:-1]) <= {"58"}
            assert probes.session_row(env.database, DEMO_TID).mac_failures == 0

    run(gateway_settings, demo_database, scenario)


def test_a_good_mac_resets_the_failure_count(
    gateway_settings: Settings, demo_database: Database
) -> None:
    almost = limits.GATEWAY_MAC_FAILURES_BEFORE_LOCK - 1

    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()

            async def spoiled() -> None:
                message = request(terminal, Kind.SALE, card=CARD, amount_fen=100)
                reply = await send(env.port, spoil_mac(terminal.encode_frame(message)))
                assert reply is not None
                assert reply.code == "A0"

            for _ in range(almost):
                await spoiled()
            assert probes.session_row(env.database, DEMO_TID).mac_failures == almost
            assert (await terminal.sale(CARD, 100)).response_code == "00"
            assert probes.session_row(env.database, DEMO_TID).mac_failures == 0
            for _ in range(almost):
                await spoiled()
            assert probes.terminal_status(env.database, DEMO_TID) == "active"
            assert (await terminal.sale(CARD, 100)).response_code == "00"

    run(gateway_settings, demo_database, scenario)


# --- Terminal and merchant state (spec §11.9, TMS) ----------------------------------------------
def test_a_terminal_locked_by_staff_gets_58(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            assert (await terminal.sale(CARD, 100)).response_code == "00"
            await probes.in_thread(probes.staff_lock, env.database, DEMO_TID)
            await env.gateway.gateway.refresh_views()  # what the refresher does every 2 s
            refused = await terminal.sale(CARD, 200)
            assert refused.response_code == "58"
            assert "64" in refused.response  # signed: the terminal can trust the refusal
            with pytest.raises(SignOnRefused) as sign_on:
                await terminal.sign_on()
            assert sign_on.value.code == "58"
        assert env.simulator.counters.requests == 1

    run(gateway_settings, demo_database, scenario)


def test_a_suspended_merchant_gets_03_but_may_still_reverse(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            sale = request(terminal, Kind.SALE, card=CARD, amount_fen=700)
            assert (await _send_request(env, terminal, sale)).code == "00"
            await probes.in_thread(probes.set_merchant_status, env.database, DEMO_MID, "suspended")
            await env.gateway.gateway.refresh_views()
            refused = await terminal.sale(CARD, 100)
            assert (refused.response_code, "64" in refused.response) == ("03", False)
            keys = terminal.keys
            with pytest.raises(SignOnRefused) as sign_on:
                await terminal.sign_on()
            assert sign_on.value.code == "03"
            terminal.install_keys(keys)  # the refused sign-on left the host's keys valid
            # The terminal may still undo what it did and say goodbye.
            undo = await _send_request(env, terminal, TerminalClient.reversal_of(sale, "98"))
            assert undo.code == "00"
            assert (await terminal.echo()).response_code == "00"
        await _acknowledged(env)
        assert env.simulator.balance_fen(CARD.pan) == before

    run(gateway_settings, demo_database, scenario)


def test_a_transaction_type_disabled_in_the_tms_gets_58(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        await probes.in_thread(
            probes.staff_parameters, env.database, DEMO_TID, {"enabled_transactions": ["sale"]}
        )
        async with env.terminal() as terminal:
            await terminal.sign_on()
            sale = await terminal.sale(CARD, 100)
            assert sale.response_code == "00"
            original = probes.original_of(terminal, sale)
            codes = {
                "void": (await terminal.void(original, CARD)).response_code,
                "refund": (await terminal.refund(original, CARD, 50)).response_code,
                "preauth": (await terminal.preauth(CARD, 100)).response_code,
                "balance": (await terminal.balance(CARD)).response_code,
            }
            assert codes == {"void": "58", "refund": "58", "preauth": "58", "balance": "58"}
        assert env.simulator.counters.requests == 1

    run(gateway_settings, demo_database, scenario)


# --- Amount, currency, card, PIN (spec §11.4, §11.14, §8) ---------------------------------------
def test_checks_before_forwarding_refuse_without_asking_the_issuer(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            keys = terminal.keys
            assert keys is not None
            not_luhn = Card(pan="6212260000000002", expiry="3012", pin="123456")
            bad_pin = request(terminal, Kind.SALE, card=CARD, amount_fen=100)
            bad_pin["52"] = hsm.encrypt_ecb(keys.pik, b"\xff" * 8).hex().upper()
            cases = {
                "currency USD": request(
                    terminal, Kind.SALE, card=CARD, amount_fen=100, changes={"49": "840"}
                ),
                "amount zero": request(
                    terminal, Kind.SALE, card=CARD, amount_fen=100, changes={"4": "0" * 12}
                ),
                "luhn": request(terminal, Kind.SALE, card=not_luhn, amount_fen=100),
                "expired": request(
                    terminal, Kind.SALE, card=Card(CARD.pan, "2001", "123456"), amount_fen=100
                ),
                "month 13": request(
                    terminal, Kind.SALE, card=CARD, amount_fen=100, changes={"14": "3013"}
                ),
                "pin block": bad_pin,
            }
            codes = {}
            for name, message in cases.items():
                reply = await _send_request(env, terminal, message)
                assert reply.verifies(keys), name
                codes[name] = reply.code
        assert codes == {
            "currency USD": "13",
            "amount zero": "13",
            "luhn": "14",
            "expired": "54",
            "month 13": "14",
            "pin block": "99",
        }
        assert env.simulator.counters.requests == 0

    run(gateway_settings, demo_database, scenario)


# --- Repeats (spec §11.9) ------------------------------------------------------------------------
def test_an_identical_resend_gets_the_same_answer_and_debits_once(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            frame = terminal.encode_frame(request(terminal, Kind.SALE, card=CARD, amount_fen=2_345))
            first = await send(env.port, frame)
            again = await send(env.port, frame)
        assert first is not None
        assert again is not None
        assert first.code == "00"
        for key in ("37", "38", "39", "12", "13", "15"):
            assert again.message[key] == first.message[key], key
        assert before - env.simulator.balance_fen(CARD.pan) == 2_345
        assert env.simulator.counters.approved == 1

    run(gateway_settings, demo_database, scenario)


def test_a_stan_reused_with_another_amount_is_94(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            first = request(terminal, Kind.SALE, card=CARD, amount_fen=1_000)
            other = request(terminal, Kind.SALE, card=CARD, amount_fen=9_000, stan=first["11"])
            assert (await _send_request(env, terminal, first)).code == "00"
            duplicate = await _send_request(env, terminal, other)
            assert duplicate.code == "94"
            assert duplicate.verifies(terminal.keys)
        assert before - env.simulator.balance_fen(CARD.pan) == 1_000

    run(gateway_settings, demo_database, scenario)


def test_a_refund_resent_after_midnight_is_still_the_same_refund(
    gateway_settings: Settings, demo_database: Database
) -> None:
    """An advice is resent until answered (spec §5.4) — by a real terminal before its next
    transaction, which may be the next morning. Repeats are per batch (§11.9), not per day."""

    async def scenario(env: Env) -> None:
        gateway = env.gateway.gateway
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            sale = await terminal.sale(CARD, 1_000)
            original = probes.original_of(terminal, sale)
            refund = request(terminal, Kind.REFUND, card=CARD, amount_fen=400, original=original)
            frame = terminal.encode_frame(refund)
            gateway.clock = lambda: dt.datetime(2026, 12, 4, 15, 59, 59, tzinfo=dt.UTC)
            evening = await send(env.port, frame)  # 23:59:59 in Beijing
            gateway.clock = lambda: dt.datetime(2026, 12, 4, 16, 0, 1, tzinfo=dt.UTC)
            morning = await send(env.port, frame)  # 00:00:01, the next business day
            # A new request reusing that STAN in the same batch is a duplicate, any day.
            other = request(
                terminal, Kind.REFUND, card=CARD, amount_fen=300, original=original,
                stan=refund["11"],
            )  # fmt: skip
            reused = await _send_request(env, terminal, other)
        assert evening is not None
        assert morning is not None
        assert evening.code == "00"
        for key in ("37", "38", "39", "13"):
            assert morning.message[key] == evening.message[key], key
        assert reused.code == "94"
        assert before - env.simulator.balance_fen(CARD.pan) == 600
        assert probes.journal_row(env.database, sale.rrn).refunded_fen == 400

    run(gateway_settings, demo_database, scenario)


# --- Voids (spec §11.8, §11.9) --------------------------------------------------------------------
def test_void_rules(gateway_settings: Settings, demo_database: Database) -> None:
    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            sale = await terminal.sale(CARD, 4_200)
            original = probes.original_of(terminal, sale)
            codes = {
                "unknown STAN": (
                    await terminal.void(dataclasses.replace(original, stan="999999"), CARD)
                ).response_code,
                "other RRN": (
                    await terminal.void(dataclasses.replace(original, rrn="000000999999"), CARD)
                ).response_code,
                "other amount": (
                    await terminal.void(dataclasses.replace(original, amount_fen=4_201), CARD)
                ).response_code,
                "other card": (await terminal.void(original, OTHER_CARD)).response_code,
                "void": (await terminal.void(original, CARD)).response_code,
                "again": (await terminal.void(original, CARD)).response_code,
            }
        assert codes == {
            "unknown STAN": "25",
            "other RRN": "22",
            "other amount": "64",
            "other card": "22",
            "void": "00",
            "again": "12",
        }
        assert env.simulator.balance_fen(CARD.pan) == before
        assert probes.journal_row(env.database, sale.rrn).status == "voided"

    run(gateway_settings, demo_database, scenario)


def test_a_sale_of_a_settled_batch_cannot_be_voided_but_can_be_refunded(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            sale = await terminal.sale(CARD, 3_000)
            original = probes.original_of(terminal, sale)
            settled = await terminal.settle()
            assert settled.settlement is not None
            assert settled.settlement.closed
            assert terminal.state.batch == "000002"
            assert (await terminal.void(original, CARD)).response_code == "25"
            assert (await terminal.refund(original, CARD, 1_000)).response_code == "00"

    run(gateway_settings, demo_database, scenario)


# --- Refunds (spec §11.8, §11.9) ---------------------------------------------------------------------
def test_refund_rules(gateway_settings: Settings, demo_database: Database) -> None:
    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            sale = await terminal.sale(CARD, 1_000)
            original = probes.original_of(terminal, sale)
            voided_sale = await terminal.sale(CARD, 500)
            voided = probes.original_of(terminal, voided_sale)
            assert (await terminal.void(voided, CARD)).response_code == "00"

            async def refund(entry: JournalEntry, amount: int) -> str:
                return (await terminal.refund(entry, CARD, amount)).response_code

            codes = [
                ("unknown", await refund(dataclasses.replace(original, rrn="000000999999"), 100)),
                ("600 of 1000", await refund(original, 600)),
                ("500 more", await refund(original, 500)),
                ("400 more", await refund(original, 400)),
                ("1 more", await refund(original, 1)),
                ("of a voided sale", await refund(voided, 100)),
            ]
        assert codes == [
            ("unknown", "25"),
            ("600 of 1000", "00"),
            ("500 more", "13"),
            ("400 more", "00"),
            ("1 more", "13"),
            ("of a voided sale", "12"),
        ]
        assert env.simulator.balance_fen(CARD.pan) == before  # fully refunded, voided
        assert probes.journal_row(env.database, sale.rrn).refunded_fen == 1_000

    run(gateway_settings, demo_database, scenario)


# --- Pre-authorization (spec §11.8) ------------------------------------------------------------------
def test_completion_rules(gateway_settings: Settings, demo_database: Database) -> None:
    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            preauth = await terminal.preauth(CARD, 10_000)
            held = probes.original_of(terminal, preauth)
            cancelled_auth = await terminal.preauth(CARD, 5_000)
            cancelled = probes.original_of(terminal, cancelled_auth)
            assert (await terminal.preauth_cancel(cancelled, CARD)).response_code == "00"
            codes = {
                "115% + 1 fen": (await terminal.completion(held, CARD, 11_501)).response_code,
                "of a cancelled pre-auth": (
                    await terminal.completion(cancelled, CARD, 5_000)
                ).response_code,
                "115%": (await terminal.completion(held, CARD, 11_500)).response_code,
            }
        assert codes == {"115% + 1 fen": "13", "of a cancelled pre-auth": "12", "115%": "00"}
        assert env.simulator.hold_fen(CARD.pan) == 0

    run(gateway_settings, demo_database, scenario)


# --- Reversals (spec §5.5, §11.9) ---------------------------------------------------------------------
def test_a_reversal_gives_the_money_back_and_is_sent_upstream_once(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            sale = request(terminal, Kind.SALE, card=CARD, amount_fen=8_800)
            approved = await _send_request(env, terminal, sale)
            assert approved.code == "00"
            assert before - env.simulator.balance_fen(CARD.pan) == 8_800
            reversal = terminal.encode_frame(TerminalClient.reversal_of(sale, "98"))
            first = await send(env.port, reversal)
            assert first is not None
            assert first.code == "00"
            assert first.verifies(terminal.keys)
            owed = await _acknowledged(env)
            again = await send(env.port, reversal)
            assert again is not None
            assert again.code == "00"
            await asyncio.sleep(0.2)  # room for a wrongly owed second reversal to go out
        assert env.simulator.balance_fen(CARD.pan) == before
        assert env.simulator.counters.reversals_applied == 1
        assert env.simulator.counters.reversals_received == 1
        owed = probes.reversals_owed(env.database)
        assert [(r.rrn, r.reason, r.attempts) for r in owed] == [(approved.message["37"], "98", 1)]
        assert probes.journal_row(env.database, approved.message["37"]).status == "reversed"

    run(gateway_settings, demo_database, scenario)


def test_reversal_of_something_never_received_is_00_and_of_another_amount_64(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            never_sent = request(terminal, Kind.SALE, card=CARD, amount_fen=300)
            unknown = await _send_request(
                env, terminal, TerminalClient.reversal_of(never_sent, "98")
            )
            assert unknown.code == "00"
            sale = request(terminal, Kind.SALE, card=CARD, amount_fen=600)
            assert (await _send_request(env, terminal, sale)).code == "00"
            other_amount = TerminalClient.reversal_of(sale, "98") | {"4": f"{601:012d}"}
            assert (await _send_request(env, terminal, other_amount)).code == "64"
            await asyncio.sleep(0.2)
        assert probes.reversals_owed(env.database) == []
        assert env.simulator.counters.reversals_received == 0
        assert before - env.simulator.balance_fen(CARD.pan) == 600

    run(gateway_settings, demo_database, scenario)


def test_a_reversal_after_the_batch_was_settled_is_12(
    gateway_settings: Settings, demo_database: Database
) -> None:
    """Spec §11.9: a reversal is 12 once its batch is settled (the totals were agreed)."""

    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            sale = request(terminal, Kind.SALE, card=CARD, amount_fen=1_000)
            approved = await _send_request(env, terminal, sale)
            assert approved.code == "00"
            settlement = {
                MTI: "0500",
                "11": terminal.state.next_stan(),
                "41": DEMO_TID,
                "42": DEMO_MID,
                "48": Settlement48.request(Totals(1_000, 1, 0, 0)).text(),
                "49": "156",
                "60": "00000001201",
                "63": "01 ",
            }
            settled = await _send_request(env, terminal, settlement)
            assert settled.code == "00"
            assert Settlement48.parse(settled.message["48"]).domestic_result == "1"
            late = await _send_request(env, terminal, TerminalClient.reversal_of(sale, "98"))
            assert late.code == "12"
            assert late.verifies(terminal.keys)
            await asyncio.sleep(0.2)
        assert probes.journal_row(env.database, approved.message["37"]).status == "approved"
        assert probes.reversals_owed(env.database) == []
        assert before - env.simulator.balance_fen(CARD.pan) == 1_000

    run(gateway_settings, demo_database, scenario)


def test_reversing_a_void_puts_the_sale_back(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            sale = await terminal.sale(CARD, 2_500)
            original = probes.original_of(terminal, sale)
            void = request(terminal, Kind.VOID, card=CARD, amount_fen=2_500, original=original)
            voided = await _send_request(env, terminal, void)
            assert voided.code == "00"
            assert env.simulator.balance_fen(CARD.pan) == before
            undo = await _send_request(env, terminal, TerminalClient.reversal_of(void, "98"))
            assert undo.code == "00"
            await _acknowledged(env)
            assert probes.journal_row(env.database, sale.rrn).status == "approved"
            assert probes.journal_row(env.database, voided.message["37"]).status == "reversed"
            assert before - env.simulator.balance_fen(CARD.pan) == 2_500
            # The sale is voidable again, at the host and at the issuer.
            assert (await terminal.void(original, CARD)).response_code == "00"
        assert env.simulator.balance_fen(CARD.pan) == before

    run(gateway_settings, demo_database, scenario)


def test_reversing_a_completion_gives_the_pre_auth_back(
    gateway_settings: Settings, demo_database: Database
) -> None:
    """The network restores the pre-auth's hold when a completion is reversed; the host
    must let the merchant cancel (or complete) that pre-auth again."""

    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            preauth = await terminal.preauth(CARD, 10_000)
            held = probes.original_of(terminal, preauth)
            completion = request(
                terminal, Kind.COMPLETION, card=CARD, amount_fen=9_000, original=held
            )
            assert (await _send_request(env, terminal, completion)).code == "00"
            assert env.simulator.hold_fen(CARD.pan) == 0
            undo = await _send_request(env, terminal, TerminalClient.reversal_of(completion, "98"))
            assert undo.code == "00"
            await _acknowledged(env)
            assert env.simulator.hold_fen(CARD.pan) == 10_000
            assert probes.journal_row(env.database, preauth.rrn).status == "approved"
            assert (await terminal.preauth_cancel(held, CARD)).response_code == "00"
        assert env.simulator.hold_fen(CARD.pan) == 0

    run(gateway_settings, demo_database, scenario)


def test_a_reversal_of_what_later_transactions_build_on_is_12(
    gateway_settings: Settings, demo_database: Database
) -> None:
    """A sale refunded or voided, a pre-auth completed: the network refuses to reverse it
    (docs/test-cards.md), so the host must not record it as reversed either."""

    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            refunded = probes.original_of(terminal, await terminal.sale(CARD, 1_000))
            voided = probes.original_of(terminal, await terminal.sale(CARD, 2_000))
            held = probes.original_of(terminal, await terminal.preauth(CARD, 5_000))
            assert (await terminal.refund(refunded, CARD, 400)).response_code == "00"
            assert (await terminal.void(voided, CARD)).response_code == "00"
            assert (await terminal.completion(held, CARD, 5_000)).response_code == "00"
            codes = {}
            for entry, kind in ((refunded, Kind.SALE), (voided, Kind.SALE), (held, Kind.PREAUTH)):
                # The original as the terminal sent it (same STAN, amount and card).
                sent = request(
                    terminal, kind, card=CARD, amount_fen=entry.amount_fen, stan=entry.stan
                )
                reply = await _send_request(env, terminal, TerminalClient.reversal_of(sent, "98"))
                assert reply.verifies(terminal.keys), entry.kind
                codes[entry.rrn] = reply.code
            await asyncio.sleep(0.2)
        assert codes == dict.fromkeys(codes, "12")
        assert probes.reversals_owed(env.database) == []
        statuses = {r.rrn: r.status for r in probes.journal(env.database)}
        assert [statuses[e.rrn] for e in (refunded, voided, held)] == [
            "approved",
            "voided",
            "completed",
        ]
        assert before - env.simulator.balance_fen(CARD.pan) == 1_000 - 400 + 5_000

    run(gateway_settings, demo_database, scenario)


# --- Management (spec §5.2, §6, §11.10) -----------------------------------------------------------
def test_parameter_download_and_unsupported_downloads(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            downloaded = await terminal.parameters()
            assert downloaded.response_code == "00"
            assert downloaded.parameters["12"] == "60"
            assert downloaded.parameters["22"]
            assert terminal.state.merchant_name == downloaded.parameters["22"]
            capk = {MTI: "0800", "41": DEMO_TID, "42": DEMO_MID, "60": "00000001370"}
            reply = await send(env.port, terminal.encode_frame(capk))
        assert reply is not None
        assert (reply.code, reply.message[MTI], reply.message["60"]) == (
            "40",
            "0810",
            "00000001370",
        )

    run(gateway_settings, demo_database, scenario)


def test_sign_on_modes_deliver_keys_whose_check_values_verify(
    gateway_settings: Settings, demo_database: Database
) -> None:
    expected = {"001": (8, 8, None, 24), "003": (16, 8, None, 40), "004": (16, 8, 16, 60)}

    async def scenario(env: Env) -> None:
        seen = set()
        async with env.terminal() as terminal:
            for stan, (mode, (pik, mak, tdk, size)) in enumerate(expected.items(), start=1):
                reply = await send(
                    env.port,
                    terminal.encode_frame(
                        _sign_on_message(DEMO_TID, DEMO_MID, mode, stan=f"{stan:06d}")
                    ),
                )
                assert reply is not None
                assert (reply.code, reply.mac, reply.message["60"]) == (
                    "00",
                    False,
                    f"00000001{mode}",
                )
                field62 = bytes.fromhex(reply.message["62"])
                assert len(field62) == size
                keys = read_field62(TEST_TMK, field62, mode)  # raises on a wrong check value
                assert (len(keys.pik), len(keys.mak), keys.tdk and len(keys.tdk)) == (pik, mak, tdk)
                seen.add(keys.mak)
                terminal.install_keys(keys)
                sale = await _send_request(
                    env, terminal, request(terminal, Kind.SALE, card=CARD, amount_fen=100)
                )
                assert sale.code == "00"
                assert sale.verifies(keys)
        assert len(seen) == 3  # fresh keys at every sign-on

    run(gateway_settings, demo_database, scenario)


# --- Settlement (spec §5.6, §11.13) -----------------------------------------------------------------
def test_an_unbalanced_settlement_uploads_closes_the_batch_and_moves_to_the_next(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            await terminal.sale(CARD, 1_000)
            lost = await terminal.sale(CARD, 2_000)
            # The terminal lost one transaction from its journal: its totals differ.
            terminal.state.journal = [e for e in terminal.state.journal if e.rrn != lost.rrn]
            report = await terminal.settle()
            settlement = report.settlement
            assert settlement is not None
            assert report.response_code == "00"
            assert Settlement48.parse(report.response["48"]).domestic_result == "2"
            assert (settlement.result, settlement.uploaded, settlement.end_code) == ("2", 1, "00")
            assert settlement.closed
            assert terminal.state.batch == "000002"
            assert (await terminal.sale(CARD, 300)).response_code == "00"
            stale = request(
                terminal, Kind.SALE, card=CARD, amount_fen=400, changes={"60": "2200000100060"}
            )
            refused = await _send_request(env, terminal, stale)
            assert (refused.code, refused.requirement) == ("77", 3)
        batches = probes.rows(env.database, TerminalBatch, "id")
        assert [(b.batch_no, b.status, b.result, b.uploaded_records) for b in batches] == [
            ("000001", "closed", "2", 1),
            ("000002", "open", None, 0),
        ]
        assert (batches[0].host_debit_fen, batches[0].terminal_debit_fen) == (3_000, 1_000)

    run(gateway_settings, demo_database, scenario)
