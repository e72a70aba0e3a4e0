from __future__ import annotations

import string
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.cn import ric, uscc

from poshub.core.regions import RegionError, resolve_area_code
from poshub.onboarding import rules
from poshub.onboarding.rules import (
    DOCUMENT_LABELS,
    HIGH_RISK_MCCS,
    LOW_RISK_MCCS,
    MESSAGES,
    DocumentKind,
    MccRiskClass,
    Owner,
    RuleViolation,
    check_account_name,
    check_account_number,
    check_agent,
    check_beneficial_owners,
    check_beneficial_owners_named,
    check_id_expiry,
    check_licence_expiry,
    check_mcc,
    check_mcc_allowed,
    check_mobile,
    check_resident_id,
    check_settlement_account,
    check_terminal_count,
    check_uscc,
    check_uscc_kind,
    is_card_number,
    mcc_info,
    names_match,
    normalize_mobile,
    normalize_resident_id,
    normalize_uscc,
    organization_code_check_digit,
    required_documents,
    requires_site_survey,
    resident_id_birth_date,
)

TODAY = date(2026, 6, 1)


def make_resident_id(area: str = "340104", birth: str = "19900307", seq: str = "123") -> str:
    """A synthetic resident ID number with a correct check digit (nobody's real number)."""
    body = area + birth + seq
    # stdnum's ric.calc_check_digit expects the full number and ignores its last
    # character, unlike uscc.calc_check_digit, which takes the 17 leading ones.
    return body + ric.calc_check_digit(body + "0")


def flip_check_digit(number: str) -> str:
    return number[:-1] + ("1" if number[-1] != "1" else "2")


def make_uscc(body: str = "91340104MA2N00001") -> str:
    """A valid code from ``body``'s first 16 characters: the organisation code's own check
    character (GB 11714) and then the code's are computed."""
    body = body[:16] + organization_code_check_digit(body[8:16])
    return body + uscc.calc_check_digit(body)


def make_card(prefix: str = "622202100000000", length: int = 16) -> str:
    body = prefix.ljust(length - 1, "0")
    return body + luhn.calc_check_digit(body)


def x_resident_id() -> str:
    """A synthetic ID whose check digit is X."""
    for seq in range(1000):
        number = make_resident_id(seq=f"{seq:03d}")
        if number.endswith("X"):
            return number
    raise AssertionError("no X check digit in 1000 sequence numbers")


# --- Resident ID ------------------------------------------------------------------


def test_valid_resident_id_passes() -> None:
    number = make_resident_id()
    assert check_resident_id(number, TODAY) is None
    assert resident_id_birth_date(number) == date(1990, 3, 7)


def test_resident_id_with_lowercase_x_and_spaces_passes() -> None:
    number = x_resident_id()
    messy = " " + number[:6] + " " + number[6:14] + " " + number[14:].lower() + " "
    assert normalize_resident_id(messy) == number
    assert check_resident_id(messy, TODAY) is None


def test_resident_id_in_full_width_digits_passes() -> None:
    number = make_resident_id()
    full_width = number.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    assert check_resident_id(full_width, TODAY) is None


@pytest.mark.parametrize("number", ["34010419900307123A", "X40104199003071234"])
def test_resident_id_format(number: str) -> None:
    assert check_resident_id(number, TODAY) == RuleViolation("id_number.format")


@pytest.mark.parametrize("number", ["", "12345", "34010419900307123", "3401041990030712345"])
def test_resident_id_length(number: str) -> None:
    assert check_resident_id(number, TODAY) == RuleViolation(
        "id_number.length", {"expected": "18", "length": str(len(number))}
    )


def test_resident_id_checksum() -> None:
    number = flip_check_digit(make_resident_id())
    assert check_resident_id(number, TODAY) == RuleViolation("id_number.checksum")


@pytest.mark.parametrize(
    "birth",
    [
        "19901307",  # month 13
        "19900230",  # 30 February
        "19900001",  # month 0
        "20300101",  # in the future
        "18991231",  # before the oldest accepted year
    ],
)
def test_resident_id_birth_date(birth: str) -> None:
    number = make_resident_id(birth=birth)
    assert check_resident_id(number, TODAY) == RuleViolation("id_number.birth_date")


def test_resident_id_birth_date_parser_rejects_impossible_dates() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - stdnum's InvalidComponent is a ValueError
        resident_id_birth_date(make_resident_id(birth="19900230"))
    with pytest.raises(ValueError, match="18-character"):
        resident_id_birth_date("123")


def test_resident_id_minor() -> None:
    number = make_resident_id(birth="20100101")
    assert check_resident_id(number, TODAY) == RuleViolation(
        "id_number.minor", {"age": "16", "adult_age": "18"}
    )


def test_adult_from_the_day_after_the_eighteenth_birthday() -> None:
    number = make_resident_id(birth="20080601")
    violation = check_resident_id(number, date(2026, 6, 1))
    assert violation is not None
    assert violation.params["age"] == "17"
    assert check_resident_id(number, date(2026, 6, 2)) is None


def test_born_on_29_february_is_adult_on_1_march() -> None:
    number = make_resident_id(birth="20080229")
    assert check_resident_id(number, date(2026, 2, 28)) is not None
    assert check_resident_id(number, date(2026, 3, 1)) is None


def test_area_code_unknown_to_stdnum_is_not_rejected() -> None:
    # The real-name check decides whether the number exists; stdnum's table of
    # area codes by birth year would reject real people.
    number = make_resident_id(area="110118", birth="19900307")
    assert not ric.is_valid(number)
    assert check_resident_id(number, TODAY) is None


@given(
    area=st.sampled_from(["340104", "110105", "441900", "650102"]),
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2008, 5, 31)),
    seq=st.integers(min_value=0, max_value=999),
    wrong=st.sampled_from("0123456789X"),
)
def test_generated_adult_ids_pass_and_wrong_check_digits_fail(
    area: str, birth: date, seq: int, wrong: str
) -> None:
    number = make_resident_id(area=area, birth=birth.strftime("%Y%m%d"), seq=f"{seq:03d}")
    assert check_resident_id(number, TODAY) is None
    if wrong != number[-1]:
        tampered = number[:-1] + wrong
        assert check_resident_id(tampered, TODAY) == RuleViolation("id_number.checksum")


# --- USCC -------------------------------------------------------------------------


def test_valid_uscc_passes_even_lowercase_and_spaced() -> None:
    code = make_uscc()
    assert check_uscc(code) is None
    messy = " " + code[:8].lower() + " " + code[8:].lower() + " "
    assert normalize_uscc(messy) == code
    assert check_uscc(messy) is None


@pytest.mark.parametrize(
    "value",
    ["", "9134010", "91340104MA2N000011X", "A134O104MA2N00001Q", "91340104MA2I00001Q"],
)
def test_uscc_format(value: str) -> None:
    assert check_uscc(value) == RuleViolation("uscc.format")


def test_uscc_checksum() -> None:
    code = make_uscc()
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert check_uscc(wrong) == RuleViolation("uscc.checksum")


# --- Mobile -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["13800138000", "+86 138-0013-8000", "8613800138000", "008613800138000", "19912345678"],
)
def test_valid_mobiles(value: str) -> None:
    assert check_mobile(value) is None
    assert len(normalize_mobile(value)) == 11


def test_mobile_starting_with_86_keeps_its_digits() -> None:
    assert normalize_mobile("18612345678") == "18612345678"


@pytest.mark.parametrize(
    "value", ["", "12800138000", "1380013800", "138001380001", "010-12345678", "+1 13800138000"]
)
def test_invalid_mobiles(value: str) -> None:
    assert check_mobile(value) == RuleViolation("mobile.invalid")


# --- Settlement account -----------------------------------------------------------


def test_card_numbers() -> None:
    card16 = make_card(length=16)
    card19 = make_card(length=19)
    assert is_card_number(card16)
    assert is_card_number(card19)
    assert is_card_number(" ".join(card19[i : i + 4] for i in range(0, 19, 4)))
    assert not is_card_number("123456789012")
    assert not is_card_number("12345678901234567890")
    assert check_account_number(card16) is None
    assert check_account_number(card19) is None


def test_corporate_account_lengths_pass_without_luhn() -> None:
    assert check_account_number("1202021209900012345678") is None
    assert check_account_number("12345678") is None


@pytest.mark.parametrize(
    "value",
    ["", "1234567", "1234 567", "12345678901234567890123456789012", "6222-0210-0000-0000"],
)
def test_account_number_format(value: str) -> None:
    violation = check_account_number(value)
    assert violation is not None
    assert violation.code == "settlement_account.account_number.format"


def test_account_number_luhn() -> None:
    bad = flip_check_digit(make_card(length=19))
    assert check_account_number(bad) == RuleViolation("settlement_account.account_number.luhn")
    # A corporate account of card-like length need not carry a Luhn digit.
    assert check_account_number(bad, card=False) is None
    assert check_account_number("123456789012", card=True) == RuleViolation(
        "settlement_account.account_number.luhn"
    )


def test_names_match() -> None:
    assert names_match(" 张 三 ", "李四", "张三")
    assert names_match("合肥某某（上海）科技有限公司", "合肥某某(上海)科技有限公司")
    assert names_match("ACME Trading Co.", "acme trading co.")
    assert names_match("阿卜杜·热合曼", "阿卜杜•热合曼")
    assert not names_match("张三", "张三丰")
    assert not names_match("", "")
    assert not names_match("张三")


def test_account_name_mismatch() -> None:
    assert check_account_name("张三", "张三", "合肥某某科技有限公司") is None
    assert check_account_name("王五", "张三", "合肥某某科技有限公司") == RuleViolation(
        "settlement_account.account_name.mismatch"
    )


# --- Licence ----------------------------------------------------------------------


def test_licence_expiry() -> None:
    assert check_licence_expiry(None, TODAY) is None
    assert check_licence_expiry(TODAY, TODAY) is None
    assert check_licence_expiry(date(2026, 5, 31), TODAY) == RuleViolation(
        "licence_expiry.expired", {"expiry": "2026-05-31"}
    )


# --- MCC --------------------------------------------------------------------------


def test_mcc_info_risk_classes() -> None:
    groceries = mcc_info("5411")
    assert groceries is not None
    assert groceries.risk_class is MccRiskClass.LOW
    assert groceries.description == "Groceries and supermarkets"
    betting = mcc_info("7995")
    assert betting is not None
    assert betting.risk_class is MccRiskClass.HIGH
    misc = mcc_info("5999")
    assert misc is not None
    assert misc.risk_class is MccRiskClass.STANDARD


def test_mcc_only_in_scheme_lists_has_a_description() -> None:
    lottery = mcc_info("7800")
    assert lottery is not None
    assert "Lotter" in lottery.description
    assert lottery.risk_class is MccRiskClass.HIGH


@pytest.mark.parametrize("mcc", sorted(HIGH_RISK_MCCS | LOW_RISK_MCCS))
def test_every_classified_mcc_is_known(mcc: str) -> None:
    assert mcc_info(mcc) is not None
    assert check_mcc(mcc) is None


def test_reserved_and_unassigned_mccs_are_unknown() -> None:
    assert mcc_info("3000") is None  # an airline's brand code
    assert mcc_info("1234") is None
    assert check_mcc("9999") == RuleViolation("mcc.unknown", {"mcc": "9999"})
    assert check_mcc("3000") == RuleViolation("mcc.unknown", {"mcc": "3000"})


@pytest.mark.parametrize("mcc", ["", "541", "54111", "54a1", "+541", "５４１１"])
def test_mcc_format(mcc: str) -> None:
    assert check_mcc(mcc) == RuleViolation("mcc.format")
    assert mcc_info(mcc) is None


def test_requires_site_survey() -> None:
    assert requires_site_survey("7995")
    assert requires_site_survey("5944")
    assert not requires_site_survey("5411")
    assert not requires_site_survey("5999")
    assert not requires_site_survey("nope")


# --- Terminals --------------------------------------------------------------------


def test_terminal_count() -> None:
    assert check_terminal_count("individual", 3) is None
    assert check_terminal_count("individual", 4) == RuleViolation(
        "terminals.too_many", {"count": "4", "limit": "3", "kind": "individual"}
    )
    assert check_terminal_count("enterprise", 200) is None
    assert check_terminal_count("enterprise", 0) == RuleViolation("terminals.none")
    assert check_terminal_count("individual", 5, {"individual": 5}) is None


def test_terminal_count_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown applicant kind"):
        check_terminal_count("charity", 1)


# --- Documents --------------------------------------------------------------------

BASE = {
    DocumentKind.ID_CARD_FRONT,
    DocumentKind.ID_CARD_BACK,
    DocumentKind.SETTLEMENT_ACCOUNT_PROOF,
    DocumentKind.PREMISES_PROOF,
}
BUSINESS = BASE | {DocumentKind.BUSINESS_LICENCE, DocumentKind.LEASE_CONTRACT}


def test_required_documents_individual() -> None:
    assert required_documents("individual", None, TODAY) == BASE


def test_required_documents_individual_business() -> None:
    assert required_documents("individual_business", date(2020, 1, 1), TODAY) == BUSINESS


def test_required_documents_established_enterprise() -> None:
    assert required_documents("enterprise", date(2025, 6, 1), TODAY) == BUSINESS | {
        DocumentKind.ACCOUNT_OPENING_PROOF,
        DocumentKind.FINANCIAL_STATEMENTS,
    }


@pytest.mark.parametrize("established_on", [None, date(2025, 6, 2), TODAY])
def test_required_documents_young_enterprise(established_on: date | None) -> None:
    assert required_documents("enterprise", established_on, TODAY) == BUSINESS | {
        DocumentKind.ACCOUNT_OPENING_PROOF,
        DocumentKind.BUSINESS_PLAN,
    }


def test_required_documents_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown applicant kind"):
        required_documents("charity", None, TODAY)


def test_every_document_kind_has_a_label() -> None:
    assert set(DOCUMENT_LABELS) == set(DocumentKind)
    assert all(label.strip() for label in DOCUMENT_LABELS.values())


# --- Messages ---------------------------------------------------------------------


def _violations() -> list[RuleViolation]:
    """One real case for every code a rule can return."""
    found = [
        check_resident_id("12345", TODAY),
        check_resident_id("34010419900307123A", TODAY),
        check_resident_id(flip_check_digit(make_resident_id()), TODAY),
        check_resident_id(make_resident_id(birth="19901307"), TODAY),
        check_resident_id(make_resident_id(birth="20100101"), TODAY),
        check_uscc("123"),
        check_uscc(make_uscc()[:-1] + ("0" if make_uscc()[-1] != "0" else "1")),
        check_mobile("123"),
        check_account_number("12ab"),
        check_account_number(flip_check_digit(make_card())),
        check_account_name("王五", "张三"),
        check_resident_id(make_resident_id(area="990101"), TODAY),
        check_id_expiry(None, False, "", TODAY),
        check_id_expiry(TODAY, True, "", TODAY),
        check_id_expiry(date(2020, 1, 1), False, "", TODAY),
        check_id_expiry(date(2060, 1, 1), False, "", TODAY),
        check_id_expiry(None, True, make_resident_id(birth="19900101"), TODAY),
        check_uscc(_code("B1")),
        check_uscc(_code("94")),
        check_uscc(_bad_organization_code()),
        check_uscc_kind(_code("91"), "individual_business"),
        check_uscc_kind(_code("92"), "enterprise"),
        *check_settlement_account(
            "enterprise", "personal", "张三", make_card(), legal_name="张三", business_name="某公司"
        ),
        *check_settlement_account(
            "individual", "unit", "某小店", "12345678901", legal_name="张三", business_name="某小店"
        ),
        check_mcc_allowed("7995"),
        *(v for _, v in check_agent(True, None, make_resident_id(), TODAY)),
        *(v for _, v in check_agent(False, make_resident_id(), make_resident_id(), TODAY)),
        *(v for _, v in check_agent(True, "34010419900307123X", "34010419900307123X", TODAY)),
        check_beneficial_owners_named("enterprise", 0),
        *(v for _, v in check_beneficial_owners("individual", [_owner()], TODAY)),
        *(
            v
            for _, v in check_beneficial_owners(
                "enterprise",
                [_owner(), _owner(), _owner("share", None), _owner("share", Decimal(10))],
                TODAY,
            )
        ),
        check_licence_expiry(date(2020, 1, 1), TODAY),
        check_mcc("12"),
        check_mcc("9999"),
        check_terminal_count("individual", 99),
        check_terminal_count("individual", 0),
    ]
    return [violation for violation in found if violation is not None]


def _code(prefix: str, organization: str = "MA2N0001") -> str:
    body = f"{prefix}340104{organization}{organization_code_check_digit(organization)}"
    return body + uscc.calc_check_digit(body)


def _bad_organization_code() -> str:
    good = _code("91")
    body = good[:16] + ("1" if good[16] != "1" else "2")
    return body + uscc.calc_check_digit(body)


def _owner(basis: str = "share", share: Decimal | None = Decimal(60)) -> Owner:
    return Owner(make_resident_id(birth="19700101"), basis, share)


def _region_errors() -> list[RegionError]:
    errors = []
    for args in [
        ("安徽省", "蜀山区", "999999"),
        ("安徽省", "蜀山区", "110105"),
        ("安徽省", "高新区", None),
        ("江苏省", "鼓楼区", None),
    ]:
        with pytest.raises(RegionError) as info:
            resolve_area_code(*args)
        errors.append(info.value)
    return errors


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_message_code_is_reached_by_a_real_case() -> None:
    codes = {v.code for v in _violations()} | {e.code for e in _region_errors()}
    assert codes == set(MESSAGES)


def test_every_message_formats_with_the_params_its_rule_gives() -> None:
    cases = [(v.code, v.params) for v in _violations()] + [
        (e.code, e.params) for e in _region_errors()
    ]
    for code, params in cases:
        template = MESSAGES[code]
        assert _fields(template) <= set(params), code
        text = template.format(**params)
        assert "{" not in text, code


def test_messages_never_echo_the_number() -> None:
    number = make_resident_id(birth="20100101")
    card = flip_check_digit(make_card())
    for violation in [check_resident_id(number, TODAY), check_account_number(card)]:
        assert violation is not None
        rendered = MESSAGES[violation.code].format(**violation.params)
        assert number not in rendered
        assert card not in rendered
        assert all(number not in value and card not in value for value in violation.params.values())


def test_n_marker_returns_its_argument() -> None:
    assert rules.N_("x") == "x"
