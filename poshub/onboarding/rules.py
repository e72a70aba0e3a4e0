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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

import iso18245
from stdnum import luhn
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat

from poshub.core.limits import (
    ADULT_AGE_YEARS,
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
    "id_number.format": N_(
        "The ID card number must have 18 characters: 17 digits followed by a digit or the letter X."
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
    "licence_expiry.expired": N_(
        "The business licence expired on {expiry}. Please upload the renewed licence."
    ),
    "mcc.format": N_("The merchant category code must be exactly 4 digits."),
    "mcc.unknown": N_("{mcc} is not a merchant category code that we can accept."),
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


def check_resident_id(number: str, today: date) -> RuleViolation | None:
    """Format, check digit, birth date and adulthood of a resident ID number."""
    normalized = normalize_resident_id(number)
    if not _RESIDENT_ID_RE.fullmatch(normalized):
        return RuleViolation("id_number.format")
    # stdnum's own validate() raises InvalidComponent both for an impossible date
    # and for an area code its table does not know at the birth year. We call the
    # pieces ourselves to keep the two apart, and do not reject on the area code:
    # codes are assigned at registration, not birth, and the real-name check with
    # the verification provider is the authority on whether the number exists.
    if ric.calc_check_digit(normalized) != normalized[-1]:
        return RuleViolation("id_number.checksum")
    try:
        born = ric.get_birth_date(normalized)
    except InvalidComponent:
        return RuleViolation("id_number.birth_date")
    if born > today or born.year < RESIDENT_ID_OLDEST_BIRTH_YEAR:
        return RuleViolation("id_number.birth_date")
    age = _completed_years(born, today)
    if age < ADULT_AGE_YEARS:
        return RuleViolation(
            "id_number.minor", {"age": str(age), "adult_age": str(ADULT_AGE_YEARS)}
        )
    return None


# --- Unified social credit code (统一社会信用代码) ----------------------------


def normalize_uscc(value: str) -> str:
    """Strip spaces and dashes and uppercase."""
    return uscc.compact(_nfkc_compact(value))


def check_uscc(value: str) -> RuleViolation | None:
    """Length, alphabet and check character of a unified social credit code."""
    try:
        uscc.validate(normalize_uscc(value))
    except InvalidChecksum:
        return RuleViolation("uscc.checksum")
    except InvalidFormat:
        # InvalidLength is a subclass of InvalidFormat in stdnum.
        return RuleViolation("uscc.format")
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
    description = next(
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
    SETTLEMENT_ACCOUNT_PROOF = "settlement_account_proof"
    PREMISES_PROOF = "premises_proof"
    LEASE_CONTRACT = "lease_contract"
    FINANCIAL_STATEMENTS = "financial_statements"
    BUSINESS_PLAN = "business_plan"


DOCUMENT_LABELS: dict[DocumentKind, str] = {
    DocumentKind.ID_CARD_FRONT: N_("ID card, front (photo side)"),
    DocumentKind.ID_CARD_BACK: N_("ID card, back (national emblem side)"),
    DocumentKind.BUSINESS_LICENCE: N_("Business licence"),
    DocumentKind.TAX_REGISTRATION: N_("Tax registration certificate"),
    DocumentKind.SETTLEMENT_ACCOUNT_PROOF: N_(
        "Settlement account proof (bank card or account opening permit)"
    ),
    DocumentKind.PREMISES_PROOF: N_("Photo of the shop front and premises"),
    DocumentKind.LEASE_CONTRACT: N_("Lease contract or property certificate for the premises"),
    DocumentKind.FINANCIAL_STATEMENTS: N_("Financial statements for the last year"),
    DocumentKind.BUSINESS_PLAN: N_("Business plan"),
}

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
_ENTERPRISE_DOCUMENTS = _INDIVIDUAL_BUSINESS_DOCUMENTS | {DocumentKind.TAX_REGISTRATION}


def required_documents(
    kind: str, established_on: date | None, today: date
) -> frozenset[DocumentKind]:
    """The documents an applicant of ``kind`` must upload (R2)."""
    if kind == "individual":
        return _INDIVIDUAL_DOCUMENTS
    if kind == "individual_business":
        return _INDIVIDUAL_BUSINESS_DOCUMENTS
    if kind == "enterprise":
        # A young company has no annual accounts to show yet, so it explains
        # itself with a business plan instead; an unknown founding date counts as
        # young rather than demanding statements that may not exist.
        young = (
            established_on is None or (today - established_on).days < ENTERPRISE_TRACK_RECORD_DAYS
        )
        extra = DocumentKind.BUSINESS_PLAN if young else DocumentKind.FINANCIAL_STATEMENTS
        return _ENTERPRISE_DOCUMENTS | {extra}
    raise ValueError(
        f"unknown applicant kind {kind!r}; expected individual, individual_business or enterprise"
    )
