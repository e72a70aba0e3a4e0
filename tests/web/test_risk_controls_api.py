"""The risk limits and rules API (/api/v1/risk/limits…, /api/v1/risk/rules…): maker-checker
over HTTP (self-approval 403), bad input as 422 naming the field, rule edits versioned and a
refused one leaving the rule as it ran, reading for auditors and writing for risk officers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.risk.schemas import CardVelocity
from tests.factories import (
    add_second_risk_officer,
    approved_merchant,
    login,
    login_second_risk_officer,
    terminal_row,
)

LIMITS = "/api/v1/risk/limits"
RULES = "/api/v1/risk/rules"
EN = {"Accept-Language": "en"}


def _fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {d["field"]: d["msg"] for d in response.json()["detail"]}


def _request(client: TestClient, csrf: dict[str, str], **fields: Any) -> Any:
    body = {"scope": "merchant", "channel": "qr", "reason": "Wholesale shop."} | fields
    return client.post(f"{LIMITS}/changes", headers={**csrf, **EN}, json=body)


def test_a_limit_change_needs_a_second_risk_officer(client: TestClient, state: AppState) -> None:
    _, mid = approved_merchant(client)
    add_second_risk_officer(state)
    csrf = login(client, "risk")
    created = _request(client, csrf, subject=mid, per_transaction_fen=2_000_000)
    assert created.status_code == 201, created.text
    change = created.json()
    assert (change["status"], change["requested_by"]) == ("pending", "risk")

    own = client.post(f"{LIMITS}/changes/{change['id']}/approve", headers={**csrf, **EN}, json={})
    assert own.status_code == 403, own.text
    assert own.json()["error"] == "own_limit_change"
    assert "Another risk officer" in own.json()["message"]

    pending = client.get(f"{LIMITS}/changes", params={"status": "pending"}).json()
    assert [c["id"] for c in pending] == [change["id"]]

    csrf = login_second_risk_officer(client)
    approved = client.post(
        f"{LIMITS}/changes/{change['id']}/approve", headers=csrf, json={"note": "Seen the shop."}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["version"]["version"] == 1
    assert approved.json()["change"]["decided_by"] == "risk2"

    view = client.get(f"{LIMITS}/merchants/{mid}").json()
    qr = next(c for c in view["channels"] if c["channel"] == "qr")
    assert qr["in_force"]["per_transaction_fen"] == 2_000_000
    assert qr["in_force"]["per_day_fen"] == 10_000_000  # the default, as none was asked
    assert qr["own_version"] == 1
    versions = client.get(f"{LIMITS}/versions", params={"subject": mid}).json()
    assert [(v["version"], v["change_id"]) for v in versions] == [(1, change["id"])]
    again = client.post(f"{LIMITS}/changes/{change['id']}/reject", headers=csrf, json={"note": "x"})
    assert again.status_code == 409


def test_reject_needs_a_note_and_withdraw_is_the_requesters(
    client: TestClient, state: AppState
) -> None:
    _, mid = approved_merchant(client)
    add_second_risk_officer(state)
    csrf = login(client, "risk")
    first = _request(client, csrf, subject=mid, per_day_fen=5_000_000).json()
    second = _request(client, csrf, subject=mid, channel="credit", per_day_fen=5_000_000).json()
    waiting = _request(client, csrf, subject=mid, per_day_fen=6_000_000)
    assert waiting.status_code == 409
    assert waiting.json()["error"] == "limit_change_pending"

    checker = login_second_risk_officer(client)
    no_note = client.post(f"{LIMITS}/changes/{first['id']}/reject", headers=checker, json={})
    assert "note" in _fields(no_note)
    rejected = client.post(
        f"{LIMITS}/changes/{first['id']}/reject", headers=checker, json={"note": "Not justified."}
    )
    assert rejected.json()["status"] == "rejected"
    not_mine = client.post(f"{LIMITS}/changes/{second['id']}/withdraw", headers=checker)
    assert not_mine.status_code == 403
    assert not_mine.json()["error"] == "not_requester"

    csrf = login(client, "risk")
    withdrawn = client.post(f"{LIMITS}/changes/{second['id']}/withdraw", headers=csrf)
    assert withdrawn.json()["status"] == "withdrawn"
    assert client.post(f"{LIMITS}/changes/999/withdraw", headers=csrf).status_code == 404


def test_bad_limit_requests_name_the_field(client: TestClient, state: AppState) -> None:
    _, mid = approved_merchant(client)
    terminal_row(state, mid, "20000011")
    csrf = login(client, "risk")
    assert "per_transaction_fen" in _fields(
        _request(client, csrf, subject=mid, per_transaction_fen=-5)
    )
    below = _fields(
        _request(client, csrf, subject=mid, per_transaction_fen=1_000_000, per_day_fen=999_999)
    )
    assert below == {"per_day_fen": "The daily limit cannot be below the per-transaction limit."}
    assert "channel" in _fields(_request(client, csrf, subject=mid, channel="cash"))
    assert "scope" in _fields(_request(client, csrf, scope="region", subject=mid))
    assert "per_week_fen" in _fields(_request(client, csrf, subject=mid, per_week_fen=1))
    assert _fields(_request(client, csrf, subject="898340154119999", per_day_fen=1)) == {
        "subject": "No merchant has this MID."
    }
    above = _fields(
        _request(client, csrf, scope="terminal", subject="20000011", per_transaction_fen=1_000_001)
    )
    assert list(above) == ["per_transaction_fen"]
    assert "¥10,000.00" in above["per_transaction_fen"]


def test_limits_in_force_read_by_auditors_not_written(client: TestClient, state: AppState) -> None:
    _, mid = approved_merchant(client)
    terminal_row(state, mid, "20000012")
    csrf = login(client, "auditor")
    defaults = {d["channel"]: d for d in client.get(f"{LIMITS}/defaults").json()}
    assert defaults["qr"]["limits"]["per_transaction_fen"] == 1_000_000
    assert defaults["qr"]["limits"]["per_day_fen"] == 10_000_000
    assert defaults["debit"]["limits"]["per_transaction_fen"] is None
    assert defaults["qr"]["version"] == 0
    terminal = client.get(f"{LIMITS}/terminals/20000012").json()
    assert (terminal["mid"], terminal["tid"]) == (mid, "20000012")
    qr = next(c for c in terminal["channels"] if c["channel"] == "qr")
    assert qr["terminal"]["per_transaction_fen"] == 1_000_000
    assert client.get(f"{LIMITS}/terminals/99999999").status_code == 404
    assert client.get(f"{LIMITS}/merchants/898340154119999").status_code == 404
    refused = _request(client, csrf, subject=mid, per_day_fen=1)
    assert refused.status_code == 403
    assert refused.json()["error"] == "role_forbidden"
    login(client, "reviewer")
    assert client.get(f"{LIMITS}/defaults").status_code == 403


def _put(client: TestClient, csrf: dict[str, str], code: str, **fields: Any) -> Any:
    body = {"enabled": True, "action": "alert", "params": {}, "reason": "Tuning."} | fields
    return client.put(f"{RULES}/{code}", headers={**csrf, **EN}, json=body)


def test_rules_are_listed_edited_and_versioned(client: TestClient) -> None:
    csrf = login(client, "risk")
    listed = {r["code"]: r for r in client.get(RULES).json()}
    assert len(listed) == 10
    assert listed["card_velocity"]["version"] == 0
    assert listed["card_velocity"]["params"] == CardVelocity().model_dump()
    assert listed["card_velocity"]["defaults"] == listed["card_velocity"]["params"]
    assert listed["refund_ratio"]["actions"] == ["alert", "hold"]

    saved = _put(client, csrf, "card_velocity", action="decline", params={"max_count": 3})
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["version"] == 1
    assert body["params"] == {"max_count": 3, "window_minutes": CardVelocity().window_minutes}
    assert body["saved"]["created_by"] == "risk"
    assert [v["version"] for v in body["history"]] == [1]
    unchanged = _put(client, csrf, "card_velocity", action="decline", params={"max_count": 3})
    assert unchanged.status_code == 409


@pytest.mark.parametrize(
    ("code", "fields", "field"),
    [
        ("card_velocity", {"params": {"max_count": -1}}, "params.max_count"),
        (
            "card_velocity",
            {"params": {"max_count": 0, "window_minutes": 0}},
            "params.window_minutes",
        ),
        ("card_velocity", {"params": {"velocity": 3}}, "params.velocity"),
        ("cashout", {"params": {"night_end": "23:00"}}, "params.night_end"),
        ("refund_ratio", {"action": "decline"}, "action"),
        ("card_velocity", {"action": "explode"}, "action"),
        ("card_velocity", {"reason": ""}, "reason"),
    ],
)
def test_a_bad_rule_edit_is_422_naming_the_field_and_changes_nothing(
    client: TestClient, code: str, fields: dict[str, Any], field: str
) -> None:
    csrf = login(client, "risk")
    before = client.get(f"{RULES}/{code}").json()
    assert field in _fields(_put(client, csrf, code, **fields))
    after = client.get(f"{RULES}/{code}").json()
    assert after == before


def test_an_unknown_rule_is_404_and_auditors_only_read(client: TestClient) -> None:
    csrf = login(client, "risk")
    assert _put(client, csrf, "no_such_rule").status_code == 404
    assert client.get(f"{RULES}/no_such_rule").status_code == 404
    csrf = login(client, "auditor")
    assert client.get(f"{RULES}/cashout").json()["history"] == []
    assert _put(client, csrf, "cashout").status_code == 403


def test_preview_validates_and_answers_counts(client: TestClient) -> None:
    csrf = login(client, "risk")
    url = f"{RULES}/card_velocity/preview"
    bad = client.post(
        url, headers={**csrf, **EN}, json={"action": "alert", "params": {"max_count": 0}}
    )
    assert "params.max_count" in _fields(bad)
    too_long = client.post(url, headers=csrf, json={"action": "alert", "params": {}, "days": 365})
    assert "days" in _fields(too_long)
    pytest.importorskip("poshub.risk.preview")  # helper H1's replay of the journal
    answer = client.post(url, headers=csrf, json={"action": "alert", "params": {"max_count": 1}})
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert (preview["code"], preview["days"], preview["complete"]) == ("card_velocity", 7, True)
    assert (preview["alerts"], preview["current_alerts"], preview["rows"]) == (0, 0, 0)
    assert client.get(f"{RULES}/card_velocity").json()["version"] == 0
