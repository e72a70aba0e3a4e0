"""The technician's phone view (``/tech``) and the operations dispatch page.

Built for a 390 px wide phone held in one hand on a shop floor: one column, large tap
targets, the address and a tap-to-call link first, then only the form of the next step.
Photos come straight from the phone's camera. Forms are plain POSTs carrying the CSRF
token, so the pages work without JavaScript.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from poshub.core import limits
from poshub.core.clock import local_time
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, PosHubError, Unauthorized, ValidationFailed
from poshub.core.i18n import Translator
from poshub.core.roles import Role
from poshub.fieldwork import repository, service
from poshub.fieldwork.models import WorkOrderKind
from poshub.fieldwork.schemas import ProvisionedOut, WorkOrderIn
from poshub.fieldwork.sla import SLA_LABELS
from poshub.fieldwork.states import (
    CONDITION_LABELS,
    HAPPY_PATHS,
    KIND_LABELS,
    NETWORK_LABELS,
    REQUIRED_TRAINING_TOPICS,
    STATUS_LABELS,
    STEP_LABELS,
    TOPIC_LABELS,
    NetworkKind,
    Performer,
    TrainingTopic,
    WorkOrderStatus,
    step_label,
)
from poshub.staff import service as staff_service
from poshub.staff.service import Principal
from poshub.web.api.fieldwork import (
    detail_view,
    download_photo,
    fieldwork_deps,
    order_views,
    read_photo,
)
from poshub.web.deps import (
    PUBLIC,
    app_state,
    client_ip,
    read_uow,
    request_translator,
    staff,
    translator,
    write_uow,
)
from poshub.web.errors import field_errors, pydantic_errors
from poshub.web.roles import FIELDWORK_DISPATCH, FIELDWORK_READ, FIELDWORK_WRITE
from poshub.web.security import safe_local_path
from poshub.web.sessions import open_browser_session
from poshub.web.templating import render

LOGIN_PATH = "/tech/login"
ORDERS_SHOWN_MAX = 100
RECENT_SHOWN_MAX = 10
HIDDEN_FORM_STEPS = frozenset({WorkOrderStatus.DAMAGED})
"""Recorded through the inspection form (condition "damaged"), not a form of its own."""
MULTI_VALUE_FIELDS = frozenset({"topics"})


class _LoginRedirectRoute(APIRoute):
    """A page asked for without a (live) session sends the browser to the technician's
    login form, which brings it back afterwards (the app's handler does this for /admin)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthorized:
                target = quote(request.url.path, safe="/")
                return RedirectResponse(f"{LOGIN_PATH}?next={target}", status_code=303)

        return route_handler


router = APIRouter(prefix="/tech", include_in_schema=False, route_class=_LoginRedirectRoute)

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
T = Annotated[Translator, Depends(translator)]
Reader = Annotated[Principal, Depends(staff(*FIELDWORK_READ))]
Worker = Annotated[Principal, Depends(staff(*FIELDWORK_WRITE))]
Dispatcher = Annotated[Principal, Depends(staff(*FIELDWORK_DISPATCH))]

LABELS = {
    "KIND_LABELS": KIND_LABELS,
    "WO_STATUS_LABELS": STATUS_LABELS,
    "STEP_LABELS": STEP_LABELS,
    "WO_SLA_LABELS": SLA_LABELS,
    "NETWORK_LABELS": NETWORK_LABELS,
    "TOPIC_LABELS": TOPIC_LABELS,
    "CONDITION_LABELS": CONDITION_LABELS,
}


RECORD_LABELS = {
    "technician": N_("Technician"),
    "previous_technician": N_("Previous technician"),
    "appointment_at": N_("Appointment"),
    "previous_appointment_at": N_("Previous appointment"),
    "serial_number": N_("Serial number"),
    "parameters_version": N_("Parameter version"),
    "fetched_at": N_("Downloaded at"),
    "fetched_by_serial": N_("Downloaded by"),
    "reference": N_("Reference number (RRN)"),
    "response_time_ms": N_("Response time (ms)"),
    "receipt_printed": N_("Receipt printed correctly"),
    "record_matches": N_("Host record matches"),
    "signer_name": N_("Signed off by"),
    "topics": N_("Topics trained"),
    "manual_given": N_("Manual handed over"),
    "go_live": N_("Live"),
    "power_available": N_("Power available"),
    "network": N_("Network"),
    "signal_ok": N_("Signal usable"),
    "position": N_("Position"),
    "feasible": N_("Installation feasible"),
    "reason": N_("Reason"),
    "carrier": N_("Carrier"),
    "tracking_number": N_("Parcel tracking number"),
    "received_by": N_("Received by"),
    "received_at": N_("Received at"),
    "condition": N_("Condition"),
    "notes": N_("Notes"),
    "new_serial": N_("New device"),
    "old_serial": N_("Old device"),
    "kcv": N_("Key check value (KCV)"),
    "diagnosis": N_("Diagnosis"),
    "action": N_("What was done"),
    "swap_order": N_("Swap order"),
    "follow_up_of": N_("Follows"),
}
"""What the history calls each recorded field."""


def record_items(t: Translator) -> Callable[[dict[str, Any]], list[tuple[str, str]]]:
    """A template helper: a step's record as (label, value) lines in the reader's language."""

    def value_text(key: str, value: Any) -> str:
        if isinstance(value, bool):
            return t(N_("Yes")) if value else t(N_("No"))
        if key == "topics" and isinstance(value, list):
            return "、".join(t(TOPIC_LABELS.get(str(v), str(v))) for v in value)
        if key == "network":
            return t(NETWORK_LABELS.get(value, str(value)))
        if key == "condition":
            return t(CONDITION_LABELS.get(value, str(value)))
        if key.endswith("_at") and isinstance(value, str):
            try:
                return local_time(dt.datetime.fromisoformat(value)).strftime("%Y-%m-%d %H:%M")
            except ValueError:
                return value
        if isinstance(value, dict):
            return str(value.get("number", ""))
        return str(value)

    def items(data: dict[str, Any]) -> list[tuple[str, str]]:
        return [
            (t(RECORD_LABELS.get(key, key)), value_text(key, value))
            for key, value in data.items()
            if value is not None and value != ""
        ]

    return items


def _safe_next(target: str | None) -> str:
    return safe_local_path(target, "/tech", prefix="/tech")


# --- Login -------------------------------------------------------------------------------


@router.get("/login", dependencies=[PUBLIC])
def login_form(request: Request, next: str | None = None) -> Response:
    return render(
        request,
        "tech/login.html",
        {"error": None, "next": _safe_next(next), "username": "", **LABELS},
    )


@router.post("/login", dependencies=[PUBLIC])
def login(
    request: Request,
    uow: Write,
    t: T,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=300)] = "/tech",
) -> Response:
    try:
        result = staff_service.login(
            uow.session, username=username.strip(), password=password, client_ip=client_ip(request)
        )
    except Unauthorized as exc:
        uow.commit()  # keep the failure count and any lock-out
        return render(
            request,
            "tech/login.html",
            {
                "error": t(exc.message, exc.params),
                "next": _safe_next(next),
                "username": username,
                **LABELS,
            },
            401,
        )
    uow.commit()
    target = _safe_next(next)
    if target == "/tech" and not result.principal.has_any(FIELDWORK_WRITE):
        target = "/admin"  # somebody without field work landed here: the back office
    response = RedirectResponse(target, status_code=303)
    open_browser_session(request, response, result.session_token)
    return response


# --- My orders ----------------------------------------------------------------------------


@router.get("")
def my_orders(request: Request, uow: Read, principal: Worker) -> Response:
    """The technician's open orders, the nearest deadline first (operations: all open)."""
    session = uow.session
    if Role.TECHNICIAN in principal.roles:
        open_rows = repository.for_technician(
            session, principal.user_id, open_only=True, limit=ORDERS_SHOWN_MAX
        )
        recent = repository.for_technician(
            session, principal.user_id, open_only=False, limit=RECENT_SHOWN_MAX
        )
    else:
        open_rows = repository.open_by_due(session, limit=ORDERS_SHOWN_MAX)
        recent = []
    return render(
        request,
        "tech/orders.html",
        {
            "orders": order_views(session, list(open_rows)),
            "recent": order_views(session, list(recent)),
            **_nav(principal),
            **LABELS,
        },
    )


def _nav(principal: Principal) -> dict[str, Any]:
    return {
        "mine": Role.TECHNICIAN in principal.roles,
        "can_dispatch": principal.has_any(FIELDWORK_DISPATCH),
        "back_office": principal.has_any(set(Role) - {Role.TECHNICIAN, Role.MERCHANT}),
    }


# --- One order -----------------------------------------------------------------------------


def _order_context(
    session: Session, number: str, principal: Principal, t: Translator
) -> dict[str, Any]:
    order = service.get_for(session, number, principal)
    view = detail_view(session, order, t, principal)
    mine = [
        (WorkOrderStatus(s.target), Performer(s.performer))
        for s in view.next_steps
        if WorkOrderStatus(s.target) not in HIDDEN_FORM_STEPS
    ]
    primary = _primary(order.status, mine)
    waiting = [
        (target, who)
        for target, who in service.next_steps(order)
        if target not in {m for m, _ in mine} | HIDDEN_FORM_STEPS | {WorkOrderStatus.CANCELLED}
    ]
    reached = {s.to_status for s in view.steps} | {order.status}
    path = HAPPY_PATHS[WorkOrderKind(order.kind)]
    progress = [(str(state), str(state) in reached) for state in path]
    if order.status not in {str(s) for s in path}:
        progress.append((order.status, True))  # ended off the usual path (cancelled…)
    now_local = local_time(utcnow())
    return {
        "order": view,
        "primary": primary,
        "secondary": [m for m in mine if m[0] != primary],
        "waiting": waiting,
        "progress": progress,
        "can_upload": (service.is_operations(principal) or service.is_assignee(principal, order))
        and bool(service.next_steps(order)),
        "can_assign": service.is_operations(principal) and bool(service.next_steps(order)),
        "technicians": [u.username for u in repository.technicians(session)]
        if service.is_operations(principal)
        else [],
        "topics": list(TrainingTopic),
        "required_topics": [str(t) for t in REQUIRED_TRAINING_TOPICS],
        "networks": list(NetworkKind),
        "now_local": now_local.strftime("%Y-%m-%dT%H:%M"),
        "tomorrow_local": (now_local + dt.timedelta(days=1))
        .replace(hour=10, minute=0)
        .strftime("%Y-%m-%dT%H:%M"),
        "errors": [],
        "field_errors": {},
        "values": {},
        "failed_step": None,
        "photo_errors": [],
        "provisioned": None,
        "record_items": record_items(t),
        "step_label": lambda target: step_label(order.kind, str(target)),
        **_nav(principal),
        **LABELS,
    }


def _primary(
    current: str, moves: list[tuple[WorkOrderStatus, Performer]]
) -> WorkOrderStatus | None:
    """The step the page offers first: forward, not a re-booking, not a cancellation."""
    forward = [
        target
        for target, _ in moves
        if target not in (WorkOrderStatus.CANCELLED, WorkOrderStatus(current))
    ]
    if len(forward) > 1 and forward[0] is WorkOrderStatus.SCHEDULED:
        forward = forward[1:]  # booking is optional here: the work itself comes first
    if forward:
        return forward[0]
    return moves[0][0] if moves and moves[0][0] != WorkOrderStatus.CANCELLED else None


@router.get("/orders/{number}")
def order_page(number: str, request: Request, uow: Read, principal: Reader, t: T) -> Response:
    return render(request, "tech/order.html", _order_context(uow.session, number, principal, t))


def _problems(
    exc: PosHubError | ValidationError, t: Translator
) -> tuple[list[dict[str, Any]], int]:
    """Each problem with the field it concerns (None for the order as a whole)."""
    if isinstance(exc, ValidationError):
        return [
            {"field": e["field"], "msg": e["msg"]} for e in pydantic_errors(exc.errors(), t)
        ], 422
    if isinstance(exc, ValidationFailed):
        return [{"field": e["field"], "msg": e["msg"]} for e in field_errors(exc.errors, t)], 422
    return [
        {"field": None, "msg": t(exc.message, {k: t(v) for k, v in exc.params.items()})}
    ], exc.status_code


def _form_body(form: FormData) -> dict[str, Any]:
    """The fields of a submitted form, without the CSRF token or empty answers."""
    body: dict[str, Any] = {}
    for key in form:
        if key == "csrf_token":
            continue
        if key in MULTI_VALUE_FIELDS:
            body[key] = [str(v) for v in form.getlist(key)]
            continue
        value = form.get(key)
        if isinstance(value, str) and value.strip():
            body[key] = value
    return body


@router.post("/orders/{number}/steps/{target}")
async def record_step(number: str, target: str, request: Request, principal: Worker) -> Response:
    body = _form_body(await request.form())
    return await run_in_threadpool(_record_step, request, number, target[:40], principal, body)


def _record_step(
    request: Request, number: str, target: str, principal: Principal, body: dict[str, Any]
) -> Response:
    state = app_state(request)
    t = request_translator(request)
    with state.db.unit_of_work() as uow:
        order = service.get_for(uow.session, number, principal, for_update=True)
        try:
            result = service.perform_step(
                uow.session, fieldwork_deps(request), order, principal, target, body, now=utcnow()
            )
        except (PosHubError, ValidationError) as exc:
            uow.rollback()
            problems, status_code = _problems(exc, t)
            context = _order_context(uow.session, number, principal, t)
            context.update(
                errors=problems,
                field_errors={p["field"]: p["msg"] for p in problems if p["field"]},
                values=body,
                failed_step=target,
            )
            return render(request, "tech/order.html", context, status_code)
        provisioned = result.provisioned
        uow.commit()
        if provisioned is None:
            return RedirectResponse(f"/tech/orders/{order.number}", status_code=303)
        # The device secret is shown once, on this page, and never again.
        context = _order_context(uow.session, number, principal, t)
        context["provisioned"] = ProvisionedOut(
            tid=provisioned.terminal.tid,
            serial_number=provisioned.device.serial_number,
            kcv=provisioned.kcv,
            device_secret=provisioned.device_secret,
        )
        return render(request, "tech/order.html", context)


@router.post("/orders/{number}/photos")
async def upload_photo(
    number: str,
    request: Request,
    principal: Worker,
    file: Annotated[UploadFile, File()],
    caption: Annotated[str, Form(max_length=service.CAPTION_LENGTH_MAX)] = "",
) -> Response:
    try:
        content = await read_photo(file)
    except PosHubError as exc:
        return await run_in_threadpool(_photo_refused, request, number, principal, exc)
    return await run_in_threadpool(_store_photo, request, number, principal, content, caption)


def _store_photo(
    request: Request, number: str, principal: Principal, content: bytes, caption: str
) -> Response:
    state = app_state(request)
    with state.db.unit_of_work() as uow:
        order = service.get_for(uow.session, number, principal, for_update=True)
        try:
            service.add_photo(
                uow.session,
                state.onboarding.store,
                order,
                principal,
                content=content,
                caption=caption,
                now=utcnow(),
            )
        except PosHubError as exc:
            uow.rollback()
            return _photo_refused(request, number, principal, exc, uow)
        uow.commit()
    return RedirectResponse(f"/tech/orders/{order.number}#photos", status_code=303)


def _photo_refused(
    request: Request,
    number: str,
    principal: Principal,
    exc: PosHubError,
    uow: UnitOfWork | None = None,
) -> Response:
    t = request_translator(request)
    problems, status_code = _problems(exc, t)
    if uow is None:
        with app_state(request).db.unit_of_work(read_only=True) as reader:
            context = _order_context(reader.session, number, principal, t)
    else:
        context = _order_context(uow.session, number, principal, t)
    context["photo_errors"] = [p["msg"] for p in problems]
    return render(request, "tech/order.html", context, status_code)


@router.get("/orders/{number}/photos/{photo_id}")
def photo(number: str, photo_id: int, request: Request, uow: Read, principal: Reader) -> Response:
    response = download_photo(number, photo_id, request, uow, principal)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# --- Dispatch (operations) ---------------------------------------------------------------------


def _dispatch_context(session: Session, principal: Principal) -> dict[str, Any]:
    rows = repository.open_by_due(session, limit=limits.PAGE_SIZE_MAX)
    return {
        "orders": order_views(session, list(rows)),
        "technicians": [u.username for u in repository.technicians(session)],
        "kinds": list(WorkOrderKind),
        "errors": [],
        "field_errors": {},
        "values": {},
        **_nav(principal),
        **LABELS,
    }


@router.get("/dispatch")
def dispatch(request: Request, uow: Read, principal: Dispatcher) -> Response:
    return render(request, "tech/dispatch.html", _dispatch_context(uow.session, principal))


@router.post("/dispatch")
async def create_order(request: Request, principal: Dispatcher) -> Response:
    body = _form_body(await request.form())
    return await run_in_threadpool(_create_order, request, principal, body)


def _create_order(request: Request, principal: Principal, body: dict[str, Any]) -> Response:
    state = app_state(request)
    t = request_translator(request)
    with state.db.unit_of_work() as uow:
        try:
            order = service.create_order(
                uow.session, WorkOrderIn.model_validate(body), principal, now=utcnow()
            )
        except (PosHubError, ValidationError) as exc:
            uow.rollback()
            problems, status_code = _problems(exc, t)
            context = _dispatch_context(uow.session, principal)
            context.update(
                errors=problems,
                field_errors={p["field"]: p["msg"] for p in problems if p["field"]},
                values=body,
            )
            return render(request, "tech/dispatch.html", context, status_code)
        uow.commit()
    return RedirectResponse(f"/tech/orders/{order.number}", status_code=303)


@router.post("/orders/{number}/assign")
def assign(
    number: str,
    request: Request,
    uow: Write,
    principal: Dispatcher,
    t: T,
    technician: Annotated[str, Form(max_length=64)] = "",
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    order = service.get_for(uow.session, number, principal, for_update=True)
    try:
        service.assign(uow.session, order, technician, principal, now=utcnow())
    except PosHubError as exc:
        uow.rollback()
        problems, status_code = _problems(exc, t)
        context = _order_context(uow.session, number, principal, t)
        context.update(
            errors=problems,
            field_errors={p["field"]: p["msg"] for p in problems if p["field"]},
            failed_step=str(WorkOrderStatus.ASSIGNED),
        )
        return render(request, "tech/order.html", context, status_code)
    uow.commit()
    return RedirectResponse(_safe_next(back or f"/tech/orders/{order.number}"), status_code=303)
