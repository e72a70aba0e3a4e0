"""The network simulator, run in-process on an ephemeral port and driven through a real
``TcpNetworkLink`` (docs/test-cards.md is the behaviour under test)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from poshub.core import limits
from poshub.core.settings import Settings
from poshub.gateway import crypto, fields
from poshub.gateway.link import TcpNetworkLink
from poshub.simulators import clearing, issuer, network
from poshub.simulators.issuer import CardKind, Status
from poshub.simulators.network import NetworkSimulator
from tests.simulators.support import (
    CARD_OPENING_FEN,
    CREDIT_PAN,
    DEBIT_PAN,
    DEBIT_PAN_19,
    LUHN_INVALID_PAN,
    NOW,
    OTHER_MID,
    OTHER_TID,
    QR_ALIPAY,
    QR_UNIONPAY,
    QR_WECHAT,
    SHANGHAI,
    WALLET_OPENING_FEN,
    ZPK,
    Numbers,
    balance,
    linked,
    preauth,
    qr_sale,
    reversal,
    running,
    sale,
    send,
    settings_for,
)

Scenario = Callable[[NetworkSimulator, TcpNetworkLink, Numbers], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, **kw: Any) -> None:
    async def main() -> None:
        async with running(tmp_path, **kw) as (simulator, link):
            await scenario(simulator, link, Numbers())

    asyncio.run(main())


# --- cards, PINs, amounts ---------------------------------------------------------------
def test_a_sale_is_approved_and_debits_the_card(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        request = sale(numbers, DEBIT_PAN, 12_34)
        response = await send(link, request)
        assert response["t"] == "0210"
        assert response["39"] == "00"
        assert re.fullmatch(r"[0-9A-Z]{6}", response["38"])
        assert (response["11"], response["37"]) == (request["11"], request["37"])
        assert response["15"] == "0520"
        assert (response["12"], response["13"]) == ("103000", "0520")
        assert response["63"] == "CUP"
        assert "2" not in response  # the PAN does not travel back
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN - 12_34
        assert sim.balance_fen(DEBIT_PAN_19) == CARD_OPENING_FEN  # other cards untouched

    run(tmp_path, scenario)


@pytest.mark.parametrize(("amount_fen", "code"), [(100_51, "51"), (100_05, "05"), (100_61, "61"), (100_96, "96")])  # fmt: skip
def test_amount_endings_decline_with_their_code(tmp_path: Path, amount_fen: int, code: str) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        response = await send(link, sale(numbers, DEBIT_PAN, amount_fen))
        assert response["39"] == code
        assert "38" not in response
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN
        assert sim.authorizations()[-1].status is Status.DECLINED

    run(tmp_path, scenario)


def test_amount_ending_91_is_applied_never_answered_and_reversed_exactly_once(
    tmp_path: Path,
) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        request = sale(numbers, DEBIT_PAN, 500_91)
        assert await link.request(request, timeout=0.2) is None
        assert link.counters.timed_out == 1
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN - 500_91  # applied
        assert sim.counters.unanswered == 1

        first = await send(link, reversal(request))
        second = await send(link, reversal(request))
        assert (first["t"], first["39"], second["39"]) == ("0410", "00", "00")
        assert (first["11"], first["37"]) == (request["11"], request["37"])
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN  # restored once, not twice
        counters = sim.counters
        assert (counters.reversals_received, counters.reversals_applied) == (2, 1)
        record = sim.authorization(request["37"])
        assert record is not None
        assert record.status is Status.REVERSED

    run(tmp_path, scenario)


def test_a_reversal_of_an_unknown_rrn_is_approved_and_stops_a_late_original(
    tmp_path: Path,
) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        lost = sale(numbers, DEBIT_PAN, 200_00)
        assert (await send(link, reversal(lost)))["39"] == "00"
        assert sim.counters.reversals_applied == 0
        late = await send(link, lost)  # the original turns up after its reversal
        assert late["39"] == "94"
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN

    run(tmp_path, scenario)


def test_a_reversal_with_another_amount_is_refused_64(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        request = sale(numbers, DEBIT_PAN, 300_00)
        await send(link, request)
        assert (await send(link, reversal(request, amount_fen=299_00)))["39"] == "64"
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN - 300_00

    run(tmp_path, scenario)


def test_pin_right_wrong_and_malformed(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        assert (await send(link, sale(numbers, DEBIT_PAN, 10_00, pin="123456")))["39"] == "00"
        assert (await send(link, sale(numbers, DEBIT_PAN, 10_00, pin="654321")))["39"] == "55"
        malformed = sale(numbers, DEBIT_PAN, 10_00)
        malformed["52"] = ZPK.encrypt_block(bytes.fromhex("FFFFFFFFFFFFFFFF")).hex().upper()
        assert (await send(link, malformed))["39"] == "99"
        # A block built for another PAN does not decode to the PIN under this one.
        other = sale(numbers, DEBIT_PAN, 10_00)
        other["52"] = ZPK.encrypt_block(crypto.clear_pin_block("123456", CREDIT_PAN)).hex()
        assert (await send(link, other))["39"] in ("55", "99")
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN - 10_00

    run(tmp_path, scenario)


def test_expiry_before_this_month_is_54(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        # The clock says 2026-05-20 in Shanghai.
        assert (await send(link, sale(numbers, DEBIT_PAN, 10_00, expiry="2604")))["39"] == "54"
        assert (await send(link, sale(numbers, DEBIT_PAN, 10_00, expiry="2605")))["39"] == "00"
        assert (await send(link, sale(numbers, DEBIT_PAN, 10_00, expiry="2613")))["39"] == "54"
        assert (await send(link, sale(numbers, DEBIT_PAN, 10_00, expiry=None)))["39"] == "00"

    run(tmp_path, scenario)


def test_a_luhn_invalid_pan_is_14_and_opens_no_account(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        assert (await send(link, sale(numbers, LUHN_INVALID_PAN, 10_00)))["39"] == "14"
        record = sim.authorizations()[-1]
        assert (record.response_code, record.account, record.masked) == (
            "14",
            "",
            "621226******0002",
        )

    run(tmp_path, scenario)


def test_insufficient_funds_and_spending_everything(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        too_much = sale(numbers, DEBIT_PAN, CARD_OPENING_FEN + 100)
        assert (await send(link, too_much))["39"] == "51"
        assert (await send(link, sale(numbers, DEBIT_PAN, CARD_OPENING_FEN)))["39"] == "00"
        assert sim.balance_fen(DEBIT_PAN) == 0
        assert (await send(link, sale(numbers, DEBIT_PAN, 1_00)))["39"] == "51"

    run(tmp_path, scenario)


def test_balance_inquiry_answers_the_available_amount_in_54(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        response = await send(link, balance(numbers, DEBIT_PAN, pin="123456"))
        assert response["39"] == "00"
        assert response["54"] == "1002156C000010000000"
        assert fields.parse_balance54(response["54"]) == CARD_OPENING_FEN
        await send(link, preauth(numbers, DEBIT_PAN, 1_000_00))
        held = await send(link, balance(numbers, DEBIT_PAN))
        assert fields.parse_balance54(held["54"]) == CARD_OPENING_FEN - 1_000_00
        assert (await send(link, balance(numbers, DEBIT_PAN, pin="000000")))["39"] == "55"

    run(tmp_path, scenario)


def test_card_kind_follows_the_credit_bins(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        await send(link, sale(numbers, CREDIT_PAN, 10_00))
        await send(link, sale(numbers, DEBIT_PAN_19, 10_00))
        kinds = [record.card_kind for record in sim.authorizations()]
        assert kinds == [CardKind.CREDIT, CardKind.DEBIT]
        assert sim.balance_fen(DEBIT_PAN_19) == CARD_OPENING_FEN - 10_00

    run(tmp_path, scenario)


def test_a_resend_gets_the_first_answer_and_changes_nothing(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        request = sale(numbers, DEBIT_PAN, 50_00)
        first = await send(link, request)
        again = await send(link, request)
        assert (again["39"], again["38"]) == (first["39"], first["38"])
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN - 50_00
        assert sim.counters.repeats == 1
        reused = dict(request, **{"11": "999999"})  # same RRN, another message
        assert (await send(link, reused))["39"] == "94"

    run(tmp_path, scenario)


# --- voids, refunds, pre-auths ------------------------------------------------------------
def test_void_credits_back_once_and_only_on_the_same_terminal(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        original = sale(numbers, DEBIT_PAN, 100_00)
        await send(link, original)
        assert (await send(link, linked(numbers, "void", original, tid=OTHER_TID)))["39"] == "25"
        assert (await send(link, linked(numbers, "void", original, 99_00)))["39"] == "64"
        assert (await send(link, linked(numbers, "void", original, pan=CREDIT_PAN)))["39"] == "22"
        void = linked(numbers, "void", original)
        approved = await send(link, void)
        assert approved["39"] == "00"
        assert len(approved["38"]) == 6
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN
        assert (await send(link, linked(numbers, "void", original)))["39"] == "12"
        unknown = dict(original, **{"37": "999999999999"})
        assert (await send(link, linked(numbers, "void", unknown)))["39"] == "25"
        # Reversing the void takes the money again and makes the sale voidable again.
        assert (await send(link, reversal(void)))["39"] == "00"
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN - 100_00
        assert (await send(link, linked(numbers, "void", original)))["39"] == "00"
        # A voided sale cannot be reversed behind its void's back.
        assert (await send(link, reversal(original)))["39"] == "12"
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN

    run(tmp_path, scenario)


def test_refunds_add_up_to_the_original_at_most(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        original = sale(numbers, CREDIT_PAN, 100_00)
        await send(link, original)
        first = linked(numbers, "refund", original, 60_00, tid=OTHER_TID)  # any terminal
        response = await send(link, first)
        assert (response["t"], response["39"]) == ("0230", "00")
        assert (await send(link, linked(numbers, "refund", original, 40_01)))["39"] == "13"
        assert (await send(link, linked(numbers, "refund", original, 40_00)))["39"] == "00"
        assert sim.balance_fen(CREDIT_PAN) == CARD_OPENING_FEN
        assert (await send(link, linked(numbers, "refund", original, 1_00, mid=OTHER_MID)))[
            "39"
        ] == "25"
        # A refunded sale can be neither voided nor reversed; the refund can be reversed.
        assert (await send(link, linked(numbers, "void", original)))["39"] == "12"
        assert (await send(link, reversal(first)))["39"] == "00"
        assert sim.balance_fen(CREDIT_PAN) == CARD_OPENING_FEN - 60_00
        assert (await send(link, linked(numbers, "refund", original, 60_00)))["39"] == "00"

        voided = sale(numbers, CREDIT_PAN, 30_00)
        await send(link, voided)
        await send(link, linked(numbers, "void", voided))
        assert (await send(link, linked(numbers, "refund", voided, 1_00)))["39"] == "12"

    run(tmp_path, scenario)


def test_preauth_hold_cancel_and_completion_up_to_115_percent(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        hold = preauth(numbers, DEBIT_PAN, 100_00)
        response = await send(link, hold)
        assert (response["t"], response["39"]) == ("0110", "00")
        assert (sim.balance_fen(DEBIT_PAN), sim.hold_fen(DEBIT_PAN)) == (CARD_OPENING_FEN, 100_00)
        assert sim.available_fen(DEBIT_PAN) == CARD_OPENING_FEN - 100_00

        assert (await send(link, linked(numbers, "preauth_cancel", hold, 90_00)))["39"] == "64"
        assert (await send(link, linked(numbers, "preauth_cancel", hold)))["39"] == "00"
        assert sim.hold_fen(DEBIT_PAN) == 0
        assert (await send(link, linked(numbers, "completion", hold)))["39"] == "12"

        second = preauth(numbers, DEBIT_PAN, 100_00)
        await send(link, second)
        assert (await send(link, linked(numbers, "completion", second, 115_01)))["39"] == "13"
        completion = linked(numbers, "completion", second, 115_00)
        assert (await send(link, completion))["39"] == "00"
        assert sim.hold_fen(DEBIT_PAN) == 0
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN - 115_00
        assert (await send(link, linked(numbers, "completion", second, 10_00)))["39"] == "12"

        assert (await send(link, linked(numbers, "completion_void", completion)))["39"] == "00"
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN
        assert (await send(link, linked(numbers, "completion_void", completion)))["39"] == "12"

        third = preauth(numbers, DEBIT_PAN, 200_00)
        await send(link, third)
        advice = linked(numbers, "completion_advice", third, 150_00)
        response = await send(link, advice)
        assert (response["t"], response["39"]) == ("0230", "00")
        assert (sim.balance_fen(DEBIT_PAN), sim.hold_fen(DEBIT_PAN)) == (
            CARD_OPENING_FEN - 150_00,
            0,
        )

    run(tmp_path, scenario)


def test_reversals_of_preauth_cancel_and_completion_restore_the_hold(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        hold = preauth(numbers, CREDIT_PAN, 80_00)
        await send(link, hold)
        cancel = linked(numbers, "preauth_cancel", hold)
        await send(link, cancel)
        assert (await send(link, reversal(cancel)))["39"] == "00"
        assert sim.hold_fen(CREDIT_PAN) == 80_00
        completion = linked(numbers, "completion", hold, 90_00)
        await send(link, completion)
        assert (await send(link, reversal(hold)))["39"] == "12"  # completed: reverse that first
        assert (await send(link, reversal(completion)))["39"] == "00"
        assert (sim.balance_fen(CREDIT_PAN), sim.hold_fen(CREDIT_PAN)) == (CARD_OPENING_FEN, 80_00)
        assert (await send(link, reversal(hold)))["39"] == "00"
        assert sim.hold_fen(CREDIT_PAN) == 0

        short = preauth(numbers, DEBIT_PAN_19, CARD_OPENING_FEN)
        await send(link, short)
        assert (await send(link, sale(numbers, DEBIT_PAN_19, 1_00)))["39"] == "51"  # all held
        assert (await send(link, linked(numbers, "completion", short, CARD_OPENING_FEN + 1_00)))[
            "39"
        ] == "51"

    run(tmp_path, scenario)


# --- QR payment codes ------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "wallet"), [(QR_UNIONPAY, "CUP"), (QR_WECHAT, "WXP"), (QR_ALIPAY, "ALP")])  # fmt: skip
def test_a_qr_sale_debits_the_wallet_behind_the_code(
    tmp_path: Path, code: str, wallet: str
) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        first = qr_sale(numbers, code, 88_00)
        response = await send(link, first)
        assert (response["39"], response["63"]) == ("00", wallet)
        voucher = fields.parse_tlv(response["59"])["A4"]
        assert voucher.startswith(wallet)
        assert len(voucher) <= 64
        second = await send(link, qr_sale(numbers, code, 12_00))
        assert fields.parse_tlv(second["59"])["A4"] != voucher
        assert sim.wallet_balance_fen(code) == WALLET_OPENING_FEN - 100_00
        refund = linked(numbers, "refund", first, 8_00, voucher=voucher)
        assert (await send(link, refund))["39"] == "00"
        assert sim.wallet_balance_fen(code) == WALLET_OPENING_FEN - 92_00
        wrong_voucher = linked(numbers, "refund", first, 1_00, voucher=wallet + "0" * 20)
        assert (await send(link, wrong_voucher))["39"] == "22"
        record = sim.authorization(first["37"])
        assert record is not None
        assert (record.card_kind, record.wallet) == (CardKind.WALLET, wallet)

    run(tmp_path, scenario)


@pytest.mark.parametrize(
    "code",
    [
        "6212345678901234",  # 16 digits starting 62: not a UnionPay code (19)
        "164567890123456789",  # 18 digits starting 16
        "31123456789012345678",  # starting 31
        "2512345678901",  # too short for Alipay
        "13456789012345678X",
    ],
)
def test_an_invalid_payment_code_is_14(tmp_path: Path, code: str) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        response = await send(link, qr_sale(numbers, code, 10_00))
        assert response["39"] == "14"
        assert "59" not in response

    run(tmp_path, scenario)


def test_a_qr_sale_that_is_voided_comes_back_to_the_wallet(tmp_path: Path) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        original = qr_sale(numbers, QR_WECHAT, WALLET_OPENING_FEN)
        voucher = fields.parse_tlv((await send(link, original))["59"])["A4"]
        assert (await send(link, qr_sale(numbers, QR_WECHAT, 1_00)))["39"] == "51"
        void = await send(link, linked(numbers, "void", original, voucher=voucher))
        assert (void["39"], fields.parse_tlv(void["59"])["A4"]) == ("00", voucher)
        assert sim.wallet_balance_fen(QR_WECHAT) == WALLET_OPENING_FEN

    run(tmp_path, scenario)


# --- clearing ------------------------------------------------------------------------------
def test_fee_arithmetic() -> None:
    fee = clearing.interchange_fee_fen
    assert fee(CardKind.DEBIT, 3000) == 11  # 10.5 fen rounds half-up (not to even)
    assert fee(CardKind.DEBIT, 1000) == 4  # 3.5
    assert fee(CardKind.DEBIT, 371_428) == 1300  # 1299.998 → 1300, at the cap
    assert fee(CardKind.DEBIT, 400_000) == 1300  # 1400 capped at ¥13
    assert fee(CardKind.CREDIT, 1000) == 5  # 4.5
    assert fee(CardKind.CREDIT, 1_000_000) == 4500  # uncapped
    assert fee(CardKind.WALLET, 400_000) == 1300  # wallets as debit cards
    assert clearing.network_fee_fen(20_000) == 7  # 6.5
    assert clearing.network_fee_fen(1_000_000) == 325
    assert clearing.network_fee_fen(2_000_000) == 325  # capped at ¥3.25
    assert clearing.network_fee_fen(1) == 0


def test_the_clearing_file_lists_money_moved_with_fees(tmp_path: Path) -> None:
    paths: dict[str, Path] = {}

    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        big = sale(numbers, DEBIT_PAN, 4_000_00)  # interchange capped at 1300
        await send(link, big)
        await send(link, sale(numbers, CREDIT_PAN, 10_00))  # 4.5 → 5
        await send(link, sale(numbers, DEBIT_PAN, 30_00))  # 10.5 → 11
        await send(link, sale(numbers, DEBIT_PAN_19, 20_000_00))  # network fee capped
        small = sale(numbers, DEBIT_PAN, 200_00)  # network fee 6.5 → 7
        await send(link, small)
        await send(link, qr_sale(numbers, QR_ALIPAY, 100_00))
        await send(link, linked(numbers, "void", small))
        await send(link, linked(numbers, "refund", big, 1_000_00))
        reversed_sale = sale(numbers, DEBIT_PAN, 77_00)
        await send(link, reversed_sale)
        await send(link, reversal(reversed_sale))
        await send(link, sale(numbers, DEBIT_PAN, 66_05))  # declined
        await send(link, balance(numbers, DEBIT_PAN))
        hold = preauth(numbers, CREDIT_PAN, 500_00)
        await send(link, hold)
        await send(link, linked(numbers, "completion", hold, 500_00))
        summary = await sim.write_clearing_file(NOW.date())
        paths["file"] = summary.path
        assert summary.path == tmp_path / "clearing" / "CUP-20260520.csv"
        other_day = await sim.write_clearing_file(date(2026, 5, 21), tmp_path / "empty.csv")
        assert other_day.line_count == 0
        paths["empty"] = other_day.path

    run(tmp_path, scenario)
    rows = list(csv.reader(paths["file"].read_text().splitlines()))
    assert tuple(rows[0]) == clearing.HEADER
    lines = [dict(zip(clearing.HEADER, row, strict=True)) for row in rows[1:-1]]
    assert [(line["transaction"], line["amount_fen"], line["direction"]) for line in lines] == [
        ("sale", "400000", "debit"),
        ("sale", "1000", "debit"),
        ("sale", "3000", "debit"),
        ("sale", "2000000", "debit"),
        ("sale", "20000", "debit"),
        ("qr_sale", "10000", "debit"),
        ("void", "20000", "credit"),
        ("refund", "100000", "credit"),
        ("completion", "50000", "debit"),
    ]
    fees = [
        (
            line["interchange_fee_fen"],
            line["network_fee_acquirer_fen"],
            line["network_fee_issuer_fen"],
        )
        for line in lines
    ]
    assert fees == [
        ("1300", "130", "130"),
        ("5", "0", "0"),  # 0.325 fen rounds to 0
        ("11", "1", "1"),
        ("1300", "325", "325"),
        ("70", "7", "7"),
        ("35", "3", "3"),  # the Alipay wallet, charged like a debit card
        ("70", "7", "7"),
        ("350", "33", "33"),  # 32.5 → 33
        ("225", "16", "16"),  # credit 0.45 % of ¥500; 16.25 → 16
    ]
    first = lines[0]
    assert (first["business_date"], first["message_type"], first["card_kind"]) == (
        "2026-05-20",
        "0200",
        "debit",
    )
    assert (first["tid"], first["mid"], first["masked_pan"]) == (
        "10000001",
        "898340154110001",
        "621226******0001",
    )
    assert lines[5]["card_kind"] == "wallet"
    assert lines[1]["card_kind"] == "credit"
    assert rows[-1] == [
        "TRAILER",
        "2026-05-20",
        "9",
        "7",
        str(400000 + 1000 + 3000 + 2000000 + 20000 + 10000 + 50000),
        "2",
        "120000",
        str(1300 + 5 + 11 + 1300 + 70 + 35 + 225 - 70 - 350),
        str(130 + 0 + 1 + 325 + 7 + 3 + 16 - 7 - 33),
        str(130 + 0 + 1 + 325 + 7 + 3 + 16 - 7 - 33),
    ]
    assert not list(paths["file"].parent.glob(".*.tmp"))  # written atomically
    empty = list(csv.reader(paths["empty"].read_text().splitlines()))
    assert len(empty) == 2
    assert empty[1][:3] == ["TRAILER", "2026-05-21", "0"]


# --- state ------------------------------------------------------------------------------------
def test_state_survives_a_restart(tmp_path: Path) -> None:
    numbers = Numbers()
    original = sale(numbers, DEBIT_PAN, 321_00)

    async def first(sim: NetworkSimulator, link: TcpNetworkLink, _: Numbers) -> None:
        await send(link, original)
        await send(link, preauth(numbers, DEBIT_PAN, 50_00))
        await send(link, qr_sale(numbers, QR_UNIONPAY, 10_00))

    async def second(sim: NetworkSimulator, link: TcpNetworkLink, _: Numbers) -> None:
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN - 321_00
        assert sim.hold_fen(DEBIT_PAN) == 50_00
        assert sim.wallet_balance_fen(QR_UNIONPAY) == WALLET_OPENING_FEN - 10_00
        assert len(sim.authorizations()) == 3
        assert (await send(link, linked(numbers, "void", original)))["39"] == "00"
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN
        # Sequence numbers go on from where the last run stopped.
        assert [r.seq for r in sim.authorizations()] == [1, 2, 3, 4]

    run(tmp_path, first)
    run(tmp_path, second)


def test_old_records_leave_memory_and_are_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "NETWORK_SIM_RECORDS_IN_MEMORY_MAX", 3)
    monkeypatch.setattr(limits, "NETWORK_SIM_ACCOUNTS_IN_MEMORY_MAX", 1)

    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        oldest = sale(numbers, DEBIT_PAN, 10_00)
        await send(link, oldest)
        for _ in range(5):
            await send(link, sale(numbers, CREDIT_PAN, 1_00))
        await sim.flush()
        assert len(sim.authorizations()) == 3
        assert sim.authorization(oldest["37"]) is not None  # read back from SQLite
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN - 10_00
        assert (await send(link, linked(numbers, "void", oldest)))["39"] == "00"
        assert sim.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN
        assert (await send(link, reversal(oldest)))["39"] == "12"

    run(tmp_path, scenario)


def test_no_full_pan_in_the_database_the_clearing_file_or_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pans = [DEBIT_PAN, DEBIT_PAN_19, CREDIT_PAN, LUHN_INVALID_PAN]
    codes = [QR_UNIONPAY, QR_WECHAT, QR_ALIPAY]

    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        for pan in pans:
            request = sale(numbers, pan, 12_00, pin="123456")
            await send(link, request)
            await send(link, linked(numbers, "refund", request, 1_00))
            await send(link, sale(numbers, pan, 12_05, pin="111111"))
            await send(link, balance(numbers, pan))
            await send(link, preauth(numbers, pan, 10_00))
        for code in codes:
            await send(link, qr_sale(numbers, code, 3_00))
        await link.request(sale(numbers, DEBIT_PAN, 1_91), timeout=0.1)
        await sim.write_clearing_file(NOW.date())

    run(tmp_path, scenario)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "network-sim.db" for p in files)
    assert any(p.suffix == ".csv" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in pans + codes:
            assert secret.encode() not in data, f"{secret[:6]}… in {path.name}"
    for secret in pans + codes:
        assert secret not in caplog.text


def test_the_sql_column_lists_agree_with_the_records() -> None:
    names = [f.name for f in dataclasses.fields(issuer.Authorization)]
    assert list(network._AUTH_COLUMNS) == names
    selected = network._SELECT_AUTH.removeprefix("SELECT ").split(" FROM ")[0]
    assert [c.strip() for c in selected.split(",")] == names
    inserted = network._UPSERT_AUTH.split("(", 1)[1].split(")", 1)[0]
    assert [c.strip() for c in inserted.split(",")] == names
    assert network._UPSERT_AUTH.count("?") == len(names)
    account_names = [f.name for f in dataclasses.fields(issuer.Account)]
    assert list(network._ACCOUNT_COLUMNS) == account_names
    inserted = network._UPSERT_ACCOUNT.split("(", 1)[1].split(")", 1)[0]
    assert [c.strip() for c in inserted.split(",")] == account_names


def test_a_database_of_another_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "network-sim.db") as connection:
        connection.execute("PRAGMA user_version = 99")
    connection.close()

    async def main() -> None:
        simulator = NetworkSimulator(settings_for(tmp_path), port=0)
        with pytest.raises(network.StateError, match="delete the file"):
            await simulator.start()

    asyncio.run(main())


# --- pure rules --------------------------------------------------------------------------------
def test_rules() -> None:
    assert issuer.card_kind("6258001234567893") is CardKind.CREDIT
    assert issuer.card_kind("6288880000000005") is CardKind.CREDIT
    assert issuer.card_kind(DEBIT_PAN) is CardKind.DEBIT
    assert issuer.mask(DEBIT_PAN_19) == "621700*********0122"
    assert issuer.mask("1234567890") == "**********"
    today = datetime(2026, 1, 5, tzinfo=SHANGHAI).date()
    assert issuer.is_expired("2512", today)
    assert not issuer.is_expired("2601", today)
    assert issuer.is_expired("2600", today)
    assert issuer.wallet_of(QR_UNIONPAY) is issuer.Wallet.UNIONPAY
    assert issuer.wallet_of("104567890123456789") is issuer.Wallet.WECHAT
    assert issuer.wallet_of("3012345678901234") is issuer.Wallet.ALIPAY
    assert issuer.wallet_of("301234567890123456789012") is issuer.Wallet.ALIPAY
    assert issuer.wallet_of("3012345678901234567890123") is None
    codes = {issuer.new_auth_code() for _ in range(200)}
    assert len(codes) > 190
    assert all(re.fullmatch(r"[0-9A-Z]{6}", code) for code in codes)
    tokens = issuer.Tokenizer.from_zpk(ZPK)
    assert tokens.card(DEBIT_PAN) != tokens.wallet(DEBIT_PAN)
    assert DEBIT_PAN not in repr(tokens)


# --- the command line -----------------------------------------------------------------------------
def _parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poshub")
    sub = parser.add_subparsers(dest="command", required=True)

    def factory(args: argparse.Namespace, **overrides: object) -> Settings:
        values = {k: v for k, v in overrides.items() if v is not None}
        return settings.model_copy(update=values)

    network.add_cli(sub, factory)
    return parser


def test_cli_clearing_writes_the_file_of_a_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def scenario(sim: NetworkSimulator, link: TcpNetworkLink, numbers: Numbers) -> None:
        await send(link, sale(numbers, DEBIT_PAN, 25_00))

    run(tmp_path, scenario)
    parser = _parser(settings_for(tmp_path))
    args = parser.parse_args(["network-sim", "clearing", "--date", "2026-05-20"])
    assert args.func(args) == 0
    path = tmp_path / "clearing" / "CUP-20260520.csv"
    assert len(path.read_text().splitlines()) == 3
    assert "1 lines" in capsys.readouterr().out
    out = tmp_path / "elsewhere.csv"
    args = parser.parse_args(["network-sim", "clearing", "--date", "2026-05-20", "--out", str(out)])
    assert args.func(args) == 0
    assert out.read_text() == path.read_text()


def test_cli_clearing_without_a_database_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = _parser(settings_for(tmp_path))
    args = parser.parse_args(["network-sim", "clearing", "--date", "2026-05-20"])
    assert args.func(args) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["network-sim", "clearing", "--date", "20/05/2026"])


def test_cli_serve_takes_host_and_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []

    def fake_run(settings: Settings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(network, "run_network_simulator", fake_run)
    parser = _parser(settings_for(tmp_path))
    args = parser.parse_args(["network-sim", "--host", "127.0.0.2", "--port", "9999"])
    assert args.func(args) == 0
    assert (seen[0].network_host, seen[0].network_port) == ("127.0.0.2", 9999)
    args = parser.parse_args(["network-sim"])
    assert args.func(args) == 0
    assert seen[1].network_port == 8584


def test_run_network_simulator_reports_a_taken_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = settings_for(tmp_path).model_copy(update={"network_port": port})
        assert network.run_network_simulator(settings) == 1
    assert "cannot listen" in capsys.readouterr().err


def test_the_business_date_is_shanghai_time(tmp_path: Path) -> None:
    simulator = NetworkSimulator(settings_for(tmp_path), port=0)
    before = datetime.now(SHANGHAI).date()
    assert simulator.business_date() in (before, datetime.now(SHANGHAI).date())
