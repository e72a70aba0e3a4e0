"""Production mode: Secure cookies, HSTS, and API documentation only when asked for.

Demo and test mode keep serving over plain HTTP on a laptop: no Secure flag, no HSTS,
and the docs on.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState, build_state
from poshub.core.settings import Mode, Settings
from poshub.web.app import create_app
from tests.factories import STAFF


def production_client(state: AppState, monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """The app as production builds it from the environment, on the test's database."""
    for name, value in env.items():
        monkeypatch.setenv(f"POSHUB_{name.upper()}", value)
    settings = Settings(
        mode=Mode.PRODUCTION,
        data_dir=state.settings.data_dir,
        kek=secrets.token_hex(32),
        database_url=state.settings.database_url,
    )
    return TestClient(
        create_app(build_state(settings, database=state.db)), base_url="https://testserver"
    )


@pytest.fixture
def production(state: AppState, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with production_client(state, monkeypatch) as client:
        yield client


def login_cookies(client: TestClient) -> list[str]:
    response = client.post(
        "/api/v1/auth/login", json={"username": "reviewer", "password": STAFF["reviewer"][0]}
    )
    assert response.status_code == 200, response.text
    cookies: list[str] = response.headers.get_list("set-cookie")
    return cookies


def test_production_cookies_are_secure(production: TestClient) -> None:
    cookies = login_cookies(production)
    assert {c.split("=", 1)[0] for c in cookies} >= {"poshub_session", "poshub_csrf"}
    assert all("; secure" in c.lower() for c in cookies), cookies
    language = production.get("/lang/en", follow_redirects=False)
    assert "; secure" in language.headers["set-cookie"].lower()


def test_production_sends_hsts(production: TestClient) -> None:
    for path in ("/", "/healthz", "/api/v1/nothing"):
        hsts = production.get(path).headers["strict-transport-security"]
        assert hsts == "max-age=31536000; includeSubDomains"


def test_production_hides_the_api_docs_unless_enabled(
    production: TestClient, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert production.get("/api/v1/docs").status_code == 404
    assert production.get("/api/v1/openapi.json").status_code == 404
    # The API itself is there.
    assert production.get("/api/v1/catalog/terminal-models").status_code == 200

    with production_client(state, monkeypatch, api_docs="true") as enabled:
        assert enabled.get("/api/v1/docs").status_code == 200
        assert "/api/v1/auth/login" in enabled.get("/api/v1/openapi.json").json()["paths"]


def test_an_operator_may_turn_secure_cookies_off(
    state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    with production_client(state, monkeypatch, cookie_secure="false") as client:
        assert not any("; secure" in c.lower() for c in login_cookies(client))


def test_outside_production_plain_http_keeps_working(client: TestClient) -> None:
    assert "strict-transport-security" not in client.get("/").headers
    assert not any("; secure" in c.lower() for c in login_cookies(client))
    assert client.get("/api/v1/docs").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200
