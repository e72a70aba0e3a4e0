"""SIGKILL the gateway under load, again and again (docs/gateway.md, "Durability").

The gateway runs as a subprocess (``python -m poshub.cli gateway``) on a copy of the demo
data with six load-test terminals; the network simulator runs in this process, on its
own thread's event loop, so its ledger can be read directly. Each terminal is a
``TerminalClient`` selling continuously on its own card, one sale in ten with an amount
ending 91 (the issuer applies it and never answers: the gateway answers ``98`` and owes
the network a reversal). The gateway is killed with SIGKILL at a random moment after
each start, and started again; terminals reverse what they sent and never got an answer
for, as real ones do (spec §5.5).

After each restart every ``00`` a terminal has received is in the journal and nothing
reversible is left ``pending``. At the end, once store-and-forward has drained:

* every ``00`` a terminal received is an approved journal row;
* every reversal the gateway owed the network (each forwarded request left unanswered
  by a crash or a timeout, each approval a terminal reversed) was acknowledged, and the
  issuer applied each exactly once;
* journal and issuer agree sale by sale, and each card's balance is its opening balance
  minus the approved sales of the journal: no money appeared or disappeared.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
from sqlalchemy import select

from poshub.bootstrap import build_state
from poshub.core.crypto import KeyVault, load_kek
from poshub.core.db import Database, make_engine, table_of
from poshub.core.settings import Mode, Settings
from poshub.demo import card_number, seed_load_terminals
from poshub.gateway.constants import F_STAN
from poshub.gateway.crypto import load_network_zpk
from poshub.gateway.models import GatewayTransaction, NetworkReversal, TxnKind, TxnStatus
from poshub.notify.adapters import MemoryNotifier
from poshub.simulators.issuer import CARD_OPENING_BALANCE_FEN, Authorization, Status, TxKind
from poshub.simulators.network import NetworkSimulator
from poshub.simulators.terminal import (
    BatchFull,
    Card,
    JournalEntry,
    Kind,
    NoAnswer,
    ReversalFailed,
    TerminalClient,
    TerminalError,
)
from tests.conftest import TEST_KEK
from tests.gateway.support import TEST_TMK

pytestmark = pytest.mark.slow

KILLS = 20
TERMINALS = 6
KILL_AFTER_SECONDS = (0.2, 1.0)
"""When each kill comes, counted from the moment the restarted gateway accepts."""
NO_ANSWER_SHARE = 0.1
"""Sales with an amount ending 91: applied upstream, never answered."""
REFUND_SHARE = 0.15
"""Requests that refund part of an earlier sale (an advice, 0220: resent, never reversed)."""
PAUSE_SECONDS_MAX = 0.03
"""A terminal's pause between sales (keeps each batch under 500 entries)."""
UPSTREAM_TIMEOUT_SECONDS = 1.0
TERMINAL_TIMEOUT_SECONDS = 5.0
START_TIMEOUT_SECONDS = 45.0
LAST_RUN_SECONDS = 2.0
"""Load on the last gateway, which is not killed: owed reversals go through."""
WORKERS_STOP_TIMEOUT_SECONDS = 30.0
DRAIN_TIMEOUT_SECONDS = 40.0
STOP_TIMEOUT_SECONDS = 15.0
AVOIDED_ENDINGS = frozenset({51, 5, 61, 96, 91})
"""Amount endings (fen) the issuer declines, or never answers (docs/test-cards.md)."""
FOREIGN_SIGNALS_MAX = 3
RECOVERED_LINE = re.compile(r"recovered (\d+) forwarded, unanswered requests")

T = TypeVar("T")


# --- The network simulator on its own thread -----------------------------------------------
class SimulatorThread:
    """The network simulator on an event loop of its own; ``read`` runs a function on that
    loop, so the test never looks at the ledger while the simulator changes it."""

    def __init__(self, settings: Settings) -> None:
        self.simulator = NetworkSimulator(settings, host="127.0.0.1", port=0)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="network-simulator", daemon=True
        )

    def start(self) -> int:
        self._thread.start()
        self.call(self.simulator.start())
        return self.simulator.port

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def read(self, function: Callable[[NetworkSimulator], T]) -> T:
        async def run() -> T:
            return function(self.simulator)

        return self.call(run())

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.call(self.simulator.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()


# --- The gateway as a process ----------------------------------------------------------------
class _ForeignSignal(Exception):
    """The gateway died of a signal this test did not send."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class GatewayProcess:
    """``python -m poshub.cli gateway`` with the test's settings in its environment; its
    log (every start) goes to one file."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path, cwd: Path) -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0
        self.foreign_signals = 0

    def start(self) -> None:
        assert self.process is None
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "poshub.cli", "gateway"],
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # signals to the test's process group miss it
        )
        self.starts += 1

    async def restart(self) -> float:
        """Start and wait until ready. A start ended by a signal this test did not send
        (something else on a shared machine) is counted and started again."""
        for _ in range(FOREIGN_SIGNALS_MAX + 1):
            self.start()
            try:
                return await self.wait_ready()
            except _ForeignSignal:
                self.foreign_signals += 1
                self._closed()
        raise AssertionError(f"the gateway kept being killed from outside:\n{self.log_tail()}")

    async def wait_ready(self) -> float:
        """Seconds until the gateway accepts connections (it listens only after its
        recovery has been committed)."""
        started = time.monotonic()
        deadline = started + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            code = self.process.poll()
            if code is not None and code < 0:
                raise _ForeignSignal(code)
            if code is not None:
                raise AssertionError(f"the gateway exited with {code}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return time.monotonic() - started
            await asyncio.sleep(0.05)
        raise AssertionError(f"the gateway did not start in time:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT_SECONDS)
        self._closed()

    def terminate(self) -> int | None:
        """SIGTERM (a clean stop), SIGKILL if it does not end in time."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_SECONDS)
        self._closed()
        return code

    def _closed(self) -> None:
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def recovered(self) -> int:
        """Requests the gateway's recoveries marked reversed (from its log)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return sum(int(m.group(1)) for m in RECOVERED_LINE.finditer(text))


# --- The terminals ---------------------------------------------------------------------------
@dataclass
class TerminalLog:
    """Everything one terminal was told."""

    tid: str
    card: Card
    requests: int = 0
    approved: dict[str, int] = field(default_factory=dict)
    """RRN → amount of every sale or refund answered 00 (directly, not as a resend)."""
    codes: Counter[str] = field(default_factory=Counter)
    """``kind code`` → how many answers."""
    unanswered: int = 0
    """Sales sent and never answered (a kill, usually): the terminal owes a reversal."""
    advices_unanswered: int = 0
    """Refunds (advices) sent and never answered: the terminal resends them."""
    refunded: set[str] = field(default_factory=set)
    """Sales a refund was sent for (each is refunded at most once)."""
    reversals: dict[str, str] = field(default_factory=dict)
    """STAN of an unanswered sale → the code of the 0410 to its reversal."""
    reversals_abandoned: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    journal: list[JournalEntry] = field(default_factory=list)
    """The terminal's own journal at the end: what it counts as approved."""


def _amount(rng: random.Random) -> int:
    if rng.random() < NO_ANSWER_SHARE:
        return rng.randrange(1, 50) * 100 + 91
    amount = rng.randrange(100, 5_000)
    while amount % 100 in AVOIDED_ENDINGS:
        amount += 1
    return amount


def _refund_amount(sale_fen: int, rng: random.Random) -> int:
    """Part of a sale, never with an ending the issuer declines or leaves unanswered (an
    advice is not reversed: a refund left unanswered stays owed by the terminal)."""
    amount = rng.randrange(1, sale_fen + 1)
    while amount > 1 and amount % 100 in AVOIDED_ENDINGS:
        amount -= 1
    return amount


def _refundable(client: TerminalClient, log: TerminalLog) -> list[JournalEntry]:
    return [
        entry
        for entry in client.state.journal
        if entry.kind == Kind.SALE and entry.rrn is not None and entry.rrn not in log.refunded
    ]


async def _reverse_owed(client: TerminalClient, log: TerminalLog) -> None:
    pending = client.state.pending_reversal
    if pending is None:
        return
    stan = pending.fields[F_STAN]
    try:
        result = await client.reverse()
    except ReversalFailed as error:
        if error.abandoned:
            log.reversals_abandoned += 1
        raise
    log.reversals[stan] = result.response_code


async def _transact(client: TerminalClient, log: TerminalLog, rng: random.Random) -> None:
    """One sale, or now and then a refund of an earlier sale."""
    if not client.signed_on:
        await client.sign_on()
    await _reverse_owed(client, log)
    refundable = _refundable(client, log)
    log.requests += 1
    if refundable and rng.random() < REFUND_SHARE:
        original = rng.choice(refundable)
        assert original.rrn is not None
        log.refunded.add(original.rrn)
        amount = _refund_amount(original.amount_fen, rng)
        kind = Kind.REFUND
        try:
            result = await client.refund(original, log.card, amount)
        except NoAnswer:
            log.advices_unanswered += 1
            raise
    else:
        amount = _amount(rng)
        kind = Kind.SALE
        try:
            result = await client.sale(log.card, amount)
        except NoAnswer:
            log.unanswered += client.reversal_pending
            raise
    log.codes[f"{kind} {result.response_code}"] += 1
    if result.response_code == "00":
        assert result.rrn is not None
        log.approved[result.rrn] = amount


async def _drive(
    client: TerminalClient,
    log: TerminalLog,
    rng: random.Random,
    up: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """Sell (and refund) until told to stop; then send what is still owed."""
    while not stop.is_set():
        await up.wait()
        try:
            await _transact(client, log, rng)
        except BatchFull:
            log.errors["batch full"] += 1
            break
        except TerminalError as error:  # no answer, host unreachable, a refused sign-on
            log.errors[type(error).__name__] += 1
            await asyncio.sleep(0.05)
            continue
        await asyncio.sleep(rng.uniform(0, PAUSE_SECONDS_MAX))
    for _ in range(10):  # the last gateway is up: what is owed goes through
        try:
            if not client.signed_on:
                await client.sign_on()
            await _reverse_owed(client, log)
            if client.state.pending_advice is not None:
                await client.balance(log.card)  # sends the owed advice first
            return
        except TerminalError as error:
            log.errors[type(error).__name__] += 1
            await asyncio.sleep(0.2)


# --- The journal -------------------------------------------------------------------------------
def _rows(database: Database, model: type[Any]) -> list[Any]:
    table = table_of(model)
    with database.unit_of_work(read_only=True) as uow:
        return list(uow.session.execute(select(table)).all())


def _check_after_restart(database: Database, logs: list[TerminalLog]) -> None:
    """What must hold as soon as a restarted gateway accepts connections: every 00 so far
    is in the journal, and only advices (which are never reversed) may still be pending."""
    rows = {row.rrn: row for row in _rows(database, GatewayTransaction)}
    for log in logs:
        for rrn in log.approved:
            row = rows.get(rrn)
            assert row is not None, f"{log.tid}: approval {rrn} is not in the journal"
            assert (row.response_code, row.status) == ("00", TxnStatus.APPROVED)
    pending = [
        (r.rrn, r.kind)
        for r in rows.values()
        if r.status == TxnStatus.PENDING and r.kind != TxnKind.REFUND
    ]
    assert not pending, f"still pending after recovery: {pending}"


async def _wait_drained(database: Database) -> float:
    started = time.monotonic()
    while time.monotonic() - started < DRAIN_TIMEOUT_SECONDS:
        owed = [r for r in _rows(database, NetworkReversal) if r.acknowledged_at is None]
        if not owed:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise AssertionError(f"store-and-forward did not drain: {len(owed)} reversals owed")


# --- Set-up ------------------------------------------------------------------------------------
@dataclass
class Setup:
    settings: Settings
    database: Database
    mid: str
    tids: list[str]


@pytest.fixture
def setup(tmp_path: Path, demo_template: Path) -> Iterator[Setup]:
    path = tmp_path / "poshub.db"
    shutil.copyfile(demo_template, path)
    url = f"sqlite:///{path}"
    settings = Settings(
        mode=Mode.TEST,
        data_dir=tmp_path,
        kek=TEST_KEK,
        database_url=url,
        gateway_host="127.0.0.1",
        network_host="127.0.0.1",
        gateway_upstream_timeout_seconds=UPSTREAM_TIMEOUT_SECONDS,
    )
    database = Database(make_engine(url))
    state = build_state(settings, database=database, notifier=MemoryNotifier())
    with database.unit_of_work() as uow:
        mid, tids = seed_load_terminals(uow.session, state.onboarding, TERMINALS)
        uow.commit()
    load_network_zpk(settings)  # creates <data_dir>/network-zpk.hex, read by both processes
    try:
        yield Setup(settings, database, mid, tids)
    finally:
        database.dispose()


def _gateway_env(settings: Settings, gateway_port: int, network_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSHUB_")}
    env.update(
        {
            "POSHUB_MODE": "test",
            "POSHUB_DATA_DIR": str(settings.data_dir),
            "POSHUB_KEK": TEST_KEK,
            "POSHUB_DATABASE_URL": settings.effective_database_url,
            "POSHUB_GATEWAY_HOST": "127.0.0.1",
            "POSHUB_GATEWAY_PORT": str(gateway_port),
            "POSHUB_NETWORK_HOST": "127.0.0.1",
            "POSHUB_NETWORK_PORT": str(network_port),
            "POSHUB_GATEWAY_UPSTREAM_TIMEOUT_SECONDS": str(UPSTREAM_TIMEOUT_SECONDS),
            "POSHUB_LOG_LEVEL": "INFO",
        }
    )
    return env


# --- The test ----------------------------------------------------------------------------------
def test_sigkill_under_load_loses_nothing_and_reverses_each_unanswered_once(
    setup: Setup,
) -> None:
    settings, database = setup.settings, setup.database
    started = time.monotonic()
    simulator = SimulatorThread(settings)
    network_port = simulator.start()
    gateway_port = _free_port()
    gateway = GatewayProcess(
        _gateway_env(settings, gateway_port, network_port),
        port=gateway_port,
        log_path=settings.data_dir / "gateway.log",
        cwd=settings.data_dir,
    )
    cards = [
        Card(pan=card_number(f"62220200{index:07d}"), expiry="3012", pin="123456")
        for index in range(len(setup.tids))
    ]
    logs = [TerminalLog(tid, card) for tid, card in zip(setup.tids, cards, strict=True)]
    seed = int(os.environ.get("POSHUB_CRASH_SEED") or time.time_ns() % 1_000_000)
    print(f"\ncrash test seed {seed} (POSHUB_CRASH_SEED repeats the kill times and amounts)")
    rng = random.Random(seed)
    kills = 0
    restart_seconds: list[float] = []

    async def main() -> float:
        nonlocal kills
        up, stop = asyncio.Event(), asyncio.Event()
        clients = [
            TerminalClient(
                "127.0.0.1",
                gateway.port,
                tid=log.tid,
                mid=setup.mid,
                tmk=TEST_TMK,
                timeout_seconds=TERMINAL_TIMEOUT_SECONDS,
            )
            for log in logs
        ]
        restart_seconds.append(await gateway.restart())
        for client in clients:
            await client.sign_on()
        workers = [
            asyncio.create_task(_drive(c, log, random.Random(rng.random()), up, stop))
            for c, log in zip(clients, logs, strict=True)
        ]
        try:
            up.set()
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(*KILL_AFTER_SECONDS))
                up.clear()
                gateway.kill()
                kills += 1
                restart_seconds.append(await gateway.restart())
                _check_after_restart(database, logs)
                up.set()
            await asyncio.sleep(LAST_RUN_SECONDS)
            stop.set()
            done, _ = await asyncio.wait(workers, timeout=WORKERS_STOP_TIMEOUT_SECONDS)
            assert len(done) == len(workers), "terminals did not stop in time"
            for task in done:
                task.result()
            for client, log in zip(clients, logs, strict=True):
                assert client.state.pending_reversal is None, log.tid
                assert client.state.pending_advice is None, log.tid
                log.journal = list(client.state.journal)
            drained = await _wait_drained(database)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.close()
        return drained

    try:
        drained = asyncio.run(main())
        assert gateway.terminate() == 0, gateway.log_tail()
        simulator.call(simulator.simulator.flush())
        _check_the_books(setup, simulator, logs)
        _report(gateway, simulator, database, logs, kills, restart_seconds, drained, started)
    finally:
        gateway.kill()
        simulator.stop()


def _check_the_books(setup: Setup, simulator: SimulatorThread, logs: list[TerminalLog]) -> None:
    database = setup.database
    rows = _rows(database, GatewayTransaction)
    financial = {r.rrn: r for r in rows if r.kind in (TxnKind.SALE, TxnKind.REFUND)}
    sales = {rrn: r for rrn, r in financial.items() if r.kind == TxnKind.SALE}
    refunds = {rrn: r for rrn, r in financial.items() if r.kind == TxnKind.REFUND}
    owed = {r.rrn: r for r in _rows(database, NetworkReversal)}

    # (1) Every 00 a terminal received (answered at once, or to a resent advice: the
    # terminal's own journal) is an approved row of the journal.
    for log in logs:
        for rrn, amount in log.approved.items():
            row = financial.get(rrn)
            assert row is not None, f"{log.tid}: approval {rrn} is not in the journal"
            assert (row.response_code, row.status, row.amount_fen) == ("00", "approved", amount)
            assert row.tid == log.tid
        for entry in log.journal:
            row = financial.get(entry.rrn or "")
            assert row is not None, f"{log.tid}: {entry.kind} {entry.rrn} is not in the journal"
            assert (row.kind, row.response_code, row.status, row.amount_fen, row.stan) == (
                entry.kind,
                "00",
                "approved",
                entry.amount_fen,
                entry.stan,
            )
    # Each request of a terminal was taken once, however often it was sent.
    taken = Counter((r.tid, r.batch_no, r.stan) for r in financial.values())
    assert [key for key, count in taken.items() if count > 1] == []

    # (4) Nothing is left pending: resent advices were answered.
    assert [(r.rrn, r.kind) for r in rows if r.status == TxnStatus.PENDING] == []

    # (2) Each reversal owed was acknowledged; the issuer holds each original reversed, and
    # applied each reversal once: its counter counts one per original it undid.
    assert all(r.acknowledged_at is not None for r in owed.values())
    # Timed out (98), found pending at a restart (no code), or approved and then reversed
    # by its terminal (00): each owes the network a reversal.
    forwarded_unanswered = {
        rrn
        for rrn, r in sales.items()
        if r.status == TxnStatus.REVERSED
        and r.upstream != "none"
        and r.response_code in (None, "98", "00")
    }
    assert forwarded_unanswered == set(owed)
    records: dict[str, Authorization | None] = simulator.read(
        lambda s: {rrn: s.authorization(rrn) for rrn in set(financial) | set(owed)}
    )
    applied = 0
    for rrn in owed:
        record = records[rrn]
        assert record is not None, rrn
        assert record.status == Status.REVERSED, (rrn, record)
        applied += record.kind != TxKind.UNMATCHED_REVERSAL
    counters = simulator.read(lambda s: s.counters)
    assert counters.reversals_applied == applied

    # (3) Journal and issuer agree request by request, the journal with itself (what was
    # refunded of each sale), and no money appeared or disappeared.
    for rrn, row in financial.items():
        record = records[rrn]
        issuer_took = record is not None and record.status == Status.APPROVED
        assert issuer_took == (row.status == TxnStatus.APPROVED), (rrn, row.kind, row.status)
    approved_refunds = [r for r in refunds.values() if r.status == TxnStatus.APPROVED]
    for rrn, sale in sales.items():
        given_back = sum(r.amount_fen for r in approved_refunds if r.original_rrn == rrn)
        assert sale.refunded_fen == given_back, rrn
    vault = KeyVault(load_kek(setup.settings))
    for log in logs:
        token = vault.token(log.card.pan, purpose="pan")
        spent = sum(
            r.amount_fen
            for r in sales.values()
            if r.pan_token == token and r.status == TxnStatus.APPROVED
        )
        given_back = sum(r.amount_fen for r in approved_refunds if r.pan_token == token)
        balance, hold = simulator.read(partial(_balance_and_hold, pan=log.card.pan))
        assert balance == CARD_OPENING_BALANCE_FEN - spent + given_back, log.tid
        assert hold == 0, log.tid


def _balance_and_hold(simulator: NetworkSimulator, *, pan: str) -> tuple[int, int]:
    return simulator.balance_fen(pan), simulator.hold_fen(pan)


def _report(
    gateway: GatewayProcess,
    simulator: SimulatorThread,
    database: Database,
    logs: list[TerminalLog],
    kills: int,
    restart_seconds: list[float],
    drained: float,
    started: float,
) -> None:
    rows = _rows(database, GatewayTransaction)
    statuses = Counter(
        f"{r.kind} {r.status}" for r in rows if r.kind in (TxnKind.SALE, TxnKind.REFUND)
    )
    codes: Counter[str] = Counter()
    for log in logs:
        codes.update(log.codes)
    counters = simulator.read(lambda s: s.counters)
    owed = _rows(database, NetworkReversal)
    print(
        f"\ncrash test: {kills} SIGKILLs, {gateway.starts} starts"
        f" ({gateway.foreign_signals} ended by a signal from elsewhere),"
        f" ready after {min(restart_seconds):.1f}-{max(restart_seconds):.1f} s;"
        f" {sum(log.requests for log in logs)} requests from {len(logs)} terminals,"
        f" answers {dict(sorted(codes.items()))};"
        f" {sum(log.unanswered for log in logs)} sales and"
        f" {sum(log.advices_unanswered for log in logs)} refunds unanswered;"
        f" {sum(len(log.reversals) for log in logs)} terminal reversals"
        f" ({sum(log.reversals_abandoned for log in logs)} abandoned);"
        f" journal {dict(sorted(statuses.items()))};"
        f" {gateway.recovered()} recovered at restarts;"
        f" {len(owed)} reversals owed upstream, all acknowledged ({drained:.1f} s to drain);"
        f" issuer: {counters.reversals_received} reversals received,"
        f" {counters.reversals_applied} applied, {counters.repeats} repeats;"
        f" {time.monotonic() - started:.0f} s in all"
    )
