"""Catalogue, merchants, blacklist and audit APIs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from poshub.catalog import repository as catalog_repository
from poshub.catalog.schemas import FeePlanOut, TerminalModelOut
from poshub.core import anchors, audit, limits
from poshub.core.clock import business_date
from poshub.core.db import UnitOfWork, utcnow
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant
from poshub.merchants.schemas import MerchantCloseIn, MerchantOut
from poshub.merchants.service import get_merchant
from poshub.onboarding import consent, repository, service
from poshub.onboarding.schemas import BlacklistIn, BlacklistOut
from poshub.privacy import retention
from poshub.privacy import service as privacy_service
from poshub.staff.service import Principal
from poshub.web.deps import PUBLIC, app_state, read_uow, request_locale, staff, write_uow
from poshub.web.roles import (
    AUDIT_READ,
    BLACKLIST_READ,
    BLACKLIST_WRITE,
    MERCHANT_CLOSE,
    MERCHANT_READ,
)

router = APIRouter(prefix="/api/v1")

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
Limit = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.get("/catalog/terminal-models", tags=["catalog"], dependencies=[PUBLIC])
def terminal_models(uow: Read) -> list[TerminalModelOut]:
    """The terminal models on offer, with their prices and kinds."""
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


class PrivacyNoticeOut(BaseModel):
    version: str
    """Give this as ``consents.notice_version`` with the consents."""
    text: str
    """The notice in the requested language (zh-CN or English)."""


@router.get("/privacy-notice", tags=["applications"], dependencies=[PUBLIC])
def privacy_notice(request: Request) -> PrivacyNoticeOut:
    """The current privacy notice an applicant agrees to (docs/privacy.md)."""
    return PrivacyNoticeOut(
        version=consent.PRIVACY_NOTICE_VERSION,
        text=consent.notice_text(request_locale(request)),
    )


def merchant_out(merchant: Merchant, retention_years: int | None = None) -> MerchantOut:
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
        terminated_on=merchant.terminated_on,
        retained_until=retention.retained_until(merchant.terminated_on, retention_years)
        if merchant.terminated_on and retention_years
        else None,
        purged_at=merchant.purged_at,
    )


@router.get("/merchants", tags=["merchants"])
def merchants(
    uow: Read,
    principal: Annotated[Principal, Depends(staff(*MERCHANT_READ))],
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    offset: Offset = 0,
) -> list[MerchantOut]:
    """Search merchants by status, name or MID."""
    return [merchant_out(m) for m in merchant_repository.newest(uow.session, limit, offset)]


@router.get("/merchants/{mid}", tags=["merchants"])
def merchant(
    mid: str,
    request: Request,
    uow: Read,
    principal: Annotated[Principal, Depends(staff(*MERCHANT_READ))],
) -> MerchantOut:
    """One merchant: business, settlement account (masked), status."""
    return merchant_out(get_merchant(uow.session, mid), app_state(request).settings.retention_years)


@router.post("/merchants/{mid}/close", tags=["merchants"])
def close_merchant(
    mid: str,
    body: MerchantCloseIn,
    request: Request,
    uow: Write,
    principal: Annotated[Principal, Depends(staff(*MERCHANT_CLOSE))],
) -> MerchantOut:
    """End the merchant relationship on ``terminated_on``. Every terminal must have been
    recalled (409 ``terminals_not_recalled`` names those still in service). The personal
    data is purged once the retention period after that date has passed (docs/privacy.md)."""
    years = app_state(request).settings.retention_years
    found = get_merchant(uow.session, mid)
    privacy_service.close_merchant(
        uow.session,
        found,
        terminated_on=body.terminated_on,
        reason=body.reason,
        actor=principal.actor,
        retention_years=years,
        now=utcnow(),
    )
    out = merchant_out(found, years)
    uow.commit()
    return out


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
    """The blacklist: tokens and masked values only."""
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
    """Remove a blacklist entry (risk officer; audited)."""
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
    """Read the audit log, newest first, optionally for one entity."""
    rows = audit.recent(uow.session, entity_id=entity_id, limit=limit, before_seq=before_seq)
    return [AuditEntryOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/audit/verify", tags=["audit"])
def audit_verify(
    request: Request, uow: Read, principal: Annotated[Principal, Depends(staff(*AUDIT_READ))]
) -> AuditVerifyOut:
    """The same check as ``poshub audit verify``: every row's MAC under the KEK-derived
    audit key, the links, the head, and every anchor kept outside the database."""
    state = app_state(request)
    checked, problem = anchors.verify(
        uow.session,
        state.vault.audit_key,
        state.vault.audit_anchor_key,
        state.settings.effective_audit_anchor_dir,
    )
    return AuditVerifyOut(
        rows_checked=checked,
        intact=problem is None,
        first_bad_seq=problem.seq if problem else None,
        reason=problem.reason if problem else None,
    )
