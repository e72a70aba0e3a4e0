"""Which transaction a request is, and whether it carries what that transaction needs.

Pure functions over a decoded message (spec §5). ``identify`` reads MTI + field 3 +
field 25 + 60.1 + 60.3 against the matrix of spec §5.1; ``check_presence`` applies the
per-message field lists of §5.2, §5.3, §5.5, §5.6 and §11.6. Every refusal is a
``RequestFormatError`` naming the field at fault, which the pipeline answers with ``30``;
a request PosHub recognises but does not implement comes back identified with
``supported=False`` (answered ``40``, spec §9, §11.10, §11.12).

Errors name fields, never their values (a PAN must not reach a log via an exception).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from poshub.gateway import fields
from poshub.gateway.codec import Message
from poshub.gateway.constants import (
    CC_NORMAL,
    CC_PREAUTH,
    ENTRY_QR,
    F_AMOUNT,
    F_AUTH_CODE,
    F_CONDITION_CODE,
    F_CURRENCY,
    F_ENTRY_MODE,
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
    F_RESERVED_63,
    F_RESPONSE_CODE,
    F_RRN,
    F_SECURITY_CONTROL,
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
    SIGN_ON_CODES,
    TAG_QR_CODE,
    TAG_QR_VOUCHER,
    Mti,
    NetworkCode,
    TypeCode,
)
from poshub.gateway.models import TxnKind


class RequestFormatError(Exception):
    """A request that is not a well-formed message of a transaction (answered ``30``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field}: {reason}")
        self.field = field
        """The field key at fault as pyiso8583 names it: ``"t"`` (MTI), ``"3"``, ``"60"`` …"""
        self.reason = reason


class UnknownTransaction(RequestFormatError):
    """MTI, 3, 25 and 60 form no transaction of the dialect."""


class MissingField(RequestFormatError):
    """A field (or a sub-field, such as 59's TLV item) the transaction requires is absent."""


class UnexpectedField(RequestFormatError):
    """A field the transaction must not carry (card data in a QR payment, 26 without 52)."""


class MalformedField(RequestFormatError):
    """A field present but not in the form the transaction requires (61 too short)."""


@dataclass(frozen=True, slots=True)
class Identified:
    kind: TxnKind
    f60: fields.Field60
    reversible: bool
    """An unanswered or unverifiable request of this kind is reversed (spec §5.1)."""
    financial: bool
    """Subject to repeat detection (``94``) and counted in the journal's totals; a
    reversal is its own class and is not ``financial``."""
    needs_mac: bool
    """Request and response carry field 64 (spec §7.1)."""
    supported: bool = True
    """False for requests of the dialect PosHub v1 does not implement (answered ``40``)."""
    reverses: TxnKind | None = None
    """For a reversal: the kind of transaction it reverses, from the original's 3/25/60.1."""


# --- The identification matrix (spec §5.1) ----------------------------------------------

_FinancialKey = tuple[str, str, str]
"""(field 3, field 25, 60.1)."""

_FINANCIAL: Final[Mapping[str, Mapping[_FinancialKey, TxnKind]]] = {
    Mti.FINANCIAL_REQUEST: {
        (PC_BALANCE, CC_NORMAL, TypeCode.BALANCE): TxnKind.BALANCE,
        (PC_PURCHASE, CC_NORMAL, TypeCode.SALE): TxnKind.SALE,
        (PC_VOID, CC_NORMAL, TypeCode.VOID): TxnKind.VOID,
        (PC_PURCHASE, CC_PREAUTH, TypeCode.COMPLETION): TxnKind.COMPLETION,
        (PC_VOID, CC_PREAUTH, TypeCode.COMPLETION_VOID): TxnKind.COMPLETION_VOID,
    },
    Mti.ADVICE: {
        (PC_VOID, CC_NORMAL, TypeCode.REFUND): TxnKind.REFUND,
        (PC_PURCHASE, CC_PREAUTH, TypeCode.COMPLETION_ADVICE): TxnKind.COMPLETION_ADVICE,
        # Offline settlement and adjustments (spec §5.1) are rows of the dialect PosHub
        # v1 does not process: identified as UNKNOWN and answered 40, not 30.
        (PC_PURCHASE, CC_NORMAL, "30"): TxnKind.UNKNOWN,
        (PC_PURCHASE, CC_NORMAL, "32"): TxnKind.UNKNOWN,
        (PC_PURCHASE, CC_NORMAL, "34"): TxnKind.UNKNOWN,
    },
    Mti.AUTH_REQUEST: {
        (PC_PREAUTH, CC_PREAUTH, TypeCode.PREAUTH): TxnKind.PREAUTH,
        (PC_VOID, CC_PREAUTH, TypeCode.PREAUTH_CANCEL): TxnKind.PREAUTH_CANCEL,
    },
}

REVERSIBLE: Final = frozenset(
    {
        TxnKind.SALE,
        TxnKind.QR_SALE,
        TxnKind.VOID,
        TxnKind.PREAUTH,
        TxnKind.PREAUTH_CANCEL,
        TxnKind.COMPLETION,
        TxnKind.COMPLETION_VOID,
    }
)
"""Spec §5.1 "Reversible": refunds and advices are resent, never reversed."""

FINANCIAL: Final = frozenset(
    {
        TxnKind.SALE,
        TxnKind.QR_SALE,
        TxnKind.VOID,
        TxnKind.REFUND,
        TxnKind.PREAUTH,
        TxnKind.PREAUTH_CANCEL,
        TxnKind.COMPLETION,
        TxnKind.COMPLETION_VOID,
        TxnKind.COMPLETION_ADVICE,
    }
)

_REVERSAL_ORIGINALS: Final[Mapping[_FinancialKey, TxnKind]] = {
    key: kind for rows in _FINANCIAL.values() for key, kind in rows.items() if kind in REVERSIBLE
}
"""A 0400 copies the original's 3, 25 and 60.1 (spec §5.5); only reversible ones qualify."""

_MANAGEMENT: Final[Mapping[str, Mapping[str, TxnKind]]] = {
    Mti.MANAGEMENT: {
        **{code.value: TxnKind.SIGN_ON for code in SIGN_ON_CODES},
        NetworkCode.PARAMETERS: TxnKind.PARAMETERS,
        NetworkCode.PARAMETERS_DONE: TxnKind.PARAMETERS,
    },
    Mti.MANAGEMENT_ADVICE: {
        NetworkCode.SIGN_OFF: TxnKind.SIGN_OFF,
        NetworkCode.ECHO: TxnKind.ECHO,
    },
    Mti.SETTLEMENT: {NetworkCode.SETTLEMENT: TxnKind.SETTLEMENT},
    Mti.BATCH_UPLOAD: {
        NetworkCode.SETTLEMENT: TxnKind.BATCH_UPLOAD,
        NetworkCode.UPLOAD_END_UNBALANCED: TxnKind.BATCH_UPLOAD_END,
        NetworkCode.UPLOAD_END_BALANCED: TxnKind.BATCH_UPLOAD_END,
    },
}

_UNSUPPORTED_MANAGEMENT: Final[Mapping[str, Mapping[str, TxnKind]]] = {
    # Downloads of spec §4.1 beyond terminal parameters (TMS, CAPK, AID, QPS, card BIN
    # tables, remote TMK): answered 40 (spec §11.10).
    Mti.MANAGEMENT: dict.fromkeys(
        ("364", "370", "371", "380", "381", *map(str, range(394, 400)), "960", "961", "401"),
        TxnKind.PARAMETERS,
    ),
    # Status upload, CAPK and IC-parameter status queries: the same family, also 40.
    Mti.MANAGEMENT_ADVICE: dict.fromkeys(("362", "372", "382"), TxnKind.PARAMETERS),
    # IC batch upload (spec §11.12: not in v1).
    Mti.BATCH_UPLOAD: {NetworkCode.UPLOAD_IC: TxnKind.BATCH_UPLOAD},
}


def identify(message: Message) -> Identified:
    """The transaction ``message`` is (spec §5.1).

    Raises ``UnknownTransaction`` naming the first of MTI (``"t"``), 3, 25, 60 that no row
    of the matrix accepts, ``MissingField`` when 3, 25 or 60 is needed and absent,
    ``MalformedField("60")`` when 60 is not 8–17 digits.
    """
    mti = message.get(MTI, "")
    if mti not in _MANAGEMENT and mti not in _FINANCIAL and mti != Mti.REVERSAL:
        raise UnknownTransaction(MTI, "not a request message type of the dialect")
    f60 = _field60(message)
    needs_mac = mti in MAC_MTIS
    if mti in _MANAGEMENT:
        if f60.type_code != TypeCode.MANAGEMENT:
            raise UnknownTransaction(F_RESERVED_60, "60.1 must be 00 in a management message")
        code = f60.network_code
        kind = _MANAGEMENT[mti].get(code)
        if kind is not None:
            return Identified(kind, f60, reversible=False, financial=False, needs_mac=False)
        kind = _UNSUPPORTED_MANAGEMENT.get(mti, {}).get(code)
        if kind is not None:
            return Identified(
                kind, f60, reversible=False, financial=False, needs_mac=False, supported=False
            )
        raise UnknownTransaction(F_RESERVED_60, "60.3 is not a code of this message type")
    if mti == Mti.REVERSAL:
        original = _match(_REVERSAL_ORIGINALS, message, f60)
        return Identified(
            TxnKind.REVERSAL,
            f60,
            reversible=False,
            financial=False,
            needs_mac=True,
            reverses=_qr_or(original, message),
        )
    kind = _qr_or(_match(_FINANCIAL[mti], message, f60), message)
    if kind is TxnKind.UNKNOWN:
        return Identified(
            kind, f60, reversible=False, financial=False, needs_mac=needs_mac, supported=False
        )
    return Identified(
        kind,
        f60,
        reversible=kind in REVERSIBLE,
        financial=kind in FINANCIAL,
        needs_mac=needs_mac,
    )


def _field60(message: Message) -> fields.Field60:
    text = message.get(F_RESERVED_60)
    if text is None:
        raise MissingField(F_RESERVED_60, "every request carries field 60")
    try:
        return fields.Field60.parse(text)
    except fields.SubfieldError:
        raise MalformedField(F_RESERVED_60, "8 to 17 digits expected") from None


def _match(rows: Mapping[_FinancialKey, TxnKind], message: Message, f60: fields.Field60) -> TxnKind:
    """The row of ``rows`` for 3 + 25 + 60.1, naming the first field no row accepts."""
    processing_code = message.get(F_PROCESSING_CODE)
    if processing_code is None:
        raise MissingField(F_PROCESSING_CODE, "a financial request carries field 3")
    candidates = [key for key in rows if key[0] == processing_code]
    if not candidates:
        raise UnknownTransaction(F_PROCESSING_CODE, "processing code not valid here")
    condition_code = message.get(F_CONDITION_CODE)
    if condition_code is None:
        raise MissingField(F_CONDITION_CODE, "a financial request carries field 25")
    candidates = [key for key in candidates if key[1] == condition_code]
    if not candidates:
        raise UnknownTransaction(F_CONDITION_CODE, "condition code not valid here")
    key = (processing_code, condition_code, f60.type_code)
    if key not in rows or f60.network_code != NetworkCode.NONE:
        raise UnknownTransaction(F_RESERVED_60, "60.1/60.3 not valid here")
    return rows[key]


def _qr_or(kind: TxnKind, message: Message) -> TxnKind:
    """A sale read from a QR code is its own kind; QR voids and refunds stay voids and
    refunds (spec §11.6)."""
    return TxnKind.QR_SALE if kind is TxnKind.SALE and is_qr(message) else kind


def is_qr(message: Message) -> bool:
    """Field 22.1 says the payment was read from a QR / bar code (spec §3, §11.6)."""
    return message.get(F_ENTRY_MODE, "").startswith(ENTRY_QR)


# --- Field presence (spec §5.2, §5.3, §5.5, §5.6) ------------------------------------------

_CARD: Final = (F_STAN, F_ENTRY_MODE, F_TID, F_MID, F_CURRENCY, F_RESERVED_60, F_MAC)
"""Mandatory in every financial request besides 3 and 25 (which identified it)."""

_MANDATORY: Final[Mapping[TxnKind, tuple[str, ...]]] = {
    TxnKind.BALANCE: _CARD,
    TxnKind.SALE: (F_AMOUNT, *_CARD),
    TxnKind.QR_SALE: (F_AMOUNT, *_CARD),
    TxnKind.VOID: (F_AMOUNT, F_RRN, F_ORIGINAL, *_CARD),
    TxnKind.COMPLETION_VOID: (F_AMOUNT, F_RRN, F_ORIGINAL, *_CARD),
    TxnKind.REFUND: (F_AMOUNT, F_RRN, F_ORIGINAL, F_RESERVED_63, *_CARD),
    TxnKind.PREAUTH: (F_AMOUNT, *_CARD),
    TxnKind.PREAUTH_CANCEL: (F_AMOUNT, F_AUTH_CODE, F_ORIGINAL, *_CARD),
    TxnKind.COMPLETION: (F_AMOUNT, F_AUTH_CODE, F_ORIGINAL, *_CARD),
    TxnKind.COMPLETION_ADVICE: (F_AMOUNT, F_AUTH_CODE, F_ORIGINAL, *_CARD),
    TxnKind.REVERSAL: (
        F_PROCESSING_CODE,
        F_AMOUNT,
        F_STAN,
        F_CONDITION_CODE,
        F_RESPONSE_CODE,
        F_TID,
        F_MID,
        F_CURRENCY,
        F_RESERVED_60,
        F_MAC,
    ),
    TxnKind.SIGN_ON: (F_STAN, F_TID, F_MID, F_RESERVED_60, F_RESERVED_63),
    TxnKind.SIGN_OFF: (F_STAN, F_TID, F_MID, F_RESERVED_60),
    TxnKind.ECHO: (F_TID, F_MID, F_RESERVED_60),
    TxnKind.PARAMETERS: (F_TID, F_MID, F_RESERVED_60),
    TxnKind.SETTLEMENT: (
        F_STAN,
        F_TID,
        F_MID,
        F_PRIVATE_48,
        F_CURRENCY,
        F_RESERVED_60,
        F_RESERVED_63,
    ),
    TxnKind.BATCH_UPLOAD: (F_STAN, F_TID, F_MID, F_PRIVATE_48, F_RESERVED_60),
    TxnKind.BATCH_UPLOAD_END: (F_STAN, F_TID, F_MID, F_PRIVATE_48, F_RESERVED_60),
}

_ORIGINAL_DIGITS: Final[Mapping[TxnKind, int]] = {
    # 61.1 + 61.2: the void is matched by the original's batch and STAN.
    TxnKind.VOID: 12,
    TxnKind.COMPLETION_VOID: 12,
    # 61.1 + 61.2 + 61.3: refunds and pre-auth follow-ups need the original's date too.
    TxnKind.REFUND: 16,
    TxnKind.PREAUTH_CANCEL: 16,
    TxnKind.COMPLETION: 16,
    TxnKind.COMPLETION_ADVICE: 16,
}

_CARD_FIELDS: Final = (F_PAN, F_TRACK2, F_TRACK3, F_PIN_BLOCK)
"""What a QR payment must not carry: it has no card (spec §11.6)."""

_QR_TAG: Final[Mapping[TxnKind, str]] = {
    TxnKind.QR_SALE: TAG_QR_CODE,
    TxnKind.VOID: TAG_QR_VOUCHER,
    TxnKind.REFUND: TAG_QR_VOUCHER,
}
"""The 59 item a QR request carries: the scanned code, or the original's voucher."""


def check_presence(identified: Identified, message: Message) -> None:
    """Raise a ``RequestFormatError`` naming the first field ``message`` lacks (or must not
    carry) for its transaction; return None when the fields are all there.

    Requests identified as not supported need only what the ``40`` answer needs.
    """
    kind = identified.kind
    mandatory = _MANDATORY.get(kind) if identified.supported else None
    if mandatory is None:
        mandatory = (F_TID, F_MID, F_RESERVED_60) + ((F_MAC,) if identified.needs_mac else ())
    for key in sorted(mandatory, key=int):
        if key not in message:
            raise MissingField(key, "required by this transaction")
    if not identified.supported:
        return
    digits = _ORIGINAL_DIGITS.get(kind)
    if digits is not None and len(message[F_ORIGINAL]) < digits:
        raise MalformedField(F_ORIGINAL, f"at least {digits} digits expected")
    if kind in FINANCIAL or kind is TxnKind.BALANCE:
        _check_card_source(kind, message)
    _check_pin_fields(message)


def _check_card_source(kind: TxnKind, message: Message) -> None:
    tag = _QR_TAG.get(kind)
    if tag is not None and is_qr(message):
        for key in _CARD_FIELDS:
            if key in message:
                raise UnexpectedField(key, "a QR payment carries no card data")
        text = message.get(F_PRIVATE_59)
        if text is None:
            raise MissingField(F_PRIVATE_59, "a QR payment carries field 59")
        try:
            items = fields.parse_tlv(text)
        except fields.SubfieldError:
            raise MalformedField(F_PRIVATE_59, "TLV items expected") from None
        if not items.get(tag):
            raise MissingField(F_PRIVATE_59, f"item {tag} expected")
    elif F_PAN not in message and F_TRACK2 not in message:
        raise MissingField(F_PAN, "the card: field 2 or track 2")


def _check_pin_fields(message: Message) -> None:
    """26 iff 52, and 53 with 52 (spec §3): the PIN block cannot be read without them."""
    has_pin = F_PIN_BLOCK in message
    if has_pin and F_PIN_CAPTURE not in message:
        raise MissingField(F_PIN_CAPTURE, "required with a PIN block")
    if not has_pin and F_PIN_CAPTURE in message:
        raise UnexpectedField(F_PIN_CAPTURE, "only with a PIN block")
    if has_pin and F_SECURITY_CONTROL not in message:
        raise MissingField(F_SECURITY_CONTROL, "required with a PIN block")
