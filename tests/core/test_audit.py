"""The hash-chained audit log and `poshub audit verify`."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from poshub.cli import main
from poshub.core import audit
from poshub.core.audit import Actor, ActorKind
from poshub.core.db import Database
from poshub.core.settings import Settings
from tests.conftest import TEST_KEK


def _append(database: Database, count: int) -> None:
    with database.unit_of_work() as uow:
        for index in range(count):
            audit.record(
                uow.session,
                Actor(ActorKind.STAFF, "alice"),
                "thing.done",
                "thing",
                str(index),
                {"n": index, "名": "值"},
            )
        uow.commit()


def _verify(database: Database) -> tuple[int, audit.VerifyProblem | None]:
    with database.unit_of_work(read_only=True) as uow:
        return audit.verify(uow.session)


def _bypass_protection(database: Database) -> str:
    """What a database administrator could do: switch off the append-only triggers."""
    if database.dialect == "sqlite":
        return (
            "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete"
        )
    return "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"


def _execute_script(database: Database, script: str) -> None:
    with database.engine.begin() as connection:
        for statement in script.split(";"):
            if statement.strip():
                connection.execute(text(statement))


def _restore_protection(database: Database) -> None:
    if database.dialect == "postgresql":
        _execute_script(database, "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def test_chain_of_appends_verifies(database: Database) -> None:
    _append(database, 5)
    assert _verify(database) == (5, None)


def test_each_row_links_to_the_previous_hash(database: Database) -> None:
    _append(database, 3)
    with database.unit_of_work(read_only=True) as uow:
        rows = sorted(audit.recent(uow.session, entity_id=None, limit=10), key=lambda r: r.seq)
        assert [r.seq for r in rows] == [1, 2, 3]
        assert rows[0].prev_hash == audit.GENESIS_HASH
        assert rows[1].prev_hash == rows[0].hash
        assert rows[2].prev_hash == rows[1].hash


def test_a_batch_of_entries_is_chained_in_order(database: Database) -> None:
    _append(database, 2)
    actor = Actor.system("checks")
    with database.unit_of_work() as uow:
        recorded = audit.record_many(
            uow.session,
            [audit.Action(actor, "thing.checked", "thing", str(n), {"n": n}) for n in range(3)],
        )
        assert audit.record_many(uow.session, []) == []
        uow.commit()
    assert [r.seq for r in recorded] == [3, 4, 5]
    assert _verify(database) == (5, None)
    with database.unit_of_work(read_only=True) as uow:
        rows = sorted(audit.recent(uow.session, entity_id=None, limit=10), key=lambda r: r.seq)
        assert [r.entity_id for r in rows[2:]] == ["0", "1", "2"]
        assert [r.hash for r in rows[2:]] == [r.hash for r in recorded]


def test_database_refuses_update_and_delete(database: Database) -> None:
    _append(database, 2)
    for statement in (
        "UPDATE audit_log SET action = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 2",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            database.engine.begin() as connection,
        ):
            connection.execute(text(statement))
    assert _verify(database) == (2, None)


def test_verify_names_the_edited_row(database: Database) -> None:
    _append(database, 6)
    _execute_script(database, _bypass_protection(database))
    _execute_script(database, "UPDATE audit_log SET actor_id = 'mallory' WHERE seq = 4")
    _restore_protection(database)
    checked, problem = _verify(database)
    assert checked == 3
    assert problem is not None
    assert problem.seq == 4
    assert "edited" in problem.reason


def test_verify_names_a_deleted_row(database: Database) -> None:
    _append(database, 6)
    _execute_script(database, _bypass_protection(database))
    _execute_script(database, "DELETE FROM audit_log WHERE seq = 3")
    _restore_protection(database)
    _, problem = _verify(database)
    assert problem is not None
    assert problem.seq == 3
    assert "missing" in problem.reason


def test_verify_detects_truncated_tail(database: Database) -> None:
    _append(database, 4)
    _execute_script(database, _bypass_protection(database))
    _execute_script(database, "DELETE FROM audit_log WHERE seq = 4")
    _restore_protection(database)
    checked, problem = _verify(database)
    assert checked == 3
    assert problem is not None
    assert problem.seq == 4


def test_verify_detects_a_rewritten_row_with_recomputed_hash(database: Database) -> None:
    """Recomputing the edited row's own hash does not help: the next row's link breaks."""
    _append(database, 4)
    with database.unit_of_work() as uow:
        entry = uow.session.get(audit.AuditEntry, 2)
        assert entry is not None
        forged = audit.entry_hash(entry)  # unchanged content → same hash; now forge content
        details = dict(entry.details)
        details["n"] = 99
    _execute_script(database, _bypass_protection(database))
    with database.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_log SET details = :d WHERE seq = 2"), {"d": '{"n": 99}'}
        )
    with database.unit_of_work() as uow:
        entry = uow.session.get(audit.AuditEntry, 2)
        assert entry is not None
        new_hash = audit.entry_hash(entry)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET hash = :h WHERE seq = 2"), {"h": new_hash})
    _restore_protection(database)
    assert new_hash != forged
    _, problem = _verify(database)
    assert problem is not None
    assert problem.seq == 3
    assert "link" in problem.reason


def test_cli_verify_exit_codes(
    database: Database,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POSHUB_MODE", "test")
    monkeypatch.setenv("POSHUB_KEK", TEST_KEK)
    _append(database, 3)
    url = settings.effective_database_url
    assert (
        main(["--database-url", url, "--data-dir", str(settings.data_dir), "audit", "anchor"]) == 0
    )
    assert (
        main(["--database-url", url, "--data-dir", str(settings.data_dir), "audit", "verify"]) == 0
    )
    assert "3 rows verified" in capsys.readouterr().out

    _execute_script(database, _bypass_protection(database))
    _execute_script(database, "UPDATE audit_log SET action = 'tampered' WHERE seq = 2")
    _restore_protection(database)
    assert (
        main(["--database-url", url, "--data-dir", str(settings.data_dir), "audit", "verify"]) == 1
    )
    err = capsys.readouterr().err
    assert "row 2" in err
    assert "edited" in err
