"""Scheduled onboarding work run by ``poshub worker``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from poshub.core import audit
from poshub.core.audit import Actor
from poshub.core.clock import business_date
from poshub.onboarding import repository
from poshub.onboarding.models import CheckStatus, EventKind
from poshub.onboarding.service import OnboardingDeps, record_event, run_checks

SLA_SWEEP_BATCH_MAX = 500
CHECK_BATCH_MAX = 20
"""Check runs done in one worker transaction. One commit covers many applications, but
the transaction holds the SQLite write lock, so a batch stays short (~40 ms) to keep
web requests' waits short."""


def run_requested_checks(
    session: Session, deps: OnboardingDeps, *, now: dt.datetime, batch_max: int = CHECK_BATCH_MAX
) -> int:
    """Run the queued automated checks; return how many applications were checked.

    A provider that does not answer leaves its check ``pending`` (the reviewer can run
    the checks again); nothing here changes an application's state.
    """
    actor = Actor.system("checks")
    applications = repository.awaiting_checks(session, batch_max)
    checked = run_checks(session, deps, applications, now=now)
    actions = []
    for application in applications:
        results = checked[application.id]
        details = {
            "check_run": application.check_run,
            "failed": [r.code for r in results if r.status == CheckStatus.FAIL],
            "pending": [r.code for r in results if r.status == CheckStatus.PENDING],
        }
        actions.append(
            audit.Action(actor, "application.checks_run", "application", application.id, details)
        )
    audit.record_many(session, actions)
    return len(applications)


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
