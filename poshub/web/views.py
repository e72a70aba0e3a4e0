"""Building response bodies from rows (shared by the API and the pages)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from poshub.core import limits
from poshub.core.clock import business_date
from poshub.core.db import utcnow
from poshub.core.i18n import Translator
from poshub.merchants import repository as merchant_repository
from poshub.onboarding import consent, repository, rules, sla
from poshub.onboarding.decisions import CHECK_DETAILS, CHECK_LABELS
from poshub.onboarding.documents import same_content_kinds
from poshub.onboarding.models import (
    Application,
    ApplicationCheck,
    ApplicationOverride,
    CheckStatus,
)
from poshub.onboarding.schemas import (
    AddressOut,
    AgentOut,
    ApplicationOut,
    ApprovalBlockerOut,
    BeneficialOwnerOut,
    CheckOut,
    ConsentOut,
    DocumentOut,
    EventOut,
    OverrideOut,
    QueueItemOut,
    RequiredDocumentOut,
    ReviewApplicationOut,
    SettlementAccountOut,
    TerminalLineOut,
)
from poshub.onboarding.service import (
    approval_blockers,
    override_checks,
    required_documents,
    sorted_checks,
)
from poshub.onboarding.states import REVIEW_CLOCK_STATUSES, ApplicationStatus, applicant_status
from poshub.staff import repository as staff_repository

EVENTS_SHOWN_MAX = 200


def _base(
    session: Session, application: Application, t: Translator, *, applicant_only: bool
) -> dict[str, object]:
    today = business_date(utcnow())
    documents = repository.documents(session, application.id, limits.DOCUMENTS_PER_APPLICATION_MAX)
    provided = {d.kind for d in documents}
    duplicates = same_content_kinds(documents)
    required = sorted(required_documents(application, today))
    merchant = merchant_repository.for_application(session, application.id)
    return {
        "id": application.id,
        "tracking_number": application.tracking_number,
        "status": application.status,
        "applicant_kind": application.applicant_kind,
        "legal_name": application.legal_name,
        "id_number_masked": application.id_number_masked,
        "mobile": application.mobile,
        "mobile_verified": application.mobile_verified_at is not None,
        "business_name": application.business_name,
        "uscc": application.uscc,
        "licence_expiry": application.licence_expiry,
        "established_on": application.established_on,
        "mcc": application.mcc,
        "address": AddressOut(
            province=application.province,
            city=application.city,
            district=application.district,
            detail=application.address_detail,
            region_code=application.region_code,
        ),
        "settlement_account": SettlementAccountOut(
            bank_name=application.bank_name,
            account_name=application.account_name,
            account_number_masked=application.account_number_masked,
            account_type=application.account_type,
        ),
        "id_expiry": application.id_expiry,
        "id_long_term": application.id_long_term,
        "applied_by_agent": application.applied_by_agent,
        "agent": AgentOut(
            name=application.agent_name, id_number_masked=application.agent_id_number_masked
        )
        if application.agent_name and application.agent_id_number_masked
        else None,
        "beneficial_owners": [
            BeneficialOwnerOut(
                name=owner.name,
                id_number_masked=owner.id_number_masked,
                basis=owner.basis,
                share_percent=owner.share_percent,
            )
            for owner in repository.beneficial_owners(session, application.id)
        ],
        "expected_monthly_volume_fen": application.expected_monthly_volume_fen,
        "opening_time": application.opening_time,
        "closing_time": application.closing_time,
        "terminals": [
            TerminalLineOut(model_code=line.model_code, count=line.count)
            for line in repository.terminal_lines(session, application.id)
        ],
        "documents": [
            DocumentOut(
                id=d.id,
                kind=d.kind,
                content_type=d.content_type,
                size_bytes=d.size_bytes,
                sha256=d.sha256,
                file_name=d.file_name,
                uploaded_at=d.uploaded_at,
                duplicate_of=duplicates.get(d.id, []),
            )
            for d in documents
        ],
        "required_documents": [
            RequiredDocumentOut(
                kind=k, label=t(rules.DOCUMENT_LABELS[k]), provided=k.value in provided
            )
            for k in required
        ],
        "events": [
            EventOut(
                kind=e.kind,
                author_kind=e.author_kind,
                author_id=e.author_id
                if not applicant_only or e.author_kind != "staff"
                else "PosHub",
                body=e.body,
                data=e.data if not applicant_only else {},
                created_at=e.created_at,
            )
            for e in repository.events(
                session, application.id, EVENTS_SHOWN_MAX, applicant_only=applicant_only
            )
        ],
        "created_at": application.created_at,
        "submitted_at": application.submitted_at,
        "sla_target_date": application.sla_target_date,
        "merchant_mid": merchant.mid if merchant else None,
        "consents": consent_views(session, application.id),
    }


def consent_views(session: Session, application_id: str) -> list[ConsentOut]:
    rows = repository.consents_of(session, [application_id]).get(application_id, [])
    return [
        ConsentOut(
            kind=str(state.kind),
            granted=state.granted,
            notice_version=state.notice_version,
            at=state.at,
        )
        for state in consent.current(rows).values()
    ]


def applicant_view(session: Session, application: Application, t: Translator) -> ApplicationOut:
    base = _base(session, application, t, applicant_only=True)
    base["status"] = applicant_status(application.status)
    return ApplicationOut.model_validate(base)


def check_view(check: ApplicationCheck, t: Translator) -> CheckOut:
    template = CHECK_DETAILS.get(check.detail_code or "") or rules.MESSAGES.get(
        check.detail_code or "", ""
    )
    params = {k: t(str(v)) for k, v in check.params.items()}
    return CheckOut(
        code=check.code,
        status=CheckStatus(check.status),
        detail_code=check.detail_code,
        message=t(template, params) if template else "",
        params=check.params,
        checked_at=check.checked_at,
    )


def check_label(code: str, t: Translator) -> str:
    return t(CHECK_LABELS.get(code, code))


def review_view(session: Session, application: Application, t: Translator) -> ReviewApplicationOut:
    base = _base(session, application, t, applicant_only=False)
    editor_ids = repository.editor_ids(session, application.id)
    names = staff_repository.names_by_id(
        session,
        editor_ids
        | ({application.assigned_reviewer_id} if application.assigned_reviewer_id else set()),
    )
    today = business_date(utcnow())
    pending = repository.pending_override(session, application.id)
    elapsed = (
        sla.elapsed(application.sla_start_date, today, application.sla_paused_working_days)
        if application.sla_start_date
        else None
    )
    return ReviewApplicationOut.model_validate(
        {
            **base,
            "checks": [
                check_view(c, t)
                for c in sorted_checks(repository.latest_checks(session, application))
            ],
            "checks_running": application.checks_requested_at is not None,
            "assigned_reviewer": names.get(application.assigned_reviewer_id or -1),
            "editors": sorted(names[i] for i in editor_ids if i in names),
            "sla_breach_date": application.sla_breach_date,
            "working_days_elapsed": elapsed,
            "decision_reasons": application.decision_reasons,
            "decision_note": application.decision_note,
            "decision_message": application.decision_message,
            "approval_blockers": [
                ApprovalBlockerOut(code=b.code, message=t(b.message, b.params))
                for b in approval_blockers(session, application)
            ]
            if ApplicationStatus(application.status).is_open
            else [],
            "override_checks": override_checks(session, application),
            "override": override_view(session, pending) if pending else None,
        }
    )


def override_view(session: Session, row: ApplicationOverride) -> OverrideOut:
    names = staff_repository.names_by_id(
        session, {row.requested_by_id} | ({row.decided_by_id} if row.decided_by_id else set())
    )
    return OverrideOut(
        id=row.id,
        application_id=row.application_id,
        status=row.status,
        checks=list(row.checks),
        reason=row.reason,
        message=row.message,
        requested_by=names.get(row.requested_by_id, str(row.requested_by_id)),
        requested_at=row.requested_at,
        decided_by=names.get(row.decided_by_id) if row.decided_by_id else None,
        decided_at=row.decided_at,
        decision_note=row.decision_note,
    )


def sla_state(application: Application, today: dt.date) -> str:
    if application.sla_target_date is None or application.sla_breach_date is None:
        return "not_started"
    if application.status not in REVIEW_CLOCK_STATUSES:
        return "paused" if application.status == "needs_info" else "stopped"
    return str(sla.state(today, application.sla_target_date, application.sla_breach_date))


def queue_view(session: Session, applications: list[Application]) -> list[QueueItemOut]:
    today = business_date(utcnow())
    counts = repository.check_counts(session, [a.id for a in applications])
    names = staff_repository.names_by_id(
        session, {a.assigned_reviewer_id for a in applications if a.assigned_reviewer_id}
    )
    return [
        QueueItemOut(
            id=a.id,
            tracking_number=a.tracking_number,
            status=a.status,
            applicant_kind=a.applicant_kind,
            business_name=a.business_name,
            mcc=a.mcc,
            submitted_at=a.submitted_at,
            sla_target_date=a.sla_target_date,
            sla_breach_date=a.sla_breach_date,
            sla_state=sla_state(a, today),
            assigned_reviewer=names.get(a.assigned_reviewer_id or -1),
            failed_checks=counts.get(a.id, {}).get("fail", 0),
            pending_checks=counts.get(a.id, {}).get("pending", 0),
            checks_running=a.checks_requested_at is not None,
        )
        for a in applications
    ]
