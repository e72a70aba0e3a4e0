"""The ``working_days`` table: the working-day calendar operations can edit.

One row per date. ``poshub db upgrade`` seeds the years chinese-calendar covers
(:func:`seed_published`); ``poshub calendar load FILE`` writes the State Council's
schedule for a new year (:func:`parse_schedule`, :func:`load_schedule`). Processes read
the table once into memory (:func:`refresh`, at start-up and after a load) and answer
from ``poshub.core.calendar``; a date in no row falls back to chinese-calendar, then to
the provisional statutory schedule (docs/settlement.md, "Business day and calendar").

Schedule file: CSV with the header ``date,is_working,note``, one line per day that
differs from an ordinary week (holidays, and weekend days worked, 调休). Every other day
of each year the file names is an ordinary day (Monday to Friday working). Dates are
``YYYY-MM-DD``; ``is_working`` is ``true``/``false`` (also ``1``/``0``, ``yes``/``no``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Boolean, Date, String, delete, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from poshub.core import calendar
from poshub.core.calendar import DayInfo, DayKind
from poshub.core.db import Base, table_of, utcnow

SCHEDULE_HEADER = ("date", "is_working", "note")
NOTE_LENGTH_MAX = 200
_TRUE = frozenset({"true", "1", "yes", "y"})
_FALSE = frozenset({"false", "0", "no", "n"})


class WorkingDay(Base):
    __tablename__ = "working_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    is_working: Mapped[bool] = mapped_column(Boolean)
    kind: Mapped[str] = mapped_column(String(16))
    """``published`` (chinese-calendar or a loaded file), ``provisional`` or ``manual``."""
    note: Mapped[str] = mapped_column(String(NOTE_LENGTH_MAX), default="")
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime]


_TABLE = table_of(WorkingDay)


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    day: dt.date
    is_working: bool
    note: str


class ScheduleError(ValueError):
    """A schedule file that cannot be loaded; ``problems`` names each bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _days_of(year: int) -> Iterable[dt.date]:
    day = dt.date(year, 1, 1)
    while day.year == year:
        yield day
        day += dt.timedelta(days=1)


def _row(info: DayInfo, by: str, at: dt.datetime) -> dict[str, object]:
    return {
        "day": info.day,
        "is_working": info.is_working,
        "kind": info.kind.value,
        "note": info.note[:NOTE_LENGTH_MAX],
        "updated_by": by,
        "updated_at": at,
    }


def seed_published(session: Session, by: str = "system") -> int:
    """Insert chinese-calendar's answer for every day of its years that has no row yet
    (rows loaded or edited by operations are kept); the number of rows inserted."""
    years = calendar.published_years()
    first, last = dt.date(years.start, 1, 1), dt.date(years.stop - 1, 12, 31)
    present = set(
        session.execute(select(_TABLE.c.day).where(_TABLE.c.day.between(first, last))).scalars()
    )
    at = utcnow()
    rows = []
    for year in years:
        for day in _days_of(year):
            if day in present:
                continue
            info = calendar.published_day(day)
            assert info is not None
            rows.append(_row(info, by, at))
    if rows:
        session.execute(insert(_TABLE), rows)
    return len(rows)


def _version(session: Session) -> tuple[int, dt.datetime | None]:
    count, latest = session.execute(
        select(func.count(), func.max(_TABLE.c.updated_at)).select_from(_TABLE)
    ).one()
    return int(count), latest


def refresh(session: Session) -> int:
    """Install the table in ``poshub.core.calendar``; the number of rows read."""
    version = _version(session)
    days = {
        day: DayInfo(day, is_working, DayKind(kind), note)
        for day, is_working, kind, note in session.execute(
            select(_TABLE.c.day, _TABLE.c.is_working, _TABLE.c.kind, _TABLE.c.note)
        )
    }
    calendar.install(days, version)
    return len(days)


def refresh_if_changed(session: Session) -> bool:
    """:func:`refresh` when the table changed since this process last read it (row count
    or latest ``updated_at``): the worker calls it each sweep, so a schedule loaded or a
    day edited reaches the SLA clocks without a restart. Whether it read the table."""
    if _version(session) == calendar.installed_version():
        return False
    refresh(session)
    return True


def set_day(session: Session, day: dt.date, *, is_working: bool, note: str, by: str) -> DayInfo:
    """Operations' edit of one day (``kind`` manual), kept until a schedule file for its
    year is loaded. The caller commits, then calls :func:`refresh`."""
    if len(note) > NOTE_LENGTH_MAX:
        raise ValueError(f"note longer than {NOTE_LENGTH_MAX} characters")
    info = DayInfo(day, is_working, DayKind.MANUAL, note)
    session.execute(delete(_TABLE).where(_TABLE.c.day == day))
    session.execute(insert(_TABLE), [_row(info, by, utcnow())])
    return info


def _parse_bool(value: str) -> bool | None:
    folded = value.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    return None


def parse_schedule(text: str) -> list[ScheduleRow]:
    """Every row of a schedule file, or :class:`ScheduleError` naming every bad line
    (unknown date, bad ``is_working``, a day listed twice)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if header is None or tuple(cell.strip().lower() for cell in header) != SCHEDULE_HEADER:
        raise ScheduleError([f"line 1: the header must be {','.join(SCHEDULE_HEADER)}"])
    problems: list[str] = []
    rows: list[ScheduleRow] = []
    first_line: dict[dt.date, int] = {}
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) not in (2, 3):
            problems.append(f"line {number}: expected date,is_working,note")
            continue
        raw_day, raw_working = cells[0].strip(), cells[1]
        note = cells[2].strip() if len(cells) == 3 else ""
        try:
            day = dt.date.fromisoformat(raw_day)
        except ValueError:
            problems.append(f"line {number}: unknown date {raw_day!r} (YYYY-MM-DD)")
            continue
        working = _parse_bool(raw_working)
        if working is None:
            problems.append(f"line {number}: is_working must be true or false, not {raw_working!r}")
            continue
        if len(note) > NOTE_LENGTH_MAX:
            problems.append(f"line {number}: note longer than {NOTE_LENGTH_MAX} characters")
            continue
        if day in first_line:
            problems.append(
                f"line {number}: {day.isoformat()} is listed twice (first on line "
                f"{first_line[day]})"
            )
            continue
        first_line[day] = number
        rows.append(ScheduleRow(day, working, note))
    if problems:
        raise ScheduleError(problems)
    if not rows:
        raise ScheduleError(["the file lists no day"])
    return rows


def load_schedule(session: Session, rows: list[ScheduleRow], by: str) -> list[int]:
    """Write a published schedule: every day of each year the rows name, replacing that
    year's rows (provisional, published or manual); the years written. The caller commits,
    then calls :func:`refresh`."""
    listed = {row.day: row for row in rows}
    years = sorted({row.day.year for row in rows})
    at = utcnow()
    values = []
    for year in years:
        for day in _days_of(year):
            row = listed.get(day)
            info = (
                DayInfo(day, row.is_working, DayKind.PUBLISHED, row.note)
                if row is not None
                else DayInfo(day, day.weekday() < 5, DayKind.PUBLISHED, "")
            )
            values.append(_row(info, by, at))
        session.execute(
            delete(_TABLE).where(_TABLE.c.day.between(dt.date(year, 1, 1), dt.date(year, 12, 31)))
        )
    session.execute(insert(_TABLE), values)
    return years


def month(year: int, month_number: int) -> list[DayInfo]:
    """Every day of a month as ``poshub.core.calendar`` answers it (after :func:`refresh`)."""
    day = dt.date(year, month_number, 1)
    days = []
    while day.month == month_number:
        days.append(calendar.day_info(day))
        day += dt.timedelta(days=1)
    return days
