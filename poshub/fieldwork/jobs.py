"""Scheduled fieldwork work run by ``poshub worker``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from poshub.core import audit
from poshub.core.audit import Actor
from poshub.fieldwork import repository

SLA_SWEEP_BATCH_MAX = 500


def flag_sla_breaches(
    session: Session, now: dt.datetime, *, batch_max: int = SLA_SWEEP_BATCH_MAX
) -> int:
    """Mark open work orders past their deadline, once each, so that the breach is in the
    audit log and on the dispatch list. Returns how many were flagged (at most
    ``batch_max``; the next pass takes the rest)."""
    actor = Actor.system("work_order_sla_sweep")
    flagged = 0
    for order in repository.unflagged_breaches(session, now, batch_max):
        order.sla_breached_at = now
        audit.record(
            session,
            actor,
            "work_order.sla_breached",
            "work_order",
            order.number,
            {"kind": order.kind, "status": order.status, "due_at": order.due_at.isoformat()},
        )
        flagged += 1
    return flagged
