"""Chinese working-day calendar for review SLAs and T+1 settlement.

A working day is one on which banks and offices in mainland China work: Monday
to Friday except public holidays, plus the weekend days the State Council moves
into a working week (调休). The schedule comes from ``chinese_calendar``, which
only knows the years the State Council has already published; outside them we
fall back to Monday to Friday and log a warning once per year.
"""

from __future__ import annotations

import functools
import logging
from datetime import date, timedelta

import chinese_calendar

from poshub.core.limits import WORKING_DAY_SEARCH_DAYS_MAX

_log = logging.getLogger(__name__)
_ONE_DAY = timedelta(days=1)


@functools.cache
def _year_covered(year: int) -> bool:
    # chinese_calendar publishes coverage only through the NotImplementedError it
    # raises, so we probe one day of the year and remember the answer.
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


@functools.cache
def _warn_uncovered(year: int) -> None:
    # The cache makes this fire once per year and process, which is enough to be
    # noticed without flooding the log during a long walk over the year.
    _log.warning(
        "No official holiday schedule for %d; treating Monday to Friday as working days. "
        "Upgrade chinese-calendar once the State Council publishes it.",
        year,
    )


def calendar_covers(d: date) -> bool:
    """Whether the official holiday schedule for ``d``'s year is known."""
    return _year_covered(d.year)


@functools.lru_cache(maxsize=4096)
def is_working_day(d: date) -> bool:
    """Whether ``d`` is a working day in mainland China (cached: the calendar is fixed
    once published, and SLA and settlement dates ask about the same days again and again)."""
    if _year_covered(d.year):
        return bool(chinese_calendar.is_workday(d))
    _warn_uncovered(d.year)
    return d.weekday() < 5


def add_working_days(start: date, n: int) -> date:
    """The ``n``-th working day strictly after ``start``; ``start`` itself when ``n`` is 0."""
    if n < 0:
        raise ValueError("n must not be negative")
    if n == 0:
        return start
    found = 0
    day = start
    # The walk is bounded so that a huge n (a typing error, or an attack through a
    # settings value) fails loudly instead of spinning.
    for _ in range(WORKING_DAY_SEARCH_DAYS_MAX):
        day += _ONE_DAY
        if is_working_day(day):
            found += 1
            if found == n:
                return day
    raise ValueError(
        f"{n} working days after {start.isoformat()} lie beyond the "
        f"{WORKING_DAY_SEARCH_DAYS_MAX}-day search bound"
    )


def next_working_day(d: date) -> date:
    """The first working day strictly after ``d``."""
    return add_working_days(d, 1)


def working_days_between(start: date, end: date) -> int:
    """Number of working days in the half-open interval ``(start, end]``."""
    if end <= start:
        return 0
    count = 0
    day = start + _ONE_DAY
    while day <= end:
        if is_working_day(day):
            count += 1
        day += _ONE_DAY
    return count
