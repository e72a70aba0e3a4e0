"""The supplementary agreement on terminals (``terminal_change``) prepared from the merchant
page: allocation beyond the contract sends staff to amend it, and the page now lets them."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.web.security import LANG_COOKIE
from tests.factories import (
    add_second_operator,
    contracted_merchant,
    login,
    login_second_operator,
    sign_as_applicant,
    stock_in,
)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def _merchant_page(client: TestClient, mid: str) -> httpx.Response:
    client.cookies.set(LANG_COOKIE, "en")
    response: httpx.Response = client.get(f"/admin/merchants/{mid}")
    assert response.status_code == 200, response.text[:500]
    return response


def _line(html: str, index: int) -> str:
    """The HTML of one line of the supplementary agreement form."""
    start = html.index(f'id="amend-terminals-line-{index}"')
    return html[start : html.index("</fieldset>", start)]


def _prepare(
    client: TestClient, mid: str, page: httpx.Response, lines: list[tuple[str, str]]
) -> httpx.Response:
    """Post the form as a browser does: one model/count pair per line, in order."""
    effective = re.search(
        r'id="amend-terminals-effective" min="[0-9-]+" value="([0-9-]+)"', page.text
    )
    assert effective
    response: httpx.Response = client.post(
        f"/admin/merchants/{mid}/contracts/amendments",
        data={
            "csrf_token": _csrf(page.text),
            "kind": "terminal_change",
            "model_code": [code for code, _ in lines],
            "count": [count for _, count in lines],
            "effective_from": effective.group(1),
            "summary": "增加一台传统 POS",
        },
        follow_redirects=False,
    )
    return response


def _allocate(client: TestClient, mid: str, serial: str) -> Any:
    return client.post(
        f"/api/v1/merchants/{mid}/terminals",
        headers=login(client, "ops"),
        json={"serial_number": serial},
    )


def _versions(client: TestClient, mid: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/merchants/{mid}/contracts", headers=login(client, "reviewer"))
    assert response.status_code == 200
    versions: list[dict[str, Any]] = response.json()
    return versions


def test_operator_prepares_terminal_agreement_on_the_page_and_allocation_follows(
    client: TestClient, state: AppState
) -> None:
    created, mid = contracted_merchant(client)  # the contract covers 3 × SMART-A8
    stock_in(client, ["SN-T60-0001"], model="TRAD-T60")
    refused = _allocate(client, mid, "SN-T60-0001")
    assert refused.status_code == 409
    assert refused.json()["error"] == "contract_terminal_model"

    login(client, "ops")
    page = _merchant_page(client, mid)
    assert 'id="amend-terminals"' in page.text
    first = _line(page.text, 0)  # the contract's own line, filled in
    assert '<option value="SMART-A8" selected>' in first
    assert 'value="3"' in first
    assert '<option value="TRAD-T60"' in _line(page.text, 1)  # the catalogue to choose from

    response = _prepare(client, mid, page, [("SMART-A8", "3"), ("TRAD-T60", "1"), ("", "")])
    assert response.status_code == 303, response.text[:2000]
    assert response.headers["location"].endswith("#contracts")
    amendment = next(v for v in _versions(client, mid) if v["version"] == 2)
    assert amendment["amendment_kind"] == "terminal_change"
    assert amendment["status"] == "awaiting_merchant"
    assert [line[2:] for line in amendment["terms"]["terminals"]] == [
        [3, "SMART-A8"],
        [1, "TRAD-T60"],
    ]
    # Not in force before both parties sign it.
    assert _allocate(client, mid, "SN-T60-0001").status_code == 409

    assert sign_as_applicant(client, created)["status"] == "awaiting_countersign"
    add_second_operator(state)
    countersigned = client.post(
        f"/api/v1/merchants/{mid}/contracts/{amendment['id']}/countersign",
        headers=login_second_operator(client),
    )
    assert countersigned.status_code == 200, countersigned.text

    allocated = _allocate(client, mid, "SN-T60-0001")
    assert allocated.status_code == 201, allocated.text


def test_every_wrong_line_is_shown_next_to_its_field_at_once(client: TestClient) -> None:
    _, mid = contracted_merchant(client)
    login(client, "ops")
    page = _merchant_page(client, mid)

    response = _prepare(
        client,
        mid,
        page,
        [
            ("SMART-A8", "2"),  # lowers what the contract covers
            ("", "1"),  # a count without a model
            ("TRAD-T60", ""),  # a model without a count
            ("TRAD-T60", "0"),  # not a count
        ],
    )
    assert response.status_code == 422
    html = response.text
    assert "The supplementary agreement was not prepared: see the fields marked." in html
    assert "it cannot lower it" in _line(html, 0)
    assert "Choose the model these terminals are of." in _line(html, 1)
    assert "Give how many terminals of this model the contract covers." in _line(html, 2)
    assert "Must be at least 1." in _line(html, 3)
    # What was typed is kept, so it can be corrected.
    assert 'value="2"' in _line(html, 0)
    assert '<option value="TRAD-T60" selected>' in _line(html, 3)
    assert [v["version"] for v in _versions(client, mid)] == [1]

    login(client, "ops")  # _versions logged the reviewer in
    page = _merchant_page(client, mid)
    unchanged = _prepare(client, mid, page, [("SMART-A8", "3")])
    assert unchanged.status_code == 422
    assert 'id="amend-terminals-error"' in unchanged.text
    assert "Raise a count or add a model" in unchanged.text
    assert [v["version"] for v in _versions(client, mid)] == [1]


def test_only_staff_who_may_prepare_contracts_see_and_use_the_form(client: TestClient) -> None:
    _, mid = contracted_merchant(client)
    for username in ("ops", "reviewer"):  # CONTRACT_WRITE
        login(client, username)
        assert 'id="amend-terminals"' in _merchant_page(client, mid).text
    for username in ("risk", "support", "auditor", "admin"):  # may read the merchant only
        login(client, username)
        page = _merchant_page(client, mid)
        assert 'id="amend-terminals"' not in page.text
    login(client, "support")
    page = _merchant_page(client, mid)
    forbidden = client.post(
        f"/admin/merchants/{mid}/contracts/amendments",
        data={
            "csrf_token": _csrf(page.text),
            "kind": "terminal_change",
            "model_code": ["TRAD-T60"],
            "count": ["1"],
            "effective_from": "2099-01-01",
        },
        follow_redirects=False,
    )
    assert forbidden.status_code == 403
    assert [v["version"] for v in _versions(client, mid)] == [1]
