"""The back-office menu follows the viewer's roles: every entry leads to a page the viewer
may open, and no page the viewer may open is missing from it."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.factories import login

# Menu entry -> the roles its route admits (poshub/web/roles.py).
MENU = {
    "/admin/applications": {"reviewer", "risk", "auditor"},
    "/admin/merchants": {"reviewer", "risk", "ops", "support", "auditor", "admin"},
    "/admin/inventory": {"ops", "tech", "support", "auditor", "admin"},
    "/admin/keys": {"ops"},
    "/tech/dispatch": {"ops"},
    "/admin/transactions": {"ops", "risk", "support", "auditor", "admin"},
    "/admin/blacklist": {"reviewer", "risk", "auditor"},
    "/admin/audit": {"auditor", "admin"},
}
USERS = ("admin", "reviewer", "risk", "ops", "tech", "support", "auditor")


def _menu_links(html: str) -> set[str]:
    nav = html[html.index("<nav>") : html.index("</nav>")]
    return set(re.findall(r'href="([^"]+)"', nav))


@pytest.mark.parametrize("username", USERS)
def test_menu_shows_exactly_the_pages_the_role_may_open(client: TestClient, username: str) -> None:
    login(client, username)
    links = _menu_links(client.get("/admin").text)
    for href, admitted in MENU.items():
        assert (href in links) is (username in admitted), (username, href)
    for href in links - {"/admin"}:
        response = client.get(href, follow_redirects=False)
        assert response.status_code == 200, (username, href, response.status_code)


def test_technicians_reach_their_work_orders_from_the_menu(client: TestClient) -> None:
    login(client, "tech")
    links = _menu_links(client.get("/admin").text)
    assert "/tech" in links
    assert "/tech/dispatch" not in links
