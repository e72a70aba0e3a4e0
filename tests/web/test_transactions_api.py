"""GET /api/v1/transactions and /api/v1/transactions/{rrn}: who may read them, what a bad
filter gets (422 naming the field), what the JSON holds (never the PAN token or a full
PAN) and response-code meanings in the caller's language."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.core.clock import business_date
from poshub.core.db import utcnow
from poshub.web.roles import TRANSACTION_READ
from tests.factories import STAFF, bearer, create, login
from tests.gateway.journal_rows import MID, PAN, PAN_TOKEN, TID, txn, write

SEARCH = "/api/v1/transactions"
SALE = "000000000001"
DECLINED = "000000000002"
VOID = "000000000003"
REVERSAL = "000000000004"


@pytest.fixture
def journal(client: TestClient, state: AppState) -> TestClient:
    """Today's sale, a declined sale (51), the void of the sale and its reversal."""
    now = utcnow().replace(microsecond=0)
    write(
        state.db,
        txn(SALE, received_at=now - dt.timedelta(minutes=10)),
        txn(
            DECLINED,
            response_code="51",
            status="declined",
            auth_code=None,
            amount_fen=990_000,
            received_at=now - dt.timedelta(minutes=9),
        ),
        txn(VOID, kind="void", original_rrn=SALE, received_at=now - dt.timedelta(minutes=8)),
        txn(
            REVERSAL,
            kind="reversal",
            mti="0400",
            original_rrn=VOID,
            reversal_reason="A0",
            status="answered",
            upstream="none",
            upstream_us=None,
            received_at=now - dt.timedelta(minutes=7),
        ),
    )
    return client


def _get(client: TestClient, url: str, **kwargs: Any) -> Any:
    response = client.get(url, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


# --- Who may read --------------------------------------------------------------------------


def test_anonymous_callers_are_refused(journal: TestClient) -> None:
    for url in (SEARCH, f"{SEARCH}/{SALE}"):
        response = journal.get(url)
        assert response.status_code == 401
        assert response.json()["error"] == "login_required"
        assert SALE not in response.text


@pytest.mark.parametrize("username", list(STAFF))
def test_roles(journal: TestClient, username: str) -> None:
    login(journal, username)
    allowed = not set(STAFF[username][1]).isdisjoint(TRANSACTION_READ)
    for url in (SEARCH, f"{SEARCH}/{SALE}"):
        response = journal.get(url, headers={"Accept-Language": "en"})
        if allowed:
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "role_forbidden"
            assert SALE not in response.text


def test_the_declared_roles() -> None:
    """Reviewers decide applications and technicians install terminals: neither reads
    payments. Everyone else on the staff does."""
    assert {r.value for r in TRANSACTION_READ} == {
        "admin",
        "operations",
        "risk_officer",
        "support_agent",
        "auditor",
    }


def test_an_applicant_token_reads_nothing(journal: TestClient) -> None:
    created = create(journal)
    journal.cookies.clear()
    for url in (SEARCH, f"{SEARCH}/{SALE}"):
        response = journal.get(url, headers=bearer(created["access_token"]))
        assert response.status_code == 401
        assert SALE not in response.text


# --- Bad filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("mid=12345", "mid", "mid_format"),
        ("tid=1234567", "tid", "tid_format"),
        ("rrn=12345678901", "rrn", "rrn_format"),
        ("last4=12", "last4", "last4_format"),
        ("response_code=5", "response_code", "response_code_format"),
        ("response_code=A7", "response_code", "response_code_unknown"),
        ("date_from=2026-13-01", "date_from", "date_format"),
        ("date_to=01/12/2026", "date_to", "date_format"),
        ("date_from=2026-12-04&date_to=2026-12-01", "date_to", "date_range_inverted"),
        ("date_from=2026-01-01&date_to=2026-12-31", "date_to", "date_range_too_long"),
        ("kind=purchase", "kind", "kind_unknown"),
        ("page=0", "page", "greater_than_equal"),
        ("page_size=201", "page_size", "less_than_equal"),
        ("page=two", "page", "int_parsing"),
        (f"mid={'9' * 40}", "mid", "string_too_long"),
    ],
)
def test_a_bad_filter_is_a_422_naming_the_field(
    journal: TestClient, query: str, field: str, code: str
) -> None:
    login(journal, "ops")
    response = journal.get(f"{SEARCH}?{query}", headers={"Accept-Language": "en"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_failed"
    assert [(d["field"], d["code"]) for d in body["detail"]] == [(field, code)]
    assert body["detail"][0]["msg"]


def test_messages_in_both_languages(journal: TestClient) -> None:
    login(journal, "support")
    url = f"{SEARCH}?response_code=A7&date_from=2026-01-01&date_to=2026-12-31"
    en = journal.get(url, headers={"Accept-Language": "en"}).json()
    zh = journal.get(url, headers={"Accept-Language": "zh-CN"}).json()
    assert [d["msg"] for d in en["detail"]] == [
        "A7 is not a response code of the specification.",
        "A search spans at most 92 days; narrow the dates.",
    ]
    assert [d["msg"] for d in zh["detail"]] == [
        "A7 不是规范中的应答码。",
        "一次查询最多跨 92 天，请缩小日期范围。",
    ]


def test_a_bad_rrn_in_the_path(journal: TestClient) -> None:
    login(journal, "ops")
    response = journal.get(f"{SEARCH}/12345")
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "rrn"
    response = journal.get(f"{SEARCH}/999999999999")
    assert response.status_code == 404
    assert response.json()["error"] == "transaction_not_found"


# --- What the JSON holds ------------------------------------------------------------------------


def test_search_result(journal: TestClient) -> None:
    login(journal, "ops")
    body = _get(journal, SEARCH, headers={"Accept-Language": "en"})
    today = business_date(utcnow())
    assert body["date_from"] == (today - dt.timedelta(days=6)).isoformat()
    assert body["date_to"] == today.isoformat()
    assert (body["total"], body["page"], body["page_size"], body["pages"]) == (4, 1, 50, 1)
    assert [i["rrn"] for i in body["items"]] == [REVERSAL, VOID, DECLINED, SALE]
    sale = body["items"][3]
    assert sale["tid"] == TID
    assert sale["mid"] == MID
    assert sale["kind"] == "sale"
    assert sale["status"] == "approved"
    assert (sale["amount_fen"], sale["amount"], sale["currency"]) == (1234, "¥12.34", "CNY")
    assert sale["pan_masked"] == "622202*********0123"
    assert sale["pan_last4"] == "0123"
    assert (sale["response_code"], sale["response_meaning"]) == (
        "00",
        "Approved or completed successfully",
    )
    assert sale["auth_code"] == "A1B2C3"
    assert sale["stan"] == SALE[-6:]
    assert sale["batch_no"] == "000001"
    assert sale["received_at"].endswith("+08:00")
    assert sale["responded_at"].endswith("+08:00")
    assert (sale["upstream"], sale["upstream_ms"], sale["total_ms"]) == ("answered", 12.3, 15.7)
    assert (sale["refunded_fen"], sale["refunded"]) == (0, "¥0.00")
    assert body["items"][2]["amount"] == "¥9,900.00"
    reversal = body["items"][0]
    assert reversal["original_rrn"] == VOID
    assert (reversal["reversal_reason"], reversal["reversal_reason_meaning"]) == (
        "A0",
        "MAC verification failed",
    )
    assert reversal["upstream_ms"] is None


def test_filters_and_paging_through_the_api(journal: TestClient) -> None:
    login(journal, "risk")
    assert [i["rrn"] for i in _get(journal, f"{SEARCH}?response_code=51")["items"]] == [DECLINED]
    assert [i["rrn"] for i in _get(journal, f"{SEARCH}?kind=void")["items"]] == [VOID]
    assert {i["rrn"] for i in _get(journal, f"{SEARCH}?rrn={SALE}")["items"]} == {SALE, VOID}
    assert _get(journal, f"{SEARCH}?tid=10000099")["items"] == []
    assert _get(journal, f"{SEARCH}?last4=0000")["total"] == 0
    page = _get(journal, f"{SEARCH}?page=2&page_size=3")
    assert (page["total"], page["pages"], len(page["items"])) == (4, 2, 1)


def test_detail(journal: TestClient) -> None:
    login(journal, "auditor")
    body = _get(journal, f"{SEARCH}/{VOID}", headers={"Accept-Language": "en"})
    assert body["transaction"]["rrn"] == VOID
    assert body["original"]["rrn"] == SALE
    assert [a["rrn"] for a in body["acting"]] == [REVERSAL]
    assert [s["rrn"] for s in body["timeline"]] == [SALE, VOID, REVERSAL]


def test_no_pan_token_and_no_full_pan_in_any_answer(journal: TestClient) -> None:
    login(journal, "admin")
    answers = [
        journal.get(SEARCH),
        journal.get(f"{SEARCH}?rrn={SALE}"),
        *(journal.get(f"{SEARCH}/{rrn}") for rrn in (SALE, DECLINED, VOID, REVERSAL)),
    ]
    for response in answers:
        assert response.status_code == 200
        assert PAN_TOKEN not in response.text
        assert "pan_token" not in response.text
        assert PAN not in response.text
        # Nothing that could be a card number: no run of 13 or more digits but the MID
        # (RRNs are 12).
        assert not re.search(r"\d{13,}", response.text.replace(MID, "<mid>"))


@pytest.mark.parametrize(
    ("headers", "query", "meaning"),
    [
        ({"Accept-Language": "en"}, "", "Insufficient funds"),
        ({"Accept-Language": "zh-CN,zh;q=0.9"}, "", "资金不足"),
        ({}, "", "资金不足"),
        ({"Accept-Language": "zh-CN"}, "&lang=en", "Insufficient funds"),
    ],
)
def test_response_meaning_in_the_callers_language(
    journal: TestClient, headers: dict[str, str], query: str, meaning: str
) -> None:
    login(journal, "ops")
    body = _get(journal, f"{SEARCH}?response_code=51{query}", headers=headers)
    assert body["items"][0]["response_meaning"] == meaning
    detail = _get(journal, f"{SEARCH}/{DECLINED}?{query.lstrip('&')}", headers=headers)
    assert detail["transaction"]["response_meaning"] == meaning


def test_api_answers_are_not_cached(journal: TestClient) -> None:
    login(journal, "ops")
    assert journal.get(SEARCH).headers["cache-control"] == "no-store"
