"""Staff-facing use cases of the gateway: search the journal, read one transaction with
its timeline, and a terminal's activity (latest transactions, sign-on session, batches).

Read-only: nothing here writes, so nothing here commits. Search input arrives as the
strings a person typed; :func:`parse_search` checks every field against the dialect's
formats and answers one 422 naming each bad field, so the API and the pages refuse the
same input with the same words.

What leaves this module is safe to show to the roles that may read transactions: the
journal never holds a full PAN, and the session view carries key check values, never the
sealed keys (a KCV identifies a key without revealing it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.orm import Session

from poshub.core import limits
from poshub.core.errors import N_, FieldError, NotFound, ValidationFailed
from poshub.core.money import format_fen
from poshub.gateway import repository
from poshub.gateway.constants import CURRENCY_CNY, SETTLE_BALANCED, SETTLE_UNBALANCED
from poshub.gateway.models import (
    BatchStatus,
    GatewayTransaction,
    TerminalBatch,
    TxnKind,
)
from poshub.gateway.repository import SearchFilter
from poshub.gateway.response_codes import RESPONSE_CODE_MEANINGS

# --- Search input ------------------------------------------------------------------------

_MID = re.compile(r"[0-9]{15}")
_TID = re.compile(r"[0-9A-Za-z]{8}")
_RRN = re.compile(r"[0-9]{12}")
_LAST4 = re.compile(r"[0-9]{4}")
_RESPONSE_CODE = re.compile(r"[0-9A-Z]{2}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# ``fullmatch`` everywhere: ``$`` would let a trailing newline through.

MID_FORMAT: Final = N_("A MID is 15 digits.")
TID_FORMAT: Final = N_("A TID is 8 letters or digits.")
RRN_FORMAT: Final = N_("An RRN (retrieval reference number) is 12 digits.")
LAST4_FORMAT: Final = N_("Give the last 4 digits of the card number.")
RESPONSE_CODE_FORMAT: Final = N_("A response code is 2 letters or digits.")
RESPONSE_CODE_UNKNOWN: Final = N_("{code} is not a response code of the specification.")
DATE_FORMAT: Final = N_("Must be a date written as YYYY-MM-DD.")
DATE_ORDER: Final = N_("The end date is before the start date.")
DATE_SPAN: Final = N_("A search spans at most {days} days; narrow the dates.")
KIND_UNKNOWN: Final = N_("Not a kind of transaction the gateway records.")
AT_LEAST: Final = N_("Must be at least {ge}.")
AT_MOST: Final = N_("Must be at most {le}.")
TRANSACTION_NOT_FOUND: Final = N_("No transaction has this RRN.")

TXN_KINDS: Final = tuple(k.value for k in TxnKind)


@dataclass(frozen=True, slots=True)
class SearchInput:
    """The search as typed: every filter a string (blank means "any"), paging as numbers."""

    mid: str | None = None
    tid: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    rrn: str | None = None
    last4: str | None = None
    response_code: str | None = None
    kind: str | None = None
    page: int = 1
    page_size: int = limits.PAGE_SIZE_DEFAULT


@dataclass(frozen=True, slots=True)
class PageRequest:
    number: int = 1
    size: int = limits.PAGE_SIZE_DEFAULT

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _checked(
    errors: list[FieldError], field: str, value: str | None, pattern: re.Pattern[str], message: str
) -> str | None:
    value = _blank_to_none(value)
    if value is not None and not pattern.fullmatch(value):
        errors.append(FieldError(field, f"{field}_format", message))
        return None
    return value


def _date(errors: list[FieldError], field: str, value: str | None) -> dt.date | None:
    value = _blank_to_none(value)
    if value is None:
        return None
    # fromisoformat alone would also take 20260101 and 2026-W01-1; staff type dates one way.
    if _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    errors.append(FieldError(field, "date_format", DATE_FORMAT))
    return None


def _response_code(errors: list[FieldError], value: str | None) -> str | None:
    value = _blank_to_none(value)
    if value is None:
        return None
    value = value.upper()  # "a0" is A0: the spec's only letter code
    if not _RESPONSE_CODE.fullmatch(value):
        errors.append(FieldError("response_code", "response_code_format", RESPONSE_CODE_FORMAT))
        return None
    if value not in RESPONSE_CODE_MEANINGS:
        errors.append(
            FieldError(
                "response_code", "response_code_unknown", RESPONSE_CODE_UNKNOWN, {"code": value}
            )
        )
        return None
    return value


def _paging(errors: list[FieldError], number: int, size: int) -> PageRequest:
    if number < 1:
        errors.append(FieldError("page", "greater_than_equal", AT_LEAST, {"ge": "1"}))
    elif number > limits.TRANSACTION_SEARCH_PAGES_MAX:
        errors.append(
            FieldError(
                "page",
                "less_than_equal",
                AT_MOST,
                {"le": str(limits.TRANSACTION_SEARCH_PAGES_MAX)},
            )
        )
    if size < 1:
        errors.append(FieldError("page_size", "greater_than_equal", AT_LEAST, {"ge": "1"}))
    elif size > limits.PAGE_SIZE_MAX:
        errors.append(
            FieldError("page_size", "less_than_equal", AT_MOST, {"le": str(limits.PAGE_SIZE_MAX)})
        )
    return PageRequest(number, size)


def _window(
    date_from: dt.date | None, date_to: dt.date | None, *, rrn: str | None, today: dt.date
) -> tuple[dt.date | None, dt.date | None]:
    """The business dates a search covers when one or both ends are missing.

    Every search but an RRN lookup has a window (the journal is indexed for searches by
    date or by MID and time, not for scanning it whole): no dates means the last
    ``TRANSACTION_SEARCH_DEFAULT_DAYS`` days; a start alone runs to today, at most
    ``TRANSACTION_SEARCH_DAYS_MAX`` days; an end alone looks back the default days. An RRN
    is unique, so it is looked up on any date unless dates are given.
    """
    if date_from is not None and date_to is not None:
        return date_from, date_to
    if date_from is None and date_to is None and rrn is not None:
        return None, None
    default_back = dt.timedelta(days=limits.TRANSACTION_SEARCH_DEFAULT_DAYS - 1)
    if date_from is not None:
        longest = date_from + dt.timedelta(days=limits.TRANSACTION_SEARCH_DAYS_MAX - 1)
        return date_from, max(date_from, min(today, longest))
    end = date_to or today
    return end - default_back, end


def parse_search(raw: SearchInput, *, today: dt.date) -> tuple[SearchFilter, PageRequest]:
    """The filter and page for ``raw``, or :class:`ValidationFailed` naming every bad field.

    Two dates given are checked: the end not before the start, and at most
    ``limits.TRANSACTION_SEARCH_DAYS_MAX`` days counting both ends. Missing dates are
    filled in (see :func:`_window`); the filter returned says which dates were searched.
    ``today`` is the business date (Asia/Shanghai).
    """
    errors: list[FieldError] = []
    mid = _checked(errors, "mid", raw.mid, _MID, MID_FORMAT)
    tid = _checked(errors, "tid", raw.tid, _TID, TID_FORMAT)
    rrn = _checked(errors, "rrn", raw.rrn, _RRN, RRN_FORMAT)
    last4 = _checked(errors, "last4", raw.last4, _LAST4, LAST4_FORMAT)
    response_code = _response_code(errors, raw.response_code)
    date_from = _date(errors, "date_from", raw.date_from)
    date_to = _date(errors, "date_to", raw.date_to)
    if date_from is not None and date_to is not None:
        if date_to < date_from:
            errors.append(FieldError("date_to", "date_range_inverted", DATE_ORDER))
        elif (date_to - date_from).days + 1 > limits.TRANSACTION_SEARCH_DAYS_MAX:
            errors.append(
                FieldError(
                    "date_to",
                    "date_range_too_long",
                    DATE_SPAN,
                    {"days": str(limits.TRANSACTION_SEARCH_DAYS_MAX)},
                )
            )
    kind = _blank_to_none(raw.kind)
    if kind is not None and kind not in TXN_KINDS:
        errors.append(FieldError("kind", "kind_unknown", KIND_UNKNOWN))
        kind = None
    page = _paging(errors, raw.page, raw.page_size)
    if errors:
        raise ValidationFailed(errors)
    date_from, date_to = _window(date_from, date_to, rrn=rrn, today=today)
    criteria = SearchFilter(
        mid=mid,
        tid=tid,
        date_from=date_from,
        date_to=date_to,
        rrn=rrn,
        last4=last4,
        response_code=response_code,
        kind=kind,
    )
    return criteria, page


def check_rrn(rrn: str) -> str:
    """``rrn`` if it has the format of one (a path parameter), else a 422 naming it."""
    if not _RRN.fullmatch(rrn):
        raise ValidationFailed([FieldError("rrn", "rrn_format", RRN_FORMAT)])
    return rrn


# --- Search ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchResult:
    rows: Sequence[GatewayTransaction]
    """Newest first (received time, then RRN)."""
    total: int
    """Every row matching the filter, not only this page's."""
    page: PageRequest

    @property
    def pages(self) -> int:
        """Pages the total fills (at least 1, so "page 1 of 1" reads right when empty)."""
        return max(1, -(-self.total // self.page.size))

    @property
    def has_previous(self) -> bool:
        return self.page.number > 1

    @property
    def has_next(self) -> bool:
        return self.page.number < min(self.pages, limits.TRANSACTION_SEARCH_PAGES_MAX)


def search_transactions(
    session: Session, criteria: SearchFilter, page: PageRequest | None = None
) -> SearchResult:
    """One page of the journal rows matching ``criteria`` (a page past the end is empty)."""
    page = page or PageRequest()
    size = min(max(page.size, 1), limits.PAGE_SIZE_MAX)
    number = min(max(page.number, 1), limits.TRANSACTION_SEARCH_PAGES_MAX)
    page = PageRequest(number, size)
    rows, total = repository.search(session, criteria, limit=page.size, offset=page.offset)
    return SearchResult(rows=rows, total=total, page=page)


# --- One transaction ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    transaction: GatewayTransaction
    depth: int
    """0 for the first transaction of the chain, 1 for what acts on it, and so on."""


@dataclass(frozen=True, slots=True)
class TransactionDetail:
    transaction: GatewayTransaction
    original: GatewayTransaction | None
    """What this one acts on (a void's sale, a reversal's request); None for an original
    or when the original is not in the journal."""
    acting: Sequence[GatewayTransaction]
    """What acts on this one, oldest first: voids, refunds, reversals, completions."""
    timeline: list[TimelineEntry]
    """The whole chain in time order, from the first original down, at most
    ``limits.TRANSACTION_TIMELINE_MAX`` rows."""


_CHAIN_DEPTH_MAX: Final = 4
"""Links followed up to the first original: sale ← completion ← completion void ←
reversal is the longest chain the dialect allows."""


def _timeline(session: Session, row: GatewayTransaction) -> list[TimelineEntry]:
    root = row
    seen = {row.rrn}
    for _ in range(_CHAIN_DEPTH_MAX):
        if root.original_rrn is None:
            break
        parent = repository.transaction_model(session, root.original_rrn)
        if parent is None or parent.rrn in seen:
            break
        root = parent
        seen.add(parent.rrn)
    seen = {root.rrn}
    entries = [TimelineEntry(root, 0)]
    frontier = [root]
    depth = 0
    while frontier and depth < _CHAIN_DEPTH_MAX:
        depth += 1
        below: list[GatewayTransaction] = []
        for node in frontier:
            room = limits.TRANSACTION_TIMELINE_MAX - len(entries)
            if room <= 0:
                break
            for child in repository.related(session, node.rrn, limit=room):
                if child.rrn not in seen:
                    seen.add(child.rrn)
                    entries.append(TimelineEntry(child, depth))
                    below.append(child)
        frontier = below
    return sorted(entries, key=lambda e: (e.transaction.received_at, e.transaction.rrn))


def transaction_detail(session: Session, rrn: str) -> TransactionDetail:
    row = repository.transaction_model(session, check_rrn(rrn))
    if row is None:
        raise NotFound(TRANSACTION_NOT_FOUND, code="transaction_not_found")
    original = repository.transaction_model(session, row.original_rrn) if row.original_rrn else None
    return TransactionDetail(
        transaction=row,
        original=original,
        acting=repository.related(session, row.rrn, limit=limits.TRANSACTION_TIMELINE_MAX),
        timeline=_timeline(session, row),
    )


# --- A terminal's activity -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionView:
    """A terminal's sign-on state as staff see it: no key material beyond check values."""

    signed_on: bool
    """Holds working keys now (signed on, not signed off since)."""
    signed_on_at: dt.datetime | None
    signed_off_at: dt.datetime | None
    key_mode: str | None
    """60.3 of the sign-on: 001, 003 or 004."""
    pik_kcv: str | None
    mak_kcv: str | None
    batch_no: str
    mac_failures: int
    mac_failures_before_lock: int
    last_mac_failure_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class BatchTotals:
    debit_fen: int
    debit_count: int
    credit_fen: int
    credit_count: int


@dataclass(frozen=True, slots=True)
class BatchView:
    batch_no: str
    status: str
    opened_at: dt.datetime
    closed_at: dt.datetime | None
    settled_at: dt.datetime | None
    settlement_rrn: str | None
    terminal: BatchTotals | None
    """The totals the terminal sent in its settlement (0500); None before it settles."""
    host: BatchTotals | None
    """The host's own count at settlement; for the open batch, the count so far."""
    result: str | None
    """``balanced`` or ``unbalanced`` (48 digit 31 of the 0510); None before settlement."""
    uploaded_records: int


SETTLEMENT_RESULTS: Final = {SETTLE_BALANCED: "balanced", SETTLE_UNBALANCED: "unbalanced"}


def _totals(
    debit_fen: Any, debit_count: Any, credit_fen: Any, credit_count: Any
) -> BatchTotals | None:
    if debit_fen is None and debit_count is None and credit_fen is None and credit_count is None:
        return None
    return BatchTotals(
        int(debit_fen or 0), int(debit_count or 0), int(credit_fen or 0), int(credit_count or 0)
    )


def _batch_view(session: Session, batch: TerminalBatch) -> BatchView:
    host = _totals(
        batch.host_debit_fen, batch.host_debit_count, batch.host_credit_fen, batch.host_credit_count
    )
    if batch.status == BatchStatus.OPEN and host is None:
        host = BatchTotals(*repository.batch_totals(session, batch.tid, batch.batch_no))
    return BatchView(
        batch_no=batch.batch_no,
        status=batch.status,
        opened_at=batch.opened_at,
        closed_at=batch.closed_at,
        settled_at=batch.settled_at,
        settlement_rrn=batch.settlement_rrn,
        terminal=_totals(
            batch.terminal_debit_fen,
            batch.terminal_debit_count,
            batch.terminal_credit_fen,
            batch.terminal_credit_count,
        ),
        host=host,
        result=SETTLEMENT_RESULTS.get(batch.result or "", batch.result),
        uploaded_records=batch.uploaded_records,
    )


def terminal_session(session: Session, tid: str) -> SessionView | None:
    """The terminal's sign-on state; None if it never signed on."""
    row = repository.session_of(session, tid)
    if row is None:
        return None
    return SessionView(
        signed_on=row.keys_sealed is not None,
        signed_on_at=row.signed_on_at,
        signed_off_at=row.signed_off_at,
        key_mode=row.key_mode,
        pik_kcv=row.pik_kcv,
        mak_kcv=row.mak_kcv,
        batch_no=row.batch_no,
        mac_failures=row.mac_failures,
        mac_failures_before_lock=limits.GATEWAY_MAC_FAILURES_BEFORE_LOCK,
        last_mac_failure_at=row.last_mac_failure_at,
    )


@dataclass(frozen=True, slots=True)
class TerminalActivity:
    tid: str
    transactions: Sequence[GatewayTransaction]
    """The latest, newest first."""
    transaction_total: int
    session: SessionView | None
    open_batch: BatchView | None
    batches: list[BatchView]
    """Newest first, the open one included."""


def terminal_activity(
    session: Session, tid: str, limit: int = limits.TERMINAL_RECENT_TRANSACTIONS
) -> TerminalActivity:
    """What a terminal did lately: its latest ``limit`` transactions (and how many there
    are), its sign-on session, its open batch with the host's running totals, and its
    recent batches with their settlement totals and result."""
    limit = min(max(limit, 1), limits.PAGE_SIZE_MAX)
    rows, total = repository.search(session, SearchFilter(tid=tid), limit=limit)
    batches = [
        _batch_view(session, b)
        for b in repository.batches_of(session, tid, limit=limits.TERMINAL_BATCHES_SHOWN)
    ]
    return TerminalActivity(
        tid=tid,
        transactions=rows,
        transaction_total=total,
        session=terminal_session(session, tid),
        open_batch=next((b for b in batches if b.status == BatchStatus.OPEN), None),
        batches=batches,
    )


# --- Presentation helpers shared by the API and the pages ------------------------------------

CURRENCY_ALPHA: Final = {CURRENCY_CNY: "CNY"}
"""Field 49 is ISO 4217 numeric; people and the rest of PosHub say CNY."""


def currency_alpha(code: str | None) -> str | None:
    if code is None:
        return None
    return CURRENCY_ALPHA.get(code, code)


def format_amount(amount_fen: int | None, currency: str | None = CURRENCY_CNY) -> str | None:
    """``1234`` → ``¥12.34``; another currency keeps its code instead of the yuan sign."""
    if amount_fen is None:
        return None
    if currency in (None, CURRENCY_CNY):
        return format_fen(amount_fen)
    return f"{format_fen(amount_fen, symbol='')} {currency_alpha(currency)}"


def milliseconds(microseconds: int | None) -> float | None:
    """Latency in ms to a tenth, as people read it."""
    if microseconds is None:
        return None
    return round(microseconds / 1000, 1)
