"""Declared business hours: optional on the application (both or neither, HH:MM, 422
naming the field), copied to the merchant on approval, corrected by operations or a risk
officer (audited), read by the business-hours rule."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from poshub.bootstrap import AppState
from poshub.core.audit import AuditEntry
from poshub.merchants import repository as merchant_repository
from poshub.merchants.hours import hours_errors, normalise
from tests.factories import approved_merchant, bearer, create, login, payload
from tests.web.test_apply_form_compliance import _form, _post


@pytest.mark.parametrize(
    ("opening", "closing", "fields"),
    [
        ("08:30", "22:00", []),
        ("18:00", "02:00", []),  # past midnight
        (None, None, []),
        ("24:00", "22:00", ["opening_time"]),
        ("8h", "7pm", ["opening_time", "closing_time"]),
        ("08:00", None, ["closing_time"]),
        (None, "08:00", ["opening_time"]),
        ("09:00", "09:00", ["closing_time"]),
    ],
)
def test_hours_rules(opening: str | None, closing: str | None, fields: list[str]) -> None:
    assert [e.field for e in hours_errors(opening, closing)] == fields


def test_normalise() -> None:
    assert normalise(" 8:05 ") == "08:05"
    assert normalise("") is None
    assert normalise(None) is None
    assert normalise("0805") == "0805"  # then refused by hours_errors


def test_application_hours_are_checked_and_reach_the_merchant(
    client: TestClient, state: AppState
) -> None:
    response = client.post(
        "/api/v1/applications", json=payload(opening_time="25:00", closing_time="22:00")
    )
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == ["opening_time"]
    response = client.post("/api/v1/applications", json=payload(opening_time="08:00"))
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == ["closing_time"]

    created = create(client, opening_time="8:00", closing_time="01:30")
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    ).json()
    assert (view["opening_time"], view["closing_time"]) == ("08:00", "01:30")

    _, mid = approved_merchant(client, opening_time="07:00", closing_time="23:00")
    with state.db.unit_of_work(read_only=True) as uow:
        merchant = merchant_repository.by_mid(uow.session, mid)
        assert merchant is not None
        assert (merchant.opening_time, merchant.closing_time) == ("07:00", "23:00")


def test_the_apply_form_takes_the_hours_and_names_a_bad_one(client: TestClient) -> None:
    refused = _post(client, _form(opening_time="9am", closing_time="21:00"))
    assert refused.startswith("422")
    assert 'id="f-opening_time"' in refused
    assert "A time of day written HH:MM" in refused
    accepted = _post(client, _form(opening_time="09:00", closing_time="21:00"))
    assert accepted.startswith("200"), accepted[:2000]


def test_staff_correct_the_hours(client: TestClient, state: AppState) -> None:
    _, mid = approved_merchant(client)
    url = f"/api/v1/merchants/{mid}/business-hours"
    body = {"opening_time": "09:00", "closing_time": "21:30", "reason": "店主电话更正"}
    csrf = login(client, "support")
    assert client.put(url, headers=csrf, json=body).status_code == 403
    csrf = login(client, "ops")
    response = client.put(url, headers=csrf, json={**body, "closing_time": "9pm"})
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == ["closing_time"]
    response = client.put(url, headers=csrf, json={**body, "reason": ""})
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == ["reason"]
    assert (
        client.put(
            "/api/v1/merchants/898000000000000/business-hours", headers=csrf, json=body
        ).status_code
        == 404
    )
    response = client.put(url, headers=csrf, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"mid": mid, "opening_time": "09:00", "closing_time": "21:30"}
    # A risk officer clears them from the merchant page.
    csrf = login(client, "risk")
    page = client.get(f"/admin/merchants/{mid}").text
    assert "营业 09:00–21:30（北京时间）" in page
    form = {"csrf_token": csrf["X-CSRF-Token"], "opening_time": "", "closing_time": ""}
    refused = client.post(f"/admin/merchants/{mid}/business-hours", data=form)
    assert refused.status_code == 422
    assert "请说明修改营业时间的原因" in refused.text
    form["reason"] = "门店装修停业"
    done = client.post(f"/admin/merchants/{mid}/business-hours", data=form, follow_redirects=False)
    assert done.status_code == 303
    with state.db.unit_of_work(read_only=True) as uow:
        merchant = merchant_repository.by_mid(uow.session, mid)
        assert merchant is not None
        assert (merchant.opening_time, merchant.closing_time) == (None, None)
        entries = (
            uow.session.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "merchant.business_hours_changed")
                .order_by(AuditEntry.seq)
            )
            .scalars()
            .all()
        )
        assert [(e.actor_id, e.details["to"]) for e in entries] == [
            ("ops", {"opening_time": "09:00", "closing_time": "21:30"}),
            ("risk", {"opening_time": None, "closing_time": None}),
        ]
        assert entries[1].details["from"] == {"opening_time": "09:00", "closing_time": "21:30"}
