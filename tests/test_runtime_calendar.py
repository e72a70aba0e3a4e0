"""Processes count working days with the table operations edit: at start-up, and the
worker again after a change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from poshub.bootstrap import AppState
from poshub.core import calendar, workdays
from poshub.core.calendar import DayKind
from poshub.runtime import run_jobs_once


@pytest.fixture(autouse=True)
def _empty_calendar() -> Iterator[None]:
    yield
    calendar.install({})


def test_worker_sweep_picks_up_an_edited_day(state: AppState) -> None:
    day = dt.date(2026, 12, 28)
    assert calendar.is_working_day(day)
    with state.db.unit_of_work() as uow:
        workdays.set_day(uow.session, day, is_working=False, note="closure", by="ops")
        uow.commit()
    assert calendar.is_working_day(day)
    run_jobs_once(state)
    assert not calendar.is_working_day(day)
    assert calendar.day_info(day).kind is DayKind.MANUAL
