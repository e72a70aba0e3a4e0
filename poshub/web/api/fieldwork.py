"""Work orders (R6-R11): list, read, create, assign, record steps, photos.

Operations create and assign orders and record the operations steps; technicians record
the steps on site of the orders assigned to them, and see only those. Support agents,
auditors and administrators read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from poshub.core import limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, NotFound
from poshub.core.i18n import Translator
from poshub.fieldwork import repository, service
from poshub.fieldwork.models import WorkOrder, WorkOrderKind
from poshub.fieldwork.schemas import (
    AssignIn,
    NextStepOut,
    PhotoOut,
    ProvisionedOut,
    StepOut,
    StepResultOut,
    WorkOrderDetailOut,
    WorkOrderIn,
    WorkOrderOut,
)
from poshub.fieldwork.service import FieldworkDeps, StepResult
from poshub.fieldwork.states import WorkOrderStatus, step_label
from poshub.merchants import repository as merchant_repository
from poshub.staff import repository as staff_repository
from poshub.staff.service import Principal
from poshub.web.api.applications import read_upload
from poshub.web.deps import app_state, read_uow, staff, translator, write_uow
from poshub.web.roles import FIELDWORK_DISPATCH, FIELDWORK_READ, FIELDWORK_WRITE

router = APIRouter(prefix="/api/v1/work-orders", tags=["fieldwork"])

Reader = Annotated[Principal, Depends(staff(*FIELDWORK_READ))]
Worker = Annotated[Principal, Depends(staff(*FIELDWORK_WRITE))]
Dispatcher = Annotated[Principal, Depends(staff(*FIELDWORK_DISPATCH))]
Write = Annotated[UnitOfWork, Depends(write_uow)]
Read = Annotated[UnitOfWork, Depends(read_uow)]
T = Annotated[Translator, Depends(translator)]

PHOTOS_SHOWN_MAX = limits.WORK_ORDER_PHOTOS_MAX


def fieldwork_deps(request: Request) -> FieldworkDeps:
    state = app_state(request)
    return FieldworkDeps(state.settings, state.vault, state.onboarding.store)


# --- Views (rows → responses), shared with the technician pages --------------------------


def order_views(session: Session, orders: list[WorkOrder]) -> list[WorkOrderOut]:
    """Summaries of many orders, with one query per related table."""
    now = utcnow()
    merchants = repository.merchants_by_id(session, {o.merchant_id for o in orders})
    terminals = repository.terminals_by_id(
        session, {o.terminal_id for o in orders if o.terminal_id}
    )
    devices = repository.devices_by_id(
        session,
        {d for o in orders for d in (o.device_id, o.replaced_device_id) if d},
    )
    names = repository.usernames(session, {o.technician_id for o in orders if o.technician_id})
    views = []
    for order in orders:
        merchant = merchants[order.merchant_id]
        terminal = terminals.get(order.terminal_id) if order.terminal_id else None
        device = devices.get(order.device_id) if order.device_id else None
        replaced = devices.get(order.replaced_device_id) if order.replaced_device_id else None
        views.append(
            WorkOrderOut(
                number=order.number,
                kind=order.kind,
                status=order.status,
                mid=merchant.mid,
                business_name=merchant.business_name,
                tid=terminal.tid if terminal else None,
                device_serial=device.serial_number if device else None,
                replaced_device_serial=replaced.serial_number if replaced else None,
                technician=names.get(order.technician_id) if order.technician_id else None,
                site_address=order.site_address,
                contact_mobile=order.contact_mobile,
                appointment_at=order.appointment_at,
                due_at=order.due_at,
                sla_state=str(service.sla_state(order, now)),
                sla_breached_at=order.sla_breached_at,
                created_at=order.created_at,
                created_by=order.created_by,
                updated_at=order.updated_at,
                completed_at=order.completed_at,
            )
        )
    return views


def detail_view(
    session: Session, order: WorkOrder, t: Translator, principal: Principal | None = None
) -> WorkOrderDetailOut:
    """One order with its history, photos and the next steps (those ``principal`` may
    record, when given)."""
    summary = order_views(session, [order])[0]
    return WorkOrderDetailOut(
        **summary.model_dump(),
        data=order.data,
        steps=[
            StepOut(
                from_status=s.from_status,
                to_status=s.to_status,
                actor=s.actor,
                data=s.data,
                note=s.note,
                at=s.at,
            )
            for s in repository.steps(session, order.id)
        ],
        photos=[
            PhotoOut(
                id=p.id,
                content_type=p.content_type,
                size_bytes=p.size_bytes,
                sha256=p.sha256,
                caption=p.caption,
                uploaded_by=p.uploaded_by,
                uploaded_at=p.uploaded_at,
            )
            for p in repository.photos(session, order.id, limit=PHOTOS_SHOWN_MAX)
        ],
        next_steps=[
            NextStepOut(
                target=str(target), label=t(step_label(order.kind, target)), performer=str(who)
            )
            for target, who in service.next_steps(order, principal)
        ],
    )


def step_result_view(
    session: Session, result: StepResult, t: Translator, principal: Principal
) -> StepResultOut:
    provisioned = result.provisioned
    return StepResultOut(
        work_order=detail_view(session, result.order, t, principal),
        provisioned=ProvisionedOut(
            tid=provisioned.terminal.tid,
            serial_number=provisioned.device.serial_number,
            kcv=provisioned.kcv,
            device_secret=provisioned.device_secret,
        )
        if provisioned
        else None,
        follow_up=result.follow_up.number if result.follow_up else None,
    )


def body_errors(error: ValidationError) -> RequestValidationError:
    """A step body's pydantic errors as the API's usual 422 (``loc`` starting at body)."""
    return RequestValidationError(
        [{**e, "loc": ("body", *e.get("loc", ()))} for e in error.errors()]
    )


# --- Routes ----------------------------------------------------------------------------------


@router.get("")
def list_orders(
    uow: Read,
    principal: Reader,
    status: Annotated[WorkOrderStatus | None, Query()] = None,
    kind: Annotated[WorkOrderKind | None, Query()] = None,
    technician: Annotated[str | None, Query(max_length=64)] = None,
    mid: Annotated[str | None, Query(pattern=r"^\d{15}$")] = None,
    open: Annotated[bool, Query(description="Only orders not yet finished")] = False,
    breached: Annotated[bool, Query(description="Only open orders past their SLA")] = False,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[WorkOrderOut]:
    """Work orders, the nearest deadline first. A technician sees only their own."""
    session = uow.session
    technician_id: int | None = None
    if not service.reads_everything(principal):
        technician_id = principal.user_id
    elif technician:
        user = _user_id(session, technician)
        if user is None:
            return []
        technician_id = user
    merchant_id: int | None = None
    if mid:
        merchant = merchant_repository.by_mid(session, mid)
        if merchant is None:
            return []
        merchant_id = merchant.id
    rows = repository.search(
        session,
        status=str(status) if status else None,
        kind=str(kind) if kind else None,
        technician_id=technician_id,
        merchant_id=merchant_id,
        open_only=open,
        breached_only=breached,
        limit=limit,
        offset=offset,
    )
    return order_views(session, list(rows))


def _user_id(session: Session, username: str) -> int | None:
    user = staff_repository.by_username(session, username)
    return user.id if user else None


@router.post("", status_code=201)
def create_order(body: WorkOrderIn, uow: Write, principal: Dispatcher, t: T) -> WorkOrderDetailOut:
    """Open a work order for a merchant (and its terminal); due by its kind's SLA."""
    order = service.create_order(uow.session, body, principal, now=utcnow())
    view = detail_view(uow.session, order, t, principal)
    uow.commit()
    return view


@router.get("/{number}")
def get_order(number: str, uow: Read, principal: Reader, t: T) -> WorkOrderDetailOut:
    """One work order with its steps, photos and deadline."""
    order = service.get_for(uow.session, number, principal)
    return detail_view(uow.session, order, t, principal)


@router.post("/{number}/assign")
def assign(
    number: str, body: AssignIn, uow: Write, principal: Dispatcher, t: T
) -> WorkOrderDetailOut:
    """Give the order to a technician, or hand it over to another one."""
    order = service.get_for(uow.session, number, principal, for_update=True)
    service.assign(uow.session, order, body.technician, principal, now=utcnow(), note=body.note)
    view = detail_view(uow.session, order, t, principal)
    uow.commit()
    return view


@router.post("/{number}/steps/{target}")
def record_step(
    number: str,
    target: Annotated[str, Path(max_length=40)],
    request: Request,
    uow: Write,
    principal: Worker,
    t: T,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> StepResultOut:
    """Record the step ``target`` (the state the order moves to) with what it takes.

    A move out of order is refused with 409 naming the allowed next steps; each invalid
    field with 422 naming the field. After ``device_prepared`` the answer carries the
    new device's secret, once.
    """
    order = service.get_for(uow.session, number, principal, for_update=True)
    try:
        result = service.perform_step(
            uow.session,
            fieldwork_deps(request),
            order,
            principal,
            target,
            body or {},
            now=utcnow(),
        )
    except ValidationError as error:
        raise body_errors(error) from error
    view = step_result_view(uow.session, result, t, principal)
    uow.commit()
    return view


async def read_photo(file: UploadFile) -> bytes:
    return await read_upload(file, limits.WORK_ORDER_PHOTO_BYTES_MAX)


@router.post("/{number}/photos", status_code=201)
async def upload_photo(
    number: str,
    request: Request,
    principal: Worker,
    file: Annotated[UploadFile, File()],
    caption: Annotated[str, Form(max_length=service.CAPTION_LENGTH_MAX)] = "",
) -> PhotoOut:
    """Attach a photo (JPG or PNG, recognised by its content; at most 10 MB, 20 per order)."""
    content = await read_photo(file)
    return await run_in_threadpool(_store_photo, request, number, principal, content, caption)


def _store_photo(
    request: Request, number: str, principal: Principal, content: bytes, caption: str
) -> PhotoOut:
    state = app_state(request)
    with state.db.unit_of_work() as uow:
        order = service.get_for(uow.session, number, principal, for_update=True)
        photo = service.add_photo(
            uow.session,
            state.onboarding.store,
            order,
            principal,
            content=content,
            caption=caption,
            now=utcnow(),
        )
        uow.commit()
        return PhotoOut(
            id=photo.id,
            content_type=photo.content_type,
            size_bytes=photo.size_bytes,
            sha256=photo.sha256,
            caption=photo.caption,
            uploaded_by=photo.uploaded_by,
            uploaded_at=photo.uploaded_at,
        )


@router.get("/{number}/photos/{photo_id}")
def download_photo(
    number: str, photo_id: int, request: Request, uow: Read, principal: Reader
) -> Response:
    """Download a work order's photo."""
    order = service.get_for(uow.session, number, principal)
    photo = repository.photo(uow.session, order.id, photo_id)
    if photo is None:
        raise NotFound(N_("No such photo."), code="photo_not_found")
    data = app_state(request).onboarding.store.get(photo.sha256)
    return Response(
        data,
        media_type=photo.content_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"},
    )
