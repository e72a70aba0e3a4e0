"""Limit counters (R14): which running totals a payment counts against, the journal
operations that reserve and release them, and the engine's in-memory view of them.

The totals live in ``risk_counters``, one row per key and period:

* ``m:<MID>:<channel>:d:<YYYYMMDD>`` and ``…:m:<YYYYMM>`` — the merchant's day and month;
* ``t:<TID>:<channel>:d:…`` and ``…:m:…`` — a terminal's, when it has limits of its own;
* ``c:<MID>:<card token>:d:…`` — one card at one merchant in one day, when a per-card limit
  applies (the card's channel is fixed by its BIN, so it is not in the key).

Periods are business dates (Beijing), the journal's ``host_date``. A payment reserves its
amount on every key with one conditional upsert each, written with its pending journal
row before it is forwarded (``reserve_op``, a *guarded* operation: the write fails with
``LimitReached`` if any total would pass its limit). Several gateway processes on one
PostgreSQL database therefore never together pass a limit, and a restart loses nothing.
The merchant's day and month are counted even where no limit applies, so that a limit set
during the day or month starts from the true total.

The in-memory view (``CounterView``) only lets the engine decline early what is
certainly over; the database decides the rest.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy.orm import Session

from poshub.core import limits
from poshub.gateway import repository as statements
from poshub.gateway.journal import Op
from poshub.risk import repository
from poshub.risk.schemas import LimitValues


@dataclass(frozen=True, slots=True)
class Slot:
    """One total a payment counts against."""

    key: str
    limit_fen: int | None
    """None: counted, not limited."""
    expires_on: dt.date
    name: str
    """Which limit (``merchant_day``, ``terminal_month``, ``card_day`` …) for the journal
    and alerts."""


@functools.lru_cache(maxsize=64)
def _period(day: dt.date) -> tuple[str, str, dt.date]:
    """(``YYYYMMDD``, ``YYYYMM``, last day of the month): every authorization needs them,
    and formatting dates is a good part of an authorization's risk cost."""
    return (
        day.strftime("%Y%m%d"),
        day.strftime("%Y%m"),
        day.replace(day=calendar.monthrange(day.year, day.month)[1]),
    )


def day_tag(day: dt.date) -> str:
    return _period(day)[0]


def month_tag(day: dt.date) -> str:
    return _period(day)[1]


def month_end(day: dt.date) -> dt.date:
    return _period(day)[2]


def merchant_keys(mid: str, channel: str, day: dt.date) -> tuple[str, str]:
    """The merchant's day and month keys for one channel."""
    tags = _period(day)
    return f"m:{mid}:{channel}:d:{tags[0]}", f"m:{mid}:{channel}:m:{tags[1]}"


def terminal_keys(tid: str, channel: str, day: dt.date) -> tuple[str, str]:
    tags = _period(day)
    return f"t:{tid}:{channel}:d:{tags[0]}", f"t:{tid}:{channel}:m:{tags[1]}"


def card_key(mid: str, pan_token: str, day: dt.date) -> str:
    return f"c:{mid}:{pan_token}:d:{_period(day)[0]}"


def slots(
    *,
    mid: str,
    tid: str,
    channel: str,
    pan_token: str | None,
    day: dt.date,
    merchant: LimitValues,
    terminal: LimitValues,
) -> list[Slot]:
    """Every total one payment counts against, with the limit in force on each."""
    day_text, month_text, last = _period(day)
    found = [
        Slot(f"m:{mid}:{channel}:d:{day_text}", merchant.per_day_fen, day, "merchant_day"),
        Slot(f"m:{mid}:{channel}:m:{month_text}", merchant.per_month_fen, last, "merchant_month"),
    ]
    if terminal.per_day_fen is not None:
        found.append(
            Slot(f"t:{tid}:{channel}:d:{day_text}", terminal.per_day_fen, day, "terminal_day")
        )
    if terminal.per_month_fen is not None:
        found.append(
            Slot(f"t:{tid}:{channel}:m:{month_text}", terminal.per_month_fen, last,
                 "terminal_month")
        )  # fmt: skip
    if merchant.per_card_per_day_fen is not None and pan_token is not None:
        found.append(
            Slot(f"c:{mid}:{pan_token}:d:{day_text}", merchant.per_card_per_day_fen, day,
                 "card_day")
        )  # fmt: skip
    return found


def exceeded(
    amount_fen: int,
    per_transaction_fen: int | None,
    found: Iterable[Slot],
    used: dict[str, int] | CounterView,
) -> tuple[str, int, int] | None:
    """The first limit ``amount_fen`` would pass, as (name, limit, used before), or None.
    ``used`` gives the totals known so far (a key not known counts as zero)."""
    if per_transaction_fen is not None and amount_fen > per_transaction_fen:
        return "per_transaction", per_transaction_fen, 0
    for slot in found:
        if slot.limit_fen is None:
            continue
        before = used.get(slot.key, 0)
        if before + amount_fen > slot.limit_fen:
            return slot.name, slot.limit_fen, before
    return None


def reserve_ops(found: Iterable[Slot], amount_fen: int) -> list[Op]:
    """Count ``amount_fen`` on every slot; each limited one only if it stays within its
    limit (guarded: the journal fails the request's write otherwise)."""
    ops: list[Op] = []
    for slot in found:
        params = {
            "key": slot.key,
            "amount_fen": amount_fen,
            "count": 1,
            "expires_on": slot.expires_on,
        }
        if slot.limit_fen is None:
            ops.append(Op(statements.ADD_COUNTER, params))
        else:
            ops.append(Op(statements.RESERVE_COUNTER, params | {"limit_fen": slot.limit_fen}, True))
    return ops


def add_ops(keys: Iterable[tuple[str, dt.date]], amount_fen: int) -> list[Op]:
    """Count ``amount_fen`` again, whatever the limits (what a reversed void gives back)."""
    return [
        Op(
            statements.ADD_COUNTER,
            {"key": key, "amount_fen": amount_fen, "count": 1, "expires_on": expires_on},
        )
        for key, expires_on in keys
    ]


def release_ops(keys: Iterable[str], amount_fen: int) -> list[Op]:
    """Take ``amount_fen`` off each key (never below zero); a key with no row is left."""
    return [Op(statements.RELEASE_COUNTER, {"b_key": key, "delta_fen": amount_fen}) for key in keys]


def payment_keys(
    *, mid: str, tid: str, channel: str, pan_token: str | None, day: dt.date
) -> list[tuple[str, dt.date]]:
    """Every key a payment of that day may have been counted on (terminal and card keys
    only exist where limits applied: releasing a key with no row changes nothing)."""
    last = month_end(day)
    merchant_day, merchant_month = merchant_keys(mid, channel, day)
    terminal_day, terminal_month = terminal_keys(tid, channel, day)
    keys = [(merchant_day, day), (merchant_month, last), (terminal_day, day),
            (terminal_month, last)]  # fmt: skip
    if pan_token is not None:
        keys.append((card_key(mid, pan_token, day), day))
    return keys


# --- The engine's in-memory view ------------------------------------------------------------
REFRESH_CHUNK: Final = 500
"""Keys per ``IN (…)`` when rereading watched counters."""


class CounterView:
    """Totals as last read from ``risk_counters``: a lower bound the engine declines by
    early (never an upper bound: another process may have counted since). Bounded: the
    least recently used keys are forgotten beyond ``limits.RISK_TRACKED_KEYS_MAX``; keys
    checked against a limit are *watched* and reread on every refresh (at most
    ``limits.RISK_COUNTERS_WATCHED_MAX`` of them)."""

    def __init__(
        self,
        *,
        keys_max: int = limits.RISK_TRACKED_KEYS_MAX,
        watched_max: int = limits.RISK_COUNTERS_WATCHED_MAX,
    ) -> None:
        self._amounts: OrderedDict[str, int] = OrderedDict()
        self._watched: dict[str, None] = {}
        self._keys_max = keys_max
        self._watched_max = watched_max

    def __len__(self) -> int:
        return len(self._amounts)

    def get(self, key: str, default: int = 0) -> int:
        return self._amounts.get(key, default)

    def watch(self, key: str) -> None:
        """Reread ``key`` on every refresh. Beyond the bound the longest watched is dropped
        (first in, first out: cheaper than LRU on every authorization; a key still in use
        is watched again at its next authorization)."""
        watched = self._watched
        if key not in watched:
            watched[key] = None
            if len(watched) > self._watched_max:
                del watched[next(iter(watched))]

    def watched(self) -> list[str]:
        return list(self._watched)

    def set(self, key: str, amount_fen: int) -> None:
        amounts = self._amounts
        amounts[key] = amount_fen
        amounts.move_to_end(key)
        if len(amounts) > self._keys_max:
            amounts.popitem(last=False)

    def load(self, rows: Iterable[tuple[str, int]], *, asked: Iterable[str] = ()) -> None:
        """Install totals read from the database; keys asked for but not found are zero
        (no payment counted on them yet, or expired)."""
        found = dict(rows)
        for key in asked:
            if key not in found:
                self._amounts.pop(key, None)
        for key, amount in found.items():
            self.set(key, int(amount))

    def forget_before(self, day: dt.date) -> None:
        """Drop day keys of earlier business days (month keys end with six digits)."""
        tag = day_tag(day)
        stale = [k for k in self._amounts if ":d:" in k and k[-8:] < tag]
        for key in stale:
            del self._amounts[key]
        for key in [k for k in self._watched if ":d:" in k and k[-8:] < tag]:
            del self._watched[key]


# --- Housekeeping -----------------------------------------------------------------------------
EXPIRED_BATCH_MAX: Final = 10_000


def purge_expired(session: Session, *, today: dt.date, batch_max: int = EXPIRED_BATCH_MAX) -> int:
    """Delete counters of periods that ended before the business date ``today`` (a day's
    after that day, a month's after the month), at most ``batch_max``; the caller commits.
    For the worker: nothing reads them any more."""
    return repository.delete_expired_counters(session, before=today, limit=batch_max)
