"""Pure validation rules for merchant applications.

Each ``check_*`` rule returns None when the value is acceptable, or a
:class:`RuleViolation` whose dotted ``code`` ('field.problem') keys an English
message template in :data:`MESSAGES`. Templates are translated at the edge;
``params`` fill their placeholders and never carry a full ID or account number.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

import iso18245
from stdnum import luhn, numdb
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidComponent

from poshub.core.limits import (
    ADULT_AGE_YEARS,
    BENEFICIAL_OWNER_SHARE_PERCENT_MIN,
    ID_CARD_LONG_TERM_MIN_AGE_YEARS,
    ID_CARD_VALIDITY_YEARS_MAX,
    PROHIBITED_MCCS,
    RESIDENT_ID_LENGTH,
    RESIDENT_ID_OLDEST_BIRTH_YEAR,
    TERMINALS_PER_APPLICANT_MAX,
)

# --- Limits local to these rules --------------------------------------------
ACCOUNT_NUMBER_LENGTH_MIN = 8
"""Shortest settlement account number accepted, in digits."""

ACCOUNT_NUMBER_LENGTH_MAX = 30
"""Longest settlement account number accepted, in digits."""

CARD_NUMBER_LENGTH_MIN = 16
CARD_NUMBER_LENGTH_MAX = 19
"""UnionPay debit cards carry 16 to 19 digits (ISO/IEC 7812 with a Luhn check digit)."""

ENTERPRISE_TRACK_RECORD_DAYS = 365
"""An enterprise younger than this has no annual accounts yet and sends a business plan."""


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Mark a string for Babel extraction without translating it here."""
    return message


@dataclass(frozen=True)
class RuleViolation:
    """A value that breaks a rule: stable dotted ``code`` and message ``params``."""

    code: str
    params: dict[str, str] = field(default_factory=dict)


MESSAGES: dict[str, str] = {
    "id_number.length": N_(
        "The resident ID number must have {expected} characters; this one has {length}."
    ),
    "id_number.format": N_(
        "The ID card number must have 18 characters: 17 digits followed by a digit or the letter X."
    ),
    "id_number.region": N_(
        "The first six digits of the ID card number are not an administrative area code "
        "(GB/T 2260), past or present. Please copy the number again from the ID card."
    ),
    "id_expiry.required": N_(
        "Give the ID card's expiry date from the back of the card, or mark it as long-term."
    ),
    "id_expiry.conflict": N_("A long-term ID card has no expiry date; give one or the other."),
    "id_expiry.expired": N_(
        "The ID card expired on {expiry}. Please renew it and apply with the new card."
    ),
    "id_expiry.too_far": N_(
        "An ID card is valid for at most {years} years; {expiry} cannot be its expiry date."
    ),
    "id_expiry.long_term_age": N_(
        "Long-term ID cards are issued only to people aged {min_age} or over, and the holder "
        "is {age}. Please give the expiry date printed on the back of the card."
    ),
    "id_number.checksum": N_(
        "The ID card number is not valid: its last character does not match the rest of the "
        "number. Please copy it again from the ID card."
    ),
    "id_number.birth_date": N_(
        "The date of birth inside the ID card number is not a possible date. Please copy the "
        "number again from the ID card."
    ),
    "id_number.minor": N_(
        "The ID card holder is {age} years old. The applicant must be at least {adult_age} "
        "years old."
    ),
    "uscc.format": N_(
        "The unified social credit code must have 18 characters: 8 digits, then digits or "
        "capital letters other than I, O, S, V and Z."
    ),
    "uscc.checksum": N_(
        "The unified social credit code is not valid: its last character does not match the "
        "rest of the code. Please copy it again from the business licence."
    ),
    "uscc.authority": N_(
        "The first character of the unified social credit code, {authority}, is not a "
        "registration authority code (GB 32100)."
    ),
    "uscc.type": N_(
        "The second character of the unified social credit code, {type}, is not an entity "
        "type that registration authority {authority} issues (GB 32100)."
    ),
    "uscc.organization_code": N_(
        "The organisation code inside the unified social credit code (characters 9 to 17) "
        "is not valid: its check character does not match (GB 11714). Please copy the code "
        "again from the business licence."
    ),
    "uscc.kind_individual_business": N_(
        "An individual business's unified social credit code starts with 92; this one starts "
        "with {prefix}. Check the code, or choose the applicant kind that matches the licence."
    ),
    "uscc.kind_enterprise": N_(
        "A unified social credit code starting with 92 belongs to an individual business "
        "(个体工商户): apply as an individual business, or give the enterprise's own code."
    ),
    "mobile.invalid": N_(
        "Please enter a mainland China mobile number: 11 digits starting with 13 to 19."
    ),
    "settlement_account.account_number.format": N_(
        "The account number must contain only digits, between {min_length} and {max_length} "
        "of them."
    ),
    "settlement_account.account_number.luhn": N_(
        "This bank card number is not valid. Please check it against the card."
    ),
    "settlement_account.account_name.mismatch": N_(
        "The settlement account must be held by the applicant, the legal representative or "
        "the business itself, under the same name as on the application."
    ),
    "settlement_account.account_type.personal_for_enterprise": N_(
        "An enterprise settles only to a unit account (单位银行结算账户) in its own name, "
        "never to a personal account."
    ),
    "settlement_account.account_type.unit_for_individual": N_(
        "An individual without a business licence settles to a personal account in their "
        "own name; choose the personal account type."
    ),
    "settlement_account.account_number.card_for_unit": N_(
        "This is a bank card number. A unit account (单位银行结算账户) is not a card: give "
        "the account number from the account opening documents."
    ),
    "settlement_account.account_name.not_business": N_(
        "A unit account must be in the business's own name, {business_name}, exactly as on "
        "the licence."
    ),
    "settlement_account.account_name.not_holder": N_(
        "A personal settlement account must be the applicant's own, in the name {legal_name}."
    ),
    "licence_expiry.expired": N_(
        "The business licence expired on {expiry}. Please upload the renewed licence."
    ),
    "mcc.format": N_("The merchant category code must be exactly 4 digits."),
    "mcc.unknown": N_("{mcc} is not a merchant category code that we can accept."),
    "mcc.prohibited": N_("We do not accept merchants of category {mcc}: {reason}"),
    "beneficial_owners.required": N_(
        "An enterprise must name its beneficial owners (受益所有人) before submitting: each "
        "natural person who holds {min_percent}% or more of it, or controls it otherwise."
    ),
    "beneficial_owners.not_applicable": N_(
        "Only an enterprise names beneficial owners; leave them out for this applicant kind."
    ),
    "beneficial_owners.share_required": N_(
        "Give the share this owner holds: they are named on the basis of shares."
    ),
    "beneficial_owners.share_too_small": N_(
        "An owner by shares holds at least {min_percent}% of the enterprise; otherwise name "
        "them on the basis of control."
    ),
    "beneficial_owners.total": N_("The owners' shares add up to {total}%, more than 100%."),
    "beneficial_owners.duplicate": N_("This person is already listed as a beneficial owner."),
    "agent.required": N_(
        "Give the name and resident ID number of the agent who applies for the legal "
        "representative."
    ),
    "agent.unexpected": N_(
        "Agent details are given only when an agent applies for the legal representative."
    ),
    "agent.same_person": N_(
        "The agent has the legal representative's own ID number: apply without an agent."
    ),
    "terminals.too_many": N_(
        "You asked for {count} terminals, but this type of applicant may request at most {limit}."
    ),
    "terminals.none": N_("Please request at least one terminal."),
    # Raised as RegionError by poshub.core.regions; kept here so that every code an
    # application can fail with has its message in one catalogue.
    "address.region_code.unknown": N_("{region_code} is not a current administrative area code."),
    "address.region_code.mismatch": N_(
        "Administrative area code {region_code} is not in {province}."
    ),
    "address.district.unknown": N_(
        "We could not find the district {district} in {province}. Please choose your "
        "district from the list."
    ),
    "address.district.ambiguous": N_(
        "There is more than one {district} in {province}: {candidates}. Please choose yours "
        "from the list."
    ),
}


def _nfkc_compact(text: str) -> str:
    # Chinese input methods easily produce full-width digits and letters; NFKC turns
    # them into ASCII, and whitespace is never significant inside these numbers.
    return "".join(unicodedata.normalize("NFKC", text).split())


# --- Resident identity card (居民身份证) -------------------------------------

_RESIDENT_ID_RE = re.compile(r"[0-9]{17}[0-9X]")


def normalize_resident_id(number: str) -> str:
    """Strip spaces and uppercase a final x."""
    return _nfkc_compact(number).upper()


def resident_id_birth_date(number: str) -> date:
    """The birth date encoded in a resident ID number; ValueError if there is none."""
    normalized = normalize_resident_id(number)
    if not _RESIDENT_ID_RE.fullmatch(normalized):
        # The number itself stays out of the message: it is personal data.
        raise ValueError("not an 18-character resident ID number")
    return ric.get_birth_date(normalized)


def _completed_years(born: date, today: date) -> int:
    # Chinese law counts an age in full years (周岁) as complete from the day after
    # the birthday (民法典 art. 201-202; SPC interpretation on minors, art. 2), and
    # someone born on 29 February completes a year on 1 March in common years.
    return today.year - born.year - ((today.month, today.day) <= (born.month, born.day))


@functools.cache
def _known_area_codes() -> frozenset[str]:
    # python-stdnum's cn/loc table (the one stdnum.cn.ric itself reads) keeps every
    # GB/T 2260 code with the years it was in force; any code it has ever listed counts,
    # since a number keeps the code it was first issued under (e.g. 崇文区 110103).
    codes: set[str] = set()
    for _length, low, high, _props, children in numdb.get("cn/loc").prefixes:
        for province in range(int(low), int(high) + 1):
            for _child_length, child_low, child_high, _child_props, _ in children:
                codes.update(
                    f"{province:02d}{county:0{len(child_low)}d}"
                    for county in range(int(child_low), int(child_high) + 1)
                )
    return frozenset(code for code in codes if len(code) == 6)


def is_known_area_code(code: str) -> bool:
    """Whether a six-digit code is an administrative area code of GB/T 2260, past or present."""
    return code in _known_area_codes()


def check_resident_id(number: str, today: date, *, adult: bool = True) -> RuleViolation | None:
    """Length, format, check digit, birth date, area code and (with ``adult``) adulthood
    of a resident ID number."""
    normalized = normalize_resident_id(number)
    if len(normalized) != RESIDENT_ID_LENGTH:
        return RuleViolation(
            "id_number.length",
            {"expected": str(RESIDENT_ID_LENGTH), "length": str(len(normalized))},
        )
    if not _RESIDENT_ID_RE.fullmatch(normalized):
        return RuleViolation("id_number.format")
    # stdnum's own validate() raises InvalidComponent both for an impossible date
    # and for an area code its table does not know at the birth year. We call the
    # pieces ourselves to keep the two apart, and accept an area code of any year:
    # codes are assigned at registration, not birth.
    if ric.calc_check_digit(normalized) != normalized[-1]:
        return RuleViolation("id_number.checksum")
    try:
        born = ric.get_birth_date(normalized)
    except InvalidComponent:
        return RuleViolation("id_number.birth_date")
    if born > today or born.year < RESIDENT_ID_OLDEST_BIRTH_YEAR:
        return RuleViolation("id_number.birth_date")
    if not is_known_area_code(normalized[:6]):
        return RuleViolation("id_number.region")
    age = _completed_years(born, today)
    if adult and age < ADULT_AGE_YEARS:
        return RuleViolation(
            "id_number.minor", {"age": str(age), "adult_age": str(ADULT_AGE_YEARS)}
        )
    return None


def check_id_expiry(
    expiry: date | None, long_term: bool, id_number: str, today: date
) -> RuleViolation | None:
    """The resident ID card's validity (证件有效期): a date not yet past and no further
    ahead than a card can run, or long-term (长期) for a holder who was 46 or older when
    it was issued (居民身份证法 art. 5). Without the issue date, a holder younger than 46
    today cannot have had a long-term card issued."""
    if expiry is None and not long_term:
        return RuleViolation("id_expiry.required")
    if expiry is not None and long_term:
        return RuleViolation("id_expiry.conflict")
    if expiry is not None:
        if expiry < today:
            return RuleViolation("id_expiry.expired", {"expiry": expiry.isoformat()})
        if expiry > _add_years(today, ID_CARD_VALIDITY_YEARS_MAX):
            return RuleViolation(
                "id_expiry.too_far",
                {"expiry": expiry.isoformat(), "years": str(ID_CARD_VALIDITY_YEARS_MAX)},
            )
        return None
    try:
        born = resident_id_birth_date(id_number)
    except (ValueError, InvalidComponent):
        return None  # the number's own error is reported on id_number
    age = _completed_years(born, today)
    if age < ID_CARD_LONG_TERM_MIN_AGE_YEARS:
        return RuleViolation(
            "id_expiry.long_term_age",
            {"age": str(age), "min_age": str(ID_CARD_LONG_TERM_MIN_AGE_YEARS)},
        )
    return None


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year + years, day=28)


# --- Unified social credit code (统一社会信用代码) ----------------------------


def normalize_uscc(value: str) -> str:
    """Strip spaces and dashes and uppercase."""
    return uscc.compact(_nfkc_compact(value))


USCC_ENTITY_TYPES: dict[str, frozenset[str]] = {
    "1": frozenset("1239"),  # 机构编制: 机关, 事业单位, 中央编办管理的群众团体, 其他
    "2": frozenset("19"),  # 外交: 外国常驻新闻机构, 其他
    "3": frozenset("1234569"),  # 司法行政: 律所, 公证处, 基层法律服务所, 司法鉴定, 仲裁委, 其他
    "4": frozenset("19"),  # 文化: 外国在华文化中心, 其他
    "5": frozenset("1239"),  # 民政: 社会团体, 民办非企业单位, 基金会, 其他
    "6": frozenset("129"),  # 旅游: 外国及港澳台旅游部门常驻代表机构, 其他
    "7": frozenset("129"),  # 宗教: 宗教活动场所, 宗教院校, 其他
    "8": frozenset("19"),  # 工会: 基层工会, 其他
    "9": frozenset("123"),  # 市场监管(工商): 企业, 个体工商户, 农民专业合作社
    "A": frozenset("19"),  # 中央军委改革和编制办公室: 军队事业单位, 其他
    "N": frozenset("1239"),  # 农业农村: 组级, 村级, 乡镇级集体经济组织, 其他
    "Y": frozenset("1"),  # 其他登记管理部门
}
"""Registration authority (登记管理部门码) → the entity types (机构类别码) it issues,
from GB 32100-2015 and its amendments."""

USCC_LENGTH = 18
_USCC_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")
"""GB 32100's characters: digits and capital letters other than I, O, S, V and Z."""

INDIVIDUAL_BUSINESS_USCC_PREFIX = "92"
"""个体工商户, registered by market regulation (GB 32100)."""

_ORGANIZATION_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORGANIZATION_CODE_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def organization_code_check_digit(body: str) -> str:
    """GB 11714 check character of an organisation code's first eight characters."""
    total = sum(
        _ORGANIZATION_CODE_CHARS.index(char) * weight
        for char, weight in zip(body, _ORGANIZATION_CODE_WEIGHTS, strict=True)
    )
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def check_uscc(value: str) -> RuleViolation | None:
    """Length, alphabet and check character of a unified social credit code; its
    registration authority and entity type (GB 32100); the check character of the
    organisation code at characters 9 to 17 (GB 11714)."""
    normalized = normalize_uscc(value)
    # Not stdnum's validate(): it wants eight leading digits, which refuses the codes of
    # registration authorities A, N and Y. Its alphabet and check digit are used as such.
    if (
        len(normalized) != USCC_LENGTH
        or any(char not in _USCC_ALPHABET for char in normalized)
        or not (normalized[2:8].isascii() and normalized[2:8].isdigit())
    ):
        return RuleViolation("uscc.format")
    if uscc.calc_check_digit(normalized[:-1]) != normalized[-1]:
        return RuleViolation("uscc.checksum")
    authority, entity_type = normalized[0], normalized[1]
    if authority not in USCC_ENTITY_TYPES:
        return RuleViolation("uscc.authority", {"authority": authority})
    if entity_type not in USCC_ENTITY_TYPES[authority]:
        return RuleViolation("uscc.type", {"authority": authority, "type": entity_type})
    organization_code = normalized[8:17]
    if (
        any(char not in _ORGANIZATION_CODE_CHARS for char in organization_code[:8])
        or organization_code_check_digit(organization_code[:8]) != organization_code[8]
    ):
        return RuleViolation("uscc.organization_code")
    return None


def check_uscc_kind(value: str, kind: str) -> RuleViolation | None:
    """The code's entity type fits the applicant kind: an individual business holds a
    92 code; an enterprise (any unit: company, cooperative, public institution, social
    organisation) holds any other."""
    prefix = normalize_uscc(value)[:2]
    if kind == "individual_business" and prefix != INDIVIDUAL_BUSINESS_USCC_PREFIX:
        return RuleViolation("uscc.kind_individual_business", {"prefix": prefix})
    if kind == "enterprise" and prefix == INDIVIDUAL_BUSINESS_USCC_PREFIX:
        return RuleViolation("uscc.kind_enterprise")
    return None


# --- Mobile number --------------------------------------------------------------

_MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")
_MOBILE_COUNTRY_PREFIXES = ("+86", "0086", "86")


def normalize_mobile(value: str) -> str:
    """The 11-digit national number: drop spaces, dashes and a +86/0086/86 prefix."""
    compact = _nfkc_compact(value).replace("-", "")
    for prefix in _MOBILE_COUNTRY_PREFIXES:
        # Only strip a prefix that leaves exactly a national number behind, so that
        # 186xxxxxxxx keeps its leading 1 and 86.
        if compact.startswith(prefix) and len(compact) == len(prefix) + 11:
            return compact[len(prefix) :]
    return compact


def check_mobile(value: str) -> RuleViolation | None:
    """A mainland China mobile number: 11 digits starting 13 to 19."""
    if _MOBILE_RE.fullmatch(normalize_mobile(value)):
        return None
    return RuleViolation("mobile.invalid")


# --- Settlement account -----------------------------------------------------------


def normalize_account_number(account_number: str) -> str:
    """Strip spaces (bank cards are often written in groups of four)."""
    return _nfkc_compact(account_number)


def is_card_number(account_number: str) -> bool:
    """Whether the account number looks like a bank card (16 to 19 digits)."""
    normalized = normalize_account_number(account_number)
    return (
        normalized.isascii()
        and normalized.isdigit()
        and CARD_NUMBER_LENGTH_MIN <= len(normalized) <= CARD_NUMBER_LENGTH_MAX
    )


def check_account_number(account_number: str, *, card: bool | None = None) -> RuleViolation | None:
    """Digits and length of a settlement account number, and Luhn for bank cards.

    ``card`` says whether the account is a bank card; None guesses from the length.
    Pass ``card=False`` for a corporate (对公) account: some banks' corporate
    accounts have 16 to 19 digits without a Luhn check digit.
    """
    normalized = normalize_account_number(account_number)
    if not (
        normalized.isascii()
        and normalized.isdigit()
        and ACCOUNT_NUMBER_LENGTH_MIN <= len(normalized) <= ACCOUNT_NUMBER_LENGTH_MAX
    ):
        return RuleViolation(
            "settlement_account.account_number.format",
            {
                "min_length": str(ACCOUNT_NUMBER_LENGTH_MIN),
                "max_length": str(ACCOUNT_NUMBER_LENGTH_MAX),
            },
        )
    looks_like_card = is_card_number(normalized) if card is None else card
    if looks_like_card and not luhn.is_valid(normalized):
        return RuleViolation("settlement_account.account_number.luhn")
    return None


# Banks and ID cards disagree on the dot between the parts of a transliterated
# name (e.g. Uyghur names): fold every look-alike to the middle dot '·'.
_NAME_DOTS = str.maketrans(dict.fromkeys("•・･‧∙⋅.．", "·"))


def _name_key(name: str) -> str:
    return _nfkc_compact(name).translate(_NAME_DOTS).casefold()


def names_match(account_name: str, *candidates: str) -> bool:
    """Whether the account holder's name equals one of the candidates.

    Compared after NFKC (full-width parentheses and spaces), without whitespace
    and case-folded, so '某某（上海）有限公司' matches '某某(上海)有限公司'.
    """
    key = _name_key(account_name)
    return bool(key) and any(key == _name_key(candidate) for candidate in candidates)


def check_account_name(account_name: str, *candidates: str) -> RuleViolation | None:
    """The settlement account must be held by the legal person or the business."""
    if names_match(account_name, *candidates):
        return None
    return RuleViolation("settlement_account.account_name.mismatch")


class AccountType(StrEnum):
    """The kind of settlement account (人民币银行结算账户管理办法)."""

    UNIT = "unit"
    """单位银行结算账户: a business's own account, opened with its licence."""
    PERSONAL = "personal"
    """个人银行结算账户: a natural person's account (a bank card or passbook)."""


_CARD_MAJOR_INDUSTRY_IDENTIFIERS = frozenset("3456")
"""First digits of payment card numbers (ISO/IEC 7812: 3 travel, 4-5 banking, 6 UnionPay
and others); corporate account numbers of Chinese banks follow no such scheme."""


def looks_like_bank_card(account_number: str) -> bool:
    """A personal bank card: 16 to 19 digits, a card network's first digit and a valid
    Luhn check digit (a corporate account of that length passes all three only by chance)."""
    normalized = normalize_account_number(account_number)
    return (
        is_card_number(normalized)
        and normalized[0] in _CARD_MAJOR_INDUSTRY_IDENTIFIERS
        and luhn.is_valid(normalized)
    )


def check_settlement_account(
    kind: str,
    account_type: str,
    account_name: str,
    account_number: str,
    *,
    legal_name: str,
    business_name: str,
) -> list[RuleViolation]:
    """Who may be paid (PBOC 2013 No. 9 on 特约商户 settlement accounts): an enterprise
    only to a unit account in its own name; an individual business to a unit account in
    its name or to the operator's own personal account; an individual to their own
    personal account. Unit accounts are never bank cards."""
    violations: list[RuleViolation] = []
    unit = account_type == AccountType.UNIT
    if kind == "enterprise" and not unit:
        violations.append(RuleViolation("settlement_account.account_type.personal_for_enterprise"))
    elif kind == "individual" and unit:
        violations.append(RuleViolation("settlement_account.account_type.unit_for_individual"))
    number_violation = check_account_number(account_number, card=False if unit else None)
    if number_violation is not None:
        violations.append(number_violation)
    elif (unit or kind == "enterprise") and looks_like_bank_card(account_number):
        violations.append(RuleViolation("settlement_account.account_number.card_for_unit"))
    if (unit and kind != "individual") or kind == "enterprise":
        if not names_match(account_name, business_name):
            violations.append(
                RuleViolation(
                    "settlement_account.account_name.not_business",
                    {"business_name": business_name},
                )
            )
    elif not names_match(account_name, legal_name):
        violations.append(
            RuleViolation("settlement_account.account_name.not_holder", {"legal_name": legal_name})
        )
    return violations


# --- Business licence -------------------------------------------------------------


def check_licence_expiry(expiry: date | None, today: date) -> RuleViolation | None:
    """A licence valid through ``expiry``; None is a long-term (长期) licence."""
    if expiry is not None and expiry < today:
        return RuleViolation("licence_expiry.expired", {"expiry": expiry.isoformat()})
    return None


# --- Merchant category code (ISO 18245) -----------------------------------------


class MccRiskClass(StrEnum):
    """How closely risk officers look at a merchant category."""

    LOW = "low"
    STANDARD = "standard"
    HIGH = "high"


HIGH_RISK_MCCS: frozenset[str] = frozenset(
    {
        # Gambling is illegal in mainland China outside the state lotteries, and
        # every card scheme treats betting codes as high risk.
        "7995",
        "7800",
        "7801",
        "7802",
        # Money movement and quasi-cash: the classic channels for credit-card cash-out
        # (套现) and laundering that UnionPay and the PBOC single out.
        "4829",
        "6051",
        "6540",
        # Pawn shops turn goods into cash on the spot, another cash-out channel.
        "5933",
        # Jewellery and precious metals: high tickets, resale value, laundering risk.
        "5944",
        "5094",
        # Dating and escort services, and massage parlours: reputational and
        # legal risk; acquirers visit these before signing.
        "7273",
        "7297",
        # Bars and night clubs: high tickets and frequent chargebacks and cash-out.
        "5813",
        # Telemarketing merchants sell by phone, so a terminal under these codes
        # means keyed card-not-present sales; Visa and Mastercard both list them
        # as high brand risk.
        "5966",
        "5967",
    }
)
"""Categories that Chinese acquirers and the card schemes treat as high risk.

Cigar and tobacco shops (5993) and pharmacies (5912, 5122) are high risk for the
schemes only when selling card-not-present; at a POS counter they are ordinary
retail, and tobacco's own 专卖 licence is checked with the business licence.
"""

LOW_RISK_MCCS: frozenset[str] = frozenset(
    {
        # Everyday face-to-face retail and food with small tickets.
        "5411",
        "5499",
        "5812",
        "5814",
        # Public services (民生类) where fraud has little to gain: schools,
        # hospitals, utilities, public transport, post, taxes and government.
        "8211",
        "8220",
        "8062",
        "4900",
        "4111",
        "9402",
        "9311",
        "9399",
    }
)
"""Categories with small face-to-face tickets or public-service payees."""


@dataclass(frozen=True)
class MccInfo:
    """A merchant category code with its description and risk class."""

    code: str
    description: str
    risk_class: MccRiskClass


_MCC_RE = re.compile(r"[0-9]{4}")

_DESCRIPTION_FIXES: Mapping[str, str] = {
    # The only source for 7511 is Stripe's list, which reads "Truck StopIteration"
    # (a search-and-replace slip in its data); the code is the schemes' truck stops.
    "7511": "Truck stops",
}


def mcc_info(mcc: str) -> MccInfo | None:
    """Description and risk class of a merchant category code; None if unknown or reserved."""
    if not _MCC_RE.fullmatch(mcc):
        return None
    return _mcc_info(mcc)


# Cached behind the format check, so that at most 10,000 keys can ever enter it;
# iso18245 scans its CSV lists linearly on every call.
@functools.cache
def _mcc_info(mcc: str) -> MccInfo | None:
    try:
        entry = iso18245.get_mcc(mcc)
    except (iso18245.MCCNotFound, iso18245.InvalidMCC):
        return None
    # 3000-3999 is reserved for the schemes' brand codes (one per airline, car
    # rental firm or hotel chain), never assigned to a merchant signing up here.
    if entry.range.reserved:
        return None
    # Some codes in use (e.g. 7800 government lotteries) are only in the schemes'
    # lists, not in the ISO one, so fall through to the next source.
    description = _DESCRIPTION_FIXES.get(mcc) or next(
        text
        for text in (
            entry.iso_description,
            entry.visa_description,
            entry.mastercard_description,
            entry.stripe_description,
            entry.usda_description,
            entry.amex_description,
            entry.alipay_description,
            mcc,
        )
        if text
    )
    if mcc in HIGH_RISK_MCCS:
        risk = MccRiskClass.HIGH
    elif mcc in LOW_RISK_MCCS:
        risk = MccRiskClass.LOW
    else:
        risk = MccRiskClass.STANDARD
    return MccInfo(code=mcc, description=description, risk_class=risk)


def check_mcc(mcc: str) -> RuleViolation | None:
    """A known, assignable four-digit merchant category code."""
    if not _MCC_RE.fullmatch(mcc):
        return RuleViolation("mcc.format")
    if mcc_info(mcc) is None:
        return RuleViolation("mcc.unknown", {"mcc": mcc})
    return None


def check_mcc_allowed(
    mcc: str, prohibited: Mapping[str, str] = PROHIBITED_MCCS
) -> RuleViolation | None:
    """A category PosHub onboards: not on the prohibited list (setting ``prohibited_mccs``)."""
    reason = prohibited.get(mcc)
    if reason is not None:
        return RuleViolation("mcc.prohibited", {"mcc": mcc, "reason": reason})
    return None


def requires_site_survey(mcc: str) -> bool:
    """Whether an officer must visit the premises before approval (high-risk MCC)."""
    info = mcc_info(mcc)
    return info is not None and info.risk_class is MccRiskClass.HIGH


# --- Terminals --------------------------------------------------------------------


def check_terminal_count(
    kind: str, total: int, limits: Mapping[str, int] = TERMINALS_PER_APPLICANT_MAX
) -> RuleViolation | None:
    """At least one terminal and no more than the applicant kind's ceiling (R4)."""
    if kind not in limits:
        raise ValueError(f"unknown applicant kind {kind!r}; expected one of {sorted(limits)}")
    if total < 1:
        return RuleViolation("terminals.none")
    limit = limits[kind]
    if total > limit:
        return RuleViolation(
            "terminals.too_many", {"count": str(total), "limit": str(limit), "kind": kind}
        )
    return None


# --- Documents (R2) ---------------------------------------------------------------


class DocumentKind(StrEnum):
    """A kind of document an applicant uploads."""

    ID_CARD_FRONT = "id_card_front"
    ID_CARD_BACK = "id_card_back"
    BUSINESS_LICENCE = "business_licence"
    TAX_REGISTRATION = "tax_registration"
    """Retired: since 三证合一 (2015) the business licence carries the credit code and
    replaces it. Kept so that documents uploaded before still read; not accepted."""
    SETTLEMENT_ACCOUNT_PROOF = "settlement_account_proof"
    ACCOUNT_OPENING_PROOF = "account_opening_proof"
    AUTHORISATION_LETTER = "authorisation_letter"
    PREMISES_PROOF = "premises_proof"
    LEASE_CONTRACT = "lease_contract"
    FINANCIAL_STATEMENTS = "financial_statements"
    BUSINESS_PLAN = "business_plan"


RETIRED_DOCUMENT_KINDS: frozenset[DocumentKind] = frozenset({DocumentKind.TAX_REGISTRATION})
"""Kinds no longer asked for nor accepted."""

DOCUMENT_LABELS: dict[DocumentKind, str] = {
    DocumentKind.ID_CARD_FRONT: N_("ID card, front (photo side)"),
    DocumentKind.ID_CARD_BACK: N_("ID card, back (national emblem side)"),
    DocumentKind.BUSINESS_LICENCE: N_("Business licence"),
    DocumentKind.TAX_REGISTRATION: N_("Tax registration certificate"),
    DocumentKind.SETTLEMENT_ACCOUNT_PROOF: N_(
        "Settlement account proof (bank card or account opening permit)"
    ),
    DocumentKind.ACCOUNT_OPENING_PROOF: N_(
        "Account opening permit (开户许可证) or basic deposit account information "
        "(基本存款账户信息)"
    ),
    DocumentKind.AUTHORISATION_LETTER: N_(
        "Letter of authorisation (授权委托书) from the legal representative to the agent"
    ),
    DocumentKind.PREMISES_PROOF: N_("Photo of the shop front and premises"),
    DocumentKind.LEASE_CONTRACT: N_("Lease contract or property certificate for the premises"),
    DocumentKind.FINANCIAL_STATEMENTS: N_("Financial statements for the last year"),
    DocumentKind.BUSINESS_PLAN: N_("Business plan"),
}

ACCEPTED_DOCUMENT_KINDS: tuple[DocumentKind, ...] = tuple(
    kind for kind in DocumentKind if kind not in RETIRED_DOCUMENT_KINDS
)
"""The kinds an applicant may upload, in the order offered."""

_INDIVIDUAL_DOCUMENTS = frozenset(
    {
        DocumentKind.ID_CARD_FRONT,
        DocumentKind.ID_CARD_BACK,
        DocumentKind.SETTLEMENT_ACCOUNT_PROOF,
        DocumentKind.PREMISES_PROOF,
    }
)
_INDIVIDUAL_BUSINESS_DOCUMENTS = _INDIVIDUAL_DOCUMENTS | {
    DocumentKind.BUSINESS_LICENCE,
    DocumentKind.LEASE_CONTRACT,
}
# No tax registration certificate: since 三证合一 the licence replaces it. The account
# opening permit, or since 2019 the basic deposit account information that replaced it,
# shows the unit account the enterprise settles to is its own.
_ENTERPRISE_DOCUMENTS = _INDIVIDUAL_BUSINESS_DOCUMENTS | {DocumentKind.ACCOUNT_OPENING_PROOF}


def required_documents(
    kind: str,
    established_on: date | None,
    today: date,
    *,
    account_type: str | None = None,
    by_agent: bool = False,
) -> frozenset[DocumentKind]:
    """The documents an applicant of ``kind`` must upload (R2): a unit account's opening
    proof also for an individual business that settles to one, and the letter of
    authorisation when an agent applies for the legal representative."""
    extra: set[DocumentKind] = set()
    if by_agent:
        extra.add(DocumentKind.AUTHORISATION_LETTER)
    if kind == "individual":
        return _INDIVIDUAL_DOCUMENTS | extra
    if kind == "individual_business":
        if account_type == AccountType.UNIT:
            extra.add(DocumentKind.ACCOUNT_OPENING_PROOF)
        return _INDIVIDUAL_BUSINESS_DOCUMENTS | extra
    if kind == "enterprise":
        # A young company has no annual accounts to show yet, so it explains
        # itself with a business plan instead; an unknown founding date counts as
        # young rather than demanding statements that may not exist.
        young = (
            established_on is None or (today - established_on).days < ENTERPRISE_TRACK_RECORD_DAYS
        )
        extra.add(DocumentKind.BUSINESS_PLAN if young else DocumentKind.FINANCIAL_STATEMENTS)
        return _ENTERPRISE_DOCUMENTS | extra
    raise ValueError(
        f"unknown applicant kind {kind!r}; expected individual, individual_business or enterprise"
    )


# --- Beneficial owners (受益所有人) ------------------------------------------------


class OwnershipBasis(StrEnum):
    """Why a natural person is a beneficial owner (受益所有人信息管理办法 2024, art. 6)."""

    SHARE = "share"
    """Ultimately holds 25% or more of the shares, directly or indirectly."""
    CONTROL = "control"
    """Controls the enterprise otherwise (or, failing both, its senior manager)."""


@dataclass(frozen=True)
class Owner:
    """A beneficial owner as given: ID number, basis and share (percent, or None)."""

    id_number: str
    basis: str
    share_percent: Decimal | None = None


FieldViolation = tuple[str, RuleViolation]
"""A violation with the path of the field it concerns (``beneficial_owners[1].id_number``)."""


def check_beneficial_owners(
    kind: str, owners: Sequence[Owner], today: date
) -> list[FieldViolation]:
    """Only an enterprise names beneficial owners; each has a valid ID number (a minor
    may be one), is named once, and an owner by shares holds 25% or more; the shares add
    up to 100% at most."""
    if not owners:
        return []
    if kind != "enterprise":
        return [("beneficial_owners", RuleViolation("beneficial_owners.not_applicable"))]
    found: list[FieldViolation] = []
    seen: set[str] = set()
    minimum = {"min_percent": str(BENEFICIAL_OWNER_SHARE_PERCENT_MIN)}
    for index, owner in enumerate(owners):
        at = f"beneficial_owners[{index}]."
        number = normalize_resident_id(owner.id_number)
        violation = check_resident_id(number, today, adult=False)
        if violation is not None:
            found.append((at + "id_number", violation))
        elif number in seen:
            found.append((at + "id_number", RuleViolation("beneficial_owners.duplicate")))
        seen.add(number)
        if owner.basis == OwnershipBasis.SHARE:
            if owner.share_percent is None:
                found.append(
                    (at + "share_percent", RuleViolation("beneficial_owners.share_required"))
                )
            elif owner.share_percent < BENEFICIAL_OWNER_SHARE_PERCENT_MIN:
                found.append(
                    (
                        at + "share_percent",
                        RuleViolation("beneficial_owners.share_too_small", minimum),
                    )
                )
    total = sum((owner.share_percent or Decimal(0) for owner in owners), start=Decimal(0))
    if total > 100:
        found.append(
            ("beneficial_owners", RuleViolation("beneficial_owners.total", {"total": f"{total:g}"}))
        )
    return found


def check_beneficial_owners_named(kind: str, count: int) -> RuleViolation | None:
    """An enterprise names at least one beneficial owner before it submits."""
    if kind == "enterprise" and count == 0:
        return RuleViolation(
            "beneficial_owners.required", {"min_percent": str(BENEFICIAL_OWNER_SHARE_PERCENT_MIN)}
        )
    return None


def check_agent(
    applied_by_agent: bool, agent_id_number: str | None, applicant_id_number: str, today: date
) -> list[FieldViolation]:
    """An agent applying is named with a valid ID number of an adult other than the legal
    representative; agent details without an agent applying are refused."""
    if applied_by_agent and agent_id_number is None:
        return [("agent", RuleViolation("agent.required"))]
    if agent_id_number is None:
        return []
    if not applied_by_agent:
        return [("agent", RuleViolation("agent.unexpected"))]
    number = normalize_resident_id(agent_id_number)
    if number == normalize_resident_id(applicant_id_number):
        return [("agent.id_number", RuleViolation("agent.same_person"))]
    violation = check_resident_id(number, today)
    return [("agent.id_number", violation)] if violation is not None else []
