"""The suspicious-transaction report (可疑交易报告) of a risk case, as CSV and as PDF.

The anti-money-laundering team files a suspicious-transaction report with the PBOC from
the case: who reports, about which merchant, on what grounds, and the transactions. The
content (:class:`Report`) is put together by ``poshub.risk.cases.build_report``; this
module only writes it out. The labels are the report's own, in Chinese as it is filed,
whatever the reader's language. Card numbers are only ever masked here.

CSV: the fields as (label, value) rows, an empty row, then the transactions under their
column names; UTF-8 with a BOM, every cell neutralised for spreadsheets (core/exports).
PDF: A4 landscape, the same content, typeset with the CJK font contracts use
(contracts/fonts.py, subset to the characters used).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos

from poshub.contracts.fonts import discover_cjk_fonts, truetype_subset
from poshub.core.exports import csv_bytes

TITLE: Final = "可疑交易报告"
COLUMNS: Final = (
    "交易时间",
    "检索参考号",
    "商户编号",
    "终端号",
    "交易类型",
    "渠道",
    "金额",
    "币种",
    "卡号（掩码）",
    "应答码",
    "状态",
)
KIND_NAMES: Final = {
    "sale": "消费",
    "qr_sale": "扫码支付",
    "void": "消费撤销",
    "refund": "退货",
    "preauth": "预授权",
    "preauth_cancel": "预授权撤销",
    "completion": "预授权完成",
    "completion_void": "预授权完成撤销",
    "completion_advice": "预授权完成通知",
    "reversal": "冲正",
    "balance_inquiry": "余额查询",
}
"""The report's words for the journal's kinds (others are written as they are)."""
STATUS_NAMES: Final = {
    "approved": "成功",
    "declined": "拒绝",
    "voided": "已撤销",
    "reversed": "已冲正",
    "completed": "已完成",
    "pending": "处理中",
    "answered": "已应答",
}
CHANNEL_NAMES: Final = {"debit": "借记卡", "credit": "贷记卡", "qr": "扫码"}
_PDF_COLUMN_WIDTHS: Final = (34, 26, 30, 18, 22, 14, 24, 12, 36, 14, 20)
"""Millimetres on A4 landscape (250 mm between the margins); long cells wrap."""
_FAMILY: Final = "cjk"
_MARGIN: Final = 15.0
_ASCII: Final = "".join(chr(c) for c in range(0x20, 0x7F))


class ReportFormat(StrEnum):
    CSV = "csv"
    PDF = "pdf"


MEDIA_TYPES: Final = {
    ReportFormat.CSV: "text/csv; charset=utf-8",
    ReportFormat.PDF: "application/pdf",
}


@dataclass(frozen=True)
class Institution:
    """The reporting institution, from the settings (``POSHUB_ACQUIRER_*``)."""

    name: str
    code: str
    licence: str


@dataclass(frozen=True)
class Report:
    reference: str
    """The case's reference, which names the file."""
    fields: tuple[tuple[str, str], ...]
    """(label, value) of the report's header: institution, case, merchant, grounds."""
    rows: tuple[tuple[str, ...], ...]
    """One per transaction, in the order of :data:`COLUMNS`."""


def file_name(report: Report, fmt: ReportFormat) -> str:
    return f"STR-{report.reference}.{fmt.value}"


def render(report: Report, fmt: ReportFormat) -> bytes:
    return to_pdf(report) if fmt == ReportFormat.PDF else to_csv(report)


def to_csv(report: Report) -> bytes:
    rows: list[tuple[str, ...]] = [*report.fields, (), COLUMNS, *report.rows]
    return csv_bytes(["字段", "内容"], rows)


def _strings(report: Report) -> Iterator[str]:
    yield TITLE
    yield from COLUMNS
    for pair in report.fields:
        yield from pair
    for row in report.rows:
        yield from row


def to_pdf(report: Report) -> bytes:
    """The report on A4 landscape pages, numbered."""
    fonts = discover_cjk_fonts()
    characters = "".join(_strings(report)) + _ASCII
    with tempfile.TemporaryDirectory(prefix="poshub-str-") as tmp:
        regular, bold = Path(tmp, "regular.ttf"), Path(tmp, "bold.ttf")
        regular.write_bytes(truetype_subset(fonts.regular, characters))
        bold.write_bytes(truetype_subset(fonts.bold, characters))
        pdf = FPDF(orientation="L", unit="mm", format="A4")
        pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
        pdf.set_auto_page_break(True, margin=_MARGIN)
        pdf.add_font(_FAMILY, "", regular)
        pdf.add_font(_FAMILY, "B", bold)
        pdf.set_title(f"{TITLE} {report.reference}")
        pdf.add_page()
        pdf.set_font(_FAMILY, "B", 16)
        pdf.cell(0, 10, f"{TITLE}  {report.reference}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
        pdf.set_font(_FAMILY, "", 9)
        with pdf.table(
            col_widths=(45, 205), first_row_as_headings=False, wrapmode=WrapMode.CHAR
        ) as table:
            for label, value in report.fields:
                row = table.row()
                row.cell(label)
                row.cell(value)
        pdf.ln(4)
        pdf.set_font(_FAMILY, "", 8)
        with pdf.table(col_widths=_PDF_COLUMN_WIDTHS, wrapmode=WrapMode.CHAR) as table:
            table.row(COLUMNS)
            for cells in report.rows:
                table.row(cells)
        return bytes(pdf.output())
