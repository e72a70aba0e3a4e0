"""Fee maths of a fee plan: per transaction, per month, and the recommendation's rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poshub.catalog.fees import Channel, ChannelMix, estimate_month, transaction_fee_fen
from poshub.catalog.models import FeePlan, TerminalModel
from poshub.catalog.recommend import NoPlanOffered, recommend


def plan(**overrides: object) -> FeePlan:
    values: dict[str, object] = {
        "code": "STANDARD",
        "version": 1,
        "effective_from": dt.date(2026, 1, 1),
        "name_zh": "标准商户套餐",
        "name_en": "Standard",
        "applicant_kinds": "individual_business,enterprise",
        "debit_rate": Decimal("0.0050"),
        "debit_cap_fen": 2000,
        "credit_rate": Decimal("0.0060"),
        "qr_rate": Decimal("0.0038"),
        "d0_surcharge_rate": Decimal("0.0003"),
        "deposit_fen": 29900,
        "deposit_refund_volume_fen": 20_000_000,
        "deposit_refund_days": 90,
        "monthly_rent_fen": 3000,
        "rent_waiver_volume_fen": 5_000_000,
        "maintenance_fee_fen": 12000,
    }
    values.update(overrides)
    return FeePlan(**values)


def test_rates_round_half_up_to_the_fen() -> None:
    p = plan()
    assert transaction_fee_fen(p, Channel.CREDIT, 10_000) == 60  # ¥100 × 0.60 %
    assert transaction_fee_fen(p, Channel.QR, 13_158) == 50  # 49.99 → 50
    assert transaction_fee_fen(p, Channel.QR, 13_157) == 50  # 49.9966 → 50
    assert transaction_fee_fen(p, Channel.QR, 13_155) == 50  # 49.989 → 50
    assert transaction_fee_fen(p, Channel.QR, 13_150) == 50  # 49.97 → 50
    assert transaction_fee_fen(p, Channel.QR, 1_250) == 5  # 4.75 → 5
    assert transaction_fee_fen(p, Channel.QR, 1_118) == 4  # 4.2484 → 4


def test_debit_cap_applies_to_the_rate_and_d0_is_added_on_top() -> None:
    p = plan()
    assert transaction_fee_fen(p, Channel.DEBIT, 1_000_000) == 2000  # 5000 capped at ¥20
    assert transaction_fee_fen(p, Channel.DEBIT, 1_000_000, same_day=True) == 2000 + 300
    assert transaction_fee_fen(plan(debit_cap_fen=None), Channel.DEBIT, 1_000_000) == 5000


@given(st.integers(min_value=0, max_value=10**12))
def test_debit_fee_never_exceeds_the_cap(amount: int) -> None:
    assert 0 <= transaction_fee_fen(plan(), Channel.DEBIT, amount) <= 2000


def test_negative_amounts_and_bad_mixes_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        transaction_fee_fen(plan(), Channel.QR, -1)
    with pytest.raises(ValueError, match="add up"):
        ChannelMix(debit=Decimal("0.5"), credit=Decimal("0.5"), qr=Decimal("0.5"))
    with pytest.raises(ValueError, match="terminals"):
        estimate_month(plan(), monthly_volume_fen=1, terminals=0)


def test_month_estimate_waives_rent_and_refunds_the_deposit_at_volume() -> None:
    low = estimate_month(plan(), monthly_volume_fen=1_000_000)
    assert low.rent_fen == 3000
    assert not low.rent_waived
    assert not low.deposit_refundable
    assert low.maintenance_fen == 1000  # ¥120 a year / 12
    high = estimate_month(plan(), monthly_volume_fen=10_000_000, terminals=2)
    assert high.rent_fen == 0
    assert high.rent_waived
    assert high.deposit_refundable  # ¥100,000 × 90/30 days ≥ ¥200,000
    assert high.deposit_fen == 2 * 29900
    assert high.total_fen == high.transaction_fees_fen + high.maintenance_fen


def _model(code: str, kind: str, price: int) -> TerminalModel:
    return TerminalModel(code=code, kind=kind, price_fen=price, active=True)


MODELS = [
    _model("TRAD-T60", "traditional", 99900),
    _model("SMART-A8", "smart", 159900),
    _model("MPOS-M3", "mobile", 19900),
    _model("ESIGN-E2", "esign", 49900),
]


def test_recommendation_picks_the_cheapest_offered_plan_and_explains() -> None:
    micro = plan(
        code="MICRO",
        applicant_kinds="individual,individual_business",
        debit_cap_fen=None,
        monthly_rent_fen=0,
        rent_waiver_volume_fen=None,
        maintenance_fee_fen=0,
        deposit_fen=9900,
        deposit_refund_volume_fen=5_000_000,
    )
    enterprise = plan(code="ENTERPRISE", applicant_kinds="enterprise")
    result = recommend(
        applicant_kind="individual",
        mcc="5411",
        expected_monthly_volume_fen=1_000_000,
        models=MODELS,
        plans=[plan(), micro, enterprise],
    )
    assert result.model.code == "MPOS-M3"
    assert result.plan.code == "MICRO"  # the only plan offered to individuals
    assert [o.plan.code for o in result.alternatives] == ["MICRO"]
    assert len(result.reasons) >= 3
    with pytest.raises(NoPlanOffered):
        recommend(
            applicant_kind="individual",
            mcc="5411",
            expected_monthly_volume_fen=1,
            models=MODELS,
            plans=[enterprise],
        )


def test_more_volume_more_terminals_within_the_kind_limit() -> None:
    result = recommend(
        applicant_kind="enterprise",
        mcc="5311",
        expected_monthly_volume_fen=10**12,
        models=MODELS,
        plans=[plan()],
    )
    assert result.count == 200  # the enterprise ceiling
    assert result.model.code == "SMART-A8"
