"""The applicant's contract page: review, download, sign from the tracking link."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import approved_merchant, generate_contract, sha256_of


def _open_tracking(client: TestClient, created: dict[str, Any]) -> None:
    page = client.get("/apply/track")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    response = client.post(
        "/apply/track",
        data={
            "csrf_token": token.group(1),
            "tracking_number": created["tracking_number"],
            "access_token": created["access_token"],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_applicant_reviews_and_signs_the_contract(client: TestClient) -> None:
    created, mid = approved_merchant(client)
    tracking = created["tracking_number"]
    _open_tracking(client, created)
    assert client.get(f"/apply/track/{tracking}/contract").status_code == 404  # not ready yet
    assert 'id="contract"' not in client.get(f"/apply/track/{tracking}").text

    contract = generate_contract(client, mid)
    page = client.get(f"/apply/track/{tracking}?lang=en")
    assert 'id="contract"' in page.text
    assert "Review and sign the contract" in page.text

    page = client.get(f"/apply/track/{tracking}/contract?lang=en")
    assert page.status_code == 200
    assert contract["contract_number"] in page.text
    assert contract["pdf_sha256"] in page.text
    assert '<article class="contract' in page.text
    assert 'id="sign-form"' in page.text
    pdf = client.get(f"/apply/track/{tracking}/contract/pdf")
    assert sha256_of(pdf.content) == contract["pdf_sha256"]

    # The wrong name is refused on the page, with its reason; nothing is signed.
    response = client.post(
        f"/apply/track/{tracking}/contract/sign?lang=en",
        data={
            "csrf_token": _csrf(page.text),
            "signer_name": "王五",
            "agree": "yes",
            "pdf_sha256": contract["pdf_sha256"],
        },
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert "Sign with the legal name on the application." in response.text
    assert 'id="sign-form"' in response.text

    # Without the CSRF token: refused.
    response = client.post(
        f"/apply/track/{tracking}/contract/sign",
        data={"signer_name": "陈明", "agree": "yes", "pdf_sha256": contract["pdf_sha256"]},
        follow_redirects=False,
    )
    assert response.status_code == 403

    response = client.post(
        f"/apply/track/{tracking}/contract/sign?lang=en",
        data={
            "csrf_token": _csrf(page.text),
            "signer_name": "陈明",
            "agree": "yes",
            "pdf_sha256": contract["pdf_sha256"],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get(f"/apply/track/{tracking}/contract?lang=en")
    assert 'id="sign-form"' not in page.text
    assert 'id="signed"' in page.text
    assert "陈明" in page.text
    assert "waiting for the acquirer" in page.text


def test_contract_page_needs_the_applicants_credential(client: TestClient) -> None:
    created, mid = approved_merchant(client)
    generate_contract(client, mid)
    client.cookies.clear()
    response = client.get(
        f"/apply/track/{created['tracking_number']}/contract", follow_redirects=False
    )
    assert response.status_code in (401, 303)
    other, _ = approved_merchant(client)
    client.cookies.clear()
    _open_tracking(client, other)
    response = client.get(f"/apply/track/{created['tracking_number']}/contract")
    assert response.status_code == 404
