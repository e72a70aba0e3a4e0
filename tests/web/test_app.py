from __future__ import annotations

from fastapi.testclient import TestClient


def test_healthz_reports_the_database(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["database"] in ("sqlite", "postgresql")


def test_every_response_carries_security_headers(client: TestClient) -> None:
    for path in ("/", "/api/v1/catalog/terminal-models", "/does-not-exist"):
        response = client.get(path)
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # No API answer is kept by a browser or proxy (some carry device secrets once).
    assert client.get("/api/v1/catalog/terminal-models").headers["cache-control"] == "no-store"
    assert "no-store" not in client.get("/static/app.css").headers.get("cache-control", "")


def test_language_switch_sets_a_cookie_and_refuses_open_redirects(client: TestClient) -> None:
    response = client.get("/lang/en", params={"next": "/apply"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/apply"
    assert "poshub_lang=en" in response.headers["set-cookie"]
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example/", "/\tx"):
        response = client.get("/lang/en", params={"next": evil}, follow_redirects=False)
        assert response.headers["location"] == "/"


def test_unknown_api_path_is_a_json_404_in_the_requested_language(client: TestClient) -> None:
    response = client.get("/api/v1/nothing", headers={"Accept-Language": "en"})
    assert response.status_code == 404
    assert response.json()["message"] == "Not found."


def test_openapi_lists_the_application_endpoints(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/applications" in paths
    assert "/api/v1/applications/{application_id}/submit" in paths
    assert "/api/v1/catalog/terminal-models" in paths
