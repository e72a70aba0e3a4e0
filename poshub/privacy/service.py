"""Closing a merchant and purging its personal data after the retention period.

Every function works inside the caller's transaction and never commits, except
:func:`run_purge`, the job, which owns its transactions (one per batch).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

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

PERSONAL_WORK_ORDER_KEYS = frozenset({"received_by", "signer_name"})
"""Names of people recorded by work-order steps (who took the delivery, who signed the
training off): anonymised in the orders' and the steps' data."""
FREE_TEXT_WORK_ORDER_KEYS = frozenset({"note", "notes", "reason"})
"""Free text recorded by work-order steps, which may name or describe people: emptied.
Technical records (checklists, serial numbers, diagnosis and repair) stay."""


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


def anonymised_record(data: Any) -> Any:
    """A work order's or step's recorded data without people's names and free text."""
    if isinstance(data, dict):
        return {key: _anonymised_value(key, value) for key, value in data.items()}
    if isinstance(data, list):
        return [anonymised_record(item) for item in data]
    return data


def _anonymised_value(key: str, value: Any) -> Any:
    if key in PERSONAL_WORK_ORDER_KEYS and value:
        return ANONYMISED
    if key in FREE_TEXT_WORK_ORDER_KEYS and value:
        return ""
    return anonymised_record(value)


def anonymised_terms(terms: dict[str, Any], *, business: bool, enterprise: bool) -> dict[str, Any]:
    """A contract's terms snapshot without the personal data: the party B of an individual,
    the representative, an ID number's masked form, the address, the mobile, a natural
    person's account holder and the free-text summary. Keys keep their place (the
    database compares the rest of the snapshot as it was)."""

    def blank(key: str, anonymise: bool = True) -> None:
        if key in out and out[key] is not None and anonymise:
            out[key] = ANONYMISED

    out = dict(terms)
    blank("merchant_legal_name", not business)
    blank("merchant_business_name", not business)
    blank("merchant_representative")
    blank("merchant_identifier_masked", out.get("merchant_identifier_kind") != "uscc")
    blank("merchant_address")
    blank("merchant_mobile_masked")
    blank("account_name", not enterprise)
    if "change_summary" in out:
        out["change_summary"] = None
    return out


def _purge_contracts(
    session: Session, merchant_id: int, *, business: bool, enterprise: bool, now: dt.datetime
) -> set[str]:
    """Anonymise every version of the merchant's contracts, signed ones included (the one
    change their trigger allows); returns the PDFs' digests. The contract numbers,
    versions, dates, fee plan and the hashes of what was signed stay for the accounts."""
    digests: set[str] = set()
    for contract in repository.contracts_of_merchant(session, merchant_id):
        repository.anonymise_contract(
            session,
            contract.id,
            {
                "merchant_signer_name": ANONYMISED if contract.merchant_signer_name else None,
                "account_name": contract.account_name if enterprise else ANONYMISED,
                "account_number_enc": b"",
                "merchant_signed_ip": None,
                "merchant_signed_user_agent": None,
                "change_summary": None,
                "terms": anonymised_terms(contract.terms, business=business, enterprise=enterprise),
                "purged_at": now,
            },
        )
        digests.add(contract.pdf_sha256)
    return digests


def _purge_work_orders(session: Session, merchant_id: int) -> tuple[set[str], int]:
    """Addresses, contact mobiles, people's names and free text of the merchant's work
    orders and their steps; the photos (rows; their digests are returned)."""
    repository.anonymise_work_orders(session, merchant_id, ANONYMISED)
    orders = repository.work_orders_of_merchant(session, merchant_id)
    for order in orders:
        order.data = anonymised_record(order.data)
    for step in repository.work_order_steps(session, [order.id for order in orders]):
        step.data = anonymised_record(step.data)
        step.note = ""
    digests = repository.work_order_photo_digests(session, merchant_id)
    photos = repository.delete_work_order_photos(session, merchant_id)
    return digests, photos


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
    mobiles, street addresses, uploaded documents, work-order photos and contract PDFs
    (rows and files; a purged contract keeps its hashes), SMS-code records, free text.
    Wrong tracking access codes past the throttle's window go on every run.
    """
    cutoff = retention.purge_cutoff(business_date(now), retention_years)
    result = PurgeResult()
    repository.forget_access_code_failures(
        session, now - dt.timedelta(minutes=limits.ACCESS_CODE_FAILURE_WINDOW_MINUTES)
    )
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
                "source_address": None,
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
        repository.delete_mobile_challenges(session, application_id)
        repository.anonymise_terminals(session, merchant.id, ANONYMISED)
        digests |= _purge_contracts(
            session, merchant.id, business=business, enterprise=enterprise, now=now
        )
        photo_digests, photos = _purge_work_orders(session, merchant.id)
        digests |= photo_digests
        session.flush()
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
                "photos_deleted": photos,
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
