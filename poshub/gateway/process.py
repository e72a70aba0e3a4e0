"""``poshub gateway``: assemble and run the gateway process.

Builds the database, key vault, zone PIN key, network link, journal, pipeline, store-and-
forward and TCP server from the settings, recovers what a crash left pending, serves until
told to stop, and on SIGTERM/SIGINT stops accepting, lets requests in progress finish and
writes out the journal before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass

from poshub.bootstrap import open_database
from poshub.core import limits
from poshub.core.crypto import KeyVault, load_kek
from poshub.core.db import Database
from poshub.core.settings import Settings
from poshub.gateway import saf
from poshub.gateway.crypto import load_network_zpk
from poshub.gateway.journal import Journal
from poshub.gateway.link import NetworkLink, TcpNetworkLink
from poshub.gateway.pipeline import Gateway
from poshub.gateway.risk import AllowAll, RiskHooks
from poshub.gateway.server import GatewayServer
from poshub.risk.engine import RiskEngine

log = logging.getLogger(__name__)


@dataclass
class RunningGateway:
    gateway: Gateway
    server: GatewayServer
    journal: Journal
    link: NetworkLink
    store_and_forward: saf.StoreAndForward
    port: int
    recovered: int

    async def stop(self) -> None:
        journal = self.journal.stats
        log.info(
            "gateway stopping: %d requests (%s); journal %d commits, %.1f ms each on average, "
            "largest group %d; %d reversals queued",
            self.gateway.stats.requests,
            ", ".join(f"{k}: {v}" for k, v in sorted(self.gateway.stats.response_codes.items())),
            journal.commits,
            journal.commit_seconds * 1000 / max(1, journal.commits),
            journal.largest_group,
            self.gateway.stats.reversals_queued,
        )
        await self.server.stop()
        await self.store_and_forward.stop()
        await self.link.close()
        await asyncio.get_running_loop().run_in_executor(None, self.journal.stop)
        self.gateway.close()


async def start_gateway(
    settings: Settings,
    *,
    database: Database | None = None,
    link: NetworkLink | None = None,
    risk: RiskHooks | None = None,
    host: str | None = None,
    port: int | None = None,
    reuse_port: bool = False,
    primary: bool = True,
) -> RunningGateway:
    """Start every part of the gateway on the running loop; ``port=0`` picks a free port.

    Risk control (poshub/risk/engine.py) decides unless ``risk`` is given or the settings
    turn it off (``POSHUB_GATEWAY_RISK=off``, for measuring the gateway without it).

    With several worker processes (``reuse_port``), only the ``primary`` one recovers what
    a crash left pending and runs store-and-forward: one owner for the reversals owed."""
    database = database or open_database(settings)
    vault = KeyVault(load_kek(settings))
    zpk = load_network_zpk(settings)
    link = link or TcpNetworkLink(settings.network_host, settings.network_port)
    journal = Journal(database)
    journal.start(asyncio.get_running_loop())
    if risk is None:
        risk = RiskEngine() if settings.gateway_risk else AllowAll()
    gateway = Gateway(
        settings=settings,
        database=database,
        vault=vault,
        zpk=zpk,
        link=link,
        journal=journal,
        risk=risk,
    )
    await gateway.start()
    await link.start()
    store_and_forward = saf.StoreAndForward(gateway)
    recovered = 0
    if primary:
        recovered = await saf.recover(gateway)
        store_and_forward.start()
    server = GatewayServer(
        gateway,
        host=host if host is not None else settings.gateway_host,
        port=port if port is not None else settings.gateway_port,
        reuse_port=reuse_port,
    )
    bound = await server.start()
    log.info("gateway listening on %s:%d (network %s:%d)", server.host, bound,
             settings.network_host, settings.network_port)  # fmt: skip
    return RunningGateway(gateway, server, journal, link, store_and_forward, bound, recovered)


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_gateway(
    settings: Settings, *, stop: threading.Event | None = None, workers: int = 1
) -> int:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set, for the demo's thread).

    ``workers`` > 1 starts that many processes sharing the port (``SO_REUSEPORT``): the
    kernel spreads connections over them, each with its own event loop and journal writer;
    the first also owns recovery and store-and-forward."""
    if workers > 1:
        return _run_workers(settings, workers)
    return _serve(settings, stop=stop)


def _run_workers(settings: Settings, workers: int) -> int:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_serve_worker, args=(settings, index), name=f"gateway-{index}")
        for index in range(workers)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()
    return max((child.exitcode or 0) for child in children)


def _serve_worker(settings: Settings, index: int) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format=f"%(asctime)s %(levelname)s gateway-{index} %(name)s: %(message)s",
    )
    _serve(settings, reuse_port=True, primary=index == 0)


def _serve(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    reuse_port: bool = False,
    primary: bool = True,
) -> int:
    _install_uvloop() if threading.current_thread() is threading.main_thread() else None
    if threading.current_thread() is threading.main_thread():
        # The journal writer thread gives up the GIL for every SQLite step and fsync and
        # must get it back from the busy event loop; at the default 5 ms switch interval
        # each group commit waited up to 15 ms for it (measured: 23 ms commits at 5 ms,
        # 8 ms at 1 ms on the same load) and the writer became the bottleneck.
        sys.setswitchinterval(limits.GATEWAY_GIL_SWITCH_SECONDS)

    async def main() -> None:
        running = await start_gateway(settings, reuse_port=reuse_port, primary=primary)
        # Everything loaded so far (modules, SQLAlchemy's metadata, the risk engine's
        # tables) lives as long as the process: out of the collector's sight, a full
        # collection walks only what requests allocated since, instead of stalling the
        # loop for tens of milliseconds (measured: p99 of a closed-loop run 90 → 53 ms).
        gc.freeze()
        finished = asyncio.Event()
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, finished.set)
        if stop is not None:
            loop.run_in_executor(None, stop.wait).add_done_callback(lambda _f: finished.set())
        await finished.wait()
        log.info("gateway stopping")
        await running.stop()

    if threading.current_thread() is threading.main_thread():
        asyncio.run(main())
    else:
        loop = _new_loop()
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
    return 0


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()
