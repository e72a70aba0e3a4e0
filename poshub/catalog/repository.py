from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from poshub.catalog.models import FeePlan, TerminalModel


def terminal_models(session: Session, *, active_only: bool = True) -> Sequence[TerminalModel]:
    statement = select(TerminalModel).order_by(TerminalModel.kind, TerminalModel.code)
    if active_only:
        statement = statement.where(TerminalModel.active.is_(True))
    return session.execute(statement).scalars().all()


def terminal_model(session: Session, code: str) -> TerminalModel | None:
    return session.execute(
        select(TerminalModel).where(TerminalModel.code == code)
    ).scalar_one_or_none()


def fee_plans_in_force(session: Session, on: dt.date) -> Sequence[FeePlan]:
    """For each plan code, the newest version whose ``effective_from`` is on or before ``on``."""
    latest = (
        select(FeePlan.code, func.max(FeePlan.version).label("version"))
        .where(FeePlan.effective_from <= on)
        .group_by(FeePlan.code)
        .subquery()
    )
    return (
        session.execute(
            select(FeePlan)
            .join(latest, (FeePlan.code == latest.c.code) & (FeePlan.version == latest.c.version))
            .order_by(FeePlan.monthly_rent_fen, FeePlan.code)
        )
        .scalars()
        .all()
    )


def fee_plan_version(session: Session, code: str, version: int) -> FeePlan | None:
    return session.execute(
        select(FeePlan).where(FeePlan.code == code, FeePlan.version == version)
    ).scalar_one_or_none()
