"""Every query of the contracts domain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from poshub.contracts.models import Contract, ContractStatus


def get(session: Session, contract_id: str, *, for_update: bool = False) -> Contract | None:
    query = select(Contract).where(Contract.id == contract_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def by_number(session: Session, number: str, version: int) -> Contract | None:
    return session.execute(
        select(Contract).where(Contract.contract_number == number, Contract.version == version)
    ).scalar_one_or_none()


def of_merchant(session: Session, merchant_id: int) -> Sequence[Contract]:
    """Every version, newest first."""
    return (
        session.execute(
            select(Contract)
            .where(Contract.merchant_id == merchant_id)
            .order_by(Contract.contract_number.desc(), Contract.version.desc())
        )
        .scalars()
        .all()
    )


def pending(session: Session, merchant_id: int) -> Contract | None:
    """The version waiting for a signature, if any (at most one at a time)."""
    return session.execute(
        select(Contract)
        .where(
            Contract.merchant_id == merchant_id,
            Contract.status.in_(
                [ContractStatus.AWAITING_MERCHANT, ContractStatus.AWAITING_COUNTERSIGN]
            ),
        )
        .order_by(Contract.generated_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def latest_signed(session: Session, merchant_id: int) -> Contract | None:
    return session.execute(
        select(Contract)
        .where(Contract.merchant_id == merchant_id, Contract.status == ContractStatus.SIGNED)
        .order_by(Contract.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def in_effect(session: Session, merchant_id: int, on: dt.date) -> Contract | None:
    """The signed version that governs ``on``: the latest signed version whose
    ``effective_from`` is on or before that date (a future amendment is not yet in force)."""
    return session.execute(
        select(Contract)
        .where(
            Contract.merchant_id == merchant_id,
            Contract.status == ContractStatus.SIGNED,
            Contract.effective_from <= on,
        )
        .order_by(Contract.effective_from.desc(), Contract.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def by_pdf_sha256(session: Session, sha256: str) -> Contract | None:
    return session.execute(
        select(Contract).where(Contract.pdf_sha256 == sha256).limit(1)
    ).scalar_one_or_none()


def awaiting_countersign(session: Session, *, limit: int) -> Sequence[Contract]:
    return (
        session.execute(
            select(Contract)
            .where(Contract.status == ContractStatus.AWAITING_COUNTERSIGN)
            .order_by(Contract.merchant_signed_at)
            .limit(limit)
        )
        .scalars()
        .all()
    )
