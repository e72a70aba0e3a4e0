"""Sub-fields of 48, 54, 59, 60, 61 and 62 (spec §4, §5.6, §11.6, §11.10)."""

from __future__ import annotations

import pytest

from poshub.gateway import fields
from poshub.gateway.fields import (
    Field60,
    Field61,
    Settlement48,
    SubfieldError,
    Totals,
    UploadRecord,
)

# --- 60 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "type_code", "batch", "network_code", "rest"),
    [
        ("22000001", "22", "000001", "000", ""),
        ("00000001003", "00", "000001", "003", ""),
        ("2200000100060", "22", "000001", "000", "60"),
        ("22000024000600", "22", "000024", "000", "600"),
        ("22000001000600065", "22", "000001", "000", "600065"),
        ("000000012", "00", "000001", "000", ""),
    ],
)
def test_field60_parse(text: str, type_code: str, batch: str, network_code: str, rest: str) -> None:
    f60 = Field60.parse(text)
    assert (f60.type_code, f60.batch, f60.network_code, f60.rest) == (
        type_code,
        batch,
        network_code,
        rest,
    )
    if len(text) >= 11:
        assert f60.text() == text


@pytest.mark.parametrize("text", ["", "2200000", "2" * 18, "2200000100A", "22 000001"])
def test_field60_malformed(text: str) -> None:
    with pytest.raises(SubfieldError) as caught:
        Field60.parse(text)
    assert caught.value.field == "60"


def test_field60_with_batch_keeps_the_rest() -> None:
    f60 = Field60.parse("22000001000600").with_batch("000002")
    assert f60.text() == "22000002000600"


# --- 61 -------------------------------------------------------------------------------------


def test_field61_void_and_refund_forms() -> None:
    void = Field61.parse("000001000123")
    assert (void.batch, void.stan, void.date) == ("000001", "000123", None)
    refund = Field61.parse("0000010001231204")
    assert (refund.batch, refund.stan, refund.date) == ("000001", "000123", "1204")
    assert refund.text() == "0000010001231204"
    assert void.text() == "000001000123"
    # 61.4/61.5 of offline settlements are read past, not refused.
    assert Field61.parse("0000010001231204" + "00" + "12345678901").date == "1204"


@pytest.mark.parametrize("text", ["", "00000100012", "00000100012A"])
def test_field61_malformed(text: str) -> None:
    with pytest.raises(SubfieldError) as caught:
        Field61.parse(text)
    assert caught.value.field == "61"


# --- 48 in settlement -----------------------------------------------------------------------


def test_settlement48_layout() -> None:
    request = Settlement48.request(Totals(123456, 7, 1000, 1))
    text = request.text()
    assert len(text) == 62
    assert text[:12] == "000000123456"
    assert text[12:15] == "007"
    assert text[15:27] == "000000001000"
    assert text[27:30] == "001"
    assert text[30] == "0"
    assert text[31:61] == "0" * 30
    assert text[61] == "0"
    assert Settlement48.parse(text) == request


def test_settlement48_response_digits() -> None:
    domestic = Totals(100, 1, 0, 0)
    response = Settlement48(domestic, "2", fields.ZERO_TOTALS, "1")
    parsed = Settlement48.parse(response.text())
    assert (parsed.domestic_result, parsed.foreign_result) == ("2", "1")
    assert parsed.domestic == domestic


@pytest.mark.parametrize("text", ["0" * 61, "0" * 63, "0" * 61 + "A"])
def test_settlement48_malformed(text: str) -> None:
    with pytest.raises(SubfieldError) as caught:
        Settlement48.parse(text)
    assert caught.value.field == "48"


@pytest.mark.parametrize(
    "args",
    [(-1, 0, 0, 0), (10**12, 0, 0, 0), (0, 1000, 0, 0), (0, 0, 0, -1), (0, 0, 10**12, 0)],
)
def test_totals_out_of_range(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(SubfieldError):
        Totals(*args)


def test_totals_at_their_maximum() -> None:
    top = Totals(10**12 - 1, 999, 10**12 - 1, 999)
    assert Totals.from_digits(top.digits()) == top


# --- 48 in batch upload ------------------------------------------------------------------------


def test_batch_upload_round_trip() -> None:
    records = [
        UploadRecord(False, "000123", "00006225880123456783", 1234),
        UploadRecord(True, "000124", "0" * 20, 99),
    ]
    text = fields.build_batch_upload(records)
    assert text[:2] == "02"
    assert len(text) == 2 + 2 * 40
    assert text[2:42] == "00" + "000123" + "00006225880123456783" + "000000001234"
    assert fields.parse_batch_upload(text) == records


def test_batch_upload_of_eight_records() -> None:
    records = [UploadRecord(False, f"{n:06d}", "0" * 20, n) for n in range(1, 9)]
    assert fields.parse_batch_upload(fields.build_batch_upload(records)) == records
    with pytest.raises(ValueError, match="1 to 8"):
        fields.build_batch_upload([*records, records[0]])
    with pytest.raises(ValueError, match="1 to 8"):
        fields.build_batch_upload([])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "00",
        "09" + "0" * 360,
        "01" + "0" * 39,
        "01" + "0" * 41,
        "02" + "0" * 40,
        "01" + "02" + "0" * 38,
        "0A" + "0" * 40,
    ],
)
def test_batch_upload_malformed(text: str) -> None:
    with pytest.raises(SubfieldError) as caught:
        fields.parse_batch_upload(text)
    assert caught.value.field == "48"


def test_upload_end_count() -> None:
    assert fields.parse_upload_end("0000") == 0
    assert fields.parse_upload_end("0017") == 17
    for text in ("", "17", "00017", "00A7"):
        with pytest.raises(SubfieldError):
            fields.parse_upload_end(text)


# --- 59 TLV ----------------------------------------------------------------------------------


def test_tlv_spec_example() -> None:
    assert fields.build_tlv({"A3": "134567890123456789"}) == "A3018134567890123456789"
    assert fields.parse_tlv("A3018134567890123456789") == {"A3": "134567890123456789"}


def test_tlv_several_items_and_empty() -> None:
    items = {"A2": "SN1", "A4": "V" * 64, "A1": ""}
    text = fields.build_tlv(items)
    assert text == "A2003SN1A4064" + "V" * 64 + "A1000"
    assert fields.parse_tlv(text) == items
    assert fields.parse_tlv("") == {}


@pytest.mark.parametrize(
    "text",
    [
        "A",
        "A301",
        "A3O18",
        "A30181345",
        "A3018134567890123456789A",
        "".join(f"B{chr(ord('A') + n)}001x" for n in range(17)),
    ],
)
def test_tlv_malformed(text: str) -> None:
    with pytest.raises(SubfieldError) as caught:
        fields.parse_tlv(text)
    assert caught.value.field == "59"


# --- 54 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (123456, "1002156C000000123456"),
        (0, "1002156C000000000000"),
        (-500, "1002156D000000000500"),
    ],
)
def test_balance54(fen: int, text: str) -> None:
    assert fields.balance54(fen) == text
    assert fields.parse_balance54(text) == fen


def test_balance54_other_account_type() -> None:
    assert fields.balance54(1, account_type="30") == "3002156C000000000001"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1002156X000000000500",
        "1002156C00000000050",
        "1002156C00000000050A",
        "1002156C-00000000050",
    ],
)
def test_balance54_malformed(text: str) -> None:
    with pytest.raises(SubfieldError):
        fields.parse_balance54(text)


# --- 62 parameter download -----------------------------------------------------------------------


def test_parameter_download62() -> None:
    data = fields.parameter_download62("测试商户", 30)
    name = "测试商户".encode("gbk")
    assert data == b"1230" + b"22" + name + b" " * (40 - len(name))
    assert len(data) == 2 + 2 + 2 + 40


def test_parameter_download62_truncates_the_name_and_caps_the_timeout() -> None:
    data = fields.parameter_download62("商" * 30, 150)
    assert data[:4] == b"1299"
    assert data[6:] == ("商" * 20).encode("gbk")
    assert len(data) == 46


def test_parameter_download62_replaces_what_gbk_cannot_write() -> None:
    data = fields.parameter_download62("Café 🙂", 5)
    assert data == b"1205" + b"22" + "Café ?".encode("gbk").ljust(40)


def test_parameter_download62_never_cuts_a_character_in_half() -> None:
    data = fields.parameter_download62("A" + "商" * 30, 30)
    assert len(data) == 46
    assert data[6:] == ("A" + "商" * 19).encode("gbk") + b" "
    assert data[6:].decode("gbk") == "A" + "商" * 19 + " "
