"""The retention schedule (pure): how long a closed merchant's personal data is kept."""

from __future__ import annotations

import datetime as dt


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` earlier (28 February for a 29 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def retained_until(terminated_on: dt.date, years: int) -> dt.date:
    """The last day a merchant terminated on ``terminated_on`` is kept whole: the
    anniversary ``years`` later. The purge may run from the next day."""
    return years_after(terminated_on, years)


def purge_cutoff(today: dt.date, years: int) -> dt.date:
    """Merchants terminated *before* this date are past their retention on ``today``."""
    return years_before(today, years)


def is_due(terminated_on: dt.date | None, today: dt.date, years: int) -> bool:
    return terminated_on is not None and terminated_on < purge_cutoff(today, years)
