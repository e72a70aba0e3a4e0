"""Every query of the fieldwork domain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from poshub.core.roles import Role
from poshub.fieldwork.models import WorkOrder, WorkOrderPhoto, WorkOrderStep
from poshub.fieldwork.states import ALL_FINAL
from poshub.merchants.models import Merchant
from poshub.staff.models import StaffRole, StaffUser
from poshub.terminals.models import Device, Terminal

_FINAL = sorted(ALL_FINAL)


def get(session: Session, order_id: str, *, for_update: bool = False) -> WorkOrder | None:
    query = select(WorkOrder).where(WorkOrder.id == order_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def by_number(session: Session, number: str, *, for_update: bool = False) -> WorkOrder | None:
    query = select(WorkOrder).where(WorkOrder.number == number)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def search(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    technician_id: int | None = None,
    merchant_id: int | None = None,
    open_only: bool = False,
    breached_only: bool = False,
    limit: int,
    offset: int = 0,
) -> Sequence[WorkOrder]:
    """Orders matching every filter given, the most urgent deadline first."""
    query = select(WorkOrder)
    if status:
        query = query.where(WorkOrder.status == status)
    if kind:
        query = query.where(WorkOrder.kind == kind)
    if technician_id is not None:
        query = query.where(WorkOrder.technician_id == technician_id)
    if merchant_id is not None:
        query = query.where(WorkOrder.merchant_id == merchant_id)
    if open_only or breached_only:
        query = query.where(WorkOrder.status.not_in(_FINAL))
    if breached_only:
        query = query.where(WorkOrder.sla_breached_at.is_not(None))
    query = query.order_by(WorkOrder.due_at, WorkOrder.number).limit(limit).offset(offset)
    return session.execute(query).scalars().all()


def for_technician(
    session: Session, technician_id: int, *, open_only: bool, limit: int
) -> Sequence[WorkOrder]:
    """A technician's orders: open ones by deadline, or finished ones newest first."""
    query = select(WorkOrder).where(WorkOrder.technician_id == technician_id)
    if open_only:
        query = query.where(WorkOrder.status.not_in(_FINAL)).order_by(
            WorkOrder.due_at, WorkOrder.number
        )
    else:
        query = query.where(WorkOrder.status.in_(_FINAL)).order_by(WorkOrder.updated_at.desc())
    return session.execute(query.limit(limit)).scalars().all()


def open_by_due(session: Session, *, limit: int, offset: int = 0) -> Sequence[WorkOrder]:
    return search(session, open_only=True, limit=limit, offset=offset)


def breached(session: Session, *, limit: int) -> Sequence[WorkOrder]:
    """Open orders already flagged past their deadline."""
    return search(session, breached_only=True, limit=limit)


def unflagged_breaches(session: Session, now: dt.datetime, limit: int) -> Sequence[WorkOrder]:
    """Open orders past their deadline not yet flagged; locked, and skipped by a second
    worker on PostgreSQL."""
    return (
        session.execute(
            select(WorkOrder)
            .where(
                WorkOrder.status.not_in(_FINAL),
                WorkOrder.due_at < now,
                WorkOrder.sla_breached_at.is_(None),
            )
            .order_by(WorkOrder.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )


def open_order_for_terminal(session: Session, terminal_id: int, kind: str) -> WorkOrder | None:
    return session.execute(
        select(WorkOrder)
        .where(
            WorkOrder.terminal_id == terminal_id,
            WorkOrder.kind == kind,
            WorkOrder.status.not_in(_FINAL),
        )
        .limit(1)
    ).scalar_one_or_none()


def steps(session: Session, order_id: str) -> Sequence[WorkOrderStep]:
    return (
        session.execute(
            select(WorkOrderStep)
            .where(WorkOrderStep.work_order_id == order_id)
            .order_by(WorkOrderStep.at, WorkOrderStep.id)
        )
        .scalars()
        .all()
    )


def photos(session: Session, order_id: str, *, limit: int) -> Sequence[WorkOrderPhoto]:
    return (
        session.execute(
            select(WorkOrderPhoto)
            .where(WorkOrderPhoto.work_order_id == order_id)
            .order_by(WorkOrderPhoto.uploaded_at, WorkOrderPhoto.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def photo(session: Session, order_id: str, photo_id: int) -> WorkOrderPhoto | None:
    return session.execute(
        select(WorkOrderPhoto).where(
            WorkOrderPhoto.work_order_id == order_id, WorkOrderPhoto.id == photo_id
        )
    ).scalar_one_or_none()


def photo_count(session: Session, order_id: str) -> int:
    return session.execute(
        select(func.count())
        .select_from(WorkOrderPhoto)
        .where(WorkOrderPhoto.work_order_id == order_id)
    ).scalar_one()


def acceptance_reference_used(session: Session, reference: str, *, other_than: int) -> bool:
    """Whether another terminal was activated by the test transaction ``reference``."""
    return (
        session.execute(
            select(Terminal.id)
            .where(Terminal.acceptance_reference == reference, Terminal.id != other_than)
            .limit(1)
        ).scalar_one_or_none()
        is not None
    )


def technicians(session: Session) -> Sequence[StaffUser]:
    """Active staff with the technician role, by name (for assignment)."""
    return (
        session.execute(
            select(StaffUser)
            .join(StaffRole, StaffRole.user_id == StaffUser.id)
            .where(StaffRole.role == str(Role.TECHNICIAN), StaffUser.active.is_(True))
            .order_by(StaffUser.username)
        )
        .scalars()
        .all()
    )


def usernames(session: Session, user_ids: Collection[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = session.execute(
        select(StaffUser.id, StaffUser.username).where(StaffUser.id.in_(set(user_ids)))
    )
    return {row.id: row.username for row in rows}


def merchant_for_update(session: Session, merchant_id: int) -> Merchant:
    """The merchant row, locked: two acceptance tests of one merchant's terminals must
    not both see it not yet live."""
    return session.execute(
        select(Merchant).where(Merchant.id == merchant_id).with_for_update()
    ).scalar_one()


def merchants_by_id(session: Session, merchant_ids: Collection[int]) -> dict[int, Merchant]:
    if not merchant_ids:
        return {}
    rows = session.execute(select(Merchant).where(Merchant.id.in_(set(merchant_ids)))).scalars()
    return {m.id: m for m in rows}


def terminals_by_id(session: Session, terminal_ids: Collection[int]) -> dict[int, Terminal]:
    if not terminal_ids:
        return {}
    rows = session.execute(select(Terminal).where(Terminal.id.in_(set(terminal_ids)))).scalars()
    return {t.id: t for t in rows}


def devices_by_id(session: Session, device_ids: Collection[int]) -> dict[int, Device]:
    if not device_ids:
        return {}
    rows = session.execute(select(Device).where(Device.id.in_(set(device_ids)))).scalars()
    return {d.id: d for d in rows}
