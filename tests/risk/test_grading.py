"""Merchant risk grading (特约商户风险评级): the scoring table, the grade an approved
application starts with, the monthly regrade from traffic (once per merchant and month),
a risk officer's grade (audited, holding against lower monthly grades), what each grade
carries, the API, the merchant page and ``poshub risk regrade``."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from poshub.bootstrap import AppState
from poshub.cli import main
from poshub.core.audit import Actor, ActorKind, AuditEntry
from poshub.core.clock import SHANGHAI
from poshub.core.db import utcnow
from poshub.gateway.models import GatewayTransaction
from poshub.merchants import repository as merchant_repository
from poshub.risk import grading, jobs
from poshub.risk.grading import ApprovalInputs, TrafficInputs, grade_application, grade_traffic
from poshub.risk.models import MerchantRiskGrade, RiskAlert, RiskCase
from poshub.risk.schemas import Grade
from tests.conftest import TEST_KEK
from tests.factories import approved_merchant, login

CLEAR = {"blacklist": "pass", "duplicates": "pass", "real_name": "pass", "external_list": "pass"}


# --- The scoring table ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "mcc", "volume_fen", "checks", "score", "grade", "floor"),
    [
        # A supermarket with a licence, 300,000 CNY a month, every check clear.
        ("individual_business", "5411", 30_000_000, CLEAR, 15, Grade.LOW, None),
        ("enterprise", "5411", 0, CLEAR, 5, Grade.LOW, None),
        # No licence, a standard category (florist), 2 million CNY a month.
        ("individual", "5992", 200_000_000, CLEAR, 35, Grade.MEDIUM, None),
        # Jewellery (high-risk category) declaring 5 million CNY a month.
        ("individual_business", "5944", 500_000_000, CLEAR, 55, Grade.HIGH, None),
        # The list provider did not answer and a risk officer approved over it.
        (
            "individual_business",
            "5411",
            30_000_000,
            {**CLEAR, "external_list": "pending"},
            30,
            Grade.MEDIUM,
            None,
        ),
        # An enterprise approved over an external list hit: high whatever the score (45).
        (
            "enterprise",
            "5411",
            0,
            {**CLEAR, "external_list": "fail"},
            45,
            Grade.HIGH,
            "list_hit_overridden",
        ),
        (
            "enterprise",
            "5411",
            0,
            {**CLEAR, "blacklist": "fail"},
            45,
            Grade.HIGH,
            "list_hit_overridden",
        ),
        # Already a merchant under the same ID (a warning), a pending identity check.
        (
            "enterprise",
            "5411",
            0,
            {**CLEAR, "duplicates": "warn", "real_name": "pending"},
            20,
            Grade.LOW,
            None,
        ),
    ],
)
def test_grade_at_approval_table(
    kind: str,
    mcc: str,
    volume_fen: int,
    checks: dict[str, str],
    score: int,
    grade: Grade,
    floor: str | None,
) -> None:
    result = grade_application(ApprovalInputs(kind, mcc, volume_fen, checks))
    assert (result.score, result.grade, result.floor) == (score, grade, floor)
    assert result.score == sum(f.points for f in result.factors)


def test_the_explanation_names_each_factor_with_its_values() -> None:
    result = grade_application(
        ApprovalInputs("individual_business", "5944", 30_000_000, {**CLEAR, "real_name": "fail"})
    )
    factors = {f.code: f for f in result.factors}
    assert factors["applicant_kind"].values == {"kind": "individual_business"}
    assert factors["mcc_class"].values == {"mcc": "5944", "mcc_class": "high"}
    assert factors["declared_volume"].values == {"declared_yuan": "300,000.00"}
    assert factors["check_open"].values == {"check": "real_name", "status": "fail"}
    assert "checks_clear" not in factors
    items, floor = grading.explain(result.as_json())
    assert [i.points for i in items] == [10, 30, 5, 20]
    assert items[1].message == grading.FACTOR_MESSAGES["mcc_class"]
    assert items[1].params == {"mcc": "5944", "mcc_class": "high risk"}
    assert floor is None


def _month(**values: Any) -> TrafficInputs:
    base: dict[str, Any] = {
        "period": "2026-11",
        "applicant_kind": "individual_business",
        "mcc": "5411",
        "declared_monthly_volume_fen": 30_000_000,
    }
    return TrafficInputs(**(base | values))


@pytest.mark.parametrize(
    ("inputs", "score", "grade", "floor"),
    [
        (_month(), 10, Grade.LOW, None),
        # Twice the declared volume, few declines, few refunds.
        (
            _month(approved_fen=60_000_000, attempts=100, declined_count=5, refund_fen=10_000),
            20,
            Grade.LOW,
            None,
        ),
        # Four times the declared volume and 40 % of requests declined: card testing?
        (
            _month(approved_fen=120_000_000, attempts=50, declined_count=20),
            45,
            Grade.MEDIUM,
            None,
        ),
        # Refunds a quarter of sales.
        (_month(approved_fen=1_000_000, refund_fen=250_000), 25, Grade.MEDIUM, None),
        # Refunds without any sale.
        (_month(refund_fen=50_000), 25, Grade.MEDIUM, None),
        # Alerts: 3 high, 2 medium, 1 low = 20 points.
        (_month(alerts={"high": 3, "medium": 2, "low": 1}), 30, Grade.MEDIUM, None),
        # Alerts are capped at 30 points.
        (_month(alerts={"high": 50}), 40, Grade.MEDIUM, None),
        # A case closed with a finding: high whatever the score.
        (_month(cases_confirmed=1), 35, Grade.HIGH, "confirmed_case"),
        (_month(cases_open=1), 20, Grade.LOW, None),
        # Declined ratios on fewer than 20 requests say nothing.
        (_month(approved_fen=1_000, attempts=10, declined_count=9), 10, Grade.LOW, None),
    ],
)
def test_monthly_grade_table(
    inputs: TrafficInputs, score: int, grade: Grade, floor: str | None
) -> None:
    result = grade_traffic(inputs)
    assert (result.score, result.grade, result.floor) == (score, grade, floor)


def test_monthly_grade_says_there_is_no_complaints_channel() -> None:
    codes = [f.code for f in grade_traffic(_month()).factors]
    assert "no_complaints_channel" in codes
    assert "no_traffic" in codes
    counted = grade_traffic(_month(complaints=3))
    assert {f.code: f.points for f in counted.factors}["complaints"] == 6


def test_a_manual_grade_holds_against_a_lower_monthly_one() -> None:
    held = grade_traffic(_month(manual_grade=Grade.HIGH, manual_on=dt.date(2026, 10, 20)))
    assert (held.grade, held.floor) == (Grade.HIGH, "manual_hold")
    assert held.floor_values == {"grade": "high", "date": "2026-10-20", "until": "2027-01-20"}
    # A manual low grade does not stop a higher monthly one.
    raised = grade_traffic(
        _month(cases_confirmed=1, manual_grade=Grade.LOW, manual_on=dt.date(2026, 10, 20))
    )
    assert raised.grade == Grade.HIGH


def test_periods_and_review_dates() -> None:
    assert grading.parse_period("2026-02") == "2026-02"
    for bad in ("2026-13", "26-01", "2026/01", "", "2026-1"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            grading.parse_period(bad)
    # Beijing is past midnight on 1 December while UTC is still in November.
    assert grading.previous_period(dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC)) == "2026-11"
    assert grading.previous_period(dt.datetime(2026, 1, 5, tzinfo=dt.UTC)) == "2025-12"
    assert grading.period_bounds("2026-12") == (dt.date(2026, 12, 1), dt.date(2027, 1, 1))
    assert grading.add_months(dt.date(2026, 8, 31), 6) == dt.date(2027, 2, 28)
    assert grading.next_review_due(dt.date(2026, 1, 31), "high") == dt.date(2026, 4, 30)
    assert grading.next_review_due(dt.date(2026, 1, 31), "low") == dt.date(2027, 1, 31)
    assert grading.next_review_due(dt.date(2026, 1, 31), None) == dt.date(2026, 7, 31)


# --- At approval, monthly, by hand ----------------------------------------------------------


def _grades(state: AppState, mid: str) -> list[MerchantRiskGrade]:
    with state.db.unit_of_work(read_only=True) as uow:
        rows = (
            uow.session.execute(
                select(MerchantRiskGrade)
                .where(MerchantRiskGrade.mid == mid)
                .order_by(MerchantRiskGrade.id)
            )
            .scalars()
            .all()
        )
        uow.session.expunge_all()
    return list(rows)


def _audits(state: AppState, mid: str, action: str) -> list[AuditEntry]:
    with state.db.unit_of_work(read_only=True) as uow:
        rows = (
            uow.session.execute(
                select(AuditEntry)
                .where(AuditEntry.entity_id == mid, AuditEntry.action == action)
                .order_by(AuditEntry.seq)
            )
            .scalars()
            .all()
        )
        uow.session.expunge_all()
    return list(rows)


def test_an_approved_merchant_is_graded_with_its_explanation(
    client: TestClient, state: AppState
) -> None:
    _, mid = approved_merchant(client)
    [row] = _grades(state, mid)
    assert (row.source, row.grade, row.score, row.period) == ("approval", "low", 15, None)
    assert row.previous_grade is None
    codes = [f["code"] for f in row.factors["factors"]]
    assert codes == ["applicant_kind", "mcc_class", "declared_volume", "checks_clear"]
    with state.db.unit_of_work(read_only=True) as uow:
        merchant = merchant_repository.by_mid(uow.session, mid)
        assert merchant is not None
        assert merchant.risk_grade == "low"
        controls = grading.controls_for(uow.session, mid)
    assert (controls.limit_percent, controls.settlement_hold_days, controls.review_months) == (
        100,
        0,
        12,
    )
    [entry] = _audits(state, mid, "risk.merchant_graded")
    assert entry.details["grade"] == "low"
    assert entry.details["source"] == "approval"
    assert entry.details["explanation"]["factors"][0]["values"] == {"kind": "individual_business"}


_rrns = itertools.count(1)


def _journal(state: AppState, mid: str, day: dt.date, *rows: tuple[str, str, int]) -> None:
    """(kind, status, amount) rows on business date ``day``."""
    at = dt.datetime.combine(day, dt.time(12), tzinfo=SHANGHAI)
    with state.db.unit_of_work() as uow:
        for kind, status, amount in rows:
            uow.session.add(
                GatewayTransaction(
                    rrn=f"{900000000000 + next(_rrns):012d}",
                    tid="10000001",
                    mid=mid,
                    kind=kind,
                    mti="0200",
                    host_date=day,
                    amount_fen=amount,
                    status=status,
                    upstream="answered",
                    received_at=at,
                    refunded_fen=0,
                )
            )
        uow.commit()


def _backdate(state: AppState, mid: str, days: int) -> None:
    with state.db.unit_of_work() as uow:
        merchant = merchant_repository.by_mid(uow.session, mid)
        assert merchant is not None
        merchant.created_at = utcnow() - dt.timedelta(days=days)
        uow.commit()


def test_monthly_regrade_reads_the_month_and_runs_once(client: TestClient, state: AppState) -> None:
    _, mid = approved_merchant(client)
    _, newcomer = approved_merchant(client, mobile="13905510002")
    _backdate(state, mid, 70)
    now = utcnow()
    period = grading.previous_period(now)
    start, end = grading.period_bounds(period)
    # Last month: 1.2 million CNY approved (4 × the declared 300,000), 30 of 60 requests
    # declined; this month's and the month before's traffic do not count.
    _journal(state, mid, start, *[("sale", "approved", 4_000_000)] * 30)
    _journal(state, mid, start + dt.timedelta(days=3), *[("sale", "declined", 100)] * 30)
    _journal(state, mid, start - dt.timedelta(days=1), *[("sale", "approved", 99_000_000)] * 5)
    _journal(state, mid, end, *[("refund", "approved", 99_000_000)] * 5)
    with state.db.unit_of_work() as uow:
        uow.session.add(
            RiskAlert(
                rule_code="card_testing",
                rule_version=0,
                action="decline",
                severity="high",
                mid=mid,
                detail={},
                status="open",
                created_at=dt.datetime.combine(start, dt.time(10), tzinfo=SHANGHAI),
            )
        )
        uow.commit()

    assert jobs.regrade(state.db, period, now=now) == 1  # the newcomer joined this month
    assert jobs.regrade(state.db, period, now=now) == 0
    rows = _grades(state, mid)
    assert [r.source for r in rows] == ["approval", "monthly"]
    monthly = rows[1]
    assert (monthly.period, monthly.previous_grade) == (period, "low")
    points = {f["code"]: f["points"] for f in monthly.factors["factors"]}
    assert points["volume_vs_declared"] == 20
    assert points["decline_ratio"] == 15
    assert points["alerts"] == 5
    assert monthly.score == 10 + 20 + 15 + 5
    assert monthly.grade == "high"  # 50 points
    values = {f["code"]: f["values"] for f in monthly.factors["factors"]}
    assert values["volume_vs_declared"]["ratio"] == "4.0"
    assert values["decline_ratio"] == {"declined": "30", "attempts": "60", "percent": "50"}
    assert _grades(state, newcomer)[-1].source == "approval"
    audits = _audits(state, mid, "risk.merchant_graded")
    assert [a.details["source"] for a in audits] == ["approval", "monthly"]
    assert audits[1].details["previous_grade"] == "low"


def test_regrade_in_the_worker_waits_for_the_month_to_end(
    client: TestClient, state: AppState
) -> None:
    """The worker regrades last month; a merchant approved this month has no month yet."""
    from poshub.runtime import run_jobs_once

    _, mid = approved_merchant(client)
    assert run_jobs_once(state)["merchants_regraded"] == 0
    _backdate(state, mid, 70)
    assert run_jobs_once(state)["merchants_regraded"] == 1
    assert run_jobs_once(state)["merchants_regraded"] == 0


def test_a_confirmed_case_makes_the_monthly_grade_high(client: TestClient, state: AppState) -> None:
    _, mid = approved_merchant(client)
    _backdate(state, mid, 70)
    now = utcnow()
    period = grading.previous_period(now)
    start, _ = grading.period_bounds(period)
    closed = dt.datetime.combine(start + dt.timedelta(days=2), dt.time(9), tzinfo=SHANGHAI)
    with state.db.unit_of_work() as uow:
        for n, outcome in enumerate(("fraud_confirmed", "false_positive")):
            uow.session.add(
                RiskCase(
                    reference=f"RC-TEST-{n}",
                    mid=mid,
                    title="test",
                    status="closed",
                    outcome=outcome,
                    opened_by="risk",
                    opened_at=closed - dt.timedelta(days=1),
                    closed_by="risk",
                    closed_at=closed,
                )
            )
        uow.commit()
    assert jobs.regrade(state.db, period, now=now) == 1
    monthly = _grades(state, mid)[-1]
    assert (monthly.grade, monthly.factors["floor"]) == ("high", "confirmed_case")
    cases = next(f for f in monthly.factors["factors"] if f["code"] == "cases")
    assert cases["values"]["confirmed"] == "1"  # the false positive does not count
    with state.db.unit_of_work(read_only=True) as uow:
        controls = grading.controls_for(uow.session, mid)
    assert (controls.limit_percent, controls.settlement_hold_days, controls.review_months) == (
        50,
        1,
        3,
    )


def test_a_risk_officer_grade_is_audited_and_holds_for_three_months(
    client: TestClient, state: AppState
) -> None:
    _, mid = approved_merchant(client)
    with state.db.unit_of_work() as uow:
        grading.set_grade(
            uow.session,
            mid,
            "high",
            "  商户涉嫌套现，现场核查中  ",
            actor=Actor(ActorKind.STAFF, "risk"),
            now=utcnow(),
        )
        uow.commit()
    rows = _grades(state, mid)
    assert [(r.source, r.grade, r.previous_grade) for r in rows] == [
        ("approval", "low", None),
        ("manual", "high", "low"),
    ]
    assert rows[1].factors["reason"] == "商户涉嫌套现，现场核查中"
    assert rows[1].graded_by == "risk"
    [_, manual] = _audits(state, mid, "risk.merchant_graded")
    assert manual.details["source"] == "manual"
    assert manual.details["explanation"]["reason"] == "商户涉嫌套现，现场核查中"
    # Last month was quiet, but the risk officer's high grade holds.
    _backdate(state, mid, 70)
    now = utcnow()
    assert jobs.regrade(state.db, grading.previous_period(now), now=now) == 1
    monthly = _grades(state, mid)[-1]
    assert (monthly.score, monthly.grade, monthly.factors["floor"]) == (10, "high", "manual_hold")


def test_set_grade_refuses_bad_input_naming_the_field(client: TestClient, state: AppState) -> None:
    from poshub.core.errors import NotFound, ValidationFailed

    _, mid = approved_merchant(client)
    with state.db.unit_of_work() as uow:
        with pytest.raises(ValidationFailed) as refused:
            grading.set_grade(
                uow.session, mid, "extreme", " ", actor=Actor.system("t"), now=utcnow()
            )
        assert [e.field for e in refused.value.errors] == ["grade", "reason"]
        with pytest.raises(NotFound):
            grading.set_grade(
                uow.session, "898000000000000", "low", "x", actor=Actor.system("t"), now=utcnow()
            )


# --- API and page -------------------------------------------------------------------------


def test_grade_api_roles_history_and_validation(client: TestClient, state: AppState) -> None:
    _, mid = approved_merchant(client)
    url = f"/api/v1/risk/merchants/{mid}"
    csrf = login(client, "ops")
    assert client.get(f"{url}/grades").status_code == 403
    assert (
        client.post(f"{url}/grade", headers=csrf, json={"grade": "high", "reason": "x"}).status_code
        == 403
    )
    csrf = login(client, "auditor")
    assert client.get(f"{url}/grades").status_code == 200
    assert (
        client.post(f"{url}/grade", headers=csrf, json={"grade": "high", "reason": "x"}).status_code
        == 403
    )
    csrf = login(client, "risk")
    response = client.post(f"{url}/grade", headers=csrf, json={"grade": "severe", "reason": ""})
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["detail"]} == {"grade", "reason"}
    response = client.post(
        "/api/v1/risk/merchants/898000000000000/grade",
        headers=csrf,
        json={"grade": "high", "reason": "x"},
    )
    assert response.status_code == 404
    assert client.get("/api/v1/risk/merchants/898000000000000/grades").status_code == 404

    response = client.post(
        f"{url}/grade", headers=csrf, json={"grade": "high", "reason": "Cash-out pattern"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["grade"] == "high"
    assert body["controls"] == {"limit_percent": 50, "settlement_hold_days": 1, "review_months": 3}
    today = dt.datetime.now(SHANGHAI).date()
    assert body["last_review_on"] == today.isoformat()
    assert body["next_review_on"] == grading.add_months(today, 3).isoformat()
    assert [h["source"] for h in body["history"]] == ["manual", "approval"]
    assert body["history"][0]["factors"]["reason"] == "Cash-out pattern"
    assert client.get(f"{url}/grades").json() == body


def test_merchant_page_shows_the_grade_card_to_risk_readers(
    client: TestClient, state: AppState
) -> None:
    _, mid = approved_merchant(client)
    login(client, "ops")
    page = client.get(f"/admin/merchants/{mid}").text
    assert 'id="risk-grade"' not in page
    assert 'id="business-hours-form"' in page  # operations correct the hours
    login(client, "auditor")
    page = client.get(f"/admin/merchants/{mid}").text
    assert 'id="risk-grade"' in page
    assert 'id="risk-grade-form"' not in page
    csrf = login(client, "risk")
    page = client.get(f"/admin/merchants/{mid}").text
    assert 'id="risk-grade-form"' in page
    assert "低" in page
    assert "下次复核" in page
    assert "申请人类型：个体工商户（有营业执照）" in page  # the explanation, translated
    form = {"csrf_token": csrf["X-CSRF-Token"], "grade": "medium", "reason": ""}
    refused = client.post(f"/admin/merchants/{mid}/risk-grade", data=form)
    assert refused.status_code == 422
    assert "请说明" in refused.text
    form["reason"] = "复核：经营正常"
    done = client.post(f"/admin/merchants/{mid}/risk-grade", data=form, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"].endswith("#risk-grade")
    assert _grades(state, mid)[-1].grade == "medium"


# --- The command line ----------------------------------------------------------------------


def test_cli_regrade_refuses_a_bad_month(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    assert main(["--data-dir", str(tmp_path), "risk", "regrade", "--month", "2026-13"]) == 2
    assert "--month: '2026-13' is not a month written YYYY-MM" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "risk", "regrade", "--month", "2999-01"]) == 2
    assert "2999-01 is not over yet" in capsys.readouterr().err


def test_cli_regrade_grades_once(
    client: TestClient,
    state: AppState,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, mid = approved_merchant(client)
    _backdate(state, mid, 70)
    monkeypatch.setenv("POSHUB_KEK", TEST_KEK)
    monkeypatch.setenv("POSHUB_MODE", "test")
    url = state.settings.effective_database_url
    args = ["--database-url", url, "--data-dir", str(state.settings.data_dir), "risk", "regrade"]
    period = grading.previous_period(utcnow())
    assert main(args) == 0
    assert f"1 merchant(s) regraded for {period}" in capsys.readouterr().out
    assert main([*args, "--month", period]) == 0
    assert f"0 merchant(s) regraded for {period}" in capsys.readouterr().out


def test_the_worker_purges_limit_counters_of_ended_periods(state: AppState) -> None:
    """A day's counter is gone once the day has ended; this month's stays."""
    import datetime as dt

    from poshub.core.clock import business_date
    from poshub.core.db import utcnow
    from poshub.risk.models import RiskCounter
    from poshub.runtime import run_jobs_once

    today = business_date(utcnow())
    with state.db.unit_of_work() as uow:
        uow.session.add_all(
            [
                RiskCounter(
                    key="m:old:qr:d", amount_fen=1, count=1, expires_on=today - dt.timedelta(days=1)
                ),
                RiskCounter(key="m:now:qr:d", amount_fen=1, count=1, expires_on=today),
            ]
        )
        uow.commit()
    assert run_jobs_once(state)["risk_counters_purged"] == 1
    with state.db.unit_of_work(read_only=True) as uow:
        assert [c.key for c in uow.session.query(RiskCounter)] == ["m:now:qr:d"]
