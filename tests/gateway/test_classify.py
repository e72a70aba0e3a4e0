"""Identification (spec §5.1) and field presence (§5.2, §5.3, §5.5, §5.6, §11.6)."""

from __future__ import annotations

import pytest

from poshub.gateway import classify
from poshub.gateway.classify import (
    Identified,
    MalformedField,
    MissingField,
    RequestFormatError,
    UnexpectedField,
    UnknownTransaction,
)
from poshub.gateway.codec import Message
from poshub.gateway.models import TxnKind

PAN = "6225880123456783"
TRACK2 = PAN + "D3012101"
COMMON = {"11": "000123", "41": "10000001", "42": "898340154110001", "49": "156"}
MAC = {"64": "3030303030303030"}


def financial(mti: str, pc: str, cc: str, type_code: str, **extra: str) -> Message:
    return {
        "t": mti,
        "2": PAN,
        "3": pc,
        "4": "000000001234",
        "22": "021",
        "25": cc,
        "60": type_code + "000001000600",
        **COMMON,
        **MAC,
        **{key.removeprefix("f"): value for key, value in extra.items()},
    }


def management(mti: str, code: str, **extra: str) -> Message:
    return {
        "t": mti,
        "60": "00000001" + code,
        **COMMON,
        **{key.removeprefix("f"): value for key, value in extra.items()},
    }


# One complete, valid request of every kind.
VALID: dict[str, tuple[Message, TxnKind]] = {
    "balance": (
        {
            key: value
            for key, value in financial("0200", "310000", "00", "01").items()
            if key != "4"
        },
        TxnKind.BALANCE,
    ),
    "sale": (financial("0200", "000000", "00", "22"), TxnKind.SALE),
    "sale_swiped": (
        {
            **{k: v for k, v in financial("0200", "000000", "00", "22").items() if k != "2"},
            "22": "022",
            "35": TRACK2,
        },
        TxnKind.SALE,
    ),
    "sale_pin": (
        financial("0200", "000000", "00", "22", f26="12", f52="00" * 8, f53="2" + "0" * 15),
        TxnKind.SALE,
    ),
    "qr_sale": (
        {
            **{k: v for k, v in financial("0200", "000000", "00", "22").items() if k != "2"},
            "22": "032",
            "59": "A3018134567890123456789",
        },
        TxnKind.QR_SALE,
    ),
    "void": (
        financial("0200", "200000", "00", "23", f37="000000000001", f61="000001000120"),
        TxnKind.VOID,
    ),
    "qr_void": (
        {
            **{k: v for k, v in financial("0200", "200000", "00", "23").items() if k != "2"},
            "22": "032",
            "37": "000000000001",
            "59": "A4005V0001",
            "61": "000001000120",
        },
        TxnKind.VOID,
    ),
    "refund": (
        financial(
            "0220", "200000", "00", "25", f37="000000000001", f61="0000010001201204", f63="CUP"
        ),
        TxnKind.REFUND,
    ),
    "qr_refund": (
        {
            **{k: v for k, v in financial("0220", "200000", "00", "25").items() if k != "2"},
            "22": "031",
            "37": "000000000001",
            "59": "A4005V0001",
            "61": "0000010001201204",
            "63": "CUP",
        },
        TxnKind.REFUND,
    ),
    "preauth": (financial("0100", "030000", "06", "10"), TxnKind.PREAUTH),
    "preauth_cancel": (
        financial("0100", "200000", "06", "11", f38="A1B2C3", f61="0000010001201204"),
        TxnKind.PREAUTH_CANCEL,
    ),
    "completion": (
        financial("0200", "000000", "06", "20", f38="A1B2C3", f61="0000010001201204"),
        TxnKind.COMPLETION,
    ),
    "completion_void": (
        financial("0200", "200000", "06", "21", f37="000000000002", f61="000001000121"),
        TxnKind.COMPLETION_VOID,
    ),
    "completion_advice": (
        financial("0220", "000000", "06", "24", f38="A1B2C3", f61="0000010001201204"),
        TxnKind.COMPLETION_ADVICE,
    ),
    "reversal": (financial("0400", "000000", "00", "22", f39="98"), TxnKind.REVERSAL),
    "sign_on_001": (management("0800", "001", f63="01 "), TxnKind.SIGN_ON),
    "sign_on_003": (management("0800", "003", f63="01 "), TxnKind.SIGN_ON),
    "sign_on_004": (management("0800", "004", f63="01 "), TxnKind.SIGN_ON),
    "sign_off": (management("0820", "002"), TxnKind.SIGN_OFF),
    "echo": (
        {k: v for k, v in management("0820", "301").items() if k not in ("11", "49")},
        TxnKind.ECHO,
    ),
    "parameters": (management("0800", "360"), TxnKind.PARAMETERS),
    "parameters_done": (management("0800", "361"), TxnKind.PARAMETERS),
    "settlement": (management("0500", "201", f48="0" * 62, f63="01 "), TxnKind.SETTLEMENT),
    "batch_upload": (
        management("0320", "201", f48="01" + "0" * 40),
        TxnKind.BATCH_UPLOAD,
    ),
    "batch_upload_end_202": (management("0320", "202", f48="0001"), TxnKind.BATCH_UPLOAD_END),
    "batch_upload_end_207": (management("0320", "207", f48="0000"), TxnKind.BATCH_UPLOAD_END),
}

# (reversible, financial, needs_mac) per kind, spec §5.1 and §7.1.
PROPERTIES: dict[TxnKind, tuple[bool, bool, bool]] = {
    TxnKind.BALANCE: (False, False, True),
    TxnKind.SALE: (True, True, True),
    TxnKind.QR_SALE: (True, True, True),
    TxnKind.VOID: (True, True, True),
    TxnKind.REFUND: (False, True, True),
    TxnKind.PREAUTH: (True, True, True),
    TxnKind.PREAUTH_CANCEL: (True, True, True),
    TxnKind.COMPLETION: (True, True, True),
    TxnKind.COMPLETION_VOID: (True, True, True),
    TxnKind.COMPLETION_ADVICE: (False, True, True),
    TxnKind.REVERSAL: (False, False, True),
    TxnKind.SIGN_ON: (False, False, False),
    TxnKind.SIGN_OFF: (False, False, False),
    TxnKind.ECHO: (False, False, False),
    TxnKind.PARAMETERS: (False, False, False),
    TxnKind.SETTLEMENT: (False, False, False),
    TxnKind.BATCH_UPLOAD: (False, False, False),
    TxnKind.BATCH_UPLOAD_END: (False, False, False),
}


@pytest.mark.parametrize("name", list(VALID))
def test_every_row_of_the_matrix(name: str) -> None:
    message, kind = VALID[name]
    identified = classify.identify(message)
    assert identified.kind is kind
    assert identified.supported
    assert (identified.reversible, identified.financial, identified.needs_mac) == PROPERTIES[kind]
    assert identified.f60.text() == message["60"]
    classify.check_presence(identified, message)


def test_every_kind_but_unknown_is_covered() -> None:
    assert {kind for _, kind in VALID.values()} == set(TxnKind) - {TxnKind.UNKNOWN}


@pytest.mark.parametrize(
    ("entry_mode", "kind"),
    [("032", TxnKind.QR_SALE), ("031", TxnKind.QR_SALE), ("021", TxnKind.SALE)],
)
def test_qr_sale_is_told_by_the_entry_mode(entry_mode: str, kind: TxnKind) -> None:
    message = {**VALID["sale"][0], "22": entry_mode}
    assert classify.identify(message).kind is kind


@pytest.mark.parametrize(
    ("pc", "cc", "type_code", "entry_mode", "reverses"),
    [
        ("000000", "00", "22", "021", TxnKind.SALE),
        ("000000", "00", "22", "032", TxnKind.QR_SALE),
        ("200000", "00", "23", "021", TxnKind.VOID),
        ("030000", "06", "10", "051", TxnKind.PREAUTH),
        ("200000", "06", "11", "051", TxnKind.PREAUTH_CANCEL),
        ("000000", "06", "20", "051", TxnKind.COMPLETION),
        ("200000", "06", "21", "051", TxnKind.COMPLETION_VOID),
    ],
)
def test_reversal_of_each_reversible_kind(
    pc: str, cc: str, type_code: str, entry_mode: str, reverses: TxnKind
) -> None:
    message = {**financial("0400", pc, cc, type_code, f39="98"), "22": entry_mode}
    identified = classify.identify(message)
    assert identified.kind is TxnKind.REVERSAL
    assert identified.reverses is reverses
    assert not identified.reversible
    assert not identified.financial
    assert identified.needs_mac
    classify.check_presence(identified, message)


@pytest.mark.parametrize(
    ("pc", "cc", "type_code", "field"),
    [
        ("310000", "00", "01", "3"),  # a balance inquiry is not reversible
        ("200000", "00", "25", "60"),  # nor is a refund (resent instead)
        ("000000", "06", "24", "60"),  # nor a completion advice
        ("400000", "00", "22", "3"),
        ("000000", "08", "22", "25"),
    ],
)
def test_reversal_of_what_cannot_be_reversed(pc: str, cc: str, type_code: str, field: str) -> None:
    with pytest.raises(UnknownTransaction) as caught:
        classify.identify(financial("0400", pc, cc, type_code, f39="98"))
    assert caught.value.field == field


@pytest.mark.parametrize("type_code", ["30", "32", "34"])
def test_offline_settlement_is_identified_but_not_supported(type_code: str) -> None:
    message = financial("0220", "000000", "00", type_code)
    identified = classify.identify(message)
    assert identified.kind is TxnKind.UNKNOWN
    assert not identified.supported
    assert not identified.financial
    assert not identified.reversible
    assert identified.needs_mac
    classify.check_presence(identified, message)
    with pytest.raises(MissingField) as caught:
        classify.check_presence(identified, {k: v for k, v in message.items() if k != "64"})
    assert caught.value.field == "64"


@pytest.mark.parametrize(
    ("mti", "code", "kind"),
    [
        ("0800", "370", TxnKind.PARAMETERS),
        ("0800", "371", TxnKind.PARAMETERS),
        ("0800", "380", TxnKind.PARAMETERS),
        ("0800", "381", TxnKind.PARAMETERS),
        ("0800", "364", TxnKind.PARAMETERS),
        ("0800", "394", TxnKind.PARAMETERS),
        ("0800", "399", TxnKind.PARAMETERS),
        ("0800", "960", TxnKind.PARAMETERS),
        ("0800", "401", TxnKind.PARAMETERS),
        ("0820", "362", TxnKind.PARAMETERS),
        ("0820", "372", TxnKind.PARAMETERS),
        ("0820", "382", TxnKind.PARAMETERS),
        ("0320", "203", TxnKind.BATCH_UPLOAD),
    ],
)
def test_management_codes_answered_40(mti: str, code: str, kind: TxnKind) -> None:
    message = management(mti, code)
    identified = classify.identify(message)
    assert identified.kind is kind
    assert not identified.supported
    assert not identified.needs_mac
    # A 40 needs only TID, MID and 60; nothing else is asked of the request.
    classify.check_presence(identified, {k: message[k] for k in ("t", "41", "42", "60")})


@pytest.mark.parametrize(
    ("mti", "code"),
    [
        ("0800", "002"),  # sign-off is an 0820
        ("0800", "000"),
        ("0800", "301"),
        ("0800", "201"),
        ("0800", "393"),
        ("0800", "999"),
        ("0820", "001"),
        ("0820", "360"),
        ("0500", "202"),
        ("0500", "000"),
        ("0320", "301"),
        ("0320", "204"),
    ],
)
def test_unknown_management_code(mti: str, code: str) -> None:
    with pytest.raises(UnknownTransaction) as caught:
        classify.identify(management(mti, code))
    assert caught.value.field == "60"


@pytest.mark.parametrize("mti", ["0800", "0820", "0500", "0320"])
def test_management_with_a_financial_type_code(mti: str) -> None:
    message = {**management(mti, "201"), "60": "22000001201"}
    with pytest.raises(UnknownTransaction) as caught:
        classify.identify(message)
    assert caught.value.field == "60"


@pytest.mark.parametrize("mti", ["0210", "0810", "0300", "0600", "0620", "0000", ""])
def test_unknown_mti(mti: str) -> None:
    message = {**VALID["sale"][0], "t": mti}
    with pytest.raises(UnknownTransaction) as caught:
        classify.identify(message)
    assert caught.value.field == "t"


@pytest.mark.parametrize(
    ("mti", "pc", "cc", "type_code", "field"),
    [
        # Processing codes not in any row for the MTI.
        ("0200", "010000", "00", "22", "3"),
        ("0200", "030000", "06", "10", "3"),  # pre-auth is an 0100
        ("0100", "000000", "06", "20", "3"),  # completion is an 0200
        ("0220", "310000", "00", "01", "3"),
        ("0100", "310000", "00", "01", "3"),
        # Condition codes not in a row for MTI + 3.
        ("0200", "000000", "08", "22", "25"),
        ("0200", "310000", "06", "01", "25"),
        ("0100", "030000", "00", "10", "25"),
        ("0220", "200000", "06", "25", "25"),
        # 60.1 not in a row for MTI + 3 + 25.
        ("0200", "000000", "00", "23", "60"),
        ("0200", "000000", "00", "03", "60"),
        ("0200", "200000", "00", "25", "60"),  # refund is an 0220
        ("0200", "000000", "06", "24", "60"),  # advice is an 0220
        ("0100", "200000", "06", "21", "60"),
        ("0220", "000000", "00", "36", "60"),
        ("0200", "310000", "00", "03", "60"),  # points inquiry: not in v1's matrix
    ],
)
def test_unknown_financial_combination(
    mti: str, pc: str, cc: str, type_code: str, field: str
) -> None:
    with pytest.raises(UnknownTransaction) as caught:
        classify.identify(financial(mti, pc, cc, type_code))
    assert caught.value.field == field
    assert isinstance(caught.value, RequestFormatError)


def test_financial_with_a_network_code() -> None:
    message = {**VALID["sale"][0], "60": "22000001003600"}
    with pytest.raises(UnknownTransaction) as caught:
        classify.identify(message)
    assert caught.value.field == "60"


def test_short_field_60_reads_as_network_code_000() -> None:
    message = {**VALID["sale"][0], "60": "22000001"}
    assert classify.identify(message).kind is TxnKind.SALE


@pytest.mark.parametrize("key", ["3", "25", "60"])
def test_identifying_fields_missing(key: str) -> None:
    message = {k: v for k, v in VALID["sale"][0].items() if k != key}
    with pytest.raises(MissingField) as caught:
        classify.identify(message)
    assert caught.value.field == key


def test_management_without_60() -> None:
    message = {k: v for k, v in VALID["sign_on_003"][0].items() if k != "60"}
    with pytest.raises(MissingField) as caught:
        classify.identify(message)
    assert caught.value.field == "60"


@pytest.mark.parametrize("text", ["2200000", "220000010006001234", "22000001A"])
def test_malformed_60(text: str) -> None:
    with pytest.raises(MalformedField) as caught:
        classify.identify({**VALID["sale"][0], "60": text})
    assert caught.value.field == "60"


# --- Field presence --------------------------------------------------------------------------

MANDATORY: dict[str, tuple[str, ...]] = {
    "balance": ("3", "11", "22", "25", "41", "42", "49", "60", "64"),
    "sale": ("3", "4", "11", "22", "25", "41", "42", "49", "60", "64"),
    "qr_sale": ("3", "4", "11", "22", "25", "41", "42", "49", "59", "60", "64"),
    "void": ("3", "4", "11", "22", "25", "37", "41", "42", "49", "60", "61", "64"),
    "qr_void": ("3", "4", "11", "22", "25", "37", "41", "42", "49", "59", "60", "61", "64"),
    "refund": ("3", "4", "11", "22", "25", "37", "41", "42", "49", "60", "61", "63", "64"),
    "preauth": ("3", "4", "11", "22", "25", "41", "42", "49", "60", "64"),
    "preauth_cancel": ("3", "4", "11", "22", "25", "38", "41", "42", "49", "60", "61", "64"),
    "completion": ("3", "4", "11", "22", "25", "38", "41", "42", "49", "60", "61", "64"),
    "completion_void": ("3", "4", "11", "22", "25", "37", "41", "42", "49", "60", "61", "64"),
    "completion_advice": ("3", "4", "11", "22", "25", "38", "41", "42", "49", "60", "61", "64"),
    "reversal": ("3", "4", "11", "25", "39", "41", "42", "49", "60", "64"),
    "sign_on_003": ("11", "41", "42", "60", "63"),
    "sign_off": ("11", "41", "42", "60"),
    "echo": ("41", "42", "60"),
    "parameters": ("41", "42", "60"),
    "settlement": ("11", "41", "42", "48", "49", "60", "63"),
    "batch_upload": ("11", "41", "42", "48", "60"),
    "batch_upload_end_207": ("11", "41", "42", "48", "60"),
}


def _presence_cases() -> list[tuple[str, str]]:
    return [(name, key) for name, keys in MANDATORY.items() for key in keys]


@pytest.mark.parametrize(("name", "key"), _presence_cases())
def test_missing_mandatory_field(name: str, key: str) -> None:
    message, _ = VALID[name]
    assert key in message
    reduced = {k: v for k, v in message.items() if k != key}
    with pytest.raises(RequestFormatError) as caught:
        classify.check_presence(classify.identify(reduced), reduced)
    assert caught.value.field == key
    # 3, 25 and 60 are found missing while identifying; the rest by check_presence.
    assert isinstance(caught.value, MissingField)


@pytest.mark.parametrize("name", list(MANDATORY))
def test_nothing_else_is_mandatory(name: str) -> None:
    """Each kind passes with exactly its mandatory fields (and a card where it needs one)."""
    message, _ = VALID[name]
    keep = {"t", *MANDATORY[name]}
    card_kinds = {"balance", "sale", "void", "refund", "preauth", "preauth_cancel"}
    card_kinds |= {"completion", "completion_void", "completion_advice"}
    if name in card_kinds:
        keep.add("2")
    minimal = {k: v for k, v in message.items() if k in keep}
    classify.check_presence(classify.identify(minimal), minimal)


def test_first_missing_field_is_named_in_field_order() -> None:
    message = {k: v for k, v in VALID["refund"][0].items() if k not in ("37", "63", "61")}
    with pytest.raises(MissingField) as caught:
        classify.check_presence(classify.identify(message), message)
    assert caught.value.field == "37"


@pytest.mark.parametrize(
    "name",
    [
        "balance",
        "sale",
        "void",
        "refund",
        "preauth",
        "preauth_cancel",
        "completion",
        "completion_void",
        "completion_advice",
    ],
)
def test_card_kinds_need_a_pan_or_track_2(name: str) -> None:
    message = {k: v for k, v in VALID[name][0].items() if k != "2"}
    with pytest.raises(MissingField) as caught:
        classify.check_presence(classify.identify(message), message)
    assert caught.value.field == "2"
    with_track = {**message, "35": TRACK2}
    classify.check_presence(classify.identify(with_track), with_track)
    # Track 3 alone does not name the card.
    with_track3 = {**message, "36": "99" + TRACK2}
    with pytest.raises(MissingField):
        classify.check_presence(classify.identify(with_track3), with_track3)


def test_qr_entry_mode_on_a_preauth_still_needs_a_card() -> None:
    message = {k: v for k, v in VALID["preauth"][0].items() if k != "2"}
    message["22"] = "032"
    message["59"] = "A3018134567890123456789"
    with pytest.raises(MissingField) as caught:
        classify.check_presence(classify.identify(message), message)
    assert caught.value.field == "2"


@pytest.mark.parametrize("name", ["qr_sale", "qr_void", "qr_refund"])
@pytest.mark.parametrize(
    ("key", "value"),
    [("2", PAN), ("35", TRACK2), ("36", "99" + TRACK2), ("52", "00" * 8)],
)
def test_qr_payment_with_card_data(name: str, key: str, value: str) -> None:
    message = {**VALID[name][0], key: value}
    with pytest.raises(UnexpectedField) as caught:
        classify.check_presence(classify.identify(message), message)
    assert caught.value.field == key
    assert PAN not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("qr_sale", "A4005V0001", MissingField),  # a voucher is not a payment code
        ("qr_sale", "A3000", MissingField),  # an empty code
        ("qr_sale", "A2003SN1", MissingField),
        ("qr_sale", "A301", MalformedField),
        ("qr_sale", "A3018134", MalformedField),
        ("qr_void", "A3018134567890123456789", MissingField),
        ("qr_refund", "", MissingField),
        ("qr_refund", "A4", MalformedField),
    ],
)
def test_qr_field_59(name: str, text: str, error: type[RequestFormatError]) -> None:
    message = {**VALID[name][0], "59": text}
    with pytest.raises(error) as caught:
        classify.check_presence(classify.identify(message), message)
    assert caught.value.field == "59"


def test_qr_field_59_among_other_items() -> None:
    message = {**VALID["qr_sale"][0], "59": "A2003SN1A3018134567890123456789"}
    classify.check_presence(classify.identify(message), message)


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"52": "00" * 8}, MissingField, "26"),
        ({"52": "00" * 8, "26": "12"}, MissingField, "53"),
        ({"26": "12"}, UnexpectedField, "26"),
    ],
)
def test_pin_capture_and_security_fields(
    change: dict[str, str], error: type[RequestFormatError], field: str
) -> None:
    message = {**VALID["sale"][0], **change}
    with pytest.raises(error) as caught:
        classify.check_presence(classify.identify(message), message)
    assert caught.value.field == field


def test_53_without_52_is_accepted() -> None:
    """53 also announces track encryption (53.3), which the pipeline answers itself."""
    message = {**VALID["sale"][0], "53": "2000000000000000"}
    classify.check_presence(classify.identify(message), message)


@pytest.mark.parametrize(
    ("name", "text", "ok"),
    [
        ("void", "000001000120", True),
        ("void", "0000010001201204", True),
        ("void", "00000100012", False),
        ("completion_void", "00000100012", False),
        ("refund", "0000010001201204", True),
        ("refund", "000001000120", False),
        ("refund", "000001000120120", False),
        ("preauth_cancel", "000001000120", False),
        ("completion", "000001000120", False),
        ("completion_advice", "000001000120", False),
        ("completion", "0000010001201204", True),
    ],
)
def test_field_61_length(name: str, text: str, ok: bool) -> None:
    message = {**VALID[name][0], "61": text}
    identified = classify.identify(message)
    if ok:
        classify.check_presence(identified, message)
    else:
        with pytest.raises(MalformedField) as caught:
            classify.check_presence(identified, message)
        assert caught.value.field == "61"


def test_reversal_needs_no_card() -> None:
    message = {k: v for k, v in VALID["reversal"][0].items() if k not in ("2", "22")}
    classify.check_presence(classify.identify(message), message)


def test_errors_are_one_family() -> None:
    for cls in (UnknownTransaction, MissingField, UnexpectedField, MalformedField):
        assert issubclass(cls, RequestFormatError)
    error = MissingField("2", "the card")
    assert error.field == "2"
    assert "2" in str(error)


def test_identified_is_immutable() -> None:
    identified = classify.identify(VALID["sale"][0])
    assert isinstance(identified, Identified)
    with pytest.raises(AttributeError):
        identified.kind = TxnKind.VOID  # type: ignore[misc]
