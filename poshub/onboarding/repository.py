"""Every onboarding query.

The statements of the applying paths (create, upload, submit, the checks worker) are
built once, below, and write with plain INSERT/UPDATE statements rather than ORM
flushes: see ``poshub.core.db.table_of`` for why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from poshub.core.db import table_of
from poshub.onboarding.models import (
    AccessCodeFailure,
    Application,
    ApplicationCheck,
    ApplicationConsent,
    ApplicationEditor,
    ApplicationEvent,
    ApplicationOverride,
    BeneficialOwner,
    BlacklistEntry,
    Document,
    MobileChallenge,
    TerminalRequest,
)
from poshub.onboarding.states import OPEN_STATUSES, REVIEW_CLOCK_STATUSES, ApplicationStatus

_applications = table_of(Application)
_terminals = table_of(TerminalRequest)
_documents = table_of(Document)
_checks = table_of(ApplicationCheck)
_events = table_of(ApplicationEvent)
_blacklist = table_of(BlacklistEntry)

_BY_ACCESS = select(Application).where(
    Application.id == bindparam("id"), Application.access_token_hash == bindparam("token_hash")
)
_INSERT_APPLICATION = insert(_applications)
_UPDATE_APPLICATION = update(_applications).where(_applications.c.id == bindparam("_id"))
_UPDATE_APPLICATION_IN_STATUS = update(_applications).where(
    _applications.c.id == bindparam("_id"), _applications.c.status == bindparam("_status")
)
_INSERT_TERMINALS = insert(_terminals)
_INSERT_DOCUMENT = insert(_documents)
_DOCUMENT_COUNT = (
    select(func.count())
    .select_from(_documents)
    .where(_documents.c.application_id == bindparam("application_id"))
)
_DOCUMENT_KINDS = (
    select(_documents.c.kind)
    .where(_documents.c.application_id == bindparam("application_id"))
    .distinct()
)
_INSERT_CHECKS = insert(_checks)
_INSERT_EVENT = insert(_events)


# --- Writes of the applying paths ---------------------------------------------------


def insert_application(session: Session, application: Application) -> None:
    """Store a new application with one INSERT and attach the object as persistent.

    ``application`` must have every column set (None where empty): the object then
    counts as fully loaded and later changes to it are flushed as usual, without the
    ORM's insert flush or a read-back of the row just written.
    """
    values = {
        column.key: getattr(application, column.key)
        for column in _applications.columns
        if getattr(application, column.key) is not None
    }
    # Absent keys, not None values: a JSON column would store None as JSON 'null'.
    session.execute(_INSERT_APPLICATION, values)
    make_transient_to_detached(application)
    session.add(application)


def update_application(session: Session, application: Application, **values: Any) -> None:
    """One UPDATE of the application's row, applied to the loaded object as its
    committed state, so that the ORM does not write the same values again."""
    session.execute(_UPDATE_APPLICATION, {"_id": application.id, **values})
    for key, value in values.items():
        set_committed_value(application, key, value)


def update_application_in_status(
    session: Session, application: Application, expected_status: str, **values: Any
) -> bool:
    """:func:`update_application`, but only if the row is still in ``expected_status``
    (it may have been read in an earlier transaction); False when it was not."""
    result = session.execute(
        _UPDATE_APPLICATION_IN_STATUS,
        {"_id": application.id, "_status": expected_status, **values},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    for key, value in values.items():
        set_committed_value(application, key, value)
    return True


def status_of(session: Session, application_id: str) -> str | None:
    return session.execute(
        select(Application.status).where(Application.id == application_id)
    ).scalar_one_or_none()


def replace_terminal_lines(
    session: Session, application_id: str, lines: Iterable[tuple[str, int]], *, new: bool
) -> None:
    """The application's terminal lines, as (model code, count); ``new``: none yet."""
    if not new:
        # ORM-enabled, so that lines already loaded in the session are removed from it
        # too (SQLite may hand a new line the id of a deleted one).
        session.execute(
            delete(TerminalRequest).where(TerminalRequest.application_id == application_id)
        )
    rows = [
        {"application_id": application_id, "model_code": code, "count": count}
        for code, count in lines
    ]
    if rows:
        session.execute(_INSERT_TERMINALS, rows)


def insert_document(session: Session, values: Mapping[str, Any]) -> None:
    session.execute(_INSERT_DOCUMENT, dict(values))


def insert_event(session: Session, values: Mapping[str, Any]) -> None:
    session.execute(_INSERT_EVENT, dict(values))


def insert_checks(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Check rows of one or many applications, in one executemany."""
    if rows:
        session.execute(_INSERT_CHECKS, [dict(row) for row in rows])


def finish_check_runs(session: Session, runs: Sequence[tuple[Application, int]]) -> None:
    """Record each application's new check run number and take it off the worker's
    queue: one executemany UPDATE for the whole batch."""
    if not runs:
        return
    session.execute(
        _UPDATE_APPLICATION,
        [
            {"_id": application.id, "check_run": run, "checks_requested_at": None}
            for application, run in runs
        ],
    )
    for application, run in runs:
        set_committed_value(application, "check_run", run)
        set_committed_value(application, "checks_requested_at", None)


# --- Reads --------------------------------------------------------------------------


def get(session: Session, application_id: str, *, for_update: bool = False) -> Application | None:
    statement = select(Application).where(Application.id == application_id)
    if for_update:
        statement = statement.with_for_update()
    return session.execute(statement).scalar_one_or_none()


def by_access(session: Session, application_id: str, token_hash: str) -> Application | None:
    return session.execute(
        _BY_ACCESS, {"id": application_id, "token_hash": token_hash}
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
    return set(session.execute(_DOCUMENT_KINDS, {"application_id": application_id}).scalars())


def document_count(session: Session, application_id: str) -> int:
    count: int = session.execute(_DOCUMENT_COUNT, {"application_id": application_id}).scalar_one()
    return count


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


# --- The automated checks, set-based: one query per kind of lookup for a whole batch ---


def terminal_totals(session: Session, application_ids: Collection[str]) -> dict[str, int]:
    """Terminals requested per application (absent: none)."""
    if not application_ids:
        return {}
    rows = session.execute(
        select(_terminals.c.application_id, func.sum(_terminals.c.count))
        .where(_terminals.c.application_id.in_(list(application_ids)))
        .group_by(_terminals.c.application_id)
    )
    return {application_id: int(total) for application_id, total in rows}


def document_kinds_of(session: Session, application_ids: Collection[str]) -> dict[str, set[str]]:
    """Kinds of document uploaded per application (absent: none)."""
    kinds: dict[str, set[str]] = {}
    if application_ids:
        rows = session.execute(
            select(_documents.c.application_id, _documents.c.kind)
            .where(_documents.c.application_id.in_(list(application_ids)))
            .distinct()
        )
        for application_id, kind in rows:
            kinds.setdefault(application_id, set()).add(kind)
    return kinds


def open_applications_matching(
    session: Session, id_number_tokens: Collection[str], usccs: Collection[str]
) -> Sequence[tuple[str, str, str, str | None]]:
    """(id, tracking number, ID number token, credit code) of open applications with one
    of these ID numbers or credit codes, oldest first."""
    if not id_number_tokens and not usccs:
        return []
    a = _applications.c
    rows = session.execute(
        select(a.id, a.tracking_number, a.id_number_token, a.uscc)
        .where(
            a.status.in_([str(s) for s in OPEN_STATUSES]),
            or_(a.id_number_token.in_(list(id_number_tokens)), a.uscc.in_(list(usccs))),
        )
        .order_by(a.created_at)
    )
    return [(r.id, r.tracking_number, r.id_number_token, r.uscc) for r in rows]


def blacklist_matching(session: Session, tokens: Collection[str]) -> Sequence[tuple[str, str, str]]:
    """(kind, value token, reason) of active blacklist entries with one of these tokens,
    in the order they were added."""
    if not tokens:
        return []
    b = _blacklist.c
    rows = session.execute(
        select(b.kind, b.value_token, b.reason)
        .where(b.removed_at.is_(None), b.value_token.in_(list(tokens)))
        .order_by(b.id)
    )
    return [(r.kind, r.value_token, r.reason) for r in rows]


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


def unflagged_breaches(session: Session, today: object, limit: int) -> Sequence[Application]:
    return (
        session.execute(
            select(Application)
            .where(
                Application.status.in_([str(s) for s in REVIEW_CLOCK_STATUSES]),
                Application.sla_breach_date < today,
                Application.sla_breach_reported_at.is_(None),
            )
            .order_by(Application.sla_breach_date)
            .limit(limit)
        )
        .scalars()
        .all()
    )


_CHECKS_QUEUED = select(
    select(_applications.c.id).where(_applications.c.checks_requested_at.is_not(None)).exists()
)


def checks_queued(session: Session) -> bool:
    """Whether any application waits for its automated checks (uses the index)."""
    return bool(session.execute(_CHECKS_QUEUED).scalar())


def queued_for_checks(session: Session, limit: int) -> Sequence[Application]:
    """Applications with a queued check run, oldest request first, read without locks
    (the worker computes their checks before it writes anything)."""
    return (
        session.execute(
            select(Application)
            .where(Application.checks_requested_at.is_not(None))
            .order_by(Application.checks_requested_at)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def claim_check_runs(session: Session, seen: Mapping[str, tuple[int, dt.datetime]]) -> set[str]:
    """Of the applications whose (check run, request time) were ``seen`` when their checks
    were computed, those still queued exactly so: locked for this transaction (on
    PostgreSQL another worker's claim is skipped, not waited for). An application whose
    checks were requested again, or already run, meanwhile is left for the next pass."""
    if not seen:
        return set()
    rows = session.execute(
        select(Application.id, Application.check_run, Application.checks_requested_at)
        .where(Application.id.in_(sorted(seen)))
        .with_for_update(skip_locked=True)
    ).all()
    return {
        row.id
        for row in rows
        if row.checks_requested_at is not None
        and (row.check_run, row.checks_requested_at) == seen[row.id]
    }


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


# --- Consents (poshub/onboarding/consent.py) -----------------------------------------


def insert_consents(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Grant or withdrawal rows; never updated (the evidence of what was agreed)."""
    if rows:
        session.execute(insert(table_of(ApplicationConsent)), [dict(row) for row in rows])


def consents_of(
    session: Session, application_ids: Collection[str]
) -> dict[str, list[ApplicationConsent]]:
    """Consent rows per application, oldest first (absent: none)."""
    found: dict[str, list[ApplicationConsent]] = {}
    if application_ids:
        rows = session.execute(
            select(ApplicationConsent)
            .where(ApplicationConsent.application_id.in_(list(application_ids)))
            .order_by(ApplicationConsent.at, ApplicationConsent.id)
        ).scalars()
        for row in rows:
            found.setdefault(row.application_id, []).append(row)
    return found


# --- Review decisions: site surveys, override requests -------------------------------


def site_surveys(session: Session, application_id: str) -> list[tuple[str | None, str | None]]:
    """(outcome, site surveyed) of the application's site-survey records, oldest first."""
    rows = session.execute(
        select(ApplicationEvent.data)
        .where(
            ApplicationEvent.application_id == application_id,
            ApplicationEvent.kind == "site_survey",
        )
        .order_by(ApplicationEvent.id)
    ).scalars()
    return [(data.get("outcome"), data.get("site")) for data in rows]


def insert_override(session: Session, row: ApplicationOverride) -> ApplicationOverride:
    session.add(row)
    session.flush()
    return row


def override(
    session: Session, override_id: int, *, for_update: bool = False
) -> ApplicationOverride | None:
    statement = select(ApplicationOverride).where(ApplicationOverride.id == override_id)
    if for_update:
        statement = statement.with_for_update()
    return session.execute(statement).scalar_one_or_none()


def pending_override(session: Session, application_id: str) -> ApplicationOverride | None:
    return session.execute(
        select(ApplicationOverride)
        .where(
            ApplicationOverride.application_id == application_id,
            ApplicationOverride.status == "pending",
        )
        .order_by(ApplicationOverride.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def pending_overrides(
    session: Session, limit: int, offset: int = 0
) -> Sequence[ApplicationOverride]:
    """Override requests waiting for a risk officer, oldest first."""
    return (
        session.execute(
            select(ApplicationOverride)
            .where(ApplicationOverride.status == "pending")
            .order_by(ApplicationOverride.requested_at, ApplicationOverride.id)
            .limit(limit)
            .offset(offset)
        )
        .scalars()
        .all()
    )


# --- Beneficial owners (compliance) ----------------------------------------------------


def replace_beneficial_owners(
    session: Session, application_id: str, rows: Iterable[Mapping[str, Any]]
) -> None:
    """The application's beneficial owners, in the order given (each row a BeneficialOwner's
    columns other than ids)."""
    session.execute(delete(BeneficialOwner).where(BeneficialOwner.application_id == application_id))
    values = [
        {**row, "application_id": application_id, "position": position}
        for position, row in enumerate(rows)
    ]
    if values:
        session.execute(insert(BeneficialOwner), values)


def beneficial_owners(session: Session, application_id: str) -> Sequence[BeneficialOwner]:
    return (
        session.execute(
            select(BeneficialOwner)
            .where(BeneficialOwner.application_id == application_id)
            .order_by(BeneficialOwner.position)
        )
        .scalars()
        .all()
    )


def beneficial_owner_counts(session: Session, application_ids: Collection[str]) -> dict[str, int]:
    """Beneficial owners named per application (absent: none)."""
    if not application_ids:
        return {}
    rows = session.execute(
        select(BeneficialOwner.application_id, func.count())
        .where(BeneficialOwner.application_id.in_(list(application_ids)))
        .group_by(BeneficialOwner.application_id)
    )
    return {str(application_id): int(count) for application_id, count in rows}


# --- Mobile proof and applicant rate limits (onboarding/mobile.py) ----------------------


def applications_started_since(
    session: Session, since: dt.datetime, *, mobile: str | None = None, source: str | None = None
) -> int:
    """Applications started since ``since`` with this mobile number or from this address."""
    query = select(func.count()).select_from(Application).where(Application.created_at >= since)
    if mobile is not None:
        query = query.where(Application.mobile == mobile)
    if source is not None:
        query = query.where(Application.source_address == source)
    return int(session.execute(query).scalar_one())


def mobile_codes_sent_since(
    session: Session, since: dt.datetime, *, mobile: str | None = None, source: str | None = None
) -> int:
    query = (
        select(func.count()).select_from(MobileChallenge).where(MobileChallenge.sent_at >= since)
    )
    if mobile is not None:
        query = query.where(MobileChallenge.mobile == mobile)
    if source is not None:
        query = query.where(MobileChallenge.source_address == source)
    return int(session.execute(query).scalar_one())


def latest_mobile_challenge(session: Session, application_id: str) -> MobileChallenge | None:
    return session.execute(
        select(MobileChallenge)
        .where(MobileChallenge.application_id == application_id)
        .order_by(MobileChallenge.sent_at.desc(), MobileChallenge.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def insert_mobile_challenge(session: Session, challenge: MobileChallenge) -> None:
    session.add(challenge)
    session.flush()


def access_code_failures_since(session: Session, source: str, since: dt.datetime) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(AccessCodeFailure)
            .where(AccessCodeFailure.source_address == source, AccessCodeFailure.at >= since)
        ).scalar_one()
    )


def insert_access_code_failure(
    session: Session, source: str, at: dt.datetime, *, forget_before: dt.datetime
) -> None:
    """Count one failure; this address's failures older than ``forget_before`` go."""
    session.execute(
        delete(AccessCodeFailure).where(
            AccessCodeFailure.source_address == source, AccessCodeFailure.at < forget_before
        )
    )
    session.execute(insert(AccessCodeFailure), {"source_address": source, "at": at})
