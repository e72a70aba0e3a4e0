"""Chinese working-day calendar for review SLAs, work-order SLAs and T+1 settlement.

A working day is one on which banks and offices in mainland China work: Monday
to Friday except public holidays, plus the weekend days the State Council moves
into a working week (调休). A day's answer comes, in this order, from

1. the ``working_days`` table (``poshub.core.workdays``), installed here in memory with
   :func:`install` at start-up and after ``poshub calendar load``: published schedules
   loaded by operations and their manual edits;
2. ``chinese_calendar``, which knows the years the State Council had published when
   the pinned version was released (its rows are also what seeds the table);
3. for any later year, the statutory holidays of 《全国年节及纪念日放假办法》 (2024
   revision) with lunar dates computed, plus weekends: a *provisional* schedule, logged
   at ERROR once per year so that operations load the published one. Make-up working
   days (调休) are unknown until published, so a provisional year has none.

Never Monday to Friday alone: that counted 2027-01-01 as a working day.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

import chinese_calendar
from lunar_python import Lunar

from poshub.core.limits import WORKING_DAY_SEARCH_DAYS_MAX

_log = logging.getLogger(__name__)
_ONE_DAY = timedelta(days=1)


class DayKind(StrEnum):
    PUBLISHED = "published"
    """From chinese-calendar or a schedule file loaded by operations."""
    PROVISIONAL = "provisional"
    """Computed from the statutory rules for a year with no published schedule."""
    MANUAL = "manual"
    """Edited by operations."""


@dataclass(frozen=True, slots=True)
class DayInfo:
    day: date
    is_working: bool
    kind: DayKind
    note: str = ""


_installed: dict[date, DayInfo] = {}
_provisional_years: set[int] = set()


_installed_version: list[object] = [None]


def install(days: Mapping[date, DayInfo], version: object = None) -> None:
    """Replace the in-memory copy of the ``working_days`` table (see module docstring);
    ``version`` identifies the table's state it was read at (``workdays.refresh``)."""
    _installed.clear()
    _installed.update(days)
    _installed_version[0] = version
    is_working_day.cache_clear()


def installed_version() -> object:
    return _installed_version[0]


def installed_days() -> int:
    return len(_installed)


def provisional_years_used() -> frozenset[int]:
    """Years this process answered from the statutory rules (no published schedule)."""
    return frozenset(_provisional_years)


@functools.cache
def _year_covered(year: int) -> bool:
    # chinese_calendar publishes coverage only through the NotImplementedError it
    # raises, so we probe one day of the year and remember the answer.
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def published_years() -> range:
    """The years chinese-calendar covers (2004 to its last published year)."""
    first = min(chinese_calendar.holidays).year
    last = first
    while _year_covered(last + 1):
        last += 1
    return range(first, last + 1)


def _alert_provisional(year: int) -> None:
    if year in _provisional_years:
        return
    # Once per year and process: loud enough for operations' log alerting, without
    # flooding the log during a walk over the year.
    _provisional_years.add(year)
    _log.error(
        "No published holiday schedule for %d; using the provisional statutory schedule "
        "(holidays of the 2024 rules and weekends, no make-up days). Load the State "
        "Council's schedule with `poshub calendar load FILE`.",
        year,
    )


@functools.cache
def statutory_holidays(year: int) -> dict[date, str]:
    """Public holidays of 《全国年节及纪念日放假办法》 (2024 revision) in ``year``, without
    the State Council's adjustments (days moved or bridged): 元旦 1 day, 春节 除夕 to 正月
    初三 4 days, 清明 1, 劳动节 May 1-2, 端午 1, 中秋 1, 国庆 Oct 1-3."""
    holidays: dict[date, str] = {date(year, 1, 1): "元旦 New Year's Day"}
    new_year = Lunar.fromYmd(year, 1, 1).getSolar()
    first = date(new_year.getYear(), new_year.getMonth(), new_year.getDay())
    for offset in range(-1, 3):
        holidays[first + timedelta(days=offset)] = "春节 Spring Festival"
    qingming = Lunar.fromYmd(year, 1, 1).getJieQiTable()["清明"]
    holidays[date(qingming.getYear(), qingming.getMonth(), qingming.getDay())] = (
        "清明节 Tomb-sweeping Day"
    )
    for day in (1, 2):
        holidays[date(year, 5, day)] = "劳动节 Labour Day"
    for month, lunar_day, name in (
        (5, 5, "端午节 Dragon Boat Festival"),
        (8, 15, "中秋节 Mid-autumn Festival"),
    ):
        solar = Lunar.fromYmd(year, month, lunar_day).getSolar()
        holidays[date(solar.getYear(), solar.getMonth(), solar.getDay())] = name
    for day in (1, 2, 3):
        holidays[date(year, 10, day)] = "国庆节 National Day"
    # 除夕 of the next lunar year can fall on 31 December only in theory; keep the
    # answer to the asked year.
    return {d: name for d, name in holidays.items() if d.year == year}


def provisional_day(d: date) -> DayInfo:
    """``d`` under the statutory rules and weekends alone."""
    name = statutory_holidays(d.year).get(d)
    if name is not None:
        return DayInfo(d, False, DayKind.PROVISIONAL, name)
    return DayInfo(d, d.weekday() < 5, DayKind.PROVISIONAL, "")


def published_day(d: date) -> DayInfo | None:
    """``d`` as chinese-calendar publishes it, or None outside its years."""
    if not _year_covered(d.year):
        return None
    working = bool(chinese_calendar.is_workday(d))
    _holiday, name = chinese_calendar.get_holiday_detail(d)
    note = "" if not name else f"{name} 调休 make-up working day" if working else str(name)
    return DayInfo(d, working, DayKind.PUBLISHED, note)


def day_info(d: date) -> DayInfo:
    """``d``'s entry: table, else chinese-calendar, else provisional (alerting once a year)."""
    found = _installed.get(d)
    if found is not None:
        return found
    published = published_day(d)
    if published is not None:
        return published
    _alert_provisional(d.year)
    return provisional_day(d)


def calendar_covers(d: date) -> bool:
    """Whether a published schedule for ``d``'s year is known (table or chinese-calendar)."""
    return day_info(d).kind is not DayKind.PROVISIONAL


@functools.lru_cache(maxsize=4096)
def is_working_day(d: date) -> bool:
    """Whether ``d`` is a working day in mainland China (cached: the calendar is fixed
    once published, and SLA and settlement dates ask about the same days again and again;
    :func:`install` clears the cache)."""
    return day_info(d).is_working


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
