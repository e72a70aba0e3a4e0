"""The gateway's own checks on a request before anything is forwarded (spec §9, §11.4,
§11.14): card number, expiry, amount, currency, whether the terminal may do the
transaction at all, and the masked forms of card data that may be stored and shown.

Pure functions. Each check answers the response code the terminal gets, or None when the
request passes. Matching a void, refund or completion to its original is the pipeline's
business (it needs the journal), not this module's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from stdnum import luhn

from poshub.gateway import codec
from poshub.gateway.codec import Message
from poshub.gateway.constants import CURRENCY_CNY, F_EXPIRY, F_PAN, F_TRACK2, Rc
from poshub.gateway.models import TxnKind

PAN_DIGITS_MIN: Final = 12
PAN_DIGITS_MAX: Final = 19
AMOUNT_DIGITS: Final = 12
PAN_SHOWN_FIRST: Final = 6
PAN_SHOWN_LAST: Final = 4
QR_SHOWN_LAST: Final = 4


def card_pan(message: Message) -> str | None:
    """Field 2, else the PAN part of track 2 (a swiped card may send only the track)."""
    pan = message.get(F_PAN)
    if pan is not None:
        return pan
    track = message.get(F_TRACK2)
    return codec.track2_pan(track) if track is not None else None


def card_expiry(message: Message) -> str | None:
    """Field 14 (YYMM), else the expiry in track 2."""
    expiry = message.get(F_EXPIRY)
    if expiry is not None:
        return expiry
    track = message.get(F_TRACK2)
    return codec.track2_expiry(track) if track is not None else None


def _digits(text: str) -> bool:
    # str.isdigit alone accepts full-width and other Unicode digits, which int() reads.
    return text.isascii() and text.isdigit()


def check_card(pan: str | None, expiry_yymm: str | None, today: dt.date) -> Rc | None:
    """``14`` for a missing or impossible card number (not 12–19 digits, Luhn fails) and
    for an impossible expiry (not YYMM, month 00 or 13+); ``54`` for an expiry month
    before ``today``'s (a card is valid through the last day of its expiry month).

    The expiry is optional: chip and swiped cards carry it, a keyed PAN may not, and the
    issuer has the last word either way.
    """
    if (
        pan is None
        or not PAN_DIGITS_MIN <= len(pan) <= PAN_DIGITS_MAX
        or not _digits(pan)
        or not luhn.is_valid(pan)
    ):
        return Rc.INVALID_CARD
    if expiry_yymm is None:
        return None
    if len(expiry_yymm) != 4 or not _digits(expiry_yymm) or not 1 <= int(expiry_yymm[2:]) <= 12:
        # Not a date at all: the card data is wrong, not the card expired.
        return Rc.INVALID_CARD
    # YY is 20YY: payment cards are issued for at most a few decades ahead.
    expiry = (2000 + int(expiry_yymm[:2]), int(expiry_yymm[2:]))
    if expiry < (today.year, today.month):
        return Rc.EXPIRED_CARD
    return None


def check_amount(amount_text: str | None, *, limit_fen: int) -> Rc | None:
    """``13`` for a missing, malformed or zero amount; ``61`` above the terminal's
    single-transaction limit (TMS ``single_transaction_limit_fen``, inclusive)."""
    if amount_text is None or len(amount_text) != AMOUNT_DIGITS or not _digits(amount_text):
        return Rc.INVALID_AMOUNT
    amount = int(amount_text)
    if amount == 0:
        return Rc.INVALID_AMOUNT
    if amount > limit_fen:
        return Rc.EXCEEDS_AMOUNT_LIMIT
    return None


def check_currency(code: str | None) -> Rc | None:
    """``13`` for anything but CNY (spec §11.4)."""
    return None if code == CURRENCY_CNY else Rc.INVALID_AMOUNT


ENABLE_NAME: Final[dict[TxnKind, str]] = {
    TxnKind.SALE: "sale",
    TxnKind.QR_SALE: "qr_sale",
    # A void of a QR sale is still a void: one switch for both.
    TxnKind.VOID: "void",
    TxnKind.REFUND: "refund",
    TxnKind.BALANCE: "balance_inquiry",
    # Cancelling a pre-auth belongs to the pre-auth function; voiding a completion and
    # the completion advice belong to completion (a terminal that cannot complete has
    # no completion to void).
    TxnKind.PREAUTH: "preauth",
    TxnKind.PREAUTH_CANCEL: "preauth",
    TxnKind.COMPLETION: "preauth_completion",
    TxnKind.COMPLETION_ADVICE: "preauth_completion",
    TxnKind.COMPLETION_VOID: "preauth_completion",
}
"""The TMS parameter (``enabled_transactions``, poshub/terminals/parameters.py) that
switches each customer-facing kind on or off."""


def enabled(kind: TxnKind, enabled_transactions: Sequence[str]) -> bool:
    """Whether the terminal's parameters allow ``kind``. Reversals, management, settlement
    and batch upload are always allowed: a terminal must be able to undo, sign on and
    close its batch whatever it may sell."""
    name = ENABLE_NAME.get(kind)
    return name is None or name in enabled_transactions


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits, ``*`` between, same length as the PAN. A PAN too short
    to hide at least 3 digits that way shows only its last 4."""
    hidden = len(pan) - PAN_SHOWN_FIRST - PAN_SHOWN_LAST
    if hidden >= 3:
        return pan[:PAN_SHOWN_FIRST] + "*" * hidden + pan[-PAN_SHOWN_LAST:]
    return _mask_all_but_last(pan, PAN_SHOWN_LAST)


def qr_code_masked(code: str) -> str:
    """A scanned payment code with only its last 4 characters shown: the code is a bearer
    token for the payer's wallet until it expires, so it is kept like a PAN."""
    return _mask_all_but_last(code, QR_SHOWN_LAST)


def _mask_all_but_last(text: str, shown: int) -> str:
    # Shorter than 2 × shown: show at most half, so a short value is never fully readable.
    shown = min(shown, len(text) // 2)
    return "*" * (len(text) - shown) + text[len(text) - shown :]
