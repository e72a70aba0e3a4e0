"""An advice whose answer a crash lost is forwarded again when its terminal resends it.

A refund is an advice (0220): never reversed, resent by the terminal until answered
(spec §5.4). Recovery leaves a crash's pending advice as it is for that resend; the
resend must go to the network again with the same RRN (the network answers a repeated
RRN with its first answer), and its answer finish the journal row. Found by the crash
test (test_crash_recovery.py): the resend was answered ``98`` from the pending row and
the refund the issuer had applied stayed pending in the journal for ever.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from poshub.core.db import Database, table_of
from poshub.core.settings import Settings
from poshub.gateway import codec
from poshub.gateway.constants import MTI, Mti
from poshub.gateway.link import NetworkLink, TcpNetworkLink
from poshub.gateway.models import GatewayTransaction
from poshub.gateway.process import start_gateway
from poshub.simulators.network import NetworkSimulator
from poshub.simulators.terminal import Kind, TerminalClient
from tests.gateway.support import CARD, DEMO_MID, DEMO_TID, TEST_TMK, decode_answer, exchange


class Crash(Exception):
    """The process died here (the pipeline writes nothing more for the request)."""


class CrashAfterForwardingAdvices:
    """The real link, except that an advice's answer is lost with the process that sent
    it: the network has seen (and applied) it, the journal row stays pending."""

    def __init__(self, inner: NetworkLink) -> None:
        self.inner = inner

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    def is_up(self) -> bool:
        return self.inner.is_up()

    async def request(self, message: codec.Message, *, timeout: float) -> codec.Message | None:
        response = await self.inner.request(message, timeout=timeout)
        if message[MTI] == Mti.ADVICE:
            raise Crash("the gateway died before the advice's answer was written")
        return response


def _row(database: Database, rrn: str) -> tuple[str, str | None, str]:
    table = table_of(GatewayTransaction)
    with database.unit_of_work(read_only=True) as uow:
        row = uow.session.execute(select(table).where(table.c.rrn == rrn)).one()
    return row.status, row.response_code, row.upstream


def _refunds(database: Database) -> list[str]:
    table = table_of(GatewayTransaction)
    with database.unit_of_work(read_only=True) as uow:
        return list(
            uow.session.execute(select(table.c.rrn).where(table.c.kind == "refund")).scalars()
        )


def test_a_resent_advice_left_pending_by_a_crash_goes_to_the_network_again(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def main() -> dict[str, object]:
        simulator = NetworkSimulator(gateway_settings, host="127.0.0.1", port=0)
        await simulator.start()
        before = simulator.balance_fen(CARD.pan)
        crashing = await start_gateway(
            gateway_settings,
            database=demo_database,
            link=CrashAfterForwardingAdvices(TcpNetworkLink("127.0.0.1", simulator.port)),
            host="127.0.0.1",
            port=0,
        )
        outcome: dict[str, object] = {}
        try:
            terminal = TerminalClient(
                "127.0.0.1", crashing.port, tid=DEMO_TID, mid=DEMO_MID, tmk=TEST_TMK
            )
            async with terminal:
                await terminal.sign_on()
                sale = await terminal.sale(CARD, 50_00)
            assert sale.rrn is not None
            original = terminal.state.find(sale.rrn)
            assert original is not None
            refund = terminal.build_request(
                Kind.REFUND,
                stan=terminal.state.next_stan(),
                card=CARD,
                amount_fen=12_00,
                original=original,
            )
            frame = terminal.encode_frame(refund)
            outcome["first"] = await exchange(crashing.port, [frame])
            (rrn,) = _refunds(demo_database)
            outcome["left"] = _row(demo_database, rrn)
        finally:
            await crashing.stop()
        # The next process: recovery leaves the advice pending; the terminal resends it.
        restarted = await start_gateway(
            gateway_settings,
            database=demo_database,
            link=TcpNetworkLink("127.0.0.1", simulator.port),
            host="127.0.0.1",
            port=0,
        )
        try:
            (answer,) = await exchange(restarted.port, [frame])
            _, response = decode_answer(answer)
            outcome["code"], outcome["rrn"] = response["39"], response["37"]
            outcome["finished"] = _row(demo_database, rrn)
            outcome["refunds"] = _refunds(demo_database)
            outcome["spent"] = before - simulator.balance_fen(CARD.pan)
            outcome["repeats"] = simulator.counters.repeats
        finally:
            await restarted.stop()
            await simulator.stop()
        outcome["pending rrn"] = rrn
        return outcome

    outcome = asyncio.run(main())
    assert outcome["first"] == [b""]  # the connection died with the request
    assert outcome["left"] == ("pending", None, "forwarded")
    assert outcome["code"] == "00"
    assert outcome["rrn"] == outcome["pending rrn"]
    assert outcome["finished"] == ("approved", "00", "answered")
    assert outcome["refunds"] == [outcome["pending rrn"]]
    assert outcome["spent"] == 50_00 - 12_00  # the refund applied once
    assert outcome["repeats"] == 1  # the network saw the same RRN twice
