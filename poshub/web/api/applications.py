"""Applicant-facing API: create, read, correct, upload, submit, answer.

The applicant authenticates with the access token returned on creation
(``Authorization: Bearer <token>``). Another applicant's token gets 404, exactly as a
wrong application id does, so nothing reveals that the application exists.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from poshub.bootstrap import AppState
from poshub.core import limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, NotFound, PosHubError, TooLarge
from poshub.core.i18n import Translator
from poshub.core.settings import Mode
from poshub.core.storage import StoredFileCorrupt
from poshub.onboarding import repository
from poshub.onboarding.documents import download_name, same_content_kinds
from poshub.onboarding.mobile import mask_mobile
from poshub.onboarding.models import Application
from poshub.onboarding.schemas import (
    ApplicationCreated,
    ApplicationIn,
    ApplicationOut,
    ApplicationPatch,
    ApplicationStatusOut,
    ConsentsIn,
    ConsentWithdrawalIn,
    DocumentOut,
    MessageIn,
    MobileCodeIn,
    MobileCodeOut,
    MobileVerifiedOut,
)
from poshub.onboarding.service import (
    add_document,
    answer_request,
    applicant_actor,
    confirm_mobile,
    create_application,
    give_consents,
    prepare_submission,
    request_mobile_code,
    send_mobile_code,
    submit,
    tracking_url,
    update_application,
    withdraw_consent,
)
from poshub.web.deps import (
    PUBLIC,
    ApplicantCredential,
    app_state,
    applicant,
    client_ip,
    read_uow,
    request_translator,
    translator,
    write_uow,
)
from poshub.web.views import applicant_view
from poshub.web.writes import run_write

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/applications", tags=["applications"])

NOT_FOUND = N_("No such application, or the access token does not belong to it.")


def _own(uow: UnitOfWork, application_id: str, credential: ApplicantCredential) -> Application:
    application = repository.by_access(uow.session, application_id, credential.token_hash)
    if application is None:
        raise NotFound(NOT_FOUND, code="application_not_found")
    return application


# The applying endpoints (create, upload, submit) are the busiest: they are ``async`` and
# make one explicit thread-pool hop for their database work. A plain ``def`` endpoint
# costs a second hop (FastAPI validates its return value in the thread pool too), and its
# unit-of-work and translator dependencies add per-request dependency solving.


@router.post("", status_code=201, dependencies=[PUBLIC])
async def create(body: ApplicationIn, request: Request) -> ApplicationCreated:
    """Start an application. Answers with the access token, shown only this once."""
    locale = request_translator(request).locale
    return await run_write(request, _create, app_state(request), body, locale, client_ip(request))


def _create(
    state: AppState, body: ApplicationIn, locale: str, source_address: str
) -> ApplicationCreated:
    with state.db.unit_of_work() as uow:
        application, token = create_application(
            uow.session,
            state.onboarding,
            body,
            locale=locale,
            now=utcnow(),
            source_address=source_address,
        )
        uow.commit()
    return ApplicationCreated(
        id=application.id,
        tracking_number=application.tracking_number,
        status=application.status,
        access_token=token,
        tracking_url=tracking_url(state.settings, application),
    )


@router.get("/{application_id}")
def read(
    application_id: str,
    uow: Annotated[UnitOfWork, Depends(read_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
    t: Annotated[Translator, Depends(translator)],
) -> ApplicationOut:
    """The applicant's own application: fields, documents, checks visible to them and status."""
    return applicant_view(uow.session, _own(uow, application_id, credential), t)


@router.patch("/{application_id}")
def update(
    application_id: str,
    body: ApplicationPatch,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(write_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
    t: Annotated[Translator, Depends(translator)],
) -> ApplicationOut:
    """Correct a draft or answer a request for information (applicant)."""
    application = _own(uow, application_id, credential)
    update_application(uow.session, app_state(request).onboarding, application, body, now=utcnow())
    view = applicant_view(uow.session, application, t)
    uow.commit()
    return view


async def read_upload(file: UploadFile, limit_bytes: int = limits.DOCUMENT_SIZE_BYTES_MAX) -> bytes:
    """Read at most ``limit_bytes`` plus one byte, so an oversized upload is refused
    without holding all of it in memory."""
    data = await file.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise TooLarge(
            N_("The file is larger than {limit_mb} MB."),
            code="file.too_large",
            limit_mb=str(limit_bytes // (1024 * 1024)),
        )
    return data


@router.post("/{application_id}/documents", status_code=201)
async def upload_document(
    application_id: str,
    request: Request,
    kind: Annotated[str, Form(max_length=40)],
    file: Annotated[UploadFile, File()],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
) -> DocumentOut:
    """Upload one document (JPG, PNG or PDF, at most 10 MB; the type is read from the bytes)."""
    content = await read_upload(file)
    return await run_in_threadpool(
        _store_document, request, application_id, credential, kind, file.filename, content
    )


def _store_document(
    request: Request,
    application_id: str,
    credential: ApplicantCredential,
    kind: str,
    file_name: str | None,
    content: bytes,
) -> DocumentOut:
    state = app_state(request)
    with state.db.unit_of_work() as uow:
        application = _own(uow, application_id, credential)
        document = add_document(
            uow.session,
            state.onboarding,
            application,
            kind=kind,
            file_name=file_name,
            content=content,
            uploaded_by=applicant_actor(application),
            now=utcnow(),
        )
        twins = same_content_kinds(
            repository.documents(uow.session, application.id, limits.DOCUMENTS_PER_APPLICATION_MAX)
        )
        uow.commit()
        return DocumentOut(
            id=document.id,
            kind=document.kind,
            content_type=document.content_type,
            size_bytes=document.size_bytes,
            sha256=document.sha256,
            file_name=document.file_name,
            uploaded_at=document.uploaded_at,
            duplicate_of=twins.get(document.id, []),
        )


@router.get("/{application_id}/documents/{document_id}")
def download_document(
    application_id: str,
    document_id: str,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(read_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
) -> Response:
    """Download one of the application's documents, named and typed by its detected type."""
    application = _own(uow, application_id, credential)
    document = repository.document(uow.session, application.id, document_id)
    if document is None:
        raise NotFound(N_("No such document."), code="document_not_found")
    data = stored_bytes(request, document.sha256)
    return Response(
        data,
        media_type=document.content_type,
        headers=download_headers(document.file_name, document.content_type),
    )


class StoredFileUnusable(PosHubError):
    """A stored file failed its integrity check on read; it is not served."""

    status_code = 500
    code = "document_integrity"


def stored_bytes(request: Request, sha256: str) -> bytes:
    """The clear bytes of a stored file, authenticated and hash-checked on every read."""
    try:
        return app_state(request).onboarding.store.get(sha256)
    except StoredFileCorrupt:
        log.error("stored file %s… failed its integrity check", sha256[:12])
        raise StoredFileUnusable(
            N_("The stored file failed its integrity check and was not served.")
        ) from None


def download_headers(file_name: str, content_type: str) -> dict[str, str]:
    """An attachment named with the extension of the type detected in its bytes."""
    name = quote(download_name(file_name, content_type))
    return {
        "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }


@router.post("/{application_id}/submit")
async def submit_application(
    application_id: str,
    request: Request,
    credential: Annotated[ApplicantCredential, Depends(applicant())],
) -> ApplicationStatusOut:
    """Submit for review: requires every document the applicant kind needs. The automated
    checks run in the background; the answer says by when a decision is expected."""
    return await run_write(request, _submit, app_state(request), application_id, credential)


def _submit(
    state: AppState, application_id: str, credential: ApplicantCredential
) -> ApplicationStatusOut:
    now = utcnow()
    # Checked in a read-only transaction; the write transaction only writes, so the
    # SQLite write lock is held as briefly as possible.
    with state.db.unit_of_work(read_only=True) as uow:
        application = _own(uow, application_id, credential)
        prepared = prepare_submission(uow.session, state.onboarding, application, now=now)
        uow.session.expunge(application)
    with state.db.unit_of_work() as uow:
        submit(uow.session, state.onboarding, application, now=now, prepared=prepared)
        uow.commit()
    return ApplicationStatusOut(
        id=application.id,
        tracking_number=application.tracking_number,
        status=application.status,
        submitted_at=application.submitted_at,
        sla_target_date=application.sla_target_date,
    )


@router.post("/{application_id}/answer")
def answer(
    application_id: str,
    body: MessageIn,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(write_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
    t: Annotated[Translator, Depends(translator)],
) -> ApplicationOut:
    """Answer a request for more information; the application returns to review."""
    application = _own(uow, application_id, credential)
    answer_request(
        uow.session, app_state(request).onboarding, application, body.message, now=utcnow()
    )
    view = applicant_view(uow.session, application, t)
    uow.commit()
    return view


@router.post("/{application_id}/consents")
def consents_give(
    application_id: str,
    body: ConsentsIn,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(write_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
    t: Annotated[Translator, Depends(translator)],
) -> ApplicationOut:
    """Give the privacy-notice agreement and/or the consent to send identity and bank data to
    the verification provider (before the decision), under the current notice version."""
    application = _own(uow, application_id, credential)
    give_consents(uow.session, application, body, source_address=client_ip(request), now=utcnow())
    view = applicant_view(uow.session, application, t)
    uow.commit()
    return view


@router.post("/{application_id}/consents/withdraw")
def consents_withdraw(
    application_id: str,
    body: ConsentWithdrawalIn,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(write_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
    t: Annotated[Translator, Depends(translator)],
) -> ApplicationOut:
    """Withdraw a consent before the decision; nothing more goes to the verification
    provider once that consent is withdrawn."""
    application = _own(uow, application_id, credential)
    withdraw_consent(
        uow.session, application, body.kind, source_address=client_ip(request), now=utcnow()
    )
    view = applicant_view(uow.session, application, t)
    uow.commit()
    return view


@router.post("/{application_id}/mobile/code", status_code=202)
def mobile_code(
    application_id: str,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(write_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
) -> MobileCodeOut:
    """Send a one-time code by SMS to the application's mobile number, the only message an
    unproved number receives. 429 during the resend cool-down and past the codes allowed
    per number and per source address in 24 hours; 503 when the SMS cannot be sent."""
    state = app_state(request)
    application = _own(uow, application_id, credential)
    sms = request_mobile_code(
        uow.session, state.onboarding, application, source_address=client_ip(request), now=utcnow()
    )
    uow.commit()
    send_mobile_code(state.notifier, sms)
    return MobileCodeOut(
        mobile_masked=mask_mobile(sms.mobile),
        expires_at=sms.expires_at,
        resend_after_seconds=sms.resend_after_seconds,
        demo_code=sms.code if state.settings.mode is Mode.DEMO else None,
    )


@router.post("/{application_id}/mobile/verify")
def mobile_verify(
    application_id: str,
    body: MobileCodeIn,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(write_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
) -> MobileVerifiedOut:
    """Prove the mobile number with the code from the SMS. A wrong code is 422 naming
    ``code`` with the attempts left; the last wrong attempt, 429 (ask for a new code)."""
    application = _own(uow, application_id, credential)
    refusal = confirm_mobile(
        uow.session, app_state(request).onboarding, application, body.code, now=utcnow()
    )
    out = MobileVerifiedOut(
        mobile_masked=mask_mobile(application.mobile),
        mobile_verified=application.mobile_verified_at is not None,
        mobile_verified_at=application.mobile_verified_at,
    )
    uow.commit()  # a wrong code counts, so the attempt is kept before answering
    if refusal is not None:
        raise refusal
    return out
