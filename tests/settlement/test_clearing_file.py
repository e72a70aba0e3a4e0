"""The clearing file reader (poshub/settlement/clearing_file.py): it reads what the network
simulator writes, and refuses foreign, truncated or garbled files with an error naming the
line, never a traceback."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from poshub.settlement import clearing_file
from poshub.settlement.clearing_file import ClearingFileError, read_clearing_file
from poshub.simulators import clearing as simulator
from poshub.simulators.issuer import CREDIT_KINDS, FINANCIAL_KINDS, CardKind, TxKind

DAY = dt.date(2026, 12, 4)
TID = "12345678"
MID = "898340154110001"


def item(
    rrn: str, kind: TxKind, amount_fen: int, card: CardKind = CardKind.DEBIT
) -> simulator.ClearingItem:
    return simulator.ClearingItem(
        business_date=DAY,
        message_type="0200",
        transaction=kind,
        rrn=rrn,
        stan=rrn[-6:],
        tid=TID,
        mid=MID,
        card_kind=card,
        masked_pan="6212260001",
        amount_fen=amount_fen,
    )


ITEMS = [
    item("000000000001", TxKind.SALE, 12_34),
    item("000000000002", TxKind.QR_SALE, 99_00, CardKind.WALLET),
    item("000000000003", TxKind.REFUND, 5_00, CardKind.CREDIT),
    item("000000000004", TxKind.COMPLETION, 1_000_000_00, CardKind.CREDIT),
]


@pytest.fixture
def written(tmp_path: Path) -> Path:
    path = simulator.default_clearing_path(tmp_path, DAY)
    simulator.write_clearing_file(ITEMS, DAY, path)
    return path


def test_the_transactions_and_card_kinds_are_the_simulators() -> None:
    # The simulator takes the columns from the reader; its transaction and card kinds are
    # its own enums, which must be the ones the reader accepts.
    kinds = clearing_file.DEBIT_TRANSACTIONS | clearing_file.CREDIT_TRANSACTIONS
    assert kinds == {kind.value for kind in FINANCIAL_KINDS}
    assert {kind.value for kind in CREDIT_KINDS} == clearing_file.CREDIT_TRANSACTIONS
    assert {kind.value for kind in CardKind} == clearing_file.CARD_KINDS


def test_reads_what_the_simulator_writes(written: Path) -> None:
    parsed = read_clearing_file(written, DAY)
    assert parsed.business_date == DAY
    assert [r.rrn for r in parsed.records] == [i.rrn for i in ITEMS]
    assert [r.signed_amount_fen for r in parsed.records] == [12_34, 99_00, -5_00, 1_000_000_00]
    assert (parsed.debit_count, parsed.credit_count) == (3, 1)
    assert parsed.records[0].line_no == 2


def test_an_empty_day_is_a_file_too(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    simulator.write_clearing_file([], DAY, path)
    assert read_clearing_file(path).records == ()


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("business_date,message_type", "date,type", "line 1: not the clearing file header"),
        (
            ",1234,debit,",
            ",1235,debit,",
            "line 6 \\(trailer\\): debit_fen says 100011134, the lines add up to 100011135",
        ),
        (",1234,debit,", ",12x4,debit,", "line 2: amount_fen '12x4' is not a whole number"),
        (",1234,debit,", ",1234,credit,", "line 2: direction 'credit' does not fit a sale"),
        ("2026-12-04,0200,sale", "2026-12-05,0200,sale", "line 2: business_date 2026-12-05"),
        ("2026-12-04,0200,sale", "2026-13-04,0200,sale", "line 2: business_date '2026-13-04'"),
        (",sale,", ",cash,", "line 2: unknown transaction 'cash'"),
        (",sale,", ",sale,extra,", "line 2: 15 fields, expected 14"),
        ("000000000002", "000000000001", "line 3: rrn 000000000001 already on line 2"),
        ("TRAILER,2026-12-04,4", "TRAILER,2026-12-04,5", "line_count says 5"),
        (",1234,debit,", ',"1234",debit,', "line 2: quoted fields are not allowed"),
    ],
)
def test_a_garbled_file_is_refused_naming_the_line(
    written: Path, old: str, new: str, message: str
) -> None:
    _rewrite(written, old, new)
    with pytest.raises(ClearingFileError, match=message):
        read_clearing_file(written)


def test_a_truncated_file_is_refused(written: Path) -> None:
    lines = written.read_bytes().splitlines(keepends=True)
    written.write_bytes(b"".join(lines[:-1]))
    with pytest.raises(ClearingFileError, match="line 5: no trailer at the end"):
        read_clearing_file(written)
    written.write_bytes(b"".join(lines[:-1]) + lines[-1][:20])
    with pytest.raises(ClearingFileError, match="line 6: ends without a newline"):
        read_clearing_file(written)


def test_a_file_of_another_day_is_refused(written: Path) -> None:
    with pytest.raises(ClearingFileError, match="the file is of 2026-12-04, not of 2026-12-05"):
        read_clearing_file(written, DAY + dt.timedelta(days=1))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "line 1: not ASCII text|line 1: not the clearing"),
        (b"x" * 10_000 + b"\n", "line 1: longer than 512 characters"),
        (b"%PDF-1.7\n", "line 1: not the clearing file header"),
    ],
)
def test_foreign_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "foreign.csv"
    path.write_bytes(content)
    with pytest.raises(ClearingFileError, match=message):
        read_clearing_file(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClearingFileError, match=r"cannot read .*: No such file"):
        read_clearing_file(tmp_path / "absent.csv")
