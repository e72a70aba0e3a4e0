"""The terminal management system API (R8, R17).

Device routes (``/api/v1/tms/terminals/{serial}/…``) are called by the terminals
themselves: no cookie, no CSRF, every request signed with the device's secret
(``poshub.terminals.tms``, ``docs/tms.md``). A refused request is answered 401 and counted
in memory (``tms_service.RefusalCounter``), written to the database periodically. Staff routes let operations read a terminal's state, change
its parameters (a new version each time) and lock or unlock it.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from poshub.core import limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, TooLarge
from poshub.staff.service import Principal
from poshub.terminals import service as terminal_service
from poshub.terminals import tms_service
from poshub.terminals.models import Device, TmsParameterSet
from poshub.terminals.schemas import (
    AuthFailureCountsOut,
    DeviceStatusOut,
    HeartbeatIn,
    HeartbeatOut,
    LockIn,
    ParameterChangeIn,
    ParameterSetOut,
    TerminalOut,
    TmsParametersOut,
)
from poshub.terminals.tms_service import DeviceView, TerminalDetail
from poshub.web.deps import app_state, device, read_uow, staff, write_uow
from poshub.web.roles import TMS_READ, TMS_WRITE

router = APIRouter(prefix="/api/v1", tags=["tms"])

DEVICE = Depends(device())
Reader = Annotated[Principal, Depends(staff(*TMS_READ))]
Operator = Annotated[Principal, Depends(staff(*TMS_WRITE))]
Write = Annotated[UnitOfWork, Depends(write_uow)]
Read = Annotated[UnitOfWork, Depends(read_uow)]


async def _device_body(request: Request) -> bytes:
    """The raw request body, which the signature covers; read before any parsing so that
    an unauthenticated request is refused (401) before its content is looked at."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.TMS_BODY_BYTES_MAX:
            raise TooLarge(
                N_("A TMS request body may have at most {size} bytes."),
                code="body_too_large",
                size=str(limits.TMS_BODY_BYTES_MAX),
            )
    return bytes(body)


RawBody = Annotated[bytes, Depends(_device_body)]
_COUNTER_LOCK = threading.Lock()


def refusal_counter(request: Request) -> tms_service.RefusalCounter:
    """The web process's one counter of refused TMS requests (kept on the app)."""
    app_data = request.app.state
    counter: tms_service.RefusalCounter | None = getattr(app_data, "tms_refusals", None)
    if counter is None:
        with _COUNTER_LOCK:
            counter = getattr(app_data, "tms_refusals", None)
            if counter is None:
                counter = tms_service.RefusalCounter(
                    app_state(request).settings.tms_refusal_flush_seconds
                )
                app_data.tms_refusals = counter
    return counter


def _authenticate(request: Request, uow: UnitOfWork, serial: str, body: bytes) -> Device:
    state = app_state(request)
    now = utcnow()
    try:
        return tms_service.authenticate(
            uow.session,
            state.vault,
            serial,
            request.headers,
            request.method,
            request.url.path,
            request.url.query,
            body,
            now=now,
        )
    except tms_service.DeviceRefused as refused:
        # The request's transaction is abandoned; the refusal is counted in memory and
        # written with the others once the flush interval has passed.
        uow.rollback()
        counter = refusal_counter(request)
        counter.add(refused, now=now)
        if counter.due():
            counter.flush(state.db)
        raise


def _device_state(view: DeviceView) -> dict[str, Any]:
    return {
        "serial": view.device.serial_number,
        "tid": view.terminal.tid if view.terminal else None,
        "terminal_status": view.terminal.status if view.terminal else None,
        "locked": view.locked,
        "may_transact": view.may_transact,
        "parameter_version": view.parameters.version if view.parameters else None,
        "server_time": utcnow(),
    }


# --- Device routes -----------------------------------------------------------------------


@router.get("/tms/terminals/{serial}/parameters", dependencies=[DEVICE])
def device_parameters(serial: str, request: Request, body: RawBody, uow: Write) -> TmsParametersOut:
    """The current parameters of the terminal this device serves (signed request)."""
    device = _authenticate(request, uow, serial, body)
    view = tms_service.fetch_parameters(uow.session, device, now=utcnow())
    assert view.parameters is not None
    out = TmsParametersOut(
        **_device_state(view),
        params=view.parameters.params,
        version_created_at=view.parameters.created_at,
    )
    uow.commit()
    return out


@router.post(
    "/tms/terminals/{serial}/heartbeat",
    dependencies=[DEVICE],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": HeartbeatIn.model_json_schema()}},
        }
    },
)
def device_heartbeat(serial: str, request: Request, body: RawBody, uow: Write) -> HeartbeatOut:
    """The device's status report (signed request); the answer says whether it may
    transact and which parameter version is current."""
    device = _authenticate(request, uow, serial, body)
    try:
        report = HeartbeatIn.model_validate_json(body)
    except ValidationError as invalid:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in invalid.errors()]
        ) from None
    view = tms_service.heartbeat(uow.session, device, report, now=utcnow())
    out = HeartbeatOut(**_device_state(view))
    uow.commit()
    return out


# --- Staff routes --------------------------------------------------------------------------


def _terminal_out(detail: TerminalDetail) -> TerminalOut:
    terminal, device, current = detail.terminal, detail.device, detail.parameters
    return TerminalOut(
        tid=terminal.tid,
        mid=detail.mid,
        status=terminal.status,
        model_code=terminal.model_code,
        install_address=terminal.install_address,
        install_latitude=terminal.install_latitude,
        install_longitude=terminal.install_longitude,
        locked_reason=terminal.locked_reason,
        locked_at=terminal.locked_at,
        activated_at=terminal.activated_at,
        created_at=terminal.created_at,
        updated_at=terminal.updated_at,
        parameter_version=current.version if current else None,
        parameters_fetched_at=current.fetched_at if current else None,
        device=(
            DeviceStatusOut(
                serial=device.serial_number,
                model_code=device.model_code,
                status=device.status,
                app_version=device.app_version,
                firmware_version=device.firmware_version,
                network=device.network,
                signal_dbm=device.signal_dbm,
                battery_percent=device.battery_percent,
                latitude=device.latitude,
                longitude=device.longitude,
                last_heartbeat_at=device.last_heartbeat_at,
                tms_auth_failures=device.tms_auth_failures,
                last_auth_failure_at=device.last_auth_failure_at,
            )
            if device
            else None
        ),
    )


def _parameter_set_out(row: TmsParameterSet) -> ParameterSetOut:
    return ParameterSetOut(
        version=row.version,
        params=row.params,
        created_at=row.created_at,
        created_by=row.created_by,
        fetched_at=row.fetched_at,
        fetched_by_serial=row.fetched_by_serial,
    )


@router.get("/terminals/{tid}")
def terminal(tid: str, request: Request, uow: Read, principal: Reader) -> TerminalOut:
    """Status, device, last heartbeat, refused TMS requests and parameter version."""
    refusal_counter(request).flush(app_state(request).db)
    row = tms_service.get_terminal(uow.session, tid)
    return _terminal_out(tms_service.terminal_detail(uow.session, row))


@router.get("/terminals/{tid}/parameters")
def parameter_history(
    tid: str,
    uow: Read,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
) -> list[ParameterSetOut]:
    """Every parameter version, newest first; the first is the one served."""
    row = tms_service.get_terminal(uow.session, tid)
    return [
        _parameter_set_out(p) for p in tms_service.parameter_history(uow.session, row, limit=limit)
    ]


@router.put("/terminals/{tid}/parameters")
def change_parameters(
    tid: str, body: ParameterChangeIn, uow: Write, principal: Operator
) -> ParameterSetOut:
    """Change editable parameters: a new version, served at the device's next download."""
    row = tms_service.get_terminal(uow.session, tid, for_update=True)
    new = tms_service.update_parameters(
        uow.session, row, body.params, actor=principal.actor, now=utcnow()
    )
    out = _parameter_set_out(new)
    uow.commit()
    return out


@router.post("/terminals/{tid}/lock")
def lock(tid: str, body: LockIn, uow: Write, principal: Operator) -> TerminalOut:
    """Lock remotely: the gateway refuses its transactions; the device is told at its next
    heartbeat or parameter download."""
    row = tms_service.get_terminal(uow.session, tid, for_update=True)
    terminal_service.lock(uow.session, row, reason=body.reason, actor=principal.actor, now=utcnow())
    out = _terminal_out(tms_service.terminal_detail(uow.session, row))
    uow.commit()
    return out


@router.post("/terminals/{tid}/unlock")
def unlock(tid: str, uow: Write, principal: Operator) -> TerminalOut:
    """Unlock a terminal that the TMS or bad MACs locked (operations; audited)."""
    row = tms_service.get_terminal(uow.session, tid, for_update=True)
    terminal_service.unlock(uow.session, row, actor=principal.actor, now=utcnow())
    out = _terminal_out(tms_service.terminal_detail(uow.session, row))
    uow.commit()
    return out


@router.post("/terminals/{tid}/recall")
def recall(tid: str, body: LockIn, uow: Write, principal: Operator) -> TerminalOut:
    """Recall a terminal for good: the TID is closed and its device returned for inspection.

    The gateway refuses the TID from then on; a merchant can be closed only once every one
    of its terminals is recalled (409 ``invalid_terminal_transition`` for one already closed)."""
    row = tms_service.get_terminal(uow.session, tid, for_update=True)
    terminal_service.recall(
        uow.session, row, reason=body.reason, actor=principal.actor, now=utcnow()
    )
    out = _terminal_out(tms_service.terminal_detail(uow.session, row))
    uow.commit()
    return out


@router.get("/tms/auth-failures")
def auth_failures(request: Request, uow: Read, principal: Reader) -> AuthFailureCountsOut:
    """TMS requests refused for their device credential, by reason, across the fleet."""
    refusal_counter(request).flush(app_state(request).db)
    counts = tms_service.auth_failure_counts(uow.session)
    return AuthFailureCountsOut(total=sum(counts.values()), by_reason=counts)
