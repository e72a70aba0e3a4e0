"""The applicant's tracking page: corrections while a draft or when information was requested."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.factories import bearer, card_number, create, wrong_check_digit


def _open(client: TestClient, created: dict[str, str]) -> str:
    """Log in to the tracking page as the applicant; return the page's CSRF token."""
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
    page = client.get(f"/apply/track/{created['tracking_number']}?lang=en")
    assert 'id="edit-details"' in page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def test_applicant_corrects_business_name_and_account(client: TestClient) -> None:
    created = create(client)
    csrf = _open(client, created)
    new_account = card_number("621700000000123456")
    response = client.post(
        f"/apply/track/{created['tracking_number']}/edit?lang=en",
        data={
            "csrf_token": csrf,
            "business_name": "合肥蜀山明辉生活超市",
            "account_number": new_account,
            "bank_name": "",
            "account_name": "",
            "mobile": "",
            "address_detail": "",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    ).json()
    assert view["business_name"] == "合肥蜀山明辉生活超市"
    assert view["settlement_account"]["account_number_masked"].endswith(new_account[-4:])
    assert view["settlement_account"]["bank_name"] == "徽商银行合肥蜀山支行"  # unchanged


def test_a_bad_correction_is_refused_with_its_reason_and_nothing_changes(
    client: TestClient,
) -> None:
    created = create(client)
    csrf = _open(client, created)
    bad = wrong_check_digit(card_number("621700000000123456"))
    response = client.post(
        f"/apply/track/{created['tracking_number']}/edit?lang=en",
        data={"csrf_token": csrf, "business_name": "新名字", "account_number": bad},
    )
    assert response.status_code == 422
    assert "This bank card number is not valid" in response.text
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    ).json()
    assert view["business_name"] == "合肥蜀山明辉便利超市"

    response = client.post(
        f"/apply/track/{created['tracking_number']}/edit?lang=en",
        data={"csrf_token": csrf, "bank_name": "工商银行"},
    )
    assert response.status_code == 422
    assert "type the full account number again" in response.text
