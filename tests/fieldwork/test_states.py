"""The work-order state machines, one per kind: every happy path walks, every move that
is not in the table is a 409 naming the allowed next steps."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from poshub.core.clock import SHANGHAI
from poshub.core.errors import Conflict
from poshub.fieldwork import sla
from poshub.fieldwork.models import WorkOrderKind
from poshub.fieldwork.states import (
    ALL_FINAL,
    HAPPY_PATHS,
    REQUIRED_TRAINING_TOPICS,
    STATUS_LABELS,
    STEP_LABELS,
    TRANSITIONS,
    Performer,
    WorkOrderStatus,
    allowed_next,
    ensure_transition,
    go_live_gaps,
    is_final,
    may_perform,
    performer,
)

S = WorkOrderStatus
K = WorkOrderKind

EXPECTED_PATHS = {
    K.SITE_SURVEY: ["open", "assigned", "scheduled", "checked_in", "completed"],
    K.SHIPPING: ["open", "shipped", "delivered", "inspected", "completed"],
    K.INSTALLATION: [
        "open",
        "assigned",
        "scheduled",
        "checked_in",
        "parameters_loaded",
        "acceptance_passed",
        "trained",
        "completed",
    ],
    K.REPAIR: ["open", "assigned", "scheduled", "checked_in", "resolved", "completed"],
    K.SWAP: [
        "open",
        "assigned",
        "device_prepared",
        "scheduled",
        "checked_in",
        "parameters_loaded",
        "acceptance_passed",
        "completed",
    ],
}


@pytest.mark.parametrize("kind", list(K))
def test_happy_path_walks_to_completed(kind: K) -> None:
    path = HAPPY_PATHS[kind]
    assert [str(s) for s in path] == EXPECTED_PATHS[kind]
    for current, target in itertools.pairwise(path):
        assert ensure_transition(kind, current, target) is target
    assert is_final(kind, path[-1])


@pytest.mark.parametrize("kind", list(K))
def test_every_state_is_reachable_and_has_a_label(kind: K) -> None:
    table = TRANSITIONS[kind]
    reachable = {S.OPEN}
    frontier = [S.OPEN]
    while frontier:
        for target in table[frontier.pop()]:
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(table)
    for state in table:
        assert str(state) in STATUS_LABELS
        for target in table[state]:
            assert str(target) in STEP_LABELS
            assert target in table, f"{kind}: {state} → {target} leads outside the table"


def _every_illegal_move() -> list[tuple[K, S, S]]:
    return [
        (kind, current, target)
        for kind, table in TRANSITIONS.items()
        for current in table
        for target in S
        if target not in table[current]
    ]


@pytest.mark.parametrize(("kind", "current", "target"), _every_illegal_move(), ids=str)
def test_out_of_order_move_is_409_naming_the_allowed_steps(kind: K, current: S, target: S) -> None:
    with pytest.raises(Conflict) as raised:
        ensure_transition(kind, current, target)
    error = raised.value
    assert error.status_code == 409
    assert error.code == "invalid_work_order_transition"
    assert error.params["current"] == current
    assert error.params["target"] == target
    allowed = sorted(allowed_next(kind, current))
    assert error.params["allowed"] == (", ".join(allowed) or "none")
    assert "{allowed}" in error.message


def test_examples_read_well() -> None:
    with pytest.raises(Conflict) as raised:
        ensure_transition("installation", "scheduled", "acceptance_passed")
    assert raised.value.params["allowed"] == "cancelled, checked_in, scheduled"
    with pytest.raises(Conflict) as raised:
        ensure_transition("installation", "completed", "cancelled")
    assert raised.value.params["allowed"] == "none"
    # A target that is no state at all is refused the same way.
    with pytest.raises(Conflict) as raised:
        ensure_transition("repair", "open", "teleported")
    assert raised.value.params["allowed"] == "assigned, cancelled"


def test_branches() -> None:
    assert ensure_transition("repair", "checked_in", "swap_required") is S.SWAP_REQUIRED
    assert is_final("repair", "swap_required")
    assert ensure_transition("shipping", "delivered", "damaged") is S.DAMAGED
    assert is_final("shipping", "damaged")
    # The appointment can move; a survey can be done without one.
    assert ensure_transition("installation", "scheduled", "scheduled") is S.SCHEDULED
    assert ensure_transition("site_survey", "assigned", "checked_in") is S.CHECKED_IN
    # An installation always books one.
    with pytest.raises(Conflict):
        ensure_transition("installation", "assigned", "checked_in")


@pytest.mark.parametrize("kind", list(K))
def test_cancel_from_every_open_state_until_the_point_of_no_return(kind: K) -> None:
    no_return = {S.ACCEPTANCE_PASSED, S.TRAINED, S.INSPECTED, S.RESOLVED}
    for state, targets in TRANSITIONS[kind].items():
        if not targets:
            continue
        assert (S.CANCELLED in targets) == (state not in no_return), (kind, state)


def test_final_states() -> None:
    assert {S.COMPLETED, S.CANCELLED, S.DAMAGED, S.SWAP_REQUIRED} == ALL_FINAL
    for kind, table in TRANSITIONS.items():
        for state, targets in table.items():
            assert (not targets) == (state in ALL_FINAL), (kind, state)


def test_who_records_which_step() -> None:
    assert performer("installation", S.ASSIGNED) is Performer.OPERATIONS
    assert performer("installation", S.CANCELLED) is Performer.OPERATIONS
    assert performer("shipping", S.SHIPPED) is Performer.OPERATIONS
    assert performer("shipping", S.DELIVERED) is Performer.OPERATIONS
    assert performer("swap", S.DEVICE_PREPARED) is Performer.OPERATIONS
    assert performer("installation", S.CHECKED_IN) is Performer.TECHNICIAN
    assert performer("installation", S.ACCEPTANCE_PASSED) is Performer.TECHNICIAN
    assert performer("installation", S.COMPLETED) is Performer.TECHNICIAN
    assert performer("shipping", S.COMPLETED) is Performer.EITHER
    assert performer("shipping", S.INSPECTED) is Performer.EITHER
    assert performer("repair", S.SCHEDULED) is Performer.EITHER

    assert may_perform(Performer.OPERATIONS, is_operations=True, is_assignee=False)
    assert not may_perform(Performer.OPERATIONS, is_operations=False, is_assignee=True)
    assert may_perform(Performer.TECHNICIAN, is_operations=False, is_assignee=True)
    assert not may_perform(Performer.TECHNICIAN, is_operations=True, is_assignee=False)
    assert may_perform(Performer.EITHER, is_operations=False, is_assignee=True)
    assert not may_perform(Performer.EITHER, is_operations=False, is_assignee=False)


COMPLETE_RECORDS: dict[str, dict[str, Any]] = {
    "checked_in": {"serial_number": "SN-A8-000001"},
    "parameters_loaded": {"parameters_version": 1, "fetched_at": "2026-11-23T02:00:00+00:00"},
    "acceptance_passed": {
        "reference": "123456789012",
        "response_time_ms": 900,
        "receipt_printed": True,
        "record_matches": True,
    },
    "trained": {"signer_name": "陈明", "topics": [str(t) for t in REQUIRED_TRAINING_TOPICS]},
}


def test_go_live_needs_every_record() -> None:
    assert go_live_gaps(COMPLETE_RECORDS) == []
    assert go_live_gaps({}) == [
        "checked_in.serial_number",
        "parameters_loaded.parameters_version",
        "parameters_loaded.fetched_at",
        "acceptance_passed.reference",
        "acceptance_passed.response_time_ms",
        "acceptance_passed.receipt_printed",
        "acceptance_passed.record_matches",
        "trained.signer_name",
        "trained.topics",
    ]
    failed = {
        **COMPLETE_RECORDS,
        "acceptance_passed": {**COMPLETE_RECORDS["acceptance_passed"], "receipt_printed": False},
    }
    assert go_live_gaps(failed) == ["acceptance_passed.receipt_printed"]
    short = {**COMPLETE_RECORDS, "trained": {"signer_name": "陈明", "topics": ["sale"]}}
    assert go_live_gaps(short) == ["trained.topics"]


# --- SLA (pure) --------------------------------------------------------------------------------


def _shanghai(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def test_due_at_counts_chinese_working_days() -> None:
    # Created on Monday 2025-09-29: 1 Oct to 8 Oct 2025 is the National Day holiday and
    # Saturday 11 Oct is a make-up working day. A repair (1 working day) is due Tuesday
    # 30 Sep; a swap (2) on Thursday 9 Oct; an installation (5) on Monday 13 Oct (9, 10,
    # 11 and 13 Oct), not on Monday 6 Oct as Monday-to-Friday counting would have it.
    created = _shanghai(2025, 9, 29, 10, 0)
    assert sla.due_at("repair", created) == _shanghai(2025, 9, 30, 23, 59, 59)
    assert sla.due_at("swap", created) == _shanghai(2025, 10, 9, 23, 59, 59)
    assert sla.due_at("installation", created) == _shanghai(2025, 10, 13, 23, 59, 59)
    assert sla.due_at("installation", created).tzinfo is not None


def test_sla_state() -> None:
    due = _shanghai(2025, 10, 9, 23, 59, 59)
    on = sla.state
    assert on(due, now=_shanghai(2025, 10, 8, 12), completed_at=None, stopped=False) == "on_track"
    assert on(due, now=_shanghai(2025, 10, 9, 8), completed_at=None, stopped=False) == "due_today"
    assert on(due, now=_shanghai(2025, 10, 10, 0, 0, 1), completed_at=None, stopped=False) == (
        "breached"
    )
    assert on(due, now=_shanghai(2025, 10, 20), completed_at=due, stopped=False) == "met"
    late = _shanghai(2025, 10, 10, 9)
    assert on(due, now=_shanghai(2025, 10, 20), completed_at=late, stopped=False) == "missed"
    assert on(due, now=_shanghai(2025, 10, 20), completed_at=None, stopped=True) == "stopped"
