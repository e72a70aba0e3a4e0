"""Risk control's scheduled work, run by ``poshub worker`` (poshub/runtime.py) and the
command line (``poshub risk regrade``): the monthly merchant regrade, the daily external
list check of live merchants, and retries of list checks the provider did not answer.

Each function owns its transactions and commits them, like the onboarding jobs: the
list provider is asked outside the write transaction, so a slow provider never holds the
database's write lock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from poshub.core import limits
from poshub.core.db import Database
from poshub.merchants import repository as merchant_repository
from poshub.onboarding import repository as onboarding_repository
from poshub.onboarding.service import request_checks
from poshub.onboarding.states import ApplicationStatus
from poshub.risk import grading, lists, repository
from poshub.risk.lists import Asked, RiskListProvider, SubjectKind
from poshub.risk.models import ListCheckStatus, RiskListCheck

REQUEUE_STATUSES = frozenset(
    {ApplicationStatus.SUBMITTED, ApplicationStatus.UNDER_REVIEW, ApplicationStatus.NEEDS_INFO}
)
"""Applications whose checks run again when their unanswered list check is due. One
waiting for a risk officer's override keeps the run the override was asked on (a new run
would make the request stale); a decided one needs no answer."""


def regrade(
    database: Database,
    period: str,
    *,
    now: dt.datetime,
    batch_max: int = limits.RISK_GRADE_BATCH_MAX,
    batches_max: int | None = None,
) -> int:
    """Regrade every merchant due for ``period`` (YYYY-MM), a batch per transaction;
    return how many were graded. Idempotent: merchants already graded for the period are
    not graded again. ``batches_max`` bounds one call (the worker does one batch a pass)."""
    total = 0
    batches = 0
    while batches_max is None or batches < batches_max:
        with database.unit_of_work() as uow:
            graded = grading.regrade_month(uow.session, period, now=now, batch_max=batch_max)
            uow.commit()
        total += graded
        batches += 1
        if graded < batch_max:
            break
    return total


@dataclass(frozen=True, slots=True)
class ListRun:
    checked: int
    """Live merchants asked about for their daily check."""
    retried: int
    """Unanswered checks asked again (merchants) or whose application's checks were queued."""
    hits: int
    """Alerts raised for live merchants found on a list."""


def check_lists(
    database: Database,
    provider: RiskListProvider,
    *,
    now: dt.datetime,
    batch_max: int = limits.RISK_LIST_BATCH_MAX,
) -> ListRun:
    """One pass: live merchants not checked for a day, then checks whose retry is due."""
    since = now - dt.timedelta(hours=limits.RISK_LIST_RECHECK_HOURS)
    with database.unit_of_work(read_only=True) as uow:
        session = uow.session
        fresh = [
            lists.ask(provider, lists.merchant_subject(m), attempts=1, now=now)
            for m in repository.merchants_due_for_list_check(session, since, batch_max)
        ]
        retried: list[tuple[int, Asked | None]] = []
        requeue: list[tuple[int, str]] = []
        for row in repository.due_list_retries(session, now, batch_max):
            if row.subject_kind == SubjectKind.APPLICATION:
                requeue.append((row.id, row.subject))
                continue
            merchant = merchant_repository.by_mid(session, row.subject)
            asked = (
                lists.ask(
                    provider, lists.merchant_subject(merchant), attempts=row.attempts + 1, now=now
                )
                if merchant is not None
                else None
            )
            retried.append((row.id, asked))
        session.expunge_all()
    if not (fresh or retried or requeue):
        return ListRun(0, 0, 0)
    with database.unit_of_work() as uow:
        session = uow.session
        hits = lists.record_merchant_checks(session, fresh, now=now)
        for row_id, asked in retried:
            found = session.get(RiskListCheck, row_id, with_for_update=True)
            if (
                found is None
                or found.status != ListCheckStatus.PENDING
                or found.next_attempt_at is None
            ):
                continue  # another worker answered it meanwhile
            if asked is None:
                found.next_attempt_at = None  # the merchant is gone: nothing to ask about
                continue
            hits += _answer(session, found, asked, now=now)
        for row_id, application_id in requeue:
            waiting = session.get(RiskListCheck, row_id, with_for_update=True)
            if waiting is None or waiting.next_attempt_at is None:
                continue
            # The application's checks run again (a new question, a new row); this one
            # stays pending, never answered, and is not retried again.
            waiting.next_attempt_at = None
            application = onboarding_repository.get(session, application_id, for_update=True)
            if (
                application is not None
                and application.status in REQUEUE_STATUSES
                and application.checks_requested_at is None
            ):
                request_checks(application, now=now)
        uow.commit()
    return ListRun(len(fresh), len(retried) + len(requeue), hits)


def _answer(session: Session, row: RiskListCheck, asked: Asked, *, now: dt.datetime) -> int:
    """Write a retried merchant check's new answer (or next attempt); 1 when it raised
    an alert."""
    row.attempts = asked.attempts
    row.provider = asked.provider
    row.status = asked.status.value
    row.detail = asked.detail
    row.next_attempt_at = asked.next_attempt_at
    if asked.status == ListCheckStatus.PENDING:
        return 0
    row.checked_at = now
    if asked.status != ListCheckStatus.HIT:
        return 0
    merchant = merchant_repository.by_mid(session, row.subject)
    return int(merchant is not None and lists.raise_hit_alert(session, merchant, asked, now=now))
