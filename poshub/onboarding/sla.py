"""The review clock, counted in Chinese working days (pure)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from poshub.core.calendar import add_working_days, working_days_between


class SlaState(StrEnum):
    ON_TRACK = "on_track"
    DUE_TODAY = "due_today"
    OVERDUE = "overdue"
    """Past the target date but not yet breached."""
    BREACHED = "breached"


def deadlines(
    start: dt.date, paused_working_days: int, target_working_days: int, breach_working_days: int
) -> tuple[dt.date, dt.date]:
    """Target and breach dates: the n-th working day after ``start``, pushed back by the
    working days the application spent waiting for the applicant."""
    return (
        add_working_days(start, target_working_days + paused_working_days),
        add_working_days(start, breach_working_days + paused_working_days),
    )


def state(today: dt.date, target: dt.date, breach: dt.date) -> SlaState:
    if today > breach:
        return SlaState.BREACHED
    if today > target:
        return SlaState.OVERDUE
    if today == target:
        return SlaState.DUE_TODAY
    return SlaState.ON_TRACK


def elapsed(start: dt.date, today: dt.date, paused_working_days: int) -> int:
    """Working days the review has been running, not counting time with the applicant."""
    return max(0, working_days_between(start, today) - paused_working_days)
