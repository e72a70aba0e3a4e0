"""``poshub demo``: one command, every process, demo data, logins printed."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Protocol

from rich.console import Console
from rich.table import Table

from poshub.bootstrap import build_state, open_database, upgrade
from poshub.core.settings import Settings
from poshub.demo import ADMIN_PASSWORD, DEMO_MID, DEMO_SERIAL, DEMO_TID, DEMO_USERS, seed
from poshub.runtime import anchor_audit_chain, worker_loop
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
    # Anchor the seeded chain outside the database at once, so that `poshub audit verify`
    # holds from the first minute, with or without the worker (--no-serve).
    anchor_audit_chain(state)
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
    terminals = Table(title="Terminal gateway (ISO 8583, UnionPay POS dialect)")
    terminals.add_column("what")
    terminals.add_column("address or command")
    terminals.add_row(
        "Gateway (terminals connect here)", f"{settings.gateway_host}:{settings.gateway_port}"
    )
    terminals.add_row(
        "Network simulator (issuer, wallets)", f"{settings.network_host}:{settings.network_port}"
    )
    terminals.add_row("Sign on the demo terminal", "poshub terminal sign-on")
    terminals.add_row(
        "A sale (test card, PIN 123456)",
        "poshub terminal sale --amount 12.34 --card 6225880123456783 --expiry 3012 --pin 123456",
    )
    terminals.add_row("Test cards and amounts", "docs/test-cards.md")
    terminals.add_row("Transactions (staff)", base + "/admin/transactions")
    console.print(terminals)
    if not serve:
        return 0
    stop = threading.Event()
    worker = threading.Thread(target=worker_loop, args=(state, stop), name="worker", daemon=True)
    worker.start()
    services = [
        _service_thread("network-sim", _start_network_simulator, settings, stop),
        _service_thread("gateway", _start_gateway, settings, stop),
    ]
    try:
        uvicorn.run(
            create_app(state),
            host=settings.web_host,
            port=settings.web_port,
            log_level="info",
            proxy_headers=False,  # the app reads X-Forwarded-For itself (trusted proxies only)
        )
    finally:
        stop.set()
        for thread in services:
            thread.join(timeout=10)
    return 0


class _Stoppable(Protocol):
    async def stop(self) -> None: ...


async def _start_network_simulator(settings: Settings) -> _Stoppable:
    from poshub.simulators.network import NetworkSimulator

    simulator = NetworkSimulator(settings)
    await simulator.start()
    return simulator


async def _start_gateway(settings: Settings) -> _Stoppable:
    from poshub.gateway.process import start_gateway

    return await start_gateway(settings)


def _service_thread(
    name: str,
    start: Callable[[Settings], Awaitable[_Stoppable]],
    settings: Settings,
    stop: threading.Event,
) -> threading.Thread:
    """Run an asyncio service (gateway, network simulator) on its own event loop in a
    thread of the demo process until ``stop`` is set; started before the web server, so
    the simulator is listening when the gateway connects to it."""
    started = threading.Event()

    def run() -> None:
        loop = new_event_loop()
        asyncio.set_event_loop(loop)

        async def main() -> None:
            try:
                service = await start(settings)
            finally:
                started.set()
            await loop.run_in_executor(None, stop.wait)
            await service.stop()

        try:
            loop.run_until_complete(main())
        except Exception:
            log.exception("%s stopped with an error", name)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    started.wait(timeout=30)
    return thread


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency on Linux
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
