"""Reconciliation (poshub/settlement/reconcile.py, reconciliation.py, `poshub reconcile`):
a day of journal rows against a clearing file the network simulator writes. All matched
when both agree; a planted mismatch, a row missing on either side and a batch whose
terminal totals differ from the host's are reported and queued once; a foreign or broken
file records nothing. SQLite always, PostgreSQL when POSHUB_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from poshub.cli import main
from poshub.core.audit import AuditEntry
from poshub.core.db import Database, utcnow
from poshub.core.errors import Conflict, Forbidden, ValidationFailed
from poshub.core.settings import Settings
from poshub.settlement.clearing_file import ClearingFileError
from poshub.settlement.models import ReconciliationExceptionRow
from poshub.settlement.reconciliation import DayResult, reconcile_day, resolve_exception
from poshub.simulators import clearing as simulator
from poshub.simulators.issuer import CardKind, TxKind
from poshub.staff.service import Principal
from tests.gateway.journal_rows import MID, MOMENT, TID, TODAY, batch, txn, write

DAY = TODAY
OPS = Principal(1, "ops", "Operations", frozenset({"operations"}))
REVIEWER = Principal(2, "reviewer", "Reviewer", frozenset({"reviewer"}))

# (rrn, kind, amount fen) of the day's cleared journal rows, as both sides see them.
CLEARED = [
    ("000000000001", "sale", 12_34),
    ("000000000002", "qr_sale", 99_00),
    ("000000000003", "refund", 5_00),
    ("000000000004", "completion", 800_00),
    ("000000000005", "sale", 20_00),  # voided: listed, and so is its void
    ("000000000006", "void", 20_00),
]


def _journal(database: Database) -> None:
    rows = [txn(rrn, kind=kind, amount_fen=amount) for rrn, kind, amount in CLEARED]
    rows[4].status = "voided"
    rows[5].original_rrn = "000000000005"
    write(
        database,
        *rows,
        # Nothing the network clears: declined, reversed, a pre-auth, another day.
        txn("000000000007", amount_fen=1_05, status="declined", response_code="05"),
        txn("000000000008", amount_fen=30_00, status="reversed"),
        txn("000000000009", kind="preauth", amount_fen=500_00),
        txn("000000000010", amount_fen=1_00, received_at=MOMENT - dt.timedelta(days=1)),
    )


def _item(rrn: str, kind: str, amount_fen: int) -> simulator.ClearingItem:
    return simulator.ClearingItem(
        business_date=DAY,
        message_type="0200",
        transaction=TxKind(kind),
        rrn=rrn,
        stan=rrn[-6:],
        tid=TID,
        mid=MID,
        card_kind=CardKind.DEBIT,
        masked_pan="6222021234",
        amount_fen=amount_fen,
    )


def _file(tmp_path: Path, lines: list[tuple[str, str, int]]) -> Path:
    path = simulator.default_clearing_path(tmp_path, DAY)
    simulator.write_clearing_file([_item(*line) for line in lines], DAY, path)
    return path


def _run(database: Database, path: Path) -> DayResult:
    with database.unit_of_work() as uow:
        result = reconcile_day(uow.session, DAY, path, now=utcnow())
        uow.commit()
    return result


def _queue(database: Database) -> list[ReconciliationExceptionRow]:
    with database.unit_of_work(read_only=True) as uow:
        rows = uow.session.scalars(
            select(ReconciliationExceptionRow).order_by(ReconciliationExceptionRow.id)
        ).all()
        uow.session.expunge_all()
        return list(rows)


def _audited(database: Database, action: str) -> int:
    with database.unit_of_work(read_only=True) as uow:
        return (
            uow.session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
            )
            or 0
        )


def test_a_day_that_agrees_is_all_matched(database: Database, tmp_path: Path) -> None:
    _journal(database)
    result = _run(database, _file(tmp_path, CLEARED))
    found = result.reconciliation
    assert found.exceptions == ()
    assert found.counts()["matched"] == 6
    assert (found.our_count, found.network_count) == (6, 6)
    assert found.our_fen == found.network_fen == found.matched_fen == 12_34 + 99_00 - 5_00 + 800_00
    assert result.queued == 0
    assert _queue(database) == []


def _planted(tmp_path: Path) -> Path:
    lines = list(CLEARED)
    lines[0] = ("000000000001", "sale", 12_43)  # the planted amount mismatch
    lines[3] = ("000000000004", "completion_advice", 800_00)  # a kind mismatch
    del lines[1]  # the QR sale the network never cleared
    lines.append(("000000000099", "sale", 7_00))  # what the network cleared and we lack
    return _file(tmp_path, lines)


def test_a_planted_mismatch_and_missing_rows_are_reported_and_queued_once(
    database: Database, tmp_path: Path
) -> None:
    _journal(database)
    path = _planted(tmp_path)
    found = _run(database, path).reconciliation
    assert found.counts() == {
        "matched": 3,
        "missing_at_network": 1,
        "missing_at_host": 1,
        "amount_mismatch": 1,
        "kind_mismatch": 1,
        "batch_totals": 0,
    }
    queued = {(row.kind, row.rrn): row for row in _queue(database)}
    assert set(queued) == {
        ("amount_mismatch", "000000000001"),
        ("missing_at_network", "000000000002"),
        ("kind_mismatch", "000000000004"),
        ("missing_at_host", "000000000099"),
    }
    mismatch = queued["amount_mismatch", "000000000001"]
    assert (mismatch.our_amount_fen, mismatch.network_amount_fen) == (12_34, 12_43)
    assert (mismatch.mid, mismatch.tid, mismatch.status) == (MID, TID, "open")
    assert mismatch.detail["network_line"] == 2
    missing = queued["missing_at_host", "000000000099"]
    assert (missing.our_amount_fen, missing.network_amount_fen) == (None, 7_00)
    assert queued["missing_at_network", "000000000002"].network_amount_fen is None
    assert _audited(database, "settlement.reconciliation_exceptions_queued") == 1

    again = _run(database, path)
    assert len(again.reconciliation.exceptions) == 4
    assert again.queued == 0
    assert len(_queue(database)) == 4
    assert _audited(database, "settlement.reconciliation_exceptions_queued") == 1


def test_a_refund_is_negative_on_both_sides(database: Database, tmp_path: Path) -> None:
    _journal(database)
    lines = list(CLEARED)
    lines[2] = ("000000000003", "refund", 6_00)
    found = _run(database, _file(tmp_path, lines)).reconciliation
    (exception,) = found.exceptions
    assert (exception.our_amount_fen, exception.network_amount_fen) == (-5_00, -6_00)


def test_batch_totals_that_differ_from_the_host_are_reported(
    database: Database, tmp_path: Path
) -> None:
    totals: dict[str, Any] = {
        "terminal_debit_fen": 10_000,
        "terminal_debit_count": 2,
        "terminal_credit_fen": 0,
        "terminal_credit_count": 0,
        "host_debit_fen": 10_000,
        "host_debit_count": 2,
        "host_credit_fen": 0,
        "host_credit_count": 0,
    }
    write(
        database,
        batch("000001", status="closed", settled_at=MOMENT, settlement_rrn="000000000020", **totals),
        batch(
            "000002",
            status="closed",
            settled_at=MOMENT,
            settlement_rrn="000000000021",
            **{**totals, "terminal_debit_fen": 10_050, "terminal_debit_count": 3},
        ),
        batch("000003", status="closed", settled_at=MOMENT - dt.timedelta(days=1), **{
            **totals, "host_debit_fen": 1,
        }),
    )  # fmt: skip
    found = _run(database, _file(tmp_path, [])).reconciliation
    (exception,) = found.exceptions
    assert (exception.kind.value, exception.rrn, exception.tid) == (
        "batch_totals",
        "000000000021",
        TID,
    )
    assert (exception.our_amount_fen, exception.network_amount_fen) == (10_000, 10_050)
    assert exception.detail["terminal_debit_count"] == 3
    assert exception.detail["host_debit_count"] == 2
    assert [row.kind for row in _queue(database)] == ["batch_totals"]


@pytest.mark.parametrize(
    "content",
    [b"", b"%PDF-1.7\n", b"business_date,message_type\n", b"\xff\xfe garbage"],
)
def test_a_foreign_or_broken_file_records_nothing(
    database: Database, tmp_path: Path, content: bytes
) -> None:
    _journal(database)
    path = tmp_path / "clearing.csv"
    path.write_bytes(content)
    with pytest.raises(ClearingFileError):
        _run(database, path)
    assert _queue(database) == []
    assert _audited(database, "settlement.reconciliation_exceptions_queued") == 0


def test_a_truncated_file_records_nothing(database: Database, tmp_path: Path) -> None:
    _journal(database)
    path = _planted(tmp_path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ClearingFileError, match="line 8: ends without a newline"):
        _run(database, path)
    assert _queue(database) == []


def test_operations_resolves_an_exception_with_a_note(database: Database, tmp_path: Path) -> None:
    _journal(database)
    _run(database, _planted(tmp_path))
    first = _queue(database)[0].id
    with database.unit_of_work() as uow:
        with pytest.raises(ValidationFailed) as refused:
            resolve_exception(uow.session, OPS, first, "   ", now=utcnow())
        assert [error.field for error in refused.value.errors] == ["note"]
        with pytest.raises(ValidationFailed):
            resolve_exception(uow.session, OPS, first, "x" * 1001, now=utcnow())
        with pytest.raises(Forbidden):
            resolve_exception(uow.session, REVIEWER, first, "fixed", now=utcnow())
        resolve_exception(uow.session, OPS, first, " Network adjusted the amount ", now=utcnow())
        uow.commit()
    row = _queue(database)[0]
    assert (row.status, row.resolved_by, row.resolution_note) == (
        "resolved",
        "ops",
        "Network adjusted the amount",
    )
    assert row.resolved_at is not None
    assert _audited(database, "settlement.reconciliation_exception_resolved") == 1
    with database.unit_of_work() as uow, pytest.raises(Conflict):
        resolve_exception(uow.session, OPS, first, "again", now=utcnow())


# --- the command ------------------------------------------------------------------


@pytest.fixture
def cli_flags(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("POSHUB_MODE", "test")
    return ["--database-url", settings.effective_database_url, "--data-dir", str(settings.data_dir)]


def test_the_command_exits_0_when_all_matched(
    database: Database,
    settings: Settings,
    cli_flags: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _journal(database)
    _file(settings.data_dir, CLEARED)  # the default path under the data dir
    assert main([*cli_flags, "reconcile", "--date", DAY.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "matched 6, missing_at_network 0" in out


def test_the_command_exits_1_listing_exceptions(
    database: Database,
    tmp_path: Path,
    cli_flags: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _journal(database)
    path = _planted(tmp_path / "in")
    command = [*cli_flags, "reconcile", "--date", DAY.isoformat(), "--file", str(path)]
    assert main(command) == 1
    captured = capsys.readouterr()
    assert "amount_mismatch 1" in captured.out
    assert "amount_mismatch 000000000001" in captured.err
    assert "4 newly queued" in captured.err
    assert main(command) == 1
    assert "0 newly queued" in capsys.readouterr().err
    assert len(_queue(database)) == 4


@pytest.mark.parametrize(
    ("date", "content", "message"),
    [
        ("2026-13-01", None, "not a date"),
        (DAY.isoformat(), b"%PDF-1.7\n", "line 1: not the clearing file header"),
        (DAY.isoformat(), None, "No such file"),
        ("2026-12-05", "planted", "not of 2026-12-05"),
    ],
)
def test_the_command_exits_2_on_bad_input_recording_nothing(
    database: Database,
    tmp_path: Path,
    cli_flags: list[str],
    capsys: pytest.CaptureFixture[str],
    date: str,
    content: bytes | str | None,
    message: str,
) -> None:
    _journal(database)
    path = tmp_path / "in" / "file.csv"
    if content == "planted":
        path = _planted(tmp_path / "in")
    elif isinstance(content, bytes):
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    assert main([*cli_flags, "reconcile", "--date", date, "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert _queue(database) == []


def test_the_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["reconcile", "--help"])
    assert raised.value.code == 0
    assert "--file" in capsys.readouterr().out
