"""Closing a merchant, the retention schedule after its termination date, and the purge
of its personal data (docs/privacy.md), through the HTTP API, the worker and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from poshub.bootstrap import AppState
from poshub.cli import main
from poshub.contracts.models import Contract
from poshub.core import ids
from poshub.core.clock import business_date
from poshub.core.db import utcnow
from poshub.core.settings import Settings
from poshub.demo import tiny_png
from poshub.onboarding import repository as onboarding_repository
from poshub.onboarding.models import AccessCodeFailure, Application, MobileChallenge
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
    # The business date now, not at import: a run may cross midnight in Beijing.
    today = business_date(utcnow())
    _, mid = approved_merchant(client)
    for user in ("reviewer", "admin", "support"):
        assert _close(client, mid, today, user).status_code == 403
    csrf = login(client, "ops")
    no_reason = client.post(
        f"/api/v1/merchants/{mid}/close",
        headers=csrf,
        json={"terminated_on": today.isoformat(), "reason": ""},
    )
    assert no_reason.status_code == 422
    assert "reason" in {d["field"] for d in no_reason.json()["detail"]}
    future = _close(client, mid, today + dt.timedelta(days=1))
    assert future.status_code == 422
    assert [d["field"] for d in future.json()["detail"]] == ["terminated_on"]

    closed = _close(client, mid, today, "risk")
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["status"] == "closed"
    assert body["terminated_on"] == today.isoformat()
    assert body["retained_until"] == today.replace(year=today.year + 5).isoformat()
    login(client, "auditor")
    actions = [r["action"] for r in client.get("/api/v1/audit", params={"entity_id": mid}).json()]
    assert "merchant.closed" in actions

    again = _close(client, mid, today)
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


# --- Contracts, SMS codes, addresses and field work (issue 8 follow-up) -------------------------


def _site_survey_with_photo(client: TestClient, mid: str) -> tuple[str, str]:
    """A site survey with a photo, an appointment note naming a person and a cancellation
    reason, over HTTP as operations and the technician do; its number and photo hash."""
    ops = login(client, "ops")
    response = client.post(
        "/api/v1/work-orders",
        json={"kind": "site_survey", "mid": mid, "technician": "tech"},
        headers=ops,
    )
    assert response.status_code == 201, response.text
    number: str = response.json()["number"]
    tech = login(client, "tech")
    photo = client.post(
        f"/api/v1/work-orders/{number}/photos",
        files={"file": ("shop.png", tiny_png("purge-photo"), "image/png")},
        data={"caption": "门头"},
        headers=tech,
    )
    assert photo.status_code == 201, photo.text
    scheduled = client.post(
        f"/api/v1/work-orders/{number}/steps/scheduled",
        json={
            "appointment_at": (utcnow() + dt.timedelta(days=1)).isoformat(),
            "note": "联系店主王小明 13800138000",
        },
        headers=tech,
    )
    assert scheduled.status_code == 200, scheduled.text
    cancelled = client.post(
        f"/api/v1/work-orders/{number}/steps/cancelled",
        json={"reason": "王小明说店已转让"},
        headers=login(client, "ops"),
    )
    assert cancelled.status_code == 200, cancelled.text
    sha256: str = photo.json()["sha256"]
    return number, sha256


def test_purge_anonymises_signed_contracts_sms_codes_addresses_and_field_work(
    client: TestClient,
    state: AppState,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    created, mid = contracted_merchant(client)
    number, photo_sha = _site_survey_with_photo(client, mid)
    ops = login(client, "ops")
    [contract] = client.get(f"/api/v1/merchants/{mid}/contracts", headers=ops).json()
    assert contract["status"] == "signed"
    assert contract["merchant_signer_name"] not in (None, "***")
    assert contract["merchant_signed_ip"]
    store = state.onboarding.store
    assert store.exists(contract["pdf_sha256"])
    assert store.exists(photo_sha)
    with state.db.unit_of_work() as uow:
        session = uow.session
        assert session.scalar(
            select(func.count())
            .select_from(MobileChallenge)
            .where(MobileChallenge.application_id == created["id"])
        )
        application = session.get(Application, created["id"])
        assert application is not None
        application.source_address = "203.0.113.9"  # as the web form records it
        uow.commit()

    assert _close(client, mid, FIVE_YEARS_AGO - dt.timedelta(days=1)).status_code == 200
    assert _cli_purge(settings, monkeypatch) == 0
    assert f"purged merchant {mid}" in capsys.readouterr().out

    # The signed contract: numbers, dates, plan and the hashes of what was signed stay;
    # the people, the account and the addresses go, and so does the PDF file.
    ops = login(client, "ops")
    [purged] = client.get(f"/api/v1/merchants/{mid}/contracts", headers=ops).json()
    for key in ("contract_number", "version", "status", "effective_from", "pdf_sha256"):
        assert purged[key] == contract[key]
    assert purged["fee_plan_code"] == contract["fee_plan_code"]
    assert purged["merchant_signed_at"] == contract["merchant_signed_at"]
    assert purged["merchant_signer_name"] == "***"
    assert purged["merchant_signed_ip"] is None
    terms = purged["terms"]
    assert terms["merchant_address"] == "***"
    assert terms["merchant_representative"] == "***"
    assert terms["account_name"] == "***"
    assert terms["merchant_mobile_masked"] == "***"
    assert terms["merchant_business_name"] == contract["terms"]["merchant_business_name"]
    assert contract["merchant_signer_name"] not in str(purged)
    pdf = client.get(f"/api/v1/merchants/{mid}/contracts/{contract['id']}/pdf", headers=ops)
    assert pdf.status_code == 404
    assert pdf.json()["error"] == "contract_purged"
    assert not store.exists(contract["pdf_sha256"])

    # The field work: photos (rows and file), address, mobile, names and notes.
    order = client.get(f"/api/v1/work-orders/{number}", headers=ops).json()
    assert order["photos"] == []
    assert not store.exists(photo_sha)
    assert (order["site_address"], order["contact_mobile"]) == ("***", "")
    assert "王小明" not in str(order)
    assert "13800138000" not in str(order)
    assert [s["to_status"] for s in order["steps"]][-1] == "cancelled"  # the history stays

    with state.db.unit_of_work() as uow:
        session = uow.session
        row = session.get(Contract, contract["id"])
        assert row is not None
        assert row.account_number_enc == b""
        assert row.merchant_signed_user_agent is None
        assert (
            session.scalar(
                select(func.count())
                .select_from(MobileChallenge)
                .where(MobileChallenge.application_id == created["id"])
            )
            == 0
        )
        application = session.get(Application, created["id"])
        assert application is not None
        assert application.source_address is None


def _signed_contract_id(client: TestClient, mid: str) -> str:
    contracts = client.get(f"/api/v1/merchants/{mid}/contracts", headers=login(client, "ops"))
    contract_id: str = contracts.json()[0]["id"]
    return contract_id


def _refused(state: AppState, statement: str, **params: Any) -> None:
    with state.db.unit_of_work() as uow:
        with pytest.raises(DBAPIError, match="immutable"):
            uow.session.execute(text(statement), params)
        uow.session.rollback()


def test_a_signed_contract_accepts_the_purge_and_no_other_change(
    client: TestClient, state: AppState
) -> None:
    _, mid = contracted_merchant(client)
    contract_id = _signed_contract_id(client, mid)
    at = {"id": contract_id, "now": utcnow()}
    # An ordinary change, and a change dressed up as a purge, are both refused.
    _refused(state, "UPDATE contracts SET merchant_signer_name = '***' WHERE id = :id", **at)
    _refused(
        state,
        "UPDATE contracts SET purged_at = :now, pdf_sha256 = :h WHERE id = :id",
        h="0" * 64,
        **at,
    )
    _refused(state, "UPDATE contracts SET purged_at = :now, term_months = 1 WHERE id = :id", **at)
    _refused(state, "DELETE FROM contracts WHERE id = :id", **at)

    assert _close(client, mid, FIVE_YEARS_AGO - dt.timedelta(days=1)).status_code == 200
    result = run_worker(client)
    assert result["merchants_purged"] == 1
    # Once purged, nothing changes it again, not even another purge.
    _refused(state, "UPDATE contracts SET purged_at = :now WHERE id = :id", **at)
    _refused(state, "UPDATE contracts SET merchant_signer_name = NULL WHERE id = :id", **at)
    _refused(state, "DELETE FROM contracts WHERE id = :id", **at)


def test_the_purge_also_forgets_stale_access_code_failures(
    client: TestClient,
    state: AppState,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with state.db.unit_of_work() as uow:
        onboarding_repository.insert_access_code_failure(
            uow.session, "198.51.100.7", utcnow() - dt.timedelta(hours=1), forget_before=utcnow()
        )
        onboarding_repository.insert_access_code_failure(
            uow.session, "198.51.100.8", utcnow(), forget_before=utcnow() - dt.timedelta(hours=1)
        )
        uow.commit()
    assert _cli_purge(settings, monkeypatch) == 0
    with state.db.unit_of_work() as uow:
        left = uow.session.execute(select(AccessCodeFailure.source_address)).scalars().all()
    assert left == ["198.51.100.8"]
