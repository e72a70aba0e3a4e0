"""The double-entry ledger's pure rules: accounts, lines and the balanced entry.

A line's amount is signed integer fen: a debit is positive, a credit negative, so an
entry balances when its lines sum to zero and the whole ledger sums to zero when every
entry does. An account is a kind (what it is) and, for per-merchant accounts, a subject
(the MID); its code is ``kind`` or ``kind:subject``, e.g. ``merchant_payable:898340154110001``.
No database here: :class:`Entry` refuses an unbalanced or empty entry before anything
is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from poshub.core.errors import N_, PosHubError
from poshub.core.limits import (
    LEDGER_ACCOUNT_CODE_MAX_CHARS,
    LEDGER_ENTRY_LINES_MAX,
    LEDGER_LINE_AMOUNT_MAX_FEN,
    LEDGER_SOURCE_EVENT_MAX_CHARS,
)


class AccountKind(StrEnum):
    MERCHANT_PAYABLE = "merchant_payable"
    """What the acquirer owes a merchant (liability, one account per MID)."""
    FEE_INCOME = "fee_income"
    """The acquirer's merchant-discount income (income)."""
    INTERCHANGE_PAYABLE = "interchange_payable"
    """Interchange and scheme fees owed to issuers and the network (liability)."""
    NETWORK_RECEIVABLE = "network_receivable"
    """What the card network owes the acquirer for cleared sales (asset)."""
    DEPOSITS_HELD = "deposits_held"
    """Security deposits and held settlement kept for a merchant (liability)."""
    SUSPENSE = "suspense"
    """Money not yet explained (asset until cleared); should return to zero."""


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


NORMAL_SIDE: Mapping[AccountKind, Side] = {
    AccountKind.MERCHANT_PAYABLE: Side.CREDIT,
    AccountKind.FEE_INCOME: Side.CREDIT,
    AccountKind.INTERCHANGE_PAYABLE: Side.CREDIT,
    AccountKind.NETWORK_RECEIVABLE: Side.DEBIT,
    AccountKind.DEPOSITS_HELD: Side.CREDIT,
    AccountKind.SUSPENSE: Side.DEBIT,
}
"""The side on which each kind's balance normally stands (assets debit, the rest credit)."""

PER_SUBJECT_KINDS = frozenset({AccountKind.MERCHANT_PAYABLE, AccountKind.DEPOSITS_HELD})
"""Kinds kept per merchant: their code needs a subject (the MID)."""


class LedgerError(PosHubError):
    """An entry the ledger refuses (unbalanced, empty, malformed)."""

    status_code = 422
    code = "ledger_refused"


@dataclass(frozen=True, order=True)
class Account:
    kind: AccountKind
    subject: str = ""

    @property
    def code(self) -> str:
        return f"{self.kind.value}:{self.subject}" if self.subject else self.kind.value

    @property
    def normal_side(self) -> Side:
        return NORMAL_SIDE[self.kind]

    @classmethod
    def parse(cls, code: str) -> Account:
        """``kind`` or ``kind:subject``; refuses an unknown kind or a missing subject."""
        kind_text, _, subject = code.partition(":")
        try:
            kind = AccountKind(kind_text)
        except ValueError:
            raise LedgerError(N_("Unknown ledger account {account}."), account=code) from None
        account = cls(kind, subject)
        account.check()
        return account

    def check(self) -> None:
        if (self.kind in PER_SUBJECT_KINDS) != bool(self.subject):
            raise LedgerError(
                N_(
                    "Ledger account {account} needs a subject exactly when its kind is per merchant."
                ),
                account=self.code,
            )
        too_long = len(self.code) > LEDGER_ACCOUNT_CODE_MAX_CHARS
        if too_long or (self.subject and not (self.subject.isascii() and self.subject.isalnum())):
            raise LedgerError(N_("Ledger account {account} is malformed."), account=self.code)


@dataclass(frozen=True, order=True)
class Line:
    """One posting: ``amount_fen`` > 0 debits the account, < 0 credits it."""

    account: Account
    amount_fen: int

    @classmethod
    def debit(cls, account: Account, fen: int) -> Line:
        return cls(account, fen)

    @classmethod
    def credit(cls, account: Account, fen: int) -> Line:
        return cls(account, -fen)


@dataclass(frozen=True)
class Entry:
    """A balanced journal entry for one source event (``sale:<RRN>``, ``payout:<id>``).

    The constructor refuses: no lines, a zero or non-integer amount, an amount beyond
    :data:`LEDGER_LINE_AMOUNT_MAX_FEN`, more than :data:`LEDGER_ENTRY_LINES_MAX` lines, and
    lines that do not sum to zero. Lines are kept sorted, so two entries with the same
    postings in another order compare equal (what idempotency compares).
    """

    source_event: str
    lines: tuple[Line, ...]

    def __post_init__(self) -> None:
        event = self.source_event
        if not event or len(event) > LEDGER_SOURCE_EVENT_MAX_CHARS or event != event.strip():
            raise LedgerError(
                N_("A ledger entry needs a source event of at most {max} characters."),
                max=str(LEDGER_SOURCE_EVENT_MAX_CHARS),
            )
        if len(self.lines) < 2:
            raise LedgerError(N_("Ledger entry {event} needs at least two lines."), event=event)
        if len(self.lines) > LEDGER_ENTRY_LINES_MAX:
            raise LedgerError(N_("Ledger entry {event} has too many lines."), event=event)
        for line in self.lines:
            amount = line.amount_fen
            if type(amount) is not int:
                raise LedgerError(N_("Ledger entry {event}: amounts are integer fen."), event=event)
            if amount == 0 or abs(amount) > LEDGER_LINE_AMOUNT_MAX_FEN:
                raise LedgerError(
                    N_("Ledger entry {event}: a line of {amount} fen is not allowed."),
                    event=event,
                    amount=str(amount),
                )
            line.account.check()
        total = sum(line.amount_fen for line in self.lines)
        if total != 0:
            raise LedgerError(
                N_("Ledger entry {event} does not balance: its lines sum to {total} fen."),
                event=event,
                total=str(total),
            )
        object.__setattr__(self, "lines", tuple(sorted(self.lines)))

    @classmethod
    def of(cls, source_event: str, lines: Iterable[Line]) -> Entry:
        return cls(source_event, tuple(lines))


def balance(lines: Iterable[Line]) -> dict[Account, int]:
    """Each account's signed balance (debits positive) over ``lines``."""
    balances: dict[Account, int] = {}
    for line in lines:
        balances[line.account] = balances.get(line.account, 0) + line.amount_fen
    return balances


def on_normal_side(account: Account, signed_fen: int) -> int:
    """A signed balance shown on the account's normal side (a liability's credit positive)."""
    return signed_fen if account.normal_side is Side.DEBIT else -signed_fen
