"""What each response code of spec §9 means, for people (staff pages and the API).

The gateway itself only needs the codes it sends (``constants.Rc``); the journal also
keeps whatever the network answered, which can be any code of §9 (a lost card's 41, say),
so staff see and search the whole table. Meanings are English msgids marked with ``N_``
and translated at the edge (the zh_CN texts follow the spec's 中文 column).
"""

from __future__ import annotations

from typing import Final

from poshub.core.errors import N_

RESPONSE_CODE_MEANINGS: Final[dict[str, str]] = {
    "00": N_("Approved or completed successfully"),
    "01": N_("Refer to card issuer"),
    "03": N_("Invalid merchant"),
    "04": N_("Pick up card"),
    "05": N_("Do not honour"),
    "10": N_("Partial approval"),
    "12": N_("Invalid transaction"),
    "13": N_("Invalid amount"),
    "14": N_("Invalid card number"),
    "15": N_("No such issuer"),
    "21": N_("Card not initialised or dormant"),
    "22": N_("Suspected malfunction: related transaction does not match"),
    "25": N_("Original transaction not found"),
    "30": N_("Message format error"),
    "33": N_("Expired card, pick up"),
    "34": N_("Suspected fraud, pick up"),
    "40": N_("Function not supported"),
    "41": N_("Lost card, pick up"),
    "43": N_("Stolen card, pick up"),
    "45": N_("Fallback not allowed: use the chip"),
    "51": N_("Insufficient funds"),
    "54": N_("Expired card"),
    "55": N_("Incorrect PIN"),
    "57": N_("Transaction not permitted to cardholder"),
    "58": N_("Transaction not permitted to terminal"),
    "59": N_("Suspected fraud or card verification error"),
    "61": N_("Exceeds amount limit"),
    "62": N_("Restricted card"),
    "64": N_("Original amount incorrect"),
    "65": N_("Exceeds frequency limit"),
    "75": N_("PIN tries exceeded"),
    "77": N_("Sign on again"),
    "90": N_("Cut-off in progress"),
    "91": N_("Issuer or switch inoperative"),
    "92": N_("Institution or network unreachable"),
    "94": N_("Duplicate transmission"),
    "96": N_("System malfunction"),
    "97": N_("Terminal ID not registered"),
    "98": N_("Issuer timeout"),
    "99": N_("PIN block format error"),
    "A0": N_("MAC verification failed"),
}
"""Every code of spec §9, in the spec's order."""

UNKNOWN_RESPONSE_CODE: Final = N_("Not a response code of the specification")
"""Shown for a stored code outside §9 (none should exist; the page still says so)."""


def response_code_meaning(code: str | None) -> str | None:
    """The msgid for ``code``; None when there is no code (a request never answered)."""
    if code is None:
        return None
    return RESPONSE_CODE_MEANINGS.get(code, UNKNOWN_RESPONSE_CODE)
