"""The journal writer: one thread, group commit, durable before anyone is answered.

Requests hand the writer a list of operations (prebuilt statements with parameters) and
await a future. The writer takes everything queued — up to
``limits.GATEWAY_JOURNAL_BATCH_MAX`` requests' worth — runs it in one transaction grouped
by statement (executemany), commits, and only then resolves the futures. On SQLite
(WAL, ``synchronous=FULL``) the commit is one fsync for the whole group; on PostgreSQL
one round of WAL flush. A failed batch is retried request by request inside savepoints, so
one request's conflict (a repeated dedupe key) fails only that request.

An operation may be *guarded* (a limit reservation, poshub/risk/counters.py): it must
change exactly one row, else its request alone fails with ``LimitReached`` through the
same one-by-one retry. Counter statements run first in a group, one row at a time in key
order, so that concurrent writers on PostgreSQL lock counter rows in one order; a group
PostgreSQL still picks as a deadlock victim is retried whole
(``limits.GATEWAY_JOURNAL_DEADLOCK_RETRIES``).

The queue is bounded: when it is full, ``submit`` raises ``JournalFull`` and the pipeline
answers ``96`` instead of letting memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql import ClauseElement

from poshub.core import limits
from poshub.core.db import Database
from poshub.gateway import repository

log = logging.getLogger(__name__)

_STOP: Final = object()


class JournalFull(Exception):
    """The writer's queue is at its bound."""


class JournalFailed(Exception):
    """The database refused a write; the operations had no effect."""


class DuplicateKey(JournalFailed):
    """A unique key (a repeated request's dedupe key) already exists."""


class LimitReached(JournalFailed):
    """A guarded operation changed no row (a limit had no room left): the request's
    operations had no effect; the other requests of its group were written."""


class _GuardFailed(Exception):
    """A guarded operation changed no row while writing a whole group."""


@dataclass(frozen=True, slots=True)
class Op:
    statement: str
    """A key of ``repository.writer_statements``."""
    params: dict[str, Any]
    guarded: bool = False
    """The statement must change exactly one row, else the request fails (LimitReached)."""


def _counter_key(op: Op) -> str:
    params = op.params
    return str(params["key"] if "key" in params else params["b_key"])


def _is_deadlock(error: DBAPIError) -> bool:
    """PostgreSQL's deadlock or serialization failure: retrying the group succeeds."""
    return getattr(error.orig, "sqlstate", None) in ("40P01", "40001")


@dataclass(slots=True)
class _Item:
    ops: list[Op]
    future: asyncio.Future[None]
    rows: list[tuple[str, tuple[Any, ...]]] | None = None
    """On SQLite: each op as (statement, values in the statement's parameter order),
    prepared on the event loop so that the writer thread only runs the driver."""


@dataclass(slots=True)
class JournalStats:
    commits: int = 0
    requests: int = 0
    rows: int = 0
    failures: int = 0
    largest_group: int = 0
    commit_seconds: float = 0.0


class Journal:
    def __init__(
        self,
        database: Database,
        *,
        batch_max: int = limits.GATEWAY_JOURNAL_BATCH_MAX,
        queue_max: int = limits.GATEWAY_JOURNAL_QUEUE_MAX,
    ) -> None:
        self._database = database
        self._statements = repository.writer_statements(database.dialect)
        self._raw = database.dialect == "sqlite"
        self._compiled: dict[
            tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...], dict[str, Any]]
        ] = {}
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._queued = 0
        self._queue_max = queue_max
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = JournalStats()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="gateway-journal", daemon=True)
        self._thread.start()

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Write what is queued, then end the writer thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout_seconds)
        self._thread = None

    @property
    def backlog(self) -> int:
        return self._queued

    def submit(self, ops: list[Op]) -> asyncio.Future[None]:
        """Queue ``ops`` (one request's writes, atomic together); the future resolves
        once they are committed."""
        assert self._loop is not None, "journal not started"
        with self._lock:
            if self._queued >= self._queue_max:
                raise JournalFull("journal queue full")
            self._queued += 1
        future: asyncio.Future[None] = self._loop.create_future()
        # Counter operations are summed per key in the writer, which converts them then.
        rows = (
            [(op.statement, () if op.statement in COUNTERS else self._values(op)) for op in ops]
            if self._raw
            else None
        )
        self._queue.put(_Item(ops, future, rows))
        return future

    def _values(self, op: Op) -> tuple[Any, ...]:
        """The op's parameters in its compiled statement's order, as SQLite stores them."""
        params = op.params
        keys = tuple(params)
        compiled = self._compiled.get((op.statement, keys))
        if compiled is None:
            compiled = self._compile(op.statement, keys)
        _, order, defaults = compiled
        return tuple(
            _sqlite_value(params[key] if key in params else defaults[key]) for key in order
        )

    def _compile(
        self, name: str, keys: tuple[str, ...]
    ) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        statement = cast(ClauseElement, self._statements[name]).compile(
            dialect=self._database.engine.dialect, column_keys=list(keys)
        )
        order = statement.positiontup  # type: ignore[attr-defined]
        assert order is not None
        # Values written into the statement itself (``status='closed'``) are bound
        # parameters too; their values come from the statement, not the caller.
        defaults = dict(statement.construct_params(_check=False) or {})  # type: ignore[call-arg]
        compiled = (str(statement), tuple(order), defaults)
        self._compiled[(name, keys)] = compiled
        return compiled

    async def write(self, ops: list[Op]) -> None:
        await self.submit(ops)

    # --- writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            items: list[_Item] = [first]  # type: ignore[list-item]
            stop = False
            while len(items) < self._batch_max:
                try:
                    extra = self._queue.get_nowait()
                except queue.Empty:
                    break
                if extra is _STOP:
                    stop = True
                    break
                items.append(extra)  # type: ignore[arg-type]
            self._write_group(items)
            with self._lock:
                self._queued -= len(items)
            if stop:
                return

    def _write_group(self, items: list[_Item]) -> None:
        started = time.perf_counter()
        try:
            self._execute_retrying(items)
        except (IntegrityError, _GuardFailed):
            self._write_one_by_one(items)
            return
        except Exception as error:  # the database is unavailable: every request fails
            log.error("journal group commit failed: %s", type(error).__name__)
            self.stats.failures += 1
            self._resolve([(item, JournalFailed("journal write failed")) for item in items])
            return
        elapsed = time.perf_counter() - started
        stats = self.stats
        stats.commits += 1
        stats.requests += len(items)
        stats.rows += sum(len(item.ops) for item in items)
        stats.commit_seconds += elapsed
        stats.largest_group = max(stats.largest_group, len(items))
        self._resolve([(item, None) for item in items])

    def _execute_retrying(self, items: list[_Item]) -> None:
        for attempt in range(limits.GATEWAY_JOURNAL_DEADLOCK_RETRIES + 1):
            try:
                self._execute(items)
                return
            except DBAPIError as error:
                if isinstance(error, IntegrityError) or not _is_deadlock(error):
                    raise
                if attempt == limits.GATEWAY_JOURNAL_DEADLOCK_RETRIES:
                    raise
                log.warning("journal group chosen as deadlock victim; retrying")

    def _execute(self, items: list[_Item]) -> None:
        if self._raw:
            self._execute_raw(items)
            return
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        counters: list[Op] = []
        for item in items:
            for op in item.ops:
                if op.statement in repository.COUNTER_STATEMENTS:
                    counters.append(op)
                else:
                    grouped[op.statement].append(op.params)
        with self._database.engine.begin() as connection:
            if counters:
                self._run_counters(connection, counters)
            for name in repository.STATEMENT_ORDER:
                params = grouped.get(name)
                if params:
                    connection.execute(self._statements[name], params)

    def _run_counters(self, connection: Connection, ops: list[Op], *, single: bool = False) -> None:
        """Counter operations; a guarded one that changes no row fails the group.

        PostgreSQL: one at a time in key order (stable: a key's operations keep their
        arrival order), so that concurrent writers lock counter rows in one order and each
        guarded row count is read.

        SQLite, a whole group: one writer at a time and no row locks. The additions to one
        key are summed (a busy merchant's requests in one group make one row), then every
        addition goes in one multi-row statement that leaves out a row that would pass its
        limit (``repository.sqlite_reserve_many``; unguarded ones with a limit nothing
        reaches): one driver step instead of one per row (each step hands the GIL to the
        event loop and waits to get it back). All fitted exactly when the row count
        is the number of rows; else the group is written again request by request
        (``single``: row by row, guarded as on PostgreSQL), which finds the one with no
        room. Reserving before releasing within a group can only refuse more, never pass
        a limit."""
        if self._raw and not single:
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                # Unguarded additions go in the same statement with a limit nothing
                # reaches: each statement is a GIL hand-over the commit waits for.
                additions = _summed(
                    [
                        op
                        if op.statement == repository.RESERVE_COUNTER
                        else Op(
                            repository.RESERVE_COUNTER,
                            op.params | {"limit_fen": UNLIMITED_FEN},
                        )
                        for op in ops
                        if op.statement in SUMMABLE
                    ]
                )
                if additions:
                    rows = [_counter_row(op) for op in additions]
                    if _many(cursor, repository.sqlite_reserve_many, rows) != len(rows):
                        raise _GuardFailed(repository.RESERVE_COUNTER)
                release = [op for op in ops if op.statement == repository.RELEASE_COUNTER]
                if release:
                    values = [self._values(op) for op in release]
                    sql = self._compiled[(release[0].statement, tuple(release[0].params))][0]
                    cursor.executemany(sql, values)
            finally:
                cursor.close()
            return
        if self._raw:
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                for op in ops:
                    row = self._values(op)
                    sql = self._compiled[(op.statement, tuple(op.params))][0]
                    cursor.execute(sql, row)
                    if op.guarded and cursor.rowcount != 1:
                        raise _GuardFailed(op.statement)
            finally:
                cursor.close()
            return
        ops.sort(key=_counter_key)
        for op in ops:
            result = connection.execute(self._statements[op.statement], op.params)
            if op.guarded and result.rowcount != 1:
                raise _GuardFailed(op.statement)

    def _execute_raw(self, items: list[_Item]) -> None:
        """SQLite: the prepared rows through the driver, one statement per kind and chunk.

        SQLAlchemy's per-value processing cost more than SQLite's own work; here the writer
        thread holds the GIL only to hand tuples to the driver, which releases it while
        SQLite works, so the event loop keeps running."""
        grouped: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
        counters: list[Op] = []
        for item in items:
            assert item.rows is not None
            for op, (name, row) in zip(item.ops, item.rows, strict=True):
                if name in repository.COUNTER_STATEMENTS:
                    counters.append(op)
                    continue
                grouped[(name, self._compiled[(name, tuple(op.params))][0])].append(row)
        order = {name: index for index, name in enumerate(repository.STATEMENT_ORDER)}
        with self._database.engine.begin() as connection:
            if counters:
                self._run_counters(connection, counters)
            for (name, sql), rows in sorted(grouped.items(), key=lambda kv: order[kv[0][0]]):
                self._run_rows(connection, name, sql, rows)

    def _run_rows(
        self, connection: Connection, name: str, sql: str, rows: list[tuple[Any, ...]]
    ) -> None:
        if name not in repository.MULTI_ROW or len(rows) == 1:
            connection.exec_driver_sql(sql, rows if len(rows) > 1 else rows[0])
            return
        # Multi-row INSERTs of a few fixed sizes: one statement step for many rows, and
        # the driver's statement cache reuses each size's prepared statement.
        head, group, tail = _split_values(sql)
        start = 0
        while start < len(rows):
            size = next(c for c in MULTI_ROW_CHUNKS if c <= len(rows) - start)
            chunk = rows[start : start + size]
            connection.exec_driver_sql(
                head + ", ".join([group] * size) + tail,
                tuple(value for row in chunk for value in row),
            )
            start += size

    def _write_one_by_one(self, items: list[_Item]) -> None:
        # Requests that touch counters go in the order of their first counter key, the
        # order the group pass used: fewer lock-order inversions with other processes.
        ordered = sorted(items, key=_first_counter_key)
        for attempt in range(limits.GATEWAY_JOURNAL_DEADLOCK_RETRIES + 1):
            try:
                outcomes = self._one_by_one(ordered)
                break
            except DBAPIError as error:
                if not _is_deadlock(error) or attempt == limits.GATEWAY_JOURNAL_DEADLOCK_RETRIES:
                    log.error("journal write failed: %s", type(error).__name__)
                    self.stats.failures += 1
                    outcomes = [(item, JournalFailed("journal write failed")) for item in items]
                    break
                log.warning("journal one-by-one pass chosen as deadlock victim; retrying")
        self.stats.commits += 1
        self.stats.requests += len(items)
        self._resolve(outcomes)

    def _one_by_one(self, items: list[_Item]) -> list[tuple[_Item, Exception | None]]:
        outcomes: list[tuple[_Item, Exception | None]] = []
        with self._database.engine.begin() as connection:
            for item in items:
                savepoint = connection.begin_nested()
                try:
                    counters = [o for o in item.ops if o.statement in repository.COUNTER_STATEMENTS]
                    if counters:
                        self._run_counters(connection, counters, single=True)
                    for op in item.ops:
                        if op.statement in repository.COUNTER_STATEMENTS:
                            continue
                        if self._raw:
                            sql = self._compiled[(op.statement, tuple(op.params))][0]
                            connection.exec_driver_sql(sql, self._values(op))
                        else:
                            connection.execute(self._statements[op.statement], [op.params])
                except IntegrityError:
                    savepoint.rollback()
                    outcomes.append((item, DuplicateKey("duplicate key")))
                    continue
                except _GuardFailed:
                    savepoint.rollback()
                    outcomes.append((item, LimitReached("limit reached")))
                    continue
                savepoint.commit()
                outcomes.append((item, None))
        return outcomes

    def _resolve(self, outcomes: list[tuple[_Item, Exception | None]]) -> None:
        loop = self._loop
        assert loop is not None

        def settle() -> None:
            for item, error in outcomes:
                if item.future.done():
                    continue
                if error is None:
                    item.future.set_result(None)
                else:
                    item.future.set_exception(error)

        # A closed loop means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle)


MULTI_ROW_CHUNKS: Final = (256, 64, 16, 4, 1)
"""Sizes of multi-row INSERTs: 256 rows of the journal's 37 columns stay under SQLite's
32,766 bound parameters."""


COUNTERS: Final = repository.COUNTER_STATEMENTS
SUMMABLE: Final = frozenset({repository.RESERVE_COUNTER, repository.ADD_COUNTER})


def _summed(ops: list[Op]) -> list[Op]:
    """Additions to the same key as one (amounts and counts summed, the tightest limit);
    other operations as they are."""
    if len(ops) < 2 or ops[0].statement not in SUMMABLE:
        return ops
    by_key: dict[str, Op] = {}
    for op in ops:
        key = op.params["key"]
        seen = by_key.get(key)
        if seen is None:
            by_key[key] = op
            continue
        params = dict(seen.params)
        params["amount_fen"] += op.params["amount_fen"]
        params["count"] += op.params["count"]
        if "limit_fen" in params:
            params["limit_fen"] = min(params["limit_fen"], op.params["limit_fen"])
        by_key[key] = Op(seen.statement, params, seen.guarded or op.guarded)
    return list(by_key.values())


UNLIMITED_FEN: Final = 2**62
"""A limit no counter reaches (amounts are at most 12 digits a request)."""


def _counter_row(op: Op) -> tuple[Any, ...]:
    params = op.params
    return (
        params["key"],
        params["amount_fen"],
        params["count"],
        _sqlite_value(params["expires_on"]),
        params["limit_fen"],
    )


def _many(cursor: Any, sql_for: Callable[[int], str], rows: list[tuple[Any, ...]]) -> int:
    """``rows`` through one multi-row statement of exactly their number (up to
    ``MULTI_ROW_CHUNKS[0]`` a statement): every statement is one more wait for the GIL,
    and a group has a few dozen counters, whose sizes the driver's statement cache
    keeps prepared. Returns the rows changed."""
    changed = 0
    start = 0
    while start < len(rows):
        size = min(MULTI_ROW_CHUNKS[0], len(rows) - start)
        chunk = rows[start : start + size]
        cursor.execute(sql_for(size), tuple(value for row in chunk for value in row))
        changed += cursor.rowcount
        start += size
    return changed


def _first_counter_key(item: _Item) -> tuple[int, str]:
    keys = [_counter_key(op) for op in item.ops if op.statement in repository.COUNTER_STATEMENTS]
    return (1, min(keys)) if keys else (0, "")


def _split_values(sql: str) -> tuple[str, str, str]:
    """``INSERT … VALUES (?, ?) ON CONFLICT …`` → head, the values group, the tail."""
    start = sql.index(" VALUES (") + len(" VALUES ")
    end = sql.index(")", start) + 1
    return sql[:start], sql[start:end], sql[end:]


def _sqlite_value(value: Any) -> Any:
    """A parameter as SQLAlchemy would store it in SQLite: timestamps as naive UTC text
    (``UTCDateTime``), dates as ISO text."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return (
            value.astimezone(dt.UTC)
            .replace(tzinfo=None)
            .isoformat(sep=" ", timespec="microseconds")
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value)  # a JSON column, as SQLAlchemy's JSON type stores it
    return value
