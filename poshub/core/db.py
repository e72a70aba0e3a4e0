"""Engine, declarative base and the unit of work.

SQLite is the embedded default: WAL journal, ``synchronous=FULL`` so a committed row
survives power loss, foreign keys enforced, and every writing transaction started with
``BEGIN IMMEDIATE`` so two writers never deadlock on a lock upgrade. PostgreSQL is the
production database; the same models and migrations serve both.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    MetaData,
    String,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "poshub_read_only"

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


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SqliteWriterLock:
    """Queues SQLite writers in the operating system instead of in SQLite's busy handler.

    SQLite lets one writer in at a time; the others retry in its busy handler, which
    sleeps 1, 2, 5, 10 … 100 ms between attempts, so under load a waiting writer sleeps
    long after the lock is free. Here a writer first takes a thread lock (writers of this
    process) and then an exclusive ``flock`` on a file beside the database (writers of
    other processes); both wake the next writer the moment the lock is released.
    SQLite's own lock still guarantees correctness; this only decides who goes next.
    """

    def __init__(self, database_path: Path | None) -> None:
        self._thread_lock = threading.Lock()
        self._path = Path(f"{database_path}.writer-lock") if database_path is not None else None
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        self._thread_lock.acquire()
        if self._path is None:
            return
        try:
            if self._file is None:
                # Opened on first use, like the database itself; kept for the engine's life.
                self._file = open(self._path, "ab")  # noqa: SIM115
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._thread_lock.release()


_HOLDS_WRITER_LOCK = "poshub_holds_writer_lock"


def _configure_sqlite(engine: Engine, writer_lock: SqliteWriterLock) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers take no lock; writers take the write lock up front so that two
        # transactions never both read and then fail to upgrade (SQLITE_BUSY).
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
            return
        writer_lock.acquire()
        connection.info[_HOLDS_WRITER_LOCK] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(connection)
            raise

    def _release(connection: Any) -> None:
        if connection.info.pop(_HOLDS_WRITER_LOCK, False):
            writer_lock.release()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)

    # A connection that leaves use without commit or rollback (closed, invalidated after
    # an error, returned to the pool) must not keep other writers out. Releasing early is
    # safe: SQLite's own lock still guarantees one writer at a time.
    def _release_record(_dbapi_connection: Any, record: ConnectionPoolEntry, *_: Any) -> None:
        if record.info.pop(_HOLDS_WRITER_LOCK, False):
            writer_lock.release()

    for name in ("checkin", "invalidate", "soft_invalidate", "close", "detach"):
        event.listen(engine, name, _release_record)


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver we ship), not psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=8,
            max_overflow=8,
        )
        database = engine.url.database
        on_disk = (
            bool(database)
            and database != ":memory:"
            and not str(database).startswith("file::memory:")
        )
        _configure_sqlite(engine, SqliteWriterLock(Path(str(database)) if on_disk else None))
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Database:
    """Owns the engine and hands out units of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            bind=engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        factory = self._read_sessions if read_only else self._write_sessions
        return UnitOfWork(factory())

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
