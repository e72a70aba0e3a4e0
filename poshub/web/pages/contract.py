"""The applicant's contract page: review the contract, download the PDF, sign (R5).

Reached from the tracking page with the same credential (the tracking cookie). The sign
form carries the SHA-256 of the PDF version shown on the page: if staff prepared another
version meanwhile, the signature is refused and the page shows the new one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from poshub.contracts import repository as contract_repository
from poshub.contracts import service as contracts
from poshub.contracts.models import Contract
from poshub.contracts.schemas import SignIn
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, NotFound, PosHubError
from poshub.core.i18n import Translator
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant
from poshub.onboarding import repository
from poshub.onboarding.models import Application
from poshub.web.api.contracts import CONTRACT_NOT_READY, pdf_response
from poshub.web.deps import (
    ApplicantCredential,
    app_state,
    applicant,
    client_ip,
    read_uow,
    translator,
    write_uow,
)
from poshub.web.errors import refusal
from poshub.web.templating import render

router = APIRouter(include_in_schema=False)

Credential = Annotated[ApplicantCredential, Depends(applicant())]
T = Annotated[Translator, Depends(translator)]


def _own(
    uow: UnitOfWork, tracking_number: str, credential: ApplicantCredential
) -> tuple[Application, Merchant, Contract]:
    application = repository.by_tracking(uow.session, tracking_number, credential.token_hash)
    if application is None:
        raise NotFound(
            N_("No such application, or the access token does not belong to it."),
            code="application_not_found",
        )
    merchant = merchant_repository.for_application(uow.session, application.id)
    contract = None
    if merchant is not None:
        contract = contract_repository.pending(
            uow.session, merchant.id
        ) or contract_repository.latest_signed(uow.session, merchant.id)
    if merchant is None or contract is None:
        raise NotFound(CONTRACT_NOT_READY, code="contract_not_ready")
    return application, merchant, contract


def _page(
    request: Request,
    uow: UnitOfWork,
    tracking_number: str,
    credential: ApplicantCredential,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    application, merchant, contract = _own(uow, tracking_number, credential)
    return render(
        request,
        "contract.html",
        {
            "application": application,
            "merchant": merchant,
            "contract": contract,
            "contract_html": Markup(contracts.html(contract)),  # noqa: S704 - autoescaped renderer
            "errors": errors or [],
        },
        status_code,
    )


@router.get("/apply/track/{tracking_number}/contract")
def contract_page(
    tracking_number: str,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(read_uow)],
    credential: Credential,
) -> Response:
    return _page(request, uow, tracking_number, credential)


@router.get("/apply/track/{tracking_number}/contract/pdf")
def contract_pdf(
    tracking_number: str,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(read_uow)],
    credential: Credential,
) -> Response:
    _, _, contract = _own(uow, tracking_number, credential)
    return pdf_response(contracts.pdf_bytes(app_state(request).onboarding, contract), contract)


@router.post("/apply/track/{tracking_number}/contract/sign")
def contract_sign(
    tracking_number: str,
    request: Request,
    uow: Annotated[UnitOfWork, Depends(write_uow)],
    credential: Credential,
    t: T,
    signer_name: Annotated[str, Form(max_length=200)] = "",
    pdf_sha256: Annotated[str, Form(max_length=64)] = "",
    agree: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    _, merchant, contract = _own(uow, tracking_number, credential)
    try:
        data = SignIn(signer_name=signer_name.strip(), agree=agree == "yes", pdf_sha256=pdf_sha256)
        contracts.sign_by_merchant(
            uow.session,
            app_state(request).onboarding,
            contract,
            merchant,
            data,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
            now=utcnow(),
        )
    except (PosHubError, ValidationError) as exc:
        uow.rollback()
        messages, status_code = refusal(exc, t)
        return _page(request, uow, tracking_number, credential, messages, status_code)
    uow.commit()
    return RedirectResponse(f"/apply/track/{tracking_number}/contract#signed", status_code=303)
