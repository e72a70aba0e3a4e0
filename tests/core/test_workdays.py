"""The working_days table: seeding, schedule files, and what the calendar answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import chinese_calendar
import pytest
from sqlalchemy import func, select

from poshub.core import calendar, workdays
from poshub.core.calendar import DayKind
from poshub.core.clock import settlement_date
from poshub.core.db import Database
from poshub.core.workdays import ScheduleError, WorkingDay

SCHEDULE_2027 = """date,is_working,note
2027-01-01,false,元旦
2027-02-05,false,春节
2027-02-06,true,春节调休
"""


@pytest.fixture(autouse=True)
def _empty_calendar() -> Iterator[None]:
    calendar.install({})
    yield
    calendar.install({})


def _count(database: Database) -> int:
    with database.unit_of_work(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(WorkingDay)) or 0)


def test_seed_fills_chinese_calendars_years_once_and_agrees_with_it(database: Database) -> None:
    with database.unit_of_work() as uow:
        inserted = workdays.seed_published(uow.session)
        uow.commit()
    years = calendar.published_years()
    assert inserted == (dt.date(years.stop, 1, 1) - dt.date(years.start, 1, 1)).days
    with database.unit_of_work() as uow:
        assert workdays.seed_published(uow.session) == 0
        workdays.refresh(uow.session)
    for day in (dt.date(2026, 10, 1), dt.date(2026, 10, 10), dt.date(2025, 1, 28)):
        info = calendar.day_info(day)
        assert info.kind is DayKind.PUBLISHED
        assert info.is_working == chinese_calendar.is_workday(day)


def test_loaded_schedule_replaces_the_provisional_year(database: Database) -> None:
    assert calendar.day_info(dt.date(2027, 2, 6)).kind is DayKind.PROVISIONAL
    rows = workdays.parse_schedule(SCHEDULE_2027)
    with database.unit_of_work() as uow:
        assert workdays.load_schedule(uow.session, rows, by="ops") == [2027]
        uow.commit()
    assert _count(database) == 365
    with database.unit_of_work(read_only=True) as uow:
        workdays.refresh(uow.session)
    make_up = calendar.day_info(dt.date(2027, 2, 6))
    assert make_up.is_working
    assert make_up.kind is DayKind.PUBLISHED
    assert not calendar.is_working_day(dt.date(2027, 2, 5))
    # A day the file does not list is an ordinary day of a published year.
    assert calendar.is_working_day(dt.date(2027, 2, 8))
    assert calendar.calendar_covers(dt.date(2027, 7, 1))
    # Loading again replaces the year rather than failing on existing rows.
    with database.unit_of_work() as uow:
        workdays.load_schedule(uow.session, rows[:1], by="ops")
        uow.commit()
    assert _count(database) == 365


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("date,is_working,note\n2027-02-30,false,x\n", "line 2: unknown date '2027-02-30'"),
        ("date,is_working,note\n2027-01-01,false,\n2027-01-01,true,\n", "listed twice"),
        ("date,is_working,note\n2027-01-01,perhaps,\n", "is_working must be true or false"),
        ("day,working\n2027-01-01,false\n", "header"),
        ("date,is_working,note\n", "no day"),
    ],
)
def test_bad_schedule_files_are_refused(text: str, expected: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        workdays.parse_schedule(text)
    assert expected in str(caught.value)


def test_every_bad_line_is_named() -> None:
    text = "date,is_working,note\n2027-13-01,false,\n2027-01-01,false,\n2027-01-01,false,\n"
    with pytest.raises(ScheduleError) as caught:
        workdays.parse_schedule(text)
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 2", "line 4"]


def test_month_marks_provisional_days() -> None:
    days = workdays.month(2027, 10)
    assert len(days) == 31
    assert all(day.kind is DayKind.PROVISIONAL for day in days)
    assert [day.is_working for day in days[:4]] == [False, False, False, True]


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (dt.datetime(2026, 12, 4, 14, 59, tzinfo=dt.UTC), dt.date(2026, 12, 4)),  # 22:59
        (dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC), dt.date(2026, 12, 5)),  # 23:00
        (dt.datetime(2026, 12, 4, 16, 30, tzinfo=dt.UTC), dt.date(2026, 12, 5)),  # 00:30
    ],
)
def test_settlement_date_moves_to_the_next_day_at_the_cutoff(
    utc: dt.datetime, expected: dt.date
) -> None:
    assert settlement_date(utc) == expected


def test_settlement_date_with_midnight_cutoff_is_the_local_date() -> None:
    late = dt.datetime(2026, 12, 4, 15, 30, tzinfo=dt.UTC)
    assert settlement_date(late, dt.time(0, 0)) == dt.date(2026, 12, 4)
    assert settlement_date(late, dt.time(22, 0)) == dt.date(2026, 12, 5)


def test_manual_edit_and_refresh_if_changed(database: Database) -> None:
    with database.unit_of_work(read_only=True) as uow:
        assert workdays.refresh_if_changed(uow.session)
        assert not workdays.refresh_if_changed(uow.session)
    with database.unit_of_work() as uow:
        workdays.set_day(
            uow.session, dt.date(2026, 10, 12), is_working=False, note="台风 typhoon", by="ops"
        )
        uow.commit()
    assert calendar.is_working_day(dt.date(2026, 10, 12))
    with database.unit_of_work(read_only=True) as uow:
        assert workdays.refresh_if_changed(uow.session)
    info = calendar.day_info(dt.date(2026, 10, 12))
    assert not info.is_working
    assert info.kind is DayKind.MANUAL
    assert info.note == "台风 typhoon"
    # The SLA arithmetic follows the edit.
    assert calendar.add_working_days(dt.date(2026, 10, 10), 1) == dt.date(2026, 10, 13)
    with database.unit_of_work() as uow, pytest.raises(ValueError, match="note longer"):
        workdays.set_day(
            uow.session, dt.date(2026, 10, 13), is_working=False, note="x" * 201, by="o"
        )
