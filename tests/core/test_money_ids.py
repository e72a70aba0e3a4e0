from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poshub.core import ids
from poshub.core.money import Money, format_fen, round_half_up_fen, yuan_to_fen


def test_round_half_up_is_the_one_rounding_rule() -> None:
    assert round_half_up_fen(Decimal("0.5")) == 1
    assert round_half_up_fen(Decimal("1.49")) == 1
    assert round_half_up_fen(Decimal("2.5")) == 3
    assert round_half_up_fen(Decimal("-0.5")) == -1


def test_yuan_parsing_refuses_sub_fen_and_garbage() -> None:
    assert yuan_to_fen("1,234.50") == 123450
    assert yuan_to_fen("0.01") == 1
    with pytest.raises(ValueError, match="two decimal places"):
        yuan_to_fen("1.005")
    with pytest.raises(ValueError, match="not an amount"):
        yuan_to_fen("abc")
    with pytest.raises(ValueError, match="not an amount"):
        yuan_to_fen("NaN")


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_format_and_parse_round_trip(fen: int) -> None:
    text = format_fen(fen, symbol="")
    assert yuan_to_fen(text) == fen


def test_money_refuses_mixed_currencies_and_floats() -> None:
    assert str(Money(123456)) == "¥1,234.56"
    with pytest.raises(ValueError, match="different currencies"):
        _ = Money(1) + Money(1, "USD")
    with pytest.raises(TypeError):
        Money(1.5)  # type: ignore[arg-type]


def test_mid_layout_matches_design() -> None:
    assert ids.make_mid("898", "3401", "5411", 1) == "898340154110001"
    assert ids.is_valid_mid("898340154110001")
    with pytest.raises(ValueError, match="sequence"):
        ids.make_mid("898", "3401", "5411", 10_000)
    with pytest.raises(ValueError, match="area_code"):
        ids.make_mid("898", "34", "5411", 1)


def test_tracking_numbers_are_dated_and_readable() -> None:
    number = ids.new_tracking_number(dt.date(2026, 11, 21))
    assert number.startswith("AP20261121-")
    assert len(number) == 17
    assert not set(number[11:]) & set("IO01")
