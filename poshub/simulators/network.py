"""``poshub network-sim``: the card network and wallets the gateway forwards to.

An asyncio TCP server speaking the link protocol of docs/gateway.md (the terminal dialect,
many requests outstanding per connection, answered in any order). The issuer's rules are
in ``issuer`` (users' view: docs/test-cards.md), the clearing file in ``clearing``.

State (accounts, authorizations) is kept in memory for speed and written back to its own
SQLite file, ``<data_dir>/network-sim.db`` (WAL), every ``NETWORK_SIM_FLUSH_SECONDS`` in
one transaction from one writer thread, and on shutdown; the next start reads it back.
Memory is bounded: beyond ``NETWORK_SIM_RECORDS_IN_MEMORY_MAX`` authorizations (and the
accounts bound) the oldest clean entries are dropped and read back from SQLite when a later
message names them. Deleting the file resets every card, wallet and transaction.

No full PAN is stored anywhere — not in the database, not in a log line, not in the
clearing file: accounts are keyed by an HMAC token of the PAN under a key derived from the
zone PIN key, which lives outside this database; records keep the first six and last four
digits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import signal
import sqlite3
import sys
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Protocol, cast
from zoneinfo import ZoneInfo

from poshub.core import limits
from poshub.core.money import format_fen
from poshub.core.settings import Settings
from poshub.gateway import codec
from poshub.gateway.constants import MTI
from poshub.gateway.crypto import load_network_zpk
from poshub.gateway.link import FrameReader
from poshub.simulators import clearing
from poshub.simulators.issuer import (
    CARD_OPENING_BALANCE_FEN,
    FINANCIAL_KINDS,
    WALLET_OPENING_BALANCE_FEN,
    Account,
    Authorization,
    CardKind,
    Issuer,
    Status,
    Tokenizer,
    TxKind,
)

log = logging.getLogger(__name__)

DB_FILE_NAME: Final = "network-sim.db"
SCHEMA_VERSION: Final = 1
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS accounts (
        token TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        masked TEXT NOT NULL,
        balance_fen INTEGER NOT NULL,
        hold_fen INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS authorizations (
        seq INTEGER PRIMARY KEY,
        rrn TEXT NOT NULL UNIQUE,
        stan TEXT NOT NULL,
        tid TEXT NOT NULL,
        mid TEXT NOT NULL,
        mti TEXT NOT NULL,
        kind TEXT NOT NULL,
        business_date TEXT NOT NULL,
        created_at TEXT NOT NULL,
        amount_fen INTEGER NOT NULL,
        card_kind TEXT,
        account TEXT NOT NULL,
        masked TEXT NOT NULL,
        status TEXT NOT NULL,
        response_code TEXT NOT NULL,
        auth_code TEXT NOT NULL,
        original_rrn TEXT NOT NULL,
        wallet TEXT NOT NULL,
        voucher TEXT NOT NULL,
        answered INTEGER NOT NULL,
        voided_by TEXT NOT NULL,
        refunded_fen INTEGER NOT NULL,
        hold_fen INTEGER NOT NULL,
        released_fen INTEGER NOT NULL,
        closed_by TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS authorizations_by_date ON authorizations (business_date, seq)",
)
_ACCOUNT_COLUMNS: Final = ("token", "kind", "masked", "balance_fen", "hold_fen")
_AUTH_COLUMNS: Final = (
    "seq",
    "rrn",
    "stan",
    "tid",
    "mid",
    "mti",
    "kind",
    "business_date",
    "created_at",
    "amount_fen",
    "card_kind",
    "account",
    "masked",
    "status",
    "response_code",
    "auth_code",
    "original_rrn",
    "wallet",
    "voucher",
    "answered",
    "voided_by",
    "refunded_fen",
    "hold_fen",
    "released_fen",
    "closed_by",
)
# Written out rather than built from the column tuples, so every statement is a constant;
# a test checks that the lists agree.
_UPSERT_ACCOUNT: Final = (
    "INSERT OR REPLACE INTO accounts (token, kind, masked, balance_fen, hold_fen)"
    " VALUES (?, ?, ?, ?, ?)"
)
_UPSERT_AUTH: Final = (
    "INSERT OR REPLACE INTO authorizations (seq, rrn, stan, tid, mid, mti, kind,"
    " business_date, created_at, amount_fen, card_kind, account, masked, status,"
    " response_code, auth_code, original_rrn, wallet, voucher, answered, voided_by,"
    " refunded_fen, hold_fen, released_fen, closed_by)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_ACCOUNT: Final = "SELECT token, kind, masked, balance_fen, hold_fen FROM accounts"
_SELECT_AUTH: Final = (
    "SELECT seq, rrn, stan, tid, mid, mti, kind, business_date, created_at, amount_fen,"
    " card_kind, account, masked, status, response_code, auth_code, original_rrn, wallet,"
    " voucher, answered, voided_by, refunded_fen, hold_fen, released_fen, closed_by"
    " FROM authorizations"
)

_Row = tuple[Any, ...]


class StateError(Exception):
    """The simulator's database cannot be used (unknown schema, unreadable file)."""


def _account_row(account: Account) -> _Row:
    return (
        account.token,
        account.kind.value,
        account.masked,
        account.balance_fen,
        account.hold_fen,
    )


def _account_from(row: _Row) -> Account:
    return Account(
        token=row[0], kind=CardKind(row[1]), masked=row[2], balance_fen=row[3], hold_fen=row[4]
    )


def _auth_row(auth: Authorization) -> _Row:
    return (
        auth.seq,
        auth.rrn,
        auth.stan,
        auth.tid,
        auth.mid,
        auth.mti,
        auth.kind.value,
        auth.business_date,
        auth.created_at,
        auth.amount_fen,
        auth.card_kind.value if auth.card_kind is not None else None,
        auth.account,
        auth.masked,
        auth.status.value,
        auth.response_code,
        auth.auth_code,
        auth.original_rrn,
        auth.wallet,
        auth.voucher,
        int(auth.answered),
        auth.voided_by,
        auth.refunded_fen,
        auth.hold_fen,
        auth.released_fen,
        auth.closed_by,
    )


def _auth_from(row: _Row) -> Authorization:
    values = dict(zip(_AUTH_COLUMNS, row, strict=True))
    values["kind"] = TxKind(values["kind"])
    values["status"] = Status(values["status"])
    values["card_kind"] = CardKind(values["card_kind"]) if values["card_kind"] else None
    values["answered"] = bool(values["answered"])
    return Authorization(**values)


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        # Only the store's single writer thread uses it after opening.
        connection = sqlite3.connect(path, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


@dataclass(frozen=True, slots=True)
class _Batch:
    accounts: list[_Row]
    authorizations: list[_Row]
    account_keys: list[str]
    authorization_keys: list[str]

    def __bool__(self) -> bool:
        return bool(self.accounts or self.authorizations)


class _Store:
    """``issuer.Book`` in memory, written back to SQLite (see the module docstring).

    Reads and changes happen on the event loop's thread; ``write`` runs on one writer
    thread with rows snapshotted on the loop, so the two never share an object.
    """

    def __init__(self, path: Path, *, accounts_max: int, records_max: int) -> None:
        self.path = path
        self._accounts_max = accounts_max
        self._records_max = records_max
        self._accounts: dict[str, Account] = {}
        self._records: dict[str, Authorization] = {}
        self._dirty_accounts: set[str] = set()
        self._dirty_records: set[str] = set()
        self._seq = 0
        # While everything the file holds is in memory, a miss is an answer: no point read.
        self._all_accounts_loaded = False
        self._all_records_loaded = False
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = _connect(self.path)
        try:
            version = writer.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise StateError(
                    f"{self.path} has schema version {version}, this simulator "
                    f"writes {SCHEMA_VERSION}; delete the file to reset the simulator"
                )
            for statement in _SCHEMA:
                writer.execute(statement)
            writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            writer.commit()
        except sqlite3.Error as error:
            writer.close()
            raise StateError(f"{self.path}: {error}") from None
        except StateError:
            writer.close()
            raise
        self._writer = writer
        self._reader = _connect(self.path)
        reader = self._reader
        self._seq = reader.execute("SELECT coalesce(max(seq), 0) FROM authorizations").fetchone()[0]
        # The most recent records and accounts are the likeliest to be named again.
        recent = reader.execute(
            _SELECT_AUTH + " ORDER BY seq DESC LIMIT ?", (self._records_max,)
        ).fetchall()
        for row in reversed(recent):
            record = _auth_from(row)
            self._records[record.rrn] = record
        self._all_records_loaded = len(recent) < self._records_max
        accounts = reader.execute(
            _SELECT_ACCOUNT + " ORDER BY rowid DESC LIMIT ?", (self._accounts_max,)
        ).fetchall()
        for row in accounts:
            account = _account_from(row)
            self._accounts[account.token] = account
        self._all_accounts_loaded = len(accounts) < self._accounts_max

    def close(self) -> None:
        for connection in (self._reader, self._writer):
            if connection is not None:
                connection.close()
        self._reader = self._writer = None

    # --- issuer.Book ------------------------------------------------------------
    def account(self, token: str) -> Account | None:
        account = self._accounts.get(token)
        if account is None and not self._all_accounts_loaded and self._reader is not None:
            row = self._reader.execute(_SELECT_ACCOUNT + " WHERE token = ?", (token,)).fetchone()
            if row is not None:
                account = self._accounts[token] = _account_from(row)
        return account

    def save_account(self, account: Account) -> None:
        self._accounts[account.token] = account
        self._dirty_accounts.add(account.token)

    def authorization(self, rrn: str) -> Authorization | None:
        record = self._records.get(rrn)
        if record is None and not self._all_records_loaded and self._reader is not None:
            row = self._reader.execute(_SELECT_AUTH + " WHERE rrn = ?", (rrn,)).fetchone()
            if row is not None:
                record = self._records[rrn] = _auth_from(row)
        return record

    def save_authorization(self, authorization: Authorization) -> None:
        self._records[authorization.rrn] = authorization
        self._dirty_records.add(authorization.rrn)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # --- views --------------------------------------------------------------------
    def recent(self, limit: int) -> list[Authorization]:
        newest = sorted(self._records.values(), key=lambda r: r.seq)[-limit:] if limit > 0 else []
        return [replace(record) for record in newest]

    # --- write-back -----------------------------------------------------------------
    def take_dirty(self) -> _Batch:
        batch = _Batch(
            accounts=[_account_row(self._accounts[t]) for t in self._dirty_accounts],
            authorizations=[_auth_row(self._records[r]) for r in self._dirty_records],
            account_keys=list(self._dirty_accounts),
            authorization_keys=list(self._dirty_records),
        )
        self._dirty_accounts = set()
        self._dirty_records = set()
        return batch

    def write(self, batch: _Batch) -> None:
        """On the writer thread: one transaction for the whole batch."""
        writer = self._writer
        if writer is None:
            raise sqlite3.ProgrammingError("the simulator's database is closed")
        with writer:
            writer.executemany(_UPSERT_ACCOUNT, batch.accounts)
            writer.executemany(_UPSERT_AUTH, batch.authorizations)

    def written(self, batch: _Batch, *, ok: bool) -> None:
        if not ok:
            # Written again with the next batch; until then they cannot be evicted.
            self._dirty_accounts.update(batch.account_keys)
            self._dirty_records.update(batch.authorization_keys)
            return
        if _evict(self._accounts, self._dirty_accounts, self._accounts_max):
            self._all_accounts_loaded = False
        if _evict(self._records, self._dirty_records, self._records_max):
            self._all_records_loaded = False


def _evict(entries: dict[str, Any], dirty: set[str], limit: int) -> bool:
    """Drop the oldest clean entries beyond ``limit`` (they are in SQLite already);
    whether any was dropped."""
    excess = len(entries) - limit
    if excess <= 0:
        return False
    candidates = itertools.islice(entries, excess + len(dirty))
    victims = [k for k in candidates if k not in dirty][:excess]
    for key in victims:
        del entries[key]
    return bool(victims)


def clearing_items(db_path: Path, business_date: date) -> Iterator[clearing.ClearingItem]:
    """The approved, unreversed financial messages of one business date, in arrival
    order, read from the simulator's database (streamed: no day is held in memory)."""
    if not db_path.exists():
        raise StateError(f"{db_path} does not exist: the simulator has not run here")
    connection = _connect(db_path, read_only=True)
    try:
        cursor = connection.execute(
            "SELECT business_date, mti, kind, rrn, stan, tid, mid, card_kind, masked, amount_fen"
            " FROM authorizations WHERE business_date = ? AND status = ? ORDER BY seq",
            (business_date.isoformat(), Status.APPROVED.value),
        )
        for row in cursor:
            kind = TxKind(row[2])
            if kind not in FINANCIAL_KINDS:
                continue
            yield clearing.ClearingItem(
                business_date=date.fromisoformat(row[0]),
                message_type=row[1],
                transaction=kind,
                rrn=row[3],
                stan=row[4],
                tid=row[5],
                mid=row[6],
                card_kind=CardKind(row[7]),
                masked_pan=row[8],
                amount_fen=row[9],
            )
    finally:
        connection.close()


def write_clearing_file(
    business_date: date, path: Path, *, db_path: Path
) -> clearing.ClearingSummary:
    """The clearing file of ``business_date`` from the database at ``db_path``."""
    return clearing.write_clearing_file(clearing_items(db_path, business_date), business_date, path)


@dataclass(frozen=True, slots=True)
class SimulatorCounters:
    requests: int
    """Decoded requests handled (reversals included)."""
    approved: int
    declined: int
    unanswered: int
    """Requests applied and never answered (amount ending 91)."""
    repeats: int
    reversals_received: int
    reversals_applied: int
    malformed: int
    """Frames or messages that could not be decoded (dropped, logged by reason)."""
    connections: int
    """Connections open now."""
    connections_refused: int


class _ServerConnection(asyncio.Protocol):
    def __init__(self, simulator: NetworkSimulator) -> None:
        self._simulator = simulator
        self._reader = FrameReader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass).
        stream = cast(asyncio.Transport, transport)
        if not self._simulator._admit(self):
            stream.close()
            return
        self.transport = stream
        stream.set_write_buffer_limits(high=limits.NETWORK_SIM_WRITE_BUFFER_BYTES_MAX)

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        try:
            frames = self._reader.feed(data)
        except codec.FrameError as error:
            self._simulator._malformed += 1
            log.warning("network simulator: closing a connection: %s", error)
            self.transport.close()
            return
        for payload in frames:
            response = self._simulator._serve(payload)
            if response is not None and self.transport is not None:
                self.transport.write(response)

    def pause_writing(self) -> None:
        # The peer is not reading its answers: stop reading its requests until it does.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._simulator._connections.discard(self)


def _default_clock(zone: ZoneInfo) -> Callable[[], datetime]:
    return lambda: datetime.now(zone)


class NetworkSimulator:
    """The simulator, usable in-process (tests, the demo) or through
    ``run_network_simulator``. ``port=0`` binds an ephemeral port (see ``port``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.host = host if host is not None else settings.network_host
        self._requested_port = port if port is not None else settings.network_port
        self._zone = ZoneInfo(settings.timezone)
        self._clock = clock or _default_clock(self._zone)
        self.db_path = settings.data_dir / DB_FILE_NAME
        self._store = _Store(
            self.db_path,
            accounts_max=limits.NETWORK_SIM_ACCOUNTS_IN_MEMORY_MAX,
            records_max=limits.NETWORK_SIM_RECORDS_IN_MEMORY_MAX,
        )
        self._tokens: Tokenizer | None = None
        self._issuer: Issuer | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_ServerConnection] = set()
        self._connections_refused = 0
        self._malformed = 0
        self._executor: ThreadPoolExecutor | None = None
        self._flush_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._port: int | None = None

    # --- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Load the state and start listening. Raises ``OSError`` when the address is
        taken, ``StateError`` for an unusable database, ``KeyMaterialError`` without a
        zone PIN key."""
        zpk = load_network_zpk(self.settings)
        self._tokens = Tokenizer.from_zpk(zpk)
        self._store.open()
        self._issuer = Issuer(self._store, zpk=zpk, tokens=self._tokens, clock=self._clock)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="network-sim-db")
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _ServerConnection(self), self.host, self._requested_port
            )
        except OSError:
            self._store.close()
            self._executor.shutdown()
            raise
        self._port = self._server.sockets[0].getsockname()[1]
        self._stopping = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._flusher = asyncio.create_task(self._flush_loop(), name="network-sim-flush")
        log.info("network simulator listening on %s:%s", self.host, self._port)

    async def stop(self) -> None:
        """Stop listening, close every connection, write the state and close the file."""
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._connections):
            if connection.transport is not None:
                connection.transport.close()
        await self._server.wait_closed()
        self._server = None
        self._stopping.set()
        if self._flusher is not None:
            await self._flusher  # its last pass writes whatever is still dirty
            self._flusher = None
        assert self._executor is not None
        self._executor.shutdown(wait=True)
        self._executor = None
        self._store.close()

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        if self._port is None:
            raise RuntimeError("the network simulator has not started")
        return self._port

    # --- serving ----------------------------------------------------------------------
    def _admit(self, connection: _ServerConnection) -> bool:
        if len(self._connections) >= limits.NETWORK_SIM_CONNECTIONS_MAX:
            self._connections_refused += 1
            log.warning("network simulator: connection limit reached; refusing one")
            return False
        self._connections.add(connection)
        return True

    def _serve(self, payload: bytes) -> bytes | None:
        """One frame in, the response frame out (None: no answer)."""
        try:
            envelope = codec.split_envelope(payload)
            message = codec.decode(envelope.body)
        except (codec.FrameError, codec.MessageFormatError) as error:
            # Reasons name fields and positions only, never values (a PAN must not leak).
            self._malformed += 1
            log.warning("network simulator: dropped a malformed request: %s", error)
            return None
        assert self._issuer is not None
        try:
            response = self._issuer.handle(message)
            if response is None:
                return None
            body = codec.encode(response)
        except Exception as error:  # a simulator bug must not take the connection down
            # The type only: an exception's text could quote a field value.
            log.error(
                "network simulator: request %s failed (%s)", message[MTI], type(error).__name__
            )
            return None
        return codec.frame(
            codec.response_tpdu(envelope.tpdu), codec.response_header(envelope.header), body
        )

    # --- persistence ------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), limits.NETWORK_SIM_FLUSH_SECONDS)
            await self.flush()

    async def flush(self) -> None:
        """Write every changed account and authorization now (one transaction)."""
        async with self._flush_lock:
            batch = self._store.take_dirty()
            if not batch or self._executor is None:
                self._store.written(batch, ok=not batch)
                return
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self._executor, self._store.write, batch)
            except sqlite3.Error as error:
                log.error("network simulator: saving state failed (%s); will retry", error)
                self._store.written(batch, ok=False)
                return
            self._store.written(batch, ok=True)

    # --- inspection (tests, the demo) ---------------------------------------------------
    def _tokenizer(self) -> Tokenizer:
        if self._tokens is None:
            raise RuntimeError("the network simulator has not started")
        return self._tokens

    def balance_fen(self, pan: str) -> int:
        """Ledger balance of a test card (holds not deducted)."""
        account = self._store.account(self._tokenizer().card(pan))
        return account.balance_fen if account is not None else CARD_OPENING_BALANCE_FEN

    def hold_fen(self, pan: str) -> int:
        """Sum of the card's open pre-auth holds."""
        account = self._store.account(self._tokenizer().card(pan))
        return account.hold_fen if account is not None else 0

    def available_fen(self, pan: str) -> int:
        """What the card can spend: balance minus holds (what a balance inquiry says)."""
        return self.balance_fen(pan) - self.hold_fen(pan)

    def wallet_balance_fen(self, code: str) -> int:
        """Balance of the wallet account a QR payment code identifies."""
        account = self._store.account(self._tokenizer().wallet(code))
        return account.balance_fen if account is not None else WALLET_OPENING_BALANCE_FEN

    def authorizations(
        self, *, limit: int = limits.NETWORK_SIM_AUTHORIZATIONS_LIST_MAX
    ) -> list[Authorization]:
        """Copies of the most recent records in arrival order (at most ``limit``, itself
        at most ``NETWORK_SIM_AUTHORIZATIONS_LIST_MAX``)."""
        return self._store.recent(min(limit, limits.NETWORK_SIM_AUTHORIZATIONS_LIST_MAX))

    def authorization(self, rrn: str) -> Authorization | None:
        record = self._store.authorization(rrn)
        return replace(record) if record is not None else None

    @property
    def counters(self) -> SimulatorCounters:
        issuer = self._issuer.counters if self._issuer is not None else None
        return SimulatorCounters(
            requests=issuer.requests if issuer else 0,
            approved=issuer.approved if issuer else 0,
            declined=issuer.declined if issuer else 0,
            unanswered=issuer.unanswered if issuer else 0,
            repeats=issuer.repeats if issuer else 0,
            reversals_received=issuer.reversals_received if issuer else 0,
            reversals_applied=issuer.reversals_applied if issuer else 0,
            malformed=self._malformed,
            connections=len(self._connections),
            connections_refused=self._connections_refused,
        )

    def business_date(self) -> date:
        """Today in the network's time zone: the date new records are cleared on."""
        return self._clock().date()

    async def write_clearing_file(
        self, business_date: date, path: Path | None = None
    ) -> clearing.ClearingSummary:
        """Flush, then write the clearing file of ``business_date`` (default path
        ``<data_dir>/clearing/CUP-YYYYMMDD.csv``)."""
        await self.flush()
        target = path or clearing.default_clearing_path(self.settings.data_dir, business_date)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, lambda: write_clearing_file(business_date, target, db_path=self.db_path)
        )


# --- processes and the command line ------------------------------------------------------
def _run(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def run_network_simulator(settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM, then write the state and exit (the exit status)."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> int:
        simulator = NetworkSimulator(settings)
        try:
            await simulator.start()
        except OSError as error:
            print(
                f"network simulator: cannot listen on {simulator.host}:"
                f"{settings.network_port}: {error.strerror}",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        except StateError as error:
            print(f"network simulator: {error}", file=sys.stderr)
            return EXIT_FAILURE
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
                loop.add_signal_handler(signum, stop.set)
        print(
            f"network simulator listening on {simulator.host}:{simulator.port} "
            f"(state in {simulator.db_path}; test cards: docs/test-cards.md)",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            await simulator.stop()
        print("network simulator stopped; state saved", flush=True)
        return EXIT_OK

    return _run(main())


class SettingsFactory(Protocol):
    """How the CLI builds settings: ``poshub.cli._settings(args, **overrides)``."""

    def __call__(self, args: argparse.Namespace, **overrides: object) -> Settings: ...


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a date as YYYY-MM-DD") from None


def add_cli(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    settings_factory: SettingsFactory,
) -> None:
    """Add ``poshub network-sim`` (serve) and ``poshub network-sim clearing``."""
    parser = subparsers.add_parser(
        "network-sim",
        help="run the card-network simulator the gateway forwards to (docs/test-cards.md)",
        description="Serve the network link until SIGINT/SIGTERM, or write a clearing file.",
    )
    parser.add_argument("--host", default=None, help="listen address (POSHUB_NETWORK_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (POSHUB_NETWORK_PORT)")
    sub = parser.add_subparsers(dest="network_sim_command", metavar="SUBCOMMAND")
    clearing_parser = sub.add_parser(
        "clearing", help="write the clearing file of one business date (Asia/Shanghai)"
    )
    clearing_parser.add_argument("--date", required=True, type=_iso_date, help="YYYY-MM-DD")
    clearing_parser.add_argument(
        "--out", default=None, help="file to write (default <data_dir>/clearing/CUP-YYYYMMDD.csv)"
    )

    def serve(args: argparse.Namespace) -> int:
        return run_network_simulator(
            settings_factory(args, network_host=args.host, network_port=args.port)
        )

    def write_clearing(args: argparse.Namespace) -> int:
        settings = settings_factory(args)
        out = Path(args.out) if args.out else None
        return clearing_command(settings, args.date, out)

    parser.set_defaults(func=serve)
    clearing_parser.set_defaults(func=write_clearing)


def clearing_command(settings: Settings, business_date: date, out: Path | None = None) -> int:
    """``poshub network-sim clearing``: write the file and print its trailer totals."""
    path = out or clearing.default_clearing_path(settings.data_dir, business_date)
    try:
        summary = write_clearing_file(business_date, path, db_path=settings.data_dir / DB_FILE_NAME)
    except (StateError, sqlite3.Error, OSError) as error:
        print(f"network-sim clearing: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(
        f"{summary.path}: {summary.line_count} lines; "
        f"debits {summary.debit_count} = {format_fen(summary.debit_fen)}, "
        f"credits {summary.credit_count} = {format_fen(summary.credit_fen)}; "
        f"interchange {format_fen(summary.interchange_fee_fen)}, "
        f"network fee (acquirer) {format_fen(summary.network_fee_acquirer_fen)}"
    )
    return EXIT_OK
