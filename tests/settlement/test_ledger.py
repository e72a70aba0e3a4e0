"""The double-entry ledger (poshub/settlement): balanced entries only, idempotent per
source event, append-only in the database, and `poshub ledger verify` finding what does
not balance. SQLite always, PostgreSQL when POSHUB_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import threading
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from poshub.cli import main
from poshub.core.db import Database
from poshub.core.limits import LEDGER_LINE_AMOUNT_MAX_FEN
from poshub.core.settings import Settings
from poshub.settlement import repository
from poshub.settlement import service as ledger
from poshub.settlement.ledger import (
    Account,
    AccountKind,
    Entry,
    LedgerError,
    Line,
    balance,
    on_normal_side,
)
from poshub.settlement.models import LedgerEntry, LedgerLine
from poshub.settlement.schemas import Posted, VerifyReport

MID = "898340154110001"
DAY = dt.date(2026, 12, 4)
NETWORK = Account(AccountKind.NETWORK_RECEIVABLE)
FEES = Account(AccountKind.FEE_INCOME)
INTERCHANGE = Account(AccountKind.INTERCHANGE_PAYABLE)
PAYABLE = Account(AccountKind.MERCHANT_PAYABLE, MID)
DEPOSITS = Account(AccountKind.DEPOSITS_HELD, MID)
SUSPENSE = Account(AccountKind.SUSPENSE)

ACCOUNTS = st.sampled_from(
    [
        NETWORK,
        FEES,
        INTERCHANGE,
        SUSPENSE,
        PAYABLE,
        DEPOSITS,
        Account(AccountKind.MERCHANT_PAYABLE, "898340154110002"),
    ]
)
AMOUNTS = st.integers(min_value=1, max_value=10**12)

_events = itertools.count()


@st.composite
def balanced_lines(draw: st.DrawFn) -> list[Line]:
    """Some debits and some credits summing to the same total, in random order."""
    debits = draw(st.lists(st.tuples(ACCOUNTS, AMOUNTS), min_size=1, max_size=4))
    total = sum(amount for _, amount in debits)
    credit_accounts = draw(st.lists(ACCOUNTS, min_size=1, max_size=min(4, total)))
    cuts = sorted(
        draw(
            st.lists(
                st.integers(1, total - 1),
                min_size=len(credit_accounts) - 1,
                max_size=len(credit_accounts) - 1,
                unique=True,
            )
        )
        if total > 1
        else []
    )
    parts = [b - a for a, b in itertools.pairwise([0, *cuts, total])]
    lines = [Line.debit(account, amount) for account, amount in debits]
    lines += [
        Line.credit(account, part) for account, part in zip(credit_accounts, parts, strict=True)
    ]
    return draw(st.permutations(lines))


def _sale(rrn: str, amount: int = 10_000, fee: int = 60, interchange: int = 45) -> list[Line]:
    return [
        Line.debit(NETWORK, amount - interchange),
        Line.credit(FEES, fee - interchange),
        Line.credit(PAYABLE, amount - fee),
    ]


# --- pure rules ------------------------------------------------------------------


@given(balanced_lines())
def test_a_balanced_entry_sums_to_zero_in_any_order(lines: list[Line]) -> None:
    entry = Entry.of("sale:000000000001", lines)
    assert sum(line.amount_fen for line in entry.lines) == 0
    assert Entry.of("sale:000000000001", reversed(lines)) == entry
    assert sum(balance(entry.lines).values()) == 0


@given(balanced_lines(), st.integers(min_value=-(10**6), max_value=10**6).filter(bool))
def test_an_unbalanced_entry_is_refused_naming_the_event(lines: list[Line], skew: int) -> None:
    first = lines[0]
    skewed = [Line(first.account, first.amount_fen + skew), *lines[1:]]
    if skewed[0].amount_fen == 0:
        skewed = [*skewed[1:], Line(first.account, skew)]
        skewed = [line for line in skewed if line.amount_fen]
    with pytest.raises(LedgerError) as refused:
        Entry.of("sale:000000000002", skewed)
    assert refused.value.params.get("event", "sale:000000000002") == "sale:000000000002"


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [Line.debit(NETWORK, 100)],
        [Line.debit(NETWORK, 0), Line.credit(PAYABLE, 0)],
        [Line(NETWORK, 1.5), Line(PAYABLE, -1.5)],  # type: ignore[arg-type]
        [Line(NETWORK, True), Line(PAYABLE, -1)],
        [
            Line.debit(NETWORK, LEDGER_LINE_AMOUNT_MAX_FEN + 1),
            Line.credit(PAYABLE, LEDGER_LINE_AMOUNT_MAX_FEN + 1),
        ],
        [Line.debit(Account(AccountKind.MERCHANT_PAYABLE), 1), Line.credit(FEES, 1)],
        [Line.debit(Account(AccountKind.FEE_INCOME, MID), 1), Line.credit(NETWORK, 1)],
    ],
    ids=["empty", "one-line", "zero", "float", "bool", "too-large", "no-mid", "stray-subject"],
)
def test_malformed_entries_are_refused(lines: list[Line]) -> None:
    with pytest.raises(LedgerError):
        Entry.of("sale:000000000003", lines)


def test_account_codes_round_trip_and_normal_sides() -> None:
    assert PAYABLE.code == f"merchant_payable:{MID}"
    assert Account.parse(PAYABLE.code) == PAYABLE
    assert Account.parse("fee_income") == FEES
    for bad in ("cash", "merchant_payable", "fee_income:x", f"merchant_payable:{MID}; --"):
        with pytest.raises(LedgerError):
            Account.parse(bad)
    assert on_normal_side(PAYABLE, -500) == 500
    assert on_normal_side(NETWORK, 500) == 500


# --- posting ---------------------------------------------------------------------


def _post(database: Database, event: str, lines: list[Line], day: dt.date = DAY) -> Posted:
    with database.unit_of_work() as uow:
        posted = ledger.post(uow.session, event, day, lines, "test")
        uow.commit()
    return posted


def _verify(database: Database) -> VerifyReport:
    with database.unit_of_work(read_only=True) as uow:
        return ledger.verify(uow.session)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=st.lists(balanced_lines(), min_size=1, max_size=4))
def test_posted_entries_keep_the_ledger_balanced_and_repeats_change_nothing(
    database: Database, entries: list[list[Line]]
) -> None:
    posted = []
    for lines in entries:
        event = f"sale:{next(_events):012d}"
        first = _post(database, event, lines)
        again = _post(database, event, list(reversed(lines)))
        assert first.created
        assert not again.created
        assert again.entry_id == first.entry_id
        posted.append(first.entry_id)
    report = _verify(database)
    assert report.intact, report.problems()
    assert report.ledger_total_fen == 0
    assert sum(report.totals_by_kind.values()) == 0
    with database.unit_of_work(read_only=True) as uow:
        trial = ledger.trial_balance(uow.session)
        entries_posted = uow.session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.id.in_(posted))
        )
    assert trial.balanced
    assert entries_posted == len(entries)


def test_the_same_event_with_other_lines_is_refused(database: Database) -> None:
    lines = _sale("000000000010")
    _post(database, "sale:000000000010", lines)
    with pytest.raises(ledger.EventAlreadyPosted) as refused:
        _post(database, "sale:000000000010", _sale("000000000010", amount=10_001))
    assert refused.value.params["event"] == "sale:000000000010"
    with pytest.raises(ledger.EventAlreadyPosted):
        _post(database, "sale:000000000010", lines, day=DAY + dt.timedelta(days=1))
    report = _verify(database)
    assert (report.entries, report.lines) == (1, 3)


def test_a_lost_race_on_the_event_reads_the_winner(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transaction committed the event (and opened its accounts) after this one
    looked: the unique keys refuse the inserts inside savepoints, and the post turns into
    the idempotent repeat, leaving this transaction usable."""
    lines = _sale("000000000012")
    winner = _post(database, "sale:000000000012", lines)
    looked: set[str] = set()
    real_entry, real_accounts = repository.entry_by_event, repository.account_ids

    def entry_not_yet_seen(session: Session, event: str) -> LedgerEntry | None:
        if event not in looked:
            looked.add(event)
            return None
        return real_entry(session, event)

    def accounts_not_yet_seen(session: Session, codes: Iterable[str]) -> dict[str, int]:
        wanted = list(codes)
        return {} if len(wanted) > 1 else real_accounts(session, wanted)

    monkeypatch.setattr(repository, "entry_by_event", entry_not_yet_seen)
    monkeypatch.setattr(repository, "account_ids", accounts_not_yet_seen)
    with database.unit_of_work() as uow:
        repeat = ledger.post(uow.session, "sale:000000000012", DAY, lines)
        other = ledger.post(uow.session, "sale:000000000013", DAY, _sale("000000000013"))
        uow.commit()
    assert repeat.entry_id == winner.entry_id
    assert not repeat.created
    assert other.created
    report = _verify(database)
    assert report.intact
    assert (report.entries, report.lines, report.accounts) == (2, 6, 3)


def test_two_transactions_posting_one_event_make_one_entry(database: Database) -> None:
    """PostgreSQL: the second insert waits on the unique key until the first commits, then
    fails inside its savepoint and returns the committed entry (SQLite writers queue
    before BEGIN IMMEDIATE, so they never race)."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite serialises writers")
    lines = _sale("000000000014")
    outcome: list[Posted | BaseException] = []

    def second() -> None:
        try:
            outcome.append(_post(database, "sale:000000000014", lines))
        except BaseException as error:  # reported by the assertion below
            outcome.append(error)

    with database.unit_of_work() as uow:
        first = ledger.post(uow.session, "sale:000000000014", DAY, lines)
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # waiting on the first transaction's key
        uow.commit()
    thread.join(timeout=10)
    assert len(outcome) == 1
    repeat = outcome[0]
    assert isinstance(repeat, Posted), repeat
    assert repeat.entry_id == first.entry_id
    assert not repeat.created
    report = _verify(database)
    assert report.intact
    assert (report.entries, report.lines) == (1, 3)


def test_an_unbalanced_entry_never_reaches_the_database(database: Database) -> None:
    with database.unit_of_work() as uow, pytest.raises(LedgerError):
        ledger.post(
            uow.session, "sale:000000000011", DAY, [Line.debit(NETWORK, 5), Line.credit(PAYABLE, 4)]
        )
    assert _verify(database).entries == 0


def test_balances_by_account_kind_and_date(database: Database) -> None:
    _post(database, "sale:000000000020", _sale("000000000020"))
    _post(database, "sale:000000000021", _sale("000000000021"), day=DAY + dt.timedelta(days=1))
    with database.unit_of_work(read_only=True) as uow:
        first_day = ledger.balances(uow.session, [PAYABLE.code, FEES.code, DEPOSITS.code], DAY)
        trial = ledger.trial_balance(uow.session)
    assert first_day == {PAYABLE.code: -9_940, FEES.code: -15, DEPOSITS.code: 0}
    assert trial.totals_by_kind["merchant_payable"] == -19_880
    payable = next(row for row in trial.accounts if row.code == PAYABLE.code)
    assert payable.normal_side == "credit"
    assert payable.normal_balance_fen == 19_880
    assert trial.debit_total_fen == trial.credit_total_fen == 2 * 9_955


# --- the database refuses rewrites; verify finds tampering -------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_lines SET amount_fen = amount_fen + 1",
        "DELETE FROM ledger_lines",
        "UPDATE ledger_entries SET business_date = business_date",
        "DELETE FROM ledger_entries",
    ],
)
def test_entries_and_lines_are_append_only(database: Database, statement: str) -> None:
    _post(database, "sale:000000000030", _sale("000000000030"))
    with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as connection:
        connection.execute(text(statement))
    assert _verify(database).intact


@pytest.fixture
def cli_flags(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("POSHUB_MODE", "test")
    return ["--database-url", settings.effective_database_url, "--data-dir", str(settings.data_dir)]


@pytest.mark.parametrize("command", ["verify", "balances"])
def test_ledger_commands_have_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["ledger", command, "--help"])
    assert raised.value.code == 0
    assert "usage: poshub ledger" in capsys.readouterr().out


def test_cli_verify_exits_zero_on_a_balanced_ledger(
    database: Database, cli_flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _post(database, "sale:000000000040", _sale("000000000040"))
    assert main([*cli_flags, "ledger", "verify"]) == 0
    out = capsys.readouterr().out
    assert "ledger balanced: 1 entries, 3 lines" in out
    assert "merchant_payable -9940" in out
    assert main([*cli_flags, "ledger", "balances", "--date", DAY.isoformat()]) == 0
    out = capsys.readouterr().out
    assert PAYABLE.code in out
    assert "debits 9955 fen, credits 9955 fen" in out
    assert main([*cli_flags, "ledger", "balances", "--date", "04/12/2026"]) == 2


def test_an_inserted_line_makes_verify_fail(
    database: Database, cli_flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    posted = _post(database, "sale:000000000050", _sale("000000000050"))
    with database.engine.begin() as connection:
        account_id = connection.execute(text("SELECT MIN(id) FROM ledger_accounts")).scalar_one()
        connection.execute(
            text(
                "INSERT INTO ledger_lines (entry_id, account_id, amount_fen) VALUES (:e, :a, 100)"
            ),
            {"e": posted.entry_id, "a": account_id},
        )
        connection.execute(
            text(
                "INSERT INTO ledger_entries (source_event, business_date, posted_at, description)"
                " VALUES ('payout:1', :d, :t, '')"
            ),
            {"d": DAY, "t": dt.datetime(2026, 12, 4, tzinfo=dt.UTC)},
        )
    report = _verify(database)
    assert not report.intact
    assert report.ledger_total_fen == 100
    assert [item.source_event for item in report.unbalanced] == ["sale:000000000050"]
    assert report.empty == ["payout:1"]
    assert main([*cli_flags, "ledger", "verify"]) == 1
    err = capsys.readouterr().err
    assert "ledger NOT balanced" in err
    assert "entry sale:000000000050" in err
    assert "sums to 100 fen" in err
    assert "entry payout:1 has no lines" in err


def test_a_line_without_its_account_is_reported(database: Database) -> None:
    if database.dialect != "sqlite":
        pytest.skip("PostgreSQL always enforces the foreign key")
    posted = _post(database, "sale:000000000060", _sale("000000000060"))
    path = database.engine.url.database
    assert path
    raw = sqlite3.connect(path)  # a plain connection: foreign keys are off by default
    with raw:
        raw.execute(
            "INSERT INTO ledger_lines (entry_id, account_id, amount_fen) VALUES (?, 999, 0)",
            (posted.entry_id,),
        )
    raw.close()
    report = _verify(database)
    assert report.orphan_count == 1
    assert not report.intact
    with database.unit_of_work(read_only=True) as uow:
        lines = uow.session.scalar(select(func.count()).select_from(LedgerLine))
    assert lines == 4
