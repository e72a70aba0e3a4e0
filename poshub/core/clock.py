"""Business dates: timestamps are stored in UTC, dates are Asia/Shanghai."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def business_date(moment: dt.datetime, zone: ZoneInfo = SHANGHAI) -> dt.date:
    """The calendar date in the acquirer's time zone at ``moment``."""
    return moment.astimezone(zone).date()


def local_time(moment: dt.datetime, zone: ZoneInfo = SHANGHAI) -> dt.datetime:
    return moment.astimezone(zone)


def settlement_date(
    moment: dt.datetime, cutoff: dt.time = dt.time(23, 0), zone: ZoneInfo = SHANGHAI
) -> dt.date:
    """The business day a transaction at ``moment`` is cleared in: the local date, or the
    next date from the cut-off on (``POSHUB_BUSINESS_DAY_CUTOFF``, default 23:00 Beijing
    time; docs/settlement.md). Unlike :func:`business_date`, which is the calendar date
    every other caller keeps. A cut-off of 00:00 makes the two the same."""
    local = moment.astimezone(zone)
    if cutoff != dt.time(0, 0) and local.time().replace(tzinfo=None) >= cutoff:
        return local.date() + dt.timedelta(days=1)
    return local.date()
