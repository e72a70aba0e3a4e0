"""Settlement holds, as settlement (issue 10) asks about them.

A ``risk_freezes`` row with ``holds_settlement`` holds money: of the whole merchant (scope
``merchant``: a merchant freeze, or a settlement hold made from a case) or of one
transaction (scope ``transaction``, subject its RRN: a rule set to *hold*, or a risk
officer). It holds until released; a release lets the next settlement pay what was held.

* :func:`settlement_held` — is this merchant's money (or this transaction's) held?
* :func:`held_merchants` — every merchant held now (one query for a whole cut-off).
* :func:`held_transactions` — one merchant's transactions held now.

:func:`is_held` is the rule itself, a pure function of the rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy.orm import Session

from poshub.core.clock import SHANGHAI
from poshub.risk import repository
from poshub.risk.models import FreezeScope


class Hold(Protocol):
    @property
    def scope(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def holds_settlement(self) -> bool: ...


def is_held(holds: Iterable[Hold], mid: str, rrn: str | None = None) -> bool:
    """True when one of ``holds`` (rows in force for ``mid``) holds the merchant's
    settlement, or ``rrn``'s when given."""
    for hold in holds:
        if not hold.holds_settlement:
            continue
        if hold.scope == FreezeScope.MERCHANT and hold.subject == mid:
            return True
        if rrn is not None and hold.scope == FreezeScope.TRANSACTION and hold.subject == rrn:
            return True
    return False


def end_of_business_day(day: dt.date) -> dt.datetime:
    """The first moment after business date ``day`` (midnight in Beijing), in UTC."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=SHANGHAI).astimezone(
        dt.UTC
    )


def settlement_held(
    session: Session, mid: str, rrn: str | None = None, *, on: dt.date | None = None
) -> bool:
    """Whether settlement must hold ``mid``'s money (or only ``rrn``'s, when given: a
    transaction is held by its own hold or by its merchant's).

    Without ``on``: the holds in force now. With ``on`` (a business date): the holds in
    force at the end of that day, so a settlement run again for a past date decides as
    it did then (a hold made later, or released before, does not count)."""
    at = end_of_business_day(on) if on is not None else None
    return is_held(repository.settlement_holds(session, mid, at=at), mid, rrn)


def held_merchants(session: Session) -> set[str]:
    """MIDs whose whole settlement is held now."""
    return repository.held_merchants(session)


def held_transactions(session: Session, mid: str) -> set[str]:
    """RRNs of ``mid`` held one by one now (the merchant itself may be held as well:
    ask :func:`held_merchants` first)."""
    return repository.held_transactions(session, mid)
