"""Closing a merchant and purging its personal data after the retention period.

Every function works inside the caller's transaction and never commits, except
:func:`run_purge`, the job, which owns its transactions (one per batch).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from poshub.core import audit, limits
from poshub.core.audit import Actor
from poshub.core.clock import business_date
from poshub.core.db import Database
from poshub.core.errors import N_, Conflict, FieldError, ValidationFailed
from poshub.core.storage import ContentStore
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.merchants.states import ensure_merchant_transition
from poshub.onboarding.models import ApplicantKind
from poshub.privacy import repository, retention

PURGE_ACTOR = Actor.system("privacy.purge")
ANONYMISED = "***"
"""What a purged name or address reads as."""

PERSONAL_APPLICATION_TABLES = ("application_beneficial_owners",)
"""Per-application tables of people other than the applicant, deleted whole by the purge."""


def close_merchant(
    session: Session,
    merchant: Merchant,
    *,
    terminated_on: dt.date,
    reason: str,
    actor: Actor,
    retention_years: int,
    now: dt.datetime,
) -> dt.date:
    """End the merchant relationship on ``terminated_on`` (today or earlier, e.g. the day
    the contract ended). Every terminal must be recalled (closed) first: 409 naming those
    still open. Returns the last day the records are kept whole."""
    today = business_date(now)
    if terminated_on > today:
        raise ValidationFailed(
            [
                FieldError(
                    "terminated_on",
                    "terminated_on.future",
                    N_("The termination date cannot be later than today ({today})."),
                    {"today": today.isoformat()},
                )
            ]
        )
    ensure_merchant_transition(merchant.status, MerchantStatus.CLOSED)
    open_tids = repository.open_terminal_tids(session, merchant.id)
    if open_tids:
        raise Conflict(
            N_(
                "Terminals {tids} are still in service: recall and close them before closing "
                "the merchant."
            ),
            code="terminals_not_recalled",
            tids=", ".join(open_tids),
        )
    merchant.status = str(MerchantStatus.CLOSED)
    merchant.terminated_on = terminated_on
    merchant.closed_at = now
    merchant.closed_by = actor.id
    merchant.closure_reason = reason
    kept_until = retention.retained_until(terminated_on, retention_years)
    # The reason is free text: it stays on the merchant row (purged with it), not in the
    # audit log, which is never purged.
    audit.record(
        session,
        actor,
        "merchant.closed",
        "merchant",
        merchant.mid,
        {
            "terminated_on": terminated_on.isoformat(),
            "retained_until": kept_until.isoformat(),
        },
    )
    return kept_until


@dataclass
class PurgeResult:
    mids: list[str] = field(default_factory=list)
    """Merchants anonymised in this batch."""
    files: set[str] = field(default_factory=set)
    """Stored files no remaining row points at: delete them after the commit."""


def _keeps_business_identity(applicant_kind: str) -> bool:
    """A licensed business's registered name and unit account name are not personal data
    and stay for the accounting records; an individual's are the person's own."""
    return ApplicantKind(applicant_kind) is not ApplicantKind.INDIVIDUAL


def purge_due(
    session: Session,
    *,
    retention_years: int,
    now: dt.datetime,
    limit: int = limits.PURGE_BATCH_MAX,
) -> PurgeResult:
    """Anonymise, irreversibly, the personal data of up to ``limit`` closed merchants whose
    retention period has ended, and of their applications; record an audit event each.

    Kept (anonymised), for accounting and audit: the MID, kind, MCC, county code, dates,
    status, credit code, masked account (last four digits), fee and contract references,
    the timeline's kinds and times, the consent records without their address. Gone:
    names of natural persons, ID and account numbers (ciphertexts and lookup tokens),
    mobiles, street addresses, uploaded documents (rows and files), free text.
    """
    cutoff = retention.purge_cutoff(business_date(now), retention_years)
    result = PurgeResult()
    for merchant in repository.merchants_due(session, cutoff, limit):
        business = _keeps_business_identity(merchant.applicant_kind)
        enterprise = ApplicantKind(merchant.applicant_kind) is ApplicantKind.ENTERPRISE
        repository.anonymise_merchant(
            session,
            merchant.id,
            {
                "legal_name": ANONYMISED,
                "business_name": merchant.business_name if business else ANONYMISED,
                "id_number_token": "",
                "mobile": "",
                "account_name": merchant.account_name if enterprise else ANONYMISED,
                "account_number_enc": b"",
                "closure_reason": "",
                "purged_at": now,
            },
        )
        application_id = merchant.application_id
        repository.anonymise_application(
            session,
            application_id,
            {
                "legal_name": ANONYMISED,
                "business_name": merchant.business_name if business else ANONYMISED,
                "id_number_enc": b"",
                "id_number_token": "",
                "id_number_masked": "",
                "mobile": "",
                "address_detail": ANONYMISED,
                "account_name": merchant.account_name if enterprise else ANONYMISED,
                "account_number_enc": b"",
                "account_number_token": "",
                "decision_note": None,
                "decision_message": None,
                "agent_name": None,
                "agent_id_number_enc": None,
                "agent_id_number_token": None,
                "agent_id_number_masked": None,
                "purged_at": now,
            },
        )
        digests = repository.document_digests(session, application_id)
        documents = repository.delete_documents(session, application_id)
        for table_name in PERSONAL_APPLICATION_TABLES:
            repository.delete_application_rows(session, table_name, application_id)
        repository.blank_event_bodies(session, application_id)
        repository.blank_consent_addresses(session, application_id)
        repository.blank_notifications(session, [application_id, merchant.mid])
        repository.anonymise_terminals(session, merchant.id, ANONYMISED)
        repository.anonymise_work_orders(session, merchant.id, ANONYMISED)
        result.files |= digests - repository.digests_in_use(session, digests)
        audit.record(
            session,
            PURGE_ACTOR,
            "merchant.purged",
            "merchant",
            merchant.mid,
            {
                "application_id": application_id,
                "terminated_on": merchant.terminated_on.isoformat()
                if merchant.terminated_on
                else None,
                "retention_years": retention_years,
                "documents_deleted": documents,
            },
        )
        result.mids.append(merchant.mid)
    return result


def delete_files(store: ContentStore, digests: set[str]) -> None:
    """Remove purged documents' files; run after the purge's commit, so a rolled-back
    purge never loses a file a row still names."""
    for digest in sorted(digests):
        store.path_for(digest).unlink(missing_ok=True)


def run_purge(
    database: Database,
    store: ContentStore,
    *,
    retention_years: int,
    now: dt.datetime,
    batch: int = limits.PURGE_BATCH_MAX,
    batches_max: int = 1,
) -> list[str]:
    """The purge job: up to ``batches_max`` batches of ``batch`` merchants, each in its own
    transaction, files deleted after each commit. Returns the MIDs purged."""
    purged: list[str] = []
    for _ in range(batches_max):
        with database.unit_of_work() as uow:
            result = purge_due(uow.session, retention_years=retention_years, now=now, limit=batch)
            uow.commit()
        delete_files(store, result.files)
        purged.extend(result.mids)
        if len(result.mids) < batch:
            break
    return purged
