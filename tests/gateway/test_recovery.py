"""Restart and failure semantics, in process (docs/gateway.md, "Durability"): what a crash
between forwarding and answering leaves, how store-and-forward gets the network its
reversals, what a late answer, a full journal or a race between two copies of one request
do. (The SIGKILL test under load is tests/gateway/test_crash_recovery.py.)

A "crash" here stops the gateway's parts without letting the request in flight finish: the
network link double forwards the request to the simulator (which applies it) and never
hands the answer back, like a process that died while waiting."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from poshub.core import limits
from poshub.core.db import Database
from poshub.core.settings import Settings
from poshub.gateway import codec, repository
from poshub.gateway.journal import Journal, JournalFull, Op
from poshub.gateway.link import TcpNetworkLink
from poshub.gateway.process import RunningGateway, start_gateway
from poshub.simulators.network import NetworkSimulator
from poshub.simulators.terminal import Kind, NoAnswer, TerminalClient
from tests.gateway import probes
from tests.gateway.probes import request, send
from tests.gateway.support import CARD, DEMO_MID, DEMO_TID, TEST_TMK, Env, run

ACK_SECONDS = 8.0


class ForwardThenHang:
    """A network link that forwards requests of the given MTIs and never returns their
    answer (the others pass through): the gateway dies while waiting."""

    def __init__(self, inner: TcpNetworkLink, hang_on: frozenset[str]) -> None:
        self.inner = inner
        self.hang_on = hang_on
        self.forwarded: list[codec.Message] = []

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    def is_up(self) -> bool:
        return self.inner.is_up()

    async def request(self, message: codec.Message, *, timeout: float) -> codec.Message | None:
        answer = await self.inner.request(message, timeout=timeout)
        if message["t"] not in self.hang_on:
            return answer
        self.forwarded.append(message)
        await asyncio.Event().wait()
        return None


class SlowLink:
    """Forwards after a pause: a request stays in flight for ``delay`` seconds."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    def is_up(self) -> bool:
        return bool(self.inner.is_up())

    async def request(self, message: codec.Message, *, timeout: float) -> codec.Message | None:
        await asyncio.sleep(self.delay)
        answer: codec.Message | None = await self.inner.request(message, timeout=timeout)
        return answer


class DelayingProxy:
    """TCP between the gateway and the simulator; answers are held back ``delay`` seconds."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay = 0.0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )

        async def pump(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, held: bool
        ) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    if held and self.delay:
                        await asyncio.sleep(self.delay)
                    sink.write(data)
                    await sink.drain()
            sink.close()

        for task in (
            asyncio.create_task(pump(reader, upstream_writer, held=False)),
            asyncio.create_task(pump(upstream_reader, writer, held=True)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


def _terminal(port: int) -> TerminalClient:
    return TerminalClient(
        "127.0.0.1", port, tid=DEMO_TID, mid=DEMO_MID, tmk=TEST_TMK, timeout_seconds=5.0
    )


async def _crash(running: RunningGateway) -> None:
    """Stop every part without letting the request in flight finish."""
    await running.server.stop(drain_seconds=0)
    await running.store_and_forward.stop()
    await running.link.close()
    await asyncio.get_running_loop().run_in_executor(None, running.journal.stop)
    running.gateway.close()


@contextlib.asynccontextmanager
async def _gateway(env: Env, link: Any, *, primary: bool = True) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(
        env.settings, database=env.database, link=link, host="127.0.0.1", port=0, primary=primary
    )
    try:
        yield running
    finally:
        await running.stop()


async def _acknowledged(database: Database, count: int = 1) -> list[Any]:
    def done() -> list[Any] | None:
        owed = probes.reversals_owed(database)
        if len(owed) >= count and all(r.acknowledged_at is not None for r in owed):
            return owed
        return None

    owed = await probes.eventually(done, timeout=ACK_SECONDS)
    assert owed, f"reversals not acknowledged: {probes.reversals_owed(database)}"
    return list(owed)


# --- A crash between forwarding and answering --------------------------------------------------------
def test_a_request_forwarded_and_never_answered_is_reversed_at_restart(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        await _crash(env.gateway)  # the fixture's gateway: replaced by ours below
        before = env.simulator.balance_fen(CARD.pan)
        link = ForwardThenHang(TcpNetworkLink("127.0.0.1", env.simulator.port), frozenset({"0200"}))
        first = await start_gateway(
            env.settings, database=env.database, link=link, host="127.0.0.1", port=0
        )
        terminal = _terminal(first.port)
        await terminal.sign_on()
        sale = request(terminal, Kind.SALE, card=CARD, amount_fen=6_600)
        frame = terminal.encode_frame(sale)
        in_flight = asyncio.create_task(send(first.port, frame))
        assert await probes.eventually(lambda: link.forwarded)
        assert before - env.simulator.balance_fen(CARD.pan) == 6_600  # the issuer took it
        [row] = [r for r in probes.journal(env.database) if r.kind == "sale"]
        assert (row.status, row.upstream) == ("pending", "forwarded")
        await _crash(first)
        assert await in_flight is None  # the terminal never got an answer
        await terminal.close()

        async with _gateway(env, TcpNetworkLink("127.0.0.1", env.simulator.port)) as second:
            assert second.recovered == 1
            owed = await _acknowledged(env.database)
            assert [(r.rrn, r.reason) for r in owed] == [(row.rrn, "98")]
            recovered = probes.journal_row(env.database, row.rrn)
            assert (recovered.status, recovered.response_code) == ("reversed", None)
            assert env.simulator.balance_fen(CARD.pan) == before
            assert env.simulator.counters.reversals_applied == 1
            # The terminal's own reversal (spec §5.5) changes nothing more.
            terminal = _terminal(second.port)
            await terminal.sign_on()  # new keys: the reversal is MACed with them
            reply = await send(second.port, terminal.encode_frame(terminal.reversal_of(sale, "98")))
            assert reply is not None
            assert reply.code == "00"
            await asyncio.sleep(0.2)
            await terminal.close()
        assert env.simulator.counters.reversals_applied == 1
        assert len(probes.reversals_owed(env.database)) == 1

    run(gateway_settings, demo_database, scenario)


# --- Late answers and store-and-forward --------------------------------------------------------------
def test_a_late_network_answer_after_the_reversal_changes_nothing(
    gateway_settings: Settings, demo_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "SAF_RETRY_SECONDS_MIN", 0.2)
    settings = gateway_settings.model_copy(update={"gateway_upstream_timeout_seconds": 0.4})

    async def scenario(env: Env) -> None:
        proxy = DelayingProxy(env.simulator.port)
        link = TcpNetworkLink("127.0.0.1", await proxy.start())
        before = env.simulator.balance_fen(CARD.pan)
        async with _gateway(env, link) as gateway:
            gateway.store_and_forward.poll_seconds = 0.1
            terminal = _terminal(gateway.port)
            await terminal.sign_on()
            proxy.delay = 1.0
            frame = terminal.encode_frame(request(terminal, Kind.SALE, card=CARD, amount_fen=9_900))
            reply = await send(gateway.port, frame)
            assert reply is not None
            assert reply.code == "98"
            rrn = reply.message["37"]
            assert await probes.eventually(lambda: link.counters.late >= 1, timeout=3.0)
            assert probes.journal_row(env.database, rrn).status == "reversed"
            proxy.delay = 0.0
            await _acknowledged(env.database)
            await terminal.close()
        await proxy.stop()
        assert probes.journal_row(env.database, rrn).status == "reversed"
        assert env.simulator.balance_fen(CARD.pan) == before
        assert env.simulator.counters.reversals_applied == 1

    run(settings, demo_database, scenario)


def test_store_and_forward_retries_while_the_network_is_down_and_delivers_when_it_is_back(
    gateway_settings: Settings, demo_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "SAF_RETRY_SECONDS_MIN", 0.1)
    monkeypatch.setattr(limits, "SAF_RETRY_SECONDS_MAX", 0.4)

    async def scenario(env: Env) -> None:
        await _crash(env.gateway)
        port = env.simulator.port
        before = env.simulator.balance_fen(CARD.pan)
        link = ForwardThenHang(TcpNetworkLink("127.0.0.1", port), frozenset({"0200"}))
        first = await start_gateway(
            env.settings, database=env.database, link=link, host="127.0.0.1", port=0
        )
        terminal = _terminal(first.port)
        await terminal.sign_on()
        frame = terminal.encode_frame(request(terminal, Kind.SALE, card=CARD, amount_fen=4_400))
        in_flight = asyncio.create_task(send(first.port, frame))
        assert await probes.eventually(lambda: link.forwarded)
        await _crash(first)
        await in_flight
        await terminal.close()
        await env.simulator.stop()  # the network goes down too

        down_link = TcpNetworkLink("127.0.0.1", port, backoff_max=0.2)
        async with _gateway(env, down_link) as second:
            second.store_and_forward.poll_seconds = 0.1
            assert second.recovered == 1

            def retried() -> Any:
                owed = probes.reversals_owed(env.database)
                return owed if owed and owed[0].attempts >= 3 else None

            [row] = await probes.eventually(retried, timeout=5.0)
            assert row.acknowledged_at is None
            assert row.last_error == "link down"
            assert row.next_attempt_at > row.created_at
            # Back up, on the same address, with its ledger (the sale it applied).
            simulator = NetworkSimulator(env.settings, host="127.0.0.1", port=port)
            await simulator.start()
            try:
                [done] = await _acknowledged(env.database)
                assert done.attempts > row.attempts
                assert simulator.balance_fen(CARD.pan) == before
                assert simulator.counters.reversals_applied == 1
            finally:
                await simulator.stop()

    run(gateway_settings, demo_database, scenario)


# --- The journal's bound ---------------------------------------------------------------------------------
def test_the_journal_refuses_work_beyond_its_queue_bound(demo_database: Database) -> None:
    async def scenario() -> None:
        journal = Journal(demo_database, queue_max=2)
        journal.start(asyncio.get_running_loop())
        release = threading.Event()
        write_group = journal._write_group

        def stuck(items: Any) -> None:
            release.wait(5.0)
            write_group(items)

        journal._write_group = stuck  # type: ignore[method-assign]
        op = Op(
            repository.MAC_FAILURE,
            {"b_tid": "00000000", "mac_failures": 0, "last_mac_failure_at": None},
        )
        accepted = [journal.submit([op]), journal.submit([op])]
        with pytest.raises(JournalFull):
            journal.submit([op])
        assert journal.backlog == 2
        release.set()
        await asyncio.wait_for(asyncio.gather(*accepted), 5.0)
        assert await probes.eventually(lambda: journal.backlog == 0, timeout=2.0)
        await asyncio.wait_for(journal.write([op]), 5.0)  # room again
        await asyncio.get_running_loop().run_in_executor(None, journal.stop)

    asyncio.run(scenario())


def test_a_full_journal_answers_96_and_forwards_nothing(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        gateway = env.gateway.gateway
        async with env.terminal() as terminal:
            await terminal.sign_on()
            working = gateway.journal
            full = Journal(env.database, queue_max=0)
            full.start(asyncio.get_running_loop())
            gateway.journal = full
            refused = await terminal.sale(CARD, 100)
            assert refused.response_code == "96"
            assert "64" in refused.response  # signed: a real answer, nothing to reverse
            assert env.simulator.counters.requests == 0
            gateway.journal = working
            await asyncio.get_running_loop().run_in_executor(None, full.stop)
            assert (await terminal.sale(CARD, 100)).response_code == "00"

    run(gateway_settings, demo_database, scenario)


def test_a_journal_failure_after_the_network_approved_leaves_no_money_taken(
    gateway_settings: Settings, demo_database: Database
) -> None:
    """The network approved, the final row could not be written: the terminal must not get
    an answer it takes as final (96 would leave the cardholder charged); without one it
    reverses (spec §5.5) and the reversal gives the money back."""

    class FailFinal:
        def __init__(self, journal: Journal) -> None:
            self.journal = journal

        async def write(self, ops: list[Op]) -> None:
            if any(
                op.statement == repository.INSERT_TXN and op.params["status"] == "approved"
                for op in ops
            ):
                raise JournalFull("journal queue full")
            await self.journal.write(ops)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.journal, name)

    async def scenario(env: Env) -> None:
        gateway = env.gateway.gateway
        before = env.simulator.balance_fen(CARD.pan)
        async with env.terminal() as terminal:
            await terminal.sign_on()
            working = gateway.journal
            gateway.journal = FailFinal(working)  # type: ignore[assignment]
            with pytest.raises(NoAnswer):
                await terminal.sale(CARD, 7_700)
            assert terminal.reversal_pending
            gateway.journal = working
            assert (await terminal.reverse()).response_code == "00"
        await _acknowledged(env.database)
        assert env.simulator.balance_fen(CARD.pan) == before
        [sale] = [r for r in probes.journal(env.database) if r.kind == "sale"]
        assert sale.status == "reversed"

    run(gateway_settings, demo_database, scenario)


# --- Two copies of one request at once ------------------------------------------------------------------
def test_one_request_on_two_connections_at_once_is_answered_once(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        env.gateway.gateway.link = SlowLink(env.gateway.link, 0.3)  # both are in flight together
        async with env.terminal() as terminal:
            await terminal.sign_on()
            frame = terminal.encode_frame(request(terminal, Kind.SALE, card=CARD, amount_fen=3_300))
            first, second = await asyncio.gather(send(env.port, frame), send(env.port, frame))
        assert first is not None
        assert second is not None
        assert (first.code, second.code) == ("00", "00")
        assert (first.message["37"], first.message["38"]) == (
            second.message["37"],
            second.message["38"],
        )
        assert before - env.simulator.balance_fen(CARD.pan) == 3_300
        assert len([r for r in probes.journal(env.database) if r.kind == "sale"]) == 1

    run(gateway_settings, demo_database, scenario)


def test_one_request_racing_through_two_gateway_processes_gets_one_answer(
    gateway_settings: Settings, demo_database: Database
) -> None:
    """Two processes on one database (docs/gateway.md, "Several gateway processes"): the
    second finds the first's pending row (DuplicateKey) and must answer as the first did."""

    async def scenario(env: Env) -> None:
        before = env.simulator.balance_fen(CARD.pan)
        env.gateway.gateway.link = SlowLink(env.gateway.link, 0.5)
        worker = TcpNetworkLink("127.0.0.1", env.simulator.port)
        async with _gateway(env, worker, primary=False) as other, env.terminal() as terminal:
            await terminal.sign_on()
            frame = terminal.encode_frame(request(terminal, Kind.SALE, card=CARD, amount_fen=2_200))
            first = asyncio.create_task(send(env.port, frame))
            await probes.eventually(
                lambda: any(r.status == "pending" for r in probes.journal(env.database))
            )
            second = await send(other.port, frame)
            first_reply = await first
        assert first_reply is not None
        assert second is not None
        assert first_reply.code == "00"
        assert (second.code, second.message["37"], second.message.get("38")) == (
            "00",
            first_reply.message["37"],
            first_reply.message["38"],
        )
        assert before - env.simulator.balance_fen(CARD.pan) == 2_200

    run(gateway_settings, demo_database, scenario)
