"""Declared business hours (营业时间): what an applicant states on the application and
staff may correct on the merchant's page. The business-hours risk rule reads them.

Pure: no database, no clock. Times are ``HH:MM`` Beijing time; both or neither. A
closing time earlier than the opening time means the business runs past midnight.
"""

from __future__ import annotations

import re

from poshub.core.errors import N_, FieldError

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

CLOCK_FORMAT = N_("A time of day written HH:MM, from 00:00 to 23:59 (e.g. 08:30).")
BOTH_OR_NEITHER = N_("Give the opening and the closing time together, or neither.")
SAME_TIMES = N_(
    "The closing time is the opening time: leave both empty for a business open around the clock."
)


def normalise(text: str | None) -> str | None:
    """``8:30`` → ``08:30``; empty → None; anything else is returned stripped (and then
    refused by :func:`hours_errors`)."""
    if text is None:
        return None
    value = text.strip()
    if not value:
        return None
    if re.fullmatch(r"[0-9]:[0-5][0-9]", value):
        value = "0" + value
    return value


def hours_errors(opening: str | None, closing: str | None, *, prefix: str = "") -> list[FieldError]:
    """What is wrong with a pair of declared times, each naming its field
    (``opening_time``/``closing_time``, after ``prefix``)."""
    errors: list[FieldError] = []
    for name, value in (("opening_time", opening), ("closing_time", closing)):
        if value is not None and not _CLOCK.match(value):
            errors.append(FieldError(prefix + name, "clock.format", CLOCK_FORMAT))
    if errors:
        return errors
    if (opening is None) != (closing is None):
        missing = "closing_time" if closing is None else "opening_time"
        return [FieldError(prefix + missing, "business_hours.both_or_neither", BOTH_OR_NEITHER)]
    if opening is not None and opening == closing:
        return [FieldError(prefix + "closing_time", "business_hours.same", SAME_TIMES)]
    return []
