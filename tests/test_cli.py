"""The command line: clear messages and non-zero exits on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poshub.cli import main


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 0
    return tmp_path


def test_db_upgrade_reports_the_revision(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(data_dir), "db", "upgrade"]) == 0
    assert "revision" in capsys.readouterr().out


def test_help_exists_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (
        ["demo"],
        ["web"],
        ["worker"],
        ["db", "upgrade"],
        ["audit", "verify"],
        ["user", "add"],
        ["catalog", "load"],
    ):
        with pytest.raises(SystemExit) as raised:
            main([*command, "--help"])
        assert raised.value.code == 0
        assert "usage: poshub" in capsys.readouterr().out


def test_user_add_enforces_the_password_policy(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data-dir", str(data_dir), "user", "add", "wang", "--role", "reviewer"]
    assert main([*args, "--password", "short"]) == 1
    err = capsys.readouterr().err
    assert "at least 12 characters" in err
    assert main([*args, "--password", "Long-enough-Passw0rd"]) == 0
    assert main([*args, "--password", "Long-enough-Passw0rd"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_user_add_rejects_unknown_roles(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--data-dir",
                str(data_dir),
                "user",
                "add",
                "li",
                "--role",
                "superuser",
                "--password",
                "x",
            ]
        )
        == 2
    )
    assert "unknown role" in capsys.readouterr().err


def test_catalog_load_reports_bad_files(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(data_dir), "catalog", "load"]) == 0
    assert "4 terminal models" in capsys.readouterr().out
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["--data-dir", str(data_dir), "catalog", "load", str(broken)]) == 1
    assert "cannot read catalogue" in capsys.readouterr().err
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps({"terminal_models": [{"code": "X", "kind": "toaster"}]}))
    assert main(["--data-dir", str(data_dir), "catalog", "load", str(incomplete)]) == 1
    assert "not valid" in capsys.readouterr().err


def test_worker_once_runs_every_job(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSHUB_MODE", "demo")
    assert main(["--data-dir", str(data_dir), "worker", "--once"]) == 0
    out = capsys.readouterr().out
    assert "notifications_sent" in out
    assert "sla_breaches_flagged" in out


def test_production_without_key_fails_with_a_message(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSHUB_MODE", "production")
    monkeypatch.delenv("POSHUB_KEK", raising=False)
    assert main(["--data-dir", str(data_dir), "worker", "--once"]) == 1
    assert "POSHUB_KEK" in capsys.readouterr().err


def test_bad_configuration_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POSHUB_ACQUIRER_CODE", "89")
    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 2
    assert "acquirer_code" in capsys.readouterr().err
