"""The worker's check runs: computed outside the write lock, written only if still due."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from poshub.bootstrap import AppState
from poshub.core.db import utcnow
from poshub.onboarding import jobs, repository
from poshub.onboarding.models import Application
from tests.factories import create_and_submit


def _queued(state: AppState, application_id: str) -> tuple[int, dt.datetime | None]:
    with state.db.unit_of_work(read_only=True) as uow:
        application = repository.get(uow.session, application_id)
        assert application is not None
        return application.check_run, application.checks_requested_at


def test_checks_are_written_once_for_what_was_read(client: TestClient, state: AppState) -> None:
    created = create_and_submit(client, run_checks=False)
    assert jobs.check_queued(state.db, state.onboarding, now=utcnow()) == 1
    run, requested = _queued(state, created["id"])
    assert run == 1
    assert requested is None
    with state.db.unit_of_work(read_only=True) as uow:
        application = repository.get(uow.session, created["id"])
        assert application is not None
        assert len(repository.latest_checks(uow.session, application)) >= 10
    assert jobs.check_queued(state.db, state.onboarding, now=utcnow()) == 0  # nothing left


def test_a_request_made_while_computing_is_not_overwritten(
    client: TestClient, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checks requested again while a batch was being computed: that batch's results
    are dropped for the application, which stays queued for the next pass."""
    created = create_and_submit(client, run_checks=False)
    compute = jobs.compute_checks  # type: ignore[attr-defined]

    def compute_then_requeue(*args: Any, **kwargs: Any) -> Any:
        result = compute(*args, **kwargs)
        with state.db.unit_of_work() as uow:  # e.g. the applicant answered meanwhile
            uow.session.execute(
                update(Application)
                .where(Application.id == created["id"])
                .values(checks_requested_at=utcnow() + dt.timedelta(seconds=1))
            )
            uow.commit()
        return result

    monkeypatch.setattr(jobs, "compute_checks", compute_then_requeue)
    assert jobs.check_queued(state.db, state.onboarding, now=utcnow()) == 0
    run, requested = _queued(state, created["id"])
    assert run == 0
    assert requested is not None
    monkeypatch.setattr(jobs, "compute_checks", compute)
    assert jobs.check_queued(state.db, state.onboarding, now=utcnow()) == 1
    assert _queued(state, created["id"]) == (1, None)


def test_a_submission_prepared_before_another_one_landed_is_refused(
    client: TestClient, state: AppState
) -> None:
    """Submit checks in a read-only transaction and writes in another: if the application
    left the draft state in between (a second tab), the write is a 409, not a second
    submission."""
    from poshub.core.errors import Conflict
    from poshub.onboarding import service
    from tests.factories import create, upload_required

    created = create(client)
    upload_required(client, created)
    deps = state.onboarding
    with state.db.unit_of_work(read_only=True) as uow:
        application = repository.get(uow.session, created["id"])
        assert application is not None
        prepared = service.prepare_submission(uow.session, deps, application, now=utcnow())
        uow.session.expunge(application)
    with state.db.unit_of_work() as uow:  # the other tab
        other = repository.get(uow.session, created["id"])
        assert other is not None
        service.submit(uow.session, deps, other, now=utcnow())
        uow.commit()
    with state.db.unit_of_work() as uow, pytest.raises(Conflict) as refused:
        service.submit(uow.session, deps, application, now=utcnow(), prepared=prepared)
    assert refused.value.code == "invalid_transition"
    assert refused.value.params["current"] == "submitted"
    with state.db.unit_of_work(read_only=True) as uow:
        events = [e.kind for e in repository.events(uow.session, created["id"], 50)]
    assert events.count("submitted") == 1
