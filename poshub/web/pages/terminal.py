"""The terminal page, ``/admin/terminals/{tid}``: one terminal as the back office sees it.

The terminal (status, merchant, device, parameters), its gateway session (signed on at,
key mode, PIK/MAK check values, MAC failures) and, for the roles that may read
transactions, its latest transactions, open batch and settled batches. Technicians see
the session too: a key check value that differs from the terminal's display, or MAC
failures piling up, is what they come to check on site.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from poshub.core import limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, NotFound, PosHubError
from poshub.core.i18n import Translator
from poshub.gateway import service as gateway_service
from poshub.merchants import repository as merchant_repository
from poshub.staff.service import Principal
from poshub.terminals import repository as terminal_repository
from poshub.terminals import service as terminal_service
from poshub.terminals import tms_service
from poshub.terminals.models import TerminalStatus
from poshub.web.deps import read_uow, staff, translator, write_uow
from poshub.web.errors import refusal
from poshub.web.roles import FLEET_WRITE, MERCHANT_READ, TERMINAL_PAGE_READ, TRANSACTION_READ
from poshub.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
T = Annotated[Translator, Depends(translator)]
Reader = Annotated[Principal, Depends(staff(*TERMINAL_PAGE_READ))]
Operations = Annotated[Principal, Depends(staff(*FLEET_WRITE))]

_TID = re.compile(r"[0-9A-Za-z]{8}")
NO_TERMINAL = N_("No terminal has this TID.")


@router.get("/terminals/{tid}")
def terminal_page(tid: str, request: Request, uow: Read, principal: Reader) -> Response:
    return terminal_response(request, uow, tid, principal)


def terminal_response(
    request: Request,
    uow: UnitOfWork,
    tid: str,
    principal: Principal,
    *,
    export_errors: dict[str, str] | None = None,
    recall_errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    """The terminal page; ``export_errors`` are a refused key export request's reasons
    (by field: ``transport_key_kcv`` or ``form``), shown beside its form."""
    if not _TID.fullmatch(tid):
        # The TMS lookup would take the first eight characters of anything.
        raise NotFound(NO_TERMINAL, code="terminal_not_found")
    session = uow.session
    detail = tms_service.terminal_detail(session, tms_service.get_terminal(session, tid))
    merchant = merchant_repository.by_mid(session, detail.mid) if detail.mid else None
    can_read_transactions = principal.has_any(TRANSACTION_READ)
    context: dict[str, Any] = {
        "terminal": detail.terminal,
        "mid": detail.mid,
        "merchant": merchant,
        "device": detail.device,
        "parameters": detail.parameters,
        "can_read_merchant": principal.has_any(MERCHANT_READ),
        "can_read_transactions": can_read_transactions,
        "recent_max": limits.TERMINAL_RECENT_TRANSACTIONS,
        # Key export requests (pages/keys.py): operations pick a registered transport key.
        "can_request_export": principal.has_any(FLEET_WRITE),
        "transport_keys": (
            terminal_repository.active_transport_keys(session)
            if principal.has_any(FLEET_WRITE)
            else []
        ),
        "export_errors": export_errors or {},
        # Recall (closing a merchant needs every terminal recalled first).
        "can_recall": principal.has_any(FLEET_WRITE)
        and detail.terminal.status != TerminalStatus.CLOSED.value,
        "recall_errors": recall_errors or [],
    }
    if can_read_transactions:
        activity = gateway_service.terminal_activity(session, detail.terminal.tid)
        context["activity"] = activity
        context["gateway_session"] = activity.session
    else:
        context["activity"] = None
        context["gateway_session"] = gateway_service.terminal_session(session, detail.terminal.tid)
    return render(request, "admin/terminal.html", context, status_code)


@router.post("/terminals/{tid}/recall")
def recall_terminal(
    tid: str,
    request: Request,
    uow: Write,
    principal: Operations,
    t: T,
    reason: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Recall the terminal for good from its page, as ``POST /api/v1/terminals/{tid}/recall``
    does; a refusal comes back on the page beside the form."""
    if not _TID.fullmatch(tid):
        raise NotFound(NO_TERMINAL, code="terminal_not_found")
    terminal = tms_service.get_terminal(uow.session, tid, for_update=True)
    try:
        terminal_service.recall(
            uow.session, terminal, reason=reason, actor=principal.actor, now=utcnow()
        )
    except PosHubError as exc:
        uow.rollback()
        messages, status_code = refusal(exc, t)
        return terminal_response(
            request, uow, tid, principal, recall_errors=messages, status_code=status_code
        )
    uow.commit()
    return RedirectResponse(f"/admin/terminals/{tid}#terminal", status_code=303)
