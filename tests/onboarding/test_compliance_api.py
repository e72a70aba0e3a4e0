"""Merchant compliance through the API: who the settlement account may belong to,
prohibited merchant categories, identity data (ID card validity and area code, the credit
code's structure and type), the documents each applicant kind owes, the agent and the
beneficial owners. Every refusal is a 422 naming the field, all fields at once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from stdnum.cn import uscc

from poshub.bootstrap import AppState
from poshub.core import limits
from poshub.core.settings import Settings
from poshub.onboarding.models import Application, BeneficialOwner
from poshub.onboarding.rules import MESSAGES, organization_code_check_digit
from tests.factories import (
    PNG,
    bearer,
    beneficial_owner,
    card_number,
    create,
    create_and_submit,
    credit_code,
    login,
    payload,
    resident_id,
    run_worker,
    unit_account_number,
    upload_required,
    wrong_check_digit,
)

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}
ENTERPRISE = "合肥蜀山明辉商贸有限公司"


def today() -> dt.date:
    return dt.date.today()


def post(client: TestClient, kind: str = "individual_business", **overrides: Any) -> httpx.Response:
    response: httpx.Response = client.post(
        "/api/v1/applications", json=payload(kind, **overrides), headers=EN
    )
    return response


def submit_errors(client: TestClient, created: dict[str, Any]) -> dict[str, str]:
    """field → code of what refuses the submission ({} when it went through)."""
    response = client.post(
        f"/api/v1/applications/{created['id']}/submit",
        headers={**bearer(created["access_token"]), **EN},
    )
    return {} if response.status_code == 200 else errors_of(response)


def errors_of(response: httpx.Response) -> dict[str, str]:
    """field → code of a 422."""
    assert response.status_code == 422, response.text
    return {e["field"]: e["code"] for e in response.json()["detail"]}


def account(**fields: str) -> dict[str, str]:
    base = {"bank_name": "徽商银行合肥蜀山支行", "account_name": ENTERPRISE}
    return {**base, **fields}


def code_with(prefix: str, organization: str = "MA2N0777") -> str:
    body = f"{prefix}340104{organization}{organization_code_check_digit(organization)}"
    return body + uscc.calc_check_digit(body)


# --- Settlement account -------------------------------------------------------------


def test_enterprise_settles_only_to_a_unit_account_in_its_name(client: TestClient) -> None:
    personal = account(account_type="personal", account_number=card_number())
    assert errors_of(post(client, "enterprise", settlement_account=personal)) == {
        "settlement_account.account_type": (
            "settlement_account.account_type.personal_for_enterprise"
        ),
        "settlement_account.account_number": "settlement_account.account_number.card_for_unit",
    }
    card = account(account_type="unit", account_number=card_number("621226020001234567"))
    response = post(client, "enterprise", settlement_account=card)
    assert errors_of(response) == {
        "settlement_account.account_number": "settlement_account.account_number.card_for_unit"
    }
    assert "bank card number" in response.json()["detail"][0]["msg"]
    someone = account(
        account_type="unit", account_number=unit_account_number(), account_name="陈明"
    )
    response = post(client, "enterprise", settlement_account=someone)
    assert errors_of(response) == {
        "settlement_account.account_name": "settlement_account.account_name.not_business"
    }
    assert ENTERPRISE in response.json()["detail"][0]["msg"]
    # Full-width brackets and spaces do not make a different name.
    same = account(
        account_type="unit",
        account_number=unit_account_number(),
        account_name="合肥蜀山明辉商贸\u3000有限公司",
    )
    assert post(client, "enterprise", settlement_account=same).status_code == 201


def test_individual_business_may_use_its_unit_or_the_operators_personal_account(
    client: TestClient,
) -> None:
    operator = account(account_type="personal", account_number=card_number(), account_name="陈明")
    assert post(client, settlement_account=operator).status_code == 201
    unit = account(
        account_type="unit",
        account_number=unit_account_number(),
        account_name="合肥蜀山明辉便利超市",
    )
    created = post(client, settlement_account=unit)
    assert created.status_code == 201
    view = client.get(
        f"/api/v1/applications/{created.json()['id']}",
        headers=bearer(created.json()["access_token"]),
    ).json()
    assert view["settlement_account"]["account_type"] == "unit"
    # A unit account is proved by its opening permit or basic account information.
    assert "account_opening_proof" in {d["kind"] for d in view["required_documents"]}
    stranger = account(account_type="personal", account_number=card_number(), account_name="王五")
    assert errors_of(post(client, settlement_account=stranger)) == {
        "settlement_account.account_name": "settlement_account.account_name.not_holder"
    }
    unit_of_operator = account(
        account_type="unit", account_number=unit_account_number(), account_name="陈明"
    )
    assert errors_of(post(client, settlement_account=unit_of_operator)) == {
        "settlement_account.account_name": "settlement_account.account_name.not_business"
    }


def test_individual_settles_to_their_own_personal_account(client: TestClient) -> None:
    unit = account(account_type="unit", account_number=unit_account_number(), account_name="陈明")
    assert errors_of(post(client, "individual", settlement_account=unit)) == {
        "settlement_account.account_type": "settlement_account.account_type.unit_for_individual"
    }
    shop = account(account_type="personal", account_number=card_number(), account_name="明辉小店")
    assert errors_of(post(client, "individual", settlement_account=shop)) == {
        "settlement_account.account_name": "settlement_account.account_name.not_holder"
    }


def test_the_account_type_is_asked_explicitly(client: TestClient) -> None:
    untyped = {"bank_name": "工商银行", "account_name": "陈明", "account_number": card_number()}
    body = payload(settlement_account=untyped)
    body["settlement_account"].pop("account_type")
    response = client.post("/api/v1/applications", json=body, headers=EN)
    assert errors_of(response) == {"settlement_account.account_type": "missing"}


def test_account_rules_hold_on_update_and_staff_edit(client: TestClient) -> None:
    created = create(client, kind="enterprise")
    url = f"/api/v1/applications/{created['id']}"
    personal = account(account_type="personal", account_number=card_number(), account_name="陈明")
    response = client.patch(
        url, json={"settlement_account": personal}, headers=bearer(created["access_token"])
    )
    assert "settlement_account.account_type" in errors_of(response)

    submitted = create_and_submit(client, kind="enterprise")
    csrf = login(client, "reviewer")
    base = f"/api/v1/review/applications/{submitted['id']}"
    assert client.post(f"{base}/claim", headers=csrf).status_code == 200
    response = client.patch(
        base, headers=csrf, json={"business_name": "另一家有限公司", "reason": "电话核实"}
    )
    assert errors_of(response) == {
        "settlement_account.account_name": "settlement_account.account_name.not_business"
    }


# --- Prohibited merchant categories ----------------------------------------------------


@pytest.mark.parametrize("mcc", ["7995", "7800", "7801", "7802", "6051", "6010", "6011"])
def test_prohibited_mcc_is_refused_with_its_reason(client: TestClient, mcc: str) -> None:
    response = post(client, mcc=mcc)
    assert errors_of(response) == {"mcc": "mcc.prohibited"}
    message = response.json()["detail"][0]["msg"]
    assert mcc in message
    assert limits.PROHIBITED_MCCS[mcc].rstrip(".") in message
    chinese = client.post("/api/v1/applications", json=payload(mcc=mcc), headers=ZH)
    assert "不受理" in chinese.json()["detail"][0]["msg"]


def test_prohibited_mcc_on_update_staff_edit_and_review(
    client: TestClient, settings: Settings, state: AppState
) -> None:
    created = create(client)
    response = client.patch(
        f"/api/v1/applications/{created['id']}",
        json={"mcc": "6011"},
        headers=bearer(created["access_token"]),
    )
    assert errors_of(response) == {"mcc": "mcc.prohibited"}

    submitted = create_and_submit(client)
    csrf = login(client, "reviewer")
    base = f"/api/v1/review/applications/{submitted['id']}"
    assert client.post(f"{base}/claim", headers=csrf).status_code == 200
    response = client.patch(base, headers=csrf, json={"mcc": "7995", "reason": "电话核实"})
    assert errors_of(response) == {"mcc": "mcc.prohibited"}

    # The operator prohibits the category after the application came in (POSHUB_PROHIBITED_MCCS):
    # the review check fails, naming the reason.
    settings.prohibited_mccs = {"5411": "not for this acquirer"}
    assert client.post(f"{base}/recheck", headers=csrf).status_code == 200
    run_worker(client)
    checks = {c["code"]: c for c in client.get(base, headers=EN).json()["checks"]}
    assert checks["mcc_risk"]["status"] == "fail"
    assert checks["mcc_risk"]["detail_code"] == "mcc.prohibited"
    assert "not for this acquirer" in checks["mcc_risk"]["message"]
    # And gambling, no longer on the list, is accepted (high risk, a survey before approval).
    assert post(client, mcc="7995").status_code == 201


def test_prohibited_mccs_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSHUB_PROHIBITED_MCCS", "7995, 5813")
    settings = Settings()
    assert set(settings.prohibited_mccs) == {"7995", "5813"}
    assert settings.prohibited_mccs["7995"] == limits.PROHIBITED_MCCS["7995"]
    monkeypatch.setenv("POSHUB_PROHIBITED_MCCS", '{"5813": "bars"}')
    assert Settings().prohibited_mccs == {"5813": "bars"}
    monkeypatch.setenv("POSHUB_PROHIBITED_MCCS", "79950")
    with pytest.raises(ValueError, match="four-digit"):
        Settings()


# --- Resident ID ---------------------------------------------------------------------


def test_id_number_length_is_named_in_chinese(client: TestClient) -> None:
    response = client.post(
        "/api/v1/applications", json=payload(id_number=resident_id()[:17]), headers=ZH
    )
    assert errors_of(response) == {"id_number": "id_number.length"}
    assert "身份证号码应为18位" in response.json()["detail"][0]["msg"]


def test_id_number_area_code_must_be_known_historic_allowed(client: TestClient) -> None:
    unknown = resident_id(region="990101")
    response = post(client, id_number=unknown)
    assert errors_of(response) == {"id_number": "id_number.region"}
    assert "990101" not in response.text  # no part of the number in the message
    chongwen = resident_id(region="110103")  # 崇文区, merged into 东城区 in 2010
    assert post(client, id_number=chongwen).status_code == 201


def test_id_card_expiry(client: TestClient) -> None:
    assert errors_of(post(client, id_expiry=None)) == {"id_expiry": "id_expiry.required"}
    yesterday = (today() - dt.timedelta(days=1)).isoformat()
    response = post(client, id_expiry=yesterday)
    assert errors_of(response) == {"id_expiry": "id_expiry.expired"}
    assert yesterday in response.json()["detail"][0]["msg"]
    far = (today() + dt.timedelta(days=21 * 366)).isoformat()
    assert errors_of(post(client, id_expiry=far)) == {"id_expiry": "id_expiry.too_far"}
    # Long-term cards go only to people 46 or older.
    young = resident_id(born=today().replace(year=today().year - 40))
    response = post(client, id_number=young, id_expiry=None, id_long_term=True)
    assert errors_of(response) == {"id_expiry": "id_expiry.long_term_age"}
    older = resident_id(born=dt.date(1960, 1, 1))
    created = post(client, id_number=older, id_expiry=None, id_long_term=True)
    assert created.status_code == 201
    view = client.get(
        f"/api/v1/applications/{created.json()['id']}",
        headers=bearer(created.json()["access_token"]),
    ).json()
    assert view["id_long_term"] is True
    assert view["id_expiry"] is None
    both = post(client, id_long_term=True)
    assert errors_of(both) == {"id_expiry": "id_expiry.conflict"}


def test_id_card_expiry_is_checked_again_at_submission_and_review(
    client: TestClient, state: AppState
) -> None:
    draft = create(client)
    upload_required(client, draft)
    _expire_id_card(state, draft["id"])
    assert submit_errors(client, draft).get("id_expiry") == "id_expiry.expired"

    submitted = create_and_submit(client)
    _expire_id_card(state, submitted["id"])
    csrf = login(client, "reviewer")
    base = f"/api/v1/review/applications/{submitted['id']}"
    assert client.post(f"{base}/claim", headers=csrf).status_code == 200
    assert client.post(f"{base}/recheck", headers=csrf).status_code == 200
    run_worker(client)
    checks = {c["code"]: c for c in client.get(base, headers=EN).json()["checks"]}
    assert checks["id_expiry"]["status"] == "fail"
    assert checks["id_expiry"]["detail_code"] == "id_expiry.expired"


def _expire_id_card(state: AppState, application_id: str) -> None:
    with state.db.unit_of_work() as uow:
        uow.session.execute(
            update(Application)
            .where(Application.id == application_id)
            .values(id_expiry=today() - dt.timedelta(days=1))
        )
        uow.commit()


# --- Unified social credit code --------------------------------------------------------


def test_credit_code_structure(client: TestClient) -> None:
    good = credit_code()
    bad_org = good[:16] + ("1" if good[16] != "1" else "2")
    bad_org += uscc.calc_check_digit(bad_org)
    cases = {
        "uscc.authority": code_with("B2"),
        "uscc.type": code_with("94"),
        "uscc.organization_code": bad_org,
    }
    for expected, value in cases.items():
        assert errors_of(post(client, uscc=value)) == {"uscc": expected}, expected
    response = post(client, uscc=code_with("91"))
    assert errors_of(response) == {"uscc": "uscc.kind_individual_business"}
    enterprise = post(client, "enterprise", uscc=code_with("92"))
    assert errors_of(enterprise) == {"uscc": "uscc.kind_enterprise"}
    for other_unit in ("93", "12", "52"):
        assert post(client, "enterprise", uscc=code_with(other_unit)).status_code == 201


# --- Documents, agent, beneficial owners -----------------------------------------------


def test_tax_registration_is_not_asked_nor_accepted(client: TestClient) -> None:
    created = create(client, kind="enterprise")
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    ).json()
    kinds = {d["kind"] for d in view["required_documents"]}
    assert "tax_registration" not in kinds
    assert "account_opening_proof" in kinds
    response = client.post(
        f"/api/v1/applications/{created['id']}/documents",
        headers={**bearer(created["access_token"]), **EN},
        data={"kind": "tax_registration"},
        files={"file": ("tax.png", PNG, "image/png")},
    )
    assert errors_of(response) == {"kind": "document.kind_retired"}


def test_an_agent_needs_a_letter_of_authorisation(client: TestClient, state: AppState) -> None:
    agent = {"name": "李代理", "id_number": resident_id(dt.date(1988, 2, 2))}
    assert errors_of(post(client, applied_by_agent=True)) == {"agent": "agent.required"}
    assert errors_of(post(client, agent=agent)) == {"agent": "agent.unexpected"}
    body = payload(applied_by_agent=True)
    body["agent"] = {"name": "李代理", "id_number": body["id_number"]}
    response = client.post("/api/v1/applications", json=body, headers=EN)
    assert errors_of(response) == {"agent.id_number": "agent.same_person"}
    bad = {"name": "李代理", "id_number": wrong_check_digit(agent["id_number"])}
    assert errors_of(post(client, applied_by_agent=True, agent=bad)) == {
        "agent.id_number": "id_number.checksum"
    }

    created = create(client, applied_by_agent=True, agent=agent)
    token = bearer(created["access_token"])
    view = client.get(f"/api/v1/applications/{created['id']}", headers=token).json()
    assert view["applied_by_agent"] is True
    assert view["agent"] == {
        "name": "李代理",
        "id_number_masked": agent["id_number"][:6] + "*" * 8 + agent["id_number"][-4:],
    }
    assert "authorisation_letter" in {d["kind"] for d in view["required_documents"]}
    with state.db.unit_of_work(read_only=True) as uow:
        row = uow.session.get(Application, created["id"])
        assert row is not None
        assert row.agent_id_number_enc
        assert agent["id_number"].encode() not in row.agent_id_number_enc
    for document in view["required_documents"]:
        if document["kind"] != "authorisation_letter":
            client.post(
                f"/api/v1/applications/{created['id']}/documents",
                headers=token,
                data={"kind": document["kind"]},
                files={"file": ("scan.png", PNG, "image/png")},
            )
    refused = submit_errors(client, created)
    assert refused.get("documents.authorisation_letter") == "documents.missing"


def test_enterprise_names_its_beneficial_owners_before_submission(
    client: TestClient, state: AppState
) -> None:
    draft = create(client, kind="enterprise", beneficial_owners=[])
    upload_required(client, draft)
    token = bearer(draft["access_token"])
    assert submit_errors(client, draft).get("beneficial_owners") == "beneficial_owners.required"

    owner = beneficial_owner(share_percent="24.5")
    response = client.patch(
        f"/api/v1/applications/{draft['id']}",
        json={"beneficial_owners": [owner, beneficial_owner(basis="control", share_percent=None)]},
        headers={**token, **EN},
    )
    assert errors_of(response) == {
        "beneficial_owners[0].share_percent": "beneficial_owners.share_too_small"
    }
    owners = [
        beneficial_owner(share_percent="60"),
        beneficial_owner(name="钱小二", share_percent="45"),
        beneficial_owner(name="孙三", basis="share", share_percent=None),
    ]
    response = client.patch(
        f"/api/v1/applications/{draft['id']}", json={"beneficial_owners": owners}, headers=token
    )
    assert errors_of(response) == {
        "beneficial_owners[2].share_percent": "beneficial_owners.share_required",
        "beneficial_owners": "beneficial_owners.total",
    }
    good = beneficial_owner(share_percent="25")
    response = client.patch(
        f"/api/v1/applications/{draft['id']}", json={"beneficial_owners": [good]}, headers=token
    )
    assert response.status_code == 200, response.text
    shown = response.json()["beneficial_owners"]
    assert shown[0]["name"] == "赵建国"
    assert shown[0]["id_number_masked"].endswith(good["id_number"][-4:])
    assert good["id_number"] not in response.text
    with state.db.unit_of_work(read_only=True) as uow:
        stored = uow.session.execute(select(BeneficialOwner)).scalars().all()
        assert [o.basis for o in stored] == ["share"]
        assert good["id_number"].encode() not in stored[0].id_number_enc
        assert stored[0].id_number_token
        assert stored[0].id_number_masked == shown[0]["id_number_masked"]
    assert "beneficial_owners" not in submit_errors(client, draft)

    individual = post(client, beneficial_owners=[beneficial_owner()])
    assert errors_of(individual) == {"beneficial_owners": "beneficial_owners.not_applicable"}


# --- All errors at once ----------------------------------------------------------------


def test_every_field_error_is_returned_at_once(client: TestClient) -> None:
    response = client.post(
        "/api/v1/applications",
        json=payload(
            "enterprise",
            id_number=resident_id()[:17],
            id_expiry=(today() - dt.timedelta(days=3)).isoformat(),
            mobile="12345678901",
            mcc="7995",
            uscc=code_with("92"),
            settlement_account=account(account_type="personal", account_number=card_number()),
            beneficial_owners=[beneficial_owner(share_percent="5")],
        ),
        headers=ZH,
    )
    fields = errors_of(response)
    assert {
        "id_number",
        "id_expiry",
        "mobile",
        "mcc",
        "uscc",
        "settlement_account.account_type",
        "settlement_account.account_number",
        "beneficial_owners[0].share_percent",
    } <= set(fields)
    messages = {e["field"]: e["msg"] for e in response.json()["detail"]}
    assert messages["id_number"] == "身份证号码应为18位，当前为17位。"
    assert "不受理" in messages["mcc"]
    assert MESSAGES["mcc.prohibited"].split("{")[0] not in messages["mcc"]
