"""A merchant with a terminal, a journal and a few risk alerts, for the tests of alerts,
cases and freezes (service, API and browser). The journal rows and the alerts are written
directly, as the gateway and the rule engine would have written them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.core.db import utcnow
from poshub.risk.models import RiskAlert
from poshub.staff import repository as staff_repository
from poshub.staff.service import Principal
from tests.gateway.journal_rows import PAN_MASKED, PAN_TOKEN
from tests.web.transactions_support import (
    DECLINED,
    ELSEWHERE,
    OTHER_MID,
    OTHER_TID,
    QR_SALE,
    SALE,
    terminal_with_journal,
)

__all__ = ["DECLINED", "ELSEWHERE", "OTHER_MID", "OTHER_TID", "QR_SALE", "SALE"]


@dataclass(frozen=True)
class World:
    mid: str
    tid: str
    alert_ids: list[int]
    """Three open alerts on the merchant: card velocity on SALE, card testing on
    DECLINED, a relocation of its terminal (no transaction)."""
    other_alert_id: int
    """An open alert on another merchant."""


def alert(**fields: Any) -> RiskAlert:
    """An open card-velocity alert as the engine raises it; ``fields`` override."""
    values: dict[str, Any] = {
        "rule_code": "card_velocity",
        "rule_version": 0,
        "action": "alert",
        "severity": "medium",
        "mid": None,
        "tid": None,
        "rrn": None,
        "pan_token": PAN_TOKEN,
        "pan_masked": PAN_MASKED,
        "amount_fen": 1234,
        "detail": {"count": 6, "max_count": 5, "window_minutes": 10},
        "status": "open",
        "case_id": None,
        "created_at": utcnow(),
        "dedupe_key": None,
    }
    values.update(fields)
    return RiskAlert(**values)


def add_alerts(state: AppState, *rows: RiskAlert) -> list[int]:
    with state.db.unit_of_work() as uow:
        uow.session.add_all(rows)
        uow.session.flush()
        found = [row.id for row in rows]
        uow.commit()
    return found


def world(client: TestClient, state: AppState, serial: str = "SN-RISK-CASE-01") -> World:
    journal = terminal_with_journal(client, state, serial)
    now = utcnow()
    on = {"mid": journal.mid, "tid": journal.tid}
    ids = add_alerts(
        state,
        alert(**on, rrn=SALE, amount_fen=12_800, created_at=now - dt.timedelta(minutes=30)),
        alert(
            **on,
            rule_code="card_testing",
            action="decline",
            severity="high",
            rrn=DECLINED,
            amount_fen=688_000,
            detail={"declines": 6, "max_declines": 5, "window_minutes": 10},
            created_at=now - dt.timedelta(minutes=20),
        ),
        alert(
            **on,
            rule_code="relocation",
            severity="high",
            pan_token=None,
            pan_masked=None,
            amount_fen=None,
            detail={
                "latitude": 31.2304,
                "longitude": 121.4737,
                "distance_km": 402.3,
                "max_km": 5.0,
            },
            created_at=now - dt.timedelta(minutes=10),
        ),
        alert(mid=OTHER_MID, tid=OTHER_TID, rrn=ELSEWHERE),
    )
    return World(journal.mid, journal.tid, ids[:3], ids[3])


def principal(state: AppState, username: str = "risk") -> Principal:
    with state.db.unit_of_work(read_only=True) as uow:
        user = staff_repository.by_username(uow.session, username)
        assert user is not None
        return Principal(
            user.id,
            user.username,
            user.display_name,
            staff_repository.roles_of(uow.session, user.id),
        )
