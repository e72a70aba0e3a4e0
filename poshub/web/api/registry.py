"""Catalogue, merchants, blacklist and audit APIs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from poshub.catalog import repository as catalog_repository
from poshub.catalog.schemas import FeePlanOut, TerminalModelOut
from poshub.core import audit, limits
from poshub.core.clock import business_date
from poshub.core.db import UnitOfWork, utcnow
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant
from poshub.merchants.schemas import MerchantOut
from poshub.merchants.service import get_merchant
from poshub.onboarding import repository, service
from poshub.onboarding.schemas import BlacklistIn, BlacklistOut
from poshub.staff.service import Principal
from poshub.web.deps import PUBLIC, app_state, read_uow, staff, write_uow
from poshub.web.roles import AUDIT_READ, BLACKLIST_READ, BLACKLIST_WRITE, MERCHANT_READ

router = APIRouter(prefix="/api/v1")

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
Limit = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.get("/catalog/terminal-models", tags=["catalog"], dependencies=[PUBLIC])
def terminal_models(uow: Read) -> list[TerminalModelOut]:
    return [
        TerminalModelOut.model_validate(m) for m in catalog_repository.terminal_models(uow.session)
    ]


@router.get("/catalog/fee-plans", tags=["catalog"], dependencies=[PUBLIC])
def fee_plans(uow: Read, on: dt.date | None = None) -> list[FeePlanOut]:
    """The version of each plan in force on ``on`` (default: today, Asia/Shanghai)."""
    day = on or business_date(utcnow())
    return [
        FeePlanOut.model_validate(p)
        for p in catalog_repository.fee_plans_in_force(uow.session, day)
    ]


def merchant_out(merchant: Merchant) -> MerchantOut:
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


@router.get("/merchants", tags=["merchants"])
def merchants(
    uow: Read,
    principal: Annotated[Principal, Depends(staff(*MERCHANT_READ))],
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    offset: Offset = 0,
) -> list[MerchantOut]:
    return [merchant_out(m) for m in merchant_repository.newest(uow.session, limit, offset)]


@router.get("/merchants/{mid}", tags=["merchants"])
def merchant(
    mid: str, uow: Read, principal: Annotated[Principal, Depends(staff(*MERCHANT_READ))]
) -> MerchantOut:
    return merchant_out(get_merchant(uow.session, mid))


def blacklist_out(row: object) -> BlacklistOut:
    return BlacklistOut.model_validate(row, from_attributes=True)


@router.get("/blacklist", tags=["blacklist"])
def blacklist(
    uow: Read,
    principal: Annotated[Principal, Depends(staff(*BLACKLIST_READ))],
    include_removed: bool = False,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    offset: Offset = 0,
) -> list[BlacklistOut]:
    rows = repository.blacklist(
        uow.session, include_removed=include_removed, limit=limit, offset=offset
    )
    return [blacklist_out(r) for r in rows]


@router.post("/blacklist", tags=["blacklist"], status_code=201)
def add_to_blacklist(
    body: BlacklistIn,
    request: Request,
    uow: Write,
    principal: Annotated[Principal, Depends(staff(*BLACKLIST_WRITE))],
) -> BlacklistOut:
    """Add an ID number, credit code, account number or mobile; only a token and a masked
    form are stored."""
    row = service.add_blacklist_entry(
        uow.session, app_state(request).vault, body, principal, now=utcnow()
    )
    out = blacklist_out(row)
    uow.commit()
    return out


@router.delete("/blacklist/{entry_id}", tags=["blacklist"])
def remove_from_blacklist(
    entry_id: int, uow: Write, principal: Annotated[Principal, Depends(staff(*BLACKLIST_WRITE))]
) -> BlacklistOut:
    row = service.remove_blacklist_entry(uow.session, entry_id, principal, now=utcnow())
    out = blacklist_out(row)
    uow.commit()
    return out


class AuditEntryOut(BaseModel):
    seq: int
    at: dt.datetime
    actor_kind: str
    actor_id: str
    action: str
    entity_type: str
    entity_id: str
    details: dict[str, object]
    hash: str


class AuditVerifyOut(BaseModel):
    rows_checked: int
    intact: bool
    first_bad_seq: int | None
    reason: str | None


@router.get("/audit", tags=["audit"])
def audit_log(
    uow: Read,
    principal: Annotated[Principal, Depends(staff(*AUDIT_READ))],
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    before_seq: Annotated[int | None, Query(ge=1)] = None,
) -> list[AuditEntryOut]:
    rows = audit.recent(uow.session, entity_id=entity_id, limit=limit, before_seq=before_seq)
    return [AuditEntryOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/audit/verify", tags=["audit"])
def audit_verify(
    uow: Read, principal: Annotated[Principal, Depends(staff(*AUDIT_READ))]
) -> AuditVerifyOut:
    checked, problem = audit.verify(uow.session)
    return AuditVerifyOut(
        rows_checked=checked,
        intact=problem is None,
        first_bad_seq=problem.seq if problem else None,
        reason=problem.reason if problem else None,
    )
