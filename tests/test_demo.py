"""`poshub demo` seeds a database that shows every state of the product."""

from __future__ import annotations

from pathlib import Path

import pytest

from poshub.cli import main
from poshub.core import audit
from poshub.demo import DEMO_MID, seed
from poshub.onboarding import repository
from poshub.web.state import AppState


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
        merchant = repository.merchant_by_mid(uow.session, DEMO_MID)
        assert merchant is not None
        assert merchant.mcc == "5411"
        assert merchant.region_code.startswith("3401")
        assert audit.verify(uow.session)[1] is None


def test_demo_command_seeds_and_prints_logins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(tmp_path), "demo", "--no-serve"]) == 0
    out = capsys.readouterr().out
    assert "poshub-demo-admin" in out
    assert DEMO_MID in out
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
