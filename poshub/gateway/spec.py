"""The UnionPay POS dialect of ISO 8583 as data for pyiso8583 (spec §2, §3).

Numbers are packed BCD (``data_enc="b"`` with lengths in nibbles), text is ASCII (GBK in
field 63), variable lengths are BCD: one byte for LLVAR, two for LLLVAR. Field 22 is the
one left-aligned fixed numeric field; fields 2, 35, 36, 48, 60 and 61 are left-aligned
variable ones, padded with a trailing ``0`` nibble when their length is odd. On input the
spec also allows ``F`` as the pad of fields 2, 35 and 36 (:data:`SPEC_PAD_F`).

TPDU and application header are not part of the pyiso8583 message: ``codec`` frames them.
"""

from __future__ import annotations

import copy
from typing import Any, Final

_Spec = dict[str, dict[str, Any]]


def _bcd_fixed(digits: int, desc: str, *, left_aligned: bool = False) -> dict[str, Any]:
    field: dict[str, Any] = {
        "data_enc": "b",
        "len_enc": "b",
        "len_type": 0,
        "max_len": digits,
        "len_count": "nibbles",
        "desc": desc,
    }
    if digits % 2:
        field["right_pad" if left_aligned else "left_pad"] = "0"
    return field


def _bcd_var(
    length_bytes: int, max_digits: int, desc: str, *, left_aligned: bool = True
) -> dict[str, Any]:
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": length_bytes,
        "max_len": max_digits,
        "len_count": "nibbles",
        "right_pad" if left_aligned else "left_pad": "0",
        "desc": desc,
    }


def _text_fixed(length: int, desc: str) -> dict[str, Any]:
    return {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": 0,
        "max_len": length,
        "desc": desc,
    }


def _text_var(
    length_bytes: int, max_bytes: int, desc: str, *, enc: str = "ascii"
) -> dict[str, Any]:
    return {
        "data_enc": enc,
        "len_enc": "bcd",
        "len_type": length_bytes,
        "max_len": max_bytes,
        "desc": desc,
    }


def _binary_fixed(length: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": length, "desc": desc}


def _binary_var(length_bytes: int, max_bytes: int, desc: str) -> dict[str, Any]:
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": length_bytes,
        "max_len": max_bytes,
        "desc": desc,
    }


LL: Final = 1
"""A BCD LLVAR length prefix is one byte."""
LLL: Final = 2
"""A BCD LLLVAR length prefix is two bytes."""

SPEC: Final[_Spec] = {
    "h": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 0, "desc": "Header"},
    "t": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 2, "desc": "MTI"},
    "p": _binary_fixed(8, "Bitmap"),
    "1": _binary_fixed(8, "Secondary bitmap (never used in this dialect)"),
    "2": _bcd_var(LL, 19, "Primary account number"),
    "3": _bcd_fixed(6, "Processing code"),
    "4": _bcd_fixed(12, "Amount, transaction (fen)"),
    "11": _bcd_fixed(6, "STAN"),
    "12": _bcd_fixed(6, "Local time hhmmss"),
    "13": _bcd_fixed(4, "Local date MMDD"),
    "14": _bcd_fixed(4, "Expiry YYMM"),
    "15": _bcd_fixed(4, "Settlement date MMDD"),
    "22": _bcd_fixed(3, "POS entry mode", left_aligned=True),
    "23": _bcd_fixed(3, "Card sequence number"),
    "25": _bcd_fixed(2, "POS condition code"),
    "26": _bcd_fixed(2, "PIN capture code"),
    "32": _bcd_var(LL, 11, "Acquiring institution ID", left_aligned=False),
    "35": _bcd_var(LL, 37, "Track 2"),
    "36": _bcd_var(LLL, 104, "Track 3"),
    "37": _text_fixed(12, "Retrieval reference number"),
    "38": _text_fixed(6, "Authorization ID response"),
    "39": _text_fixed(2, "Response code"),
    "41": _text_fixed(8, "Terminal ID"),
    "42": _text_fixed(15, "Merchant ID"),
    "44": _text_var(LL, 25, "Additional response data"),
    "48": _bcd_var(LLL, 322, "Additional data - private"),
    "49": _text_fixed(3, "Currency code"),
    "52": _binary_fixed(8, "PIN data"),
    "53": _bcd_fixed(16, "Security related control information"),
    "54": _text_var(LLL, 20, "Balance"),
    "55": _binary_var(LLL, 255, "ICC system related data"),
    "59": _text_var(LLL, 999, "Private (TLV)"),
    "60": _bcd_var(LLL, 17, "Reserved private 60"),
    "61": _bcd_var(LLL, 29, "Original message"),
    "62": _binary_var(LLL, 512, "Reserved private 62"),
    "63": _text_var(LLL, 163, "Reserved private 63", enc="gbk"),
    "64": _binary_fixed(8, "MAC"),
}

PAD_F_FIELDS: Final = ("2", "35", "36")
"""Fields whose trailing pad nibble may be ``F`` on input (spec §2)."""


def _with_pad_f(spec: _Spec, fields: tuple[str, ...]) -> _Spec:
    variant = copy.deepcopy(spec)
    for field in fields:
        variant[field]["right_pad"] = "F"
    return variant


SPEC_PAD_F: Final[_Spec] = _with_pad_f(SPEC, PAD_F_FIELDS)
"""The same dialect, reading ``F`` instead of ``0`` as the pad of fields 2, 35 and 36."""

NUMERIC_FIELDS: Final = frozenset(
    k for k, v in SPEC.items() if v["data_enc"] == "b" and v.get("len_count") == "nibbles"
) - {"35", "36"}
"""BCD fields whose nibbles must all be decimal digits."""

TRACK_FIELDS: Final = frozenset({"35", "36"})
"""BCD fields whose nibbles are digits and the separator ``D`` (``=``)."""
