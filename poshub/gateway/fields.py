"""Sub-fields of the dialect's private fields: 48, 54, 59, 60, 61, 62 (spec §4, §5.6, §11).

Pure functions from field text to named values and back. A malformed sub-field raises
``SubfieldError`` naming the field, which the pipeline answers with ``30``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from poshub.gateway.constants import (
    F_ORIGINAL,
    F_PRIVATE_48,
    F_PRIVATE_59,
    F_RESERVED_60,
    SETTLE_REQUEST,
    NetworkCode,
)

FIELD60_DIGITS_MIN: Final = 8
FIELD60_DIGITS_MAX: Final = 17
SETTLEMENT_48_DIGITS: Final = 62
UPLOAD_RECORD_DIGITS: Final = 40
UPLOAD_RECORDS_MAX: Final = 8
TLV_ITEMS_MAX: Final = 16
MERCHANT_NAME_BYTES: Final = 40
AMOUNT_DIGITS: Final = 12


class SubfieldError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field}: {reason}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Field60:
    type_code: str
    """60.1 transaction type code."""
    batch: str
    """60.2 batch number."""
    network_code: str
    """60.3 network management information code (``000`` when absent)."""
    rest: str
    """60.4 onwards, kept to echo."""

    @classmethod
    def parse(cls, text: str) -> Field60:
        if not FIELD60_DIGITS_MIN <= len(text) <= FIELD60_DIGITS_MAX or not text.isdigit():
            raise SubfieldError(F_RESERVED_60, "8 to 17 digits expected")
        return cls(
            type_code=text[:2],
            batch=text[2:8],
            network_code=text[8:11] if len(text) >= 11 else NetworkCode.NONE.value,
            rest=text[11:],
        )

    def text(self) -> str:
        return self.type_code + self.batch + self.network_code + self.rest

    def with_batch(self, batch: str) -> Field60:
        return Field60(self.type_code, batch, self.network_code, self.rest)


@dataclass(frozen=True, slots=True)
class Field61:
    batch: str
    stan: str
    date: str | None
    """MMDD of the original (61.3), when sent."""

    @classmethod
    def parse(cls, text: str) -> Field61:
        if len(text) < 12 or not text.isdigit():
            raise SubfieldError(F_ORIGINAL, "original batch and STAN expected")
        date = text[12:16] if len(text) >= 16 else None
        return cls(batch=text[:6], stan=text[6:12], date=date)

    def text(self) -> str:
        return self.batch + self.stan + (self.date or "")


@dataclass(frozen=True, slots=True)
class Totals:
    debit_fen: int
    debit_count: int
    credit_fen: int
    credit_count: int

    def __post_init__(self) -> None:
        if not (
            0 <= self.debit_fen < 10**AMOUNT_DIGITS and 0 <= self.credit_fen < 10**AMOUNT_DIGITS
        ):
            raise SubfieldError(F_PRIVATE_48, "amount out of range")
        if not (0 <= self.debit_count < 1000 and 0 <= self.credit_count < 1000):
            raise SubfieldError(F_PRIVATE_48, "count out of range")

    def digits(self) -> str:
        return (
            f"{self.debit_fen:012d}{self.debit_count:03d}"
            f"{self.credit_fen:012d}{self.credit_count:03d}"
        )

    @classmethod
    def from_digits(cls, text: str) -> Totals:
        return cls(int(text[0:12]), int(text[12:15]), int(text[15:27]), int(text[27:30]))


ZERO_TOTALS: Final = Totals(0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Settlement48:
    """Field 48 of a 0500/0510: domestic and foreign totals with their result digits."""

    domestic: Totals
    domestic_result: str
    foreign: Totals
    foreign_result: str

    @classmethod
    def parse(cls, text: str) -> Settlement48:
        if len(text) != SETTLEMENT_48_DIGITS or not text.isdigit():
            raise SubfieldError(F_PRIVATE_48, "62 digits of settlement totals expected")
        return cls(
            domestic=Totals.from_digits(text[0:30]),
            domestic_result=text[30],
            foreign=Totals.from_digits(text[31:61]),
            foreign_result=text[61],
        )

    def text(self) -> str:
        return (
            self.domestic.digits()
            + self.domestic_result
            + self.foreign.digits()
            + self.foreign_result
        )

    @classmethod
    def request(cls, domestic: Totals, foreign: Totals = ZERO_TOTALS) -> Settlement48:
        return cls(domestic, SETTLE_REQUEST, foreign, SETTLE_REQUEST)


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """One 40-digit batch-upload record (spec §5.6)."""

    foreign: bool
    stan: str
    pan_digits: str
    """20 digits, the PAN right-aligned and zero-filled (zeros for QR payments)."""
    amount_fen: int

    def text(self) -> str:
        return (
            ("01" if self.foreign else "00")
            + self.stan
            + self.pan_digits
            + f"{self.amount_fen:012d}"
        )


def parse_batch_upload(text: str) -> list[UploadRecord]:
    if len(text) < 2 or not text.isdigit():
        raise SubfieldError(F_PRIVATE_48, "record count expected")
    count = int(text[:2])
    if not 1 <= count <= UPLOAD_RECORDS_MAX or len(text) != 2 + count * UPLOAD_RECORD_DIGITS:
        raise SubfieldError(F_PRIVATE_48, "1 to 8 records of 40 digits expected")
    records = []
    for index in range(count):
        record = text[2 + index * UPLOAD_RECORD_DIGITS : 2 + (index + 1) * UPLOAD_RECORD_DIGITS]
        if record[:2] not in ("00", "01"):
            raise SubfieldError(F_PRIVATE_48, "card organisation flag must be 00 or 01")
        records.append(
            UploadRecord(
                foreign=record[:2] == "01",
                stan=record[2:8],
                pan_digits=record[8:28],
                amount_fen=int(record[28:40]),
            )
        )
    return records


def build_batch_upload(records: list[UploadRecord]) -> str:
    if not 1 <= len(records) <= UPLOAD_RECORDS_MAX:
        raise ValueError("a batch upload carries 1 to 8 records")
    return f"{len(records):02d}" + "".join(r.text() for r in records)


def parse_upload_end(text: str) -> int:
    """Field 48 of a batch-upload-end: the n4 number of records uploaded."""
    if len(text) != 4 or not text.isdigit():
        raise SubfieldError(F_PRIVATE_48, "4-digit record count expected")
    return int(text)


def parse_tlv(text: str) -> dict[str, str]:
    """Field 59: items of tag an2, length n3 (ASCII) and value."""
    items: dict[str, str] = {}
    offset = 0
    while offset < len(text):
        if len(items) >= TLV_ITEMS_MAX:
            raise SubfieldError(F_PRIVATE_59, "too many TLV items")
        tag, length_text = text[offset : offset + 2], text[offset + 2 : offset + 5]
        if len(tag) != 2 or len(length_text) != 3 or not length_text.isdigit():
            raise SubfieldError(F_PRIVATE_59, "TLV item header malformed")
        length = int(length_text)
        value = text[offset + 5 : offset + 5 + length]
        if len(value) != length:
            raise SubfieldError(F_PRIVATE_59, "TLV item shorter than its length")
        items[tag] = value
        offset += 5 + length
    return items


def build_tlv(items: dict[str, str]) -> str:
    return "".join(f"{tag}{len(value):03d}{value}" for tag, value in items.items())


def balance54(balance_fen: int, *, account_type: str = "10", currency: str = "156") -> str:
    """Field 54 of a balance-inquiry response (spec §3): type, amount type, currency,
    sign and amount."""
    sign = "C" if balance_fen >= 0 else "D"
    return f"{account_type}02{currency}{sign}{abs(balance_fen):012d}"


def parse_balance54(text: str) -> int:
    # 54.1 n2, 54.2 n2, 54.3 n3: the sign is the 8th character, the amount the last 12.
    if len(text) != 20 or text[7] not in "CD" or not text[8:].isdigit():
        raise SubfieldError("54", "balance malformed")
    amount = int(text[8:])
    return amount if text[7] == "C" else -amount


def parameter_download62(merchant_name: str, timeout_seconds: int) -> bytes:
    """Field 62 of the 0810 to a 0800/360 (spec §11.10): ``12`` timeout, ``22`` name."""
    name = merchant_name.encode("gbk", errors="replace")
    if len(name) > MERCHANT_NAME_BYTES:
        # Cut on a character boundary: half a two-byte GBK character is not text.
        name = name[:MERCHANT_NAME_BYTES].decode("gbk", errors="ignore").encode("gbk")
    name = name + b" " * (MERCHANT_NAME_BYTES - len(name))
    return b"12" + f"{min(timeout_seconds, 99):02d}".encode() + b"22" + name
