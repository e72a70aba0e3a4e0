"""The worker loop: scheduled jobs, each pass in its own transactions (``poshub worker``
and the demo). The state it runs on is built by ``poshub.bootstrap``."""

from __future__ import annotations

import logging
import threading
import time

from poshub.bootstrap import AppState
from poshub.core import anchors, limits, workdays
from poshub.core.clock import business_date
from poshub.core.db import utcnow
from poshub.fieldwork import jobs as fieldwork_jobs
from poshub.notify.service import dispatch_pending
from poshub.onboarding import repository as onboarding_repository
from poshub.onboarding.jobs import CHECK_BATCH_MAX, check_queued, flag_sla_breaches
from poshub.privacy import service as privacy_service
from poshub.risk import counters, grading
from poshub.risk import jobs as risk_jobs

log = logging.getLogger(__name__)

WORKER_INTERVAL_SECONDS = 1.0
"""Pause between worker passes when a pass found nothing to do."""

CHECKS_POLL_SECONDS = 0.05
"""During that pause, how often the worker looks for queued check runs (a read, which
takes no write lock), so that a submission is checked within this delay, not a second."""


SLA_SWEEP_INTERVAL_SECONDS = 60.0
"""How often the worker looks for review and work-order SLA breaches. Deadlines are days
apart, and each sweep is a write transaction: on SQLite it would take the single write
lock on every 50 ms pass while applicants are submitting."""


def anchor_audit_chain(state: AppState) -> int:
    """Append the audit chain head to the anchor file outside the database (after the
    rows since the last anchor verify); 1 when an anchor was written, 0 when the head had
    not moved. A chain that does not verify is logged as an error and not anchored."""
    with state.db.unit_of_work(read_only=True) as uow:
        written = anchors.write(
            uow.session,
            state.vault.audit_key,
            state.vault.audit_anchor_key,
            state.settings.effective_audit_anchor_dir,
            now=utcnow(),
        )
    if written.problem is not None:
        log.error(
            "audit chain NOT anchored: row %d: %s (run `poshub audit verify`)",
            written.problem.seq,
            written.problem.reason,
        )
        return 0
    return 0 if written.anchor is None else 1


def run_jobs_once(state: AppState, *, sweeps: bool = True) -> dict[str, int]:
    """One pass of the scheduled jobs, each in its own transaction; the SLA sweeps only
    when ``sweeps`` is true."""
    results: dict[str, int] = {
        "sla_breaches_flagged": 0,
        "work_order_breaches_flagged": 0,
        "merchants_purged": 0,
        "merchants_regraded": 0,
        "risk_list_checks": 0,
        "risk_counters_purged": 0,
    }
    # Computed outside the write transaction, written in a short one (onboarding/jobs.py).
    results["applications_checked"] = check_queued(state.db, state.onboarding, now=utcnow())
    with state.db.unit_of_work() as uow:
        results["notifications_sent"] = dispatch_pending(uow.session, state.notifier)
        uow.commit()
    if not sweeps:
        return results
    # The working-day calendar as operations last loaded or edited it, before the SLA
    # sweeps count working days (a cheap version check; the table only when it changed).
    with state.db.unit_of_work(read_only=True) as uow:
        workdays.refresh_if_changed(uow.session)
    with state.db.unit_of_work() as uow:
        results["sla_breaches_flagged"] = flag_sla_breaches(uow.session, now=utcnow())
        uow.commit()
    with state.db.unit_of_work() as uow:
        results["work_order_breaches_flagged"] = fieldwork_jobs.flag_sla_breaches(
            uow.session, now=utcnow()
        )
        uow.commit()
    # Last month's risk regrade (once per merchant and month) and the external risk lists
    # (daily per live merchant, retries of unanswered checks): a bounded batch a sweep.
    results["merchants_regraded"] = risk_jobs.regrade(
        state.db, grading.previous_period(utcnow()), now=utcnow(), batches_max=1
    )
    listed = risk_jobs.check_lists(state.db, state.onboarding.risk_lists, now=utcnow())
    results["risk_list_checks"] = listed.checked + listed.retried
    # Limit counters of ended days and months: nothing reads them any more.
    with state.db.unit_of_work() as uow:
        results["risk_counters_purged"] = counters.purge_expired(
            uow.session, today=business_date(utcnow())
        )
        uow.commit()
    # Personal data past its retention period (docs/privacy.md): one bounded batch a sweep.
    results["merchants_purged"] = len(
        privacy_service.run_purge(
            state.db,
            state.onboarding.store,
            retention_years=state.settings.retention_years,
            now=utcnow(),
            batch=limits.PURGE_BATCH_MAX,
        )
    )
    return results


def worker_loop(
    state: AppState, stop: threading.Event, interval_seconds: float = WORKER_INTERVAL_SECONDS
) -> None:
    """Run the jobs until ``stop`` is set; a failing pass is logged and retried next time."""
    last_sweep = float("-inf")
    last_anchor = float("-inf")
    anchor_seconds = state.settings.audit_anchor_interval_minutes * 60
    while not stop.is_set():
        backlog = False
        if time.monotonic() - last_anchor >= anchor_seconds:
            try:
                anchor_audit_chain(state)
            except Exception:
                log.exception("anchoring the audit chain failed; retrying next pass")
            else:
                last_anchor = time.monotonic()
        try:
            sweeps = time.monotonic() - last_sweep >= SLA_SWEEP_INTERVAL_SECONDS
            results = run_jobs_once(state, sweeps=sweeps)
            state.db.checkpoint()
            if sweeps:
                last_sweep = time.monotonic()
            if any(results.values()):
                log.info("worker pass: %s", results)
            backlog = (
                results["applications_checked"] >= CHECK_BATCH_MAX
                or results["notifications_sent"] >= limits.NOTIFICATION_DISPATCH_BATCH_MAX
            )
        except Exception:
            log.exception("worker pass failed; retrying in %.0f s", interval_seconds)
        # Go again at once only when a job filled its batch (more is waiting); otherwise
        # let work accumulate, so that each pass's transaction covers many rows, unless
        # an applicant is waiting for checks.
        if not backlog:
            _wait_for_checks(state, stop, interval_seconds)


def _wait_for_checks(state: AppState, stop: threading.Event, seconds: float) -> None:
    """Until ``seconds`` have passed, ``stop`` is set, or check runs are queued."""
    deadline = time.monotonic() + seconds
    while not stop.wait(max(0.0, min(CHECKS_POLL_SECONDS, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            return
        try:
            with state.db.unit_of_work(read_only=True) as uow:
                if onboarding_repository.checks_queued(uow.session):
                    return
        except Exception:  # the next pass reports what is wrong with the database
            return
