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
