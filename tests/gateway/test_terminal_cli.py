"""``poshub terminal …`` against the real gateway and network simulator: what a user of
the demo types, and the slip they get."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from poshub.cli import main
from poshub.core.db import Database
from poshub.core.settings import Settings
from tests.gateway.support import CARD, Env, running


@pytest.fixture
def served(gateway_settings: Settings, sqlite_demo_database: Database) -> Iterator[Env]:
    """The gateway and simulator on a loop in a background thread, so the CLI (which runs
    its own event loop) can talk to them from the test's thread."""
    settings = gateway_settings.model_copy(
        update={
            "database_url": sqlite_demo_database.engine.url.render_as_string(hide_password=False)
        }
    )
    ready: list[Env] = []
    started, stop = threading.Event(), threading.Event()

    def serve() -> None:
        async def body() -> None:
            async with running(settings, sqlite_demo_database) as env:
                ready.append(env)
                started.set()
                await asyncio.get_running_loop().run_in_executor(None, stop.wait)

        asyncio.run(body())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(30)
    yield ready[0]
    stop.set()
    thread.join(30)


def _cli(env: Env, data_dir: Path, *args: str) -> int:
    return main(
        [
            "--data-dir",
            str(data_dir),
            "terminal",
            *args,
            "--port",
            str(env.port),
            "--host",
            "127.0.0.1",
        ]
    )


def test_sale_prints_a_slip_and_void_finds_it_by_rrn(
    served: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = ["--card", CARD.pan, "--expiry", CARD.expiry, "--pin", "123456"]
    assert _cli(served, tmp_path, "sale", "--amount", "12.34", *card) == 0
    slip = capsys.readouterr().out
    assert "POS SALES SLIP" in slip
    assert "898340154110001" in slip
    assert "10000001" in slip
    assert "622588******6783" in slip
    assert "¥12.34" in slip
    assert CARD.pan not in slip
    rrn = next(line.split()[-1] for line in slip.splitlines() if "REFER NO." in line)
    assert _cli(served, tmp_path, "void", "--rrn", rrn, *card) == 0
    voided = capsys.readouterr().out
    assert "VOID" in voided
    assert "-¥12.34" in voided or "¥-12.34" in voided or "-12.34" in voided


def test_a_decline_exits_1_with_the_reason_and_bad_amounts_exit_2(
    served: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = ["--card", CARD.pan, "--expiry", CARD.expiry, "--pin", "123456"]
    assert _cli(served, tmp_path, "sale", "--amount", "1.51", *card) == 1
    assert "51" in capsys.readouterr().out
    for amount in ("12.345", "-1", "abc"):
        with pytest.raises(SystemExit) as exit_info:
            _cli(served, tmp_path, "sale", "--amount", amount, *card)
        assert exit_info.value.code == 2
