"""Issue 3's acceptance journey through the real HTTP API: from an approved application to
a live merchant with an active terminal.

Plan chosen (with the recommendation) → contract PDF produced (its text holds the rates,
deposit, rent and settlement cycle) → signed by the merchant → tamper detected →
countersigned → device stocked and allocated → TMS parameters fetched with the device's
credential and refused without → survey, shipping and installation work orders through
go-live.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

from fastapi.testclient import TestClient
from pypdf import PdfReader

from poshub.terminals.tms import signed_headers
from tests.factories import (
    approved_merchant,
    bearer,
    login,
    payload,
    sha256_of,
    stock_in,
)


def _step(
    client: TestClient, who: str, number: str, target: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/work-orders/{number}/steps/{target}", headers=login(client, who), json=body or {}
    )
    assert response.status_code == 200, f"{target}: {response.text}"
    result: dict[str, Any] = response.json()
    return result


def _order(client: TestClient, kind: str, mid: str, tid: str | None) -> str:
    response = client.post(
        "/api/v1/work-orders",
        headers=login(client, "ops"),
        json={"kind": kind, "mid": mid, "tid": tid, "technician": "tech"},
    )
    assert response.status_code == 201, response.text
    number: str = response.json()["number"]
    return number


def _merchant(client: TestClient, mid: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/merchants/{mid}", headers=login(client, "ops"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_from_approved_application_to_live_merchant(client: TestClient) -> None:
    volume = 30_000_000
    advice = client.get(
        "/api/v1/catalog/recommendation",
        params={
            "applicant_kind": "individual_business",
            "mcc": "5411",
            "expected_monthly_volume_fen": volume,
        },
    ).json()
    assert advice["model_code"] == "SMART-A8"
    # The recommendation informs; staff choose. This merchant prefers the capped debit rate.
    assert "STANDARD" in {o["fee_plan_code"] for o in advice["options"]}
    created, mid = approved_merchant(client, expected_monthly_volume_fen=volume)

    # Plan chosen, contract produced.
    response = client.post(
        f"/api/v1/merchants/{mid}/contracts",
        headers=login(client, "reviewer"),
        json={"fee_plan_code": "STANDARD", "settlement_cycle": "T1"},
    )
    assert response.status_code == 201, response.text
    contract = response.json()
    token = bearer(created["access_token"])
    pdf = client.get(f"/api/v1/applications/{created['id']}/contract/pdf", headers=token).content
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    compact = text.replace("\n", "")
    for term in ("0.50%", "0.60%", "0.38%", "封顶", "押金", "¥299.00", "月租", "¥30.00", "T+1"):
        assert term in compact, term

    # Allocation before signing: refused with the reason.
    stock_in(client, ["A8-JOURNEY-0001"])
    response = client.post(
        f"/api/v1/merchants/{mid}/terminals",
        headers=login(client, "ops"),
        json={"serial_number": "A8-JOURNEY-0001"},
    )
    assert response.status_code == 409
    assert response.json()["error"] == "contract_not_signed"

    # Signed by the merchant from the tracking credential, then countersigned.
    response = client.post(
        f"/api/v1/applications/{created['id']}/contract/sign",
        headers=token,
        json={"signer_name": payload()["legal_name"], "agree": True, "pdf_sha256": sha256_of(pdf)},
    )
    assert response.status_code == 200, response.text

    # A tampered copy is detected; the genuine one is recognised.
    tampered = pdf.replace(b"/Producer", b"/Producex")
    assert tampered != pdf
    for data, genuine in ((pdf, True), (tampered, False)):
        response = client.post(
            "/api/v1/contracts/verify", files={"file": ("contract.pdf", data, "application/pdf")}
        )
        assert response.json()["matches"] is genuine

    response = client.post(
        f"/api/v1/merchants/{mid}/contracts/{contract['id']}/countersign",
        headers=login(client, "ops"),
    )
    assert response.status_code == 200, response.text
    assert _merchant(client, mid)["status"] == "contracted"

    # A site survey first.
    survey = _order(client, "site_survey", mid, None)
    _step(client, "tech", survey, "checked_in")
    _step(
        client,
        "tech",
        survey,
        "completed",
        {
            "power_available": True,
            "network": "4g",
            "signal_ok": True,
            "position": "收银台左侧",
            "feasible": True,
        },
    )

    # Allocation: TID, key check value, device credential (shown once).
    response = client.post(
        f"/api/v1/merchants/{mid}/terminals",
        headers=login(client, "ops"),
        json={"serial_number": "A8-JOURNEY-0001"},
    )
    assert response.status_code == 201, response.text
    allocated = response.json()
    tid, secret = allocated["tid"], allocated["device_secret"]
    assert _merchant(client, mid)["status"] == "provisioning"

    # Shipping with inspection on arrival.
    shipping = _order(client, "shipping", mid, tid)
    _step(
        client,
        "ops",
        shipping,
        "shipped",
        {"carrier": "顺丰速运", "tracking_number": "SF1234567890"},
    )
    _step(
        client,
        "ops",
        shipping,
        "delivered",
        {"received_by": "陈明", "received_at": dt.datetime.now(dt.UTC).isoformat()},
    )
    _step(
        client,
        "tech",
        shipping,
        "inspected",
        {"condition": "ok", "serial_number": "A8-JOURNEY-0001"},
    )
    _step(client, "tech", shipping, "completed")

    # Installation.
    install = _order(client, "installation", mid, tid)
    appointment = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    _step(client, "tech", install, "scheduled", {"appointment_at": appointment})
    _step(client, "tech", install, "checked_in", {"serial_number": "A8-JOURNEY-0001"})
    response = client.post(
        f"/api/v1/work-orders/{install}/steps/parameters_loaded",
        headers=login(client, "tech"),
        json={},
    )
    assert response.status_code == 409  # the device has not downloaded its parameters yet

    # TMS: refused without the device credential, served with it.
    path = "/api/v1/tms/terminals/A8-JOURNEY-0001/parameters"
    client.cookies.clear()
    assert client.get(path).status_code == 401
    wrong = signed_headers("A8-JOURNEY-0001", "00" * 32, "GET", path)
    assert client.get(path, headers=wrong).status_code == 401
    response = client.get(path, headers=signed_headers("A8-JOURNEY-0001", secret, "GET", path))
    assert response.status_code == 200, response.text
    served = response.json()
    assert json.dumps(served, ensure_ascii=False).count(tid) >= 1
    assert mid in json.dumps(served)

    _step(client, "tech", install, "parameters_loaded")
    out_of_order = client.post(
        f"/api/v1/work-orders/{install}/steps/completed", headers=login(client, "tech"), json={}
    )
    assert out_of_order.status_code == 409
    assert "acceptance_passed" in out_of_order.json()["message"]
    _step(
        client,
        "tech",
        install,
        "acceptance_passed",
        {
            "reference": "261122000001",
            "response_time_ms": 850,
            "receipt_printed": True,
            "record_matches": True,
        },
    )
    assert _merchant(client, mid)["status"] == "live"
    _step(
        client,
        "tech",
        install,
        "trained",
        {"signer_name": "陈明", "topics": ["sale", "void", "refund", "settlement"]},
    )
    done = _step(client, "tech", install, "completed")
    assert done["work_order"]["status"] == "completed"

    terminals = client.get(
        f"/api/v1/merchants/{mid}/terminals", headers=login(client, "ops")
    ).json()
    assert terminals == [
        {
            "tid": tid,
            "mid": mid,
            "model_code": "SMART-A8",
            "status": "active",
            "serial_number": "A8-JOURNEY-0001",
            "device_status": "active",
            "kcv": allocated["kcv"],
            "activated_at": terminals[0]["activated_at"],
        }
    ]
    assert terminals[0]["activated_at"]
