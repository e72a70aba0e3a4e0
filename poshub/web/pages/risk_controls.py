"""Risk rules and limits in the back office (``poshub.risk.controls``; the API in
``web/api/risk_controls.py`` does the same for programs).

``/admin/risk/rules``: every rule with its switch, action, thresholds, version and who
saved it when; for risk officers an edit form per rule with **Preview** (how many alerts
the setting would have raised over the last days of the journal, beside the setting in
force) and **Save** (a new version). A refused edit comes back with each error beside its
field and what was typed; the rule keeps running as it was.

``/admin/risk/limits``: the default limits per channel, the change requests waiting with
Approve and Reject for a risk officer other than the requester (Withdraw for the
requester), a form to ask for a change of the default, a merchant's (MID) or a
terminal's (TID) limits, the decided requests and the versions. Amounts are typed and
shown in CNY; the services work in fen.

Auditors and administrators read both pages; the forms show to risk officers only. Each
action runs one service call and commits, then redirects; a refusal shows the page again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from poshub.core import limits
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import N_, PosHubError, ValidationFailed
from poshub.core.i18n import Translator
from poshub.core.money import yuan_to_fen
from poshub.risk import controls
from poshub.risk import repository as risk_repository
from poshub.risk.models import ChangeStatus, Channel, RiskLimitChange, RiskRuleVersion
from poshub.risk.schemas import (
    DEFAULT_SUBJECT,
    GRADE_CONTROLS,
    LimitChangeIn,
    LimitScope,
    LimitValues,
    RuleEdit,
    RulePreviewIn,
)
from poshub.staff.service import Principal
from poshub.web.deps import read_uow, staff, translator, write_uow
from poshub.web.errors import refusal, refusal_by_field
from poshub.web.labels import RULE_PARAM_LABELS
from poshub.web.roles import RISK_READ, RISK_WRITE
from poshub.web.templating import render

router = APIRouter(prefix="/admin/risk", include_in_schema=False)

Read = Annotated[UnitOfWork, Depends(read_uow)]
Write = Annotated[UnitOfWork, Depends(write_uow)]
T = Annotated[Translator, Depends(translator)]
Reader = Annotated[Principal, Depends(staff(*RISK_READ))]
Officer = Annotated[Principal, Depends(staff(*RISK_WRITE))]

RULE_HISTORY_SHOWN = 5
"""Versions listed under each rule (the API has them all)."""
DECIDED_SHOWN = 20
"""Decided change requests listed on the limits page."""
VERSIONS_SHOWN = 30
"""Limit versions listed on the limits page."""
AMOUNT_INVALID = N_("An amount in CNY, with at most two decimals (e.g. 10000 or 9999.99).")
FIELD_REQUIRED = N_("This field is required.")


async def _form(request: Request) -> dict[str, str]:
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


# --- Rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamField:
    """One threshold as the edit form shows it."""

    name: str
    label: str
    kind: str
    """``int``, ``float``, ``bool``, ``clock`` (HH:MM) or ``yuan`` (a ``_fen`` amount)."""
    value: str
    """What the input holds: the setting in force, or what was typed."""
    in_force: str
    """The value in force, as read (CNY for amounts)."""
    default: str


@dataclass
class RuleForm:
    """What a rule's edit form holds after a refusal or a preview (else the setting in force)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    preview: Any = None
    """``poshub.risk.preview.RulePreview`` of what was typed, after Preview."""


@dataclass(frozen=True)
class VersionRow:
    """A saved version of a rule, its thresholds as (label msgid, value as read)."""

    version: RiskRuleVersion
    params: list[tuple[str, str]]


@dataclass(frozen=True)
class RuleRow:
    state: controls.RuleState
    fields: list[ParamField]
    history: list[VersionRow]
    saved_by: str | None
    form: RuleForm
    enabled: bool
    action: str
    reason: str
    days: str


def param_label(code: str, name: str) -> str:
    """The msgid naming a threshold (``rule.name`` where two rules mean different things)."""
    return RULE_PARAM_LABELS.get(f"{code}.{name}") or RULE_PARAM_LABELS.get(name) or name


def _kind(name: str, annotation: Any) -> str:
    if annotation is bool:
        return "bool"
    if name.endswith("_fen"):
        return "yuan"
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    return "clock"


def _shown(kind: str, value: Any) -> str:
    if kind == "yuan":
        yuan, fen = divmod(int(value), 100)
        return f"{yuan}.{fen:02d}" if fen else str(yuan)
    if kind == "bool":
        return "1" if value else ""
    return str(value)


def _version_row(state: controls.RuleState, version: RiskRuleVersion) -> VersionRow:
    code = state.definition.code.value
    model_fields = state.definition.params.model_fields
    params = []
    for name, value in version.params.items():
        info = model_fields.get(name)
        kind = _kind(name, info.annotation) if info is not None else "text"
        if kind == "bool":
            shown = N_("Yes") if value else N_("No")
        else:
            shown = _shown(kind, value) if kind != "text" else str(value)
        params.append((param_label(code, name), shown))
    return VersionRow(version, params)


def _fields(state: controls.RuleState, form: RuleForm) -> list[ParamField]:
    code = state.definition.code.value
    defaults = state.definition.params()
    found = []
    for name, info in state.definition.params.model_fields.items():
        kind = _kind(name, info.annotation)
        in_force = _shown(kind, getattr(state.setting.params, name))
        found.append(
            ParamField(
                name=name,
                label=param_label(code, name),
                kind=kind,
                value=form.values.get(name, in_force),
                in_force=in_force,
                default=_shown(kind, getattr(defaults, name)),
            )
        )
    return found


def _rule_rows(uow: UnitOfWork, forms: dict[str, RuleForm]) -> tuple[list[RuleRow], dict[str, str]]:
    session = uow.session
    states = controls.rules_in_force(session)
    rows = []
    histories = {
        s.definition.code.value: [
            _version_row(s, v)
            for v in controls.rule_history(
                session, s.definition.code.value, limit=RULE_HISTORY_SHOWN
            )
        ]
        for s in states
    }
    people = {v.version.created_by for versions in histories.values() for v in versions}
    names = risk_repository.display_names(session, people)
    for state in states:
        code = state.definition.code.value
        form = forms.get(code, RuleForm())
        rows.append(
            RuleRow(
                state=state,
                fields=_fields(state, form),
                history=histories[code],
                saved_by=names.get(state.saved.created_by, state.saved.created_by)
                if state.saved
                else None,
                form=form,
                enabled=form.values["enabled"] == "1"
                if "enabled" in form.values
                else state.setting.enabled,
                action=form.values.get("action", state.setting.action.value),
                reason=form.values.get("reason", ""),
                days=form.values.get("days", str(limits.RISK_PREVIEW_DAYS_DEFAULT)),
            )
        )
    return rows, names


def _rules_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    *,
    forms: dict[str, RuleForm] | None = None,
    status_code: int = 200,
) -> Response:
    rows, names = _rule_rows(uow, forms or {})
    return render(
        request,
        "admin/risk_rules.html",
        {
            "rules": rows,
            "names": names,
            "can_edit": principal.has_any(RISK_WRITE),
            "days_max": limits.RISK_PREVIEW_DAYS_MAX,
        },
        status_code,
    )


@router.get("/rules")
def rules_page(request: Request, uow: Read, principal: Reader) -> Response:
    return _rules_page(request, uow, principal)


def _typed_setting(
    state: controls.RuleState, form: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """A rule form's thresholds as the services take them (amounts from CNY to fen), what
    was typed (to show it again) and the amounts that are not amounts (message ids)."""
    params: dict[str, Any] = {}
    typed: dict[str, str] = {}
    problems: dict[str, str] = {}
    for name, info in state.definition.params.model_fields.items():
        kind = _kind(name, info.annotation)
        raw = form.get(f"params.{name}", "").strip()
        if kind == "bool":
            params[name] = bool(raw)
            typed[name] = "1" if raw else ""
            continue
        typed[name] = raw
        if not raw:
            problems[f"params.{name}"] = FIELD_REQUIRED
        elif kind == "yuan":
            try:
                params[name] = yuan_to_fen(raw)
            except ValueError:
                problems[f"params.{name}"] = AMOUNT_INVALID
        else:
            params[name] = raw
    typed["enabled"] = "1" if form.get("enabled") else ""
    typed["action"] = form.get("action", "")
    typed["reason"] = form.get("reason", "")
    typed["days"] = form.get("days", "")
    return params, typed, problems


def _rule_action(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    t: Translator,
    code: str,
    form: dict[str, str],
    *,
    preview: bool,
) -> Response:
    state = controls.rule_in_force(uow.session, code)  # 404 for an unknown code
    params, typed, problems = _typed_setting(state, form)
    errors = {k: t(v) for k, v in problems.items()}
    enabled, action = bool(typed["enabled"]), typed["action"]
    body: dict[str, Any] = {"enabled": enabled, "action": action, "params": params}
    if preview:
        body["days"] = typed["days"] or limits.RISK_PREVIEW_DAYS_DEFAULT
    else:
        body["reason"] = typed["reason"].strip()
    # Every wrong field at once: the form's own (reason, days), then the rule's setting.
    checks: list[Callable[[], object]] = [
        lambda: (RulePreviewIn if preview else RuleEdit).model_validate(body),
        lambda: controls.validate_setting(
            state.definition.code, enabled, action, params, current=state.setting
        ),
    ]
    for check in checks:
        try:
            check()
        except ValidationError as exc:
            errors = {**refusal_by_field(exc, t)[0], **errors}
    result = None
    status_code = 422
    if not errors:
        try:
            if preview:
                result = controls.preview_setting(
                    uow.session, code, RulePreviewIn.model_validate(body), now=utcnow()
                )
            else:
                controls.edit_rule(
                    uow.session, principal, code, RuleEdit.model_validate(body), now=utcnow()
                )
        except (PosHubError, ValidationError) as exc:
            uow.rollback()
            errors, status_code = refusal_by_field(exc, t)
    if errors:
        if preview and request.headers.get("HX-Request"):
            # htmx swaps only successful answers: the refused preview is shown in place too.
            status_code = 200
        return _rules_page(
            request, uow, principal, forms={code: RuleForm(typed, errors)}, status_code=status_code
        )
    if preview:
        return _rules_page(request, uow, principal, forms={code: RuleForm(typed, {}, result)})
    uow.commit()
    return RedirectResponse(f"/admin/risk/rules#rule-{code}", status_code=303)


@router.post("/rules/{code}")
async def save_rule(code: str, request: Request, uow: Write, principal: Officer, t: T) -> Response:
    """A new version of the rule from its edit form; a refusal shows each error beside its
    field and changes nothing."""
    form = await _form(request)
    return await run_in_threadpool(
        _rule_action, request, uow, principal, t, code, form, preview=False
    )


@router.post("/rules/{code}/preview")
async def preview_rule(
    code: str, request: Request, uow: Read, principal: Officer, t: T
) -> Response:
    """The edit form's setting tried on the journal: the page again with the count of
    alerts beside the rule's form (htmx swaps only that rule). Saves nothing."""
    form = await _form(request)
    return await run_in_threadpool(
        _rule_action, request, uow, principal, t, code, form, preview=True
    )


# --- Limits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeRow:
    change: RiskLimitChange
    requested_by: str
    decided_by: str | None
    in_force: LimitValues | None
    """The level's own amounts in force now (the default's include the code's default)."""
    mine: bool
    may_decide: bool


def _change_rows(
    uow: UnitOfWork, changes: list[RiskLimitChange], principal: Principal, names: dict[str, str]
) -> list[ChangeRow]:
    officer = principal.has_any(RISK_WRITE)
    rows = []
    for change in changes:
        pending = change.status == ChangeStatus.PENDING
        mine = change.requested_by == principal.username
        rows.append(
            ChangeRow(
                change=change,
                requested_by=names.get(change.requested_by, change.requested_by),
                decided_by=names.get(change.decided_by, change.decided_by)
                if change.decided_by
                else None,
                in_force=controls.level_in_force(
                    uow.session, LimitScope(change.scope), change.subject, Channel(change.channel)
                )
                if pending
                else None,
                mine=mine,
                may_decide=officer and pending and not mine,
            )
        )
    return rows


REQUEST_FORM_FIELDS = (
    "scope",
    "subject",
    "channel",
    "per_transaction_fen",
    "per_day_fen",
    "per_month_fen",
    "per_card_per_day_fen",
    "reason",
)


def _limits_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    *,
    form: dict[str, str] | None = None,
    form_errors: dict[str, str] | None = None,
    errors: list[str] | None = None,
    decision_errors: dict[int, str] | None = None,
    status_code: int = 200,
) -> Response:
    session = uow.session
    pending = list(controls.limit_changes(session, status=ChangeStatus.PENDING, limit=100))
    decided = [
        c
        for c in controls.limit_changes(session, limit=DECIDED_SHOWN + len(pending))
        if c.status != ChangeStatus.PENDING
    ][:DECIDED_SHOWN]
    versions = list(controls.limit_history(session, limit=VERSIONS_SHOWN))
    people = {c.requested_by for c in pending + decided} | {
        c.decided_by for c in decided if c.decided_by
    }
    names = risk_repository.display_names(session, people)
    defaults = controls.default_limits(session)
    query = request.query_params
    prefill = {
        "scope": query.get("scope", LimitScope.MERCHANT.value)[:12],
        "subject": query.get("subject", "")[:15],
        "channel": query.get("channel", Channel.QR.value)[:8],
    }
    return render(
        request,
        "admin/risk_limits.html",
        {
            "defaults": defaults,
            "pending": _change_rows(uow, pending, principal, names),
            "decided": _change_rows(uow, decided, principal, names),
            "versions": versions,
            "channels": list(Channel),
            "scopes": list(LimitScope),
            "amount_fields": controls.AMOUNT_FIELDS,
            "can_request": principal.has_any(RISK_WRITE),
            "form": {**prefill, **(form or {})},
            "form_errors": form_errors or {},
            "errors": errors or [],
            "decision_errors": decision_errors or {},
            "grade_percents": {
                grade.value: c.limit_percent
                for grade, c in GRADE_CONTROLS.items()
                if c.limit_percent != 100
            },
        },
        status_code,
    )


@router.get("/limits")
def limits_page(request: Request, uow: Read, principal: Reader) -> Response:
    return _limits_page(request, uow, principal)


def _amount(raw: str, name: str, problems: dict[str, str]) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return yuan_to_fen(raw)
    except ValueError:
        problems[name] = AMOUNT_INVALID
        return None


@router.post("/limits/changes")
def request_limit_change(
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    scope: Annotated[str, Form(max_length=12)] = "",
    subject: Annotated[str, Form(max_length=32)] = "",
    channel: Annotated[str, Form(max_length=8)] = "",
    per_transaction_fen: Annotated[str, Form(max_length=20)] = "",
    per_day_fen: Annotated[str, Form(max_length=20)] = "",
    per_month_fen: Annotated[str, Form(max_length=20)] = "",
    per_card_per_day_fen: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=600)] = "",
) -> Response:
    """The maker's step: a change of one channel's limits at one level, in CNY; another
    risk officer decides it on this page."""
    typed = {
        "scope": scope,
        "subject": subject.strip(),
        "channel": channel,
        "per_transaction_fen": per_transaction_fen.strip(),
        "per_day_fen": per_day_fen.strip(),
        "per_month_fen": per_month_fen.strip(),
        "per_card_per_day_fen": per_card_per_day_fen.strip(),
        "reason": reason.strip(),
    }
    problems: dict[str, str] = {}
    data: dict[str, Any] = {
        "scope": scope,
        "subject": typed["subject"] or DEFAULT_SUBJECT,
        "channel": channel,
        "reason": typed["reason"],
    }
    if scope == LimitScope.DEFAULT:
        data["subject"] = DEFAULT_SUBJECT
    for name in controls.AMOUNT_FIELDS:
        data[name] = _amount(typed[name], name, problems)
    errors = {k: t(v) for k, v in problems.items()}
    status_code = 422
    change = None
    try:
        body = LimitChangeIn.model_validate(data)
        if errors:  # an amount that is none: still name the rules the others break
            raise ValidationFailed(body.problems())
        change = controls.request_limit_change(uow.session, principal, body, now=utcnow())
    except (PosHubError, ValidationError) as exc:
        uow.rollback()
        found, status_code = refusal_by_field(exc, t)
        errors = {**found, **errors}
    if errors or change is None:
        return _limits_page(
            request, uow, principal, form=typed, form_errors=errors, status_code=status_code
        )
    uow.commit()
    return RedirectResponse(f"/admin/risk/limits#change-{change.id}", status_code=303)


def _decide(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    t: Translator,
    request_id: int,
    action: Any,
) -> Response:
    try:
        action()
    except PosHubError as exc:
        uow.rollback()
        messages, status_code = refusal(exc, t)
        return _limits_page(
            request,
            uow,
            principal,
            decision_errors={request_id: " ".join(messages)},
            errors=messages,
            status_code=status_code,
        )
    uow.commit()
    return RedirectResponse(f"/admin/risk/limits#change-{request_id}", status_code=303)


@router.post("/limits/changes/{request_id}/approve")
def approve_limit_change(
    request_id: int,
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The checker's step: a risk officer other than the requester approves."""
    return _decide(
        request,
        uow,
        principal,
        t,
        request_id,
        lambda: controls.approve_limit_change(
            uow.session, principal, request_id, note, now=utcnow()
        ),
    )


@router.post("/limits/changes/{request_id}/reject")
def reject_limit_change(
    request_id: int,
    request: Request,
    uow: Write,
    principal: Officer,
    t: T,
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The checker turns the request down, saying why."""
    return _decide(
        request,
        uow,
        principal,
        t,
        request_id,
        lambda: controls.reject_limit_change(
            uow.session, principal, request_id, note, now=utcnow()
        ),
    )


@router.post("/limits/changes/{request_id}/withdraw")
def withdraw_limit_change(
    request_id: int, request: Request, uow: Write, principal: Officer, t: T
) -> Response:
    """The requester takes their request back."""
    return _decide(
        request,
        uow,
        principal,
        t,
        request_id,
        lambda: controls.withdraw_limit_change(uow.session, principal, request_id, now=utcnow()),
    )
