"""Risk control's limits and rules for programs (``poshub.risk.controls``).

Limits: what is in force (the defaults, a merchant's, a terminal's), and the maker-checker
change requests: a risk officer asks, another approves or rejects, the requester may
withdraw. Approving one's own request is 403. Rules: each rule's setting in force and its
versions, an edit (a new version; a wrong threshold is a 422 naming ``params.<name>`` and
the rule keeps running as it was), and a preview of a setting on the journal that saves
nothing. Risk officers write; auditors and administrators read. Amounts are in fen.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from poshub.core import limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.merchants.service import get_merchant
from poshub.risk import controls
from poshub.risk.models import ChangeStatus, RiskLimit, RiskLimitChange, RiskRuleVersion
from poshub.risk.schemas import LimitChangeIn, LimitScope, LimitValues, RuleEdit, RulePreviewIn
from poshub.staff.service import Principal
from poshub.web.api.fieldwork import body_errors
from poshub.web.deps import read_uow, staff, write_uow
from poshub.web.roles import RISK_READ, RISK_WRITE

router = APIRouter(prefix="/api/v1/risk", tags=["risk"])

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
Reader = Annotated[Principal, Depends(staff(*RISK_READ))]
Officer = Annotated[Principal, Depends(staff(*RISK_WRITE))]


# --- Bodies ----------------------------------------------------------------------------------


class LimitsOut(BaseModel):
    """One channel's limits at one level, in fen; null is "no limit here"."""

    per_transaction_fen: int | None
    per_day_fen: int | None
    per_month_fen: int | None
    per_card_per_day_fen: int | None


def _limits_out(values: LimitValues) -> LimitsOut:
    return LimitsOut(**controls.amounts(values))


class DefaultLimitsOut(BaseModel):
    channel: str
    limits: LimitsOut
    version: int
    """0: the code's default (no version approved yet)."""


class TerminalChannelOut(BaseModel):
    tid: str
    channel: str
    own: LimitsOut
    own_version: int
    in_force: LimitsOut


class ChannelLimitsOut(BaseModel):
    channel: str
    in_force: LimitsOut
    """What applies to the merchant: its own amounts, else the default scaled by its grade."""
    own: LimitsOut | None
    own_version: int | None
    default: LimitsOut
    terminal: LimitsOut | None = None
    """What applies to the terminal asked about (its own amounts under the merchant's)."""
    terminal_own_version: int | None = None


class MerchantLimitsOut(BaseModel):
    mid: str
    risk_grade: str | None
    grade_limit_percent: int
    """The default limits scale to this percentage for the merchant's grade."""
    channels: list[ChannelLimitsOut]
    terminals: list[TerminalChannelOut]
    """The merchant's terminals with limits of their own."""
    tid: str | None = None


class LimitVersionOut(LimitsOut):
    scope: str
    subject: str
    channel: str
    version: int
    change_id: int | None
    created_at: dt.datetime


class LimitChangeOut(LimitsOut):
    id: int
    scope: str
    subject: str
    channel: str
    status: str
    reason: str
    requested_by: str
    requested_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_note: str | None


class LimitDecisionIn(BaseModel):
    """The checker's note: optional when approving, required when rejecting."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(max_length=500)] = ""


class LimitApprovalOut(BaseModel):
    change: LimitChangeOut
    version: LimitVersionOut


class RuleVersionOut(BaseModel):
    version: int
    enabled: bool
    action: str
    params: dict[str, Any]
    reason: str
    created_by: str
    created_at: dt.datetime


class RuleOut(BaseModel):
    code: str
    version: int
    """0: the code's default runs (nothing saved, or the saved version is unreadable)."""
    enabled: bool
    action: str
    params: dict[str, Any]
    actions: list[str]
    """The actions this rule may be set to."""
    severity: str
    in_gateway: bool
    defaults: dict[str, Any]
    saved: RuleVersionOut | None
    unreadable: bool


class RuleDetailOut(RuleOut):
    history: list[RuleVersionOut]


class RulePreviewOut(BaseModel):
    code: str
    days: int
    alerts: int
    """Alerts the setting would have raised over the last ``days`` days."""
    current_alerts: int
    """…and those the setting in force would have raised."""
    transactions: int
    """Distinct transactions the setting's alerts name."""
    merchants: int
    rows: int
    """Journal rows replayed."""
    complete: bool
    """False when the replay stopped at ``limits.RISK_PREVIEW_ROWS_MAX`` rows."""


def _version_out(row: RiskLimit) -> LimitVersionOut:
    return LimitVersionOut(
        **controls.amounts(controls.values_of(row)),
        scope=row.scope,
        subject=row.subject,
        channel=row.channel,
        version=row.version,
        change_id=row.change_id,
        created_at=row.created_at,
    )


def _change_out(row: RiskLimitChange) -> LimitChangeOut:
    return LimitChangeOut(
        **controls.amounts(controls.values_of(row)),
        id=row.id,
        scope=row.scope,
        subject=row.subject,
        channel=row.channel,
        status=row.status,
        reason=row.reason,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_note=row.decision_note,
    )


def _merchant_out(view: controls.MerchantLimits, tid: str | None = None) -> MerchantLimitsOut:
    return MerchantLimitsOut(
        mid=view.mid,
        tid=tid,
        risk_grade=view.grade,
        grade_limit_percent=view.limit_percent,
        channels=[
            ChannelLimitsOut(
                channel=c.channel.value,
                in_force=_limits_out(c.merchant),
                own=_limits_out(controls.values_of(c.own)) if c.own else None,
                own_version=c.own.version if c.own else None,
                default=_limits_out(c.default.values),
                terminal=_limits_out(c.terminal) if c.terminal else None,
                terminal_own_version=c.terminal_own.version if c.terminal_own else None,
            )
            for c in view.channels
        ],
        terminals=[
            TerminalChannelOut(
                tid=t.tid,
                channel=t.channel.value,
                own=_limits_out(controls.values_of(t.version)),
                own_version=t.version.version,
                in_force=_limits_out(t.values),
            )
            for t in view.terminals
        ],
    )


def _version_row_out(row: RiskRuleVersion) -> RuleVersionOut:
    return RuleVersionOut(
        version=row.version,
        enabled=row.enabled,
        action=row.action,
        params=row.params,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _rule_out(state: controls.RuleState) -> dict[str, Any]:
    definition, setting = state.definition, state.setting
    return {
        "code": definition.code.value,
        "version": setting.version,
        "enabled": setting.enabled,
        "action": setting.action.value,
        "params": setting.params.model_dump(mode="json"),
        "actions": sorted(a.value for a in definition.actions),
        "severity": definition.severity.value,
        "in_gateway": definition.in_gateway,
        "defaults": definition.params().model_dump(mode="json"),
        "saved": _version_row_out(state.saved) if state.saved else None,
        "unreadable": state.unreadable,
    }


# --- Limits ----------------------------------------------------------------------------------


@router.get("/limits/defaults")
def default_limits(uow: Read, principal: Reader) -> list[DefaultLimitsOut]:
    """The default limits in force per channel (before a merchant's grade scales them)."""
    return [
        DefaultLimitsOut(
            channel=channel.value,
            limits=_limits_out(level.values),
            version=level.version.version if level.version else 0,
        )
        for channel, level in controls.default_limits(uow.session).items()
    ]


@router.get("/limits/merchants/{mid}")
def merchant_limits(mid: str, uow: Read, principal: Reader) -> MerchantLimitsOut:
    """A merchant's limits in force per channel: its own amounts where a risk officer set
    them, else the default scaled by its risk grade; and its terminals' own limits."""
    merchant = get_merchant(uow.session, mid)
    return _merchant_out(controls.merchant_limits_view(uow.session, merchant))


@router.get("/limits/terminals/{tid}")
def terminal_limits(tid: str, uow: Read, principal: Reader) -> MerchantLimitsOut:
    """A terminal's limits in force per channel (``terminal``), with its merchant's: a
    terminal's own limits only lower its merchant's, whose totals still apply."""
    terminal, view = controls.terminal_limits_view(uow.session, tid)
    return _merchant_out(view, terminal.tid)


@router.get("/limits/versions")
def limit_versions(
    uow: Read,
    principal: Reader,
    scope: LimitScope | None = None,
    subject: Annotated[str | None, Query(max_length=15)] = None,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
) -> list[LimitVersionOut]:
    """Approved versions of limits, newest first (of one level when asked)."""
    rows = controls.limit_history(uow.session, scope=scope, subject=subject, limit=limit)
    return [_version_out(row) for row in rows]


@router.get("/limits/changes")
def limit_changes(
    uow: Read,
    principal: Reader,
    status: ChangeStatus | None = None,
    scope: LimitScope | None = None,
    subject: Annotated[str | None, Query(max_length=15)] = None,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
) -> list[LimitChangeOut]:
    """Limit change requests, newest first (``status=pending``: those waiting for a
    decision)."""
    rows = controls.limit_changes(
        uow.session, status=status, scope=scope, subject=subject, limit=limit
    )
    return [_change_out(row) for row in rows]


@router.post("/limits/changes", status_code=201)
def request_limit_change(body: LimitChangeIn, uow: Write, principal: Officer) -> LimitChangeOut:
    """Ask for a change of one channel's limits at one level (default, a MID or a TID);
    another risk officer decides. 422 names each wrong field (a daily limit below the
    per-transaction one, an unknown MID or TID, a terminal above its merchant); 409 when a
    request for the same limits is already waiting."""
    change = controls.request_limit_change(uow.session, principal, body, now=utcnow())
    out = _change_out(change)
    uow.commit()
    return out


@router.post("/limits/changes/{request_id}/approve")
def approve_limit_change(
    request_id: int, body: LimitDecisionIn, uow: Write, principal: Officer
) -> LimitApprovalOut:
    """Approve a request: its amounts become the next version of the level's limits. Only
    a risk officer other than the requester (403 otherwise)."""
    version = controls.approve_limit_change(
        uow.session, principal, request_id, body.note, now=utcnow()
    )
    change = controls.limit_change(uow.session, request_id)
    out = LimitApprovalOut(change=_change_out(change), version=_version_out(version))
    uow.commit()
    return out


@router.post("/limits/changes/{request_id}/reject")
def reject_limit_change(
    request_id: int, body: LimitDecisionIn, uow: Write, principal: Officer
) -> LimitChangeOut:
    """Reject a request, with a note for the requester; the limits stay as they are. Only a
    risk officer other than the requester (403 otherwise)."""
    change = controls.reject_limit_change(
        uow.session, principal, request_id, body.note, now=utcnow()
    )
    out = _change_out(change)
    uow.commit()
    return out


@router.post("/limits/changes/{request_id}/withdraw")
def withdraw_limit_change(request_id: int, uow: Write, principal: Officer) -> LimitChangeOut:
    """Withdraw one's own request before it is decided (403 for anyone else's)."""
    change = controls.withdraw_limit_change(uow.session, principal, request_id, now=utcnow())
    out = _change_out(change)
    uow.commit()
    return out


# --- Rules -----------------------------------------------------------------------------------


@router.get("/rules")
def rules(uow: Read, principal: Reader) -> list[RuleOut]:
    """Every rule with the setting it runs with: on or off, action, thresholds, version."""
    return [RuleOut(**_rule_out(state)) for state in controls.rules_in_force(uow.session)]


@router.get("/rules/{code}")
def rule(code: str, uow: Read, principal: Reader) -> RuleDetailOut:
    """One rule's setting in force and its saved versions, newest first."""
    state = controls.rule_in_force(uow.session, code)
    history = controls.rule_history(uow.session, code)
    return RuleDetailOut(**_rule_out(state), history=[_version_row_out(r) for r in history])


@router.put("/rules/{code}")
def edit_rule(code: str, body: RuleEdit, uow: Write, principal: Officer) -> RuleDetailOut:
    """Save a new version of a rule (thresholds not given keep their values). A wrong
    threshold, an unknown one or an action the rule cannot take is a 422 naming it
    (``params.max_count``, ``action``) and the rule keeps running as it was; 409 when
    nothing changes."""
    try:
        controls.edit_rule(uow.session, principal, code, body, now=utcnow())
    except ValidationError as invalid:
        raise body_errors(invalid) from None
    state = controls.rule_in_force(uow.session, code)
    history = controls.rule_history(uow.session, code)
    out = RuleDetailOut(**_rule_out(state), history=[_version_row_out(r) for r in history])
    uow.commit()
    return out


@router.post("/rules/{code}/preview")
def preview_rule(code: str, body: RulePreviewIn, uow: Read, principal: Officer) -> RulePreviewOut:
    """How many alerts a setting would have raised over the last ``days`` days of the
    journal, beside the setting in force. Validated like an edit; nothing is saved."""
    try:
        result = controls.preview_setting(uow.session, code, body, now=utcnow())
    except ValidationError as invalid:
        raise body_errors(invalid) from None
    return RulePreviewOut(
        code=code,
        days=result.days,
        alerts=result.alerts,
        current_alerts=result.current_alerts,
        transactions=result.transactions,
        merchants=result.merchants,
        rows=result.rows,
        complete=result.complete,
    )
