"""Closing a merchant, the retention schedule after its termination date, and the purge
of its personal data (docs/privacy.md), through the HTTP API, the worker and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.cli import main
from poshub.core import ids
from poshub.core.clock import business_date
from poshub.core.db import utcnow
from poshub.core.settings import Settings
from poshub.onboarding import repository as onboarding_repository
from poshub.privacy.retention import years_before
from tests.conftest import TEST_KEK
from tests.factories import (
    PNG,
    approved_merchant,
    bearer,
    contracted_merchant,
    login,
    run_worker,
    stock_in,
)

TODAY = business_date(utcnow())
FIVE_YEARS_AGO = years_before(TODAY, 5)


def _close(client: TestClient, mid: str, on: dt.date, user: str = "ops") -> Any:
    return client.post(
        f"/api/v1/merchants/{mid}/close",
        headers={**login(client, user), "Accept-Language": "en"},
        json={"terminated_on": on.isoformat(), "reason": "Contract ended, not renewed."},
    )


def _merchant(client: TestClient, mid: str) -> dict[str, Any]:
    login(client, "auditor")
    response = client.get(f"/api/v1/merchants/{mid}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _purged_audit(client: TestClient, mid: str) -> list[dict[str, Any]]:
    login(client, "auditor")
    rows = client.get("/api/v1/audit", params={"entity_id": mid}).json()
    return [r for r in rows if r["action"] == "merchant.purged"]


def test_closure_needs_a_closing_role_a_reason_and_a_date_not_in_the_future(
    client: TestClient,
) -> None:
    _, mid = approved_merchant(client)
    for user in ("reviewer", "admin", "support"):
        assert _close(client, mid, TODAY, user).status_code == 403
    csrf = login(client, "ops")
    no_reason = client.post(
        f"/api/v1/merchants/{mid}/close",
        headers=csrf,
        json={"terminated_on": TODAY.isoformat(), "reason": ""},
    )
    assert no_reason.status_code == 422
    assert "reason" in {d["field"] for d in no_reason.json()["detail"]}
    future = _close(client, mid, TODAY + dt.timedelta(days=1))
    assert future.status_code == 422
    assert [d["field"] for d in future.json()["detail"]] == ["terminated_on"]

    closed = _close(client, mid, TODAY, "risk")
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["status"] == "closed"
    assert body["terminated_on"] == TODAY.isoformat()
    assert body["retained_until"] == TODAY.replace(year=TODAY.year + 5).isoformat()
    login(client, "auditor")
    actions = [r["action"] for r in client.get("/api/v1/audit", params={"entity_id": mid}).json()]
    assert "merchant.closed" in actions

    again = _close(client, mid, TODAY)
    assert again.status_code == 409
    assert again.json()["error"] == "invalid_merchant_transition"


def test_closure_is_refused_naming_the_terminals_not_recalled(client: TestClient) -> None:
    _, mid = contracted_merchant(client)
    stock_in(client, ["SN-CLOSE-0001"])
    allocated = client.post(
        f"/api/v1/merchants/{mid}/terminals",
        headers=login(client, "ops"),
        json={"serial_number": "SN-CLOSE-0001"},
    )
    assert allocated.status_code == 201, allocated.text
    tid = allocated.json()["tid"]

    refused = _close(client, mid, TODAY)
    assert refused.status_code == 409
    assert refused.json()["error"] == "terminals_not_recalled"
    assert tid in refused.json()["message"]
    assert _merchant(client, mid)["status"] != "closed"


def _add_own_document(state: AppState, application_id: str) -> str:
    """A document only this application has (test set-up, written directly)."""
    content = PNG + b"own"
    digest = state.onboarding.store.put(content)
    with state.db.unit_of_work() as uow:
        onboarding_repository.insert_document(
            uow.session,
            {
                "id": ids.new_id(),
                "application_id": application_id,
                "kind": "id_card_front",
                "content_type": "image/png",
                "sha256": digest,
                "size_bytes": len(content),
                "file_name": "shop.png",
                "uploaded_at": utcnow(),
                "uploaded_by": application_id,
            },
        )
        uow.commit()
    return digest


def _cli_purge(settings: Settings, monkeypatch: pytest.MonkeyPatch, *extra: str) -> int:
    monkeypatch.setenv("POSHUB_KEK", TEST_KEK)
    monkeypatch.setenv("POSHUB_MODE", "test")
    assert settings.database_url is not None
    return main(
        [
            "--data-dir",
            str(settings.data_dir),
            "--database-url",
            settings.database_url,
            "privacy",
            "purge",
            *extra,
        ]
    )


def test_purge_runs_after_the_retention_period_and_never_on_an_open_merchant(
    client: TestClient,
    state: AppState,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    due_created, due = approved_merchant(client)
    kept_created, kept = approved_merchant(client)
    _, open_mid = approved_merchant(client)
    assert _close(client, due, FIVE_YEARS_AGO - dt.timedelta(days=1)).status_code == 200
    assert _close(client, kept, FIVE_YEARS_AGO + dt.timedelta(days=1)).status_code == 200

    def documents(created: dict[str, Any]) -> list[dict[str, Any]]:
        view = client.get(
            f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
        ).json()
        found: list[dict[str, Any]] = view["documents"]
        return found

    store = state.onboarding.store
    # Identical uploads share one stored file; give the due application a file of its own.
    own_file = _add_own_document(state, due_created["id"])
    shared_files = {d["sha256"] for d in documents(kept_created)}
    assert own_file not in shared_files
    assert {d["sha256"] for d in documents(due_created)} == shared_files | {own_file}
    assert store.exists(own_file)

    # A longer configured retention keeps even the older one.
    monkeypatch.setenv("POSHUB_RETENTION_YEARS", "6")
    assert _cli_purge(settings, monkeypatch) == 0
    assert "0 merchant(s) purged" in capsys.readouterr().out
    assert _merchant(client, due)["purged_at"] is None
    monkeypatch.delenv("POSHUB_RETENTION_YEARS")

    assert _cli_purge(settings, monkeypatch, "--batch", "1") == 0
    out = capsys.readouterr().out
    assert f"purged merchant {due}" in out
    assert kept not in out
    assert open_mid not in out

    purged = _merchant(client, due)
    assert purged["purged_at"] is not None
    assert purged["legal_name"] == "***"
    assert (purged["mid"], purged["mcc"], purged["status"]) == (due, "5411", "closed")
    assert purged["settlement_account_masked"]  # the masked form stays for the accounts
    for mid in (kept, open_mid):
        record = _merchant(client, mid)
        assert record["purged_at"] is None
        assert record["legal_name"] != "***"

    application = client.get(
        f"/api/v1/applications/{due_created['id']}",
        headers=bearer(due_created["access_token"]),
    ).json()
    assert application["documents"] == []
    assert application["id_number_masked"] == ""
    assert application["mobile"] == ""
    assert application["address"]["detail"] == "***"
    assert not store.exists(own_file)
    assert all(store.exists(digest) for digest in shared_files), "still another's files"
    assert documents(kept_created), "the retained merchant keeps its documents"

    assert len(_purged_audit(client, due)) == 1
    assert _purged_audit(client, kept) == []
    # Purging again finds nothing more to do.
    assert _cli_purge(settings, monkeypatch) == 0
    assert "0 merchant(s) purged" in capsys.readouterr().out


def test_the_worker_purges_in_bounded_batches(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poshub.core import limits

    monkeypatch.setattr(limits, "PURGE_BATCH_MAX", 1)
    mids = [approved_merchant(client)[1] for _ in range(2)]
    for mid in mids:
        assert _close(client, mid, FIVE_YEARS_AGO - dt.timedelta(days=3)).status_code == 200
    assert run_worker(client)["merchants_purged"] == 1
    assert run_worker(client)["merchants_purged"] == 1
    assert run_worker(client)["merchants_purged"] == 0
    assert all(_merchant(client, mid)["purged_at"] for mid in mids)
