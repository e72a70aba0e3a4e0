"""Loading and listing the product catalogue."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from poshub.catalog import repository
from poshub.catalog.models import FeePlan, TerminalKind, TerminalModel

_MODEL_FIELDS = (
    "kind", "manufacturer", "name_zh", "name_en", "description_zh", "description_en", "chip",
    "contactless", "magstripe", "qr_scan", "printer", "multi_currency", "connectivity", "price_fen",
)  # fmt: skip


MODEL_CODES_TTL_SECONDS = 30.0
"""How stale the cached list of orderable terminal models may be."""


class ActiveModelCodes:
    """The codes of orderable terminal models, re-read at most every 30 seconds.

    Every application checks its terminal lines against the catalogue. Reading the
    catalogue in the applicant's write transaction would start it early and hold the
    SQLite write lock through all the validation that follows; the catalogue changes
    a few times a year, so a short-lived copy is the better trade.
    """

    def __init__(self, ttl_seconds: float = MODEL_CODES_TTL_SECONDS) -> None:
        self._ttl_seconds = ttl_seconds
        self._codes: frozenset[str] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def get(self, session: Session) -> frozenset[str]:
        with self._lock:
            if self._codes is not None and time.monotonic() - self._read_at < self._ttl_seconds:
                return self._codes
        codes = frozenset(m.code for m in repository.terminal_models(session, active_only=True))
        with self._lock:
            self._codes, self._read_at = codes, time.monotonic()
        return codes


def default_catalog() -> dict[str, Any]:
    text = resources.files("poshub.catalog").joinpath("data/catalog.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def read_catalog(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def load(session: Session, data: dict[str, Any]) -> tuple[int, int]:
    """Insert or update terminal models; add fee-plan versions that are not there yet.

    A fee-plan version already stored is never changed: a new version must be added
    with a later ``effective_from`` (R18). Returns (models, new plan versions).
    """
    models = 0
    for item in data.get("terminal_models", []):
        TerminalKind(item["kind"])
        model = repository.terminal_model(session, item["code"])
        if model is None:
            model = TerminalModel(code=item["code"], active=True)
            session.add(model)
        for field in _MODEL_FIELDS:
            setattr(model, field, item[field])
        models += 1
    plans = 0
    for item in data.get("fee_plans", []):
        existing = repository.fee_plan_version(session, item["code"], int(item["version"]))
        if existing is not None:
            continue
        session.add(
            FeePlan(
                code=item["code"],
                version=int(item["version"]),
                effective_from=dt.date.fromisoformat(item["effective_from"]),
                name_zh=item["name_zh"],
                name_en=item["name_en"],
                applicant_kinds=item["applicant_kinds"],
                debit_rate=Decimal(item["debit_rate"]),
                debit_cap_fen=item["debit_cap_fen"],
                credit_rate=Decimal(item["credit_rate"]),
                qr_rate=Decimal(item["qr_rate"]),
                d0_surcharge_rate=Decimal(item["d0_surcharge_rate"]),
                deposit_fen=item["deposit_fen"],
                deposit_refund_volume_fen=item["deposit_refund_volume_fen"],
                deposit_refund_days=item["deposit_refund_days"],
                monthly_rent_fen=item["monthly_rent_fen"],
                rent_waiver_volume_fen=item["rent_waiver_volume_fen"],
                maintenance_fee_fen=item["maintenance_fee_fen"],
            )
        )
        plans += 1
    session.flush()
    return models, plans
