"""The application benchmark end to end on a tiny load (a real server subprocess)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from bench import applications as bench
from poshub.onboarding import rules
from poshub.onboarding.documents import sniff

pytestmark = pytest.mark.slow


def test_identities_are_valid_and_unique() -> None:
    indexes = [*range(2000), 9999, 10_000, 44_444, 123_456]
    ids = [bench.resident_id(i) for i in indexes]
    mobiles = [bench.mobile(i) for i in indexes]
    cards = [bench.card_number(i) for i in indexes]
    assert len(set(ids)) == len(set(mobiles)) == len(set(cards)) == len(indexes)
    today = dt.date(2026, 11, 22)
    assert all(rules.check_resident_id(n, today) is None for n in ids[::97])
    assert all(rules.check_mobile(m) is None for m in mobiles)
    assert not any(m.endswith(("0000", "4444")) for m in mobiles)
    assert all(rules.check_account_number(c) is None for c in cards[::97])


def test_documents_are_distinct_pngs_of_the_asked_size() -> None:
    first = bench.document_png(1, "id_card_front", 4096)
    second = bench.document_png(1, "id_card_back", 4096)
    assert first != second
    assert sniff(first) == "image/png"
    assert 4000 <= len(first) <= 4200


def test_benchmark_runs_and_writes_its_results(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    argv = ["--applications", "5", "--concurrency", "2", "--workers", "1"]
    argv += ["--warmup", "0", "--document-kb", "1", "--output", str(output)]

    assert bench.main(argv) == 0

    results = json.loads(output.read_text())
    (run,) = results["runs"]
    assert run["errors"] == 0
    assert run["verification"]["ok"], run["verification"]
    # 5 phased + 5 journeys, each with every check run and passed.
    assert run["verification"]["applications_by_status"] == {"submitted": 10}
    assert run["verification"]["check_rows"] == 10 * bench.CHECKS_PER_SUBMISSION
    assert set(run["phases"]) == {"create", "upload", "submit", "journey"}
    assert run["phases"]["upload"]["requests"] == 5 * len(bench.DOCUMENT_KINDS)
    assert all(rate and rate > 0 for rate in run["rates_per_s"].values())
