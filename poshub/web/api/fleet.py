"""Terminal fleet API for operations: stock-in, inventory, allocation to a merchant
(TID, master key, device credential), key custody (transport keys under dual control,
key export under maker-checker), swap and inspection."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import Response

from poshub.core import exports, limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, FieldError, NotFound, TooLarge, ValidationFailed
from poshub.merchants import repository as merchant_repository
from poshub.merchants.service import get_merchant
from poshub.staff import repository as staff_repository
from poshub.staff.service import Principal
from poshub.terminals import custody, repository, service
from poshub.terminals.models import (
    DeviceStatus,
    KeyExportRequest,
    KeyExportStatus,
    Terminal,
    TransportKey,
)
from poshub.terminals.schemas import (
    AllocateIn,
    DeviceOut,
    InspectionIn,
    KeyExportOut,
    KeyExportRequestIn,
    KeyExportRequestOut,
    ProvisionedOut,
    StockInOut,
    SwapIn,
    TerminalSummaryOut,
    TransportKeyComponentIn,
    TransportKeyOut,
    TransportKeyStartIn,
)
from poshub.web.deps import app_state, read_uow, staff, write_uow
from poshub.web.roles import FLEET_READ, FLEET_WRITE, MERCHANT_READ

router = APIRouter(prefix="/api/v1", tags=["fleet"])

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
Reader = Annotated[Principal, Depends(staff(*FLEET_READ))]
MerchantReader = Annotated[Principal, Depends(staff(*sorted(set(FLEET_READ) | set(MERCHANT_READ))))]
Operations = Annotated[Principal, Depends(staff(*FLEET_WRITE))]


def _terminal(uow: UnitOfWork, tid: str, *, for_update: bool = False) -> Terminal:
    terminal = repository.terminal_by_tid(uow.session, tid, for_update=for_update)
    if terminal is None:
        raise NotFound(N_("No terminal has this TID."), code="terminal_not_found")
    return terminal


def _provisioned_out(mid: str, result: service.Provisioned) -> ProvisionedOut:
    return ProvisionedOut(
        tid=result.terminal.tid,
        mid=mid,
        serial_number=result.device.serial_number,
        terminal_status=result.terminal.status,
        device_status=result.device.status,
        kcv=result.kcv,
        device_secret=result.device_secret,
    )


@router.post("/inventory/stock-in", status_code=201)
def stock_in(file: UploadFile, uow: Write, principal: Operations) -> StockInOut:
    """Import a supplier's CSV of devices, all or nothing. A file with any bad row is
    refused with 422 naming every bad row (``rows.<n>.<column>``), and nothing is stored."""
    data = file.file.read(limits.STOCK_CSV_BYTES_MAX + 1)
    if len(data) > limits.STOCK_CSV_BYTES_MAX:
        raise TooLarge(N_("A stock file is at most 2 MB; split it."), code="file_too_large")
    result = service.stock_in(
        uow.session,
        data,
        file_name=file.filename or "stock.csv",
        user_id=principal.user_id,
        actor=principal.actor,
        now=utcnow(),
    )
    if result.batch is None:
        raise ValidationFailed(
            [
                FieldError(f"rows.{p.row}.{p.column}", p.code, p.message, p.params)
                for p in result.problems
            ]
        )
    uow.commit()
    return StockInOut(
        batch_id=result.batch.id, imported=result.imported, file_sha256=result.batch.file_sha256
    )


@router.get("/inventory/devices")
def list_devices(
    uow: Read,
    principal: Reader,
    status: DeviceStatus | None = None,
    model_code: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[DeviceOut]:
    """Devices in the inventory, filtered by status or model."""
    rows = repository.devices(
        uow.session, status=status, model_code=model_code, limit=limit, offset=offset
    )
    return [DeviceOut.model_validate(d) for d in rows]


DEVICE_EXPORT_HEADER = (
    "serial_number",
    "model_code",
    "status",
    "warehouse",
    "firmware_version",
    "tid",
    "received_at",
)


@router.get("/inventory/devices.csv", response_class=Response)
def export_devices(
    uow: Read,
    principal: Reader,
    status: DeviceStatus | None = None,
    model_code: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The devices (of a status or model, if given) as a CSV for a spreadsheet. A cell a
    spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR) is prefixed
    with a single quote (``poshub.core.exports``)."""
    rows = repository.device_export_rows(
        uow.session, status=status, model_code=model_code, limit=limits.DEVICE_EXPORT_ROWS_MAX
    )
    return Response(
        exports.csv_bytes(DEVICE_EXPORT_HEADER, rows),
        media_type=exports.CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": 'attachment; filename="devices.csv"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/inventory/summary")
def inventory_summary(uow: Read, principal: Reader) -> dict[str, dict[str, int]]:
    """Devices per model and status."""
    summary: dict[str, dict[str, int]] = {}
    for (model, status), count in repository.device_counts(uow.session).items():
        summary.setdefault(model, {})[status] = count
    return summary


@router.post("/inventory/devices/{serial}/inspection")
def inspect_returned(
    serial: str, data: InspectionIn, uow: Write, principal: Operations
) -> DeviceOut:
    """A returned device checked at the warehouse: back in stock if sound, else retired."""
    device = repository.device_by_serial(uow.session, serial.strip().upper(), for_update=True)
    if device is None:
        raise NotFound(N_("No device has this serial number."), code="device_not_found")
    service.return_to_stock(
        uow.session, device, sound=data.sound, actor=principal.actor, now=utcnow()
    )
    uow.commit()
    return DeviceOut.model_validate(device)


@router.post("/merchants/{mid}/terminals", status_code=201)
def allocate(
    mid: str, data: AllocateIn, request: Request, uow: Write, principal: Operations
) -> ProvisionedOut:
    """Allocate a device in stock to a contracted merchant: a TID under its MID, a new
    master key (its check value is returned; the key itself never is) and the device
    credential for the TMS, shown this once."""
    state = app_state(request)
    merchant = get_merchant(uow.session, mid)
    result = service.allocate(
        uow.session,
        state.settings,
        state.vault,
        merchant,
        data.serial_number,
        install_address=data.install_address,
        actor=principal.actor,
        now=utcnow(),
    )
    uow.commit()
    return _provisioned_out(mid, result)


@router.get("/merchants/{mid}/terminals")
def merchant_terminals(mid: str, uow: Read, principal: MerchantReader) -> list[TerminalSummaryOut]:
    """A merchant's terminals with their devices and status."""
    merchant = get_merchant(uow.session, mid)
    return [
        TerminalSummaryOut(
            tid=t.tid,
            mid=mid,
            model_code=t.model_code,
            status=t.status,
            serial_number=t.serial_number,
            device_status=t.device_status,
            kcv=t.kcv,
            activated_at=t.activated_at,
        )
        for t in service.merchant_terminals(uow.session, merchant.id)
    ]


# --- Key custody: transport keys under dual control, exports under maker-checker -----------


def _transport_key_out(uow: UnitOfWork, key: TransportKey) -> TransportKeyOut:
    ids = {key.first_custodian_id} | ({key.second_custodian_id} - {None})
    names = staff_repository.names_by_id(uow.session, {i for i in ids if i is not None})
    return TransportKeyOut(
        id=key.id,
        label=key.label,
        status=key.status,
        kcv=key.kcv,
        first_component_kcv=key.first_component_kcv,
        second_component_kcv=key.second_component_kcv,
        first_custodian=names.get(key.first_custodian_id, ""),
        second_custodian=names.get(key.second_custodian_id) if key.second_custodian_id else None,
        created_at=key.created_at,
        registered_at=key.registered_at,
    )


def _export_request_out(uow: UnitOfWork, request: KeyExportRequest) -> KeyExportRequestOut:
    terminal = repository.terminal(uow.session, request.terminal_id)
    transport = repository.transport_key(uow.session, request.transport_key_id)
    assert terminal is not None
    assert transport is not None
    ids = {request.requested_by_id} | ({request.approved_by_id} - {None})
    names = staff_repository.names_by_id(uow.session, {i for i in ids if i is not None})
    return KeyExportRequestOut(
        id=request.id,
        tid=terminal.tid,
        status=request.status,
        transport_key_kcv=transport.kcv or "",
        requested_by=names.get(request.requested_by_id, ""),
        requested_at=request.requested_at,
        approved_by=names.get(request.approved_by_id) if request.approved_by_id else None,
        approved_at=request.approved_at,
        collected_at=request.collected_at,
        expires_at=request.requested_at + dt.timedelta(hours=limits.KEY_EXPORT_REQUEST_VALID_HOURS),
    )


@router.get("/transport-keys", summary="Transport keys and open key ceremonies")
def list_transport_keys(uow: Read, principal: Reader) -> list[TransportKeyOut]:
    """Registered transport keys by check value, and ceremonies waiting for a second
    component. No key or component is ever shown, only check values."""
    rows = repository.transport_keys(uow.session, limit=limits.PAGE_SIZE_MAX)
    return [_transport_key_out(uow, key) for key in rows]


@router.post("/transport-keys", status_code=201, summary="Start a transport key ceremony")
def start_transport_key(
    data: TransportKeyStartIn, request: Request, uow: Write, principal: Operations
) -> TransportKeyOut:
    """The first custodian enters a component; a different operator completes the key."""
    key = custody.start_transport_key(
        uow.session,
        app_state(request).vault,
        principal,
        label=data.label,
        component_hex=data.component,
        now=utcnow(),
    )
    uow.commit()
    return _transport_key_out(uow, key)


@router.post("/transport-keys/{key_id}/components", summary="Enter the second component")
def complete_transport_key(
    key_id: int, data: TransportKeyComponentIn, request: Request, uow: Write, principal: Operations
) -> TransportKeyOut:
    """The second custodian (never the first) enters a component: the combined key is
    registered under its check value, or refused (published or weak) and the ceremony
    cancelled."""
    result = custody.complete_transport_key(
        uow.session,
        app_state(request).vault,
        principal,
        key_id,
        component_hex=data.component,
        now=utcnow(),
    )
    uow.commit()
    if isinstance(result, custody.CeremonyRefused):
        raise result.error
    return _transport_key_out(uow, result)


@router.get("/key-export-requests")
def list_key_export_requests(
    uow: Read, principal: Reader, status: KeyExportStatus | None = None
) -> list[KeyExportRequestOut]:
    """Key export requests, newest first: who asked, who approved, whether collected."""
    rows = repository.key_export_requests(uow.session, status=status, limit=limits.PAGE_SIZE_MAX)
    return [_export_request_out(uow, r) for r in rows]


@router.post(
    "/terminals/{tid}/key-export-requests",
    status_code=201,
    summary="Request a terminal key export under a transport key",
)
def request_key_export(
    tid: str, data: KeyExportRequestIn, uow: Write, principal: Operations
) -> KeyExportRequestOut:
    """The maker's step; another operator approves, then the requester collects once."""
    terminal = _terminal(uow, tid)
    export = custody.request_export(
        uow.session, principal, terminal, transport_key_kcv=data.transport_key_kcv, now=utcnow()
    )
    uow.commit()
    return _export_request_out(uow, export)


@router.post("/key-export-requests/{request_id}/approve", summary="Approve a key export")
def approve_key_export(request_id: int, uow: Write, principal: Operations) -> KeyExportRequestOut:
    """The checker's step, by an operator other than the requester; releases nothing."""
    export = custody.approve_export(uow.session, principal, request_id, now=utcnow())
    uow.commit()
    return _export_request_out(uow, export)


@router.post("/key-export-requests/{request_id}/collect", summary="Collect an approved key export")
def collect_key_export(
    request_id: int, request: Request, uow: Write, principal: Operations
) -> KeyExportOut:
    """The TR-31 cryptogram under the transport key and the master key's check value,
    to the requester, once; audited."""
    result = custody.collect_export(
        uow.session, app_state(request).vault, principal, request_id, now=utcnow()
    )
    uow.commit()
    return KeyExportOut(
        tid=result.tid,
        serial_number=result.serial_number,
        kcv=result.kcv,
        transport_key_kcv=result.transport_key_kcv,
        key_block=result.key_block,
    )


@router.post("/terminals/{tid}/swap")
def swap(
    tid: str, data: SwapIn, request: Request, uow: Write, principal: Operations
) -> ProvisionedOut:
    """Replace the device behind a TID: the TID stays, the keys and credential are new."""
    state = app_state(request)
    terminal = _terminal(uow, tid, for_update=True)
    merchant = merchant_repository.get(uow.session, terminal.merchant_id)
    assert merchant is not None  # foreign key
    result = service.swap(
        uow.session,
        state.settings,
        state.vault,
        terminal,
        data.serial_number,
        actor=principal.actor,
        now=utcnow(),
    )
    uow.commit()
    return _provisioned_out(merchant.mid, result)
