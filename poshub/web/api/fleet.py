"""Terminal fleet API for operations: stock-in, inventory, allocation to a merchant
(TID, master key, device credential), key export for injection, swap and inspection."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import Response

from poshub.core import exports, limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, FieldError, NotFound, TooLarge, ValidationFailed
from poshub.merchants import repository as merchant_repository
from poshub.merchants.service import get_merchant
from poshub.staff.service import Principal
from poshub.terminals import repository, service
from poshub.terminals.models import DeviceStatus, Terminal
from poshub.terminals.schemas import (
    AllocateIn,
    DeviceOut,
    InspectionIn,
    KeyExportIn,
    KeyExportOut,
    ProvisionedOut,
    StockInOut,
    SwapIn,
    TerminalSummaryOut,
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


@router.post("/terminals/{tid}/key-export")
def export_key(
    tid: str, data: KeyExportIn, request: Request, uow: Write, principal: Operations
) -> KeyExportOut:
    """The master key as a TR-31 key block under the key-injection device's transport
    key. Operations only; every export is audited with the check value."""
    terminal = _terminal(uow, tid)
    result = service.export_key(
        uow.session, app_state(request).vault, terminal, data.transport_key, actor=principal.actor
    )
    uow.commit()
    return KeyExportOut(
        tid=result.tid,
        serial_number=result.serial_number,
        kcv=result.kcv,
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
