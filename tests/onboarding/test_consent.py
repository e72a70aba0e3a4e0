"""PIPL: the privacy notice on the form, two separate consents, nothing sent to the
verification provider without the second, withdrawal before the decision."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from poshub.bootstrap import AppState
from poshub.onboarding.consent import PRIVACY_NOTICE_VERSION
from poshub.onboarding.models import ApplicationConsent
from poshub.onboarding.verification import VerificationResult
from tests.factories import bearer, create, login, payload, run_worker, upload_required

EN = {"Accept-Language": "en"}
NO_VERIFICATION = {
    "notice_version": PRIVACY_NOTICE_VERSION,
    "privacy_notice": True,
    "verification_provider": False,
}


class ProviderCalls:
    """Counts what reaches the verification provider."""

    def __init__(self, state: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        verifier = state.onboarding.verifier
        identity, bank_card = verifier.verify_identity, verifier.verify_bank_card

        def verify_identity(*args: Any) -> VerificationResult:
            self.calls.append("identity")
            return identity(*args)

        def verify_bank_card(*args: Any) -> VerificationResult:
            self.calls.append("bank_card")
            return bank_card(*args)

        monkeypatch.setattr(verifier, "verify_identity", verify_identity)
        monkeypatch.setattr(verifier, "verify_bank_card", verify_bank_card)


@pytest.fixture
def provider(state: AppState, monkeypatch: pytest.MonkeyPatch) -> ProviderCalls:
    return ProviderCalls(state, monkeypatch)


def _fields(response: Any) -> set[tuple[str, str]]:
    return {(d["field"], d["code"]) for d in response.json()["detail"]}


def _verification_checks(client: TestClient, application_id: str) -> dict[str, tuple[str, str]]:
    login(client, "reviewer")
    detail = client.get(f"/api/v1/review/applications/{application_id}").json()
    return {
        c["code"]: (c["status"], c["detail_code"])
        for c in detail["checks"]
        if c["code"] in ("real_name", "bank_card_four")
    }


def test_the_form_shows_the_versioned_notice_and_asks_two_consents_separately(
    client: TestClient,
) -> None:
    zh = client.get("/apply").text
    assert f"版本 {PRIVACY_NOTICE_VERSION}" in zh
    assert "实名认证及银行卡四要素核验服务商" in zh
    assert zh.count('type="checkbox" name="consent_') == 2
    assert 'name="consent_privacy_notice"' in zh
    assert 'name="consent_verification_provider"' in zh
    assert f'name="notice_version" value="{PRIVACY_NOTICE_VERSION}"' in zh
    en = client.get("/apply", params={"lang": "en"}).text
    assert f"(version {PRIVACY_NOTICE_VERSION})" in en
    assert "four-element verification provider" in en
    notice = client.get("/api/v1/privacy-notice", headers=EN).json()
    assert notice["version"] == PRIVACY_NOTICE_VERSION
    assert "Retention" in notice["text"]


def test_the_form_without_agreement_to_the_notice_is_refused_next_to_the_checkbox(
    client: TestClient, state: AppState
) -> None:
    page = client.get("/apply", params={"lang": "en"}).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    data = payload()
    form = {
        "csrf_token": token.group(1),
        "notice_version": PRIVACY_NOTICE_VERSION,
        "applicant_kind": data["applicant_kind"],
        "legal_name": data["legal_name"],
        "id_number": data["id_number"],
        "mobile": data["mobile"],
        "business_name": data["business_name"],
        "uscc": data["uscc"],
        "licence_expiry": data["licence_expiry"],
        "mcc": data["mcc"],
        "expected_monthly_volume_yuan": "300000",
        "consent_verification_provider": "on",
    }
    response = client.post("/apply", data=form)
    assert response.status_code == 422
    consent_label = re.search(
        r'<label class="checkbox consent invalid">.*?name="consent_privacy_notice".*?</label>',
        response.text,
        re.S,
    )
    assert consent_label is not None, "the refusal is shown at the privacy checkbox"
    assert "请阅读个人信息处理告知并勾选同意" in consent_label.group(0)
    with state.db.unit_of_work(read_only=True) as uow:
        assert uow.session.execute(select(ApplicationConsent)).first() is None


def test_the_api_needs_agreement_to_the_current_notice_to_apply(client: TestClient) -> None:
    missing = client.post("/api/v1/applications", json=payload(consents=None), headers=EN)
    assert missing.status_code == 422
    assert ("consents.privacy_notice", "consent.required") in _fields(missing)

    outdated = client.post(
        "/api/v1/applications",
        json=payload(
            consents={"notice_version": "2020-01", "privacy_notice": True},
            mcc="3001",
        ),
        headers=EN,
    )
    assert outdated.status_code == 422
    # Named with every other bad field at once.
    assert {("consents.notice_version", "consent.notice_outdated"), ("mcc", "mcc.unknown")} <= (
        _fields(outdated)
    )


def test_consents_are_recorded_with_kind_version_time_and_source_address(
    client: TestClient, state: AppState
) -> None:
    created = create(client, consents=NO_VERIFICATION)
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    ).json()
    consents = {c["kind"]: c for c in view["consents"]}
    assert consents["privacy_notice"]["granted"] is True
    assert consents["privacy_notice"]["notice_version"] == PRIVACY_NOTICE_VERSION
    assert consents["privacy_notice"]["at"]
    assert consents["verification_provider"]["granted"] is False
    with state.db.unit_of_work(read_only=True) as uow:
        rows = uow.session.execute(select(ApplicationConsent)).scalars().all()
        assert [(r.kind, r.action, r.notice_version, r.source_address) for r in rows] == [
            ("privacy_notice", "granted", PRIVACY_NOTICE_VERSION, "testclient")
        ]


def test_without_verification_consent_nothing_reaches_the_provider(
    client: TestClient, provider: ProviderCalls
) -> None:
    created = create(client, consents=NO_VERIFICATION)
    headers = bearer(created["access_token"])
    base = f"/api/v1/applications/{created['id']}"
    upload_required(client, created)

    refused = client.post(f"{base}/submit", headers={**headers, **EN})
    assert refused.status_code == 422
    assert ("consents.verification_provider", "consent.required") in _fields(refused)
    assert "privacy_notice" not in str(_fields(refused))
    message = next(
        d["msg"] for d in refused.json()["detail"] if d["field"] == "consents.verification_provider"
    )
    assert "verification provider" in message
    run_worker(client)
    assert provider.calls == []

    given = client.post(
        f"{base}/consents",
        headers=headers,
        json={"notice_version": PRIVACY_NOTICE_VERSION, "verification_provider": True},
    )
    assert given.status_code == 200, given.text
    assert client.post(f"{base}/submit", headers=headers).status_code == 200
    run_worker(client)
    assert sorted(provider.calls) == ["bank_card", "identity"]
    assert _verification_checks(client, created["id"]) == {
        "real_name": ("pass", "verification.match"),
        "bank_card_four": ("pass", "verification.match"),
    }

    # Withdrawn before the decision: recorded, and the checks run again without the provider.
    withdrawn = client.post(
        f"{base}/consents/withdraw", headers=headers, json={"kind": "verification_provider"}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    consents = {c["kind"]: c["granted"] for c in withdrawn.json()["consents"]}
    assert consents == {"privacy_notice": True, "verification_provider": False}
    assert "consent_withdrawn" in [e["kind"] for e in withdrawn.json()["events"]]
    run_worker(client)
    assert sorted(provider.calls) == ["bank_card", "identity"], "no further call"
    assert _verification_checks(client, created["id"]) == {
        "real_name": ("pending", "verification.no_consent"),
        "bank_card_four": ("pending", "verification.no_consent"),
    }
    # A reviewer's explicit re-run does not send it either.
    csrf = login(client, "reviewer")
    review = f"/api/v1/review/applications/{created['id']}"
    assert client.post(f"{review}/claim", headers=csrf).status_code == 200
    rerun = client.post(f"{review}/recheck", headers=csrf)
    assert rerun.status_code in (200, 201), rerun.text
    assert sorted(provider.calls) == ["bank_card", "identity"]


def test_withdrawal_is_refused_when_nothing_is_given_and_after_the_decision(
    client: TestClient,
) -> None:
    created = create(client, consents=NO_VERIFICATION)
    headers = bearer(created["access_token"])
    base = f"/api/v1/applications/{created['id']}"
    nothing = client.post(
        f"{base}/consents/withdraw", headers=headers, json={"kind": "verification_provider"}
    )
    assert nothing.status_code == 409
    assert nothing.json()["error"] == "consent_not_given"
    unknown = client.post(f"{base}/consents/withdraw", headers=headers, json={"kind": "all"})
    assert unknown.status_code == 422

    # The privacy agreement withdrawn: the application cannot be submitted.
    upload_required(client, created)
    assert (
        client.post(
            f"{base}/consents/withdraw", headers=headers, json={"kind": "privacy_notice"}
        ).status_code
        == 200
    )
    refused = client.post(f"{base}/submit", headers=headers)
    assert refused.status_code == 422
    assert {"consents.privacy_notice", "consents.verification_provider"} <= {
        f for f, _ in _fields(refused)
    }


def test_consents_cannot_be_withdrawn_after_approval(client: TestClient) -> None:
    from tests.factories import approved_merchant

    created, _mid = approved_merchant(client)
    response = client.post(
        f"/api/v1/applications/{created['id']}/consents/withdraw",
        headers=bearer(created["access_token"]),
        json={"kind": "verification_provider"},
    )
    assert response.status_code == 409
    assert response.json()["error"] == "consent_after_decision"
