"""`poshub demo` seeds a database that shows every state of the product."""

from __future__ import annotations

from pathlib import Path

import pytest

from poshub.bootstrap import AppState
from poshub.cli import main
from poshub.contracts import repository as contract_repository
from poshub.core import audit
from poshub.core.settings import Settings
from poshub.demo import DEMO_MID, DEMO_TID, seed
from poshub.merchants import repository as merchant_repository
from poshub.onboarding import repository
from poshub.risk import cases as risk_cases
from poshub.terminals import hsm
from poshub.terminals import repository as terminal_repository

TEST_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def test_seed_has_applications_in_every_state_and_the_demo_merchant(state: AppState) -> None:
    with state.db.unit_of_work() as uow:
        assert seed(uow.session, state.onboarding) is True
        uow.commit()
    with state.db.unit_of_work() as uow:
        assert seed(uow.session, state.onboarding) is False  # idempotent
        counts = repository.status_counts(uow.session)
        assert set(counts) >= {
            "draft",
            "submitted",
            "under_review",
            "needs_info",
            "approved",
            "rejected",
        }
        merchant = merchant_repository.by_mid(uow.session, DEMO_MID)
        assert merchant is not None
        assert merchant.mcc == "5411"
        assert merchant.region_code.startswith("3401")
        assert merchant.status == "live"
        assert audit.verify(uow.session)[1] is None
        # DESIGN §7: terminal 10000001, active, keyed with the published test key.
        terminal = terminal_repository.terminal_by_tid(uow.session, DEMO_TID)
        assert terminal is not None
        assert terminal.status == "active"
        assert terminal.merchant_id == merchant.id
        key = terminal_repository.current_key(uow.session, terminal.id)
        assert key is not None
        assert key.kcv == "08D7B4FB"
        assert key.source == "known_test_key"
        assert hsm.unwrap_tmk(state.vault.key_block_key, key.key_block) == TEST_KEY
        contract = contract_repository.latest_signed(uow.session, merchant.id)
        assert contract is not None
        assert contract.status == "signed"
        # The risk officer's queue has work: open alerts and one open case with evidence,
        # and nothing frozen (the gateway tests trade on the demo terminal).
        queue = risk_cases.alert_queue(uow.session, risk_cases.parse_alert_filter())
        assert queue.total == 2
        (case,) = risk_cases.case_list(uow.session, status="open").rows
        assert len(risk_cases.case_detail(uow.session, case).alerts) == 3
        assert risk_cases.merchant_risk(uow.session, DEMO_MID).freezes == []


def test_no_clear_master_key_in_the_demo_database(state: AppState, settings: Settings) -> None:
    with state.db.unit_of_work() as uow:
        seed(uow.session, state.onboarding)
        uow.commit()
    if state.db.dialect != "sqlite":
        pytest.skip("file scan applies to the embedded database")
    state.db.dispose()
    data = b"".join(p.read_bytes() for p in settings.data_dir.glob("poshub.db*"))
    assert b"08D7B4FB" in data  # the check value is there: the scan reads the right files
    for form in (TEST_KEY, TEST_KEY.hex().encode(), TEST_KEY.hex().upper().encode()):
        assert form not in data


def test_demo_command_seeds_and_prints_logins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["--data-dir", str(tmp_path), "demo", "--no-serve"]) == 0
    out = capsys.readouterr().out
    assert "poshub-demo-admin" in out
    assert DEMO_MID in out
    assert DEMO_TID in out
    assert "test master key" in out
    for role in (
        "reviewer",
        "risk_officer",
        "operations",
        "technician",
        "support_agent",
        "auditor",
    ):
        assert role in out
    assert (tmp_path / "poshub.db").exists()
    assert (tmp_path / "kek.hex").exists()
    # The seeded chain is anchored outside the database: verify holds without the worker.
    monkeypatch.setenv("POSHUB_MODE", "demo")  # the demo's KEK file in the data directory
    assert main(["--data-dir", str(tmp_path), "audit", "verify"]) == 0
    assert "audit log intact" in capsys.readouterr().out


def test_demo_staff_cover_every_maker_checker_step(state: AppState) -> None:
    """Reviewers approve what another reviewer corrected, operators countersign what
    another operator prepared and approve key exports another requested, risk officers
    second-approve overrides and approve limit changes another risk officer asked for: the
    demo needs two people wherever one may not act alone."""
    from poshub.demo import DEMO_USERS
    from poshub.staff import repository as staff_repository

    with state.db.unit_of_work() as uow:
        seed(uow.session, state.onboarding)
        uow.commit()
    with state.db.unit_of_work() as uow:
        holders: dict[str, int] = {}
        for user in DEMO_USERS:
            row = staff_repository.by_username(uow.session, user.username)
            assert row is not None
            for role in staff_repository.roles_of(uow.session, row.id):
                holders[role] = holders.get(role, 0) + 1
    assert holders["reviewer"] >= 2
    assert holders["operations"] >= 2
    assert holders["risk_officer"] >= 2
