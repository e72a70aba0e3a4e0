"""Risk alerts, cases, freezes and blocked cards for programs (``poshub.risk.cases``).

Risk officers (``RISK_WRITE``) work the alert queue, open and work cases, freeze, hold,
release, close and export the suspicious-transaction report; auditors and administrators
read (``RISK_READ``). Every action is a case event and an audit entry. Bad input is a 422
naming the field, an unknown alert, case, freeze or transaction a 404, an action on a
closed case or an alert no longer open a 409. Card numbers appear masked only; the card
token the gateway matches on is never in an answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from poshub.core import limits
from poshub.core.clock import local_time
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.i18n import Translator
from poshub.core.text import PlainTextInput
from poshub.gateway.schemas import TransactionOut
from poshub.risk import cases, report
from poshub.risk.models import (
    BlockedCard,
    RiskAlert,
    RiskCase,
    RiskCaseAttachment,
    RiskCaseEvent,
    RiskFreeze,
)
from poshub.risk.schemas import ALERT_CODE_LABELS
from poshub.staff.service import Principal
from poshub.web.api.applications import download_headers, read_upload, stored_bytes
from poshub.web.api.transactions import transaction_out
from poshub.web.deps import app_state, read_uow, staff, translator, write_uow
from poshub.web.roles import RISK_READ, RISK_WRITE

router = APIRouter(prefix="/api/v1/risk", tags=["risk"])

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
T = Annotated[Translator, Depends(translator)]
Reader = Annotated[Principal, Depends(staff(*RISK_READ))]
Officer = Annotated[Principal, Depends(staff(*RISK_WRITE))]
Filter = Annotated[str | None, Query(max_length=32)]

Reason = Annotated[str, Field(min_length=1, max_length=cases.REASON_LENGTH_MAX)]
Note = Annotated[str, Field(min_length=1, max_length=cases.NOTE_LENGTH_MAX)]


# --- Bodies -------------------------------------------------------------------------------


class ReasonIn(PlainTextInput):
    reason: Reason


class DismissIn(PlainTextInput):
    alert_ids: Annotated[list[int], Field(min_length=1, max_length=cases.ALERTS_PER_ACTION_MAX)]
    reason: Reason


class CaseIn(PlainTextInput):
    """From open alerts of one merchant (``alert_ids``), or by hand (``mid`` or ``tid``)."""

    title: Annotated[str, Field(min_length=1, max_length=cases.TITLE_LENGTH_MAX)]
    alert_ids: Annotated[list[int], Field(max_length=cases.ALERTS_PER_ACTION_MAX)] = []
    mid: Annotated[str | None, Field(max_length=15)] = None
    tid: Annotated[str | None, Field(max_length=8)] = None
    note: Annotated[str | None, Field(max_length=cases.NOTE_LENGTH_MAX)] = None


class NoteIn(PlainTextInput):
    note: Note


class ItemIn(PlainTextInput):
    """Evidence to link: a transaction by ``rrn`` or an open alert by ``alert_id``."""

    rrn: Annotated[str | None, Field(max_length=12)] = None
    alert_id: int | None = None


class TerminalFreezeIn(PlainTextInput):
    tid: Annotated[str, Field(min_length=1, max_length=8)]
    reason: Reason


class HoldIn(PlainTextInput):
    """Without ``rrn`` the merchant's whole settlement; with it, that transaction's."""

    reason: Reason
    rrn: Annotated[str | None, Field(max_length=12)] = None


class AssignIn(PlainTextInput):
    assignee: Annotated[str, Field(min_length=1, max_length=64)]


class CloseIn(PlainTextInput):
    outcome: cases.CaseOutcome
    note: Note
    keep_freezes: bool = False


class BlockCardIn(PlainTextInput):
    rrn: Annotated[str, Field(min_length=1, max_length=12)]
    reason: Reason
    case: Annotated[str | None, Field(max_length=24)] = None
    """The reference of the open case the block belongs to, if any."""


# --- Answers ----------------------------------------------------------------------------------


class AlertOut(BaseModel):
    id: int
    rule_code: str
    rule: str
    """The rule's name in the request's language."""
    rule_version: int
    action: str
    severity: str
    status: str
    mid: str | None
    merchant_name: str | None
    tid: str | None
    rrn: str | None
    pan_masked: str | None
    amount_fen: int | None
    detail: dict[str, Any]
    case_id: int | None
    created_at: dt.datetime


class AlertPageOut(BaseModel):
    items: list[AlertOut]
    total: int
    page: int
    page_size: int
    pages: int


class FreezeOut(BaseModel):
    id: int
    kind: str
    """``merchant_freeze``, ``terminal_freeze``, ``merchant_hold`` or ``transaction_hold``."""
    scope: str
    subject: str
    mid: str | None
    blocks_authorization: bool
    holds_settlement: bool
    case_id: int | None
    alert_id: int | None
    reason: str
    created_by: str
    created_at: dt.datetime
    released_by: str | None
    released_at: dt.datetime | None
    release_reason: str | None


class EventOut(BaseModel):
    id: int
    action: str
    actor: str
    note: str | None
    detail: dict[str, Any]
    at: dt.datetime


class AttachmentOut(BaseModel):
    id: int
    filename: str
    media_type: str
    sha256: str
    size_bytes: int
    uploaded_by: str
    uploaded_at: dt.datetime


class CaseOut(BaseModel):
    reference: str
    title: str
    status: str
    outcome: str | None
    mid: str | None
    merchant_name: str | None
    tid: str | None
    opened_by: str
    opened_at: dt.datetime
    assigned_to: str | None
    closed_by: str | None
    closed_at: dt.datetime | None


class CasePageOut(BaseModel):
    items: list[CaseOut]
    total: int
    page: int
    page_size: int
    pages: int


class CaseDetailOut(CaseOut):
    alerts: list[AlertOut]
    transactions: list[TransactionOut]
    """Linked journal rows, as ``GET /api/v1/transactions/{rrn}`` gives them."""
    attachments: list[AttachmentOut]
    events: list[EventOut]
    freezes_in_force: list[FreezeOut]
    """The merchant's freezes and holds in force, whichever case or rule made them."""
    case_freezes: list[FreezeOut]
    """Every freeze this case made, released or not."""


class BlockedCardOut(BaseModel):
    id: int
    pan_masked: str | None
    reason: str
    created_by: str
    created_at: dt.datetime
    released_by: str | None
    released_at: dt.datetime | None


def alert_out(row: RiskAlert, t: Translator, names: dict[str, str]) -> AlertOut:
    return AlertOut(
        id=row.id,
        rule_code=row.rule_code,
        rule=t(ALERT_CODE_LABELS.get(row.rule_code, row.rule_code)),
        rule_version=row.rule_version,
        action=row.action,
        severity=row.severity,
        status=row.status,
        mid=row.mid,
        merchant_name=names.get(row.mid) if row.mid else None,
        tid=row.tid,
        rrn=row.rrn,
        pan_masked=row.pan_masked,
        amount_fen=row.amount_fen,
        detail=row.detail,
        case_id=row.case_id,
        created_at=local_time(row.created_at),
    )


def freeze_out(row: RiskFreeze) -> FreezeOut:
    return FreezeOut(
        id=row.id,
        kind=cases.freeze_kind(row),
        scope=row.scope,
        subject=row.subject,
        mid=row.mid,
        blocks_authorization=row.blocks_authorization,
        holds_settlement=row.holds_settlement,
        case_id=row.case_id,
        alert_id=row.alert_id,
        reason=row.reason,
        created_by=row.created_by,
        created_at=local_time(row.created_at),
        released_by=row.released_by,
        released_at=local_time(row.released_at) if row.released_at else None,
        release_reason=row.release_reason,
    )


def _event_out(row: RiskCaseEvent) -> EventOut:
    return EventOut(
        id=row.id,
        action=row.action,
        actor=row.actor,
        note=row.note,
        detail=row.detail,
        at=local_time(row.at),
    )


def _attachment_out(row: RiskCaseAttachment) -> AttachmentOut:
    return AttachmentOut(
        id=row.id,
        filename=row.filename,
        media_type=row.media_type,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        uploaded_by=row.uploaded_by,
        uploaded_at=local_time(row.uploaded_at),
    )


def _case_fields(case: RiskCase, merchant_name: str | None) -> dict[str, Any]:
    return {
        "reference": case.reference,
        "title": case.title,
        "status": case.status,
        "outcome": case.outcome,
        "mid": case.mid,
        "merchant_name": merchant_name,
        "tid": case.tid,
        "opened_by": case.opened_by,
        "opened_at": local_time(case.opened_at),
        "assigned_to": case.assigned_to,
        "closed_by": case.closed_by,
        "closed_at": local_time(case.closed_at) if case.closed_at else None,
    }


def case_detail_out(uow: UnitOfWork, case: RiskCase, t: Translator) -> CaseDetailOut:
    detail = cases.case_detail(uow.session, case)
    name = detail.merchant.business_name if detail.merchant else None
    names = {case.mid: name} if case.mid and name else {}
    return CaseDetailOut(
        **_case_fields(case, name),
        alerts=[alert_out(a, t, names) for a in detail.alerts],
        transactions=[transaction_out(row, t) for row in detail.transactions],
        attachments=[_attachment_out(a) for a in detail.attachments],
        events=[_event_out(e) for e in detail.events],
        freezes_in_force=[freeze_out(f) for f in detail.freezes],
        case_freezes=[freeze_out(f) for f in detail.case_freezes],
    )


def _blocked_out(row: BlockedCard) -> BlockedCardOut:
    return BlockedCardOut(
        id=row.id,
        pan_masked=row.pan_masked,
        reason=row.reason,
        created_by=row.created_by,
        created_at=local_time(row.created_at),
        released_by=row.released_by,
        released_at=local_time(row.released_at) if row.released_at else None,
    )


# --- Alerts --------------------------------------------------------------------------------------


@router.get("/alerts")
def alert_queue(
    uow: Read,
    principal: Reader,
    t: T,
    status: Filter = None,
    rule: Filter = None,
    mid: Filter = None,
    tid: Filter = None,
    date_from: Filter = None,
    date_to: Filter = None,
    page: int = 1,
    page_size: int = limits.PAGE_SIZE_DEFAULT,
) -> AlertPageOut:
    """The alert queue, newest first: open alerts unless ``status`` says otherwise
    (``in_case``, ``dismissed`` or ``all``), filtered by rule code, MID, TID and business
    dates (YYYY-MM-DD, Asia/Shanghai, both included); ``page_size`` at most 200."""
    criteria = cases.parse_alert_filter(
        status=status,
        rule=rule,
        mid=mid,
        tid=tid,
        date_from=date_from,
        date_to=date_to,
        page=page,
        page_size=page_size,
    )
    result = cases.alert_queue(uow.session, criteria)
    names = cases.merchant_names(uow.session, {a.mid for a in result.rows if a.mid})
    return AlertPageOut(
        items=[alert_out(a, t, names) for a in result.rows],
        total=result.total,
        page=result.number,
        page_size=result.size,
        pages=result.pages,
    )


@router.get("/alerts/{alert_id}")
def alert(alert_id: int, uow: Read, principal: Reader, t: T) -> AlertOut:
    """One alert with the values its rule saw (``detail``)."""
    row = cases.get_alert(uow.session, alert_id)
    return alert_out(row, t, cases.merchant_names(uow.session, {row.mid} if row.mid else set()))


@router.post("/alerts/dismiss")
def dismiss(data: DismissIn, uow: Write, principal: Officer, t: T) -> list[AlertOut]:
    """Dismiss open alerts with a reason (each is audited); 409 if one is no longer open."""
    rows = cases.dismiss_alerts(
        uow.session, principal, data.alert_ids, reason=data.reason, now=utcnow()
    )
    names = cases.merchant_names(uow.session, {a.mid for a in rows if a.mid})
    views = [alert_out(a, t, names) for a in rows]
    uow.commit()
    return views


# --- Cases ---------------------------------------------------------------------------------------


@router.post("/cases", status_code=201)
def open_case(data: CaseIn, uow: Write, principal: Officer, t: T) -> CaseDetailOut:
    """Open a case from open alerts of one merchant (they and their transactions become
    its evidence), or by hand for a MID or a TID. The reference is ``RC-YYYYMMDD-NNNN``."""
    case = cases.open_case(
        uow.session,
        principal,
        title=data.title,
        alert_ids=data.alert_ids,
        mid=data.mid,
        tid=data.tid,
        note=data.note,
        now=utcnow(),
    )
    view = case_detail_out(uow, case, t)
    uow.commit()
    return view


@router.get("/cases")
def case_list(
    uow: Read,
    principal: Reader,
    status: Filter = None,
    mid: Filter = None,
    page: int = 1,
    page_size: int = limits.PAGE_SIZE_DEFAULT,
) -> CasePageOut:
    """Cases, newest first; ``status`` ``open`` or ``closed``, ``mid`` one merchant's."""
    result = cases.case_list(uow.session, status=status, mid=mid, page=page, page_size=page_size)
    names = cases.merchant_names(uow.session, {c.mid for c in result.rows if c.mid})
    return CasePageOut(
        items=[CaseOut(**_case_fields(c, names.get(c.mid or ""))) for c in result.rows],
        total=result.total,
        page=result.number,
        page_size=result.size,
        pages=result.pages,
    )


@router.get("/cases/{reference}")
def case(reference: str, uow: Read, principal: Reader, t: T) -> CaseDetailOut:
    """One case with its evidence (alerts, transactions, attachments), the merchant's
    freezes in force, the case's own freezes and every event in order."""
    return case_detail_out(uow, cases.get_case(uow.session, reference), t)


def _acted(uow: UnitOfWork, case: RiskCase, t: Translator) -> CaseDetailOut:
    view = case_detail_out(uow, case, t)
    uow.commit()
    return view


@router.post("/cases/{reference}/notes", status_code=201)
def add_note(reference: str, data: NoteIn, uow: Write, principal: Officer, t: T) -> CaseDetailOut:
    """Add a note to an open case."""
    case = cases.open_case_for_update(uow.session, reference)
    cases.add_note(uow.session, principal, case, data.note, now=utcnow())
    return _acted(uow, case, t)


@router.post("/cases/{reference}/items", status_code=201)
def add_item(reference: str, data: ItemIn, uow: Write, principal: Officer, t: T) -> CaseDetailOut:
    """Link evidence: a journal transaction (``rrn``; 404 if not in the journal) or an
    open alert of the case's merchant (``alert_id``)."""
    case = cases.open_case_for_update(uow.session, reference)
    if data.alert_id is not None:
        cases.link_alert(uow.session, principal, case, data.alert_id, now=utcnow())
    else:
        cases.link_transaction(uow.session, principal, case, data.rrn or "", now=utcnow())
    return _acted(uow, case, t)


@router.post("/cases/{reference}/attachments", status_code=201)
async def upload_attachment(
    reference: str,
    request: Request,
    principal: Officer,
    file: Annotated[UploadFile, File()],
) -> AttachmentOut:
    """Attach a file to an open case: JPG, PNG or PDF (recognised by its content, screened
    and stored encrypted), at most 10 MB; a refused file is a 422 naming ``file``."""
    content = await read_upload(file, limits.RISK_CASE_ATTACHMENT_BYTES_MAX)
    return await run_in_threadpool(
        _store_attachment, request, reference, principal, file.filename, content
    )


def _store_attachment(
    request: Request, reference: str, principal: Principal, file_name: str | None, content: bytes
) -> AttachmentOut:
    state = app_state(request)
    with state.db.unit_of_work() as uow:
        case = cases.open_case_for_update(uow.session, reference)
        attachment = cases.add_attachment(
            uow.session,
            state.onboarding.store,
            principal,
            case,
            file_name=file_name,
            content=content,
            now=utcnow(),
        )
        view = _attachment_out(attachment)
        uow.commit()
        return view


@router.get("/cases/{reference}/attachments/{attachment_id}")
def download_attachment(
    reference: str, attachment_id: int, request: Request, uow: Read, principal: Reader
) -> Response:
    """Download a case's attachment (integrity-checked on every read)."""
    case = cases.get_case(uow.session, reference)
    attachment = cases.get_attachment(uow.session, case, attachment_id)
    return Response(
        stored_bytes(request, attachment.sha256),
        media_type=attachment.media_type,
        headers=download_headers(attachment.filename, attachment.media_type),
    )


@router.post("/cases/{reference}/freeze-merchant", status_code=201)
def freeze_merchant(
    reference: str, data: ReasonIn, uow: Write, principal: Officer, t: T
) -> FreezeOut:
    """Freeze the case's merchant: new authorizations are declined (58) within seconds
    and settlement holds its money until released; 409 if already frozen."""
    case = cases.open_case_for_update(uow.session, reference)
    row = cases.freeze_merchant(uow.session, principal, case, reason=data.reason, now=utcnow())
    view = freeze_out(row)
    uow.commit()
    return view


@router.post("/cases/{reference}/freeze-terminal", status_code=201)
def freeze_terminal(
    reference: str, data: TerminalFreezeIn, uow: Write, principal: Officer
) -> FreezeOut:
    """Freeze one of the merchant's terminals: its authorizations are declined (58)."""
    case = cases.open_case_for_update(uow.session, reference)
    row = cases.freeze_terminal(
        uow.session, principal, case, tid=data.tid, reason=data.reason, now=utcnow()
    )
    view = freeze_out(row)
    uow.commit()
    return view


@router.post("/cases/{reference}/hold-settlement", status_code=201)
def hold_settlement(reference: str, data: HoldIn, uow: Write, principal: Officer) -> FreezeOut:
    """Hold the merchant's settlement (authorizations go on), or one of its
    transactions' (``rrn``)."""
    case = cases.open_case_for_update(uow.session, reference)
    row = cases.hold_settlement(
        uow.session, principal, case, reason=data.reason, rrn=data.rrn, now=utcnow()
    )
    view = freeze_out(row)
    uow.commit()
    return view


@router.post("/cases/{reference}/freezes/{freeze_id}/release")
def release(
    reference: str, freeze_id: int, data: ReasonIn, uow: Write, principal: Officer
) -> FreezeOut:
    """Release a freeze or hold of the case's merchant, with a reason."""
    case = cases.open_case_for_update(uow.session, reference)
    row = cases.release(uow.session, principal, case, freeze_id, reason=data.reason, now=utcnow())
    view = freeze_out(row)
    uow.commit()
    return view


@router.post("/cases/{reference}/assign")
def assign(reference: str, data: AssignIn, uow: Write, principal: Officer, t: T) -> CaseDetailOut:
    """Give the case to a risk officer (by username)."""
    case = cases.open_case_for_update(uow.session, reference)
    cases.assign(uow.session, principal, case, data.assignee, now=utcnow())
    return _acted(uow, case, t)


@router.post("/cases/{reference}/close")
def close(reference: str, data: CloseIn, uow: Write, principal: Officer, t: T) -> CaseDetailOut:
    """Close with an outcome and a conclusion. Freezes the case made must be released
    first (409), or kept on purpose with ``keep_freezes`` (not for a false positive)."""
    case = cases.open_case_for_update(uow.session, reference)
    cases.close_case(
        uow.session,
        principal,
        case,
        outcome=data.outcome,
        note=data.note,
        keep_freezes=data.keep_freezes,
        now=utcnow(),
    )
    return _acted(uow, case, t)


def report_response(content: report.Report, data: bytes, fmt: report.ReportFormat) -> Response:
    return Response(
        data,
        media_type=report.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{report.file_name(content, fmt)}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


def institution(request: Request) -> report.Institution:
    settings = app_state(request).settings
    return report.Institution(
        name=settings.acquirer_name_zh,
        code=settings.acquirer_code,
        licence=settings.acquirer_licence,
    )


def export(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    reference: str,
    fmt: report.ReportFormat,
) -> Response:
    """Export, commit, and answer the file (the API and the case page)."""
    case = cases.get_case(uow.session, reference, for_update=True)
    content, data = cases.export_report(
        uow.session, principal, case, institution(request), fmt=fmt, now=utcnow()
    )
    uow.commit()
    return report_response(content, data, fmt)


@router.post("/cases/{reference}/export", response_class=Response)
def export_report(
    reference: str,
    request: Request,
    uow: Write,
    principal: Officer,
    format: report.ReportFormat = report.ReportFormat.CSV,
) -> Response:
    """The case's suspicious-transaction report (可疑交易报告), ``format`` ``csv`` (the
    default) or ``pdf``: the reporting institution, the case, the merchant, the grounds,
    then the transactions with masked card numbers. Recorded on the case and audited."""
    return export(request, uow, principal, reference, format)


# --- Freezes and blocked cards ---------------------------------------------------------------------


@router.get("/freezes")
def freezes(uow: Read, principal: Reader, mid: Filter = None) -> list[FreezeOut]:
    """Freezes and settlement holds in force (of one merchant with ``mid``), newest first."""
    return [freeze_out(row) for row in cases.freezes_in_force(uow.session, mid=mid)]


@router.get("/blocked-cards")
def blocked_cards(uow: Read, principal: Reader) -> list[BlockedCardOut]:
    """Cards blocked now (masked numbers), newest first."""
    return [_blocked_out(row) for row in cases.blocked_cards(uow.session)]


@router.post("/blocked-cards", status_code=201)
def block_card(data: BlockCardIn, uow: Write, principal: Officer) -> BlockedCardOut:
    """Block the card of a journal transaction (``rrn``) at every merchant, with a reason;
    with ``case`` (an open case's reference) the block is recorded on the case too."""
    case = cases.open_case_for_update(uow.session, data.case) if data.case else None
    row = cases.block_card(
        uow.session, principal, rrn=data.rrn, reason=data.reason, case=case, now=utcnow()
    )
    view = _blocked_out(row)
    uow.commit()
    return view


@router.post("/blocked-cards/{card_id}/release")
def release_card(card_id: int, data: ReasonIn, uow: Write, principal: Officer) -> BlockedCardOut:
    """Unblock a card, with a reason."""
    row = cases.release_card(uow.session, principal, card_id, reason=data.reason, now=utcnow())
    view = _blocked_out(row)
    uow.commit()
    return view
