"""External risk lists: the sandbox's documented answers, the onboarding check
``external_list`` (a hit or no answer sends the approval to a risk officer; no answer
is retried and never counts as clear) and the daily check of live merchants, whose hit
is an alert in the risk officers' queue."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from poshub.bootstrap import AppState
from poshub.core.db import utcnow
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.onboarding.models import Application, ApplicationCheck, ApplicationOverride
from poshub.risk import jobs, lists
from poshub.risk.lists import ListSubject, SandboxListProvider, SubjectKind
from poshub.risk.models import RiskAlert, RiskListCheck
from tests.factories import approved_merchant, login, run_worker, submitted_application

HIT_NAME = "合肥风险名单测试超市"
OUTAGE_NAME = "合肥名单超时测试超市"


def _subject(business: str = "合肥蜀山明辉便利超市", legal: str = "陈明") -> ListSubject:
    return ListSubject(SubjectKind.APPLICATION, "app-1", business, legal, None)


def test_the_sandbox_answers_as_documented() -> None:
    provider = SandboxListProvider()
    now = utcnow()
    clear = lists.ask(provider, _subject(), attempts=1, now=now)
    assert (clear.status, clear.next_attempt_at) == ("clear", None)
    assert clear.detail["reference"].startswith("SBXL")
    assert lists.ask(provider, _subject(), attempts=1, now=now).detail == clear.detail
    hit = lists.ask(provider, _subject(HIT_NAME), attempts=1, now=now)
    assert hit.status == "hit"
    assert hit.detail["list"] == "sandbox-merchant-risk"
    assert hit.detail["matched"] == "business_name"
    by_person = lists.ask(provider, _subject(legal="风险名单某某"), attempts=1, now=now)
    assert (by_person.status, by_person.detail["matched"]) == ("hit", "legal_name")
    assert lists.ask(provider, _subject("risklist-hit shop"), attempts=1, now=now).status == "hit"
    # No answer: pending, asked again after 1, 2, 4… minutes, at most an hour apart.
    for attempts, minutes in ((1, 1), (2, 2), (3, 4), (7, 60), (40, 60)):
        pending = lists.ask(provider, _subject(OUTAGE_NAME), attempts=attempts, now=now)
        assert pending.status == "pending"
        assert pending.next_attempt_at == now + dt.timedelta(minutes=minutes)
    off = lists.ask(SandboxListProvider(unavailable=True), _subject(), attempts=1, now=now)
    assert (off.status, off.detail) == ("pending", {"error": "unavailable"})
    row = off.row(now)
    assert (row["status"], row["checked_at"], row["attempts"]) == ("pending", None, 1)


def test_unknown_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="allowed: sandbox"):
        lists.build_provider("nosuch")


def _checks(state: AppState, application_id: str) -> dict[str, ApplicationCheck]:
    with state.db.unit_of_work(read_only=True) as uow:
        application = uow.session.get(Application, application_id)
        assert application is not None
        rows = (
            uow.session.execute(
                select(ApplicationCheck).where(
                    ApplicationCheck.application_id == application_id,
                    ApplicationCheck.run == application.check_run,
                )
            )
            .scalars()
            .all()
        )
        uow.session.expunge_all()
    return {row.code: row for row in rows}


def _list_rows(state: AppState, subject: str) -> list[RiskListCheck]:
    with state.db.unit_of_work(read_only=True) as uow:
        rows = (
            uow.session.execute(
                select(RiskListCheck)
                .where(RiskListCheck.subject == subject)
                .order_by(RiskListCheck.id)
            )
            .scalars()
            .all()
        )
        uow.session.expunge_all()
    return list(rows)


def _approve(client: TestClient, application_id: str) -> Any:
    csrf = login(client, "reviewer")
    base = f"/api/v1/review/applications/{application_id}"
    assert client.post(f"{base}/claim", headers=csrf).status_code == 200
    return client.post(f"{base}/approve", headers=csrf, json={"note": "Checked by phone."})


def test_ordinary_applicants_are_clear_and_approved(client: TestClient, state: AppState) -> None:
    created = submitted_application(client)
    check = _checks(state, created["id"])["external_list"]
    assert (check.status, check.detail_code) == ("pass", "external_list.clear")
    [row] = _list_rows(state, created["id"])
    assert (row.subject_kind, row.status, row.provider, row.attempts) == (
        "application",
        "clear",
        "sandbox",
        1,
    )
    assert row.checked_at is not None
    assert set(row.detail) == {"reference"}  # the answer only, no identifier
    assert _approve(client, created["id"]).status_code == 200


def test_a_hit_needs_a_risk_officer_and_makes_the_grade_high(
    client: TestClient, state: AppState
) -> None:
    created = submitted_application(client, business_name=HIT_NAME)
    check = _checks(state, created["id"])["external_list"]
    assert (check.status, check.detail_code) == ("fail", "external_list.hit")
    assert check.params["list"] == "sandbox-merchant-risk"
    response = _approve(client, created["id"])
    assert response.status_code == 202, response.text
    assert response.json()["checks"] == ["external_list"]
    csrf = login(client, "risk")
    override_id = response.json()["id"]
    response = client.post(
        f"/api/v1/review/overrides/{override_id}/approve",
        headers=csrf,
        json={"note": "A namesake; the list's entry is another company."},
    )
    assert response.status_code == 200, response.text
    with state.db.unit_of_work(read_only=True) as uow:
        merchant = uow.session.execute(
            select(Merchant).where(Merchant.application_id == created["id"])
        ).scalar_one()
        assert merchant.risk_grade == "high"


def test_no_answer_stays_pending_until_a_retry_clears_it(
    client: TestClient, state: AppState
) -> None:
    provider = state.onboarding.risk_lists
    assert isinstance(provider, SandboxListProvider)
    provider.unavailable = True
    created = submitted_application(client)
    check = _checks(state, created["id"])["external_list"]
    assert (check.status, check.detail_code) == ("pending", "external_list.unavailable")
    [first] = _list_rows(state, created["id"])
    assert (first.status, first.checked_at) == ("pending", None)
    assert first.next_attempt_at is not None
    # A reviewer alone cannot approve over it.
    response = _approve(client, created["id"])
    assert response.status_code == 202
    assert response.json()["checks"] == ["external_list"]
    with state.db.unit_of_work() as uow:  # back to the reviewer, as a declined override does
        application = uow.session.get(Application, created["id"])
        assert application is not None
        application.status = "under_review"
        override = uow.session.execute(select(ApplicationOverride)).scalar_one()
        override.status = "declined"
        uow.commit()

    # Still down when the retry is due: a new run, still pending, the next wait longer.
    later = utcnow() + dt.timedelta(minutes=2)
    assert jobs.check_lists(state.db, provider, now=later).retried == 1
    run_worker(client)
    rows = _list_rows(state, created["id"])
    assert [(r.status, r.attempts) for r in rows] == [("pending", 1), ("pending", 2)]
    assert rows[0].next_attempt_at is None  # replaced: never retried again, never clear
    assert _checks(state, created["id"])["external_list"].status == "pending"
    assert jobs.check_lists(state.db, provider, now=later).retried == 0  # not due yet

    provider.unavailable = False
    later += dt.timedelta(minutes=5)
    assert jobs.check_lists(state.db, provider, now=later).retried == 1
    run_worker(client)
    assert [r.status for r in _list_rows(state, created["id"])] == ["pending", "pending", "clear"]
    assert _checks(state, created["id"])["external_list"].status == "pass"
    assert _approve(client, created["id"]).status_code == 200


def _live(state: AppState, mid: str, *, business_name: str | None = None) -> None:
    with state.db.unit_of_work() as uow:
        merchant = merchant_repository.by_mid(uow.session, mid)
        assert merchant is not None
        merchant.status = str(MerchantStatus.LIVE)
        if business_name:
            merchant.business_name = business_name
        uow.commit()


def _alerts(state: AppState) -> list[RiskAlert]:
    with state.db.unit_of_work(read_only=True) as uow:
        rows = uow.session.execute(select(RiskAlert).order_by(RiskAlert.id)).scalars().all()
        uow.session.expunge_all()
    return list(rows)


def test_live_merchants_are_checked_daily_and_a_hit_is_an_alert(
    client: TestClient, state: AppState
) -> None:
    _, clean = approved_merchant(client)
    _, listed = approved_merchant(client, mobile="13905510002")
    _, waiting = approved_merchant(client, mobile="13905510003")
    _live(state, clean)
    _live(state, listed, business_name="合肥风险名单便利店")  # listed since it went live
    _live(state, waiting, business_name=OUTAGE_NAME)
    provider = state.onboarding.risk_lists
    now = utcnow()

    run = jobs.check_lists(state.db, provider, now=now)
    assert (run.checked, run.hits) == (3, 1)
    [alert] = _alerts(state)
    assert (alert.rule_code, alert.mid, alert.tid, alert.status, alert.severity) == (
        "external_list",
        listed,
        None,
        "open",
        "high",
    )
    assert alert.detail["list"] == "sandbox-merchant-risk"
    assert alert.detail["provider"] == "sandbox"
    assert [r.status for r in _list_rows(state, clean)] == ["clear"]
    assert [r.status for r in _list_rows(state, listed)] == ["hit"]
    [pending] = _list_rows(state, waiting)
    assert (pending.status, pending.attempts) == ("pending", 1)  # no answer: no alert, no pass

    # The same day nobody is asked again, and the hit raises no second alert.
    run = jobs.check_lists(state.db, provider, now=now + dt.timedelta(seconds=30))
    assert (run.checked, run.retried) == (0, 0)  # the retry is a minute away
    # The unanswered one is retried in place; it clears once the provider answers.
    _live(state, waiting, business_name="合肥名单恢复测试超市")
    run = jobs.check_lists(state.db, provider, now=now + dt.timedelta(minutes=2))
    assert (run.checked, run.retried, run.hits) == (0, 1, 0)
    [answered] = _list_rows(state, waiting)
    assert (answered.status, answered.attempts, answered.next_attempt_at) == ("clear", 2, None)
    # A day later they are checked again; the listed merchant raises a new alert.
    run = jobs.check_lists(state.db, provider, now=now + dt.timedelta(hours=25))
    assert (run.checked, run.hits) == (3, 1)
    assert len(_alerts(state)) == 2


def test_list_checks_api(client: TestClient, state: AppState) -> None:
    _, mid = approved_merchant(client)
    _live(state, mid)
    jobs.check_lists(state.db, state.onboarding.risk_lists, now=utcnow())
    url = f"/api/v1/risk/merchants/{mid}/list-checks"
    login(client, "support")
    assert client.get(url).status_code == 403
    login(client, "risk")
    [row] = client.get(url).json()
    assert (row["subject_kind"], row["status"], row["provider"]) == ("merchant", "clear", "sandbox")
    assert client.get("/api/v1/risk/merchants/898000000000000/list-checks").status_code == 404
