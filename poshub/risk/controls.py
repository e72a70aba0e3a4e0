"""Limits under maker-checker, and rule management (R14).

Limits
    The limits in force at a level are the latest ``risk_limits`` version of that level
    and channel. A merchant without its own version has the default (the latest
    ``default``/``*`` version, else ``schemas.DEFAULT_LIMITS``) scaled by its risk grade
    (``schemas.merchant_limits``); a terminal's own limits only tighten its merchant's
    (``schemas.terminal_limits``). The gateway's engine applies the same two functions to
    the same rows.

    Nobody sets a limit directly: a risk officer asks for a change (``request_limit_change``)
    and *another* risk officer approves it, which writes the next version; the requester
    may withdraw it meanwhile, the checker may reject it with a reason. One request waits
    per level and channel at a time (a unique index on pending requests; a second is 409),
    so a checker never decides against limits that another approval just changed.

    A request is checked before anyone decides it: the MID or TID exists, each wider period
    allows at least what a narrower one does, and a terminal's limit is not above its
    merchant's limit in force (it would never apply: the merchant's is checked too). An
    empty amount means "no limit at this level": for a merchant, the default (scaled by the
    grade) then applies; for a terminal, only the merchant's limits; for the default, none.

Rules
    The highest ``risk_rule_versions`` row of a rule is in force; none, the code's default.
    An edit is validated as a whole by the rule's own model (``schemas.RULES[code].params``)
    and its allowed actions, thresholds not given keep their current values, and a refused
    edit changes nothing. An accepted one is a new version, audited with what changed; the
    engine rereads versions every ``limits.RISK_REFRESH_SECONDS``. ``preview_setting`` tries
    a setting on the journal first and saves nothing.

Every change is audited (``risk.limit_change_*``, ``risk.rule_edited``). Never commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, create_model
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from poshub.core import audit, limits
from poshub.core.errors import N_, Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from poshub.core.money import format_fen
from poshub.core.roles import Role
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant
from poshub.merchants.service import get_merchant
from poshub.risk import repository
from poshub.risk.models import (
    ChangeStatus,
    Channel,
    RiskLimit,
    RiskLimitChange,
    RiskRuleVersion,
    RuleAction,
)
from poshub.risk.preview import RulePreview, preview_rule
from poshub.risk.schemas import (
    DEFAULT_LIMITS,
    DEFAULT_SUBJECT,
    RULES,
    LimitChangeIn,
    LimitScope,
    LimitValues,
    RuleCode,
    RuleDefinition,
    RuleEdit,
    RulePreviewIn,
    RuleSetting,
    default_setting,
    grade_controls,
    merchant_limits,
    setting_from_row,
    terminal_limits,
)
from poshub.staff.service import Principal
from poshub.terminals import repository as terminal_repository
from poshub.terminals.models import Terminal

AMOUNT_FIELDS = ("per_transaction_fen", "per_day_fen", "per_month_fen", "per_card_per_day_fen")
"""The amounts of a level's limits, narrowest first."""
TERMINAL_FIELDS = ("per_transaction_fen", "per_day_fen", "per_month_fen")
"""What a terminal may have (a card's daily limit is per merchant)."""


# --- Limits in force ----------------------------------------------------------------------


def values_of(row: RiskLimit | RiskLimitChange) -> LimitValues:
    return LimitValues(
        row.per_transaction_fen, row.per_day_fen, row.per_month_fen, row.per_card_per_day_fen
    )


def amounts(values: LimitValues) -> dict[str, int | None]:
    """The four amounts by field name (what the API and the audit log show)."""
    return {field: getattr(values, field) for field in AMOUNT_FIELDS}


@dataclass(frozen=True, slots=True)
class LevelLimits:
    """One level's limits on one channel and the version they come from (None: the
    code's default, or no version of this level's own)."""

    values: LimitValues
    version: RiskLimit | None


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """One channel's limits for one merchant (and one of its terminals, when asked)."""

    channel: Channel
    default: LevelLimits
    """The default in force, before the grade scales it."""
    own: RiskLimit | None
    """The merchant's own version in force, if a risk officer set one."""
    merchant: LimitValues
    """What applies to the merchant (its own amounts, else the scaled default)."""
    terminal: LimitValues | None = None
    """What applies to the terminal asked about (``terminal_limits``)."""
    terminal_own: RiskLimit | None = None


@dataclass(frozen=True, slots=True)
class TerminalOwnLimits:
    """A terminal of the merchant with limits of its own on one channel."""

    tid: str
    channel: Channel
    version: RiskLimit
    values: LimitValues
    """What applies to it: its own amounts under its merchant's."""


@dataclass(frozen=True, slots=True)
class MerchantLimits:
    mid: str
    grade: str | None
    limit_percent: int
    """The grade's scaling of the default (100: none)."""
    channels: list[ChannelLimits]
    """Every channel, in ``Channel`` order."""
    terminals: list[TerminalOwnLimits]
    """Its terminals' own limits, by TID and channel."""


def default_limits(session: Session) -> dict[Channel, LevelLimits]:
    """The default limits in force per channel: the latest default version, else the code's."""
    rows = repository.limits_in_force(session, LimitScope.DEFAULT, [DEFAULT_SUBJECT])
    found: dict[Channel, LevelLimits] = {}
    for channel in Channel:
        row = rows.get((DEFAULT_SUBJECT, channel.value))
        found[channel] = LevelLimits(values_of(row) if row else DEFAULT_LIMITS[channel], row)
    return found


def merchant_limits_view(
    session: Session, merchant: Merchant, terminal: Terminal | None = None
) -> MerchantLimits:
    """Everything that makes up one merchant's limits: the default, the grade's scaling,
    its own versions, its terminals' own versions (and one terminal's limits, if given)."""
    defaults = default_limits(session)
    percent = grade_controls(merchant.risk_grade).limit_percent
    own = repository.limits_in_force(session, LimitScope.MERCHANT, [merchant.mid])
    tids = [t.tid for t in terminal_repository.terminals_of(session, merchant.id)]
    terminal_rows = repository.limits_in_force(session, LimitScope.TERMINAL, tids)
    channels: list[ChannelLimits] = []
    in_force: dict[Channel, LimitValues] = {}
    for channel in Channel:
        mine = own.get((merchant.mid, channel.value))
        values = merchant_limits(
            defaults[channel].values, values_of(mine) if mine else None, percent
        )
        in_force[channel] = values
        terminal_own = (
            terminal_rows.get((terminal.tid, channel.value)) if terminal is not None else None
        )
        channels.append(
            ChannelLimits(
                channel=channel,
                default=defaults[channel],
                own=mine,
                merchant=values,
                terminal=(
                    terminal_limits(values, values_of(terminal_own) if terminal_own else None)
                    if terminal is not None
                    else None
                ),
                terminal_own=terminal_own,
            )
        )
    terminals = [
        TerminalOwnLimits(
            tid, Channel(channel), row, terminal_limits(in_force[Channel(channel)], values_of(row))
        )
        for (tid, channel), row in sorted(terminal_rows.items())
    ]
    return MerchantLimits(merchant.mid, merchant.risk_grade, percent, channels, terminals)


def limits_in_force(
    session: Session, mid: str, tid: str | None = None
) -> dict[Channel, tuple[LimitValues, LimitValues]]:
    """Per channel, the merchant's limits in force and its terminal's: those of ``tid``
    (404 unless it is this merchant's), or, without one, what a terminal of no limits of
    its own has (the merchant's per-transaction limit)."""
    merchant = get_merchant(session, mid)
    terminal = _terminal_of(session, merchant, tid) if tid is not None else None
    view = merchant_limits_view(session, merchant, terminal)
    return {
        c.channel: (c.merchant, c.terminal or terminal_limits(c.merchant, None))
        for c in view.channels
    }


def _terminal_of(session: Session, merchant: Merchant, tid: str) -> Terminal:
    terminal = terminal_repository.terminal_by_tid(session, tid)
    if terminal is None or terminal.merchant_id != merchant.id:
        raise NotFound(N_("No terminal has this TID."), code="terminal_not_found")
    return terminal


def terminal_limits_view(session: Session, tid: str) -> tuple[Terminal, MerchantLimits]:
    """A terminal and its merchant's limits with the terminal's own (404 for no such TID)."""
    terminal = terminal_repository.terminal_by_tid(session, tid)
    if terminal is None:
        raise NotFound(N_("No terminal has this TID."), code="terminal_not_found")
    merchant = merchant_repository.get(session, terminal.merchant_id)
    assert merchant is not None  # foreign key
    return terminal, merchant_limits_view(session, merchant, terminal)


def limit_history(
    session: Session,
    *,
    scope: LimitScope | None = None,
    subject: str | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> Sequence[RiskLimit]:
    """Versions of limits, newest first (of one level when asked)."""
    return repository.limit_versions(
        session,
        scope=scope.value if scope else None,
        subject=subject,
        limit=min(limit, limits.PAGE_SIZE_MAX),
    )


# --- Change requests (maker-checker) ---------------------------------------------------------


def limit_changes(
    session: Session,
    *,
    status: ChangeStatus | None = None,
    scope: LimitScope | None = None,
    subject: str | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> Sequence[RiskLimitChange]:
    """Change requests, newest first."""
    return repository.limit_changes(
        session,
        status=status.value if status else None,
        scope=scope.value if scope else None,
        subject=subject,
        limit=min(limit, limits.PAGE_SIZE_MAX),
    )


def limit_change(session: Session, change_id: int, *, for_update: bool = False) -> RiskLimitChange:
    change = repository.limit_change(session, change_id, for_update=for_update)
    if change is None:
        raise NotFound(N_("No such limit change request."), code="limit_change_not_found")
    return change


PENDING_MESSAGE = N_(
    "A change of these limits is already waiting for a decision: have it decided or "
    "withdrawn first."
)


def level_in_force(
    session: Session, scope: LimitScope, subject: str, channel: Channel
) -> LimitValues | None:
    """The amounts in force at one level itself, what a request there would replace: the
    level's latest version (the default's fall back to the code's), else None."""
    if scope == LimitScope.DEFAULT:
        return default_limits(session)[channel].values
    row = repository.limits_in_force(session, scope.value, [subject]).get((subject, channel.value))
    return values_of(row) if row else None


def _subject_problems(session: Session, data: LimitChangeIn) -> list[FieldError]:
    """The MID or TID exists; a terminal's limits stay under its merchant's."""
    if data.scope == LimitScope.MERCHANT:
        if merchant_repository.by_mid(session, data.subject) is None:
            return [FieldError("subject", "limit.no_merchant", N_("No merchant has this MID."))]
        return []
    if data.scope != LimitScope.TERMINAL:
        return []
    terminal = terminal_repository.terminal_by_tid(session, data.subject)
    if terminal is None:
        return [FieldError("subject", "limit.no_terminal", N_("No terminal has this TID."))]
    merchant = merchant_repository.get(session, terminal.merchant_id)
    assert merchant is not None  # foreign key
    view = merchant_limits_view(session, merchant)
    above = next(c.merchant for c in view.channels if c.channel == data.channel)
    problems = []
    for field in TERMINAL_FIELDS:
        wanted, ceiling = getattr(data, field), getattr(above, field)
        if wanted is not None and ceiling is not None and wanted > ceiling:
            problems.append(
                FieldError(
                    field,
                    "limit.above_merchant",
                    N_(
                        "Above the merchant's limit in force ({amount}): a terminal's limit "
                        "can only be lower than its merchant's."
                    ),
                    {"amount": format_fen(ceiling)},
                )
            )
    return problems


def request_limit_change(
    session: Session, principal: Principal, data: LimitChangeIn, *, now: dt.datetime
) -> RiskLimitChange:
    """The maker's step: a request another risk officer decides. 422 naming each field
    that is wrong, 409 when one is already waiting for this level and channel or when it
    would change nothing."""
    problems = data.problems() + _subject_problems(session, data)
    if problems:
        raise ValidationFailed(problems)
    requested = LimitValues(
        data.per_transaction_fen, data.per_day_fen, data.per_month_fen, data.per_card_per_day_fen
    )
    if requested == (
        level_in_force(session, data.scope, data.subject, data.channel) or LimitValues()
    ):
        raise Conflict(
            N_("These are the limits in force at this level already."), code="limits_unchanged"
        )
    if repository.pending_limit_change(session, data.scope, data.subject, data.channel):
        raise Conflict(PENDING_MESSAGE, code="limit_change_pending")
    change = RiskLimitChange(
        scope=data.scope.value,
        subject=data.subject,
        channel=data.channel.value,
        per_transaction_fen=data.per_transaction_fen,
        per_day_fen=data.per_day_fen,
        per_month_fen=data.per_month_fen,
        per_card_per_day_fen=data.per_card_per_day_fen,
        status=ChangeStatus.PENDING.value,
        reason=data.reason,
        requested_by=principal.username,
        requested_at=now,
    )
    _insert(session, change, PENDING_MESSAGE, "limit_change_pending")
    audit.record(
        session,
        principal.actor,
        "risk.limit_change_requested",
        "risk_limit_change",
        str(change.id),
        {
            "scope": change.scope,
            "subject": change.subject,
            "channel": change.channel,
            "requested": amounts(requested),
            "reason": data.reason,
        },
    )
    return change


def _insert(session: Session, row: Any, message: str, code: str) -> None:
    """Add and flush ``row`` in a savepoint; a unique index that a concurrent transaction
    won (PostgreSQL: SQLite has one writer) becomes a 409 with ``message``."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(message, code=code) from None


def _pending(change: RiskLimitChange) -> None:
    if change.status != ChangeStatus.PENDING:
        raise Conflict(
            N_("This limit change request is not waiting for a decision any more."),
            code="limit_change_decided",
        )


def _checker(principal: Principal, change: RiskLimitChange) -> None:
    """The checker is a risk officer other than the requester (403 otherwise)."""
    if Role.RISK_OFFICER not in principal.roles:
        raise Forbidden(
            N_("Only a risk officer decides limit changes."), code="risk_officer_required"
        )
    if change.requested_by == principal.username:
        raise Forbidden(
            N_(
                "Another risk officer must decide this change: the requester cannot approve "
                "or reject their own request (withdraw it instead)."
            ),
            code="own_limit_change",
        )


VERSION_RACE = N_("Another risk officer changed these limits at the same moment; try again.")


def approve_limit_change(
    session: Session,
    principal: Principal,
    change_id: int,
    note: str = "",
    *,
    now: dt.datetime,
) -> RiskLimit:
    """The checker's step: the request becomes the next version of its level's limits,
    in force for new authorizations within ``limits.RISK_REFRESH_SECONDS``."""
    change = limit_change(session, change_id, for_update=True)
    _checker(principal, change)
    _pending(change)
    previous = repository.limits_in_force(session, change.scope, [change.subject]).get(
        (change.subject, change.channel)
    )
    version = RiskLimit(
        scope=change.scope,
        subject=change.subject,
        channel=change.channel,
        version=(previous.version if previous else 0) + 1,
        per_transaction_fen=change.per_transaction_fen,
        per_day_fen=change.per_day_fen,
        per_month_fen=change.per_month_fen,
        per_card_per_day_fen=change.per_card_per_day_fen,
        change_id=change.id,
        created_at=now,
    )
    _insert(session, version, VERSION_RACE, "limit_version_race")
    before = (
        values_of(previous)
        if previous
        else (
            DEFAULT_LIMITS[Channel(change.channel)] if change.scope == LimitScope.DEFAULT else None
        )
    )
    _decide(change, principal, ChangeStatus.APPROVED, note, now)
    audit.record(
        session,
        principal.actor,
        "risk.limit_change_approved",
        "risk_limit_change",
        str(change.id),
        {
            "scope": change.scope,
            "subject": change.subject,
            "channel": change.channel,
            "version": version.version,
            "before": amounts(before) if before else None,
            "after": amounts(values_of(version)),
            "requested_by": change.requested_by,
        },
    )
    return version


def _decide(
    change: RiskLimitChange, principal: Principal, status: ChangeStatus, note: str, now: dt.datetime
) -> None:
    change.status = status.value
    change.decided_by = principal.username
    change.decided_at = now
    change.decision_note = note.strip() or None


def reject_limit_change(
    session: Session, principal: Principal, change_id: int, note: str, *, now: dt.datetime
) -> RiskLimitChange:
    """The checker turns the request down, saying why; the limits stay as they are."""
    change = limit_change(session, change_id, for_update=True)
    _checker(principal, change)
    _pending(change)
    if not note.strip():
        raise ValidationFailed(
            [
                FieldError(
                    "note",
                    "note.required",
                    N_("Say why the change is rejected: the requester reads it."),
                )
            ]
        )
    _decide(change, principal, ChangeStatus.REJECTED, note, now)
    audit.record(
        session,
        principal.actor,
        "risk.limit_change_rejected",
        "risk_limit_change",
        str(change.id),
        {"requested_by": change.requested_by, "note": change.decision_note},
    )
    return change


def withdraw_limit_change(
    session: Session, principal: Principal, change_id: int, *, now: dt.datetime
) -> RiskLimitChange:
    """The requester takes the request back before anyone decided it."""
    change = limit_change(session, change_id, for_update=True)
    if change.requested_by != principal.username:
        raise Forbidden(
            N_("Only the risk officer who asked for this change can withdraw it."),
            code="not_requester",
        )
    _pending(change)
    change.status = ChangeStatus.WITHDRAWN.value
    change.decided_by = principal.username
    change.decided_at = now
    audit.record(
        session,
        principal.actor,
        "risk.limit_change_withdrawn",
        "risk_limit_change",
        str(change.id),
        {},
    )
    return change


# --- Rules ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleState:
    """One rule as it runs, and the saved version it comes from."""

    definition: RuleDefinition
    setting: RuleSetting
    saved: RiskRuleVersion | None
    """The version in force (None: nothing saved yet, the code's default runs)."""
    unreadable: bool = False
    """The latest saved version no longer validates (thresholds changed in the code): the
    code's default runs until a risk officer saves a new version."""


def _rule_code(code: str) -> RuleCode:
    try:
        return RuleCode(code)
    except ValueError:
        raise NotFound(N_("No such risk rule."), code="rule_not_found") from None


def _state(code: RuleCode, row: RiskRuleVersion | None) -> RuleState:
    definition = RULES[code]
    if row is None:
        return RuleState(definition, default_setting(code), None)
    try:
        setting = setting_from_row(row.code, row.version, row.enabled, row.action, row.params)
    except (KeyError, ValueError):  # pydantic's ValidationError is a ValueError
        return RuleState(definition, default_setting(code), row, unreadable=True)
    return RuleState(definition, setting, row)


def rules_in_force(session: Session) -> list[RuleState]:
    """Every rule in ``RuleCode`` order with the setting it runs with."""
    rows = repository.latest_rule_versions(session)
    return [_state(code, rows.get(code.value)) for code in RuleCode]


def rule_in_force(session: Session, code: str) -> RuleState:
    """One rule's setting in force (404 for an unknown code)."""
    rule = _rule_code(code)
    rows = repository.rule_versions(session, rule.value, limit=1)
    return _state(rule, rows[0] if rows else None)


def rule_history(
    session: Session, code: str, *, limit: int = limits.PAGE_SIZE_DEFAULT
) -> Sequence[RiskRuleVersion]:
    """One rule's saved versions, newest first (404 for an unknown code)."""
    rule = _rule_code(code)
    return repository.rule_versions(session, rule.value, limit=min(limit, limits.PAGE_SIZE_MAX))


@cache
def _setting_model(code: RuleCode) -> type[BaseModel]:
    """A model of one rule's whole setting: its switch, one of *its* actions and its own
    thresholds, so that every wrong field comes back at once and named
    (``params.max_count``, ``action``)."""
    definition = RULES[code]
    allowed = tuple(action.value for action in definition.actions)
    return create_model(
        f"{definition.params.__name__}Setting",
        __config__=ConfigDict(extra="forbid"),
        enabled=(bool, ...),
        action=(cast(Any, Literal)[tuple(sorted(allowed))], ...),
        params=(definition.params, ...),
    )


def validate_setting(
    code: RuleCode, enabled: bool, action: str, params: dict[str, Any], *, current: RuleSetting
) -> RuleSetting:
    """The setting an edit asks for, thresholds not given keeping their ``current`` values.
    Raises pydantic's ``ValidationError`` located at ``params.<threshold>`` or ``action``."""
    merged = {**current.params.model_dump(), **params}
    validated = dict(
        _setting_model(code).model_validate(
            {"enabled": enabled, "action": str(action), "params": merged}
        )
    )
    return RuleSetting(
        code,
        current.version,
        bool(validated["enabled"]),
        RuleAction(validated["action"]),
        validated["params"],
    )


def _setting_json(setting: RuleSetting) -> dict[str, Any]:
    return {
        "enabled": setting.enabled,
        "action": str(setting.action),
        "params": setting.params.model_dump(mode="json"),
    }


def _changes(before: RuleSetting, after: RuleSetting) -> dict[str, list[Any]]:
    """What an edit changed, ``field: [before, after]`` (thresholds as ``params.<name>``)."""
    old, new = _setting_json(before), _setting_json(after)
    found: dict[str, list[Any]] = {}
    for key in ("enabled", "action"):
        if old[key] != new[key]:
            found[key] = [old[key], new[key]]
    for name, value in new["params"].items():
        if old["params"].get(name) != value:
            found[f"params.{name}"] = [old["params"].get(name), value]
    return found


RULE_RACE = N_("Another risk officer saved this rule at the same moment; reload and try again.")


def edit_rule(
    session: Session, principal: Principal, code: str, edit: RuleEdit, *, now: dt.datetime
) -> RiskRuleVersion:
    """Save a new version of a rule. A wrong threshold or action is a ``ValidationError``
    naming it, and the rule keeps running as it was; an edit that changes nothing is 409."""
    state = rule_in_force(session, code)
    rule = state.definition.code
    setting = validate_setting(rule, edit.enabled, edit.action, edit.params, current=state.setting)
    changes = _changes(state.setting, setting)
    if not changes and not state.unreadable:
        raise Conflict(N_("This is the rule's setting in force already."), code="rule_unchanged")
    latest = state.saved.version if state.saved else 0
    row = RiskRuleVersion(
        code=rule.value,
        version=latest + 1,
        enabled=setting.enabled,
        action=str(setting.action),
        params=setting.params.model_dump(mode="json"),
        reason=edit.reason,
        created_by=principal.username,
        created_at=now,
    )
    _insert(session, row, RULE_RACE, "rule_version_race")
    audit.record(
        session,
        principal.actor,
        "risk.rule_edited",
        "risk_rule",
        rule.value,
        {
            "version": row.version,
            "previous_version": latest,
            "changes": changes,
            "reason": edit.reason,
        },
    )
    return row


def preview_setting(
    session: Session, code: str, data: RulePreviewIn, *, now: dt.datetime
) -> RulePreview:
    """How many alerts a setting would have raised over the last ``data.days`` days of the
    journal, beside what the setting in force would have (``current_alerts``). Validated
    like an edit; saves nothing."""
    state = rule_in_force(session, code)
    setting = validate_setting(
        state.definition.code, data.enabled, data.action, data.params, current=state.setting
    )
    return preview_rule(session, setting, days=data.days, now=now)
