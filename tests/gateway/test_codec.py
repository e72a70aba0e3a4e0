"""The codec against the spec: framing (§1), encoding rules (§2), the V4 frame (§12), the
annotated sale of §1.5, and every way a message can be malformed."""

from __future__ import annotations

import pytest

from poshub.gateway import codec, crypto
from poshub.gateway.codec import FrameError, MessageFormatError

V3_PIK = bytes.fromhex("6B7A1C5D3E4F2091A0B1C2D3E4F50617")
V3_MAK = bytes.fromhex("1F2E3D4C5B6A7988")
V4_PAN = "6225880123456783"


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# Spec §12 V4, as printed there (spaces and bars are only for reading).
V4_FRAME: bytes = _hex(
    "006B 6000030000 603100000000 0200 702404C000C09811"
    " 16 6225880123456783  000000  000000001234  000123  3012  0110  00  12"
    " 3130303030303031  383938333430313534313130303031  313536"
    " 72B4F8429002FD2F  2600000000000000  0014 22000001000600  4233463933434433"
)
V4_BODY: bytes = V4_FRAME[2 + 5 + 6 :]

V4_FIELDS: dict[str, str] = {
    "t": "0200",
    "p": "702404C000C09811",
    "2": V4_PAN,
    "3": "000000",
    "4": "000000001234",
    "11": "000123",
    "14": "3012",
    "22": "011",
    "25": "00",
    "26": "12",
    "41": "10000001",
    "42": "898340154110001",
    "49": "156",
    "52": "72B4F8429002FD2F",
    "53": "2600000000000000",
    "60": "22000001000600",
    "64": "4233463933434433",
}


# --- Sample requests of other kinds (also the seeds of test_codec_fuzz) ------------------

SIGN_ON: dict[str, str] = {
    "t": "0800",
    "11": "000001",
    "41": "10000001",
    "42": "898340154110001",
    "60": "00000001003",
    "63": "01 ",
}

SETTLEMENT: dict[str, str] = {
    "t": "0500",
    "11": "000130",
    "41": "10000001",
    "42": "898340154110001",
    "48": "000000123400001000000000000000" + "0" + "0" * 30 + "0",
    "49": "156",
    "60": "00000001201",
    "63": "01 ",
}

QR_SALE: dict[str, str] = {
    "t": "0200",
    "3": "000000",
    "4": "000000000100",
    "11": "000124",
    "22": "032",
    "25": "00",
    "41": "10000001",
    "42": "898340154110001",
    "49": "156",
    "59": "A3018134567890123456789",
    "60": "22000001000600",
    "64": "0000000000000000",
}

REVERSAL: dict[str, str] = {
    "t": "0400",
    "2": V4_PAN,
    "3": "000000",
    "4": "000000001234",
    "11": "000123",
    "14": "3012",
    "22": "011",
    "25": "00",
    "39": "98",
    "41": "10000001",
    "42": "898340154110001",
    "49": "156",
    "60": "22000001000600",
    "64": "0000000000000000",
}

SEED_BODIES: dict[str, bytes] = {
    "v4_sale": V4_BODY,
    **{
        name: codec.encode(message)
        for name, message in (
            ("sign_on", SIGN_ON),
            ("settlement", SETTLEMENT),
            ("qr_sale", QR_SALE),
            ("reversal", REVERSAL),
        )
    },
}


def field_bytes(key: str, value: str, mti: str = "0800") -> bytes:
    """The wire bytes of one field: a message holding only it, less MTI and bitmap."""
    return codec.encode({"t": mti, key: value})[codec.MESSAGE_BYTES_MIN :]


def with_bitmap_bit(body: bytes, number: int) -> bytes:
    changed = bytearray(body)
    changed[codec.MTI_BYTES + (number - 1) // 8] |= 0x80 >> ((number - 1) % 8)
    return bytes(changed)


def decode_error(body: bytes) -> MessageFormatError:
    with pytest.raises(MessageFormatError) as caught:
        codec.decode(body)
    return caught.value


# --- V4: the complete frame -------------------------------------------------------------


def test_v4_envelope() -> None:
    assert int.from_bytes(V4_FRAME[:2], "big") == len(V4_FRAME) - 2 == 0x6B
    envelope = codec.split_envelope(V4_FRAME[2:])
    assert envelope.tpdu == _hex("6000030000")
    assert envelope.header == _hex("603100000000")
    assert envelope.body == V4_BODY


def test_v4_decodes_every_field_exactly() -> None:
    assert codec.decode(V4_BODY) == V4_FIELDS


def test_v4_reencodes_byte_identical() -> None:
    assert codec.encode(codec.decode(V4_BODY)) == V4_BODY
    # The bitmap is computed, not taken from "p".
    without_bitmap = {k: v for k, v in V4_FIELDS.items() if k != "p"}
    assert codec.encode(without_bitmap) == V4_BODY
    assert codec.frame(_hex("6000030000"), _hex("603100000000"), V4_BODY) == V4_FRAME


def test_v4_mac_verifies_with_the_v3_keys() -> None:
    keys = crypto.WorkingKeys(pik=V3_PIK, mak=V3_MAK)
    assert keys.verify_mac(V4_BODY)
    assert keys.mac(V4_BODY[:-8]) == b"B3F93CD3"
    placeholder = codec.encode({**V4_FIELDS, "64": "00" * 8})
    assert keys.sign(placeholder) == V4_BODY


def test_v4_mac_fails_on_any_changed_byte_before_it() -> None:
    keys = crypto.WorkingKeys(pik=V3_PIK, mak=V3_MAK)
    for index in range(len(V4_BODY) - 8):
        tampered = bytearray(V4_BODY)
        tampered[index] ^= 0x01
        assert not keys.verify_mac(bytes(tampered)), index


# --- §1.5: the annotated public sale --------------------------------------------------------

ANNOTATED_SALE: dict[str, str] = {
    "t": "0200",
    "2": "6224242900000113",
    "3": "000000",
    "4": "000000000001",
    "11": "000403",
    "14": "2806",
    "22": "071",
    "23": "000",
    "25": "00",
    "26": "12",
    "35": "6224242900000113D28062201234567",
    "41": "10000019",
    "42": "850100082410002",
    "48": "0000",
    "49": "156",
    "52": "0123456789ABCDEF",
    "53": "2600000000000000",
    "55": "9F2608A1B2C3D4E5F60718",
    "59": "A2010SN12345678",
    "60": "22000024000600",
    "64": "3846363531423236",
}


def test_annotated_sale_bitmap_and_leading_fields() -> None:
    body = codec.encode(ANNOTATED_SALE)
    assert body[: codec.MESSAGE_BYTES_MIN] == _hex("0200 702406C020C19A31")
    assert body[codec.MESSAGE_BYTES_MIN :].startswith(
        _hex("16 6224242900000113 000000 000000000001 000403 2806 0710 0000 00 12")
    )
    assert _hex("0014 22000024000600 3846363531423236") in body
    assert body.endswith(b"8F651B26")
    decoded = codec.decode(body)
    assert decoded.pop("p") == "702406C020C19A31"
    assert decoded == ANNOTATED_SALE


# --- §2: encoding rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "wire"),
    [
        # n fixed: right-aligned with a leading 0 nibble when odd, except 22 (left-aligned).
        ("22", "021", "0210"),
        ("22", "071", "0710"),
        ("23", "001", "0001"),
        ("3", "310000", "310000"),
        ("4", "000000001234", "000000001234"),
        ("11", "999999", "999999"),
        ("12", "235959", "235959"),
        ("13", "1231", "1231"),
        ("14", "3012", "3012"),
        ("15", "0101", "0101"),
        ("25", "06", "06"),
        ("26", "12", "12"),
        ("53", "2600000000000000", "2600000000000000"),
        # n LLVAR: one BCD length byte counting digits; 2 left-aligned, 32 right-aligned.
        ("2", "6225880123456783", "16 6225880123456783"),
        ("2", "6225880123456789012", "19 62258801234567890120"),
        ("2", "622588012345", "12 622588012345"),
        ("32", "4800000", "07 04800000"),
        ("32", "48000000000", "11 048000000000"),
        ("32", "12", "02 12"),
        # n LLLVAR: two BCD length bytes counting digits, left-aligned, trailing 0 when odd.
        ("60", "22000001000600", "0014 22000001000600"),
        ("60", "00000001003", "0011 000000010030"),
        ("60", "2200000100060", "0013 22000001000600"),
        ("61", "000001000123", "0012 000001000123"),
        ("61", "0000010001231204", "0016 0000010001231204"),
        ("48", "0004", "0004 0004"),
        ("48", "123", "0003 1230"),
        # z: = is the nibble D, trailing 0 when odd.
        ("35", "6225880123456783D3012", "21 6225880123456783D30120"),
        ("35", "6225880123456783D30121", "22 6225880123456783D30121"),
        ("36", "996225880123456783D1561", "0023 996225880123456783D15610"),
        # an/ans fixed: ASCII.
        ("37", "123456789012", "313233343536373839303132"),
        ("38", "A1B2C3", "413142324333"),
        ("39", "A0", "4130"),
        ("41", "10000001", "3130303030303031"),
        ("42", "898340154110001", "383938333430313534313130303031"),
        ("49", "156", "313536"),
        # Text LLVAR/LLLVAR: BCD length of the byte count.
        ("44", "ABC", "03 414243"),
        ("54", "1002156C000000001234", "0020 3130303231353643303030303030303031323334"),
        ("59", "A3018134567890123456789", "0023 4133303138313334353637383930313233343536373839"),
        # b fixed and LLLVAR.
        ("52", "72B4F8429002FD2F", "72B4F8429002FD2F"),
        ("64", "4233463933434433", "4233463933434433"),
        ("55", "9F260801020304050607089F2701", "0014 9F260801020304050607089F2701"),
        ("62", "00" * 40, "0040" + "00" * 40),
    ],
)
def test_field_encoding(key: str, value: str, wire: str) -> None:
    assert field_bytes(key, value) == _hex(wire)
    decoded = codec.decode(codec.encode({"t": "0800", key: value}))
    assert decoded[key] == value


def test_field_63_is_gbk_and_counts_bytes() -> None:
    text = "CUP中国银联"
    wire = field_bytes("63", text)
    assert wire == bytes.fromhex("0011") + text.encode("gbk")
    assert codec.decode(codec.encode({"t": "0210", "63": text}))["63"] == text


def test_field_63_at_its_maximum_of_163_bytes() -> None:
    text = "CUP" + "银" * 80  # 3 + 160 bytes
    assert codec.decode(codec.encode({"t": "0210", "63": text}))["63"] == text
    with pytest.raises(MessageFormatError) as caught:
        codec.encode({"t": "0210", "63": text + "A"})
    assert caught.value.field == "63"


def _odd_pan_message(pad_2: str, pad_35: str) -> bytes:
    """Field 2 and track 2 of odd length with the pad nibbles given (spec §2 allows F)."""
    pan = "622588012345678"  # 15 digits
    track = pan + "D30121"  # 21 characters
    return (
        _hex("0200 6000000020000000")  # MTI, bitmap: 2, 3, 35
        + _hex("15" + pan + pad_2)
        + _hex("000000")
        + _hex("21" + track + pad_35)
    )


@pytest.mark.parametrize(("pad_2", "pad_35"), [("0", "0"), ("F", "F"), ("0", "F"), ("F", "0")])
def test_f_pad_accepted_on_input_and_zero_emitted(pad_2: str, pad_35: str) -> None:
    body = _odd_pan_message(pad_2, pad_35)
    message = codec.decode(body)
    assert message["2"] == "622588012345678"
    assert message["35"] == "622588012345678D30121"
    assert codec.encode(message) == _odd_pan_message("0", "0")


def test_f_pad_on_track_3() -> None:
    body = _hex("0800 0000000010000000") + _hex("0003 123F")
    assert codec.decode(body)["36"] == "123"
    assert codec.encode(codec.decode(body)) == _hex("0800 0000000010000000 0003 1230")


def test_f_pad_not_accepted_on_other_left_aligned_fields() -> None:
    body = _hex("0800 0000000000000010") + _hex("0011 00000001003F")
    assert decode_error(body).field == "60"


# --- §1: framing --------------------------------------------------------------------------


def test_frame_length_prefix_counts_what_follows() -> None:
    framed = codec.frame(b"\x60\x00\x03\x00\x00", b"\x60\x31\x00\x00\x00\x00", b"\x08\x00")
    assert framed[:2] == b"\x00\x0d"
    assert len(framed) == 2 + 13


def test_response_tpdu_swaps_addresses() -> None:
    assert codec.response_tpdu(_hex("6000030000")) == _hex("6000000003")
    assert codec.response_tpdu(_hex("6012345678")) == _hex("6056781234")


@pytest.mark.parametrize(
    ("header", "requirement", "expected"),
    [
        ("603100000000", 0, "603100000000"),
        ("603100000000", 3, "603103000000"),
        ("603150311003", 3, "603153311003"),
        ("603157311003", 0, "603150311003"),
    ],
)
def test_response_header_sets_only_the_requirement_nibble(
    header: str, requirement: int, expected: str
) -> None:
    assert codec.response_header(_hex(header), requirement) == _hex(expected)


def test_split_envelope_minimum_and_tpdu_id() -> None:
    minimum = _hex("6000030000 603100000000 0800 0000000000000000")
    assert len(minimum) == codec.ENVELOPE_BYTES_MIN
    assert codec.split_envelope(minimum).body == _hex("0800 0000000000000000")
    with pytest.raises(FrameError):
        codec.split_envelope(minimum[:-1])
    with pytest.raises(FrameError):
        codec.split_envelope(b"")
    with pytest.raises(FrameError):
        codec.split_envelope(b"\x61" + minimum[1:])


def test_message_with_no_fields_decodes() -> None:
    assert codec.decode(_hex("0800 0000000000000000")) == {"t": "0800", "p": "0" * 16}


@pytest.mark.parametrize(
    ("track", "pan", "expiry"),
    [
        ("6225880123456783D3012101", "6225880123456783", "3012"),
        ("6225880123456783D30", "6225880123456783", None),
        ("6225880123456783", None, None),
        ("62258801234D3012", None, "3012"),
        ("6225880123456789012D3012", "6225880123456789012", "3012"),
        ("62258801234567890123D3012", None, "3012"),
    ],
)
def test_track2_parts(track: str, pan: str | None, expiry: str | None) -> None:
    assert codec.track2_pan(track) == pan
    assert codec.track2_expiry(track) == expiry


# --- Malformed messages ------------------------------------------------------------------

V4_OFFSETS: dict[str, int] = {}
"""Byte offset of each V4 field (its length prefix, if any) in ``V4_BODY``."""
_offset = codec.MESSAGE_BYTES_MIN
for _key, _size in (
    ("2", 9),
    ("3", 3),
    ("4", 6),
    ("11", 3),
    ("14", 2),
    ("22", 2),
    ("25", 1),
    ("26", 1),
    ("41", 8),
    ("42", 15),
    ("49", 3),
    ("52", 8),
    ("53", 8),
    ("60", 9),
    ("64", 8),
):
    V4_OFFSETS[_key] = _offset
    _offset += _size
assert _offset == len(V4_BODY)


def _replace(body: bytes, offset: int, new: bytes) -> bytes:
    return body[:offset] + new + body[offset + len(new) :]


def test_message_shorter_than_mti_and_bitmap() -> None:
    for length in range(codec.MESSAGE_BYTES_MIN):
        error = decode_error(V4_BODY[:length])
        assert error.field is None
        assert (error.mti, error.tid, error.stan) == (None, None, None)


@pytest.mark.parametrize(
    ("cut_in", "tid", "stan"),
    [
        ("2", None, None),
        ("4", None, None),
        ("14", None, "000123"),
        ("42", "10000001", "000123"),
        ("60", "10000001", "000123"),
        ("64", "10000001", "000123"),
    ],
)
def test_truncated_message_names_the_field_it_ends_in(
    cut_in: str, tid: str | None, stan: str | None
) -> None:
    error = decode_error(V4_BODY[: V4_OFFSETS[cut_in] + 1])
    assert error.field == cut_in
    assert (error.mti, error.tid, error.stan) == ("0200", tid, stan)
    assert error.position is not None


def test_truncated_at_a_field_boundary_names_the_missing_field() -> None:
    error = decode_error(V4_BODY[: V4_OFFSETS["41"]])
    assert error.field == "41"
    assert (error.tid, error.stan) == (None, "000123")


def test_extra_bytes_after_the_last_field() -> None:
    error = decode_error(V4_BODY + b"\x00")
    assert error.field == "64"
    assert error.position == len(V4_BODY)
    assert (error.mti, error.tid, error.stan) == ("0200", "10000001", "000123")


def test_undefined_field_in_the_bitmap() -> None:
    error = decode_error(with_bitmap_bit(V4_BODY, 5))
    assert error.field == "5"
    assert error.position == codec.MTI_BYTES
    assert (error.mti, error.tid, error.stan) == ("0200", None, None)


def test_undefined_field_after_tid_and_stan_keeps_them() -> None:
    error = decode_error(with_bitmap_bit(V4_BODY, 50))
    assert error.field == "50"
    assert (error.mti, error.tid, error.stan) == ("0200", "10000001", "000123")


@pytest.mark.parametrize("number", [5, 7, 18, 27, 33, 40, 45, 56, 57, 58])
def test_every_undefined_field_is_named(number: int) -> None:
    assert decode_error(with_bitmap_bit(_hex("0800 0000000000000000"), number)).field == str(number)


def test_secondary_bitmap_is_refused() -> None:
    error = decode_error(with_bitmap_bit(V4_BODY, 1))
    assert error.field == "1"
    assert error.position == codec.MTI_BYTES


def test_field_longer_than_its_maximum() -> None:
    body = _hex("0200 4000000000000000 20 62258801234567890123")
    error = decode_error(body)
    assert error.field == "2"
    assert "62258801234567890123" not in str(error)


@pytest.mark.parametrize(("key", "value"), [("60", "0018"), ("61", "0030"), ("48", "0323")])
def test_lllvar_longer_than_its_maximum(key: str, value: str) -> None:
    bit = {"48": 48, "60": 60, "61": 61}[key]
    body = with_bitmap_bit(_hex("0800 0000000000000000"), bit) + _hex(value) + bytes(200)
    assert decode_error(body).field == key


@pytest.mark.parametrize(
    ("key", "nibble_at", "tid", "stan"),
    [
        ("4", 5, "10000001", "000123"),
        ("11", 2, "10000001", None),
        ("3", 0, "10000001", "000123"),
        ("14", 1, "10000001", "000123"),
        ("22", 0, "10000001", "000123"),
        ("53", 7, "10000001", "000123"),
    ],
)
def test_non_digit_nibble_in_a_numeric_field(
    key: str, nibble_at: int, tid: str | None, stan: str | None
) -> None:
    body = bytearray(V4_BODY)
    body[V4_OFFSETS[key] + nibble_at] = 0xA0 | (body[V4_OFFSETS[key] + nibble_at] & 0x0F)
    error = decode_error(bytes(body))
    assert error.field == key
    assert (error.tid, error.stan) == (tid, stan)
    assert V4_PAN not in str(error)


def test_non_digit_in_the_pan() -> None:
    body = _replace(V4_BODY, V4_OFFSETS["2"] + 1, _hex("A2"))
    error = decode_error(body)
    assert error.field == "2"
    assert "A225880123456783" not in str(error)
    assert V4_PAN[2:] not in str(error)


@pytest.mark.parametrize("mti", ["0300", "9999", "0000", "0900", "0310", "0420"])
def test_unknown_mti(mti: str) -> None:
    body = _hex(mti) + V4_BODY[2:]
    error = decode_error(body)
    assert error.field == "t"
    assert (error.tid, error.stan) == ("10000001", "000123")
    assert error.mti == mti


def test_non_numeric_mti() -> None:
    error = decode_error(_hex("0A00") + V4_BODY[2:])
    assert error.field == "t"
    assert error.mti is None


@pytest.mark.parametrize("mti", ["0210", "0810", "0410", "0830", "0510", "0330", "0110", "0230"])
def test_response_mtis_decode(mti: str) -> None:
    assert codec.decode(_hex(mti) + V4_BODY[2:])["t"] == mti


@pytest.mark.parametrize(
    ("key", "length"),
    [("2", "1A"), ("2", "A0"), ("60", "001A"), ("60", "0A14"), ("35", "2F")],
)
def test_length_prefix_that_is_not_bcd(key: str, length: str) -> None:
    bit = int(key)
    body = with_bitmap_bit(_hex("0200 0000000000000000"), bit) + _hex(length) + bytes(40)
    error = decode_error(body)
    assert error.field == key


def test_pad_nibble_neither_zero_nor_f() -> None:
    body = _hex("0200 4000000000000000 15 6225880123456785")
    error = decode_error(body)
    assert error.field == "2"
    assert "622588012345678" not in str(error)


def test_track_with_a_non_track_nibble() -> None:
    body = _hex("0200 0000000020000000 21 6225880123456783E30120")
    error = decode_error(body)
    assert error.field == "35"
    assert "6225880123456783" not in str(error)


def test_text_field_that_is_not_ascii() -> None:
    body = _replace(V4_BODY, V4_OFFSETS["42"], b"\xff")
    error = decode_error(body)
    assert error.field == "42"
    assert (error.tid, error.stan) == ("10000001", "000123")


def test_unprintable_tid_is_not_reported() -> None:
    body = _replace(V4_BODY, V4_OFFSETS["41"], b"\x01")
    body = _replace(body, V4_OFFSETS["4"] + 5, b"\xaa")
    error = decode_error(body)
    assert error.field == "4"
    assert error.tid is None
    assert error.stan == "000123"


def test_63_that_is_not_gbk() -> None:
    body = with_bitmap_bit(_hex("0800 0000000000000000"), 63) + _hex("0002 FFFF")
    assert decode_error(body).field == "63"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"t": "0200", "2": "6" * 20}, "2"),
        ({"t": "0200", "4": "1234"}, "4"),
        ({"t": "0200", "41": "123"}, "41"),
        ({"t": "0200", "52": "00"}, "52"),
        ({"t": "0200", "60": "1" * 18}, "60"),
    ],
)
def test_encode_refuses_values_outside_the_spec(message: dict[str, str], field: str) -> None:
    with pytest.raises(MessageFormatError) as caught:
        codec.encode(message)
    assert caught.value.field == field
    assert "6" * 20 not in str(caught.value)


def test_no_error_message_carries_the_pan() -> None:
    """Whatever breaks, the exception text names fields and positions, not values."""
    breakages = [
        V4_BODY[: V4_OFFSETS["2"] + 5],
        _replace(V4_BODY, V4_OFFSETS["2"], _hex("20")),
        _replace(V4_BODY, V4_OFFSETS["2"], _hex("1A")),
        _replace(V4_BODY, V4_OFFSETS["4"], _hex("AA")),
        with_bitmap_bit(V4_BODY, 50),
        V4_BODY + b"\x01\x02",
        _hex("0300") + V4_BODY[2:],
    ]
    for body in breakages:
        error = decode_error(body)
        for text in (str(error), repr(error), error.reason):
            assert V4_PAN not in text
            assert V4_PAN[-10:] not in text
