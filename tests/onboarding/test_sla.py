"""The review clock in Chinese working days, around National Day 2026."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from poshub.bootstrap import AppState
from poshub.onboarding import jobs, repository, service, sla
from poshub.onboarding.models import Application
from poshub.onboarding.schemas import ApplicationIn
from poshub.onboarding.service import applicant_actor
from poshub.staff import repository as staff_repository
from poshub.staff.service import Principal
from tests.factories import PNG, payload

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=SHANGHAI).astimezone(dt.UTC)


@pytest.mark.parametrize(
    ("start", "target", "breach"),
    [
        # Wed 30 Sep: holiday 1–8 Oct, Sat 10 Oct is an adjusted working day.
        ("2026-09-30", "2026-10-10", "2026-10-15"),
        # Thu 24 Sep: Mid-Autumn (25–27 Sep) then National Day.
        ("2026-09-24", "2026-09-30", "2026-10-12"),
        # An ordinary week.
        ("2026-11-16", "2026-11-19", "2026-11-25"),
    ],
)
def test_deadlines_skip_holidays_and_count_adjusted_working_days(
    start: str, target: str, breach: str
) -> None:
    assert sla.deadlines(dt.date.fromisoformat(start), 0, 3, 7) == (
        dt.date.fromisoformat(target),
        dt.date.fromisoformat(breach),
    )


def test_state_moves_from_on_track_to_breached() -> None:
    target, breach = dt.date(2026, 10, 10), dt.date(2026, 10, 15)
    assert sla.state(dt.date(2026, 10, 9), target, breach) == sla.SlaState.ON_TRACK
    assert sla.state(dt.date(2026, 10, 10), target, breach) == sla.SlaState.DUE_TODAY
    assert sla.state(dt.date(2026, 10, 12), target, breach) == sla.SlaState.OVERDUE
    assert sla.state(dt.date(2026, 10, 16), target, breach) == sla.SlaState.BREACHED


def test_elapsed_counts_working_days_only() -> None:
    # 30 Sep → 9 Oct: only 8 and 9 Oct are working days after the start.
    assert sla.elapsed(dt.date(2026, 9, 30), dt.date(2026, 10, 9), 0) == 2


def _reviewer(state: AppState) -> Principal:
    with state.db.unit_of_work(read_only=True) as uow:
        user = staff_repository.by_username(uow.session, "reviewer")
        assert user is not None
        return Principal(
            user.id,
            user.username,
            user.display_name,
            staff_repository.roles_of(uow.session, user.id),
        )


def _draft_with_documents(session: Session, state: AppState, now: dt.datetime) -> Application:
    """An individual's draft with every required document, saved at ``now``."""
    deps = state.onboarding
    data = ApplicationIn.model_validate(payload("individual", licence_expiry=None, uscc=None))
    application, _ = service.create_application(session, deps, data, locale="zh_CN", now=now)
    sms = service.request_mobile_code(session, deps, application, source_address="t", now=now)
    assert service.confirm_mobile(session, deps, application, sms.code, now=now) is None
    for kind in ("id_card_front", "id_card_back", "settlement_account_proof", "premises_proof"):
        service.add_document(
            session,
            deps,
            application,
            kind=kind,
            file_name="x.png",
            content=PNG,
            uploaded_by=applicant_actor(application),
            now=now,
        )
    return application


def test_submitted_on_30_september_is_due_on_the_adjusted_saturday_and_pauses_while_waiting(
    state: AppState,
) -> None:
    deps = state.onboarding
    reviewer = _reviewer(state)
    with state.db.unit_of_work() as uow:
        application = _draft_with_documents(uow.session, state, at("2026-09-29"))
        service.submit(uow.session, deps, application, now=at("2026-09-30", hour=16))
        assert application.sla_start_date == dt.date(2026, 9, 30)
        assert application.sla_target_date == dt.date(2026, 10, 10)
        assert application.sla_breach_date == dt.date(2026, 10, 15)

        service.claim(uow.session, application, reviewer, now=at("2026-10-08"))
        service.request_info(
            uow.session, deps, application, reviewer, "请补充门头照片", now=at("2026-10-09")
        )
        service.answer_request(uow.session, deps, application, "已补充", now=at("2026-10-13"))
        # 10 Oct (adjusted Saturday), 12 and 13 Oct were spent waiting for the applicant.
        assert application.sla_paused_working_days == 3
        assert application.sla_target_date == dt.date(2026, 10, 14)
        assert application.sla_breach_date == dt.date(2026, 10, 20)
        uow.commit()


def test_worker_flags_a_breach_once(state: AppState) -> None:
    deps = state.onboarding
    with state.db.unit_of_work() as uow:
        application = _draft_with_documents(uow.session, state, at("2026-09-29"))
        service.submit(uow.session, deps, application, now=at("2026-09-30"))
        uow.commit()
        application_id = application.id
    with state.db.unit_of_work() as uow:
        assert (
            jobs.flag_sla_breaches(uow.session, now=at("2026-10-15")) == 0
        )  # breach day itself is still in time
        assert jobs.flag_sla_breaches(uow.session, now=at("2026-10-16")) == 1
        assert jobs.flag_sla_breaches(uow.session, now=at("2026-10-17")) == 0
        uow.commit()
    with state.db.unit_of_work(read_only=True) as uow:
        kinds = [e.kind for e in repository.events(uow.session, application_id, 50)]
        assert kinds[-1] == "sla_breached"


def test_worker_passes_sweep_only_when_asked(state: AppState) -> None:
    """The worker runs the SLA sweeps once a minute, not on every pass (runtime.py)."""
    from poshub.runtime import run_jobs_once

    deps = state.onboarding
    with state.db.unit_of_work() as uow:
        application = _draft_with_documents(uow.session, state, at("2025-09-01"))
        service.submit(uow.session, deps, application, now=at("2025-09-02"))
        uow.commit()
    assert run_jobs_once(state, sweeps=False)["sla_breaches_flagged"] == 0
    assert run_jobs_once(state)["sla_breaches_flagged"] == 1  # long overdue by now
    assert run_jobs_once(state)["sla_breaches_flagged"] == 0  # once only
