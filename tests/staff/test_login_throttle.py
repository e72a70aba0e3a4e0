"""Nobody can lock a staff member out by guessing.

Failures are counted per (source address, account) and, more loosely, per source address;
never per account alone. Every refusal (unknown user, wrong password, paused address)
gets the same answer after the same work: one argon2 verification. Password hashing is
capped per process, so a flood of logins cannot take the threads other requests need.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.core import limits
from poshub.core.audit import Actor
from poshub.core.db import utcnow
from poshub.staff import passwords
from poshub.staff import repository as staff_repository
from poshub.staff import service as staff_service
from poshub.web.app import create_app
from tests.factories import STAFF

RIGHT = STAFF["reviewer"][0]
WRONG = "Not-the-password-1!"
ATTACKER = "198.51.100.7"
OWNER = "10.1.2.3"
PAIR_MAX = limits.LOGIN_FAILURES_PER_SOURCE_ACCOUNT_MAX
SOURCE_MAX = limits.LOGIN_FAILURES_PER_SOURCE_MAX


@pytest.fixture
def clients(state: AppState) -> Iterator[dict[str, TestClient]]:
    """One client per address: the attacker's and the real user's."""
    app = create_app(state)
    with (
        TestClient(app, client=(ATTACKER, 40000)) as attacker,
        TestClient(app, client=(OWNER, 40001)) as owner,
    ):
        yield {"attacker": attacker, "owner": owner}


def log_in(client: TestClient, password: str, username: str = "reviewer") -> Any:
    client.cookies.clear()
    return client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        headers={"Accept-Language": "en"},
    )


def test_guessing_from_one_address_does_not_lock_the_owner_out(
    clients: dict[str, TestClient],
) -> None:
    attacker, owner = clients["attacker"], clients["owner"]
    answers = [log_in(attacker, WRONG) for _ in range(PAIR_MAX * 3)]
    assert {a.status_code for a in answers} == {401}
    # Before, during and after the pause: one answer, word for word.
    assert len({a.text for a in answers}) == 1
    assert answers[0].json()["error"] == "invalid_login"

    # The owner, from their own address, logs in at once.
    assert log_in(owner, RIGHT).status_code == 200
    # The guesser's address is paused for this account, even with the right password,
    # and the answer says nothing more than a wrong password's.
    paused = log_in(attacker, RIGHT)
    assert (paused.status_code, paused.text) == (401, answers[0].text)
    # ... but not for another account it has not been guessing.
    assert log_in(attacker, STAFF["reviewer2"][0], username="reviewer2").status_code == 200


def test_the_pause_ends_and_counting_starts_afresh(
    clients: dict[str, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    attacker = clients["attacker"]
    start = utcnow()
    monkeypatch.setattr(staff_service, "utcnow", lambda: start)
    for _ in range(PAIR_MAX):
        log_in(attacker, WRONG)
    assert log_in(attacker, RIGHT).status_code == 401

    pause = dt.timedelta(minutes=limits.LOGIN_THROTTLE_MINUTES)
    monkeypatch.setattr(staff_service, "utcnow", lambda: start + pause - dt.timedelta(seconds=1))
    assert log_in(attacker, RIGHT).status_code == 401
    monkeypatch.setattr(staff_service, "utcnow", lambda: start + pause)
    assert log_in(attacker, WRONG).status_code == 401  # one failure, not a new pause
    assert log_in(attacker, RIGHT).status_code == 200


def test_one_address_guessing_many_names_is_paused_for_every_account(
    clients: dict[str, TestClient],
) -> None:
    attacker, owner = clients["attacker"], clients["owner"]
    for i in range(SOURCE_MAX):
        assert log_in(attacker, WRONG, username=f"guess{i}").status_code == 401
    assert log_in(attacker, RIGHT).status_code == 401
    assert log_in(owner, RIGHT).status_code == 200


def test_a_pause_is_audited_without_the_password(
    clients: dict[str, TestClient], state: AppState
) -> None:
    for _ in range(PAIR_MAX):
        log_in(clients["attacker"], WRONG)
    owner = clients["owner"]
    owner.cookies.clear()
    owner.post("/api/v1/auth/login", json={"username": "auditor", "password": STAFF["auditor"][0]})
    entries = owner.get("/api/v1/audit", params={"entity_id": "reviewer"}).json()
    paused = [e for e in entries if e["action"] == "staff.login_throttled"]
    assert len(paused) == 1
    assert paused[0]["details"] == {"client_ip": ATTACKER, "scope": "pair"}
    assert WRONG not in str(entries)


def test_every_refusal_does_the_same_work(
    clients: dict[str, TestClient], monkeypatch: pytest.MonkeyPatch, state: AppState
) -> None:
    """Timing without a stopwatch: unknown user, wrong password, inactive user and paused
    address each cost exactly one argon2 verification, and answer the same."""
    calls: list[str] = []
    real_verify = passwords.verify_password

    def counting(password_hash: str, password: str) -> bool:
        calls.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    attacker = clients["attacker"]
    with state.db.unit_of_work() as uow:
        staff_service.create_user(
            uow.session,
            username="gone",
            display_name="Gone",
            password="Str0ng-Secret-enog!",
            roles=[],
            actor=Actor.system("tests"),
        )
        user = staff_repository.by_username(uow.session, "gone")
        assert user is not None
        user.active = False
        uow.commit()

    answers = {}
    for case, username, password in [
        ("unknown", "nobody", WRONG),
        ("wrong", "reviewer", WRONG),
        ("inactive", "gone", "Str0ng-Secret-enog!"),
    ]:
        calls.clear()
        answers[case] = log_in(attacker, password, username=username)
        assert len(calls) == 1, case
    assert calls == [passwords.DUMMY_HASH]  # an inactive user is checked like an unknown one

    for _ in range(PAIR_MAX):
        log_in(attacker, WRONG)
    calls.clear()
    answers["paused"] = log_in(attacker, RIGHT)
    assert len(calls) == 1
    assert len({(a.status_code, a.text) for a in answers.values()}) == 1


def test_password_hashing_is_capped_and_logins_over_the_cap_get_503(
    clients: dict[str, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = clients["owner"]
    monkeypatch.setattr(passwords.GATE, "wait_seconds", 0.05)
    with passwords.GATE.slot(), passwords.GATE.slot():  # every slot taken (the cap is 2)
        busy = log_in(owner, "Uncached-password-1!")  # a fresh pair, so argon2 must run
        assert busy.status_code == 503
        assert busy.json() == {
            "error": "busy",
            "message": "Too many logins at once. Try again in a few seconds.",
        }
        # Nothing else waits for hashing: other requests are answered meanwhile.
        assert owner.get("/healthz").status_code == 200
        # A full queue is refused at once rather than made to wait.
        monkeypatch.setattr(passwords.GATE, "waiting_max", 0)
        monkeypatch.setattr(passwords.GATE, "wait_seconds", 60)
        assert log_in(owner, "Uncached-password-2!").status_code == 503
    assert limits.PASSWORD_HASHING_CONCURRENT_MAX == 2
    assert log_in(owner, RIGHT).status_code == 200


def test_the_login_page_gives_the_same_answer(clients: dict[str, TestClient]) -> None:
    attacker = clients["attacker"]
    for _ in range(PAIR_MAX):
        log_in(attacker, WRONG)
    form = attacker.get("/admin/login?lang=en")
    csrf = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    page = attacker.post(
        "/admin/login?lang=en",
        data={"username": "reviewer", "password": RIGHT, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert page.status_code == 401
    assert "Wrong user name or password." in page.text
    assert "locked" not in page.text
    assert "poshub_session" not in page.cookies
