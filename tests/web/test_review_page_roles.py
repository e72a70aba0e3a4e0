"""The application review page shows each viewer only the buttons they may use: approve
and reject for the assigned reviewer, the override decision for a risk officer who did
not ask for it, nothing that acts for an auditor; and what is missing before approval
instead of an approve button that would fail."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import create_and_submit, login, payload, run_worker

ACTING_BUTTONS = (
    'id="claim"',
    'id="approve"',
    'id="reject"',
    'id="request-info"',
    'id="override-approve"',
    'id="override-decline"',
)
IMPOSTOR: dict[str, Any] = {
    "legal_name": "冒名陈明",
    "settlement_account": {**payload()["settlement_account"], "account_name": "冒名陈明"},
}


def _page(client: TestClient, username: str, application_id: str) -> str:
    client.cookies.clear()
    login(client, username)
    response = client.get(f"/admin/applications/{application_id}?lang=en")
    assert response.status_code == 200, response.text
    html: str = response.text
    return html


def _buttons(html: str) -> set[str]:
    return {button for button in ACTING_BUTTONS if button in html}


def _claimed(client: TestClient, **overrides: Any) -> str:
    created = create_and_submit(client, **overrides)
    csrf = login(client, "reviewer")
    response = client.post(f"/api/v1/review/applications/{created['id']}/claim", headers=csrf)
    assert response.status_code == 200, response.text
    application_id: str = created["id"]
    return application_id


def test_review_buttons_show_to_the_assigned_reviewer_only(client: TestClient) -> None:
    app_id = _claimed(client)
    html = _page(client, "reviewer", app_id)
    assert _buttons(html) == {'id="approve"', 'id="reject"', 'id="request-info"'}
    # Text the applicant will see is marked so; the note is marked internal.
    assert "Message to the applicant (the applicant will see this)" in html
    assert "Internal note (not shown to the applicant" in html
    assert _buttons(_page(client, "reviewer2", app_id)) == {'id="claim"'}
    assert _buttons(_page(client, "risk", app_id)) == set()
    assert _buttons(_page(client, "auditor", app_id)) == set()


def test_high_risk_page_shows_the_missing_site_survey_instead_of_approve(
    client: TestClient,
) -> None:
    app_id = _claimed(client, mcc="5944")
    html = _page(client, "reviewer", app_id)
    assert 'id="approval-blockers"' in html
    assert "record a site survey of the premises" in html
    assert 'id="approve"' not in html
    assert 'id="approve-blocked"' in html

    csrf = login(client, "reviewer")
    response = client.post(
        f"/admin/applications/{app_id}/notes",
        data={
            "kind": "site_survey",
            "body": "Counter, power and signal fine.",
            "outcome": "feasible",
            "csrf_token": csrf["X-CSRF-Token"],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    html = _page(client, "reviewer", app_id)
    assert 'id="approval-blockers"' not in html
    assert 'id="approve"' in html


def test_an_editor_sees_no_approve_button(client: TestClient) -> None:
    app_id = _claimed(client)
    csrf = login(client, "reviewer")
    response = client.patch(
        f"/api/v1/review/applications/{app_id}",
        headers=csrf,
        json={"business_name": "合肥蜀山明辉超市", "reason": "Owner confirmed the name."},
    )
    assert response.status_code == 200, response.text
    run_worker(client)
    html = _page(client, "reviewer", app_id)
    assert 'id="approve"' not in html
    assert "another reviewer must approve it" in html
    assert 'id="reject"' in html


def test_override_decision_shows_only_to_a_risk_officer(client: TestClient) -> None:
    app_id = _claimed(client, **IMPOSTOR)
    html = _page(client, "reviewer", app_id)
    assert 'id="override-notice"' in html
    assert "Ask a risk officer to approve" in html
    csrf = login(client, "reviewer")
    response = client.post(
        f"/admin/applications/{app_id}/approve",
        data={"note": "Name spelled differently on the card.", "csrf_token": csrf["X-CSRF-Token"]},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    override_id = client.get(f"/api/v1/review/applications/{app_id}").json()["override"]["id"]

    html = _page(client, "reviewer", app_id)
    assert _buttons(html) == set()
    assert 'id="override-waiting"' in html
    assert "Name spelled differently on the card." in html
    assert _buttons(_page(client, "auditor", app_id)) == set()
    html = _page(client, "risk", app_id)
    assert _buttons(html) == {'id="override-approve"', 'id="override-decline"'}

    # A reviewer posting the risk officer's form anyway is refused.
    client.cookies.clear()
    csrf = login(client, "reviewer")
    response = client.post(
        f"/admin/overrides/{override_id}/approve?lang=en",
        data={"note": "ok", "csrf_token": csrf["X-CSRF-Token"]},
        follow_redirects=False,
    )
    assert response.status_code == 403

    client.cookies.clear()
    csrf = login(client, "risk")
    response = client.post(
        f"/admin/overrides/{override_id}/approve",
        data={"note": "Confirmed with the bank.", "csrf_token": csrf["X-CSRF-Token"]},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    html = _page(client, "risk", app_id)
    assert 'id="mid"' in html
    assert _buttons(html) == set()
