"""The pipeline's risk hooks (DESIGN §3, R14, R19).

The gateway consults the hooks for every financial request, with what it knows at that
point:

* ``before_forward`` — before the network sees the request: decline here (with the
  response code the terminal gets) and nothing is forwarded. An allowing decision may
  carry journal operations (limit reservations) that ride on the request's pending
  journal write; a guarded one that finds no room fails that write alone
  (``journal.LimitReached``) and the pipeline answers ``61``, calling ``limit_reached``.
* ``after_response`` — after the network approved or declined: declining an approval
  makes the gateway answer with the hook's code and reverse the approval upstream.
* ``finish`` — the operations for the request's final journal write, whatever the
  outcome (alerts, settlement holds, releasing a reservation that did not become a
  payment, releasing what an approved void undoes).
* ``undone`` — operations for the commit that reverses an approved request (a
  terminal's 0400, recovery after a crash).

Decisions are synchronous and in memory; anything that needs the database rides on the
journal writes the pipeline makes anyway, so risk adds no round trip to an authorization.
``AllowAll`` lets everything through (risk control off); ``poshub.risk.engine`` decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from poshub.gateway.constants import Rc
from poshub.gateway.journal import Op
from poshub.gateway.models import TxnKind

Reader = Callable[..., Awaitable[Any]]
"""``Gateway.read``: runs ``function(session, *args)`` on the gateway's read pool."""


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What a hook may look at. Never the PAN: its token and masked form only."""

    kind: TxnKind
    tid: str
    mid: str
    amount_fen: int | None
    pan_token: str | None
    pan_masked: str | None
    entry_mode: str | None
    rrn: str
    received_at: dt.datetime
    channel: str | None = None
    """``debit``, ``credit`` or ``qr`` (poshub/risk/bins.py)."""
    local: dt.datetime | None = None
    """``received_at`` in Beijing time; its date is the business date (host date)."""
    terminal_limit_fen: int | None = None
    """The terminal's own single-transaction limit from its TMS parameters."""
    original_rrn: str | None = None
    """For a void, refund, cancel or completion: the transaction it acts on…"""
    original_kind: str | None = None
    original_amount_fen: int | None = None
    original_host_date: dt.date | None = None
    original_tid: str | None = None
    original_pan_token: str | None = None

    @property
    def host_date(self) -> dt.date:
        return (self.local or self.received_at).date()


@dataclass(frozen=True, slots=True)
class RiskDecision:
    allow: bool
    response_code: Rc = Rc.APPROVED
    reason: str = ""
    """A short code for the journal and for staff (never shown to the cardholder)."""
    ops: tuple[Op, ...] = ()
    """Journal operations to write with the request's next write: reservations with the
    pending row when allowing, alerts with the declined row when declining."""
    state: Any = None
    """The hook's own memory of this request, handed back to ``finish``."""


ALLOW = RiskDecision(allow=True)


class RiskHooks(Protocol):
    async def start(self, read: Reader) -> None:
        """Load what the hooks decide by before the first request (on the gateway's loop)."""
        ...

    def close(self) -> None: ...

    def before_forward(self, context: RiskContext) -> RiskDecision:
        """Before the network sees the request: decline here and nothing is forwarded."""
        ...

    def limit_reached(self, context: RiskContext, decision: RiskDecision) -> None:
        """The pending write's reservation found no room (another request or gateway
        process took it first): the request is answered ``61``."""
        ...

    def after_response(
        self, context: RiskContext, response_code: str, decision: RiskDecision
    ) -> RiskDecision:
        """After the network approved or declined. Declining an approval makes the gateway
        answer the terminal with the hook's code and reverse the approval upstream."""
        ...

    def finish(
        self, context: RiskContext, decision: RiskDecision, response_code: str, approved: bool
    ) -> list[Op]:
        """Operations for the final journal write of a forwarded request."""
        ...

    def undone(self, row: Any, original_of_row: Any | None) -> list[Op]:
        """Operations for the commit that reverses ``row`` (a journal row that was approved
        or pending); ``original_of_row`` is what ``row`` itself acted on, if anything."""
        ...


class AllowAll:
    """Hooks that decide nothing (risk control off); counts how often each was consulted."""

    def __init__(self) -> None:
        self.before_calls = 0
        self.after_calls = 0

    async def start(self, read: Reader) -> None:
        return None

    def close(self) -> None:
        return None

    def before_forward(self, context: RiskContext) -> RiskDecision:
        self.before_calls += 1
        return ALLOW

    def limit_reached(self, context: RiskContext, decision: RiskDecision) -> None:
        return None

    def after_response(
        self, context: RiskContext, response_code: str, decision: RiskDecision
    ) -> RiskDecision:
        self.after_calls += 1
        return ALLOW

    def finish(
        self, context: RiskContext, decision: RiskDecision, response_code: str, approved: bool
    ) -> list[Op]:
        return []

    def undone(self, row: Any, original_of_row: Any | None) -> list[Op]:
        return []
