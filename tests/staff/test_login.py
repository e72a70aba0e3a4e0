"""Staff login: lock-out after repeated failures, sessions that expire, logout.

The service takes an explicit ``now``, so the 30-minute lock and the idle limit are
tested without waiting; the HTTP tests check what a person at the login form sees.
"""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.core import limits
from poshub.core.errors import Unauthorized
from poshub.staff import service as staff_service
from poshub.staff.service import INVALID_LOGIN, LOCKED, Principal
from tests.factories import STAFF, login

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
LOCK = dt.timedelta(minutes=limits.LOCKOUT_MINUTES)
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


def fail_times(state: AppState, count: int, start: dt.datetime) -> dt.datetime:
    """``count`` wrong passwords a second apart, all refused as wrong; returns the last time."""
    now = start
    for i in range(count):
        now = start + dt.timedelta(seconds=i)
        error = refused(attempt(state, WRONG, now), "invalid_login")
        assert error.message == INVALID_LOGIN
    return now


# --- Lock-out -----------------------------------------------------------------------------


def test_tenth_wrong_password_locks_for_thirty_minutes(state: AppState) -> None:
    last = fail_times(state, limits.LOGIN_FAILURES_BEFORE_LOCKOUT - 1, T0)
    tenth = last + dt.timedelta(seconds=1)
    error = refused(attempt(state, WRONG, tenth), "locked")
    until = tenth + LOCK
    assert error.message == LOCKED
    assert error.params == {"until": "2025-03-03 17:30"}  # Asia/Shanghai, as staff read it

    # Even the right password is refused until the lock ends, with the same answer; a
    # wrong one during the lock does not extend it.
    for now in (tenth + dt.timedelta(seconds=1), tenth + LOCK / 2, until - dt.timedelta(seconds=1)):
        assert refused(attempt(state, RIGHT, now), "locked").params == error.params
        assert refused(attempt(state, WRONG, now), "locked").params == error.params

    assert isinstance(attempt(state, RIGHT, until), staff_service.LoginResult)


def test_a_lock_ends_with_a_fresh_count(state: AppState) -> None:
    fail_times(state, limits.LOGIN_FAILURES_BEFORE_LOCKOUT - 1, T0)
    tenth = T0 + dt.timedelta(seconds=limits.LOGIN_FAILURES_BEFORE_LOCKOUT)
    refused(attempt(state, WRONG, tenth), "locked")
    # After the lock, one wrong password is one failure, not an immediate new lock.
    after = tenth + LOCK
    refused(attempt(state, WRONG, after), "invalid_login")
    result = attempt(state, RIGHT, after + dt.timedelta(seconds=1))
    assert isinstance(result, staff_service.LoginResult)


def test_success_resets_the_failure_count(state: AppState) -> None:
    nine = limits.LOGIN_FAILURES_BEFORE_LOCKOUT - 1
    last = fail_times(state, nine, T0)
    assert isinstance(
        attempt(state, RIGHT, last + dt.timedelta(seconds=1)), staff_service.LoginResult
    )
    # Nine more failures are not ten in a row: still just "wrong password".
    last = fail_times(state, nine, last + dt.timedelta(seconds=2))
    refused(attempt(state, WRONG, last + dt.timedelta(seconds=1)), "locked")


def test_lock_is_per_account(state: AppState) -> None:
    fail_times(state, limits.LOGIN_FAILURES_BEFORE_LOCKOUT - 1, T0)
    ninth_plus = T0 + dt.timedelta(minutes=1)
    refused(attempt(state, WRONG, ninth_plus), "locked")
    other = attempt(state, STAFF["reviewer2"][0], ninth_plus, username="reviewer2")
    assert isinstance(other, staff_service.LoginResult)


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(state: AppState) -> None:
    wrong = refused(attempt(state, WRONG, T0), "invalid_login")
    unknown = refused(attempt(state, WRONG, T0, username="nobody"), "invalid_login")
    assert (unknown.message, unknown.params, unknown.status_code) == (
        wrong.message,
        wrong.params,
        wrong.status_code,
    )
    # Guessing user names locks nothing and never switches to the "locked" answer.
    for i in range(limits.LOGIN_FAILURES_BEFORE_LOCKOUT + 1):
        refused(
            attempt(state, WRONG, T0 + dt.timedelta(seconds=i), username="nobody"), "invalid_login"
        )


def test_unknown_user_and_wrong_password_look_the_same_over_http(client: TestClient) -> None:
    headers = {"Accept-Language": "en"}
    wrong = client.post(
        "/api/v1/auth/login", json={"username": "reviewer", "password": WRONG}, headers=headers
    )
    unknown = client.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": WRONG}, headers=headers
    )
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "error": "invalid_login",
            "message": "Wrong user name or password.",
        }
    )
    assert "poshub_session" not in wrong.cookies


def test_lock_out_over_http(client: TestClient) -> None:
    """The API and the login page both say the account is locked, and refuse the password."""
    headers = {"Accept-Language": "en"}
    body = {"username": "reviewer", "password": WRONG}
    answers = [
        client.post("/api/v1/auth/login", json=body, headers=headers)
        for _ in range(limits.LOGIN_FAILURES_BEFORE_LOCKOUT)
    ]
    assert [a.status_code for a in answers] == [401] * limits.LOGIN_FAILURES_BEFORE_LOCKOUT
    assert [a.json()["error"] for a in answers] == ["invalid_login"] * (
        limits.LOGIN_FAILURES_BEFORE_LOCKOUT - 1
    ) + ["locked"]
    assert (
        answers[-1]
        .json()["message"]
        .startswith("Too many failed attempts: this account is locked until ")
    )

    right = client.post(
        "/api/v1/auth/login", json={"username": "reviewer", "password": RIGHT}, headers=headers
    )
    assert right.status_code == 401
    assert right.json() == answers[-1].json()

    form = client.get("/admin/login?lang=en")
    csrf = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    page = client.post(
        "/admin/login?lang=en",
        data={"username": "reviewer", "password": RIGHT, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert page.status_code == 401
    assert "Too many failed attempts" in page.text
    assert "poshub_session" not in page.cookies


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
