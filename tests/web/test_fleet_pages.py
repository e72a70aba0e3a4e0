"""The staff pages for contracts and the fleet (poshub/web/pages/fleet.py), through the
TestClient: who may open them, and the forms they carry, with their CSRF tokens."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from poshub.core.roles import Role
from poshub.web.roles import CONTRACT_READ, FLEET_READ, MERCHANT_READ
from poshub.web.security import LANG_COOKIE
from tests.factories import (
    STAFF,
    approved_merchant,
    contracted_merchant,
    generate_contract,
    login,
    sha256_of,
    sign_as_applicant,
    stock_in,
)

TRANSPORT_KEY = "0123456789ABCDEF0F1E2D3C4B5A6978"
CSV_HEADER = "serial_number,model_code,warehouse,firmware_version\n"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def _english(client: TestClient) -> None:
    client.cookies.set(LANG_COOKIE, "en")


def _page(client: TestClient, url: str) -> httpx.Response:
    response: httpx.Response = client.get(url)
    assert response.status_code == 200, response.text[:500]
    return response


def _post(client: TestClient, url: str, page: httpx.Response, **form: str) -> httpx.Response:
    """Submit a form as the browser does: the token from the page, no redirect followed."""
    response: httpx.Response = client.post(
        url, data={"csrf_token": _csrf(page.text), **form}, follow_redirects=False
    )
    return response


def _allowed(username: str, roles: tuple[Role, ...]) -> bool:
    return not set(STAFF[username][1]).isdisjoint(roles)


def _contract_id(client: TestClient, mid: str, version: int = 1) -> str:
    contracts = client.get(f"/api/v1/merchants/{mid}/contracts").json()
    return str(next(c["id"] for c in contracts if c["version"] == version))


# --- Who may open each page ---------------------------------------------------------------


def test_pages_admit_exactly_their_roles(client: TestClient) -> None:
    _, mid = contracted_merchant(client)
    login(client, "ops")
    contract_id = _contract_id(client, mid)
    pages: list[tuple[str, tuple[Role, ...]]] = [
        (f"/admin/merchants/{mid}", MERCHANT_READ),
        (f"/admin/contracts/{contract_id}", CONTRACT_READ),
        (f"/admin/merchants/{mid}/contracts/{contract_id}/pdf", CONTRACT_READ),
        ("/admin/inventory", FLEET_READ),
    ]
    _english(client)
    refusals = 0
    for username in STAFF:
        login(client, username)
        for url, roles in pages:
            response = client.get(url)
            if _allowed(username, roles):
                assert response.status_code == 200, (username, url, response.text[:300])
            else:
                refusals += 1
                assert response.status_code == 403, (username, url)
                assert response.headers["content-type"].startswith("text/html")
                assert "Your role does not allow this" in response.text
        dashboard = _page(client, "/admin").text
        assert ('href="/admin/inventory"' in dashboard) == _allowed(username, FLEET_READ)
    assert refusals >= 5  # technician, risk officer and reviewer are each refused somewhere

    client.cookies.clear()
    for url, _ in pages:
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303, url
        assert response.headers["location"] == f"/admin/login?next={url}"


def test_merchant_list_links_to_the_merchant_page(client: TestClient) -> None:
    _, mid = approved_merchant(client)
    _english(client)
    login(client, "support")
    assert f'href="/admin/merchants/{mid}"' in _page(client, "/admin/merchants").text
    page = _page(client, f"/admin/merchants/{mid}").text
    assert mid in page
    assert "139****0001" in page  # the mobile number, masked
    assert "13905510001" not in page
    assert 'id="prepare-form"' not in page  # support reads; it prepares nothing
    assert 'id="allocate"' not in page


def test_unknown_merchant_and_contract_are_404(client: TestClient) -> None:
    login(client, "ops")
    assert client.get("/admin/merchants/898000000000000").status_code == 404
    assert client.get("/admin/contracts/nope").status_code == 404


# --- Contracts: prepare, countersign, amend ------------------------------------------------------


def test_prepare_sign_countersign_through_the_pages(client: TestClient) -> None:
    created, mid = approved_merchant(client)
    _english(client)
    login(client, "reviewer")
    page = _page(client, f"/admin/merchants/{mid}")
    assert 'id="prepare-form"' in page.text
    assert 'id="recommended-plan"' in page.text  # the recommendation beside the plan select
    assert 'id="countersign-v1"' not in page.text

    # Without the page's token the form is refused.
    refused = client.post(
        f"/admin/merchants/{mid}/contracts",
        data={"fee_plan_code": "STANDARD"},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert "The form expired" in refused.text

    response = _post(
        client,
        f"/admin/merchants/{mid}/contracts",
        page,
        fee_plan_code="STANDARD",
        settlement_cycle="T1",
        term_months="24",
        effective_from="",
        language="zh",
    )
    assert response.status_code == 303, response.text[:500]
    assert response.headers["location"].startswith(f"/admin/merchants/{mid}")
    page = _page(client, f"/admin/merchants/{mid}")
    assert 'class="pill contract-awaiting_merchant"' in page.text
    assert 'id="prepare-form"' in page.text  # may still be prepared again until signed

    sign_as_applicant(client, created)
    page = _page(client, f"/admin/merchants/{mid}")
    assert 'class="pill contract-awaiting_countersign"' in page.text
    assert 'id="countersign-due"' in page.text
    assert 'id="countersign-v1"' not in page.text  # the reviewer cannot countersign
    contract_id = _contract_id(client, mid)
    assert (
        _post(
            client, f"/admin/merchants/{mid}/contracts/{contract_id}/countersign", page
        ).status_code
        == 403
    )

    login(client, "ops")
    page = _page(client, f"/admin/merchants/{mid}")
    assert 'id="countersign-v1"' in page.text
    assert "a colleague must countersign it" not in page.text  # ops did not prepare it
    response = _post(client, f"/admin/merchants/{mid}/contracts/{contract_id}/countersign", page)
    assert response.status_code == 303, response.text[:500]
    page = _page(client, f"/admin/merchants/{mid}")
    assert 'class="pill contract-signed"' in page.text
    assert 'id="merchant-status"' in page.text
    assert "status-contracted" in page.text
    assert 'id="prepare-form"' not in page.text
    assert 'id="amend-cycle"' in page.text  # a signed contract is changed by amendment
    assert "Countersigned by Ops (ops)" in page.text


def test_countersigning_ones_own_contract_is_refused_on_the_page(client: TestClient) -> None:
    created, mid = approved_merchant(client)
    _english(client)
    login(client, "ops")
    page = _page(client, f"/admin/merchants/{mid}")
    response = _post(
        client,
        f"/admin/merchants/{mid}/contracts",
        page,
        fee_plan_code="STANDARD",
        settlement_cycle="D0",
        term_months="12",
        language="en",
    )
    assert response.status_code == 303, response.text[:500]
    sign_as_applicant(client, created)
    contract_id = _contract_id(client, mid)

    page = _page(client, f"/admin/merchants/{mid}")
    assert "a colleague must countersign it" in page.text
    response = _post(client, f"/admin/merchants/{mid}/contracts/{contract_id}/countersign", page)
    assert response.status_code == 403
    assert 'role="alert"' in response.text
    assert "maker-checker" in response.text
    assert 'id="contracts"' in response.text  # the merchant page again, with the reason

    # From the contract page, the refusal is shown on the contract page.
    page = _page(client, f"/admin/contracts/{contract_id}")
    response = _post(
        client,
        f"/admin/merchants/{mid}/contracts/{contract_id}/countersign",
        page,
        back=f"/admin/contracts/{contract_id}",
    )
    assert response.status_code == 403
    assert "maker-checker" in response.text
    assert 'id="signature-record"' in response.text
    assert client.get(f"/api/v1/merchants/{mid}/contracts").json()[0]["status"] == (
        "awaiting_countersign"
    )


def test_prepare_refusal_keeps_the_form_and_gives_the_reason(client: TestClient) -> None:
    _, mid = approved_merchant(client)
    _english(client)
    login(client, "reviewer")
    page = _page(client, f"/admin/merchants/{mid}")
    response = _post(
        client,
        f"/admin/merchants/{mid}/contracts",
        page,
        fee_plan_code="NOPE",
        settlement_cycle="D0",
        term_months="36",
        language="en",
    )
    assert response.status_code == 422
    assert "No fee plan NOPE is in force" in response.text
    assert 'value="36"' in response.text  # what was typed is still there
    response = _post(
        client,
        f"/admin/merchants/{mid}/contracts",
        page,
        fee_plan_code="STANDARD",
        term_months="3",
        language="en",
    )
    assert response.status_code == 422
    assert "term_months: Must be at least 12." in response.text
    assert client.get(f"/api/v1/merchants/{mid}/contracts").json() == []


def test_amendment_through_the_page(client: TestClient) -> None:
    _, mid = contracted_merchant(client)
    _english(client)
    login(client, "reviewer")
    page = _page(client, f"/admin/merchants/{mid}")
    today = re.search(r'id="amend-cycle-effective" min="([0-9-]+)"', page.text)
    assert today
    # The same cycle as in force is no amendment.
    response = _post(
        client,
        f"/admin/merchants/{mid}/contracts/amendments",
        page,
        kind="settlement_cycle_change",
        settlement_cycle="T1",
        effective_from=today.group(1),
    )
    assert response.status_code == 422
    assert "Choose a settlement cycle different from the current one." in response.text

    response = _post(
        client,
        f"/admin/merchants/{mid}/contracts/amendments",
        page,
        kind="settlement_cycle_change",
        settlement_cycle="D0",
        effective_from=today.group(1),
        summary="The merchant asked for same-day settlement.",
    )
    assert response.status_code == 303, response.text[:500]
    page = _page(client, f"/admin/merchants/{mid}")
    row = re.search(r'<tr id="contract-v2".*?</tr>', page.text, re.S)
    assert row
    assert "contract-awaiting_merchant" in row.group(0)
    assert "Settlement cycle change" in row.group(0)


def test_contract_page_shows_the_contract_and_its_signature_record(client: TestClient) -> None:
    _, mid = contracted_merchant(client)
    _english(client)
    login(client, "auditor")
    contract = client.get(f"/api/v1/merchants/{mid}/contracts").json()[0]
    page = _page(client, f"/admin/contracts/{contract['id']}").text
    assert '<article class="contract" lang="zh-CN">' in page  # the fragment, not escaped
    assert "&lt;article" not in page
    assert "POS机商户服务协议" in page
    assert 'href="/static/contract.css' in page
    assert contract["pdf_sha256"] in page
    assert 'id="merchant-signature"' in page
    assert "陈明" in page
    assert "Ops (ops)" in page  # the countersignature
    assert 'id="countersign"' not in page  # signed: nothing left to countersign
    pdf = client.get(f"/admin/merchants/{mid}/contracts/{contract['id']}/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert sha256_of(pdf.content) == contract["pdf_sha256"]
    # A contract of one merchant is not reachable under another MID.
    _, other = approved_merchant(client)
    login(client, "auditor")
    assert client.get(f"/admin/merchants/{other}/contracts/{contract['id']}/pdf").status_code == 404


# --- Inventory and stock-in --------------------------------------------------------------------


def _upload(client: TestClient, page: httpx.Response, body: str) -> httpx.Response:
    response: httpx.Response = client.post(
        "/admin/inventory/stock-in",
        data={"csrf_token": _csrf(page.text)},
        files={"file": ("delivery.csv", body.encode(), "text/csv")},
        follow_redirects=False,
    )
    return response


def test_stock_in_with_a_duplicate_serial_imports_nothing(client: TestClient) -> None:
    stock_in(client, ["SN-DUP-000001"])
    _english(client)
    login(client, "ops")
    page = _page(client, "/admin/inventory")
    assert 'id="stock-in-form"' in page.text
    body = (
        CSV_HEADER
        + "SN-NEW-000001,SMART-A8,合肥仓,1.0.0\n"
        + "SN-DUP-000001,SMART-A8,合肥仓,1.0.0\n"
        + "SN-NEW-000001,SMART-A8,合肥仓,1.0.0\n"
    )
    response = _upload(client, page, body)
    assert response.status_code == 422
    report = re.search(
        r'<section class="card attention" id="stock-in-report">.*?</section>', response.text, re.S
    )
    assert report, response.text[:1000]
    assert "Nothing was imported" in report.group(0)
    rows = re.findall(
        r"<tr><td>(\d+)</td><td><code>([a-z_]+)</code></td><td>([^<]+)</td></tr>", report.group(0)
    )
    assert [(r, c) for r, c, _ in rows] == [("3", "serial_number"), ("4", "serial_number")]
    assert "SN-DUP-000001 is already in the fleet" in rows[0][2]
    assert "already appears in row 2" in rows[1][2]

    devices = _page(client, "/admin/inventory?status=in_stock").text
    assert "SN-DUP-000001" in devices
    assert "SN-NEW-000001" not in devices
    assert client.get("/api/v1/inventory/summary").json() == {"SMART-A8": {"in_stock": 1}}


def test_stock_in_success_missing_file_and_csrf(client: TestClient) -> None:
    _english(client)
    login(client, "ops")
    page = _page(client, "/admin/inventory")
    response = _upload(client, page, CSV_HEADER + "SN-OK-000001,SMART-A8,合肥仓,\n")
    assert response.status_code == 303, response.text[:500]
    assert re.fullmatch(r"/admin/inventory\?batch=\d+", response.headers["location"])
    page = _page(client, response.headers["location"])
    assert 'id="stock-in-result"' in page.text
    assert "Imported 1 devices from delivery.csv" in page.text
    assert "SN-OK-000001" in page.text
    assert re.search(r'data-status="in_stock"><a [^>]*>1</a>', page.text)

    missing = client.post(
        "/admin/inventory/stock-in", data={"csrf_token": _csrf(page.text)}, follow_redirects=False
    )
    assert missing.status_code == 422
    assert "Choose the supplier&#39;s CSV file to import." in missing.text

    forged = client.post(
        "/admin/inventory/stock-in",
        data={"csrf_token": "0" * 64},
        files={"file": ("delivery.csv", b"x", "text/csv")},
        follow_redirects=False,
    )
    assert forged.status_code == 403

    login(client, "tech")  # technicians read the inventory but import nothing
    page = _page(client, "/admin/inventory")
    assert 'id="stock-in-form"' not in page.text
    assert _upload(client, page, CSV_HEADER).status_code == 403


def test_inventory_filters_by_status_and_model(client: TestClient) -> None:
    stock_in(client, ["SN-A8-000101", "SN-A8-000102"])
    stock_in(client, ["SN-T6-000101"], model="TRAD-T60")
    login(client, "support")
    page = _page(client, "/admin/inventory?model=TRAD-T60").text
    assert "SN-T6-000101" in page
    assert "SN-A8-000101" not in page
    page = _page(client, "/admin/inventory?status=retired").text
    assert "SN-A8-000101" not in page
    page = _page(client, "/admin/inventory?status=bogus").text  # an unknown filter shows all
    assert "SN-A8-000102" in page
    assert 'id="total">3<' in page


# --- Allocation and key export ---------------------------------------------------------------


def test_allocation_shows_the_secret_once(client: TestClient) -> None:
    _, mid = contracted_merchant(client)
    stock_in(client, ["SN-ALLOC-0001"])
    stock_in(client, ["SN-OTHER-0001"], model="TRAD-T60")  # not the model requested
    _english(client)
    login(client, "ops")
    page = _page(client, f"/admin/merchants/{mid}")
    select = re.search(
        r'<select name="serial_number" id="allocate-serial".*?</select>', page.text, re.S
    )
    assert select
    assert "SN-ALLOC-0001" in select.group(0)
    assert "SN-OTHER-0001" not in select.group(0)

    response = _post(
        client, f"/admin/merchants/{mid}/terminals", page, serial_number="SN-ALLOC-0001"
    )
    assert response.status_code == 200, response.text[:500]
    assert response.headers["cache-control"] == "no-store"
    assert 'id="secret-warning"' in response.text
    assert "shown this once and never again" in response.text
    secret = re.search(r'id="device-secret">([0-9a-f]{64})<', response.text)
    kcv = re.search(r'id="kcv">([0-9A-F]{8})<', response.text)
    tid = re.search(r'id="tid">(\d{8})<', response.text)
    assert secret
    assert kcv
    assert tid

    page = _page(client, f"/admin/merchants/{mid}")
    assert f'id="terminal-{tid.group(1)}"' in page.text
    assert kcv.group(1) in page.text
    assert secret.group(1) not in page.text
    assert secret.group(1) not in _page(client, "/admin/inventory").text
    assert 'id="allocate-no-stock"' in page.text  # the only SMART-A8 is taken

    # Key export: no form takes a transport key in clear any more; the page says how a key
    # leaves (a registered transport key and a second operator, tests/terminals/
    # test_key_custody.py), and the old route is gone.
    assert f'id="key-export-{tid.group(1)}"' in page.text
    assert 'name="transport_key"' not in page.text
    response = _post(
        client, f"/admin/terminals/{tid.group(1)}/key-export", page, transport_key=TRANSPORT_KEY
    )
    assert response.status_code in (404, 405)

    # Operations only: a support agent sees the terminal, and neither form.
    login(client, "support")
    page = _page(client, f"/admin/merchants/{mid}")
    assert f'id="terminal-{tid.group(1)}"' in page.text
    assert "key-export-" not in page.text
    assert 'id="allocate"' not in page.text


def test_allocation_needs_a_signed_contract(client: TestClient) -> None:
    _, mid = approved_merchant(client)
    generate_contract(client, mid)
    stock_in(client, ["SN-EARLY-0001"])
    _english(client)
    login(client, "ops")
    page = _page(client, f"/admin/merchants/{mid}")
    assert 'id="allocate-blocked"' in page.text
    response = _post(
        client, f"/admin/merchants/{mid}/terminals", page, serial_number="SN-EARLY-0001"
    )
    assert response.status_code == 409
    assert "has no contract signed by both parties" in response.text
    assert 'id="device-secret"' not in response.text


@pytest.mark.parametrize("serial", ["", "SN-MISSING-01"])
def test_allocation_of_a_bad_serial_is_refused_on_the_page(client: TestClient, serial: str) -> None:
    _, mid = contracted_merchant(client)
    _english(client)
    login(client, "ops")
    page = _page(client, f"/admin/merchants/{mid}")
    response = _post(client, f"/admin/merchants/{mid}/terminals", page, serial_number=serial)
    expected: dict[str, Any] = {"": (422, "serial_number"), "SN-MISSING-01": (404, "No device")}
    status, text = expected[serial]
    assert response.status_code == status
    assert text in response.text
    assert 'role="alert"' in response.text
