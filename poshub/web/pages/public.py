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
from poshub.core.errors import (
    N_,
    FieldError,
    NotFound,
    PosHubError,
    TooManyRequests,
    ValidationFailed,
)
from poshub.core.i18n import Translator
from poshub.core.money import yuan_to_fen
from poshub.core.settings import Mode
from poshub.merchants import repository as merchant_repository
from poshub.onboarding import consent, repository, rules
from poshub.onboarding.mobile import ACCESS_CODE_WRONG, mask_mobile
from poshub.onboarding.models import Application, ConsentKind
from poshub.onboarding.schemas import ApplicationIn, ApplicationPatch, ConsentsIn
from poshub.onboarding.service import (
    CONSENT_OPEN_STATUSES,
    CONSENT_REQUIRED,
    access_code_throttled,
    add_document,
    answer_request,
    applicant_actor,
    confirm_mobile,
    create_application,
    give_consents,
    hash_access_token,
    missing_consents,
    record_access_code_failure,
    request_mobile_code,
    send_mobile_code,
    submit,
    update_application,
    withdraw_consent,
)
from poshub.onboarding.states import ApplicationStatus
from poshub.risk import controls as risk_controls
from poshub.web.api.applications import read_upload
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
from poshub.web.errors import field_errors, pydantic_errors, refusal
from poshub.web.security import APPLICANT_COOKIE
from poshub.web.templating import render
from poshub.web.views import applicant_view

router = APIRouter(include_in_schema=False)

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
T = Annotated[Translator, Depends(translator)]
Credential = Annotated[ApplicantCredential, Depends(applicant())]

ACCOUNT_NUMBER_AGAIN = N_("To change the settlement account, type the full account number again.")
ANSWER_LENGTH = N_("Please write an answer (2 to 4000 characters).")

FORM_FIELDS = (
    "applicant_kind", "legal_name", "id_number", "mobile", "business_name", "uscc",
    "licence_expiry", "established_on", "mcc", "address.province", "address.city",
    "address.district", "address.detail", "address.region_code",
    "settlement_account.bank_name", "settlement_account.account_name",
    "settlement_account.account_number", "settlement_account.account_type",
    "expected_monthly_volume_yuan", "opening_time", "closing_time",
)  # fmt: skip
BENEFICIAL_OWNER_ROWS = 3
"""Rows for beneficial owners on the form (an enterprise needs one at least)."""


def _compliance_fields(form: dict[str, str], payload: dict[str, Any]) -> None:
    """ID card validity, an agent applying, and an enterprise's beneficial owners."""
    payload["id_long_term"] = form.get("id_long_term") == "on"
    if form.get("id_expiry", "").strip():
        payload["id_expiry"] = form["id_expiry"].strip()
    payload["applied_by_agent"] = form.get("applied_by_agent") == "on"
    agent = {key: form.get(f"agent.{key}", "").strip() for key in ("name", "id_number")}
    if payload["applied_by_agent"] or any(agent.values()):
        payload["agent"] = agent
    owners = []
    for row in range(BENEFICIAL_OWNER_ROWS):
        owner = {
            key: form.get(f"beneficial_owners[{row}].{key}", "").strip()
            for key in ("name", "id_number", "basis", "share_percent")
        }
        if owner["name"] or owner["id_number"]:
            owners.append({k: v for k, v in owner.items() if v or k != "share_percent"})
    payload["beneficial_owners"] = owners


def _catalog(uow: UnitOfWork) -> dict[str, Any]:
    return {
        "models": catalog_repository.terminal_models(uow.session),
        "plans": catalog_repository.fee_plans_in_force(uow.session, business_date(utcnow())),
        # The application form shows the current privacy notice (poshub/onboarding/consent.py).
        "notice_version": consent.PRIVACY_NOTICE_VERSION,
        "privacy_notice": consent.PRIVACY_NOTICE[consent.PRIVACY_NOTICE_VERSION],
    }


@router.get("/", dependencies=[PUBLIC])
def home(request: Request, uow: Read) -> Response:
    return render(request, "home.html", _catalog(uow))


@router.get("/apply", dependencies=[PUBLIC])
def apply_form(request: Request, uow: Read) -> Response:
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
        elif value or name not in (
            "uscc", "licence_expiry", "established_on", "opening_time", "closing_time"
        ):  # fmt: skip
            payload[name] = value or None if name in ("uscc",) else value
    payload["licence_long_term"] = form.get("licence_long_term") == "on"
    _compliance_fields(form, payload)
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
    payload["consents"] = {
        "notice_version": form.get("notice_version", "").strip()[:16] or "-",
        "privacy_notice": form.get("consent_privacy_notice") == "on",
        "verification_provider": form.get("consent_verification_provider") == "on",
    }
    if not payload["consents"]["privacy_notice"]:  # named with the other fields' errors
        errors["consents.privacy_notice"] = CONSENT_REQUIRED[ConsentKind.PRIVACY_NOTICE]
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
                uow.session,
                state.onboarding,
                data,
                locale=t.locale,
                now=utcnow(),
                source_address=client_ip(request),
            )
        except ValidationFailed as exc:
            for error in field_errors(exc.errors, t):
                messages.setdefault(error["field"], error["msg"])
            return render(
                request, "apply.html", {**catalog, "values": form, "errors": messages}, 422
            )
        except TooManyRequests as exc:
            # Past the applications allowed per mobile number or per address: say which.
            messages["form"] = refusal(exc, t)[0][0]
            return render(
                request, "apply.html", {**catalog, "values": form, "errors": messages}, 429
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


OTHER_APPLICATION = N_(
    "This browser holds the access code of another application. Enter the access code of "
    "application {tracking_number} to open it."
)


def _login_page(
    request: Request, number: str, error: str | None = None, status_code: int = 200
) -> Response:
    """The page to enter the access code; ``number`` (from the SMS link) is filled in."""
    number = number.strip().upper()[:30]
    return render(request, "track_login.html", {"error": error, "number": number}, status_code)


@router.get("/apply/track", dependencies=[PUBLIC])
def track_form(request: Request, number: str = "") -> Response:
    """Where the SMS link leads on a device without the access code (see errors.py)."""
    return _login_page(request, number)


@router.post("/apply/track", dependencies=[PUBLIC])
def track_login(
    request: Request,
    uow: Write,
    tracking_number: Annotated[str, Form(max_length=30)],
    access_token: Annotated[str, Form(max_length=100)],
) -> Response:
    """Open an application with its access code; wrong codes are counted per source
    address and, past the limit, refused for a while (429) even when right."""
    t = request_translator(request)
    tracking_number = tracking_number.strip().upper()
    source, now = client_ip(request), utcnow()
    throttled = access_code_throttled(uow.session, source, now)
    if throttled is not None:
        response = _login_page(
            request, tracking_number, refusal(throttled, t)[0][0], throttled.status_code
        )
        response.headers["Retry-After"] = str(limits.ACCESS_CODE_FAILURE_WINDOW_MINUTES * 60)
        return response
    application = repository.by_tracking(
        uow.session, tracking_number, hash_access_token(access_token.strip())
    )
    if application is None:
        record_access_code_failure(uow.session, source, now)
        uow.commit()
        message = t(ACCESS_CODE_WRONG, tracking_number=tracking_number or "-")
        return _login_page(request, tracking_number, message, 404)
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
    *,
    notice: str | None = None,
    demo_code: str | None = None,
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
            "notice": notice,
            "demo_code": demo_code,
            "code_digits": limits.MOBILE_CODE_DIGITS,
            # The merchant's own limits only: this page is reached with its access code.
            "limits": risk_controls.merchant_limits_view(uow.session, merchant)
            if merchant
            else None,
            **_consent_panel(uow, application, t),
        },
        status_code,
    )


CONSENT_LABELS: dict[str, str] = {
    ConsentKind.PRIVACY_NOTICE.value: N_("Agreement to the privacy notice"),
    ConsentKind.VERIFICATION_PROVIDER.value: N_(
        "Consent to send your identity and bank data to the verification provider"
    ),
}
CONSENT_KIND_UNKNOWN = N_("Choose which consent to withdraw.")


def _consent_panel(uow: UnitOfWork, application: Application, t: Translator) -> dict[str, Any]:
    """The tracking page's consent panel: the notice, whether consents may still change
    (until the decision), and what submission still lacks for want of consent."""
    return {
        "consent_labels": CONSENT_LABELS,
        "consent_open": ApplicationStatus(application.status) in CONSENT_OPEN_STATUSES,
        "notice_version": consent.PRIVACY_NOTICE_VERSION,
        "notice_text": consent.notice_text(t.locale),
        "missing_consents": [
            t(error.message, error.params) for error in missing_consents(uow.session, application)
        ],
    }


@router.get("/apply/track/{tracking_number}")
def track(
    tracking_number: str,
    request: Request,
    uow: Read,
    credential: Credential,
    t: T,
) -> Response:
    try:
        application = _own_by_tracking(uow, tracking_number, credential)
    except NotFound:
        if not credential.via_cookie:
            raise
        # The cookie opens another application (or none): ask for this one's code.
        number = tracking_number.strip().upper()[:30]
        return _login_page(request, number, t(OTHER_APPLICATION, tracking_number=number), 404)
    return _tracking_page(request, uow, application, t)


CODE_SENT = N_("We sent a {digits}-digit code to {mobile}. It is valid for {minutes} minutes.")
DEMO_CODE = N_("Demo: no SMS leaves a demo. The code sent is {code}.")


@router.post("/apply/track/{tracking_number}/mobile/code")
def track_mobile_code(
    tracking_number: str,
    request: Request,
    uow: Write,
    credential: Credential,
    t: T,
) -> Response:
    """Send the one-time code that proves the mobile number; the page says where it went."""
    state = app_state(request)
    application = _own_by_tracking(uow, tracking_number, credential)
    try:
        sms = request_mobile_code(
            uow.session,
            state.onboarding,
            application,
            source_address=client_ip(request),
            now=utcnow(),
        )
        uow.commit()
        send_mobile_code(state.notifier, sms)
    except PosHubError as exc:
        uow.rollback()
        messages, status_code = refusal(exc, t)
        fresh = _own_by_tracking(uow, tracking_number, credential)
        return _tracking_page(request, uow, fresh, t, messages, status_code)
    notice = t(
        CODE_SENT,
        digits=str(limits.MOBILE_CODE_DIGITS),
        mobile=mask_mobile(sms.mobile),
        minutes=str(limits.MOBILE_CODE_VALID_MINUTES),
    )
    demo = t(DEMO_CODE, code=sms.code) if state.settings.mode is Mode.DEMO else None
    return _tracking_page(request, uow, application, t, notice=notice, demo_code=demo)


@router.post("/apply/track/{tracking_number}/mobile/verify")
def track_mobile_verify(
    tracking_number: str,
    request: Request,
    uow: Write,
    credential: Credential,
    t: T,
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Check the code from the SMS; a wrong one is counted and the page says why."""
    application = _own_by_tracking(uow, tracking_number, credential)
    refused = confirm_mobile(
        uow.session, app_state(request).onboarding, application, code, now=utcnow()
    )
    uow.commit()
    if refused is not None:
        messages, status_code = refusal(refused, t)
        return _tracking_page(request, uow, application, t, messages, status_code)
    return RedirectResponse(f"/apply/track/{tracking_number}#mobile", status_code=303)


def _error_messages(exc: PosHubError, t: Translator) -> list[str]:
    return refusal(exc, t)[0]


@router.post("/apply/track/{tracking_number}/documents")
async def track_upload(
    tracking_number: str,
    request: Request,
    kind: Annotated[str, Form(max_length=40)],
    file: Annotated[UploadFile, File()],
    credential: Credential,
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
    *,
    anchor: str = "",
) -> Response:
    """Run one applicant action and go back to the tracking page (at ``anchor``); on a
    refusal, show the page again with the reasons and nothing changed."""
    application = _own_by_tracking(uow, tracking_number, credential)
    try:
        action(application)
    except (PosHubError, ValidationError) as exc:
        uow.rollback()
        messages, status_code = refusal(exc, t)
        fresh = _own_by_tracking(uow, tracking_number, credential)
        return _tracking_page(request, uow, fresh, t, messages, status_code)
    uow.commit()
    return RedirectResponse(f"/apply/track/{tracking_number}{anchor}", status_code=303)


@router.post("/apply/track/{tracking_number}/submit")
def track_submit(
    tracking_number: str,
    request: Request,
    uow: Write,
    credential: Credential,
    t: T,
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


@router.post("/apply/track/{tracking_number}/consents")
def track_consent_give(
    tracking_number: str,
    request: Request,
    uow: Write,
    credential: Credential,
    t: T,
    notice_version: Annotated[str, Form(max_length=16)] = "",
    consent_privacy_notice: Annotated[str, Form(max_length=8)] = "",
    consent_verification_provider: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Give a consent from the tracking page (before the decision), under the notice
    version the page showed; a verification consent after submission runs the checks again."""

    def action(application: Application) -> None:
        data = ConsentsIn(
            notice_version=notice_version.strip() or "-",
            privacy_notice=consent_privacy_notice == "on",
            verification_provider=consent_verification_provider == "on",
        )
        give_consents(
            uow.session, application, data, source_address=client_ip(request), now=utcnow()
        )

    return _act(request, uow, tracking_number, credential, t, action, anchor="#consents")


@router.post("/apply/track/{tracking_number}/consents/withdraw")
def track_consent_withdraw(
    tracking_number: str,
    request: Request,
    uow: Write,
    credential: Credential,
    t: T,
    kind: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Withdraw a consent before the decision; after it the page says why it cannot."""

    def action(application: Application) -> None:
        if kind not in CONSENT_LABELS:
            raise ValidationFailed(
                [FieldError("kind", "consent.kind_unknown", CONSENT_KIND_UNKNOWN)]
            )
        withdraw_consent(
            uow.session,
            application,
            ConsentKind(kind),
            source_address=client_ip(request),
            now=utcnow(),
        )

    return _act(request, uow, tracking_number, credential, t, action, anchor="#consents")


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
    credential: Credential,
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
                "account_type": application.account_type,
            }
        patch = ApplicationPatch.model_validate(changes)
        update_application(uow.session, state.onboarding, application, patch, now=utcnow())

    with state.db.unit_of_work() as uow:
        return _act(request, uow, tracking_number, credential, t, action)


@router.post("/apply/track/{tracking_number}/answer")
def track_answer(
    tracking_number: str,
    request: Request,
    uow: Write,
    credential: Credential,
    t: T,
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
