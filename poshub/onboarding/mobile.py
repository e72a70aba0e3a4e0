"""Proving the applicant's mobile number: the one-time code's rules (pure functions).

The applicant asks for a code on the tracking page (or the API), receives it by SMS and
types it back. Until then the application cannot be submitted and no message but the code
goes to the number (docs/onboarding.md, "The mobile number is proved").

* A code is :data:`~poshub.core.limits.MOBILE_CODE_DIGITS` random digits, good for
  :data:`~poshub.core.limits.MOBILE_CODE_VALID_MINUTES`; only a keyed hash of it is kept
  (HMAC under a key derived from the KEK, salted with a per-code nonce), so a copy of the
  database does not reveal it and the code is never in logs, the audit log or the outbox.
* :data:`~poshub.core.limits.MOBILE_CODE_ATTEMPTS_MAX` wrong entries kill a code; a new
  one can be asked for after :data:`~poshub.core.limits.MOBILE_CODE_RESEND_SECONDS`, and
  the codes per number and per source address are limited per day.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from poshub.core import limits
from poshub.core.errors import N_


def new_code(digits: int = limits.MOBILE_CODE_DIGITS) -> str:
    """A uniformly random numeric code, zero-padded."""
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def new_nonce() -> str:
    return secrets.token_hex(16)


def normalise_code(text: str) -> str | None:
    """The code as typed (spaces and dashes allowed between digits), or None when it is not
    :data:`~poshub.core.limits.MOBILE_CODE_DIGITS` digits."""
    digits = "".join(ch for ch in text if ch not in " -\u3000")
    if len(digits) != limits.MOBILE_CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def mask_mobile(mobile: str) -> str:
    """``139****0001``: enough for the applicant to recognise their number."""
    return mobile[:3] + "****" + mobile[-4:] if len(mobile) >= 7 else "****"


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    WRONG = "wrong"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    """Too many wrong entries: this code is dead."""
    NO_CODE = "no_code"
    """No code was sent for the number as it is now."""


@dataclass(frozen=True)
class ChallengeState:
    """What the verdict needs to know of the latest code sent."""

    mobile: str
    expires_at: dt.datetime
    attempts: int
    verified_at: dt.datetime | None


def judge(
    challenge: ChallengeState | None, current_mobile: str, matches: bool, now: dt.datetime
) -> Verdict:
    """The verdict on a code typed ``now``; ``matches`` says whether its hash matches.
    Exhaustion is judged before the match, so a code cannot be guessed after the limit."""
    if challenge is None or challenge.mobile != current_mobile or challenge.verified_at:
        return Verdict.NO_CODE
    if challenge.attempts >= limits.MOBILE_CODE_ATTEMPTS_MAX:
        return Verdict.EXHAUSTED
    if now >= challenge.expires_at:
        return Verdict.EXPIRED
    return Verdict.CONFIRMED if matches else Verdict.WRONG


def attempts_left(attempts_after: int) -> int:
    return max(0, limits.MOBILE_CODE_ATTEMPTS_MAX - attempts_after)


def resend_wait_seconds(last_sent_at: dt.datetime | None, now: dt.datetime) -> int:
    """Seconds until another code may be sent for the same application (0: now)."""
    if last_sent_at is None:
        return 0
    ready = last_sent_at + dt.timedelta(seconds=limits.MOBILE_CODE_RESEND_SECONDS)
    return max(0, int((ready - now).total_seconds() + 0.999))


def window_start(now: dt.datetime) -> dt.datetime:
    """Start of the sliding window the per-day limits count in."""
    return now - dt.timedelta(hours=limits.RATE_LIMIT_WINDOW_HOURS)


def digests_match(expected: str, actual: str) -> bool:
    return hmac.compare_digest(expected.encode(), actual.encode())


# Message templates (translated at the edge).
CODE_SMS = N_(
    "PosHub: your verification code is {code}. It is valid for {minutes} minutes. "
    "Never give it to anyone, PosHub staff included."
)
CODE_FORMAT = N_("Enter the {digits}-digit code from the SMS.")
CODE_WRONG = N_("That code is not right. {left} attempts left with this code.")
CODE_EXPIRED = N_("That code has expired. Ask for a new one.")
CODE_EXHAUSTED = N_("Too many wrong codes: this code no longer works. Ask for a new one.")
CODE_NONE = N_("No code was sent to this number yet, or it changed since. Ask for a code first.")
ALREADY_PROVED = N_("This mobile number is already confirmed.")
NOT_PROVED = N_(
    "Confirm your mobile number first: ask for a code by SMS and enter it on the tracking page."
)
RESEND_WAIT = N_(
    "A code was sent less than a minute ago. Wait {seconds} seconds before asking again."
)
CODES_PER_NUMBER = N_(
    "Too many codes sent to {mobile}: at most {limit} in 24 hours. Try again tomorrow."
)
CODES_PER_ADDRESS = N_(
    "Too many codes asked for from your network address: at most {limit} in 24 hours."
)
APPLICATIONS_PER_MOBILE = N_(
    "Too many applications with the mobile number {mobile}: at most {limit} in 24 hours."
)
APPLICATIONS_PER_ADDRESS = N_(
    "Too many applications from your network address: at most {limit} in 24 hours."
)
SMS_UNAVAILABLE = N_("The SMS could not be sent just now. Try again in a minute.")
ACCESS_CODE_WRONG = N_(
    "This access code does not open application {tracking_number}. Check it: it was shown "
    "once when the application was saved (use its copy button), and it is case-sensitive."
)
ACCESS_CODE_THROTTLED = N_(
    "Too many wrong access codes from your network address: wait {minutes} minutes and try again."
)
