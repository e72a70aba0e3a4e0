"""Throughput of applying over HTTP on SQLite: create, upload, submit with the checks.

    python -m bench.applications [--applications N] [--concurrency C ...] [--workers W ...]

For each server configuration (uvicorn with W worker processes) and client concurrency:

1. a fresh data directory, ``poshub db upgrade`` and ``poshub catalog load``;
2. the server as a subprocess, and ``poshub worker`` beside it when submission queues
   the automated checks for the worker (both always stopped again);
3. one small asyncio HTTP/1.1 client with C keep-alive connections drives, after an
   untimed warm-up, phases each timed on its own:

   A. create N applications (``POST /api/v1/applications``) and prove each mobile number
      (``POST .../mobile/code`` and ``.../mobile/verify``: nothing can be submitted from an
      unproved number since issue 8, so three requests per application, not one),
   B. upload their documents (an *individual* applicant needs four; a unique PNG each),
   C. submit them (``POST .../submit``), timed to the last answer and on until every
      automated check has run (in the request or in the worker, whichever the code does),
   D. N further applications as whole journeys (create, four uploads, submit) on each
      connection, interleaved as real traffic would be, timed the same way;

4. the database is checked: every application submitted with its check rows written,
   no check failed, and ``poshub audit verify`` finds the audit chain intact.

The headline is the create + submit rate with checks, N / (time of A + time of C until
the checks are done). Every application has its own valid identity (resident ID, mobile,
bank card), so the duplicate check searches a growing table and finds nothing, as it
would in production.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import importlib.metadata
import itertools
import json
import os
import platform
import random
import secrets
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from stdnum import luhn
from stdnum.cn import ric

from poshub.demo import tiny_png
from poshub.onboarding.consent import PRIVACY_NOTICE_VERSION
from poshub.onboarding.verification import (
    SANDBOX_BANK_CARD_MISMATCH_MOBILE_SUFFIX,
    SANDBOX_UNAVAILABLE_MOBILE_SUFFIX,
)

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"
TARGET_PER_SECOND = 300.0

APPLICANT_KIND = "individual"
DOCUMENT_KINDS = ("id_card_front", "id_card_back", "settlement_account_proof", "premises_proof")
"""What an individual applicant must upload before submitting (rules.required_documents)."""
CHECKS_PER_SUBMISSION = 11
"""Check rows one check run of an individual applicant writes (service.run_checks)."""

APPLICATIONS_MAX = 100_000
CONCURRENCY_MAX = 256
STARTUP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0
PHASE_TIMEOUT_S = 900.0
STOP_TIMEOUT_S = 15.0
CHECKS_TIMEOUT_S = 600.0
CHECKS_POLL_S = 0.02
CLI_TIMEOUT_S = 300.0
PROCESS_TREE_MAX = 64
WARMUP = "warm-up"
ERRORS_KEPT = 20

console = Console(width=None if sys.stdout.isatty() else 132)


# --- Test data ----------------------------------------------------------------------

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN_NAMES = ("明", "芳", "伟", "娜", "强", "敏", "磊", "静", "洋", "艳", "军", "丽")


def resident_id(index: int) -> str:
    """A checksum-valid resident ID, different for every index below 10⁸: the index
    picks the birth date (one per thousand) and the three-digit sequence."""
    born = dt.date(1960, 1, 1) + dt.timedelta(days=index // 1000)
    body = f"340104{born:%Y%m%d}{index % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def mobile(index: int) -> str:
    """A distinct mainland mobile per index that avoids the sandbox's failure suffixes."""
    digits = f"{index % 100_000_000:08d}"
    if digits.endswith(
        (SANDBOX_UNAVAILABLE_MOBILE_SUFFIX, SANDBOX_BANK_CARD_MISMATCH_MOBILE_SUFFIX)
    ):
        return f"137{digits[:-1]}1"
    return f"139{digits}"


def card_number(index: int) -> str:
    body = f"622202{index % 10**12:012d}"
    return body + luhn.calc_check_digit(body)


def legal_name(index: int) -> str:
    return (
        SURNAMES[index % len(SURNAMES)] + GIVEN_NAMES[(index // len(SURNAMES)) % len(GIVEN_NAMES)]
    )


def application_payload(index: int) -> dict[str, Any]:
    """An individual applicant's application, valid and unique to ``index``."""
    name = legal_name(index)
    return {
        "applicant_kind": APPLICANT_KIND,
        "legal_name": name,
        "id_number": resident_id(index),
        "mobile": mobile(index),
        "business_name": f"{name}便利店{index}",
        "uscc": None,
        "licence_expiry": None,
        "established_on": "2018-01-01",
        "mcc": "5411",
        "address": {
            "province": "安徽省",
            "city": "合肥市",
            "district": "蜀山区",
            "detail": f"长江西路 {index % 9000 + 1} 号",
        },
        "id_expiry": (dt.date.today() + dt.timedelta(days=3650)).isoformat(),
        "settlement_account": {
            "bank_name": "徽商银行合肥蜀山支行",
            "account_name": name,
            "account_number": card_number(index),
            "account_type": "personal",
        },
        "expected_monthly_volume_fen": 30_000_000,
        "terminals": [{"model_code": "SMART-A8", "count": 1}],
        "consents": {
            "notice_version": PRIVACY_NOTICE_VERSION,
            "privacy_notice": True,
            "verification_provider": True,
        },
    }


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@functools.cache
def _padding(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def document_png(index: int, kind: str, size: int) -> bytes:
    """A valid PNG of about ``size`` bytes, unique to (index, kind), so every upload
    stores (and fsyncs) a new file as a real scan would."""
    base = tiny_png()
    end = len(base) - 12  # the IEND chunk
    marker = _png_chunk(b"tEXt", b"poshub-bench\x00" + f"{index}:{kind}".encode())
    filler = _png_chunk(b"bnCh", _padding(max(0, size - len(base) - len(marker) - 12)))
    return base[:end] + marker + filler + base[end:]


# --- A minimal HTTP/1.1 client ------------------------------------------------------


class HttpError(Exception):
    pass


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def build_request(
    method: str,
    path: str,
    port: int,
    *,
    body: bytes = b"",
    content_type: str | None = None,
    token: str | None = None,
) -> bytes:
    """The complete bytes of one request (built before it is timed where possible)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept-Language: zh-CN"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


MULTIPART_BOUNDARY = "poshub-bench-5f0c2e7a9d41b3"


def multipart_body(kind: str, file_name: str, content: bytes) -> bytes:
    b = MULTIPART_BOUNDARY
    return (
        (
            f'--{b}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
            f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{b}--\r\n".encode()
    )


class Connection:
    """One keep-alive connection; a request is written whole and its answer read by
    Content-Length (every PosHub API answer carries one)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(HOST, self.port)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def request(self, data: bytes) -> Response:
        await self.open()
        assert self._reader is not None
        assert self._writer is not None
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            self._writer.write(data)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length: int | None = None
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
                elif name == b"transfer-encoding":
                    raise HttpError("chunked answers are not supported by this client")
            if length is None:
                raise HttpError(f"answer {status} without Content-Length")
            body = await self._reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return Response(status, body)


class UnexpectedStatus(Exception):
    def __init__(self, what: str, expected: int, response: Response) -> None:
        super().__init__(
            f"{what}: {response.status} (expected {expected}): {response.body[:300]!r}"
        )


def expect(what: str, status: int, response: Response) -> Response:
    if response.status != status:
        raise UnexpectedStatus(what, status, response)
    return response


# --- CPU accounting ---------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU seconds of a process and each of its live descendants, by pid
    (Linux /proc; empty elsewhere). uvicorn's workers are children of its supervisor."""
    found: dict[int, float] = {}
    pending = [pid]
    for _ in range(PROCESS_TREE_MAX):
        if not pending:
            break
        current = pending.pop()
        if current in found:
            continue
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            found[current] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, IndexError, ValueError):
            continue
    return found


def machine_busy_cpu_seconds() -> float | None:
    """CPU seconds all processes of the machine have used (Linux /proc/stat), or None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS


def server_cpu(pids: Sequence[int]) -> dict[int, float]:
    found: dict[int, float] = {}
    for pid in pids:
        found |= process_cpu_seconds(pid)
    return found


# --- Phases -------------------------------------------------------------------------


@dataclass
class Created:
    id: str
    token: str


@dataclass
class PhaseResult:
    name: str
    units: int
    """Timed units: requests, or whole applications in the journey phase."""
    requests: int
    wall_s: float
    """From the first request to the last answer."""
    settled_s: float
    """From the first request until the work they queued (the checks) was done."""
    latencies_ms: list[float] = field(repr=False)
    errors: int
    error_samples: list[str]
    server_cpu_s: float | None
    server_cpu_by_process_s: dict[int, float]
    """Shows how evenly the worker processes shared the load."""
    client_cpu_s: float
    machine_cpu_s: float | None
    """All CPU the machine used meanwhile: what exceeds server + client is other load."""

    @property
    def rate(self) -> float:
        return self.units / self.wall_s if self.wall_s > 0 else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]

    def summary(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "requests": self.requests,
            "wall_s": round(self.wall_s, 4),
            "settled_s": round(self.settled_s, 4),
            "rate_per_s": round(self.rate, 1),
            "settled_rate_per_s": round(self.units / self.settled_s, 1) if self.settled_s else 0.0,
            "latency_ms": {
                "p50": round(self.percentile(50), 2),
                "p95": round(self.percentile(95), 2),
                "p99": round(self.percentile(99), 2),
                "max": round(max(self.latencies_ms, default=0.0), 2),
            },
            "errors": self.errors,
            "error_samples": self.error_samples,
            "server_cpu_s": None if self.server_cpu_s is None else round(self.server_cpu_s, 3),
            "server_cpu_ms_per_request": None
            if self.server_cpu_s is None or not self.requests
            else round(1000 * self.server_cpu_s / self.requests, 3),
            "server_cpu_by_process_s": {
                str(pid): round(cpu, 3) for pid, cpu in self.server_cpu_by_process_s.items()
            },
            "client_cpu_s": round(self.client_cpu_s, 3),
            "other_processes_cpu_s": None
            if self.machine_cpu_s is None
            else round(
                max(0.0, self.machine_cpu_s - (self.server_cpu_s or 0.0) - self.client_cpu_s), 3
            ),
        }


Step = Callable[[Connection, int], Awaitable[None]]


async def run_phase(
    name: str,
    *,
    port: int,
    units: int,
    requests_per_unit: int,
    concurrency: int,
    step: Step,
    server_pids: Sequence[int] = (),
    settle: Callable[[], Awaitable[None]] | None = None,
) -> PhaseResult:
    """Run ``step`` for units 0..units-1 on ``concurrency`` connections, each taking the
    next unit as soon as it is free; time every unit and the whole phase. ``settle``
    then waits for the work the requests queued (the automated checks), timed too."""
    counter = itertools.count()
    healthz = build_request("GET", "/healthz", port)
    latencies: list[float] = []
    errors: list[str] = []
    connections = [Connection(port) for _ in range(max(1, min(concurrency, units)))]
    for connection in connections:
        # One at a time, each answered before the next opens: the server has accepted
        # it (so it is not timed) and every idle worker gets its chance to take it.
        expect("healthz", 200, await connection.request(healthz))

    async def worker(connection: Connection) -> None:
        while (index := next(counter)) < units:
            started = time.perf_counter()
            try:
                await step(connection, index)
            except Exception as exc:  # recorded and reported; the phase goes on
                errors.append(f"{name} #{index}: {type(exc).__name__}: {exc}")
                await connection.close()
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    server_before = server_cpu(server_pids)
    machine_before = machine_busy_cpu_seconds()
    client_before = time.process_time()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PHASE_TIMEOUT_S):
            await asyncio.gather(*(worker(c) for c in connections))
    finally:
        wall = time.perf_counter() - started
        for connection in connections:
            await connection.close()
    if settle is not None:
        await settle()
    settled = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    server_after = server_cpu(server_pids)
    machine_after = machine_busy_cpu_seconds()
    by_process = {pid: after - server_before.get(pid, 0.0) for pid, after in server_after.items()}
    machine_cpu = (
        machine_after - machine_before
        if machine_before is not None and machine_after is not None
        else None
    )
    return PhaseResult(
        name=name,
        units=units,
        requests=units * requests_per_unit,
        wall_s=wall,
        settled_s=settled,
        latencies_ms=latencies,
        errors=len(errors),
        error_samples=errors[:ERRORS_KEPT],
        server_cpu_s=sum(by_process.values()) if by_process else None,
        server_cpu_by_process_s=by_process,
        client_cpu_s=client_cpu,
        machine_cpu_s=machine_cpu,
    )


class Driver:
    """The requests of one benchmark run: application ``index`` has identity ``index`` and,
    once created, its id and access token remembered here for its uploads and submit."""

    def __init__(self, port: int, document_bytes: int) -> None:
        self.port = port
        self.document_bytes = document_bytes
        self.created: dict[int, Created] = {}
        self._create_requests: dict[int, bytes] = {}

    def prepare_creates(self, indices: range) -> None:
        """Build these applications' create requests ahead of a timed phase: the client
        shares the machine's cores with the server, so it does no avoidable work while
        the clock runs."""
        for index in indices:
            body = json.dumps(application_payload(index), ensure_ascii=False).encode()
            self._create_requests[index] = build_request(
                "POST",
                "/api/v1/applications",
                self.port,
                body=body,
                content_type="application/json",
            )

    async def create(self, connection: Connection, index: int) -> Created:
        if index not in self._create_requests:
            self.prepare_creates(range(index, index + 1))
        request = self._create_requests.pop(index)
        answer = expect("create", 201, await connection.request(request)).json()
        created = Created(answer["id"], answer["access_token"])
        await self.prove_mobile(connection, created)
        self.created[index] = created
        return created

    async def prove_mobile(self, connection: Connection, created: Created) -> None:
        """Ask for the SMS code and type it back: part of applying since nothing can be
        submitted from an unproved number (the demo answers with the code it sent)."""
        base = f"/api/v1/applications/{created.id}/mobile"
        request = build_request("POST", f"{base}/code", self.port, token=created.token)
        code = expect("mobile code", 202, await connection.request(request)).json()["demo_code"]
        body = json.dumps({"code": code}).encode()
        request = build_request(
            "POST",
            f"{base}/verify",
            self.port,
            body=body,
            content_type="application/json",
            token=created.token,
        )
        expect("mobile verify", 200, await connection.request(request))

    def _own(self, index: int) -> Created:
        created = self.created.get(index)
        if created is None:
            raise HttpError(f"application {index} was not created")
        return created

    async def upload(self, connection: Connection, index: int, kind: str) -> None:
        created = self._own(index)
        body = multipart_body(kind, f"{kind}.png", document_png(index, kind, self.document_bytes))
        request = build_request(
            "POST",
            f"/api/v1/applications/{created.id}/documents",
            self.port,
            body=body,
            content_type=f"multipart/form-data; boundary={MULTIPART_BOUNDARY}",
            token=created.token,
        )
        expect("upload", 201, await connection.request(request))

    async def submit(self, connection: Connection, index: int) -> None:
        created = self._own(index)
        request = build_request(
            "POST", f"/api/v1/applications/{created.id}/submit", self.port, token=created.token
        )
        answer = expect("submit", 200, await connection.request(request)).json()
        if answer.get("status") != "submitted":
            raise HttpError(f"submit answered status {answer.get('status')!r}")

    async def journey(self, connection: Connection, index: int) -> None:
        await self.create(connection, index)
        for kind in DOCUMENT_KINDS:
            await self.upload(connection, index, kind)
        await self.submit(connection, index)


async def drive(
    port: int,
    *,
    applications: int,
    concurrency: int,
    document_bytes: int,
    server_pids: Sequence[int] = (),
    checks_done: Callable[[], Awaitable[None]] | None = None,
    journeys: bool = True,
    warmup: int = 0,
) -> dict[str, PhaseResult]:
    """A warm-up, then phases A (create), B (upload), C (submit) and optionally D (journeys).

    ``checks_done`` waits until the automated checks queued so far have run; the phases
    that submit are timed until then as well as until their last answer.
    """
    driver = Driver(port, document_bytes)
    n = applications
    per_app = len(DOCUMENT_KINDS)
    common: dict[str, Any] = {"port": port, "concurrency": concurrency, "server_pids": server_pids}
    submitting: dict[str, Any] = common | {"settle": checks_done}

    async def create(connection: Connection, index: int) -> None:
        await driver.create(connection, index)

    async def upload(connection: Connection, unit: int) -> None:
        await driver.upload(connection, unit // per_app, DOCUMENT_KINDS[unit % per_app])

    async def journey(connection: Connection, index: int) -> None:
        await driver.journey(connection, n + index)

    async def warm_up(connection: Connection, index: int) -> None:
        await driver.journey(connection, 2 * n + index)

    phases: dict[str, PhaseResult] = {}
    if warmup:
        # Untimed in the figures: first requests pay for imports, SQL compilation caches
        # and the connection pool filling up.
        phases[WARMUP] = await run_phase(
            WARMUP, units=warmup, requests_per_unit=2 + per_app, step=warm_up, **submitting
        )
    driver.prepare_creates(range(n))
    phases |= {
        "create": await run_phase("create", units=n, requests_per_unit=1, step=create, **common),
        "upload": await run_phase(
            "upload", units=n * per_app, requests_per_unit=1, step=upload, **common
        ),
        "submit": await run_phase(
            "submit", units=n, requests_per_unit=1, step=driver.submit, **submitting
        ),
    }
    if journeys:
        driver.prepare_creates(range(n, 2 * n))
        phases["journey"] = await run_phase(
            "journey", units=n, requests_per_unit=2 + per_app, step=journey, **submitting
        )
    return phases


def rates(phases: dict[str, PhaseResult], applications: int) -> dict[str, float | None]:
    """Applications per second. "With checks" counts a submission as done once its
    automated checks have run, wherever they run (in the request, or in the worker)."""
    create, upload, submit = phases["create"], phases["upload"], phases["submit"]
    journey = phases.get("journey")
    n = applications
    return {
        "create_submit_per_s": n / (create.wall_s + submit.settled_s),
        "create_submit_answers_per_s": n / (create.wall_s + submit.wall_s),
        "create_per_s": create.rate,
        "submit_per_s": submit.rate,
        "submit_with_checks_per_s": n / submit.settled_s,
        "upload_per_s": upload.rate,
        "full_phased_per_s": n / (create.wall_s + upload.wall_s + submit.settled_s),
        "full_journey_per_s": n / journey.settled_s if journey else None,
    }


# --- The server -------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    workers: int = 1
    command: str = "uvicorn"
    """``uvicorn`` (httptools + uvloop, the bench.server factory) or ``poshub-web``."""
    access_log: bool = False

    @property
    def label(self) -> str:
        if self.command == "poshub-web":
            return "poshub web"
        return f"uvicorn w={self.workers}" + (" +log" if self.access_log else "")

    @property
    def description(self) -> str:
        if self.command == "poshub-web":
            return (
                "`poshub web`: uvicorn defaults (httptools + uvloop when installed), access log on"
            )
        log = "on" if self.access_log else "off"
        return f"uvicorn --http httptools --loop uvloop --workers {self.workers}, access log {log}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """A PosHub web process on a fresh SQLite database in ``data_dir``, and the
    ``poshub worker`` process when the automated checks run in the worker."""

    def __init__(self, data_dir: Path, config: ServerConfig) -> None:
        self.data_dir = data_dir
        self.config = config
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"
        self.worker_log_path = data_dir / "worker.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSHUB_")}
        env.update(
            POSHUB_MODE="demo",
            POSHUB_DATA_DIR=str(data_dir),
            POSHUB_KEK=secrets.token_hex(32),
            POSHUB_NOTIFIER="memory",
            # Every simulated applicant comes from 127.0.0.1: the per-address daily limits
            # on applications and SMS codes are not what this measures.
            POSHUB_APPLICATIONS_PER_ADDRESS_PER_DAY="100000",
            POSHUB_MOBILE_CODES_PER_ADDRESS_PER_DAY="100000",
            POSHUB_WEB_HOST=HOST,
            POSHUB_WEB_PORT=str(self.port),
            POSHUB_LOG_LEVEL="WARNING",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        )
        self.env = env

    @property
    def database_path(self) -> Path:
        return self.data_dir / "poshub.db"

    def cli(self, *args: str) -> str:
        completed = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "poshub.cli", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"poshub {' '.join(args)} failed ({completed.returncode}): {completed.stderr[-2000:]}"
            )
        return completed.stdout.strip()

    def prepare(self) -> None:
        self.cli("db", "upgrade")
        self.cli("catalog", "load")

    def command(self) -> list[str]:
        if self.config.command == "poshub-web":
            return [
                sys.executable,
                "-m",
                "poshub.cli",
                "web",
                "--host",
                HOST,
                "--port",
                str(self.port),
            ]
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench.server:app",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--workers",
            str(self.config.workers),
            "--log-level",
            "info",
        ]
        if not self.config.access_log:
            command.append("--no-access-log")
        return command

    @property
    def checks_in_worker(self) -> bool:
        """Whether submission queues the checks for the worker (``checks_requested_at``)
        rather than running them in the request; read from the migrated schema."""
        with contextlib.closing(sqlite3.connect(self.database_path)) as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(applications)")}
        return "checks_requested_at" in columns

    def _spawn(self, command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        with log_path.open("wb") as log:
            return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                command,
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self) -> None:
        self.process = self._spawn(self.command(), self.log_path)
        self._wait_ready()
        if self.checks_in_worker:
            self.worker = self._spawn(
                [sys.executable, "-m", "poshub.cli", "worker"], self.worker_log_path
            )

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self.process, self.worker) if p is not None]

    async def checks_done(self) -> None:
        """Until no application waits for its automated checks (polls the database)."""
        if self.worker is None:
            return
        uri = f"file:{self.database_path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            for _ in range(int(CHECKS_TIMEOUT_S / CHECKS_POLL_S)):
                (waiting,) = db.execute(
                    "SELECT EXISTS (SELECT 1 FROM applications"
                    " WHERE checks_requested_at IS NOT NULL)"
                ).fetchone()
                if not waiting:
                    return
                if self.worker.poll() is not None:
                    raise RuntimeError(f"the worker exited:\n{self.log_tail(self.worker_log_path)}")
                await asyncio.sleep(CHECKS_POLL_S)
        raise RuntimeError(f"checks still queued after {CHECKS_TIMEOUT_S:.0f} s")

    def _wait_ready(self) -> None:
        """Until /healthz answers and every worker has reported its startup."""
        assert self.process is not None
        workers = self.config.workers if self.config.command == "uvicorn" else 1
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for _ in range(int(STARTUP_TIMEOUT_S * 10)):
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.log_tail()}")
            started = self.log_path.read_text(errors="replace").count(
                "Application startup complete"
            )
            if started >= workers and self._healthy():
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the server did not become ready:\n{self.log_tail()}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def log_tail(self, path: Path | None = None, chars: int = 3000) -> str:
        try:
            return (path or self.log_path).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        processes = [p for p in (self.worker, self.process) if p is not None]
        self.worker = self.process = None
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the group we started for it
                process.wait(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def verify_database(server: Server, submitted: int) -> dict[str, Any]:
    """What the run left behind: statuses, check outcomes, documents, the audit chain."""
    uri = f"file:{server.database_path}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        statuses = dict(db.execute("SELECT status, count(*) FROM applications GROUP BY status"))
        checks = {
            f"{code}:{status}": count
            for code, status, count in db.execute(
                "SELECT code, status, count(*) FROM application_checks GROUP BY code, status"
            )
        }
        (documents,) = db.execute("SELECT count(*) FROM application_documents").fetchone()
        (audit_rows,) = db.execute("SELECT count(*) FROM audit_log").fetchone()
    try:
        audit = server.cli("audit", "verify")
        audit_ok = True
    except RuntimeError as exc:
        audit, audit_ok = str(exc), False
    check_rows = sum(checks.values())
    failed = {k: v for k, v in checks.items() if not k.endswith(":pass")}
    ok = (
        statuses.get("submitted", 0) == submitted
        and check_rows == submitted * CHECKS_PER_SUBMISSION
        and not failed
        and audit_ok
    )
    return {
        "ok": ok,
        "applications_by_status": statuses,
        "check_rows": check_rows,
        "checks_not_passed": failed,
        "documents": documents,
        "audit_rows": audit_rows,
        "audit_verify": audit,
    }


def fsync_probe(directory: Path, count: int = 30) -> float:
    """Median milliseconds of a 4 KiB write + fsync in ``directory``."""
    path = directory / "fsync-probe"
    timings: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(count):
            os.write(fd, b"\0" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return sorted(timings)[len(timings) // 2]


# --- One configuration, and the whole run --------------------------------------------


def run_configuration(
    config: ServerConfig,
    *,
    applications: int,
    concurrency: int,
    document_bytes: int,
    journeys: bool = True,
    warmup: int = 0,
    base_dir: Path | None = None,
) -> dict[str, Any]:
    """Set up, serve, drive and verify one server configuration at one concurrency;
    the results as a dict (JSON-ready)."""
    with tempfile.TemporaryDirectory(prefix="poshub-bench-", dir=base_dir) as tmp:
        data_dir = Path(tmp)
        with Server(data_dir, config) as server:
            server.prepare()
            server.start()
            assert server.process is not None
            console.log(
                f"{config.description}: server pid {server.process.pid}, port {server.port}; "
                + ("checks in the worker" if server.worker else "checks in the submit request")
            )
            phases = asyncio.run(
                drive(
                    server.port,
                    applications=applications,
                    concurrency=concurrency,
                    document_bytes=document_bytes,
                    server_pids=server.pids,
                    checks_done=server.checks_done,
                    journeys=journeys,
                    warmup=warmup,
                )
            )
            server_log = server.log_tail() + server.log_tail(server.worker_log_path)
            checks_in_worker = server.worker is not None
            fsync_ms = fsync_probe(data_dir)
        submitted = applications * (2 if journeys else 1) + warmup
        verification = verify_database(server, submitted)
    return {
        "label": f"{config.label} c={concurrency}",
        "config": asdict(config) | {"description": config.description},
        "concurrency": concurrency,
        "checks_in_worker": checks_in_worker,
        "phases": {name: phase.summary() for name, phase in phases.items()},
        "rates_per_s": {
            k: None if v is None else round(v, 1) for k, v in rates(phases, applications).items()
        },
        "errors": sum(p.errors for p in phases.values()),
        "verification": verification,
        "fsync_ms_median": round(fsync_ms, 3),
        "server_log_tail": server_log if not verification["ok"] else "",
    }


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    packages = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "pydantic", "httptools", "uvloop")
    return {
        "cpus": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpu_model": model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "packages": {p: importlib.metadata.version(p) for p in packages},
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and a digest of any uncommitted change to it (read-only git)."""

    def git(*args: str) -> str | None:
        try:
            completed = subprocess.run(  # noqa: S603 - fixed arguments
                ["git", *args],  # noqa: S607 - git from PATH
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return completed.stdout.strip() if completed.returncode == 0 else None

    diff = git("diff", "HEAD")  # None: unknown; "": the work tree is the commit
    digest = hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else diff
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_diff_sha256": digest}


def _right(table: Table, *columns: str) -> None:
    for column in columns:
        table.add_column(column, justify="right")


def print_results(runs: list[dict[str, Any]]) -> None:
    table = Table(
        title="Phases: latency per unit (one request; a whole application in journey); "
        "'+checks s' runs until the queued checks are done"
    )
    table.add_column("configuration")
    table.add_column("phase")
    _right(table, "units", "wall s", "+checks s", "per s", "p50 ms", "p95 ms", "p99 ms")
    _right(table, "server CPU ms/req", "other load, cores", "errors")
    for run in runs:
        for name, phase in run["phases"].items():
            if name == WARMUP:
                continue
            latency = phase["latency_ms"]
            cpu = phase["server_cpu_ms_per_request"]
            table.add_row(
                run["label"],
                name,
                str(phase["units"]),
                f"{phase['wall_s']:.2f}",
                f"{phase['settled_s']:.2f}",
                f"{phase['rate_per_s']:.1f}",
                f"{latency['p50']:.1f}",
                f"{latency['p95']:.1f}",
                f"{latency['p99']:.1f}",
                "-" if cpu is None else f"{cpu:.2f}",
                "-"
                if phase["other_processes_cpu_s"] is None
                else f"{phase['other_processes_cpu_s'] / phase['settled_s']:.2f}",
                str(phase["errors"]),
            )
    console.print(table)
    summary = Table(
        title=f"Applications per second (target ≥ {TARGET_PER_SECOND:.0f}/s create + submit "
        "with checks)"
    )
    summary.add_column("configuration")
    _right(summary, "create+submit with checks", "create+submit answers", "create", "submit")
    _right(summary, "submit with checks", "upload", "full, phased", "full, journeys")
    _right(summary, "target", "verified")
    for run in runs:
        r = run["rates_per_s"]
        journey = r["full_journey_per_s"]
        summary.add_row(
            run["label"],
            f"{r['create_submit_per_s']:.1f}",
            f"{r['create_submit_answers_per_s']:.1f}",
            f"{r['create_per_s']:.1f}",
            f"{r['submit_per_s']:.1f}",
            f"{r['submit_with_checks_per_s']:.1f}",
            f"{r['upload_per_s']:.1f}",
            f"{r['full_phased_per_s']:.1f}",
            "-" if journey is None else f"{journey:.1f}",
            "met" if r["create_submit_per_s"] >= TARGET_PER_SECOND else "NOT met",
            "yes" if run["verification"]["ok"] else "NO",
        )
    console.print(summary)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.applications",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--applications", type=int, default=1000, help="N per phase (default 1000)")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[16],
        help="client keep-alive connections; one run per value (default: 16)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="uvicorn worker processes; one run per value (default: 1 2)",
    )
    parser.add_argument(
        "--server",
        choices=("uvicorn", "poshub-web"),
        default="uvicorn",
        help="uvicorn with the bench factory, or the shipped `poshub web` (one worker)",
    )
    parser.add_argument("--access-log", action="store_true", help="keep uvicorn's access log on")
    parser.add_argument(
        "--document-kb", type=int, default=64, help="size of each uploaded PNG in KiB (default 64)"
    )
    parser.add_argument("--no-journeys", action="store_true", help="skip phase D")
    parser.add_argument(
        "--warmup", type=int, default=50, help="untimed journeys before phase A (default 50)"
    )
    parser.add_argument("--output", type=Path, help="JSON results file (default bench/results/)")
    args = parser.parse_args(argv)
    if not 1 <= args.applications <= APPLICATIONS_MAX:
        parser.error(f"--applications must be 1..{APPLICATIONS_MAX}")
    if any(not 1 <= c <= CONCURRENCY_MAX for c in args.concurrency):
        parser.error(f"--concurrency must be 1..{CONCURRENCY_MAX}")
    if any(not 1 <= w <= 8 for w in args.workers):
        parser.error("--workers must be 1..8")
    if not 0 <= args.warmup <= APPLICATIONS_MAX:
        parser.error(f"--warmup must be 0..{APPLICATIONS_MAX}")
    if not 1 <= args.document_kb <= 10 * 1024 - 1:
        parser.error("--document-kb must be 1..10239 (uploads are limited to 10 MB)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configs = (
        [ServerConfig(1, "poshub-web", True)]
        if args.server == "poshub-web"
        else [ServerConfig(w, "uvicorn", args.access_log) for w in args.workers]
    )
    today = dt.date.today().isoformat()
    code_before = code_version()
    runs: list[dict[str, Any]] = []
    for config in configs:
        for concurrency in args.concurrency:
            runs.append(
                run_configuration(
                    config,
                    applications=args.applications,
                    concurrency=concurrency,
                    document_bytes=args.document_kb * 1024,
                    journeys=not args.no_journeys,
                    warmup=args.warmup,
                )
            )
    print_results(runs)
    results = {
        "benchmark": "bench.applications",
        "date": today,
        "command": "python -m bench.applications "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "parameters": {
            "applications": args.applications,
            "concurrency": args.concurrency,
            "applicant_kind": APPLICANT_KIND,
            "documents_per_application": len(DOCUMENT_KINDS),
            "document_bytes": args.document_kb * 1024,
            "journeys": not args.no_journeys,
            "warmup_journeys": args.warmup,
        },
        "machine": machine(),
        "code": code_before,
        "target_create_submit_per_s": TARGET_PER_SECOND,
        "runs": runs,
    }
    if code_version() != code_before:
        results["code_changed_during_run"] = code_version()
        console.print(
            "[yellow]the code changed while the benchmark ran; results are mixed[/yellow]"
        )
    output = args.output or RESULTS_DIR / f"applications-{today}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    console.print(f"results written to {output}")
    failed = [r for r in runs if r["errors"] or not r["verification"]["ok"]]
    for run in failed:
        console.print(f"[red]{run['label']}: {run['errors']} errors[/red]")
        for phase in run["phases"].values():
            for sample in phase["error_samples"][:5]:
                console.print(f"  {sample}")
        console.print(run["verification"])
        console.print(run["server_log_tail"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
