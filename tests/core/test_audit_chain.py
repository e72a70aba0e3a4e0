"""The keyed audit chain and its anchors outside the database, through `poshub audit
verify` / `poshub audit anchor` / `poshub worker --once` and GET /api/v1/audit/verify.

The attacker of these tests can write to the database (drop the append-only trigger,
rewrite rows, recompute the chain and its head row) but holds neither the KEK nor the
anchor directory."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from poshub.bootstrap import AppState
from poshub.cli import main
from poshub.core import anchors, audit, migrate
from poshub.core.audit import Actor, ActorKind
from poshub.core.db import Database, make_engine, utcnow
from tests.conftest import TEST_KEK
from tests.factories import login


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, state: AppState) -> list[str]:
    """The CLI's environment for the test's database and KEK; returns the global flags."""
    monkeypatch.setenv("POSHUB_MODE", "test")
    monkeypatch.setenv("POSHUB_KEK", TEST_KEK)
    monkeypatch.delenv("POSHUB_AUDIT_ANCHOR_DIR", raising=False)
    return [
        "--database-url",
        state.settings.effective_database_url,
        "--data-dir",
        str(state.settings.data_dir),
    ]


def _append(state: AppState, count: int, start: int = 0) -> None:
    with state.db.unit_of_work() as uow:
        for index in range(start, start + count):
            audit.record(
                uow.session,
                Actor(ActorKind.STAFF, "alice"),
                "thing.done",
                "thing",
                str(index),
                {"n": index, "名": "值"},
            )
        uow.commit()


def _unprotected(database: Database) -> list[str]:
    if database.dialect == "sqlite":
        return [
            "DROP TRIGGER IF EXISTS audit_log_no_update",
            "DROP TRIGGER IF EXISTS audit_log_no_delete",
        ]
    return ["ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"]


def _as_attacker(database: Database, *statements: str) -> None:
    with database.engine.begin() as connection:
        for statement in [*_unprotected(database), *statements]:
            connection.execute(text(statement))
        if database.dialect == "postgresql":
            connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def _recompute_chain(database: Database, *, key: bytes | None, version: int) -> None:
    """What the attacker does after editing rows: recompute every row's hash and link and
    the chain-head row, with plain SHA-256 (version 1) or HMAC under a key of their own."""
    with database.engine.begin() as connection:
        for statement in _unprotected(database):
            connection.execute(text(statement))
    with database.unit_of_work() as uow:
        rows = uow.session.query(audit.AuditEntry).order_by(audit.AuditEntry.seq).all()
        prev = audit.GENESIS_HASH
        forged: list[tuple[int, str, str]] = []
        for row in rows:
            content = audit.canonical_content(
                row.seq,
                row.at,
                row.actor_kind,
                row.actor_id,
                row.action,
                row.entity_type,
                row.entity_id,
                row.details,
                prev,
                version,
            )
            digest = (
                hashlib.sha256(content).hexdigest()
                if key is None
                else hmac.new(key, content, hashlib.sha256).hexdigest()
            )
            forged.append((row.seq, prev, digest))
            prev = digest
    with database.engine.begin() as connection:
        for seq, prev_hash, digest in forged:
            connection.execute(
                text("UPDATE audit_log SET prev_hash = :p, hash = :h, version = :v WHERE seq = :s"),
                {"p": prev_hash, "h": digest, "v": version, "s": seq},
            )
        connection.execute(
            text("UPDATE audit_chain_head SET last_seq = :s, last_hash = :h"),
            {"s": forged[-1][0], "h": forged[-1][2]},
        )
        if database.dialect == "postgresql":
            connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def _tamper_row(database: Database, seq: int) -> None:
    _as_attacker(database, f"UPDATE audit_log SET actor_id = 'mallory' WHERE seq = {seq}")  # noqa: S608


def _verify_cli(flags: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([*flags, "audit", "verify"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _api_verify(client: TestClient) -> dict[str, object]:
    login(client, "auditor")
    response = client.get("/api/v1/audit/verify")
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_rows_written_with_the_kek_are_macs_not_plain_hashes(state: AppState) -> None:
    _append(state, 2)
    with state.db.unit_of_work(read_only=True) as uow:
        row = audit.recent(uow.session, entity_id="1", limit=1)[0]
        plain = audit.canonical_content(
            row.seq,
            row.at,
            row.actor_kind,
            row.actor_id,
            row.action,
            row.entity_type,
            row.entity_id,
            row.details,
            row.prev_hash,
            row.version,
        )
        assert row.version == audit.KEYED_VERSION
        assert row.hash != hashlib.sha256(plain).hexdigest()
        assert row.hash == hmac.new(state.vault.audit_key, plain, hashlib.sha256).hexdigest()


def test_untouched_anchored_chain_is_intact_in_cli_and_api(
    state: AppState, client: TestClient, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _append(state, 4)
    assert main([*cli_env, "audit", "anchor"]) == 0
    assert "anchored audit row" in capsys.readouterr().out
    assert main([*cli_env, "audit", "anchor"]) == 0  # head unchanged: nothing appended
    assert "unchanged" in capsys.readouterr().out
    _append(state, 2, start=4)
    code, output = _verify_cli(cli_env, capsys)
    assert code == 0, output
    assert "intact" in output
    assert _api_verify(client)["intact"] is True
    anchor_file = state.settings.data_dir / "audit-anchors" / anchors.ANCHOR_FILE_NAME
    assert anchor_file.stat().st_mode & 0o777 == 0o600
    assert len(anchor_file.read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("key", "version"),
    [(None, audit.LEGACY_VERSION), (b"attacker's own key".ljust(32, b"!"), audit.KEYED_VERSION)],
    ids=["plain-sha256", "wrong-key"],
)
def test_rewritten_and_recomputed_chain_is_caught(
    state: AppState,
    client: TestClient,
    cli_env: list[str],
    capsys: pytest.CaptureFixture[str],
    key: bytes | None,
    version: int,
) -> None:
    """Before the keyed chain this rewrite verified as intact: the attacker recomputed the
    same SHA-256 the verifier computes."""
    _append(state, 5)
    assert main([*cli_env, "audit", "anchor"]) == 0
    _append(state, 3, start=5)  # rows newer than the last anchor: the MACs alone guard them
    _tamper_row(state.db, state_seq_of(state, "6"))
    _recompute_chain(state.db, key=key, version=version)
    code, output = _verify_cli(cli_env, capsys)
    assert code == 1
    assert "BROKEN" in output
    assert "rewritten" in output or "MAC" in output
    result = _api_verify(client)
    assert result["intact"] is False
    # The anchor job refuses to anchor a rewritten chain.
    assert main([*cli_env, "audit", "anchor"]) == 1


def test_rewritten_legacy_prefix_is_caught_by_its_anchor(
    state: AppState, client: TestClient, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows before migration 0010 are unkeyed (version 1); once anchored, rewriting them
    and recomputing with SHA-256 no longer matches the anchor."""
    _legacy_rows(state, 3)
    assert main([*cli_env, "audit", "anchor"]) == 0
    _tamper_row(state.db, 2)
    _recompute_chain(state.db, key=None, version=audit.LEGACY_VERSION)
    code, output = _verify_cli(cli_env, capsys)
    assert code == 1
    assert "anchor" in output
    assert _api_verify(client)["intact"] is False


def test_deleted_tail_rows_are_caught_by_the_anchor(
    state: AppState, client: TestClient, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _append(state, 6)
    assert main([*cli_env, "audit", "anchor"]) == 0
    with state.db.unit_of_work(read_only=True) as uow:
        head = uow.session.get(audit.AuditChainHead, audit.CHAIN_HEAD_ID)
        assert head is not None
        last = head.last_seq
        keep = uow.session.get(audit.AuditEntry, last - 3)
        assert keep is not None
        keep_hash = keep.hash
    # Delete the newest rows and point the head row at the last one kept: the chain
    # itself is consistent again.
    _as_attacker(
        state.db,
        f"DELETE FROM audit_log WHERE seq > {last - 3}",  # noqa: S608 - the attacker's SQL
        f"UPDATE audit_chain_head SET last_seq = {last - 3}, last_hash = '{keep_hash}'",  # noqa: S608
    )
    with state.db.unit_of_work(read_only=True) as uow:
        assert audit.verify(uow.session)[1] is None  # the database alone cannot tell
    code, output = _verify_cli(cli_env, capsys)
    assert code == 1
    assert "truncated" in output
    assert _api_verify(client)["intact"] is False


def test_missing_or_forged_anchor_file_is_an_error(
    state: AppState, client: TestClient, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _append(state, 2)
    code, output = _verify_cli(cli_env, capsys)
    assert code == 1
    assert "anchor file is missing" in output
    assert _api_verify(client)["intact"] is False

    assert main([*cli_env, "audit", "anchor"]) == 0
    capsys.readouterr()
    path = state.settings.data_dir / "audit-anchors" / anchors.ANCHOR_FILE_NAME
    line = json.loads(path.read_text())
    line["seq"] -= 1  # an anchor moved back to hide later deletions
    path.write_text(json.dumps(line) + "\n")
    code, output = _verify_cli(cli_env, capsys)
    assert code == 1
    assert "does not verify" in output


def test_unkeyed_row_after_keyed_rows_is_a_rewrite(
    state: AppState, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _append(state, 3)
    assert main([*cli_env, "audit", "anchor"]) == 0
    # A process without the key appends (as an attacker writing rows directly would).
    keyless = Database(make_engine(state.settings.effective_database_url))
    with keyless.unit_of_work() as uow:
        audit.record(uow.session, Actor.system("intruder"), "thing.done", "thing", "x")
        uow.commit()
    keyless.dispose()
    code, output = _verify_cli(cli_env, capsys)
    assert code == 1
    assert "unkeyed row follows keyed rows" in output


def test_worker_anchors_the_chain_and_the_directory_is_configurable(
    state: AppState,
    cli_env: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    elsewhere = tmp_path / "worm-volume"
    monkeypatch.setenv("POSHUB_AUDIT_ANCHOR_DIR", str(elsewhere))
    _append(state, 2)
    assert main([*cli_env, "worker", "--once"]) == 0
    assert "'audit_anchors_written': 1" in capsys.readouterr().out
    assert (elsewhere / anchors.ANCHOR_FILE_NAME).exists()
    assert not (state.settings.data_dir / "audit-anchors").exists()
    code, output = _verify_cli(cli_env, capsys)
    assert code == 0, output


def test_verify_needs_the_kek(
    state: AppState,
    cli_env: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _append(state, 2)
    assert main([*cli_env, "audit", "anchor"]) == 0
    monkeypatch.setenv("POSHUB_KEK", "22" * 32)  # another KEK: every MAC fails
    code, output = _verify_cli(cli_env, capsys)
    assert code == 1
    assert "BROKEN" in output


def test_migration_keeps_existing_rows_as_a_verified_legacy_prefix(tmp_path: Path) -> None:
    """Rows written before 0010 become version 1 and still verify; rows written after,
    with the key, are version 2 and chain onto them."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0009")
    prev = audit.GENESIS_HASH
    with engine.begin() as connection:
        for seq in (1, 2):
            at = utcnow()
            values: dict[str, Any] = {
                "seq": seq,
                "at": at,
                "actor_kind": "system",
                "actor_id": "old",
                "action": "thing.done",
                "entity_type": "thing",
                "entity_id": str(seq),
                "details": {},
                "prev_hash": prev,
            }
            prev = hashlib.sha256(audit.canonical_content(**values)).hexdigest()
            connection.execute(
                text(
                    "INSERT INTO audit_log (seq, at, actor_kind, actor_id, action, entity_type,"
                    " entity_id, details, prev_hash, hash) VALUES (:seq, :at, :actor_kind,"
                    " :actor_id, :action, :entity_type, :entity_id, '{}', :prev_hash, :hash)"
                ),
                {**values, "at": at.replace(tzinfo=None), "hash": prev},
            )
        connection.execute(
            text("INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (1, 2, :h)"),
            {"h": prev},
        )
    migrate.upgrade(engine)
    database = Database(engine)
    database.audit_key = b"k" * 32
    with database.unit_of_work() as uow:
        audit.record(uow.session, Actor.system("new"), "thing.done", "thing", "3")
        uow.commit()
    with database.unit_of_work(read_only=True) as uow:
        versions = [
            r.version
            for r in sorted(audit.recent(uow.session, entity_id=None, limit=5), key=lambda r: r.seq)
        ]
        assert versions == [1, 1, 2]
        assert audit.verify(uow.session) == (3, None)
    database.dispose()


def state_seq_of(state: AppState, entity_id: str) -> int:
    with state.db.unit_of_work(read_only=True) as uow:
        return audit.recent(uow.session, entity_id=entity_id, limit=1)[0].seq


def _legacy_rows(state: AppState, count: int) -> None:
    keyless = Database(make_engine(state.settings.effective_database_url))
    with keyless.unit_of_work() as uow:
        for index in range(count):
            audit.record(uow.session, Actor.system("old"), "thing.done", "thing", f"old-{index}")
        uow.commit()
    keyless.dispose()
