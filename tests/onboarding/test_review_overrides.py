"""Review decisions: the site survey a high-risk category needs, the second approval an
override of failed checks needs (maker-checker), and the internal note kept apart from
the message to the applicant. Everything through the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.core import audit
from poshub.core.audit import Actor
from poshub.core.roles import Role
from poshub.notify.adapters import MemoryNotifier
from poshub.runtime import run_jobs_once
from poshub.staff import service as staff_service
from poshub.web.security import APPLICANT_COOKIE
from tests.factories import bearer, create_and_submit, login, payload, run_worker

EN = {"Accept-Language": "en"}
DUAL = "dual"
DUAL_PASSWORD = "Str0ng-Secret-laud!"
IMPOSTOR: dict[str, Any] = {
    "legal_name": "冒名陈明",
    "settlement_account": {**payload()["settlement_account"], "account_name": "冒名陈明"},
}
"""The sandbox provider answers 'mismatch' to real-name and four-element checks."""


def _review(client: TestClient, application_id: str, action: str = "", **kwargs: Any) -> Any:
    url = f"/api/v1/review/applications/{application_id}" + (f"/{action}" if action else "")
    return client.post(url, **kwargs) if action else client.get(url, **kwargs)


def _claimed(client: TestClient, **overrides: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A submitted application with its checks run, claimed by ``reviewer``: (it, CSRF)."""
    created = create_and_submit(client, **overrides)
    csrf = login(client, "reviewer")
    assert _review(client, created["id"], "claim", headers=csrf).status_code == 200
    return created, csrf


def _override(client: TestClient, override_id: int, action: str, **kwargs: Any) -> Any:
    return client.post(f"/api/v1/review/overrides/{override_id}/{action}", **kwargs)


def _applicant_view(client: TestClient, created: dict[str, Any]) -> dict[str, Any]:
    response = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _error_field(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert len(detail) == 1, detail
    return detail[0]["field"], detail[0]["code"]


def _actions(state: AppState, application_id: str) -> list[str]:
    with state.db.unit_of_work(read_only=True) as uow:
        entries = audit.recent(uow.session, entity_id=application_id, limit=200)
        return [e.action for e in reversed(entries)]


def _merchants_created(state: AppState, application_id: str) -> int:
    with state.db.unit_of_work(read_only=True) as uow:
        entries = audit.recent(uow.session, entity_id=None, limit=1000)
        return sum(
            1
            for e in entries
            if e.action == "merchant.created" and e.details.get("application_id") == application_id
        )


def add_dual_user(state: AppState) -> None:
    """A staff member who is both reviewer and risk officer (small teams have them)."""
    with state.db.unit_of_work() as uow:
        staff_service.create_user(
            uow.session,
            username=DUAL,
            display_name="Dual",
            password=DUAL_PASSWORD,
            roles=[Role.REVIEWER, Role.RISK_OFFICER],
            actor=Actor.system("tests"),
        )
        uow.commit()


def login_dual(client: TestClient) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": DUAL, "password": DUAL_PASSWORD})
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


@contextmanager
def browser(client: TestClient) -> Iterator[TestClient]:
    """Another person's browser on the same app."""
    with TestClient(client.app, base_url="http://testserver") as other:
        yield other


# --- 1. High-risk categories need a passing site survey -----------------------------------


def _note(client: TestClient, app_id: str, csrf: dict[str, str], **body: Any) -> httpx.Response:
    response: httpx.Response = _review(client, app_id, "notes", headers={**csrf, **EN}, json=body)
    return response


def test_high_risk_category_waits_for_a_feasible_site_survey_of_the_current_address(
    client: TestClient, state: AppState
) -> None:
    created = create_and_submit(client, mcc="5944")  # jewellery: high risk
    app_id = created["id"]
    csrf = login(client, "reviewer")
    detail = _review(client, app_id, "claim", headers={**csrf, **EN}).json()
    assert [b["code"] for b in detail["approval_blockers"]] == ["site_survey_required"]

    response = _review(client, app_id, "approve", headers={**csrf, **EN}, json={})
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "site_survey_required"
    assert "site survey" in response.json()["message"]
    assert "5944" in response.json()["message"]
    assert _review(client, app_id, headers=csrf).json()["merchant_mid"] is None

    # A site survey must say whether the premises are feasible.
    response = _note(client, app_id, csrf, kind="site_survey", body="Visited the shop.")
    assert _error_field(response) == ("outcome", "outcome.site_survey")
    response = _note(client, app_id, csrf, kind="site_survey", body="Visited.", outcome="confirmed")
    assert _error_field(response) == ("outcome", "outcome.site_survey")

    # A survey that found the premises unsuitable does not count.
    response = _note(
        client, app_id, csrf, kind="site_survey", body="No counter.", outcome="not_feasible"
    )
    assert response.status_code == 201, response.text
    response = _review(client, app_id, "approve", headers={**csrf, **EN}, json={})
    assert response.status_code == 409
    assert "did not find the premises feasible" in response.json()["message"]

    # A feasible survey of the address, then the shop moves: the survey no longer counts.
    response = _note(
        client, app_id, csrf, kind="site_survey", body="Counter and power ok.", outcome="feasible"
    )
    assert response.status_code == 201, response.text
    with browser(client) as other:
        other_csrf = login(other, "reviewer2")
        assert _review(other, app_id, "claim", headers=other_csrf).status_code == 200
        response = other.patch(
            f"/api/v1/review/applications/{app_id}",
            headers=other_csrf,
            json={
                "address": {
                    "province": "安徽省",
                    "city": "合肥市",
                    "district": "蜀山区",
                    "detail": "黄山路 8 号",
                },
                "reason": "The owner moved the shop.",
            },
        )
        assert response.status_code == 200, response.text
    run_worker(client)
    assert _review(client, app_id, "claim", headers=csrf).status_code == 200
    response = _review(client, app_id, "approve", headers={**csrf, **EN}, json={})
    assert response.status_code == 409
    assert response.json()["error"] == "site_survey_required"
    assert "another address" in response.json()["message"]

    # Survey the new address: now it can be approved.
    response = _note(
        client, app_id, csrf, kind="site_survey", body="New shop ok.", outcome="feasible"
    )
    assert response.status_code == 201
    assert _review(client, app_id, headers=csrf).json()["approval_blockers"] == []
    response = _review(client, app_id, "approve", headers=csrf, json={})
    assert response.status_code == 200, response.text
    assert response.json()["mid"][7:11] == "5944"


def test_standard_category_needs_no_site_survey(client: TestClient) -> None:
    created = create_and_submit(client)
    csrf = login(client, "reviewer")
    detail = _review(client, created["id"], "claim", headers=csrf).json()
    assert detail["approval_blockers"] == []
    assert _review(client, created["id"], "approve", headers=csrf, json={}).status_code == 200


# --- 2. Failed checks are not overridden by one person ------------------------------------


def _blacklisted_application(client: TestClient) -> dict[str, Any]:
    csrf = login(client, "risk")
    response = client.post(
        "/api/v1/blacklist",
        headers=csrf,
        json={"kind": "mobile", "value": "13912340007", "reason": "Card cash-out ring."},
    )
    assert response.status_code == 201, response.text
    client.post("/api/v1/auth/logout", headers=csrf)
    client.cookies.clear()
    return create_and_submit(client, mobile="13912340007")


def test_reviewer_alone_cannot_create_the_merchant_over_a_blacklist_hit(
    client: TestClient, state: AppState, notifier: MemoryNotifier
) -> None:
    created = _blacklisted_application(client)
    app_id = created["id"]
    csrf = login(client, "reviewer")
    detail = _review(client, app_id, "claim", headers=csrf).json()
    assert detail["override_checks"] == ["blacklist"]

    response = _review(client, app_id, "approve", headers={**csrf, **EN}, json={})
    assert _error_field(response) == ("note", "note.required_with_open_checks")

    response = _review(
        client,
        app_id,
        "approve",
        headers=csrf,
        json={"note": "The entry is about a previous owner of the number.", "message": "Welcome."},
    )
    assert response.status_code == 202, response.text
    request = response.json()
    assert request["status"] == "pending"
    assert request["checks"] == ["blacklist"]
    assert request["requested_by"] == "reviewer"
    assert request["reason"].startswith("The entry is about")

    detail = _review(client, app_id, headers=csrf).json()
    assert detail["status"] == "pending_override"
    assert detail["merchant_mid"] is None
    assert detail["override"]["id"] == request["id"]
    assert _merchants_created(state, app_id) == 0
    # To the applicant it is still under review, and they hear nothing of the override.
    view = _applicant_view(client, created)
    assert view["status"] == "under_review"
    assert "previous owner" not in str(view)
    # The reviewer may neither approve it again nor decide the override.
    response = _review(client, app_id, "approve", headers={**csrf, **EN}, json={"note": "x"})
    assert response.status_code == 409
    response = _override(
        client, request["id"], "approve", headers={**csrf, **EN}, json={"note": "ok"}
    )
    assert response.status_code == 403
    assert response.json()["error"] == "role_forbidden"
    assert "risk_officer" in response.json()["message"]

    # The queue of overrides lists it for risk officers.
    with browser(client) as risk:
        risk_csrf = login(risk, "risk")
        waiting = risk.get("/api/v1/review/overrides").json()
        assert [w["id"] for w in waiting] == [request["id"]]

        response = _override(risk, request["id"], "approve", headers={**risk_csrf, **EN}, json={})
        assert _error_field(response) == ("note", "missing")
        response = _override(
            risk,
            request["id"],
            "approve",
            headers=risk_csrf,
            json={"note": "Called the carrier: the number changed hands in 2023."},
        )
        assert response.status_code == 200, response.text
        mid = response.json()["mid"]

        # Exactly once: a second approval of the same request is refused.
        response = _override(
            risk, request["id"], "approve", headers={**risk_csrf, **EN}, json={"note": "again"}
        )
        assert response.status_code == 409
        assert response.json()["error"] == "override_not_pending"
        assert risk.get("/api/v1/review/overrides").json() == []

    assert _merchants_created(state, app_id) == 1
    detail = _review(client, app_id, headers=csrf).json()
    assert detail["status"] == "approved"
    assert detail["merchant_mid"] == mid
    assert detail["override"] is None
    actions = _actions(state, app_id)
    assert actions.index("application.override_requested") < actions.index(
        "application.override_approved"
    )
    assert actions.index("application.override_approved") < actions.index("application.approved")
    with state.db.unit_of_work(read_only=True) as uow:
        entries = audit.recent(uow.session, entity_id=app_id, limit=50)
        requested = next(e for e in entries if e.action == "application.override_requested")
        assert requested.details["checks"] == ["blacklist"]
        assert requested.details["reason"].startswith("The entry is about")
        approved = next(e for e in entries if e.action == "application.override_approved")
        assert approved.actor_id != requested.actor_id

    # The applicant sees the approval and the message, never the notes.
    view = _applicant_view(client, created)
    assert view["status"] == "approved"
    assert "Welcome." in [e["body"] for e in view["events"]]
    assert "previous owner" not in str(view)
    assert "carrier" not in str(view)
    run_jobs_once(state)
    texts = [text for _, _, text in notifier.sent]
    assert any(mid in t for t in texts)
    assert not any("previous owner" in t or "carrier" in t for t in texts)


def test_the_reviewer_who_asked_cannot_second_approve_even_as_risk_officer(
    client: TestClient, state: AppState
) -> None:
    add_dual_user(state)
    created = create_and_submit(client, **IMPOSTOR)
    app_id = created["id"]
    csrf = login_dual(client)
    detail = _review(client, app_id, "claim", headers=csrf).json()
    assert detail["override_checks"] == ["real_name"]
    response = _review(
        client, app_id, "approve", headers=csrf, json={"note": "Name spelled differently."}
    )
    assert response.status_code == 202, response.text
    override_id = response.json()["id"]
    for action in ("approve", "decline"):
        response = _override(
            client, override_id, action, headers={**csrf, **EN}, json={"note": "ok"}
        )
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "override_same_person"
    assert _review(client, app_id, headers=csrf).json()["status"] == "pending_override"
    assert _merchants_created(state, app_id) == 0


def test_whoever_edited_the_application_cannot_second_approve(
    client: TestClient, state: AppState
) -> None:
    add_dual_user(state)
    created = create_and_submit(client, **IMPOSTOR)
    app_id = created["id"]
    with browser(client) as editor:
        editor_csrf = login_dual(editor)
        assert _review(editor, app_id, "claim", headers=editor_csrf).status_code == 200
        response = editor.patch(
            f"/api/v1/review/applications/{app_id}",
            headers=editor_csrf,
            json={"business_name": "合肥蜀山明辉超市", "reason": "Owner confirmed the name."},
        )
        assert response.status_code == 200, response.text
        run_worker(client)
        csrf = login(client, "reviewer")
        assert _review(client, app_id, "claim", headers=csrf).status_code == 200
        response = _review(
            client, app_id, "approve", headers=csrf, json={"note": "Seen the ID in person."}
        )
        assert response.status_code == 202, response.text
        override_id = response.json()["id"]

        response = _override(
            editor, override_id, "approve", headers={**editor_csrf, **EN}, json={"note": "ok"}
        )
        assert response.status_code == 403
        assert response.json()["error"] == "override_editor"

    with browser(client) as risk:
        risk_csrf = login(risk, "risk")
        response = _override(risk, override_id, "approve", headers=risk_csrf, json={"note": "ok"})
        assert response.status_code == 200, response.text
    assert _merchants_created(state, app_id) == 1


def test_a_declined_override_goes_back_to_the_reviewer_with_the_reason(
    client: TestClient, state: AppState
) -> None:
    created = create_and_submit(client, mobile="13905510000")  # four-element check pending
    app_id = created["id"]
    csrf = login(client, "reviewer")
    assert _review(client, app_id, "claim", headers=csrf).status_code == 200
    response = _review(
        client, app_id, "approve", headers=csrf, json={"note": "The provider is down again."}
    )
    assert response.status_code == 202, response.text
    assert response.json()["checks"] == ["bank_card_four"]
    override_id = response.json()["id"]

    with browser(client) as risk:
        risk_csrf = login(risk, "risk")
        response = _override(risk, override_id, "decline", headers={**risk_csrf, **EN}, json={})
        assert _error_field(response) == ("note", "missing")
        response = _override(
            risk, override_id, "decline", headers=risk_csrf, json={"note": "Wait for the check."}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "under_review"
        response = _override(
            risk, override_id, "approve", headers={**risk_csrf, **EN}, json={"note": "ok"}
        )
        assert response.status_code == 409
        assert response.json()["error"] == "override_not_pending"

    detail = _review(client, app_id, headers=csrf).json()
    assert detail["status"] == "under_review"
    assert detail["override"] is None
    declined = [e for e in detail["events"] if e["kind"] == "override_declined"]
    assert [e["body"] for e in declined] == ["Wait for the check."]
    assert "application.override_declined" in _actions(state, app_id)
    assert _merchants_created(state, app_id) == 0
    assert "Wait for the check" not in str(_applicant_view(client, created))
    # The reviewer decides again, e.g. rejects.
    response = _review(
        client,
        app_id,
        "reject",
        headers=csrf,
        json={"reasons": ["identity_not_verified"], "message": "We could not verify your card."},
    )
    assert response.status_code == 200, response.text


# --- 3. The internal note stays internal --------------------------------------------------


def test_internal_notes_never_reach_the_applicant(
    client: TestClient, state: AppState, notifier: MemoryNotifier
) -> None:
    created, csrf = _claimed(client)
    app_id = created["id"]
    response = _review(
        client,
        app_id,
        "request-info",
        headers=csrf,
        json={"message": "Please upload a clearer licence.", "note": "INTERNAL-ASK suspicious"},
    )
    assert response.status_code == 200, response.text
    response = client.post(
        f"/api/v1/applications/{app_id}/answer",
        headers=bearer(created["access_token"]),
        json={"message": "Uploaded it again."},
    )
    assert response.status_code == 200, response.text
    run_worker(client)
    response = _review(
        client,
        app_id,
        "approve",
        headers=csrf,
        json={"note": "INTERNAL-APPROVE owner seemed nervous", "message": "Welcome to PosHub."},
    )
    assert response.status_code == 200, response.text

    staff_view = _review(client, app_id, headers=csrf).json()
    assert staff_view["decision_note"] == "INTERNAL-APPROVE owner seemed nervous"
    assert staff_view["decision_message"] == "Welcome to PosHub."
    assert "INTERNAL-ASK suspicious" in [e["body"] for e in staff_view["events"]]

    view = _applicant_view(client, created)
    bodies = [e["body"] for e in view["events"]]
    assert "Please upload a clearer licence." in bodies
    assert "Welcome to PosHub." in bodies
    assert "INTERNAL" not in str(view)
    client.cookies.set(APPLICANT_COOKIE, created["access_token"])
    page = client.get(f"/apply/track/{created['tracking_number']}")
    assert page.status_code == 200
    assert "Welcome to PosHub." in page.text
    assert "INTERNAL" not in page.text
    run_jobs_once(state)
    assert not any("INTERNAL" in text for _, _, text in notifier.sent)


def test_rejection_keeps_the_note_internal_and_other_needs_a_message(
    client: TestClient,
) -> None:
    created, csrf = _claimed(client)
    app_id = created["id"]
    response = _review(
        client,
        app_id,
        "reject",
        headers={**csrf, **EN},
        json={"reasons": ["other"], "note": "INTERNAL-REJECT fake shop photo"},
    )
    assert _error_field(response) == ("message", "message.required_for_other")
    response = _review(
        client,
        app_id,
        "reject",
        headers=csrf,
        json={
            "reasons": ["other"],
            "note": "INTERNAL-REJECT fake shop photo",
            "message": "Your shop could not be confirmed.",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["decision_note"] == "INTERNAL-REJECT fake shop photo"
    view = _applicant_view(client, created)
    assert view["status"] == "rejected"
    assert "Your shop could not be confirmed." in [e["body"] for e in view["events"]]
    assert "INTERNAL" not in str(view)
