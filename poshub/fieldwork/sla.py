"""Work-order deadlines, counted in Chinese working days (pure).

An order of a kind with an SLA of *n* working days is due by the end of the *n*-th
working day after the day it was created (Asia/Shanghai): created on a Friday before a
Golden Week, a two-day order is due on the second working day after the holiday.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Final

from poshub.core import limits
from poshub.core.calendar import add_working_days
from poshub.core.clock import SHANGHAI, business_date
from poshub.core.errors import N_

END_OF_DAY: Final = dt.time(23, 59, 59)


class SlaState(StrEnum):
    ON_TRACK = "on_track"
    DUE_TODAY = "due_today"
    BREACHED = "breached"
    """Past its deadline and not finished."""
    MET = "met"
    """Finished by its deadline."""
    MISSED = "missed"
    """Finished after its deadline."""
    STOPPED = "stopped"
    """Cancelled, or ended in a state that hands over to another order."""


SLA_LABELS: Final = {
    "on_track": N_("On track"),
    "due_today": N_("Due today"),
    "breached": N_("SLA breached"),
    "met": N_("Done in time"),
    "missed": N_("Done late"),
    "stopped": N_("Stopped"),
}


def working_days_for(kind: str) -> int:
    return limits.WORK_ORDER_SLA_WORKING_DAYS[kind]


def due_at(kind: str, created_at: dt.datetime) -> dt.datetime:
    """The deadline (UTC) of an order of ``kind`` created at ``created_at``."""
    day = add_working_days(business_date(created_at), working_days_for(kind))
    return dt.datetime.combine(day, END_OF_DAY, tzinfo=SHANGHAI).astimezone(dt.UTC)


def state(
    due: dt.datetime,
    *,
    now: dt.datetime,
    completed_at: dt.datetime | None,
    stopped: bool,
) -> SlaState:
    if completed_at is not None:
        return SlaState.MET if completed_at <= due else SlaState.MISSED
    if stopped:
        return SlaState.STOPPED
    if now > due:
        return SlaState.BREACHED
    if business_date(now) == business_date(due):
        return SlaState.DUE_TODAY
    return SlaState.ON_TRACK
