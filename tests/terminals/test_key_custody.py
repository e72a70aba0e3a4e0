"""Key custody through the HTTP API: transport keys formed by two custodians and named by
their check value; terminal key export requested by one operator, approved by another,
collected once by the requester. Published and weak keys are refused in every mode."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psec import tr31
from sqlalchemy import update

from poshub.bootstrap import AppState
from poshub.core import audit
from poshub.terminals import hsm
from poshub.terminals.models import KeyExportRequest
from tests.factories import (
    add_second_operator,
    contracted_merchant,
    login,
    login_second_operator,
    stock_in,
)


def _as(client: TestClient, username: str) -> dict[str, str]:
    return login_second_operator(client) if username == "ops2" else login(client, username)


def _component() -> bytes:
    while True:
        component = hsm.generate_tmk()
        if hsm.transport_key_weakness(component) is None:
            return component


def _register(
    client: TestClient, first: bytes, second: bytes, *, by: tuple[str, str] = ("ops", "ops2")
) -> Any:
    response = client.post(
        "/api/v1/transport-keys",
        headers=_as(client, by[0]),
        json={"label": "KLD-01 injection device", "component": first.hex().upper()},
    )
    assert response.status_code == 201, response.text
    key_id = response.json()["id"]
    return client.post(
        f"/api/v1/transport-keys/{key_id}/components",
        headers=_as(client, by[1]),
        json={"component": second.hex()},
    )


def _transport_key(client: TestClient) -> tuple[bytes, str]:
    first, second = _component(), _component()
    response = _register(client, first, second)
    assert response.status_code == 200, response.text
    combined = hsm.combine_components(first, second)
    return combined, response.json()["kcv"]


def _terminal(client: TestClient, serial: str) -> dict[str, Any]:
    _, mid = contracted_merchant(client)
    stock_in(client, [serial])
    response = client.post(
        f"/api/v1/merchants/{mid}/terminals",
        headers=login(client, "ops"),
        json={"serial_number": serial},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _audit_text(state: AppState) -> str:
    with state.db.unit_of_work(read_only=True) as uow:
        rows = audit.recent(uow.session, entity_id=None, limit=200)
        return " ".join(f"{r.actor_id} {r.action} {r.details}" for r in rows).upper()


def test_two_custodians_register_a_transport_key_named_by_its_kcv(
    client: TestClient, state: AppState
) -> None:
    add_second_operator(state)
    first, second = _component(), _component()
    response = client.post(
        "/api/v1/transport-keys",
        headers=_as(client, "ops"),
        json={"label": "KLD-01", "component": first.hex()},
    )
    assert response.status_code == 201, response.text
    started = response.json()
    assert started["status"] == "pending"
    assert started["kcv"] is None
    assert started["first_component_kcv"] == hsm.kcv(first)[:6]

    # The same person cannot enter the second component.
    url = f"/api/v1/transport-keys/{started['id']}/components"
    response = client.post(url, headers=_as(client, "ops"), json={"component": second.hex()})
    assert response.status_code == 403
    assert response.json()["error"] == "same_custodian"

    response = client.post(url, headers=_as(client, "ops2"), json={"component": second.hex()})
    assert response.status_code == 200, response.text
    registered = response.json()
    combined = hsm.combine_components(first, second)
    assert registered["status"] == "active"
    assert registered["kcv"] == hsm.kcv(combined)[:6]
    assert len(registered["kcv"]) == 6
    assert (registered["first_custodian"], registered["second_custodian"]) == ("ops", "ops2")
    # Completed once only.
    response = client.post(url, headers=_as(client, "ops2"), json={"component": second.hex()})
    assert response.status_code == 409

    listing = client.get("/api/v1/transport-keys", headers=_as(client, "ops")).text.upper()
    audit_text = _audit_text(state)
    assert "TRANSPORT_KEY.COMPONENT_ENTERED" in audit_text
    assert "TRANSPORT_KEY.REGISTERED" in audit_text
    assert "OPS2" in audit_text
    for clear in (first, second, combined):
        for text in (listing, audit_text, response.text.upper()):
            assert clear.hex().upper() not in text


def test_no_component_or_key_in_clear_in_the_database(
    client: TestClient, state: AppState, settings: Any
) -> None:
    add_second_operator(state)
    first, second = _component(), _component()
    response = client.post(
        "/api/v1/transport-keys",
        headers=_as(client, "ops"),
        json={"label": "KLD-02", "component": first.hex()},
    )
    assert response.status_code == 201
    if state.db.dialect != "sqlite":
        return
    database_files = list(Path(settings.data_dir).glob("poshub.db*"))
    combined = hsm.combine_components(first, second)
    client.post(
        f"/api/v1/transport-keys/{response.json()['id']}/components",
        headers=_as(client, "ops2"),
        json={"component": second.hex()},
    )
    state.db.checkpoint()
    for path in database_files:
        data = path.read_bytes()
        for clear in (first, second, combined):
            assert clear not in data
            assert clear.hex().encode() not in data
            assert clear.hex().upper().encode() not in data


PUBLISHED_OR_WEAK = {
    "demo terminal test key": "0123456789ABCDEFFEDCBA9876543210",
    "spec V1 TMK": "70F2A84CCBC2AE8625CBB0F2C22AB923",
    "spec TDK": "00112233445566778899AABBCCDDEEFF",
    "test key with other parity": "0022446688AACCEEFEDCBA9876543210",
    "all one byte": "A7" * 16,
    "repeated halves": "2315208C9110AD40" * 2,
    "repeated short blocks": "ABCDABCDABCDABCD1234123412341234",
    "DES weak key half": "E0E0E0E0F1F1F1F1" + "2315208C9110AD40",
    "DES semi-weak key half": "01FE01FE01FE01FE" + "2315208C9110AD40",
    "half of a published key": "2315208C9110AD40FEDCBA9876543210",
}


@pytest.mark.parametrize("mode", ["test", "demo"])
@pytest.mark.parametrize("component", PUBLISHED_OR_WEAK.values(), ids=PUBLISHED_OR_WEAK.keys())
def test_published_and_weak_components_are_refused_in_every_mode(
    client: TestClient, state: AppState, component: str, mode: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(state.settings, "mode", mode)
    response = client.post(
        "/api/v1/transport-keys",
        headers=login(client, "ops"),
        json={"label": "weak", "component": component},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "component"
    assert component not in response.text


def test_components_that_combine_into_a_test_key_cancel_the_ceremony(
    client: TestClient, state: AppState
) -> None:
    """Two random-looking components whose XOR is the published demo key."""
    add_second_operator(state)
    test_key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    first = _component()
    second = bytes(a ^ b for a, b in zip(first, test_key, strict=True))
    assert hsm.transport_key_weakness(second) is None
    response = _register(client, first, second)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["code"] == "transport_key.weak"
    keys = client.get("/api/v1/transport-keys", headers=_as(client, "ops")).json()
    assert keys[0]["status"] == "cancelled"
    assert keys[0]["kcv"] is None
    assert "TRANSPORT_KEY.REFUSED" in _audit_text(state)


def test_export_needs_a_second_operator_and_is_released_once(
    client: TestClient, state: AppState
) -> None:
    add_second_operator(state)
    transport_key, tk_kcv = _transport_key(client)
    terminal = _terminal(client, "SN-CUST-0001")
    tid = terminal["tid"]

    # The old route taking a transport key in clear is gone.
    response = client.post(
        f"/api/v1/terminals/{tid}/key-export",
        headers=_as(client, "ops"),
        json={"transport_key": transport_key.hex()},
    )
    assert response.status_code in (404, 405)

    url = f"/api/v1/terminals/{tid}/key-export-requests"
    response = client.post(url, headers=_as(client, "ops"), json={"transport_key_kcv": "ABCDEF"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "transport_key_kcv"
    for role in ("reviewer", "tech", "support", "auditor", "admin"):
        response = client.post(url, headers=login(client, role), json={"transport_key_kcv": tk_kcv})
        assert response.status_code == 403, role

    response = client.post(url, headers=_as(client, "ops"), json={"transport_key_kcv": tk_kcv})
    assert response.status_code == 201, response.text
    request = response.json()
    assert request["status"] == "requested"
    assert "key_block" not in request
    base = f"/api/v1/key-export-requests/{request['id']}"

    # Nothing before a second person's approval; the requester cannot approve.
    response = client.post(f"{base}/collect", headers=_as(client, "ops"))
    assert response.status_code == 409
    assert response.json()["error"] == "export_not_approved"
    response = client.post(f"{base}/approve", headers=_as(client, "ops"))
    assert response.status_code == 403
    assert response.json()["error"] == "own_request"
    response = client.post(f"{base}/approve", headers=login(client, "auditor"))
    assert response.status_code == 403

    response = client.post(f"{base}/approve", headers=_as(client, "ops2"))
    assert response.status_code == 200, response.text
    assert response.json()["approved_by"] == "ops2"
    assert "key_block" not in response.json()
    # The approver does not receive it either: it goes to the requester.
    response = client.post(f"{base}/collect", headers=_as(client, "ops2"))
    assert response.status_code == 403
    assert response.json()["error"] == "not_requester"

    response = client.post(f"{base}/collect", headers=_as(client, "ops"))
    assert response.status_code == 200, response.text
    exported = response.json()
    assert exported["kcv"] == terminal["kcv"]
    assert exported["transport_key_kcv"] == tk_kcv
    _, tmk = tr31.unwrap(transport_key, exported["key_block"])
    assert hsm.kcv(tmk) == terminal["kcv"]

    response = client.post(f"{base}/collect", headers=_as(client, "ops"))
    assert response.status_code == 409
    assert response.json()["error"] == "export_collected"

    with state.db.unit_of_work(read_only=True) as uow:
        rows = audit.recent(uow.session, entity_id=tid, limit=20)
        actions = {r.action: r for r in rows}
        assert actions["terminal.key_export_requested"].actor_id == "ops"
        assert actions["terminal.key_export_approved"].actor_id == "ops2"
        assert actions["terminal.key_exported"].details["transport_key_kcv"] == tk_kcv
        text = str([r.details for r in rows]).upper()
    assert tmk.hex().upper() not in text
    assert transport_key.hex().upper() not in text


def test_an_export_request_lapses(client: TestClient, state: AppState) -> None:
    add_second_operator(state)
    _, tk_kcv = _transport_key(client)
    terminal = _terminal(client, "SN-CUST-0002")
    response = client.post(
        f"/api/v1/terminals/{terminal['tid']}/key-export-requests",
        headers=_as(client, "ops"),
        json={"transport_key_kcv": tk_kcv.lower()},
    )
    assert response.status_code == 201, response.text
    request_id = response.json()["id"]
    with state.db.unit_of_work() as uow:
        uow.session.execute(
            update(KeyExportRequest)
            .where(KeyExportRequest.id == request_id)
            .values(requested_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        )
        uow.commit()
    response = client.post(
        f"/api/v1/key-export-requests/{request_id}/approve", headers=_as(client, "ops2")
    )
    assert response.status_code == 409
    assert response.json()["error"] == "export_expired"


def test_random_keys_pass_the_transport_key_checks() -> None:
    for _ in range(200):
        assert hsm.transport_key_weakness(secrets.token_bytes(16)) is None
