"""A transaction's channel (R14): ``credit`` or ``debit`` from the card's BIN, ``qr`` for a
QR payment. Limits, risk rules and fees (issue 10) go by it; the gateway records it in
``gateway_transactions.channel`` for every financial row.

The table is data, kept here rather than fetched: the acquirer's card kinds come from the
network's BIN file in production, which replaces ``CREDIT_BINS`` without any code change
to the callers. What ships:

* the network simulator's credit BINs (``poshub/simulators/issuer.py`` ``CREDIT_BINS``), so
  that the sandbox's credit cards are credit here too (a test keeps the two in step);
* a few well-known Chinese credit-card BINs (Bank of China, China Merchants Bank), as
  listed in public BIN tables.

A BIN not in the table is **debit**: in China most cards in circulation are debit cards,
and the debit channel's limits and fees are the stricter default for an unknown card
(docs/risk.md, "Decisions in the authorization pipeline").
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from poshub.gateway.models import TxnKind
from poshub.risk.models import Channel

CREDIT_BINS: Final[Mapping[str, str]] = MappingProxyType(
    {
        # The network simulator's credit cards (sandbox; docs/test-cards.md).
        "622588": "sandbox credit",
        "625800": "sandbox credit",
        "628888": "sandbox credit",
        # Bank of China credit cards (中国银行信用卡).
        "625908": "Bank of China",
        "625909": "Bank of China",
        "625910": "Bank of China",
        "438088": "Bank of China",
        "622760": "Bank of China",
        # China Merchants Bank credit cards (招商银行信用卡).
        "622575": "China Merchants Bank",
        "622576": "China Merchants Bank",
        "622577": "China Merchants Bank",
        "622578": "China Merchants Bank",
        "622579": "China Merchants Bank",
        "622581": "China Merchants Bank",
        "622582": "China Merchants Bank",
    }
)
"""First six digits of credit cards → who issues them (for people reading the table)."""

BIN_DIGITS: Final = 6

QR_KINDS: Final = frozenset({TxnKind.QR_SALE})


def card_channel(card_number_or_mask: str | None) -> Channel:
    """``credit`` when the first six digits are a credit BIN, else ``debit``. Takes the
    PAN or its masked form (which keeps the first six digits)."""
    if card_number_or_mask and card_number_or_mask[:BIN_DIGITS] in CREDIT_BINS:
        return Channel.CREDIT
    return Channel.DEBIT


def channel_of(
    kind: TxnKind, card_number_or_mask: str | None, *, qr: bool, original_channel: str | None
) -> Channel:
    """The channel of one financial request. What acts on an earlier transaction (a void,
    refund, cancel, completion, reversal) takes its original's channel, so a void of a QR
    sale is ``qr``; otherwise a QR payment is ``qr`` and a card payment goes by its BIN."""
    if original_channel:
        try:
            return Channel(original_channel)
        except ValueError:
            pass
    if kind in QR_KINDS or qr:
        return Channel.QR
    return card_channel(card_number_or_mask)
