"""The merchant page's risk parts (``/admin/merchants/{mid}``): the risk grade card with
its controls, explanation and history, the manual grading form, and the declared
business hours with their edit form. Built here so that the merchant page
(poshub/web/pages/fleet.py) and the forms' routes (poshub/web/pages/risk_merchants.py)
share one context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from poshub.core import limits
from poshub.core.errors import N_
from poshub.core.i18n import Translator
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.risk import grading
from poshub.risk.models import MerchantRiskGrade
from poshub.risk.schemas import Grade
from poshub.staff.service import Principal
from poshub.web.roles import MERCHANT_HOURS_WRITE, RISK_READ, RISK_WRITE

SOURCE_LABELS = {
    "approval": N_("At approval"),
    "monthly": N_("Monthly regrade"),
    "manual": N_("Set by a risk officer"),
}
"""Every ``grading.GradeSource``."""


@dataclass(frozen=True)
class Line:
    text: str
    points: int


@dataclass(frozen=True)
class HistoryRow:
    row: MerchantRiskGrade
    summary: str
    """The manual grade's reason, or the factors that gave points, translated."""


def _lines(t: Translator, factors: dict[str, Any]) -> tuple[list[Line], str | None]:
    items, floor = grading.explain(factors)
    lines = [Line(t(i.message, {k: t(v) for k, v in i.params.items()}), i.points) for i in items]
    floor_text = t(floor.message, {k: t(v) for k, v in floor.params.items()}) if floor else None
    return lines, floor_text


def merchant_risk_context(
    session: Session, merchant: Merchant, principal: Principal, t: Translator
) -> dict[str, Any]:
    """What the merchant page's risk parts show to ``principal``."""
    open_merchant = merchant.status != MerchantStatus.CLOSED
    context: dict[str, Any] = {
        "risk_card": None,
        "can_grade": principal.has_any(RISK_WRITE) and open_merchant,
        "can_edit_hours": principal.has_any(MERCHANT_HOURS_WRITE) and open_merchant,
        "grades": [g.value for g in Grade],
        "GRADE_LABELS": grading.GRADE_LABELS,
        "GRADE_SOURCE_LABELS": SOURCE_LABELS,
    }
    if not principal.has_any(RISK_READ):
        return context
    card = grading.grade_card(session, merchant, history_max=limits.RISK_GRADE_HISTORY_MAX)
    lines: list[Line] = []
    floor: str | None = None
    if card.latest is not None:
        lines, floor = _lines(t, card.latest.factors)
    history = []
    for row in card.history:
        if row.source == grading.GradeSource.MANUAL:
            summary = str(row.factors.get("reason", ""))
        else:
            row_lines, _ = _lines(t, row.factors)
            summary = "; ".join(
                f"{line.text} (+{line.points})" for line in row_lines if line.points
            )
        history.append(HistoryRow(row, summary))
    context["risk_card"] = {
        "card": card,
        "lines": lines,
        "floor": floor,
        "history": history,
        "thresholds": (grading.MEDIUM_FROM_SCORE, grading.HIGH_FROM_SCORE),
    }
    return context
