"""Work-order state machines (R6-R11), one per kind, as data and pure functions.

Each kind has its own table of moves. A move is a *step*: the person doing it records
what the step requires (``fieldwork.schemas``), and ``STEP_PERFORMERS`` says who may
do it. Final states have no moves. An out-of-order move is a 409 naming the allowed
next steps.

Beyond the outline in the issue, three moves a real field operation needs:

- ``scheduled`` may repeat (the merchant moves the appointment) and is optional for a
  survey, a repair and a swap (a technician may simply walk in);
- a swap passes ``parameters_loaded`` too: the new device must download the terminal's
  parameters (MID, TID, host) before its acceptance test can succeed;
- an order can no longer be cancelled once its acceptance test passed (the terminal is
  live) or its delivery was inspected: it is finished instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from poshub.core.errors import N_, Conflict
from poshub.fieldwork.models import WorkOrderKind


class WorkOrderStatus(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    INSPECTED = "inspected"
    DAMAGED = "damaged"
    """Delivered damaged: final; operations then swaps the device."""
    DEVICE_PREPARED = "device_prepared"
    PARAMETERS_LOADED = "parameters_loaded"
    ACCEPTANCE_PASSED = "acceptance_passed"
    TRAINED = "trained"
    RESOLVED = "resolved"
    SWAP_REQUIRED = "swap_required"
    """A repair that needs a new device: final; a swap order continues it."""
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Performer(StrEnum):
    """Who records a step."""

    OPERATIONS = "operations"
    TECHNICIAN = "technician"
    """The technician the order is assigned to (nobody else)."""
    EITHER = "operations_or_technician"


S = WorkOrderStatus
K = WorkOrderKind


def _table(moves: dict[S, set[S]]) -> dict[S, frozenset[S]]:
    return {state: frozenset(targets) for state, targets in moves.items()}


TRANSITIONS: Final[dict[K, dict[S, frozenset[S]]]] = {
    K.SITE_SURVEY: _table(
        {
            S.OPEN: {S.ASSIGNED, S.CANCELLED},
            S.ASSIGNED: {S.SCHEDULED, S.CHECKED_IN, S.CANCELLED},
            S.SCHEDULED: {S.SCHEDULED, S.CHECKED_IN, S.CANCELLED},
            S.CHECKED_IN: {S.COMPLETED, S.CANCELLED},
            S.COMPLETED: set(),
            S.CANCELLED: set(),
        }
    ),
    K.SHIPPING: _table(
        {
            S.OPEN: {S.SHIPPED, S.CANCELLED},
            S.SHIPPED: {S.DELIVERED, S.CANCELLED},
            S.DELIVERED: {S.INSPECTED, S.DAMAGED, S.CANCELLED},
            S.INSPECTED: {S.COMPLETED},
            S.DAMAGED: set(),
            S.COMPLETED: set(),
            S.CANCELLED: set(),
        }
    ),
    K.INSTALLATION: _table(
        {
            S.OPEN: {S.ASSIGNED, S.CANCELLED},
            S.ASSIGNED: {S.SCHEDULED, S.CANCELLED},
            S.SCHEDULED: {S.SCHEDULED, S.CHECKED_IN, S.CANCELLED},
            S.CHECKED_IN: {S.PARAMETERS_LOADED, S.CANCELLED},
            S.PARAMETERS_LOADED: {S.ACCEPTANCE_PASSED, S.CANCELLED},
            S.ACCEPTANCE_PASSED: {S.TRAINED},
            S.TRAINED: {S.COMPLETED},
            S.COMPLETED: set(),
            S.CANCELLED: set(),
        }
    ),
    K.REPAIR: _table(
        {
            S.OPEN: {S.ASSIGNED, S.CANCELLED},
            S.ASSIGNED: {S.SCHEDULED, S.CHECKED_IN, S.CANCELLED},
            S.SCHEDULED: {S.SCHEDULED, S.CHECKED_IN, S.CANCELLED},
            S.CHECKED_IN: {S.RESOLVED, S.SWAP_REQUIRED, S.CANCELLED},
            S.RESOLVED: {S.COMPLETED},
            S.SWAP_REQUIRED: set(),
            S.COMPLETED: set(),
            S.CANCELLED: set(),
        }
    ),
    K.SWAP: _table(
        {
            S.OPEN: {S.ASSIGNED, S.CANCELLED},
            S.ASSIGNED: {S.DEVICE_PREPARED, S.CANCELLED},
            S.DEVICE_PREPARED: {S.SCHEDULED, S.CHECKED_IN, S.CANCELLED},
            S.SCHEDULED: {S.SCHEDULED, S.CHECKED_IN, S.CANCELLED},
            S.CHECKED_IN: {S.PARAMETERS_LOADED, S.CANCELLED},
            S.PARAMETERS_LOADED: {S.ACCEPTANCE_PASSED, S.CANCELLED},
            S.ACCEPTANCE_PASSED: {S.COMPLETED},
            S.COMPLETED: set(),
            S.CANCELLED: set(),
        }
    ),
}

HAPPY_PATHS: Final[dict[K, tuple[S, ...]]] = {
    K.SITE_SURVEY: (S.OPEN, S.ASSIGNED, S.SCHEDULED, S.CHECKED_IN, S.COMPLETED),
    K.SHIPPING: (S.OPEN, S.SHIPPED, S.DELIVERED, S.INSPECTED, S.COMPLETED),
    K.INSTALLATION: (
        S.OPEN,
        S.ASSIGNED,
        S.SCHEDULED,
        S.CHECKED_IN,
        S.PARAMETERS_LOADED,
        S.ACCEPTANCE_PASSED,
        S.TRAINED,
        S.COMPLETED,
    ),
    K.REPAIR: (S.OPEN, S.ASSIGNED, S.SCHEDULED, S.CHECKED_IN, S.RESOLVED, S.COMPLETED),
    K.SWAP: (
        S.OPEN,
        S.ASSIGNED,
        S.DEVICE_PREPARED,
        S.SCHEDULED,
        S.CHECKED_IN,
        S.PARAMETERS_LOADED,
        S.ACCEPTANCE_PASSED,
        S.COMPLETED,
    ),
}
"""The usual course of each kind (what the technician's progress bar shows)."""

_OPERATIONS_STEPS = frozenset({S.ASSIGNED, S.CANCELLED, S.SHIPPED, S.DELIVERED, S.DEVICE_PREPARED})
_SHARED_STEPS = frozenset({S.SCHEDULED, S.INSPECTED, S.DAMAGED})


def performer(kind: str, target: S) -> Performer:
    """Who records ``target`` in an order of ``kind``.

    Operations create, assign, cancel, ship and prepare devices. The assigned technician
    does the work on site. Either may book the appointment (dispatch often phones the
    merchant) and record the inspection of a delivery (the merchant may report it by
    phone when no technician was there), and either closes a shipping order.
    """
    if target in _OPERATIONS_STEPS:
        return Performer.OPERATIONS
    if target in _SHARED_STEPS or (kind == K.SHIPPING and target == S.COMPLETED):
        return Performer.EITHER
    return Performer.TECHNICIAN


def may_perform(who: Performer, *, is_operations: bool, is_assignee: bool) -> bool:
    if who is Performer.OPERATIONS:
        return is_operations
    if who is Performer.TECHNICIAN:
        return is_assignee
    return is_operations or is_assignee


def kind_of(kind: str) -> K:
    return K(kind)


def allowed_next(kind: str, current: str) -> frozenset[S]:
    return TRANSITIONS[K(kind)][S(current)]


def is_final(kind: str, current: str) -> bool:
    return not allowed_next(kind, current)


def final_states(kind: str) -> frozenset[S]:
    return frozenset(s for s, targets in TRANSITIONS[K(kind)].items() if not targets)


ALL_FINAL: Final = frozenset(state for kind in K for state in final_states(kind))
"""States that are final in every kind they occur in (used by the open-order queries)."""


def ensure_transition(kind: str, current: str, target: str) -> S:
    """Return ``target`` if an order of ``kind`` in ``current`` may move there, else raise
    409 naming the allowed next steps."""
    allowed = allowed_next(kind, current)
    try:
        wanted = S(target)
    except ValueError:
        wanted = None
    if wanted is None or wanted not in allowed:
        raise Conflict(
            N_(
                "A {kind} work order in state {current} cannot move to {target}; "
                "allowed next: {allowed}."
            ),
            code="invalid_work_order_transition",
            kind=str(kind),
            current=str(current),
            target=str(target)[:40],
            allowed=", ".join(sorted(allowed)) or "none",
        )
    return wanted


def ensure_step(kind: str, current: str, target: str) -> S:
    """``ensure_transition``, and also a hand-over: ``assigned`` is a step on any order
    that is not finished (another technician takes it over; the state stays where the
    table has no such move)."""
    if target == S.ASSIGNED and not is_final(kind, current):
        return S.ASSIGNED
    return ensure_transition(kind, current, target)


# --- What each step must have recorded ---------------------------------------------------

GO_LIVE_RECORDS: Final[dict[S, tuple[str, ...]]] = {
    S.CHECKED_IN: ("serial_number",),
    S.PARAMETERS_LOADED: ("parameters_version", "fetched_at"),
    S.ACCEPTANCE_PASSED: ("reference", "response_time_ms", "receipt_printed", "record_matches"),
    S.TRAINED: ("signer_name", "topics"),
}
"""Go-live (R11) is a final check that every earlier step of an installation left its
record: the data keys each step must hold, and hold truthfully."""


def go_live_gaps(records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``step.field`` for every record missing before an installation may go live.

    ``records`` maps a step to the data recorded at it (``WorkOrder.data``)."""
    gaps: list[str] = []
    for step, fields in GO_LIVE_RECORDS.items():
        record = records.get(str(step)) or {}
        for name in fields:
            value = record.get(name)
            if value is None or value == "" or value == [] or value is False:
                gaps.append(f"{step}.{name}")
    topics = (records.get(str(S.TRAINED)) or {}).get("topics") or []
    missing_topics = [t for t in REQUIRED_TRAINING_TOPICS if t not in topics]
    if missing_topics and f"{S.TRAINED}.topics" not in gaps:
        gaps.append(f"{S.TRAINED}.topics")
    return gaps


# --- Vocabularies --------------------------------------------------------------------------


class NetworkKind(StrEnum):
    CELLULAR_4G = "4g"
    CELLULAR_5G = "5g"
    WIFI = "wifi"
    ETHERNET = "ethernet"
    NONE = "none"


class Condition(StrEnum):
    OK = "ok"
    DAMAGED = "damaged"


class TrainingTopic(StrEnum):
    SALE = "sale"
    VOID = "void"
    REFUND = "refund"
    SETTLEMENT = "settlement"
    """Settlement / batch close (结算)."""
    RECEIPTS = "receipts"
    FAULTS = "faults"
    """Reporting faults (报修)."""
    SECURITY = "security"
    """Card and PIN security."""


REQUIRED_TRAINING_TOPICS: Final = (
    TrainingTopic.SALE,
    TrainingTopic.VOID,
    TrainingTopic.REFUND,
    TrainingTopic.SETTLEMENT,
)
"""The merchant signs off at least these before a terminal goes live."""


# --- Labels (English msgids, translated at the edge) ------------------------------------

KIND_LABELS: Final = {
    "site_survey": N_("Site survey"),
    "shipping": N_("Shipping"),
    "installation": N_("Installation"),
    "repair": N_("Repair"),
    "swap": N_("Device swap"),
}
STATUS_LABELS: Final = {
    "open": N_("New order"),
    "assigned": N_("Assigned"),
    "scheduled": N_("Appointment booked"),
    "checked_in": N_("Checked in on site"),
    "shipped": N_("Shipped"),
    "delivered": N_("Delivered"),
    "inspected": N_("Inspected on arrival"),
    "damaged": N_("Delivered damaged"),
    "device_prepared": N_("Replacement device prepared"),
    "parameters_loaded": N_("Parameters loaded"),
    "acceptance_passed": N_("Acceptance test passed"),
    "trained": N_("Training signed off"),
    "resolved": N_("Repaired"),
    "swap_required": N_("Swap required"),
    "completed": N_("Completed"),
    "cancelled": N_("Cancelled"),
}
STEP_LABELS: Final = {
    "assigned": N_("Assign a technician"),
    "scheduled": N_("Book the appointment"),
    "checked_in": N_("Check in on site"),
    "shipped": N_("Ship the device"),
    "delivered": N_("Record the delivery"),
    "inspected": N_("Inspect on arrival"),
    "damaged": N_("Report damage on arrival"),
    "device_prepared": N_("Prepare the replacement device"),
    "parameters_loaded": N_("Confirm the parameters are loaded"),
    "acceptance_passed": N_("Record the acceptance test"),
    "trained": N_("Training sign-off"),
    "resolved": N_("Record the repair"),
    "swap_required": N_("The device must be swapped"),
    "completed": N_("Complete"),
    "cancelled": N_("Cancel the order"),
}
COMPLETION_LABELS: Final = {
    "site_survey": N_("Submit the survey"),
    "installation": N_("Go live"),
    "repair": N_("Close the repair"),
    "swap": N_("Close the swap"),
    "shipping": N_("Close the shipment"),
}


def step_label(kind: str, target: str) -> str:
    """What the button of a step says (completing an installation is its go-live)."""
    if target == S.COMPLETED:
        return COMPLETION_LABELS[kind]
    return STEP_LABELS[target]


NETWORK_LABELS: Final = {
    "4g": N_("4G"),
    "5g": N_("5G"),
    "wifi": N_("Wi-Fi"),
    "ethernet": N_("Ethernet"),
    "none": N_("No network"),
}
TOPIC_LABELS: Final = {
    "sale": N_("Sale"),
    "void": N_("Void"),
    "refund": N_("Refund"),
    "settlement": N_("Settlement / batch close"),
    "receipts": N_("Receipts"),
    "faults": N_("Reporting faults"),
    "security": N_("Card and PIN security"),
}
CONDITION_LABELS: Final = {"ok": N_("Intact"), "damaged": N_("Damaged")}
