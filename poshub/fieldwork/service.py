"""Fieldwork use cases (R6-R11): create and assign work orders, record each step on
site, attach photos.

Who may act: operations create, assign, cancel, ship and prepare replacement devices;
the technician an order is assigned to does the work on site, and nobody else
(``fieldwork.states.performer``). Every step is one ``WorkOrderStep`` row and one audit
entry, in the caller's transaction: nothing here commits.

The terminal and device lifecycles belong to ``poshub.terminals.service``; the steps
call it (device shipped, installed; terminal activated and the merchant live on the
first acceptance test; a swap's new key and credential).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from poshub.core import audit, ids, limits
from poshub.core.audit import Actor
from poshub.core.clock import SHANGHAI, business_date
from poshub.core.crypto import KeyVault
from poshub.core.errors import (
    N_,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    TooLarge,
    ValidationFailed,
)
from poshub.core.roles import Role
from poshub.core.sequences import take_next
from poshub.core.settings import Settings
from poshub.core.storage import ContentStore
from poshub.fieldwork import repository, sla
from poshub.fieldwork.models import WorkOrder, WorkOrderKind, WorkOrderPhoto, WorkOrderStep
from poshub.fieldwork.schemas import (
    AcceptanceIn,
    AssignIn,
    CancelIn,
    CheckInIn,
    DeliveredIn,
    DevicePreparedIn,
    InspectionIn,
    RepairIn,
    ScheduleIn,
    ShippedIn,
    SurveyIn,
    SwapRequiredIn,
    TrainingIn,
    WorkOrderIn,
    step_schema,
)
from poshub.fieldwork.states import (
    HAPPY_PATHS,
    REQUIRED_TRAINING_TOPICS,
    Condition,
    NetworkKind,
    Performer,
    TrainingTopic,
    WorkOrderStatus,
    allowed_next,
    ensure_step,
    ensure_transition,
    go_live_gaps,
    is_final,
    may_perform,
    performer,
)
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.onboarding import repository as onboarding_repository
from poshub.onboarding.documents import PDF, Rejection, reencode_image, sniff
from poshub.staff import repository as staff_repository
from poshub.staff.service import Principal
from poshub.terminals import repository as terminal_repository
from poshub.terminals import service as terminal_service
from poshub.terminals.models import Device, DeviceStatus, Terminal, TerminalStatus

S = WorkOrderStatus
K = WorkOrderKind

APPOINTMENT_AHEAD_DAYS_MAX = 90
CLOCK_SKEW = dt.timedelta(minutes=5)
"""A time a person types may run this far ahead of the host clock (phones drift)."""
CAPTION_LENGTH_MAX = 120
READ_ROLES = frozenset({Role.OPERATIONS, Role.SUPPORT_AGENT, Role.AUDITOR, Role.ADMIN})
"""Roles that read every order; a technician reads only the orders assigned to them."""


@dataclass(frozen=True)
class FieldworkDeps:
    """What the use cases need from outside the database."""

    settings: Settings
    vault: KeyVault
    store: ContentStore
    """Content-addressed store for photos."""


@dataclass
class StepResult:
    order: WorkOrder
    provisioned: terminal_service.Provisioned | None = None
    """After ``device_prepared``: the new device's KCV and secret, to show once."""
    follow_up: WorkOrder | None = None
    """After ``swap_required``: the swap order it created."""


@dataclass
class _Outcome:
    """What a step handler decided: the state reached and what to record."""

    status: S
    record: dict[str, Any]
    note: str = ""
    provisioned: terminal_service.Provisioned | None = None
    follow_up: WorkOrder | None = None
    audit: dict[str, Any] = field(default_factory=dict)
    data_key: str | None = None
    """Where ``record`` goes in ``WorkOrder.data``; the state reached unless set."""


# --- Who may see and do what ----------------------------------------------------------


def is_operations(principal: Principal) -> bool:
    return Role.OPERATIONS in principal.roles


def is_assignee(principal: Principal, order: WorkOrder) -> bool:
    return Role.TECHNICIAN in principal.roles and order.technician_id == principal.user_id


def can_read(principal: Principal, order: WorkOrder) -> bool:
    return principal.has_any(READ_ROLES) or is_assignee(principal, order)


def reads_everything(principal: Principal) -> bool:
    return principal.has_any(READ_ROLES)


def get_for(
    session: Session, number: str, principal: Principal, *, for_update: bool = False
) -> WorkOrder:
    """The order ``number`` if ``principal`` may see it: 404 if there is none, 403 for a
    technician asking for someone else's order."""
    order = repository.by_number(session, number.strip().upper(), for_update=for_update)
    if order is None:
        raise NotFound(N_("No work order has this number."), code="work_order_not_found")
    if not can_read(principal, order):
        raise _not_yours(order)
    return order


def _not_yours(order: WorkOrder) -> Forbidden:
    return Forbidden(
        N_("Work order {number} is not assigned to you."), code="not_assignee", number=order.number
    )


def next_steps(order: WorkOrder, principal: Principal | None = None) -> list[tuple[S, Performer]]:
    """The moves open to the order, in the usual order of the flow; with ``principal``,
    only those that person may make."""
    path = HAPPY_PATHS[K(order.kind)]
    rank = {state: index for index, state in enumerate(path)}
    moves = sorted(
        allowed_next(order.kind, order.status), key=lambda s: (rank.get(s, len(path)), str(s))
    )
    found = [(target, performer(order.kind, target)) for target in moves]
    if principal is None:
        return found
    ops, mine = is_operations(principal), is_assignee(principal, order)
    return [
        (target, who)
        for target, who in found
        if may_perform(who, is_operations=ops, is_assignee=mine)
    ]


def _require_operations(principal: Principal) -> None:
    if not is_operations(principal):
        raise Forbidden(N_("Only operations may do this."), code="operations_only")


def _authorize_step(principal: Principal, order: WorkOrder, target: S) -> None:
    who = performer(order.kind, target)
    if may_perform(
        who, is_operations=is_operations(principal), is_assignee=is_assignee(principal, order)
    ):
        return
    if who is Performer.OPERATIONS:
        raise Forbidden(
            N_("Only operations record the step {step}."), code="operations_only", step=str(target)
        )
    if is_operations(principal) or order.technician_id is None:
        raise Forbidden(
            N_("Only the technician assigned to the order records the step {step}."),
            code="technician_only",
            step=str(target),
        )
    raise _not_yours(order)


# --- Creating and assigning -----------------------------------------------------------------


def create_order(
    session: Session, data: WorkOrderIn, principal: Principal, *, now: dt.datetime
) -> WorkOrder:
    """A new work order for a merchant (and its terminal), due by the SLA of its kind."""
    _require_operations(principal)
    kind = K(data.kind)
    merchant = merchant_repository.by_mid(session, data.mid)
    if merchant is None:
        raise ValidationFailed([FieldError("mid", "mid.unknown", N_("No merchant has this MID."))])
    if merchant.status == MerchantStatus.CLOSED:
        raise Conflict(
            N_("Merchant {mid} is closed; no work order can be opened for it."),
            code="merchant_closed",
            mid=merchant.mid,
        )
    terminal = _terminal_for(session, merchant, data.tid, kind)
    device = terminal_repository.device_of(session, terminal.id) if terminal else None
    if terminal is not None:
        _check_terminal_ready(session, kind, terminal, device)
    order = WorkOrder(
        id=ids.new_id(),
        number=_next_number(session, now),
        kind=str(kind),
        status=str(S.OPEN),
        merchant_id=merchant.id,
        terminal_id=terminal.id if terminal else None,
        device_id=device.id if device and kind != K.SWAP else None,
        replaced_device_id=device.id if device and kind == K.SWAP else None,
        technician_id=None,
        site_address=(data.site_address or _default_address(session, merchant, terminal))[:300],
        contact_mobile=data.contact_mobile or merchant.mobile,
        appointment_at=None,
        due_at=sla.due_at(str(kind), now),
        sla_breached_at=None,
        data={},
        created_at=now,
        created_by=principal.username,
        updated_at=now,
        completed_at=None,
    )
    session.add(order)
    session.flush()
    _record_step(session, order, principal.actor, "", S.OPEN, {}, data.note or "", now)
    audit.record(
        session,
        principal.actor,
        "work_order.created",
        "work_order",
        order.number,
        {
            "kind": order.kind,
            "mid": merchant.mid,
            "tid": terminal.tid if terminal else None,
            "due_at": order.due_at.isoformat(),
        },
    )
    if data.technician:
        assign(session, order, data.technician, principal, now=now)
    return order


def _terminal_for(
    session: Session, merchant: Merchant, tid: str | None, kind: K
) -> Terminal | None:
    if not tid:
        if kind == K.SITE_SURVEY:
            return None
        raise ValidationFailed(
            [
                FieldError(
                    "tid",
                    "tid.required",
                    N_("Give the TID of the terminal this work order is about."),
                )
            ]
        )
    terminal = terminal_repository.terminal_by_tid(session, tid)
    if terminal is None or terminal.merchant_id != merchant.id:
        raise ValidationFailed(
            [
                FieldError(
                    "tid",
                    "tid.unknown",
                    N_("No terminal with this TID belongs to merchant {mid}."),
                    {"mid": merchant.mid},
                )
            ]
        )
    return terminal


def _check_terminal_ready(
    session: Session, kind: K, terminal: Terminal, device: Device | None
) -> None:
    params = {"tid": terminal.tid, "status": terminal.status}
    if kind == K.SHIPPING and (device is None or device.status != DeviceStatus.ALLOCATED):
        raise Conflict(
            N_(
                "Terminal {tid} has no allocated device waiting to be shipped; "
                "allocate a device from stock first."
            ),
            code="nothing_to_ship",
            tid=terminal.tid,
        )
    if kind == K.INSTALLATION and (
        terminal.status != TerminalStatus.PROVISIONING
        or device is None
        or device.status not in (DeviceStatus.ALLOCATED, DeviceStatus.SHIPPED)
    ):
        raise Conflict(
            N_(
                "Terminal {tid} is {status}: only a terminal being provisioned, with its "
                "device allocated or shipped, can be installed."
            ),
            code="terminal_not_installable",
            **params,
        )
    if kind == K.REPAIR and terminal.status not in (TerminalStatus.ACTIVE, TerminalStatus.LOCKED):
        raise Conflict(
            N_("Terminal {tid} is {status}: only a terminal in service can be repaired."),
            code="terminal_not_in_service",
            **params,
        )
    if kind in (K.SWAP, K.SITE_SURVEY) and terminal.status == TerminalStatus.CLOSED:
        raise Conflict(N_("Terminal {tid} is closed."), code="terminal_closed", tid=terminal.tid)
    existing = repository.open_order_for_terminal(session, terminal.id, str(kind))
    if existing is not None:
        raise Conflict(
            N_("Terminal {tid} already has an open {kind} work order: {number}."),
            code="work_order_exists",
            tid=terminal.tid,
            kind=str(kind),
            number=existing.number,
        )


def _default_address(session: Session, merchant: Merchant, terminal: Terminal | None) -> str:
    if terminal is not None and terminal.install_address:
        return terminal.install_address
    application = onboarding_repository.get(session, merchant.application_id)
    if application is None:  # pragma: no cover - every merchant comes from an application
        return merchant.business_name
    return (
        f"{application.province}{application.city}{application.district}"
        f"{application.address_detail}"
    )


def _next_number(session: Session, now: dt.datetime) -> str:
    year = business_date(now).year
    sequence = take_next(
        session, f"{ids.WORK_ORDER_SEQUENCE_NAME}{year}", maximum=ids.WORK_ORDER_SEQUENCE_MAX
    )
    return ids.make_work_order_number(year, sequence)


def assign(
    session: Session,
    order: WorkOrder,
    technician: str,
    principal: Principal,
    *,
    now: dt.datetime,
    note: str | None = None,
) -> WorkOrder:
    """Give the order to a technician: ``open → assigned``, or a hand-over to another
    technician later on (the state stays; the history records who had it)."""
    _require_operations(principal)
    if is_final(order.kind, order.status):
        ensure_transition(order.kind, order.status, S.ASSIGNED)  # raises: names "none"
    user = staff_repository.by_username(session, technician.strip())
    if (
        user is None
        or not user.active
        or Role.TECHNICIAN not in staff_repository.roles_of(session, user.id)
    ):
        raise ValidationFailed(
            [
                FieldError(
                    "technician",
                    "technician.not_a_technician",
                    N_("{username} is not an active staff member with the technician role."),
                    {"username": technician.strip()[:64]},
                )
            ]
        )
    previous = order.technician_id
    previous_name = repository.usernames(session, [previous]).get(previous) if previous else None
    current = S(order.status)
    target = S.ASSIGNED if S.ASSIGNED in allowed_next(order.kind, order.status) else current
    order.technician_id = user.id
    record: dict[str, Any] = {"technician": user.username}
    if previous_name:
        record["previous_technician"] = previous_name
    _apply(
        session,
        order,
        principal.actor,
        current,
        _Outcome(
            target,
            record,
            note or "",
            audit={"technician": user.username},
            data_key=str(S.ASSIGNED),
        ),
        now,
        action="work_order.assigned",
    )
    return order


# --- Steps -----------------------------------------------------------------------------------


def perform_step(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: str,
    body: Mapping[str, Any],
    *,
    now: dt.datetime,
) -> StepResult:
    """Move ``order`` to ``target`` with what the step records (``body``).

    Checks, in this order: the person may act on the order at all (403), the move is
    allowed from the current state (409 naming the allowed next steps), the person may
    record this step (403), the body is what the step takes (pydantic
    ``ValidationError``, 422 naming the fields), then the step's own rules.
    """
    if not (is_operations(principal) or is_assignee(principal, order)):
        raise _not_yours(order)
    wanted = ensure_step(order.kind, order.status, target)
    _authorize_step(principal, order, wanted)
    payload = step_schema(order.kind, wanted).model_validate(dict(body))
    if wanted is S.ASSIGNED:
        assert isinstance(payload, AssignIn)
        assign(session, order, payload.technician, principal, now=now, note=payload.note)
        return StepResult(order)
    handler = _HANDLERS.get(wanted, _note_only)
    current = S(order.status)
    outcome = handler(session, deps, order, principal, wanted, payload, now)
    _apply(session, order, principal.actor, current, outcome, now)
    return StepResult(order, outcome.provisioned, outcome.follow_up)


def _apply(
    session: Session,
    order: WorkOrder,
    actor: Actor,
    current: S,
    outcome: _Outcome,
    now: dt.datetime,
    *,
    action: str | None = None,
) -> None:
    order.status = str(outcome.status)
    order.updated_at = now
    if outcome.status is S.COMPLETED:
        order.completed_at = now
    order.data = {**order.data, outcome.data_key or str(outcome.status): outcome.record}
    _record_step(
        session, order, actor, str(current), outcome.status, outcome.record, outcome.note, now
    )
    audit.record(
        session,
        actor,
        action or f"work_order.{outcome.status}",
        "work_order",
        order.number,
        {"kind": order.kind, "from": str(current), "to": str(outcome.status), **outcome.audit},
    )


def _record_step(
    session: Session,
    order: WorkOrder,
    actor: Actor,
    from_status: str,
    to_status: S,
    data: dict[str, Any],
    note: str,
    now: dt.datetime,
) -> None:
    session.add(
        WorkOrderStep(
            work_order_id=order.id,
            from_status=from_status,
            to_status=str(to_status),
            actor=actor.id,
            data=data,
            note=note,
            at=now,
        )
    )


Handler = Callable[[Session, FieldworkDeps, WorkOrder, Principal, S, Any, dt.datetime], _Outcome]


def _note_only(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: Any,
    now: dt.datetime,
) -> _Outcome:
    return _Outcome(target, {}, getattr(payload, "note", None) or "")


def _cancel(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: CancelIn,
    now: dt.datetime,
) -> _Outcome:
    return _Outcome(target, {"reason": payload.reason}, payload.reason)


def _schedule(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: ScheduleIn,
    now: dt.datetime,
) -> _Outcome:
    at = as_utc(payload.appointment_at)
    if at < now - CLOCK_SKEW:
        _invalid(
            "appointment_at", "appointment_at.past", N_("The appointment must be in the future.")
        )
    if at > now + dt.timedelta(days=APPOINTMENT_AHEAD_DAYS_MAX):
        _invalid(
            "appointment_at",
            "appointment_at.too_far",
            N_("Book the appointment at most {days} days ahead."),
            days=str(APPOINTMENT_AHEAD_DAYS_MAX),
        )
    previous = order.appointment_at
    order.appointment_at = at
    record: dict[str, Any] = {"appointment_at": at.isoformat()}
    if previous is not None:
        record["previous_appointment_at"] = previous.isoformat()
    return _Outcome(target, record, payload.note or "", audit={"appointment_at": at.isoformat()})


def _check_in(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: CheckInIn,
    now: dt.datetime,
) -> _Outcome:
    record: dict[str, Any] = {"serial_number": None}
    if order.kind in (K.INSTALLATION, K.SWAP, K.REPAIR):
        device = _current_device(session, order)
        required = order.kind != K.REPAIR
        _check_serial(payload.serial_number, device, required=required)
        record["serial_number"] = device.serial_number
        if order.kind in (K.INSTALLATION, K.SWAP):
            terminal_service.mark_installed(session, device, actor=principal.actor, now=now)
    return _Outcome(target, record, payload.note or "", audit={"serial": record["serial_number"]})


def _check_serial(
    given: str | None, device: Device, *, required: bool, name: str = "serial_number"
) -> None:
    if given is None:
        if required:
            _invalid(
                name,
                f"{name}.required",
                N_("Read the serial number off the device's label and enter it."),
            )
        return
    if given.strip().upper() != device.serial_number.upper():
        _invalid(
            name,
            f"{name}.mismatch",
            N_("Serial number {given} is not the device of this order ({expected})."),
            given=given.strip()[:32],
            expected=device.serial_number,
        )


def _parameters_loaded(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: Any,
    now: dt.datetime,
) -> _Outcome:
    terminal = _terminal(session, order)
    device = _current_device(session, order)
    params = terminal_repository.current_parameters(session, terminal.id)
    if (
        params is None
        or params.fetched_at is None
        or (params.fetched_by_serial and params.fetched_by_serial != device.serial_number)
    ):
        raise Conflict(
            N_(
                "Terminal {tid} must download its parameters first: connect the device "
                "{serial} to the TMS, wait for the download, then confirm again."
            ),
            code="parameters_not_fetched",
            tid=terminal.tid,
            serial=device.serial_number,
        )
    record = {
        "parameters_version": params.version,
        "fetched_at": params.fetched_at.isoformat(),
        "fetched_by_serial": params.fetched_by_serial or device.serial_number,
    }
    return _Outcome(
        target, record, getattr(payload, "note", None) or "", audit={"version": params.version}
    )


def _acceptance(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: AcceptanceIn,
    now: dt.datetime,
) -> _Outcome:
    terminal = _terminal(session, order)
    device = _current_device(session, order)
    errors: list[FieldError] = []
    timeout_s = _response_timeout_seconds(session, terminal)
    if payload.response_time_ms > timeout_s * 1000:
        errors.append(
            FieldError(
                "response_time_ms",
                "response_time_ms.timeout",
                N_(
                    "A response after {limit_s} s is a timeout for this terminal: "
                    "the test did not pass."
                ),
                {"limit_s": str(timeout_s)},
            )
        )
    if not payload.receipt_printed:
        errors.append(
            FieldError(
                "receipt_printed",
                "receipt_printed.false",
                N_(
                    "The test passes only with a correct receipt: fix the printer or the "
                    "receipt parameters and test again."
                ),
            )
        )
    if not payload.record_matches:
        errors.append(
            FieldError(
                "record_matches",
                "record_matches.false",
                N_(
                    "The test passes only when the host's record matches the receipt; "
                    "report the difference to operations."
                ),
            )
        )
    if terminal.acceptance_reference == payload.reference or repository.acceptance_reference_used(
        session, payload.reference, other_than=terminal.id
    ):
        errors.append(
            FieldError(
                "reference",
                "reference.used",
                N_(
                    "This reference belongs to an earlier acceptance test; run a new test transaction."
                ),
            )
        )
    if errors:
        raise ValidationFailed(errors)
    merchant = repository.merchant_for_update(session, order.merchant_id)
    terminal_service.activate(
        session,
        merchant,
        terminal,
        device,
        acceptance_reference=payload.reference,
        actor=principal.actor,
        now=now,
    )
    record = payload.model_dump(mode="json", exclude={"note"})
    return _Outcome(target, record, payload.note or "", audit={"reference": payload.reference})


def _response_timeout_seconds(session: Session, terminal: Terminal) -> int:
    params = terminal_repository.current_parameters(session, terminal.id)
    value = (params.params if params else {}).get(
        "response_timeout_seconds", limits.TMS_TIMEOUT_SECONDS_DEFAULT
    )
    return value if isinstance(value, int) and value > 0 else limits.TMS_TIMEOUT_SECONDS_DEFAULT


def _training(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: TrainingIn,
    now: dt.datetime,
) -> _Outcome:
    chosen = set(payload.topics)
    missing = [t for t in REQUIRED_TRAINING_TOPICS if t not in chosen]
    if missing:
        _invalid(
            "topics",
            "topics.required",
            N_("The merchant must be trained at least in: {topics}."),
            topics=", ".join(str(t) for t in REQUIRED_TRAINING_TOPICS),
        )
    record = {
        "signer_name": payload.signer_name,
        "topics": [str(t) for t in TrainingTopic if t in chosen],
        "manual_given": payload.manual_given,
    }
    return _Outcome(target, record, payload.note or "", audit={"topics": record["topics"]})


def _complete(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: Any,
    now: dt.datetime,
) -> _Outcome:
    if order.kind == K.SITE_SURVEY:
        assert isinstance(payload, SurveyIn)
        return _survey(payload, target)
    if order.kind == K.INSTALLATION:
        _go_live_check(session, order)
        return _Outcome(
            target, {"go_live": True}, getattr(payload, "note", None) or "", audit={"go_live": True}
        )
    return _note_only(session, deps, order, principal, target, payload, now)


def _survey(payload: SurveyIn, target: S) -> _Outcome:
    errors: list[FieldError] = []
    if not payload.feasible and not payload.reason:
        errors.append(
            FieldError(
                "reason",
                "reason.required",
                N_("Say why the installation is not feasible."),
            )
        )
    if payload.feasible and (
        not payload.power_available or payload.network == NetworkKind.NONE or not payload.signal_ok
    ):
        errors.append(
            FieldError(
                "feasible",
                "feasible.conditions",
                N_(
                    "A site without power, a network or a usable signal is not feasible; "
                    "mark it not feasible and say what must change."
                ),
            )
        )
    if errors:
        raise ValidationFailed(errors)
    record = payload.model_dump(mode="json")
    return _Outcome(target, record, payload.reason or "", audit={"feasible": payload.feasible})


def _go_live_check(session: Session, order: WorkOrder) -> None:
    """R11: every earlier step left its record, the terminal and device are active and
    the merchant is live."""
    gaps = go_live_gaps(order.data)
    terminal = _terminal(session, order)
    device = terminal_repository.device_of(session, terminal.id)
    merchant = merchant_repository.get(session, order.merchant_id)
    if terminal.status != TerminalStatus.ACTIVE:
        gaps.append(f"terminal.status={terminal.status}")
    if device is None or device.status != DeviceStatus.ACTIVE:
        gaps.append(f"device.status={device.status if device else 'none'}")
    if merchant is None or merchant.status != MerchantStatus.LIVE:
        gaps.append(f"merchant.status={merchant.status if merchant else 'none'}")
    if gaps:
        raise Conflict(
            N_("The go-live check failed; missing or wrong: {missing}."),
            code="go_live_check_failed",
            missing=", ".join(gaps),
        )


def _shipped(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: ShippedIn,
    now: dt.datetime,
) -> _Outcome:
    device = _current_device(session, order)
    terminal_service.mark_shipped(session, device, actor=principal.actor, now=now)
    record = {
        "carrier": payload.carrier,
        "tracking_number": payload.tracking_number.upper(),
        "serial_number": device.serial_number,
    }
    return _Outcome(
        target,
        record,
        payload.note or "",
        audit={"carrier": payload.carrier, "tracking_number": record["tracking_number"]},
    )


def _delivered(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: DeliveredIn,
    now: dt.datetime,
) -> _Outcome:
    at = as_utc(payload.received_at)
    if at > now + CLOCK_SKEW:
        _invalid(
            "received_at", "received_at.future", N_("The delivery time cannot be in the future.")
        )
    shipped_at = _step_time(session, order, S.SHIPPED)
    # People type minutes: a delivery in the minute the shipment was recorded is fine.
    if shipped_at is not None and at < shipped_at.replace(second=0, microsecond=0):
        _invalid(
            "received_at",
            "received_at.before_shipping",
            N_("The delivery time is before the device was shipped."),
        )
    record = {"received_by": payload.received_by, "received_at": at.isoformat()}
    return _Outcome(target, record, payload.note or "")


def _inspected(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: InspectionIn,
    now: dt.datetime,
) -> _Outcome:
    device = _current_device(session, order)
    errors: list[FieldError] = []
    damaged = payload.condition == Condition.DAMAGED
    if target is S.DAMAGED and not damaged:
        errors.append(
            FieldError(
                "condition",
                "condition.mismatch",
                N_('Reporting damage needs the condition "damaged".'),
            )
        )
    if damaged and not payload.notes:
        errors.append(
            FieldError("notes", "notes.required", N_("Describe the damage (and add photos)."))
        )
    try:
        _check_serial(payload.serial_number, device, required=True)
    except ValidationFailed as failed:
        errors.extend(failed.errors)
    if errors:
        raise ValidationFailed(errors)
    record = payload.model_dump(mode="json")
    return _Outcome(
        S.DAMAGED if damaged else S.INSPECTED,
        record,
        payload.notes or "",
        audit={"condition": str(payload.condition), "serial": device.serial_number},
    )


def _device_prepared(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: DevicePreparedIn,
    now: dt.datetime,
) -> _Outcome:
    terminal = _terminal(session, order)
    serial = payload.new_serial.strip().upper()
    candidate = terminal_repository.device_by_serial(session, serial)
    if candidate is None:
        _invalid("new_serial", "new_serial.unknown", N_("No device has this serial number."))
    assert candidate is not None
    if candidate.status != DeviceStatus.IN_STOCK:
        _invalid(
            "new_serial",
            "new_serial.not_in_stock",
            N_("Device {serial} is {status}, not in stock; choose a device in stock."),
            serial=candidate.serial_number,
            status=candidate.status,
        )
    if candidate.model_code != terminal.model_code:
        _invalid(
            "new_serial",
            "new_serial.model",
            N_("The replacement must be a {model} like the device it replaces."),
            model=terminal.model_code,
        )
    old = terminal_repository.device_of(session, terminal.id)
    provisioned = terminal_service.swap(
        session, deps.settings, deps.vault, terminal, serial, actor=principal.actor, now=now
    )
    order.device_id = provisioned.device.id
    if old is not None:
        order.replaced_device_id = old.id
    record = {
        "new_serial": provisioned.device.serial_number,
        "old_serial": old.serial_number if old else None,
        "kcv": provisioned.kcv,
    }
    return _Outcome(
        target,
        record,
        payload.note or "",
        provisioned=provisioned,
        audit={"new_serial": record["new_serial"], "kcv": provisioned.kcv},
    )


def _resolved(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: RepairIn,
    now: dt.datetime,
) -> _Outcome:
    record = payload.model_dump(mode="json")
    return _Outcome(target, record, payload.action)


def _swap_required(
    session: Session,
    deps: FieldworkDeps,
    order: WorkOrder,
    principal: Principal,
    target: S,
    payload: SwapRequiredIn,
    now: dt.datetime,
) -> _Outcome:
    """The repair cannot be done on site: a swap order takes over, for the same terminal,
    site and technician; operations prepare the replacement device."""
    terminal = _terminal(session, order)
    existing = repository.open_order_for_terminal(session, terminal.id, str(K.SWAP))
    if existing is not None:
        follow_up = existing
    else:
        device = terminal_repository.device_of(session, terminal.id)
        technician = (
            repository.usernames(session, [order.technician_id]).get(order.technician_id)
            if order.technician_id
            else None
        )
        data: dict[str, Any] = {
            "follow_up_of": {"number": order.number, "diagnosis": payload.diagnosis}
        }
        if technician:
            data[str(S.ASSIGNED)] = {"technician": technician}
        follow_up = WorkOrder(
            id=ids.new_id(),
            number=_next_number(session, now),
            kind=str(K.SWAP),
            status=str(S.ASSIGNED if order.technician_id else S.OPEN),
            merchant_id=order.merchant_id,
            terminal_id=terminal.id,
            device_id=None,
            replaced_device_id=device.id if device else None,
            technician_id=order.technician_id,
            site_address=order.site_address,
            contact_mobile=order.contact_mobile,
            appointment_at=None,
            due_at=sla.due_at(str(K.SWAP), now),
            sla_breached_at=None,
            data=data,
            created_at=now,
            created_by=principal.username,
            updated_at=now,
            completed_at=None,
        )
        session.add(follow_up)
        session.flush()
        _record_step(
            session,
            follow_up,
            principal.actor,
            "",
            S(follow_up.status),
            {"follow_up_of": order.number, "technician": technician},
            payload.diagnosis,
            now,
        )
        audit.record(
            session,
            principal.actor,
            "work_order.created",
            "work_order",
            follow_up.number,
            {"kind": follow_up.kind, "tid": terminal.tid, "follow_up_of": order.number},
        )
    record = {"diagnosis": payload.diagnosis, "swap_order": follow_up.number}
    return _Outcome(
        target,
        record,
        payload.diagnosis,
        follow_up=follow_up,
        audit={"swap_order": follow_up.number},
    )


_HANDLERS: dict[S, Handler] = {
    S.CANCELLED: _cancel,
    S.SCHEDULED: _schedule,
    S.CHECKED_IN: _check_in,
    S.PARAMETERS_LOADED: _parameters_loaded,
    S.ACCEPTANCE_PASSED: _acceptance,
    S.TRAINED: _training,
    S.COMPLETED: _complete,
    S.SHIPPED: _shipped,
    S.DELIVERED: _delivered,
    S.INSPECTED: _inspected,
    S.DAMAGED: _inspected,
    S.DEVICE_PREPARED: _device_prepared,
    S.RESOLVED: _resolved,
    S.SWAP_REQUIRED: _swap_required,
}


# --- Helpers ------------------------------------------------------------------------------------


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A typed time in UTC; one without a zone is Asia/Shanghai (a phone's local time)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(dt.UTC)


def _invalid(name: str, code: str, message: str, **params: str) -> None:
    raise ValidationFailed([FieldError(name, code, message, params)])


def _terminal(session: Session, order: WorkOrder) -> Terminal:
    terminal = (
        terminal_repository.terminal(session, order.terminal_id) if order.terminal_id else None
    )
    if terminal is None:
        raise Conflict(
            N_("Work order {number} names no terminal."),
            code="no_terminal",
            number=order.number,
        )
    return terminal


def _current_device(session: Session, order: WorkOrder) -> Device:
    """The device now serving the order's terminal (after a swap, the new one); the order
    follows it."""
    terminal = _terminal(session, order)
    device = terminal_repository.device_of(session, terminal.id)
    if device is None:
        raise Conflict(
            N_("Terminal {tid} has no device; operations must allocate or swap one first."),
            code="no_device",
            tid=terminal.tid,
        )
    if order.device_id != device.id:
        order.device_id = device.id
    return device


def _step_time(session: Session, order: WorkOrder, status: S) -> dt.datetime | None:
    times = [s.at for s in repository.steps(session, order.id) if s.to_status == status]
    return times[-1] if times else None


# --- Photos ----------------------------------------------------------------------------------------


def add_photo(
    session: Session,
    store: ContentStore,
    order: WorkOrder,
    principal: Principal,
    *,
    content: bytes,
    caption: str | None,
    now: dt.datetime,
) -> WorkOrderPhoto:
    """A photo taken on site (JPG or PNG, recognised by its bytes), screened like an
    applicant's document: decoded and re-encoded (metadata such as EXIF and its GPS
    position gone), trailing data, bombs and broken images refused (422 naming ``file``)."""
    if not (is_operations(principal) or is_assignee(principal, order)):
        raise _not_yours(order)
    if len(content) > limits.WORK_ORDER_PHOTO_BYTES_MAX:
        raise TooLarge(
            N_("The photo is larger than {limit_mb} MB."),
            code="file.too_large",
            limit_mb=str(limits.WORK_ORDER_PHOTO_BYTES_MAX // (1024 * 1024)),
        )
    verdict = sniff(content)
    if isinstance(verdict, Rejection):
        raise ValidationFailed([FieldError("file", verdict.code, verdict.message, verdict.params)])
    if verdict == PDF:
        raise ValidationFailed(
            [
                FieldError(
                    "file",
                    "file.type",
                    N_("Only JPG and PNG photos are accepted (the file's content is neither)."),
                )
            ]
        )
    screened = reencode_image(content, verdict)
    if isinstance(screened, Rejection):
        raise ValidationFailed(
            [FieldError("file", screened.code, screened.message, screened.params)]
        )
    text = (caption or "").strip()
    if len(text) > CAPTION_LENGTH_MAX:
        raise ValidationFailed(
            [
                FieldError(
                    "caption",
                    "caption.too_long",
                    N_("A caption has at most {max} characters."),
                    {"max": str(CAPTION_LENGTH_MAX)},
                )
            ]
        )
    if is_final(order.kind, order.status):
        raise Conflict(
            N_("Work order {number} is closed; photos can no longer be added."),
            code="work_order_closed",
            number=order.number,
        )
    if repository.photo_count(session, order.id) >= limits.WORK_ORDER_PHOTOS_MAX:
        raise Conflict(
            N_("This work order already has {limit} photos, the most allowed."),
            code="too_many_photos",
            limit=str(limits.WORK_ORDER_PHOTOS_MAX),
        )
    digest = store.put(screened.data)
    photo = WorkOrderPhoto(
        work_order_id=order.id,
        sha256=digest,
        content_type=screened.content_type,
        size_bytes=len(screened.data),
        caption=text,
        uploaded_by=principal.username,
        uploaded_at=now,
    )
    session.add(photo)
    order.updated_at = now
    session.flush()
    audit.record(
        session,
        principal.actor,
        "work_order.photo_added",
        "work_order",
        order.number,
        {"photo_id": photo.id, "sha256": digest, "status": order.status},
    )
    return photo


# --- SLA -------------------------------------------------------------------------------------------


def sla_state(order: WorkOrder, now: dt.datetime) -> sla.SlaState:
    return sla.state(
        order.due_at,
        now=now,
        completed_at=order.completed_at,
        stopped=is_final(order.kind, order.status) and order.status != S.COMPLETED,
    )


def merchant_of(session: Session, order: WorkOrder) -> Merchant:
    merchant = merchant_repository.get(session, order.merchant_id)
    assert merchant is not None  # a foreign key
    return merchant
