"""Key custody in the back office, ``/admin/keys``: the operations staff's screen for
``poshub.terminals.custody`` (the API in ``web/api/fleet.py`` does the same for programs).

Transport keys: the registered keys by check value, with their custodians' names (never a
key or a component), the open ceremonies, a form to start a ceremony with the first
component and, on an open ceremony started by someone else, a form to enter the second.
A component typed in a form is never written back into the page, even when refused; the
refusal stands beside the field.

Key exports: every request with Approve (shown only to an operator other than the
requester) and Collect (only to the requester, once approved). A terminal's export is
requested from its page (``/admin/terminals/{tid}``). The collected cryptogram and the
check value are shown on the answer to Collect, that once (``Cache-Control: no-store``,
as every rendered page).

Each action runs one service call and commits, then redirects; a refusal shows the page
again with its reasons (like ``fleet._act``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from poshub.core import limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, NotFound, PosHubError, ValidationFailed
from poshub.core.i18n import Translator
from poshub.staff import repository as staff_repository
from poshub.staff.service import Principal
from poshub.terminals import custody
from poshub.terminals import repository as terminal_repository
from poshub.terminals.models import (
    KeyExportRequest,
    KeyExportStatus,
    TransportKey,
    TransportKeyStatus,
)
from poshub.terminals.schemas import (
    KeyExportRequestIn,
    TransportKeyComponentIn,
    TransportKeyStartIn,
)
from poshub.web.deps import app_state, read_uow, staff, translator, write_uow
from poshub.web.errors import refusal, refusal_by_field
from poshub.web.pages.terminal import terminal_response
from poshub.web.roles import FLEET_WRITE
from poshub.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
T = Annotated[Translator, Depends(translator)]
Operations = Annotated[Principal, Depends(staff(*FLEET_WRITE))]

COMPONENT_MAX = 64
"""Form bound for a typed component (32 hex digits with spaces between groups fit)."""

TRANSPORT_KEY_STATUS_LABELS = {
    TransportKeyStatus.PENDING.value: N_("Waiting for the second component"),
    TransportKeyStatus.ACTIVE.value: N_("Registered"),
    TransportKeyStatus.CANCELLED.value: N_("Cancelled"),
}
EXPORT_STATUS_LABELS = {
    KeyExportStatus.REQUESTED.value: N_("Waiting for approval"),
    KeyExportStatus.APPROVED.value: N_("Approved, to collect"),
    KeyExportStatus.COLLECTED.value: N_("Collected"),
    "expired": N_("Expired"),
}


# --- Views of rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class TransportKeyRow:
    key: TransportKey
    first_custodian: str
    second_custodian: str | None
    may_complete: bool
    """Open, and the viewer is not its first custodian."""


@dataclass(frozen=True)
class ExportRow:
    request: KeyExportRequest
    tid: str
    transport_key_kcv: str
    requested_by: str
    approved_by: str | None
    expires_at: dt.datetime
    status: str
    """The request's status, or ``expired`` for an uncollected one past its time."""
    may_approve: bool
    may_collect: bool
    mine: bool


def _names(uow: UnitOfWork, ids: Iterable[int | None]) -> dict[int, str]:
    return staff_repository.names_by_id(uow.session, {i for i in ids if i is not None})


def _transport_key_rows(
    uow: UnitOfWork, keys: Sequence[TransportKey], principal: Principal
) -> list[TransportKeyRow]:
    names = _names(uow, [i for k in keys for i in (k.first_custodian_id, k.second_custodian_id)])
    return [
        TransportKeyRow(
            key=k,
            first_custodian=names.get(k.first_custodian_id, ""),
            second_custodian=names.get(k.second_custodian_id) if k.second_custodian_id else None,
            may_complete=k.status == TransportKeyStatus.PENDING
            and k.first_custodian_id != principal.user_id,
        )
        for k in keys
    ]


def _export_rows(
    uow: UnitOfWork, requests: Sequence[KeyExportRequest], principal: Principal
) -> list[ExportRow]:
    session = uow.session
    names = _names(uow, [i for r in requests for i in (r.requested_by_id, r.approved_by_id)])
    now = utcnow()
    valid = dt.timedelta(hours=limits.KEY_EXPORT_REQUEST_VALID_HOURS)
    rows = []
    for r in requests:
        terminal = terminal_repository.terminal(session, r.terminal_id)
        transport = terminal_repository.transport_key(session, r.transport_key_id)
        expires_at = r.requested_at + valid
        expired = r.status != KeyExportStatus.COLLECTED and now > expires_at
        mine = r.requested_by_id == principal.user_id
        rows.append(
            ExportRow(
                request=r,
                tid=terminal.tid if terminal else "",
                transport_key_kcv=(transport.kcv or "") if transport else "",
                requested_by=names.get(r.requested_by_id, ""),
                approved_by=names.get(r.approved_by_id) if r.approved_by_id else None,
                expires_at=expires_at,
                status="expired" if expired else r.status,
                may_approve=not expired and not mine and r.status == KeyExportStatus.REQUESTED,
                may_collect=not expired and mine and r.status == KeyExportStatus.APPROVED,
                mine=mine,
            )
        )
    return rows


# --- The page --------------------------------------------------------------------------


def _keys_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    *,
    errors: list[str] | None = None,
    field_errors_by_form: dict[str, dict[str, str]] | None = None,
    label: str = "",
    status_code: int = 200,
) -> Response:
    session = uow.session
    keys = terminal_repository.transport_keys(session, limit=limits.PAGE_SIZE_MAX)
    requests = terminal_repository.key_export_requests(
        session, status=None, limit=limits.PAGE_SIZE_MAX
    )
    return render(
        request,
        "admin/keys.html",
        {
            "transport_keys": _transport_key_rows(uow, keys, principal),
            "exports": _export_rows(uow, requests, principal),
            "TRANSPORT_KEY_STATUS_LABELS": TRANSPORT_KEY_STATUS_LABELS,
            "EXPORT_STATUS_LABELS": EXPORT_STATUS_LABELS,
            "valid_hours": limits.KEY_EXPORT_REQUEST_VALID_HOURS,
            "errors": errors or [],
            "form_errors": field_errors_by_form or {},
            "label": label,
        },
        status_code,
    )


@router.get("/keys")
def keys_page(request: Request, uow: Read, principal: Operations) -> Response:
    return _keys_page(request, uow, principal)


def _refused(
    request: Request, uow: UnitOfWork, principal: Principal, exc: PosHubError, t: Translator
) -> Response:
    """The page again, its reasons at the top (a step that is not a field's)."""
    messages, status_code = refusal(exc, t)
    return _keys_page(request, uow, principal, errors=messages, status_code=status_code)


# --- Transport key ceremony -------------------------------------------------------------


@router.post("/keys/transport-keys")
def start_transport_key(
    request: Request,
    uow: Write,
    principal: Operations,
    t: T,
    label: Annotated[str, Form(max_length=64)] = "",
    component: Annotated[str, Form(max_length=COMPONENT_MAX)] = "",
) -> Response:
    """The first custodian's component; the ceremony then waits for another operator."""
    try:
        data = TransportKeyStartIn(label=label.strip(), component=component.strip())
        key = custody.start_transport_key(
            uow.session,
            app_state(request).vault,
            principal,
            label=data.label,
            component_hex=data.component,
            now=utcnow(),
        )
    except (PosHubError, ValidationError) as exc:
        uow.rollback()
        found, status_code = refusal_by_field(exc, t)
        return _keys_page(
            request,
            uow,
            principal,
            field_errors_by_form={"start": found},
            label=label.strip(),
            status_code=status_code,
        )
    uow.commit()
    return RedirectResponse(f"/admin/keys#transport-key-{key.id}", status_code=303)


@router.post("/keys/transport-keys/{key_id}/components")
def complete_transport_key(
    key_id: int,
    request: Request,
    uow: Write,
    principal: Operations,
    t: T,
    component: Annotated[str, Form(max_length=COMPONENT_MAX)] = "",
) -> Response:
    """The second custodian's component: the key is registered, or refused (and the
    ceremony cancelled, which is committed before the refusal is shown)."""
    form = f"complete-{key_id}"
    try:
        data = TransportKeyComponentIn(component=component.strip())
        result = custody.complete_transport_key(
            uow.session,
            app_state(request).vault,
            principal,
            key_id,
            component_hex=data.component,
            now=utcnow(),
        )
    except (ValidationFailed, ValidationError) as exc:
        uow.rollback()
        found, status_code = refusal_by_field(exc, t)
        return _keys_page(
            request, uow, principal, field_errors_by_form={form: found}, status_code=status_code
        )
    except PosHubError as exc:  # another person's step, a closed ceremony: not the field's
        uow.rollback()
        return _refused(request, uow, principal, exc, t)
    uow.commit()
    if isinstance(result, custody.CeremonyRefused):
        # The ceremony is closed now: its reasons go at the top of the page.
        return _refused(request, uow, principal, result.error, t)
    return RedirectResponse(f"/admin/keys#transport-key-{result.id}", status_code=303)


# --- Key export ---------------------------------------------------------------------------


@router.post("/terminals/{tid}/key-export-requests")
def request_key_export(
    tid: str,
    request: Request,
    uow: Write,
    principal: Operations,
    t: T,
    transport_key_kcv: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """The maker's step, from the terminal page; another operator approves on /admin/keys."""
    terminal = terminal_repository.terminal_by_tid(uow.session, tid)
    if terminal is None:
        raise NotFound(N_("No terminal has this TID."), code="terminal_not_found")
    try:
        data = KeyExportRequestIn(transport_key_kcv=transport_key_kcv)
        export = custody.request_export(
            uow.session,
            principal,
            terminal,
            transport_key_kcv=data.transport_key_kcv,
            now=utcnow(),
        )
    except (PosHubError, ValidationError) as exc:
        uow.rollback()
        found, status_code = refusal_by_field(exc, t)
        return terminal_response(
            request, uow, tid, principal, export_errors=found, status_code=status_code
        )
    uow.commit()
    return RedirectResponse(f"/admin/keys#export-{export.id}", status_code=303)


@router.post("/keys/key-export-requests/{request_id}/approve")
def approve_key_export(
    request_id: int, request: Request, uow: Write, principal: Operations, t: T
) -> Response:
    """The checker's step, by an operator other than the requester; releases nothing."""
    try:
        custody.approve_export(uow.session, principal, request_id, now=utcnow())
    except PosHubError as exc:
        uow.rollback()
        return _refused(request, uow, principal, exc, t)
    uow.commit()
    return RedirectResponse(f"/admin/keys#export-{request_id}", status_code=303)


@router.post("/keys/key-export-requests/{request_id}/collect")
def collect_key_export(
    request_id: int, request: Request, uow: Write, principal: Operations, t: T
) -> Response:
    """The cryptogram and the key's check value, to the requester, on this answer only."""
    try:
        result = custody.collect_export(
            uow.session, app_state(request).vault, principal, request_id, now=utcnow()
        )
    except PosHubError as exc:
        uow.rollback()
        return _refused(request, uow, principal, exc, t)
    uow.commit()
    context: dict[str, Any] = {
        "tid": result.tid,
        "serial_number": result.serial_number,
        "kcv": result.kcv,
        "transport_key_kcv": result.transport_key_kcv,
        "key_block": result.key_block,
    }
    response = render(request, "admin/key_export.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response
