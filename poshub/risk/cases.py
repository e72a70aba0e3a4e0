"""Alerts, cases, freezes and blocked cards (R19): the risk officer's side of risk control.

The engine raises ``risk_alerts`` rows; here a risk officer works them:

Alert queue
    Newest first, filtered by status, rule, MID, TID and business dates, one bounded
    page at a time. An open alert is dismissed with a reason, or taken into a case.

Case (``RC-YYYYMMDD-NNNN``)
    Opened from one or more open alerts of one merchant, or by hand for a MID or a TID.
    It holds the evidence: alerts and transactions (``risk_case_items``, by RRN, which
    must be in the journal), notes and attachments (screened as applicants' documents
    are, then stored encrypted in the content store). Every action on a case is a
    ``risk_case_events`` row *and* an audit entry (``risk.*``), in the caller's
    transaction; evidence is never deleted (database triggers refuse it) and nothing here
    issues a DELETE. A closed case is read-only (409).

Freezes and holds (``risk_freezes``)
    Always made from a case, which keeps the reason and the evidence: *freeze merchant*
    (new authorizations declined, settlement held), *freeze terminal* (its authorizations
    declined), *hold settlement* of the merchant or of one of its transactions. A row is
    in force until released, with a reason, from a case about the same merchant (a hold
    the engine placed on its own, or one kept when an earlier case closed, is released
    from the case opened about it).

Closing
    With an outcome (:class:`CaseOutcome`). Freezes the case made and still in force must
    be released first, or kept on purpose (``keep_freezes``: a terminated merchant stays
    frozen); a false positive cannot keep any.

Suspicious-transaction report (可疑交易报告)
    Per case, as CSV or PDF (``poshub.risk.report``), for the anti-money-laundering report
    to the PBOC: the reporting institution, the case, the subject merchant, the grounds
    (rule hits and notes), then the transactions with masked card numbers. Exporting is a
    case event and audited.

Blocked cards
    A card is blocked from a transaction (by RRN: its token and masked number are taken
    from the journal, so staff never type a card number), with a reason; released later.

Never commits: the web layer's unit of work does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from sqlalchemy.orm import Session

from poshub.core import audit, ids, limits
from poshub.core.clock import SHANGHAI, business_date, local_time
from poshub.core.errors import N_, Conflict, FieldError, NotFound, ValidationFailed
from poshub.core.i18n import Translator
from poshub.core.money import format_fen
from poshub.core.sequences import take_next
from poshub.core.storage import ContentStore
from poshub.core.text import CONTROL_ERROR, CONTROL_MESSAGE, refused_character
from poshub.gateway.models import GatewayTransaction
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant
from poshub.onboarding.documents import Rejection, safe_file_name, screen
from poshub.risk import report, repository
from poshub.risk.models import (
    AlertStatus,
    BlockedCard,
    CaseStatus,
    FreezeScope,
    RiskAlert,
    RiskCase,
    RiskCaseAttachment,
    RiskCaseEvent,
    RiskCaseItem,
    RiskFreeze,
)
from poshub.risk.schemas import ALERT_CODE_LABELS, RuleCode
from poshub.staff.models import StaffUser
from poshub.staff.service import Principal
from poshub.terminals import repository as terminal_repository


class CaseOutcome(StrEnum):
    """How a case ends."""

    FRAUD_CONFIRMED = "fraud_confirmed"
    FALSE_POSITIVE = "false_positive"
    """Nothing wrong: no freeze may outlive the case."""
    MERCHANT_WARNED = "merchant_warned"
    MERCHANT_TERMINATED = "merchant_terminated"
    REPORTED = "reported"
    """A suspicious-transaction report was filed with the regulator."""


OUTCOME_LABELS: Final[dict[str, str]] = {
    CaseOutcome.FRAUD_CONFIRMED: N_("Fraud confirmed"),
    CaseOutcome.FALSE_POSITIVE: N_("False positive"),
    CaseOutcome.MERCHANT_WARNED: N_("Merchant warned"),
    CaseOutcome.MERCHANT_TERMINATED: N_("Merchant terminated"),
    CaseOutcome.REPORTED: N_("Reported to the regulator"),
}
CASE_STATUS_NAMES: Final[dict[str, str]] = {
    CaseStatus.OPEN: N_("Under investigation"),
    CaseStatus.CLOSED: N_("Concluded"),
}


class CaseEventAction(StrEnum):
    OPENED = "opened"
    ALERT_LINKED = "alert_linked"
    TRANSACTION_LINKED = "transaction_linked"
    NOTE_ADDED = "note_added"
    ATTACHMENT_ADDED = "attachment_added"
    MERCHANT_FROZEN = "merchant_frozen"
    TERMINAL_FROZEN = "terminal_frozen"
    SETTLEMENT_HELD = "settlement_held"
    TRANSACTION_HELD = "transaction_held"
    RELEASED = "released"
    CARD_BLOCKED = "card_blocked"
    ASSIGNED = "assigned"
    REPORT_EXPORTED = "report_exported"
    CLOSED = "closed"


class ItemKind(StrEnum):
    TRANSACTION = "transaction"
    ALERT = "alert"


REASON_LENGTH_MAX: Final = 500
"""A dismissal, freeze, hold, release or block reason (the columns' length)."""
NOTE_LENGTH_MAX: Final = 2000
TITLE_LENGTH_MAX: Final = 200
ALERTS_PER_ACTION_MAX: Final = 100
"""Alerts one dismissal or one new case takes at once (a page of the queue)."""
EVIDENCE_MAX: Final = 500
"""Items (alerts and transactions) one case holds: a case is read by a person."""
ATTACHMENTS_PER_CASE_MAX: Final = 40
EVENTS_SHOWN_MAX: Final = 500
FREEZES_SHOWN_MAX: Final = 200
LOCATION_TRAIL_MAX: Final = 50
BLOCKED_CARDS_SHOWN_MAX: Final = limits.PAGE_SIZE_MAX
CASE_PAGES_MAX: Final = 500
_RRN: Final = re.compile(r"[0-9]{12}")
_MID: Final = re.compile(r"[0-9]{15}")
_TID: Final = re.compile(r"[0-9A-Za-z]{8}")
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

CASE_NOT_FOUND: Final = N_("No risk case has this reference.")
ALERT_NOT_FOUND: Final = N_("No risk alert has this number.")
CASE_CLOSED: Final = N_("Case {reference} is closed: its record can no longer change.")


# --- Small checks ------------------------------------------------------------------------


def _invalid(field_name: str, code: str, message: str, **params: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field_name, code, message, params)])


def _text(field_name: str, value: str | None, maximum: int) -> str:
    """A required free text: stripped, not blank, at most ``maximum`` characters."""
    text = (value or "").strip()
    if not text:
        raise _invalid(field_name, "missing", N_("This field is required."))
    if len(text) > maximum:
        raise _invalid(
            field_name,
            "string_too_long",
            N_("Must have at most {max_length} characters."),
            max_length=str(maximum),
        )
    if refused_character(text, multiline=True) is not None:
        raise _invalid(field_name, CONTROL_ERROR, CONTROL_MESSAGE)
    return text


def _rrn(value: str, field_name: str = "rrn") -> str:
    rrn = value.strip()
    if not _RRN.fullmatch(rrn):
        raise _invalid(
            field_name, "rrn_format", N_("An RRN (retrieval reference number) is 12 digits.")
        )
    return rrn


def _transaction(session: Session, rrn: str, field_name: str = "rrn") -> GatewayTransaction:
    row = repository.transactions_by_rrn(session, [_rrn(rrn, field_name)])
    if not row:
        raise NotFound(N_("No transaction has this RRN."), code="transaction_not_found")
    return row[0]


def _paging(errors: list[FieldError], page: int, page_size: int) -> None:
    """Bounded pages: at most ``CASE_PAGES_MAX`` deep, ``limits.PAGE_SIZE_MAX`` rows."""
    for name, value, maximum in (
        ("page", page, CASE_PAGES_MAX),
        ("page_size", page_size, limits.PAGE_SIZE_MAX),
    ):
        if not 1 <= value <= maximum:
            errors.append(
                FieldError(
                    name,
                    "range",
                    N_("Must be between {min} and {max}."),
                    {"min": "1", "max": str(maximum)},
                )
            )


def _enum_error(name: str, expected: Sequence[str]) -> FieldError:
    return FieldError(
        name, "enum", N_("Must be one of: {expected}."), {"expected": ", ".join(expected)}
    )


# --- Alerts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertFilter:
    status: AlertStatus | None = AlertStatus.OPEN
    rule_code: str | None = None
    """A rule's code, or another alert code (``schemas.ALERT_CODE_LABELS``)."""
    mid: str | None = None
    tid: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    page: int = 1
    page_size: int = limits.PAGE_SIZE_DEFAULT


def _blank(value: str | None) -> str | None:
    return (value or "").strip() or None


def _mid_filter(errors: list[FieldError], value: str | None) -> str | None:
    mid = _blank(value)
    if mid is not None and not _MID.fullmatch(mid):
        errors.append(FieldError("mid", "mid_format", N_("A MID is 15 digits.")))
    return mid


def _date_filter(errors: list[FieldError], name: str, value: str | None) -> dt.date | None:
    text = _blank(value)
    if text is None:
        return None
    if _DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    errors.append(FieldError(name, "date_format", N_("Must be a date written as YYYY-MM-DD.")))
    return None


def parse_alert_filter(
    *,
    status: str | None = None,
    rule: str | None = None,
    mid: str | None = None,
    tid: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    page: int = 1,
    page_size: int = limits.PAGE_SIZE_DEFAULT,
) -> AlertFilter:
    """The queue's filters as typed (blank is "any"; no status is the open alerts, ``all``
    every status), or 422 naming each bad one."""
    errors: list[FieldError] = []
    status_value: AlertStatus | None = AlertStatus.OPEN
    if (text := _blank(status)) == "all":
        status_value = None
    elif text is not None:
        if text in AlertStatus.__members__.values():
            status_value = AlertStatus(text)
        else:
            errors.append(_enum_error("status", [*AlertStatus, "all"]))
    rule_code = _blank(rule)
    if rule_code is not None and rule_code not in ALERT_CODE_LABELS:
        errors.append(_enum_error("rule", list(ALERT_CODE_LABELS)))
    mid_value = _mid_filter(errors, mid)
    tid_value = _blank(tid)
    if tid_value is not None and not _TID.fullmatch(tid_value):
        errors.append(FieldError("tid", "tid_format", N_("A TID is 8 letters or digits.")))
    start = _date_filter(errors, "date_from", date_from)
    end = _date_filter(errors, "date_to", date_to)
    if start and end and end < start:
        errors.append(
            FieldError("date_to", "date_order", N_("The end date is before the start date."))
        )
    _paging(errors, page, page_size)
    if errors:
        raise ValidationFailed(errors)
    return AlertFilter(status_value, rule_code, mid_value, tid_value, start, end, page, page_size)


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight in Beijing at the start of business date ``day``, in UTC."""
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI).astimezone(dt.UTC)


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    rows: Sequence[T]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < min(self.pages, CASE_PAGES_MAX)


def alert_queue(session: Session, criteria: AlertFilter) -> Page[RiskAlert]:
    """One page of the alerts matching ``criteria``, newest first."""
    rows, total = repository.alert_page(
        session,
        status=criteria.status.value if criteria.status else None,
        rule_code=criteria.rule_code,
        mid=criteria.mid,
        tid=criteria.tid,
        start=_day_start(criteria.date_from) if criteria.date_from else None,
        end=_day_start(criteria.date_to + dt.timedelta(days=1)) if criteria.date_to else None,
        limit=criteria.page_size,
        offset=(criteria.page - 1) * criteria.page_size,
    )
    return Page(rows, total, criteria.page, criteria.page_size)


def get_alert(session: Session, alert_id: int, *, for_update: bool = False) -> RiskAlert:
    found = repository.alert(session, alert_id, for_update=for_update)
    if found is None:
        raise NotFound(ALERT_NOT_FOUND, code="alert_not_found")
    return found


def merchant_names(session: Session, mids: Collection[str]) -> dict[str, str]:
    """Business names by MID (the queue shows names, not numbers)."""
    return repository.merchant_names(session, mids)


@dataclass(frozen=True, slots=True)
class Dismissal:
    by: str
    at: dt.datetime
    reason: str


def dismissals(session: Session, alert_ids: Collection[int]) -> dict[int, Dismissal]:
    """Who dismissed each of ``alert_ids``, when and why (from its audit entry: the
    alert row keeps the engine's values, the audit log the officer's decision)."""
    return {
        alert_id: Dismissal(entry.actor_id, entry.at, str(entry.details.get("reason", "")))
        for alert_id, entry in repository.dismissals(session, alert_ids).items()
    }


def _open_alerts(session: Session, alert_ids: Collection[int]) -> list[RiskAlert]:
    """The alerts named, locked, all of them open; 422 for none or too many, 404 for one
    that does not exist, 409 for one already in a case or dismissed."""
    wanted = sorted(set(alert_ids))
    if not wanted:
        raise _invalid("alert_ids", "missing", N_("Choose at least one alert."))
    if len(wanted) > ALERTS_PER_ACTION_MAX:
        raise _invalid(
            "alert_ids",
            "too_long",
            N_("Must have at most {max_length} entries."),
            max_length=str(ALERTS_PER_ACTION_MAX),
        )
    found = list(repository.alerts_by_id(session, wanted, for_update=True))
    if len(found) != len(wanted):
        raise NotFound(ALERT_NOT_FOUND, code="alert_not_found")
    for row in found:
        if row.status != AlertStatus.OPEN:
            raise Conflict(
                N_("Alert {id} is no longer open: it is in a case or dismissed."),
                code="alert_not_open",
                id=str(row.id),
            )
    return found


def dismiss_alerts(
    session: Session,
    principal: Principal,
    alert_ids: Collection[int],
    *,
    reason: str,
    now: dt.datetime,
) -> list[RiskAlert]:
    """Dismiss open alerts with a reason (a false alarm the officer checked)."""
    text = _text("reason", reason, REASON_LENGTH_MAX)
    alerts = _open_alerts(session, alert_ids)
    for row in alerts:
        row.status = AlertStatus.DISMISSED.value
    audit.record_many(
        session,
        [
            audit.Action(
                principal.actor,
                "risk.alert_dismissed",
                "risk_alert",
                str(row.id),
                {"rule": row.rule_code, "mid": row.mid, "tid": row.tid, "reason": text},
            )
            for row in alerts
        ],
    )
    return alerts


# --- Cases -----------------------------------------------------------------------------------


def get_case(session: Session, reference: str, *, for_update: bool = False) -> RiskCase:
    found = repository.case_by_reference(session, reference.strip(), for_update=for_update)
    if found is None:
        raise NotFound(CASE_NOT_FOUND, code="case_not_found")
    return found


def open_case_for_update(session: Session, reference: str) -> RiskCase:
    """The case, locked, and still open (409 once closed): what every action starts from."""
    case = get_case(session, reference, for_update=True)
    if case.status != CaseStatus.OPEN:
        raise Conflict(CASE_CLOSED, code="case_closed", reference=case.reference)
    return case


def _event(
    session: Session,
    principal: Principal,
    case: RiskCase,
    action: CaseEventAction,
    audit_action: str,
    *,
    now: dt.datetime,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> RiskCaseEvent:
    """Record one action on a case: its event row and its audit entry, together."""
    values = detail or {}
    event = RiskCaseEvent(
        case_id=case.id,
        action=action.value,
        actor=principal.username,
        note=note,
        detail=values,
        at=now,
    )
    session.add(event)
    audit.record(
        session,
        principal.actor,
        audit_action,
        "risk_case",
        case.reference,
        {**values, "mid": case.mid, **({"note": note} if note else {})},
    )
    return event


def _link(
    session: Session,
    principal: Principal,
    case: RiskCase,
    kind: ItemKind,
    ref: str,
    now: dt.datetime,
) -> RiskCaseItem:
    if repository.case_item_count(session, case.id) >= EVIDENCE_MAX:
        raise Conflict(
            N_("A case holds at most {max} pieces of evidence."),
            code="case_evidence_full",
            max=str(EVIDENCE_MAX),
        )
    item = RiskCaseItem(
        case_id=case.id, kind=kind.value, ref=ref, added_by=principal.username, added_at=now
    )
    session.add(item)
    return item


def _take_alerts(
    session: Session,
    principal: Principal,
    case: RiskCase,
    alerts: Sequence[RiskAlert],
    now: dt.datetime,
) -> None:
    for row in alerts:
        row.status = AlertStatus.IN_CASE.value
        row.case_id = case.id
        _link(session, principal, case, ItemKind.ALERT, str(row.id), now)
        if (
            row.rrn
            and repository.case_item(session, case.id, ItemKind.TRANSACTION, row.rrn) is None
        ) and repository.transactions_by_rrn(session, [row.rrn]):
            _link(session, principal, case, ItemKind.TRANSACTION, row.rrn, now)


def _subject(session: Session, mid: str | None, tid: str | None) -> tuple[Merchant, str | None]:
    """The merchant (and terminal) a case by hand is about; 422 naming the field."""
    tid = (tid or "").strip() or None
    mid = (mid or "").strip() or None
    if tid is not None:
        terminal = (
            terminal_repository.terminal_by_tid(session, tid) if _TID.fullmatch(tid) else None
        )
        if terminal is None:
            raise _invalid("tid", "tid_unknown", N_("No terminal has this TID."))
        merchant = merchant_repository.get(session, terminal.merchant_id)
        if merchant is None or (mid is not None and merchant.mid != mid):
            raise _invalid("tid", "tid_other_merchant", N_("This terminal is another merchant's."))
        return merchant, tid
    if mid is None:
        raise _invalid("mid", "missing", N_("Give the MID (or the TID) the case is about."))
    merchant = merchant_repository.by_mid(session, mid) if _MID.fullmatch(mid) else None
    if merchant is None:
        raise _invalid("mid", "mid_unknown", N_("No merchant has this MID."))
    return merchant, None


def open_case(
    session: Session,
    principal: Principal,
    *,
    title: str,
    now: dt.datetime,
    alert_ids: Collection[int] = (),
    mid: str | None = None,
    tid: str | None = None,
    note: str | None = None,
) -> RiskCase:
    """A new case from open alerts of one merchant (they become its evidence, with their
    transactions), or by hand for a MID or a TID."""
    title_text = _text("title", title, TITLE_LENGTH_MAX)
    note_text = _text("note", note, NOTE_LENGTH_MAX) if (note or "").strip() else None
    alerts: list[RiskAlert] = []
    if alert_ids:
        alerts = _open_alerts(session, alert_ids)
        mids = {row.mid for row in alerts}
        if len(mids) != 1 or None in mids:
            raise _invalid(
                "alert_ids",
                "alerts_mixed",
                N_("A case is about one merchant: choose alerts of one merchant."),
            )
        tids = {row.tid for row in alerts if row.tid}
        case_mid: str = alerts[0].mid or ""
        case_tid = next(iter(tids)) if len(tids) == 1 else None
    else:
        merchant, case_tid = _subject(session, mid, tid)
        case_mid = merchant.mid
    day = business_date(now)
    sequence = take_next(
        session,
        f"{ids.RISK_CASE_SEQUENCE_NAME}{day:%Y%m%d}",
        maximum=ids.RISK_CASE_SEQUENCE_MAX,
    )
    case = RiskCase(
        reference=ids.make_risk_case_reference(day, sequence),
        mid=case_mid,
        tid=case_tid,
        title=title_text,
        status=CaseStatus.OPEN.value,
        opened_by=principal.username,
        opened_at=now,
        assigned_to=principal.username,
    )
    session.add(case)
    session.flush()
    _event(
        session,
        principal,
        case,
        CaseEventAction.OPENED,
        "risk.case_opened",
        now=now,
        note=note_text,
        detail={
            "title": title_text,
            "tid": case_tid,
            "alert_ids": [row.id for row in alerts],
        },
    )
    _take_alerts(session, principal, case, alerts, now)
    return case


def link_alert(
    session: Session, principal: Principal, case: RiskCase, alert_id: int, *, now: dt.datetime
) -> RiskAlert:
    """Add an open alert of the case's merchant to its evidence."""
    (row,) = _open_alerts(session, [alert_id])
    if row.mid != case.mid:
        raise _invalid("alert_id", "alert_other_merchant", N_("This alert is another merchant's."))
    _take_alerts(session, principal, case, [row], now)
    _event(
        session,
        principal,
        case,
        CaseEventAction.ALERT_LINKED,
        "risk.case_alert_linked",
        now=now,
        detail={"alert_id": row.id, "rule": row.rule_code, "rrn": row.rrn},
    )
    return row


def link_transaction(
    session: Session, principal: Principal, case: RiskCase, rrn: str, *, now: dt.datetime
) -> GatewayTransaction:
    """Add a journal transaction to the evidence (any merchant's: a card's trail may lead
    elsewhere); 422 for a malformed RRN, 404 for one not in the journal, 409 if linked."""
    txn = _transaction(session, rrn)
    if repository.case_item(session, case.id, ItemKind.TRANSACTION, txn.rrn) is not None:
        raise Conflict(
            N_("Transaction {rrn} is already evidence in this case."),
            code="transaction_already_linked",
            rrn=txn.rrn,
        )
    _link(session, principal, case, ItemKind.TRANSACTION, txn.rrn, now)
    _event(
        session,
        principal,
        case,
        CaseEventAction.TRANSACTION_LINKED,
        "risk.case_transaction_linked",
        now=now,
        detail={
            "rrn": txn.rrn,
            "tid": txn.tid,
            "amount_fen": txn.amount_fen,
            "pan_masked": txn.pan_masked,
        },
    )
    return txn


def add_note(
    session: Session, principal: Principal, case: RiskCase, note: str, *, now: dt.datetime
) -> RiskCaseEvent:
    return _event(
        session,
        principal,
        case,
        CaseEventAction.NOTE_ADDED,
        "risk.case_note_added",
        now=now,
        note=_text("note", note, NOTE_LENGTH_MAX),
    )


def add_attachment(
    session: Session,
    store: ContentStore,
    principal: Principal,
    case: RiskCase,
    *,
    file_name: str | None,
    content: bytes,
    now: dt.datetime,
) -> RiskCaseAttachment:
    """Attach a file (JPG, PNG or PDF by its bytes, screened as applicants' documents are:
    images re-encoded without metadata, PDFs walked for active content), stored encrypted.
    A refused file is a 422 naming ``file``."""
    if len(content) > limits.RISK_CASE_ATTACHMENT_BYTES_MAX:
        raise _invalid(
            "file",
            "file.too_large",
            N_("The file is larger than {limit_mb} MB."),
            limit_mb=str(limits.RISK_CASE_ATTACHMENT_BYTES_MAX // (1024 * 1024)),
        )
    if repository.attachment_count(session, case.id) >= ATTACHMENTS_PER_CASE_MAX:
        raise Conflict(
            N_("A case holds at most {max} files."),
            code="case_attachments_full",
            max=str(ATTACHMENTS_PER_CASE_MAX),
        )
    verdict = screen(content)
    if isinstance(verdict, Rejection):
        raise _invalid("file", verdict.code, verdict.message, **verdict.params)
    digest = store.put(verdict.data)
    attachment = RiskCaseAttachment(
        case_id=case.id,
        filename=safe_file_name(file_name),
        media_type=verdict.content_type,
        sha256=digest,
        size_bytes=len(verdict.data),
        uploaded_by=principal.username,
        uploaded_at=now,
    )
    session.add(attachment)
    session.flush()
    _event(
        session,
        principal,
        case,
        CaseEventAction.ATTACHMENT_ADDED,
        "risk.case_attachment_added",
        now=now,
        detail={
            "attachment_id": attachment.id,
            "filename": attachment.filename,
            "media_type": attachment.media_type,
            "sha256": digest,
            "size_bytes": attachment.size_bytes,
        },
    )
    return attachment


def get_attachment(session: Session, case: RiskCase, attachment_id: int) -> RiskCaseAttachment:
    found = repository.case_attachment(session, case.id, attachment_id)
    if found is None:
        raise NotFound(N_("No such file in this case."), code="attachment_not_found")
    return found


def assign(
    session: Session, principal: Principal, case: RiskCase, assignee: str, *, now: dt.datetime
) -> RiskCase:
    """Give the case to a risk officer (by username)."""
    username = (assignee or "").strip()
    officers = {user.username for user in repository.risk_officers(session)}
    if username not in officers:
        raise _invalid(
            "assignee", "assignee_unknown", N_("Choose an active risk officer's username.")
        )
    previous = case.assigned_to
    case.assigned_to = username
    _event(
        session,
        principal,
        case,
        CaseEventAction.ASSIGNED,
        "risk.case_assigned",
        now=now,
        detail={"assignee": username, "previous": previous},
    )
    return case


# --- Freezes and holds -------------------------------------------------------------------------


def freeze_kind(row: RiskFreeze) -> str:
    """What a row does, as one word (labels.FREEZE_KIND_LABELS)."""
    if row.scope == FreezeScope.TERMINAL:
        return "terminal_freeze"
    if row.scope == FreezeScope.TRANSACTION:
        return "transaction_hold"
    return "merchant_freeze" if row.blocks_authorization else "merchant_hold"


def _already(row: RiskFreeze) -> Conflict:
    return Conflict(
        N_("Already in force since {since} (freeze {id}); release it first to change it."),
        code="freeze_in_force",
        since=local_time(row.created_at).strftime("%Y-%m-%d %H:%M"),
        id=str(row.id),
    )


@dataclass(frozen=True, slots=True)
class _FreezeKind:
    scope: FreezeScope
    blocks_authorization: bool
    holds_settlement: bool
    event: CaseEventAction
    audit_action: str


_MERCHANT_FREEZE: Final = _FreezeKind(
    FreezeScope.MERCHANT, True, True, CaseEventAction.MERCHANT_FROZEN, "risk.merchant_frozen"
)
_TERMINAL_FREEZE: Final = _FreezeKind(
    FreezeScope.TERMINAL, True, False, CaseEventAction.TERMINAL_FROZEN, "risk.terminal_frozen"
)
_MERCHANT_HOLD: Final = _FreezeKind(
    FreezeScope.MERCHANT, False, True, CaseEventAction.SETTLEMENT_HELD, "risk.settlement_held"
)
_TRANSACTION_HOLD: Final = _FreezeKind(
    FreezeScope.TRANSACTION, False, True, CaseEventAction.TRANSACTION_HELD, "risk.transaction_held"
)


def _freeze(
    session: Session,
    principal: Principal,
    case: RiskCase,
    kind: _FreezeKind,
    subject: str,
    *,
    reason: str,
    now: dt.datetime,
    detail: dict[str, Any] | None = None,
) -> RiskFreeze:
    """Put one freeze or hold in force and record it on the case; 409 if one of the same
    effect is in force already (a merchant hold does not stop a merchant freeze, which
    also blocks authorizations)."""
    existing = repository.freeze_in_force_on(
        session,
        kind.scope,
        subject,
        blocks_authorization=True if kind is _MERCHANT_FREEZE else None,
    )
    if existing is not None:
        raise _already(existing)
    row = RiskFreeze(
        scope=kind.scope.value,
        subject=subject,
        mid=case.mid,
        blocks_authorization=kind.blocks_authorization,
        holds_settlement=kind.holds_settlement,
        case_id=case.id,
        alert_id=None,
        reason=reason,
        created_by=principal.username,
        created_at=now,
    )
    session.add(row)
    session.flush()
    _event(
        session,
        principal,
        case,
        kind.event,
        kind.audit_action,
        now=now,
        detail={
            "freeze_id": row.id,
            "scope": row.scope,
            "subject": row.subject,
            "blocks_authorization": row.blocks_authorization,
            "holds_settlement": row.holds_settlement,
            "reason": row.reason,
            **(detail or {}),
        },
    )
    return row


def freeze_merchant(
    session: Session, principal: Principal, case: RiskCase, *, reason: str, now: dt.datetime
) -> RiskFreeze:
    """Freeze the case's merchant: the gateway declines its new authorizations (within
    ``limits.RISK_REFRESH_SECONDS``) and settlement pays it nothing until released."""
    text = _text("reason", reason, REASON_LENGTH_MAX)
    return _freeze(session, principal, case, _MERCHANT_FREEZE, case.mid or "", reason=text, now=now)


def freeze_terminal(
    session: Session,
    principal: Principal,
    case: RiskCase,
    *,
    tid: str,
    reason: str,
    now: dt.datetime,
) -> RiskFreeze:
    """Freeze one of the merchant's terminals: its authorizations are declined."""
    text = _text("reason", reason, REASON_LENGTH_MAX)
    _merchant, subject = _subject(session, case.mid, tid or "")
    if subject is None:
        raise _invalid("tid", "missing", N_("This field is required."))
    return _freeze(session, principal, case, _TERMINAL_FREEZE, subject, reason=text, now=now)


def hold_settlement(
    session: Session,
    principal: Principal,
    case: RiskCase,
    *,
    reason: str,
    now: dt.datetime,
    rrn: str | None = None,
) -> RiskFreeze:
    """Hold the merchant's settlement (authorizations go on), or only one of its
    transactions' (``rrn``: it must be this merchant's, in the journal)."""
    text = _text("reason", reason, REASON_LENGTH_MAX)
    if not (rrn or "").strip():
        return _freeze(
            session, principal, case, _MERCHANT_HOLD, case.mid or "", reason=text, now=now
        )
    txn = _transaction(session, rrn or "")
    if txn.mid != case.mid:
        raise _invalid("rrn", "rrn_other_merchant", N_("This transaction is another merchant's."))
    return _freeze(
        session,
        principal,
        case,
        _TRANSACTION_HOLD,
        txn.rrn,
        reason=text,
        now=now,
        detail={"rrn": txn.rrn, "amount_fen": txn.amount_fen},
    )


def release(
    session: Session,
    principal: Principal,
    case: RiskCase,
    freeze_id: int,
    *,
    reason: str,
    now: dt.datetime,
) -> RiskFreeze:
    """Release a freeze or hold of the case's merchant: new authorizations pass again
    (within ``limits.RISK_REFRESH_SECONDS``) and settlement pays what it held."""
    text = _text("reason", reason, REASON_LENGTH_MAX)
    row = repository.freeze(session, freeze_id, for_update=True)
    if row is None or row.mid != case.mid:
        raise NotFound(
            N_("No such freeze or hold for this case's merchant."), code="freeze_not_found"
        )
    if row.released_at is not None:
        raise Conflict(N_("This freeze or hold was already released."), code="freeze_released")
    row.released_at = now
    row.released_by = principal.username
    row.release_reason = text
    _event(
        session,
        principal,
        case,
        CaseEventAction.RELEASED,
        "risk.freeze_released",
        now=now,
        note=text,
        detail={
            "freeze_id": row.id,
            "kind": freeze_kind(row),
            "subject": row.subject,
            "made_by_case": row.case_id,
        },
    )
    return row


# --- Closing ---------------------------------------------------------------------------------


def close_case(
    session: Session,
    principal: Principal,
    case: RiskCase,
    *,
    outcome: str,
    note: str,
    keep_freezes: bool = False,
    now: dt.datetime,
) -> RiskCase:
    """Close with an outcome and a conclusion. The case's freezes still in force must be
    released first, or kept on purpose (``keep_freezes``; not with a false positive)."""
    if outcome not in CaseOutcome.__members__.values():
        raise _invalid(
            "outcome",
            "enum",
            N_("Must be one of: {expected}."),
            expected=", ".join(CaseOutcome),
        )
    text = _text("note", note, NOTE_LENGTH_MAX)
    in_force = repository.freezes_in_force(session, case_id=case.id, limit=FREEZES_SHOWN_MAX)
    if in_force and outcome == CaseOutcome.FALSE_POSITIVE:
        raise _invalid(
            "keep_freezes" if keep_freezes else "outcome",
            "false_positive_frozen",
            N_("A false positive keeps no freeze or hold: release them before closing."),
        )
    if in_force and not keep_freezes:
        raise Conflict(
            N_(
                "This case still has {n} freezes or holds in force: release them, or "
                "close keeping them on purpose."
            ),
            code="case_has_freezes",
            n=str(len(in_force)),
        )
    case.status = CaseStatus.CLOSED.value
    case.outcome = CaseOutcome(outcome).value
    case.closed_by = principal.username
    case.closed_at = now
    _event(
        session,
        principal,
        case,
        CaseEventAction.CLOSED,
        "risk.case_closed",
        now=now,
        note=text,
        detail={"outcome": outcome, "kept_freezes": [row.id for row in in_force]},
    )
    return case


# --- Reading a case ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseDetail:
    case: RiskCase
    merchant: Merchant | None
    alerts: Sequence[RiskAlert]
    transactions: Sequence[GatewayTransaction]
    """Linked journal rows, oldest first."""
    events: Sequence[RiskCaseEvent]
    attachments: Sequence[RiskCaseAttachment]
    freezes: Sequence[RiskFreeze]
    """In force for the case's merchant (whichever case or rule made them)."""
    case_freezes: Sequence[RiskFreeze]
    """Every freeze this case made, released or not."""
    location_trail: Sequence[RiskAlert]
    """The merchant's relocation alerts, newest first (their detail holds the positions)."""
    names: dict[str, str] = field(default_factory=dict)
    """Display names of the staff who acted, by username."""

    @property
    def notes(self) -> list[RiskCaseEvent]:
        return [
            e
            for e in self.events
            if e.note and e.action in (CaseEventAction.NOTE_ADDED, CaseEventAction.OPENED)
        ]


def case_detail(session: Session, case: RiskCase) -> CaseDetail:
    items = repository.case_items(session, case.id, limit=EVIDENCE_MAX)
    rrns = [i.ref for i in items if i.kind == ItemKind.TRANSACTION]
    events = repository.case_events(session, case.id, limit=EVENTS_SHOWN_MAX)
    attachments = repository.case_attachments(session, case.id, limit=ATTACHMENTS_PER_CASE_MAX)
    freezes = (
        repository.freezes_in_force(session, mid=case.mid, limit=FREEZES_SHOWN_MAX)
        if case.mid
        else []
    )
    case_freezes = repository.freezes_of_case(session, case.id, limit=FREEZES_SHOWN_MAX)
    people = (
        {e.actor for e in events}
        | {case.opened_by}
        | {name for name in (case.assigned_to, case.closed_by) if name}
    )
    return CaseDetail(
        case=case,
        merchant=merchant_repository.by_mid(session, case.mid) if case.mid else None,
        alerts=repository.alerts_of_case(session, case.id, limit=EVIDENCE_MAX),
        transactions=repository.transactions_by_rrn(session, rrns),
        events=events,
        attachments=attachments,
        freezes=freezes,
        case_freezes=case_freezes,
        location_trail=repository.alerts_of_rule(
            session, RuleCode.RELOCATION.value, mid=case.mid, limit=LOCATION_TRAIL_MAX
        )
        if case.mid
        else [],
        names=repository.display_names(session, people),
    )


def case_list(
    session: Session,
    *,
    status: str | None = None,
    mid: str | None = None,
    page: int = 1,
    page_size: int = limits.PAGE_SIZE_DEFAULT,
) -> Page[RiskCase]:
    """Cases, newest first; ``status`` ``open``, ``closed`` or blank for all."""
    errors: list[FieldError] = []
    status = _blank(status)
    if status is not None and status not in CaseStatus.__members__.values():
        errors.append(_enum_error("status", list(CaseStatus)))
    mid = _mid_filter(errors, mid)
    _paging(errors, page, page_size)
    if errors:
        raise ValidationFailed(errors)
    rows, total = repository.case_page(
        session, status=status, mid=mid, limit=page_size, offset=(page - 1) * page_size
    )
    return Page(rows, total, page, page_size)


def evidence_counts(session: Session, case_ids: Collection[int]) -> dict[int, int]:
    """Pieces of evidence (alerts and transactions) of each case."""
    return repository.evidence_counts(session, case_ids)


def risk_officers(session: Session) -> Sequence[StaffUser]:
    """Whom a case may be assigned to."""
    return repository.risk_officers(session)


@dataclass(frozen=True)
class MerchantRisk:
    """What the merchant page shows: freezes and holds in force, open cases."""

    freezes: Sequence[RiskFreeze]
    open_cases: Sequence[RiskCase]


def merchant_risk(session: Session, mid: str) -> MerchantRisk:
    return MerchantRisk(
        freezes=repository.freezes_in_force(session, mid=mid, limit=FREEZES_SHOWN_MAX),
        open_cases=repository.open_cases_of(session, mid, limit=limits.PAGE_SIZE_DEFAULT),
    )


def freezes_in_force(session: Session, *, mid: str | None = None) -> Sequence[RiskFreeze]:
    mid = (mid or "").strip() or None
    if mid is not None and not _MID.fullmatch(mid):
        raise _invalid("mid", "mid_format", N_("A MID is 15 digits."))
    return repository.freezes_in_force(session, mid=mid, limit=limits.PAGE_SIZE_MAX)


# --- Suspicious-transaction report (可疑交易报告) -------------------------------------------------


def build_report(
    detail: CaseDetail, institution: report.Institution, *, by: str, now: dt.datetime
) -> report.Report:
    """What the report says: who reports, the case, the subject merchant, the grounds
    (the rules that fired, by name, and the notes), then the transactions, card numbers
    masked. In Chinese, as it is filed."""
    case, merchant = detail.case, detail.merchant
    zh = Translator("zh_CN")
    hits = list(dict.fromkeys(a.rule_code for a in detail.alerts))  # in order of firing
    total = sum(t.amount_fen or 0 for t in detail.transactions)

    def moment(value: dt.datetime) -> str:
        return local_time(value).strftime("%Y-%m-%d %H:%M:%S")

    fields: list[tuple[str, object]] = [
        ("报告类型", report.TITLE),
        ("报告机构", institution.name),
        ("机构代码", institution.code),
        ("许可证编号", institution.licence),
        ("案件编号", case.reference),
        ("案件名称", case.title),
        ("案件状态", zh(CASE_STATUS_NAMES.get(case.status, case.status))),
        ("处理结论", zh(OUTCOME_LABELS[case.outcome]) if case.outcome in OUTCOME_LABELS else ""),
        ("立案时间", moment(case.opened_at)),
        ("报告生成时间", moment(now)),
        ("报告人", by),
        ("商户编号", case.mid or ""),
        ("商户名称", merchant.business_name if merchant else ""),
        ("经营者/法定代表人", merchant.legal_name if merchant else ""),
        ("统一社会信用代码", (merchant.uscc or "") if merchant else ""),
        ("商户类别码", merchant.mcc if merchant else ""),
        ("地区代码", merchant.region_code if merchant else ""),
        ("终端号", case.tid or ""),
        ("触发规则", "；".join(zh(ALERT_CODE_LABELS.get(code, code)) for code in hits)),
        ("告警数", len(detail.alerts)),
        ("可疑交易笔数", len(detail.transactions)),
        ("可疑交易金额合计", format_fen(total, symbol="")),
        ("可疑行为描述", " / ".join(e.note or "" for e in detail.notes)),
    ]
    rows = tuple(
        (
            moment(t.received_at),
            t.rrn,
            t.mid or "",
            t.tid or "",
            report.KIND_NAMES.get(t.kind, t.kind),
            report.CHANNEL_NAMES.get(t.channel or "", t.channel or ""),
            format_fen(t.amount_fen or 0, symbol=""),
            "CNY" if t.currency in (None, "156") else (t.currency or ""),
            t.pan_masked or t.wallet or "",
            t.response_code or "",
            report.STATUS_NAMES.get(t.status, t.status),
        )
        for t in detail.transactions
    )
    return report.Report(
        case.reference, tuple((label, str(value)) for label, value in fields), rows
    )


def export_report(
    session: Session,
    principal: Principal,
    case: RiskCase,
    institution: report.Institution,
    *,
    fmt: report.ReportFormat = report.ReportFormat.CSV,
    now: dt.datetime,
) -> tuple[report.Report, bytes]:
    """The case's suspicious-transaction report (CSV or PDF); the export is an event of
    the case (closed cases included: filing the report is often the last step) and
    audited."""
    detail = case_detail(session, case)
    content = build_report(detail, institution, by=principal.display_name, now=now)
    data = report.render(content, fmt)
    details = {"format": fmt.value, "transactions": len(detail.transactions)}
    session.add(
        RiskCaseEvent(
            case_id=case.id,
            action=CaseEventAction.REPORT_EXPORTED.value,
            actor=principal.username,
            note=None,
            detail=details,
            at=now,
        )
    )
    audit.record(
        session,
        principal.actor,
        "risk.report_exported",
        "risk_case",
        case.reference,
        {"mid": case.mid, **details},
    )
    return content, data


# --- Blocked cards ---------------------------------------------------------------------------------


def block_card(
    session: Session,
    principal: Principal,
    *,
    rrn: str,
    reason: str,
    now: dt.datetime,
    case: RiskCase | None = None,
) -> BlockedCard:
    """Block the card of a journal transaction at every merchant (its token, as the
    gateway keeps it); recorded on ``case`` too when given."""
    text = _text("reason", reason, REASON_LENGTH_MAX)
    txn = _transaction(session, rrn)
    if not txn.pan_token:
        raise _invalid("rrn", "rrn_no_card", N_("This transaction has no card (a QR payment)."))
    if repository.blocked_token_in_force(session, txn.pan_token) is not None:
        raise Conflict(N_("This card is already blocked."), code="card_already_blocked")
    card = BlockedCard(
        pan_token=txn.pan_token,
        pan_masked=txn.pan_masked,
        reason=text,
        created_by=principal.username,
        created_at=now,
    )
    session.add(card)
    session.flush()
    details = {"pan_masked": txn.pan_masked, "rrn": txn.rrn, "reason": text}
    if case is not None:
        session.add(
            RiskCaseEvent(
                case_id=case.id,
                action=CaseEventAction.CARD_BLOCKED.value,
                actor=principal.username,
                note=None,
                detail={**details, "card_id": card.id},
                at=now,
            )
        )
        details["case"] = case.reference
    audit.record(
        session, principal.actor, "risk.card_blocked", "risk_blocked_card", str(card.id), details
    )
    return card


def release_card(
    session: Session, principal: Principal, card_id: int, *, reason: str, now: dt.datetime
) -> BlockedCard:
    text = _text("reason", reason, REASON_LENGTH_MAX)
    card = repository.blocked_card(session, card_id, for_update=True)
    if card is None:
        raise NotFound(N_("No such blocked card."), code="blocked_card_not_found")
    if card.released_at is not None:
        raise Conflict(N_("This card was already released."), code="card_released")
    card.released_at = now
    card.released_by = principal.username
    audit.record(
        session,
        principal.actor,
        "risk.card_released",
        "risk_blocked_card",
        str(card.id),
        {"pan_masked": card.pan_masked, "reason": text},
    )
    return card


def blocked_cards(session: Session) -> Sequence[BlockedCard]:
    return repository.blocked_cards_in_force(session, limit=BLOCKED_CARDS_SHOWN_MAX)
