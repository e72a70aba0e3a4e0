"""Terminals follow the contract in effect: its models and its counts. More terminals or
another model need a supplementary agreement (补充协议, ``terminal_change``) that the
merchant signs and a colleague of its preparer countersigns, like the contract."""

from __future__ import annotations

import io
import re
from typing import Any

from fastapi.testclient import TestClient
from pypdf import PdfReader

from poshub.bootstrap import AppState
from tests.factories import (
    add_second_operator,
    bearer,
    contracted_merchant,
    login,
    login_second_operator,
    sign_as_applicant,
    stock_in,
)


def _allocate(client: TestClient, mid: str, serial: str) -> Any:
    return client.post(
        f"/api/v1/merchants/{mid}/terminals",
        headers=login(client, "ops"),
        json={"serial_number": serial},
    )


def _amend(client: TestClient, mid: str, terminals: Any, by: str = "reviewer") -> Any:
    effective_from = _today(client, mid)
    return client.post(
        f"/api/v1/merchants/{mid}/contracts/amendments",
        headers=login(client, by),
        json={
            "kind": "terminal_change",
            "effective_from": effective_from,
            "terminals": terminals,
            "summary": "增加终端",
        },
    )


def _today(client: TestClient, mid: str) -> str:
    contracts = client.get(
        f"/api/v1/merchants/{mid}/contracts", headers=login(client, "reviewer")
    ).json()
    effective: str = contracts[0]["effective_from"]
    return effective


def _audit_actions(client: TestClient, entity_id: str) -> list[str]:
    rows = client.get(
        "/api/v1/audit", params={"entity_id": entity_id}, headers=login(client, "auditor")
    ).json()
    return [row["action"] for row in rows]


def test_allocation_outside_the_contracts_models_or_count_names_the_contract(
    client: TestClient,
) -> None:
    _, mid = contracted_merchant(client)  # the application asked for 3 × SMART-A8
    number = client.get(
        f"/api/v1/merchants/{mid}/contracts", headers=login(client, "reviewer")
    ).json()[0]["contract_number"]
    stock_in(client, ["SN-T60-0001"], model="TRAD-T60")
    stock_in(client, [f"SN-A8-000{n}" for n in range(1, 5)])

    refused = _allocate(client, mid, "SN-T60-0001")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "contract_terminal_model"
    assert number in refused.json()["message"]
    assert "TRAD-T60" in refused.json()["message"]

    for n in range(1, 4):
        assert _allocate(client, mid, f"SN-A8-000{n}").status_code == 201
    refused = _allocate(client, mid, "SN-A8-0004")
    assert refused.status_code == 409
    assert refused.json()["error"] == "contract_terminal_limit"
    assert number in refused.json()["message"]
    # Nothing was taken from stock by the refusals.
    devices = client.get(
        "/api/v1/inventory/devices", params={"status": "in_stock"}, headers=login(client, "ops")
    ).json()
    assert {d["serial_number"] for d in devices} == {"SN-T60-0001", "SN-A8-0004"}


def test_a_signed_supplementary_agreement_raises_the_count_and_adds_a_model(
    client: TestClient, state: AppState
) -> None:
    created, mid = contracted_merchant(client)
    stock_in(client, ["SN-T60-0001", "SN-T60-0002"], model="TRAD-T60")
    stock_in(client, [f"SN-A8-000{n}" for n in range(1, 6)])
    for n in range(1, 4):
        assert _allocate(client, mid, f"SN-A8-000{n}").status_code == 201

    amendment = _amend(
        client,
        mid,
        [{"model_code": "SMART-A8", "count": 4}, {"model_code": "TRAD-T60", "count": 1}],
        by="ops",
    )
    assert amendment.status_code == 201, amendment.text
    body = amendment.json()
    assert body["version"] == 2
    assert body["amendment_kind"] == "terminal_change"
    assert body["status"] == "awaiting_merchant"
    assert [line[2:] for line in body["terms"]["terminals"]] == [
        [4, "SMART-A8"],
        [1, "TRAD-T60"],
    ]

    # Until both parties sign, the contract in effect still governs.
    assert _allocate(client, mid, "SN-T60-0001").json()["error"] == "contract_terminal_model"
    assert _allocate(client, mid, "SN-A8-0004").json()["error"] == "contract_terminal_limit"

    # The merchant reads the supplementary agreement and signs it like the contract.
    pdf = client.get(
        f"/api/v1/applications/{created['id']}/contract/pdf",
        headers=bearer(created["access_token"]),
    )
    text = re.sub(
        r"\s+", "", "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    )
    assert "补充协议" in text
    assert "智能POSA84台、传统POST60（有线/无线）1台（共5台）" in text
    signed = sign_as_applicant(client, created)
    assert signed["status"] == "awaiting_countersign"

    # Maker-checker: its preparer cannot countersign it.
    response = client.post(
        f"/api/v1/merchants/{mid}/contracts/{body['id']}/countersign",
        headers=login(client, "ops"),
    )
    assert response.status_code == 403
    assert response.json()["error"] == "maker_checker"
    assert _allocate(client, mid, "SN-T60-0001").status_code == 409
    add_second_operator(state)
    response = client.post(
        f"/api/v1/merchants/{mid}/contracts/{body['id']}/countersign",
        headers=login_second_operator(client),
    )
    assert response.status_code == 200, response.text

    # The amended totals govern: one more A8 and one T60, and no further.
    assert _allocate(client, mid, "SN-T60-0001").status_code == 201
    assert _allocate(client, mid, "SN-A8-0004").status_code == 201
    refused = _allocate(client, mid, "SN-A8-0005")
    assert refused.status_code == 409
    assert refused.json()["error"] == "contract_terminal_limit"
    assert "2" in refused.json()["message"]  # version 2
    refused = _allocate(client, mid, "SN-T60-0002")
    assert refused.json()["error"] == "contract_terminal_limit"

    assert _audit_actions(client, body["id"]) == [
        "contract.countersigned",
        "contract.signed_by_merchant",
        "contract.generated",
    ]


def test_a_supplementary_agreement_refuses_every_wrong_line_at_once(client: TestClient) -> None:
    _, mid = contracted_merchant(client)
    response = _amend(
        client,
        mid,
        [
            {"model_code": "SMART-A8", "count": 2},
            {"model_code": "NO-SUCH", "count": 1},
            {"model_code": "TRAD-T60", "count": 1},
            {"model_code": "TRAD-T60", "count": 2},
        ],
    )
    assert response.status_code == 422, response.text
    errors = {(e["field"], e["code"]) for e in response.json()["detail"]}
    assert errors == {
        ("terminals[0].count", "terminals.count_lowered"),
        ("terminals[1].model_code", "terminals.model_unknown"),
        ("terminals[3].model_code", "terminals.model_repeated"),
    }
    unchanged = _amend(client, mid, [{"model_code": "SMART-A8", "count": 3}])
    assert unchanged.status_code == 422
    assert unchanged.json()["detail"][0]["code"] == "terminals.unchanged"
    missing = _amend(client, mid, None)
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["field"] == "terminals"
    too_many = _amend(client, mid, [{"model_code": "SMART-A8", "count": 11}])
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["code"] == "terminals.too_many"
    # Nothing was prepared; only staff who may prepare contracts can ask.
    contracts = client.get(
        f"/api/v1/merchants/{mid}/contracts", headers=login(client, "reviewer")
    ).json()
    assert [c["version"] for c in contracts] == [1]
    assert (
        _amend(client, mid, [{"model_code": "SMART-A8", "count": 4}], by="tech").status_code == 403
    )
