"""Every merchant query."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from poshub.core.db import table_of
from poshub.merchants.models import Merchant, MerchantStatus

_merchants = table_of(Merchant)


def get(session: Session, merchant_id: int) -> Merchant | None:
    return session.get(Merchant, merchant_id)


def by_mid(session: Session, mid: str) -> Merchant | None:
    return session.execute(select(Merchant).where(Merchant.mid == mid)).scalar_one_or_none()


def for_application(session: Session, application_id: str) -> Merchant | None:
    return session.execute(
        select(Merchant).where(Merchant.application_id == application_id)
    ).scalar_one_or_none()


def newest(session: Session, limit: int, offset: int = 0) -> Sequence[Merchant]:
    """A page of merchants, the most recently created first."""
    return (
        session.execute(select(Merchant).order_by(Merchant.id.desc()).limit(limit).offset(offset))
        .scalars()
        .all()
    )


def matching_identities(
    session: Session, id_number_tokens: Collection[str], usccs: Collection[str]
) -> Sequence[tuple[str, str, str | None]]:
    """(MID, ID number token, credit code) of merchants, not closed, with one of these ID
    numbers or credit codes, oldest first."""
    if not id_number_tokens and not usccs:
        return []
    m = _merchants.c
    rows = session.execute(
        select(m.mid, m.id_number_token, m.uscc)
        .where(
            m.status != str(MerchantStatus.CLOSED),
            or_(m.id_number_token.in_(list(id_number_tokens)), m.uscc.in_(list(usccs))),
        )
        .order_by(m.id)
    )
    return [(r.mid, r.id_number_token, r.uscc) for r in rows]
