"""Fee maths of settlement: the contract's fee, the NDRC 2016 schedule and the margin."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poshub.catalog.models import FeePlan
from poshub.contracts import service as contracts
from poshub.contracts.service import PLAN_AMOUNTS, PLAN_RATES
from poshub.core.money import round_half_up_fen
from poshub.settlement.fees import (
    PUBLIC_WELFARE_MCCS,
    Channel,
    FeeTerms,
    FeeTermsError,
    MccCategory,
    fee_breakdown,
    interchange_fee_fen,
    mcc_category,
    merchant_fee_fen,
    network_fee_fen,
    terms_in_force,
)
from poshub.simulators import clearing
from poshub.simulators.issuer import CardKind


def snapshot(**overrides: Any) -> dict[str, Any]:
    """The fee-relevant part of a contract's frozen terms, as contracts.service stores it,
    with a few of its other keys (which the fee maths ignores)."""
    values: dict[str, Any] = {
        "contract_number": "HT202612040001",
        "version": 1,
        "effective_from": "2026-12-01",
        "plan_code": "STANDARD",
        "plan_version": 1,
        "settlement_cycle": "D0",
        "debit_rate": "0.0050",
        "debit_cap_fen": 2000,
        "credit_rate": "0.0060",
        "qr_rate": "0.0038",
        "d0_surcharge_rate": "0.0003",
        "deposit_fen": 29900,
        "deposit_refund_volume_fen": 20_000_000,
        "deposit_refund_days": 90,
        "monthly_rent_fen": 3000,
        "rent_waiver_volume_fen": None,
        "maintenance_fee_fen": 12000,
        "refund_window_days": 180,
        "mid": "898310058120001",
    }
    values.update(overrides)
    return values


TERMS = FeeTerms.from_contract_terms(snapshot())
T1_TERMS = FeeTerms.from_contract_terms(snapshot(settlement_cycle="T1"))
CARD_KIND = {
    Channel.DEBIT: CardKind.DEBIT,
    Channel.CREDIT: CardKind.CREDIT,
    Channel.QR: CardKind.WALLET,
}

amounts = st.integers(min_value=0, max_value=10**10)
channels = st.sampled_from(list(Channel))


# --- reading the contract's terms ---------------------------------------------------------


def test_reads_a_contract_snapshot() -> None:
    assert TERMS.schema_version == 1
    assert TERMS.contract_version == 1
    assert TERMS.effective_from == dt.date(2026, 12, 1)
    assert TERMS.debit_rate == Decimal("0.0050")
    assert TERMS.debit_cap_fen == 2000
    assert TERMS.d0_surcharge_rate == Decimal("0.0003")


def test_every_fee_key_contracts_freeze_is_mapped() -> None:
    """A rate or cap that contracts start freezing must reach the fee maths, not be ignored."""
    fee_keys = {k for k in (*PLAN_RATES, *PLAN_AMOUNTS) if k.endswith(("_rate", "_cap_fen"))}
    assert fee_keys <= set(FeeTerms.model_fields)


def test_terms_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        TERMS.debit_rate = Decimal("0.01")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"credit_rate": "-0.001"}, "at least 0"),
        ({"credit_rate": "1.5"}, "at least 0"),
        ({"qr_rate": "NaN"}, "(?s)qr_rate.*finite"),
        ({"qr_rate": "0.38%"}, "not valid fee terms"),
        ({"debit_rate": 0.005}, "debit_rate must be a string"),
        ({"debit_cap_fen": -1}, "greater than or equal to 0"),
        ({"settlement_cycle": "T0"}, "settlement_cycle"),
        ({"intl_card_rate": "0.01"}, "does not know: \\['intl_card_rate'\\]"),
        ({"credit_cap_fen": 5000}, "does not know: \\['credit_cap_fen'\\]"),
        ({"category_rates": {"luxury": {}}}, "not valid fee terms"),
    ],
)
def test_bad_terms_are_refused_with_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(FeeTermsError, match=message):
        FeeTerms.from_contract_terms(snapshot(**overrides))


@pytest.mark.parametrize("key", ["debit_rate", "debit_cap_fen", "settlement_cycle", "version"])
def test_missing_terms_are_refused(key: str) -> None:
    terms = snapshot()
    del terms[key]
    with pytest.raises(FeeTermsError, match=f"lack \\['{key}'\\]"):
        FeeTerms.from_contract_terms(terms)


def test_no_debit_cap_is_allowed() -> None:
    terms = FeeTerms.from_contract_terms(snapshot(debit_cap_fen=None))
    assert merchant_fee_fen(terms, Channel.DEBIT, 1_000_000, d0=False) == 5000


def test_terms_in_force_on_the_transaction_date() -> None:
    v1 = TERMS
    v2 = FeeTerms.from_contract_terms(
        snapshot(version=2, effective_from="2027-01-01", credit_rate="0.0055")
    )
    v3 = FeeTerms.from_contract_terms(
        snapshot(version=3, effective_from="2027-01-01", credit_rate="0.0052")
    )
    assert terms_in_force([v2, v1], dt.date(2026, 12, 31)) is v1
    assert terms_in_force([v1, v2], dt.date(2027, 1, 1)) is v2
    assert terms_in_force([v3, v1, v2], dt.date(2027, 6, 1)) is v3
    with pytest.raises(LookupError, match="2026-11-30"):
        terms_in_force([v1, v2], dt.date(2026, 11, 30))
    other = FeeTerms.from_contract_terms(snapshot(contract_number="HT202612040002"))
    with pytest.raises(ValueError, match="different contracts"):
        terms_in_force([v1, other], dt.date(2027, 1, 1))


# --- the merchant's fee: hand-checked ------------------------------------------------------


def test_debit_sale_hits_the_cap() -> None:
    # ¥5,000 at 0.50 % is ¥25, capped at ¥20.
    assert merchant_fee_fen(T1_TERMS, Channel.DEBIT, 500_000, d0=False) == 2000
    # ¥1,000 at 0.50 % is ¥5, under the cap.
    assert merchant_fee_fen(T1_TERMS, Channel.DEBIT, 100_000, d0=False) == 500


def test_d0_surcharge_is_added_on_top_of_the_debit_cap() -> None:
    # 500,000 × 0.0050 = 2,500 → capped at 2,000, + 500,000 × 0.0003 = 150 → 2,150;
    # 300,000 × 0.0053 = 1,590, under the cap.
    assert merchant_fee_fen(TERMS, Channel.DEBIT, 500_000, d0=True) == 2150
    assert merchant_fee_fen(TERMS, Channel.DEBIT, 300_000, d0=True) == 1590


def test_credit_sale() -> None:
    # ¥1,234.56 at 0.60 % = 740.736 fen → 741.
    assert merchant_fee_fen(TERMS, Channel.CREDIT, 123_456, d0=False) == 741
    # With D0: 123,456 × 0.0063 = 777.7728 → 778.
    assert merchant_fee_fen(TERMS, Channel.CREDIT, 123_456, d0=True) == 778


def test_qr_sale_is_uncapped() -> None:
    # ¥88.88 at 0.38 % = 33.7744 → 34; ¥100,000 at 0.38 % = ¥380, no cap on QR.
    assert merchant_fee_fen(TERMS, Channel.QR, 8888, d0=False) == 34
    assert merchant_fee_fen(TERMS, Channel.QR, 10_000_000, d0=False) == 38_000


def test_d0_rate_is_rounded_once_not_twice() -> None:
    # 80 × 0.0063 = 0.504 → 1 fen; rounding the parts would give 0.48 → 0 plus 0.024 → 0.
    assert merchant_fee_fen(TERMS, Channel.CREDIT, 80, d0=True) == 1
    twice = round_half_up_fen(80 * Decimal("0.0060")) + round_half_up_fen(80 * Decimal("0.0003"))
    assert twice == 0
    # The half: 250 × 0.0060 = 1.5 → 2 exactly at the half-up boundary.
    assert merchant_fee_fen(TERMS, Channel.CREDIT, 250, d0=False) == 2


def test_d0_surcharge_refused_on_a_t1_contract() -> None:
    with pytest.raises(ValueError, match="D0"):
        merchant_fee_fen(T1_TERMS, Channel.CREDIT, 10_000, d0=True)


def test_refund_fee_is_not_returned() -> None:
    """The contract: "原交易已收取的手续费不予退还"; a refund costs no fee either."""
    assert merchant_fee_fen(TERMS, Channel.CREDIT, -123_456, d0=True) == 0
    assert merchant_fee_fen(TERMS, Channel.DEBIT, 0, d0=False) == 0


def test_category_rates_price_by_mcc_category() -> None:
    terms = FeeTerms.from_contract_terms(
        snapshot(
            category_rates={
                "public_welfare": {
                    "debit_rate": "0.0000",
                    "debit_cap_fen": None,
                    "credit_rate": "0.0000",
                    "qr_rate": "0.0010",
                }
            }
        )
    )
    welfare = MccCategory.PUBLIC_WELFARE
    assert merchant_fee_fen(terms, Channel.QR, 100_000, d0=False, mcc_category=welfare) == 100
    assert merchant_fee_fen(terms, Channel.CREDIT, 100_000, d0=False, mcc_category=welfare) == 0
    # The D0 surcharge still applies: it pays for the same-day funding.
    assert merchant_fee_fen(terms, Channel.CREDIT, 100_000, d0=True, mcc_category=welfare) == 30
    assert merchant_fee_fen(terms, Channel.CREDIT, 100_000, d0=False) == 600


# --- NDRC 2016 and the margin -------------------------------------------------------------


def test_ndrc_hand_checked() -> None:
    # Debit ¥1,000: 0.35 % = 350; ¥10,000: 3,500 capped at 1,300.
    assert interchange_fee_fen(Channel.DEBIT, 100_000) == 350
    assert interchange_fee_fen(Channel.DEBIT, 1_000_000) == 1300
    # Credit ¥10,000: 0.45 % = 4,500, uncapped; QR as debit.
    assert interchange_fee_fen(Channel.CREDIT, 1_000_000) == 4500
    assert interchange_fee_fen(Channel.QR, 1_000_000) == 1300
    # Network: ¥1,000 × 0.0325 % = 32.5 → 33; ¥20,000 → 650 capped at 325.
    assert network_fee_fen(100_000) == 33
    assert network_fee_fen(2_000_000) == 325


def test_margin_of_a_credit_sale() -> None:
    fees = fee_breakdown(T1_TERMS, Channel.CREDIT, 100_000, d0=False)
    assert (fees.merchant_fee_fen, fees.interchange_fee_fen, fees.network_fee_fen) == (
        600,
        450,
        33,
    )
    assert fees.acquirer_margin_fen == 117


def test_public_welfare_merchant_has_ndrc_fees_waived() -> None:
    assert mcc_category("8062", non_profit=True) is MccCategory.PUBLIC_WELFARE
    assert mcc_category("8062", non_profit=False) is MccCategory.STANDARD  # private hospital
    assert mcc_category("5411", non_profit=True) is MccCategory.STANDARD
    welfare = MccCategory.PUBLIC_WELFARE
    fees = fee_breakdown(T1_TERMS, Channel.DEBIT, 100_000, d0=False, mcc_category=welfare)
    assert (fees.interchange_fee_fen, fees.network_fee_fen) == (0, 0)
    assert fees.acquirer_margin_fen == fees.merchant_fee_fen == 500


def test_public_welfare_codes_are_the_notices_institutions() -> None:
    # Hospitals, schools, child care, charities and social services (elderly care).
    assert {"8062", "8211", "8220", "8241", "8244", "8249", "8299", "8351", "8398"} == set(
        PUBLIC_WELFARE_MCCS
    )


def test_a_refund_returns_the_ndrc_fees() -> None:
    fees = fee_breakdown(T1_TERMS, Channel.CREDIT, -100_000, d0=False)
    assert (fees.merchant_fee_fen, fees.interchange_fee_fen, fees.network_fee_fen) == (
        0,
        -450,
        -33,
    )
    assert fees.acquirer_margin_fen == 483


# --- properties -----------------------------------------------------------------------------


@given(channel=channels, amount=amounts)
def test_ndrc_fees_match_the_simulators_clearing_file(channel: Channel, amount: int) -> None:
    assert interchange_fee_fen(channel, amount) == clearing.interchange_fee_fen(
        CARD_KIND[channel], amount
    )
    assert network_fee_fen(amount) == clearing.network_fee_fen(amount)


@given(channel=channels, amount=st.integers(min_value=1, max_value=10**10))
def test_a_refund_returns_exactly_the_sales_ndrc_fees(channel: Channel, amount: int) -> None:
    assert interchange_fee_fen(channel, -amount) == -interchange_fee_fen(channel, amount)
    assert network_fee_fen(-amount) == -network_fee_fen(amount)


rates = st.decimals(min_value=0, max_value=Decimal("0.05"), places=4)


@given(
    channel=channels,
    amount=amounts,
    d0=st.booleans(),
    rate=rates,
    surcharge=rates,
    cap=st.none() | st.integers(min_value=0, max_value=100_000),
)
def test_merchant_fee_is_one_rounding_of_the_combined_rate(
    channel: Channel, amount: int, d0: bool, rate: Decimal, surcharge: Decimal, cap: int | None
) -> None:
    terms = FeeTerms.from_contract_terms(
        snapshot(
            debit_rate=str(rate),
            credit_rate=str(rate),
            qr_rate=str(rate),
            d0_surcharge_rate=str(surcharge),
            debit_cap_fen=cap,
        )
    )
    fee = merchant_fee_fen(terms, channel, amount, d0=d0)
    assert fee >= 0
    card = amount * rate
    if channel is Channel.DEBIT and cap is not None:
        card = min(card, Decimal(cap))
    expected = round_half_up_fen(card + (amount * surcharge if d0 else Decimal(0)))
    if channel is Channel.DEBIT and cap is not None and not d0:
        assert fee <= cap
    assert fee == expected


@given(channel=channels, amount=amounts, d0=st.booleans())
def test_margin_is_the_fee_less_what_the_network_charges(
    channel: Channel, amount: int, d0: bool
) -> None:
    fees = fee_breakdown(TERMS, channel, amount, d0=d0)
    assert fees.acquirer_margin_fen == (
        fees.merchant_fee_fen
        - clearing.interchange_fee_fen(CARD_KIND[channel], amount)
        - clearing.network_fee_fen(amount)
    )


def test_reads_the_snapshot_contracts_really_freeze() -> None:
    """The snapshot as poshub.contracts.service builds it, from a fee plan, not by hand."""
    plan = FeePlan(
        code="STANDARD",
        version=2,
        effective_from=dt.date(2026, 1, 1),
        name_zh="标准商户套餐",
        name_en="Standard",
        applicant_kinds="enterprise",
        debit_rate=Decimal("0.0050"),
        debit_cap_fen=2000,
        credit_rate=Decimal("0.0060"),
        qr_rate=Decimal("0.0038"),
        d0_surcharge_rate=Decimal("0.0003"),
        deposit_fen=0,
        deposit_refund_volume_fen=None,
        deposit_refund_days=None,
        monthly_rent_fen=0,
        rent_waiver_volume_fen=None,
        maintenance_fee_fen=0,
    )
    settings = SimpleNamespace(
        acquirer_name_zh="收单", acquirer_name_en="Acquirer", acquirer_address="上海",
        acquirer_licence="Z0000000", acquirer_licence_kind="payment", acquirer_hotline="95500",
    )  # fmt: skip
    merchant = SimpleNamespace(
        applicant_kind="enterprise", business_name="便利店", legal_name="张三",
        mid="898310058120001", uscc="91310000MA1FL00000", mobile="13900000001",
    )  # fmt: skip
    application = SimpleNamespace(
        id_number_masked="3101**********0000", province="上海市", city="上海市",
        district="浦东新区", address_detail="世纪大道 1 号",
    )  # fmt: skip
    terms = contracts._snapshot(
        cast(Any, SimpleNamespace(settings=settings)),
        cast(Any, merchant),
        cast(Any, application),
        plan,
        contract_number="HT202612040001",
        version=1,
        cycle=cast(Any, "D0"),
        term_months=12,
        effective_from=dt.date(2026, 12, 1),
        language="zh",
        bank_name="银行",
        account_name="便利店",
        account_number_masked="6222********0000",
        generated_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
        previous=None,
        change_summary=None,
        changes=([], []),
        terminals=[],
    )
    fee_terms = FeeTerms.from_contract_terms(terms)
    assert (fee_terms.plan_code, fee_terms.plan_version, fee_terms.settlement_cycle) == (
        "STANDARD",
        2,
        "D0",
    )
    assert merchant_fee_fen(fee_terms, Channel.CREDIT, 123_456, d0=True) == 778
