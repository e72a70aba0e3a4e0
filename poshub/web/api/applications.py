"""Applicant-facing API: create, read, correct, upload, submit, answer.

The applicant authenticates with the access token returned on creation
(``Authorization: Bearer <token>``). Another applicant's token gets 404, exactly as a
wrong application id does, so nothing reveals that the application exists.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from poshub.bootstrap import AppState
from poshub.core import limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, NotFound, TooLarge
from poshub.core.i18n import Translator
from poshub.onboarding import repository
from poshub.onboarding.models import Application
from poshub.onboarding.schemas import (
    ApplicationCreated,
    ApplicationIn,
    ApplicationOut,
    ApplicationPatch,
    ApplicationStatusOut,
    DocumentOut,
    MessageIn,
)
from poshub.onboarding.service import (
    add_document,
    answer_request,
    applicant_actor,
    create_application,
    prepare_submission,
    submit,
    tracking_url,
    update_application,
)
from poshub.web.deps import (
    PUBLIC,
    ApplicantCredential,
    app_state,
    applicant,
    read_uow,
    request_translator,
    translator,
    write_uow,
)
from poshub.web.views import applicant_view
from poshub.web.writes import run_write

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
    return await run_write(request, _create, app_state(request), body, locale)


def _create(state: AppState, body: ApplicationIn, locale: str) -> ApplicationCreated:
    with state.db.unit_of_work() as uow:
        application, token = create_application(
            uow.session, state.onboarding, body, locale=locale, now=utcnow()
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
        uow.commit()
        return DocumentOut(
            id=document.id,
            kind=document.kind,
            content_type=document.content_type,
            size_bytes=document.size_bytes,
            sha256=document.sha256,
            file_name=document.file_name,
            uploaded_at=document.uploaded_at,
        )


@router.get("/{application_id}/documents/{document_id}")
def download_document(
    application_id: str,
    document_id: str,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(read_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
) -> Response:
    application = _own(uow, application_id, credential)
    document = repository.document(uow.session, application.id, document_id)
    if document is None:
        raise NotFound(N_("No such document."), code="document_not_found")
    data = app_state(request).onboarding.store.get(document.sha256)
    return Response(
        data, media_type=document.content_type, headers=download_headers(document.file_name)
    )


def download_headers(file_name: str) -> dict[str, str]:
    return {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file_name)}",
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
