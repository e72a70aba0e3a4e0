"""The merchant page's risk forms: a risk officer grades the merchant by hand, staff
correct the declared business hours. Each runs one service call like the page's other
actions (``fleet._act``): committed and redirected back, or the page again with the
refusal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from poshub.core.db import UnitOfWork, utcnow
from poshub.core.i18n import Translator
from poshub.merchants.models import Merchant
from poshub.merchants.service import set_business_hours
from poshub.risk import grading
from poshub.staff.service import Principal
from poshub.web.deps import staff, translator, write_uow
from poshub.web.pages.fleet import act_on_merchant
from poshub.web.roles import MERCHANT_HOURS_WRITE, RISK_WRITE

router = APIRouter(prefix="/admin", include_in_schema=False)

Write = Annotated[UnitOfWork, Depends(write_uow)]
T = Annotated[Translator, Depends(translator)]
RiskOfficer = Annotated[Principal, Depends(staff(*RISK_WRITE))]
HoursEditor = Annotated[Principal, Depends(staff(*MERCHANT_HOURS_WRITE))]


@router.post("/merchants/{mid}/risk-grade")
def grade_merchant(
    mid: str,
    request: Request,
    uow: Write,
    principal: RiskOfficer,
    t: T,
    grade: Annotated[str, Form(max_length=8)] = "",
    reason: Annotated[str, Form(max_length=600)] = "",
) -> Response:
    def action(merchant: Merchant) -> None:
        grading.set_grade(
            uow.session, merchant.mid, grade, reason, actor=principal.actor, now=utcnow()
        )

    return act_on_merchant(request, uow, mid, principal, t, action, anchor="risk-grade")


@router.post("/merchants/{mid}/business-hours")
def business_hours(
    mid: str,
    request: Request,
    uow: Write,
    principal: HoursEditor,
    t: T,
    opening_time: Annotated[str, Form(max_length=8)] = "",
    closing_time: Annotated[str, Form(max_length=8)] = "",
    reason: Annotated[str, Form(max_length=600)] = "",
) -> Response:
    def action(merchant: Merchant) -> None:
        set_business_hours(
            uow.session,
            merchant,
            opening_time or None,
            closing_time or None,
            reason=reason[:500],
            actor=principal.actor,
        )

    return act_on_merchant(request, uow, mid, principal, t, action, anchor="business-hours")
