"""Engine, declarative base and the unit of work.

SQLite is the embedded default: WAL journal, ``synchronous=FULL`` so a committed row
survives power loss, foreign keys enforced, and every writing transaction started with
``BEGIN IMMEDIATE`` so two writers never deadlock on a lock upgrade. PostgreSQL is the
production database; the same models and migrations serve both.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    TypeDecorator,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows; writers then queue per process
    fcntl = None  # type: ignore[assignment]

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "poshub_read_only"
WRITER_QUEUE_HELD = "poshub_writer_queue_held"
AUDIT_KEY_INFO = "poshub_audit_key"
"""``Session.info`` key of the audit-chain HMAC key (None: rows are chained unkeyed)."""

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite keeps no zone, so values are normalised to naive UTC on the way in and
    marked UTC on the way out; PostgreSQL stores ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
        str: String(),
    }


def table_of(model: type[Base]) -> Table:
    """The table a model maps, for plain (Core) statements.

    Hot paths write with statements built once against the table: no ORM flush, no
    bulk-ORM machinery, and no per-call statement construction (SQLAlchemy derives a
    statement's cache key from its structure every time one is built). Core statements
    do not autoflush, so they are used where no pending ORM change can matter.
    """
    table = model.__table__
    assert isinstance(table, Table)
    return table


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


SQLITE_AUTOCHECKPOINT_PAGES = 10_000
"""About 40 MB of WAL with 4 KiB pages."""


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # A committing writer checkpoints the WAL itself once it passes this many pages,
        # while it still holds the writer queue. The worker checkpoints every pass instead
        # (Database.checkpoint), outside the queue; this high mark is only the backstop
        # for when no worker runs.
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    queue = _WriterQueue(_lock_file_of(engine))

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers take no lock; writers take the write lock up front so that two
        # transactions never both read and then fail to upgrade (SQLITE_BUSY).
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
            return
        # A connection keeps its place until it goes back to the pool, also when it
        # runs several transactions in a row (as migrations or a bare Connection may).
        if WRITER_QUEUE_HELD not in connection.info:
            connection.info[WRITER_QUEUE_HELD] = queue.enter()
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # Fired for every return to the pool, after the commit or rollback, and for an
        # invalidated connection too, so a place in the queue cannot be left held.
        place = record.info.pop(WRITER_QUEUE_HELD, None)
        if place is not None:
            queue.leave(place)


def _lock_file_of(engine: Engine) -> str | None:
    """The writer queue's lock file, beside the database file; None for a database
    in memory (one process only) or where ``flock`` does not exist."""
    database = engine.url.database
    if fcntl is None or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database + ".writers"


class _WriterQueue:
    """Write transactions on one SQLite database, one after the other.

    SQLite lets one transaction write at a time. A writer that finds the lock taken
    waits in SQLite's busy handler, which *sleeps* (1, 2, 5, 10 ... 100 ms) between
    attempts: under load the lock is often free while every waiter sleeps, and waits
    reach seconds. Writers therefore queue before ``BEGIN IMMEDIATE``: on a thread lock
    within the process, then on an exclusive ``flock`` of a file beside the database
    across processes (the web workers and ``poshub worker``). Both wake the next writer
    the moment the previous one is done, and the kernel drops a dead process's ``flock``.
    The queue only orders writers; SQLite's own lock still decides, so its busy handler
    stays as the backstop: a thread that waits longer than the busy timeout for its
    turn goes ahead without one.
    """

    def __init__(self, lock_file: str | None) -> None:
        self._threads = threading.Lock()
        self._lock_file = lock_file
        self._fd: int | None = None
        self._fd_pid = 0

    def enter(self) -> _Place:
        if not self._threads.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            return _Place(thread=False, file=None)
        fd = self._file()
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # the GIL is released while it waits
        return _Place(thread=True, file=fd)

    def leave(self, place: _Place) -> None:
        if place.file is not None:
            fcntl.flock(place.file, fcntl.LOCK_UN)
        if place.thread:
            self._threads.release()

    def _file(self) -> int | None:
        # Opened per process: a descriptor inherited over fork() would share its lock.
        if self._lock_file is None:
            return None
        if self._fd is None or self._fd_pid != os.getpid():
            try:
                self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                self._lock_file = None  # e.g. a read-only directory: the busy handler only
                return None
            self._fd_pid = os.getpid()
        return self._fd


@dataclass(frozen=True)
class _Place:
    """What one writer holds of the queue."""

    thread: bool
    file: int | None


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver we ship), not psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


SQLITE_FILE_MODE = 0o600
SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal", ".writers")


def _private_sqlite_files(database: str | None) -> None:
    """The database file exists as 0600 before SQLite opens it (its -wal and -shm take the
    database file's mode), and files left by an older version are tightened to 0600."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_RDWR | os.O_CREAT, SQLITE_FILE_MODE))
    except FileNotFoundError:
        return  # no such directory (yet): SQLite reports it when it connects
    for suffix in SQLITE_FILE_SUFFIXES:
        try:
            os.chmod(database + suffix, SQLITE_FILE_MODE)
        except FileNotFoundError:
            continue


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        _private_sqlite_files(make_url(url).database)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=8,
            max_overflow=8,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Database:
    """Owns the engine and hands out units of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.audit_key: bytes | None = None
        """The audit-chain HMAC key (``KeyVault.audit_key``), set by ``build_state``;
        handed to every session as ``session.info[AUDIT_KEY_INFO]`` (core/audit.py)."""
        self._write_sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            bind=engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        factory = self._read_sessions if read_only else self._write_sessions
        session = factory()
        session.info[AUDIT_KEY_INFO] = self.audit_key
        return UnitOfWork(session)

    def checkpoint(self) -> None:
        """Copy the SQLite WAL back into the database file without waiting for or blocking
        writers (``PASSIVE``), on a connection outside any transaction or writer queue.
        Nothing to do on PostgreSQL."""
        if self.dialect != "sqlite":
            return
        connection = self.engine.raw_connection()
        try:
            connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        finally:
            connection.close()

    def dispose(self) -> None:
        self.engine.dispose()


class UnitOfWork:
    """A transaction that rolls back unless ``commit()`` is called.

    Services receive ``uow.session`` and never commit; the request, job or CLI command
    that opened the unit of work commits once, on a line of its own.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._committed = False

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if not self._committed:
                self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()
        self._committed = True

    def rollback(self) -> None:
        self.session.rollback()


@contextmanager
def unit_of_work(database: Database) -> Iterator[UnitOfWork]:
    with database.unit_of_work() as uow:
        yield uow
