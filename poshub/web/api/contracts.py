"""Contracts API: staff generate, amend and countersign; the applicant reads and signs
from their tracking credential; anyone may check whether a PDF copy is genuine.
Also the fee-plan recommendation (public)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from poshub.catalog import recommend as recommendation
from poshub.catalog import repository as catalog_repository
from poshub.catalog.schemas import PlanEstimateOut, RecommendationOut
from poshub.contracts import repository, service
from poshub.contracts.models import Contract
from poshub.contracts.schemas import AmendmentIn, ContractIn, ContractOut, SignIn, VerifyOut
from poshub.core import limits
from poshub.core.clock import business_date
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, FieldError, NotFound, TooLarge, ValidationFailed
from poshub.core.i18n import Translator
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant
from poshub.merchants.service import get_merchant
from poshub.onboarding import repository as onboarding_repository
from poshub.onboarding import rules
from poshub.onboarding.models import ApplicantKind
from poshub.staff.models import StaffUser
from poshub.staff.service import Principal
from poshub.web.api.applications import NOT_FOUND as APPLICATION_NOT_FOUND
from poshub.web.deps import (
    PUBLIC,
    ApplicantCredential,
    app_state,
    applicant,
    client_ip,
    read_uow,
    staff,
    translator,
    write_uow,
)
from poshub.web.roles import CONTRACT_COUNTERSIGN, CONTRACT_READ, CONTRACT_WRITE

router = APIRouter(prefix="/api/v1", tags=["contracts"])

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
T = Annotated[Translator, Depends(translator)]
Reader = Annotated[Principal, Depends(staff(*CONTRACT_READ))]
Preparer = Annotated[Principal, Depends(staff(*CONTRACT_WRITE))]
Countersigner = Annotated[Principal, Depends(staff(*CONTRACT_COUNTERSIGN))]
Applicant = Annotated[ApplicantCredential, Depends(applicant())]

CONTRACT_NOT_FOUND = N_("No such contract for this merchant.")
CONTRACT_NOT_READY = N_("Your contract is not ready yet; we will send you a message when it is.")
PDF_MEDIA_TYPE = "application/pdf"


def contract_out(uow: UnitOfWork, contract: Contract, mid: str, pdf_url: str) -> ContractOut:
    countersigner = (
        uow.session.get(StaffUser, contract.countersigned_by_id)
        if contract.countersigned_by_id
        else None
    )
    return ContractOut(
        id=contract.id,
        contract_number=contract.contract_number,
        version=contract.version,
        mid=mid,
        status=contract.status,
        amendment_kind=contract.amendment_kind,
        change_summary=contract.change_summary,
        fee_plan_code=contract.terms["plan_code"],
        fee_plan_version=contract.terms["plan_version"],
        settlement_cycle=contract.settlement_cycle,
        term_months=contract.term_months,
        effective_from=contract.effective_from,
        end_date=contract.end_date,
        language=contract.language,
        account_number_masked=contract.account_number_masked,
        pdf_sha256=contract.pdf_sha256,
        pdf_size_bytes=contract.pdf_size_bytes,
        pdf_url=pdf_url,
        generated_at=contract.generated_at,
        merchant_signer_name=contract.merchant_signer_name,
        merchant_signed_at=contract.merchant_signed_at,
        merchant_signed_ip=contract.merchant_signed_ip,
        countersigned_at=contract.countersigned_at,
        countersigned_by=countersigner.username if countersigner else None,
        terms=contract.terms,
    )


def _contract(uow: UnitOfWork, merchant: Merchant, contract_id: str) -> Contract:
    contract = repository.get(uow.session, contract_id)
    if contract is None or contract.merchant_id != merchant.id:
        raise NotFound(CONTRACT_NOT_FOUND, code="contract_not_found")
    return contract


def _staff_pdf_url(mid: str, contract: Contract) -> str:
    return f"/api/v1/merchants/{mid}/contracts/{contract.id}/pdf"


def pdf_response(data: bytes, contract: Contract) -> Response:
    name = f"{contract.contract_number}-v{contract.version}.pdf"
    return Response(
        data,
        media_type=PDF_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'inline; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "X-Content-SHA256": contract.pdf_sha256,
        },
    )


# --- Staff -------------------------------------------------------------------------------


@router.get("/merchants/{mid}/contracts")
def list_contracts(mid: str, uow: Read, principal: Reader) -> list[ContractOut]:
    """Every version of the merchant's contracts, newest first."""
    merchant = get_merchant(uow.session, mid)
    return [
        contract_out(uow, c, mid, _staff_pdf_url(mid, c))
        for c in repository.of_merchant(uow.session, merchant.id)
    ]


@router.post("/merchants/{mid}/contracts", status_code=201)
def generate_contract(
    mid: str, data: ContractIn, request: Request, uow: Write, principal: Preparer
) -> ContractOut:
    """Prepare a merchant's contract from the approved application and a fee plan."""
    merchant = get_merchant(uow.session, mid)
    contract = service.generate(
        uow.session, app_state(request).onboarding, merchant, principal, data, now=utcnow()
    )
    uow.commit()
    return contract_out(uow, contract, mid, _staff_pdf_url(mid, contract))


@router.post("/merchants/{mid}/contracts/amendments", status_code=201)
def amend_contract(
    mid: str, data: AmendmentIn, request: Request, uow: Write, principal: Preparer
) -> ContractOut:
    """Prepare a supplementary agreement that changes the terminals or the fee plan."""
    merchant = get_merchant(uow.session, mid)
    contract = service.amend(
        uow.session, app_state(request).onboarding, merchant, principal, data, now=utcnow()
    )
    uow.commit()
    return contract_out(uow, contract, mid, _staff_pdf_url(mid, contract))


@router.get("/merchants/{mid}/contracts/{contract_id}")
def read_contract(mid: str, contract_id: str, uow: Read, principal: Reader) -> ContractOut:
    """One contract version with its status, signatures and document hash."""
    merchant = get_merchant(uow.session, mid)
    contract = _contract(uow, merchant, contract_id)
    return contract_out(uow, contract, mid, _staff_pdf_url(mid, contract))


@router.get("/merchants/{mid}/contracts/{contract_id}/pdf")
def staff_pdf(
    mid: str, contract_id: str, request: Request, uow: Read, principal: Reader
) -> Response:
    """The contract's PDF as stored, for staff."""
    merchant = get_merchant(uow.session, mid)
    contract = _contract(uow, merchant, contract_id)
    return pdf_response(service.pdf_bytes(app_state(request).onboarding, contract), contract)


@router.post("/merchants/{mid}/contracts/{contract_id}/countersign")
def countersign_contract(
    mid: str, contract_id: str, request: Request, uow: Write, principal: Countersigner
) -> ContractOut:
    """Countersign a contract the merchant signed (another operator than its preparer)."""
    merchant = get_merchant(uow.session, mid)
    contract = _contract(uow, merchant, contract_id)
    service.countersign(
        uow.session,
        app_state(request).onboarding,
        contract,
        merchant,
        principal,
        ip=client_ip(request),
        now=utcnow(),
    )
    uow.commit()
    return contract_out(uow, contract, mid, _staff_pdf_url(mid, contract))


# --- Applicant (the merchant, through the tracking credential) ------------------------


def _applicant_merchant(
    uow: UnitOfWork, application_id: str, credential: ApplicantCredential
) -> Merchant:
    application = onboarding_repository.by_access(
        uow.session, application_id, credential.token_hash
    )
    if application is None:
        raise NotFound(APPLICATION_NOT_FOUND, code="application_not_found")
    merchant = merchant_repository.for_application(uow.session, application.id)
    if merchant is None:
        raise NotFound(CONTRACT_NOT_READY, code="contract_not_ready")
    return merchant


def _applicant_contract(uow: UnitOfWork, merchant: Merchant) -> Contract:
    contract = repository.pending(uow.session, merchant.id) or repository.latest_signed(
        uow.session, merchant.id
    )
    if contract is None:
        raise NotFound(CONTRACT_NOT_READY, code="contract_not_ready")
    return contract


def _applicant_pdf_url(application_id: str) -> str:
    return f"/api/v1/applications/{application_id}/contract/pdf"


@router.get("/applications/{application_id}/contract")
def applicant_contract(application_id: str, uow: Read, credential: Applicant) -> ContractOut:
    """The contract waiting for the applicant's signature, or the one in force."""
    merchant = _applicant_merchant(uow, application_id, credential)
    contract = _applicant_contract(uow, merchant)
    return contract_out(uow, contract, merchant.mid, _applicant_pdf_url(application_id))


@router.get("/applications/{application_id}/contract/html", response_class=HTMLResponse)
def applicant_contract_html(application_id: str, uow: Read, credential: Applicant) -> HTMLResponse:
    """The contract awaiting the applicant's signature, as HTML."""
    merchant = _applicant_merchant(uow, application_id, credential)
    return HTMLResponse(service.html(_applicant_contract(uow, merchant)))


@router.get("/applications/{application_id}/contract/pdf")
def applicant_pdf(
    application_id: str, request: Request, uow: Read, credential: Applicant
) -> Response:
    """The contract awaiting or bearing the applicant's signature, as PDF."""
    merchant = _applicant_merchant(uow, application_id, credential)
    contract = _applicant_contract(uow, merchant)
    return pdf_response(service.pdf_bytes(app_state(request).onboarding, contract), contract)


@router.post("/applications/{application_id}/contract/sign")
def applicant_sign(
    application_id: str, data: SignIn, request: Request, uow: Write, credential: Applicant
) -> ContractOut:
    """Sign the contract electronically (applicant; address and time recorded)."""
    merchant = _applicant_merchant(uow, application_id, credential)
    contract = _applicant_contract(uow, merchant)
    service.sign_by_merchant(
        uow.session,
        app_state(request).onboarding,
        contract,
        merchant,
        data,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
        now=utcnow(),
    )
    uow.commit()
    return contract_out(uow, contract, merchant.mid, _applicant_pdf_url(application_id))


# --- Anyone: is this copy genuine? ------------------------------------------------------


@router.post("/contracts/verify", dependencies=[PUBLIC])
def verify_copy(uow: Read, file: UploadFile, t: T) -> VerifyOut:
    """Upload a contract PDF: the answer says whether it is byte for byte a contract we
    issued. Any alteration changes the SHA-256 and matches nothing."""
    data = file.file.read(limits.DOCUMENT_SIZE_BYTES_MAX + 1)
    if len(data) > limits.DOCUMENT_SIZE_BYTES_MAX:
        raise TooLarge(N_("The file is larger than 10 MB."), code="file_too_large")
    result = service.verify_copy(uow.session, data)
    contract = result.contract
    if contract is None:
        return VerifyOut(
            sha256=result.sha256,
            matches=False,
            message=t(
                "This file is not a contract we issued: it was altered, or it is another document."
            ),
        )
    return VerifyOut(
        sha256=result.sha256,
        matches=True,
        contract_number=contract.contract_number,
        version=contract.version,
        status=contract.status,
        message=t(
            "This file is exactly contract {number}, version {version}.",
            number=contract.contract_number,
            version=contract.version,
        ),
    )


# --- Recommendation (public) --------------------------------------------------------------


@router.get("/catalog/recommendation", tags=["catalog"], dependencies=[PUBLIC])
def recommend(
    uow: Read,
    t: T,
    applicant_kind: ApplicantKind,
    mcc: Annotated[str, Query(min_length=4, max_length=4)],
    expected_monthly_volume_fen: Annotated[
        int, Query(ge=0, le=limits.EXPECTED_MONTHLY_VOLUME_FEN_MAX)
    ],
) -> RecommendationOut:
    """Proposes a terminal model, a number of terminals and a fee plan, and says why."""
    violation = rules.check_mcc(mcc)
    if violation is not None:
        raise ValidationFailed(
            [FieldError("mcc", violation.code, rules.MESSAGES[violation.code], violation.params)]
        )
    today = business_date(utcnow())
    result = recommendation.recommend(
        applicant_kind=str(applicant_kind),
        mcc=mcc,
        expected_monthly_volume_fen=expected_monthly_volume_fen,
        models=catalog_repository.terminal_models(uow.session),
        plans=catalog_repository.fee_plans_in_force(uow.session, today),
    )
    zh = t.locale.startswith("zh")
    return RecommendationOut(
        model_code=result.model.code,
        model_name=result.model.name_zh if zh else result.model.name_en,
        terminal_count=result.count,
        fee_plan_code=result.plan.code,
        fee_plan_version=result.plan.version,
        fee_plan_name=result.plan.name_zh if zh else result.plan.name_en,
        monthly_total_fen=result.estimate.total_fen,
        reasons=[t(r.message, r.params) for r in result.reasons],
        options=[
            PlanEstimateOut(
                fee_plan_code=o.plan.code,
                fee_plan_version=o.plan.version,
                name=o.plan.name_zh if zh else o.plan.name_en,
                monthly_total_fen=o.estimate.total_fen,
                transaction_fees_fen=o.estimate.transaction_fees_fen,
                rent_fen=o.estimate.rent_fen,
                maintenance_fen=o.estimate.maintenance_fen,
                rent_waived=o.estimate.rent_waived,
                deposit_fen=o.estimate.deposit_fen,
                deposit_refundable=o.estimate.deposit_refundable,
            )
            for o in result.alternatives
        ],
    )
