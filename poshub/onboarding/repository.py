"""Every onboarding query."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from poshub.onboarding.models import (
    Application,
    ApplicationCheck,
    ApplicationEditor,
    ApplicationEvent,
    BlacklistEntry,
    Document,
    Merchant,
    MerchantStatus,
    TerminalRequest,
)
from poshub.onboarding.states import OPEN_STATUSES, ApplicationStatus


def get(session: Session, application_id: str, *, for_update: bool = False) -> Application | None:
    statement = select(Application).where(Application.id == application_id)
    if for_update:
        statement = statement.with_for_update()
    return session.execute(statement).scalar_one_or_none()


def by_access(session: Session, application_id: str, token_hash: str) -> Application | None:
    return session.execute(
        select(Application).where(
            Application.id == application_id, Application.access_token_hash == token_hash
        )
    ).scalar_one_or_none()


def by_tracking(session: Session, tracking_number: str, token_hash: str) -> Application | None:
    return session.execute(
        select(Application).where(
            Application.tracking_number == tracking_number,
            Application.access_token_hash == token_hash,
        )
    ).scalar_one_or_none()


def terminal_lines(session: Session, application_id: str) -> Sequence[TerminalRequest]:
    return (
        session.execute(
            select(TerminalRequest)
            .where(TerminalRequest.application_id == application_id)
            .order_by(TerminalRequest.id)
        )
        .scalars()
        .all()
    )


def documents(session: Session, application_id: str, limit: int) -> Sequence[Document]:
    return (
        session.execute(
            select(Document)
            .where(Document.application_id == application_id)
            .order_by(Document.uploaded_at, Document.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def document(session: Session, application_id: str, document_id: str) -> Document | None:
    return session.execute(
        select(Document).where(
            Document.application_id == application_id, Document.id == document_id
        )
    ).scalar_one_or_none()


def document_kinds(session: Session, application_id: str) -> set[str]:
    rows = session.execute(
        select(Document.kind).where(Document.application_id == application_id).distinct()
    ).scalars()
    return set(rows)


def terminal_total(session: Session, application_id: str) -> int:
    total = session.execute(
        select(func.coalesce(func.sum(TerminalRequest.count), 0)).where(
            TerminalRequest.application_id == application_id
        )
    ).scalar_one()
    return int(total)


def document_count(session: Session, application_id: str) -> int:
    return session.execute(
        select(func.count()).select_from(Document).where(Document.application_id == application_id)
    ).scalar_one()


def latest_checks(session: Session, application: Application) -> Sequence[ApplicationCheck]:
    return (
        session.execute(
            select(ApplicationCheck)
            .where(
                ApplicationCheck.application_id == application.id,
                ApplicationCheck.run == application.check_run,
            )
            .order_by(ApplicationCheck.id)
        )
        .scalars()
        .all()
    )


def check_counts(session: Session, application_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per application: how many checks of its latest run have each status."""
    if not application_ids:
        return {}
    rows = session.execute(
        select(ApplicationCheck.application_id, ApplicationCheck.status, func.count())
        .join(Application, Application.id == ApplicationCheck.application_id)
        .where(
            ApplicationCheck.application_id.in_(application_ids),
            ApplicationCheck.run == Application.check_run,
        )
        .group_by(ApplicationCheck.application_id, ApplicationCheck.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for application_id, status, count in rows:
        counts.setdefault(application_id, {})[status] = count
    return counts


def events(
    session: Session, application_id: str, limit: int, *, applicant_only: bool = False
) -> Sequence[ApplicationEvent]:
    statement = select(ApplicationEvent).where(ApplicationEvent.application_id == application_id)
    if applicant_only:
        statement = statement.where(ApplicationEvent.visible_to_applicant.is_(True))
    return session.execute(statement.order_by(ApplicationEvent.id).limit(limit)).scalars().all()


def editor_ids(session: Session, application_id: str) -> set[int]:
    rows = session.execute(
        select(ApplicationEditor.staff_user_id).where(
            ApplicationEditor.application_id == application_id
        )
    ).scalars()
    return set(rows)


def queue(
    session: Session, statuses: Sequence[ApplicationStatus], limit: int, offset: int = 0
) -> Sequence[Application]:
    return (
        session.execute(
            select(Application)
            .where(Application.status.in_([str(s) for s in statuses]))
            .order_by(
                Application.sla_target_date.is_(None),
                Application.sla_target_date,
                Application.submitted_at,
            )
            .limit(limit)
            .offset(offset)
        )
        .scalars()
        .all()
    )


def search(
    session: Session, *, status: str | None, limit: int, offset: int = 0
) -> Sequence[Application]:
    statement = select(Application)
    if status:
        statement = statement.where(Application.status == status)
    return (
        session.execute(
            statement.order_by(Application.created_at.desc()).limit(limit).offset(offset)
        )
        .scalars()
        .all()
    )


def status_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Application.status, func.count()).group_by(Application.status))
    return {str(status): int(count) for status, count in rows}


def open_duplicate_tracking_numbers(
    session: Session, *, exclude_id: str, id_number_token: str, uscc: str | None, limit: int = 10
) -> list[str]:
    """Tracking numbers of other open applications with the same ID number or credit code."""
    conditions = [Application.id_number_token == id_number_token]
    if uscc:
        conditions.append(Application.uscc == uscc)
    rows = session.execute(
        select(Application.tracking_number)
        .where(
            Application.id != exclude_id,
            Application.status.in_([str(s) for s in OPEN_STATUSES]),
            or_(*conditions),
        )
        .order_by(Application.created_at)
        .limit(limit)
    ).scalars()
    return list(rows)


def active_merchant_mids(
    session: Session, *, id_number_token: str, uscc: str | None, limit: int = 10
) -> list[str]:
    """MIDs of merchants, not closed, with the same ID number or credit code."""
    conditions = [Merchant.id_number_token == id_number_token]
    if uscc:
        conditions.append(Merchant.uscc == uscc)
    rows = session.execute(
        select(Merchant.mid)
        .where(Merchant.status != str(MerchantStatus.CLOSED), or_(*conditions))
        .order_by(Merchant.id)
        .limit(limit)
    ).scalars()
    return list(rows)


def blacklist_hits(session: Session, tokens: Sequence[tuple[str, str]]) -> Sequence[BlacklistEntry]:
    """Active entries matching any (kind, token) pair."""
    if not tokens:
        return []
    return (
        session.execute(
            select(BlacklistEntry).where(
                BlacklistEntry.removed_at.is_(None),
                or_(
                    *[
                        (BlacklistEntry.kind == k) & (BlacklistEntry.value_token == t)
                        for k, t in tokens
                    ]
                ),
            )
        )
        .scalars()
        .all()
    )


def blacklist(
    session: Session, *, include_removed: bool, limit: int, offset: int = 0
) -> Sequence[BlacklistEntry]:
    statement = select(BlacklistEntry)
    if not include_removed:
        statement = statement.where(BlacklistEntry.removed_at.is_(None))
    return (
        session.execute(statement.order_by(BlacklistEntry.id.desc()).limit(limit).offset(offset))
        .scalars()
        .all()
    )


def blacklist_entry(session: Session, entry_id: int) -> BlacklistEntry | None:
    return session.get(BlacklistEntry, entry_id)


def merchant(session: Session, merchant_id: int) -> Merchant | None:
    return session.get(Merchant, merchant_id)


def merchant_by_mid(session: Session, mid: str) -> Merchant | None:
    return session.execute(select(Merchant).where(Merchant.mid == mid)).scalar_one_or_none()


def merchant_for_application(session: Session, application_id: str) -> Merchant | None:
    return session.execute(
        select(Merchant).where(Merchant.application_id == application_id)
    ).scalar_one_or_none()


def merchants(session: Session, limit: int, offset: int = 0) -> Sequence[Merchant]:
    return (
        session.execute(select(Merchant).order_by(Merchant.id.desc()).limit(limit).offset(offset))
        .scalars()
        .all()
    )


def unflagged_breaches(session: Session, today: object, limit: int) -> Sequence[Application]:
    return (
        session.execute(
            select(Application)
            .where(
                Application.status.in_(
                    [str(ApplicationStatus.SUBMITTED), str(ApplicationStatus.UNDER_REVIEW)]
                ),
                Application.sla_breach_date < today,
                Application.sla_breach_reported_at.is_(None),
            )
            .order_by(Application.sla_breach_date)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def awaiting_checks(session: Session, limit: int) -> Sequence[Application]:
    """Applications with a queued check run, oldest request first. Rows are locked;
    on PostgreSQL a second worker skips them instead of waiting."""
    return (
        session.execute(
            select(Application)
            .where(Application.checks_requested_at.is_not(None))
            .order_by(Application.checks_requested_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
