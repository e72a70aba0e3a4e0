"""The TMS over HTTP: signed device requests (parameters, heartbeat), refusals answered
401 and counted even though the request fails, remote lock, parameter versions, and the
staff routes' roles."""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from poshub.bootstrap import AppState
from poshub.core import limits
from poshub.core.audit import Actor, AuditEntry
from poshub.core.db import utcnow
from poshub.merchants import repository as merchant_repository
from poshub.terminals import repository, service, tms
from poshub.terminals.models import Device, DeviceStatus
from tests.factories import approved_merchant, login, sign_contract

MODEL = "SMART-A8"
SERIAL = "SN-TMS-000001"
OTHER_SERIAL = "SN-TMS-000002"
SPARE_SERIAL = "SN-TMS-000003"
UNKNOWN_SERIAL = "SN-NOBODY-0001"
ACTOR = Actor.system("tests")


# --- Setting up a merchant with terminals ---------------------------------------------------


@dataclass
class Fleet:
    client: TestClient
    state: AppState
    mid: str
    tid: str
    secret: str
    other_tid: str
    other_secret: str


def _approved_merchant(client: TestClient) -> str:
    _, mid = approved_merchant(client)
    return mid


def _stock(state: AppState, *serials: str) -> None:
    now = utcnow()
    with state.db.unit_of_work() as uow:
        uow.session.add_all(
            Device(
                serial_number=serial,
                model_code=MODEL,
                status=str(DeviceStatus.IN_STOCK),
                warehouse="合肥仓",
                received_at=now,
                tms_auth_failures=0,
                updated_at=now,
            )
            for serial in serials
        )
        uow.commit()


def _allocate_active(state: AppState, mid: str, serial: str) -> tuple[str, str]:
    """Allocate ``serial`` to a new TID and take it through acceptance: (TID, secret)."""
    now = utcnow()
    with state.db.unit_of_work() as uow:
        session = uow.session
        merchant = merchant_repository.by_mid(session, mid)
        assert merchant is not None
        provisioned = service.allocate(
            session,
            state.settings,
            state.vault,
            merchant,
            serial,
            install_address=None,
            actor=ACTOR,
            now=now,
        )
        service.mark_installed(session, provisioned.device, actor=ACTOR, now=now)
        service.activate(
            session,
            merchant,
            provisioned.terminal,
            provisioned.device,
            acceptance_reference="000000000001",
            actor=ACTOR,
            now=now,
        )
        tid, secret = provisioned.terminal.tid, provisioned.device_secret
        uow.commit()
    return tid, secret


@pytest.fixture
def fleet(client: TestClient, state: AppState) -> Fleet:
    mid = _approved_merchant(client)
    sign_contract(state, mid)
    _stock(state, SERIAL, OTHER_SERIAL, SPARE_SERIAL)
    tid, secret = _allocate_active(state, mid, SERIAL)
    other_tid, other_secret = _allocate_active(state, mid, OTHER_SERIAL)
    return Fleet(client, state, mid, tid, secret, other_tid, other_secret)


# --- Helpers -------------------------------------------------------------------------------


def params_path(serial: str) -> str:
    return f"/api/v1/tms/terminals/{serial}/parameters"


def heartbeat_path(serial: str) -> str:
    return f"/api/v1/tms/terminals/{serial}/heartbeat"


def fetch(
    client: TestClient, serial: str, secret: str, *, header_serial: str | None = None, **kw: Any
) -> Any:
    path = params_path(serial)
    headers = tms.signed_headers(header_serial or serial, secret, "GET", path, **kw)
    return client.get(path, headers=headers)


HEARTBEAT = {
    "app_version": "2.3.1",
    "firmware_version": "1.4.2",
    "network": "4g",
    "signal_dbm": -71,
    "battery_percent": 86,
    "latitude": 31.820587,
    "longitude": 117.227239,
}


def beat(client: TestClient, serial: str, secret: str, report: Any = None) -> Any:
    path = heartbeat_path(serial)
    body = report if isinstance(report, bytes) else json.dumps(report or HEARTBEAT).encode()
    headers = tms.signed_headers(serial, secret, "POST", path, body)
    return client.post(path, content=body, headers=headers | {"Content-Type": "application/json"})


def device_row(state: AppState, serial: str) -> Device:
    with state.db.unit_of_work(read_only=True) as uow:
        device = repository.device_by_serial(uow.session, serial)
        assert device is not None
        uow.session.expunge(device)  # keep its loaded values after the session ends
        return device


def failures_by_reason(state: AppState) -> dict[str, int]:
    with state.db.unit_of_work(read_only=True) as uow:
        return repository.auth_failure_counts(uow.session)


def flush_refusals(fleet: Fleet) -> int:
    """Write the refusals the web process counted in memory (RefusalCounter)."""
    app: Any = fleet.client.app
    counter = getattr(app.state, "tms_refusals", None)
    return counter.flush(fleet.state.db) if counter is not None else 0


def as_staff(client: TestClient, username: str) -> dict[str, str]:
    client.cookies.clear()
    return login(client, username)


# --- Fetching parameters -----------------------------------------------------------------


def test_fetch_with_the_right_credential(fleet: Fleet) -> None:
    before = utcnow()
    response = fetch(fleet.client, SERIAL, fleet.secret)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["serial"] == SERIAL
    assert body["tid"] == fleet.tid
    assert body["parameter_version"] == 1
    assert body["terminal_status"] == "active"
    assert body["locked"] is False
    assert body["may_transact"] is True
    params = body["params"]
    assert params["mid"] == fleet.mid
    assert params["tid"] == fleet.tid
    assert params["port"] == fleet.state.settings.gateway_port
    assert "sale" in params["enabled_transactions"]
    assert fleet.secret not in response.text

    with fleet.state.db.unit_of_work(read_only=True) as uow:
        terminal = repository.terminal_by_tid(uow.session, fleet.tid)
        assert terminal is not None
        current = repository.current_parameters(uow.session, terminal.id)
        assert current is not None
        assert current.fetched_by_serial == SERIAL
        assert current.fetched_at is not None
        assert current.fetched_at >= before.replace(microsecond=0)
    assert device_row(fleet.state, SERIAL).tms_auth_failures == 0
    assert failures_by_reason(fleet.state) == {}


def test_device_routes_need_no_cookie_or_csrf(fleet: Fleet) -> None:
    """A logged-in browser's cookies neither help nor hinder a device request."""
    login(fleet.client, "ops")
    assert fetch(fleet.client, SERIAL, fleet.secret).status_code == 200
    assert beat(fleet.client, SERIAL, fleet.secret).status_code == 200
    fleet.client.cookies.clear()
    unsigned = fleet.client.get(params_path(SERIAL))
    assert unsigned.status_code == 401


# --- Refusals: 401, counted on the device and by reason ---------------------------------------


def _refused(fleet: Fleet, case: str) -> Any:
    client = fleet.client
    path = params_path(SERIAL)
    if case == "missing_headers":
        return client.get(path)
    if case == "missing_signature":
        headers = tms.signed_headers(SERIAL, fleet.secret, "GET", path)
        del headers["X-PosHub-Signature"]
        return client.get(path, headers=headers)
    if case == "wrong_secret":
        return fetch(client, SERIAL, secrets.token_hex(32))
    if case == "other_devices_secret":
        return fetch(client, SERIAL, fleet.other_secret)
    if case == "stale_timestamp":
        return fetch(client, SERIAL, fleet.secret, now=time.time() - 3600)
    if case == "future_timestamp":
        return fetch(client, SERIAL, fleet.secret, now=time.time() + 3600)
    if case == "serial_mismatch":
        # The other device signs correctly, with its own serial, but for this one's URL.
        return fetch(client, SERIAL, fleet.other_secret, header_serial=OTHER_SERIAL)
    if case == "tampered_path":
        headers = tms.signed_headers(SERIAL, fleet.secret, "GET", params_path(OTHER_SERIAL))
        return client.get(path, headers=headers)
    if case == "unknown_serial":
        return fetch(client, UNKNOWN_SERIAL, secrets.token_hex(32))
    if case == "overlong_serial":
        return fetch(client, "S" * 200, secrets.token_hex(32))
    raise AssertionError(case)


REFUSALS = {
    # case: (reason counted, error code, device whose counter goes up)
    "missing_headers": ("missing_credential", "device_credential_missing", SERIAL),
    "missing_signature": ("missing_credential", "device_credential_missing", SERIAL),
    "wrong_secret": ("bad_signature", "device_credential_invalid", SERIAL),
    "other_devices_secret": ("bad_signature", "device_credential_invalid", SERIAL),
    "stale_timestamp": ("stale_timestamp", "device_clock_skew", SERIAL),
    "future_timestamp": ("stale_timestamp", "device_clock_skew", SERIAL),
    "serial_mismatch": ("serial_mismatch", "device_serial_mismatch", OTHER_SERIAL),
    "tampered_path": ("bad_signature", "device_credential_invalid", SERIAL),
    "unknown_serial": ("unknown_device", "device_credential_invalid", None),
    "overlong_serial": ("unknown_device", "device_credential_invalid", None),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_and_counted(fleet: Fleet, case: str, caplog: pytest.LogCaptureFixture) -> None:
    reason, code, counted_on = REFUSALS[case]
    with caplog.at_level(logging.WARNING, logger="poshub.terminals.tms_service"):
        response = _refused(fleet, case)
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == code
    assert body["message"]
    assert fleet.secret not in response.text
    assert fleet.other_secret not in response.text

    # Counted in memory, written when the counter flushes (tests/web/test_tms_refusals.py).
    assert failures_by_reason(fleet.state) == {}
    assert flush_refusals(fleet) == 1
    assert failures_by_reason(fleet.state) == {reason: 1}
    for serial in (SERIAL, OTHER_SERIAL):
        device = device_row(fleet.state, serial)
        expected = 1 if serial == counted_on else 0
        assert device.tms_auth_failures == expected, serial
        assert (device.last_auth_failure_at is not None) == bool(expected)
    # Nothing of the refused request was kept.
    with fleet.state.db.unit_of_work(read_only=True) as uow:
        terminal = repository.terminal_by_tid(uow.session, fleet.tid)
        assert terminal is not None
        current = repository.current_parameters(uow.session, terminal.id)
        assert current is not None
        assert current.fetched_at is None
    # Logged, without the credential.
    logged = [r.getMessage() for r in caplog.records if "TMS request refused" in r.getMessage()]
    assert len(logged) == 1
    assert reason in logged[0]
    assert fleet.secret not in logged[0]
    assert "signature" not in logged[0].lower().replace("bad_signature", "")


def test_refusals_accumulate_and_staff_see_them(fleet: Fleet) -> None:
    for _ in range(3):
        assert fetch(fleet.client, SERIAL, secrets.token_hex(32)).status_code == 401
    assert fleet.client.get(params_path(SERIAL)).status_code == 401
    assert fetch(fleet.client, UNKNOWN_SERIAL, secrets.token_hex(32)).status_code == 401
    assert fetch(fleet.client, SERIAL, fleet.secret).status_code == 200  # counters stay

    as_staff(fleet.client, "support")
    counts = fleet.client.get("/api/v1/tms/auth-failures")
    assert counts.status_code == 200, counts.text
    assert counts.json() == {
        "total": 5,
        "by_reason": {
            "missing_credential": 1,
            "unknown_device": 1,
            "bad_signature": 3,
            "stale_timestamp": 0,
            "revoked_credential": 0,
            "serial_mismatch": 0,
        },
    }
    detail = fleet.client.get(f"/api/v1/terminals/{fleet.tid}").json()
    assert detail["device"]["tms_auth_failures"] == 4
    assert detail["device"]["last_auth_failure_at"] is not None


def test_heartbeat_checks_the_signature_before_the_body(fleet: Fleet) -> None:
    """An unsigned request learns nothing about what a valid body looks like."""
    response = fleet.client.post(heartbeat_path(SERIAL), json={"battery_percent": 900})
    assert response.status_code == 401
    assert response.json()["error"] == "device_credential_missing"
    # A body changed after signing is a bad signature.
    path = heartbeat_path(SERIAL)
    body = json.dumps(HEARTBEAT).encode()
    headers = tms.signed_headers(SERIAL, fleet.secret, "POST", path, body)
    tampered = body.replace(b"86", b"99")
    response = fleet.client.post(path, content=tampered, headers=headers)
    assert response.status_code == 401
    flush_refusals(fleet)
    assert failures_by_reason(fleet.state) == {"missing_credential": 1, "bad_signature": 1}


def test_revoked_credential_after_a_swap(fleet: Fleet) -> None:
    now = utcnow()
    with fleet.state.db.unit_of_work() as uow:
        terminal = repository.terminal_by_tid(uow.session, fleet.tid, for_update=True)
        assert terminal is not None
        swapped = service.swap(
            uow.session,
            fleet.state.settings,
            fleet.state.vault,
            terminal,
            SPARE_SERIAL,
            actor=ACTOR,
            now=now,
        )
        new_secret = swapped.device_secret
        uow.commit()

    old = fetch(fleet.client, SERIAL, fleet.secret)
    assert old.status_code == 401, old.text
    assert old.json()["error"] == "device_credential_invalid"
    flush_refusals(fleet)
    assert failures_by_reason(fleet.state) == {"revoked_credential": 1}
    assert device_row(fleet.state, SERIAL).tms_auth_failures == 1

    new = fetch(fleet.client, SPARE_SERIAL, new_secret)
    assert new.status_code == 200, new.text
    assert new.json()["tid"] == fleet.tid
    # The old secret is worth nothing for the new device either.
    assert fetch(fleet.client, SPARE_SERIAL, fleet.secret).status_code == 401


def test_allocated_device_without_terminal_is_a_conflict(fleet: Fleet) -> None:
    """A device whose credential is in force but that serves no TID (e.g. taken off its
    terminal by a process that did not revoke it) gets a clear 409, not parameters."""
    with fleet.state.db.unit_of_work() as uow:
        device = repository.device_by_serial(uow.session, SERIAL)
        assert device is not None
        device.terminal_id = None
        uow.commit()
    response = fetch(fleet.client, SERIAL, fleet.secret)
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "device_not_allocated"
    assert SERIAL in response.json()["message"]
    heartbeat = beat(fleet.client, SERIAL, fleet.secret)
    assert heartbeat.status_code == 200
    assert heartbeat.json()["tid"] is None
    assert heartbeat.json()["may_transact"] is False


def test_body_too_large(fleet: Fleet) -> None:
    body = b"{" + b" " * (limits.TMS_BODY_BYTES_MAX + 1) + b"}"
    path = heartbeat_path(SERIAL)
    headers = tms.signed_headers(SERIAL, fleet.secret, "POST", path, body)
    response = fleet.client.post(path, content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


# --- Heartbeat -----------------------------------------------------------------------------


def test_heartbeat_is_stored(fleet: Fleet) -> None:
    response = beat(fleet.client, SERIAL, fleet.secret)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "serial": SERIAL,
        "tid": fleet.tid,
        "terminal_status": "active",
        "locked": False,
        "may_transact": True,
        "parameter_version": 1,
        "server_time": body["server_time"],
    }
    device = device_row(fleet.state, SERIAL)
    assert device.app_version == "2.3.1"
    assert device.firmware_version == "1.4.2"
    assert device.network == "4g"
    assert device.signal_dbm == -71
    assert device.battery_percent == 86
    assert device.latitude == "31.820587"
    assert device.longitude == "117.227239"
    assert device.last_heartbeat_at is not None

    # Ethernet, mains-powered, no location: the optional fields may be left out.
    wired = {"app_version": "2.3.2", "firmware_version": "1.4.2", "network": "ethernet"}
    assert beat(fleet.client, SERIAL, fleet.secret, wired).status_code == 200
    device = device_row(fleet.state, SERIAL)
    assert (device.network, device.signal_dbm, device.battery_percent) == ("ethernet", None, None)
    assert device.latitude is None

    as_staff(fleet.client, "ops")
    detail = fleet.client.get(f"/api/v1/terminals/{fleet.tid}").json()
    assert detail["device"]["app_version"] == "2.3.2"
    assert detail["device"]["last_heartbeat_at"] is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"battery_percent": 101}, "battery_percent"),
        ({"battery_percent": -1}, "battery_percent"),
        ({"battery_percent": "85"}, "battery_percent"),
        ({"network": "3g"}, "network"),
        ({"signal_dbm": 5}, "signal_dbm"),
        ({"signal_dbm": -151}, "signal_dbm"),
        ({"latitude": 90.5}, "latitude"),
        ({"longitude": -180.01}, "longitude"),
        ({"latitude": None}, "latitude"),
        ({"longitude": None}, "longitude"),
        ({"app_version": ""}, "app_version"),
        ({"app_version": "1.0 beta"}, "app_version"),
        ({"firmware_version": "v" * 33}, "firmware_version"),
        ({"app_version": None}, "app_version"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_heartbeat_is_validated(fleet: Fleet, change: dict[str, Any], field: str) -> None:
    report = {k: v for k, v in (HEARTBEAT | change).items() if v is not None}
    response = beat(fleet.client, SERIAL, fleet.secret, report)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_failed"
    assert [d["field"] for d in body["detail"]] == [field]
    assert device_row(fleet.state, SERIAL).last_heartbeat_at is None
    assert failures_by_reason(fleet.state) == {}


def test_heartbeat_body_must_be_json(fleet: Fleet) -> None:
    response = beat(fleet.client, SERIAL, fleet.secret, b"battery=85")
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "body"


# --- Lock and unlock ---------------------------------------------------------------------------


def test_lock_is_reported_to_the_device(fleet: Fleet) -> None:
    csrf = as_staff(fleet.client, "ops")
    locked = fleet.client.post(
        f"/api/v1/terminals/{fleet.tid}/lock", headers=csrf, json={"reason": "疑似套现"}
    )
    assert locked.status_code == 200, locked.text
    assert locked.json()["status"] == "locked"
    assert locked.json()["locked_reason"] == "疑似套现"
    assert locked.json()["device"]["status"] == "locked"

    heartbeat = beat(fleet.client, SERIAL, fleet.secret).json()
    assert (heartbeat["terminal_status"], heartbeat["locked"], heartbeat["may_transact"]) == (
        "locked",
        True,
        False,
    )
    served = fetch(fleet.client, SERIAL, fleet.secret)
    assert served.status_code == 200
    assert served.json()["locked"] is True
    assert "疑似套现" not in served.text  # the reason is for staff, not the shop
    # Locking one terminal leaves the other alone.
    assert beat(fleet.client, OTHER_SERIAL, fleet.other_secret).json()["locked"] is False

    again = fleet.client.post(
        f"/api/v1/terminals/{fleet.tid}/lock", headers=csrf, json={"reason": "again"}
    )
    assert again.status_code == 409
    unlocked = fleet.client.post(f"/api/v1/terminals/{fleet.tid}/unlock", headers=csrf)
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["status"] == "active"
    assert unlocked.json()["locked_reason"] is None
    heartbeat = beat(fleet.client, SERIAL, fleet.secret).json()
    assert (heartbeat["locked"], heartbeat["may_transact"]) == (False, True)

    with fleet.state.db.unit_of_work(read_only=True) as uow:
        actions = (
            uow.session.execute(select(AuditEntry.action).where(AuditEntry.entity_id == fleet.tid))
            .scalars()
            .all()
        )
    assert "terminal.locked" in actions
    assert "terminal.unlocked" in actions


def test_lock_needs_a_reason(fleet: Fleet) -> None:
    csrf = as_staff(fleet.client, "ops")
    response = fleet.client.post(
        f"/api/v1/terminals/{fleet.tid}/lock", headers=csrf, json={"reason": ""}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "reason"


def test_unknown_tid(fleet: Fleet) -> None:
    csrf = as_staff(fleet.client, "ops")
    response = fleet.client.post(
        "/api/v1/terminals/99999999/lock", headers=csrf, json={"reason": "x"}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "terminal_not_found"


# --- Parameter versions -----------------------------------------------------------------------


def test_parameter_change_is_served_as_a_new_version(fleet: Fleet) -> None:
    csrf = as_staff(fleet.client, "ops")
    changed = fleet.client.put(
        f"/api/v1/terminals/{fleet.tid}/parameters",
        headers=csrf,
        json={"params": {"receipt_footer": "谢谢惠顾", "response_timeout_seconds": 45}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert changed.json()["created_by"] == "ops"
    assert changed.json()["fetched_at"] is None

    heartbeat = beat(fleet.client, SERIAL, fleet.secret).json()
    assert heartbeat["parameter_version"] == 2
    served = fetch(fleet.client, SERIAL, fleet.secret).json()
    assert served["parameter_version"] == 2
    assert served["params"]["receipt_footer"] == "谢谢惠顾"
    assert served["params"]["response_timeout_seconds"] == 45
    assert served["params"]["mid"] == fleet.mid  # carried over

    history = fleet.client.get(f"/api/v1/terminals/{fleet.tid}/parameters")
    assert history.status_code == 200
    versions = history.json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["fetched_by_serial"] == SERIAL
    assert versions[1]["params"]["receipt_footer"] == ""

    # Sending the same values again creates no version.
    same = fleet.client.put(
        f"/api/v1/terminals/{fleet.tid}/parameters",
        headers=csrf,
        json={"params": {"receipt_footer": "谢谢惠顾"}},
    )
    assert same.json()["version"] == 2
    detail = fleet.client.get(f"/api/v1/terminals/{fleet.tid}").json()
    assert detail["parameter_version"] == 2
    assert detail["parameters_fetched_at"] is not None

    with fleet.state.db.unit_of_work(read_only=True) as uow:
        entries = uow.session.execute(
            select(AuditEntry.entity_id, AuditEntry.details).where(
                AuditEntry.action == "terminal.parameters_changed"
            )
        ).all()
    assert len(entries) == 1
    entity_id, details = entries[0]
    assert entity_id == fleet.tid
    assert details["version"] == 2
    assert details["changes"]["response_timeout_seconds"] == {"from": 60, "to": 45}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"mid": "898340154110002"}, "params.mid"),
        ({"host": "evil.example"}, "params.host"),
        ({"response_timeout_seconds": 500}, "params.response_timeout_seconds"),
        ({"enabled_transactions": ["sale", "teleport"]}, "params.enabled_transactions"),
        ({"receipt_name_zh": ""}, "params.receipt_name_zh"),
        ({"single_transaction_limit_fen": True}, "params.single_transaction_limit_fen"),
    ],
)
def test_parameter_change_is_validated(fleet: Fleet, params: dict[str, Any], field: str) -> None:
    csrf = as_staff(fleet.client, "ops")
    response = fleet.client.put(
        f"/api/v1/terminals/{fleet.tid}/parameters", headers=csrf, json={"params": params}
    )
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["detail"]] == [field]
    assert fetch(fleet.client, SERIAL, fleet.secret).json()["parameter_version"] == 1


def test_empty_parameter_change_is_refused(fleet: Fleet) -> None:
    csrf = as_staff(fleet.client, "ops")
    response = fleet.client.put(
        f"/api/v1/terminals/{fleet.tid}/parameters", headers=csrf, json={"params": {}}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "params"


# --- Staff routes: roles --------------------------------------------------------------------

READ_ROUTES = [
    ("GET", "/api/v1/terminals/{tid}"),
    ("GET", "/api/v1/terminals/{tid}/parameters"),
    ("GET", "/api/v1/tms/auth-failures"),
]
WRITE_ROUTES = [
    ("PUT", "/api/v1/terminals/{tid}/parameters", {"params": {"receipt_footer": "x"}}),
    ("POST", "/api/v1/terminals/{tid}/lock", {"reason": "Testing."}),
    ("POST", "/api/v1/terminals/{tid}/unlock", None),
]


@pytest.mark.parametrize(("method", "path"), READ_ROUTES)
def test_read_routes_roles(fleet: Fleet, method: str, path: str) -> None:
    url = path.format(tid=fleet.tid)
    fleet.client.cookies.clear()
    anonymous = fleet.client.request(method, url)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "login_required"
    for username, allowed in [
        ("ops", True),
        ("support", True),
        ("auditor", True),
        ("admin", True),
        ("reviewer", False),
        ("risk", False),
        ("tech", False),
    ]:
        as_staff(fleet.client, username)
        response = fleet.client.request(method, url)
        assert response.status_code == (200 if allowed else 403), (username, response.text)


@pytest.mark.parametrize(("method", "path", "body"), WRITE_ROUTES)
def test_write_routes_roles(
    fleet: Fleet, method: str, path: str, body: dict[str, Any] | None
) -> None:
    url = path.format(tid=fleet.tid)
    fleet.client.cookies.clear()
    anonymous = fleet.client.request(method, url, json=body)
    assert anonymous.status_code == 401
    for username in ("support", "auditor", "admin", "reviewer", "risk", "tech"):
        csrf = as_staff(fleet.client, username)
        response = fleet.client.request(method, url, json=body, headers=csrf)
        assert response.status_code == 403, (username, response.text)
        assert response.json()["error"] == "role_forbidden"
    csrf = as_staff(fleet.client, "ops")
    response = fleet.client.request(method, url, json=body, headers=csrf)
    # Unlocking an active terminal is a conflict, not a refusal of the role.
    assert response.status_code == (409 if path.endswith("/unlock") else 200), response.text


def test_staff_responses_carry_no_secret(fleet: Fleet) -> None:
    as_staff(fleet.client, "ops")
    for url in (
        f"/api/v1/terminals/{fleet.tid}",
        f"/api/v1/terminals/{fleet.tid}/parameters",
        "/api/v1/tms/auth-failures",
    ):
        response = fleet.client.get(url)
        assert response.status_code == 200
        assert fleet.secret not in response.text
        assert "secret" not in response.text.lower()
        assert "key_block" not in response.text
