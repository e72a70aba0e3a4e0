from __future__ import annotations

from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.catalog import service as catalog_service


def test_terminal_models_are_listed_with_codes_and_capabilities(client: TestClient) -> None:
    models = client.get("/api/v1/catalog/terminal-models").json()
    by_code = {m["code"]: m for m in models}
    assert set(by_code) == {"TRAD-T60", "SMART-A8", "MPOS-M3", "ESIGN-E2"}
    assert {m["kind"] for m in models} == {"traditional", "smart", "mobile", "esign"}
    assert by_code["SMART-A8"]["qr_scan"] is True
    assert by_code["MPOS-M3"]["printer"] is False


def test_fee_plans_in_force_and_a_new_version_never_rewrites_the_past(
    client: TestClient, state: AppState
) -> None:
    plans = client.get("/api/v1/catalog/fee-plans", params={"on": "2026-06-01"}).json()
    standard = next(p for p in plans if p["code"] == "STANDARD")
    assert standard["version"] == 1
    assert standard["debit_cap_fen"] == 2000

    data = catalog_service.default_catalog()
    v2 = dict(next(p for p in data["fee_plans"] if p["code"] == "STANDARD"))
    v2.update(version=2, effective_from="2027-01-01", credit_rate="0.0058")
    changed_v1 = dict(v2, version=1, credit_rate="0.0999")
    with state.db.unit_of_work() as uow:
        catalog_service.load(uow.session, {"fee_plans": [v2, changed_v1]})
        uow.commit()

    before = client.get("/api/v1/catalog/fee-plans", params={"on": "2026-12-31"}).json()
    after = client.get("/api/v1/catalog/fee-plans", params={"on": "2027-01-01"}).json()
    assert next(p for p in before if p["code"] == "STANDARD")["credit_rate"] == "0.006000"
    assert next(p for p in after if p["code"] == "STANDARD")["version"] == 2
    assert next(p for p in after if p["code"] == "STANDARD")["credit_rate"] == "0.005800"


def test_bad_date_is_a_422_naming_the_parameter(client: TestClient) -> None:
    response = client.get("/api/v1/catalog/fee-plans", params={"on": "2026-13-01"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "on"


def test_public_pages_show_the_catalogue(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "SMART-A8" in page.text
    assert "智能POS A8" in page.text  # Chinese by default
    english = client.get("/?lang=en")
    assert "Smart POS A8" in english.text
