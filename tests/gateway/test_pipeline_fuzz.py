"""Property: whatever bytes a connection sends, the gateway answers with a well-formed frame
or closes the connection, never crashes or logs an error, and money moves at the issuer only
as its journal says (spec §7, §11.9; DESIGN: "no approved answer before its row is durable").

The inputs are real requests of the demo terminal — sale, void, refund, reversal,
settlement, sign-on, QR sale — correctly MACed with the keys of a fresh sign-on, then
mutated: a byte flipped (anywhere, or in the unMACed TPDU and header), the frame cut short,
bytes inserted or deleted, a region repeated; usually with the length prefix fixed up so the
mutation reaches the decoder, sometimes not. One gateway and one network simulator serve
every example, in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poshub.core.db import Database
from poshub.core.settings import Settings
from poshub.gateway import codec
from poshub.gateway.constants import MTI, Rc
from poshub.gateway.fields import Settlement48
from poshub.gateway.models import TxnStatus
from poshub.risk.schemas import RuleCode
from poshub.simulators.terminal import JournalEntry, Kind, TerminalClient
from tests.gateway import probes
from tests.gateway.support import CARD, DEMO_MID, DEMO_TID, Env, running, set_rule

QR_CODE = "134567890123456789"
KINDS = ("sale", "void", "refund", "reversal", "settlement", "sign_on", "qr_sale")
OPERATIONS = ("flip", "flip_envelope", "truncate", "insert", "delete", "duplicate", "none")
RESPONSE_CODES = frozenset(code.value for code in Rc)
ANSWER_SECONDS = 5.0
"""A complete frame is answered (or its connection closed) well within this."""


@dataclass(frozen=True)
class Mutation:
    kind: str
    operation: str
    position: int
    size: int
    data: bytes
    fix_length: bool

    def apply(self, frame: bytes) -> bytes:
        payload = bytearray(frame[2:])
        at = self.position % (len(payload) + 1)
        if self.operation == "flip":
            at %= len(payload)
            payload[at] ^= self.data[0] or 0x01
        elif self.operation == "flip_envelope":
            at %= codec.TPDU_BYTES + codec.HEADER_BYTES
            payload[at] ^= self.data[0] or 0x01
        elif self.operation == "truncate":
            del payload[at:]
        elif self.operation == "insert":
            payload[at:at] = self.data
        elif self.operation == "delete":
            del payload[at : at + self.size]
        elif self.operation == "duplicate":
            payload[at:at] = payload[at : at + self.size]
        length = len(payload) if self.fix_length else int.from_bytes(frame[:2], "big")
        return length.to_bytes(2, "big") + bytes(payload)


mutations = st.builds(
    Mutation,
    kind=st.sampled_from(KINDS),
    operation=st.sampled_from(OPERATIONS),
    position=st.integers(min_value=0, max_value=4096),
    size=st.integers(min_value=1, max_value=24),
    data=st.binary(min_size=1, max_size=24),
    fix_length=st.sampled_from((True, True, True, False)),
)


class Harness:
    """The demo terminal against the shared gateway: builds one real request per example."""

    def __init__(self, env: Env, terminal: TerminalClient, original: JournalEntry) -> None:
        self.env = env
        self.terminal = terminal
        self.original = original

    async def base_frame(self, kind: str) -> bytes:
        terminal = self.terminal
        await terminal.sign_on()  # fresh keys: a mutation may have re-keyed the terminal
        if kind == "sale":
            return terminal.encode_frame(
                probes.request(terminal, Kind.SALE, card=CARD, amount_fen=123)
            )
        if kind == "qr_sale":
            return terminal.encode_frame(
                probes.request(terminal, Kind.QR_SALE, qr_code=QR_CODE, amount_fen=77)
            )
        if kind == "void":
            return terminal.encode_frame(
                probes.request(
                    terminal, Kind.VOID, card=CARD, amount_fen=self.original.amount_fen,
                    original=self.original,
                )
            )  # fmt: skip
        if kind == "refund":
            return terminal.encode_frame(
                probes.request(
                    terminal, Kind.REFUND, card=CARD, amount_fen=5, original=self.original
                )
            )
        if kind == "reversal":
            never_sent = probes.request(terminal, Kind.SALE, card=CARD, amount_fen=321)
            return terminal.encode_frame(TerminalClient.reversal_of(never_sent, "98"))
        if kind == "settlement":
            return terminal.encode_frame(
                {
                    MTI: "0500",
                    "11": terminal.state.next_stan(),
                    "41": DEMO_TID,
                    "42": DEMO_MID,
                    "48": Settlement48.request(terminal.state.totals()).text(),
                    "49": "156",
                    "60": f"00{terminal.state.batch}201",
                    "63": "01 ",
                }
            )
        assert kind == "sign_on"
        return terminal.encode_frame(
            {
                MTI: "0800",
                "11": terminal.state.next_stan(),
                "41": DEMO_TID,
                "42": DEMO_MID,
                "60": f"00{terminal.state.batch}003",
                "63": "01 ",
            }
        )

    async def feed(self, data: bytes) -> probes.Reply | str | None:
        """The answer, None when the host closed the connection, ``"incomplete"`` when the
        bytes end inside a frame the host is (rightly) still waiting for."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.env.port)
        try:
            writer.write(data)
            await writer.drain()
            declared = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
            if len(data) < 2 + declared and codec.ENVELOPE_BYTES_MIN <= declared <= 2048:
                return "incomplete"
            payload = await probes.read_payload(reader, ANSWER_SECONDS)
        finally:
            writer.close()
        return probes.reply_of(payload) if payload is not None else None


@contextlib.contextmanager
def _gateway(
    settings_: Settings, database: Database
) -> Iterator[tuple[asyncio.AbstractEventLoop, Harness]]:
    # Hundreds of requests from one terminal and one card within seconds are what card
    # velocity and card testing exist to stop (65, 59); raised here as a risk officer
    # would for a test terminal, so that every other rule still runs on mutated input.
    set_rule(database, RuleCode.CARD_VELOCITY, max_count=100_000)
    set_rule(database, RuleCode.CARD_TESTING, max_declines=100_000)
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    try:
        env = loop.run_until_complete(stack.enter_async_context(running(settings_, database)))
        terminal = env.terminal()
        stack.push_async_callback(terminal.close)

        async def setup() -> JournalEntry:
            await terminal.sign_on()
            return probes.original_of(terminal, await terminal.sale(CARD, 50_000))

        yield loop, Harness(env, terminal, loop.run_until_complete(setup()))
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


def _money_taken_by_the_journal(database: Database) -> tuple[int, int]:
    """Fen the journal says left the card and the QR wallet: approved (or later voided)
    sales, minus approved voids and refunds."""
    card = wallet = 0
    for row in probes.journal(database):
        amount = row.amount_fen or 0
        if row.kind in ("sale", "qr_sale") and row.status in (TxnStatus.APPROVED, TxnStatus.VOIDED):
            sign = 1
        elif row.kind in ("void", "refund") and row.status == TxnStatus.APPROVED:
            sign = -1
        else:
            continue
        if row.kind == "qr_sale" or (row.pan_last4 is None and row.entry_mode == "032"):
            wallet += sign * amount
        else:
            card += sign * amount
    return card, wallet


def test_mutated_requests_never_break_the_gateway_or_move_money_unjournalled(
    gateway_settings: Settings, demo_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    outcomes: dict[str, int] = {}
    with _gateway(gateway_settings, demo_database) as (loop, harness):
        env = harness.env
        card_before = env.simulator.balance_fen(CARD.pan) + harness.original.amount_fen
        wallet_before = env.simulator.wallet_balance_fen(QR_CODE)

        @settings(
            max_examples=200,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(mutation=mutations)
        def example(mutation: Mutation) -> None:
            frame = loop.run_until_complete(harness.base_frame(mutation.kind))
            result = loop.run_until_complete(harness.feed(mutation.apply(frame)))
            if isinstance(result, str) or result is None:
                outcomes[result or "closed"] = outcomes.get(result or "closed", 0) + 1
                return
            outcomes[result.code] = outcomes.get(result.code, 0) + 1
            assert result.code in RESPONSE_CODES
            assert result.message[MTI][2] in "13579"  # a response MTI
            if result.mac:
                keys = harness.terminal.keys
                assert keys is not None
                assert result.verifies(keys)

        example()

        async def finish() -> dict[str, Any]:
            await harness.terminal.sign_on()
            final = await harness.terminal.sale(CARD, 100)

            def drained() -> bool:
                return all(
                    r.acknowledged_at is not None for r in probes.reversals_owed(env.database)
                )

            return {
                "final": final.response_code,
                "drained": await probes.eventually(drained, timeout=10.0),
                "errors": env.gateway.server.stats.errors,
                "card": card_before - env.simulator.balance_fen(CARD.pan),
                "wallet": wallet_before - env.simulator.wallet_balance_fen(QR_CODE),
            }

        end = loop.run_until_complete(finish())
    assert end["final"] == "00"
    assert end["drained"]
    assert end["errors"] == 0
    pending = [r.rrn for r in probes.journal(demo_database) if r.status == TxnStatus.PENDING]
    assert pending == []
    assert (end["card"], end["wallet"]) == _money_taken_by_the_journal(demo_database)
    errors = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith(("poshub.gateway", "poshub.simulators"))
    ]
    assert errors == []
    assert sum(outcomes.values()) >= 200
    assert "00" in outcomes  # some mutations (envelope, none) leave a request that is served
