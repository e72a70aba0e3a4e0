"""Framing and the ISO 8583 codec of the UnionPay POS dialect (spec §1, §2).

A frame on the wire is ``[length 2B big-endian][TPDU 5B][header 6B][ISO message]``. The
channel (``server``) reads the length prefix and hands this module the rest; this module
splits TPDU and header off, decodes the message with pyiso8583 against ``spec.SPEC`` and
checks what pyiso8583 does not: that numeric fields hold digits, that the bitmap names no
field outside the dialect. It encodes the other way.

Errors say where, never what: a ``MessageFormatError`` names the field and the byte
position, and carries the TID, STAN and MTI when they could be read before the fault (so
the host can answer ``30``), but never a field's value — a PAN or a track must not reach
a log through an exception message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import iso8583
from iso8583.decoder import DecodeError
from iso8583.encoder import EncodeError

from poshub.gateway import spec as dialect
from poshub.gateway.constants import F_STAN, F_TID, MTI, REQUEST_MTIS

LENGTH_PREFIX_BYTES: Final = 2
TPDU_BYTES: Final = 5
HEADER_BYTES: Final = 6
TPDU_ID: Final = 0x60
MTI_BYTES: Final = 2
BITMAP_BYTES: Final = 8
MESSAGE_BYTES_MIN: Final = MTI_BYTES + BITMAP_BYTES
ENVELOPE_BYTES_MIN: Final = TPDU_BYTES + HEADER_BYTES + MESSAGE_BYTES_MIN

Message = dict[str, str]
"""A decoded message: pyiso8583's dict, keyed ``"t"`` (MTI), ``"p"`` (bitmap) and field
numbers as strings; BCD and binary fields as upper-case hex text."""


class FrameError(Exception):
    """The bytes cannot be a frame of this dialect (the connection is closed)."""


class MessageFormatError(Exception):
    """A frame whose ISO message does not follow the dialect (answered with ``30`` when
    the TID and STAN could be read)."""

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        position: int | None = None,
        partial: Message | None = None,
    ) -> None:
        where = f" (field {field}" + (f", byte {position})" if position is not None else ")")
        super().__init__(reason + (where if field is not None else ""))
        self.reason = reason
        self.field = field
        self.position = position
        partial = partial or {}
        self.mti: str | None = _readable(partial.get(MTI), 4)
        self.tid: str | None = _readable_text(partial.get(F_TID), 8)
        self.stan: str | None = _readable(partial.get(F_STAN), 6)


def _readable(value: str | None, length: int) -> str | None:
    if value is not None and len(value) == length and value.isdigit():
        return value
    return None


def _readable_text(value: str | None, length: int) -> str | None:
    if value is not None and len(value) == length and value.isascii() and value.isprintable():
        return value
    return None


@dataclass(frozen=True, slots=True)
class Envelope:
    """One frame without its length prefix: TPDU, application header and ISO message."""

    tpdu: bytes
    header: bytes
    body: bytes


def split_envelope(payload: bytes) -> Envelope:
    """TPDU, header and message of a frame's payload (everything after the length)."""
    if len(payload) < ENVELOPE_BYTES_MIN:
        raise FrameError("frame shorter than TPDU, header, MTI and bitmap")
    if payload[0] != TPDU_ID:
        raise FrameError("TPDU does not start with 60")
    return Envelope(
        tpdu=payload[:TPDU_BYTES],
        header=payload[TPDU_BYTES : TPDU_BYTES + HEADER_BYTES],
        body=payload[TPDU_BYTES + HEADER_BYTES :],
    )


def response_tpdu(tpdu: bytes) -> bytes:
    """The request's TPDU with source and destination swapped (spec §1.2)."""
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


def response_header(header: bytes, requirement: int = 0) -> bytes:
    """The request's header with the processing-requirement nibble set (spec §1.3)."""
    return header[:2] + bytes([(header[2] & 0xF0) | (requirement & 0x0F)]) + header[3:6]


def frame(tpdu: bytes, header: bytes, body: bytes) -> bytes:
    """A complete frame: 2-byte big-endian length, TPDU, header, message."""
    length = len(tpdu) + len(header) + len(body)
    return length.to_bytes(LENGTH_PREFIX_BYTES, "big") + tpdu + header + body


_pad_variants: dict[frozenset[str], dict[str, dict[str, Any]]] = {frozenset(): dialect.SPEC}


def _spec_with_pad_f(fields: frozenset[str]) -> dict[str, dict[str, Any]]:
    spec = _pad_variants.get(fields)
    if spec is None:
        spec = {**dialect.SPEC, **{f: dialect.SPEC_PAD_F[f] for f in fields}}
        _pad_variants[fields] = spec
    return spec


def decode(body: bytes) -> Message:
    """Decode and check one ISO message (MTI onwards). Raises ``MessageFormatError``."""
    if len(body) < MESSAGE_BYTES_MIN:
        raise MessageFormatError("message shorter than MTI and bitmap")
    if body[MTI_BYTES] & 0x80:
        # Bit 1: a secondary bitmap, which this dialect never uses (spec §1.4).
        raise MessageFormatError("secondary bitmap present", field="1", position=MTI_BYTES)
    undefined = _first_undefined_field(body)
    if undefined is not None:
        # pyiso8583 would stop at such a field with a bare KeyError, losing which field it
        # was and everything read before it.
        raise MessageFormatError(
            "field not in the dialect",
            field=str(undefined),
            position=MTI_BYTES,
            partial=_fields_before(body, undefined),
        )
    message = _decode_fields(body)
    _check(message)
    return message


_UNDEFINED_MASK: Final = sum(
    1 << (BITMAP_BYTES * 8 - number)
    for number in range(2, BITMAP_BYTES * 8 + 1)
    if str(number) not in dialect.SPEC
)
"""Bits of the primary bitmap naming fields the dialect does not define."""


def _first_undefined_field(body: bytes) -> int | None:
    # One mask test on the common path (every request); the loop only for a bad bitmap.
    bitmap = int.from_bytes(body[MTI_BYTES:MESSAGE_BYTES_MIN], "big")
    if not bitmap & _UNDEFINED_MASK:
        return None
    for number in range(2, BITMAP_BYTES * 8 + 1):
        if bitmap >> (BITMAP_BYTES * 8 - number) & 1 and str(number) not in dialect.SPEC:
            return number
    return None


def _fields_before(body: bytes, number: int) -> Message:
    """MTI, TID and STAN when they precede field ``number``: the message is read again
    with a bitmap naming only the fields before it."""
    bitmap = int.from_bytes(body[MTI_BYTES:MESSAGE_BYTES_MIN], "big")
    earlier = bitmap & ~((1 << (BITMAP_BYTES * 8 + 1 - number)) - 1)
    head = body[:MTI_BYTES] + earlier.to_bytes(BITMAP_BYTES, "big")
    try:
        message = _decode_fields(head + body[MESSAGE_BYTES_MIN:])
    except MessageFormatError as error:  # normally: extra data where the field began
        return {
            key: value
            for key, value in ((MTI, error.mti), (F_TID, error.tid), (F_STAN, error.stan))
            if value is not None
        }
    return message


def _decode_fields(body: bytes) -> Message:
    """pyiso8583's decode, retried with ``F`` pads where the spec allows them."""
    pad_f: frozenset[str] = frozenset()
    while True:
        try:
            message, _ = iso8583.decode(body, _spec_with_pad_f(pad_f))
            break
        except DecodeError as error:
            field = str(error.field) if error.field is not None else None
            # The spec lets a terminal pad fields 2, 35 and 36 with F instead of 0.
            if field in dialect.PAD_F_FIELDS and field not in pad_f:
                pad_f = pad_f | {field}
                continue
            raise MessageFormatError(
                _decode_reason(error.msg),
                field=field,
                position=error.pos,
                partial=dict(error.doc_dec),
            ) from None
        except (ValueError, LookupError, TypeError):
            raise MessageFormatError("undecodable message") from None
    return message


def _decode_reason(text: str) -> str:
    """pyiso8583's reason without any data it may quote (it quotes none today; this keeps
    it that way if a future version does)."""
    return text.split(":", 1)[0][:120]


def _check(message: Message) -> None:
    mti = message[MTI]
    if not mti.isdigit():
        raise MessageFormatError("MTI is not numeric", field="t", partial=message)
    if mti not in REQUEST_MTIS and not _is_response_mti(mti):
        raise MessageFormatError("unknown MTI", field="t", partial=message)
    for key, value in message.items():
        if key in dialect.NUMERIC_FIELDS and not value.isdigit():
            raise MessageFormatError("non-digit in a numeric field", field=key, partial=message)
        if key in dialect.TRACK_FIELDS and not _is_track(value):
            raise MessageFormatError("invalid track data", field=key, partial=message)


def _is_response_mti(mti: str) -> bool:
    return (
        len(mti) == 4
        and mti[2] in "13579"
        and mti[:2] + str(int(mti[2]) - 1) + mti[3] in REQUEST_MTIS
    )


def _is_track(value: str) -> bool:
    return bool(value) and all(c.isdigit() or c == "D" for c in value)


def encode(message: Message) -> bytes:
    """Encode a message (``"t"`` and fields; the bitmap is computed)."""
    try:
        body, _ = iso8583.encode(dict(message), dialect.SPEC)
    except EncodeError as error:
        raise MessageFormatError(
            _decode_reason(error.msg), field=str(error.field) if error.field else None
        ) from None
    return bytes(body)


def track2_pan(track: str) -> str | None:
    """The PAN part of a track 2 (``D`` is the separator), or None if it has none."""
    pan, separator, _ = track.partition("D")
    if not separator or not 12 <= len(pan) <= 19:
        return None
    return pan


def track2_expiry(track: str) -> str | None:
    """YYMM after the separator of a track 2, or None."""
    _, separator, rest = track.partition("D")
    return rest[:4] if separator and len(rest) >= 4 else None
