"""The command line: clear messages and non-zero exits on bad input."""

from __future__ import annotations

import json
import secrets
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
        ["inventory", "stock-in"],
        ["terminal", "list"],
        ["terminal", "show"],
    ):
        with pytest.raises(SystemExit) as raised:
            main([*command, "--help"])
        assert raised.value.code == 0
        assert "usage: poshub" in capsys.readouterr().out


def test_user_add_needs_the_kek_to_key_its_audit_row(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating a staff account is audited, and audit rows are MACed under the KEK."""
    monkeypatch.delenv("POSHUB_KEK", raising=False)
    args = ["--data-dir", str(data_dir), "user", "add", "wang", "--role", "reviewer"]
    assert main([*args, "--password", "Long-enough-Passw0rd"]) == 1
    assert "key-encrypting key" in capsys.readouterr().err


def test_user_add_enforces_the_password_policy(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSHUB_KEK", secrets.token_hex(32))
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


@pytest.fixture
def demo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POSHUB_MODE", "demo")  # the demo's key file stands in for POSHUB_KEK
    assert main(["--data-dir", str(tmp_path), "demo", "--no-serve"]) == 0
    return tmp_path


def test_terminal_commands_show_the_fleet_and_check_keys(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["--data-dir", str(demo_dir), "terminal", "list", "--mid", "898340154110001"]) == 0
    out = capsys.readouterr().out
    assert "10000001" in out
    assert "08D7B4FB" in out
    assert main(["--data-dir", str(demo_dir), "terminal", "show", "10000001"]) == 0
    assert "unwrapped under the KEK: matches" in capsys.readouterr().out
    assert main(["--data-dir", str(demo_dir), "terminal", "show", "99999999"]) == 1
    assert "no terminal has TID 99999999" in capsys.readouterr().err
    assert main(["--data-dir", str(demo_dir), "terminal", "list", "--mid", "1"]) == 1


def test_terminal_show_fails_under_another_kek(
    demo_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSHUB_KEK", "11" * 32)
    assert main(["--data-dir", str(demo_dir), "terminal", "show", "10000001"]) == 1
    err = capsys.readouterr().err
    assert "does not unwrap" in err
    assert "0123456789ABCDEF" not in err


def test_stock_in_from_the_command_line_is_all_or_nothing(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "serial_number,model_code,warehouse\nSN-CLI-0001,SMART-A8,仓\nSN-CLI-0001,SMART-A8,仓\n",
        encoding="utf-8",
    )
    args = ["--data-dir", str(demo_dir), "inventory", "stock-in"]
    assert main([*args, str(bad), "--as", "ops"]) == 1
    err = capsys.readouterr().err
    assert "nothing imported" in err
    assert "row 3, serial_number" in err
    assert main([*args, str(bad), "--as", "reviewer"]) == 1
    assert "operations role" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "missing.csv"), "--as", "ops"]) == 1
    good = tmp_path / "good.csv"
    good.write_text("serial_number,model_code,warehouse\nSN-CLI-0001,SMART-A8,仓\n", "utf-8")
    assert main([*args, str(good), "--as", "ops"]) == 0
    assert "1 devices in stock" in capsys.readouterr().out


def test_web_refuses_zero_workers(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data_dir), "web", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_demo_without_a_cjk_font_says_which_package_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSHUB_CJK_FONT", str(tmp_path / "no-such-font.ttc"))
    assert main(["--data-dir", str(tmp_path), "demo", "--no-serve"]) == 1
    assert "fonts-noto-cjk" in capsys.readouterr().err


def test_gateway_on_a_taken_port_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from poshub.cli import main

    monkeypatch.setenv("POSHUB_MODE", "test")
    monkeypatch.setenv("POSHUB_KEK", "11" * 32)
    monkeypatch.setenv("POSHUB_NETWORK_PORT", "1")
    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--data-dir", str(tmp_path), "gateway", "--port", str(port)]) == 1
    assert f"gateway: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
