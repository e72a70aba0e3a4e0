"""Every identifier PosHub issues is generated here.

MID: 15 digits = acquirer code (3) + area code (4) + MCC (4) + sequence (4),
e.g. ``898 3401 5411 0001``. TID: 8 characters. RRN: 12 digits. STAN: 6 digits.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

MID_LENGTH = 15
TID_LENGTH = 8
MID_SEQUENCE_MAX = 9999
_TRACKING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I, O, 0, 1: read over the phone


def new_id() -> str:
    """An opaque, unguessable primary key for rows the public can name (32 hex digits)."""
    return uuid.uuid4().hex


def new_access_token() -> str:
    """A bearer secret for an applicant; only its SHA-256 is stored."""
    return secrets.token_urlsafe(32)


def new_tracking_number(today: dt.date) -> str:
    """``AP20261121-7KQ3MZ``: dated, short enough to read aloud, not guessable."""
    suffix = "".join(secrets.choice(_TRACKING_ALPHABET) for _ in range(6))
    return f"AP{today:%Y%m%d}-{suffix}"


def mid_prefix(acquirer_code: str, area_code: str, mcc: str) -> str:
    for name, value, length in (
        ("acquirer_code", acquirer_code, 3),
        ("area_code", area_code, 4),
        ("mcc", mcc, 4),
    ):
        if len(value) != length or not value.isdigit():
            raise ValueError(f"{name} must be {length} digits")
    return f"{acquirer_code}{area_code}{mcc}"


def make_mid(acquirer_code: str, area_code: str, mcc: str, sequence: int) -> str:
    if not 1 <= sequence <= MID_SEQUENCE_MAX:
        raise ValueError(f"MID sequence must be 1..{MID_SEQUENCE_MAX}")
    return f"{mid_prefix(acquirer_code, area_code, mcc)}{sequence:04d}"


def is_valid_mid(mid: str) -> bool:
    return len(mid) == MID_LENGTH and mid.isdigit() and mid[-4:] != "0000"


TID_SEQUENCE_NAME = "tid"
TID_FIRST = 10000001
"""TIDs are 8 digits from ``10000001`` (the demo terminal of DESIGN §7 is the first)."""
TID_MAX = 99999999


def make_tid(sequence_value: int) -> str:
    """The TID for a value of the ``tid`` sequence (1 → ``10000001``)."""
    tid = TID_FIRST + sequence_value - 1
    if not TID_FIRST <= tid <= TID_MAX:
        raise ValueError("TID sequence exhausted")
    return f"{tid:08d}"


def is_valid_tid(tid: str) -> bool:
    return len(tid) == TID_LENGTH and tid.isdigit()


CONTRACT_SEQUENCE_NAME = "contract:"
CONTRACT_SEQUENCE_MAX = 999_999


def make_contract_number(acquirer_code: str, year: int, sequence: int) -> str:
    """``HT898-2026-000001``: acquirer, year of signing, yearly sequence (合同编号)."""
    if not 1 <= sequence <= CONTRACT_SEQUENCE_MAX:
        raise ValueError("contract sequence out of range")
    return f"HT{acquirer_code}-{year}-{sequence:06d}"


WORK_ORDER_SEQUENCE_NAME = "work_order:"
WORK_ORDER_SEQUENCE_MAX = 9_999_999


def make_work_order_number(year: int, sequence: int) -> str:
    """``WO2026-0000001``: read over the phone by technicians and merchants."""
    if not 1 <= sequence <= WORK_ORDER_SEQUENCE_MAX:
        raise ValueError("work-order sequence out of range")
    return f"WO{year}-{sequence:07d}"


RISK_CASE_SEQUENCE_NAME = "risk_case:"
"""Followed by the business date: one sequence per day."""
RISK_CASE_SEQUENCE_MAX = 9999


def make_risk_case_reference(day: dt.date, sequence: int) -> str:
    """``RC-20261204-0001``: the business date it was opened and the day's sequence, read
    out between risk officers and quoted in a suspicious-transaction report."""
    if not 1 <= sequence <= RISK_CASE_SEQUENCE_MAX:
        raise ValueError("risk case sequence out of range")
    return f"RC-{day:%Y%m%d}-{sequence:04d}"
