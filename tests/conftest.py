"""Shared fixtures: a migrated database per test (SQLite always, PostgreSQL when
``POSHUB_TEST_POSTGRES_URL`` is set), app state, an HTTP client and staff logins."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
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
    """argon2id is slow on purpose; tests reuse one hash per password to stay fast."""
    from functools import cache

    from poshub.staff import passwords

    original = passwords.hash_password
    passwords.hash_password = cache(original)
    yield
    passwords.hash_password = original


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for every test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "poshub.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
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


def _truncate_postgres(database: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with database.engine.begin() as connection:
        connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "poshub.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        database = Database(make_engine(f"sqlite:///{path}"))
    else:
        database = Database(make_engine(request.getfixturevalue("postgres_url")))
        _truncate_postgres(database)
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
    state = build_state(settings, database=database, notifier=notifier)
    seed_reference_data(database)
    return state


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
