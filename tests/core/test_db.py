"""The embedded database's settings and its writer queue."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from poshub.core.db import Database, make_engine, normalise_url


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    database = Database(make_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    return database


def test_sqlite_is_durable_and_enforces_foreign_keys(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_concurrent_writers_all_commit(sqlite_db: Database) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(40):
                with sqlite_db.unit_of_work() as uow:
                    uow.session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"{n}-{i}"})
                    uow.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert time.perf_counter() - started < 20
    with sqlite_db.unit_of_work(read_only=True) as uow:
        assert uow.session.execute(text("SELECT count(*) FROM t")).scalar() == 160


def test_a_rolled_back_or_failed_writer_does_not_block_the_next(sqlite_db: Database) -> None:
    with sqlite_db.unit_of_work() as uow:
        uow.session.execute(text("INSERT INTO t (v) VALUES ('x')"))
        # no commit: leaving the block rolls back and frees the writer queue
    with pytest.raises(Exception, match="no such table"), sqlite_db.unit_of_work() as uow:
        uow.session.execute(text("INSERT INTO missing (v) VALUES ('x')"))
    done = threading.Event()

    def writer() -> None:
        with sqlite_db.unit_of_work() as uow:
            uow.session.execute(text("INSERT INTO t (v) VALUES ('y')"))
            uow.commit()
        done.set()

    threading.Thread(target=writer).start()
    assert done.wait(timeout=10)


def test_writers_of_another_engine_queue_on_the_lock_file(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """A second engine stands for another process (its own descriptor of the lock file):
    its writer waits for the first's commit and then goes ahead, without an error."""
    assert (tmp_path / "x.db.writers").exists()
    other = Database(make_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    finished: list[float] = []

    def writer() -> None:
        with other.unit_of_work() as uow:
            uow.session.execute(text("INSERT INTO t (v) VALUES ('second')"))
            uow.commit()
        finished.append(time.perf_counter())

    with sqlite_db.unit_of_work() as uow:
        uow.session.execute(text("INSERT INTO t (v) VALUES ('first')"))
        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(0.3)
        assert not finished  # still queued behind the open write transaction
        committed = time.perf_counter()
        uow.commit()
    thread.join(timeout=10)
    other.dispose()
    assert finished
    assert finished[0] >= committed
    with sqlite_db.unit_of_work(read_only=True) as uow:
        rows = uow.session.execute(text("SELECT v FROM t ORDER BY id")).scalars().all()
    assert rows == ["first", "second"]


def test_readers_do_not_wait_for_a_writer(sqlite_db: Database) -> None:
    with sqlite_db.unit_of_work() as writer:
        writer.session.execute(text("INSERT INTO t (v) VALUES ('pending')"))
        with sqlite_db.unit_of_work(read_only=True) as reader:
            # The reader sees the last committed state, without waiting.
            assert reader.session.execute(text("SELECT count(*) FROM t")).scalar() == 0
        writer.commit()


def test_postgresql_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_the_worker_checkpoints_the_wal_outside_the_writer_queue(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """Writers leave the WAL to the worker's checkpoint (the automatic one is only a
    backstop), so no request pays for copying pages while others queue behind it."""
    with sqlite_db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 10_000
    for i in range(50):
        with sqlite_db.unit_of_work() as uow:
            uow.session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "x" * 3000 + str(i)})
            uow.commit()
    wal = tmp_path / "x.db-wal"
    assert wal.stat().st_size > 50 * 3000  # the writes are still in the WAL
    sqlite_db.checkpoint()
    raw = sqlite_db.engine.raw_connection()  # outside any transaction, as the worker's is
    try:
        busy, frames, copied = raw.driver_connection.execute(  # type: ignore[union-attr]
            "PRAGMA wal_checkpoint(PASSIVE)"
        ).fetchone()
    finally:
        raw.close()
    assert busy == 0
    assert copied == frames  # nothing left to copy: the checkpoint above did it
    with sqlite_db.unit_of_work(read_only=True) as uow:
        assert uow.session.execute(text("SELECT count(*) FROM t")).scalar_one() == 50
