"""Closing a merchant from its page: the form shows to whom the route admits, a refusal
(terminals still in service, a date in the future) comes back on the page, and a closed
merchant shows its termination date and how long its personal data is kept."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from poshub.core.clock import business_date
from poshub.core.db import utcnow
from tests.factories import contracted_merchant, login, stock_in
from tests.web.test_fleet_pages import _page, _post

TODAY = business_date(utcnow())


def _merchant_with_a_terminal(client: TestClient, serial: str) -> tuple[str, str]:
    """A contracted merchant with one allocated terminal: (MID, TID)."""
    _, mid = contracted_merchant(client)
    stock_in(client, [serial])
    allocated = client.post(
        f"/api/v1/merchants/{mid}/terminals",
        headers=login(client, "ops"),
        json={"serial_number": serial},
    )
    assert allocated.status_code == 201, allocated.text
    return mid, str(allocated.json()["tid"])


def test_only_operations_and_risk_officers_see_the_closure_form(client: TestClient) -> None:
    _, mid = contracted_merchant(client)
    for username, shown in (("ops", True), ("risk", True), ("reviewer", False), ("support", False)):
        login(client, username)
        page = _page(client, f"/admin/merchants/{mid}")
        assert ('id="close-form"' in page.text) is shown, username
    login(client, "support")
    page = _page(client, f"/admin/merchants/{mid}")
    refused = _post(client, f"/admin/merchants/{mid}/close", page, terminated_on=str(TODAY))
    assert refused.status_code == 403


def test_refusals_come_back_on_the_page_and_a_closure_shows_its_retention(
    client: TestClient,
) -> None:
    # The business date now, not at import: a run may cross midnight in Beijing.
    today = business_date(utcnow())
    mid, tid = _merchant_with_a_terminal(client, "SN-PAGE-CLOSE-1")
    url = f"/admin/merchants/{mid}/close"
    client.cookies.set("poshub_lang", "en")  # the assertions read English messages

    page = _page(client, f"/admin/merchants/{mid}")
    refused = _post(client, url, page, terminated_on=str(today), reason="合同到期不再续约")
    assert refused.status_code == 409
    assert tid in refused.text  # names the terminal still in service
    assert 'id="close-form"' in refused.text

    tomorrow = today + dt.timedelta(days=1)
    refused = _post(client, url, page, terminated_on=str(tomorrow), reason="合同到期不再续约")
    assert refused.status_code == 422
    assert "later than today" in refused.text

    # Recall the terminal: the TID is closed and its device returned for inspection.
    headers = login(client, "ops")
    recalled = client.post(f"/api/v1/terminals/{tid}/recall", headers=headers, json={"reason": ""})
    assert recalled.status_code == 422  # a recall says why
    recalled = client.post(
        f"/api/v1/terminals/{tid}/recall", headers=headers, json={"reason": "商户终止合作"}
    )
    assert recalled.status_code == 200, recalled.text
    assert recalled.json()["status"] == "closed"
    again = client.post(
        f"/api/v1/terminals/{tid}/recall", headers=headers, json={"reason": "商户终止合作"}
    )
    assert again.status_code == 409
    page = _page(client, f"/admin/merchants/{mid}")
    closed = _post(client, url, page, terminated_on=str(today), reason="合同到期不再续约")
    assert closed.status_code == 303, closed.text[:500]
    assert closed.headers["location"].endswith("#closure")
    page = _page(client, f"/admin/merchants/{mid}?lang=zh_CN")
    assert 'id="close-form"' not in page.text
    assert f'<dd id="terminated-on">{today.isoformat()}</dd>' in page.text
    kept_until = page.text.split('id="retained-until">')[1].split("<")[0]
    assert kept_until.startswith(str(today.year + 5))


def test_operations_recall_a_terminal_from_its_page(client: TestClient) -> None:
    _, tid = _merchant_with_a_terminal(client, "SN-PAGE-RECALL-1")
    client.cookies.set("poshub_lang", "en")
    page = _page(client, f"/admin/terminals/{tid}")
    assert 'id="recall-form"' in page.text
    url = f"/admin/terminals/{tid}/recall"
    refused = _post(client, url, page, reason=" ")
    assert refused.status_code == 422
    assert "Say why the terminal is recalled." in refused.text
    done = _post(client, url, page, reason="商户终止合作")
    assert done.status_code == 303
    page = _page(client, f"/admin/terminals/{tid}")
    assert 'id="recall-form"' not in page.text  # closed for good
    assert client.get(f"/api/v1/terminals/{tid}").json()["status"] == "closed"

    login(client, "support")  # reads the fleet, runs nothing
    page = _page(client, f"/admin/terminals/{tid}")
    assert 'id="recall-form"' not in page.text
    assert _post(client, url, page, reason="x").status_code == 403
