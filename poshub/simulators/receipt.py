"""The terminal's slips as fixed-width text: 签购单 (sales slip) and 结算总计单 (settlement).

Laid out like the slips of Chinese POS terminals: bilingual labels (``language="zh"``) or
English ones (``"en"``), one label and value per line when they fit, the value on its own
right-aligned line when they do not. Thermal printers print 32 (58 mm paper) or 42
(80 mm) columns of ASCII; a CJK character takes two, so padding counts display columns
with :func:`unicodedata.east_asian_width`, never ``len``.

A slip never shows a full PAN: the card number is printed masked (first 6, last 4) even if
a caller passes the full number.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime
from typing import Final, Literal

from poshub.core.clock import SHANGHAI
from poshub.simulators.terminal import (
    QR_KINDS,
    Kind,
    Result,
    SettlementReport,
    format_yuan,
    mask_pan,
)

WIDTHS: Final = (32, 42)
Language = Literal["zh", "en"]

KIND_NAMES: Final[dict[str, tuple[str, str]]] = {
    Kind.SALE: ("消费", "SALE"),
    Kind.VOID: ("消费撤销", "VOID"),
    Kind.REFUND: ("退货", "REFUND"),
    Kind.PREAUTH: ("预授权", "AUTH"),
    Kind.PREAUTH_CANCEL: ("预授权撤销", "CANCEL"),
    Kind.COMPLETION: ("预授权完成请求", "AUTH COMPLETE"),
    Kind.COMPLETION_ADVICE: ("预授权完成通知", "AUTH SETTLEMENT"),
    Kind.COMPLETION_VOID: ("预授权完成撤销", "COMPLETE VOID"),
    Kind.BALANCE: ("余额查询", "BALANCE"),
    Kind.QR_SALE: ("扫码消费", "QR SALE"),
    Kind.QR_VOID: ("扫码撤销", "QR VOID"),
    Kind.QR_REFUND: ("扫码退货", "QR REFUND"),
}

NEGATIVE_KINDS: Final = frozenset(
    {
        Kind.VOID,
        Kind.REFUND,
        Kind.PREAUTH_CANCEL,
        Kind.COMPLETION_VOID,
        Kind.QR_VOID,
        Kind.QR_REFUND,
    }
)
"""Printed with a minus sign, as real slips show money going back to the card."""

WALLET_NAMES: Final[dict[str, tuple[str, str]]] = {
    "CUP": ("银联云闪付", "UNIONPAY QR"),
    "WXP": ("微信支付", "WECHAT PAY"),
    "ALP": ("支付宝", "ALIPAY"),
}

STATEMENT: Final = (
    "本人确认以上交易，同意将其记入本卡账户",
    "I ACKNOWLEDGE SATISFACTORY RECEIPT OF RELATIVE GOODS/SERVICES",
)

_LABELS: Final[dict[str, tuple[str, str]]] = {
    "merchant_name": ("商户名称", "MERCHANT NAME"),
    "mid": ("商户编号", "MERCHANT NO."),
    "tid": ("终端编号", "TERMINAL NO."),
    "operator": ("操作员号", "OPERATOR NO."),
    "issuer": ("发卡行", "ISSUER"),
    "acquirer": ("收单行", "ACQUIRER"),
    "card": ("卡号", "CARD NO."),
    "trans_type": ("交易类型", "TRANS TYPE"),
    "expiry": ("有效期", "EXP DATE"),
    "batch": ("批次号", "BATCH NO."),
    "voucher": ("凭证号", "VOUCHER NO."),
    "auth": ("授权码", "AUTH NO."),
    "rrn": ("参考号", "REFER NO."),
    "datetime": ("日期/时间", "DATE/TIME"),
    "amount": ("金额", "AMOUNT"),
    "balance": ("余额", "BALANCE"),
    "reference": ("备注", "REFERENCE"),
    "qr_voucher": ("付款凭证号", "PAYMENT VOUCHER"),
    "wallet": ("钱包", "WALLET"),
    "signature": ("持卡人签名", "CARDHOLDER SIGNATURE"),
    "orig_voucher": ("原凭证号", "ORIG VOUCHER"),
    "orig_rrn": ("原参考号", "ORIG REFER NO."),
    "orig_auth": ("原授权码", "ORIG AUTH NO."),
    "settle_title": ("结算总计单", "SETTLEMENT"),
    "type": ("类型", "TYPE"),
    "count": ("笔数", "COUNT"),
    "debit": ("内卡借记", "DEBIT"),
    "credit": ("内卡贷记", "CREDIT"),
    "balanced": ("对账平", "BALANCED"),
    "unbalanced": ("对账不平", "NOT BALANCED"),
    "settle_error": ("对账出错", "SETTLEMENT ERROR"),
    "uploaded": ("上送笔数", "UPLOADED"),
    "batch_closed": ("批次已结", "BATCH CLOSED"),
    "batch_open": ("批次未结", "BATCH NOT CLOSED"),
}


# --- Display columns ------------------------------------------------------------------------
def char_width(char: str) -> int:
    """Columns a character takes on the slip: 2 for wide and full-width (CJK) characters,
    0 for combining marks, 1 otherwise (ambiguous ones print narrow on these printers)."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(char_width(c) for c in text)


def wrap(text: str, width: int) -> list[str]:
    """Break ``text`` into lines of at most ``width`` columns: at spaces where possible,
    anywhere in a run of CJK characters or in a word longer than a line."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if display_width(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        for char in word:
            if display_width(current + char) > width:
                lines.append(current)
                current = ""
            current += char
    if current or not lines:
        lines.append(current)
    return lines


def pad_right(text: str, width: int) -> str:
    return text + " " * max(width - display_width(text), 0)


def pad_left(text: str, width: int) -> str:
    return " " * max(width - display_width(text), 0) + text


def center(text: str, width: int) -> str:
    space = max(width - display_width(text), 0)
    return " " * (space // 2) + text + " " * (space - space // 2)


# --- Building blocks ---------------------------------------------------------------------------
class _Slip:
    def __init__(self, width: int, language: Language) -> None:
        if width not in WIDTHS:
            raise ValueError(f"a slip is {WIDTHS[0]} or {WIDTHS[1]} columns wide")
        if language not in ("zh", "en"):
            raise ValueError("language is zh or en")
        self.width = width
        self.language = language
        self.lines: list[str] = []

    def label(self, key: str) -> str:
        chinese, english = _LABELS[key]
        return f"{chinese} {english}" if self.language == "zh" else english

    def words(self, pair: tuple[str, str]) -> str:
        return f"{pair[0]} {pair[1]}" if self.language == "zh" else pair[1]

    def rule(self, char: str = "-") -> None:
        self.lines.append(char * self.width)

    def centered(self, text: str) -> None:
        for line in wrap(text, self.width):
            self.lines.append(center(line, self.width).rstrip())

    def text(self, text: str) -> None:
        self.lines.extend(wrap(text, self.width))

    def pair(self, key: str, value: str | None) -> None:
        """``LABEL: value`` on one line when it fits, else the value right-aligned below."""
        if value is None or value == "":
            return
        label = self.label(key) + ":"
        if display_width(label) + 1 + display_width(value) <= self.width:
            self.lines.append(label + pad_left(value, self.width - display_width(label)))
            return
        self.lines.extend(wrap(label, self.width))
        for line in wrap(value, self.width):
            self.lines.append(pad_left(line, self.width))

    def render(self) -> str:
        for line in self.lines:  # the layout's own promise, kept by every block above
            assert display_width(line) <= self.width, line
        return "\n".join(self.lines) + "\n"


def _english_only(text: str) -> str:
    ascii_words = [w for w in text.split() if w.isascii()]
    return " ".join(ascii_words) or text


def _safe_card(card_masked: str | None) -> str | None:
    """The masked form even if a full number was passed by mistake."""
    if card_masked is None:
        return None
    digits = card_masked.replace(" ", "")
    if digits.isdigit() and len(digits) > 10:
        return mask_pan(digits)
    return card_masked


def _host_datetime(
    host_date: str | None, host_time: str | None, year: int | None, now: datetime | None
) -> str | None:
    """``YYYY/MM/DD hh:mm:ss`` from fields 13/12. The year is not on the wire: the current
    year in Asia/Shanghai, or the previous one for a date later than tomorrow (a slip
    reprinted just after New Year)."""
    if not host_date or len(host_date) != 4:
        return None
    month, day = int(host_date[:2]), int(host_date[2:])
    if year is None:
        today = (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI)
        year = today.year
        if (month, day) > (today.month, today.day + 1):
            year -= 1
    text = f"{year:04d}/{month:02d}/{day:02d}"
    if host_time and len(host_time) == 6:
        text += f" {host_time[:2]}:{host_time[2:4]}:{host_time[4:]}"
    return text


def _money(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"RMB {sign}¥{format_yuan(abs(fen))}"


def _merchant_block(
    slip: _Slip, merchant_name: str, mid: str, tid: str, operator: str | None
) -> None:
    slip.pair("merchant_name", merchant_name)
    slip.pair("mid", mid)
    slip.pair("tid", tid)
    slip.pair("operator", operator)


# --- Sales slip --------------------------------------------------------------------------------
def render_receipt(
    result: Result,
    *,
    merchant_name: str,
    mid: str,
    tid: str,
    kind: str,
    card_masked: str | None,
    operator: str = "01",
    copy: str = "商户存根 MERCHANT COPY",
    language: Language = "zh",
    width: int = 32,
    year: int | None = None,
    now: datetime | None = None,
) -> str:
    """The 签购单 of one transaction (``result``), ``width`` columns wide."""
    slip = _Slip(width, language)
    names = KIND_NAMES.get(kind, (kind, kind.upper()))
    slip.centered("银联POS签购单" if language == "zh" else "UNIONPAY POS")
    slip.centered("POS SALES SLIP")
    slip.rule("=")
    slip.centered(copy if language == "zh" else _english_only(copy))
    slip.rule()
    _merchant_block(slip, merchant_name, mid, tid, operator)
    slip.rule()
    qr = kind in QR_KINDS
    if qr:
        wallet = result.wallet or (result.original.wallet if result.original else None)
        if wallet:
            slip.pair("wallet", slip.words(WALLET_NAMES.get(wallet, (wallet, wallet))))
        voucher = result.qr_voucher or (result.original.qr_voucher if result.original else None)
        slip.pair("qr_voucher", voucher)
    else:
        slip.pair("issuer", result.issuer_code)
        slip.pair("acquirer", result.acquirer_code)
        slip.pair("card", _safe_card(card_masked))
    slip.pair("trans_type", slip.words(names))
    if not qr and card_masked:
        slip.pair("expiry", "**/**")
    slip.pair("batch", result.batch)
    slip.pair("voucher", result.stan)
    slip.pair("auth", result.auth_code)
    slip.pair("rrn", result.rrn)
    slip.pair("datetime", _host_datetime(result.host_date, result.host_time, year, now))
    slip.rule()
    if kind == Kind.BALANCE:
        if result.balance_fen is not None:
            slip.pair("balance", _money(result.balance_fen))
    elif result.amount_fen is not None:
        fen = -result.amount_fen if kind in NEGATIVE_KINDS else result.amount_fen
        slip.pair("amount", _money(fen))
    slip.rule()
    references = list(_references(slip, result))
    if references:
        slip.text(slip.label("reference") + ":")
        for line in references:
            slip.text(line)
        slip.rule()
    if not qr and kind != Kind.BALANCE:
        slip.text(slip.label("signature") + ":")
        slip.lines.extend(["", ""])
        slip.rule("_")
        if language == "zh":
            slip.text(STATEMENT[0])
        slip.text(STATEMENT[1])
    return slip.render()


def _references(slip: _Slip, result: Result) -> Iterable[str]:
    original = result.original
    if original is not None:
        yield f"{slip.label('orig_voucher')}:{original.stan}"
        if original.rrn:
            yield f"{slip.label('orig_rrn')}:{original.rrn}"
        if original.auth_code and result.kind in (Kind.PREAUTH_CANCEL, Kind.COMPLETION):
            yield f"{slip.label('orig_auth')}:{original.auth_code}"
    if result.slip_text:
        yield result.slip_text


# --- Settlement slip ---------------------------------------------------------------------------
def render_settlement(
    report: SettlementReport,
    *,
    merchant_name: str,
    mid: str,
    tid: str,
    operator: str = "01",
    language: Language = "zh",
    width: int = 32,
    now: datetime | None = None,
) -> str:
    """The 结算总计单: debit and credit counts and totals, and whether the host agreed."""
    slip = _Slip(width, language)
    slip.centered(slip.words(_LABELS["settle_title"]))
    slip.rule("=")
    _merchant_block(slip, merchant_name, mid, tid, operator)
    slip.pair("batch", report.batch)
    moment = (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI)
    slip.pair("datetime", moment.strftime("%Y/%m/%d %H:%M:%S"))
    slip.rule()
    type_width = width - 5 - 16
    header = (
        pad_right(slip.label("type") if language == "en" else "类型", type_width)
        + pad_left("笔数" if language == "zh" else "COUNT", 5)
        + pad_left("金额" if language == "zh" else "AMOUNT", 16)
    )
    slip.lines.append(header)
    rows = (
        ("debit", report.totals.debit_count, report.totals.debit_fen),
        ("credit", report.totals.credit_count, report.totals.credit_fen),
    )
    for key, count, fen in rows:
        chinese, english = _LABELS[key]
        name = chinese if language == "zh" else english
        slip.lines.append(
            pad_right(name, type_width) + pad_left(str(count), 5) + pad_left(format_yuan(fen), 16)
        )
    slip.rule()
    verdict = {"1": "balanced", "2": "unbalanced"}.get(report.result, "settle_error")
    slip.centered(slip.words(_LABELS[verdict]))
    if report.uploaded:
        slip.pair("uploaded", str(report.uploaded))
    slip.centered(slip.words(_LABELS["batch_closed" if report.closed else "batch_open"]))
    return slip.render()
