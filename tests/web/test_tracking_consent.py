"""The consent panel of the applicant's tracking page: an applicant who did not tick the
verification consent on the form gives it there (or withdraws a consent) until the decision,
and the submit area says what is missing."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from poshub.onboarding.consent import PRIVACY_NOTICE_VERSION
from tests.factories import approved_merchant, bearer, create, upload_required

PROVIDER_MISSING = "Please consent to sending your name, ID number, account number and mobile"
DECIDED = "consents can no longer be changed here"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _open(client: TestClient, created: dict[str, Any]) -> str:
    """Log in to the tracking page with the access code; return the page's CSRF token."""
    response = client.post(
        "/apply/track",
        data={
            "csrf_token": _csrf(client.get("/apply/track").text),
            "tracking_number": created["tracking_number"],
            "access_token": created["access_token"],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    return _csrf(_page(client, created))


def _page(client: TestClient, created: dict[str, Any]) -> str:
    response = client.get(f"/apply/track/{created['tracking_number']}?lang=en")
    assert response.status_code == 200
    text: str = response.text
    return text


def _consents(client: TestClient, created: dict[str, Any]) -> dict[str, dict[str, Any]]:
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    ).json()
    return {c["kind"]: c for c in view["consents"]}


def _status(client: TestClient, created: dict[str, Any]) -> str:
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    ).json()
    status: str = view["status"]
    return status


def _draft_without_provider_consent(client: TestClient) -> dict[str, Any]:
    created = create(
        client,
        consents={
            "notice_version": PRIVACY_NOTICE_VERSION,
            "privacy_notice": True,
            "verification_provider": False,
        },
    )
    upload_required(client, created)
    return created


def test_missing_consent_is_given_on_the_tracking_page_then_submission_works(
    client: TestClient,
) -> None:
    created = _draft_without_provider_consent(client)
    csrf = _open(client, created)
    base = f"/apply/track/{created['tracking_number']}"

    page = _page(client, created)
    assert 'id="consents"' in page
    assert 'id="consent-verification_provider"' in page
    assert "not given" in page
    assert 'id="submit-missing-consents"' in page  # the submit area says what is missing
    assert PROVIDER_MISSING in page
    assert 'id="give-consent_verification_provider"' in page
    assert 'id="give-consent_privacy_notice"' not in page  # already in force
    assert "(version 2026-12)" in page  # the notice is on the page

    refused = client.post(f"{base}/submit?lang=en", data={"csrf_token": csrf})
    assert refused.status_code == 422
    assert PROVIDER_MISSING in refused.text
    assert _status(client, created) == "draft"

    # Not ticked: nothing recorded, the page says so.
    empty = client.post(
        f"{base}/consents?lang=en",
        data={"csrf_token": csrf, "notice_version": PRIVACY_NOTICE_VERSION},
    )
    assert empty.status_code == 422
    assert "Tick at least one consent to give it." in empty.text
    # Given under a notice the page did not show: refused, naming the current one.
    stale = client.post(
        f"{base}/consents?lang=en",
        data={
            "csrf_token": csrf,
            "notice_version": "2020-01",
            "consent_verification_provider": "on",
        },
    )
    assert stale.status_code == 422
    assert f"now version {PRIVACY_NOTICE_VERSION}" in stale.text
    # Without the form's CSRF token: refused.
    forged = client.post(
        f"{base}/consents?lang=en",
        data={"notice_version": PRIVACY_NOTICE_VERSION, "consent_verification_provider": "on"},
    )
    assert forged.status_code == 403
    assert not _consents(client, created)["verification_provider"]["granted"]

    given = client.post(
        f"{base}/consents?lang=en",
        data={
            "csrf_token": csrf,
            "notice_version": PRIVACY_NOTICE_VERSION,
            "consent_verification_provider": "on",
        },
        follow_redirects=False,
    )
    assert given.status_code == 303
    assert given.headers["location"].endswith("#consents")
    state = _consents(client, created)["verification_provider"]
    assert state["granted"]
    assert state["notice_version"] == PRIVACY_NOTICE_VERSION
    page = _page(client, created)
    assert 'id="submit-missing-consents"' not in page
    assert f"under notice version {PRIVACY_NOTICE_VERSION}" in page

    submitted = client.post(f"{base}/submit", data={"csrf_token": csrf}, follow_redirects=False)
    assert submitted.status_code == 303, submitted.text
    assert _status(client, created) == "submitted"


def test_a_consent_withdrawn_on_the_page_stops_submission_until_given_again(
    client: TestClient,
) -> None:
    created = create(client)
    upload_required(client, created)
    csrf = _open(client, created)
    base = f"/apply/track/{created['tracking_number']}"
    assert 'id="consent-withdraw-verification_provider"' in _page(client, created)

    unknown = client.post(
        f"{base}/consents/withdraw?lang=en", data={"csrf_token": csrf, "kind": "marketing"}
    )
    assert unknown.status_code == 422
    assert "Choose which consent to withdraw." in unknown.text

    withdrawn = client.post(
        f"{base}/consents/withdraw",
        data={"csrf_token": csrf, "kind": "verification_provider"},
        follow_redirects=False,
    )
    assert withdrawn.status_code == 303
    assert not _consents(client, created)["verification_provider"]["granted"]
    page = _page(client, created)
    assert "withdrawn on" in page
    assert 'id="consent-withdraw-verification_provider"' not in page

    again = client.post(
        f"{base}/consents/withdraw?lang=en",
        data={"csrf_token": csrf, "kind": "verification_provider"},
    )
    assert again.status_code == 409
    assert "nothing to withdraw" in again.text

    refused = client.post(f"{base}/submit?lang=en", data={"csrf_token": csrf})
    assert refused.status_code == 422
    assert PROVIDER_MISSING in refused.text
    assert _status(client, created) == "draft"


def test_withdrawal_after_the_decision_is_refused_with_the_reason(client: TestClient) -> None:
    created, _mid = approved_merchant(client)
    csrf = _open(client, created)
    base = f"/apply/track/{created['tracking_number']}"

    page = _page(client, created)
    assert 'id="consent-closed"' in page
    assert 'id="consent-withdraw-verification_provider"' not in page
    assert 'id="consent-give"' not in page

    refused = client.post(
        f"{base}/consents/withdraw?lang=en",
        data={"csrf_token": csrf, "kind": "verification_provider"},
    )
    assert refused.status_code == 409
    assert DECIDED in refused.text
    assert "close the merchant relationship" in refused.text
    assert _consents(client, created)["verification_provider"]["granted"]
