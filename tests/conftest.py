"""Shared fixtures: a migrated database per test (SQLite always, PostgreSQL when
``POSHUB_TEST_POSTGRES_URL`` is set), app state, an HTTP client and staff logins."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, text
from sqlalchemy.engine import make_url

from poshub.bootstrap import AppState, build_state
from poshub.core import migrate
from poshub.core.audit import Actor
from poshub.core.db import Database, make_engine
from poshub.core.roles import Role
from poshub.core.settings import Mode, Settings
from poshub.models import metadata
from poshub.notify.adapters import MemoryNotifier
from poshub.staff import service as staff_service
from poshub.web.app import create_app
from tests.factories import STAFF

TEST_KEK = "11" * 32
POSTGRES_URL = os.environ.get("POSHUB_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing() -> Iterator[None]:
    """argon2id is slow on purpose (~0.1-0.3 s a call): tests reuse one hash per password,
    and check each (hash, password) pair once, since every staff login verifies one."""
    from functools import cache

    from poshub.staff import passwords

    original_hash, original_verify = passwords.hash_password, passwords.verify_password
    passwords.hash_password = cache(original_hash)
    passwords.verify_password = cache(original_verify)
    yield
    passwords.hash_password, passwords.verify_password = original_hash, original_verify


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for every test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "poshub.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def seeded_sqlite_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The migrated template with the reference data (:func:`seed_reference_data`) in it."""
    path = tmp_path_factory.mktemp("seeded") / "poshub.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(make_engine(f"sqlite:///{path}"))
    seed_reference_data(database)
    database.dispose()
    return path


@contextmanager
def migrated_postgres_schema(prefix: str) -> Iterator[str]:
    """A private, migrated schema in the test database (URL with its search_path); dropped
    on exit, so tests sharing the database never see each other's rows."""
    assert POSTGRES_URL
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    base = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    admin = make_engine(base.render_as_string(hide_password=False))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private schema in the test database, migrated once for the session."""
    with migrated_postgres_schema("poshub_test") as url:
        yield url


_TRIGGERED_TABLES = text(
    "SELECT DISTINCT c.relname FROM pg_trigger t"
    " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
)
_RESTART_SEQUENCES = text(
    "SELECT setval(c.oid, 1, false) FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'S' AND n.nspname = current_schema()"
)


def _truncate_postgres(database: Database) -> None:
    """Every row gone and every id sequence back at 1, between two tests.

    DELETE, children first, rather than TRUNCATE: TRUNCATE gives each of ~30 tables new
    files (0.3-0.8 s a test, most of a PostgreSQL test's time); deleting a test's few rows
    takes ~50 ms. The append-only and signed-contract triggers are off meanwhile, in this
    transaction only.
    """
    with database.engine.begin() as connection:
        triggered = connection.execute(_TRIGGERED_TABLES).scalars().all()
        for table in triggered:
            connection.execute(text(f'ALTER TABLE "{table}" DISABLE TRIGGER USER'))
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
        for table in triggered:
            connection.execute(text(f'ALTER TABLE "{table}" ENABLE TRIGGER USER'))
        connection.execute(_RESTART_SEQUENCES)


@dataclass(frozen=True)
class _Snapshot:
    """Rows of every non-empty table, in insertion order, and every sequence's position."""

    rows: list[tuple[Table, list[dict[str, Any]]]]
    sequences: list[dict[str, Any]]


_SEQUENCES = text(
    "SELECT sequencename AS name, COALESCE(last_value, 1) AS last_value,"
    " last_value IS NOT NULL AS is_called FROM pg_sequences"
    " WHERE schemaname = current_schema()"
)


@pytest.fixture(scope="session")
def postgres_reference_data(postgres_url: str) -> _Snapshot:
    """:func:`seed_reference_data` in the session's schema, once, read back as rows: a
    test gets them by INSERT (~10 ms) instead of through the services (~80 ms)."""
    database = Database(make_engine(postgres_url))
    _truncate_postgres(database)
    seed_reference_data(database)
    with database.engine.connect() as connection:
        rows = [
            (table, [dict(row._mapping) for row in connection.execute(table.select())])
            for table in metadata.sorted_tables
        ]
        sequences = [dict(row._mapping) for row in connection.execute(_SEQUENCES)]
    _truncate_postgres(database)
    database.dispose()
    return _Snapshot([(table, found) for table, found in rows if found], sequences)


def _restore_postgres(database: Database, snapshot: _Snapshot) -> None:
    with database.engine.begin() as connection:
        for table, rows in snapshot.rows:
            connection.execute(table.insert(), rows)
        for sequence in snapshot.sequences:
            connection.execute(
                text("SELECT setval(CAST(:name AS regclass), :last_value, :is_called)"),
                sequence,
            )


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database; with the reference data already in it when the test
    uses ``state`` (which every app-level test does), copied from a session-wide seeded
    copy rather than written through the services for each test."""
    seeded = "state" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "poshub.db"
        template = "seeded_sqlite_template" if seeded else "sqlite_template"
        shutil.copyfile(request.getfixturevalue(template), path)
        database = Database(make_engine(f"sqlite:///{path}"))
    else:
        database = Database(make_engine(request.getfixturevalue("postgres_url")))
        _truncate_postgres(database)
        if seeded:
            _restore_postgres(database, request.getfixturevalue("postgres_reference_data"))
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path, database: Database) -> Settings:
    return Settings(
        mode=Mode.TEST,
        data_dir=tmp_path,
        kek=TEST_KEK,
        database_url=database.engine.url.render_as_string(hide_password=False),
    )


@pytest.fixture
def notifier() -> MemoryNotifier:
    return MemoryNotifier()


@pytest.fixture
def state(settings: Settings, database: Database, notifier: MemoryNotifier) -> AppState:
    """The app state on ``database``, which holds the reference data (see ``database``)."""
    return build_state(settings, database=database, notifier=notifier)


def seed_reference_data(database: Database) -> None:
    """The shipped catalogue and one staff account per role (tests.factories.STAFF)."""
    from poshub.catalog import service as catalog_service

    with database.unit_of_work() as uow:
        catalog_service.load(uow.session, catalog_service.default_catalog())
        for username, (password, roles) in STAFF.items():
            staff_service.create_user(
                uow.session,
                username=username,
                display_name=username.title(),
                password=password,
                roles=roles,
                actor=Actor.system("tests"),
            )
        uow.commit()


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state), base_url="http://testserver") as client:
        yield client


def _role_sets() -> dict[str, tuple[Role, ...]]:
    return {name: roles for name, (_, roles) in STAFF.items()}


@pytest.fixture
def staff_roles() -> dict[str, tuple[Role, ...]]:
    return _role_sets()
