"""The sandbox issuer of ``poshub network-sim``: its rules and its ledger, without I/O.

The behaviour is spec §11.14 plus what docs/test-cards.md documents for users:

* every Luhn-valid PAN of 12–19 digits is a test card with ¥100,000.00 available; its
  kind is credit when its first six digits are in ``CREDIT_BINS``, debit otherwise;
* a PIN block (field 52, under the zone PIN key) must hold ``123456`` (else ``55``;
  a malformed block ``99``); an expiry (field 14) before the current month is ``54``;
* the amount's last two digits in fen decline with ``51``/``05``/``61``/``96``; ``91`` is
  applied but never answered (the gateway times out, answers ``98`` and reverses);
* QR payment codes identify wallet accounts (¥10,000.00 each) by their shape;
* voids, refunds, pre-auth cancels and completions find their original by the RRN in
  field 48; a reversal (0400) finds its original by field 37 and undoes it exactly once.

``Issuer.handle`` takes a decoded request and returns the response, or None for "never
answer". State lives behind ``Book`` (the simulator keeps it in memory over SQLite). The
issuer never keeps a PAN: accounts are keyed by an HMAC token, records carry the first six
and last four digits only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Final, Protocol

from stdnum import luhn

from poshub.core import limits
from poshub.gateway import fields
from poshub.gateway.codec import Message
from poshub.gateway.constants import (
    CC_NORMAL,
    CC_PREAUTH,
    CURRENCY_CNY,
    ENTRY_QR,
    F_AMOUNT,
    F_AUTH_CODE,
    F_BALANCE,
    F_CONDITION_CODE,
    F_CURRENCY,
    F_ENTRY_MODE,
    F_EXPIRY,
    F_LOCAL_DATE,
    F_LOCAL_TIME,
    F_MID,
    F_PAN,
    F_PIN_BLOCK,
    F_PRIVATE_48,
    F_PRIVATE_59,
    F_PROCESSING_CODE,
    F_RESERVED_60,
    F_RESERVED_63,
    F_RESPONSE_CODE,
    F_RRN,
    F_SETTLEMENT_DATE,
    F_STAN,
    F_TID,
    MTI,
    PC_BALANCE,
    PC_PREAUTH,
    PC_PURCHASE,
    PC_VOID,
    REQUEST_MTIS,
    TAG_QR_CODE,
    TAG_QR_VOUCHER,
    Mti,
    Rc,
    TypeCode,
    response_mti,
)
from poshub.gateway.crypto import PinError, ZonePinKey, pin_from_block

CARD_OPENING_BALANCE_FEN: Final = 10_000_000
"""¥100,000.00: what every test card has available before its first transaction."""
WALLET_OPENING_BALANCE_FEN: Final = 1_000_000
"""¥10,000.00: what every wallet account behind a QR payment code starts with."""
CORRECT_PIN: Final = "123456"
CREDIT_BINS: Final = frozenset({"622588", "625800", "628888"})
"""First six digits of the PANs the simulator treats as credit cards; every other
Luhn-valid PAN is a debit card. The kind decides the interchange fee in clearing."""
DECLINE_BY_AMOUNT_ENDING: Final[dict[int, Rc]] = {
    51: Rc.INSUFFICIENT_FUNDS,
    5: Rc.DO_NOT_HONOUR,
    61: Rc.EXCEEDS_AMOUNT_LIMIT,
    96: Rc.SYSTEM_MALFUNCTION,
}
"""Amount in fen modulo 100 → the decline the simulator answers (spec §11.14)."""
NO_ANSWER_AMOUNT_ENDING: Final = 91
"""Amount in fen modulo 100 that the simulator applies and never answers."""
PAN_DIGITS_MIN: Final = 12
PAN_DIGITS_MAX: Final = 19
AUTH_CODE_ALPHABET: Final = string.ascii_uppercase + string.digits
AUTH_CODE_LENGTH: Final = 6
ORIGINAL_RRN_DIGITS: Final = 12
SCHEME_CARD: Final = "CUP"
"""Field 63 of card responses: every test card is a UnionPay card."""


class CardKind(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"
    WALLET = "wallet"


class Wallet(StrEnum):
    """Field 63.1 of a QR payment's response (spec §11.6)."""

    UNIONPAY = "CUP"
    WECHAT = "WXP"
    ALIPAY = "ALP"


class TxKind(StrEnum):
    BALANCE = "balance"
    SALE = "sale"
    QR_SALE = "qr_sale"
    VOID = "void"
    REFUND = "refund"
    PREAUTH = "preauth"
    PREAUTH_CANCEL = "preauth_cancel"
    COMPLETION = "completion"
    COMPLETION_VOID = "completion_void"
    COMPLETION_ADVICE = "completion_advice"
    UNMATCHED_REVERSAL = "unmatched_reversal"
    """A reversal of an RRN the simulator never saw, kept so that the original, should it
    arrive after all, cannot take effect (exactly once, whatever the order)."""


class Status(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    REVERSED = "reversed"


DEBIT_KINDS: Final = frozenset(
    {TxKind.SALE, TxKind.QR_SALE, TxKind.COMPLETION, TxKind.COMPLETION_ADVICE}
)
"""Transactions that take money from the cardholder's account."""
CREDIT_KINDS: Final = frozenset({TxKind.VOID, TxKind.REFUND, TxKind.COMPLETION_VOID})
"""Transactions that give money back to it."""
FINANCIAL_KINDS: Final = DEBIT_KINDS | CREDIT_KINDS
"""What the clearing file lists (balance inquiries and holds move no money)."""
_SALE_KINDS: Final = frozenset({TxKind.SALE, TxKind.QR_SALE})
_COMPLETION_KINDS: Final = frozenset({TxKind.COMPLETION, TxKind.COMPLETION_ADVICE})
_PREAUTH_KINDS: Final = frozenset({TxKind.PREAUTH})
_LINKED_KINDS: Final = frozenset(
    {
        TxKind.VOID,
        TxKind.REFUND,
        TxKind.PREAUTH_CANCEL,
        TxKind.COMPLETION,
        TxKind.COMPLETION_VOID,
        TxKind.COMPLETION_ADVICE,
    }
)
"""Transactions that name their original by its RRN in field 48."""

_KINDS: Final[dict[tuple[str, str, str, str], TxKind]] = {
    (Mti.FINANCIAL_REQUEST, PC_BALANCE, CC_NORMAL, TypeCode.BALANCE): TxKind.BALANCE,
    (Mti.FINANCIAL_REQUEST, PC_PURCHASE, CC_NORMAL, TypeCode.SALE): TxKind.SALE,
    (Mti.FINANCIAL_REQUEST, PC_VOID, CC_NORMAL, TypeCode.VOID): TxKind.VOID,
    (Mti.ADVICE, PC_VOID, CC_NORMAL, TypeCode.REFUND): TxKind.REFUND,
    (Mti.AUTH_REQUEST, PC_PREAUTH, CC_PREAUTH, TypeCode.PREAUTH): TxKind.PREAUTH,
    (Mti.AUTH_REQUEST, PC_VOID, CC_PREAUTH, TypeCode.PREAUTH_CANCEL): TxKind.PREAUTH_CANCEL,
    (Mti.FINANCIAL_REQUEST, PC_PURCHASE, CC_PREAUTH, TypeCode.COMPLETION): TxKind.COMPLETION,
    (Mti.FINANCIAL_REQUEST, PC_VOID, CC_PREAUTH, TypeCode.COMPLETION_VOID): (
        TxKind.COMPLETION_VOID
    ),
    (Mti.ADVICE, PC_PURCHASE, CC_PREAUTH, TypeCode.COMPLETION_ADVICE): TxKind.COMPLETION_ADVICE,
}
"""MTI + field 3 + field 25 + 60.1 → transaction (spec §5.1)."""

_ECHOED: Final = (
    F_PROCESSING_CODE,
    F_AMOUNT,
    F_STAN,
    F_CONDITION_CODE,
    F_RRN,
    F_TID,
    F_MID,
    F_CURRENCY,
)
"""Request fields copied into every response; never the PAN (the gateway has it)."""


# --- Pure rules ---------------------------------------------------------------------
def card_kind(pan: str) -> CardKind:
    """Credit when the BIN (first six digits) is in ``CREDIT_BINS``, else debit."""
    return CardKind.CREDIT if pan[:6] in CREDIT_BINS else CardKind.DEBIT


def is_test_card(pan: str) -> bool:
    """Every Luhn-valid PAN of 12 to 19 digits (spec §11.14)."""
    return PAN_DIGITS_MIN <= len(pan) <= PAN_DIGITS_MAX and pan.isdigit() and luhn.is_valid(pan)


def wallet_of(code: str) -> Wallet | None:
    """The wallet a QR payment code belongs to, by its shape, or None (answered ``14``):
    19 digits starting ``62`` UnionPay; 18 digits starting ``10``–``15`` WeChat Pay;
    16–24 digits starting ``25``–``30`` Alipay."""
    if not code.isdigit() or len(code) < 2:
        return None
    prefix = int(code[:2])
    if len(code) == 19 and prefix == 62:
        return Wallet.UNIONPAY
    if len(code) == 18 and 10 <= prefix <= 15:
        return Wallet.WECHAT
    if 16 <= len(code) <= 24 and 25 <= prefix <= 30:
        return Wallet.ALIPAY
    return None


def mask(number: str) -> str:
    """First six and last four digits, the rest as ``*`` (all of it for short numbers)."""
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def is_expired(yymm: str, today: date) -> bool:
    """An expiry (YYMM) before the current month; an impossible month counts as expired."""
    if len(yymm) != 4 or not yymm.isdigit() or not 1 <= int(yymm[2:]) <= 12:
        return True
    return (2000 + int(yymm[:2]), int(yymm[2:])) < (today.year, today.month)


def amount_decline(amount_fen: int) -> Rc | None:
    """The decline forced by the amount's last two digits in fen, if any."""
    return DECLINE_BY_AMOUNT_ENDING.get(amount_fen % 100)


def is_never_answered(amount_fen: int) -> bool:
    return amount_fen % 100 == NO_ANSWER_AMOUNT_ENDING


def new_auth_code() -> str:
    """Six random base-36 characters (one draw: this runs for every approval)."""
    value = secrets.randbelow(len(AUTH_CODE_ALPHABET) ** AUTH_CODE_LENGTH)
    characters = []
    for _ in range(AUTH_CODE_LENGTH):
        value, digit = divmod(value, len(AUTH_CODE_ALPHABET))
        characters.append(AUTH_CODE_ALPHABET[digit])
    return "".join(characters)


class Tokenizer:
    """HMAC-SHA256 tokens of PANs and payment codes: the only account keys stored.

    The HMAC key is derived from the zone PIN key (which lives outside the simulator's
    database, in the environment or its own file) by encrypting fixed diversification
    blocks under it, so the database alone cannot be used to test guessed PANs.
    """

    __slots__ = ("_key",)

    _DIVERSIFIERS: Final = (b"PANTOK01", b"PANTOK02", b"PANTOK03", b"PANTOK04")

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a token key has at least 16 bytes")
        self._key = key

    @classmethod
    def from_zpk(cls, zpk: ZonePinKey) -> Tokenizer:
        return cls(b"".join(zpk.encrypt_block(block) for block in cls._DIVERSIFIERS))

    def card(self, pan: str) -> str:
        return hmac.new(self._key, b"card:" + pan.encode(), hashlib.sha256).hexdigest()

    def wallet(self, code: str) -> str:
        # A separate domain: a 19-digit UnionPay code can also be a Luhn-valid PAN.
        return hmac.new(self._key, b"wallet:" + code.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "Tokenizer(<hidden>)"


# --- State ----------------------------------------------------------------------
@dataclass(slots=True)
class Account:
    """A card or wallet account. ``balance_fen`` is the ledger balance; holds of open
    pre-auths are ``hold_fen``; what the cardholder can spend is the difference."""

    token: str
    kind: CardKind
    masked: str
    balance_fen: int
    hold_fen: int = 0

    @property
    def available_fen(self) -> int:
        return self.balance_fen - self.hold_fen


@dataclass(slots=True)
class Authorization:
    """One request the simulator decided (approved or declined), keyed by its RRN."""

    seq: int
    """Order of arrival; also numbers QR vouchers."""
    rrn: str
    stan: str
    tid: str
    mid: str
    mti: str
    kind: TxKind
    business_date: str
    """ISO date (Asia/Shanghai) the request was decided on: the clearing file it is in."""
    created_at: str
    amount_fen: int = 0
    card_kind: CardKind | None = None
    account: str = ""
    """Token of the account it moved money on (empty when no valid card was named)."""
    masked: str = ""
    """First six and last four digits of the PAN or payment code."""
    status: Status = Status.DECLINED
    response_code: str = ""
    auth_code: str = ""
    original_rrn: str = ""
    wallet: str = ""
    voucher: str = ""
    answered: bool = True
    """False for the amount ending 91: applied, never answered."""
    voided_by: str = ""
    """RRN of the approved void of this sale or completion."""
    refunded_fen: int = 0
    hold_fen: int = 0
    """A pre-auth's hold still open."""
    released_fen: int = 0
    """The hold a cancel or completion released (restored if that one is reversed)."""
    closed_by: str = ""
    """RRN of the cancel or completion that closed this pre-auth."""


class Book(Protocol):
    """Where the issuer's state lives. ``save_*`` marks an object new or changed."""

    def account(self, token: str) -> Account | None: ...

    def save_account(self, account: Account) -> None: ...

    def authorization(self, rrn: str) -> Authorization | None: ...

    def save_authorization(self, authorization: Authorization) -> None: ...

    def next_seq(self) -> int: ...


@dataclass(slots=True)
class IssuerCounters:
    requests: int = 0
    approved: int = 0
    declined: int = 0
    unanswered: int = 0
    """Requests applied and deliberately never answered (amount ending 91)."""
    repeats: int = 0
    """Requests whose RRN, MTI, STAN and TID were seen before (answered as before)."""
    reversals_received: int = 0
    reversals_applied: int = 0
    """Reversals that reversed their original now (not repeats, not unknown RRNs)."""


class _Decline(Exception):
    def __init__(self, code: Rc) -> None:
        super().__init__(code.value)
        self.code = code


@dataclass(slots=True)
class _Request:
    message: Message
    mti: str
    kind: TxKind
    rrn: str
    stan: str
    tid: str
    mid: str
    amount_fen: int | None
    original_rrn: str
    qr_code: str | None
    voucher: str | None


# --- The issuer ------------------------------------------------------------------
class Issuer:
    def __init__(
        self,
        book: Book,
        *,
        zpk: ZonePinKey,
        tokens: Tokenizer,
        clock: Callable[[], datetime],
        auth_codes: Callable[[], str] = new_auth_code,
    ) -> None:
        self._book = book
        self._zpk = zpk
        self._tokens = tokens
        self._clock = clock
        self._auth_codes = auth_codes
        self.counters = IssuerCounters()

    def handle(self, message: Message) -> Message | None:
        """The response to one request, or None when the simulator must not answer."""
        mti = message.get(MTI, "")
        if mti not in REQUEST_MTIS:
            return None
        self.counters.requests += 1
        if mti == Mti.REVERSAL:
            self.counters.reversals_received += 1
            return self._reverse(message)
        try:
            request = self._parse(message)
        except _Decline as decline:
            return self._respond(message, decline.code)
        if request is None:
            return self._respond(message, Rc.NOT_SUPPORTED)
        existing = self._book.authorization(request.rrn)
        if existing is not None:
            return self._repeat(request, existing)
        return self._authorize(request)

    # --- parsing ---------------------------------------------------------------------
    def _parse(self, message: Message) -> _Request | None:
        try:
            type_code = fields.Field60.parse(message.get(F_RESERVED_60, "")).type_code
        except fields.SubfieldError:
            raise _Decline(Rc.FORMAT_ERROR) from None
        mti = message[MTI]
        kind = _KINDS.get(
            (mti, message.get(F_PROCESSING_CODE, ""), message.get(F_CONDITION_CODE, ""), type_code)
        )
        if kind is None:
            return None
        if kind is TxKind.SALE and message.get(F_ENTRY_MODE, "").startswith(ENTRY_QR):
            kind = TxKind.QR_SALE
        rrn, stan = message.get(F_RRN, "").strip(), message.get(F_STAN, "")
        tid, mid = message.get(F_TID, ""), message.get(F_MID, "")
        if not (rrn and stan and tid and mid):
            raise _Decline(Rc.FORMAT_ERROR)
        if message.get(F_CURRENCY, CURRENCY_CNY) != CURRENCY_CNY:
            raise _Decline(Rc.INVALID_AMOUNT)
        amount_fen: int | None = None
        if kind is not TxKind.BALANCE:
            if F_AMOUNT not in message:
                raise _Decline(Rc.FORMAT_ERROR)
            amount_fen = int(message[F_AMOUNT])
            if amount_fen <= 0:
                raise _Decline(Rc.INVALID_AMOUNT)
        original_rrn = ""
        if kind in _LINKED_KINDS:
            original_rrn = message.get(F_PRIVATE_48, "")
            if len(original_rrn) != ORIGINAL_RRN_DIGITS:
                raise _Decline(Rc.FORMAT_ERROR)
        tlv: dict[str, str] = {}
        if F_PRIVATE_59 in message:
            try:
                tlv = fields.parse_tlv(message[F_PRIVATE_59])
            except fields.SubfieldError:
                raise _Decline(Rc.FORMAT_ERROR) from None
        qr_code = tlv.get(TAG_QR_CODE)
        if kind is TxKind.QR_SALE and not qr_code:
            raise _Decline(Rc.FORMAT_ERROR)
        return _Request(
            message=message,
            mti=mti,
            kind=kind,
            rrn=rrn,
            stan=stan,
            tid=tid,
            mid=mid,
            amount_fen=amount_fen,
            original_rrn=original_rrn,
            qr_code=qr_code,
            voucher=tlv.get(TAG_QR_VOUCHER),
        )

    # --- new requests ----------------------------------------------------------------
    def _authorize(self, request: _Request) -> Message | None:
        now = self._clock()
        auth = Authorization(
            seq=self._book.next_seq(),
            rrn=request.rrn,
            stan=request.stan,
            tid=request.tid,
            mid=request.mid,
            mti=request.mti,
            kind=request.kind,
            business_date=now.date().isoformat(),
            created_at=now.isoformat(timespec="milliseconds"),
            amount_fen=request.amount_fen or 0,
            original_rrn=request.original_rrn,
        )
        try:
            self._decide(request, auth, now.date())
            code = Rc.APPROVED
        except _Decline as decline:
            code = decline.code
        auth.response_code = code.value
        if code is Rc.APPROVED:
            auth.status = Status.APPROVED
            auth.auth_code = self._auth_codes()
            self.counters.approved += 1
        else:
            self.counters.declined += 1
        if request.amount_fen is not None and is_never_answered(request.amount_fen):
            auth.answered = False
            self.counters.unanswered += 1
        self._book.save_authorization(auth)
        if not auth.answered:
            return None
        return self._respond(request.message, code, auth=auth)

    def _decide(self, request: _Request, auth: Authorization, today: date) -> None:
        """Checks, then effects: raises ``_Decline`` before changing anything."""
        kind = request.kind
        account: Account | None = None
        if kind is TxKind.QR_SALE:
            account = self._wallet_account(request, auth)
        else:
            account = self._card_account(request, auth, today, required=kind not in _LINKED_KINDS)
        amount = request.amount_fen
        if amount is not None:
            decline = amount_decline(amount)
            if decline is not None:
                raise _Decline(decline)
        if kind is TxKind.BALANCE:
            return
        assert amount is not None
        if kind in (TxKind.SALE, TxKind.QR_SALE, TxKind.PREAUTH):
            assert account is not None
            if account.available_fen < amount:
                raise _Decline(Rc.INSUFFICIENT_FUNDS)
            if kind is TxKind.PREAUTH:
                account.hold_fen += amount
                auth.hold_fen = amount
            else:
                account.balance_fen -= amount
            if kind is TxKind.QR_SALE:
                auth.voucher = f"{auth.wallet}{today:%Y%m%d}{auth.seq:012d}"
            self._book.save_account(account)
        elif kind in (TxKind.VOID, TxKind.COMPLETION_VOID):
            kinds = _SALE_KINDS if kind is TxKind.VOID else _COMPLETION_KINDS
            original = self._original(request, auth, kinds, same_terminal=True)
            if original.voided_by or original.refunded_fen:
                raise _Decline(Rc.INVALID_TRANSACTION)
            if amount != original.amount_fen:
                raise _Decline(Rc.ORIGINAL_AMOUNT_WRONG)
            account = self._account_of(original)
            account.balance_fen += amount
            original.voided_by = auth.rrn
            self._book.save_account(account)
            self._book.save_authorization(original)
        elif kind is TxKind.REFUND:
            original = self._original(
                request, auth, _SALE_KINDS | _COMPLETION_KINDS, same_terminal=False
            )
            if original.voided_by:
                raise _Decline(Rc.INVALID_TRANSACTION)
            if original.refunded_fen + amount > original.amount_fen:
                raise _Decline(Rc.INVALID_AMOUNT)
            account = self._account_of(original)
            account.balance_fen += amount
            original.refunded_fen += amount
            self._book.save_account(account)
            self._book.save_authorization(original)
        elif kind is TxKind.PREAUTH_CANCEL:
            original = self._original(request, auth, _PREAUTH_KINDS, same_terminal=False)
            if original.closed_by:
                raise _Decline(Rc.INVALID_TRANSACTION)
            if amount != original.amount_fen:
                raise _Decline(Rc.ORIGINAL_AMOUNT_WRONG)
            account = self._account_of(original)
            self._close_preauth(original, auth, account)
            self._book.save_account(account)
        else:  # completion request or advice
            original = self._original(request, auth, _PREAUTH_KINDS, same_terminal=False)
            if original.closed_by:
                raise _Decline(Rc.INVALID_TRANSACTION)
            if amount * 100 > original.amount_fen * limits.GATEWAY_COMPLETION_TOLERANCE_PERCENT:
                raise _Decline(Rc.INVALID_AMOUNT)
            account = self._account_of(original)
            if account.available_fen + original.hold_fen < amount:
                raise _Decline(Rc.INSUFFICIENT_FUNDS)
            self._close_preauth(original, auth, account)
            account.balance_fen -= amount
            self._book.save_account(account)

    def _close_preauth(self, preauth: Authorization, by: Authorization, account: Account) -> None:
        account.hold_fen -= preauth.hold_fen
        by.released_fen = preauth.hold_fen
        preauth.hold_fen = 0
        preauth.closed_by = by.rrn
        self._book.save_authorization(preauth)

    def _card_account(
        self, request: _Request, auth: Authorization, today: date, *, required: bool
    ) -> Account | None:
        message = request.message
        pan = message.get(F_PAN)
        if pan is None:
            if required:
                raise _Decline(Rc.INVALID_CARD)
            return None
        auth.masked = mask(pan)
        auth.card_kind = card_kind(pan)
        if not is_test_card(pan):
            raise _Decline(Rc.INVALID_CARD)
        expiry = message.get(F_EXPIRY)
        if expiry is not None and is_expired(expiry, today):
            raise _Decline(Rc.EXPIRED_CARD)
        block = message.get(F_PIN_BLOCK)
        if block is not None:
            try:
                pin = pin_from_block(self._zpk.decrypt_block(bytes.fromhex(block)), pan)
            except (PinError, ValueError):
                raise _Decline(Rc.PIN_FORMAT) from None
            if not hmac.compare_digest(pin, CORRECT_PIN):
                raise _Decline(Rc.WRONG_PIN)
        auth.account = self._tokens.card(pan)
        return self._account(auth.account, auth.card_kind, auth.masked)

    def _wallet_account(self, request: _Request, auth: Authorization) -> Account:
        code = request.qr_code or ""
        auth.card_kind = CardKind.WALLET
        auth.masked = mask(code)
        wallet = wallet_of(code)
        if wallet is None:
            raise _Decline(Rc.INVALID_CARD)
        auth.wallet = wallet.value
        auth.account = self._tokens.wallet(code)
        return self._account(auth.account, CardKind.WALLET, auth.masked)

    def _account(self, token: str, kind: CardKind, masked: str) -> Account:
        """The account, or a fresh one with its opening balance (saved on first change)."""
        account = self._book.account(token)
        if account is None:
            opening = (
                WALLET_OPENING_BALANCE_FEN if kind is CardKind.WALLET else CARD_OPENING_BALANCE_FEN
            )
            account = Account(token=token, kind=kind, masked=masked, balance_fen=opening)
        return account

    def _account_of(self, record: Authorization) -> Account:
        return self._account(record.account, record.card_kind or CardKind.DEBIT, record.masked)

    def _original(
        self,
        request: _Request,
        auth: Authorization,
        kinds: frozenset[TxKind],
        *,
        same_terminal: bool,
    ) -> Authorization:
        original = self._book.authorization(request.original_rrn)
        if (
            original is None
            or original.kind not in kinds
            or original.mid != request.mid
            or (same_terminal and original.tid != request.tid)
            or original.status is Status.DECLINED
        ):
            raise _Decline(Rc.ORIGINAL_NOT_FOUND)
        if original.status is Status.REVERSED:
            raise _Decline(Rc.INVALID_TRANSACTION)
        # A card read again (or a voucher sent back) must be the original's.
        if (auth.account and auth.account != original.account) or (
            request.voucher is not None and request.voucher != original.voucher
        ):
            raise _Decline(Rc.MISMATCH)
        auth.account = original.account
        auth.card_kind = original.card_kind
        auth.masked = original.masked
        auth.wallet = original.wallet
        auth.voucher = original.voucher
        return original

    # --- repeats ---------------------------------------------------------------------
    def _repeat(self, request: _Request, existing: Authorization) -> Message | None:
        """The same request again (a resend after a lost answer) gets the same answer and
        changes nothing; another request reusing the RRN is a duplicate (``94``)."""
        if (existing.mti, existing.stan, existing.tid) != (
            request.mti,
            request.stan,
            request.tid,
        ):
            return self._respond(request.message, Rc.DUPLICATE)
        self.counters.repeats += 1
        if not existing.answered:
            return None
        if existing.status is Status.REVERSED:
            return self._respond(request.message, Rc.INVALID_TRANSACTION)
        return self._respond(request.message, Rc(existing.response_code), auth=existing)

    # --- reversals -------------------------------------------------------------------
    def _reverse(self, message: Message) -> Message:
        rrn = message.get(F_RRN, "").strip()
        if not rrn:
            return self._respond(message, Rc.FORMAT_ERROR)
        original = self._book.authorization(rrn)
        if original is None:
            now = self._clock()
            self._book.save_authorization(
                Authorization(
                    seq=self._book.next_seq(),
                    rrn=rrn,
                    stan=message.get(F_STAN, ""),
                    tid=message.get(F_TID, ""),
                    mid=message.get(F_MID, ""),
                    mti=Mti.REVERSAL.value,
                    kind=TxKind.UNMATCHED_REVERSAL,
                    business_date=now.date().isoformat(),
                    created_at=now.isoformat(timespec="milliseconds"),
                    amount_fen=int(message.get(F_AMOUNT, "0")),
                    status=Status.REVERSED,
                    response_code=Rc.APPROVED.value,
                )
            )
            return self._respond(message, Rc.APPROVED)
        if original.status is Status.REVERSED:
            return self._respond(message, Rc.APPROVED)
        if (
            F_AMOUNT in message
            and original.kind is not TxKind.BALANCE
            and int(message[F_AMOUNT]) != original.amount_fen
        ):
            return self._respond(message, Rc.ORIGINAL_AMOUNT_WRONG)
        if original.status is Status.APPROVED:
            try:
                self._undo(original)
            except _Decline as decline:
                return self._respond(message, decline.code)
        original.status = Status.REVERSED
        self._book.save_authorization(original)
        self.counters.reversals_applied += 1
        return self._respond(message, Rc.APPROVED)

    def _undo(self, original: Authorization) -> None:
        """Take back an approved original's effect. Refused (``12``) while later
        transactions build on it: reverse the void, refund or completion first."""
        kind = original.kind
        if kind is TxKind.BALANCE:
            return
        if (kind in DEBIT_KINDS and (original.voided_by or original.refunded_fen)) or (
            kind is TxKind.PREAUTH and original.closed_by
        ):
            raise _Decline(Rc.INVALID_TRANSACTION)
        account = self._account_of(original)
        amount = original.amount_fen
        if kind in DEBIT_KINDS:
            account.balance_fen += amount
            if kind in _COMPLETION_KINDS:
                self._reopen_preauth(original, account)
        elif kind is TxKind.PREAUTH:
            account.hold_fen -= original.hold_fen
            original.hold_fen = 0
        elif kind is TxKind.PREAUTH_CANCEL:
            self._reopen_preauth(original, account)
        else:  # void, completion void or refund: the money goes out again
            account.balance_fen -= amount
            target = self._book.authorization(original.original_rrn)
            if target is not None:
                if kind is TxKind.REFUND:
                    target.refunded_fen -= amount
                else:
                    target.voided_by = ""
                self._book.save_authorization(target)
        self._book.save_account(account)

    def _reopen_preauth(self, closer: Authorization, account: Account) -> None:
        preauth = self._book.authorization(closer.original_rrn)
        if preauth is None:
            return
        preauth.hold_fen = closer.released_fen
        preauth.closed_by = ""
        account.hold_fen += closer.released_fen
        self._book.save_authorization(preauth)

    # --- responses -------------------------------------------------------------------
    def _respond(self, request: Message, code: Rc, *, auth: Authorization | None = None) -> Message:
        now = self._clock()
        response: Message = {
            MTI: response_mti(request[MTI]),
            F_LOCAL_TIME: f"{now:%H%M%S}",
            F_LOCAL_DATE: f"{now:%m%d}",
            F_RESPONSE_CODE: code.value,
        }
        for field in _ECHOED:
            value = request.get(field)
            if value is not None:
                response[field] = value
        if auth is None:
            if code is Rc.APPROVED:
                response[F_SETTLEMENT_DATE] = f"{now:%m%d}"
            return response
        if code is Rc.APPROVED:
            response[F_SETTLEMENT_DATE] = auth.business_date[5:7] + auth.business_date[8:10]
            response[F_AUTH_CODE] = auth.auth_code
            if auth.kind is TxKind.BALANCE:
                response[F_BALANCE] = fields.balance54(self._account_of(auth).available_fen)
            if auth.voucher:
                response[F_PRIVATE_59] = fields.build_tlv({TAG_QR_VOUCHER: auth.voucher})
        if auth.wallet:
            response[F_RESERVED_63] = auth.wallet
        elif auth.card_kind is not None:
            response[F_RESERVED_63] = SCHEME_CARD
        return response
