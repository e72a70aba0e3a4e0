"""A POS terminal over TCP: the terminal side of the UnionPay POS dialect.

``../shared/specs/unionpay-pos-8583.md`` ("the spec") is the contract; section numbers
below refer to it. :class:`TerminalClient` signs on, performs every transaction of §5,
keeps the reversal protocol of §5.5 and settles its batch (§5.6). ``poshub terminal …``
(:func:`add_cli`) wraps it for people; ``poshub loadgen`` reuses its message builders.

What a terminal remembers (:class:`TerminalState`: STAN counter, batch, journal, owed
reversal or advice) can be saved to a JSON file between CLI runs. That file never holds a
full PAN, track data, a PIN, a PIN block or a key: the journal keeps the masked PAN, an
owed message is kept without its card fields, and working keys live only in memory (a
new process signs on again). When an owed message needs its card fields and the process
that had them is gone, the card is read again (the CLI asks for ``--card``), as a real
terminal asks the cardholder to swipe again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from poshub.core.i18n import translations
from poshub.gateway import codec
from poshub.gateway.codec import FrameError, Message, MessageFormatError
from poshub.gateway.constants import (
    CC_NORMAL,
    CC_PREAUTH,
    CURRENCY_CNY,
    ENTRY_MAGSTRIPE,
    ENTRY_MANUAL,
    ENTRY_QR,
    F_ADDITIONAL_RESPONSE,
    F_AMOUNT,
    F_AUTH_CODE,
    F_BALANCE,
    F_CONDITION_CODE,
    F_CURRENCY,
    F_ENTRY_MODE,
    F_EXPIRY,
    F_ICC,
    F_LOCAL_DATE,
    F_LOCAL_TIME,
    F_MAC,
    F_MID,
    F_ORIGINAL,
    F_PAN,
    F_PIN_BLOCK,
    F_PIN_CAPTURE,
    F_PRIVATE_48,
    F_PRIVATE_59,
    F_PROCESSING_CODE,
    F_RESERVED_60,
    F_RESERVED_62,
    F_RESERVED_63,
    F_RESPONSE_CODE,
    F_RRN,
    F_SECURITY_CONTROL,
    F_SETTLEMENT_DATE,
    F_STAN,
    F_TID,
    F_TRACK2,
    F_TRACK3,
    MAC_MTIS,
    MTI,
    PC_BALANCE,
    PC_PREAUTH,
    PC_PURCHASE,
    PC_VOID,
    PIN_ENTERED,
    PIN_NOT_ENTERED,
    REQUIREMENT_SIGN_ON,
    SECURITY_DOUBLE_PIK,
    SECURITY_SINGLE_PIK,
    SENSITIVE_FIELDS,
    SETTLE_BALANCED,
    SETTLE_REQUEST,
    SIGN_ON_CODES,
    TAG_QR_CODE,
    TAG_QR_VOUCHER,
    UNSIGNED_RESPONSE_CODES,
    Mti,
    NetworkCode,
    Rc,
    TypeCode,
    response_mti,
)
from poshub.gateway.crypto import WorkingKeys, clear_pin_block, read_field62
from poshub.gateway.fields import (
    UPLOAD_RECORDS_MAX,
    Field60,
    Settlement48,
    SubfieldError,
    Totals,
    UploadRecord,
    build_batch_upload,
    build_tlv,
    parse_balance54,
    parse_tlv,
)
from poshub.gateway.response_codes import UNKNOWN_RESPONSE_CODE, response_code_meaning
from poshub.terminals import hsm

if TYPE_CHECKING:
    from poshub.core.settings import Settings

log = logging.getLogger(__name__)

# --- Defaults (spec §11.3, DESIGN §7) -------------------------------------------------------
DEFAULT_TPDU: Final = bytes.fromhex("6000030000")
DEFAULT_HEADER: Final = bytes.fromhex("603100000000")
TEST_TMK_HEX: Final = "0123456789ABCDEFFEDCBA9876543210"
"""The published test master key (DESIGN §7): demo and load-test terminals only."""
DEMO_TID: Final = "10000001"
DEMO_MID: Final = "898340154110001"
TEST_CARD_PAN: Final = "6225880123456783"
"""The spec's V2 card (Luhn-valid, a sandbox test card by §11.14)."""
TEST_CARD_EXPIRY: Final = "3012"
DEFAULT_TIMEOUT_SECONDS: Final = 15.0
"""upterm's default wait (spec §11.11); real terminals wait 30 s."""

STAN_MAX: Final = 999_999
BATCH_MAX: Final = 999_999
REVERSAL_TRIES: Final = 3
"""Sends of one reversal before the terminal gives it up (spec §5.5, §11.11)."""
ADVICE_SENDS: Final = 4
"""Sends of an advice (0220) in one attempt: the first and three identical resends."""
RETRY_PAUSE_SECONDS: Final = 0.2
"""Pause between two sends of the same reversal or advice (lets a restarting host come up)."""
TERMINAL_READ_CAPABILITY: Final = "6"
"""60.4: magstripe + contact + contactless, as the terminals of the spec's examples."""
IC_CONDITION: Final = "0"
"""60.5: no chip fallback."""
PIN_CAPTURE_CODE: Final = "12"
CARD_ORG_CUP: Final = "CUP"
MAC_PLACEHOLDER: Final = "00" * 8
TRACK2_SERVICE_CODE: Final = "101"
TRACK2_DISCRETIONARY: Final = "00000000"
STATE_VERSION: Final = 1
BATCH_ENTRIES_MAX: Final = 500
"""Journal entries of one batch before the terminal asks for settlement (交易笔数已满), as real
terminals do; well below the 999 that field 48's three-digit counts can carry (§5.6)."""

APPROVED_CODES: Final = frozenset({Rc.APPROVED.value, "10"})
"""``00`` and ``10`` (partial approval) move money (spec §9)."""

SECRET_FIELDS: Final = frozenset(
    {F_PAN, F_EXPIRY, F_TRACK2, F_TRACK3, F_PIN_BLOCK, F_PIN_CAPTURE, F_SECURITY_CONTROL, F_ICC}
)
"""Fields kept out of :class:`TerminalState` (PAN, expiry, tracks, PIN and its flags, chip
data): an owed message is stored without them and completed from the card."""


class Kind(StrEnum):
    """What a terminal can do; the value names it in the journal and on the slip."""

    SIGN_ON = "sign_on"
    SIGN_OFF = "sign_off"
    ECHO = "echo"
    PARAMETERS = "parameters"
    BALANCE = "balance"
    SALE = "sale"
    QR_SALE = "qr_sale"
    VOID = "void"
    QR_VOID = "qr_void"
    REFUND = "refund"
    QR_REFUND = "qr_refund"
    PREAUTH = "preauth"
    PREAUTH_CANCEL = "preauth_cancel"
    COMPLETION = "completion"
    COMPLETION_ADVICE = "completion_advice"
    COMPLETION_VOID = "completion_void"
    REVERSAL = "reversal"
    SETTLEMENT = "settlement"


DEBIT_KINDS: Final = frozenset({Kind.SALE, Kind.QR_SALE, Kind.COMPLETION, Kind.COMPLETION_ADVICE})
"""Counted as debits at settlement while neither voided nor reversed (spec §5.6)."""
CREDIT_KINDS: Final = frozenset({Kind.REFUND, Kind.QR_REFUND})
QR_KINDS: Final = frozenset({Kind.QR_SALE, Kind.QR_VOID, Kind.QR_REFUND})
CANCELLING_KINDS: Final = frozenset(
    {Kind.VOID, Kind.QR_VOID, Kind.PREAUTH_CANCEL, Kind.COMPLETION_VOID}
)
"""Approved, these mark their original as voided."""


@dataclass(frozen=True, slots=True)
class _Profile:
    """How a financial transaction is identified and what it carries (spec §5.1, §5.3)."""

    mti: str
    processing: str
    condition: str
    type_code: str
    reversible: bool = False
    advice: bool = False
    amount: bool = True
    original61: int = 0
    """Digits of field 61: 0 none, 12 batch + STAN, 16 with the original's date (§4.2)."""
    rrn: bool = False
    auth_code: bool = False
    card_org: bool = False


_SALE = _Profile(Mti.FINANCIAL_REQUEST, PC_PURCHASE, CC_NORMAL, TypeCode.SALE, reversible=True)
_VOID = _Profile(
    Mti.FINANCIAL_REQUEST,
    PC_VOID,
    CC_NORMAL,
    TypeCode.VOID,
    reversible=True,
    original61=12,
    rrn=True,
    auth_code=True,
)
_REFUND = _Profile(
    Mti.ADVICE, PC_VOID, CC_NORMAL, TypeCode.REFUND, advice=True, original61=16, rrn=True,
    card_org=True,
)  # fmt: skip
PROFILES: Final[dict[Kind, _Profile]] = {
    Kind.BALANCE: _Profile(
        Mti.FINANCIAL_REQUEST, PC_BALANCE, CC_NORMAL, TypeCode.BALANCE, amount=False
    ),
    Kind.SALE: _SALE,
    Kind.QR_SALE: _SALE,
    Kind.VOID: _VOID,
    Kind.QR_VOID: _VOID,
    Kind.REFUND: _REFUND,
    Kind.QR_REFUND: _REFUND,
    Kind.PREAUTH: _Profile(
        Mti.AUTH_REQUEST, PC_PREAUTH, CC_PREAUTH, TypeCode.PREAUTH, reversible=True
    ),
    Kind.PREAUTH_CANCEL: _Profile(
        Mti.AUTH_REQUEST,
        PC_VOID,
        CC_PREAUTH,
        TypeCode.PREAUTH_CANCEL,
        reversible=True,
        original61=16,
        auth_code=True,
    ),
    Kind.COMPLETION: _Profile(
        Mti.FINANCIAL_REQUEST,
        PC_PURCHASE,
        CC_PREAUTH,
        TypeCode.COMPLETION,
        reversible=True,
        original61=16,
        auth_code=True,
    ),
    Kind.COMPLETION_ADVICE: _Profile(
        Mti.ADVICE,
        PC_PURCHASE,
        CC_PREAUTH,
        TypeCode.COMPLETION_ADVICE,
        advice=True,
        original61=16,
        auth_code=True,
        card_org=True,
    ),
    Kind.COMPLETION_VOID: _Profile(
        Mti.FINANCIAL_REQUEST,
        PC_VOID,
        CC_PREAUTH,
        TypeCode.COMPLETION_VOID,
        reversible=True,
        original61=12,
        rrn=True,
        auth_code=True,
    ),
}


# --- Response codes for people (spec §9) -----------------------------------------------------


def describe_response(code: str) -> str:
    """``51 资金不足 / Insufficient funds``: the code with its meaning in both languages,
    from the table staff see (``poshub.gateway.response_codes``), so the slip and the back
    office never disagree."""
    english = response_code_meaning(code) or UNKNOWN_RESPONSE_CODE
    return f"{code} {translations('zh_CN').gettext(english)} / {english}"


# --- Errors -------------------------------------------------------------------------------------
class TerminalError(Exception):
    """A transaction that did not come back with an answer the terminal can use."""


class HostUnreachable(TerminalError):
    """No connection to the host: nothing was sent."""


class NoAnswer(TerminalError):
    """The request went out and no usable answer came back (timeout, broken connection,
    undecodable or mismatched answer). A reversible request is now owed a reversal."""


class ResponseMacError(TerminalError):
    """The answer's MAC did not verify. ``reversal_owed`` when it was an approval of a
    reversible request (reversed with reason ``A0``, spec §7.3): sign on again."""

    def __init__(self, message: str, *, reversal_owed: bool) -> None:
        super().__init__(message)
        self.reversal_owed = reversal_owed


class SignOnRefused(TerminalError):
    """Sign-on declined by the host or its keys failed their check values (no key kept)."""

    def __init__(self, tid: str, reason: str, *, code: str | None = None) -> None:
        super().__init__(f"terminal {tid}: sign-on refused: {reason}")
        self.tid = tid
        self.code = code


class NotSignedOn(TerminalError):
    """A MACed transaction was asked for while the terminal has no working keys."""


class ReversalFailed(TerminalError):
    """An owed reversal was not acknowledged. ``abandoned`` after its third try (spec
    §5.5): the terminal gives it up and the batch upload reconciles the difference."""

    def __init__(self, message: str, *, abandoned: bool) -> None:
        super().__init__(message)
        self.abandoned = abandoned


class BatchFull(TerminalError):
    """The open batch has :data:`BATCH_ENTRIES_MAX` entries: settle before selling more."""


class CardRequired(TerminalError):
    """An owed reversal or advice needs its card read again (its card fields were never
    saved); ``card_masked`` names the card."""

    def __init__(self, purpose: str, card_masked: str | None) -> None:
        super().__init__(
            f"a {purpose} is owed for card {card_masked}: present that card again"
            " (--card/--expiry) to send it"
        )
        self.purpose = purpose
        self.card_masked = card_masked


# --- Cards ----------------------------------------------------------------------------------------
def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits, the rest ``*`` — the only form a PAN is shown or kept in."""
    return pan[:6] + "*" * max(len(pan) - 10, 0) + pan[-4:]


EntryMode = Literal["manual", "swipe"]


@dataclass(frozen=True, slots=True)
class Card:
    """A card as presented: keyed in (``manual``) or swiped (``swipe``), with an optional
    PIN. ``repr`` shows the masked PAN only."""

    pan: str
    expiry: str
    """YYMM."""
    pin: str | None = None
    entry: EntryMode = "manual"

    def __post_init__(self) -> None:
        if not (self.pan.isdigit() and 12 <= len(self.pan) <= 19):
            raise ValueError("a card number has 12 to 19 digits")
        if not (
            len(self.expiry) == 4 and self.expiry.isdigit() and 1 <= int(self.expiry[2:]) <= 12
        ):
            raise ValueError("the expiry date is YYMM, e.g. 3012")
        if self.pin is not None and not (self.pin.isdigit() and 4 <= len(self.pin) <= 12):
            raise ValueError("a PIN has 4 to 12 digits")
        if self.entry not in ("manual", "swipe"):
            raise ValueError("card entry is manual or swipe")

    def __repr__(self) -> str:
        return f"Card({self.masked}, {self.entry}, pin={'yes' if self.pin else 'no'})"

    @property
    def masked(self) -> str:
        return mask_pan(self.pan)

    @property
    def last4(self) -> str:
        return self.pan[-4:]

    def track2(self) -> str:
        """``PAN D YYMM 101 …`` with ``D`` as the separator (spec §2, field 35)."""
        return f"{self.pan}D{self.expiry}{TRACK2_SERVICE_CODE}{TRACK2_DISCRETIONARY}"


# --- Journal and state ----------------------------------------------------------------------
@dataclass(slots=True)
class JournalEntry:
    """One approved transaction of the terminal's batch (no full PAN, no expiry)."""

    kind: str
    stan: str
    batch: str
    amount_fen: int
    rrn: str | None = None
    auth_code: str | None = None
    host_date: str | None = None
    """MMDD of the answer's field 13: the date a refund or completion quotes in 61.3."""
    host_time: str | None = None
    pan_masked: str | None = None
    pan_last4: str | None = None
    entry: str = "manual"
    qr_voucher: str | None = None
    wallet: str | None = None
    voided: bool = False
    original_stan: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JournalEntry:
        names = set(cls.__slots__)
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(slots=True)
class PendingMessage:
    """A reversal or an advice the terminal owes the host, without its card fields."""

    kind: str
    """The original transaction's kind."""
    fields: dict[str, str]
    """The message to send, minus :data:`SECRET_FIELDS` and the MAC."""
    card_fields: list[str]
    """Which of the secret fields it had: they come back from the card."""
    card_masked: str | None
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingMessage:
        fields = {k: str(v) for k, v in dict(data["fields"]).items() if k not in SECRET_FIELDS}
        fields.pop(F_MAC, None)
        return cls(
            kind=str(data["kind"]),
            fields=fields,
            card_fields=[str(f) for f in data.get("card_fields", [])],
            card_masked=data.get("card_masked"),
            attempts=int(data.get("attempts", 0)),
        )


def _next_counter(value: int, maximum: int) -> int:
    return value % maximum + 1


@dataclass(slots=True)
class TerminalState:
    """What a terminal remembers between transactions (and, through the CLI, runs)."""

    tid: str
    mid: str
    stan: int = 0
    """The last STAN used; the next request uses ``stan + 1`` (000001–999999, wraps)."""
    batch: str = "000001"
    journal: list[JournalEntry] = field(default_factory=list)
    pending_reversal: PendingMessage | None = None
    pending_advice: PendingMessage | None = None
    merchant_name: str | None = None
    """From the last parameter download (spec §11.10), for the slip."""

    def next_stan(self) -> str:
        self.stan = _next_counter(self.stan, STAN_MAX)
        return f"{self.stan:06d}"

    def find(self, rrn: str) -> JournalEntry | None:
        """The journal entry with this RRN (the latest one if several)."""
        for entry in reversed(self.journal):
            if entry.rrn == rrn:
                return entry
        return None

    def counted(self) -> tuple[list[JournalEntry], list[JournalEntry]]:
        """Debit and credit entries of the open batch by the counting rules of §5.6."""
        debits = [
            e
            for e in self.journal
            if e.batch == self.batch and e.kind in DEBIT_KINDS and not e.voided
        ]
        credits = [e for e in self.journal if e.batch == self.batch and e.kind in CREDIT_KINDS]
        return debits, credits

    def totals(self) -> Totals:
        debits, credits = self.counted()
        return Totals(
            debit_fen=sum(e.amount_fen for e in debits),
            debit_count=len(debits),
            credit_fen=sum(e.amount_fen for e in credits),
            credit_count=len(credits),
        )

    def close_batch(self) -> None:
        """After a ``00`` to the batch-upload end: clear the journal, next batch (§11.13)."""
        self.journal.clear()
        self.batch = f"{_next_counter(int(self.batch), BATCH_MAX):06d}"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "tid": self.tid,
            "mid": self.mid,
            "stan": self.stan,
            "batch": self.batch,
            "merchant_name": self.merchant_name,
            "journal": [e.to_json() for e in self.journal],
            "pending_reversal": self.pending_reversal.to_json() if self.pending_reversal else None,
            "pending_advice": self.pending_advice.to_json() if self.pending_advice else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TerminalState:
        if data.get("version") != STATE_VERSION:
            raise ValueError("unsupported terminal state version")
        reversal = data.get("pending_reversal")
        advice = data.get("pending_advice")
        return cls(
            tid=str(data["tid"]),
            mid=str(data["mid"]),
            stan=int(data["stan"]),
            batch=str(data["batch"]),
            merchant_name=data.get("merchant_name"),
            journal=[JournalEntry.from_json(e) for e in data.get("journal", [])],
            pending_reversal=PendingMessage.from_json(reversal) if reversal else None,
            pending_advice=PendingMessage.from_json(advice) if advice else None,
        )

    def save(self, path: Path) -> None:
        """Write atomically (a crash leaves the old file or the new one), owner-only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.to_json(), handle, ensure_ascii=False, indent=1)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    @classmethod
    def load(cls, path: Path, *, tid: str, mid: str) -> TerminalState:
        """The saved state of terminal ``tid``, or a fresh one if there is no file yet."""
        if not path.exists():
            return cls(tid=tid, mid=mid)
        state = cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        if state.tid != tid or state.mid != mid:
            raise ValueError(f"{path} belongs to terminal {state.tid} of merchant {state.mid}")
        return state


# --- Results --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SettlementReport:
    """What a settlement did: totals sent, the host's verdict, records uploaded."""

    batch: str
    totals: Totals
    result: str
    """48 digit 31 of the 0510: ``1`` balanced, ``2`` not balanced, ``3`` error."""
    uploaded: int
    end_code: str | None
    """39 of the 0330 to the batch-upload end (None when the run stopped earlier)."""
    closed: bool
    next_batch: str

    @property
    def balanced(self) -> bool:
        return self.result == SETTLE_BALANCED


@dataclass(frozen=True, slots=True)
class Result:
    """An answered request: what the host said, in named values.

    ``response`` is the decoded answer without PAN, expiry, tracks, chip data and, for a
    sign-on, the key field 62.
    """

    kind: str
    response_code: str
    stan: str | None
    batch: str
    amount_fen: int | None = None
    rrn: str | None = None
    auth_code: str | None = None
    host_date: str | None = None
    host_time: str | None = None
    settlement_date: str | None = None
    balance_fen: int | None = None
    qr_voucher: str | None = None
    wallet: str | None = None
    """63.1: card organisation or wallet (``CUP``, ``WXP``, ``ALP``)."""
    slip_text: str | None = None
    """63.2: free text for the slip (issuer name, remarks)."""
    issuer_code: str | None = None
    acquirer_code: str | None = None
    card_masked: str | None = None
    processing_requirement: int = 0
    original: JournalEntry | None = None
    settlement: SettlementReport | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    response: dict[str, str] = field(default_factory=dict)

    @property
    def approved(self) -> bool:
        return self.response_code in APPROVED_CODES

    @property
    def description(self) -> str:
        return describe_response(self.response_code)


# --- Amounts ------------------------------------------------------------------------------------
AMOUNT_FEN_MAX: Final = 10**12 - 1
_AMOUNT_RE: Final = re.compile(r"\d+(\.\d{1,2})?")


def parse_amount_fen(text: str) -> int:
    """Yuan as typed (``12.34``) → integer fen, through Decimal. ``ValueError`` says what
    is wrong: not a number, not positive, more than two decimals, too large."""
    stripped = text.strip()
    if stripped.startswith("-"):
        raise ValueError(f"amount {text!r} is negative: give a positive amount in yuan")
    if re.fullmatch(r"\d+\.\d{3,}", stripped):
        raise ValueError(
            f"amount {text!r} has more than two decimal places: the smallest unit is 0.01 yuan"
        )
    if not _AMOUNT_RE.fullmatch(stripped):
        raise ValueError(f"amount {text!r} is not a number of yuan such as 12.34")
    try:
        fen = Decimal(stripped) * 100
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a number of yuan such as 12.34") from None
    if fen <= 0:
        raise ValueError("the amount must be greater than zero")
    if fen > AMOUNT_FEN_MAX:
        raise ValueError(f"amount {text!r} is too large (at most 9999999999.99 yuan)")
    return int(fen)


def format_yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


# --- Field 62 of a parameter download (spec §5.2) ----------------------------------------------
_PARAMETER_LENGTHS: Final[dict[str, int]] = {
    "11": 2, "12": 2, "13": 1, "14": 14, "15": 14, "16": 14, "17": 14, "18": 1, "19": 2,
    "20": 1, "21": 1, "22": 40, "25": 1, "26": 4,
}  # fmt: skip


def parse_parameters(data: bytes) -> dict[str, str]:
    """``code n2 + value`` items; stops at a code it does not know (no length to skip)."""
    items: dict[str, str] = {}
    offset = 0
    while offset + 2 <= len(data):
        code = data[offset : offset + 2].decode("ascii", errors="replace")
        length = _PARAMETER_LENGTHS.get(code)
        if length is None or offset + 2 + length > len(data):
            break
        raw = data[offset + 2 : offset + 2 + length]
        items[code] = (raw.hex().upper() if code == "26" else raw.decode("gbk", "replace")).strip()
        offset += 2 + length
    return items


# --- The client ------------------------------------------------------------------------------
StateSaver = Callable[[TerminalState], None]


class TerminalClient:
    """One POS terminal talking to the host over one reused TCP connection.

    Strict request/response: one request outstanding at a time (a lock serialises
    callers). Working keys exist only in this object. ``on_state_change`` (the CLI saves
    the JSON file there) is called whenever the state changed, in particular *before* a
    reversible request or an advice is sent, so an owed reversal survives a crash.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tid: str,
        mid: str,
        tmk: bytes,
        key_mode: str = NetworkCode.SIGN_ON_DOUBLE.value,
        tpdu: bytes = DEFAULT_TPDU,
        header: bytes = DEFAULT_HEADER,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        state: TerminalState | None = None,
        operator: str = "01",
        field60_6: str | None = None,
        on_state_change: StateSaver | None = None,
    ) -> None:
        if len(tid) != 8 or not tid.isascii():
            raise ValueError("a TID has 8 characters")
        if len(mid) != 15 or not mid.isascii():
            raise ValueError("a MID has 15 characters")
        if len(tmk) not in (8, 16, 24):
            raise ValueError("a terminal master key has 8, 16 or 24 bytes")
        if key_mode not in SIGN_ON_CODES:
            raise ValueError("key mode is 001, 003 or 004")
        if len(tpdu) != codec.TPDU_BYTES or len(header) != codec.HEADER_BYTES:
            raise ValueError("the TPDU has 5 bytes and the header 6")
        if field60_6 is not None and field60_6 not in ("0", "1"):
            raise ValueError("60.6 is one digit, 0 or 1")
        if not (len(operator) == 2 and operator.isdigit()):
            raise ValueError("an operator number has two digits")
        self.host = host
        self.port = port
        self.tid = tid
        self.mid = mid
        self._tmk = tmk
        self.key_mode = key_mode
        self.tpdu = tpdu
        self.header = header
        self.timeout_seconds = timeout_seconds
        self.operator = operator
        self.field60_6 = field60_6
        """When set, financial 60 has 14 digits (60.6 partial-approval flag, spec §4.1)."""
        self.state = state if state is not None else TerminalState(tid=tid, mid=mid)
        if self.state.tid != tid or self.state.mid != mid:
            raise ValueError("the state belongs to another terminal")
        self._on_state_change = on_state_change
        self._keys: WorkingKeys | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        # Card fields of owed messages, in memory only (never in the state file).
        self._pending_cards: dict[str, Card] = {}
        # The exact bytes of an owed advice and the keys that MACed them: resent as they
        # are while the keys are unchanged ("resent identically", spec §5.4).
        self._advice_frame: tuple[WorkingKeys, bytes] | None = None
        self._advice_original: JournalEntry | None = None
        # Full PANs of this process's journal entries, for the batch upload only.
        self._pans: dict[tuple[str, str], str] = {}
        self.last_requirement = 0

    def __repr__(self) -> str:
        return f"TerminalClient({self.tid}@{self.host}:{self.port})"

    # -- keys -------------------------------------------------------------------------------
    @property
    def signed_on(self) -> bool:
        return self._keys is not None

    @property
    def keys(self) -> WorkingKeys | None:
        return self._keys

    def install_keys(self, keys: WorkingKeys | None) -> None:
        """Use these working keys (tests and benchmarks that know them); None forgets."""
        self._keys = keys

    def _require_keys(self) -> WorkingKeys:
        if self._keys is None:
            raise NotSignedOn(f"terminal {self.tid} is not signed on")
        return self._keys

    def _persist(self) -> None:
        if self._on_state_change is not None:
            self._on_state_change(self.state)

    # -- connection -------------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the connection now (otherwise the first request opens it)."""
        async with self._lock:
            await self._connection()

    async def close(self) -> None:
        async with self._lock:
            await self._drop_connection()

    async def __aenter__(self) -> TerminalClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # A host that closed an idle connection has fed EOF: reconnect before sending
        # rather than find out after (which would make a sale look unanswered).
        if (
            self._reader is None
            or self._writer is None
            or self._writer.is_closing()
            or self._reader.at_eof()
        ):
            await self._drop_connection()
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.timeout_seconds
                )
            except (OSError, TimeoutError) as exc:
                raise HostUnreachable(
                    f"cannot connect to {self.host}:{self.port}: {exc.__class__.__name__}"
                ) from None
            self._reader, self._writer = reader, writer
            return reader, writer
        return self._reader, self._writer

    async def _drop_connection(self) -> None:
        writer = self._writer
        self._reader = self._writer = None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _roundtrip(self, frame: bytes, request: Message) -> tuple[Message, int, bytes]:
        """Send one frame, read its answer: (decoded answer, processing requirement, the
        answer's ISO message bytes for MAC verification)."""
        async with self._lock:
            reader, writer = await self._connection()
            try:
                writer.write(frame)
                await writer.drain()
            except OSError:
                await self._drop_connection()
                raise NoAnswer("the connection broke while sending") from None
            try:
                payload = await asyncio.wait_for(_read_payload(reader), self.timeout_seconds)
            except TimeoutError:
                # A late answer would arrive on this stream as the answer to the next
                # request: the connection is abandoned with the request.
                await self._drop_connection()
                raise NoAnswer(f"no answer within {self.timeout_seconds:g} s") from None
            except (asyncio.IncompleteReadError, OSError):
                await self._drop_connection()
                raise NoAnswer("the host closed the connection before answering") from None
            try:
                envelope = codec.split_envelope(payload)
                response = codec.decode(envelope.body)
            except (FrameError, MessageFormatError):
                await self._drop_connection()
                raise NoAnswer("the answer could not be decoded") from None
            if not _answers(request, response):
                await self._drop_connection()
                raise NoAnswer("the answer does not match the request")
            requirement = envelope.header[2] & 0x0F
            self.last_requirement = requirement
            return response, requirement, envelope.body

    # -- building messages -------------------------------------------------------------------
    def _field60(self, type_code: str, network_code: str = NetworkCode.NONE.value) -> str:
        return type_code + self.state.batch + network_code

    def financial60(self, type_code: str) -> str:
        """60.1 + batch + ``000`` + 60.4 + 60.5 (13 digits; 14 with 60.6)."""
        return (
            self._field60(type_code)
            + TERMINAL_READ_CAPABILITY
            + IC_CONDITION
            + (self.field60_6 or "")
        )

    def card_fields(self, card: Card) -> dict[str, str]:
        """2/14 (keyed) or 35 (swiped), 22, and 26/52/53 with a PIN (spec §3, §8)."""
        fields: dict[str, str] = {}
        if card.entry == "swipe":
            fields[F_TRACK2] = card.track2()
            mode = ENTRY_MAGSTRIPE
        else:
            fields[F_PAN] = card.pan
            fields[F_EXPIRY] = card.expiry
            mode = ENTRY_MANUAL
        if card.pin is not None:
            keys = self._require_keys()
            block = hsm.encrypt_ecb(keys.pik, clear_pin_block(card.pin, card.pan))
            fields[F_ENTRY_MODE] = mode + PIN_ENTERED
            fields[F_PIN_CAPTURE] = PIN_CAPTURE_CODE
            fields[F_PIN_BLOCK] = block.hex().upper()
            fields[F_SECURITY_CONTROL] = (
                SECURITY_DOUBLE_PIK if len(keys.pik) >= 16 else SECURITY_SINGLE_PIK
            )
        else:
            fields[F_ENTRY_MODE] = mode + PIN_NOT_ENTERED
        return fields

    def build_request(
        self,
        kind: Kind,
        *,
        stan: str,
        card: Card | None = None,
        amount_fen: int | None = None,
        original: JournalEntry | None = None,
        qr_code: str | None = None,
    ) -> Message:
        """The fields of a financial request (spec §5.3, QR per §11.6), MAC placeholder
        included. Pure apart from the PIN block, which needs the PIK."""
        profile = PROFILES[kind]
        message: Message = {MTI: profile.mti, F_PROCESSING_CODE: profile.processing}
        if profile.amount:
            if amount_fen is None or not 0 < amount_fen <= AMOUNT_FEN_MAX:
                raise ValueError("the amount must be 1 to 999999999999 fen")
            message[F_AMOUNT] = f"{amount_fen:012d}"
        message[F_STAN] = stan
        if kind in QR_KINDS:
            message[F_ENTRY_MODE] = ENTRY_QR + PIN_NOT_ENTERED
            if kind == Kind.QR_SALE:
                if not qr_code:
                    raise ValueError("a QR sale needs the scanned payment code")
                message[F_PRIVATE_59] = build_tlv({TAG_QR_CODE: qr_code})
            else:
                if original is None or not original.qr_voucher:
                    raise ValueError("the original QR payment has no voucher number")
                message[F_PRIVATE_59] = build_tlv({TAG_QR_VOUCHER: original.qr_voucher})
        else:
            if card is None:
                raise ValueError("this transaction needs a card")
            message.update(self.card_fields(card))
        message[F_CONDITION_CODE] = profile.condition
        if profile.original61 or profile.rrn or profile.auth_code:
            if original is None:
                raise ValueError("this transaction needs its original")
            if profile.rrn:
                if not original.rrn:
                    raise ValueError("the original has no reference number")
                message[F_RRN] = original.rrn
            if profile.auth_code and original.auth_code:
                message[F_AUTH_CODE] = original.auth_code
            if profile.original61:
                reference = original.batch + original.stan
                if profile.original61 == 16:
                    if not original.host_date:
                        raise ValueError("the original's date (MMDD) is not known")
                    reference += original.host_date
                message[F_ORIGINAL] = reference
        message[F_TID] = self.tid
        message[F_MID] = self.mid
        message[F_CURRENCY] = CURRENCY_CNY
        message[F_RESERVED_60] = self.financial60(profile.type_code)
        if profile.card_org:
            message[F_RESERVED_63] = CARD_ORG_CUP
        message[F_MAC] = MAC_PLACEHOLDER
        return message

    def encode_frame(self, message: Message) -> bytes:
        """Length, TPDU, header and the encoded message, MACed when its MTI needs one."""
        if message[MTI] in MAC_MTIS:
            keys = self._require_keys()
            body = codec.encode({**message, F_MAC: MAC_PLACEHOLDER})
            body = keys.sign(body)
        else:
            body = codec.encode(message)
        return codec.frame(self.tpdu, self.header, body)

    @staticmethod
    def reversal_of(message: Message, reason: str) -> Message:
        """The 0400 for a reversible request (spec §5.5): its 2, 3, 4, 11, 14, 22, 23, 25,
        38, 41, 42, 49, 55, 59, 60, 61, plus 39 = the reason. No 26/35/36/52/53."""
        keep = ("2", "3", "4", "11", "14", "22", "23", "25", "38", "41", "42", "49", "55",
                "59", "60", "61")  # fmt: skip
        reversal: Message = {MTI: Mti.REVERSAL.value}
        reversal.update({k: message[k] for k in keep if k in message})
        if F_PAN not in reversal and F_TRACK2 in message:
            # A swiped original has no field 2; the reversal names the card by its PAN
            # without carrying the track.
            pan = codec.track2_pan(message[F_TRACK2])
            if pan is not None:
                reversal[F_PAN] = pan
        reversal[F_RESPONSE_CODE] = reason
        reversal[F_MAC] = MAC_PLACEHOLDER
        return reversal

    # -- owed messages ---------------------------------------------------------------------
    def _owe(self, purpose: str, kind: Kind, message: Message, card: Card | None) -> None:
        pending = PendingMessage(
            kind=kind.value,
            fields={k: v for k, v in message.items() if k not in SECRET_FIELDS and k != F_MAC},
            card_fields=sorted(k for k in message if k in SECRET_FIELDS),
            card_masked=card.masked if card is not None else None,
        )
        if purpose == "reversal":
            self.state.pending_reversal = pending
        else:
            self.state.pending_advice = pending
        if card is not None:
            self._pending_cards[purpose] = card
        self._persist()

    def _settle_owed(self, purpose: str) -> None:
        if purpose == "reversal":
            self.state.pending_reversal = None
        else:
            self.state.pending_advice = None
            self._advice_frame = None
            self._advice_original = None
        self._pending_cards.pop(purpose, None)
        self._persist()

    def _owed_card(self, purpose: str, pending: PendingMessage, card: Card | None) -> Card | None:
        if not pending.card_fields:
            return None
        remembered = self._pending_cards.get(purpose)
        if remembered is not None:
            return remembered
        if card is not None and card.masked == pending.card_masked:
            self._pending_cards[purpose] = card
            return card
        raise CardRequired(purpose, pending.card_masked)

    def _owed_reversal_message(self, pending: PendingMessage, card: Card | None) -> Message:
        message: Message = {MTI: Mti.REVERSAL.value, **pending.fields}
        owed_card = self._owed_card("reversal", pending, card)
        if owed_card is not None:
            if F_PAN in pending.card_fields:
                message[F_PAN] = owed_card.pan
            if F_EXPIRY in pending.card_fields:
                message[F_EXPIRY] = owed_card.expiry
        message[F_MAC] = MAC_PLACEHOLDER
        return message

    async def _flush_owed(self, card: Card | None) -> None:
        """Owed messages go before any other financial request (spec §5.5)."""
        if self.state.pending_reversal is not None:
            await self.reverse(card=card)
        if self.state.pending_advice is not None:
            await self._send_advice(card)

    @property
    def reversal_pending(self) -> bool:
        return self.state.pending_reversal is not None

    async def reverse(self, reason: str | None = None, *, card: Card | None = None) -> Result:
        """Send the owed reversal (reason: the stored one unless given), up to three tries
        in all. Deleted once a 0410 with a good MAC arrives, whatever its 39 (``12``/``64``
        are for manual follow-up); given up after the third try (``ReversalFailed``)."""
        pending = self.state.pending_reversal
        if pending is None:
            raise TerminalError("no reversal is pending")
        if reason is not None:
            pending.fields[F_RESPONSE_CODE] = reason
        keys = self._require_keys()
        message = self._owed_reversal_message(pending, card)
        frame = self.encode_frame(message)
        last_problem = "no answer"
        while pending.attempts < REVERSAL_TRIES:
            if pending.attempts:
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
            pending.attempts += 1
            self._persist()
            try:
                response, requirement, body = await self._roundtrip(frame, message)
            except (NoAnswer, HostUnreachable) as exc:
                last_problem = str(exc)
                continue
            code = response.get(F_RESPONSE_CODE, "")
            if F_MAC in response and keys.verify_mac(body):
                self._settle_owed("reversal")
                if code != Rc.APPROVED:
                    log.warning(
                        "reversal of STAN %s answered %s: manual follow-up", message[F_STAN], code
                    )
                self._after(requirement)
                return self._result(Kind.REVERSAL, response, requirement, message, None)
            if code in UNSIGNED_RESPONSE_CODES and F_MAC not in response:
                # The host refused the message itself (not signed on, MAC error …): no use
                # repeating it with the same keys.
                self._after(requirement)
                if code == Rc.SIGN_ON_AGAIN or code == Rc.MAC_ERROR:
                    self._keys = None
                raise ReversalFailed(
                    f"reversal refused: {describe_response(code)}", abandoned=False
                )
            last_problem = "the answer's MAC did not verify"
        self._settle_owed("reversal")
        raise ReversalFailed(
            f"reversal of STAN {message[F_STAN]} given up after {REVERSAL_TRIES} tries"
            f" ({last_problem})",
            abandoned=True,
        )

    async def _send_advice(self, card: Card | None) -> Result:
        pending = self.state.pending_advice
        if pending is None:
            raise TerminalError("no advice is pending")
        keys = self._require_keys()
        message: Message = {MTI: Mti.ADVICE.value, **pending.fields}
        owed_card = self._owed_card("advice", pending, card)
        if owed_card is not None:
            message.update(self.card_fields(owed_card))
        message[F_MAC] = MAC_PLACEHOLDER
        if self._advice_frame is not None and self._advice_frame[0] is keys:
            frame = self._advice_frame[1]
        else:
            frame = self.encode_frame(message)
            self._advice_frame = (keys, frame)
        last_problem = "no answer"
        for send in range(ADVICE_SENDS):
            if send:
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
            pending.attempts += 1
            try:
                response, requirement, body = await self._roundtrip(frame, message)
            except (NoAnswer, HostUnreachable) as exc:
                last_problem = str(exc)
                continue
            code = response.get(F_RESPONSE_CODE, "")
            verified = (
                keys.verify_mac(body) if F_MAC in response else code in UNSIGNED_RESPONSE_CODES
            )
            if not verified:
                last_problem = "the answer's MAC did not verify"
                continue
            original = self._advice_original
            self._settle_owed("advice")
            kind = Kind(pending.kind)
            result = self._result(kind, response, requirement, message, owed_card, original)
            if result.approved:
                self._record(kind, result, message, owed_card, original)
            self._after(requirement)
            return result
        self._persist()
        raise NoAnswer(
            f"advice STAN {message[F_STAN]} unanswered after {ADVICE_SENDS} sends"
            f" ({last_problem}); it is resent before the next transaction"
        )

    # -- financial transactions ---------------------------------------------------------------
    async def _transact(
        self,
        kind: Kind,
        *,
        card: Card | None = None,
        amount_fen: int | None = None,
        original: JournalEntry | None = None,
        qr_code: str | None = None,
    ) -> Result:
        profile = PROFILES[kind]
        await self._flush_owed(card)
        keys = self._require_keys()
        if kind != Kind.BALANCE and len(self.state.journal) >= BATCH_ENTRIES_MAX:
            raise BatchFull(
                f"交易笔数已满，请先结算 / the batch holds {BATCH_ENTRIES_MAX} transactions:"
                " settle first"
            )
        stan = self.state.next_stan()
        message = self.build_request(
            kind, stan=stan, card=card, amount_fen=amount_fen, original=original, qr_code=qr_code
        )
        frame = self.encode_frame(message)
        if profile.advice:
            self._owe("advice", kind, message, card)
            self._advice_frame = (keys, frame)
            self._advice_original = original
            return await self._send_advice(card)
        if profile.reversible:
            self._owe("reversal", kind, self.reversal_of(message, Rc.ISSUER_TIMEOUT), card)
        else:
            self._persist()
        try:
            response, requirement, body = await self._roundtrip(frame, message)
        except HostUnreachable:
            if profile.reversible:  # nothing went out: nothing to reverse
                self._settle_owed("reversal")
            raise
        code = response.get(F_RESPONSE_CODE, "")
        verified = keys.verify_mac(body) if F_MAC in response else code in UNSIGNED_RESPONSE_CODES
        if not verified:
            owed = profile.reversible and code in APPROVED_CODES
            if owed:
                assert self.state.pending_reversal is not None
                self.state.pending_reversal.fields[F_RESPONSE_CODE] = Rc.MAC_ERROR.value
                self._persist()
            elif profile.reversible:
                self._settle_owed("reversal")
            raise ResponseMacError(
                "the answer's MAC did not verify"
                + ("; the approval will be reversed (A0): sign on again" if owed else ""),
                reversal_owed=owed,
            )
        if profile.reversible:
            self._settle_owed("reversal")
        result = self._result(kind, response, requirement, message, card, original)
        if result.approved:
            self._record(kind, result, message, card, original)
        self._after(requirement)
        return result

    def _after(self, requirement: int) -> None:
        """Act on the header's processing requirement once the transaction is done
        (spec §1.3): ``3`` drops the working keys so the next request signs on first."""
        if requirement == REQUIREMENT_SIGN_ON:
            self._keys = None

    def _record(
        self,
        kind: Kind,
        result: Result,
        request: Message,
        card: Card | None,
        original: JournalEntry | None,
    ) -> None:
        if kind == Kind.BALANCE:
            return
        original_stan = original.stan if original is not None else None
        if original_stan is None and F_ORIGINAL in request:  # an advice resent by a new process
            original_stan = request[F_ORIGINAL][6:12]
        entry = JournalEntry(
            kind=kind.value,
            stan=request[F_STAN],
            batch=request[F_RESERVED_60][2:8],
            amount_fen=result.amount_fen or 0,
            rrn=result.rrn,
            auth_code=result.auth_code,
            host_date=result.host_date,
            host_time=result.host_time,
            pan_masked=card.masked if card is not None else None,
            pan_last4=card.last4 if card is not None else None,
            entry="qr" if kind in QR_KINDS else (card.entry if card is not None else "manual"),
            qr_voucher=result.qr_voucher,
            wallet=result.wallet,
            original_stan=original_stan,
        )
        if kind in QR_KINDS and entry.qr_voucher is None and F_PRIVATE_59 in request:
            with contextlib.suppress(SubfieldError):
                entry.qr_voucher = parse_tlv(request[F_PRIVATE_59]).get(TAG_QR_VOUCHER)
        self.state.journal.append(entry)
        if card is not None:
            self._pans[(entry.batch, entry.stan)] = card.pan
        if kind in CANCELLING_KINDS and original is not None:
            for candidate in self.state.journal:
                if candidate.batch == original.batch and candidate.stan == original.stan:
                    candidate.voided = True
            original.voided = True
        self._persist()

    def _result(
        self,
        kind: Kind,
        response: Message,
        requirement: int,
        request: Message,
        card: Card | None,
        original: JournalEntry | None = None,
        **extra: Any,
    ) -> Result:
        amount_text = response.get(F_AMOUNT) or request.get(F_AMOUNT)
        voucher = None
        if F_PRIVATE_59 in response:
            with contextlib.suppress(SubfieldError):
                voucher = parse_tlv(response[F_PRIVATE_59]).get(TAG_QR_VOUCHER)
        balance = None
        if F_BALANCE in response:
            with contextlib.suppress(SubfieldError):
                balance = parse_balance54(response[F_BALANCE])
        text63 = response.get(F_RESERVED_63, "")
        text44 = response.get(F_ADDITIONAL_RESPONSE, "")
        public = {
            k: v
            for k, v in response.items()
            if k not in SENSITIVE_FIELDS and not (k == F_RESERVED_62 and kind == Kind.SIGN_ON)
        }
        return Result(
            kind=kind.value,
            response_code=response.get(F_RESPONSE_CODE, ""),
            stan=request.get(F_STAN),
            batch=request.get(F_RESERVED_60, "00" + self.state.batch)[2:8],
            amount_fen=int(amount_text) if amount_text else None,
            rrn=response.get(F_RRN),
            auth_code=(response.get(F_AUTH_CODE) or "").strip() or None,
            host_date=response.get(F_LOCAL_DATE),
            host_time=response.get(F_LOCAL_TIME),
            settlement_date=response.get(F_SETTLEMENT_DATE),
            balance_fen=balance,
            qr_voucher=voucher,
            wallet=text63[:3].strip() or None,
            slip_text=text63[3:].strip() or None,
            issuer_code=text44[:11].strip() or None,
            acquirer_code=text44[11:22].strip() or None,
            card_masked=card.masked if card is not None else None,
            processing_requirement=requirement,
            original=original,
            response=public,
            **extra,
        )

    async def balance(self, card: Card) -> Result:
        return await self._transact(Kind.BALANCE, card=card)

    async def sale(self, card: Card, amount_fen: int) -> Result:
        return await self._transact(Kind.SALE, card=card, amount_fen=amount_fen)

    async def qr_sale(self, code: str, amount_fen: int) -> Result:
        return await self._transact(Kind.QR_SALE, qr_code=code, amount_fen=amount_fen)

    async def void(self, original: JournalEntry, card: Card) -> Result:
        return await self._transact(
            Kind.VOID, card=card, amount_fen=original.amount_fen, original=original
        )

    async def qr_void(self, original: JournalEntry) -> Result:
        return await self._transact(Kind.QR_VOID, amount_fen=original.amount_fen, original=original)

    async def refund(self, original: JournalEntry, card: Card, amount_fen: int) -> Result:
        return await self._transact(
            Kind.REFUND, card=card, amount_fen=amount_fen, original=original
        )

    async def qr_refund(self, original: JournalEntry, amount_fen: int) -> Result:
        return await self._transact(Kind.QR_REFUND, amount_fen=amount_fen, original=original)

    async def preauth(self, card: Card, amount_fen: int) -> Result:
        return await self._transact(Kind.PREAUTH, card=card, amount_fen=amount_fen)

    async def preauth_cancel(self, original: JournalEntry, card: Card) -> Result:
        return await self._transact(
            Kind.PREAUTH_CANCEL, card=card, amount_fen=original.amount_fen, original=original
        )

    async def completion(
        self, original_preauth: JournalEntry, card: Card, amount_fen: int
    ) -> Result:
        return await self._transact(
            Kind.COMPLETION, card=card, amount_fen=amount_fen, original=original_preauth
        )

    async def completion_advice(
        self, original_preauth: JournalEntry, card: Card, amount_fen: int
    ) -> Result:
        return await self._transact(
            Kind.COMPLETION_ADVICE, card=card, amount_fen=amount_fen, original=original_preauth
        )

    async def completion_void(self, original: JournalEntry, card: Card) -> Result:
        return await self._transact(
            Kind.COMPLETION_VOID, card=card, amount_fen=original.amount_fen, original=original
        )

    # -- management ------------------------------------------------------------------------
    def _operator_field(self) -> str:
        return self.operator + " "

    async def _management(self, message: Message) -> tuple[Message, int]:
        frame = self.encode_frame(message)
        response, requirement, _ = await self._roundtrip(frame, message)
        return response, requirement

    async def sign_on(self, mode: str | None = None) -> Result:
        """0800 sign-on: verify every key's check value, keep the keys in memory only,
        adopt the batch the 0810 names (spec §5.2, §6). Refusals raise ``SignOnRefused``
        and leave the terminal without keys (the host has dropped the old ones)."""
        mode = mode or self.key_mode
        if mode not in SIGN_ON_CODES:
            raise ValueError("key mode is 001, 003 or 004")
        request: Message = {
            MTI: Mti.MANAGEMENT.value,
            F_STAN: self.state.next_stan(),
            F_TID: self.tid,
            F_MID: self.mid,
            F_RESERVED_60: self._field60(TypeCode.MANAGEMENT, mode),
            F_RESERVED_63: self._operator_field(),
        }
        self._persist()
        response, requirement = await self._management(request)
        self._keys = None
        code = response.get(F_RESPONSE_CODE, "")
        if code != Rc.APPROVED:
            raise SignOnRefused(self.tid, describe_response(code), code=code)
        try:
            keys = read_field62(self._tmk, bytes.fromhex(response.get(F_RESERVED_62, "")), mode)
        except ValueError as exc:
            raise SignOnRefused(self.tid, f"working keys rejected: {exc}") from None
        self._keys = keys
        try:
            batch = Field60.parse(response[F_RESERVED_60]).batch
        except (KeyError, SubfieldError):
            batch = self.state.batch
        if batch != self.state.batch:
            log.info(
                "terminal %s: batch %s from the host (was %s)", self.tid, batch, self.state.batch
            )
            self.state.batch = batch
        self._persist()
        return self._result(Kind.SIGN_ON, response, requirement, request, None)

    async def sign_off(self) -> Result:
        request: Message = {
            MTI: Mti.MANAGEMENT_ADVICE.value,
            F_STAN: self.state.next_stan(),
            F_TID: self.tid,
            F_MID: self.mid,
            F_RESERVED_60: self._field60(TypeCode.MANAGEMENT, NetworkCode.SIGN_OFF),
        }
        self._persist()
        response, requirement = await self._management(request)
        if response.get(F_RESPONSE_CODE) == Rc.APPROVED:
            self._keys = None
        return self._result(Kind.SIGN_OFF, response, requirement, request, None)

    async def echo(self) -> Result:
        request: Message = {
            MTI: Mti.MANAGEMENT_ADVICE.value,
            F_STAN: self.state.next_stan(),
            F_TID: self.tid,
            F_MID: self.mid,
            F_RESERVED_60: self._field60(TypeCode.MANAGEMENT, NetworkCode.ECHO),
        }
        self._persist()
        response, requirement = await self._management(request)
        return self._result(Kind.ECHO, response, requirement, request, None)

    async def parameters(self) -> Result:
        """0800/360 then 0800/361 (spec §5.2, §11.10); the merchant name goes to the state."""
        request: Message = {
            MTI: Mti.MANAGEMENT.value,
            F_TID: self.tid,
            F_MID: self.mid,
            F_RESERVED_60: self._field60(TypeCode.MANAGEMENT, NetworkCode.PARAMETERS),
        }
        response, requirement = await self._management(request)
        parameters: dict[str, str] = {}
        if response.get(F_RESPONSE_CODE) == Rc.APPROVED and F_RESERVED_62 in response:
            parameters = parse_parameters(bytes.fromhex(response[F_RESERVED_62]))
            if parameters.get("22"):
                self.state.merchant_name = parameters["22"]
                self._persist()
            done: Message = {
                MTI: Mti.MANAGEMENT.value,
                F_TID: self.tid,
                F_MID: self.mid,
                F_RESERVED_60: self._field60(TypeCode.MANAGEMENT, NetworkCode.PARAMETERS_DONE),
            }
            response, requirement = await self._management(done)
            request = done
        return self._result(
            Kind.PARAMETERS, response, requirement, request, None, parameters=parameters
        )

    # -- settlement ----------------------------------------------------------------------------
    def upload_records(self) -> list[UploadRecord]:
        """Batch-upload records of the counted transactions (spec §5.6). A PAN this process
        did not see is sent with its hidden digits as zeros (the state keeps no full PAN);
        QR payments have zeros."""
        debits, credits = self.state.counted()
        records = []
        for entry in sorted(debits + credits, key=lambda e: e.stan):
            pan = self._pans.get((entry.batch, entry.stan))
            if pan is None:
                pan = (entry.pan_masked or "").replace("*", "0")
            records.append(
                UploadRecord(
                    foreign=False,
                    stan=entry.stan,
                    pan_digits=pan.rjust(20, "0") if entry.entry != "qr" else "0" * 20,
                    amount_fen=entry.amount_fen,
                )
            )
        return records

    async def settle(self) -> Result:
        """0500 with the journal's totals; after ``2``/``3`` the batch upload (0320/201,
        ≤ 8 records each) and 0320/202, after ``1`` 0320/207; a ``00`` to the end closes
        the batch: journal cleared, batch number + 1 (spec §5.6, §11.13)."""
        await self._flush_owed(None)
        totals = self.state.totals()
        batch = self.state.batch
        request: Message = {
            MTI: Mti.SETTLEMENT.value,
            F_STAN: self.state.next_stan(),
            F_TID: self.tid,
            F_MID: self.mid,
            F_PRIVATE_48: Settlement48.request(totals).text(),
            F_CURRENCY: CURRENCY_CNY,
            F_RESERVED_60: self._field60(TypeCode.MANAGEMENT, NetworkCode.SETTLEMENT),
            F_RESERVED_63: self._operator_field(),
        }
        self._persist()
        response, requirement = await self._management(request)
        code = response.get(F_RESPONSE_CODE, "")

        def report(
            answer: Message, result: str, uploaded: int, end_code: str | None, closed: bool
        ) -> Result:
            settlement = SettlementReport(
                batch=batch,
                totals=totals,
                result=result,
                uploaded=uploaded,
                end_code=end_code,
                closed=closed,
                next_batch=self.state.batch,
            )
            return self._result(
                Kind.SETTLEMENT, answer, requirement, request, None, settlement=settlement
            )

        if code != Rc.APPROVED:
            return report(response, SETTLE_REQUEST, 0, None, False)
        try:
            verdict = Settlement48.parse(response.get(F_PRIVATE_48, ""))
            result = verdict.domestic_result
        except SubfieldError:
            result = "3"
        balanced = result == SETTLE_BALANCED
        uploaded = 0
        if not balanced:
            records = self.upload_records()
            for start in range(0, len(records), UPLOAD_RECORDS_MAX):
                chunk = records[start : start + UPLOAD_RECORDS_MAX]
                upload: Message = {
                    MTI: Mti.BATCH_UPLOAD.value,
                    F_STAN: self.state.next_stan(),
                    F_TID: self.tid,
                    F_MID: self.mid,
                    F_PRIVATE_48: build_batch_upload(chunk),
                    F_RESERVED_60: self._field60(TypeCode.MANAGEMENT, NetworkCode.SETTLEMENT),
                }
                self._persist()
                answer, _ = await self._management(upload)
                if answer.get(F_RESPONSE_CODE) != Rc.APPROVED:
                    return report(answer, result, uploaded, None, False)
                uploaded += len(chunk)
        end: Message = {
            MTI: Mti.BATCH_UPLOAD.value,
            F_STAN: self.state.next_stan(),
            F_TID: self.tid,
            F_MID: self.mid,
            F_PRIVATE_48: f"{uploaded:04d}",
            F_RESERVED_60: self._field60(
                TypeCode.MANAGEMENT,
                NetworkCode.UPLOAD_END_BALANCED if balanced else NetworkCode.UPLOAD_END_UNBALANCED,
            ),
        }
        self._persist()
        end_answer, _ = await self._management(end)
        end_code = end_answer.get(F_RESPONSE_CODE, "")
        closed = end_code == Rc.APPROVED
        if closed:
            self.state.close_batch()
            self._pans.clear()
            self._persist()
        return report(end_answer if not closed else response, result, uploaded, end_code, closed)


async def _read_payload(reader: asyncio.StreamReader) -> bytes:
    prefix = await reader.readexactly(codec.LENGTH_PREFIX_BYTES)
    return await reader.readexactly(int.from_bytes(prefix, "big"))


def _answers(request: Message, response: Message) -> bool:
    """Whether ``response`` is the answer to ``request``: MTI + 10, same STAN and TID when
    both carry them."""
    if response[MTI] != response_mti(request[MTI]):
        return False
    for key in (F_STAN, F_TID):
        if key in request and key in response and request[key] != response[key]:
            return False
    return True


# --- Running -------------------------------------------------------------------------------------
def run_async(coroutine: Any) -> Any:
    """Run ``coroutine`` on uvloop when it is installed (less CPU per frame), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


# --- Command line ---------------------------------------------------------------------------------
EXIT_OK: Final = 0
EXIT_DECLINED: Final = 1
EXIT_USAGE: Final = 2


class UsageError(Exception):
    """A command-line mistake: printed as it is, exit status 2."""


def _amount_argument(text: str) -> int:
    try:
        return parse_amount_fen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _digits_argument(length: int, name: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) != length or not text.isdigit():
            raise argparse.ArgumentTypeError(f"{name} has {length} digits")
        return text

    return parse


def resolve_tmk(text: str | None, *, production: bool) -> bytes:
    """The master key from ``--tmk`` (32 hex digits), by default the published test key.

    The simulator is a terminal, not a host: what keeps the test key out of production is
    the host, which refuses to store it (DESIGN §7), so a sign-on with it to a production
    gateway fails there. ``production`` only changes the warning printed."""
    try:
        tmk = hsm.parse_key_hex(text if text is not None else TEST_TMK_HEX)
    except ValueError as exc:
        raise UsageError(f"--tmk: {exc}") from None
    if production and hsm.is_known_test_key(tmk):
        print(
            "warning: signing on with the published test master key; a production host"
            " refuses it (pass the terminal's own key with --tmk)",
            file=sys.stderr,
        )
    return tmk


@dataclass(frozen=True, slots=True)
class _Context:
    host: str
    port: int
    tid: str
    mid: str
    tmk: bytes
    state_path: Path
    production: bool
    language: Literal["zh", "en"]
    operator: str
    width: int
    timeout: float


def _context(args: argparse.Namespace, settings: Settings) -> _Context:
    from poshub.core.settings import Mode

    production = settings.mode == Mode.PRODUCTION
    tid: str = args.tid
    mid: str = args.mid
    if len(tid) != 8:
        raise UsageError("--tid has 8 characters")
    if len(mid) != 15:
        raise UsageError("--mid has 15 characters")
    state_path = Path(args.state) if args.state else settings.data_dir / f"terminal-{tid}.json"
    return _Context(
        host=args.host or settings.gateway_public_host,
        port=args.port or settings.gateway_port,
        tid=tid,
        mid=mid,
        tmk=resolve_tmk(args.tmk, production=production),
        state_path=state_path,
        production=production,
        language=args.lang,
        operator=args.operator,
        width=args.width,
        timeout=args.timeout,
    )


def _card(args: argparse.Namespace, context: _Context) -> Card:
    pan: str | None = args.card
    expiry: str | None = args.expiry
    if pan is None:
        if context.production:
            raise UsageError("--card is required in production mode")
        pan = TEST_CARD_PAN
        expiry = expiry or TEST_CARD_EXPIRY
    if expiry is None:
        if context.production:
            raise UsageError("--expiry (YYMM) is required with --card")
        expiry = TEST_CARD_EXPIRY
    pin: str | None = args.pin
    if pin == "ask":
        pin = getpass.getpass("PIN: ")
    try:
        return Card(pan=pan, expiry=expiry, pin=pin, entry="swipe" if args.swipe else "manual")
    except ValueError as exc:
        raise UsageError(f"card: {exc}") from None


def _original(
    state: TerminalState, rrn: str, expected: tuple[Kind, ...], command: str
) -> JournalEntry:
    entry = state.find(rrn)
    if entry is None:
        raise UsageError(
            f"no transaction with reference number {rrn} in this terminal's open batch"
            f" ({len(state.journal)} entries in the journal)"
        )
    if entry.kind not in expected:
        raise UsageError(f"{rrn} is a {entry.kind}, which {command} does not apply to")
    if entry.voided:
        raise UsageError(f"{rrn} is already voided or cancelled")
    return entry


class _Printer:
    def __init__(self, context: _Context) -> None:
        self.context = context

    def line(self, text: str) -> None:
        print(text)

    def problem(self, text: str) -> None:
        print(text, file=sys.stderr)

    def outcome(self, result: Result) -> None:
        from poshub.simulators.receipt import KIND_NAMES

        names = KIND_NAMES.get(result.kind)
        label = f"{names[0]} {names[1]}" if names else _KIND_LABEL.get(result.kind, result.kind)
        self.line(f"{label}: {result.description}")


_KIND_LABEL: Final[dict[str, str]] = {
    Kind.SIGN_ON: "签到 sign-on",
    Kind.SIGN_OFF: "签退 sign-off",
    Kind.ECHO: "回响测试 echo",
    Kind.PARAMETERS: "参数下载 parameters",
    Kind.REVERSAL: "冲正 reversal",
    Kind.SETTLEMENT: "结算 settlement",
}

_NEEDS_NO_KEYS: Final = frozenset({"sign-on", "sign-off", "echo", "parameters"})

Action = Callable[[TerminalClient, argparse.Namespace, _Context], Any]


async def _sign_on(client: TerminalClient, printer: _Printer, mode: str | None = None) -> Result:
    result = await client.sign_on(mode)
    printer.line(
        f"签到 sign-on: {result.description}; batch {client.state.batch},"
        f" keys {mode or client.key_mode}"
    )
    if client.state.merchant_name is None or result.processing_requirement == 1:
        with contextlib.suppress(TerminalError):
            await client.parameters()
    return result


async def _run_command(
    action: Action, args: argparse.Namespace, context: _Context, command: str
) -> int:
    printer = _Printer(context)
    try:
        state = TerminalState.load(context.state_path, tid=context.tid, mid=context.mid)
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        printer.problem(f"terminal state {context.state_path}: {exc}")
        return EXIT_USAGE
    client = TerminalClient(
        context.host,
        context.port,
        tid=context.tid,
        mid=context.mid,
        tmk=context.tmk,
        key_mode=args.mode,
        timeout_seconds=context.timeout,
        state=state,
        operator=context.operator,
        on_state_change=lambda s: s.save(context.state_path),
    )
    async with client:
        try:
            if command not in _NEEDS_NO_KEYS:
                await _sign_on(client, printer)
            result: Result | None = await action(client, args, context)
            if result is not None and result.response_code == Rc.SIGN_ON_AGAIN:
                # The host lost this terminal's keys (restart, sign-off elsewhere): once.
                printer.line(f"{result.description}: signing on again")
                await _sign_on(client, printer)
                result = await action(client, args, context)
        except SignOnRefused as exc:
            printer.problem(str(exc))
            return EXIT_DECLINED
        except (UsageError, CardRequired) as exc:
            printer.problem(str(exc))
            return EXIT_USAGE
        except (NoAnswer, ResponseMacError) as exc:
            printer.problem(f"{exc}")
            return await _reverse_now(client, printer)
        except ReversalFailed as exc:
            printer.problem(str(exc))
            return EXIT_DECLINED
        except TerminalError as exc:
            printer.problem(str(exc))
            return EXIT_DECLINED
    if result is None:
        return EXIT_OK
    _print_result(result, client, context, printer)
    return EXIT_OK if result.response_code == Rc.APPROVED else EXIT_DECLINED


async def _reverse_now(client: TerminalClient, printer: _Printer) -> int:
    """A command that timed out (or got a bad MAC) reverses at once: the keys and the card
    are in this process now, the state file keeps neither."""
    if not client.reversal_pending:
        return EXIT_DECLINED
    printer.problem("冲正 reversal owed: sending it now")
    try:
        if not client.signed_on:
            await _sign_on(client, printer)
        result = await client.reverse()
    except TerminalError as exc:
        printer.problem(f"reversal not sent: {exc}")
        if client.reversal_pending:
            printer.problem("it is kept and sent before the next transaction of this terminal")
        return EXIT_DECLINED
    printer.outcome(result)
    return EXIT_DECLINED


def _print_result(
    result: Result, client: TerminalClient, context: _Context, printer: _Printer
) -> None:
    from poshub.simulators import receipt

    merchant = client.state.merchant_name or context.mid
    if result.settlement is not None:
        printer.line(
            receipt.render_settlement(
                result.settlement,
                merchant_name=merchant,
                mid=context.mid,
                tid=context.tid,
                operator=context.operator,
                language=context.language,
                width=context.width,
            )
        )
    elif result.kind in receipt.KIND_NAMES and result.approved:
        printer.line(
            receipt.render_receipt(
                result,
                merchant_name=merchant,
                mid=context.mid,
                tid=context.tid,
                kind=result.kind,
                card_masked=result.card_masked,
                operator=context.operator,
                language=context.language,
                width=context.width,
            )
        )
    printer.outcome(result)
    if result.processing_requirement:
        printer.line(f"host processing requirement {result.processing_requirement} (spec §1.3)")


# Actions: each returns the Result to print (None when there is nothing more to show).
async def _do_sign_on(
    client: TerminalClient, args: argparse.Namespace, context: _Context
) -> Result | None:
    await _sign_on(client, _Printer(context), args.mode)  # prints its own outcome
    return None


async def _do_sign_off(
    client: TerminalClient, args: argparse.Namespace, context: _Context
) -> Result:
    return await client.sign_off()


async def _do_echo(client: TerminalClient, args: argparse.Namespace, context: _Context) -> Result:
    return await client.echo()


async def _do_parameters(
    client: TerminalClient, args: argparse.Namespace, context: _Context
) -> Result:
    result = await client.parameters()
    for code, value in result.parameters.items():
        print(f"  {code}: {value}")
    return result


async def _do_balance(
    client: TerminalClient, args: argparse.Namespace, context: _Context
) -> Result:
    result = await client.balance(_card(args, context))
    if result.balance_fen is not None:
        print(f"余额 BALANCE: RMB {format_yuan(result.balance_fen)}")
    return result


async def _do_sale(client: TerminalClient, args: argparse.Namespace, context: _Context) -> Result:
    return await client.sale(_card(args, context), args.amount)


async def _do_qr_sale(
    client: TerminalClient, args: argparse.Namespace, context: _Context
) -> Result:
    return await client.qr_sale(args.code, args.amount)


async def _do_void(client: TerminalClient, args: argparse.Namespace, context: _Context) -> Result:
    original = _original(client.state, args.rrn, (Kind.SALE, Kind.QR_SALE), "void")
    if original.kind == Kind.QR_SALE:
        return await client.qr_void(original)
    return await client.void(original, _card(args, context))


async def _do_refund(client: TerminalClient, args: argparse.Namespace, context: _Context) -> Result:
    original = client.state.find(args.rrn)
    if original is None:
        # A sale of an earlier (settled) batch: the operator types its reference, as on a
        # real terminal (原批次号, 原凭证号, 原交易日期).
        if not (args.orig_batch and args.orig_stan and args.orig_date):
            raise UsageError(
                f"{args.rrn} is not in this terminal's journal: give --orig-batch, --orig-stan"
                " and --orig-date (MMDD) of the original sale"
            )
        original = JournalEntry(
            kind=Kind.QR_SALE if args.voucher else Kind.SALE,
            stan=args.orig_stan,
            batch=args.orig_batch,
            amount_fen=args.amount,
            rrn=args.rrn,
            host_date=args.orig_date,
            qr_voucher=args.voucher,
        )
    elif original.kind not in (Kind.SALE, Kind.QR_SALE):
        raise UsageError(f"{args.rrn} is a {original.kind}, not a sale")
    if original.kind == Kind.QR_SALE:
        return await client.qr_refund(original, args.amount)
    return await client.refund(original, _card(args, context), args.amount)


async def _do_preauth(
    client: TerminalClient, args: argparse.Namespace, context: _Context
) -> Result:
    return await client.preauth(_card(args, context), args.amount)


async def _do_preauth_cancel(
    client: TerminalClient, args: argparse.Namespace, context: _Context
) -> Result:
    original = _original(client.state, args.rrn, (Kind.PREAUTH,), "preauth-cancel")
    return await client.preauth_cancel(original, _card(args, context))


async def _do_completion(
    client: TerminalClient, args: argparse.Namespace, context: _Context
) -> Result:
    original = _original(client.state, args.rrn, (Kind.PREAUTH,), "completion")
    return await client.completion(original, _card(args, context), args.amount)


async def _do_completion_void(
    client: TerminalClient, args: argparse.Namespace, context: _Context
) -> Result:
    original = _original(client.state, args.rrn, (Kind.COMPLETION,), "completion-void")
    return await client.completion_void(original, _card(args, context))


async def _do_reverse(
    client: TerminalClient, args: argparse.Namespace, context: _Context
) -> Result | None:
    if not client.reversal_pending:
        print("no reversal is owed by this terminal")
        return None
    pending = client.state.pending_reversal
    card = _card(args, context) if pending is not None and pending.card_fields else None
    return await client.reverse(args.reason, card=card)


async def _do_settle(client: TerminalClient, args: argparse.Namespace, context: _Context) -> Result:
    return await client.settle()


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("terminal")
    group.add_argument("--host", help="gateway address (default: settings gateway_public_host)")
    group.add_argument("--port", type=int, help="gateway port (default: settings gateway_port)")
    group.add_argument("--tid", default=DEMO_TID, help=f"terminal id (default {DEMO_TID})")
    group.add_argument("--mid", default=DEMO_MID, help=f"merchant number (default {DEMO_MID})")
    group.add_argument(
        "--tmk",
        help="terminal master key, 32 hex digits (default: the published test key of the"
        " demo terminal)",
    )
    group.add_argument(
        "--mode",
        choices=sorted(SIGN_ON_CODES),
        default=NetworkCode.SIGN_ON_DOUBLE.value,
        help="sign-on key mode (60.3): 001 single DES, 003 3DES PIK, 004 with TDK",
    )
    group.add_argument("--state", help="state file (default <data_dir>/terminal-<TID>.json)")
    group.add_argument("--lang", choices=("zh", "en"), default="zh", help="slip language")
    group.add_argument(
        "--operator", type=_digits_argument(2, "--operator"), default="01", help="operator no."
    )
    group.add_argument("--width", type=int, choices=(32, 42), default=32, help="slip columns")
    group.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds to wait"
    )
    return common


def _card_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("card")
    group.add_argument(
        "--card", help=f"card number (default outside production: test card {TEST_CARD_PAN})"
    )
    group.add_argument(
        "--expiry", type=_digits_argument(4, "--expiry"), help="YYMM (test card: 3012)"
    )
    group.add_argument("--pin", help="PIN digits, or 'ask' to type it unseen")
    group.add_argument("--swipe", action="store_true", help="swipe (track 2) instead of keying")
    return options


def _invoke(
    action: Action,
    command: str,
    settings_factory: Callable[[argparse.Namespace], Settings],
    args: argparse.Namespace,
) -> int:
    try:
        context = _context(args, settings_factory(args))
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    result: int = run_async(_run_command(action, args, context, command))
    return result


def add_cli(
    terminal_subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    settings_factory: Callable[[argparse.Namespace], Settings],
) -> None:
    """Add the transaction commands to ``poshub terminal`` (which has ``list``/``show``)."""
    common = _common_options()
    card = _card_options()
    amount_help = "amount in yuan, up to 2 decimals (e.g. 12.34)"

    def command(
        name: str, action: Action, help_text: str, *, with_card: bool = False
    ) -> argparse.ArgumentParser:
        parents = [common, card] if with_card else [common]
        parser = terminal_subparsers.add_parser(name, help=help_text, parents=parents)
        parser.set_defaults(func=partial(_invoke, action, name, settings_factory))
        return parser

    command("sign-on", _do_sign_on, "sign on (0800): fresh working keys, the open batch")
    command("sign-off", _do_sign_off, "sign off (0820/002)")
    command("echo", _do_echo, "echo test (0820/301)")
    command("parameters", _do_parameters, "parameter download (0800/360, 361)")
    command("balance", _do_balance, "balance inquiry", with_card=True)
    sale = command("sale", _do_sale, "sale (消费)", with_card=True)
    sale.add_argument("--amount", type=_amount_argument, required=True, help=amount_help)
    qr = command("qr-sale", _do_qr_sale, "QR payment-code sale (扫码消费)")
    qr.add_argument("--code", required=True, help="the scanned payment code")
    qr.add_argument("--amount", type=_amount_argument, required=True, help=amount_help)
    void = command("void", _do_void, "void a sale of the open batch (消费撤销)", with_card=True)
    void.add_argument("--rrn", required=True, help="reference number of the sale")
    refund = command("refund", _do_refund, "refund a sale (退货)", with_card=True)
    refund.add_argument("--rrn", required=True, help="reference number of the sale")
    refund.add_argument("--amount", type=_amount_argument, required=True, help=amount_help)
    refund.add_argument("--orig-batch", type=_digits_argument(6, "--orig-batch"))
    refund.add_argument("--orig-stan", type=_digits_argument(6, "--orig-stan"))
    refund.add_argument("--orig-date", type=_digits_argument(4, "--orig-date"), help="MMDD")
    refund.add_argument("--voucher", help="payment voucher of a QR sale not in the journal")
    preauth = command("preauth", _do_preauth, "pre-authorization (预授权)", with_card=True)
    preauth.add_argument("--amount", type=_amount_argument, required=True, help=amount_help)
    cancel = command(
        "preauth-cancel", _do_preauth_cancel, "cancel a pre-authorization", with_card=True
    )
    cancel.add_argument("--rrn", required=True, help="reference number of the pre-auth")
    completion = command(
        "completion", _do_completion, "pre-auth completion (预授权完成)", with_card=True
    )
    completion.add_argument("--rrn", required=True, help="reference number of the pre-auth")
    completion.add_argument("--amount", type=_amount_argument, required=True, help=amount_help)
    completion_void = command(
        "completion-void", _do_completion_void, "void a completion", with_card=True
    )
    completion_void.add_argument("--rrn", required=True, help="reference number of the completion")
    reverse = command("reverse", _do_reverse, "send the owed reversal (冲正)", with_card=True)
    reverse.add_argument(
        "--reason", choices=("98", "A0", "06", "96"), help="reversal reason (default: stored)"
    )
    command("settle", _do_settle, "settle the batch (批结算, batch upload if unbalanced)")
