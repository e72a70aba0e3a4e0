"""Limits under maker-checker and rule management (poshub.risk.controls), at the service:
a risk officer asks, another approves (never the requester: 403), the approval is the
next version; what is in force for a merchant and a terminal (the default scaled by the
grade, the merchant's own amounts, a terminal only lower); rule edits validated field by
field, the running rule untouched by a refused one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from poshub.bootstrap import AppState
from poshub.core.audit import AuditEntry
from poshub.core.db import utcnow
from poshub.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from poshub.merchants import repository as merchant_repository
from poshub.risk import controls
from poshub.risk.models import ChangeStatus, Channel, RiskLimit, RiskRuleVersion
from poshub.risk.schemas import (
    CardVelocity,
    LimitChangeIn,
    LimitValues,
    RuleCode,
    RuleEdit,
    RulePreviewIn,
)
from poshub.staff.service import Principal
from tests.factories import add_second_risk_officer, approved_merchant, principal_of, terminal_row

QR = Channel.QR


@pytest.fixture
def officers(state: AppState) -> tuple[Principal, Principal]:
    """The seeded risk officer and a second one (the checker)."""
    second = add_second_risk_officer(state)
    return principal_of(state, "risk"), second


@pytest.fixture
def mid(client: TestClient) -> str:
    return approved_merchant(client)[1]


def _change(**fields: Any) -> LimitChangeIn:
    data: dict[str, Any] = {"scope": "merchant", "channel": "qr", "reason": "Wholesale shop."}
    data.update(fields)
    return LimitChangeIn.model_validate(data)


def _request(state: AppState, who: Principal, **fields: Any) -> int:
    with state.db.unit_of_work() as uow:
        change = controls.request_limit_change(uow.session, who, _change(**fields), now=utcnow())
        uow.commit()
        return change.id


def _approve(state: AppState, who: Principal, change_id: int, note: str = "") -> int:
    with state.db.unit_of_work() as uow:
        version = controls.approve_limit_change(uow.session, who, change_id, note, now=utcnow())
        uow.commit()
        return version.version


def _refused_fields(state: AppState, who: Principal, **fields: Any) -> dict[str, str]:
    with state.db.unit_of_work() as uow, pytest.raises(ValidationFailed) as refused:
        controls.request_limit_change(uow.session, who, _change(**fields), now=utcnow())
    return {e.field: e.code for e in refused.value.errors}


def _in_force(state: AppState, mid: str, tid: str | None = None) -> dict[Channel, Any]:
    with state.db.unit_of_work(read_only=True) as uow:
        return controls.limits_in_force(uow.session, mid, tid)


@dataclass(frozen=True)
class Audited:
    actor_id: str
    entity_id: str
    details: dict[str, Any]


def _audit(state: AppState, action: str) -> list[Audited]:
    with state.db.unit_of_work(read_only=True) as uow:
        rows = uow.session.execute(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        ).scalars()
        return [Audited(e.actor_id, e.entity_id, e.details) for e in rows]


# --- Maker-checker ----------------------------------------------------------------------------


class TestApproval:
    def test_another_officer_approves_and_each_approval_is_the_next_version(
        self, state: AppState, officers: tuple[Principal, Principal], mid: str
    ) -> None:
        maker, checker = officers
        first = _request(
            state, maker, subject=mid, per_transaction_fen=2_000_000, per_day_fen=20_000_000
        )
        assert _in_force(state, mid)[QR][0].per_transaction_fen == 1_000_000  # not yet
        assert _approve(state, checker, first, "Checked the shop.") == 1
        merchant, terminal = _in_force(state, mid)[QR]
        assert (merchant.per_transaction_fen, merchant.per_day_fen) == (2_000_000, 20_000_000)
        assert terminal == LimitValues(per_transaction_fen=2_000_000)

        # The checker may ask too, and the first requester then checks.
        second = _request(state, checker, subject=mid, per_transaction_fen=1_500_000)
        assert _approve(state, maker, second) == 2
        merchant, _ = _in_force(state, mid)[QR]
        # Amounts left empty in a merchant's own version follow the default.
        assert (merchant.per_transaction_fen, merchant.per_day_fen) == (1_500_000, 10_000_000)

        with state.db.unit_of_work(read_only=True) as uow:
            approved = controls.limit_change(uow.session, first)
            assert approved.status == ChangeStatus.APPROVED
            assert (approved.decided_by, approved.decision_note) == ("risk2", "Checked the shop.")
            history = controls.limit_history(uow.session, subject=mid)
            assert [v.version for v in history] == [2, 1]
            assert history[1].change_id == first
        requested = _audit(state, "risk.limit_change_requested")
        assert [e.actor_id for e in requested] == ["risk", "risk2"]
        assert requested[0].details["requested"]["per_day_fen"] == 20_000_000
        approvals = _audit(state, "risk.limit_change_approved")
        assert approvals[0].details["before"] is None
        assert approvals[1].details["before"]["per_transaction_fen"] == 2_000_000
        assert approvals[1].details["after"]["per_transaction_fen"] == 1_500_000

    def test_the_requester_cannot_approve_or_reject_their_own_request(
        self, state: AppState, officers: tuple[Principal, Principal], mid: str
    ) -> None:
        maker, _ = officers
        change_id = _request(state, maker, subject=mid, per_transaction_fen=500_000)
        for decide in (
            lambda s: controls.approve_limit_change(s, maker, change_id, now=utcnow()),
            lambda s: controls.reject_limit_change(s, maker, change_id, "No.", now=utcnow()),
        ):
            with state.db.unit_of_work() as uow, pytest.raises(Forbidden) as refused:
                decide(uow.session)
            assert refused.value.status_code == 403
            assert refused.value.code == "own_limit_change"
        with state.db.unit_of_work(read_only=True) as uow:
            assert controls.limit_change(uow.session, change_id).status == ChangeStatus.PENDING
            assert not uow.session.execute(select(RiskLimit)).first()
        assert _audit(state, "risk.limit_change_approved") == []

    def test_only_a_risk_officer_decides(
        self, state: AppState, officers: tuple[Principal, Principal], mid: str
    ) -> None:
        change_id = _request(state, officers[0], subject=mid, per_transaction_fen=500_000)
        auditor = principal_of(state, "auditor")
        with state.db.unit_of_work() as uow, pytest.raises(Forbidden) as refused:
            controls.approve_limit_change(uow.session, auditor, change_id, now=utcnow())
        assert refused.value.code == "risk_officer_required"

    def test_reject_needs_a_note_and_leaves_the_limits(
        self, state: AppState, officers: tuple[Principal, Principal], mid: str
    ) -> None:
        maker, checker = officers
        change_id = _request(state, maker, subject=mid, per_transaction_fen=500_000)
        with state.db.unit_of_work() as uow, pytest.raises(ValidationFailed) as refused:
            controls.reject_limit_change(uow.session, checker, change_id, "  ", now=utcnow())
        assert [e.field for e in refused.value.errors] == ["note"]
        with state.db.unit_of_work() as uow:
            controls.reject_limit_change(
                uow.session, checker, change_id, "Not justified.", now=utcnow()
            )
            uow.commit()
        with state.db.unit_of_work(read_only=True) as uow:
            change = controls.limit_change(uow.session, change_id)
            assert (change.status, change.decision_note) == ("rejected", "Not justified.")
        assert _in_force(state, mid)[QR][0].per_transaction_fen == 1_000_000
        with state.db.unit_of_work() as uow, pytest.raises(Conflict) as decided:
            controls.approve_limit_change(uow.session, checker, change_id, now=utcnow())
        assert decided.value.code == "limit_change_decided"
        assert _audit(state, "risk.limit_change_rejected")[0].actor_id == "risk2"

    def test_only_the_requester_withdraws_and_one_request_waits_at_a_time(
        self, state: AppState, officers: tuple[Principal, Principal], mid: str
    ) -> None:
        maker, checker = officers
        change_id = _request(state, maker, subject=mid, per_transaction_fen=500_000)
        with state.db.unit_of_work() as uow, pytest.raises(Conflict) as waiting:
            controls.request_limit_change(
                uow.session, checker, _change(subject=mid, per_day_fen=1_000_000), now=utcnow()
            )
        assert waiting.value.code == "limit_change_pending"
        # Another channel of the same merchant is another request.
        other = _request(state, checker, subject=mid, channel="credit", per_day_fen=1_000_000)
        with state.db.unit_of_work() as uow, pytest.raises(Forbidden) as refused:
            controls.withdraw_limit_change(uow.session, checker, change_id, now=utcnow())
        assert refused.value.code == "not_requester"
        with state.db.unit_of_work() as uow:
            controls.withdraw_limit_change(uow.session, maker, change_id, now=utcnow())
            uow.commit()
        with state.db.unit_of_work() as uow, pytest.raises(Conflict):
            controls.withdraw_limit_change(uow.session, maker, change_id, now=utcnow())
        assert _request(state, checker, subject=mid, per_day_fen=1_000_000) > other
        assert _audit(state, "risk.limit_change_withdrawn")[0].actor_id == "risk"

    def test_an_unknown_request_is_404(
        self, state: AppState, officers: tuple[Principal, Principal]
    ) -> None:
        with state.db.unit_of_work() as uow, pytest.raises(NotFound):
            controls.approve_limit_change(uow.session, officers[1], 999, now=utcnow())


class TestRequestValidation:
    def test_each_wrong_field_is_named(
        self, state: AppState, officers: tuple[Principal, Principal], mid: str
    ) -> None:
        maker, _ = officers
        assert _refused_fields(
            state,
            maker,
            subject=mid,
            per_transaction_fen=1_000_000,
            per_day_fen=999_999,
            per_month_fen=500_000,
            per_card_per_day_fen=10,
        ) == {
            "per_day_fen": "limit.below_per_transaction",
            "per_month_fen": "limit.below_narrower",
            "per_card_per_day_fen": "limit.below_per_transaction",
        }
        assert _refused_fields(state, maker, subject="898340154119999", per_day_fen=1) == {
            "subject": "limit.no_merchant"
        }
        assert _refused_fields(
            state, maker, scope="terminal", subject="99999999", per_day_fen=1
        ) == {"subject": "limit.no_terminal"}
        assert _refused_fields(state, maker, scope="default", subject=mid, per_day_fen=1) == {
            "subject": "limit.default_subject"
        }

    def test_a_terminal_only_lowers_its_merchants_limits(
        self, state: AppState, officers: tuple[Principal, Principal], mid: str
    ) -> None:
        maker, checker = officers
        terminal_row(state, mid, "20000001")
        assert _refused_fields(
            state,
            maker,
            scope="terminal",
            subject="20000001",
            per_transaction_fen=1_000_001,
            per_day_fen=20_000_000,
            per_card_per_day_fen=100,
        ) == {
            "per_transaction_fen": "limit.above_merchant",
            "per_day_fen": "limit.above_merchant",
            "per_card_per_day_fen": "limit.card_per_merchant",
        }
        change_id = _request(
            state, maker, scope="terminal", subject="20000001", per_transaction_fen=300_000
        )
        _approve(state, checker, change_id)
        merchant, terminal = _in_force(state, mid, "20000001")[QR]
        assert merchant.per_transaction_fen == 1_000_000
        assert terminal == LimitValues(per_transaction_fen=300_000)
        with state.db.unit_of_work(read_only=True) as uow:
            view = controls.merchant_limits_view(
                uow.session,
                merchant_repository.by_mid(uow.session, mid),  # type: ignore[arg-type]
            )
        assert [(t.tid, t.channel, t.values.per_transaction_fen) for t in view.terminals] == [
            ("20000001", QR, 300_000)
        ]

    def test_a_request_that_changes_nothing_is_a_conflict(
        self, state: AppState, officers: tuple[Principal, Principal], mid: str
    ) -> None:
        with state.db.unit_of_work() as uow, pytest.raises(Conflict) as unchanged:
            controls.request_limit_change(
                uow.session,
                officers[0],
                _change(scope="default", per_transaction_fen=1_000_000, per_day_fen=10_000_000),
                now=utcnow(),
            )
        assert unchanged.value.code == "limits_unchanged"
        # A merchant without limits of its own asking for none changes nothing either.
        with state.db.unit_of_work() as uow, pytest.raises(Conflict):
            controls.request_limit_change(
                uow.session, officers[0], _change(subject=mid), now=utcnow()
            )


class TestLimitsInForce:
    def test_qr_defaults_and_cards_unlimited(self, state: AppState, mid: str) -> None:
        limits_now = _in_force(state, mid)
        assert limits_now[QR][0] == LimitValues(1_000_000, 10_000_000)
        assert limits_now[Channel.DEBIT][0] == LimitValues()
        assert limits_now[Channel.CREDIT][1] == LimitValues()

    def test_a_high_risk_grade_scales_the_default_but_not_own_limits(
        self, state: AppState, officers: tuple[Principal, Principal], client: TestClient
    ) -> None:
        maker, checker = officers
        _, graded = approved_merchant(client)
        _, other = approved_merchant(client)
        with state.db.unit_of_work() as uow:
            for number in (graded, other):
                merchant = merchant_repository.by_mid(uow.session, number)
                assert merchant is not None
                merchant.risk_grade = "high"
            uow.commit()
        assert _in_force(state, graded)[QR][0] == LimitValues(500_000, 5_000_000)
        _approve(state, checker, _request(state, maker, subject=other, per_day_fen=8_000_000))
        # Its own amount as approved; the one left empty is the scaled default.
        assert _in_force(state, other)[QR][0] == LimitValues(500_000, 8_000_000)

        # A new default reaches every merchant without limits of its own.
        _approve(
            state,
            maker,
            _request(
                state,
                checker,
                scope="default",
                per_transaction_fen=2_000_000,
                per_day_fen=10_000_000,
                per_month_fen=100_000_000,
            ),
        )
        assert _in_force(state, graded)[QR][0] == LimitValues(1_000_000, 5_000_000, 50_000_000)
        with state.db.unit_of_work(read_only=True) as uow:
            assert controls.default_limits(uow.session)[QR].version is not None

    def test_a_terminal_of_another_merchant_or_an_unknown_mid_is_404(
        self, state: AppState, mid: str, client: TestClient
    ) -> None:
        _, other = approved_merchant(client)
        terminal_row(state, other, "20000002")
        with state.db.unit_of_work(read_only=True) as uow:
            with pytest.raises(NotFound):
                controls.limits_in_force(uow.session, mid, "20000002")
            with pytest.raises(NotFound):
                controls.limits_in_force(uow.session, "898340154119999")


# --- Rules ----------------------------------------------------------------------------------


def _edit(state: AppState, code: str, *, reason: str = "Tuning.", **fields: Any) -> int:
    body = {"enabled": True, "action": "alert", "params": {}, "reason": reason} | fields
    with state.db.unit_of_work() as uow:
        row = controls.edit_rule(
            uow.session, principal_of(state, "risk"), code, RuleEdit(**body), now=utcnow()
        )
        uow.commit()
        return row.version


def _invalid(state: AppState, code: str, **fields: Any) -> dict[str, str]:
    """The fields a refused edit names (``params.max_count``: type)."""
    body = {"enabled": True, "action": "alert", "params": {}, "reason": "Tuning."} | fields
    with state.db.unit_of_work() as uow, pytest.raises(ValidationError) as refused:
        controls.edit_rule(
            uow.session, principal_of(state, "risk"), code, RuleEdit(**body), now=utcnow()
        )
    return {".".join(str(p) for p in e["loc"]): e["type"] for e in refused.value.errors()}


class TestRules:
    def test_every_rule_runs_its_default_until_edited(self, state: AppState) -> None:
        with state.db.unit_of_work(read_only=True) as uow:
            rules = controls.rules_in_force(uow.session)
        assert [r.definition.code for r in rules] == list(RuleCode)
        assert all(r.saved is None and r.setting.version == 0 for r in rules)

    def test_an_edit_is_a_new_version_keeping_thresholds_not_given(self, state: AppState) -> None:
        assert _edit(state, "card_velocity", action="decline", params={"max_count": 3}) == 1
        assert _edit(state, "card_velocity", enabled=False, action="decline") == 2
        with state.db.unit_of_work(read_only=True) as uow:
            state_now = controls.rule_in_force(uow.session, "card_velocity")
            history = [v.version for v in controls.rule_history(uow.session, "card_velocity")]
        assert state_now.setting.version == 2
        assert state_now.setting.enabled is False
        assert state_now.setting.params.max_count == 3
        assert state_now.setting.params.window_minutes == CardVelocity().window_minutes
        assert history == [2, 1]
        edited = _audit(state, "risk.rule_edited")
        assert edited[0].entity_id == "card_velocity"
        assert edited[0].details["changes"] == {"params.max_count": [CardVelocity().max_count, 3]}
        assert edited[1].details["changes"] == {"enabled": [True, False]}

    @pytest.mark.parametrize(
        ("code", "fields", "named"),
        [
            (
                "card_velocity",
                {"params": {"max_count": -1}},
                {"params.max_count": "greater_than_equal"},
            ),
            (
                "card_velocity",
                {"params": {"max_count": "many"}},
                {"params.max_count": "int_parsing"},
            ),
            ("card_velocity", {"params": {"per_day": 3}}, {"params.per_day": "extra_forbidden"}),
            ("ticket_above_norm", {"params": {"factor": 0}}, {"params.factor": "greater_than"}),
            (
                "cashout",
                {"params": {"night_start": "24:00"}},
                {"params.night_start": "value_error"},
            ),
            (
                "cashout",
                {"params": {"night_start": "02:00", "night_end": "02:00"}},
                {"params.night_end": "value_error"},
            ),
            ("refund_ratio", {"action": "decline"}, {"action": "literal_error"}),
            (
                "relocation",
                {"params": {"lock_terminal": "maybe"}},
                {"params.lock_terminal": "bool_parsing"},
            ),
        ],
    )
    def test_a_wrong_field_is_named_and_the_rule_keeps_running(
        self, state: AppState, code: str, fields: dict[str, Any], named: dict[str, str]
    ) -> None:
        assert _invalid(state, code, **fields) == named
        with state.db.unit_of_work(read_only=True) as uow:
            assert controls.rule_in_force(uow.session, code).saved is None
            assert not uow.session.execute(select(RiskRuleVersion)).first()
        assert _audit(state, "risk.rule_edited") == []

    def test_several_wrong_fields_at_once_after_a_saved_version(self, state: AppState) -> None:
        _edit(state, "card_testing", action="decline", params={"max_declines": 4})
        assert _invalid(
            state,
            "card_testing",
            action="decline",
            params={"max_declines": 0, "window_minutes": 100_000},
        ) == {
            "params.max_declines": "greater_than_equal",
            "params.window_minutes": "less_than_equal",
        }
        with state.db.unit_of_work(read_only=True) as uow:
            running = controls.rule_in_force(uow.session, "card_testing").setting
        assert (running.version, running.params.max_declines) == (1, 4)

    def test_unknown_rule_and_unchanged_edit(self, state: AppState) -> None:
        with state.db.unit_of_work() as uow, pytest.raises(NotFound):
            controls.edit_rule(
                uow.session,
                principal_of(state, "risk"),
                "no_such_rule",
                RuleEdit(enabled=True, action="alert", params={}, reason="x"),
                now=utcnow(),
            )
        with state.db.unit_of_work() as uow, pytest.raises(Conflict) as unchanged:
            controls.edit_rule(
                uow.session,
                principal_of(state, "risk"),
                "terminal_velocity",
                RuleEdit(enabled=True, action="alert", params={}, reason="x"),
                now=utcnow(),
            )
        assert unchanged.value.code == "rule_unchanged"

    def test_a_saved_version_that_no_longer_validates_runs_the_default(
        self, state: AppState
    ) -> None:
        with state.db.unit_of_work() as uow:
            uow.session.add(
                RiskRuleVersion(
                    code="card_velocity",
                    version=1,
                    enabled=True,
                    action="decline",
                    params={"max_count": 3, "retired_threshold": 1},
                    reason="Old code.",
                    created_by="risk",
                    created_at=utcnow(),
                )
            )
            uow.commit()
        with state.db.unit_of_work(read_only=True) as uow:
            running = controls.rule_in_force(uow.session, "card_velocity")
        assert running.unreadable
        assert running.setting.version == 0
        assert running.setting.params == CardVelocity()

    def test_preview_validates_like_an_edit_and_saves_nothing(self, state: AppState) -> None:
        with state.db.unit_of_work(read_only=True) as uow, pytest.raises(ValidationError):
            controls.preview_setting(
                uow.session,
                "card_velocity",
                RulePreviewIn(action="alert", params={"max_count": 0}),
                now=utcnow(),
            )
        pytest.importorskip("poshub.risk.preview")  # helper H1's replay of the journal
        with state.db.unit_of_work(read_only=True) as uow:
            result = controls.preview_setting(
                uow.session,
                "card_velocity",
                RulePreviewIn(action="alert", params={"max_count": 1}, days=3),
                now=utcnow(),
            )
            assert not uow.session.execute(select(RiskRuleVersion)).first()
        assert (result.alerts, result.current_alerts, result.days) == (0, 0, 3)
