"""Scheduled onboarding work run by ``poshub worker``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from poshub.core import audit
from poshub.core.audit import Actor
from poshub.core.clock import business_date
from poshub.onboarding import repository
from poshub.onboarding.models import EventKind
from poshub.onboarding.service import record_event

SLA_SWEEP_BATCH_MAX = 500


def flag_sla_breaches(
    session: Session, *, now: dt.datetime, batch_max: int = SLA_SWEEP_BATCH_MAX
) -> int:
    """Mark applications under review that passed their breach date, once each, so that
    the breach is on the timeline and in the audit log. Returns how many were flagged."""
    today = business_date(now)
    actor = Actor.system("sla_sweep")
    flagged = 0
    for application in repository.unflagged_breaches(session, today, batch_max):
        application.sla_breach_reported_at = now
        record_event(
            session,
            application,
            EventKind.SLA_BREACHED,
            actor,
            data={"sla_breach_date": str(application.sla_breach_date)},
            now=now,
        )
        audit.record(
            session,
            actor,
            "application.sla_breached",
            "application",
            application.id,
            {"sla_breach_date": str(application.sla_breach_date)},
        )
        flagged += 1
    return flagged
