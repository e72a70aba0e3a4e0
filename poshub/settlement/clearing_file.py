"""A strict reader of the network's daily clearing file (docs/settlement.md, Reconciliation).

The format is the network's (docs/test-cards.md, "The clearing file"): a header line naming
the columns, one CSV line per cleared message, then a trailer with the counts and totals.
The network simulator writes it; this module reads it without importing the simulator (a
domain does not depend on a simulator), so the column list is repeated here and a test
checks that both agree.

Anything that is not exactly such a file (empty, foreign, truncated, a line too long, a
field of the wrong type, a trailer that does not add up) raises ``ClearingFileError``
naming the line and the problem; nothing is returned half-read.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from poshub.core.limits import (
    CLEARING_AMOUNT_MAX_FEN,
    CLEARING_FILE_LINE_MAX_CHARS,
    CLEARING_FILE_LINES_MAX,
)

HEADER: Final = (
    "business_date",
    "message_type",
    "transaction",
    "rrn",
    "stan",
    "tid",
    "mid",
    "card_kind",
    "masked_pan",
    "amount_fen",
    "direction",
    "interchange_fee_fen",
    "network_fee_acquirer_fen",
    "network_fee_issuer_fen",
)
TRAILER_TAG: Final = "TRAILER"
TRAILER_FIELDS: Final = 10
DEBIT: Final = "debit"
CREDIT: Final = "credit"

DEBIT_TRANSACTIONS: Final = frozenset({"sale", "qr_sale", "completion", "completion_advice"})
CREDIT_TRANSACTIONS: Final = frozenset({"void", "completion_void", "refund"})
CARD_KINDS: Final = frozenset({"debit", "credit", "wallet"})

_PATTERNS: Final = {
    "message_type": re.compile(r"[0-9]{4}"),
    "rrn": re.compile(r"[0-9A-Za-z]{12}"),
    "stan": re.compile(r"[0-9]{6}"),
    "tid": re.compile(r"[0-9A-Za-z]{8}"),
    "mid": re.compile(r"[0-9A-Za-z]{15}"),
    "masked_pan": re.compile(r"[0-9]{6}[0-9*]{0,9}[0-9]{4}"),
}
_NET_FEES: Final = frozenset(
    {"interchange_fee_fen", "network_fee_acquirer_fen", "network_fee_issuer_fen"}
)
"""Trailer totals that are net (debit lines minus credit lines), so may be negative."""
_AMOUNT: Final = re.compile(r"[0-9]{1,13}")
_SIGNED: Final = re.compile(r"-?[0-9]{1,13}")


def default_clearing_path(data_dir: Path, business_date: dt.date) -> Path:
    """Where the network's file of a business date lands (``<data_dir>/clearing/``)."""
    return data_dir / "clearing" / f"CUP-{business_date:%Y%m%d}.csv"


class ClearingFileError(ValueError):
    """The file is not a readable clearing file; the message names the line."""


@dataclass(frozen=True, slots=True)
class ClearingRecord:
    line_no: int
    business_date: dt.date
    message_type: str
    transaction: str
    rrn: str
    stan: str
    tid: str
    mid: str
    card_kind: str
    masked_pan: str
    amount_fen: int
    direction: str
    interchange_fee_fen: int
    network_fee_acquirer_fen: int
    network_fee_issuer_fen: int

    @property
    def signed_amount_fen(self) -> int:
        """Debits positive, credits (voids, refunds) negative."""
        return self.amount_fen if self.direction == DEBIT else -self.amount_fen


@dataclass(frozen=True, slots=True)
class ClearingFile:
    path: Path
    business_date: dt.date
    records: tuple[ClearingRecord, ...]
    debit_count: int
    debit_fen: int
    credit_count: int
    credit_fen: int


def _date(value: str, where: str) -> dt.date:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ClearingFileError(f"{where}: business_date {value!r} is not YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ClearingFileError(f"{where}: business_date {value!r} is not a date") from None


def _amount(value: str, name: str, where: str, *, signed: bool = False) -> int:
    if not (_SIGNED if signed else _AMOUNT).fullmatch(value):
        raise ClearingFileError(f"{where}: {name} {value!r} is not a whole number of fen")
    amount = int(value)
    if abs(amount) > CLEARING_AMOUNT_MAX_FEN:
        raise ClearingFileError(f"{where}: {name} {value!r} is beyond the limit")
    return amount


def _record(fields: list[str], line_no: int) -> ClearingRecord:
    where = f"line {line_no}"
    if len(fields) != len(HEADER):
        raise ClearingFileError(f"{where}: {len(fields)} fields, expected {len(HEADER)}")
    values = dict(zip(HEADER, fields, strict=True))
    for name, pattern in _PATTERNS.items():
        if not pattern.fullmatch(values[name]):
            raise ClearingFileError(f"{where}: {name} {values[name]!r} is malformed")
    transaction = values["transaction"]
    if transaction in DEBIT_TRANSACTIONS:
        direction = DEBIT
    elif transaction in CREDIT_TRANSACTIONS:
        direction = CREDIT
    else:
        raise ClearingFileError(f"{where}: unknown transaction {transaction!r}")
    if values["direction"] != direction:
        raise ClearingFileError(
            f"{where}: direction {values['direction']!r} does not fit a {transaction}"
        )
    if values["card_kind"] not in CARD_KINDS:
        raise ClearingFileError(f"{where}: unknown card_kind {values['card_kind']!r}")
    return ClearingRecord(
        line_no=line_no,
        business_date=_date(values["business_date"], where),
        message_type=values["message_type"],
        transaction=transaction,
        rrn=values["rrn"],
        stan=values["stan"],
        tid=values["tid"],
        mid=values["mid"],
        card_kind=values["card_kind"],
        masked_pan=values["masked_pan"],
        amount_fen=_amount(values["amount_fen"], "amount_fen", where),
        direction=direction,
        interchange_fee_fen=_amount(values["interchange_fee_fen"], "interchange_fee_fen", where),
        network_fee_acquirer_fen=_amount(
            values["network_fee_acquirer_fen"], "network_fee_acquirer_fen", where
        ),
        network_fee_issuer_fen=_amount(
            values["network_fee_issuer_fen"], "network_fee_issuer_fen", where
        ),
    )


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, CSV fields) of every line, bounded in length and count."""
    out: list[tuple[int, list[str]]] = []
    try:
        with path.open("rb") as handle:
            while True:
                raw = handle.readline(CLEARING_FILE_LINE_MAX_CHARS + 2)
                if not raw:
                    break
                line_no = len(out) + 1
                if line_no > CLEARING_FILE_LINES_MAX:
                    raise ClearingFileError(
                        f"line {line_no}: more than {CLEARING_FILE_LINES_MAX} lines"
                    )
                if not raw.endswith(b"\n"):
                    if len(raw) > CLEARING_FILE_LINE_MAX_CHARS:
                        raise ClearingFileError(
                            f"line {line_no}: longer than {CLEARING_FILE_LINE_MAX_CHARS} characters"
                        )
                    raise ClearingFileError(
                        f"line {line_no}: ends without a newline (truncated file?)"
                    )
                try:
                    text = raw[:-1].decode("ascii")
                except UnicodeDecodeError:
                    raise ClearingFileError(f"line {line_no}: not ASCII text") from None
                if '"' in text:
                    raise ClearingFileError(f"line {line_no}: quoted fields are not allowed")
                out.append((line_no, next(csv.reader([text]), [])))
    except OSError as error:
        raise ClearingFileError(f"cannot read {path}: {error.strerror or error}") from None
    return out


def read_clearing_file(path: Path, expected_date: dt.date | None = None) -> ClearingFile:
    """Parse and check the whole file; raises ClearingFileError on the first problem."""
    lines = _lines(path)
    if not lines:
        raise ClearingFileError(f"{path}: empty file, not a clearing file")
    if tuple(lines[0][1]) != HEADER:
        raise ClearingFileError("line 1: not the clearing file header (a foreign file?)")
    if len(lines) < 2 or lines[-1][1][:1] != [TRAILER_TAG]:
        raise ClearingFileError(f"line {len(lines)}: no trailer at the end (truncated file?)")
    records: list[ClearingRecord] = []
    seen: dict[str, int] = {}
    for line_no, fields in lines[1:-1]:
        if fields[:1] == [TRAILER_TAG]:
            raise ClearingFileError(f"line {line_no}: a trailer before the end of the file")
        record = _record(fields, line_no)
        if record.rrn in seen:
            raise ClearingFileError(
                f"line {line_no}: rrn {record.rrn} already on line {seen[record.rrn]}"
            )
        seen[record.rrn] = line_no
        records.append(record)
    trailer_no, trailer = lines[-1]
    where = f"line {trailer_no} (trailer)"
    if len(trailer) != TRAILER_FIELDS:
        raise ClearingFileError(f"{where}: {len(trailer)} fields, expected {TRAILER_FIELDS}")
    business_date = _date(trailer[1], where)
    if expected_date is not None and business_date != expected_date:
        raise ClearingFileError(f"{where}: the file is of {business_date}, not of {expected_date}")
    for record in records:
        if record.business_date != business_date:
            raise ClearingFileError(
                f"line {record.line_no}: business_date {record.business_date} "
                f"is not the file's {business_date}"
            )
    names = (
        "line_count",
        "debit_count",
        "debit_fen",
        "credit_count",
        "credit_fen",
        "interchange_fee_fen",
        "network_fee_acquirer_fen",
        "network_fee_issuer_fen",
    )
    stated = {
        name: _amount(value, name, where, signed=name in _NET_FEES)
        for name, value in zip(names, trailer[2:], strict=True)
    }
    debits = [r for r in records if r.direction == DEBIT]
    credits = [r for r in records if r.direction == CREDIT]

    def net(attribute: str) -> int:
        return sum(
            int(getattr(r, attribute)) * (1 if r.direction == DEBIT else -1) for r in records
        )

    counted = {
        "line_count": len(records),
        "debit_count": len(debits),
        "debit_fen": sum(r.amount_fen for r in debits),
        "credit_count": len(credits),
        "credit_fen": sum(r.amount_fen for r in credits),
        "interchange_fee_fen": net("interchange_fee_fen"),
        "network_fee_acquirer_fen": net("network_fee_acquirer_fen"),
        "network_fee_issuer_fen": net("network_fee_issuer_fen"),
    }
    for name in names:
        if stated[name] != counted[name]:
            raise ClearingFileError(
                f"{where}: {name} says {stated[name]}, the lines add up to {counted[name]}"
            )
    return ClearingFile(
        path=path,
        business_date=business_date,
        records=tuple(records),
        debit_count=counted["debit_count"],
        debit_fen=counted["debit_fen"],
        credit_count=counted["credit_count"],
        credit_fen=counted["credit_fen"],
    )
