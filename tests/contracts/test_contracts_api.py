"""Contracts through the HTTP API: generate, review, sign, countersign, amend, tamper."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import text

from poshub.contracts import repository
from poshub.core.clock import business_date
from poshub.core.db import utcnow
from poshub.merchants import repository as merchant_repository
from tests.factories import (
    approved_merchant,
    bearer,
    countersign,
    generate_contract,
    login,
    sha256_of,
    sign_as_applicant,
    stock_in,
)


def _state(client: TestClient) -> Any:
    app: Any = client.app
    return app.state.poshub


def _merchant_status(client: TestClient, mid: str) -> str:
    with _state(client).db.unit_of_work(read_only=True) as uow:
        merchant = merchant_repository.by_mid(uow.session, mid)
        assert merchant is not None
        return merchant.status


def test_contract_from_approval_to_both_signatures(client: TestClient) -> None:
    created, mid = approved_merchant(client)
    contract = generate_contract(client, mid, plan="STANDARD", cycle="D0")
    assert contract["status"] == "awaiting_merchant"
    assert contract["contract_number"].startswith("HT898-")
    assert contract["version"] == 1
    assert _merchant_status(client, mid) == "approved"

    token = bearer(created["access_token"])
    base = f"/api/v1/applications/{created['id']}/contract"
    seen = client.get(base, headers=token).json()
    assert seen["id"] == contract["id"]
    pdf = client.get(f"{base}/pdf", headers=token)
    assert pdf.headers["content-type"] == "application/pdf"
    assert sha256_of(pdf.content) == contract["pdf_sha256"] == pdf.headers["x-content-sha256"]

    text_of_pdf = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    for expected in ("0.50%", "0.60%", "0.38%", "¥20.00", "¥299.00", "¥30.00", "D0", mid):
        assert expected in text_of_pdf, expected
    html = client.get(f"{base}/html", headers=token)
    assert html.status_code == 200
    assert "<article" in html.text

    # Bad signatures: each refused with its own reason, nothing recorded.
    response = client.post(
        f"{base}/sign",
        headers=token,
        json={"signer_name": "别人", "agree": False, "pdf_sha256": contract["pdf_sha256"]},
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["detail"]} == {"signer_name", "agree"}
    response = client.post(
        f"{base}/sign",
        headers=token,
        json={"signer_name": "陈明", "agree": True, "pdf_sha256": "0" * 64},
    )
    assert response.status_code == 409
    assert response.json()["error"] == "pdf_hash_mismatch"
    assert client.get(base, headers=token).json()["status"] == "awaiting_merchant"

    # Another applicant's token reads nothing.
    other, _ = approved_merchant(client)
    response = client.get(
        f"/api/v1/applications/{created['id']}/contract", headers=bearer(other["access_token"])
    )
    assert response.status_code == 404

    signed = sign_as_applicant(client, created)
    assert signed["status"] == "awaiting_countersign"
    assert signed["merchant_signer_name"] == "陈明"
    assert signed["merchant_signed_ip"]

    done = countersign(client, mid, contract["id"], by="ops")
    assert done["status"] == "signed"
    assert done["countersigned_by"] == "ops"
    assert _merchant_status(client, mid) == "contracted"


def test_countersign_refuses_the_preparer_and_other_roles(client: TestClient) -> None:
    created, mid = approved_merchant(client)
    contract = generate_contract(client, mid, by="ops")
    sign_as_applicant(client, created)
    csrf = login(client, "ops")
    url = f"/api/v1/merchants/{mid}/contracts/{contract['id']}/countersign"
    response = client.post(url, headers=csrf)
    assert response.status_code == 403
    assert response.json()["error"] == "maker_checker"
    csrf = login(client, "reviewer")
    assert client.post(url, headers=csrf).status_code == 403


def test_countersign_before_the_merchant_signs_is_409(client: TestClient) -> None:
    _, mid = approved_merchant(client)
    contract = generate_contract(client, mid)
    csrf = login(client, "ops")
    response = client.post(
        f"/api/v1/merchants/{mid}/contracts/{contract['id']}/countersign", headers=csrf
    )
    assert response.status_code == 409
    assert response.json()["error"] == "not_awaiting_countersign"


def test_unknown_plan_and_past_date_are_422(client: TestClient) -> None:
    _, mid = approved_merchant(client)
    csrf = login(client, "reviewer")
    url = f"/api/v1/merchants/{mid}/contracts"
    response = client.post(url, headers=csrf, json={"fee_plan_code": "NOPE"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "fee_plan_code"
    response = client.post(url, headers=csrf, json={"fee_plan_code": "ENTERPRISE"})
    assert response.status_code == 422  # offered to enterprises only
    assert response.json()["detail"][0]["code"] == "fee_plan_code.not_offered"
    response = client.post(
        url, headers=csrf, json={"fee_plan_code": "STANDARD", "effective_from": "2020-01-01"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "effective_from"
    response = client.post(url, headers=csrf, json={"fee_plan_code": "STANDARD", "term_months": 3})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "term_months"


def test_tampered_pdf_is_detected(client: TestClient) -> None:
    created, mid = approved_merchant(client)
    contract = generate_contract(client, mid)
    store = _state(client).onboarding.store
    path = store.path_for(contract["pdf_sha256"])
    original = store.get(contract["pdf_sha256"])  # the file on disk is sealed (encrypted)

    # A genuine copy verifies; an altered copy matches nothing.
    response = client.post(
        "/api/v1/contracts/verify", files={"file": ("c.pdf", original, "application/pdf")}
    )
    assert response.json()["matches"] is True
    assert response.json()["contract_number"] == contract["contract_number"]
    altered = original.replace(b"0.60%", b"0.06%") if b"0.60%" in original else original + b"%"
    response = client.post(
        "/api/v1/contracts/verify", files={"file": ("c.pdf", altered, "application/pdf")}
    )
    assert response.json()["matches"] is False

    # The stored file altered: the host refuses to serve or sign it.
    path.chmod(0o644)
    path.write_bytes(original + b"\n% appended")
    token = bearer(created["access_token"])
    response = client.get(f"/api/v1/applications/{created['id']}/contract/pdf", headers=token)
    assert response.status_code == 409
    assert response.json()["error"] == "contract_tampered"
    response = client.post(
        f"/api/v1/applications/{created['id']}/contract/sign",
        headers=token,
        json={"signer_name": "陈明", "agree": True, "pdf_sha256": contract["pdf_sha256"]},
    )
    assert response.status_code == 409
    assert response.json()["error"] == "contract_tampered"


def test_signed_contract_is_immutable_in_the_database(client: TestClient) -> None:
    created, mid = approved_merchant(client)
    contract = generate_contract(client, mid)
    sign_as_applicant(client, created)
    countersign(client, mid, contract["id"])
    statement = text("UPDATE contracts SET pdf_sha256 = :h WHERE id = :id")
    with _state(client).db.unit_of_work() as uow:
        with pytest.raises(Exception, match="immutable"):
            uow.session.execute(statement, {"h": "0" * 64, "id": contract["id"]})
        uow.session.rollback()


def test_amendments_are_new_versions_from_a_date(client: TestClient) -> None:
    created, mid = approved_merchant(client)
    contract = generate_contract(client, mid, plan="MICRO")
    sign_as_applicant(client, created)
    countersign(client, mid, contract["id"])
    csrf = login(client, "reviewer")
    url = f"/api/v1/merchants/{mid}/contracts/amendments"
    # Contract dates are business dates (Beijing), whatever the machine's own zone.
    business_today = business_date(utcnow())
    tomorrow = (business_today + dt.timedelta(days=2)).isoformat()

    response = client.post(
        url,
        headers=csrf,
        json={"kind": "fee_change", "effective_from": "2020-01-01", "fee_plan_code": "STANDARD"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "effective_from"
    response = client.post(
        url,
        headers=csrf,
        json={
            "kind": "settlement_account_change",
            "effective_from": tomorrow,
            "settlement_account": {
                "bank_name": "中国银行",
                "account_name": "陈明",
                "account_number": "6222021234567890124",
            },
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "settlement_account.account_number"

    response = client.post(
        url,
        headers=csrf,
        json={"kind": "fee_change", "effective_from": tomorrow, "fee_plan_code": "STANDARD"},
    )
    assert response.status_code == 201, response.text
    amended = response.json()
    assert amended["contract_number"] == contract["contract_number"]
    assert amended["version"] == 2
    assert amended["fee_plan_code"] == "STANDARD"
    assert amended["terms"]["changes_en"]

    sign_as_applicant(client, created)
    countersign(client, mid, amended["id"])
    # Version 1 governs until the amendment's date; the past is never rewritten.
    with _state(client).db.unit_of_work(read_only=True) as uow:
        merchant = merchant_repository.by_mid(uow.session, mid)
        assert merchant is not None
        today = repository.in_effect(uow.session, merchant.id, business_today)
        later = repository.in_effect(
            uow.session, merchant.id, business_today + dt.timedelta(days=3)
        )
        assert today is not None
        assert today.version == 1
        assert later is not None
        assert later.version == 2
    versions = client.get(f"/api/v1/merchants/{mid}/contracts").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert all(v["status"] == "signed" for v in versions)


def test_allocation_needs_a_signed_contract(client: TestClient) -> None:
    created, mid = approved_merchant(client)
    stock_in(client, ["SN-ALLOC-0001"])
    csrf = login(client, "ops")
    url = f"/api/v1/merchants/{mid}/terminals"
    response = client.post(url, headers=csrf, json={"serial_number": "SN-ALLOC-0001"})
    assert response.status_code == 409
    assert response.json()["error"] == "contract_not_signed"
    contract = generate_contract(client, mid)
    sign_as_applicant(client, created)
    response = client.post(
        url, headers=login(client, "ops"), json={"serial_number": "SN-ALLOC-0001"}
    )
    assert response.status_code == 409  # the merchant signed, the acquirer has not yet
    countersign(client, mid, contract["id"])
    response = client.post(
        url, headers=login(client, "ops"), json={"serial_number": "SN-ALLOC-0001"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["tid"] == "10000001"
    assert _merchant_status(client, mid) == "provisioning"


@pytest.mark.parametrize(
    ("kind", "mcc", "volume", "model", "plan"),
    [
        ("individual", "5411", 1_000_000, "MPOS-M3", "MICRO"),
        ("individual_business", "5812", 20_000_000, "SMART-A8", None),
        ("individual_business", "4121", 5_000_000, "ESIGN-E2", None),
        ("enterprise", "5311", 300_000_000, "SMART-A8", None),
    ],
)
def test_recommendation_proposes_and_explains(
    client: TestClient, kind: str, mcc: str, volume: int, model: str, plan: str | None
) -> None:
    response = client.get(
        "/api/v1/catalog/recommendation",
        params={"applicant_kind": kind, "mcc": mcc, "expected_monthly_volume_fen": volume},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_code"] == model
    if plan:
        assert body["fee_plan_code"] == plan
    assert body["options"][0]["fee_plan_code"] == body["fee_plan_code"]
    assert len(body["reasons"]) >= 3
    assert any("lowest estimated monthly cost" in r for r in body["reasons"])
    totals = [o["monthly_total_fen"] for o in body["options"]]
    assert totals == sorted(totals)


def test_recommendation_bad_input_names_the_field(client: TestClient) -> None:
    response = client.get(
        "/api/v1/catalog/recommendation",
        params={"applicant_kind": "individual", "mcc": "0000", "expected_monthly_volume_fen": 1},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "mcc"
    response = client.get(
        "/api/v1/catalog/recommendation",
        params={"applicant_kind": "alien", "mcc": "5411", "expected_monthly_volume_fen": -1},
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["detail"]} >= {"applicant_kind"}
