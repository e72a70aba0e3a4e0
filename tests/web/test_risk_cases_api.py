"""The risk alerts and cases API (/api/v1/risk): who may call what, 422 naming the field,
404 for what does not exist, 409 on a closed case, attachments in and out, and the
suspicious-transaction report without a full card number."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from poshub.bootstrap import AppState
from poshub.core import limits
from tests.factories import EXECUTABLE_AS_PDF, PNG, login
from tests.gateway.journal_rows import PAN, PAN_MASKED, PAN_TOKEN
from tests.risk.cases_support import DECLINED, QR_SALE, SALE, World, world

API = "/api/v1/risk"


@pytest.fixture
def risk(client: TestClient, state: AppState) -> World:
    return world(client, state)


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [d["field"] for d in response.json()["detail"]]


def _open(client: TestClient, csrf: dict[str, str], risk: World) -> dict[str, Any]:
    response = client.post(
        f"{API}/cases",
        headers=csrf,
        json={"title": "Card testing", "alert_ids": risk.alert_ids, "note": "Six declines."},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_roles_read_and_write(client: TestClient, risk: World) -> None:
    csrf = login(client, "auditor")
    assert client.get(f"{API}/alerts").status_code == 200
    refused = client.post(
        f"{API}/alerts/dismiss", headers=csrf, json={"alert_ids": [1], "reason": "x"}
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "role_forbidden"
    login(client, "ops")
    assert client.get(f"{API}/cases").status_code == 403
    assert client.get(f"{API}/freezes").status_code == 403


def test_the_queue_names_rules_and_merchants_and_refuses_bad_filters(
    client: TestClient, risk: World
) -> None:
    login(client, "risk")
    queue = client.get(
        f"{API}/alerts", params={"mid": risk.mid}, headers={"Accept-Language": "zh-CN"}
    )
    assert queue.status_code == 200, queue.text
    body = queue.json()
    assert body["total"] == 3
    newest = body["items"][0]
    assert newest["rule_code"] == "relocation"
    assert newest["rule"] == "终端移机"
    assert newest["merchant_name"] == "合肥蜀山明辉便利超市"
    assert newest["detail"]["distance_km"] == 402.3
    assert PAN_TOKEN not in queue.text
    assert _fields(
        client.get(f"{API}/alerts", params={"status": "nope", "date_from": "2026-02-30"})
    ) == [
        "status",
        "date_from",
    ]
    assert client.get(f"{API}/alerts/999999").status_code == 404
    assert client.get(f"{API}/alerts/{risk.alert_ids[0]}").json()["pan_masked"] == PAN_MASKED


def test_opening_working_and_closing_a_case(client: TestClient, risk: World) -> None:
    csrf = login(client, "risk")
    assert _fields(client.post(f"{API}/cases", headers=csrf, json={})) == ["title"]
    assert _fields(client.post(f"{API}/cases", headers=csrf, json={"title": "x", "mid": "12"})) == [
        "mid"
    ]
    case = _open(client, csrf, risk)
    reference = case["reference"]
    assert [t["rrn"] for t in case["transactions"]] == [SALE, DECLINED]
    assert [e["action"] for e in case["events"]] == ["opened"]
    base = f"{API}/cases/{reference}"

    assert client.get(f"{API}/cases/RC-20000101-0001").status_code == 404
    assert _fields(client.post(f"{base}/items", headers=csrf, json={"rrn": "123"})) == ["rrn"]
    assert (
        client.post(f"{base}/items", headers=csrf, json={"rrn": "999999999999"}).status_code == 404
    )
    assert client.post(f"{base}/items", headers=csrf, json={"rrn": QR_SALE}).status_code == 201
    assert _fields(client.post(f"{base}/notes", headers=csrf, json={"note": ""})) == ["note"]
    assert (
        client.post(f"{base}/notes", headers=csrf, json={"note": "Called the owner."}).status_code
        == 201
    )

    frozen = client.post(f"{base}/freeze-merchant", headers=csrf, json={"reason": "Card testing."})
    assert frozen.status_code == 201, frozen.text
    assert frozen.json()["kind"] == "merchant_freeze"
    assert (
        client.post(f"{base}/freeze-merchant", headers=csrf, json={"reason": "again"}).status_code
        == 409
    )
    assert _fields(
        client.post(
            f"{base}/freeze-terminal", headers=csrf, json={"tid": "19999999", "reason": "x"}
        )
    ) == ["tid"]
    held = client.post(
        f"{base}/hold-settlement", headers=csrf, json={"reason": "Refunds.", "rrn": SALE}
    )
    assert held.json()["kind"] == "transaction_hold"
    in_force = client.get(f"{API}/freezes", params={"mid": risk.mid}).json()
    assert {f["kind"] for f in in_force} == {"merchant_freeze", "transaction_hold"}

    shut = client.post(
        f"{base}/close", headers=csrf, json={"outcome": "fraud_confirmed", "note": "Done."}
    )
    assert shut.status_code == 409
    assert shut.json()["error"] == "case_has_freezes"
    assert _fields(
        client.post(f"{base}/close", headers=csrf, json={"outcome": "won", "note": "x"})
    ) == ["outcome"]
    for row in in_force:
        released = client.post(
            f"{base}/freezes/{row['id']}/release", headers=csrf, json={"reason": "Explained."}
        )
        assert released.status_code == 200, released.text
        assert released.json()["released_by"] == "risk"
    assert client.get(f"{API}/freezes").json() == []
    assert (
        client.post(f"{base}/assign", headers=csrf, json={"assignee": "nobody"}).status_code == 422
    )
    closed = client.post(
        f"{base}/close",
        headers=csrf,
        json={"outcome": "false_positive", "note": "The owner's card."},
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert [e["action"] for e in closed.json()["events"]] == [
        "opened",
        "transaction_linked",
        "note_added",
        "merchant_frozen",
        "transaction_held",
        "released",
        "released",
        "closed",
    ]
    # Closed: read-only.
    for path, payload in (
        ("notes", {"note": "late"}),
        ("freeze-merchant", {"reason": "late"}),
        ("close", {"outcome": "reported", "note": "late"}),
    ):
        late = client.post(f"{base}/{path}", headers=csrf, json=payload)
        assert late.status_code == 409, path
        assert late.json()["error"] == "case_closed"
    listed = client.get(f"{API}/cases", params={"status": "closed"}).json()
    assert [c["reference"] for c in listed["items"]] == [reference]


def test_attachments_upload_and_download(client: TestClient, risk: World) -> None:
    csrf = login(client, "risk")
    reference = _open(client, csrf, risk)["reference"]
    base = f"{API}/cases/{reference}/attachments"
    uploaded = client.post(base, headers=csrf, files={"file": ("statement.png", PNG, "image/png")})
    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()
    assert attachment["media_type"] == "image/png"
    refused = client.post(
        base, headers=csrf, files={"file": ("x.pdf", EXECUTABLE_AS_PDF, "application/pdf")}
    )
    assert _fields(refused) == ["file"]
    too_big = client.post(
        base,
        headers=csrf,
        files={
            "file": (
                "big.png",
                b"\x89PNG" + b"0" * limits.RISK_CASE_ATTACHMENT_BYTES_MAX,
                "image/png",
            )
        },
    )
    assert too_big.status_code == 413

    login(client, "auditor")
    downloaded = client.get(f"{base}/{attachment['id']}")
    assert downloaded.status_code == 200
    assert downloaded.content.startswith(b"\x89PNG")
    assert downloaded.headers["content-type"] == "image/png"
    assert "attachment" in downloaded.headers["content-disposition"]
    assert client.get(f"{base}/999999").status_code == 404


def test_the_upload_limit_of_the_edge_admits_an_attachment() -> None:
    assert limits.RISK_CASE_ATTACHMENT_BYTES_MAX + 64 * 1024 <= limits.UPLOAD_BODY_BYTES_MAX


def test_the_report_export_has_no_full_card_number(client: TestClient, risk: World) -> None:
    csrf = login(client, "risk")
    reference = _open(client, csrf, risk)["reference"]
    exported = client.post(f"{API}/cases/{reference}/export", headers=csrf)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert f"STR-{reference}.csv" in exported.headers["content-disposition"]
    text = exported.content.decode("utf-8-sig")
    assert PAN not in text
    assert PAN_TOKEN not in text
    rows = list(csv.reader(io.StringIO(text)))
    assert ["案件编号", reference] in rows
    assert [r[8] for r in rows[rows.index([]) + 2 :]] == [PAN_MASKED, PAN_MASKED]
    events = client.get(f"{API}/cases/{reference}").json()["events"]
    assert events[-1]["action"] == "report_exported"

    # The same report as a PDF, for the case file: Chinese text, masked cards only.
    pdf = client.post(f"{API}/cases/{reference}/export", params={"format": "pdf"}, headers=csrf)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert f"STR-{reference}.pdf" in pdf.headers["content-disposition"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "可疑交易报告" in text
    assert reference in text
    assert "合肥蜀山明辉便利超市" in text
    assert PAN_MASKED in text
    assert PAN not in text
    assert _fields(
        client.post(f"{API}/cases/{reference}/export", params={"format": "xls"}, headers=csrf)
    ) == ["format"]
    login(client, "auditor")
    assert (
        client.post(f"{API}/cases/{reference}/export", headers=login(client, "auditor")).status_code
        == 403
    )


def test_blocking_and_releasing_a_card(client: TestClient, risk: World) -> None:
    csrf = login(client, "risk")
    assert _fields(
        client.post(f"{API}/blocked-cards", headers=csrf, json={"rrn": "1", "reason": "x"})
    ) == ["rrn"]
    assert _fields(
        client.post(f"{API}/blocked-cards", headers=csrf, json={"rrn": QR_SALE, "reason": "x"})
    ) == ["rrn"]
    blocked = client.post(
        f"{API}/blocked-cards", headers=csrf, json={"rrn": SALE, "reason": "Stolen."}
    )
    assert blocked.status_code == 201, blocked.text
    card = blocked.json()
    assert card["pan_masked"] == PAN_MASKED
    assert PAN_TOKEN not in blocked.text
    assert [c["id"] for c in client.get(f"{API}/blocked-cards").json()] == [card["id"]]
    released = client.post(
        f"{API}/blocked-cards/{card['id']}/release", headers=csrf, json={"reason": "Found."}
    )
    assert released.status_code == 200
    assert client.get(f"{API}/blocked-cards").json() == []
    assert (
        client.post(
            f"{API}/blocked-cards/999999/release", headers=csrf, json={"reason": "x"}
        ).status_code
        == 404
    )
