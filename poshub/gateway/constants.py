"""Names for the numbers of the UnionPay POS dialect (``specs/unionpay-pos-8583.md``).

Field numbers, message types, processing codes, sub-field codes and response codes are
named here once; the rest of the gateway, the simulators and the tests use the names.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# --- Field keys as pyiso8583 names them (decoded dicts are keyed by strings) ----------
MTI: Final = "t"
BITMAP: Final = "p"
F_PAN: Final = "2"
F_PROCESSING_CODE: Final = "3"
F_AMOUNT: Final = "4"
F_STAN: Final = "11"
F_LOCAL_TIME: Final = "12"
F_LOCAL_DATE: Final = "13"
F_EXPIRY: Final = "14"
F_SETTLEMENT_DATE: Final = "15"
F_ENTRY_MODE: Final = "22"
F_CARD_SEQUENCE: Final = "23"
F_CONDITION_CODE: Final = "25"
F_PIN_CAPTURE: Final = "26"
F_ACQUIRER_ID: Final = "32"
F_TRACK2: Final = "35"
F_TRACK3: Final = "36"
F_RRN: Final = "37"
F_AUTH_CODE: Final = "38"
F_RESPONSE_CODE: Final = "39"
F_TID: Final = "41"
F_MID: Final = "42"
F_ADDITIONAL_RESPONSE: Final = "44"
F_PRIVATE_48: Final = "48"
F_CURRENCY: Final = "49"
F_PIN_BLOCK: Final = "52"
F_SECURITY_CONTROL: Final = "53"
SECURITY_DOUBLE_PIK: Final = "2600000000000000"
"""53: PIN block format 2 (ISO 9564 format 0), double-length PIN key (spec §7)."""
SECURITY_SINGLE_PIK: Final = "2000000000000000"
"""53: PIN block format 2, single-length PIN key."""
F_BALANCE: Final = "54"
F_ICC: Final = "55"
F_PRIVATE_59: Final = "59"
F_RESERVED_60: Final = "60"
F_ORIGINAL: Final = "61"
F_RESERVED_62: Final = "62"
F_RESERVED_63: Final = "63"
F_MAC: Final = "64"

SENSITIVE_FIELDS: Final = frozenset({F_PAN, F_TRACK2, F_TRACK3, F_PIN_BLOCK, F_ICC, F_EXPIRY})
"""Fields never logged, journalled or echoed into an error message as they are."""


# --- Message type indicators ---------------------------------------------------------
class Mti(StrEnum):
    AUTH_REQUEST = "0100"
    AUTH_RESPONSE = "0110"
    FINANCIAL_REQUEST = "0200"
    FINANCIAL_RESPONSE = "0210"
    ADVICE = "0220"
    ADVICE_RESPONSE = "0230"
    BATCH_UPLOAD = "0320"
    BATCH_UPLOAD_RESPONSE = "0330"
    REVERSAL = "0400"
    REVERSAL_RESPONSE = "0410"
    SETTLEMENT = "0500"
    SETTLEMENT_RESPONSE = "0510"
    MANAGEMENT = "0800"
    MANAGEMENT_RESPONSE = "0810"
    MANAGEMENT_ADVICE = "0820"
    MANAGEMENT_ADVICE_RESPONSE = "0830"


REQUEST_MTIS: Final = frozenset(
    {
        Mti.AUTH_REQUEST,
        Mti.FINANCIAL_REQUEST,
        Mti.ADVICE,
        Mti.BATCH_UPLOAD,
        Mti.REVERSAL,
        Mti.SETTLEMENT,
        Mti.MANAGEMENT,
        Mti.MANAGEMENT_ADVICE,
    }
)

MAC_MTIS: Final = frozenset({Mti.AUTH_REQUEST, Mti.FINANCIAL_REQUEST, Mti.ADVICE, Mti.REVERSAL})
"""Requests that always carry field 64 (spec §7.1); their responses are MACed too."""


def response_mti(mti: str) -> str:
    """Request MTI + 10 (spec §1.4): ``0200`` → ``0210``."""
    return mti[:2] + str(int(mti[2]) + 1) + mti[3]


# --- Processing codes (field 3) ------------------------------------------------------
PC_PURCHASE: Final = "000000"
PC_VOID: Final = "200000"
PC_BALANCE: Final = "310000"
PC_PREAUTH: Final = "030000"

# --- POS condition codes (field 25) --------------------------------------------------
CC_NORMAL: Final = "00"
CC_PREAUTH: Final = "06"


# --- 60.1 transaction type codes ------------------------------------------------------
class TypeCode(StrEnum):
    MANAGEMENT = "00"
    BALANCE = "01"
    PREAUTH = "10"
    PREAUTH_CANCEL = "11"
    COMPLETION = "20"
    COMPLETION_VOID = "21"
    SALE = "22"
    VOID = "23"
    COMPLETION_ADVICE = "24"
    REFUND = "25"


# --- 60.3 network management information codes -----------------------------------------
class NetworkCode(StrEnum):
    NONE = "000"
    SIGN_ON_SINGLE = "001"
    SIGN_OFF = "002"
    SIGN_ON_DOUBLE = "003"
    SIGN_ON_DOUBLE_TDK = "004"
    SETTLEMENT = "201"
    UPLOAD_END_UNBALANCED = "202"
    UPLOAD_IC = "203"
    UPLOAD_END_BALANCED = "207"
    ECHO = "301"
    PARAMETERS = "360"
    PARAMETERS_DONE = "361"


SIGN_ON_CODES: Final = frozenset(
    {NetworkCode.SIGN_ON_SINGLE, NetworkCode.SIGN_ON_DOUBLE, NetworkCode.SIGN_ON_DOUBLE_TDK}
)


# --- Entry modes (22.1) -------------------------------------------------------------------
ENTRY_MANUAL: Final = "01"
ENTRY_MAGSTRIPE: Final = "02"
ENTRY_QR: Final = "03"
ENTRY_CONTACT_IC: Final = "05"
ENTRY_CONTACTLESS: Final = "07"
PIN_ENTERED: Final = "1"
PIN_NOT_ENTERED: Final = "2"

CURRENCY_CNY: Final = "156"


# --- Response codes (field 39, spec §9) --------------------------------------------------
class Rc(StrEnum):
    APPROVED = "00"
    REFER_TO_ISSUER = "01"
    INVALID_MERCHANT = "03"
    PICK_UP = "04"
    DO_NOT_HONOUR = "05"
    PARTIAL_APPROVAL = "10"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD = "14"
    NO_SUCH_ISSUER = "15"
    CARD_NOT_INITIALISED = "21"
    MISMATCH = "22"
    ORIGINAL_NOT_FOUND = "25"
    FORMAT_ERROR = "30"
    EXPIRED_PICK_UP = "33"
    FRAUD_PICK_UP = "34"
    NOT_SUPPORTED = "40"
    LOST_CARD = "41"
    STOLEN_CARD = "43"
    FALLBACK_NOT_ALLOWED = "45"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    WRONG_PIN = "55"
    NOT_PERMITTED_CARDHOLDER = "57"
    NOT_PERMITTED_TERMINAL = "58"
    CARD_VERIFICATION = "59"
    EXCEEDS_AMOUNT_LIMIT = "61"
    RESTRICTED_CARD = "62"
    ORIGINAL_AMOUNT_WRONG = "64"
    FREQUENCY_LIMIT = "65"
    PIN_TRIES_EXCEEDED = "75"
    SIGN_ON_AGAIN = "77"
    CUT_OFF = "90"
    ISSUER_INOPERATIVE = "91"
    UNREACHABLE = "92"
    DUPLICATE = "94"
    SYSTEM_MALFUNCTION = "96"
    UNKNOWN_TERMINAL = "97"
    ISSUER_TIMEOUT = "98"
    PIN_FORMAT = "99"
    MAC_ERROR = "A0"


UNSIGNED_RESPONSE_CODES: Final = frozenset(
    {Rc.MAC_ERROR, Rc.UNKNOWN_TERMINAL, Rc.INVALID_MERCHANT, Rc.SIGN_ON_AGAIN, Rc.FORMAT_ERROR}
)
"""Responses the host cannot or must not MAC (spec §7.1)."""


# --- Header processing requirement (spec §1.3) ------------------------------------------
REQUIREMENT_NONE: Final = 0
REQUIREMENT_SIGN_ON: Final = 3


# --- Field 48 settlement result digit (spec §5.6) -----------------------------------------
SETTLE_REQUEST: Final = "0"
SETTLE_BALANCED: Final = "1"
SETTLE_UNBALANCED: Final = "2"
SETTLE_ERROR: Final = "3"

# --- Field 59 TLV tags (spec §11.6) ---------------------------------------------------------
TAG_QR_CODE: Final = "A3"
TAG_QR_VOUCHER: Final = "A4"
