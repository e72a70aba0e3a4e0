"""Whose word about the client's address counts: ``X-Forwarded-For`` is believed only from
the proxies in ``POSHUB_TRUSTED_PROXIES`` (none by default), read from the right.

The address lands in the audit record of a login and in a contract's e-signature; a
client that writes the header itself must not choose what is recorded there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState, build_state
from poshub.notify.adapters import MemoryNotifier
from poshub.web.app import create_app
from tests.factories import STAFF, approved_merchant, bearer, generate_contract, sha256_of

PROXY = "10.0.0.5"
"""The reverse proxy's address, as the socket peer of every request in these tests."""
SPOOF = {"X-Forwarded-For": "203.0.113.66"}


def client_behind(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state), client=(PROXY, 50000)) as client:
        yield client


@pytest.fixture
def untrusting(state: AppState) -> Iterator[TestClient]:
    """Requests arrive from 10.0.0.5, which is not configured as a proxy (the default)."""
    assert state.settings.trusted_proxies == []
    yield from client_behind(state)


@pytest.fixture
def trusting(state: AppState, notifier: MemoryNotifier) -> Iterator[TestClient]:
    """The same, with POSHUB_TRUSTED_PROXIES=10.0.0.0/24,192.0.2.1 (same database)."""
    trusted = state.settings.model_copy(update={"trusted_proxies": ["10.0.0.0/24", "192.0.2.1"]})
    yield from client_behind(build_state(trusted, database=state.db, notifier=notifier))


def login_address(client: TestClient, headers: dict[str, str]) -> Any:
    """Log ``reviewer`` in with ``headers``; the client address its audit record holds."""
    password = STAFF["reviewer"][0]
    response = client.post(
        "/api/v1/auth/login",
        json={"username": "reviewer", "password": password},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    client.cookies.clear()
    auditor = client.post(
        "/api/v1/auth/login", json={"username": "auditor", "password": STAFF["auditor"][0]}
    )
    assert auditor.status_code == 200
    entries = client.get("/api/v1/audit", params={"entity_id": "reviewer"}).json()
    client.cookies.clear()
    logins = [e for e in entries if e["action"] == "staff.login"]
    return logins[0]["details"]["client_ip"]


def test_a_forwarded_for_header_from_an_untrusted_peer_is_ignored(untrusting: TestClient) -> None:
    assert login_address(untrusting, SPOOF) == PROXY
    assert login_address(untrusting, {"X-Forwarded-For": "garbage, 1.2.3.4"}) == PROXY


def test_a_trusted_proxy_is_believed_rightmost_untrusted_hop_first(trusting: TestClient) -> None:
    assert login_address(trusting, {}) == PROXY  # no header: the proxy itself
    assert login_address(trusting, SPOOF) == "203.0.113.66"
    # The client wrote "198.51.100.7" itself; the proxy appended the address it saw.
    forged = {"X-Forwarded-For": "198.51.100.7, 203.0.113.66"}
    assert login_address(trusting, forged) == "203.0.113.66"
    # Two trusted proxies in a row (192.0.2.1 forwarded to 10.0.0.5): skip both.
    chain = {"X-Forwarded-For": "198.51.100.7, 203.0.113.66, 192.0.2.1"}
    assert login_address(trusting, chain) == "203.0.113.66"
    # Something that is not an address ends the walk at the last trusted hop.
    assert login_address(trusting, {"X-Forwarded-For": "1.2.3.4, not-an-ip"}) == PROXY
    assert login_address(trusting, {"X-Forwarded-For": "[2001:db8::1]:443"}) == "2001:db8::1"


@pytest.mark.parametrize(("trusted", "expected"), [(False, PROXY), (True, "203.0.113.66")])
def test_the_e_signature_records_the_address_only_a_trusted_proxy_vouches_for(
    untrusting: TestClient, trusting: TestClient, trusted: bool, expected: str
) -> None:
    client = trusting if trusted else untrusting
    created, mid = approved_merchant(client)
    generate_contract(client, mid)
    base = f"/api/v1/applications/{created['id']}/contract"
    pdf = client.get(f"{base}/pdf", headers=bearer(created["access_token"]))
    assert pdf.status_code == 200, pdf.text
    signed = client.post(
        f"{base}/sign",
        headers={**bearer(created["access_token"]), **SPOOF},
        json={"signer_name": "陈明", "agree": True, "pdf_sha256": sha256_of(pdf.content)},
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["merchant_signed_ip"] == expected


@pytest.mark.parametrize("workers", ["1", "2"])
def test_poshub_web_lets_only_the_app_decide_whom_to_believe(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """uvicorn's own proxy_headers (on by default) believes X-Forwarded-For from any peer on
    127.0.0.1 and rewrites the client address before the app sees it: a client on the same
    host, or any client behind a proxy that passes the header on, chose its own address.
    `poshub web` turns it off in every mode of running."""
    import uvicorn

    from poshub.cli import main

    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.append(kwargs))
    monkeypatch.setenv("POSHUB_MODE", "demo")
    # `web --workers N` passes its data directory on through the environment: let
    # monkeypatch restore it afterwards.
    monkeypatch.setenv("POSHUB_DATA_DIR", str(tmp_path))
    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 0
    assert main(["--data-dir", str(tmp_path), "web", "--workers", workers]) == 0
    assert len(seen) == 1
    assert seen[0]["proxy_headers"] is False
