"""The application form asks for what compliance needs (ID card validity, the account
type, an agent, beneficial owners) and shows each refusal next to its field."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient

from poshub.onboarding.consent import PRIVACY_NOTICE_VERSION
from tests.factories import card_number, credit_code, resident_id, unit_account_number


def _form(**fields: str) -> dict[str, str]:
    data = {
        "applicant_kind": "enterprise",
        "legal_name": "陈明",
        "id_number": resident_id(),
        "id_expiry": (dt.date.today() + dt.timedelta(days=3650)).isoformat(),
        "mobile": "13905510001",
        "business_name": "合肥蜀山明辉商贸有限公司",
        "uscc": credit_code(prefix="91"),
        "licence_long_term": "on",
        "established_on": "2018-01-01",
        "mcc": "5411",
        "expected_monthly_volume_yuan": "300000",
        "address.province": "安徽省",
        "address.city": "合肥市",
        "address.district": "蜀山区",
        "address.detail": "长江西路 100 号",
        "settlement_account.bank_name": "徽商银行合肥蜀山支行",
        "settlement_account.account_name": "合肥蜀山明辉商贸有限公司",
        "settlement_account.account_number": unit_account_number(),
        "settlement_account.account_type": "unit",
        "beneficial_owners[0].name": "赵建国",
        "beneficial_owners[0].id_number": resident_id(dt.date(1970, 5, 1)),
        "beneficial_owners[0].basis": "share",
        "beneficial_owners[0].share_percent": "60",
        "count.SMART-A8": "2",
        "notice_version": PRIVACY_NOTICE_VERSION,
        "consent_privacy_notice": "on",
        "consent_verification_provider": "on",
    }
    data.update(fields)
    return data


def _post(client: TestClient, data: dict[str, str]) -> str:
    client.get("/lang/en", follow_redirects=False)
    page = client.get("/apply")
    assert page.status_code == 200
    for name in (
        "id_expiry",
        "id_long_term",
        "settlement_account.account_type",
        "applied_by_agent",
    ):
        assert f'name="{name}"' in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    response = client.post(
        "/apply", data={**data, "csrf_token": token.group(1)}, headers={"Accept-Language": "en"}
    )
    return f"{response.status_code} {response.text}"


def test_an_enterprise_applies_with_its_unit_account_and_owners(client: TestClient) -> None:
    result = _post(client, _form())
    assert result.startswith("200"), result[:2000]
    assert 'id="access-token"' in result


def test_form_refusals_are_shown_next_to_their_fields(client: TestClient) -> None:
    result = _post(
        client,
        _form(
            **{
                "id_expiry": "2001-01-01",
                "settlement_account.account_type": "personal",
                "settlement_account.account_number": card_number(),
                "mcc": "7995",
                "beneficial_owners[0].share_percent": "10",
            }
        ),
    )
    assert result.startswith("422"), result[:2000]
    for message in (
        "The ID card expired on 2001-01-01",
        "An enterprise settles only to a unit account",
        "This is a bank card number",
        "We do not accept merchants of category 7995",
        "An owner by shares holds at least 25%",
    ):
        assert message in result, message
