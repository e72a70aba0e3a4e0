"""The risk benchmark end to end on a tiny load (real subprocesses, a few seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import risk as bench

pytestmark = pytest.mark.slow


def test_benchmark_measures_risk_on_and_off_and_the_rules_and_writes_its_results(
    tmp_path: Path,
) -> None:
    output = tmp_path / "risk.json"
    results = bench.run(terminals=4, duration=1.0, rounds=1, authorizations=500, out=output)
    written = json.loads(output.read_text())
    assert written["throughput_ratio"] == results["throughput_ratio"]
    assert [entry["risk"] for entry in results["throughput"]] == [False, True]
    # Every sale of the synthetic load approved, with risk on as with it off.
    assert all(set(entry["response_codes"]) == {"00"} for entry in results["throughput"])
    evaluation = results["evaluation"]
    assert evaluation["authorizations"] == 500
    assert 0 < evaluation["p50_ms"] <= evaluation["p99_ms"] <= evaluation["max_ms"]
    assert results["journal_rows_replayed"] > 0
