"""Risk control API for merchants and terminals: merchant risk grades (history, a risk
officer's manual grade), external risk list checks, declared business hours, and a
terminal's registered installation location (移机)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from poshub.core import limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.merchants.service import get_merchant, set_business_hours
from poshub.risk import grading, relocation
from poshub.risk import repository as risk_repository
from poshub.risk.models import MerchantRiskGrade, RiskListCheck
from poshub.risk.schemas import Grade
from poshub.staff.service import Principal
from poshub.terminals import tms_service
from poshub.web.deps import read_uow, staff, write_uow
from poshub.web.roles import MERCHANT_HOURS_WRITE, RISK_READ, RISK_WRITE, TMS_WRITE

router = APIRouter(prefix="/api/v1", tags=["risk"])

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
RiskReader = Annotated[Principal, Depends(staff(*RISK_READ))]
RiskOfficer = Annotated[Principal, Depends(staff(*RISK_WRITE))]
HoursEditor = Annotated[Principal, Depends(staff(*MERCHANT_HOURS_WRITE))]
Operations = Annotated[Principal, Depends(staff(*TMS_WRITE))]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GradeIn(_In):
    grade: Grade
    reason: Reason
    """Why: kept with the grade and in the audit log."""


class GradeOut(BaseModel):
    grade: str
    score: int
    source: str
    """``approval``, ``monthly`` or ``manual``."""
    period: str | None
    previous_grade: str | None
    graded_by: str
    graded_at: dt.datetime
    factors: dict[str, Any]
    """Each factor's points and the values behind them, and any floor that raised it."""


class ControlsOut(BaseModel):
    limit_percent: int
    settlement_hold_days: int
    review_months: int


class GradesOut(BaseModel):
    mid: str
    grade: str | None
    """The grade in force (None: not graded yet, treated as medium)."""
    controls: ControlsOut
    last_review_on: dt.date | None
    next_review_on: dt.date | None
    history: list[GradeOut]
    """Newest first."""


class ListCheckOut(BaseModel):
    subject_kind: str
    subject: str
    provider: str
    status: str
    """``pending`` (never counted as clear), ``clear`` or ``hit``."""
    detail: dict[str, Any]
    attempts: int
    requested_at: dt.datetime
    checked_at: dt.datetime | None
    next_attempt_at: dt.datetime | None


class BusinessHoursIn(_In):
    opening_time: Annotated[str | None, Field(max_length=8)] = None
    closing_time: Annotated[str | None, Field(max_length=8)] = None
    """``HH:MM`` Beijing time; both, or neither to clear them. Earlier than the opening
    time: open past midnight."""
    reason: Reason


class BusinessHoursOut(BaseModel):
    mid: str
    opening_time: str | None
    closing_time: str | None


class InstallLocationIn(_In):
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    reason: Annotated[str, Field(min_length=1, max_length=limits.RISK_INSTALL_LOCATION_REASON_MAX)]


class InstallLocationOut(BaseModel):
    tid: str
    install_latitude: str | None
    install_longitude: str | None


def _grade_out(row: MerchantRiskGrade) -> GradeOut:
    return GradeOut.model_validate(row, from_attributes=True)


def _grades_out(uow: UnitOfWork, mid: str) -> GradesOut:
    merchant = get_merchant(uow.session, mid)
    card = grading.grade_card(uow.session, merchant, history_max=limits.RISK_GRADE_HISTORY_MAX)
    return GradesOut(
        mid=merchant.mid,
        grade=card.grade,
        controls=ControlsOut(
            limit_percent=card.controls.limit_percent,
            settlement_hold_days=card.controls.settlement_hold_days,
            review_months=card.controls.review_months,
        ),
        last_review_on=card.last_review_on,
        next_review_on=card.next_review_on,
        history=[_grade_out(row) for row in card.history],
    )


@router.get("/risk/merchants/{mid}/grades")
def merchant_grades(mid: str, uow: Read, principal: RiskReader) -> GradesOut:
    """The merchant's risk grade in force, what it carries (limit percent, settlement hold
    days, review interval, next review due) and every grading with its explanation."""
    return _grades_out(uow, mid)


@router.post("/risk/merchants/{mid}/grade")
def grade_merchant(mid: str, body: GradeIn, uow: Write, principal: RiskOfficer) -> GradesOut:
    """A risk officer sets the merchant's grade by hand, with a reason (audited). It holds
    for three months against monthly regrades that would lower it."""
    grading.set_grade(
        uow.session, mid, body.grade.value, body.reason, actor=principal.actor, now=utcnow()
    )
    out = _grades_out(uow, mid)
    uow.commit()
    return out


@router.get("/risk/merchants/{mid}/list-checks")
def merchant_list_checks(mid: str, uow: Read, principal: RiskReader) -> list[ListCheckOut]:
    """The merchant's external risk list checks (daily), newest first; ``pending`` ones
    were not answered and count as nothing."""
    merchant = get_merchant(uow.session, mid)
    rows: list[RiskListCheck] = list(
        risk_repository.list_checks_of(
            uow.session, "merchant", merchant.mid, limit=limits.PAGE_SIZE_MAX
        )
    )
    return [ListCheckOut.model_validate(row, from_attributes=True) for row in rows]


@router.put("/merchants/{mid}/business-hours", tags=["merchants"])
def business_hours(
    mid: str, body: BusinessHoursIn, uow: Write, principal: HoursEditor
) -> BusinessHoursOut:
    """Correct the merchant's declared business hours (operations or a risk officer;
    audited): the business-hours rule checks payments against them."""
    merchant = get_merchant(uow.session, mid)
    set_business_hours(
        uow.session,
        merchant,
        body.opening_time,
        body.closing_time,
        reason=body.reason,
        actor=principal.actor,
    )
    out = BusinessHoursOut(
        mid=merchant.mid, opening_time=merchant.opening_time, closing_time=merchant.closing_time
    )
    uow.commit()
    return out


@router.put("/terminals/{tid}/install-location", tags=["tms"])
def install_location(
    tid: str, body: InstallLocationIn, uow: Write, principal: Operations
) -> InstallLocationOut:
    """Register where the terminal is installed (after an approved move, say): TMS
    heartbeats farther away than the relocation rule allows raise an alert (audited)."""
    terminal = tms_service.get_terminal(uow.session, tid, for_update=True)
    relocation.set_install_location(
        uow.session,
        terminal,
        body.latitude,
        body.longitude,
        reason=body.reason,
        actor=principal.actor,
        now=utcnow(),
    )
    out = InstallLocationOut(
        tid=terminal.tid,
        install_latitude=terminal.install_latitude,
        install_longitude=terminal.install_longitude,
    )
    uow.commit()
    return out
