"""Staff pages for a merchant's contracts and terminals, and for the device inventory.

``/admin/merchants/{mid}``: the merchant, every contract version with its signature
record, the forms to prepare a contract or an amendment and to countersign, the terminals,
device allocation and key export. ``/admin/contracts/{contract_id}``: one version, read
in the page. ``/admin/inventory``: devices per model and status, and the CSV stock-in.

Each action runs one service call and commits, then redirects; a refusal shows the page
again with its reasons (like ``admin._act``). Allocation and key export answer with a
page of their own instead: the device secret and the key block are shown that once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from poshub.catalog import recommend as recommendation
from poshub.catalog import repository as catalog_repository
from poshub.catalog.models import FeePlan
from poshub.contracts import repository as contract_repository
from poshub.contracts import service as contract_service
from poshub.contracts.models import AmendmentKind, Contract, ContractStatus, SettlementCycle
from poshub.contracts.schemas import AmendmentIn, ContractIn, TerminalLineIn
from poshub.core import limits
from poshub.core.clock import business_date
from poshub.core.crypto import mask_mobile
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, NotFound, PosHubError, ValidationFailed
from poshub.core.i18n import Translator
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.merchants.schemas import MerchantCloseIn
from poshub.merchants.service import get_merchant
from poshub.merchants.states import CONTRACTED_OR_LATER
from poshub.onboarding import repository as onboarding_repository
from poshub.onboarding.models import Application
from poshub.privacy import retention
from poshub.privacy import service as privacy_service
from poshub.risk import cases as risk_cases
from poshub.risk import controls as risk_controls
from poshub.staff.models import StaffUser
from poshub.staff.service import Principal
from poshub.terminals import repository as terminal_repository
from poshub.terminals import service as terminal_service
from poshub.terminals.models import Device, DeviceStatus, StockBatch, Terminal
from poshub.terminals.schemas import AllocateIn
from poshub.terminals.service import TerminalSummary
from poshub.web.api.contracts import pdf_response
from poshub.web.deps import app_state, client_ip, read_uow, staff, translator, write_uow
from poshub.web.errors import field_errors, pydantic_errors, refusal
from poshub.web.risk_views import merchant_risk_context
from poshub.web.roles import (
    CONTRACT_COUNTERSIGN,
    CONTRACT_READ,
    CONTRACT_WRITE,
    FLEET_READ,
    FLEET_WRITE,
    MERCHANT_CLOSE,
    MERCHANT_READ,
    REVIEW_READ,
    RISK_READ,
)
from poshub.web.security import safe_local_path
from poshub.web.templating import render, templates

router = APIRouter(prefix="/admin", include_in_schema=False)

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
T = Annotated[Translator, Depends(translator)]
MerchantReader = Annotated[Principal, Depends(staff(*MERCHANT_READ))]
ContractReader = Annotated[Principal, Depends(staff(*CONTRACT_READ))]
Preparer = Annotated[Principal, Depends(staff(*CONTRACT_WRITE))]
Countersigner = Annotated[Principal, Depends(staff(*CONTRACT_COUNTERSIGN))]
FleetReader = Annotated[Principal, Depends(staff(*FLEET_READ))]
Operations = Annotated[Principal, Depends(staff(*FLEET_WRITE))]
Closer = Annotated[Principal, Depends(staff(*MERCHANT_CLOSE))]

# The navigation in base.html shows the inventory link only to the roles that may open it.
templates.env.globals["FLEET_READ"] = FLEET_READ

AMENDMENT_KIND_LABELS = {
    "fee_change": N_("Fee plan change"),
    "settlement_cycle_change": N_("Settlement cycle change"),
    "settlement_account_change": N_("Settlement account change"),
    "terminal_change": N_("Supplementary agreement: terminals"),
}
CONTRACT_LANGUAGE_LABELS = {"zh": N_("Chinese"), "en": N_("English")}
NO_FILE = N_("Choose the supplier's CSV file to import.")
TERMINAL_MODEL_MISSING = N_("Choose the model these terminals are of.")
TERMINAL_COUNT_MISSING = N_("Give how many terminals of this model the contract covers.")
TERMINAL_FORM_INVALID = N_("The supplementary agreement was not prepared: see the fields marked.")
TERMINAL_FORM_SPARE_ROWS = 2
"""Empty lines offered after the contract's own on the supplementary agreement form."""
FILE_TOO_LARGE = N_("A stock file is at most 2 MB; split it.")


# --- Views of rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class ContractRow:
    """One contract version as the pages show it (staff names resolved)."""

    contract: Contract
    plan_code: str
    plan_version: int
    prepared_by: str
    countersigned_by: str | None
    prepared_by_viewer: bool


def _staff_name(uow: UnitOfWork, user_id: int | None, cache: dict[int, str]) -> str | None:
    if user_id is None:
        return None
    if user_id not in cache:
        user = uow.session.get(StaffUser, user_id)
        cache[user_id] = f"{user.display_name} ({user.username})" if user else str(user_id)
    return cache[user_id]


def _contract_rows(
    uow: UnitOfWork, contracts: Sequence[Contract], principal: Principal
) -> list[ContractRow]:
    names: dict[int, str] = {}
    return [
        ContractRow(
            contract=c,
            plan_code=str(c.terms.get("plan_code", "")),
            plan_version=int(c.terms.get("plan_version", 0)),
            prepared_by=_staff_name(uow, c.generated_by_id, names) or "",
            countersigned_by=_staff_name(uow, c.countersigned_by_id, names),
            prepared_by_viewer=c.generated_by_id == principal.user_id,
        )
        for c in contracts
    ]


def _terminal_rows(uow: UnitOfWork, merchant: Merchant) -> list[TerminalSummary]:
    return terminal_service.merchant_terminals(uow.session, merchant.id)


# --- Lookups ---------------------------------------------------------------------------


def _contract_of(uow: UnitOfWork, merchant: Merchant, contract_id: str) -> Contract:
    contract = contract_repository.get(uow.session, contract_id)
    if contract is None or contract.merchant_id != merchant.id:
        raise NotFound(N_("No such contract for this merchant."), code="contract_not_found")
    return contract


def _terminal(uow: UnitOfWork, tid: str) -> Terminal:
    terminal = terminal_repository.terminal_by_tid(uow.session, tid)
    if terminal is None:
        raise NotFound(N_("No terminal has this TID."), code="terminal_not_found")
    return terminal


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return render(
        request,
        name,
        {
            "AMENDMENT_KIND_LABELS": AMENDMENT_KIND_LABELS,
            "CONTRACT_LANGUAGE_LABELS": CONTRACT_LANGUAGE_LABELS,
            **context,
        },
        status_code,
    )


# --- The merchant page -----------------------------------------------------------------


def _plans_offered(uow: UnitOfWork, merchant: Merchant) -> list[FeePlan]:
    today = business_date(utcnow())
    return [
        p
        for p in catalog_repository.fee_plans_in_force(uow.session, today)
        if merchant.applicant_kind in p.applicant_kinds.split(",")
    ]


def _recommendation(
    uow: UnitOfWork, merchant: Merchant, application: Application | None, plans: list[FeePlan]
) -> recommendation.Recommendation | None:
    if application is None or not plans:
        return None
    try:
        return recommendation.recommend(
            applicant_kind=merchant.applicant_kind,
            mcc=merchant.mcc,
            expected_monthly_volume_fen=application.expected_monthly_volume_fen,
            models=catalog_repository.terminal_models(uow.session),
            plans=plans,
        )
    except recommendation.NoPlanOffered:
        return None


def _merchant_context(
    uow: UnitOfWork, merchant: Merchant, principal: Principal, t: Translator, years: int
) -> dict[str, Any]:
    session = uow.session
    application = session.get(Application, merchant.application_id)
    can_read_contracts = principal.has_any(CONTRACT_READ)
    can_write_contracts = principal.has_any(CONTRACT_WRITE)
    contracts = contract_repository.of_merchant(session, merchant.id) if can_read_contracts else []
    signed = contract_repository.latest_signed(session, merchant.id)
    pending = contract_repository.pending(session, merchant.id)
    blocked = pending is not None and pending.status == ContractStatus.AWAITING_COUNTERSIGN
    can_prepare = (
        can_write_contracts and merchant.status == MerchantStatus.APPROVED and signed is None
    )
    can_amend = can_write_contracts and signed is not None
    plans = _plans_offered(uow, merchant) if can_prepare or can_amend else []
    proposal = _recommendation(uow, merchant, application, plans) if can_prepare else None
    lines = onboarding_repository.terminal_lines(session, application.id) if application else []
    can_allocate = principal.has_any(FLEET_WRITE)
    stock: dict[str, Sequence[Device]] = {}
    if can_allocate:
        for model in sorted({line.model_code for line in lines}):
            stock[model] = terminal_repository.devices(
                session, status=DeviceStatus.IN_STOCK, model_code=model, limit=limits.PAGE_SIZE_MAX
            )
    terminals = _terminal_rows(uow, merchant)
    default_language = "en" if application is not None and application.locale == "en" else "zh"
    return {
        "merchant": merchant,
        "application": application,
        "mobile_masked": mask_mobile(merchant.mobile),
        "id_number_masked": application.id_number_masked if application else "",
        "contracts": _contract_rows(uow, contracts, principal),
        "signed": signed,
        "pending": pending,
        "countersign_pending": blocked,
        "can_read_contracts": can_read_contracts,
        "can_prepare": can_prepare,
        "can_amend": can_amend,
        "can_countersign": principal.has_any(CONTRACT_COUNTERSIGN),
        "can_close": principal.has_any(MERCHANT_CLOSE)
        and merchant.status != MerchantStatus.CLOSED.value,
        "retained_until": (
            retention.retained_until(merchant.terminated_on, years)
            if merchant.terminated_on
            else None
        ),
        "plans": plans,
        "proposal": proposal,
        "proposal_reasons": [t(r.message, r.params) for r in proposal.reasons] if proposal else [],
        "zh": t.locale.startswith("zh"),
        "cycles": list(SettlementCycle),
        "amendment_kinds": list(AmendmentKind),
        "term_months": {
            "min": limits.CONTRACT_TERM_MONTHS_MIN,
            "max": limits.CONTRACT_TERM_MONTHS_MAX,
            "default": limits.CONTRACT_TERM_MONTHS_DEFAULT,
        },
        "today": business_date(utcnow()).isoformat(),
        "prepare_form": {
            "fee_plan_code": proposal.plan.code if proposal else "",
            "settlement_cycle": SettlementCycle.T1.value,
            "term_months": str(limits.CONTRACT_TERM_MONTHS_DEFAULT),
            "effective_from": "",
            "language": default_language,
        },
        "requested": lines,
        "requested_total": sum(line.count for line in lines),
        "terminals": terminals,
        "can_allocate": can_allocate,
        "allocatable": MerchantStatus(merchant.status) in CONTRACTED_OR_LATER,
        "stock": stock,
        "can_export": can_allocate,
        "exportable": [row.tid for row in terminals if row.kcv and row.serial_number],
        "can_review": principal.has_any(REVIEW_READ),
        "errors": [],
        "terminal_models": catalog_repository.terminal_models(session) if can_amend else [],
        "terminal_form": _terminal_form(uow, signed) if can_amend and signed else None,
        "limits": risk_controls.merchant_limits_view(session, merchant),
        **merchant_risk_context(session, merchant, principal, t),
        # Freezes, holds and open cases (poshub/risk/cases.py): the risk card.
        "risk_cases": risk_cases.merchant_risk(session, merchant.mid)
        if principal.has_any(RISK_READ)
        else None,
    }


def _terminal_form(
    uow: UnitOfWork,
    signed: Contract,
    rows: list[dict[str, str]] | None = None,
    errors: dict[str, str] | None = None,
    *,
    effective_from: str = "",
    summary: str = "",
) -> dict[str, Any]:
    """The supplementary agreement (``terminal_change``) form: one line per model the
    contract covers, then empty ones; after a refusal, what was typed and each line's errors."""
    if rows is None:
        rows = [
            {"model_code": code, "count": str(count)}
            for _zh, _en, count, code in contract_service.terminal_lines(uow.session, signed)
            if code is not None
        ]
        rows += [{"model_code": "", "count": ""}] * TERMINAL_FORM_SPARE_ROWS
        rows = rows[: max(limits.TERMINAL_LINES_MAX, len(rows) - TERMINAL_FORM_SPARE_ROWS)]
    fields = {"terminals", "effective_from", "summary"} | {
        f"terminals[{i}].{key}" for i in range(len(rows)) for key in ("model_code", "count")
    }
    errors = errors or {}
    return {
        "rows": rows,
        "errors": errors,
        "other_errors": [message for field, message in errors.items() if field not in fields],
        "effective_from": effective_from or business_date(utcnow()).isoformat(),
        "summary": summary,
        "count_max": limits.TERMINAL_LINE_COUNT_MAX,
    }


def _merchant_page(
    request: Request,
    uow: UnitOfWork,
    mid: str,
    principal: Principal,
    t: Translator,
    *,
    errors: list[str] | None = None,
    status_code: int = 200,
    prepare_form: dict[str, str] | None = None,
    terminal_form: dict[str, Any] | None = None,
) -> Response:
    merchant = get_merchant(uow.session, mid)
    years = app_state(request).settings.retention_years
    context = _merchant_context(uow, merchant, principal, t, years)
    context["errors"] = errors or []
    if prepare_form:
        context["prepare_form"] = {**context["prepare_form"], **prepare_form}
    if terminal_form and context["terminal_form"] is not None:
        context["terminal_form"] = terminal_form
    return _page(request, "admin/merchant.html", context, status_code)


@router.get("/merchants/{mid}")
def merchant_page(
    mid: str, request: Request, uow: Read, principal: MerchantReader, t: T
) -> Response:
    return _merchant_page(request, uow, mid, principal, t)


def _act(
    request: Request,
    uow: UnitOfWork,
    mid: str,
    principal: Principal,
    t: Translator,
    action: Callable[[Merchant], Any],
    *,
    prepare_form: dict[str, str] | None = None,
    anchor: str = "contracts",
) -> Response:
    """Run one action on the merchant; on a refusal, show its page again with the reasons."""
    merchant = get_merchant(uow.session, mid)
    try:
        action(merchant)
    except (PosHubError, ValidationError) as exc:
        uow.rollback()
        messages, status_code = refusal(exc, t)
        return _merchant_page(
            request,
            uow,
            mid,
            principal,
            t,
            errors=messages,
            status_code=status_code,
            prepare_form=prepare_form,
        )
    uow.commit()
    return RedirectResponse(f"/admin/merchants/{mid}#{anchor}", status_code=303)


act_on_merchant = _act
"""The page's way to run an action, for forms whose routes live elsewhere (the risk
grade and business hours forms, poshub/web/pages/risk_merchants.py)."""


@router.post("/merchants/{mid}/contracts")
def prepare_contract(
    mid: str,
    request: Request,
    uow: Write,
    principal: Preparer,
    t: T,
    fee_plan_code: Annotated[str, Form(max_length=32)] = "",
    settlement_cycle: Annotated[str, Form(max_length=4)] = "T1",
    term_months: Annotated[str, Form(max_length=4)] = "",
    effective_from: Annotated[str, Form(max_length=10)] = "",
    language: Annotated[str, Form(max_length=2)] = "zh",
) -> Response:
    form = {
        "fee_plan_code": fee_plan_code.strip(),
        "settlement_cycle": settlement_cycle,
        "term_months": term_months.strip(),
        "effective_from": effective_from.strip(),
        "language": language,
    }
    onboarding = app_state(request).onboarding

    def action(merchant: Merchant) -> None:
        data: dict[str, Any] = {
            "fee_plan_code": form["fee_plan_code"],
            "settlement_cycle": form["settlement_cycle"],
            "language": form["language"],
        }
        if form["term_months"]:
            data["term_months"] = form["term_months"]
        if form["effective_from"]:
            data["effective_from"] = form["effective_from"]
        contract_service.generate(
            uow.session,
            onboarding,
            merchant,
            principal,
            ContractIn.model_validate(data),
            now=utcnow(),
        )

    return _act(request, uow, mid, principal, t, action, prepare_form=form)


@router.post("/merchants/{mid}/close")
def close_merchant(
    mid: str,
    request: Request,
    uow: Write,
    principal: Closer,
    t: T,
    terminated_on: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=600)] = "",
) -> Response:
    """End the relationship from the merchant's page, as ``POST /api/v1/merchants/{mid}/close``
    does: refusals (a date in the future, terminals still in service) come back on the page."""
    settings = app_state(request).settings

    def action(merchant: Merchant) -> None:
        body = MerchantCloseIn.model_validate(
            {"terminated_on": terminated_on.strip(), "reason": reason}
        )
        privacy_service.close_merchant(
            uow.session,
            merchant,
            terminated_on=body.terminated_on,
            reason=body.reason,
            actor=principal.actor,
            retention_years=settings.retention_years,
            now=utcnow(),
        )

    return _act(request, uow, mid, principal, t, action, anchor="closure")


@router.post("/merchants/{mid}/contracts/amendments")
def amend_contract(
    mid: str,
    request: Request,
    uow: Write,
    principal: Preparer,
    t: T,
    kind: Annotated[str, Form(max_length=32)] = "",
    effective_from: Annotated[str, Form(max_length=10)] = "",
    fee_plan_code: Annotated[str, Form(max_length=32)] = "",
    settlement_cycle: Annotated[str, Form(max_length=4)] = "",
    bank_name: Annotated[str, Form(max_length=limits.TEXT_FIELD_LENGTH_MAX)] = "",
    account_name: Annotated[str, Form(max_length=limits.TEXT_FIELD_LENGTH_MAX)] = "",
    account_number: Annotated[str, Form(max_length=40)] = "",
    summary: Annotated[str, Form(max_length=500)] = "",
    language: Annotated[str, Form(max_length=2)] = "",
    model_code: Annotated[list[str] | None, Form()] = None,
    count: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Prepare an amendment of the kind the form names. The supplementary agreement's
    lines arrive as repeated ``model_code``/``count`` pairs, one pair per line of the form."""
    onboarding = app_state(request).onboarding
    if kind == AmendmentKind.TERMINAL_CHANGE:
        rows = [
            {"model_code": code.strip()[:32], "count": number.strip()[:12]}
            for code, number in zip(model_code or [], count or [], strict=False)
        ]
        return _amend_terminals(
            request,
            uow,
            mid,
            principal,
            t,
            rows,
            {"effective_from": effective_from.strip(), "summary": summary.strip()},
            language,
        )

    def action(merchant: Merchant) -> None:
        data: dict[str, Any] = {
            "kind": kind,
            "effective_from": effective_from.strip(),
            "summary": summary.strip(),
        }
        if kind == AmendmentKind.FEE_CHANGE:
            data["fee_plan_code"] = fee_plan_code.strip() or None
        elif kind == AmendmentKind.SETTLEMENT_CYCLE_CHANGE:
            data["settlement_cycle"] = settlement_cycle or None
        elif kind == AmendmentKind.SETTLEMENT_ACCOUNT_CHANGE and (
            bank_name.strip() or account_name.strip() or account_number.strip()
        ):
            data["settlement_account"] = {
                "bank_name": bank_name.strip(),
                "account_name": account_name.strip(),
                "account_number": account_number.strip(),
            }
        if language:
            data["language"] = language
        contract_service.amend(
            uow.session,
            onboarding,
            merchant,
            principal,
            AmendmentIn.model_validate(data),
            now=utcnow(),
        )

    return _act(request, uow, mid, principal, t, action)


def _terminal_lines(
    rows: list[dict[str, str]], t: Translator
) -> tuple[list[dict[str, str]], list[int], dict[str, str]]:
    """The well-formed lines of the form (empty ones skipped), the form line each came
    from, and the other lines' errors, each named by its form line's field."""
    lines: list[dict[str, str]] = []
    origin: list[int] = []
    messages: dict[str, str] = {}
    for index, row in enumerate(rows):
        if not row["model_code"] and not row["count"]:
            continue
        field = f"terminals[{index}]"
        if not row["model_code"]:
            messages[f"{field}.model_code"] = t(TERMINAL_MODEL_MISSING)
            continue
        if not row["count"]:
            messages[f"{field}.count"] = t(TERMINAL_COUNT_MISSING)
            continue
        try:
            TerminalLineIn.model_validate(row)
        except ValidationError as exc:
            for error in pydantic_errors(exc.errors(), t):
                messages.setdefault(f"{field}.{error['field']}", error["msg"])
            continue
        lines.append(row)
        origin.append(index)
    return lines, origin, messages


_LINE_FIELD = re.compile(r"^terminals\[(\d+)\]")


def _amend_terminals(
    request: Request,
    uow: UnitOfWork,
    mid: str,
    principal: Principal,
    t: Translator,
    rows: list[dict[str, str]],
    form: dict[str, str],
    language: str,
) -> Response:
    """Prepare a supplementary agreement from the form; every problem of every line is
    shown at once next to its field (the form's own, the schema's and the service's)."""
    merchant = get_merchant(uow.session, mid)
    lines, origin, messages = _terminal_lines(rows, t)
    line_problems = bool(messages)

    def on_form(field: str) -> str:
        """``terminals[k]…`` of the request → the form line it came from."""
        match = _LINE_FIELD.match(field)
        if match and int(match[1]) < len(origin):
            return f"terminals[{origin[int(match[1])]}]{field[match.end() :]}"
        return field

    data: dict[str, Any] = {"kind": AmendmentKind.TERMINAL_CHANGE.value, **form}
    data["terminals"] = lines or None
    if language:
        data["language"] = language
    try:
        amendment = AmendmentIn.model_validate(data)
    except ValidationError as exc:
        for error in pydantic_errors(exc.errors(), t):
            messages.setdefault(on_form(error["field"]), error["msg"])
    else:
        try:
            contract_service.amend(
                uow.session,
                app_state(request).onboarding,
                merchant,
                principal,
                amendment,
                now=utcnow(),
            )
        except ValidationFailed as exc:
            for error in field_errors(exc.errors, t):
                if line_problems and error["field"] == "terminals":
                    continue  # about the lines it was given, not those refused above
                messages.setdefault(on_form(error["field"]), error["msg"])
        except PosHubError as exc:
            uow.rollback()
            refused, status_code = refusal(exc, t)
            return _merchant_page(
                request, uow, mid, principal, t, errors=refused, status_code=status_code
            )
    if messages:
        uow.rollback()
        signed = contract_repository.latest_signed(uow.session, merchant.id)
        terminal_form = (
            _terminal_form(uow, signed, rows, messages, **form) if signed is not None else None
        )
        return _merchant_page(
            request,
            uow,
            mid,
            principal,
            t,
            errors=[t(TERMINAL_FORM_INVALID)],
            status_code=422,
            terminal_form=terminal_form,
        )
    uow.commit()
    return RedirectResponse(f"/admin/merchants/{mid}#contracts", status_code=303)


@router.post("/merchants/{mid}/contracts/{contract_id}/countersign")
def countersign_contract(
    mid: str,
    contract_id: str,
    request: Request,
    uow: Write,
    principal: Countersigner,
    t: T,
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Seal a version the merchant signed. ``back`` is the page the button was on."""
    onboarding = app_state(request).onboarding
    merchant = get_merchant(uow.session, mid)
    try:
        contract = _contract_of(uow, merchant, contract_id)
        contract_service.countersign(
            uow.session,
            onboarding,
            contract,
            merchant,
            principal,
            ip=client_ip(request),
            now=utcnow(),
        )
    except PosHubError as exc:
        uow.rollback()
        messages, status_code = refusal(exc, t)
        if back == f"/admin/contracts/{contract_id}":
            return _contract_page(
                request, uow, contract_id, principal, errors=messages, status_code=status_code
            )
        return _merchant_page(
            request, uow, mid, principal, t, errors=messages, status_code=status_code
        )
    uow.commit()
    target = safe_local_path(back, f"/admin/merchants/{mid}#contracts", prefix="/admin/")
    return RedirectResponse(target, status_code=303)


@router.get("/merchants/{mid}/contracts/{contract_id}/pdf")
def contract_pdf(
    mid: str, contract_id: str, request: Request, uow: Read, principal: ContractReader
) -> Response:
    contract = _contract_of(uow, get_merchant(uow.session, mid), contract_id)
    return pdf_response(
        contract_service.pdf_bytes(app_state(request).onboarding, contract), contract
    )


# --- One contract version, read in the page ---------------------------------------------


def _contract_page(
    request: Request,
    uow: UnitOfWork,
    contract_id: str,
    principal: Principal,
    *,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    contract = contract_repository.get(uow.session, contract_id)
    if contract is None:
        raise NotFound(N_("No such contract."), code="contract_not_found")
    merchant = merchant_repository.get(uow.session, contract.merchant_id)
    assert merchant is not None  # foreign key
    row = _contract_rows(uow, [contract], principal)[0]
    return _page(
        request,
        "admin/contract.html",
        {
            "row": row,
            "contract": contract,
            "merchant": merchant,
            # The fragment comes from the contracts renderer, which autoescapes every value.
            "contract_html": Markup(contract_service.html(contract)),  # noqa: S704
            "can_countersign": principal.has_any(CONTRACT_COUNTERSIGN),
            "errors": errors or [],
        },
        status_code,
    )


@router.get("/contracts/{contract_id}")
def contract_page(
    contract_id: str, request: Request, uow: Read, principal: ContractReader
) -> Response:
    return _contract_page(request, uow, contract_id, principal)


# --- Terminals: allocation ------------------------------------------------------------------


@router.post("/merchants/{mid}/terminals")
def allocate(
    mid: str,
    request: Request,
    uow: Write,
    principal: Operations,
    t: T,
    serial_number: Annotated[str, Form(max_length=limits.SERIAL_NUMBER_LENGTH_MAX)] = "",
    install_address: Annotated[str, Form(max_length=limits.ADDRESS_DETAIL_LENGTH_MAX)] = "",
) -> Response:
    """Allocate a device in stock; the answer shows the device secret this one time."""
    state = app_state(request)
    merchant = get_merchant(uow.session, mid)
    try:
        data = AllocateIn(
            serial_number=serial_number.strip(), install_address=install_address.strip() or None
        )
        result = terminal_service.allocate(
            uow.session,
            state.settings,
            state.vault,
            merchant,
            data.serial_number,
            install_address=data.install_address,
            actor=principal.actor,
            now=utcnow(),
        )
    except (PosHubError, ValidationError) as exc:
        uow.rollback()
        messages, status_code = refusal(exc, t)
        return _merchant_page(
            request, uow, mid, principal, t, errors=messages, status_code=status_code
        )
    uow.commit()
    return _page(
        request,
        "admin/allocated.html",
        {
            "merchant": merchant,
            "tid": result.terminal.tid,
            "terminal_status": result.terminal.status,
            "serial_number": result.device.serial_number,
            "model_code": result.device.model_code,
            "kcv": result.kcv,
            "device_secret": result.device_secret,
        },
    )


# --- Inventory -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StockProblem:
    row: int
    column: str
    message: str


def _inventory_context(
    uow: UnitOfWork, principal: Principal, status: str, model: str, offset: int
) -> dict[str, Any]:
    session = uow.session
    counts = terminal_repository.device_counts(session)
    names = {m.code: m for m in catalog_repository.terminal_models(session, active_only=False)}
    models = sorted({model_code for model_code, _ in counts})
    statuses = list(DeviceStatus)
    chosen_status = status if status in {s.value for s in statuses} else ""
    chosen_model = model if model in names else ""
    devices = terminal_repository.devices(
        session,
        status=chosen_status or None,
        model_code=chosen_model or None,
        limit=limits.PAGE_SIZE_MAX,
        offset=offset,
    )
    return {
        "counts": counts,
        "models": models,
        "model_names": names,
        "statuses": statuses,
        "row_totals": {m: sum(n for (mm, _), n in counts.items() if mm == m) for m in models},
        "column_totals": {
            s.value: sum(n for (_, ss), n in counts.items() if ss == s.value) for s in statuses
        },
        "total": sum(counts.values()),
        "devices": devices,
        "status": chosen_status,
        "model": chosen_model,
        "offset": offset,
        "page_size": limits.PAGE_SIZE_MAX,
        "can_stock_in": principal.has_any(FLEET_WRITE),
        "batch": None,
        "problems": [],
        "errors": [],
    }


@router.get("/inventory")
def inventory(
    request: Request,
    uow: Read,
    principal: FleetReader,
    status: Annotated[str, Query(max_length=16)] = "",
    model: Annotated[str, Query(max_length=32)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    batch: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    context = _inventory_context(uow, principal, status, model, offset)
    if batch is not None:
        context["batch"] = uow.session.get(StockBatch, batch)
    return _page(request, "admin/inventory.html", context)


@router.post("/inventory/stock-in")
def stock_in(
    request: Request,
    uow: Write,
    principal: Operations,
    t: T,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Import a supplier's CSV, all or nothing; a refused file shows every bad row."""
    problems: list[StockProblem] = []
    errors: list[str] = []
    data = file.file.read(limits.STOCK_CSV_BYTES_MAX + 1) if file is not None else b""
    if file is None or (not data and not file.filename):
        errors.append(t(NO_FILE))
    elif len(data) > limits.STOCK_CSV_BYTES_MAX:
        errors.append(t(FILE_TOO_LARGE))
    else:
        result = terminal_service.stock_in(
            uow.session,
            data,
            file_name=file.filename or "stock.csv",
            user_id=principal.user_id,
            actor=principal.actor,
            now=utcnow(),
        )
        if result.batch is not None:
            uow.commit()
            return RedirectResponse(f"/admin/inventory?batch={result.batch.id}", status_code=303)
        problems = [StockProblem(p.row, p.column, t(p.message, p.params)) for p in result.problems]
    uow.rollback()
    context = _inventory_context(uow, principal, "", "", 0)
    context["errors"] = errors
    context["problems"] = problems
    context["file_name"] = file.filename if file is not None else ""
    status_code = 413 if errors and data and len(data) > limits.STOCK_CSV_BYTES_MAX else 422
    return _page(request, "admin/inventory.html", context, status_code)
