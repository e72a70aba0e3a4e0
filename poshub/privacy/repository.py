"""Every query of the closure and the purge: they read and anonymise rows of the domains
that hold a merchant's personal data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, select, update
from sqlalchemy.orm import Session

from poshub.contracts.models import Contract
from poshub.core.db import Base, table_of
from poshub.fieldwork.models import WorkOrder, WorkOrderPhoto, WorkOrderStep
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.notify.models import Notification
from poshub.onboarding.models import (
    AccessCodeFailure,
    Application,
    ApplicationConsent,
    ApplicationEvent,
    Document,
    MobileChallenge,
)
from poshub.terminals.models import Terminal, TerminalStatus


def open_terminal_tids(session: Session, merchant_id: int) -> list[str]:
    """TIDs of the merchant's terminals that are not closed (not yet recalled)."""
    return list(
        session.execute(
            select(Terminal.tid)
            .where(
                Terminal.merchant_id == merchant_id,
                Terminal.status != str(TerminalStatus.CLOSED),
            )
            .order_by(Terminal.tid)
        ).scalars()
    )


def merchants_due(session: Session, cutoff: dt.date, limit: int) -> Sequence[Merchant]:
    """Closed, not yet purged merchants terminated before ``cutoff``, oldest first; rows
    another purge holds are skipped (PostgreSQL), so several workers never collide."""
    return (
        session.execute(
            select(Merchant)
            .where(
                Merchant.status == str(MerchantStatus.CLOSED),
                Merchant.purged_at.is_(None),
                Merchant.terminated_on < cutoff,
            )
            .order_by(Merchant.terminated_on, Merchant.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )


def existing_columns(model: type[Base], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` limited to the columns ``model``'s table has."""
    table: Table = table_of(model)
    return {k: v for k, v in values.items() if k in table.c}


def anonymise_merchant(session: Session, merchant_id: int, values: Mapping[str, Any]) -> None:
    _update(session, Merchant, Merchant.id == merchant_id, values)


def anonymise_application(session: Session, application_id: str, values: Mapping[str, Any]) -> None:
    _update(session, Application, Application.id == application_id, values)


def _update(
    session: Session, model: type[Base], where: ColumnElement[bool], values: Mapping[str, Any]
) -> None:
    session.execute(
        update(model)
        .where(where)
        .values(**existing_columns(model, values))
        .execution_options(synchronize_session="fetch")
    )


def document_digests(session: Session, application_id: str) -> set[str]:
    return set(
        session.execute(
            select(Document.sha256).where(Document.application_id == application_id)
        ).scalars()
    )


def delete_documents(session: Session, application_id: str) -> int:
    result = session.execute(delete(Document).where(Document.application_id == application_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


def delete_application_rows(session: Session, table_name: str, application_id: str) -> None:
    """Rows of a per-application table holding personal data (e.g. beneficial owners),
    when that table exists in this schema."""
    table = Base.metadata.tables.get(table_name)
    if table is not None and "application_id" in table.c:
        session.execute(delete(table).where(table.c.application_id == application_id))


def digests_in_use(session: Session, digests: Collection[str]) -> set[str]:
    """Of ``digests``, those a remaining row still points at (the store deduplicates
    identical files, so the same bytes may belong to another application or a contract)."""
    if not digests:
        return set()
    wanted = list(digests)
    used: set[str] = set()
    for column in (Document.sha256, WorkOrderPhoto.sha256):
        used.update(session.execute(select(column).where(column.in_(wanted))).scalars())
    # A purged contract keeps the hash of what was signed, not the file.
    used.update(
        session.execute(
            select(Contract.pdf_sha256).where(
                Contract.pdf_sha256.in_(wanted), Contract.purged_at.is_(None)
            )
        ).scalars()
    )
    return used


def blank_event_bodies(session: Session, application_id: str) -> None:
    """Free text on the timeline (requests, answers, notes) may hold personal data; the
    kinds, authors and times stay."""
    session.execute(
        update(ApplicationEvent)
        .where(ApplicationEvent.application_id == application_id)
        .values(body="")
    )


def blank_consent_addresses(session: Session, application_id: str) -> None:
    """Consent rows stay as evidence of what was agreed and when; the address goes."""
    session.execute(
        update(ApplicationConsent)
        .where(ApplicationConsent.application_id == application_id)
        .values(source_address="")
    )


def blank_notifications(session: Session, subject_ids: Collection[str]) -> None:
    session.execute(
        update(Notification)
        .where(Notification.subject_id.in_(list(subject_ids)))
        .values(recipient="", params={})
    )


def anonymise_terminals(session: Session, merchant_id: int, placeholder: str) -> None:
    session.execute(
        update(Terminal)
        .where(Terminal.merchant_id == merchant_id)
        .values(install_address=placeholder)
    )


def anonymise_work_orders(session: Session, merchant_id: int, placeholder: str) -> None:
    session.execute(
        update(WorkOrder)
        .where(WorkOrder.merchant_id == merchant_id)
        .values(site_address=placeholder, contact_mobile="")
    )


def contracts_of_merchant(session: Session, merchant_id: int) -> Sequence[Contract]:
    """Every version of the merchant's contracts not yet purged."""
    return (
        session.execute(
            select(Contract).where(
                Contract.merchant_id == merchant_id, Contract.purged_at.is_(None)
            )
        )
        .scalars()
        .all()
    )


def anonymise_contract(session: Session, contract_id: str, values: Mapping[str, Any]) -> None:
    """One UPDATE of exactly the personal columns and the purge mark: the only change the
    database lets through on a signed contract (migration 0013)."""
    _update(session, Contract, Contract.id == contract_id, values)


def delete_mobile_challenges(session: Session, application_id: str) -> None:
    """The SMS codes sent to prove the applicant's mobile (they hold the number and the
    requesting address)."""
    session.execute(delete(MobileChallenge).where(MobileChallenge.application_id == application_id))


def forget_access_code_failures(session: Session, before: dt.datetime) -> None:
    """Wrong tracking access codes older than the throttle's window: they count for
    nothing any more, and hold the address they came from."""
    session.execute(delete(AccessCodeFailure).where(AccessCodeFailure.at < before))


def work_order_photo_digests(session: Session, merchant_id: int) -> set[str]:
    return set(
        session.execute(
            select(WorkOrderPhoto.sha256)
            .join(WorkOrder, WorkOrder.id == WorkOrderPhoto.work_order_id)
            .where(WorkOrder.merchant_id == merchant_id)
        ).scalars()
    )


def delete_work_order_photos(session: Session, merchant_id: int) -> int:
    orders = select(WorkOrder.id).where(WorkOrder.merchant_id == merchant_id)
    result = session.execute(
        delete(WorkOrderPhoto)
        .where(WorkOrderPhoto.work_order_id.in_(orders))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def work_orders_of_merchant(session: Session, merchant_id: int) -> Sequence[WorkOrder]:
    return (
        session.execute(select(WorkOrder).where(WorkOrder.merchant_id == merchant_id))
        .scalars()
        .all()
    )


def work_order_steps(session: Session, work_order_ids: Collection[str]) -> Sequence[WorkOrderStep]:
    if not work_order_ids:
        return []
    return (
        session.execute(
            select(WorkOrderStep).where(WorkOrderStep.work_order_id.in_(list(work_order_ids)))
        )
        .scalars()
        .all()
    )
