"""Inventory, allocation, keys and swaps through the HTTP API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from poshub.bootstrap import AppState
from poshub.core.settings import Mode, Settings
from poshub.terminals import hsm, repository, service
from poshub.terminals.models import Device, DeviceCredential, TerminalKey
from tests.factories import contracted_merchant, login, stock_in

HEADER = "serial_number,model_code,warehouse,firmware_version\n"


def _upload(client: TestClient, body: bytes) -> Any:
    return client.post(
        "/api/v1/inventory/stock-in",
        headers=login(client, "ops"),
        files={"file": ("stock.csv", body, "text/csv")},
    )


def _device_count(state: AppState) -> int:
    with state.db.unit_of_work(read_only=True) as uow:
        return uow.session.execute(select(func.count()).select_from(Device)).scalar_one()


def test_stock_in_imports_every_row(client: TestClient, state: AppState) -> None:
    body = (HEADER + "sn-a8-0001,SMART-A8,合肥仓,1.4.2\nSN-T60-0001,TRAD-T60,合肥仓,\n").encode()
    response = _upload(client, "\ufeff".encode() + body)
    assert response.status_code == 201, response.text
    assert response.json()["imported"] == 2
    devices = client.get("/api/v1/inventory/devices", headers=login(client, "ops")).json()
    assert {d["serial_number"] for d in devices} == {"SN-A8-0001", "SN-T60-0001"}
    assert all(d["status"] == "in_stock" for d in devices)
    summary = client.get("/api/v1/inventory/summary", headers=login(client, "ops")).json()
    assert summary["SMART-A8"] == {"in_stock": 1}


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (
            HEADER + "S1,SMART-A8,仓\nSN-0002,SMART-A8,合肥仓,\nSN-0002,SMART-A8,合肥仓,\n",
            "rows.2.serial_number",
            "stock.serial_invalid",
        ),
        (
            HEADER
            + "SN-0001,SMART-A8,合肥仓,\nSN-0002,SMART-A8,合肥仓,\nsn-0001,TRAD-T60,合肥仓,\n",
            "rows.4.serial_number",
            "stock.serial_duplicate_in_file",
        ),
        (HEADER + "SN-0001,NOPE-1,合肥仓,\n", "rows.2.model_code", "stock.model_unknown"),
        (HEADER + "SN-0001,SMART-A8,,\n", "rows.2.warehouse", "stock.warehouse_invalid"),
        ("serial,model\nSN-0001,SMART-A8\n", "rows.1.header", "stock.missing_columns"),
        (HEADER, "rows.1.file", "stock.no_rows"),
    ],
)
def test_a_bad_row_rejects_the_whole_file(
    client: TestClient, state: AppState, body: str, field: str, code: str
) -> None:
    response = _upload(client, body.encode())
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert any(p["field"] == field and p["code"] == code for p in problems), problems
    assert _device_count(state) == 0  # all or nothing


def test_duplicate_of_a_device_in_the_fleet_names_the_row(
    client: TestClient, state: AppState
) -> None:
    stock_in(client, ["SN-EXIST-01"])
    response = _upload(
        client, (HEADER + "SN-NEW-0001,SMART-A8,合肥仓,\nSN-EXIST-01,SMART-A8,合肥仓,\n").encode()
    )
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "rows.3.serial_number"
    assert "SN-EXIST-01" in problem["msg"]
    assert _device_count(state) == 1


def test_not_utf8_or_too_large_is_refused(client: TestClient) -> None:
    response = _upload(client, HEADER.encode() + "SN-0001,SMART-A8,合肥仓,\n".encode("gbk"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["code"] == "stock.encoding"
    response = _upload(client, b"x" * (2 * 1024 * 1024 + 1))
    assert response.status_code == 413


def _allocate(client: TestClient, mid: str, serial: str) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/merchants/{mid}/terminals",
        headers=login(client, "ops"),
        json={"serial_number": serial},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_allocation_gives_a_tid_a_wrapped_key_and_a_credential(
    client: TestClient, state: AppState, settings: Settings
) -> None:
    _, mid = contracted_merchant(client)
    stock_in(client, ["SN-KEY-0001", "SN-KEY-0002"])
    first = _allocate(client, mid, "SN-KEY-0001")
    assert first["tid"] == "10000001"
    assert first["terminal_status"] == "provisioning"
    assert first["device_status"] == "allocated"
    assert len(first["kcv"]) == 8
    assert len(first["device_secret"]) == 64

    # Already allocated: 409 naming the state.
    response = client.post(
        f"/api/v1/merchants/{mid}/terminals",
        headers=login(client, "ops"),
        json={"serial_number": "SN-KEY-0001"},
    )
    assert response.status_code == 409
    assert response.json()["error"] == "device_not_in_stock"

    with state.db.unit_of_work(read_only=True) as uow:
        terminal = repository.terminal_by_tid(uow.session, "10000001")
        assert terminal is not None
        key = repository.current_key(uow.session, terminal.id)
        assert key is not None
        assert key.key_block.startswith("D")
        # The stored block unwraps under the KEK to the key whose check value was shown.
        assert service.key_check_value(uow.session, state.vault, terminal) == first["kcv"]
        clear = hsm.unwrap_tmk(state.vault.key_block_key, key.key_block)
        credential = repository.active_credential(uow.session, terminal.id)
    listing = client.get(f"/api/v1/merchants/{mid}/terminals", headers=login(client, "ops")).json()
    assert listing[0]["kcv"] == first["kcv"]
    assert "device_secret" not in listing[0]

    if state.db.dialect == "sqlite":
        state.db.dispose()
        data = b"".join(p.read_bytes() for p in settings.data_dir.glob("poshub.db*"))
        assert data
        for secret in (clear.hex().upper(), clear.hex(), first["device_secret"]):
            assert secret.encode() not in data
        assert clear not in data
        assert first["kcv"].encode() in data  # the scan looks in the right place
    del credential


def test_swap_keeps_the_tid_and_renews_keys_and_credential(
    client: TestClient, state: AppState
) -> None:
    _, mid = contracted_merchant(client)
    stock_in(client, ["SN-SWAP-0001", "SN-SWAP-0002"])
    stock_in(client, ["SN-SWAP-T60"], model="TRAD-T60")
    first = _allocate(client, mid, "SN-SWAP-0001")
    url = f"/api/v1/terminals/{first['tid']}/swap"
    response = client.post(url, headers=login(client, "ops"), json={"serial_number": "SN-SWAP-T60"})
    assert response.status_code == 409
    assert response.json()["error"] == "swap_model_mismatch"
    response = client.post(
        url, headers=login(client, "ops"), json={"serial_number": "SN-SWAP-0002"}
    )
    assert response.status_code == 200, response.text
    swapped = response.json()
    assert swapped["tid"] == first["tid"]
    assert swapped["serial_number"] == "SN-SWAP-0002"
    assert swapped["kcv"] != first["kcv"]
    assert swapped["device_secret"] != first["device_secret"]
    with state.db.unit_of_work(read_only=True) as uow:
        old = repository.device_by_serial(uow.session, "SN-SWAP-0001")
        assert old is not None
        assert old.status == "returned"
        assert old.terminal_id is None
        assert repository.active_credential(uow.session, old.id) is None
        keys = uow.session.execute(select(TerminalKey).order_by(TerminalKey.id)).scalars().all()
        assert [k.retired_at is not None for k in keys] == [True, False]
        assert (
            uow.session.execute(select(func.count()).select_from(DeviceCredential)).scalar_one()
            == 2
        )
    # The returned device, inspected: sound → back in stock.
    response = client.post(
        "/api/v1/inventory/devices/SN-SWAP-0001/inspection",
        headers=login(client, "ops"),
        json={"sound": True},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "in_stock"


def test_production_refuses_the_published_test_key(state: AppState, settings: Settings) -> None:
    production = settings.model_copy(update={"mode": Mode.PRODUCTION})
    with state.db.unit_of_work() as uow:
        with pytest.raises(Exception, match="test key"):
            service._provision_device(  # the one path that could take the test key
                uow.session,
                production,
                state.vault,
                terminal=None,  # type: ignore[arg-type]
                device=None,  # type: ignore[arg-type]
                now=dt.datetime.now(dt.UTC),
                use_known_test_key=True,
            )
        uow.rollback()
