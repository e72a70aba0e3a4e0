"""The pipeline's risk hooks: one call before a request is forwarded to the network and
one after the network has answered (DESIGN §3, R14, R19).

The gateway always calls both, for every financial request, with what it knows at that
point; a hook may decline (with the response code the terminal gets) or let the request
through. ``AllowAll`` lets everything through — the risk domain (real-time rules, limits,
velocity, freezes) provides the implementation that decides, and plugs it in through
``Gateway(risk=...)`` without any change to the pipeline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from poshub.gateway.constants import Rc
from poshub.gateway.models import TxnKind


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What a hook may look at. Never the PAN: its token, mask and last four only."""

    kind: TxnKind
    tid: str
    mid: str
    amount_fen: int | None
    pan_token: str | None
    pan_masked: str | None
    entry_mode: str | None
    rrn: str
    received_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RiskDecision:
    allow: bool
    response_code: Rc = Rc.APPROVED
    reason: str = ""
    """A short code for the journal and for staff (never shown to the cardholder)."""


ALLOW = RiskDecision(allow=True)


class RiskHooks(Protocol):
    def before_forward(self, context: RiskContext) -> RiskDecision:
        """Before the network sees the request: decline here and nothing is forwarded."""
        ...

    def after_response(self, context: RiskContext, response_code: str) -> RiskDecision:
        """After the network approved or declined. Declining an approval makes the gateway
        answer the terminal with the hook's code and reverse the approval upstream."""
        ...


class AllowAll:
    """Hooks that decide nothing; counts how often each was consulted."""

    def __init__(self) -> None:
        self.before_calls = 0
        self.after_calls = 0

    def before_forward(self, context: RiskContext) -> RiskDecision:
        self.before_calls += 1
        return ALLOW

    def after_response(self, context: RiskContext, response_code: str) -> RiskDecision:
        self.after_calls += 1
        return ALLOW
