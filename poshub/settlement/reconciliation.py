"""Reconciling a business day and the exceptions queue operations works from
(docs/settlement.md, Reconciliation).

``reconcile_day`` reads the network's clearing file first, whole and checked: a foreign or
broken file raises ``ClearingFileError`` before anything is written. The differences go to
``reconciliation_exceptions``, at most once per (business date, kind, RRN), so a day can be
reconciled again (a corrected file, a late batch) without queueing anything twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from poshub.core import audit
from poshub.core.audit import Actor
from poshub.core.errors import N_, Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from poshub.core.limits import RECONCILIATION_NOTE_MAX_CHARS
from poshub.core.roles import Role
from poshub.settlement import repository
from poshub.settlement.clearing_file import read_clearing_file
from poshub.settlement.models import ReconciliationExceptionRow
from poshub.settlement.reconcile import BatchTotals, OurItem, Reconciliation, reconcile
from poshub.staff.service import Principal

OPEN = "open"
RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class DayResult:
    reconciliation: Reconciliation
    queued: int
    """Exceptions new to the queue (a re-run queues none it already had)."""


def reconcile_day(
    session: Session, business_date: dt.date, clearing_path: Path, *, now: dt.datetime
) -> DayResult:
    """Reconcile ``business_date`` and queue its exceptions, in the caller's transaction."""
    network = read_clearing_file(clearing_path, business_date)
    ours = (OurItem.of(*row) for row in repository.clearing_items(session, business_date))
    batches = [
        BatchTotals(
            key=batch.settlement_rrn or f"{batch.tid}-{batch.batch_no}",
            tid=batch.tid,
            batch_no=batch.batch_no,
            terminal=(
                batch.terminal_debit_fen,
                batch.terminal_debit_count,
                batch.terminal_credit_fen,
                batch.terminal_credit_count,
            ),
            host=(
                batch.host_debit_fen,
                batch.host_debit_count,
                batch.host_credit_fen,
                batch.host_credit_count,
            ),
        )
        for batch in repository.settled_batches(session, business_date)
    ]
    result = reconcile(business_date, ours, network, batches)
    rows: list[dict[str, Any]] = [
        {
            "business_date": business_date,
            "kind": exception.kind.value,
            "rrn": exception.rrn,
            "mid": exception.mid,
            "tid": exception.tid,
            "our_amount_fen": exception.our_amount_fen,
            "network_amount_fen": exception.network_amount_fen,
            "detail": exception.detail,
            "status": OPEN,
            "created_at": now,
        }
        for exception in result.exceptions
    ]
    queued = repository.insert_exceptions(session, rows)
    if queued:
        audit.record(
            session,
            Actor.system("reconcile"),
            "settlement.reconciliation_exceptions_queued",
            "reconciliation",
            business_date.isoformat(),
            {"queued": queued, "counts": result.counts(), "file": clearing_path.name},
        )
    return DayResult(result, queued)


def resolve_exception(
    session: Session, principal: Principal, exception_id: int, note: str, *, now: dt.datetime
) -> ReconciliationExceptionRow:
    """Operations closes an exception, saying what was done (the note is required)."""
    if Role.OPERATIONS not in principal.roles:
        raise Forbidden(
            N_("Only operations resolves reconciliation exceptions."),
            code="operations_required",
        )
    row = repository.exception_for_update(session, exception_id)
    if row is None:
        raise NotFound(N_("No such reconciliation exception."), code="exception_not_found")
    if row.status != OPEN:
        raise Conflict(
            N_("This reconciliation exception is already resolved."), code="exception_resolved"
        )
    text = note.strip()
    if not text or len(text) > RECONCILIATION_NOTE_MAX_CHARS:
        raise ValidationFailed(
            [
                FieldError(
                    "note",
                    "note.required",
                    N_("Say what was done about the difference (at most 1000 characters)."),
                )
            ]
        )
    row.status = RESOLVED
    row.resolved_by = principal.username
    row.resolved_at = now
    row.resolution_note = text
    audit.record(
        session,
        principal.actor,
        "settlement.reconciliation_exception_resolved",
        "reconciliation_exception",
        str(row.id),
        {
            "business_date": row.business_date.isoformat(),
            "kind": row.kind,
            "rrn": row.rrn,
            "note": text,
        },
    )
    return row
