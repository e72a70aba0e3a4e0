"""The gateway benchmark end to end on a tiny load (real subprocesses, a few seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import gateway as bench

pytestmark = pytest.mark.slow


def test_benchmark_measures_the_three_servers_and_writes_its_results(tmp_path: Path) -> None:
    output = tmp_path / "gateway.json"
    results = bench.run(terminals=4, duration=1.0, out=output)
    written = json.loads(output.read_text())
    assert written["terminals"] == 4
    for name in ("echo", "naive", "poshub", "poshub_half_rate"):
        assert results[name]["answered"] > 0, name
    # PosHub approved every sale and the open-loop run was paced at half its peak.
    assert set(results["poshub"]["response_codes"]) == {"00"}
    assert set(results["poshub_half_rate"]["response_codes"]) == {"00"}
    assert results["poshub_half_rate"]["target_rate"] == pytest.approx(
        max(1.0, round(results["poshub"]["throughput_per_second"] / 2))
    )
    assert results["ratio_to_naive"] > 0
