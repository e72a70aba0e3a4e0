"""Terminal relocation (移机): the registered installation location comes from the
device's last heartbeat at the acceptance test (or from operations); a heartbeat farther
away than the rule allows raises one alert a day and, when the rule says so, locks the
terminal, which the heartbeat's answer tells the device."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from poshub.bootstrap import AppState
from poshub.core.audit import Actor, AuditEntry
from poshub.core.db import utcnow
from poshub.merchants import repository as merchant_repository
from poshub.risk import relocation
from poshub.risk.models import RiskAlert, RiskRuleVersion
from poshub.terminals import repository, service, tms, tms_service
from poshub.terminals.models import Device, DeviceStatus
from poshub.terminals.schemas import HeartbeatIn
from tests.factories import approved_merchant, login, sign_contract

ACTOR = Actor.system("tests")
SERIAL = "SN-MOVE-000001"
# The shop on 长江西路, Hefei; a point 2 km east; the Shanghai Bund, ~400 km away.
SHOP = (31.820587, 117.227239)
NEARBY = (31.820587, 117.248400)
SHANGHAI_BUND = (31.240000, 121.490000)
DEVICE: dict[str, object] = {"app_version": "2.3.1", "firmware_version": "1.4.2", "network": "4g"}


def test_haversine() -> None:
    assert relocation.haversine_km(*SHOP, *SHOP) == 0
    assert relocation.haversine_km(*SHOP, *NEARBY) == pytest.approx(2.0, abs=0.01)
    assert relocation.haversine_km(*SHOP, *SHANGHAI_BUND) == pytest.approx(409, abs=1)
    # A quarter of the equator, and across the antimeridian.
    assert relocation.haversine_km(0, 0, 0, 90) == pytest.approx(10007.5, abs=0.5)
    assert relocation.haversine_km(0, 179.5, 0, -179.5) == pytest.approx(111.2, abs=0.1)
    assert relocation.haversine_km(90, 0, -90, 0) == pytest.approx(20015.1, abs=0.5)


@dataclass
class Placed:
    state: AppState
    mid: str
    tid: str
    secret: str


def _place(client: TestClient, state: AppState, *, located: bool = True) -> Placed:
    """A live terminal whose device reported the shop's location before its acceptance
    test (or no location at all)."""
    _, mid = approved_merchant(client)
    sign_contract(state, mid)
    now = utcnow()
    with state.db.unit_of_work() as uow:
        session = uow.session
        session.add(
            Device(
                serial_number=SERIAL,
                model_code="SMART-A8",
                status=str(DeviceStatus.IN_STOCK),
                warehouse="合肥仓",
                received_at=now,
                tms_auth_failures=0,
                updated_at=now,
            )
        )
        session.flush()
        merchant = merchant_repository.by_mid(session, mid)
        assert merchant is not None
        provisioned = service.allocate(
            session,
            state.settings,
            state.vault,
            merchant,
            SERIAL,
            install_address=None,
            actor=ACTOR,
            now=now,
        )
        service.mark_installed(session, provisioned.device, actor=ACTOR, now=now)
        where = {"latitude": SHOP[0], "longitude": SHOP[1]} if located else {}
        tms_service.heartbeat(
            session, provisioned.device, HeartbeatIn.model_validate({**DEVICE, **where}), now=now
        )
        service.activate(
            session,
            merchant,
            provisioned.terminal,
            provisioned.device,
            acceptance_reference="000000000001",
            actor=ACTOR,
            now=now,
        )
        placed = Placed(state, mid, provisioned.terminal.tid, provisioned.device_secret)
        uow.commit()
    return placed


def _set_rule(state: AppState, *, enabled: bool = True, **params: object) -> None:
    with state.db.unit_of_work() as uow:
        uow.session.add(
            RiskRuleVersion(
                code="relocation",
                version=1,
                enabled=enabled,
                action="alert",
                params=params,
                reason="test",
                created_by="risk",
                created_at=utcnow(),
            )
        )
        uow.commit()


def _beat(
    placed: Placed, where: tuple[float, float] | None, *, now: dt.datetime | None = None
) -> tms_service.DeviceView:
    with placed.state.db.unit_of_work() as uow:
        device = repository.device_by_serial(uow.session, SERIAL)
        assert device is not None
        located = {"latitude": where[0], "longitude": where[1]} if where else {}
        report = HeartbeatIn.model_validate({**DEVICE, **located})
        view = tms_service.heartbeat(uow.session, device, report, now=now or utcnow())
        locked, may_transact = view.locked, view.may_transact
        uow.commit()
    assert locked is not may_transact
    return view


def _alerts(state: AppState) -> list[RiskAlert]:
    with state.db.unit_of_work(read_only=True) as uow:
        rows = uow.session.execute(select(RiskAlert).order_by(RiskAlert.id)).scalars().all()
        uow.session.expunge_all()
    return list(rows)


def _terminal_status(placed: Placed) -> tuple[str, str | None, str | None]:
    with placed.state.db.unit_of_work(read_only=True) as uow:
        terminal = repository.terminal_by_tid(uow.session, placed.tid)
        assert terminal is not None
        return terminal.status, terminal.install_latitude, terminal.install_longitude


def test_acceptance_registers_the_heartbeat_location(client: TestClient, state: AppState) -> None:
    placed = _place(client, state)
    assert _terminal_status(placed) == ("active", "31.820587", "117.227239")


def test_far_away_raises_one_alert_a_day(client: TestClient, state: AppState) -> None:
    placed = _place(client, state)
    _beat(placed, NEARBY)  # 2 km: within the default 5 km
    assert _alerts(state) == []
    view = _beat(placed, SHANGHAI_BUND)
    assert view.may_transact  # the default rule alerts without locking
    _beat(placed, SHANGHAI_BUND)
    [alert] = _alerts(state)
    assert (alert.rule_code, alert.tid, alert.mid, alert.status) == (
        "relocation",
        placed.tid,
        placed.mid,
        "open",
    )
    assert (alert.action, alert.severity, alert.rule_version) == ("alert", "high", 0)
    assert alert.detail["latitude"] == SHANGHAI_BUND[0]
    assert alert.detail["longitude"] == SHANGHAI_BUND[1]
    assert alert.detail["distance_km"] == pytest.approx(409, abs=1)
    assert alert.detail["max_km"] == 5.0
    assert alert.detail["registered_latitude"] == SHOP[0]
    # The next business day it is raised again.
    _beat(placed, SHANGHAI_BUND, now=utcnow() + dt.timedelta(days=1))
    assert len(_alerts(state)) == 2
    assert _terminal_status(placed)[0] == "active"


def test_far_away_locks_when_the_rule_says_so(client: TestClient, state: AppState) -> None:
    placed = _place(client, state)
    _set_rule(state, max_km=1.5, lock_terminal=True)
    _beat(placed, NEARBY)  # 2 km, beyond this rule's 1.5 km
    [alert] = _alerts(state)
    assert (alert.rule_version, alert.detail["max_km"]) == (1, 1.5)
    status, *_ = _terminal_status(placed)
    assert status == "locked"
    with state.db.unit_of_work(read_only=True) as uow:
        [entry] = (
            uow.session.execute(
                select(AuditEntry).where(
                    AuditEntry.action == "terminal.locked", AuditEntry.entity_id == placed.tid
                )
            )
            .scalars()
            .all()
        )
        assert entry.actor_id == "relocation"
    # The device learns it at its next heartbeat, over the TMS.
    path = f"/api/v1/tms/terminals/{SERIAL}/heartbeat"
    body = json.dumps({**DEVICE, "latitude": NEARBY[0], "longitude": NEARBY[1]}).encode()
    headers = tms.signed_headers(SERIAL, placed.secret, "POST", path, body)
    answer = client.post(path, content=body, headers=headers | {"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["locked"], answer.json()["may_transact"]) == (True, False)
    assert len(_alerts(state)) == 1


def test_a_disabled_rule_or_no_location_does_nothing(client: TestClient, state: AppState) -> None:
    placed = _place(client, state)
    _beat(placed, None)
    _set_rule(state, enabled=False, max_km=1, lock_terminal=True)
    _beat(placed, SHANGHAI_BUND)
    assert _alerts(state) == []
    assert _terminal_status(placed)[0] == "active"


def test_no_registered_location_does_nothing(client: TestClient, state: AppState) -> None:
    placed = _place(client, state, located=False)
    assert _terminal_status(placed) == ("active", None, None)
    _beat(placed, SHANGHAI_BUND)
    assert _alerts(state) == []


def test_operations_register_the_location_after_a_move(client: TestClient, state: AppState) -> None:
    placed = _place(client, state)
    url = f"/api/v1/terminals/{placed.tid}/install-location"
    moved = {"latitude": SHANGHAI_BUND[0], "longitude": SHANGHAI_BUND[1], "reason": "移机审批 #12"}
    csrf = login(client, "risk")
    assert client.put(url, headers=csrf, json=moved).status_code == 403
    csrf = login(client, "ops")
    response = client.put(url, headers=csrf, json={**moved, "latitude": 91, "reason": ""})
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["detail"]} == {"latitude", "reason"}
    assert (
        client.put(
            "/api/v1/terminals/99999999/install-location", headers=csrf, json=moved
        ).status_code
        == 404
    )
    response = client.put(url, headers=csrf, json=moved)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "tid": placed.tid,
        "install_latitude": "31.240000",
        "install_longitude": "121.490000",
    }
    _beat(placed, SHANGHAI_BUND)
    assert _alerts(state) == []
    # Operations see both on the terminal page: where it is registered, where it reports.
    page = client.get(f"/admin/terminals/{placed.tid}")
    assert page.status_code == 200
    assert "登记装机位置" in page.text
    assert page.text.count("31.240000, 121.490000") == 2
    with state.db.unit_of_work(read_only=True) as uow:
        [entry] = (
            uow.session.execute(
                select(AuditEntry).where(AuditEntry.action == "risk.install_location_set")
            )
            .scalars()
            .all()
        )
        assert entry.actor_id == "ops"
        assert entry.details["from"] == {"latitude": "31.820587", "longitude": "117.227239"}
        assert entry.details["reason"] == "移机审批 #12"
