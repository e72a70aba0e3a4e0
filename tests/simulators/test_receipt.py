"""Slips: fixed width in display columns, masked card numbers, both languages."""

from __future__ import annotations

from datetime import datetime

import pytest

from poshub.core.clock import SHANGHAI
from poshub.gateway.fields import Totals
from poshub.simulators.receipt import (
    display_width,
    render_receipt,
    render_settlement,
    wrap,
)
from poshub.simulators.terminal import JournalEntry, Result, SettlementReport

PAN = "6225880123456783"
MASKED = "622588******6783"
MERCHANT = "合肥市蜀山区示范便利店有限公司"
MID, TID = "898340154110001", "10000001"


def sale_result(kind: str = "sale", **overrides: object) -> Result:
    values: dict[str, object] = {
        "kind": kind,
        "response_code": "00",
        "stan": "000123",
        "batch": "000001",
        "amount_fen": 1234,
        "rrn": "101530000001",
        "auth_code": "A00001",
        "host_date": "0601",
        "host_time": "101530",
        "card_masked": MASKED,
        "slip_text": "中国银联",
    }
    values.update(overrides)
    return Result(**values)  # type: ignore[arg-type]


def slip(kind: str = "sale", *, width: int = 32, language: str = "zh", **kwargs: object) -> str:
    result = sale_result(kind, **kwargs)
    return render_receipt(
        result,
        merchant_name=MERCHANT,
        mid=MID,
        tid=TID,
        kind=kind,
        card_masked=result.card_masked,
        language=language,  # type: ignore[arg-type]
        width=width,
        year=2025,
    )


def test_cjk_characters_take_two_columns() -> None:
    assert display_width("银联POS") == 7
    assert display_width("¥12.34") == 6
    assert all(display_width(line) <= 10 for line in wrap(MERCHANT, 10))
    assert "".join(wrap(MERCHANT, 10)) == MERCHANT


@pytest.mark.parametrize("width", [32, 42])
@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize(
    "kind",
    ["sale", "void", "refund", "preauth", "preauth_cancel", "completion", "balance", "qr_sale"],
)
def test_every_line_fits_the_paper(width: int, language: str, kind: str) -> None:
    text = slip(kind, width=width, language=language, balance_fen=50000)
    lines = text.splitlines()
    assert all(display_width(line) <= width for line in lines)
    assert max(display_width(line) for line in lines) == width  # the rules span the paper


def test_chinese_slip_has_the_bilingual_labels_of_a_real_one() -> None:
    text = slip()
    for label in (
        "银联POS签购单",
        "POS SALES SLIP",
        "商户存根 MERCHANT COPY",
        "商户名称 MERCHANT NAME",
        "商户编号 MERCHANT NO.",
        "终端编号 TERMINAL NO.:  10000001",
        "操作员号 OPERATOR NO.",
        "卡号 CARD NO.",
        "交易类型 TRANS TYPE",
        "消费 SALE",
        "有效期 EXP DATE:           **/**",
        "批次号 BATCH NO.:         000001",
        "凭证号 VOUCHER NO.:       000123",
        "授权码 AUTH NO.:          A00001",
        "参考号 REFER NO.:   101530000001",
        "2025/06/01 10:15:30",
        "金额 AMOUNT:          RMB ¥12.34",
        "持卡人签名 CARDHOLDER SIGNATURE",
        "I ACKNOWLEDGE SATISFACTORY",
    ):
        assert label in text, label
    assert "本人确认以上交易" in text
    assert MERCHANT in text
    assert MID in text


def test_english_slip_has_no_chinese_labels() -> None:
    text = slip(language="en", width=42)
    assert "POS SALES SLIP" in text
    assert "MERCHANT COPY" in text
    assert "CARD NO.:" in text
    assert "TRANS TYPE:" in text
    assert "SALE" in text
    for chinese in ("商户", "卡号", "交易类型", "本人确认"):
        assert chinese not in text


def test_the_card_number_is_masked_even_if_passed_in_full() -> None:
    result = sale_result()
    text = render_receipt(
        result, merchant_name="x", mid=MID, tid=TID, kind="sale", card_masked=PAN, year=2025
    )
    assert PAN not in text
    assert MASKED in text


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("void", "消费撤销 VOID"),
        ("refund", "退货 REFUND"),
        ("preauth_cancel", "预授权撤销"),
        ("completion_void", "预授权完成撤销"),
        ("qr_refund", "扫码退货 QR REFUND"),
    ],
)
def test_money_going_back_is_negative(kind: str, name: str) -> None:
    text = slip(kind, width=42)
    assert "RMB -¥12.34" in text
    assert name in text


@pytest.mark.parametrize(
    ("kind", "name"),
    [("preauth", "预授权 AUTH"), ("completion", "预授权完成请求 AUTH COMPLETE")],
)
def test_money_taken_is_positive(kind: str, name: str) -> None:
    text = slip(kind, width=42)
    assert "RMB ¥12.34" in text
    assert "-¥" not in text
    assert name in text


def test_void_slip_references_the_original() -> None:
    original = JournalEntry(kind="sale", stan="000100", batch="000001", amount_fen=1234, rrn="R1")
    text = slip("void", original=original)
    assert "原凭证号 ORIG VOUCHER:000100" in text
    assert "原参考号 ORIG REFER NO.:R1" in text


def test_qr_slip_shows_voucher_and_wallet_and_no_signature() -> None:
    text = slip(
        "qr_sale", card_masked=None, qr_voucher="V0000000000000000001", wallet="WXP", width=42
    )
    assert "扫码消费 QR SALE" in text
    assert "付款凭证号 PAYMENT VOUCHER" in text
    assert "V0000000000000000001" in text
    assert "微信支付 WECHAT PAY" in text
    assert "CARD NO." not in text
    assert "SIGNATURE" not in text


def test_balance_slip_shows_the_balance() -> None:
    text = slip("balance", amount_fen=None, balance_fen=12345)
    assert "余额 BALANCE:" in text
    assert "RMB ¥123.45" in text
    assert "SIGNATURE" not in text


def test_unknown_width_is_refused() -> None:
    with pytest.raises(ValueError, match="32 or 42"):
        slip(width=40)


def test_settlement_slip() -> None:
    report = SettlementReport(
        batch="000001",
        totals=Totals(300000, 2, 30000, 1),
        result="2",
        uploaded=3,
        end_code="00",
        closed=True,
        next_batch="000002",
    )
    moment = datetime(2025, 6, 1, 22, 0, tzinfo=SHANGHAI)
    for width in (32, 42):
        text = render_settlement(
            report, merchant_name=MERCHANT, mid=MID, tid=TID, width=width, now=moment
        )
        assert all(display_width(line) <= width for line in text.splitlines())
        assert "结算总计单 SETTLEMENT" in text
        assert "对账不平 NOT BALANCED" in text
        assert "2025/06/01 22:00:00" in text
        debit = next(line for line in text.splitlines() if line.startswith("内卡借记"))
        assert debit.split()[1:] == ["2", "3000.00"]
    balanced = SettlementReport(
        batch="000001",
        totals=Totals(0, 0, 0, 0),
        result="1",
        uploaded=0,
        end_code="00",
        closed=True,
        next_batch="000002",
    )
    text = render_settlement(
        balanced, merchant_name="Demo", mid=MID, tid=TID, language="en", now=moment
    )
    assert "BALANCED" in text
    assert "NOT BALANCED" not in text
    assert "对账" not in text
