"""Production refuses a weak key-encrypting key at start-up; demo and test keep theirs.

Through the CLI (every process starts there) and ``build_state`` (what the web, worker
and gateway processes call)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from poshub.bootstrap import build_state
from poshub.cli import main
from poshub.core.crypto import KeyMaterialError
from poshub.core.db import Database, make_engine
from poshub.core.settings import Mode, Settings
from tests.conftest import TEST_KEK

WEAK_KEKS = {
    "all one byte": "11" * 32,
    "all zero": "00" * 32,
    "repeated 16-byte block": "0123456789ABCDEFFEDCBA9876543210" * 2,
    "repeated 4-byte block": "DEADBEEF" * 8,
    "counting sequence": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    "published example": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "few distinct bytes": "0102030405060708" + "0807060504030201" * 3,
}


@pytest.mark.parametrize("kek", WEAK_KEKS.values(), ids=WEAK_KEKS.keys())
def test_worker_refuses_a_weak_kek_in_production(
    kek: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("POSHUB_MODE", "production")
    monkeypatch.setenv("POSHUB_KEK", kek)
    assert main(["--data-dir", str(tmp_path), "worker", "--once"]) == 1
    err = capsys.readouterr().err
    assert "POSHUB_KEK is not acceptable in production" in err
    assert kek not in err.lower()
    assert kek.upper() not in err


def test_production_refuses_a_weak_kek_file_and_a_short_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POSHUB_MODE", "production")
    monkeypatch.delenv("POSHUB_KEK", raising=False)
    key_file = tmp_path / "kek.hex"
    key_file.write_text("AB" * 32 + "\n")
    monkeypatch.setenv("POSHUB_KEK_FILE", str(key_file))
    assert main(["--data-dir", str(tmp_path), "worker", "--once"]) == 1
    assert "every byte is the same" in capsys.readouterr().err
    key_file.write_text(secrets.token_hex(16) + "\n")  # 16 bytes: too short
    assert main(["--data-dir", str(tmp_path), "worker", "--once"]) == 1
    assert "64 hex digits" in capsys.readouterr().err


def test_production_starts_with_a_random_kek(tmp_path: Path) -> None:
    settings = Settings(
        mode=Mode.PRODUCTION,
        data_dir=tmp_path,
        kek=secrets.token_hex(32),
        database_url=f"sqlite:///{tmp_path / 'p.db'}",
    )
    state = build_state(settings, database=Database(make_engine(settings.effective_database_url)))
    assert len(state.vault.audit_key) == 32
    state.db.dispose()


@pytest.mark.parametrize("mode", [Mode.TEST, Mode.DEMO])
def test_demo_and_test_modes_keep_their_kek(mode: Mode, tmp_path: Path) -> None:
    settings = Settings(
        mode=mode,
        data_dir=tmp_path,
        kek=TEST_KEK,
        database_url=f"sqlite:///{tmp_path / 'd.db'}",
    )
    state = build_state(settings, database=Database(make_engine(settings.effective_database_url)))
    assert state.vault.audit_key != state.vault.audit_anchor_key
    state.db.dispose()
    with pytest.raises(KeyMaterialError, match="not acceptable in production"):
        build_state(
            settings.model_copy(update={"mode": Mode.PRODUCTION}),
            database=Database(make_engine(settings.effective_database_url)),
        )
