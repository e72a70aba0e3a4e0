"""The load generator: percentile maths, frames, pacing and reversals on a scripted host."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path

import pytest

from poshub.core import limits
from poshub.core.settings import Settings
from poshub.gateway import codec
from poshub.simulators import loadgen
from poshub.simulators.loadgen import (
    LoadConfig,
    LoadError,
    LoadSummary,
    TerminalSpec,
    latency_summary,
    percentile,
    run_load,
    scan_answer,
    state_path,
    terminal_range,
)
from poshub.simulators.terminal import TerminalClient, TerminalState
from tests.simulators.terminal_host import SILENT, TMK, V3_KEYS, ScriptedHost, host_in_thread

MID = "898340154110001"


# --- Maths ---------------------------------------------------------------------------------------
def test_nearest_rank_percentiles() -> None:
    hundred = [float(v) for v in range(1, 101)]
    assert [percentile(hundred, p) for p in (50, 90, 99, 99.9, 100)] == [50, 90, 99, 100, 100]
    thousand = [float(v) for v in range(1, 1001)]
    assert percentile(thousand, 99.9) == 999
    assert percentile(thousand, 0.1) == 1
    assert percentile([7.0], 50) == 7
    assert percentile([], 99) == 0
    with pytest.raises(ValueError, match="percentile"):
        percentile(hundred, 0)


def test_latency_summary_is_in_milliseconds() -> None:
    seconds = [i / 1000 for i in range(1, 1001)]  # 1 ms … 1000 ms, shuffled
    random.Random(3).shuffle(seconds)
    summary = latency_summary(seconds)
    assert summary == {
        "p50": 500.0,
        "p90": 900.0,
        "p99": 990.0,
        "p99.9": 999.0,
        "max": 1000.0,
        "mean": 500.5,
    }
    assert latency_summary([])["p99"] == 0.0


# --- Frames and answers -----------------------------------------------------------------------------
def test_luhn_and_amounts_avoid_the_decline_endings() -> None:
    assert loadgen.luhn_complete("622588012345678") == "6225880123456783"
    rng = random.Random(5)
    approvals = [loadgen.sale_amount(rng, 0) for _ in range(5000)]
    assert not any(a % 100 in loadgen.AVOIDED_ENDINGS for a in approvals)
    assert all(loadgen.AMOUNT_FEN_MIN <= a <= loadgen.AMOUNT_FEN_MAX for a in approvals)
    declines = [loadgen.sale_amount(rng, 100) for _ in range(200)]
    assert {a % 100 for a in declines} == set(loadgen.DECLINE_ENDINGS)


def test_patched_frames_equal_full_encodings() -> None:
    client = TerminalClient("127.0.0.1", 1, tid="10000001", mid=MID, tmk=TMK)
    client.install_keys(V3_KEYS)
    config = LoadConfig(terminals=(TerminalSpec("10000001", MID),))
    plan = loadgen._Plan(client, config, random.Random(1), planned=2000)
    assert len(plan.pans) == 10  # 200 sales per card
    plan.extend(200)
    for index in range(200):
        message = plan.message(plan.variants[index], plan.stans[index], plan.amounts[index])
        assert plan.frames[index] == client.encode_frame(message)
    assert list(plan.stans) == list(range(1, 201))
    with_pin = sum(1 for v in plan.variants if v % 2)
    assert 60 < with_pin < 140  # about half


def test_scanning_an_answer_agrees_with_the_decoder() -> None:
    host = ScriptedHost()
    request = {
        "t": "0200", "2": "6225880123456783", "3": "000000", "4": "000000001234",
        "11": "000321", "25": "00", "41": "10000001", "42": MID, "49": "156",
        "60": "2200000100060",
    }  # fmt: skip
    body = V3_KEYS.sign(codec.encode(host.answer(request)))
    mti, stan, code, has_mac = scan_answer(body)
    assert (mti, stan, code, has_mac) == (b"\x02\x10", bytes.fromhex("000321"), "00", True)
    decoded = codec.decode(body)
    assert decoded["39"] == code
    # No MAC, and a bitmap the scanner has no plan for (field 44 before 39 does not exist,
    # so use a field the plan lacks: 54 comes after 39 and is skipped; 39 absent → None).
    unsigned = codec.encode({"t": "0210", "11": "000001", "41": "10000001", "42": MID})
    assert scan_answer(unsigned) == (b"\x02\x10", bytes.fromhex("000001"), None, False)


# --- Configuration ----------------------------------------------------------------------------
def test_configuration_bounds() -> None:
    one = (TerminalSpec("10000001", MID),)
    with pytest.raises(LoadError, match="--terminals"):
        LoadConfig(terminals=())
    too_many = terminal_range("10000001", limits.LOADGEN_TERMINALS_MAX + 1, MID)
    with pytest.raises(LoadError, match="--terminals"):
        LoadConfig(terminals=too_many)
    with pytest.raises(LoadError, match="--duration"):
        LoadConfig(terminals=one, duration_seconds=limits.LOADGEN_DURATION_SECONDS_MAX + 1)
    with pytest.raises(LoadError, match="--rate"):
        LoadConfig(terminals=one, rate=-1)
    with pytest.raises(LoadError, match="twice"):
        LoadConfig(terminals=one + one)
    assert [t.tid for t in terminal_range("10000009", 3, MID)] == [
        "10000009",
        "10000010",
        "10000011",
    ]


def test_terminals_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"tid,mid\n10000001,{MID}\n\n10000002,{MID}\n", encoding="utf-8")
    assert loadgen.read_terminals_file(path) == (
        TerminalSpec("10000001", MID),
        TerminalSpec("10000002", MID),
    )
    path.write_text("10000001,123\n", encoding="utf-8")
    with pytest.raises(LoadError, match=r"t.csv:1"):
        loadgen.read_terminals_file(path)


# --- Runs against the scripted host -----------------------------------------------------------------
def _run(host: ScriptedHost, **kwargs: object) -> LoadSummary:
    async def scenario() -> LoadSummary:
        await host.start()
        try:
            count = int(kwargs.pop("terminals", 1))  # type: ignore[call-overload]
            config = LoadConfig(
                terminals=terminal_range("10000001", count, MID),
                port=host.port,
                tmk=TMK,
                **kwargs,  # type: ignore[arg-type]
            )
            return await run_load(config)
        finally:
            await host.stop()

    return asyncio.run(scenario())


def test_open_loop_paces_at_the_rate() -> None:
    host = ScriptedHost()
    summary = _run(host, terminals=4, rate=100.0, duration_seconds=1.0, timeout_seconds=2.0)
    # Due times t0 + i/R + k·N/R before t0 + 1 s: 25 per terminal, however busy the
    # machine is (a late terminal sends what is due as soon as it can).
    assert 99 <= summary.sent <= 100
    assert summary.answered == summary.sent
    assert summary.response_codes == {"00": summary.sent}
    assert summary.timeouts == summary.errors == summary.mac_errors == 0
    assert 50 <= summary.throughput_per_second <= 110  # elapsed stretches on a loaded machine
    assert 0 < summary.latency_ms["p50"] <= summary.latency_ms["p99"] <= summary.latency_ms["max"]
    sales = [m for m in host.received if m["t"] == "0200"]
    assert len(sales) == summary.sent
    per_terminal: dict[str, list[int]] = {}
    for sale in sales:
        per_terminal.setdefault(sale["41"], []).append(int(sale["11"]))
    assert len(per_terminal) == 4
    for stans in per_terminal.values():  # each terminal: consecutive STANs after sign-on
        assert stans == list(range(2, 2 + len(stans)))
        assert 24 <= len(stans) <= 25


def test_closed_loop_runs_as_fast_as_answers_come() -> None:
    host = ScriptedHost()
    summary = _run(host, terminals=2, rate=0.0, duration_seconds=0.5, timeout_seconds=2.0)
    assert summary.sent > 10
    assert summary.answered == summary.sent
    assert summary.target_rate == 0
    assert json.loads(json.dumps(summary.to_json()))["sent"] == summary.sent


def test_an_unanswered_sale_is_reversed_before_the_next() -> None:
    host = ScriptedHost(script=[SILENT])
    summary = _run(host, rate=5.0, duration_seconds=1.0, timeout_seconds=0.8)
    assert summary.timeouts == 1
    assert summary.reversals_sent == 1
    assert summary.reversals_acknowledged == 1
    financial = [m for m in host.received if m["t"] in ("0200", "0400")]
    assert financial[0]["t"] == "0200"
    assert financial[1]["t"] == "0400"
    assert financial[1]["11"] == financial[0]["11"]
    assert financial[1]["39"] == "98"
    assert financial[2]["t"] == "0200"


def test_refused_sign_on_names_the_terminal() -> None:
    host = ScriptedHost(sign_on_code="97")
    with pytest.raises(LoadError, match=r"terminal 10000001: sign-on refused: 97"):
        _run(host, duration_seconds=0.2)


def test_stans_continue_across_runs_and_the_terminal_cli(tmp_path: Path) -> None:
    host = ScriptedHost()
    first = _run(host, rate=20.0, duration_seconds=0.2, state_dir=tmp_path)
    assert first.sent > 0
    used = max(int(m["11"]) for m in host.received if m["t"] == "0200")
    saved = TerminalState.load(state_path(tmp_path, "10000001"), tid="10000001", mid=MID)
    assert saved.stan >= used
    second_host = ScriptedHost()
    _run(second_host, rate=20.0, duration_seconds=0.2, state_dir=tmp_path)
    stans = [int(m["11"]) for m in second_host.received]
    assert min(stans) == saved.stan + 1  # the sign-on continues the counter too


# --- Command line -------------------------------------------------------------------------------
def _parser(tmp_path: Path, mode: str = "test") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poshub")
    sub = parser.add_subparsers(dest="command", required=True)
    loadgen.add_cli(sub, lambda args: Settings(mode=mode, data_dir=tmp_path))
    return parser


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--terminals", "5000"], "--terminals must be 1 to"),
        (["--duration", "99999"], "--duration must be"),
        (["--tid-start", "abc"], "--tid-start is 8 digits"),
        (["--tmk", "00"], "32 hexadecimal digits"),
    ],
)
def test_cli_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    args = _parser(tmp_path).parse_args(["loadgen", "--port", "1", *argv])
    assert args.func(args) == 2
    assert message in capsys.readouterr().err


def test_cli_warns_about_the_test_key_in_production(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The simulator is a terminal: a production host refuses the key, the tool only warns.
    args = _parser(tmp_path, mode="production").parse_args(["loadgen", "--port", "1"])
    assert args.func(args) != 0  # nothing listens on port 1
    assert "a production host refuses it" in capsys.readouterr().err


def test_cli_runs_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "summary.json"
    with host_in_thread(ScriptedHost()) as host:
        args = _parser(tmp_path).parse_args(
            ["loadgen", "--port", str(host.port), "--terminals", "2", "--rate", "40",
             "--duration", "0.5", "--json", str(out), "--no-progress"]
        )  # fmt: skip
        assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "latency ms" in printed
    assert "p99.9" in printed
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["terminals"] == 2
    assert summary["sent"] == summary["answered"] > 0
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "p99.9", "max", "mean"}
    assert (tmp_path / "terminal-10000001.json").exists()


def test_cli_names_the_refused_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with host_in_thread(ScriptedHost(sign_on_code="97")) as host:
        args = _parser(tmp_path).parse_args(
            ["loadgen", "--port", str(host.port), "--tid-start", "10000042", "--no-progress"]
        )
        assert args.func(args) == 1
    assert "terminal 10000042: sign-on refused: 97" in capsys.readouterr().err
