"""Risk control's queries (DESIGN §2: queries only here). Each part of the domain keeps
its queries under its own heading below."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Row, and_, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from poshub.core.audit import AuditEntry
from poshub.core.roles import Role
from poshub.gateway.models import GatewayTransaction
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.onboarding.models import Application
from poshub.risk.models import (
    BlockedCard,
    FreezeScope,
    ListCheckStatus,
    MerchantRiskGrade,
    RiskAlert,
    RiskCase,
    RiskCaseAttachment,
    RiskCaseEvent,
    RiskCaseItem,
    RiskCounter,
    RiskFreeze,
    RiskLimit,
    RiskLimitChange,
    RiskListCheck,
    RiskRuleVersion,
)
from poshub.staff.models import StaffRole, StaffUser

# --- cases ------------------------------------------------------------------------------
# Alerts, cases and their evidence, freezes and settlement holds, blocked cards
# (poshub/risk/cases.py, poshub/risk/holds.py).


def alert_page(
    session: Session,
    *,
    status: str | None,
    rule_code: str | None,
    mid: str | None,
    tid: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[RiskAlert], int]:
    """Alerts matching every filter given (``end`` excluded), newest first, and how many."""
    query = select(RiskAlert)
    if status is not None:
        query = query.where(RiskAlert.status == status)
    if rule_code is not None:
        query = query.where(RiskAlert.rule_code == rule_code)
    if mid is not None:
        query = query.where(RiskAlert.mid == mid)
    if tid is not None:
        query = query.where(RiskAlert.tid == tid)
    if start is not None:
        query = query.where(RiskAlert.created_at >= start)
    if end is not None:
        query = query.where(RiskAlert.created_at < end)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = (
        session.execute(
            query.order_by(RiskAlert.created_at.desc(), RiskAlert.id.desc())
            .limit(limit)
            .offset(offset)
        )
        .scalars()
        .all()
    )
    return rows, total


def alert(session: Session, alert_id: int, *, for_update: bool = False) -> RiskAlert | None:
    query = select(RiskAlert).where(RiskAlert.id == alert_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def alerts_by_id(
    session: Session, alert_ids: Collection[int], *, for_update: bool = False
) -> Sequence[RiskAlert]:
    """The alerts among ``alert_ids`` that exist, locked in id order when asked (a fixed
    order, so two officers taking overlapping alerts never deadlock)."""
    query = select(RiskAlert).where(RiskAlert.id.in_(list(alert_ids))).order_by(RiskAlert.id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalars().all()


def alerts_of_case(session: Session, case_id: int, *, limit: int) -> Sequence[RiskAlert]:
    return (
        session.execute(
            select(RiskAlert)
            .where(RiskAlert.case_id == case_id)
            .order_by(RiskAlert.created_at, RiskAlert.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def alerts_of_rule(
    session: Session, rule_code: str, *, mid: str, limit: int
) -> Sequence[RiskAlert]:
    """One rule's alerts on one merchant, newest first (the relocation trail)."""
    return (
        session.execute(
            select(RiskAlert)
            .where(RiskAlert.rule_code == rule_code, RiskAlert.mid == mid)
            .order_by(RiskAlert.created_at.desc(), RiskAlert.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


def dismissals(session: Session, alert_ids: Collection[int]) -> dict[int, AuditEntry]:
    """The audit entry that dismissed each of ``alert_ids`` (its actor, time and reason)."""
    if not alert_ids:
        return {}
    entries = (
        session.execute(
            select(AuditEntry).where(
                AuditEntry.entity_type == "risk_alert",
                AuditEntry.action == "risk.alert_dismissed",
                AuditEntry.entity_id.in_([str(i) for i in alert_ids]),
            )
        )
        .scalars()
        .all()
    )
    return {int(e.entity_id): e for e in entries}


def merchant_names(session: Session, mids: Collection[str]) -> dict[str, str]:
    if not mids:
        return {}
    rows = session.execute(
        select(Merchant.mid, Merchant.business_name).where(Merchant.mid.in_(list(mids)))
    ).all()
    return dict(rows)


def transactions_by_rrn(session: Session, rrns: Collection[str]) -> Sequence[GatewayTransaction]:
    """Journal rows of ``rrns`` that exist, oldest first."""
    if not rrns:
        return []
    return (
        session.execute(
            select(GatewayTransaction)
            .where(GatewayTransaction.rrn.in_(list(rrns)))
            .order_by(GatewayTransaction.received_at, GatewayTransaction.rrn)
        )
        .scalars()
        .all()
    )


def case_by_reference(
    session: Session, reference: str, *, for_update: bool = False
) -> RiskCase | None:
    query = select(RiskCase).where(RiskCase.reference == reference)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def case_by_id(session: Session, case_id: int) -> RiskCase | None:
    return session.get(RiskCase, case_id)


def case_page(
    session: Session, *, status: str | None, mid: str | None, limit: int, offset: int
) -> tuple[Sequence[RiskCase], int]:
    """Cases, newest first, and how many match."""
    query = select(RiskCase)
    if status is not None:
        query = query.where(RiskCase.status == status)
    if mid is not None:
        query = query.where(RiskCase.mid == mid)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = (
        session.execute(
            query.order_by(RiskCase.opened_at.desc(), RiskCase.id.desc())
            .limit(limit)
            .offset(offset)
        )
        .scalars()
        .all()
    )
    return rows, total


def evidence_counts(session: Session, case_ids: Collection[int]) -> dict[int, int]:
    """Items (alerts and transactions) linked to each case."""
    if not case_ids:
        return {}
    rows = session.execute(
        select(RiskCaseItem.case_id, func.count())
        .where(RiskCaseItem.case_id.in_(list(case_ids)))
        .group_by(RiskCaseItem.case_id)
    ).all()
    return dict(rows)


def case_items(session: Session, case_id: int, *, limit: int) -> Sequence[RiskCaseItem]:
    return (
        session.execute(
            select(RiskCaseItem)
            .where(RiskCaseItem.case_id == case_id)
            .order_by(RiskCaseItem.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def case_item(session: Session, case_id: int, kind: str, ref: str) -> RiskCaseItem | None:
    return session.execute(
        select(RiskCaseItem).where(
            RiskCaseItem.case_id == case_id, RiskCaseItem.kind == kind, RiskCaseItem.ref == ref
        )
    ).scalar_one_or_none()


def case_item_count(session: Session, case_id: int) -> int:
    return session.execute(
        select(func.count()).select_from(RiskCaseItem).where(RiskCaseItem.case_id == case_id)
    ).scalar_one()


def case_events(session: Session, case_id: int, *, limit: int) -> Sequence[RiskCaseEvent]:
    """A case's events in the order they happened (the first ``limit``)."""
    return (
        session.execute(
            select(RiskCaseEvent)
            .where(RiskCaseEvent.case_id == case_id)
            .order_by(RiskCaseEvent.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def case_attachments(session: Session, case_id: int, *, limit: int) -> Sequence[RiskCaseAttachment]:
    return (
        session.execute(
            select(RiskCaseAttachment)
            .where(RiskCaseAttachment.case_id == case_id)
            .order_by(RiskCaseAttachment.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def case_attachment(
    session: Session, case_id: int, attachment_id: int
) -> RiskCaseAttachment | None:
    return session.execute(
        select(RiskCaseAttachment).where(
            RiskCaseAttachment.case_id == case_id, RiskCaseAttachment.id == attachment_id
        )
    ).scalar_one_or_none()


def attachment_count(session: Session, case_id: int) -> int:
    return session.execute(
        select(func.count())
        .select_from(RiskCaseAttachment)
        .where(RiskCaseAttachment.case_id == case_id)
    ).scalar_one()


def open_cases_of(session: Session, mid: str, *, limit: int) -> Sequence[RiskCase]:
    return (
        session.execute(
            select(RiskCase)
            .where(RiskCase.mid == mid, RiskCase.status == "open")
            .order_by(RiskCase.opened_at.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


def freeze(session: Session, freeze_id: int, *, for_update: bool = False) -> RiskFreeze | None:
    query = select(RiskFreeze).where(RiskFreeze.id == freeze_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def freezes_in_force(
    session: Session, *, mid: str | None = None, case_id: int | None = None, limit: int
) -> Sequence[RiskFreeze]:
    """Freezes and holds not released, newest first; of one merchant or case when asked."""
    query = select(RiskFreeze).where(RiskFreeze.released_at.is_(None))
    if mid is not None:
        query = query.where(RiskFreeze.mid == mid)
    if case_id is not None:
        query = query.where(RiskFreeze.case_id == case_id)
    return (
        session.execute(
            query.order_by(RiskFreeze.created_at.desc(), RiskFreeze.id.desc()).limit(limit)
        )
        .scalars()
        .all()
    )


def freezes_of_case(session: Session, case_id: int, *, limit: int) -> Sequence[RiskFreeze]:
    """Every freeze a case made, released or not, oldest first."""
    return (
        session.execute(
            select(RiskFreeze)
            .where(RiskFreeze.case_id == case_id)
            .order_by(RiskFreeze.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def freeze_in_force_on(
    session: Session, scope: str, subject: str, *, blocks_authorization: bool | None = None
) -> RiskFreeze | None:
    """A freeze of ``scope``/``subject`` in force (blocking authorizations or not, when
    asked), if any."""
    query = select(RiskFreeze).where(
        RiskFreeze.scope == scope, RiskFreeze.subject == subject, RiskFreeze.released_at.is_(None)
    )
    if blocks_authorization is not None:
        query = query.where(RiskFreeze.blocks_authorization.is_(blocks_authorization))
    return session.execute(query.order_by(RiskFreeze.id).limit(1)).scalar_one_or_none()


def settlement_holds(
    session: Session, mid: str, *, at: dt.datetime | None = None
) -> Sequence[RiskFreeze]:
    """The merchant's rows that hold settlement (its own scope or one of its transactions'):
    in force now, or at the moment ``at`` (made before it, not released before it)."""
    query = select(RiskFreeze).where(RiskFreeze.mid == mid, RiskFreeze.holds_settlement.is_(True))
    if at is None:
        query = query.where(RiskFreeze.released_at.is_(None))
    else:
        query = query.where(
            RiskFreeze.created_at < at,
            or_(RiskFreeze.released_at.is_(None), RiskFreeze.released_at >= at),
        )
    return session.execute(query).scalars().all()


def held_merchants(session: Session) -> set[str]:
    """MIDs whose settlement a merchant-scope row in force holds."""
    return set(
        session.execute(
            select(RiskFreeze.subject).where(
                RiskFreeze.scope == FreezeScope.MERCHANT.value,
                RiskFreeze.holds_settlement.is_(True),
                RiskFreeze.released_at.is_(None),
            )
        ).scalars()
    )


def held_transactions(session: Session, mid: str) -> set[str]:
    """RRNs of ``mid`` whose settlement a transaction-scope row in force holds."""
    return set(
        session.execute(
            select(RiskFreeze.subject).where(
                RiskFreeze.scope == FreezeScope.TRANSACTION.value,
                RiskFreeze.mid == mid,
                RiskFreeze.holds_settlement.is_(True),
                RiskFreeze.released_at.is_(None),
            )
        ).scalars()
    )


def blocked_cards_in_force(session: Session, *, limit: int) -> Sequence[BlockedCard]:
    return (
        session.execute(
            select(BlockedCard)
            .where(BlockedCard.released_at.is_(None))
            .order_by(BlockedCard.created_at.desc(), BlockedCard.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


def blocked_card(session: Session, card_id: int, *, for_update: bool = False) -> BlockedCard | None:
    query = select(BlockedCard).where(BlockedCard.id == card_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def blocked_token_in_force(session: Session, pan_token: str) -> BlockedCard | None:
    return session.execute(
        select(BlockedCard)
        .where(BlockedCard.pan_token == pan_token, BlockedCard.released_at.is_(None))
        .limit(1)
    ).scalar_one_or_none()


def risk_officers(session: Session) -> Sequence[StaffUser]:
    """Active staff with the risk officer role, by name (whom a case may be assigned to)."""
    return (
        session.execute(
            select(StaffUser)
            .join(StaffRole, StaffRole.user_id == StaffUser.id)
            .where(StaffRole.role == Role.RISK_OFFICER.value, StaffUser.active.is_(True))
            .order_by(StaffUser.username)
        )
        .scalars()
        .all()
    )


def display_names(session: Session, usernames: Collection[str]) -> dict[str, str]:
    if not usernames:
        return {}
    rows = session.execute(
        select(StaffUser.username, StaffUser.display_name).where(
            StaffUser.username.in_(list(usernames))
        )
    ).all()
    return dict(rows)


# --- controls ---------------------------------------------------------------------------
# Limits and their change requests, rule versions (poshub/risk/controls.py). Staff names
# come from ``display_names`` above.


def limits_in_force(
    session: Session, scope: str, subjects: Collection[str]
) -> dict[tuple[str, str], RiskLimit]:
    """The latest version of each (subject, channel) at ``scope`` among ``subjects``."""
    if not subjects:
        return {}
    latest = (
        select(RiskLimit.subject, RiskLimit.channel, func.max(RiskLimit.version).label("version"))
        .where(RiskLimit.scope == scope, RiskLimit.subject.in_(list(subjects)))
        .group_by(RiskLimit.subject, RiskLimit.channel)
        .subquery()
    )
    rows = (
        session.execute(
            select(RiskLimit).join(
                latest,
                and_(
                    RiskLimit.scope == scope,
                    RiskLimit.subject == latest.c.subject,
                    RiskLimit.channel == latest.c.channel,
                    RiskLimit.version == latest.c.version,
                ),
            )
        )
        .scalars()
        .all()
    )
    return {(row.subject, row.channel): row for row in rows}


def latest_limit_version(session: Session, scope: str, subject: str, channel: str) -> int:
    """The highest version of one level's limits on one channel (0: none yet)."""
    found = session.execute(
        select(func.max(RiskLimit.version)).where(
            RiskLimit.scope == scope, RiskLimit.subject == subject, RiskLimit.channel == channel
        )
    ).scalar_one_or_none()
    return int(found or 0)


def limit_versions(
    session: Session, *, scope: str | None = None, subject: str | None = None, limit: int
) -> Sequence[RiskLimit]:
    """Versions of limits, newest first (of one level when asked)."""
    query = select(RiskLimit)
    if scope is not None:
        query = query.where(RiskLimit.scope == scope)
    if subject is not None:
        query = query.where(RiskLimit.subject == subject)
    return (
        session.execute(
            query.order_by(RiskLimit.created_at.desc(), RiskLimit.id.desc()).limit(limit)
        )
        .scalars()
        .all()
    )


def limit_change(
    session: Session, change_id: int, *, for_update: bool = False
) -> RiskLimitChange | None:
    query = select(RiskLimitChange).where(RiskLimitChange.id == change_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def limit_changes(
    session: Session,
    *,
    status: str | None = None,
    scope: str | None = None,
    subject: str | None = None,
    limit: int,
) -> Sequence[RiskLimitChange]:
    """Change requests, newest first, filtered by whatever is given."""
    query = select(RiskLimitChange)
    if status is not None:
        query = query.where(RiskLimitChange.status == status)
    if scope is not None:
        query = query.where(RiskLimitChange.scope == scope)
    if subject is not None:
        query = query.where(RiskLimitChange.subject == subject)
    return (
        session.execute(
            query.order_by(RiskLimitChange.requested_at.desc(), RiskLimitChange.id.desc()).limit(
                limit
            )
        )
        .scalars()
        .all()
    )


def pending_limit_change(
    session: Session, scope: str, subject: str, channel: str
) -> RiskLimitChange | None:
    return session.execute(
        select(RiskLimitChange).where(
            RiskLimitChange.scope == scope,
            RiskLimitChange.subject == subject,
            RiskLimitChange.channel == channel,
            RiskLimitChange.status == "pending",
        )
    ).scalar_one_or_none()


def latest_rule_versions(session: Session) -> dict[str, RiskRuleVersion]:
    """The highest version of every rule that has one, by code."""
    latest = (
        select(RiskRuleVersion.code, func.max(RiskRuleVersion.version).label("version"))
        .group_by(RiskRuleVersion.code)
        .subquery()
    )
    rows = (
        session.execute(
            select(RiskRuleVersion).join(
                latest,
                and_(
                    RiskRuleVersion.code == latest.c.code,
                    RiskRuleVersion.version == latest.c.version,
                ),
            )
        )
        .scalars()
        .all()
    )
    return {row.code: row for row in rows}


def rule_versions(session: Session, code: str, *, limit: int) -> Sequence[RiskRuleVersion]:
    """One rule's versions, newest first."""
    return (
        session.execute(
            select(RiskRuleVersion)
            .where(RiskRuleVersion.code == code)
            .order_by(RiskRuleVersion.version.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


# --- grading, relocation, lists ---------------------------------------------------------
# Merchant risk grades, terminal relocation and external risk list checks
# (poshub/risk/grading.py, relocation.py, lists.py, jobs.py).

_GRADE_SOURCES_REVIEWED = ("approval", "manual")
"""Gradings that count as a person's review of the merchant."""
_SALES = ("sale", "qr_sale", "completion")
_PAYMENT_REQUESTS = ("sale", "qr_sale", "preauth", "completion")


def _insert_for(session: Session) -> Any:
    """The dialect's INSERT (it has ``on_conflict_do_nothing``)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def insert_grade(session: Session, values: Mapping[str, Any]) -> MerchantRiskGrade | None:
    """A new grading row, or None when the merchant already has one for that ``period``
    (a monthly regrade done twice: the unique (mid, period) constraint decides)."""
    statement = (
        _insert_for(session)(MerchantRiskGrade)
        .values(dict(values))
        .on_conflict_do_nothing(index_elements=["mid", "period"])
        .returning(MerchantRiskGrade.id)
    )
    new_id = session.execute(statement).scalar_one_or_none()
    return None if new_id is None else session.get(MerchantRiskGrade, new_id)


def latest_grade(session: Session, mid: str) -> MerchantRiskGrade | None:
    return (
        session.execute(
            select(MerchantRiskGrade)
            .where(MerchantRiskGrade.mid == mid)
            .order_by(MerchantRiskGrade.graded_at.desc(), MerchantRiskGrade.id.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def grade_history(session: Session, mid: str, limit: int) -> Sequence[MerchantRiskGrade]:
    """The merchant's gradings, newest first."""
    return (
        session.execute(
            select(MerchantRiskGrade)
            .where(MerchantRiskGrade.mid == mid)
            .order_by(MerchantRiskGrade.graded_at.desc(), MerchantRiskGrade.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


def last_review_at(session: Session, mid: str) -> dt.datetime | None:
    """When a person last graded the merchant (its approval or a risk officer)."""
    found: dt.datetime | None = session.execute(
        select(func.max(MerchantRiskGrade.graded_at)).where(
            MerchantRiskGrade.mid == mid, MerchantRiskGrade.source.in_(_GRADE_SOURCES_REVIEWED)
        )
    ).scalar_one_or_none()
    return found


def latest_manual_grades(
    session: Session, mids: Collection[str]
) -> dict[str, tuple[str, dt.datetime]]:
    """Per merchant, its latest grade set by a risk officer: (grade, when)."""
    if not mids:
        return {}
    g = MerchantRiskGrade
    rows = session.execute(
        select(g.mid, g.grade, g.graded_at)
        .where(g.mid.in_(list(mids)), g.source == "manual")
        .order_by(g.graded_at, g.id)
    )
    return {row.mid: (row.grade, row.graded_at) for row in rows}


def merchants_due_for_regrade(
    session: Session, period: str, created_before: dt.datetime, limit: int
) -> list[tuple[Merchant, int]]:
    """Merchants, not closed and created before ``created_before``, without a monthly
    grading of ``period``, with their declared monthly volume; oldest first."""
    graded = (
        select(MerchantRiskGrade.id)
        .where(MerchantRiskGrade.mid == Merchant.mid, MerchantRiskGrade.period == period)
        .exists()
    )
    rows = session.execute(
        select(Merchant, Application.expected_monthly_volume_fen)
        .join(Application, Application.id == Merchant.application_id)
        .where(
            Merchant.status != str(MerchantStatus.CLOSED),
            Merchant.created_at < created_before,
            ~graded,
        )
        .order_by(Merchant.id)
        .limit(limit)
    ).all()
    return [(row[0], int(row[1])) for row in rows]


@dataclass(frozen=True, slots=True)
class Traffic:
    """One merchant's month in the journal."""

    approved_fen: int = 0
    approved_count: int = 0
    declined_count: int = 0
    attempts: int = 0
    refund_fen: int = 0


def monthly_traffic(
    session: Session, mids: Collection[str], start: dt.date, end: dt.date
) -> dict[str, Traffic]:
    """Per merchant, its journal from business date ``start`` to ``end`` (excluded):
    approved sales (card, QR, completions; not voided or reversed), declined and all
    answered payment requests, and approved refunds. One grouped query for all."""
    if not mids:
        return {}
    t = GatewayTransaction
    sale = t.kind.in_(_SALES)
    request = t.kind.in_(_PAYMENT_REQUESTS)
    approved_sale = and_(sale, t.status == "approved")
    rows = session.execute(
        select(
            t.mid,
            func.sum(case((approved_sale, t.amount_fen), else_=0)).label("approved_fen"),
            func.sum(case((approved_sale, 1), else_=0)).label("approved_count"),
            func.sum(case((and_(request, t.status == "declined"), 1), else_=0)).label("declined"),
            func.sum(case((and_(request, t.status != "pending"), 1), else_=0)).label("attempts"),
            func.sum(
                case((and_(t.kind == "refund", t.status == "approved"), t.amount_fen), else_=0)
            ).label("refund_fen"),
        )
        .where(t.mid.in_(list(mids)), t.host_date >= start, t.host_date < end)
        .group_by(t.mid)
    )
    return {
        row.mid: Traffic(
            int(row.approved_fen or 0),
            int(row.approved_count or 0),
            int(row.declined or 0),
            int(row.attempts or 0),
            int(row.refund_fen or 0),
        )
        for row in rows
    }


def alert_counts(
    session: Session, mids: Collection[str], start: dt.datetime, end: dt.datetime
) -> dict[str, dict[str, int]]:
    """Per merchant, alerts raised in [start, end) by severity, dismissed ones left out."""
    if not mids:
        return {}
    a = RiskAlert
    rows = session.execute(
        select(a.mid, a.severity, func.count())
        .where(
            a.mid.in_(list(mids)),
            a.created_at >= start,
            a.created_at < end,
            a.status != "dismissed",
        )
        .group_by(a.mid, a.severity)
    )
    counts: dict[str, dict[str, int]] = {}
    for mid, severity, count in rows:
        counts.setdefault(str(mid), {})[severity] = int(count)
    return counts


def case_counts(
    session: Session,
    mids: Collection[str],
    start: dt.datetime,
    end: dt.datetime,
    benign_outcomes: Collection[str],
) -> dict[str, tuple[int, int]]:
    """Per merchant: (cases open at ``end``, cases closed in [start, end) with an outcome
    not in ``benign_outcomes``)."""
    if not mids:
        return {}
    c = RiskCase
    still_open = or_(c.closed_at.is_(None), c.closed_at >= end)
    confirmed = and_(
        c.closed_at >= start, c.closed_at < end, c.outcome.not_in(list(benign_outcomes))
    )
    rows = session.execute(
        select(
            c.mid,
            func.sum(case((still_open, 1), else_=0)),
            func.sum(case((confirmed, 1), else_=0)),
        )
        .where(c.mid.in_(list(mids)), c.opened_at < end)
        .group_by(c.mid)
    )
    return {mid: (int(n_open or 0), int(n_confirmed or 0)) for mid, n_open, n_confirmed in rows}


def insert_alert_once(session: Session, values: Mapping[str, Any]) -> int | None:
    """A new alert, or None when one with the same ``dedupe_key`` exists (several
    processes seeing the same event raise it once)."""
    statement = (
        _insert_for(session)(RiskAlert)
        .values(dict(values))
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(RiskAlert.id)
    )
    new_id: int | None = session.execute(statement).scalar_one_or_none()
    return new_id


def insert_list_checks(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.add_all(RiskListCheck(**dict(row)) for row in rows)
        session.flush()


def list_checks_of(
    session: Session, subject_kind: str, subject: str, *, limit: int
) -> Sequence[RiskListCheck]:
    """One subject's list checks, newest first."""
    return (
        session.execute(
            select(RiskListCheck)
            .where(RiskListCheck.subject_kind == subject_kind, RiskListCheck.subject == subject)
            .order_by(RiskListCheck.requested_at.desc(), RiskListCheck.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


def latest_list_checks(
    session: Session, subject_kind: str, subjects: Collection[str]
) -> dict[str, RiskListCheck]:
    """Each subject's latest list check."""
    if not subjects:
        return {}
    rows = (
        session.execute(
            select(RiskListCheck)
            .where(
                RiskListCheck.subject_kind == subject_kind,
                RiskListCheck.subject.in_(list(subjects)),
            )
            .order_by(RiskListCheck.requested_at, RiskListCheck.id)
        )
        .scalars()
        .all()
    )
    return {row.subject: row for row in rows}


def due_list_retries(session: Session, now: dt.datetime, limit: int) -> Sequence[RiskListCheck]:
    """Pending checks whose next attempt is due, the longest waiting first."""
    return (
        session.execute(
            select(RiskListCheck)
            .where(
                RiskListCheck.status == str(ListCheckStatus.PENDING),
                RiskListCheck.next_attempt_at.is_not(None),
                RiskListCheck.next_attempt_at <= now,
            )
            .order_by(RiskListCheck.next_attempt_at, RiskListCheck.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def merchants_due_for_list_check(
    session: Session, since: dt.datetime, limit: int
) -> Sequence[Merchant]:
    """Live merchants with no list check requested since ``since``, oldest first."""
    checked = (
        select(RiskListCheck.id)
        .where(
            RiskListCheck.subject_kind == "merchant",
            RiskListCheck.subject == Merchant.mid,
            RiskListCheck.requested_at >= since,
        )
        .exists()
    )
    return (
        session.execute(
            select(Merchant)
            .where(Merchant.status == str(MerchantStatus.LIVE), ~checked)
            .order_by(Merchant.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


# --- engine -----------------------------------------------------------------------------
# What the gateway's risk engine reads on each refresh and at start, and what the rule
# preview streams (poshub/risk/engine.py, poshub/risk/preview.py).


@dataclass(frozen=True, slots=True)
class MerchantProfile:
    """What the rules know of a merchant."""

    mid: str
    mcc: str
    live_at: dt.datetime | None
    opening_time: str | None
    closing_time: str | None
    risk_grade: str | None
    expected_monthly_fen: int | None


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    rules: list[tuple[str, int, bool, str, dict[str, Any]]]
    """(code, version, enabled, action, params) of the latest version of each rule."""
    limits: list[tuple[str, str, str, tuple[int | None, int | None, int | None, int | None]]]
    """(scope, subject, channel, amounts) of the latest version of each level's limits."""
    frozen: list[tuple[str, str]]
    """(scope, subject) of freezes in force that block authorizations."""
    blocked: list[str]
    """Card tokens on the blocked list."""
    profiles: list[MerchantProfile]
    counters: list[tuple[str, int]]


ENGINE_JOURNAL_COLUMNS: Final = (
    "rrn",
    "kind",
    "tid",
    "mid",
    "pan_token",
    "pan_masked",
    "channel",
    "amount_fen",
    "response_code",
    "status",
    "upstream",
    "original_rrn",
    "host_date",
    "received_at",
)


def engine_snapshot(
    session: Session,
    *,
    today: dt.date,
    counter_keys: Sequence[str] | None,
    rows_max: int,
    profiles_max: int,
    counters_max: int,
    chunk: int,
) -> EngineSnapshot:
    """Everything the engine decides by, each table read once and bounded. Counters: the
    given keys (in chunks), or with ``counter_keys=None`` every counter still current."""
    latest_rule = (
        select(RiskRuleVersion.code, func.max(RiskRuleVersion.version).label("version"))
        .group_by(RiskRuleVersion.code)
        .subquery()
    )
    rules = [
        (row.code, row.version, row.enabled, row.action, dict(row.params or {}))
        for row in session.execute(
            select(
                RiskRuleVersion.code,
                RiskRuleVersion.version,
                RiskRuleVersion.enabled,
                RiskRuleVersion.action,
                RiskRuleVersion.params,
            ).join(
                latest_rule,
                and_(
                    RiskRuleVersion.code == latest_rule.c.code,
                    RiskRuleVersion.version == latest_rule.c.version,
                ),
            )
        )
    ]
    latest_limit = (
        select(
            RiskLimit.scope,
            RiskLimit.subject,
            RiskLimit.channel,
            func.max(RiskLimit.version).label("version"),
        )
        .group_by(RiskLimit.scope, RiskLimit.subject, RiskLimit.channel)
        .subquery()
    )
    limits_rows = [
        (
            row.scope,
            row.subject,
            row.channel,
            (row.per_transaction_fen, row.per_day_fen, row.per_month_fen, row.per_card_per_day_fen),
        )
        for row in session.execute(
            select(
                RiskLimit.scope,
                RiskLimit.subject,
                RiskLimit.channel,
                RiskLimit.per_transaction_fen,
                RiskLimit.per_day_fen,
                RiskLimit.per_month_fen,
                RiskLimit.per_card_per_day_fen,
            )
            .join(
                latest_limit,
                and_(
                    RiskLimit.scope == latest_limit.c.scope,
                    RiskLimit.subject == latest_limit.c.subject,
                    RiskLimit.channel == latest_limit.c.channel,
                    RiskLimit.version == latest_limit.c.version,
                ),
            )
            .limit(rows_max)
        )
    ]
    frozen = [
        (scope, subject)
        for scope, subject in session.execute(
            select(RiskFreeze.scope, RiskFreeze.subject)
            .where(
                RiskFreeze.released_at.is_(None),
                RiskFreeze.blocks_authorization.is_(True),
                RiskFreeze.scope.in_([str(FreezeScope.MERCHANT), str(FreezeScope.TERMINAL)]),
            )
            .limit(rows_max)
        )
    ]
    blocked = list(
        session.execute(
            select(BlockedCard.pan_token).where(BlockedCard.released_at.is_(None)).limit(rows_max)
        ).scalars()
    )
    profiles = [
        MerchantProfile(*row)
        for row in session.execute(
            select(
                Merchant.mid,
                Merchant.mcc,
                Merchant.live_at,
                Merchant.opening_time,
                Merchant.closing_time,
                Merchant.risk_grade,
                Application.expected_monthly_volume_fen,
            )
            .join(Application, Application.id == Merchant.application_id)
            .limit(profiles_max)
        )
    ]
    counters: list[tuple[str, int]] = []
    if counter_keys is None:
        counters = [
            (key, int(amount))
            for key, amount in session.execute(
                select(RiskCounter.key, RiskCounter.amount_fen)
                .where(RiskCounter.expires_on >= today)
                .limit(counters_max)
            )
        ]
    else:
        for start in range(0, len(counter_keys), chunk):
            counters.extend(
                (key, int(amount))
                for key, amount in session.execute(
                    select(RiskCounter.key, RiskCounter.amount_fen).where(
                        RiskCounter.key.in_(list(counter_keys[start : start + chunk]))
                    )
                )
            )
    return EngineSnapshot(rules, limits_rows, frozen, blocked, profiles, counters)


def delete_expired_counters(session: Session, *, before: dt.date, limit: int) -> int:
    """Delete up to ``limit`` limit counters whose period ended before ``before``."""
    keys = list(
        session.execute(
            select(RiskCounter.key).where(RiskCounter.expires_on < before).limit(limit)
        ).scalars()
    )
    if keys:
        session.execute(delete(RiskCounter).where(RiskCounter.key.in_(keys)))
    return len(keys)


def _journal_columns() -> list[Any]:
    return [getattr(GatewayTransaction, name) for name in ENGINE_JOURNAL_COLUMNS]


def recent_journal(
    session: Session, *, since: dt.datetime, since_date: dt.date, limit: int
) -> list[Row[Any]]:
    """Financial journal rows received since ``since`` (``since_date`` is its business
    date, to use the date index), newest first, at most ``limit``."""
    return list(
        session.execute(
            select(*_journal_columns())
            .where(
                GatewayTransaction.host_date >= since_date,
                GatewayTransaction.received_at >= since,
                GatewayTransaction.dedupe_key.is_not(None),
            )
            .order_by(GatewayTransaction.received_at.desc(), GatewayTransaction.rrn.desc())
            .limit(limit)
        )
    )


def journal_chunk(
    session: Session,
    *,
    since_date: dt.date,
    until: dt.datetime,
    after: tuple[dt.datetime, str] | None,
    limit: int,
) -> list[Row[Any]]:
    """Financial journal rows from business date ``since_date`` until ``until``, oldest
    first, the next ``limit`` after (received_at, rrn) ``after``: the preview streams the
    journal with it, one chunk at a time."""
    query = select(*_journal_columns()).where(
        GatewayTransaction.host_date >= since_date,
        GatewayTransaction.received_at < until,
        GatewayTransaction.dedupe_key.is_not(None),
    )
    if after is not None:
        at, rrn = after
        query = query.where(
            or_(
                GatewayTransaction.received_at > at,
                and_(GatewayTransaction.received_at == at, GatewayTransaction.rrn > rrn),
            )
        )
    return list(
        session.execute(
            query.order_by(GatewayTransaction.received_at, GatewayTransaction.rrn).limit(limit)
        )
    )


def stop_list_retries(session: Session, subject_kind: str, subjects: Collection[str]) -> None:
    """No more retries of these subjects' unanswered checks: a newer question replaces
    them. They stay ``pending`` (never answered), with no next attempt."""
    if subjects:
        session.execute(
            update(RiskListCheck)
            .where(
                RiskListCheck.subject_kind == subject_kind,
                RiskListCheck.subject.in_(list(subjects)),
                RiskListCheck.status == str(ListCheckStatus.PENDING),
                RiskListCheck.next_attempt_at.is_not(None),
            )
            .values(next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
