"""The key custody pages (poshub/web/pages/keys.py) through the TestClient, as two
operators with their browsers would use them: a transport key ceremony, and a terminal
key export requested on the terminal page, approved by the other operator and collected
once by the requester. Components are never written back into a page."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.terminals import hsm
from poshub.web.security import LANG_COOKIE
from tests.factories import SECOND_OPERATOR, STAFF, add_second_operator
from tests.terminals.test_key_custody import _component as component_bytes
from tests.terminals.test_key_custody import _terminal as allocated_terminal
from tests.web.test_fleet_pages import _page as fleet_page
from tests.web.test_fleet_pages import _post

PUBLISHED_TEST_KEY = "0123456789ABCDEFFEDCBA9876543210"


def _as(client: TestClient, username: str) -> None:
    """Log ``username`` in on ``client`` (the browser's cookie jar), English pages."""
    password = SECOND_OPERATOR[1] if username == SECOND_OPERATOR[0] else STAFF[username][0]
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.set(LANG_COOKIE, "en")


def _component() -> str:
    return component_bytes().hex().upper()


def _ceremony(client: TestClient, label: str = "KLD-01 injection device") -> tuple[str, str, str]:
    """Both components entered through the page; returns them and the registered KCV."""
    first, second = _component(), _component()
    _as(client, "ops")
    response = _post(
        client, "/admin/keys/transport-keys", _page(client), label=label, component=first
    )
    assert response.status_code == 303, response.text[:500]
    key_id = response.headers["location"].rsplit("-", 1)[1]
    _as(client, "ops2")
    response = _post(
        client,
        f"/admin/keys/transport-keys/{key_id}/components",
        _page(client),
        component=second,
    )
    assert response.status_code == 303, response.text[:500]
    combined = hsm.combine_components(bytes.fromhex(first), bytes.fromhex(second))
    return first, second, hsm.kcv(combined)[: hsm.KCV_TRANSPORT_LENGTH]


def _page(client: TestClient, url: str = "/admin/keys") -> httpx.Response:
    return fleet_page(client, url)


def _row(html: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{row_id}".*?</tr>', html, re.S)
    assert match, f"no row {row_id}"
    return match.group(0)


# --- The ceremony ----------------------------------------------------------------------------


def test_two_custodians_form_a_transport_key_through_the_page(
    client: TestClient, state: AppState
) -> None:
    add_second_operator(state)
    first, second = _component(), _component()
    _as(client, "ops")
    page = _page(client)
    assert 'id="no-transport-keys"' in page.text
    field = re.search(r'<input name="component" id="start-component"[^>]*>', page.text)
    assert field
    assert 'autocomplete="off"' in field.group(0)
    response = _post(client, "/admin/keys/transport-keys", page, label="KLD-01", component=first)
    assert response.status_code == 303
    key_id = response.headers["location"].rsplit("-", 1)[1]

    # The first custodian cannot enter the second component: no form, a waiting note.
    page = _page(client)
    row = _row(page.text, f"transport-key-{key_id}")
    assert "Waiting for the second component" in row
    assert f'id="waiting-{key_id}"' in row
    assert 'name="component"' not in row
    assert hsm.kcv(bytes.fromhex(first))[:6] in row  # the component's check value, to compare
    response = _post(
        client, f"/admin/keys/transport-keys/{key_id}/components", page, component=second
    )
    assert response.status_code == 403
    assert "must be entered by a different person" in response.text
    assert second not in response.text

    _as(client, "ops2")
    page = _page(client)
    row = _row(page.text, f"transport-key-{key_id}")
    assert f'id="component-{key_id}"' in row
    response = _post(
        client, f"/admin/keys/transport-keys/{key_id}/components", page, component=second
    )
    assert response.status_code == 303, response.text[:500]

    combined = hsm.combine_components(bytes.fromhex(first), bytes.fromhex(second))
    kcv = hsm.kcv(combined)[:6]
    page = _page(client)
    row = _row(page.text, f"transport-key-{key_id}")
    assert f'<code class="kcv">{kcv}</code>' in row
    assert "Registered" in row
    assert "ops" in row
    assert "ops2" in row
    assert 'name="component"' not in row
    for clear in (first, second, combined.hex().upper()):
        assert clear not in page.text.upper()


def test_a_weak_component_is_refused_beside_the_field(client: TestClient) -> None:
    _as(client, "ops")
    page = _page(client)
    response = _post(
        client, "/admin/keys/transport-keys", page, label="KLD-02", component=PUBLISHED_TEST_KEY
    )
    assert response.status_code == 422
    error = re.search(r'id="start-component-error">([^<]+)<', response.text)
    assert error
    assert "published test key or a weak key" in error.group(1)
    assert PUBLISHED_TEST_KEY not in response.text.upper()  # never written back
    assert 'value="KLD-02"' in response.text  # the label is kept
    assert 'id="no-transport-keys"' in response.text  # nothing was started

    # Not hexadecimal: the same place, in Chinese for a Chinese page.
    client.cookies.set(LANG_COOKIE, "zh_CN")
    response = _post(client, "/admin/keys/transport-keys", page, label="KLD-02", component="Z" * 32)
    assert response.status_code == 422
    error = re.search(r'id="start-component-error">([^<]+)<', response.text)
    assert error
    assert "密钥分量为 32 位十六进制字符" in error.group(1)

    # Too short: the form's own check, beside the field too; a missing label beside its own.
    client.cookies.set(LANG_COOKIE, "en")
    response = _post(client, "/admin/keys/transport-keys", page, label="", component="0123")
    assert response.status_code == 422
    assert re.search(r'id="start-component-error">Must have at least 32', response.text)
    assert 'id="start-label-error"' in response.text


# --- Export: maker-checker, collected once ----------------------------------------------------


def test_export_requested_approved_by_another_and_collected_once(
    client: TestClient, state: AppState
) -> None:
    add_second_operator(state)
    provisioned = allocated_terminal(client, "SN-KEYPAGE-0001")
    tid = provisioned["tid"]
    _, _, transport_kcv = _ceremony(client)

    # The terminal page offers the registered transport keys by check value.
    _as(client, "ops")
    page = _page(client, f"/admin/terminals/{tid}")
    assert f'<option value="{transport_kcv}">' in page.text
    response = _post(
        client,
        f"/admin/terminals/{tid}/key-export-requests",
        page,
        transport_key_kcv=transport_kcv,
    )
    assert response.status_code == 303, response.text[:500]
    request_id = response.headers["location"].rsplit("-", 1)[1]

    # The requester sees neither Approve nor (yet) Collect.
    page = _page(client)
    row = _row(page.text, f"export-{request_id}")
    assert f'id="approve-{request_id}"' not in row
    assert f'id="collect-{request_id}"' not in row
    assert "Another operator must approve" in row
    response = _post(client, f"/admin/keys/key-export-requests/{request_id}/approve", page)
    assert response.status_code == 403
    assert "the requester cannot" in response.text

    # The approver sees Approve, and after approving no Collect.
    _as(client, "ops2")
    page = _page(client)
    assert f'id="approve-{request_id}"' in _row(page.text, f"export-{request_id}")
    response = _post(client, f"/admin/keys/key-export-requests/{request_id}/approve", page)
    assert response.status_code == 303, response.text[:500]
    page = _page(client)
    row = _row(page.text, f"export-{request_id}")
    assert f'id="collect-{request_id}"' not in row
    assert f'id="approve-{request_id}"' not in row
    assert "The requester collects" in row
    response = _post(client, f"/admin/keys/key-export-requests/{request_id}/collect", page)
    assert response.status_code == 403
    assert 'id="key-block"' not in response.text

    # The requester collects: the cryptogram and the check value, this once.
    _as(client, "ops")
    page = _page(client)
    assert f'id="collect-{request_id}"' in _row(page.text, f"export-{request_id}")
    response = _post(client, f"/admin/keys/key-export-requests/{request_id}/collect", page)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["cache-control"] == "no-store"
    block = re.search(r'id="key-block">([^<]+)<', response.text)
    assert block
    assert re.search(rf'id="kcv">{provisioned["kcv"]}<', response.text)
    assert re.search(rf'id="transport-kcv">{transport_kcv}<', response.text)
    assert 'id="shown-once"' in response.text

    # A second collect is refused and shows nothing of it.
    response = _post(client, f"/admin/keys/key-export-requests/{request_id}/collect", page)
    assert response.status_code == 409
    assert "This key export was already collected; request a new one." in response.text
    assert block.group(1) not in response.text
    page = _page(client)
    assert block.group(1) not in page.text
    row = _row(page.text, f"export-{request_id}")
    assert "Collected" in row
    assert f'id="collect-{request_id}"' not in row


def test_an_export_names_a_registered_transport_key(client: TestClient) -> None:
    provisioned = allocated_terminal(client, "SN-KEYPAGE-0002")
    tid = provisioned["tid"]
    _as(client, "ops")
    page = _page(client, f"/admin/terminals/{tid}")
    assert 'id="no-transport-key"' in page.text  # a note, and the way to the ceremony
    assert 'href="/admin/keys"' in page.text
    response = _post(
        client, f"/admin/terminals/{tid}/key-export-requests", page, transport_key_kcv="ABCDEF"
    )
    assert response.status_code == 422
    error = re.search(r'id="export-kcv-error">([^<]+)<', response.text)
    assert error is None  # no select without keys; the refusal shows in the form's place
    assert "No registered transport key has this check value." in response.text
    assert 'id="no-transport-key"' in response.text


# --- Who may use them ------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["reviewer", "support", "auditor", "tech"])
def test_only_operations_reach_key_custody(client: TestClient, username: str) -> None:
    provisioned = allocated_terminal(client, f"SN-KEYROLE-{username.upper()}")
    _as(client, username)
    assert client.get("/admin/keys").status_code == 403
    assert 'href="/admin/keys"' not in client.get("/admin").text
    response = client.post(
        "/admin/keys/transport-keys",
        data={"label": "KLD", "component": _component()},
        follow_redirects=False,
    )
    assert response.status_code == 403
    if username != "reviewer":  # reviewers do not see terminals at all
        page = _page(client, f"/admin/terminals/{provisioned['tid']}")
        assert 'id="key-export-form"' not in page.text
        assert 'id="key-export"' not in page.text
