"""Server-rendered staff pages, checked without a browser (the browser tests drive them)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import create_and_submit, login, run_worker


def test_review_page_shows_running_checks_then_their_results(client: TestClient) -> None:
    created = create_and_submit(client, run_checks=False)
    login(client, "reviewer")
    page = client.get(f"/admin/applications/{created['id']}?lang=en")
    assert page.status_code == 200
    assert 'id="checks-running"' in page.text
    assert 'hx-trigger="every 2s"' in page.text

    run_worker(client)
    page = client.get(f"/admin/applications/{created['id']}?lang=en")
    assert 'id="checks-running"' not in page.text
    assert "Real-name verification (name + ID)" in page.text
    assert "ID card, front (photo side)" in page.text  # document kinds shown as labels


def test_queue_marks_applications_whose_checks_are_running(client: TestClient) -> None:
    create_and_submit(client, run_checks=False)
    login(client, "reviewer")
    page = client.get("/admin/applications?lang=zh_CN")
    assert "校验中" in page.text
    run_worker(client)
    assert "校验中" not in client.get("/admin/applications?lang=zh_CN").text


def test_audit_page_verifies_the_chain_in_chinese(client: TestClient) -> None:
    create_and_submit(client)
    login(client, "auditor")
    page = client.get("/admin/audit?verify=true&lang=zh_CN")
    assert page.status_code == 200
    assert 'id="verify-result"' in page.text
    assert "application.submitted" in page.text
