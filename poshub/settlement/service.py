"""The ledger's use cases: post an entry (idempotent per source event), read balances,
verify the whole ledger. Never commits: the job or command that calls owns the
transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from poshub.core.db import utcnow
from poshub.core.errors import N_, Conflict
from poshub.core.limits import LEDGER_BALANCES_ACCOUNTS_MAX
from poshub.settlement import repository
from poshub.settlement.ledger import Account, Entry, Line, on_normal_side
from poshub.settlement.models import LedgerEntry
from poshub.settlement.schemas import (
    AccountBalance,
    Posted,
    TrialBalance,
    UnbalancedEntry,
    VerifyReport,
)

DESCRIPTION_MAX_CHARS = 200


class EventAlreadyPosted(Conflict):
    """The source event is in the ledger with other lines: a correction is a new
    adjusting event, never a rewrite."""

    code = "ledger_event_posted"


def post(
    session: Session,
    source_event: str,
    business_date: dt.date,
    lines: Iterable[Line],
    description: str = "",
) -> Posted:
    """Post a balanced entry for ``source_event`` (``sale:<RRN>``, ``payout:<id>``).

    Validated before the database is touched (:class:`Entry`). Posting an event again
    with the same lines and business date is a no-op returning the existing entry; with
    anything different it raises :class:`EventAlreadyPosted`. Two transactions posting
    the same event race on the unique key: the loser (inside a savepoint) reads the
    winner's entry and compares.
    """
    entry = Entry.of(source_event, lines)
    existing = repository.entry_by_event(session, entry.source_event)
    if existing is not None:
        return _repeat(session, existing, entry, business_date)
    now = utcnow()
    ids = _account_ids(session, {line.account for line in entry.lines}, now)
    try:
        with session.begin_nested():
            entry_id = repository.insert_entry(
                session,
                source_event=entry.source_event,
                business_date=business_date,
                description=description[:DESCRIPTION_MAX_CHARS],
                now=now,
                lines=[(ids[line.account.code], line.amount_fen) for line in entry.lines],
            )
    except IntegrityError:
        existing = repository.entry_by_event(session, entry.source_event)
        if existing is None:
            raise
        return _repeat(session, existing, entry, business_date)
    return Posted(
        entry_id=entry_id,
        source_event=entry.source_event,
        business_date=business_date,
        created=True,
    )


def _repeat(
    session: Session, existing: LedgerEntry, entry: Entry, business_date: dt.date
) -> Posted:
    stored = repository.entry_lines(session, existing.id)
    wanted = sorted((line.account.code, line.amount_fen) for line in entry.lines)
    if stored != wanted or existing.business_date != business_date:
        raise EventAlreadyPosted(
            N_(
                "Ledger event {event} is already posted with other lines or another business "
                "date; post the correction as a new adjusting event."
            ),
            event=entry.source_event,
        )
    return Posted(
        entry_id=existing.id,
        source_event=existing.source_event,
        business_date=existing.business_date,
        created=False,
    )


def _account_ids(session: Session, accounts: set[Account], now: dt.datetime) -> dict[str, int]:
    """Each account's id, opening those not yet in the ledger (race-safe on the code)."""
    ids = repository.account_ids(session, (account.code for account in accounts))
    for account in sorted(accounts):
        if account.code in ids:
            continue
        try:
            with session.begin_nested():
                repository.insert_account(
                    session,
                    code=account.code,
                    kind=account.kind.value,
                    subject=account.subject,
                    normal_side=account.normal_side.value,
                    now=now,
                )
        except IntegrityError:
            pass  # opened meanwhile by another transaction
        ids.update(repository.account_ids(session, [account.code]))
    return ids


def trial_balance(session: Session, as_of: dt.date | None = None) -> TrialBalance:
    """Each account's balance (entries of business dates up to ``as_of``, all when None),
    the debit and credit totals (equal when the ledger balances) and totals per kind."""
    rows = repository.account_balances(session, as_of)
    debit, credit = repository.side_totals(session, as_of)
    accounts = [
        AccountBalance(
            code=code,
            kind=kind,
            normal_side=side,
            balance_fen=amount,
            normal_balance_fen=on_normal_side(Account.parse(code), amount),
        )
        for code, kind, side, amount in rows[:LEDGER_BALANCES_ACCOUNTS_MAX]
    ]
    return TrialBalance(
        accounts=accounts,
        truncated=len(rows) > LEDGER_BALANCES_ACCOUNTS_MAX,
        debit_total_fen=debit,
        credit_total_fen=credit,
        totals_by_kind=repository.kind_totals(session, as_of),
    )


def balances(
    session: Session, codes: Iterable[str], as_of: dt.date | None = None
) -> dict[str, int]:
    """Signed balances (debits positive) of the given account codes; 0 for an account
    without lines."""
    wanted = set(codes)
    found = {
        balance.code: balance.balance_fen
        for balance in trial_balance(session, as_of).accounts
        if balance.code in wanted
    }
    return {code: found.get(code, 0) for code in sorted(wanted)}


def verify(session: Session) -> VerifyReport:
    """Check the invariants: every entry's lines sum to zero, the whole ledger sums to
    zero, every entry has lines and every line an existing account and entry. Set-based
    SQL; problem lists capped at LEDGER_VERIFY_PROBLEMS_MAX, counts complete."""
    entries, lines, accounts, total = repository.counts(session)
    unbalanced_count, unbalanced = repository.unbalanced_entries(session)
    empty_count, empty = repository.empty_entries(session)
    orphan_count, orphans = repository.orphan_lines(session)
    return VerifyReport(
        entries=entries,
        lines=lines,
        accounts=accounts,
        ledger_total_fen=total,
        totals_by_kind=repository.kind_totals(session),
        unbalanced_count=unbalanced_count,
        unbalanced=[
            UnbalancedEntry(entry_id=entry_id, source_event=event, total_fen=amount)
            for entry_id, event, amount in unbalanced
        ],
        empty_count=empty_count,
        empty=empty,
        orphan_count=orphan_count,
        orphans=orphans,
    )
