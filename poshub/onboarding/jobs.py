"""Scheduled onboarding work run by ``poshub worker``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from poshub.core import audit
from poshub.core.audit import Actor
from poshub.core.clock import business_date
from poshub.core.db import Database
from poshub.onboarding import repository
from poshub.onboarding.models import Application, CheckStatus, EventKind
from poshub.onboarding.service import (
    CheckResult,
    ComputedChecks,
    OnboardingDeps,
    compute_checks,
    record_checks,
    record_event,
    run_checks,
)

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
    applications = repository.awaiting_checks(session, batch_max)
    checked = run_checks(session, deps, applications, now=now)
    _audit_check_runs(session, applications, checked)
    return len(applications)


def check_queued(
    database: Database, deps: OnboardingDeps, *, now: dt.datetime, batch_max: int = CHECK_BATCH_MAX
) -> int:
    """The worker's way to run queued checks: compute a batch in a read-only transaction
    (lookups, rules and the verification provider, which may take a while), then write the
    results in a short write transaction, for the applications still queued exactly as they
    were read. Returns how many were written; the others are picked up by the next pass.
    """
    with database.unit_of_work(read_only=True) as uow:
        applications = repository.queued_for_checks(uow.session, batch_max)
        computed = compute_checks(uow.session, deps, applications, now=now)
        seen = {
            a.id: (a.check_run, a.checks_requested_at)
            for a in applications
            if a.checks_requested_at is not None
        }
        # Keep the rows as read: ending the read-only transaction would expire them.
        uow.session.expunge_all()
    if not seen:
        return 0
    with database.unit_of_work() as uow:
        claimed = repository.claim_check_runs(uow.session, seen)
        batch: ComputedChecks = computed.only(claimed)
        record_checks(uow.session, batch)
        _audit_check_runs(uow.session, [a for a, _ in batch.runs], batch.checked)
        uow.commit()
    return len(claimed)


def _audit_check_runs(
    session: Session,
    applications: Sequence[Application],
    checked: Mapping[str, list[CheckResult]],
) -> None:
    actor = Actor.system("checks")
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
