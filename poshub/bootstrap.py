"""Assembling a process: settings → database → key vault → service dependencies.

Every process (web, worker, gateway, simulators, the demo) builds what it holds for its
lifetime here, so none of them has to import another process's package (``web/`` in
particular) to start.
"""

from __future__ import annotations

from dataclasses import dataclass

from poshub.core import migrate, workdays
from poshub.core.crypto import KeyVault, load_kek
from poshub.core.db import Database, make_engine
from poshub.core.settings import Settings
from poshub.core.storage import ContentStore, ensure_private_directory, restrict_umask
from poshub.notify.adapters import Notifier, build_notifier
from poshub.onboarding.service import OnboardingDeps
from poshub.onboarding.verification import VerificationProvider, build_provider
from poshub.risk.lists import build_provider as build_list_provider


@dataclass(frozen=True)
class AppState:
    """What a process holds for its lifetime, built once by :func:`build_state`."""

    settings: Settings
    db: Database
    vault: KeyVault
    onboarding: OnboardingDeps
    notifier: Notifier


def open_database(settings: Settings) -> Database:
    """The configured database; creates the data directory an embedded one lives in
    (0700; with the process umask at 0077 every data file is created 0600)."""
    restrict_umask()
    ensure_private_directory(settings.data_dir)
    return Database(make_engine(settings.effective_database_url))


def upgrade(database: Database) -> None:
    """Apply every pending migration."""
    migrate.upgrade(database.engine)


def build_state(
    settings: Settings,
    *,
    database: Database | None = None,
    verifier: VerificationProvider | None = None,
    notifier: Notifier | None = None,
) -> AppState:
    """The process state; fails here, at start-up, on a missing or bad key-encrypting key."""
    restrict_umask()
    db = database or Database(make_engine(settings.effective_database_url))
    vault = KeyVault(load_kek(settings))
    db.audit_key = vault.audit_key
    store = ContentStore(settings.documents_dir, vault.document_key)
    store.seal_legacy_files()
    onboarding = OnboardingDeps(
        settings=settings,
        vault=vault,
        store=store,
        verifier=verifier or build_provider(settings.verification_provider),
        risk_lists=build_list_provider(settings.risk_list_provider),
    )
    return AppState(settings, db, vault, onboarding, notifier or build_notifier(settings.notifier))


def load_calendar(db: Database) -> int:
    """Install the working-day table in ``core.calendar`` (rows read). Called when a
    process starts serving (the web app's start-up; the worker rereads it each sweep), not
    by :func:`build_state`, which never touches the database: a state is also built where
    nothing is migrated (reading the route table, checking a KEK)."""
    with db.unit_of_work(read_only=True) as uow:
        return workdays.refresh(uow.session)
