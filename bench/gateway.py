"""The gateway benchmark: PosHub against a framed echo server and a naive host.

    python -m bench.gateway [--terminals 64] [--duration 10] [--out FILE]
    make bench-gateway

In one run, on loopback, with the same load generator (``poshub.simulators.loadgen``,
in its own process) and the same number of terminals:

(a) echo  — ``bench.gateway_servers echo``: frames written straight back. The limit of
    sockets, event loop and load generator on this machine.
(b) naive — ``bench.gateway_servers naive``: pyiso8583 decode/encode and one SQLite commit
    per message, no MAC, no checks, no upstream.
(c) PosHub — ``poshub network-sim`` and ``poshub gateway`` as subprocesses: MAC verified and
    generated, every check, risk control (rules and limits; ``bench.risk``), PIN
    translation, the network round trip, the durable journal with group commit (SQLite
    WAL, synchronous=FULL).

Each server is measured closed-loop (every terminal sends its next sale as soon as the
previous one is answered) for its peak, then PosHub open-loop at half its peak for the p99.
Results (JSON) go to ``bench/results/`` and the table to stdout; ``docs/performance.md``
quotes them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from poshub.bootstrap import build_state, open_database, upgrade
from poshub.core.settings import Mode, Settings
from poshub.demo import seed, seed_load_terminals
from poshub.notify.adapters import MemoryNotifier
from poshub.simulators.loadgen import LoadConfig, TerminalSpec, run_load

RESULTS = Path(__file__).resolve().parent / "results"
KEK = "42" * 32


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {seconds} s")


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        child = subprocess.Popen(args, env=env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            wait_for_port(port)
            yield child
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def prepare(data_dir: Path, terminals: int) -> tuple[str, list[str], Settings]:
    """A fresh SQLite database with the demo data and ``terminals`` load-test terminals."""
    settings = Settings(mode=Mode.TEST, data_dir=data_dir, kek=KEK)
    database = open_database(settings)
    upgrade(database)
    state = build_state(settings, database=database, notifier=MemoryNotifier())
    with database.unit_of_work() as uow:
        seed(uow.session, state.onboarding)
        mid, tids = seed_load_terminals(uow.session, state.onboarding, terminals)
        # Risk control runs as in production, with the per-card thresholds raised for a
        # load that reuses each card ~200 times (bench/risk.py).
        from bench.risk import configure_for_load

        configure_for_load(uow.session)
        uow.commit()
    database.dispose()
    return mid, tids, settings


def load(
    port: int,
    mid: str,
    tids: list[str],
    *,
    rate: float,
    duration: float,
    sign_on: bool,
    state_dir: Path,
) -> dict[str, Any]:
    """The load generator in a process of its own, so it does not share the server's
    CPU time accounting (it still shares the machine's two cores)."""
    config = {
        "port": port,
        "mid": mid,
        "tids": tids,
        "rate": rate,
        "duration": duration,
        "sign_on": sign_on,
        # STAN counters carried from run to run: a new run reusing the STANs of the
        # previous one in the same batch would be answered 94 (duplicate).
        "state_dir": str(state_dir),
    }
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bench.gateway", "--load-child", json.dumps(config)],
        capture_output=True,
        check=False,
        timeout=duration + 120,
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.decode(errors="replace")[-2000:])
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def load_child(raw: str) -> None:
    config = json.loads(raw)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    summary = asyncio.run(
        run_load(
            LoadConfig(
                terminals=tuple(TerminalSpec(tid, config["mid"]) for tid in config["tids"]),
                port=config["port"],
                rate=config["rate"],
                duration_seconds=config["duration"],
                sign_on=config["sign_on"],
                verify_mac=config["sign_on"],
                pin_share=0.5,
                seed=20261204,
                state_dir=Path(config["state_dir"]),
            )
        )
    )
    print(json.dumps(summary.to_json()))


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_before": os.getloadavg(),
    }


def run(
    terminals: int, duration: float, out: Path | None, gateway_workers: int = 1
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="poshub-bench-gateway-"))
    try:
        return _run(work, terminals, duration, out, gateway_workers)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(
    work: Path, terminals: int, duration: float, out: Path | None, gateway_workers: int
) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    data_dir = work / "data"
    mid, tids, _ = prepare(data_dir, terminals)
    env = {
        **os.environ,
        "POSHUB_MODE": "test",
        "POSHUB_DATA_DIR": str(data_dir),
        "POSHUB_KEK": KEK,
        "POSHUB_LOG_LEVEL": "WARNING",
    }
    python = sys.executable
    results: dict[str, Any] = {"started": started.isoformat(), "terminals": terminals,
                               "duration_seconds": duration, "machine": machine(),
                               "gateway_workers": gateway_workers}  # fmt: skip

    port = free_port()
    with process([python, "-m", "bench.gateway_servers", "echo", "--port", str(port)], env, port,
                 work / "echo.log"):  # fmt: skip
        results["echo"] = load(
            port, mid, tids, rate=0, duration=duration, sign_on=False, state_dir=data_dir
        )

    port = free_port()
    naive_db = work / "naive.db"
    with process([python, "-m", "bench.gateway_servers", "naive", "--port", str(port),
                  "--database", str(naive_db)], env, port, work / "naive.log"):  # fmt: skip
        results["naive"] = load(
            port, mid, tids, rate=0, duration=duration, sign_on=False, state_dir=data_dir
        )

    gateway_port, network_port = free_port(), free_port()
    env_gateway = {**env, "POSHUB_GATEWAY_PORT": str(gateway_port),
                   "POSHUB_NETWORK_PORT": str(network_port)}  # fmt: skip
    with (
        process(
            [python, "-m", "poshub.cli", "network-sim"],
            env_gateway,
            network_port,
            work / "network-sim.log",
        ),  # fmt: skip
        process(
            [python, "-m", "poshub.cli", "gateway"], env_gateway, gateway_port, work / "gateway.log"
        ),  # fmt: skip
    ):
        peak = load(
            gateway_port, mid, tids, rate=0, duration=duration, sign_on=True, state_dir=data_dir
        )
        results["poshub"] = peak
        half = max(1.0, round(_throughput(peak) / 2))
        results["poshub_half_rate"] = load(
            gateway_port, mid, tids, rate=half, duration=duration, sign_on=True, state_dir=data_dir
        )
    results["ratio_to_naive"] = round(
        _throughput(results["poshub"]) / max(1.0, _throughput(results["naive"])), 2
    )
    results["ratio_to_echo"] = round(
        _throughput(results["poshub"]) / max(1.0, _throughput(results["echo"])), 3
    )
    results["finished"] = dt.datetime.now(dt.UTC).isoformat()
    target = out or RESULTS / f"gateway-{started:%Y%m%dT%H%M%S}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(table(results))
    print(f"results: {target}")
    return results


def _throughput(summary: dict[str, Any]) -> float:
    return float(summary.get("throughput_per_second") or 0.0)


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'server':<18}{'req/s':>10}{'p50 ms':>9}{'p90':>8}{'p99':>8}{'p99.9':>8}  codes",
    ]
    for name in ("echo", "naive", "poshub", "poshub_half_rate"):
        summary = results.get(name) or {}
        latency = summary.get("latency_ms") or {}
        lines.append(
            f"{name:<18}{_throughput(summary):>10.0f}{latency.get('p50', 0):>9.2f}"
            f"{latency.get('p90', 0):>8.2f}{latency.get('p99', 0):>8.2f}{latency.get('p99.9', 0):>8.2f}"
            f"  {summary.get('response_codes')}"
        )
    lines.append(
        f"PosHub / naive = {results.get('ratio_to_naive')}×, PosHub / echo = {results.get('ratio_to_echo')}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--gateway-workers", type=int, default=1, help="poshub gateway --workers for (c)"
    )
    parser.add_argument("--load-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_child:
        load_child(args.load_child)
        return
    run(args.terminals, args.duration, args.out, args.gateway_workers)


if __name__ == "__main__":
    main()
