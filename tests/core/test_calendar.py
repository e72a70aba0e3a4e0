from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poshub.core import calendar
from poshub.core.calendar import (
    add_working_days,
    calendar_covers,
    is_working_day,
    next_working_day,
    working_days_between,
)
from poshub.core.limits import WORKING_DAY_SEARCH_DAYS_MAX


def test_national_day_2026_is_a_holiday_week() -> None:
    for day in range(1, 8):
        assert not is_working_day(date(2026, 10, day))


def test_adjusted_saturday_is_a_working_day() -> None:
    assert date(2026, 10, 10).weekday() == 5
    assert is_working_day(date(2026, 10, 10))
    assert not is_working_day(date(2026, 10, 11))


def test_mid_autumn_2026_is_a_holiday() -> None:
    assert date(2026, 9, 25).weekday() == 4
    assert not is_working_day(date(2026, 9, 25))
    assert add_working_days(date(2026, 9, 24), 1) == date(2026, 9, 28)


def test_add_working_days_across_national_day() -> None:
    start = date(2026, 9, 30)
    assert add_working_days(start, 1) == date(2026, 10, 8)
    assert add_working_days(start, 3) == date(2026, 10, 10)
    assert add_working_days(start, 4) == date(2026, 10, 12)
    assert add_working_days(start, 7) == date(2026, 10, 15)


def test_add_zero_working_days_returns_start_even_on_a_holiday() -> None:
    assert add_working_days(date(2026, 10, 1), 0) == date(2026, 10, 1)


def test_negative_working_days_raise() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_working_days(date(2026, 1, 5), -1)


def test_search_bound_is_enforced() -> None:
    with pytest.raises(ValueError, match="search bound"):
        add_working_days(date(2026, 1, 5), WORKING_DAY_SEARCH_DAYS_MAX)


def test_next_working_day_is_strictly_after() -> None:
    assert next_working_day(date(2026, 9, 29)) == date(2026, 9, 30)
    assert next_working_day(date(2026, 9, 30)) == date(2026, 10, 8)


def test_working_days_between_across_the_holidays() -> None:
    # Half-open (start, end]: 9-28, 9-29, 9-30, 10-8, 10-9, 10-10, 10-12.
    assert working_days_between(date(2026, 9, 24), date(2026, 10, 12)) == 7
    assert working_days_between(date(2026, 9, 30), date(2026, 10, 7)) == 0
    assert working_days_between(date(2026, 9, 30), date(2026, 10, 8)) == 1


def test_working_days_between_is_zero_when_end_is_not_after_start() -> None:
    assert working_days_between(date(2026, 10, 8), date(2026, 10, 8)) == 0
    assert working_days_between(date(2026, 10, 9), date(2026, 10, 8)) == 0


def test_coverage() -> None:
    assert calendar_covers(date(2026, 10, 1))
    assert not calendar_covers(date(2099, 10, 1))


def test_fallback_year_is_monday_to_friday(caplog: pytest.LogCaptureFixture) -> None:
    calendar._warn_uncovered.cache_clear()
    with caplog.at_level(logging.WARNING, logger="poshub.core.calendar"):
        # 1 October 2099 is a Thursday: no National Day holiday is known that far out.
        assert is_working_day(date(2099, 10, 1))
        assert not is_working_day(date(2099, 10, 3))
        assert add_working_days(date(2099, 10, 2), 1) == date(2099, 10, 5)
        assert working_days_between(date(2099, 9, 27), date(2099, 10, 4)) == 5
    warnings = [r for r in caplog.records if "2099" in r.getMessage()]
    assert len(warnings) == 1


@given(
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 12, 31)),
    n=st.integers(min_value=1, max_value=30),
)
def test_add_working_days_agrees_with_working_days_between(start: date, n: int) -> None:
    end = add_working_days(start, n)
    assert is_working_day(end)
    assert end > start
    assert working_days_between(start, end) == n
    assert working_days_between(start, end - timedelta(days=1)) == n - 1
