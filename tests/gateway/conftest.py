"""Fixtures for gateway tests: a database holding the demo data (the live merchant
898340154110001 and its terminal 10000001 keyed with the published test key), and the
gateway and network simulator running in the test's event loop on ephemeral ports."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from poshub.bootstrap import build_state
from poshub.core.db import Database, make_engine
from poshub.core.settings import Mode, Settings
from poshub.demo import seed
from poshub.notify.adapters import MemoryNotifier
from tests.conftest import BACKENDS, TEST_KEK


def _seed(database: Database, settings: Settings) -> None:
    state = build_state(settings, database=database, notifier=MemoryNotifier())
    with database.unit_of_work() as uow:
        seed(uow.session, state.onboarding)
        uow.commit()


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    """A migrated SQLite file with the demo data, seeded once per test process."""
    directory = tmp_path_factory.mktemp("demo-template")
    path = directory / "poshub.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    settings = Settings(mode=Mode.TEST, data_dir=directory, kek=TEST_KEK, database_url=url)
    database = Database(make_engine(url))
    _seed(database, settings)
    database.dispose()
    return path


@pytest.fixture(params=BACKENDS)
def demo_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The demo data on SQLite (a copy of the template) or PostgreSQL (seeded afresh)."""
    if request.param == "sqlite":
        path = tmp_path / "poshub.db"
        shutil.copyfile(request.getfixturevalue("demo_template"), path)
        database = Database(make_engine(f"sqlite:///{path}"))
    else:
        from tests.conftest import _truncate_postgres

        database = Database(make_engine(request.getfixturevalue("postgres_url")))
        _truncate_postgres(database)
        _seed(database, _settings_for(tmp_path, database))
    yield database
    database.dispose()


def _settings_for(tmp_path: Path, database: Database) -> Settings:
    return Settings(
        mode=Mode.TEST,
        data_dir=tmp_path,
        kek=TEST_KEK,
        database_url=database.engine.url.render_as_string(hide_password=False),
        gateway_upstream_timeout_seconds=1.0,
    )


@pytest.fixture
def gateway_settings(tmp_path: Path, demo_database: Database) -> Settings:
    return _settings_for(tmp_path, demo_database)


@pytest.fixture
def sqlite_demo_database(tmp_path: Path, demo_template: Path) -> Iterator[Database]:
    """SQLite only, for tests about files on disk (scans) or many processes."""
    path = tmp_path / "poshub.db"
    shutil.copyfile(demo_template, path)
    database = Database(make_engine(f"sqlite:///{path}"))
    yield database
    database.dispose()
