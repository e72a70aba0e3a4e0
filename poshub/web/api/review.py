"""Staff review API: the queue, the application with its checks, and every decision."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from poshub.core import limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, NotFound
from poshub.core.i18n import Translator
from poshub.merchants.models import Merchant
from poshub.merchants.schemas import MerchantOut
from poshub.onboarding import repository, service
from poshub.onboarding.decisions import REJECTION_REASONS
from poshub.onboarding.schemas import (
    ApproveIn,
    EventOut,
    NoteIn,
    OverrideDecisionIn,
    OverrideOut,
    QueueItemOut,
    RejectIn,
    RequestInfoIn,
    ReviewApplicationOut,
    StaffEditIn,
)
from poshub.onboarding.states import OPEN_STATUSES, ApplicationStatus
from poshub.staff.service import Principal
from poshub.web.api.applications import download_headers, stored_bytes
from poshub.web.deps import app_state, read_uow, staff, translator, write_uow
from poshub.web.roles import REVIEW_OVERRIDE, REVIEW_READ, REVIEW_WRITE
from poshub.web.views import override_view, queue_view, review_view

router = APIRouter(prefix="/api/v1/review", tags=["review"])

Reader = Annotated[Principal, Depends(staff(*REVIEW_READ))]
Reviewer = Annotated[Principal, Depends(staff(*REVIEW_WRITE))]
RiskOfficer = Annotated[Principal, Depends(staff(*REVIEW_OVERRIDE))]
Write = Annotated[UnitOfWork, Depends(write_uow)]
Read = Annotated[UnitOfWork, Depends(read_uow)]
T = Annotated[Translator, Depends(translator)]


@router.get("/applications")
def queue(
    uow: Read,
    principal: Reader,
    status: Annotated[ApplicationStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[QueueItemOut]:
    """Open applications, most urgent SLA first (or every application in one status)."""
    statuses = [status] if status else sorted(OPEN_STATUSES)
    if status and status not in OPEN_STATUSES:
        rows = list(repository.search(uow.session, status=status, limit=limit, offset=offset))
    else:
        rows = list(repository.queue(uow.session, statuses, limit, offset))
    return queue_view(uow.session, rows)


@router.get("/applications/{application_id}")
def detail(application_id: str, uow: Read, principal: Reader, t: T) -> ReviewApplicationOut:
    """One application as the reviewer sees it: checks, documents, timeline, blockers, override."""
    application = service.get_for_review(uow.session, application_id)
    return review_view(uow.session, application, t)


@router.get("/applications/{application_id}/documents/{document_id}")
def document(
    application_id: str, document_id: str, request: Request, uow: Read, principal: Reader
) -> Response:
    """Download an application's document for review, named by its detected type."""
    row = repository.document(uow.session, application_id, document_id)
    if row is None:
        raise NotFound(N_("No such document."), code="document_not_found")
    data = stored_bytes(request, row.sha256)
    return Response(
        data, media_type=row.content_type, headers=download_headers(row.file_name, row.content_type)
    )


@router.post("/applications/{application_id}/claim")
def claim(application_id: str, uow: Write, principal: Reviewer, t: T) -> ReviewApplicationOut:
    """Take an application into review (it is then assigned to the caller)."""
    application = service.get_for_review(uow.session, application_id, for_update=True)
    service.claim(uow.session, application, principal, now=utcnow())
    view = review_view(uow.session, application, t)
    uow.commit()
    return view


@router.post("/applications/{application_id}/notes", status_code=201)
def add_note(application_id: str, body: NoteIn, uow: Write, principal: Reviewer) -> EventOut:
    """Record a phone confirmation, a site survey or a note."""
    application = service.get_for_review(uow.session, application_id, for_update=True)
    event = service.add_note(uow.session, application, principal, body, now=utcnow())
    uow.commit()
    return EventOut(
        kind=event.kind,
        author_kind=event.author_kind,
        author_id=event.author_id,
        body=event.body,
        data=event.data,
        created_at=event.created_at,
    )


@router.post("/applications/{application_id}/request-info")
def request_info(
    application_id: str,
    body: RequestInfoIn,
    request: Request,
    uow: Write,
    principal: Reviewer,
    t: T,
) -> ReviewApplicationOut:
    """Ask the applicant for more: ``message`` is shown to them, ``note`` stays internal."""
    application = service.get_for_review(uow.session, application_id, for_update=True)
    service.request_info(
        uow.session,
        app_state(request).onboarding,
        application,
        principal,
        body.message,
        note=body.note,
        now=utcnow(),
    )
    view = review_view(uow.session, application, t)
    uow.commit()
    return view


@router.patch("/applications/{application_id}")
def edit(
    application_id: str, body: StaffEditIn, request: Request, uow: Write, principal: Reviewer, t: T
) -> ReviewApplicationOut:
    """Correct the application. Whoever edits it can no longer approve it."""
    application = service.get_for_review(uow.session, application_id, for_update=True)
    service.staff_edit(
        uow.session, app_state(request).onboarding, application, principal, body, now=utcnow()
    )
    view = review_view(uow.session, application, t)
    uow.commit()
    return view


@router.post("/applications/{application_id}/recheck")
def recheck(
    application_id: str, request: Request, uow: Write, principal: Reviewer, t: T
) -> ReviewApplicationOut:
    """Run the automated checks again (e.g. after a verification provider outage)."""
    application = service.get_for_review(uow.session, application_id, for_update=True)
    service.rerun_checks(
        uow.session, app_state(request).onboarding, application, principal, now=utcnow()
    )
    view = review_view(uow.session, application, t)
    uow.commit()
    return view


@router.post(
    "/applications/{application_id}/approve",
    responses={202: {"model": OverrideOut, "description": "Waiting for a risk officer"}},
)
def approve(
    application_id: str,
    body: ApproveIn,
    request: Request,
    response: Response,
    uow: Write,
    principal: Reviewer,
) -> MerchantOut | OverrideOut:
    """Approve: creates the merchant with its MID (200). Over a failed or pending
    blacklist, duplicate, real-name, four-element or external risk list check it records an
    override request for a risk officer instead (202); ``note`` is internal, ``message`` goes to the applicant."""
    application = service.get_for_review(uow.session, application_id, for_update=True)
    outcome = service.approve(
        uow.session, app_state(request).onboarding, application, principal, body, now=utcnow()
    )
    if not isinstance(outcome, Merchant):
        view = override_view(uow.session, outcome)
        uow.commit()
        response.status_code = 202
        return view
    uow.commit()
    return _merchant_out(outcome)


def _merchant_out(merchant: Merchant) -> MerchantOut:
    return MerchantOut(
        id=merchant.id,
        mid=merchant.mid,
        status=merchant.status,
        applicant_kind=merchant.applicant_kind,
        legal_name=merchant.legal_name,
        business_name=merchant.business_name,
        mcc=merchant.mcc,
        region_code=merchant.region_code,
        settlement_account_masked=merchant.account_number_masked,
        created_at=merchant.created_at,
    )


@router.post("/applications/{application_id}/reject")
def reject(
    application_id: str, body: RejectIn, request: Request, uow: Write, principal: Reviewer, t: T
) -> ReviewApplicationOut:
    """Reject an application with a reason; the message is shown to the applicant."""
    application = service.get_for_review(uow.session, application_id, for_update=True)
    service.reject(
        uow.session, app_state(request).onboarding, application, principal, body, now=utcnow()
    )
    view = review_view(uow.session, application, t)
    uow.commit()
    return view


@router.get("/overrides")
def overrides(
    uow: Read,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[OverrideOut]:
    """Approvals over failed or pending checks waiting for a risk officer, oldest first."""
    rows = repository.pending_overrides(uow.session, limit, offset)
    return [override_view(uow.session, row) for row in rows]


@router.post("/overrides/{override_id}/approve")
def approve_override(
    override_id: int,
    body: OverrideDecisionIn,
    request: Request,
    uow: Write,
    principal: RiskOfficer,
) -> MerchantOut:
    """Second approval by a risk officer (not the reviewer who asked, nor an editor):
    creates the merchant."""
    row, application = service.get_override(uow.session, override_id, for_update=True)
    merchant = service.approve_override(
        uow.session, app_state(request).onboarding, row, application, principal, body, now=utcnow()
    )
    uow.commit()
    return _merchant_out(merchant)


@router.post("/overrides/{override_id}/decline")
def decline_override(
    override_id: int, body: OverrideDecisionIn, uow: Write, principal: RiskOfficer, t: T
) -> ReviewApplicationOut:
    """A risk officer declines the override: the application goes back to its reviewer."""
    row, application = service.get_override(uow.session, override_id, for_update=True)
    service.decline_override(uow.session, row, application, principal, body, now=utcnow())
    view = review_view(uow.session, application, t)
    uow.commit()
    return view


@router.get("/rejection-reasons")
def rejection_reasons(principal: Reader, t: T) -> dict[str, str]:
    """The rejection reasons a reviewer may choose from."""
    return {code: t(label) for code, label in REJECTION_REASONS.items()}
