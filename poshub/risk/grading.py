"""Merchant risk grading (特约商户风险评级, R20).

A merchant is graded when its application is approved (from what it is and declared and
how its checks came out), every month from its traffic, alerts, cases and complaints,
and by a risk officer by hand with a reason. Every grading is a ``merchant_risk_grades``
row with each factor's points and the values behind them, and ``merchants.risk_grade``
mirrors the latest: the engine scales default limits by it, settlement (issue 10) holds
money the extra days it carries (:func:`controls_for`), and the merchant page shows when
a person must next review the merchant.

The scoring is pure (:func:`grade_application`, :func:`grade_traffic`): the points and
thresholds below are the whole policy, documented in docs/risk.md.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from sqlalchemy.orm import Session

from poshub.core import audit
from poshub.core.audit import Actor
from poshub.core.clock import SHANGHAI, business_date
from poshub.core.errors import N_, Conflict, FieldError, ValidationFailed
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.merchants.service import get_merchant
from poshub.onboarding import repository as onboarding_repository
from poshub.onboarding.decisions import CHECK_LABELS
from poshub.onboarding.models import Application, CheckStatus
from poshub.onboarding.rules import MccRiskClass, mcc_info
from poshub.risk import repository
from poshub.risk.models import MerchantRiskGrade
from poshub.risk.schemas import Grade, GradeControls, grade_controls


class GradeSource(StrEnum):
    APPROVAL = "approval"
    MONTHLY = "monthly"
    MANUAL = "manual"


# --- The policy -------------------------------------------------------------------------

MEDIUM_FROM_SCORE: Final = 25
HIGH_FROM_SCORE: Final = 50
"""A score of 0–24 is low, 25–49 medium, 50 and more high."""

KIND_POINTS: Final[dict[str, int]] = {
    "individual": 15,
    "individual_business": 10,
    "enterprise": 5,
}
"""No licence is the least known; a company the most (its owners are named)."""
UNKNOWN_KIND_POINTS: Final = 15

MCC_POINTS: Final[dict[MccRiskClass, int]] = {
    MccRiskClass.LOW: 0,
    MccRiskClass.STANDARD: 10,
    MccRiskClass.HIGH: 30,
}
UNKNOWN_MCC_POINTS: Final = 30

VOLUME_BANDS_FEN: Final[tuple[tuple[int, int], ...]] = (
    (500_000_000, 15),
    (100_000_000, 10),
    (10_000_000, 5),
)
"""Declared monthly volume from which the points apply: 5 million, 1 million and
100,000 CNY; below that 0."""

CHECK_FAIL_POINTS: Final[dict[str, int]] = {
    "blacklist": 40,
    "external_list": 40,
    "real_name": 20,
    "bank_card_four": 20,
    "duplicates": 15,
}
"""A check that failed at approval (so a risk officer approved over it)."""
CHECK_PENDING_POINTS: Final[dict[str, int]] = {"external_list": 15}
OTHER_OPEN_CHECK_POINTS: Final = 10
"""A failed or pending check not named above (a pending verification, say)."""
DUPLICATE_MERCHANT_POINTS: Final = 5
"""Already a merchant under the same ID number or credit code (a warning at approval)."""
HIGH_FLOOR_CHECKS: Final = frozenset({"blacklist", "external_list"})
"""Approved over a hit on one of these: high, whatever the score."""

VOLUME_RATIO_POINTS: Final[tuple[tuple[float, int], ...]] = ((3.0, 20), (1.5, 10))
"""Last month's approved volume at this multiple of the declared volume or more."""
DECLINE_MIN_ATTEMPTS: Final = 20
DECLINE_PERCENT_POINTS: Final[tuple[tuple[int, int], ...]] = ((30, 15), (15, 5))
REFUND_MIN_SALES_FEN: Final = 100_000
REFUND_PERCENT_POINTS: Final[tuple[tuple[int, int], ...]] = ((20, 15), (10, 5))
ALERT_POINTS: Final[dict[str, int]] = {"high": 5, "medium": 2, "low": 1}
ALERT_POINTS_MAX: Final = 30
CONFIRMED_CASE_POINTS: Final = 25
CONFIRMED_CASE_POINTS_MAX: Final = 50
OPEN_CASE_POINTS: Final = 10
OPEN_CASE_POINTS_MAX: Final = 20
COMPLAINT_POINTS: Final = 2
COMPLAINT_POINTS_MAX: Final = 10
BENIGN_CASE_OUTCOMES: Final = frozenset({"false_positive"})
"""A case closed with any other outcome found something (``risk.cases`` outcomes)."""
MANUAL_HOLD_MONTHS: Final = 3
"""A risk officer's grade holds this long: a monthly regrade may raise it, not lower it."""


# --- The explanation -------------------------------------------------------------------

FACTOR_MESSAGES: Final[dict[str, str]] = {
    "applicant_kind": N_("Applicant kind: {kind}"),
    "mcc_class": N_("Merchant category {mcc}: {mcc_class}"),
    "declared_volume": N_("Declared monthly volume: {declared_yuan} yuan"),
    "checks_clear": N_("Blacklist, duplicate, identity and external list checks passed"),
    "check_open": N_("At approval the check {check} was {status} (approved over it)"),
    "duplicate_merchant": N_("Already a merchant under the same ID number or credit code"),
    "no_traffic": N_("No approved payments in {period}"),
    "volume_vs_declared": N_(
        "Approved volume {volume_yuan} yuan in {period}: {ratio} × the declared {declared_yuan} yuan"
    ),
    "decline_ratio": N_("{declined} of {attempts} payment requests declined ({percent}%)"),
    "refund_ratio": N_(
        "Refunds {refund_yuan} yuan against sales of {volume_yuan} yuan ({percent}%)"
    ),
    "alerts": N_(
        "Risk alerts in {period}: {high} high, {medium} medium, {low} low (dismissed ones not counted)"
    ),
    "cases": N_("Risk cases: {open} open, {confirmed} closed with a finding in {period}"),
    "complaints": N_("Complaints in {period}: {count}"),
    "no_complaints_channel": N_("No complaints channel yet: complaints count as none"),
    "manual": N_("Set by {by}: {reason}"),
}
"""How each factor reads on the merchant page (its ``values`` fill the placeholders)."""

FLOOR_MESSAGES: Final[dict[str, str]] = {
    "list_hit_overridden": N_(
        "Approved over a blacklist or external risk list hit: graded high whatever the score."
    ),
    "confirmed_case": N_("A risk case closed with a finding this month: graded high."),
    "manual_hold": N_(
        "A risk officer graded it {grade} on {date}: until {until} a monthly regrade may raise "
        "the grade but not lower it."
    ),
}

VALUE_LABELS: Final[dict[str, dict[str, str]]] = {
    "kind": {
        "individual": N_("Individual / small merchant"),
        "individual_business": N_("Individual business (with licence)"),
        "enterprise": N_("Enterprise"),
    },
    "mcc_class": {
        "low": N_("low risk"),
        "standard": N_("standard risk"),
        "high": N_("high risk"),
        "unknown": N_("unknown category"),
    },
    "status": {
        "fail": N_("failed"),
        "pending": N_("pending"),
    },
    "check": dict(CHECK_LABELS),
    "grade": {
        "low": N_("low"),
        "medium": N_("medium"),
        "high": N_("high"),
    },
}
"""Codes among a factor's values shown by name (translated on display)."""

GRADE_LABELS: Final[dict[str, str]] = VALUE_LABELS["grade"]


@dataclass(frozen=True, slots=True)
class Factor:
    """One reason for points: ``values`` are what the grading saw (strings, as shown)."""

    code: str
    points: int
    values: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "points": self.points, "values": self.values}


@dataclass(frozen=True, slots=True)
class Grading:
    score: int
    grade: Grade
    factors: tuple[Factor, ...]
    floor: str | None = None
    """Why the grade is above what the score alone says (a ``FLOOR_MESSAGES`` code)."""
    floor_values: dict[str, str] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "factors": [f.as_json() for f in self.factors],
            "floor": self.floor,
            "floor_values": self.floor_values or {},
            "thresholds": {"medium": MEDIUM_FROM_SCORE, "high": HIGH_FROM_SCORE},
        }


_ORDER: Final = {Grade.LOW: 0, Grade.MEDIUM: 1, Grade.HIGH: 2}


def grade_for_score(score: int) -> Grade:
    if score >= HIGH_FROM_SCORE:
        return Grade.HIGH
    if score >= MEDIUM_FROM_SCORE:
        return Grade.MEDIUM
    return Grade.LOW


def higher(a: Grade, b: Grade) -> Grade:
    return a if _ORDER[a] >= _ORDER[b] else b


def _yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}"


def _percent(part: int, whole: int) -> int:
    return part * 100 // whole if whole else 0


def _banded(value: float, bands: Sequence[tuple[float, int]]) -> int:
    """Points of the first band whose lower bound ``value`` reaches (bands high first)."""
    return next((points for bound, points in bands if value >= bound), 0)


def _static_factors(applicant_kind: str, mcc: str) -> list[Factor]:
    """Kind and category (a high-risk or unknown category's points alone make it medium)."""
    info = mcc_info(mcc)
    mcc_class = info.risk_class.value if info else "unknown"
    mcc_points = MCC_POINTS[info.risk_class] if info else UNKNOWN_MCC_POINTS
    factors = [
        Factor(
            "applicant_kind",
            KIND_POINTS.get(applicant_kind, UNKNOWN_KIND_POINTS),
            {"kind": applicant_kind},
        ),
        Factor("mcc_class", mcc_points, {"mcc": mcc, "mcc_class": mcc_class}),
    ]
    return factors


def _finish(
    factors: list[Factor], floors: list[tuple[Grade, str, dict[str, str] | None]]
) -> Grading:
    score = sum(f.points for f in factors)
    grade = grade_for_score(score)
    floor: str | None = None
    floor_values: dict[str, str] | None = None
    for minimum, code, values in floors:
        if _ORDER[minimum] > _ORDER[grade]:
            grade, floor, floor_values = minimum, code, values
    return Grading(score, grade, tuple(factors), floor, floor_values)


# --- At approval ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApprovalInputs:
    applicant_kind: str
    mcc: str
    expected_monthly_volume_fen: int
    checks: Mapping[str, str]
    """Code → status of each check in the run the approval was decided on."""


def grade_application(inputs: ApprovalInputs) -> Grading:
    """The grade an approved application starts with."""
    factors = _static_factors(inputs.applicant_kind, inputs.mcc)
    factors.append(
        Factor(
            "declared_volume",
            _banded(inputs.expected_monthly_volume_fen, VOLUME_BANDS_FEN),
            {"declared_yuan": _yuan(inputs.expected_monthly_volume_fen)},
        )
    )
    floors: list[tuple[Grade, str, dict[str, str] | None]] = []
    open_checks = False
    for code, status in sorted(inputs.checks.items()):
        if status == CheckStatus.FAIL:
            points = CHECK_FAIL_POINTS.get(code, OTHER_OPEN_CHECK_POINTS)
        elif status == CheckStatus.PENDING:
            points = CHECK_PENDING_POINTS.get(code, OTHER_OPEN_CHECK_POINTS)
        elif code == "duplicates" and status == CheckStatus.WARN:
            factors.append(Factor("duplicate_merchant", DUPLICATE_MERCHANT_POINTS, {}))
            continue
        else:
            continue
        open_checks = True
        factors.append(Factor("check_open", points, {"check": code, "status": status}))
        if code in HIGH_FLOOR_CHECKS and status == CheckStatus.FAIL:
            floors.append((Grade.HIGH, "list_hit_overridden", None))
    if not open_checks:
        factors.append(Factor("checks_clear", 0, {}))
    return _finish(factors, floors)


# --- Monthly, from traffic ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrafficInputs:
    period: str
    """YYYY-MM."""
    applicant_kind: str
    mcc: str
    declared_monthly_volume_fen: int
    approved_fen: int = 0
    approved_count: int = 0
    declined_count: int = 0
    attempts: int = 0
    """Payment requests answered (approved, declined or later voided/reversed)."""
    refund_fen: int = 0
    alerts: Mapping[str, int] = field(default_factory=dict)
    """Alerts raised in the month by severity, dismissed ones left out."""
    cases_open: int = 0
    cases_confirmed: int = 0
    complaints: int | None = None
    """None: PosHub has no complaints channel yet, so there is nothing to count."""
    manual_grade: Grade | None = None
    manual_on: dt.date | None = None
    """A risk officer's grade still holding (:data:`MANUAL_HOLD_MONTHS`), and its date."""


def grade_traffic(inputs: TrafficInputs) -> Grading:
    """The monthly regrade from last month's traffic, alerts, cases and complaints."""
    factors = _static_factors(inputs.applicant_kind, inputs.mcc)
    floors: list[tuple[Grade, str, dict[str, str] | None]] = []
    period = inputs.period
    declared = inputs.declared_monthly_volume_fen
    if inputs.approved_fen <= 0:
        factors.append(Factor("no_traffic", 0, {"period": period}))
    else:
        ratio = inputs.approved_fen / declared if declared > 0 else float("inf")
        factors.append(
            Factor(
                "volume_vs_declared",
                _banded(ratio, VOLUME_RATIO_POINTS),
                {
                    "period": period,
                    "volume_yuan": _yuan(inputs.approved_fen),
                    "declared_yuan": _yuan(declared),
                    "ratio": "∞" if declared <= 0 else f"{ratio:.1f}",
                },
            )
        )
    if inputs.attempts:
        percent = _percent(inputs.declined_count, inputs.attempts)
        points = (
            _banded(percent, DECLINE_PERCENT_POINTS)
            if inputs.attempts >= DECLINE_MIN_ATTEMPTS
            else 0
        )
        factors.append(
            Factor(
                "decline_ratio",
                points,
                {
                    "declined": str(inputs.declined_count),
                    "attempts": str(inputs.attempts),
                    "percent": str(percent),
                },
            )
        )
    if inputs.refund_fen:
        if inputs.approved_fen <= 0:
            # Refunds with no sales at all in the month: the ratio is off every scale.
            percent, points = 100, REFUND_PERCENT_POINTS[0][1]
        else:
            percent = _percent(inputs.refund_fen, inputs.approved_fen)
            points = (
                _banded(percent, REFUND_PERCENT_POINTS)
                if inputs.approved_fen >= REFUND_MIN_SALES_FEN
                else 0
            )
        factors.append(
            Factor(
                "refund_ratio",
                points,
                {
                    "refund_yuan": _yuan(inputs.refund_fen),
                    "volume_yuan": _yuan(inputs.approved_fen),
                    "percent": str(percent),
                },
            )
        )
    counts = {severity: inputs.alerts.get(severity, 0) for severity in ALERT_POINTS}
    factors.append(
        Factor(
            "alerts",
            min(ALERT_POINTS_MAX, sum(ALERT_POINTS[s] * n for s, n in counts.items())),
            {"period": period, **{s: str(n) for s, n in counts.items()}},
        )
    )
    factors.append(
        Factor(
            "cases",
            min(CONFIRMED_CASE_POINTS_MAX, CONFIRMED_CASE_POINTS * inputs.cases_confirmed)
            + min(OPEN_CASE_POINTS_MAX, OPEN_CASE_POINTS * inputs.cases_open),
            {
                "period": period,
                "open": str(inputs.cases_open),
                "confirmed": str(inputs.cases_confirmed),
            },
        )
    )
    if inputs.cases_confirmed:
        floors.append((Grade.HIGH, "confirmed_case", None))
    if inputs.complaints is None:
        factors.append(Factor("no_complaints_channel", 0, {}))
    else:
        factors.append(
            Factor(
                "complaints",
                min(COMPLAINT_POINTS_MAX, COMPLAINT_POINTS * inputs.complaints),
                {"period": period, "count": str(inputs.complaints)},
            )
        )
    if inputs.manual_grade is not None and inputs.manual_on is not None:
        floors.append(
            (
                inputs.manual_grade,
                "manual_hold",
                {
                    "grade": inputs.manual_grade.value,
                    "date": inputs.manual_on.isoformat(),
                    "until": add_months(inputs.manual_on, MANUAL_HOLD_MONTHS).isoformat(),
                },
            )
        )
    return _finish(factors, floors)


# --- Periods and review dates ------------------------------------------------------------

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_period(text: str) -> str:
    """A month ``YYYY-MM``; ValueError otherwise."""
    if not _PERIOD.match(text.strip()):
        raise ValueError(f"{text!r} is not a month written YYYY-MM (e.g. 2026-11)")
    return text.strip()


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (the month's last day where it is shorter)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def previous_period(now: dt.datetime) -> str:
    """The month before the business date of ``now``: what a regrade at ``now`` looks at."""
    first = business_date(now).replace(day=1)
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


def period_bounds(period: str) -> tuple[dt.date, dt.date]:
    """First day of the month and first day of the next (business dates)."""
    start = dt.date(int(period[:4]), int(period[5:7]), 1)
    return start, add_months(start, 1)


def _midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI).astimezone(dt.UTC)


def next_review_due(last_review: dt.date, grade: str | None) -> dt.date:
    """When a person must next review the merchant: the grade's review interval after
    the last review (the approval, or a risk officer's grading)."""
    return add_months(last_review, grade_controls(grade).review_months)


# --- Recording ---------------------------------------------------------------------------


def _record(
    session: Session,
    merchant: Merchant,
    grading: Grading,
    *,
    source: GradeSource,
    actor: Actor,
    now: dt.datetime,
    period: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> MerchantRiskGrade | None:
    """Write the grading and mirror it on the merchant, audited with the explanation.
    None when a monthly grading of that period already exists (another worker did it)."""
    previous = merchant.risk_grade
    factors = {**grading.as_json(), **(extra or {})}
    row = repository.insert_grade(
        session,
        {
            "mid": merchant.mid,
            "grade": grading.grade.value,
            "score": grading.score,
            "factors": factors,
            "source": source.value,
            "period": period,
            "previous_grade": previous,
            "graded_by": actor.id,
            "graded_at": now,
        },
    )
    if row is None:
        return None
    merchant.risk_grade = grading.grade.value
    audit.record(
        session,
        actor,
        "risk.merchant_graded",
        "merchant",
        merchant.mid,
        {
            "grade": grading.grade.value,
            "previous_grade": previous,
            "score": grading.score,
            "source": source.value,
            "period": period,
            "explanation": factors,
        },
    )
    return row


def grade_at_approval(
    session: Session,
    merchant: Merchant,
    application: Application,
    *,
    actor: Actor,
    now: dt.datetime,
) -> MerchantRiskGrade:
    """Grade a merchant just created from its approved application (the caller's
    transaction): kind, category, declared volume and the checks of the run decided on."""
    checks = {c.code: c.status for c in onboarding_repository.latest_checks(session, application)}
    grading = grade_application(
        ApprovalInputs(
            applicant_kind=application.applicant_kind,
            mcc=application.mcc,
            expected_monthly_volume_fen=application.expected_monthly_volume_fen,
            checks=checks,
        )
    )
    row = _record(session, merchant, grading, source=GradeSource.APPROVAL, actor=actor, now=now)
    assert row is not None  # only monthly gradings can collide
    return row


def regrade_month(session: Session, period: str, *, now: dt.datetime, batch_max: int) -> int:
    """Regrade up to ``batch_max`` merchants not yet graded for ``period`` (not closed,
    created before the month ended); return how many were graded. Idempotent: one
    monthly row per merchant and period (a unique constraint), so a second run, or a
    second worker, grades nobody twice."""
    start, end = period_bounds(period)
    start_at, end_at = _midnight_utc(start), _midnight_utc(end)
    due = repository.merchants_due_for_regrade(session, period, end_at, batch_max)
    if not due:
        return 0
    mids = [merchant.mid for merchant, _ in due]
    traffic = repository.monthly_traffic(session, mids, start, end)
    alerts = repository.alert_counts(session, mids, start_at, end_at)
    cases = repository.case_counts(session, mids, start_at, end_at, BENIGN_CASE_OUTCOMES)
    manual = repository.latest_manual_grades(session, mids)
    actor = Actor.system("risk_grading")
    graded = 0
    for merchant, declared in due:
        t = traffic.get(merchant.mid, repository.Traffic())
        open_cases, confirmed = cases.get(merchant.mid, (0, 0))
        held: tuple[Grade | None, dt.date | None] = (None, None)
        found = manual.get(merchant.mid)
        if found is not None:
            graded_on = business_date(found[1])
            if add_months(graded_on, MANUAL_HOLD_MONTHS) > start:
                held = (Grade(found[0]), graded_on)
        grading = grade_traffic(
            TrafficInputs(
                period=period,
                applicant_kind=merchant.applicant_kind,
                mcc=merchant.mcc,
                declared_monthly_volume_fen=declared,
                approved_fen=t.approved_fen,
                approved_count=t.approved_count,
                declined_count=t.declined_count,
                attempts=t.attempts,
                refund_fen=t.refund_fen,
                alerts=alerts.get(merchant.mid, {}),
                cases_open=open_cases,
                cases_confirmed=confirmed,
                complaints=None,
                manual_grade=held[0],
                manual_on=held[1],
            )
        )
        row = _record(
            session,
            merchant,
            grading,
            source=GradeSource.MONTHLY,
            actor=actor,
            now=now,
            period=period,
        )
        graded += row is not None
    return graded


def set_grade(
    session: Session,
    mid: str,
    grade: str,
    reason: str,
    *,
    actor: Actor,
    now: dt.datetime,
) -> MerchantRiskGrade:
    """A risk officer grades a merchant by hand, with a reason (422 naming ``grade`` or
    ``reason``; 404 for an unknown MID; 409 for a closed merchant). It counts as a review
    and holds for :data:`MANUAL_HOLD_MONTHS` against monthly regrades that would lower it."""
    errors: list[FieldError] = []
    if grade not in {g.value for g in Grade}:
        errors.append(
            FieldError(
                "grade",
                "grade.unknown",
                N_("Choose a grade: {allowed}."),
                {"allowed": ", ".join(g.value for g in Grade)},
            )
        )
    text = reason.strip()
    if not text:
        errors.append(
            FieldError("reason", "reason.required", N_("Say why the merchant gets this grade."))
        )
    if errors:
        raise ValidationFailed(errors)
    merchant = get_merchant(session, mid)
    if merchant.status == MerchantStatus.CLOSED:
        raise Conflict(N_("Merchant {mid} is closed."), code="merchant_closed", mid=merchant.mid)
    latest = repository.latest_grade(session, merchant.mid)
    grading = Grading(
        latest.score if latest else 0,
        Grade(grade),
        (Factor("manual", 0, {"by": actor.id, "reason": text[:500]}),),
    )
    row = _record(
        session,
        merchant,
        grading,
        source=GradeSource.MANUAL,
        actor=actor,
        now=now,
        extra={"reason": text[:500]},
    )
    assert row is not None
    return row


# --- Reading ----------------------------------------------------------------------------


def controls_for(session: Session, mid: str) -> GradeControls:
    """What the merchant's grade in force carries (limit percent, settlement hold days,
    review interval); an ungraded merchant's are medium's. 404 for an unknown MID.
    Settlement (issue 10) reads ``settlement_hold_days`` here."""
    return grade_controls(get_merchant(session, mid).risk_grade)


@dataclass(frozen=True)
class Explained:
    """One factor as the page shows it: the message and its values (codes replaced by
    the msgids of their names, translated with the message)."""

    message: str
    params: dict[str, str]
    points: int


def explain(factors: Mapping[str, Any]) -> tuple[list[Explained], Explained | None]:
    """The stored explanation of a grading as messages to translate: each factor, then
    the floor that raised the grade (if any)."""
    items: list[Explained] = []
    for factor in factors.get("factors", []):
        code = str(factor.get("code", ""))
        values = {str(k): str(v) for k, v in (factor.get("values") or {}).items()}
        params = {k: VALUE_LABELS.get(k, {}).get(v, v) for k, v in values.items()}
        items.append(Explained(FACTOR_MESSAGES.get(code, code), params, int(factor["points"])))
    floor_code = factors.get("floor")
    floor = None
    if floor_code:
        values = {str(k): str(v) for k, v in (factors.get("floor_values") or {}).items()}
        params = {k: VALUE_LABELS.get(k, {}).get(v, v) for k, v in values.items()}
        floor = Explained(FLOOR_MESSAGES.get(str(floor_code), str(floor_code)), params, 0)
    return items, floor


@dataclass(frozen=True)
class GradeCard:
    """The merchant page's risk grade card."""

    grade: str | None
    controls: GradeControls
    latest: MerchantRiskGrade | None
    history: Sequence[MerchantRiskGrade]
    last_review_on: dt.date | None
    next_review_on: dt.date | None


def grade_card(session: Session, merchant: Merchant, *, history_max: int) -> GradeCard:
    history = repository.grade_history(session, merchant.mid, history_max)
    reviewed = repository.last_review_at(session, merchant.mid)
    last = business_date(reviewed) if reviewed else None
    return GradeCard(
        grade=merchant.risk_grade,
        controls=grade_controls(merchant.risk_grade),
        latest=history[0] if history else None,
        history=history,
        last_review_on=last,
        next_review_on=next_review_due(last, merchant.risk_grade) if last else None,
    )
