"""CPU per request of the applying paths, in one process, without HTTP or contention.

    python -m bench.cpu [--applications N] [--profile PHASE | --spy PHASE]

Builds the app as ``poshub web`` does on a fresh SQLite database, then calls it as an
ASGI application (no sockets, no client) one request at a time: N creates, their
uploads, N submits, then worker passes (checks, notifications) until nothing is left.
Each phase reports the process's CPU time per unit, which is what the throughput
benchmark (``bench.applications``) is bound by, but without its noise (the machine is
shared): use this to compare two versions of a hot path. ``--profile`` shows where one
phase's time goes (cProfile, event-loop thread only), ``--spy`` samples it with py-spy
across threads (``pip install py-spy``; not a project dependency) into collapsed stacks.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bench.applications import (
    DOCUMENT_KINDS,
    MULTIPART_BOUNDARY,
    application_payload,
    document_png,
    multipart_body,
)
from poshub.bootstrap import AppState, build_state, open_database, upgrade
from poshub.catalog import service as catalog_service
from poshub.core.settings import Mode, Settings
from poshub.notify.adapters import MemoryNotifier
from poshub.runtime import run_jobs_once
from poshub.web.app import create_app

PHASES = ("create", "upload", "submit", "worker")
WARMUP = 20


async def call(
    app: FastAPI, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """One request through the whole ASGI app (middleware, routing, dependencies)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(body)).encode()), (b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)  # type: ignore[arg-type]
    return status, b"".join(chunks)


def expect(what: str, wanted: int, answer: tuple[int, bytes]) -> bytes:
    status, body = answer
    if status != wanted:
        raise RuntimeError(f"{what}: HTTP {status}: {body[:500]!r}")
    return body


def build(data_dir: Path) -> tuple[AppState, FastAPI]:
    settings = Settings(
        mode=Mode.DEMO, data_dir=data_dir, kek=secrets.token_hex(32), notifier="memory"
    )
    database = open_database(settings)
    upgrade(database)
    with database.unit_of_work() as uow:
        catalog_service.load(uow.session, catalog_service.default_catalog())
        uow.commit()
    state = build_state(settings, database=database, notifier=MemoryNotifier())
    return state, create_app(state)


def spy_on(phase: str) -> subprocess.Popen[bytes]:
    """py-spy sampling this process (all threads, GIL holder only) into collapsed stacks."""
    output = Path(tempfile.gettempdir()) / f"poshub-cpu-{phase}.txt"
    local = Path(sys.executable).with_name("py-spy")
    spy = subprocess.Popen(  # noqa: S603 - a fixed, local command
        [
            str(local) if local.exists() else "py-spy",
            "record",
            "--gil",
            "-r",
            "997",
            "-f",
            "raw",
            "-o",
            str(output),
            "-p",
            str(os.getpid()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let it attach
    print(f"py-spy: {output}")
    return spy


async def run(
    applications: int, profile: str | None, spy_phase: str | None, offset: int
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="poshub-cpu-") as tmp:
        state, app = build(Path(tmp))
        created: list[tuple[str, str]] = []
        results: dict[str, float] = {}

        async def create(i: int) -> None:
            body = json.dumps(application_payload(offset + i), ensure_ascii=False).encode()
            answer = json.loads(
                expect(
                    "create",
                    201,
                    await call(
                        app,
                        "POST",
                        "/api/v1/applications",
                        body,
                        {"content-type": "application/json"},
                    ),
                )
            )
            created.append((answer["id"], answer["access_token"]))

        uploads = [
            (i, kind, multipart_body(kind, f"{kind}.png", document_png(i, kind, 64 * 1024)))
            for i in range(applications)
            for kind in DOCUMENT_KINDS
        ]

        async def upload(unit: int) -> None:
            i, _kind, body = uploads[unit]
            application_id, token = created[i]
            expect(
                "upload",
                201,
                await call(
                    app,
                    "POST",
                    f"/api/v1/applications/{application_id}/documents",
                    body,
                    {
                        "content-type": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}",
                        "authorization": f"Bearer {token}",
                    },
                ),
            )

        async def submit(i: int) -> None:
            application_id, token = created[i]
            expect(
                "submit",
                200,
                await call(
                    app,
                    "POST",
                    f"/api/v1/applications/{application_id}/submit",
                    b"",
                    {"authorization": f"Bearer {token}"},
                ),
            )

        async def checks(_: int) -> None:
            # What ``poshub worker`` does: passes until nothing is left, the notifications
            # of the creates and submits included.
            while any(run_jobs_once(state).values()):
                pass

        async def phase(name: str, units: int, step: Callable[[int], Awaitable[None]]) -> None:
            profiler = cProfile.Profile() if profile == name else None
            spy = spy_on(name) if spy_phase == name else None
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            for unit in range(units):
                await step(unit)
            if profiler:
                profiler.disable()
            if spy:
                spy.send_signal(signal.SIGINT)
                spy.wait()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            per = applications - WARMUP if name == "worker" else units
            results[name] = 1000 * cpu / per
            print(
                f"{name:7} {units:6} units  {1000 * cpu / per:6.3f} ms CPU"
                f"  {1000 * wall / per:6.3f} ms wall  per {'application' if name == 'worker' else 'request'}"
            )
            if profiler:
                stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
                stats.print_stats(45)
                pstats.Stats(profiler).strip_dirs().sort_stats("cumulative").print_stats(60)

        # Warm the caches (compiled statements, catalogue, calendar) outside the timing:
        # the first WARMUP applications go through every step untimed.
        for i in range(WARMUP):
            await create(i)
            for unit in range(i * len(DOCUMENT_KINDS), (i + 1) * len(DOCUMENT_KINDS)):
                await upload(unit)
            await submit(i)
        await checks(0)
        n = applications - WARMUP
        first = WARMUP * len(DOCUMENT_KINDS)
        await phase("create", n, lambda i: create(WARMUP + i))
        await phase("upload", n * len(DOCUMENT_KINDS), lambda u: upload(first + u))
        await phase("submit", n, lambda i: submit(WARMUP + i))
        await phase("worker", 1, checks)
        total = results["create"] + results["submit"] + results["worker"]
        print(f"create + submit + worker: {total:.3f} ms CPU per application")
        state.db.dispose()
        return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__)
    parser.add_argument("--applications", type=int, default=520, help="including 20 warm-up")
    parser.add_argument("--profile", choices=PHASES)
    parser.add_argument("--spy", choices=PHASES, help="sample one phase with py-spy")
    parser.add_argument("--offset", type=int, default=0, help="first identity index")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        pass
    asyncio.run(run(args.applications, args.profile, args.spy, args.offset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
