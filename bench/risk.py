"""Risk control's benchmark (issue 9): rule evaluation and the gateway with risk on and off.

    python -m bench.risk [--terminals 64] [--duration 10] [--rounds 2]
                         [--authorizations 20000] [--out FILE]
    make bench-risk

In one run, on one fresh SQLite database with the demo data and ``--terminals`` load-test
terminals of one merchant:

(b) gateway throughput — ``poshub network-sim`` and ``poshub gateway`` as subprocesses (as
    ``bench.gateway`` runs them), the same closed-loop load from the same terminals
    (``poshub.simulators.loadgen`` in its own process), first with
    ``POSHUB_GATEWAY_RISK=off`` and then ``on``, ``--rounds`` times alternately. Target:
    risk on ≥ 80 % of risk off.
(a) rule evaluation — then, in this process, the risk engine loaded from that database as
    a gateway loads it (rules, limits, profiles, counters, and the windows rebuilt from the
    journal the load just wrote) decides ``--authorizations`` authorizations of a mix like
    a day's traffic: card sales on debit and credit cards (a few big, some at night, some
    cards coming back), QR sales, pre-authorizations, refunds and voids, 3 % declined by
    the issuer. Each one is timed from ``before_forward`` to ``finish`` (what the gateway
    calls), with every rule on. Target: p99 ≤ 1 ms.

The load generator reuses each sandbox card about 200 times (``bench.gateway``), which no
cardholder does, and each of its terminals takes some 30 sales a second, which no shop
does, so the thresholds that count one card's or one terminal's payments (card and
terminal velocity, cash-out's same-card count) are raised for the load by rule versions,
as a risk officer would for a test merchant; every rule still evaluates every request. Limits are set on the
card channels as well as QR's defaults, so that every sale reserves on its limit counters
in the journal write (the expensive part of limits). Results (JSON) go to
``bench/results/``; ``docs/performance.md`` quotes them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from sqlalchemy.orm import Session

from bench import gateway as gateway_bench
from poshub.bootstrap import open_database
from poshub.core import limits
from poshub.core.clock import SHANGHAI
from poshub.core.db import utcnow
from poshub.core.settings import Mode, Settings
from poshub.gateway.models import TxnKind
from poshub.gateway.risk import RiskContext
from poshub.risk import repository
from poshub.risk.engine import RiskEngine
from poshub.risk.models import RiskLimit, RiskRuleVersion
from poshub.risk.schemas import RULES, RuleCode

RESULTS: Final = gateway_bench.RESULTS
EVALUATION_P99_TARGET_MS: Final = 1.0
THROUGHPUT_RATIO_TARGET: Final = 0.8
SPACING_MS: Final = 250
LOAD_RULES: Final[dict[RuleCode, dict[str, Any]]] = {
    RuleCode.CARD_VELOCITY: {"max_count": 100_000},
    RuleCode.CASHOUT: {"same_card_per_day": 100_000},
    RuleCode.TERMINAL_VELOCITY: {"max_count": 100_000},
}
"""Thresholds raised for the synthetic load (see the module doc)."""
LOAD_CARD_LIMITS: Final = {
    "per_transaction_fen": 5_000_000,
    "per_day_fen": 100_000_000_000,
    "per_month_fen": 1_000_000_000_000,
    "per_card_per_day_fen": 1_000_000_000,
}
"""Card channel limits high enough for the load, so that none declines but every sale
reserves on its merchant's day and month and on its card's day."""


def configure_for_load(session: Session) -> None:
    """Rule versions and default card limits for the load generator (idempotent)."""
    now = utcnow()
    if session.query(RiskRuleVersion).filter_by(created_by="bench").first() is not None:
        return
    for code, params in LOAD_RULES.items():
        session.add(
            RiskRuleVersion(
                code=code.value, version=1, enabled=True, action=RULES[code].action.value,
                params=params, reason="the load generator reuses each sandbox card",
                created_by="bench", created_at=now,
            )
        )  # fmt: skip
    for channel in ("debit", "credit"):
        session.add(
            RiskLimit(scope="default", subject="*", channel=channel, version=1,
                      created_at=now, **LOAD_CARD_LIMITS)
        )  # fmt: skip


# --- (b) throughput ------------------------------------------------------------------------
def throughput(
    work: Path, data_dir: Path, mid: str, tids: list[str], *, risk: bool, duration: float
) -> dict[str, Any]:
    """One closed-loop load against fresh ``network-sim`` and ``gateway`` processes."""
    gateway_port, network_port = gateway_bench.free_port(), gateway_bench.free_port()
    env = {
        **os.environ,
        "POSHUB_MODE": "test",
        "POSHUB_DATA_DIR": str(data_dir),
        "POSHUB_KEK": gateway_bench.KEK,
        "POSHUB_LOG_LEVEL": "WARNING",
        "POSHUB_GATEWAY_PORT": str(gateway_port),
        "POSHUB_NETWORK_PORT": str(network_port),
        "POSHUB_GATEWAY_RISK": "on" if risk else "off",
    }
    python = sys.executable
    label = "on" if risk else "off"
    with (
        gateway_bench.process([python, "-m", "poshub.cli", "network-sim"], env, network_port,
                              work / f"network-sim-{label}.log"),
        gateway_bench.process([python, "-m", "poshub.cli", "gateway"], env, gateway_port,
                              work / f"gateway-{label}.log"),
    ):  # fmt: skip
        return gateway_bench.load(
            gateway_port, mid, tids, rate=0, duration=duration, sign_on=True, state_dir=data_dir
        )


# --- (a) rule evaluation ---------------------------------------------------------------------
def loaded_engine(settings: Settings) -> tuple[RiskEngine, int]:
    """The engine as a starting gateway loads it: one snapshot, then the journal's day."""
    database = open_database(settings)
    now = utcnow()
    today = now.astimezone(SHANGHAI).date()
    engine = RiskEngine()
    with database.unit_of_work(read_only=True) as uow:
        snapshot = repository.engine_snapshot(
            uow.session,
            today=today,
            counter_keys=None,
            rows_max=limits.RISK_READ_ROWS_MAX,
            profiles_max=limits.RISK_MERCHANT_PROFILES_MAX,
            counters_max=limits.RISK_TRACKED_KEYS_MAX,
            chunk=500,
        )
        since = now - dt.timedelta(days=1)
        rows = repository.recent_journal(
            uow.session,
            since=since,
            since_date=since.astimezone(SHANGHAI).date(),
            limit=limits.RISK_REBUILD_ROWS_MAX,
        )
    database.dispose()
    engine.install(snapshot, today=today, full=True)
    engine.replay(reversed(rows), today=today)
    return engine, len(rows)


def authorization_mix(
    mid: str, tids: list[str], count: int, seed: int = 20261204
) -> list[tuple[RiskContext, str]]:
    """``count`` authorizations with the network's answer each would get, one every
    ``SPACING_MS`` (20,000 over 64 terminals: one a terminal every 16 seconds, a busy
    shop), on 20,000 cards of which a few come back often."""
    rng = random.Random(seed)
    cards: list[tuple[str | None, str]] = [
        (f"{i:064x}", "credit" if i % 3 == 0 else "debit") for i in range(20_000)
    ]
    start = utcnow()
    mix: list[tuple[RiskContext, str]] = []
    for index in range(count):
        at = start + dt.timedelta(milliseconds=SPACING_MS * index)
        local = at.astimezone(SHANGHAI)
        if rng.random() < 0.05:
            local = local.replace(hour=rng.choice((0, 1, 2, 23)))  # some at night
        token, channel = cards[min(int(rng.expovariate(1 / 600)), len(cards) - 1)]
        roll = rng.random()
        amount = max(1, int(rng.lognormvariate(8.9, 1.0)))  # median about 73 CNY
        if rng.random() < 0.01:
            amount = rng.choice((500_000, 800_000, 1_000_000))  # a few round, big ones
        original: dict[str, Any] = {}
        if roll < 0.60:
            kind = TxnKind.SALE
        elif roll < 0.80:
            kind, token, channel = TxnKind.QR_SALE, None, "qr"
        elif roll < 0.85:
            kind = TxnKind.PREAUTH
        elif roll < 0.95:
            kind = TxnKind.REFUND
            original = {"original_rrn": f"{index:012d}", "original_amount_fen": amount * 2}
        else:
            kind = TxnKind.VOID
            original = {
                "original_rrn": f"{index:012d}", "original_amount_fen": amount,
                "original_host_date": local.date(), "original_tid": tids[index % len(tids)],
                "original_pan_token": token,
            }  # fmt: skip
        context = RiskContext(
            kind=kind, tid=tids[index % len(tids)], mid=mid, amount_fen=amount,
            pan_token=token, pan_masked=None if token is None else "622202******1234",
            entry_mode="051", rrn=f"{900_000_000_000 + index:012d}", received_at=at,
            channel=channel, local=local, terminal_limit_fen=5_000_000, **original,
        )  # fmt: skip
        mix.append((context, "51" if rng.random() < 0.03 else "00"))
    return mix


def evaluate(engine: RiskEngine, mix: list[tuple[RiskContext, str]]) -> dict[str, Any]:
    """Each authorization timed from ``before_forward`` to ``finish``."""
    timings_ns: list[int] = []
    codes: dict[str, int] = {}
    clock = time.perf_counter_ns
    for context, answer in mix:
        started = clock()
        decision = engine.before_forward(context)
        if decision.allow:
            engine.finish(context, decision, answer, approved=answer == "00")
        timings_ns.append(clock() - started)
        code = decision.response_code.value if not decision.allow else answer
        codes[code] = codes.get(code, 0) + 1
    timings_ns.sort()

    def ms(p: float) -> float:
        return round(timings_ns[min(len(timings_ns) - 1, int(len(timings_ns) * p))] / 1e6, 4)

    return {
        "authorizations": len(timings_ns),
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
        "max_ms": round(timings_ns[-1] / 1e6, 4),
        "mean_ms": round(statistics.fmean(timings_ns) / 1e6, 4),
        "codes": dict(sorted(codes.items())),
        "hits": dict(sorted(engine.stats.hits.items())),
        "declines": dict(sorted(engine.stats.declines.items())),
    }


# --- the run ---------------------------------------------------------------------------------
def run(
    terminals: int, duration: float, rounds: int, authorizations: int, out: Path | None
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="poshub-bench-risk-"))
    try:
        return _run(work, terminals, duration, rounds, authorizations, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(
    work: Path, terminals: int, duration: float, rounds: int, authorizations: int,
    out: Path | None,
) -> dict[str, Any]:  # fmt: skip
    started = dt.datetime.now(dt.UTC)
    data_dir = work / "data"
    mid, tids, _ = gateway_bench.prepare(data_dir, terminals)
    settings = Settings(mode=Mode.TEST, data_dir=data_dir, kek=gateway_bench.KEK)
    results: dict[str, Any] = {
        "started": started.isoformat(),
        "terminals": terminals,
        "duration_seconds": duration,
        "rounds": rounds,
        "machine": gateway_bench.machine(),
        "load_rules": {code.value: params for code, params in LOAD_RULES.items()},
        "load_card_limits": LOAD_CARD_LIMITS,
        "throughput": [],
    }
    for round_ in range(rounds):
        # Off then on, then on then off: neither always runs on the colder machine.
        for risk in (False, True) if round_ % 2 == 0 else (True, False):
            summary = throughput(work, data_dir, mid, tids, risk=risk, duration=duration)
            results["throughput"].append(
                {
                    "risk": risk,
                    "throughput_per_second": summary.get("throughput_per_second"),
                    "latency_ms": summary.get("latency_ms"),
                    "response_codes": summary.get("response_codes"),
                    "answered": summary.get("answered"),
                }
            )
    off = [r["throughput_per_second"] or 0.0 for r in results["throughput"] if not r["risk"]]
    on = [r["throughput_per_second"] or 0.0 for r in results["throughput"] if r["risk"]]
    results["throughput_off_per_second"] = round(statistics.fmean(off), 1)
    results["throughput_on_per_second"] = round(statistics.fmean(on), 1)
    results["throughput_ratio"] = round(
        results["throughput_on_per_second"] / max(1.0, results["throughput_off_per_second"]), 3
    )
    engine, replayed = loaded_engine(settings)
    results["journal_rows_replayed"] = replayed
    mix = authorization_mix(mid, tids, authorizations)
    gc.collect()
    results["evaluation"] = evaluate(engine, mix)
    results["targets_met"] = {
        "evaluation_p99": results["evaluation"]["p99_ms"] <= EVALUATION_P99_TARGET_MS,
        "throughput_ratio": results["throughput_ratio"] >= THROUGHPUT_RATIO_TARGET,
    }
    results["finished"] = dt.datetime.now(dt.UTC).isoformat()
    target = out or RESULTS / f"risk-{started:%Y%m%dT%H%M%S}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(table(results))
    print(f"results: {target}")
    return results


def table(results: dict[str, Any]) -> str:
    lines = [f"{'gateway':<12}{'sales/s':>10}{'p50 ms':>9}{'p99 ms':>9}  codes"]
    for entry in results["throughput"]:
        latency = entry.get("latency_ms") or {}
        lines.append(
            f"{'risk ' + ('on' if entry['risk'] else 'off'):<12}"
            f"{entry['throughput_per_second'] or 0:>10.0f}{latency.get('p50', 0):>9.2f}"
            f"{latency.get('p99', 0):>9.2f}  {entry['response_codes']}"
        )
    evaluation = results["evaluation"]
    lines.append(
        f"risk on / off = {results['throughput_ratio']} (target ≥ {THROUGHPUT_RATIO_TARGET})"
    )
    lines.append(
        f"rule evaluation over {evaluation['authorizations']} authorizations: "
        f"p50 {evaluation['p50_ms']} ms, p99 {evaluation['p99_ms']} ms, "
        f"max {evaluation['max_ms']} ms (target p99 ≤ {EVALUATION_P99_TARGET_MS} ms)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load")
    parser.add_argument("--rounds", type=int, default=2, help="risk off/on pairs")
    parser.add_argument("--authorizations", type=int, default=20_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    run(args.terminals, args.duration, args.rounds, args.authorizations, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
