"""Public pages: home and catalogue, the application form, and applicant tracking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from poshub.catalog import repository as catalog_repository
from poshub.contracts import repository as contract_repository
from poshub.core import limits
from poshub.core.clock import business_date
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, FieldError, NotFound, PosHubError, ValidationFailed
from poshub.core.i18n import Translator
from poshub.core.money import yuan_to_fen
from poshub.merchants import repository as merchant_repository
from poshub.onboarding import repository, rules
from poshub.onboarding.models import Application
from poshub.onboarding.schemas import ApplicationIn, ApplicationPatch
from poshub.onboarding.service import (
    add_document,
    answer_request,
    applicant_actor,
    create_application,
    hash_access_token,
    submit,
    update_application,
)
from poshub.web.api.applications import read_upload
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
from poshub.web.errors import field_errors, pydantic_errors, refusal
from poshub.web.security import APPLICANT_COOKIE
from poshub.web.templating import render
from poshub.web.views import applicant_view

router = APIRouter(include_in_schema=False)

ACCOUNT_NUMBER_AGAIN = N_("To change the settlement account, type the full account number again.")
ANSWER_LENGTH = N_("Please write an answer (2 to 4000 characters).")

FORM_FIELDS = (
    "applicant_kind", "legal_name", "id_number", "mobile", "business_name", "uscc",
    "licence_expiry", "established_on", "mcc", "address.province", "address.city",
    "address.district", "address.detail", "address.region_code",
    "settlement_account.bank_name", "settlement_account.account_name",
    "settlement_account.account_number", "expected_monthly_volume_yuan",
)  # fmt: skip


def _catalog(uow: UnitOfWork) -> dict[str, Any]:
    return {
        "models": catalog_repository.terminal_models(uow.session),
        "plans": catalog_repository.fee_plans_in_force(uow.session, business_date(utcnow())),
    }


@router.get("/", dependencies=[PUBLIC])
def home(request: Request, uow: Annotated[UnitOfWork, Depends(read_uow)]) -> Response:
    return render(request, "home.html", _catalog(uow))


@router.get("/apply", dependencies=[PUBLIC])
def apply_form(request: Request, uow: Annotated[UnitOfWork, Depends(read_uow)]) -> Response:
    return render(
        request,
        "apply.html",
        {**_catalog(uow), "values": {"applicant_kind": "individual_business"}, "errors": {}},
    )


def form_to_payload(
    form: dict[str, str], model_codes: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn the flat HTML form into the API's JSON shape (same validation path)."""
    errors: dict[str, str] = {}
    payload: dict[str, Any] = {"address": {}, "settlement_account": {}, "terminals": []}
    for name in FORM_FIELDS:
        value = form.get(name, "").strip()
        if name == "expected_monthly_volume_yuan":
            continue
        if "." in name:
            group, key = name.split(".", 1)
            if value or key != "region_code":
                payload[group][key] = value
        elif value or name not in ("uscc", "licence_expiry", "established_on"):
            payload[name] = value or None if name in ("uscc",) else value
    payload["licence_long_term"] = form.get("licence_long_term") == "on"
    for key in ("licence_expiry", "established_on"):
        if not payload.get(key):
            payload.pop(key, None)
    volume = form.get("expected_monthly_volume_yuan", "").strip()
    try:
        payload["expected_monthly_volume_fen"] = yuan_to_fen(volume) if volume else None
    except ValueError:
        errors["expected_monthly_volume_fen"] = N_(
            "Must be an amount in yuan, e.g. 50000 or 50000.00."
        )
    for code in model_codes:
        count = form.get(f"count.{code}", "").strip()
        if count and count != "0":
            payload["terminals"].append({"model_code": code, "count": count})
    return payload, errors


@router.post("/apply", dependencies=[PUBLIC])
async def apply_submit(request: Request) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    return await run_in_threadpool(_apply_submit, request, form)


def _apply_submit(request: Request, form: dict[str, str]) -> Response:
    state = app_state(request)
    t = request_translator(request)
    with state.db.unit_of_work() as uow:
        catalog = _catalog(uow)
        payload, errors = form_to_payload(form, [m.code for m in catalog["models"]])
        messages: dict[str, str] = {k: t(v) for k, v in errors.items()}
        try:
            data = ApplicationIn.model_validate(payload)
        except ValidationError as exc:
            for error in pydantic_errors(exc.errors(), t):
                messages.setdefault(error["field"], error["msg"])
            return render(
                request, "apply.html", {**catalog, "values": form, "errors": messages}, 422
            )
        if messages:
            return render(
                request, "apply.html", {**catalog, "values": form, "errors": messages}, 422
            )
        try:
            application, token = create_application(
                uow.session, state.onboarding, data, locale=t.locale, now=utcnow()
            )
        except ValidationFailed as exc:
            for error in field_errors(exc.errors, t):
                messages.setdefault(error["field"], error["msg"])
            return render(
                request, "apply.html", {**catalog, "values": form, "errors": messages}, 422
            )
        uow.commit()
    response = render(request, "created.html", {"application": application, "token": token})
    _set_applicant_cookie(request, response, token)
    return response


def _set_applicant_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        APPLICANT_COOKIE,
        token,
        max_age=30 * 86400,
        httponly=True,
        secure=app_state(request).settings.cookie_secure,
        samesite="lax",
        path="/apply",
    )


@router.get("/apply/track", dependencies=[PUBLIC])
def track_form(request: Request) -> Response:
    return render(request, "track_login.html", {"error": None})


@router.post("/apply/track", dependencies=[PUBLIC])
def track_login(
    request: Request,
    uow: Annotated[UnitOfWork, Depends(read_uow)],
    tracking_number: Annotated[str, Form(max_length=30)],
    access_token: Annotated[str, Form(max_length=100)],
) -> Response:
    tracking_number = tracking_number.strip().upper()
    application = repository.by_tracking(
        uow.session, tracking_number, hash_access_token(access_token.strip())
    )
    if application is None:
        t = request_translator(request)
        return render(
            request,
            "track_login.html",
            {"error": t(N_("Tracking number and access token do not match."))},
            404,
        )
    response = RedirectResponse(f"/apply/track/{application.tracking_number}", status_code=303)
    _set_applicant_cookie(request, response, access_token.strip())
    return response


def _own_by_tracking(
    uow: UnitOfWork, tracking_number: str, credential: ApplicantCredential
) -> Application:
    application = repository.by_tracking(uow.session, tracking_number, credential.token_hash)
    if application is None:
        raise NotFound(
            N_("No such application, or the access token does not belong to it."),
            code="application_not_found",
        )
    return application


def _tracking_page(
    request: Request,
    uow: UnitOfWork,
    application: Application,
    t: Translator,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    merchant = merchant_repository.for_application(uow.session, application.id)
    contract = (
        contract_repository.pending(uow.session, merchant.id)
        or contract_repository.latest_signed(uow.session, merchant.id)
        if merchant
        else None
    )
    return render(
        request,
        "track.html",
        {
            "application": application,
            "contract": contract,
            "view": applicant_view(uow.session, application, t),
            "document_kinds": list(rules.DocumentKind),
            "document_labels": rules.DOCUMENT_LABELS,
            "errors": errors or [],
            "size_limit_mb": limits.DOCUMENT_SIZE_BYTES_MAX // (1024 * 1024),
        },
        status_code,
    )


@router.get("/apply/track/{tracking_number}")
def track(
    tracking_number: str,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(read_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
    t: Annotated[Translator, Depends(translator)],
) -> Response:
    return _tracking_page(request, uow, _own_by_tracking(uow, tracking_number, credential), t)


def _error_messages(exc: PosHubError, t: Translator) -> list[str]:
    return refusal(exc, t)[0]


@router.post("/apply/track/{tracking_number}/documents")
async def track_upload(
    tracking_number: str,
    request: Request,
    kind: Annotated[str, Form(max_length=40)],
    file: Annotated[UploadFile, File()],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
) -> Response:
    t = request_translator(request)
    try:
        content = await read_upload(file)
    except PosHubError as exc:
        return await run_in_threadpool(_page_error, request, tracking_number, credential, exc)
    return await run_in_threadpool(
        _track_upload, request, tracking_number, credential, kind, file.filename, content, t
    )


def _page_error(
    request: Request, tracking_number: str, credential: ApplicantCredential, exc: PosHubError
) -> Response:
    t = request_translator(request)
    with app_state(request).db.unit_of_work(read_only=True) as uow:
        application = _own_by_tracking(uow, tracking_number, credential)
        return _tracking_page(
            request, uow, application, t, _error_messages(exc, t), exc.status_code
        )


def _track_upload(
    request: Request,
    tracking_number: str,
    credential: ApplicantCredential,
    kind: str,
    file_name: str | None,
    content: bytes,
    t: Translator,
) -> Response:
    state = app_state(request)
    with state.db.unit_of_work() as uow:
        application = _own_by_tracking(uow, tracking_number, credential)
        try:
            add_document(
                uow.session,
                state.onboarding,
                application,
                kind=kind,
                file_name=file_name,
                content=content,
                uploaded_by=applicant_actor(application),
                now=utcnow(),
            )
        except PosHubError as exc:
            uow.rollback()
            return _tracking_page(
                request, uow, application, t, _error_messages(exc, t), exc.status_code
            )
        uow.commit()
    return RedirectResponse(f"/apply/track/{tracking_number}#documents", status_code=303)


def _act(
    request: Request,
    uow: UnitOfWork,
    tracking_number: str,
    credential: ApplicantCredential,
    t: Translator,
    action: Callable[[Application], object],
) -> Response:
    """Run one applicant action and go back to the tracking page; on a refusal, show the
    page again with the reasons and nothing changed."""
    application = _own_by_tracking(uow, tracking_number, credential)
    try:
        action(application)
    except (PosHubError, ValidationError) as exc:
        uow.rollback()
        messages, status_code = refusal(exc, t)
        fresh = _own_by_tracking(uow, tracking_number, credential)
        return _tracking_page(request, uow, fresh, t, messages, status_code)
    uow.commit()
    return RedirectResponse(f"/apply/track/{tracking_number}", status_code=303)


@router.post("/apply/track/{tracking_number}/submit")
def track_submit(
    tracking_number: str,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(write_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
    t: Annotated[Translator, Depends(translator)],
) -> Response:
    onboarding = app_state(request).onboarding
    return _act(
        request,
        uow,
        tracking_number,
        credential,
        t,
        lambda application: submit(uow.session, onboarding, application, now=utcnow()),
    )


EDITABLE_BY_FORM = (
    "business_name",
    "mobile",
    "address_detail",
    "bank_name",
    "account_name",
    "account_number",
)


@router.post("/apply/track/{tracking_number}/edit")
async def track_edit(
    tracking_number: str,
    request: Request,
    credential: Annotated[ApplicantCredential, Depends(applicant())],
) -> Response:
    """The applicant corrects details (draft or when more information was requested)."""
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in EDITABLE_BY_FORM}
    return await run_in_threadpool(_track_edit, request, tracking_number, credential, values)


def _track_edit(
    request: Request, tracking_number: str, credential: ApplicantCredential, values: dict[str, str]
) -> Response:
    state = app_state(request)
    t = request_translator(request)

    def action(application: Application) -> None:
        changes: dict[str, Any] = {k: values[k] for k in ("business_name", "mobile") if values[k]}
        if values["address_detail"]:
            changes["address"] = {
                "province": application.province,
                "city": application.city,
                "district": application.district,
                "detail": values["address_detail"],
                "region_code": application.region_code,
            }
        if any(values[k] for k in ("bank_name", "account_name", "account_number")):
            if not values["account_number"]:
                raise ValidationFailed(
                    [
                        FieldError(
                            "settlement_account.account_number",
                            "account_number.again",
                            ACCOUNT_NUMBER_AGAIN,
                        )
                    ]
                )
            changes["settlement_account"] = {
                "bank_name": values["bank_name"] or application.bank_name,
                "account_name": values["account_name"] or application.account_name,
                "account_number": values["account_number"],
            }
        patch = ApplicationPatch.model_validate(changes)
        update_application(uow.session, state.onboarding, application, patch, now=utcnow())

    with state.db.unit_of_work() as uow:
        return _act(request, uow, tracking_number, credential, t, action)


@router.post("/apply/track/{tracking_number}/answer")
def track_answer(
    tracking_number: str,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(write_uow)],
    credential: Annotated[ApplicantCredential, Depends(applicant())],
    t: Annotated[Translator, Depends(translator)],
    message: Annotated[str, Form()] = "",
) -> Response:
    onboarding = app_state(request).onboarding
    message = message.strip()

    def action(application: Application) -> None:
        if len(message) < 2 or len(message) > limits.MESSAGE_LENGTH_MAX:
            raise ValidationFailed([FieldError("message", "message.length", ANSWER_LENGTH)])
        answer_request(uow.session, onboarding, application, message, now=utcnow())

    return _act(request, uow, tracking_number, credential, t, action)


@router.post("/apply/track/{tracking_number}/logout", dependencies=[PUBLIC])
def track_logout(tracking_number: str) -> Response:
    response = RedirectResponse("/apply/track", status_code=303)
    response.delete_cookie(APPLICANT_COOKIE, path="/apply")
    return response
