"""Stock-in from a supplier's CSV: parsing and per-row validation, with no database.

The import is all-or-nothing: if any row is wrong, the report names every wrong row and
nothing is imported, so a delivery is never half in stock (the warehouse fixes the file
and sends it again). Rows are numbered as a spreadsheet shows them: the header is row 1.

Format (UTF-8, with or without BOM; comma-separated; header required)::

    serial_number,model_code,warehouse,firmware_version
    SN-A8-000001,SMART-A8,合肥仓,1.4.2

``firmware_version`` is optional.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from poshub.core import limits
from poshub.core.errors import N_

REQUIRED_COLUMNS = ("serial_number", "model_code", "warehouse")
OPTIONAL_COLUMNS = ("firmware_version",)
SERIAL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{3,31}$")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Control characters (NUL among them), bidi overrides and other invisible marks."""

# The csv module refuses a field over 131,072 characters with an exception; a stock file is
# at most STOCK_CSV_BYTES_MAX bytes, so no field can be longer than that, and every cell is
# then measured against STOCK_CSV_FIELD_CHARS_MAX here, naming its row and column.
csv.field_size_limit(max(csv.field_size_limit(), limits.STOCK_CSV_BYTES_MAX))


@dataclass(frozen=True)
class StockRow:
    row: int
    serial_number: str
    model_code: str
    warehouse: str
    firmware_version: str | None


@dataclass(frozen=True)
class RowProblem:
    row: int
    column: str
    code: str
    message: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedStock:
    rows: list[StockRow]
    problems: list[RowProblem]


def parse(
    data: bytes,
    *,
    known_models: Collection[str],
    existing_serials: Collection[str] = (),
) -> ParsedStock:
    """Parse and validate a stock file. ``existing_serials`` are serials already in the
    fleet among those in the file (the caller looks them up in one query)."""
    problems: list[RowProblem] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return ParsedStock(
            [], [RowProblem(0, "file", "stock.encoding", N_("The file is not UTF-8 text."))]
        )
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
    except csv.Error:
        header = None
    if header is None:
        return ParsedStock([], [RowProblem(1, "file", "stock.empty", N_("The file is empty."))])
    columns = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        return ParsedStock(
            [],
            [
                RowProblem(
                    1,
                    "header",
                    "stock.missing_columns",
                    N_("The header lacks the columns {columns}."),
                    {"columns": ", ".join(missing)},
                )
            ],
        )
    index = {
        name: columns.index(name)
        for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        if name in columns
    }
    rows: list[StockRow] = []
    first_seen: dict[str, int] = {}
    existing = {s.upper() for s in existing_serials}
    for number, record in _records(reader, problems):
        if not any(cell.strip() for cell in record):
            continue  # blank lines are harmless
        if len(rows) + len(problems) >= limits.STOCK_CSV_ROWS_MAX:
            problems.append(
                RowProblem(
                    number,
                    "file",
                    "stock.too_many_rows",
                    N_("A stock file holds at most {max} devices; split it."),
                    {"max": str(limits.STOCK_CSV_ROWS_MAX)},
                )
            )
            break

        def cell(name: str, record: list[str] = record) -> str:
            position = index.get(name)
            return (
                record[position].strip() if position is not None and position < len(record) else ""
            )

        row_problems = _cell_problems(number, record, index)
        if row_problems:
            # An oversize, multi-column or control-character row is reported as such; its
            # values are not looked at further.
            problems.extend(row_problems)
            continue
        serial = cell("serial_number").upper()
        model = cell("model_code").upper()
        warehouse = cell("warehouse")
        firmware = cell("firmware_version") or None
        if not SERIAL_PATTERN.match(serial):
            row_problems.append(
                RowProblem(
                    number,
                    "serial_number",
                    "stock.serial_invalid",
                    N_("A serial number has 4 to 32 letters, digits or dashes."),
                )
            )
        elif serial in first_seen:
            row_problems.append(
                RowProblem(
                    number,
                    "serial_number",
                    "stock.serial_duplicate_in_file",
                    N_("Serial number {serial} already appears in row {row}."),
                    {"serial": serial, "row": str(first_seen[serial])},
                )
            )
        elif serial in existing:
            row_problems.append(
                RowProblem(
                    number,
                    "serial_number",
                    "stock.serial_exists",
                    N_("Serial number {serial} is already in the fleet."),
                    {"serial": serial},
                )
            )
        if model not in known_models:
            row_problems.append(
                RowProblem(
                    number,
                    "model_code",
                    "stock.model_unknown",
                    N_("Unknown terminal model {model}."),
                    {"model": model[:32]},
                )
            )
        if not 1 <= len(warehouse) <= 64:
            row_problems.append(
                RowProblem(
                    number,
                    "warehouse",
                    "stock.warehouse_invalid",
                    N_("The warehouse is required (at most 64 characters)."),
                )
            )
        if firmware is not None and len(firmware) > 32:
            row_problems.append(
                RowProblem(
                    number,
                    "firmware_version",
                    "stock.firmware_invalid",
                    N_("The firmware version has at most 32 characters."),
                )
            )
        if serial and serial not in first_seen:
            first_seen[serial] = number
        if row_problems:
            problems.extend(row_problems)
        else:
            rows.append(StockRow(number, serial, model, warehouse, firmware))
    if not rows and not problems:
        problems.append(
            RowProblem(1, "file", "stock.no_rows", N_("The file has a header but no devices."))
        )
    return ParsedStock(rows, problems)


def _records(
    reader: Iterator[list[str]], problems: list[RowProblem]
) -> Iterator[tuple[int, list[str]]]:
    """The records after the header, numbered as a spreadsheet shows them; a record the csv
    module cannot read ends the file with a problem naming its row."""
    number = 1
    while True:
        number += 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error:
            problems.append(
                RowProblem(
                    number,
                    "file",
                    "stock.malformed",
                    N_("Row {row} is not valid CSV; check its quotes."),
                    {"row": str(number)},
                )
            )
            return
        yield number, record


def _cell_problems(number: int, record: list[str], index: dict[str, int]) -> list[RowProblem]:
    """Every cell of a known column too long or holding a control or invisible character;
    a row with too many cells."""
    if len(record) > limits.STOCK_CSV_COLUMNS_MAX:
        return [
            RowProblem(
                number,
                "file",
                "stock.too_many_columns",
                N_("A row has at most {max} cells; this one has {count}."),
                {"max": str(limits.STOCK_CSV_COLUMNS_MAX), "count": str(len(record))},
            )
        ]
    found: list[RowProblem] = []
    for name, position in index.items():
        value = record[position] if position < len(record) else ""
        if len(value) > limits.STOCK_CSV_FIELD_CHARS_MAX:
            found.append(
                RowProblem(
                    number,
                    name,
                    "stock.field_too_long",
                    N_("A cell holds at most {max} characters; this one has {count}."),
                    {"max": str(limits.STOCK_CSV_FIELD_CHARS_MAX), "count": str(len(value))},
                )
            )
        elif any(
            not char.isprintable() and unicodedata.category(char) in _REFUSED_CATEGORIES
            for char in value
        ):
            found.append(
                RowProblem(
                    number,
                    name,
                    "stock.control_character",
                    N_("The cell contains a control character or an invisible formatting mark."),
                )
            )
    return found


def serials_in(data: bytes) -> list[str]:
    """Every serial-number cell of a file, to look up which exist before ``parse``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return []
    reader = csv.reader(io.StringIO(text))
    serials: list[str] = []
    try:
        header = next(reader, None)
        if not header:
            return []
        columns = [h.strip().lower() for h in header]
        if "serial_number" not in columns:
            return []
        position = columns.index("serial_number")
        for count, record in enumerate(reader):
            if count >= limits.STOCK_CSV_ROWS_MAX:
                break
            if position < len(record) and record[position].strip():
                serials.append(record[position].strip().upper()[: limits.SERIAL_NUMBER_LENGTH_MAX])
    except csv.Error:
        pass  # parse() reports the row
    return serials
