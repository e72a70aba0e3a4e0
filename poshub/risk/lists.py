"""External risk lists (R20: shared merchant risk information).

Acquirers check every applicant, and every live merchant daily, against lists kept
outside the acquirer: the industry's shared merchant risk information (特约商户风险信息
共享), sanctions. PosHub talks to such a list through :class:`RiskListProvider`; the
sandbox provider here answers deterministically (docs/risk.md, "External risk lists").

Every question asked is a ``risk_list_checks`` row, ``pending`` until answered. A provider
that does not answer leaves it pending with a next attempt (1, 2, 4… minutes, at most an
hour apart): an outage never counts as clear. At onboarding the answer is the check
``external_list``, which must be clear for a reviewer alone to approve (otherwise a risk
officer decides, as for the blacklist); a hit on a live merchant is a ``risk_alerts``
row (rule code ``external_list``) in the risk officers' queue.

What the provider is given: the business's name, its unified social credit code and the
legal representative's name; never an ID, account or mobile number (the privacy notice
names only the verification provider as a recipient of those). Only the provider's
answer (list, reference, which identifier matched) is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol, runtime_checkable

from sqlalchemy.orm import Session

from poshub.core import limits
from poshub.core.clock import business_date
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant
from poshub.risk import repository
from poshub.risk.models import AlertStatus, ListCheckStatus, RuleAction
from poshub.risk.schemas import EXTERNAL_LIST_ALERT, Severity


class SubjectKind(StrEnum):
    APPLICATION = "application"
    MERCHANT = "merchant"


@dataclass(frozen=True, slots=True)
class ListSubject:
    """What is checked: an application (by id) or a merchant (by MID)."""

    kind: SubjectKind
    reference: str
    """The application id or the MID (PosHub's, not sent as an identifier)."""
    business_name: str
    legal_name: str
    uscc: str | None


class ListOutcome(StrEnum):
    CLEAR = "clear"
    HIT = "hit"


@dataclass(frozen=True, slots=True)
class ListAnswer:
    """A provider's definite answer."""

    outcome: ListOutcome
    provider: str
    reference: str
    """The provider's reference of this query."""
    list_name: str | None = None
    """On a hit: which list."""
    matched: str | None = None
    """On a hit: which identifier matched (``business_name``, ``legal_name``, ``uscc``)."""


class ListUnavailable(Exception):
    """The provider could not answer (timeout, outage): the check stays pending."""


@runtime_checkable
class RiskListProvider(Protocol):
    """An external risk list; definite answers are returned, outages raise ListUnavailable."""

    name: str

    def check(self, subject: ListSubject) -> ListAnswer:
        """Whether the subject is on a list the provider keeps."""
        ...


# Sandbox triggers, documented for testers in docs/risk.md.
SANDBOX_HIT_MARKERS: Final = ("风险名单", "RISKLIST-HIT")
"""In the business or legal representative's name: a hit."""
SANDBOX_OUTAGE_MARKERS: Final = ("名单超时", "RISKLIST-DOWN")
"""In the business name: the provider does not answer."""
SANDBOX_LIST_NAME: Final = "sandbox-merchant-risk"


def _sandbox_reference(*inputs: str) -> str:
    digest = hashlib.sha256("\x1f".join(inputs).encode("utf-8")).hexdigest()
    return "SBXL" + digest[:16]


class SandboxListProvider:
    """Deterministic answers without network access, driven by marker names: a hit when
    the business or legal representative's name contains 风险名单 (or ``RISKLIST-HIT``),
    no answer when the business name contains 名单超时 (or ``RISKLIST-DOWN``), clear
    otherwise. ``unavailable=True`` makes every call raise ListUnavailable (an outage)."""

    name = "sandbox"

    def __init__(self, *, unavailable: bool = False) -> None:
        self.unavailable = unavailable

    def check(self, subject: ListSubject) -> ListAnswer:
        if self.unavailable:
            raise ListUnavailable("sandbox risk list provider is switched off")
        business = subject.business_name.upper()
        if any(marker in business for marker in SANDBOX_OUTAGE_MARKERS):
            raise ListUnavailable("sandbox risk list timed out")
        reference = _sandbox_reference(
            subject.business_name, subject.legal_name, subject.uscc or ""
        )
        for field, value in (
            ("business_name", business),
            ("legal_name", subject.legal_name.upper()),
        ):
            if any(marker in value for marker in SANDBOX_HIT_MARKERS):
                return ListAnswer(ListOutcome.HIT, self.name, reference, SANDBOX_LIST_NAME, field)
        return ListAnswer(ListOutcome.CLEAR, self.name, reference)


_PROVIDERS: dict[str, Callable[[], RiskListProvider]] = {"sandbox": SandboxListProvider}


def build_provider(name: str) -> RiskListProvider:
    """The provider configured under ``name`` (``POSHUB_RISK_LIST_PROVIDER``); ValueError
    names the allowed ones."""
    factory = _PROVIDERS.get(name)
    if factory is None:
        allowed = ", ".join(sorted(_PROVIDERS))
        raise ValueError(f"unknown risk list provider {name!r}; allowed: {allowed}")
    return factory()


# --- Asking and recording -----------------------------------------------------------------


def retry_at(attempts: int, now: dt.datetime) -> dt.datetime:
    """When to ask again after ``attempts`` unanswered tries (doubling, capped)."""
    seconds = min(
        limits.RISK_LIST_RETRY_SECONDS_MAX,
        limits.RISK_LIST_RETRY_SECONDS_MIN * 2 ** max(0, min(attempts - 1, 16)),
    )
    return now + dt.timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Asked:
    """One question and what came of it, ready to be written."""

    subject: ListSubject
    provider: str
    status: ListCheckStatus
    detail: dict[str, str]
    attempts: int
    next_attempt_at: dt.datetime | None

    def row(self, now: dt.datetime) -> dict[str, Any]:
        """The ``risk_list_checks`` row of this question."""
        return {
            "subject_kind": self.subject.kind.value,
            "subject": self.subject.reference,
            "provider": self.provider,
            "status": self.status.value,
            "detail": self.detail,
            "attempts": self.attempts,
            "requested_at": now,
            "checked_at": None if self.status == ListCheckStatus.PENDING else now,
            "next_attempt_at": self.next_attempt_at,
        }


def ask(
    provider: RiskListProvider, subject: ListSubject, *, attempts: int, now: dt.datetime
) -> Asked:
    """Ask the provider (``attempts`` counts this try); an outage gives a pending answer
    with its next attempt, never a clear one."""
    try:
        answer = provider.check(subject)
    except ListUnavailable:
        return Asked(
            subject,
            provider.name,
            ListCheckStatus.PENDING,
            {"error": "unavailable"},
            attempts,
            retry_at(attempts, now),
        )
    detail = {"reference": answer.reference}
    if answer.outcome == ListOutcome.HIT:
        detail |= {"list": answer.list_name or "", "matched": answer.matched or ""}
        status = ListCheckStatus.HIT
    else:
        status = ListCheckStatus.CLEAR
    return Asked(subject, answer.provider, status, detail, attempts, None)


def merchant_subject(merchant: Merchant) -> ListSubject:
    return ListSubject(
        SubjectKind.MERCHANT,
        merchant.mid,
        merchant.business_name,
        merchant.legal_name,
        merchant.uscc,
    )


def raise_hit_alert(
    session: Session, merchant: Merchant, asked: Asked, *, now: dt.datetime
) -> bool:
    """A live merchant found on a list: an alert for the risk officers' queue, one per
    merchant, list and day. True when it was raised (not already there)."""
    listed = asked.detail.get("list", "")
    day = business_date(now).strftime("%Y%m%d")
    raised = repository.insert_alert_once(
        session,
        {
            "rule_code": EXTERNAL_LIST_ALERT,
            "rule_version": 0,
            "action": RuleAction.ALERT.value,
            "severity": Severity.HIGH.value,
            "mid": merchant.mid,
            "tid": None,
            "rrn": None,
            "pan_token": None,
            "pan_masked": None,
            "amount_fen": None,
            "detail": {
                "provider": asked.provider,
                "list": listed,
                "reference": asked.detail.get("reference", ""),
                "matched": asked.detail.get("matched", ""),
            },
            "status": AlertStatus.OPEN.value,
            "case_id": None,
            "created_at": now,
            "dedupe_key": f"{EXTERNAL_LIST_ALERT}:{merchant.mid}:{listed}:{day}"[:120],
        },
    )
    return raised is not None


def record_merchant_checks(session: Session, asked: Sequence[Asked], *, now: dt.datetime) -> int:
    """Write the daily checks of live merchants; a hit raises an alert. Returns the hits."""
    repository.insert_list_checks(session, [a.row(now) for a in asked])
    hits = 0
    for answer in asked:
        if answer.status != ListCheckStatus.HIT:
            continue
        merchant = merchant_repository.by_mid(session, answer.subject.reference)
        if merchant is not None:
            hits += raise_hit_alert(session, merchant, answer, now=now)
    return hits
