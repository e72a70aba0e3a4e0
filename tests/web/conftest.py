"""Fixtures for browser tests: the real app served by uvicorn, and headless Chromium.

``live_server`` serves ``create_app(state)`` on 127.0.0.1 from a background thread, so the
test and the server share the same :class:`AppState` (and database), and runs the job
worker beside it (automated checks, notifications) as a deployment does. ``browser`` is one
Chromium per session; every test opens its own contexts (separate cookie jars).

Chromium is Debian's ``/usr/bin/chromium`` (Playwright never downloads a browser here).
Without it the browser tests are skipped, unless ``POSHUB_REQUIRE_BROWSER=1`` asks for
them to fail instead (CI on a machine that is supposed to have it).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn

from poshub.bootstrap import AppState
from poshub.runtime import worker_loop
from poshub.web.app import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path(os.environ.get("POSHUB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SERVER_START_TIMEOUT_S = 15.0
SERVER_STOP_TIMEOUT_S = 10.0
WORKER_INTERVAL_S = 0.2


class LiveServer:
    """A uvicorn server running the app in a daemon thread, and the worker in another."""

    def __init__(self, state: AppState, *, worker: bool = True) -> None:
        self.state = state
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))  # the OS picks a free port; we keep the socket
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(state),
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="none",
            proxy_headers=False,  # as `poshub web`: the app decides whom to believe
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"live-server-{self.port}",
            daemon=True,
        )
        self._stop_worker = threading.Event()
        self._worker = (
            threading.Thread(
                target=worker_loop,
                args=(state, self._stop_worker, WORKER_INTERVAL_S),
                name=f"live-worker-{self.port}",
                daemon=True,
            )
            if worker
            else None
        )

    def start(self) -> None:
        self._thread.start()
        if self._worker:
            self._worker.start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("the live server thread died while starting")
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=1.0)
                if response.status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last_error = exc
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the live server did not answer /healthz: {last_error!r}")

    def stop_worker(self) -> None:
        """Stop the background worker; the test then runs jobs itself, when it wants."""
        self._stop_worker.set()
        if self._worker and self._worker.is_alive():
            self._worker.join(SERVER_STOP_TIMEOUT_S)

    def stop(self) -> None:
        self.stop_worker()
        self._server.should_exit = True
        self._thread.join(SERVER_STOP_TIMEOUT_S)
        if self._thread.is_alive():  # a stuck keep-alive connection; do not hang the run
            self._server.force_exit = True
            self._thread.join(SERVER_STOP_TIMEOUT_S)
        self._socket.close()


@pytest.fixture
def live_server(state: AppState) -> Iterator[LiveServer]:
    server = LiveServer(state)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session; each test opens its own contexts."""
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM}: browser tests need Debian's chromium"
        if os.environ.get("POSHUB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message} (POSHUB_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR
