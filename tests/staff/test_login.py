"""Staff login: refusals that look alike, sessions that expire, logout.

The service takes an explicit ``now``, so the idle limit is tested without waiting; the
HTTP tests check what a person at the login form sees.
"""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.core import limits
from poshub.core.errors import Unauthorized
from poshub.staff import service as staff_service
from poshub.staff.service import INVALID_LOGIN, Principal
from tests.factories import STAFF, login

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
IDLE = dt.timedelta(minutes=limits.SESSION_IDLE_MINUTES)
RIGHT = STAFF["reviewer"][0]
WRONG = "Not-the-password-1!"


def attempt(
    state: AppState, password: str, now: dt.datetime, username: str = "reviewer"
) -> staff_service.LoginResult | Unauthorized:
    """One login, committed whatever its outcome (as the web layer does)."""
    with state.db.unit_of_work() as uow:
        try:
            result = staff_service.login(
                uow.session, username=username, password=password, client_ip="10.0.0.1", now=now
            )
        except Unauthorized as exc:
            uow.commit()
            return exc
        uow.commit()
        return result


def refused(outcome: staff_service.LoginResult | Unauthorized, code: str) -> Unauthorized:
    assert isinstance(outcome, Unauthorized), "the login should have been refused"
    assert outcome.code == code
    return outcome


# --- Refusals (throttling: tests/staff/test_login_throttle.py) ----------------------------


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(state: AppState) -> None:
    wrong = refused(attempt(state, WRONG, T0), "invalid_login")
    unknown = refused(attempt(state, WRONG, T0, username="nobody"), "invalid_login")
    assert (unknown.message, unknown.params, unknown.status_code) == (
        wrong.message,
        wrong.params,
        wrong.status_code,
    )
    assert wrong.message == INVALID_LOGIN


def test_unknown_user_and_wrong_password_look_the_same_over_http(client: TestClient) -> None:
    headers = {"Accept-Language": "en"}
    wrong = client.post(
        "/api/v1/auth/login", json={"username": "reviewer", "password": WRONG}, headers=headers
    )
    unknown = client.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": WRONG}, headers=headers
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"] == "invalid_login"
    assert wrong.json()["message"].startswith("Wrong user name or password.")
    assert "poshub_session" not in wrong.cookies


# --- Sessions -----------------------------------------------------------------------------


def open_session(state: AppState, now: dt.datetime = T0) -> str:
    result = attempt(state, RIGHT, now)
    assert isinstance(result, staff_service.LoginResult)
    return result.session_token


def resolve(state: AppState, token: str, now: dt.datetime) -> Principal | None:
    """What the web layer does for each request: resolve, and move the idle clock when due."""
    with state.db.unit_of_work() as uow:
        resolved = staff_service.resolve_session(
            uow.session, token, idle_minutes=limits.SESSION_IDLE_MINUTES, now=now
        )
        if resolved is not None and resolved.needs_touch:
            staff_service.touch_session(uow.session, token, now)
        uow.commit()
    return resolved.principal if resolved is not None else None


def test_session_expires_after_the_idle_limit(state: AppState) -> None:
    token = open_session(state)
    assert state.settings.session_idle_minutes == limits.SESSION_IDLE_MINUTES
    principal = resolve(state, token, T0 + IDLE - dt.timedelta(seconds=1))
    assert principal is not None
    assert principal.username == "reviewer"
    assert principal.roles == {"reviewer"}

    idle_token = open_session(state)
    assert resolve(state, idle_token, T0 + IDLE) is None
    # Expired stays expired.
    assert resolve(state, idle_token, T0 + IDLE + dt.timedelta(minutes=5)) is None


def test_activity_keeps_a_session_alive_up_to_the_absolute_limit(state: AppState) -> None:
    token = open_session(state)
    now = T0
    step = IDLE - dt.timedelta(minutes=1)
    while now + step < T0 + dt.timedelta(hours=limits.SESSION_ABSOLUTE_HOURS):
        now += step
        assert resolve(state, token, now) is not None, f"expired at {now - T0} despite activity"
    assert resolve(state, token, T0 + dt.timedelta(hours=limits.SESSION_ABSOLUTE_HOURS)) is None


def test_unknown_token_resolves_to_nobody(state: AppState) -> None:
    open_session(state)
    assert resolve(state, "not-a-session-token", T0) is None


def test_logout_revokes_the_session(state: AppState) -> None:
    token = open_session(state)
    other = open_session(state)
    with state.db.unit_of_work() as uow:
        staff_service.logout(uow.session, token, now=T0 + dt.timedelta(minutes=1))
        uow.commit()
    assert resolve(state, token, T0 + dt.timedelta(minutes=2)) is None
    # Only that session: the same user's other session lives on.
    assert resolve(state, other, T0 + dt.timedelta(minutes=2)) is not None
    # Logging out twice, or with an unknown token, is harmless.
    with state.db.unit_of_work() as uow:
        staff_service.logout(uow.session, token)
        staff_service.logout(uow.session, "not-a-session-token")
        uow.commit()


def test_logout_over_http_revokes_the_cookie(client: TestClient) -> None:
    csrf = login(client, "reviewer")
    assert client.get("/api/v1/review/applications").status_code == 200
    session_cookie = client.cookies["poshub_session"]
    response = client.post("/api/v1/auth/logout", headers=csrf)
    assert response.status_code == 204
    assert "poshub_session" not in client.cookies
    assert client.get("/api/v1/review/applications").json()["error"] == "login_required"

    # The old cookie, replayed, is worth nothing on the API or the pages.
    client.cookies.set("poshub_session", session_cookie)
    response = client.get("/api/v1/review/applications")
    assert response.status_code == 401
    assert response.json()["error"] == "session_expired"
    page = client.get("/admin", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/admin/login")


def test_admin_page_logout(client: TestClient) -> None:
    csrf = login(client, "auditor")
    assert client.get("/admin", follow_redirects=False).status_code == 200
    response = client.post(
        "/admin/logout", data={"csrf_token": csrf["X-CSRF-Token"]}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"
    page = client.get("/admin", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/admin/login")
