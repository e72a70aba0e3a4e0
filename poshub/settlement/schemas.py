"""What the ledger's service returns: a posting's outcome, balances and the verify report."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Posted(_Frozen):
    entry_id: int
    source_event: str
    business_date: dt.date
    created: bool
    """False when the event was already posted with the same lines (an idempotent repeat)."""


class AccountBalance(_Frozen):
    code: str
    kind: str
    normal_side: str
    balance_fen: int
    """Signed, debits positive (what the lines sum to)."""
    normal_balance_fen: int
    """The balance on the account's normal side (a liability's credit shown positive)."""


class TrialBalance(_Frozen):
    accounts: list[AccountBalance]
    truncated: bool
    """More accounts exist than LEDGER_BALANCES_ACCOUNTS_MAX; the totals still cover all."""
    debit_total_fen: int
    credit_total_fen: int
    totals_by_kind: dict[str, int]
    """Signed balance of each account kind, over every account of the kind."""

    @property
    def balanced(self) -> bool:
        return self.debit_total_fen == self.credit_total_fen


class UnbalancedEntry(_Frozen):
    entry_id: int
    source_event: str
    total_fen: int


class VerifyReport(_Frozen):
    entries: int
    lines: int
    accounts: int
    ledger_total_fen: int
    totals_by_kind: dict[str, int]
    unbalanced_count: int
    unbalanced: list[UnbalancedEntry]
    """The first LEDGER_VERIFY_PROBLEMS_MAX entries whose lines do not sum to zero."""
    empty_count: int
    empty: list[str]
    """Source events of the first entries without lines."""
    orphan_count: int
    orphans: list[int]
    """Ids of the first lines referencing an unknown account or entry."""

    @property
    def intact(self) -> bool:
        return (
            self.ledger_total_fen == 0
            and self.unbalanced_count == 0
            and self.empty_count == 0
            and self.orphan_count == 0
        )

    def problems(self) -> list[str]:
        """Plain-language problems, the first of each kind (empty when intact)."""
        found: list[str] = []
        if self.ledger_total_fen != 0:
            found.append(f"the ledger sums to {self.ledger_total_fen} fen, not 0")
        found += [
            f"entry {item.source_event} (id {item.entry_id}) sums to {item.total_fen} fen"
            for item in self.unbalanced
        ]
        if self.unbalanced_count > len(self.unbalanced):
            found.append(f"… {self.unbalanced_count} unbalanced entries in all")
        found += [f"entry {event} has no lines" for event in self.empty]
        if self.empty_count > len(self.empty):
            found.append(f"… {self.empty_count} entries without lines in all")
        found += [f"line {line} references an unknown account or entry" for line in self.orphans]
        if self.orphan_count > len(self.orphans):
            found.append(f"… {self.orphan_count} such lines in all")
        return found
