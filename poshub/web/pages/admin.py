"""The staff back office: login, review queue, application review, blacklist, audit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from poshub.core import anchors, audit, limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, FieldError, PosHubError, Unauthorized, ValidationFailed
from poshub.core.i18n import Translator
from poshub.core.roles import Role
from poshub.merchants import repository as merchant_repository
from poshub.onboarding import repository, service
from poshub.onboarding.decisions import CHECK_LABELS, REJECTION_REASONS
from poshub.onboarding.models import BlacklistKind
from poshub.onboarding.schemas import (
    ApproveIn,
    BlacklistIn,
    NoteIn,
    OverrideDecisionIn,
    RejectIn,
    StaffEditIn,
)
from poshub.onboarding.states import OPEN_STATUSES, ApplicationStatus
from poshub.staff import service as staff_service
from poshub.staff.service import Principal
from poshub.web.api.review import document as api_document
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
from poshub.web.errors import refusal
from poshub.web.roles import (
    ANY_STAFF,
    AUDIT_READ,
    BLACKLIST_READ,
    BLACKLIST_WRITE,
    MERCHANT_READ,
    REVIEW_OVERRIDE,
    REVIEW_READ,
    REVIEW_WRITE,
)
from poshub.web.security import SESSION_COOKIE, safe_local_path
from poshub.web.sessions import open_browser_session
from poshub.web.templating import render
from poshub.web.views import check_label, queue_view, review_view

router = APIRouter(prefix="/admin", include_in_schema=False)

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
T = Annotated[Translator, Depends(translator)]
AnyStaff = Annotated[Principal, Depends(staff(*ANY_STAFF))]
Reader = Annotated[Principal, Depends(staff(*REVIEW_READ))]
Reviewer = Annotated[Principal, Depends(staff(*REVIEW_WRITE))]
RiskOfficer = Annotated[Principal, Depends(staff(*REVIEW_OVERRIDE))]


def _safe_next(target: str | None) -> str:
    return safe_local_path(target, "/admin", prefix="/admin")


@router.get("/login", dependencies=[PUBLIC])
def login_form(request: Request, next: str | None = None) -> Response:
    return render(
        request, "admin/login.html", {"error": None, "next": _safe_next(next), "username": ""}
    )


@router.post("/login", dependencies=[PUBLIC])
def login(
    request: Request,
    uow: Write,
    t: T,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=300)] = "/admin",
) -> Response:
    try:
        result = staff_service.login(
            uow.session, username=username.strip(), password=password, client_ip=client_ip(request)
        )
    except Unauthorized as exc:
        uow.commit()  # keep the failure count and any lock-out
        message = t(exc.message, exc.params)
        return render(
            request,
            "admin/login.html",
            {"error": message, "next": _safe_next(next), "username": username},
            401,
        )
    uow.commit()
    response = RedirectResponse(_safe_next(next), status_code=303)
    open_browser_session(request, response, result.session_token)
    return response


@router.post("/logout")
def logout(request: Request, uow: Write, principal: AnyStaff) -> Response:
    staff_service.logout(uow.session, request.cookies.get(SESSION_COOKIE, ""))
    uow.commit()
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("")
def dashboard(request: Request, uow: Read, principal: AnyStaff) -> Response:
    counts = repository.status_counts(uow.session)
    mine: list[Any] = []
    if principal.has_any(REVIEW_READ):
        rows = [
            a
            for a in repository.queue(uow.session, sorted(OPEN_STATUSES), limits.PAGE_SIZE_DEFAULT)
            if a.assigned_reviewer_id == principal.user_id
        ]
        mine = queue_view(uow.session, rows)
    return render(
        request,
        "admin/dashboard.html",
        {"counts": counts, "mine": mine, "statuses": list(ApplicationStatus)},
    )


@router.get("/applications")
def applications(
    request: Request,
    uow: Read,
    principal: Reader,
    status: Annotated[ApplicationStatus | None, Query()] = None,
) -> Response:
    if status and status not in OPEN_STATUSES:
        rows = list(repository.search(uow.session, status=status, limit=limits.PAGE_SIZE_MAX))
    else:
        rows = list(
            repository.queue(
                uow.session, [status] if status else sorted(OPEN_STATUSES), limits.PAGE_SIZE_MAX
            )
        )
    return render(
        request,
        "admin/queue.html",
        {
            "items": queue_view(uow.session, rows),
            "status": status,
            "statuses": list(ApplicationStatus),
        },
    )


def _detail_context(
    uow: UnitOfWork, application_id: str, principal: Principal, t: Translator
) -> dict[str, Any]:
    application = service.get_for_review(uow.session, application_id)
    view = review_view(uow.session, application, t)
    editors = repository.editor_ids(uow.session, application.id)
    pending = repository.pending_override(uow.session, application.id)
    is_editor = principal.user_id in editors
    can_override = principal.has_any(REVIEW_OVERRIDE)
    # Who may decide the pending override: a risk officer who neither asked for it nor
    # changed the application (the service enforces the same; the page only shows what
    # the viewer can use).
    override_barred = None
    if pending is not None and can_override:
        if pending.requested_by_id == principal.user_id:
            override_barred = N_(
                "You asked for this override, so another risk officer must decide it."
            )
        elif is_editor:
            override_barred = N_(
                "You edited this application, so another risk officer must decide the override."
            )
    return {
        "application": application,
        "view": view,
        "check_labels": {code: check_label(code, t) for code in CHECK_LABELS},
        "rejection_reasons": {code: t(label) for code, label in REJECTION_REASONS.items()},
        "is_assignee": application.assigned_reviewer_id == principal.user_id,
        "is_editor": is_editor,
        "can_review": principal.has_any(REVIEW_WRITE),
        "can_override": can_override,
        "may_decide_override": can_override and pending is not None and override_barred is None,
        "override_barred": override_barred,
        "override_check_names": ", ".join(check_label(c, t) for c in view.override_checks),
        "requested_check_names": ", ".join(check_label(c, t) for c in pending.checks)
        if pending
        else "",
        "errors": [],
    }


@router.get("/applications/{application_id}")
def application_detail(
    application_id: str, request: Request, uow: Read, principal: Reader, t: T
) -> Response:
    return render(
        request, "admin/application.html", _detail_context(uow, application_id, principal, t)
    )


def _act(
    request: Request,
    uow: UnitOfWork,
    application_id: str,
    principal: Principal,
    t: Translator,
    action: Any,
) -> Response:
    """Run one review action; on a domain error, show the page again with the message."""
    try:
        application = service.get_for_review(uow.session, application_id, for_update=True)
        action(application)
    except (PosHubError, ValidationError) as exc:
        uow.rollback()
        messages, status_code = refusal(exc, t)
        context = _detail_context(uow, application_id, principal, t)
        context["errors"] = messages
        return render(request, "admin/application.html", context, status_code)
    uow.commit()
    return RedirectResponse(f"/admin/applications/{application_id}", status_code=303)


@router.post("/applications/{application_id}/claim")
def claim(application_id: str, request: Request, uow: Write, principal: Reviewer, t: T) -> Response:
    return _act(
        request,
        uow,
        application_id,
        principal,
        t,
        lambda a: service.claim(uow.session, a, principal, now=utcnow()),
    )


@router.post("/applications/{application_id}/notes")
def note(
    application_id: str,
    request: Request,
    uow: Write,
    principal: Reviewer,
    t: T,
    kind: Annotated[str, Form()] = "note",
    body: Annotated[str, Form()] = "",
    outcome: Annotated[str, Form()] = "",
) -> Response:
    def action(application: Any) -> None:
        data = NoteIn(kind=kind, body=body.strip(), outcome=outcome or None)
        service.add_note(uow.session, application, principal, data, now=utcnow())

    return _act(request, uow, application_id, principal, t, action)


@router.post("/applications/{application_id}/request-info")
def request_info(
    application_id: str,
    request: Request,
    uow: Write,
    principal: Reviewer,
    t: T,
    message: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    onboarding = app_state(request).onboarding
    return _act(
        request,
        uow,
        application_id,
        principal,
        t,
        lambda a: service.request_info(
            uow.session,
            onboarding,
            a,
            principal,
            _message(message),
            note=note.strip() or None,
            now=utcnow(),
        ),
    )


def _message(text: str) -> str:
    text = text.strip()
    if not 2 <= len(text) <= limits.MESSAGE_LENGTH_MAX:
        raise ValidationFailed(
            [
                FieldError(
                    "message", "message.length", N_("Write a message of 2 to 4000 characters.")
                )
            ]
        )
    return text


@router.post("/applications/{application_id}/edit")
def edit(
    application_id: str,
    request: Request,
    uow: Write,
    principal: Reviewer,
    t: T,
    reason: Annotated[str, Form()] = "",
    business_name: Annotated[str, Form()] = "",
    mcc: Annotated[str, Form()] = "",
    bank_name: Annotated[str, Form()] = "",
) -> Response:
    onboarding = app_state(request).onboarding

    def action(application: Any) -> None:
        changes: dict[str, Any] = {"reason": reason.strip()}
        if business_name.strip() and business_name.strip() != application.business_name:
            changes["business_name"] = business_name.strip()
        if mcc.strip() and mcc.strip() != application.mcc:
            changes["mcc"] = mcc.strip()
        if bank_name.strip() and bank_name.strip() != application.bank_name:
            changes["bank_name"] = bank_name.strip()
        service.staff_edit(
            uow.session,
            onboarding,
            application,
            principal,
            StaffEditIn.model_validate(changes),
            now=utcnow(),
        )

    return _act(request, uow, application_id, principal, t, action)


@router.post("/applications/{application_id}/recheck")
def recheck(
    application_id: str, request: Request, uow: Write, principal: Reviewer, t: T
) -> Response:
    onboarding = app_state(request).onboarding
    return _act(
        request,
        uow,
        application_id,
        principal,
        t,
        lambda a: service.rerun_checks(uow.session, onboarding, a, principal, now=utcnow()),
    )


@router.post("/applications/{application_id}/approve")
def approve(
    application_id: str,
    request: Request,
    uow: Write,
    principal: Reviewer,
    t: T,
    note: Annotated[str, Form()] = "",
    message: Annotated[str, Form()] = "",
) -> Response:
    onboarding = app_state(request).onboarding
    return _act(
        request,
        uow,
        application_id,
        principal,
        t,
        lambda a: service.approve(
            uow.session,
            onboarding,
            a,
            principal,
            ApproveIn(note=note.strip() or None, message=message.strip() or None),
            now=utcnow(),
        ),
    )


def _act_on_override(
    request: Request,
    uow: UnitOfWork,
    override_id: int,
    principal: Principal,
    t: Translator,
    decide: str,
    note: str,
) -> Response:
    """Approve or decline an override request; on a refusal, show the application again."""
    onboarding = app_state(request).onboarding
    _, application = service.get_override(uow.session, override_id)
    application_id = application.id

    def action(application: Any) -> None:
        row, _ = service.get_override(uow.session, override_id, for_update=True)
        decision = OverrideDecisionIn(note=note.strip())
        if decide == "approve":
            service.approve_override(
                uow.session, onboarding, row, application, principal, decision, now=utcnow()
            )
        else:
            service.decline_override(
                uow.session, row, application, principal, decision, now=utcnow()
            )

    return _act(request, uow, application_id, principal, t, action)


@router.post("/overrides/{override_id}/approve")
def override_approve(
    override_id: int,
    request: Request,
    uow: Write,
    principal: RiskOfficer,
    t: T,
    note: Annotated[str, Form()] = "",
) -> Response:
    return _act_on_override(request, uow, override_id, principal, t, "approve", note)


@router.post("/overrides/{override_id}/decline")
def override_decline(
    override_id: int,
    request: Request,
    uow: Write,
    principal: RiskOfficer,
    t: T,
    note: Annotated[str, Form()] = "",
) -> Response:
    return _act_on_override(request, uow, override_id, principal, t, "decline", note)


@router.post("/applications/{application_id}/reject")
async def reject(application_id: str, request: Request, principal: Reviewer) -> Response:
    form = await request.form()
    reasons = [str(r) for r in form.getlist("reasons")]
    note_text = str(form.get("note", "")).strip()
    message_text = str(form.get("message", "")).strip()
    return await run_in_threadpool(
        _reject, request, application_id, principal, reasons, note_text, message_text
    )


def _reject(
    request: Request,
    application_id: str,
    principal: Principal,
    reasons: list[str],
    note_text: str,
    message_text: str,
) -> Response:
    state = app_state(request)
    t = request_translator(request)
    with state.db.unit_of_work() as uow:
        return _act(
            request,
            uow,
            application_id,
            principal,
            t,
            lambda a: service.reject(
                uow.session,
                state.onboarding,
                a,
                principal,
                RejectIn(reasons=reasons, note=note_text or None, message=message_text or None),
                now=utcnow(),
            ),
        )


@router.get("/applications/{application_id}/documents/{document_id}")
def document(
    application_id: str, document_id: str, request: Request, uow: Read, principal: Reader
) -> Response:
    return api_document(application_id, document_id, request, uow, principal)


@router.get("/merchants")
def merchants(
    request: Request, uow: Read, principal: Annotated[Principal, Depends(staff(*MERCHANT_READ))]
) -> Response:
    return render(
        request,
        "admin/merchants.html",
        {"merchants": merchant_repository.newest(uow.session, limits.PAGE_SIZE_MAX)},
    )


@router.get("/blacklist")
def blacklist(
    request: Request, uow: Read, principal: Annotated[Principal, Depends(staff(*BLACKLIST_READ))]
) -> Response:
    return render(
        request,
        "admin/blacklist.html",
        {
            "entries": repository.blacklist(
                uow.session, include_removed=True, limit=limits.PAGE_SIZE_MAX
            ),
            "kinds": list(BlacklistKind),
            "can_edit": principal.has_any(BLACKLIST_WRITE),
            "errors": [],
        },
    )


@router.post("/blacklist")
def blacklist_add(
    request: Request,
    uow: Write,
    t: T,
    principal: Annotated[Principal, Depends(staff(*BLACKLIST_WRITE))],
    kind: Annotated[str, Form()] = "",
    value: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        entry = BlacklistIn.model_validate(
            {"kind": kind, "value": value.strip(), "reason": reason.strip()}
        )
        service.add_blacklist_entry(
            uow.session, app_state(request).vault, entry, principal, now=utcnow()
        )
    except (PosHubError, ValidationError) as exc:
        uow.rollback()
        messages, _ = refusal(exc, t)
        return render(
            request,
            "admin/blacklist.html",
            {
                "entries": repository.blacklist(
                    uow.session, include_removed=True, limit=limits.PAGE_SIZE_MAX
                ),
                "kinds": list(BlacklistKind),
                "can_edit": True,
                "errors": messages,
            },
            422,
        )
    uow.commit()
    return RedirectResponse("/admin/blacklist", status_code=303)


@router.post("/blacklist/{entry_id}/remove")
def blacklist_remove(
    entry_id: int, uow: Write, principal: Annotated[Principal, Depends(staff(*BLACKLIST_WRITE))]
) -> Response:
    service.remove_blacklist_entry(uow.session, entry_id, principal, now=utcnow())
    uow.commit()
    return RedirectResponse("/admin/blacklist", status_code=303)


@router.get("/audit")
def audit_page(
    request: Request,
    uow: Read,
    principal: Annotated[Principal, Depends(staff(*AUDIT_READ))],
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    verify: bool = False,
) -> Response:
    state = app_state(request)
    result = (
        anchors.verify(
            uow.session,
            state.vault.audit_key,
            state.vault.audit_anchor_key,
            state.settings.effective_audit_anchor_dir,
        )
        if verify
        else None
    )
    entries = audit.recent(uow.session, entity_id=entity_id or None, limit=limits.PAGE_SIZE_MAX)
    return render(
        request,
        "admin/audit.html",
        {"entries": entries, "entity_id": entity_id or "", "result": result},
    )


_ROLE_LABELS = {role: role.value for role in Role}
