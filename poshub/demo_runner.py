"""``poshub demo``: one command, every process, demo data, logins printed."""

from __future__ import annotations

import logging
import threading

from rich.console import Console
from rich.table import Table

from poshub.bootstrap import build_state, open_database, upgrade
from poshub.core.settings import Settings
from poshub.demo import ADMIN_PASSWORD, DEMO_MID, DEMO_SERIAL, DEMO_TID, DEMO_USERS, seed
from poshub.runtime import worker_loop
from poshub.terminals.service import DEMO_TEST_KEY_HEX

log = logging.getLogger(__name__)


def run_demo(settings: Settings, *, serve: bool = True) -> int:
    import uvicorn

    from poshub.web.app import create_app

    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    console = Console()
    database = open_database(settings)
    upgrade(database)
    state = build_state(settings, database=database)
    with database.unit_of_work() as uow:
        created = seed(uow.session, state.onboarding)
        uow.commit()
    base = settings.base_url
    console.rule("[bold red]PosHub demo")
    console.print(
        f"Data directory: {settings.data_dir.resolve()}  ({'seeded now' if created else 'already seeded'})"
    )
    console.print(
        "[yellow]DEMO ONLY: a generated key-encrypting key in the data directory and published demo passwords."
    )
    urls = Table(title="URLs")
    urls.add_column("what")
    urls.add_column("address")
    for what, path in (
        ("Public site and catalogue", "/"),
        ("Application form", "/apply"),
        ("Applicant tracking", "/apply/track"),
        ("Staff back office", "/admin"),
        ("Demo merchant (staff view)", f"/admin/merchants/{DEMO_MID}"),
        ("Technician's view (log in as tech)", "/tech"),
        ("REST API (OpenAPI)", "/api/v1/docs"),
        ("Health", "/healthz"),
    ):
        urls.add_row(what, base + path)
    console.print(urls)
    logins = Table(title="Staff logins (one per role)")
    logins.add_column("user")
    logins.add_column("password")
    logins.add_column("role")
    for user in DEMO_USERS:
        logins.add_row(
            user.username,
            ADMIN_PASSWORD if user.username == "admin" else user.password,
            user.role.value,
        )
    console.print(logins)
    console.print(
        f"Demo merchant MID: {DEMO_MID} (合肥蜀山明辉便利超市, MCC 5411), live; "
        f"terminal TID {DEMO_TID} (device {DEMO_SERIAL}), active"
    )
    console.print(
        f"[bold yellow]WARNING: terminal {DEMO_TID} uses the published test master key "
        f"{DEMO_TEST_KEY_HEX} (KCV 08D7B4FB). Demo only: production mode refuses known test keys."
    )
    if not serve:
        return 0
    stop = threading.Event()
    worker = threading.Thread(target=worker_loop, args=(state, stop), name="worker", daemon=True)
    worker.start()
    try:
        uvicorn.run(
            create_app(state), host=settings.web_host, port=settings.web_port, log_level="info"
        )
    finally:
        stop.set()
    return 0
