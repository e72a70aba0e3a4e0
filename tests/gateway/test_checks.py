"""Card, amount, currency and enablement checks; masking (spec §9, §11.4, §11.14)."""

from __future__ import annotations

import datetime as dt

import pytest
from stdnum import luhn

from poshub.gateway import checks, classify
from poshub.gateway.constants import Rc
from poshub.gateway.models import TxnKind
from poshub.terminals.parameters import DEFAULT_ENABLED, TRANSACTION_TYPES

PAN = "6225880123456783"  # Luhn-valid (spec §12 V2)
TODAY = dt.date(2026, 12, 4)


# --- Where the card comes from ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "pan", "expiry"),
    [
        ({"2": PAN, "14": "3012"}, PAN, "3012"),
        ({"35": PAN + "D2911101"}, PAN, "2911"),
        # Field 2 and 14 win over the track.
        ({"2": PAN, "35": "6225880123456791D2911101", "14": "3012"}, PAN, "3012"),
        ({"2": PAN, "35": PAN + "D2911101"}, PAN, "2911"),
        ({"35": "6225880123456783"}, None, None),
        ({"35": "62258801234D2911"}, None, "2911"),
        ({}, None, None),
        ({"59": "A3018134567890123456789"}, None, None),
    ],
)
def test_card_pan_and_expiry(message: dict[str, str], pan: str | None, expiry: str | None) -> None:
    assert checks.card_pan(message) == pan
    assert checks.card_expiry(message) == expiry


# --- check_card --------------------------------------------------------------------------------


def _luhn(prefix: str) -> str:
    return prefix + luhn.calc_check_digit(prefix)


@pytest.mark.parametrize(
    "pan",
    [PAN, "4111111111111111", _luhn("622588012345678901"), _luhn("62258801234")],
    ids=["16", "visa-test", "19", "12"],
)
def test_valid_card_numbers(pan: str) -> None:
    assert checks.check_card(pan, None, TODAY) is None
    assert checks.check_card(pan, "3012", TODAY) is None


@pytest.mark.parametrize(
    "pan",
    [
        None,
        "",
        "6225880123456784",  # Luhn fails
        "62258801234",  # 11 digits
        "62258801234567890127",  # 20 digits
        "622588012345678A",
        "6225 8801 2345 6783",
        "６２２５８８０１２３４５６７８３",  # full-width digits: digits to isdigit(), not a PAN
    ],
)
def test_invalid_card_numbers_are_14(pan: str | None) -> None:
    assert checks.check_card(pan, None, TODAY) is Rc.INVALID_CARD


@pytest.mark.parametrize(
    ("expiry", "code"),
    [
        ("2612", None),  # this month: valid through its last day
        ("2701", None),
        ("9912", None),
        ("2611", Rc.EXPIRED_CARD),
        ("2512", Rc.EXPIRED_CARD),
        ("0001", Rc.EXPIRED_CARD),
        ("2600", Rc.INVALID_CARD),
        ("2613", Rc.INVALID_CARD),
        ("2699", Rc.INVALID_CARD),
        ("261", Rc.INVALID_CARD),
        ("26121", Rc.INVALID_CARD),
        ("26A2", Rc.INVALID_CARD),
        ("", Rc.INVALID_CARD),
        ("２６１２", Rc.INVALID_CARD),
    ],
)
def test_expiry(expiry: str, code: Rc | None) -> None:
    assert checks.check_card(PAN, expiry, TODAY) is code


def test_expiry_on_the_first_and_last_day_of_a_month() -> None:
    assert checks.check_card(PAN, "2612", dt.date(2026, 12, 31)) is None
    assert checks.check_card(PAN, "2612", dt.date(2027, 1, 1)) is Rc.EXPIRED_CARD


def test_card_number_is_checked_before_the_expiry() -> None:
    assert checks.check_card("6225880123456784", "2001", TODAY) is Rc.INVALID_CARD


# --- amount and currency --------------------------------------------------------------------------

LIMIT = 5_000_000  # ¥50,000.00


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("000000000001", None),
        ("000000001234", None),
        (f"{LIMIT:012d}", None),
        (f"{LIMIT + 1:012d}", Rc.EXCEEDS_AMOUNT_LIMIT),
        ("999999999999", Rc.EXCEEDS_AMOUNT_LIMIT),
        ("000000000000", Rc.INVALID_AMOUNT),
        (None, Rc.INVALID_AMOUNT),
        ("", Rc.INVALID_AMOUNT),
        ("1234", Rc.INVALID_AMOUNT),
        ("0000000012345", Rc.INVALID_AMOUNT),
        ("00000000123A", Rc.INVALID_AMOUNT),
        ("-00000001234", Rc.INVALID_AMOUNT),
        ("        1234", Rc.INVALID_AMOUNT),
        ("００００００００１２３４", Rc.INVALID_AMOUNT),
    ],
)
def test_check_amount(amount: str | None, code: Rc | None) -> None:
    assert checks.check_amount(amount, limit_fen=LIMIT) is code


@pytest.mark.parametrize(("code", "result"), [("156", None), ("840", Rc.INVALID_AMOUNT)])
def test_check_currency(code: str, result: Rc | None) -> None:
    assert checks.check_currency(code) is result


@pytest.mark.parametrize("code", [None, "", "CNY", "156 ", "0156", "344", "446"])
def test_only_cny(code: str | None) -> None:
    assert checks.check_currency(code) is Rc.INVALID_AMOUNT


# --- enabled transaction types -------------------------------------------------------------------


def test_enable_names_are_tms_transaction_types() -> None:
    assert set(checks.ENABLE_NAME.values()) == set(TRANSACTION_TYPES)


def test_every_customer_facing_kind_has_a_switch() -> None:
    assert set(checks.ENABLE_NAME) == classify.FINANCIAL | {TxnKind.BALANCE}


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (TxnKind.SALE, "sale"),
        (TxnKind.QR_SALE, "qr_sale"),
        (TxnKind.VOID, "void"),
        (TxnKind.REFUND, "refund"),
        (TxnKind.BALANCE, "balance_inquiry"),
        (TxnKind.PREAUTH, "preauth"),
        (TxnKind.PREAUTH_CANCEL, "preauth"),
        (TxnKind.COMPLETION, "preauth_completion"),
        (TxnKind.COMPLETION_ADVICE, "preauth_completion"),
        (TxnKind.COMPLETION_VOID, "preauth_completion"),
    ],
)
def test_enabled_by_its_parameter(kind: TxnKind, name: str) -> None:
    assert checks.enabled(kind, [name])
    assert not checks.enabled(kind, [n for n in TRANSACTION_TYPES if n != name])
    assert not checks.enabled(kind, [])


@pytest.mark.parametrize(
    "kind",
    [
        TxnKind.REVERSAL,
        TxnKind.SIGN_ON,
        TxnKind.SIGN_OFF,
        TxnKind.ECHO,
        TxnKind.PARAMETERS,
        TxnKind.SETTLEMENT,
        TxnKind.BATCH_UPLOAD,
        TxnKind.BATCH_UPLOAD_END,
    ],
)
def test_always_allowed(kind: TxnKind) -> None:
    assert checks.enabled(kind, [])


def test_default_parameters() -> None:
    allowed = {kind for kind in checks.ENABLE_NAME if checks.enabled(kind, DEFAULT_ENABLED)}
    assert allowed == {
        TxnKind.SALE,
        TxnKind.QR_SALE,
        TxnKind.VOID,
        TxnKind.REFUND,
        TxnKind.BALANCE,
    }


# --- masking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pan", "masked"),
    [
        ("6225880123456783", "622588******6783"),
        ("6225880123456789012", "622588*********9012"),
        ("4111111111111", "411111***1111"),
        ("622588012345", "********2345"),
        ("62258801", "****8801"),
        ("1234", "**34"),
        ("12", "*2"),
        ("", ""),
    ],
)
def test_mask_pan(pan: str, masked: str) -> None:
    assert checks.mask_pan(pan) == masked
    assert len(masked) == len(pan)


def test_masked_pan_fits_the_journal_column() -> None:
    assert len(checks.mask_pan("1" * 19)) <= 19


@pytest.mark.parametrize(
    ("code", "masked"),
    [
        ("134567890123456789", "**************6789"),
        ("2" * 64, "*" * 60 + "2222"),
        ("1234567", "****567"),
        ("12345", "***45"),
        ("", ""),
    ],
)
def test_qr_code_masked(code: str, masked: str) -> None:
    assert checks.qr_code_masked(code) == masked
