"""Test data for fieldwork: an approved merchant with a signed contract and an allocated
terminal, staff principals, and the TMS download a device would make.

The contract is inserted directly as a signed row (the contracts service is another
issue's work); the terminal is allocated through ``poshub.terminals.service.allocate``,
as operations would.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from poshub.bootstrap import AppState
from poshub.core.audit import Actor
from poshub.core.db import utcnow
from poshub.core.roles import Role
from poshub.merchants import repository as merchant_repository
from poshub.staff import repository as staff_repository
from poshub.staff import service as staff_service
from poshub.staff.service import Principal
from poshub.terminals import repository as terminal_repository
from poshub.terminals import service as terminal_service
from tests import factories
from tests.factories import sign_contract

SECOND_TECHNICIAN = "tech2"
SECOND_TECHNICIAN_PASSWORD = "Str0ng-Secret-2hcet!"


@dataclass(frozen=True)
class Site:
    mid: str
    tid: str
    serial: str
    kcv: str


def approved_merchant(client: TestClient) -> str:
    """A merchant approved by the reviewer (tests.factories.approved_merchant); its MID."""
    _, mid = factories.approved_merchant(client)
    return mid


def stock(state: AppState, *serials: str, model: str = "SMART-A8") -> None:
    """Devices into the warehouse through the stock-in CSV, as operations do."""
    rows = "".join(f"{serial},{model},合肥仓,1.4.2\n" for serial in serials)
    data = f"serial_number,model_code,warehouse,firmware_version\n{rows}".encode()
    with state.db.unit_of_work() as uow:
        ops = staff_repository.by_username(uow.session, "ops")
        assert ops is not None
        result = terminal_service.stock_in(
            uow.session,
            data,
            file_name="stock.csv",
            user_id=ops.id,
            actor=Actor.system("tests"),
            now=utcnow(),
        )
        assert not result.problems, result.problems
        uow.commit()


def allocate(state: AppState, mid: str, serial: str) -> Site:
    with state.db.unit_of_work() as uow:
        merchant = merchant_repository.by_mid(uow.session, mid)
        assert merchant is not None
        provisioned = terminal_service.allocate(
            uow.session,
            state.settings,
            state.vault,
            merchant,
            serial,
            install_address=None,
            actor=Actor.system("tests"),
            now=utcnow(),
        )
        site = Site(mid, provisioned.terminal.tid, serial, provisioned.kcv)
        uow.commit()
    return site


def contracted_site(client: TestClient, state: AppState, serial: str = "SN-A8-000001") -> Site:
    """A contracted merchant with one terminal allocated (device ``serial``)."""
    mid = approved_merchant(client)
    sign_contract(state, mid)
    stock(state, serial)
    return allocate(state, mid, serial)


def mark_parameters_fetched(state: AppState, tid: str, serial: str) -> None:
    """What the TMS records when the device downloads its current parameters."""
    with state.db.unit_of_work() as uow:
        terminal = terminal_repository.terminal_by_tid(uow.session, tid)
        assert terminal is not None
        params = terminal_repository.current_parameters(uow.session, terminal.id)
        assert params is not None
        params.fetched_at = utcnow()
        params.fetched_by_serial = serial
        uow.commit()


def principal(session: Session, username: str) -> Principal:
    user = staff_repository.by_username(session, username)
    assert user is not None
    return Principal(
        user.id, user.username, user.display_name, staff_repository.roles_of(session, user.id)
    )


def add_second_technician(state: AppState) -> None:
    with state.db.unit_of_work() as uow:
        staff_service.create_user(
            uow.session,
            username=SECOND_TECHNICIAN,
            display_name="Tech Two",
            password=SECOND_TECHNICIAN_PASSWORD,
            roles=[Role.TECHNICIAN],
            actor=Actor.system("tests"),
        )
        uow.commit()
