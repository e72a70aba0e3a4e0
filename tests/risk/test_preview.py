"""A rule setting tried on the journal (poshub/risk/preview.py): the alerts it would have
raised over the last days, beside the setting in force, on SQLite and PostgreSQL. Journal
rows are written straight into the demo database (merchant 898340154110001, MCC 5411)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from poshub.core.clock import SHANGHAI
from poshub.core.db import Database, utcnow
from poshub.risk.models import RiskRuleVersion, RuleAction
from poshub.risk.preview import RulePreview, preview_rule
from poshub.risk.schemas import RuleCode, RuleSetting, default_setting
from tests.gateway.conftest import demo_database, demo_template  # noqa: F401  (fixtures)
from tests.gateway.journal_rows import txn, write

NOW = dt.datetime(2026, 6, 15, 18, 0, tzinfo=SHANGHAI)
YESTERDAY = NOW - dt.timedelta(days=1)


def sale(index: int, at: dt.datetime, **fields: Any) -> Any:
    rrn = f"{index:012d}"
    return txn(rrn, received_at=at.astimezone(dt.UTC), dedupe_key=f"10000001:000001:{rrn[-6:]}:F",
               channel="debit", **fields)  # fmt: skip


def proposed(code: RuleCode, action: RuleAction | None = None, **params: Any) -> RuleSetting:
    base = default_setting(code)
    return RuleSetting(
        code,
        base.version,
        True,
        action or base.action,
        base.params.model_copy(update=params),
    )


def run(database: Database, setting: RuleSetting, days: int = 7, **options: Any) -> RulePreview:
    with database.unit_of_work(read_only=True) as uow:
        return preview_rule(uow.session, setting, days=days, now=NOW.astimezone(dt.UTC), **options)


def test_a_stricter_card_velocity_would_have_declined_a_burst(
    demo_database: Database,  # noqa: F811
) -> None:
    burst = [sale(i, YESTERDAY + dt.timedelta(seconds=30 * i)) for i in range(1, 9)]
    write(demo_database, *burst)
    found = run(demo_database, proposed(RuleCode.CARD_VELOCITY, max_count=5))
    # One alert for the card in that hour (the sixth to eighth payments were declined).
    assert found == RulePreview(
        alerts=1, transactions=1, merchants=1, days=7, current_alerts=0, rows=8
    )
    as_alert = run(demo_database, proposed(RuleCode.CARD_VELOCITY, RuleAction.ALERT, max_count=5))
    assert as_alert.alerts == 1
    off = dataclasses.replace(proposed(RuleCode.CARD_VELOCITY, max_count=5), enabled=False)
    assert run(demo_database, off).alerts == 0


def test_the_setting_in_force_is_compared_and_days_bound_the_count(
    demo_database: Database,  # noqa: F811
) -> None:
    sales = [
        sale(1, NOW - dt.timedelta(hours=3), amount_fen=100_000),
        sale(
            2,
            NOW - dt.timedelta(hours=2),
            kind="refund",
            amount_fen=40_000,
            original_rrn="000000000001",
        ),
        # Ten days ago: the same ratio, outside a week.
        sale(3, NOW - dt.timedelta(days=10), amount_fen=100_000),
        sale(4, NOW - dt.timedelta(days=10, hours=-1), kind="refund", amount_fen=40_000),
    ]
    write(demo_database, *sales)
    with demo_database.unit_of_work() as uow:
        uow.session.add(
            RiskRuleVersion(
                code="refund_ratio", version=1, enabled=True, action="alert",
                params={"max_percent": 50}, reason="looser", created_by="risk",
                created_at=utcnow(),
            )
        )  # fmt: skip
        uow.commit()
    strict = run(demo_database, proposed(RuleCode.REFUND_RATIO, max_percent=30))
    assert (strict.alerts, strict.current_alerts, strict.transactions) == (1, 0, 1)
    assert run(demo_database, proposed(RuleCode.REFUND_RATIO, max_percent=30), days=14).alerts == 2
    # More days than a preview may replay are cut to the bound.
    assert run(demo_database, proposed(RuleCode.REFUND_RATIO), days=400).days == 31


def test_merchant_rules_use_the_merchants_category(demo_database: Database) -> None:  # noqa: F811
    write(
        demo_database,
        sale(1, NOW - dt.timedelta(hours=1), amount_fen=80_000),  # ten times 80 CNY: within
        sale(2, NOW - dt.timedelta(minutes=30), amount_fen=80_001),
    )
    found = run(demo_database, default_setting(RuleCode.TICKET_ABOVE_NORM))
    assert (found.alerts, found.current_alerts) == (1, 1)
    lenient = run(demo_database, proposed(RuleCode.TICKET_ABOVE_NORM, factor=20))
    assert lenient.alerts == 0


def test_streaming_in_chunks_counts_the_same_and_stops_at_the_row_bound(
    demo_database: Database,  # noqa: F811
) -> None:
    write(demo_database, *(sale(i, YESTERDAY + dt.timedelta(seconds=i)) for i in range(1, 21)))
    setting = proposed(RuleCode.CARD_VELOCITY, max_count=3)
    whole = run(demo_database, setting)
    chunked = run(demo_database, setting, chunk=3)
    assert whole == chunked
    assert whole.rows == 20
    cut = run(demo_database, setting, rows_max=10)
    assert (cut.rows, cut.complete) == (10, False)


def test_a_rule_outside_the_gateway_previews_nothing(demo_database: Database) -> None:  # noqa: F811
    assert run(demo_database, default_setting(RuleCode.RELOCATION)).alerts == 0
