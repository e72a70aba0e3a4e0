"""The applicant's mobile number is proved with a one-time SMS code before anything else
goes to it, and applications and codes are rate-limited per number and per address."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from poshub.bootstrap import AppState, build_state
from poshub.core.audit import AuditEntry
from poshub.core.db import Database
from poshub.core.settings import Mode, Settings
from poshub.notify.adapters import LogNotifier, MemoryNotifier
from poshub.notify.models import Notification
from poshub.onboarding.models import MobileChallenge
from poshub.web.app import create_app
from tests.factories import bearer, create, payload, prove_mobile, run_worker, upload_required

EN = {"Accept-Language": "en"}
MOBILE = "13905510001"


def _send(client: TestClient, created: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1/applications/{created['id']}/mobile/code",
        headers={**bearer(created["access_token"]), **EN},
    )


def _verify(client: TestClient, created: dict[str, Any], code: str) -> Any:
    return client.post(
        f"/api/v1/applications/{created['id']}/mobile/verify",
        headers={**bearer(created["access_token"]), **EN},
        json={"code": code},
    )


def _submit(client: TestClient, created: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1/applications/{created['id']}/submit",
        headers={**bearer(created["access_token"]), **EN},
    )


def _age_codes(state: AppState, *, seconds: int) -> None:
    """Move every code sent so far ``seconds`` into the past (cool-down, expiry)."""
    with state.db.unit_of_work() as uow:
        for challenge in uow.session.execute(select(MobileChallenge)).scalars():
            challenge.sent_at -= dt.timedelta(seconds=seconds)
            challenge.expires_at -= dt.timedelta(seconds=seconds)
        uow.commit()


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_nothing_goes_to_an_unproved_number_and_it_cannot_be_submitted(
    client: TestClient, notifier: MemoryNotifier
) -> None:
    created = create(client, prove=False)
    upload_required(client, created)
    response = _submit(client, created)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["field"], error["code"]) == ("mobile", "mobile.unverified")
    assert "Confirm your mobile number first" in error["msg"]
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    )
    assert view.json()["mobile_verified"] is False

    # The worker delivers the outbox: the tracking link is not among it.
    run_worker(client)
    assert notifier.sent == []

    response = _send(client, created)
    assert response.status_code == 202, response.text
    assert response.json()["mobile_masked"] == "139****0001"
    assert response.json()["demo_code"] is None  # only a demo shows the code
    code = notifier.last_code(MOBILE)
    assert code is not None
    assert len(code) == 6
    assert code.isdigit()
    assert notifier.sent == [("sms", MOBILE, notifier.sent[0][2])]
    assert code in notifier.sent[0][2]

    response = _verify(client, created, f"{code[:3]} {code[3:]}")  # spaces as typed
    assert response.status_code == 200, response.text
    assert response.json()["mobile_verified"] is True
    run_worker(client)
    assert created["tracking_number"] in notifier.sent[-1][2]  # now the tracking link
    assert "/apply/track/" in notifier.sent[-1][2]
    assert _submit(client, created).status_code == 200

    # Proved once is proved: asking again is a conflict, not another SMS.
    response = _send(client, created)
    assert response.status_code == 409
    assert response.json()["error"] == "mobile_already_verified"


def test_a_changed_number_must_be_proved_again_and_hears_nothing_before(
    client: TestClient, notifier: MemoryNotifier
) -> None:
    created = create(client)
    run_worker(client)
    before = len(notifier.sent)
    response = client.patch(
        f"/api/v1/applications/{created['id']}",
        headers=bearer(created["access_token"]),
        json={"mobile": "13800000002"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["mobile_verified"] is False
    upload_required(client, created)
    response = _submit(client, created)
    assert response.status_code == 422
    assert [e["code"] for e in response.json()["detail"]] == ["mobile.unverified"]
    run_worker(client)
    assert len(notifier.sent) == before
    # A code sent to the old number does not prove the new one.
    response = _verify(client, created, "123456")
    assert response.status_code == 409
    assert response.json()["error"] == "mobile_code.none"
    prove_mobile(client, created)
    assert _submit(client, created).status_code == 200


def test_wrong_codes_are_counted_and_the_last_attempt_kills_the_code(
    client: TestClient, state: AppState, notifier: MemoryNotifier
) -> None:
    created = create(client, prove=False)
    assert _send(client, created).status_code == 202
    code = notifier.last_code(MOBILE)
    assert code is not None

    response = _verify(client, created, "12345")
    assert response.status_code == 422
    assert response.json()["detail"][0]["code"] == "mobile_code.format"
    for left in (4, 3, 2, 1):
        response = _verify(client, created, _wrong(code))
        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert (error["field"], error["code"]) == ("code", "mobile_code.wrong")
        assert f"{left} attempts left" in error["msg"]
    response = _verify(client, created, _wrong(code))
    assert response.status_code == 429
    assert response.json()["error"] == "mobile_code.exhausted"
    # The right code no longer helps: the code is dead.
    response = _verify(client, created, code)
    assert response.status_code == 429
    assert "Ask for a new one" in response.json()["message"]

    _age_codes(state, seconds=120)
    assert _send(client, created).status_code == 202
    fresh = notifier.last_code(MOBILE)
    assert fresh is not None
    assert _verify(client, created, fresh).status_code == 200


def test_an_expired_code_is_refused(
    client: TestClient, state: AppState, notifier: MemoryNotifier
) -> None:
    created = create(client, prove=False)
    assert _send(client, created).status_code == 202
    code = notifier.last_code(MOBILE)
    assert code is not None
    _age_codes(state, seconds=10 * 60 + 1)
    response = _verify(client, created, code)
    assert response.status_code == 422
    assert response.json()["detail"][0]["code"] == "mobile_code.expired"
    assert "expired" in response.json()["detail"][0]["msg"]


def test_resend_cool_down_and_codes_per_number_and_per_address_are_limited(
    client: TestClient, state: AppState, settings: Settings
) -> None:
    created = create(client, prove=False)
    assert _send(client, created).status_code == 202
    response = _send(client, created)
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited.code_resend"
    assert "Wait" in response.json()["message"]
    assert 0 < int(response.headers["Retry-After"]) <= 60

    for _ in range(4):  # five codes to one number in 24 hours
        _age_codes(state, seconds=61)
        assert _send(client, created).status_code == 202
    _age_codes(state, seconds=61)
    response = _send(client, created)
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited.codes_per_mobile"
    assert response.json()["message"] == (
        "Too many codes sent to 139****0001: at most 5 in 24 hours. Try again tomorrow."
    )

    # Per source address: other numbers, the same address.
    settings.mobile_codes_per_address_per_day = 6
    other = create(client, prove=False, mobile="13800000002")
    assert _send(client, other).status_code == 202
    third = create(client, prove=False, mobile="13700000003")
    response = _send(client, third)
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited.codes_per_address"
    assert "network address" in response.json()["message"]


def test_applications_per_mobile_number_are_limited(client: TestClient) -> None:
    for _ in range(5):
        create(client, prove=False)
    response = client.post("/api/v1/applications", json=payload(), headers=EN)
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited.applications_per_mobile"
    assert response.json()["message"] == (
        "Too many applications with the mobile number 139****0001: at most 5 in 24 hours."
    )
    # Another number from the same address is still welcome.
    assert create(client, prove=False, mobile="13800000002")["status"] == "draft"


def test_applications_per_source_address_are_limited(
    client: TestClient, settings: Settings
) -> None:
    settings.applications_per_address_per_day = 3
    for mobile in ("13800000002", "13700000003", "13600000004"):
        create(client, prove=False, mobile=mobile)
    response = client.post("/api/v1/applications", json=payload(mobile="13500000005"), headers=EN)
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited.applications_per_address"
    assert "from your network address" in response.json()["message"]
    assert "at most 3 in 24 hours" in response.json()["message"]


def test_the_demo_shows_the_code_since_no_sms_leaves_it(
    client: TestClient, settings: Settings, notifier: MemoryNotifier
) -> None:
    settings.mode = Mode.DEMO
    created = create(client, prove=False)
    response = _send(client, created)
    assert response.json()["demo_code"] == notifier.last_code(MOBILE)


class _Tee:
    """The shipped log adapter, plus a memory so the test can read the code."""

    name = "tee"

    def __init__(self) -> None:
        self.log, self.memory = LogNotifier(), MemoryNotifier()

    def send(self, channel: str, recipient: str, text: str, *, secret: str | None = None) -> None:
        self.log.send(channel, recipient, text, secret=secret)
        self.memory.send(channel, recipient, text, secret=secret)


@pytest.fixture
def logging_client(settings: Settings, database: Database, state: AppState) -> Iterator[Any]:
    tee = _Tee()
    logged_state = build_state(settings, database=database, notifier=tee)
    with TestClient(create_app(logged_state), base_url="http://testserver") as client:
        yield client, tee, logged_state


def test_the_code_is_kept_only_hashed_and_never_logged_audited_or_queued(
    logging_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, tee, state = logging_client
    caplog.set_level(logging.DEBUG)
    created = create(client, prove=False)
    assert _send(client, created).status_code == 202
    code = tee.memory.last_code(MOBILE)
    assert code is not None
    assert _verify(client, created, _wrong(code)).status_code == 422
    assert _verify(client, created, code).status_code == 200

    assert "[code withheld]" in caplog.text
    assert code not in caplog.text
    with state.db.unit_of_work(read_only=True) as uow:
        [challenge] = uow.session.execute(select(MobileChallenge)).scalars().all()
        stored = [challenge.code_hash, challenge.nonce, challenge.mobile, challenge.source_address]
        assert len(challenge.code_hash) == 64
        assert code not in "".join(stored)
        audit = [
            (entry.action, json.dumps(entry.details))
            for entry in uow.session.execute(select(AuditEntry)).scalars()
        ]
        queued = [json.dumps(n.params) for n in uow.session.execute(select(Notification)).scalars()]
    actions = [action for action, _ in audit]
    assert "application.mobile_code_sent" in actions
    assert "application.mobile_code_wrong" in actions
    assert "application.mobile_verified" in actions
    assert all(code not in details for _, details in audit)
    assert all(code not in params for params in queued)
