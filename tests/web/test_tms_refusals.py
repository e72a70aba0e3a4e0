"""TMS refusals: an unknown serial costs the same work as a known one (no timing oracle),
and refused requests are counted without a database write each."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from poshub.bootstrap import AppState
from poshub.core.crypto import KeyVault
from poshub.terminals import tms
from poshub.terminals.tms_service import RefusalCounter
from tests.factories import sign_contract
from tests.web.test_tms_api import (
    OTHER_SERIAL,
    SERIAL,
    SPARE_SERIAL,
    UNKNOWN_SERIAL,
    Fleet,
    _allocate_active,
    _approved_merchant,
    _stock,
    as_staff,
    failures_by_reason,
    fetch,
)


@pytest.fixture
def fleet(client: TestClient, state: AppState) -> Fleet:
    """Two active terminals (SERIAL, OTHER_SERIAL) and a device in stock (SPARE_SERIAL)."""
    mid = _approved_merchant(client)
    sign_contract(state, mid)
    _stock(state, SERIAL, OTHER_SERIAL, SPARE_SERIAL)
    tid, secret = _allocate_active(state, mid, SERIAL)
    other_tid, other_secret = _allocate_active(state, mid, OTHER_SERIAL)
    return Fleet(client, state, mid, tid, secret, other_tid, other_secret)


@contextmanager
def statements(fleet: Fleet) -> Iterator[list[str]]:
    """Every SQL statement the app sends meanwhile."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]).lstrip().split(None, 1)[0].upper())

    engine = fleet.state.db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of the expensive steps: secret decryptions and signature verifications."""
    counts = {"decrypt": 0, "verify": 0}
    decrypt, verify = KeyVault.decrypt, tms.verify

    def counting_decrypt(self: KeyVault, blob: bytes, *, context: str) -> str:
        counts["decrypt"] += 1
        return decrypt(self, blob, context=context)

    def counting_verify(*args: Any, **kwargs: Any) -> Any:
        counts["verify"] += 1
        return verify(*args, **kwargs)

    monkeypatch.setattr(KeyVault, "decrypt", counting_decrypt)
    monkeypatch.setattr(tms, "verify", counting_verify)
    return counts


def test_an_unknown_serial_costs_the_same_work_as_a_known_one(
    fleet: Fleet, work: dict[str, int]
) -> None:
    cases = {
        "known serial, wrong secret": (SERIAL, "device_credential_invalid"),
        "unknown serial": (UNKNOWN_SERIAL, "device_credential_invalid"),
        "known serial, no credential": (SPARE_SERIAL, "device_credential_invalid"),
    }
    seen: dict[str, tuple[list[str], dict[str, int]]] = {}
    for case, (serial, code) in cases.items():
        work.update(decrypt=0, verify=0)
        with statements(fleet) as sql:
            response = fetch(fleet.client, serial, secrets.token_hex(32))
        assert response.status_code == 401, case
        assert response.json()["error"] == code
        seen[case] = (sql, dict(work))
    shapes = {case: (tuple(sql), tuple(sorted(w.items()))) for case, (sql, w) in seen.items()}
    assert len(set(shapes.values())) == 1, shapes
    # ... and that work is a device look-up, a credential look-up, one secret decrypted and
    # one HMAC verified.
    sql, counted = seen["unknown serial"]
    assert sql.count("SELECT") == 2
    assert counted == {"decrypt": 1, "verify": 1}


def test_refused_requests_make_no_database_writes(fleet: Fleet) -> None:
    with statements(fleet) as sql:
        for _ in range(10):
            assert fetch(fleet.client, SERIAL, secrets.token_hex(32)).status_code == 401
            assert fetch(fleet.client, UNKNOWN_SERIAL, secrets.token_hex(32)).status_code == 401
            assert fleet.client.get(f"/api/v1/tms/terminals/{SERIAL}/parameters").status_code == 401
    assert [s for s in sql if s in WRITES] == []
    assert failures_by_reason(fleet.state) == {}

    # Staff reading the counts see every refusal: the counter is written first.
    as_staff(fleet.client, "support")
    counts = fleet.client.get("/api/v1/tms/auth-failures").json()
    assert counts["total"] == 30
    assert counts["by_reason"]["bad_signature"] == 10
    assert counts["by_reason"]["unknown_device"] == 10
    assert counts["by_reason"]["missing_credential"] == 10
    detail = fleet.client.get(f"/api/v1/terminals/{fleet.tid}").json()
    assert detail["device"]["tms_auth_failures"] == 20


def test_refusals_are_written_once_per_flush_interval(fleet: Fleet) -> None:
    now = [0.0]
    counter = RefusalCounter(60, clock=lambda: now[0])
    app: Any = fleet.client.app
    app.state.tms_refusals = counter
    with statements(fleet) as sql:
        for _ in range(5):
            assert fetch(fleet.client, SERIAL, secrets.token_hex(32)).status_code == 401
    assert [s for s in sql if s in WRITES] == []
    now[0] = 61.0  # the interval has passed: the next refusal writes all six, at once
    with statements(fleet) as sql:
        assert fetch(fleet.client, SERIAL, secrets.token_hex(32)).status_code == 401
    writes = [s for s in sql if s in WRITES]
    assert 1 <= len(writes) <= 3  # the reason's row (insert or update) and the device's row
    assert failures_by_reason(fleet.state) == {"bad_signature": 6}
    assert counter.pending() == 0
