"""Property tests of the codec.

(a) Whatever bytes a terminal sends, ``codec.decode`` returns a message or raises
``MessageFormatError`` — never anything else, which would escape the pipeline's ``30``
path — and the error text never quotes a PAN.
(b) Every message made of values the dialect allows survives encode → decode unchanged.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from poshub.gateway import codec, spec
from poshub.gateway.codec import MessageFormatError
from poshub.gateway.constants import REQUEST_MTIS, response_mti
from tests.gateway.test_codec import ANNOTATED_SALE, SEED_BODIES, V4_PAN

SEEDS: dict[str, bytes] = {**SEED_BODIES, "annotated_sale": codec.encode(ANNOTATED_SALE)}
PANS = (V4_PAN, ANNOTATED_SALE["2"])

FUZZ = settings(max_examples=500, deadline=None)
ROUND_TRIP = settings(max_examples=300, deadline=None)


# --- (a) mutated real messages --------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    body = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "extend"]))
        if op == "extend":
            body += draw(st.binary(min_size=1, max_size=12))
            continue
        if op == "insert":
            at = draw(st.integers(0, len(body)))
            body[at:at] = draw(st.binary(min_size=1, max_size=4))
            continue
        if not body:
            continue
        at = draw(st.integers(0, len(body) - 1))
        if op == "flip":
            body[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            body[at] = draw(st.integers(0, 255))
        elif op == "delete":
            del body[at : at + draw(st.integers(1, 4))]
        else:
            del body[at:]
    return bytes(body)


def _decode_or_format_error(body: bytes) -> dict[str, str] | None:
    """The decoded message, or None after checking the ``MessageFormatError`` raised (the
    only exception allowed to escape)."""
    try:
        return codec.decode(body)
    except MessageFormatError as caught:
        error = caught
    for text in (str(error), repr(error), error.reason):
        for pan in PANS:
            assert pan[-10:] not in text
    for value, length in ((error.mti, 4), (error.stan, 6)):
        assert value is None or (len(value) == length and value.isdigit())
    assert error.tid is None or (len(error.tid) == 8 and error.tid.isprintable())
    return None


@FUZZ
@given(mutated())
def test_mutated_messages_decode_or_raise_format_error(body: bytes) -> None:
    message = _decode_or_format_error(body)
    if message is not None:
        # Whatever was accepted is a message of the dialect: it re-encodes, and reads the
        # same again (F pads come back as 0, so bytes may differ, values may not).
        again = codec.decode(codec.encode(message))
        assert again == message


@FUZZ
@given(st.binary(max_size=120))
def test_arbitrary_bytes_decode_or_raise_format_error(body: bytes) -> None:
    _decode_or_format_error(body)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.binary(min_size=8, max_size=8))
def test_any_bitmap_over_real_field_data(name: str, bitmap: bytes) -> None:
    body = SEEDS[name]
    _decode_or_format_error(body[: codec.MTI_BYTES] + bitmap + body[codec.MESSAGE_BYTES_MIN :])


# --- (b) round trip of valid values ----------------------------------------------------------

_DIGITS = "0123456789"
_TRACK = _DIGITS + "D"
_ASCII = st.characters(min_codepoint=0, max_codepoint=127)
_GBK = st.characters(codec="gbk")


def _value(key: str, field: dict[str, Any]) -> st.SearchStrategy[str]:
    """Values of field ``key`` that the dialect allows (spec §2, §3)."""
    fixed = field["len_type"] == 0
    max_len: int = field["max_len"]
    if key in spec.NUMERIC_FIELDS or key in spec.TRACK_FIELDS:
        # Present-but-empty numeric and track fields are refused on input (they carry no
        # digit), so valid values have at least one character.
        alphabet = _TRACK if key in spec.TRACK_FIELDS else _DIGITS
        low = max_len if fixed else 1
        return st.text(alphabet=alphabet, min_size=low, max_size=max_len)
    if field["data_enc"] == "b":
        low = max_len if fixed else 0
        return st.binary(min_size=low, max_size=max_len).map(lambda b: b.hex().upper())
    if field["data_enc"] == "gbk":
        return st.text(alphabet=_GBK, max_size=max_len).filter(
            lambda text: len(text.encode("gbk")) <= max_len
        )
    low = max_len if fixed else 0
    return st.text(alphabet=_ASCII, min_size=low, max_size=max_len)


FIELD_VALUES: dict[str, st.SearchStrategy[str]] = {
    key: _value(key, field) for key, field in spec.SPEC.items() if key.isdigit() and key != "1"
}
MTIS = sorted(REQUEST_MTIS) + sorted(response_mti(m) for m in REQUEST_MTIS)


@st.composite
def valid_messages(draw: st.DrawFn) -> dict[str, str]:
    keys = draw(st.sets(st.sampled_from(sorted(FIELD_VALUES, key=int)), max_size=12))
    message = {"t": draw(st.sampled_from(MTIS))}
    for key in sorted(keys, key=int):
        message[key] = draw(FIELD_VALUES[key])
    return message


@ROUND_TRIP
@given(valid_messages())
def test_round_trip_of_valid_values(message: dict[str, str]) -> None:
    body = codec.encode(message)
    decoded = codec.decode(body)
    assert decoded.pop("p") == body[codec.MTI_BYTES : codec.MESSAGE_BYTES_MIN].hex().upper()
    assert decoded == message
    assert codec.encode(decoded) == body


@ROUND_TRIP
@given(st.sampled_from(sorted(FIELD_VALUES, key=int)), st.data())
def test_round_trip_of_each_field_alone(key: str, data: st.DataObject) -> None:
    message = {"t": "0200", key: data.draw(FIELD_VALUES[key])}
    assert {k: v for k, v in codec.decode(codec.encode(message)).items() if k != "p"} == message


@ROUND_TRIP
@given(st.sampled_from(sorted(spec.PAD_F_FIELDS)), st.data())
def test_f_padded_odd_fields_read_as_zero_padded(key: str, data: st.DataObject) -> None:
    alphabet = _TRACK if key in spec.TRACK_FIELDS else _DIGITS
    max_len = spec.SPEC[key]["max_len"]
    odd = data.draw(st.integers(0, (max_len - 1) // 2)) * 2 + 1
    value = data.draw(st.text(alphabet=alphabet, min_size=odd, max_size=odd))
    body = bytearray(codec.encode({"t": "0200", key: value}))
    body[-1] |= 0x0F  # the pad nibble is the last nibble of the message
    decoded = codec.decode(bytes(body))
    assert decoded[key] == value
    assert codec.encode(decoded)[-1] & 0x0F == 0
