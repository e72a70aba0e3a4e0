"""A hostile or broken stock-in CSV is refused with 422 naming the row and the column,
never a 500, and nothing is imported."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from poshub.core import limits
from tests.factories import login

HEADER = "serial_number,model_code,warehouse,firmware_version\n"
GOOD = "SN-A8-0001,SMART-A8,合肥仓,1.4.2\n"


def _upload(client: TestClient, body: bytes) -> Any:
    return client.post(
        "/api/v1/inventory/stock-in",
        headers=login(client, "ops"),
        files={"file": ("stock.csv", body, "text/csv")},
    )


def _devices(client: TestClient) -> list[Any]:
    response = client.get("/api/v1/inventory/devices", headers=login(client, "ops"))
    assert response.status_code == 200
    devices: list[Any] = response.json()
    return devices


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        # A field larger than the csv module's limit (131,072 characters) used to be a 500.
        (
            (HEADER + GOOD + 'SN-A8-0002,SMART-A8,"' + "仓" * 140_000 + '",1.0\n').encode(),
            "rows.3.warehouse",
            "stock.field_too_long",
        ),
        (
            (HEADER + GOOD + "SN-A8-0002,SMART-A8,合肥仓," + "9" * 300 + "\n").encode(),
            "rows.3.firmware_version",
            "stock.field_too_long",
        ),
        # NUL reached PostgreSQL (500) through the free-text warehouse column.
        (
            (HEADER + GOOD + "SN-A8-0002,SMART-A8,合肥\x00仓,1.0\n").encode(),
            "rows.3.warehouse",
            "stock.control_character",
        ),
        (
            (HEADER + "SN-A8-0002,SMART-A8,合肥仓,1.0\u202e\n").encode(),
            "rows.2.firmware_version",
            "stock.control_character",
        ),
        # An unterminated quote swallows the rest of the file into one field.
        (
            (HEADER + GOOD + 'SN-A8-0002,SMART-A8,"合肥仓\n' + "x" * 200_000).encode(),
            "rows.3.warehouse",
            "stock.field_too_long",
        ),
        (
            "serial_number,model_code,warehouse\nSN-A8-0002,SMART-A8,合肥仓\n".encode("gb18030"),
            "rows.0.file",
            "stock.encoding",
        ),
        (
            (HEADER + "SN-A8-0002,SMART-A8,合肥仓,1.0," + ",".join(["x"] * 5000) + "\n").encode(),
            "rows.2.file",
            "stock.too_many_columns",
        ),
    ],
    ids=["oversize-field", "long-firmware", "nul", "bidi-override", "open-quote", "gbk", "columns"],
)
def test_a_broken_stock_file_is_422_naming_the_row_and_field(
    client: TestClient, body: bytes, field: str, code: str
) -> None:
    response = _upload(client, body)
    assert response.status_code == 422, response.text
    errors = {(e["field"], e["code"]) for e in response.json()["detail"]}
    assert (field, code) in errors
    assert _devices(client) == []


def test_too_many_rows_is_422_naming_the_first_row_past_the_limit(client: TestClient) -> None:
    rows = "".join(f"SN-A8-{n:06d},SMART-A8,仓,\n" for n in range(limits.STOCK_CSV_ROWS_MAX + 1))
    response = _upload(client, (HEADER + rows).encode())
    assert response.status_code == 422, response.text
    errors = {(e["field"], e["code"]) for e in response.json()["detail"]}
    assert (f"rows.{limits.STOCK_CSV_ROWS_MAX + 2}.file", "stock.too_many_rows") in errors
    assert _devices(client) == []


def test_the_stock_page_shows_the_same_refusal(client: TestClient) -> None:
    csrf = login(client, "ops")
    response = client.post(
        "/admin/inventory/stock-in",
        data={"csrf_token": csrf["X-CSRF-Token"]},
        files={"file": ("stock.csv", (HEADER + "SN-A8-0002,SMART-A8,合\x00肥仓,\n").encode())},
    )
    assert response.status_code == 422, response.text
    assert _devices(client) == []
