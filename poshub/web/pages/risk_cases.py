"""The risk officer's screens for ``poshub.risk.cases`` (the API in
``web/api/risk_cases.py`` does the same for programs).

``/admin/risk/alerts``
    The queue, newest first: rule (by name), severity, merchant, terminal, masked card,
    amount, what the rule did. Filters by status, rule, MID, TID and business dates (a
    GET form, so a filtered queue is a link). Officers tick alerts and open a case from
    them, or dismiss them with a reason.
``/admin/risk/cases``
    Cases, newest first, and the cards blocked now.
``/admin/risk/cases/{reference}``
    One case: the merchant and terminal with the freezes in force, the evidence
    (transactions, rule hits, the terminal's location trail, notes, attachments), the
    action forms and the timeline of events. A closed case shows no forms.

Each action runs one service call and commits, then redirects to where its result shows;
a refusal shows the page again with the reason beside the form (422, 404 or 409).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from poshub.core import limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, PosHubError, ValidationFailed
from poshub.core.i18n import Translator
from poshub.core.money import format_fen
from poshub.risk import cases, report
from poshub.risk.models import AlertStatus, CaseStatus, RiskAlert, RiskCase
from poshub.risk.schemas import ALERT_CODE_LABELS, RULES
from poshub.staff.service import Principal
from poshub.terminals import repository as terminal_repository
from poshub.web.api.applications import download_headers, read_upload, stored_bytes
from poshub.web.api.risk_cases import export
from poshub.web.deps import (
    app_state,
    read_uow,
    request_translator,
    staff,
    translator,
    write_uow,
)
from poshub.web.errors import field_errors, refusal
from poshub.web.roles import RISK_READ, RISK_WRITE
from poshub.web.templating import render, templates

router = APIRouter(prefix="/admin/risk", include_in_schema=False)

# The merchant page's risk card (admin/risk_case_merchant.html) names each freeze's kind.
templates.env.globals["risk_freeze_kind"] = cases.freeze_kind

GATEWAY_RULES = frozenset(code.value for code, rule in RULES.items() if rule.in_gateway)


def alert_action(alert: RiskAlert) -> str:
    """What a hit did, as ``labels.RISK_ACTION_LABELS`` names it: an alert raised outside
    the authorization (a relocation, an external list) approved nothing, it only tells."""
    return alert.action if alert.rule_code in GATEWAY_RULES else "notice"


templates.env.globals["alert_action"] = alert_action

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
T = Annotated[Translator, Depends(translator)]
Reader = Annotated[Principal, Depends(staff(*RISK_READ))]
Officer = Annotated[Principal, Depends(staff(*RISK_WRITE))]
Filter = Annotated[str, Query(max_length=32)]
Reason = Annotated[str, Form(max_length=cases.REASON_LENGTH_MAX)]
NoteText = Annotated[str, Form(max_length=cases.NOTE_LENGTH_MAX)]

DETAIL_LABELS = {
    "count": N_("Count"),
    "max_count": N_("Allowed count"),
    "window_minutes": N_("Window (minutes)"),
    "declines": N_("Declines"),
    "max_declines": N_("Allowed declines"),
    "cooldown_until": N_("Declined until"),
    "signals": N_("Signs"),
    "min_signals": N_("Signs needed"),
    "amount_fen": N_("Amount"),
    "same_card_today": N_("Same card today"),
    "local_time": N_("Local time"),
    "opening_time": N_("Opens"),
    "closing_time": N_("Closes"),
    "grace_minutes": N_("Grace (minutes)"),
    "norm_fen": N_("Category's typical ticket"),
    "factor": N_("Multiple (×)"),
    "average_fen": N_("Average ticket today"),
    "average_factor": N_("Average factor"),
    "month_volume_fen": N_("Volume this month"),
    "expected_monthly_fen": N_("Declared monthly volume"),
    "age_days": N_("Days since approval"),
    "refunds_fen": N_("Refunds today"),
    "sales_fen": N_("Sales today"),
    "percent": N_("Percent"),
    "max_percent": N_("Allowed percent"),
    "pan_masked": N_("Card"),
    "latitude": N_("Latitude"),
    "longitude": N_("Longitude"),
    "distance_km": N_("Distance (km)"),
    "max_km": N_("Allowed distance (km)"),
}
"""The values rules record in an alert's detail, by name; others show as they are."""


def detail_items(detail: dict[str, Any], t: Translator) -> list[tuple[str, str]]:
    """An alert's detail as (label, value) pairs a person reads: amounts in yuan."""
    items = []
    for key, value in detail.items():
        if key.endswith("_fen") and isinstance(value, int):
            shown = format_fen(value)
        elif isinstance(value, list | tuple):
            shown = ", ".join(str(v) for v in value)
        else:
            shown = str(value)
        label = DETAIL_LABELS.get(key)
        items.append((t(label) if label else key, shown))
    return items


@dataclass(frozen=True)
class AlertRow:
    alert: RiskAlert
    merchant_name: str | None
    details: list[tuple[str, str]]
    dismissal: cases.Dismissal | None
    """Who dismissed it, when and why (a dismissed alert)."""


def _alert_rows(session: Session, alerts: Iterable[RiskAlert], t: Translator) -> list[AlertRow]:
    listed = list(alerts)
    names = cases.merchant_names(session, {a.mid for a in listed if a.mid})
    dismissals = cases.dismissals(
        session, [a.id for a in listed if a.status == AlertStatus.DISMISSED]
    )
    return [
        AlertRow(
            a,
            names.get(a.mid) if a.mid else None,
            detail_items(a.detail, t),
            dismissals.get(a.id),
        )
        for a in listed
    ]


def _messages(exc: PosHubError, t: Translator) -> tuple[dict[str, str], int]:
    """A refusal's messages by field (``form`` for one that names none)."""
    if isinstance(exc, ValidationFailed):
        found: dict[str, str] = {}
        for error in field_errors(exc.errors, t):
            found[error["field"]] = error["msg"]
        return found, exc.status_code
    messages, status_code = refusal(exc, t)
    return {"form": " ".join(messages)}, status_code


# --- The alert queue ------------------------------------------------------------------------


def _queue_url(form: dict[str, str], page: int) -> str:
    query = {k: v for k, v in form.items() if v}
    if page != 1:
        query["page"] = str(page)
    return "/admin/risk/alerts" + (f"?{urlencode(query)}" if query else "")


def _alerts_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    t: Translator,
    *,
    form: dict[str, str],
    page: int = 1,
    errors: dict[str, str] | None = None,
    selected: Iterable[int] = (),
    action_form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "form": form,
        "filtered": any(form.values()),
        "statuses": [*AlertStatus, "all"],
        "rules": list(ALERT_CODE_LABELS),
        "field_errors": {},
        "errors": errors or {},
        "selected": set(selected),
        "action_form": action_form or {"title": "", "reason": ""},
        "can_act": principal.has_any(RISK_WRITE),
        "result": None,
        "rows": [],
        # After a dismissal: how many (a number, or nothing is said).
        "done_count": n if (n := request.query_params.get("dismissed", "")).isdigit() else "",
    }
    try:
        criteria = cases.parse_alert_filter(
            status=form.get("status"),
            rule=form.get("rule"),
            mid=form.get("mid"),
            tid=form.get("tid"),
            date_from=form.get("date_from"),
            date_to=form.get("date_to"),
            page=page,
        )
    except ValidationFailed as exc:
        context["field_errors"] = {e["field"]: e["msg"] for e in field_errors(exc.errors, t)}
        return render(request, "admin/risk_alerts.html", context, 422)
    result = cases.alert_queue(uow.session, criteria)
    context["result"] = result
    context["rows"] = _alert_rows(uow.session, result.rows, t)
    context["previous_url"] = _queue_url(form, result.number - 1) if result.has_previous else None
    context["next_url"] = _queue_url(form, result.number + 1) if result.has_next else None
    return render(request, "admin/risk_alerts.html", context, status_code)


@router.get("/alerts")
def alerts(
    request: Request,
    uow: Read,
    principal: Reader,
    t: T,
    status: Filter = "",
    rule: Filter = "",
    mid: Filter = "",
    tid: Filter = "",
    date_from: Filter = "",
    date_to: Filter = "",
    page: int = 1,
) -> Response:
    form = {
        "status": status.strip(),
        "rule": rule.strip(),
        "mid": mid.strip(),
        "tid": tid.strip(),
        "date_from": date_from.strip(),
        "date_to": date_to.strip(),
    }
    return _alerts_page(request, uow, principal, t, form=form, page=page)


AlertIds = Annotated[list[int], Form(max_length=cases.ALERTS_PER_ACTION_MAX)]


@router.post("/alerts/dismiss")
def dismiss(
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    alert_id: AlertIds = [],  # noqa: B006 - FastAPI copies form defaults
    reason: Reason = "",
) -> Response:
    """Dismiss the ticked alerts with one reason."""
    try:
        dismissed = cases.dismiss_alerts(
            uow.session, principal, alert_id, reason=reason, now=utcnow()
        )
    except PosHubError as exc:
        uow.rollback()
        found, status_code = _messages(exc, t)
        return _alerts_page(
            request,
            uow,
            principal,
            t,
            form={},
            errors=found,
            selected=alert_id,
            action_form={"title": "", "reason": reason},
            status_code=status_code,
        )
    uow.commit()
    return RedirectResponse(f"/admin/risk/alerts?dismissed={len(dismissed)}#queue", status_code=303)


@router.post("/cases")
def open_case(
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    alert_id: AlertIds = [],  # noqa: B006 - FastAPI copies form defaults
    title: Annotated[str, Form(max_length=cases.TITLE_LENGTH_MAX)] = "",
    mid: Annotated[str, Form(max_length=32)] = "",
    tid: Annotated[str, Form(max_length=32)] = "",
    note: NoteText = "",
) -> Response:
    """A case from the ticked alerts (the queue), or by hand for a MID or TID (the case
    list's form)."""
    try:
        case = cases.open_case(
            uow.session,
            principal,
            title=title,
            alert_ids=alert_id,
            mid=mid if not alert_id else None,
            tid=tid if not alert_id else None,
            note=note,
            now=utcnow(),
        )
    except PosHubError as exc:
        uow.rollback()
        found, status_code = _messages(exc, t)
        if alert_id:
            return _alerts_page(
                request,
                uow,
                principal,
                t,
                form={},
                errors=found,
                selected=alert_id,
                action_form={"title": title, "reason": ""},
                status_code=status_code,
            )
        return _cases_page(
            request,
            uow,
            principal,
            t,
            errors=found,
            open_form={"title": title, "mid": mid, "tid": tid, "note": note},
            status_code=status_code,
        )
    uow.commit()
    return RedirectResponse(f"/admin/risk/cases/{case.reference}", status_code=303)


# --- Cases and blocked cards ---------------------------------------------------------------


def _cases_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    t: Translator,
    *,
    status: str = "",
    mid: str = "",
    page: int = 1,
    errors: dict[str, str] | None = None,
    open_form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "status": status,
        "mid": mid,
        "statuses": list(CaseStatus),
        "errors": errors or {},
        "open_form": open_form or {"title": "", "mid": mid, "tid": "", "note": ""},
        "can_act": principal.has_any(RISK_WRITE),
        "field_errors": {},
        "result": None,
        "names": {},
        "counts": {},
        "blocked_cards": cases.blocked_cards(uow.session),
    }
    try:
        result = cases.case_list(uow.session, status=status, mid=mid, page=page)
    except ValidationFailed as exc:
        context["field_errors"] = {e["field"]: e["msg"] for e in field_errors(exc.errors, t)}
        return render(request, "admin/risk_cases.html", context, 422)
    context["result"] = result
    context["names"] = cases.merchant_names(uow.session, {c.mid for c in result.rows if c.mid})
    context["counts"] = cases.evidence_counts(uow.session, [c.id for c in result.rows])
    base = "/admin/risk/cases?" + "".join(
        f"{name}={value}&" for name, value in (("status", status), ("mid", mid)) if value
    )
    context["previous_url"] = f"{base}page={result.number - 1}" if result.has_previous else None
    context["next_url"] = f"{base}page={result.number + 1}" if result.has_next else None
    return render(request, "admin/risk_cases.html", context, status_code)


@router.get("/cases")
def case_list(
    request: Request,
    uow: Read,
    principal: Reader,
    t: T,
    status: Filter = "",
    mid: Filter = "",
    page: int = 1,
) -> Response:
    return _cases_page(
        request, uow, principal, t, status=status.strip(), mid=mid.strip(), page=page
    )


@router.post("/blocked-cards/{card_id}/release")
def release_card(
    card_id: int, request: Request, uow: Write, principal: Officer, t: T, reason: Reason = ""
) -> Response:
    """Unblock a card from the case list, with a reason."""
    try:
        cases.release_card(uow.session, principal, card_id, reason=reason, now=utcnow())
    except PosHubError as exc:
        uow.rollback()
        found, status_code = _messages(exc, t)
        return _cases_page(
            request,
            uow,
            principal,
            t,
            errors={f"card-{card_id}": " ".join(found.values())},
            status_code=status_code,
        )
    uow.commit()
    return RedirectResponse("/admin/risk/cases#blocked-cards", status_code=303)


# --- One case -------------------------------------------------------------------------------


def _case_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    t: Translator,
    reference: str,
    *,
    errors: dict[str, dict[str, str]] | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The case page; ``errors`` are a refused action's reasons by form and field,
    ``typed`` what was typed into it (shown again)."""
    session = uow.session
    case = cases.get_case(session, reference)
    detail = cases.case_detail(session, case)
    is_open = case.status == CaseStatus.OPEN
    can_act = principal.has_any(RISK_WRITE) and is_open
    terminals = (
        terminal_repository.terminals_of(session, detail.merchant.id)
        if detail.merchant and can_act
        else []
    )
    own_transactions = [x for x in detail.transactions if x.mid == case.mid]
    context: dict[str, Any] = {
        "case": case,
        "detail": detail,
        "merchant": detail.merchant,
        "alerts": _alert_rows(session, detail.alerts, t),
        "trail": [
            (a, a.detail.get("latitude"), a.detail.get("longitude"), a.detail.get("distance_km"))
            for a in detail.location_trail
        ],
        "linked_alerts": {a.id for a in detail.alerts},
        "freeze_kind": cases.freeze_kind,
        "can_act": can_act,
        "can_export": principal.has_any(RISK_WRITE),
        "terminals": [x.tid for x in terminals],
        "card_rrns": [(x.rrn, x.pan_masked) for x in detail.transactions if x.pan_token],
        "hold_rrns": [x.rrn for x in own_transactions],
        "officers": [u.username for u in cases.risk_officers(session)] if can_act else [],
        "outcomes": list(cases.CaseOutcome),
        "event_detail": _event_detail,
        "errors": errors or {},
        "typed": typed or {},
        "total_fen": sum(x.amount_fen or 0 for x in detail.transactions),
    }
    return render(request, "admin/risk_case.html", context, status_code)


def _event_detail(detail: dict[str, Any]) -> str:
    """What the timeline shows of an event's detail: the subject it acted on."""
    for key in ("subject", "rrn", "tid", "filename", "assignee", "outcome", "pan_masked"):
        if detail.get(key):
            return str(detail[key])
    return ""


@router.get("/cases/{reference}")
def case_page(reference: str, request: Request, uow: Read, principal: Reader, t: T) -> Response:
    return _case_page(request, uow, principal, t, reference)


def _act(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    t: Translator,
    reference: str,
    form_name: str,
    action: Callable[[Session, RiskCase], object],
    *,
    typed: dict[str, str] | None = None,
    anchor: str = "",
) -> Response:
    """Run one action on the (open, locked) case; on a refusal, the page again with the
    reasons beside ``form_name``'s form."""
    try:
        case = cases.open_case_for_update(uow.session, reference)
        action(uow.session, case)
    except PosHubError as exc:
        uow.rollback()
        found, status_code = _messages(exc, t)
        return _case_page(
            request,
            uow,
            principal,
            t,
            reference,
            errors={form_name: found},
            typed=typed,
            status_code=status_code,
        )
    uow.commit()
    return RedirectResponse(f"/admin/risk/cases/{reference}#{anchor or form_name}", status_code=303)


@router.post("/cases/{reference}/notes")
def add_note(
    reference: str, request: Request, uow: Write, principal: Officer, t: T, note: NoteText = ""
) -> Response:
    """Add a note."""
    return _act(
        request,
        uow,
        principal,
        t,
        reference,
        "note",
        lambda s, c: cases.add_note(s, principal, c, note, now=utcnow()),
        typed={"note": note},
        anchor="notes",
    )


@router.post("/cases/{reference}/items")
def link_transaction(
    reference: str,
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    rrn: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Add a journal transaction to the evidence, by RRN."""
    return _act(
        request,
        uow,
        principal,
        t,
        reference,
        "link",
        lambda s, c: cases.link_transaction(s, principal, c, rrn, now=utcnow()),
        typed={"rrn": rrn},
        anchor="transactions",
    )


@router.post("/cases/{reference}/attachments")
async def attach(
    reference: str,
    request: Request,
    principal: Officer,
    file: Annotated[UploadFile, File()],
) -> Response:
    """Attach a file (JPG, PNG or PDF, at most 10 MB)."""
    content = await read_upload(file, limits.RISK_CASE_ATTACHMENT_BYTES_MAX)
    return await run_in_threadpool(
        _store_attachment, request, reference, principal, file.filename, content
    )


def _store_attachment(
    request: Request, reference: str, principal: Principal, file_name: str | None, content: bytes
) -> Response:
    state = app_state(request)
    with state.db.unit_of_work() as uow:
        return _act(
            request,
            uow,
            principal,
            request_translator(request),
            reference,
            "attach",
            lambda s, c: cases.add_attachment(
                s,
                state.onboarding.store,
                principal,
                c,
                file_name=file_name,
                content=content,
                now=utcnow(),
            ),
            anchor="attachments",
        )


@router.get("/cases/{reference}/attachments/{attachment_id}")
def attachment(
    reference: str, attachment_id: int, request: Request, uow: Read, principal: Reader
) -> Response:
    case = cases.get_case(uow.session, reference)
    found = cases.get_attachment(uow.session, case, attachment_id)
    return Response(
        stored_bytes(request, found.sha256),
        media_type=found.media_type,
        headers=download_headers(found.filename, found.media_type),
    )


@router.post("/cases/{reference}/freeze-merchant")
def freeze_merchant(
    reference: str, request: Request, uow: Write, principal: Officer, t: T, reason: Reason = ""
) -> Response:
    """Freeze the merchant: new authorizations declined, settlement held."""
    return _act(
        request,
        uow,
        principal,
        t,
        reference,
        "freeze-merchant",
        lambda s, c: cases.freeze_merchant(s, principal, c, reason=reason, now=utcnow()),
        typed={"freeze-merchant": reason},
        anchor="freezes",
    )


@router.post("/cases/{reference}/freeze-terminal")
def freeze_terminal(
    reference: str,
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    tid: Annotated[str, Form(max_length=32)] = "",
    reason: Reason = "",
) -> Response:
    """Freeze one of the merchant's terminals."""
    return _act(
        request,
        uow,
        principal,
        t,
        reference,
        "freeze-terminal",
        lambda s, c: cases.freeze_terminal(s, principal, c, tid=tid, reason=reason, now=utcnow()),
        typed={"freeze-terminal": reason},
        anchor="freezes",
    )


@router.post("/cases/{reference}/hold-settlement")
def hold_settlement(
    reference: str,
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    rrn: Annotated[str, Form(max_length=32)] = "",
    reason: Reason = "",
) -> Response:
    """Hold the merchant's settlement, or one transaction's."""
    return _act(
        request,
        uow,
        principal,
        t,
        reference,
        "hold",
        lambda s, c: cases.hold_settlement(s, principal, c, reason=reason, rrn=rrn, now=utcnow()),
        typed={"hold": reason},
        anchor="freezes",
    )


@router.post("/cases/{reference}/freezes/{freeze_id}/release")
def release(
    reference: str,
    freeze_id: int,
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    reason: Reason = "",
) -> Response:
    """Release a freeze or hold of the merchant, with a reason."""
    return _act(
        request,
        uow,
        principal,
        t,
        reference,
        f"release-{freeze_id}",
        lambda s, c: cases.release(s, principal, c, freeze_id, reason=reason, now=utcnow()),
        anchor="freezes",
    )


@router.post("/cases/{reference}/block-card")
def block_card(
    reference: str,
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    rrn: Annotated[str, Form(max_length=32)] = "",
    reason: Reason = "",
) -> Response:
    """Block the card of one of the case's transactions."""
    return _act(
        request,
        uow,
        principal,
        t,
        reference,
        "block",
        lambda s, c: cases.block_card(s, principal, rrn=rrn, reason=reason, case=c, now=utcnow()),
        typed={"block": reason},
        anchor="timeline",
    )


@router.post("/cases/{reference}/assign")
def assign(
    reference: str,
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    assignee: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Give the case to a risk officer."""
    return _act(
        request,
        uow,
        principal,
        t,
        reference,
        "assign",
        lambda s, c: cases.assign(s, principal, c, assignee, now=utcnow()),
        anchor="case",
    )


@router.post("/cases/{reference}/close")
def close(
    reference: str,
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    outcome: Annotated[str, Form(max_length=32)] = "",
    note: NoteText = "",
    keep_freezes: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Close the case with an outcome and a conclusion."""
    return _act(
        request,
        uow,
        principal,
        t,
        reference,
        "close",
        lambda s, c: cases.close_case(
            s,
            principal,
            c,
            outcome=outcome,
            note=note,
            keep_freezes=bool(keep_freezes),
            now=utcnow(),
        ),
        typed={"close": note, "outcome": outcome},
        anchor="case",
    )


@router.post("/cases/{reference}/export")
def export_report(
    reference: str,
    request: Request,
    uow: Write,
    principal: Officer,
    format: Annotated[str, Form(max_length=8)] = "csv",
) -> Response:
    """Download the suspicious-transaction report (CSV or PDF); recorded on the case."""
    fmt = report.ReportFormat.PDF if format == "pdf" else report.ReportFormat.CSV
    return export(request, uow, principal, reference, fmt)
