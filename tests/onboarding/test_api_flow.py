"""An application through the real HTTP API, from creation to a merchant with a MID."""

from __future__ import annotations

from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.core.ids import is_valid_mid
from poshub.demo import tiny_png
from poshub.notify.adapters import MemoryNotifier
from poshub.runtime import run_jobs_once
from tests.factories import bearer, create, login, run_worker, upload_required


def test_create_upload_submit_needs_info_answer_approve(
    client: TestClient, state: AppState, notifier: MemoryNotifier
) -> None:
    created = create(client)
    assert created["status"] == "draft"
    assert created["tracking_number"].startswith("AP")
    token = created["access_token"]
    app_id = created["id"]

    # Submitting without documents names each missing one.
    response = client.post(f"/api/v1/applications/{app_id}/submit", headers=bearer(token))
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["detail"]} >= {
        "documents.id_card_front",
        "documents.business_licence",
    }

    upload_required(client, created)
    response = client.post(f"/api/v1/applications/{app_id}/submit", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "submitted"
    assert response.json()["sla_target_date"]

    # The worker runs the queued checks (real verification providers are slow).
    assert run_worker(client)["applications_checked"] == 1

    csrf = login(client, "reviewer")
    queue = client.get("/api/v1/review/applications").json()
    assert [item["id"] for item in queue] == [app_id]
    detail = client.get(f"/api/v1/review/applications/{app_id}").json()
    statuses = {c["code"]: c["status"] for c in detail["checks"]}
    assert statuses["resident_id"] == "pass"
    assert statuses["real_name"] == "pass"
    assert statuses["bank_card_four"] == "pass"
    assert statuses["duplicates"] == "pass"

    assert (
        client.post(f"/api/v1/review/applications/{app_id}/claim", headers=csrf).json()["status"]
        == "under_review"
    )
    response = client.post(
        f"/api/v1/review/applications/{app_id}/notes",
        headers=csrf,
        json={
            "kind": "phone_confirmation",
            "body": "Called the owner; confirmed.",
            "outcome": "confirmed",
        },
    )
    assert response.status_code == 201
    response = client.post(
        f"/api/v1/review/applications/{app_id}/request-info",
        headers=csrf,
        json={"message": "Please upload a clearer photo of the licence."},
    )
    assert response.json()["status"] == "needs_info"

    # The applicant sees the request, uploads a new scan and answers.
    view = client.get(f"/api/v1/applications/{app_id}", headers=bearer(token)).json()
    assert view["status"] == "needs_info"
    assert view["events"][-1]["body"] == "Please upload a clearer photo of the licence."
    assert view["events"][-1]["author_id"] == "PosHub"
    response = client.post(
        f"/api/v1/applications/{app_id}/documents",
        headers=bearer(token),
        data={"kind": "business_licence"},
        files={"file": ("licence-new.png", tiny_png("licence-new"), "image/png")},
    )
    assert response.status_code == 201
    response = client.post(
        f"/api/v1/applications/{app_id}/answer",
        headers=bearer(token),
        json={"message": "Uploaded a clearer licence."},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "under_review"
    assert run_worker(client)["applications_checked"] == 1  # the answer queued a new run

    response = client.post(
        f"/api/v1/review/applications/{app_id}/approve", headers=csrf, json={"note": "All good."}
    )
    assert response.status_code == 200, response.text
    merchant = response.json()
    assert is_valid_mid(merchant["mid"])
    assert merchant["mid"] == "898" + "3401" + "5411" + "0001"
    assert merchant["status"] == "approved"

    view = client.get(f"/api/v1/applications/{app_id}", headers=bearer(token)).json()
    assert view["status"] == "approved"
    assert view["merchant_mid"] == merchant["mid"]

    # Every step notified the applicant, through the outbox, once the worker ran.
    run_jobs_once(state)
    texts = [text for _, _, text in notifier.sent]
    assert any(created["tracking_number"] in t and merchant["mid"] in t for t in texts)
    assert any("clearer photo" in t for t in texts)
    # The one-time code (sent directly, never through the outbox) came first; then created
    # (with the tracking link, once the number was proved), submitted, review started,
    # info requested, approved.
    assert len(texts) == 6
    assert str(notifier.last_code("13905510001")) in texts[0]
    assert created["tracking_number"] in texts[1]
