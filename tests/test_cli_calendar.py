"""``poshub calendar``: load, show and add-working-days, and their refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from poshub.cli import main
from poshub.core import calendar


@pytest.fixture(autouse=True)
def _empty_calendar() -> Iterator[None]:
    yield
    calendar.install({})


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 0
    return tmp_path


def _run(data_dir: Path, *args: str) -> int:
    return main(["--data-dir", str(data_dir), "calendar", *args])


def test_show_marks_a_provisional_year(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _run(data_dir, "show", "2027-01") == 0
    out = capsys.readouterr().out
    assert "PROVISIONAL" in out
    assert "2027-01-01 Fri 五  off 休息日  [holiday 节假日, provisional]" in out


def test_show_a_published_month(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _run(data_dir, "show", "2026-10") == 0
    out = capsys.readouterr().out
    assert "PROVISIONAL" not in out
    assert "2026-10-10 Sat 六  working 工作日  [make-up 调休]" in out
    assert "2026-10-01 Thu 四  off 休息日  [holiday 节假日]" in out


@pytest.mark.parametrize("month", ["2027-13", "2027-1", "January", "2027-01-01"])
def test_show_refuses_a_bad_month(
    data_dir: Path, month: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(data_dir, "show", month) == 2
    assert "not a month" in capsys.readouterr().err


def test_add_working_days(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _run(data_dir, "add-working-days", "2026-09-30", "1") == 0
    assert capsys.readouterr().out.strip() == "2026-10-08"
    assert _run(data_dir, "add-working-days", "2026-12-31", "1") == 0
    assert capsys.readouterr().out.strip() == "2027-01-04  (provisional 临时日历)"


@pytest.mark.parametrize("args", [("2026-02-30", "1"), ("2026-10-01", "x"), ("2026-10-01", "-1")])
def test_add_working_days_refuses_bad_input(
    data_dir: Path, args: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(data_dir, "add-working-days", *args) == 2
    assert capsys.readouterr().err


def test_load_then_show(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = tmp_path / "2027.csv"
    schedule.write_text("date,is_working,note\n2027-01-01,false,元旦\n2027-02-06,true,春节调休\n")
    assert _run(data_dir, "load", str(schedule)) == 0
    assert "loaded for 2027" in capsys.readouterr().out
    assert _run(data_dir, "show", "2027-02") == 0
    out = capsys.readouterr().out
    assert "PROVISIONAL" not in out
    assert "2027-02-06 Sat 六  working 工作日  [make-up 调休]  春节调休" in out


def test_bad_file_loads_nothing(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = tmp_path / "bad.csv"
    schedule.write_text(
        "date,is_working,note\n2027-01-01,false,元旦\n2027-02-29,false,x\n2027-01-01,false,\n"
    )
    assert _run(data_dir, "load", str(schedule)) == 1
    err = capsys.readouterr().err
    assert "nothing loaded" in err
    assert "line 3: unknown date '2027-02-29'" in err
    assert "line 4: 2027-01-01 is listed twice" in err
    assert _run(data_dir, "show", "2027-01") == 0
    assert "PROVISIONAL" in capsys.readouterr().out
    assert _run(data_dir, "load", str(tmp_path / "missing.csv")) == 1
    assert "cannot read calendar file" in capsys.readouterr().err


def test_set_a_day_manually(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(data_dir, "set", "2026-10-12", "off", "--note", "台风") == 0
    assert _run(data_dir, "show", "2026-10") == 0
    assert (
        "2026-10-12 Mon 一  off 休息日  [holiday 节假日, manual]  台风" in capsys.readouterr().out
    )
    assert _run(data_dir, "set", "2026-10-32", "off") == 2
    assert "not a date" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["load", "show", "add-working-days", "set"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["calendar", command, "--help"])
    assert exited.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_add_working_days_beyond_the_search_bound(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(data_dir, "add-working-days", "2026-01-01", "100000") == 2
    assert "search bound" in capsys.readouterr().err
