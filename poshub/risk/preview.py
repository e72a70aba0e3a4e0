"""A rule setting tried on the journal before it is saved (rule management's preview): how
many alerts it would have raised over the last N days, beside the setting in force.

The journal's financial rows are replayed in the order they arrived through two risk
engines (poshub/risk/engine.py) — one with the proposed setting, one with the setting in
force, every other rule off and no limits — so the preview runs exactly the code that runs
in the gateway: the same pure rule, the same windows, the same once-a-day alerts. A row the
gateway declined itself (never forwarded) counts as an attempt but does not reach the
network's answer, as in the gateway.

Bounded: at most ``limits.RISK_PREVIEW_DAYS_MAX`` days and
``limits.RISK_PREVIEW_ROWS_MAX`` rows, read in chunks of ``limits.RISK_PREVIEW_CHUNK_ROWS``;
a velocity window or the month of the new-merchant rule starts reading a little earlier
(those rows build state; their hits are not counted). Blocked cards and merchant profiles
are today's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.orm import Session

from poshub.core import limits
from poshub.core.clock import SHANGHAI
from poshub.gateway import repository as journal_statements
from poshub.gateway.models import TxnKind, TxnStatus
from poshub.gateway.risk import RiskContext
from poshub.risk import repository
from poshub.risk.engine import RiskEngine
from poshub.risk.models import Channel
from poshub.risk.schemas import (
    RULES,
    LimitScope,
    RuleCode,
    RuleSetting,
    default_setting,
    setting_from_row,
)

NO_LIMITS: Final = (None, None, None, None)
APPROVED: Final = frozenset({TxnStatus.APPROVED.value, TxnStatus.COMPLETED.value,
                             TxnStatus.VOIDED.value})  # fmt: skip
"""Rows the network approved (a voided sale was approved first)."""


@dataclass(frozen=True, slots=True)
class RulePreview:
    alerts: int
    """Alerts the proposed setting would have raised over the days replayed."""
    transactions: int
    """Distinct transactions those alerts name."""
    merchants: int
    days: int
    current_alerts: int
    """What the setting in force would have raised over the same rows."""
    rows: int = 0
    """Journal rows replayed (the warm-up included)."""
    complete: bool = True
    """False when ``limits.RISK_PREVIEW_ROWS_MAX`` stopped the replay early."""


@dataclass(slots=True)
class _Tally:
    engine: RiskEngine
    alerts: int = 0
    rrns: set[str] = dataclasses.field(default_factory=set)
    mids: set[str] = dataclasses.field(default_factory=set)


def preview_rule(
    session: Session,
    setting: RuleSetting,
    *,
    days: int,
    now: dt.datetime,
    rows_max: int = limits.RISK_PREVIEW_ROWS_MAX,
    chunk: int = limits.RISK_PREVIEW_CHUNK_ROWS,
) -> RulePreview:
    """How many alerts ``setting`` would have raised over the last ``days`` business days
    (today included) of the journal, beside the setting in force (``current_alerts``)."""
    days = max(1, min(days, limits.RISK_PREVIEW_DAYS_MAX))
    if not RULES[setting.code].in_gateway:
        return RulePreview(0, 0, 0, days, 0)
    today = now.astimezone(SHANGHAI).date()
    first_day = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=SHANGHAI)
    snapshot = repository.engine_snapshot(
        session,
        today=today,
        counter_keys=[],
        rows_max=limits.RISK_READ_ROWS_MAX,
        profiles_max=limits.RISK_MERCHANT_PROFILES_MAX,
        counters_max=0,
        chunk=1,
    )
    current = _in_force(snapshot, setting.code)
    proposed = _Tally(_engine(snapshot, setting, today, now))
    in_force = _Tally(_engine(snapshot, current, today, now))
    replayed = 0
    complete = True
    warmup = _warmup_start(start, setting, current)
    for row in _stream(session, warmup.date(), now, chunk):
        if replayed >= rows_max:
            complete = False
            break
        replayed += 1
        counted = row.received_at >= start
        for tally in (proposed, in_force):
            _feed(tally, row, counted=counted)
    return RulePreview(
        alerts=proposed.alerts,
        transactions=len(proposed.rrns),
        merchants=len(proposed.mids),
        days=days,
        current_alerts=in_force.alerts,
        rows=replayed,
        complete=complete,
    )


def _in_force(snapshot: repository.EngineSnapshot, code: RuleCode) -> RuleSetting:
    for row_code, version, enabled, action, params in snapshot.rules:
        if row_code == code.value:
            try:
                return setting_from_row(row_code, version, enabled, action, params)
            except (KeyError, ValueError):
                break
    return default_setting(code)


def _engine(
    snapshot: repository.EngineSnapshot, setting: RuleSetting, today: dt.date, now: dt.datetime
) -> RiskEngine:
    """An engine with only ``setting`` on, no limits and no freezes."""
    engine = RiskEngine(clock=lambda: now)
    engine.install(
        dataclasses.replace(
            snapshot,
            rules=[],
            limits=[(LimitScope.DEFAULT.value, "*", c.value, NO_LIMITS) for c in Channel],
            frozen=[],
            counters=[],
        ),
        today=today,
        full=True,
    )
    engine.settings = {
        code: dataclasses.replace(each, enabled=False) for code, each in engine.settings.items()
    } | {setting.code: setting}
    return engine


def _warmup_start(start: dt.datetime, *settings: RuleSetting) -> dt.datetime:
    """Where reading begins so that windows and month totals are full at ``start``."""
    earliest = start
    for setting in settings:
        params = setting.params
        window = getattr(params, "window_minutes", None)
        if window is not None:
            earliest = min(earliest, start - dt.timedelta(minutes=int(window)))
        if setting.code == RuleCode.NEW_MERCHANT_VOLUME:
            earliest = min(earliest, start.replace(day=1))
    return earliest


def _stream(session: Session, since_date: dt.date, until: dt.datetime, chunk: int) -> Iterator[Any]:
    after: tuple[dt.datetime, str] | None = None
    while True:
        rows = repository.journal_chunk(
            session, since_date=since_date, until=until, after=after, limit=chunk
        )
        yield from rows
        if len(rows) < chunk:
            return
        after = (rows[-1].received_at, rows[-1].rrn)


def _context(row: Any) -> RiskContext | None:
    try:
        kind = TxnKind(row.kind)
    except ValueError:
        return None
    if row.tid is None or row.mid is None:
        return None
    return RiskContext(
        kind=kind,
        tid=row.tid,
        mid=row.mid,
        amount_fen=row.amount_fen,
        pan_token=row.pan_token,
        pan_masked=row.pan_masked,
        entry_mode=None,
        rrn=row.rrn,
        received_at=row.received_at,
        channel=row.channel,
        local=row.received_at.astimezone(SHANGHAI),
        original_rrn=row.original_rrn,
    )


def _feed(tally: _Tally, row: Any, *, counted: bool) -> None:
    context = _context(row)
    if context is None:
        return
    engine = tally.engine
    decision = engine.before_forward(context)
    ops = list(decision.ops) if not decision.allow else []
    if decision.allow and row.upstream != "none" and row.response_code is not None:
        ops.extend(
            engine.finish(context, decision, row.response_code, approved=row.status in APPROVED)
        )
    if not counted:
        return
    for op in ops:
        if op.statement == journal_statements.INSERT_ALERT:
            tally.alerts += 1
            tally.rrns.add(str(op.params["rrn"]))
            tally.mids.add(str(op.params["mid"]))
