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
    assert not calendar_covers(date(2027, 1, 1))


def test_year_without_a_published_schedule_is_provisional_not_monday_to_friday(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calendar._provisional_years.discard(2099)
    is_working_day.cache_clear()
    with caplog.at_level(logging.ERROR, logger="poshub.core.calendar"):
        # 1 October 2099 is a Thursday: National Day, by the statutory rules.
        assert not is_working_day(date(2099, 10, 1))
        assert not is_working_day(date(2099, 10, 3))
        assert add_working_days(date(2099, 9, 30), 1) == date(2099, 10, 5)
        assert calendar.day_info(date(2099, 10, 5)).kind is calendar.DayKind.PROVISIONAL
    errors = [r for r in caplog.records if "2099" in r.getMessage()]
    assert len(errors) == 1
    assert 2099 in calendar.provisional_years_used()


def test_2027_new_year_is_a_provisional_holiday() -> None:
    # 2027-01-01 is a Friday; the Monday-to-Friday fallback counted it as a working day.
    assert date(2027, 1, 1).weekday() == 4
    assert not is_working_day(date(2027, 1, 1))
    assert next_working_day(date(2026, 12, 31)) == date(2027, 1, 4)
    info = calendar.day_info(date(2027, 1, 1))
    assert info.kind is calendar.DayKind.PROVISIONAL
    assert "元旦" in info.note


def test_2027_statutory_holidays() -> None:
    holidays = calendar.statutory_holidays(2027)
    spring = [d for d, name in holidays.items() if "春节" in name]
    # 除夕 2027-02-05 to 正月初三 2027-02-08.
    assert spring == [date(2027, 2, d) for d in range(5, 9)]
    assert date(2027, 4, 5) in holidays  # 清明
    assert date(2027, 6, 9) in holidays  # 端午, 五月初五
    assert date(2027, 9, 15) in holidays  # 中秋, 八月十五
    assert [date(2027, 10, d) in holidays for d in (1, 2, 3, 4)] == [True, True, True, False]
    assert len(holidays) == 13


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_statutory_rules_agree_with_the_published_schedules(year: int) -> None:
    # Every statutory holiday is a published holiday (the State Council adds bridge
    # days, never removes a statutory one) and the festival names match.
    import chinese_calendar

    for day, name in calendar.statutory_holidays(year).items():
        if year == 2024 and "春节" in name and day == date(2024, 2, 9):
            # 2024 was published under the 2013 rules: 除夕 was not yet a holiday.
            continue
        assert chinese_calendar.is_holiday(day), (day, name)
        _holiday, published = chinese_calendar.get_holiday_detail(day)
        assert published is not None, (day, name)


def test_published_years_start_in_2004() -> None:
    years = calendar.published_years()
    assert years.start == 2004
    assert 2026 in years


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
