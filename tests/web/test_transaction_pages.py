"""The transaction pages and the terminal page through the TestClient: rows, filters,
refusals beside the field, the empty state, paging, the detail timeline, the terminal's
transactions and session, and the links from the merchant page and the navigation."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.core.roles import Role
from poshub.web.roles import TERMINAL_PAGE_READ, TRANSACTION_READ
from poshub.web.security import LANG_COOKIE
from tests.factories import STAFF, login
from tests.gateway.journal_rows import PAN_TOKEN
from tests.web.transactions_support import (
    DECLINED,
    ELSEWHERE,
    QR_SALE,
    REFUND,
    REVERSAL,
    REVERSED_SALE,
    SALE,
    Journal,
    terminal_with_journal,
)

ALL = (SALE, DECLINED, REFUND, QR_SALE, REVERSED_SALE, REVERSAL, ELSEWHERE)


@pytest.fixture
def journal(client: TestClient, state: AppState) -> Journal:
    return terminal_with_journal(client, state, "SN-TXN-PAGE-01")


def _page(client: TestClient, url: str, status: int = 200) -> httpx.Response:
    response: httpx.Response = client.get(url)
    assert response.status_code == status, response.text[:800]
    assert response.headers["content-type"].startswith("text/html")
    return response


def _listed(html: str) -> set[str]:
    return set(re.findall(r'<tr id="txn-(\d{12})"', html))


def _allowed(username: str, roles: tuple[Role, ...]) -> bool:
    return not set(STAFF[username][1]).isdisjoint(roles)


# --- Who may open what ------------------------------------------------------------------------


def test_pages_admit_exactly_their_roles(client: TestClient, journal: Journal) -> None:
    client.cookies.set(LANG_COOKIE, "en")
    pages = [
        ("/admin/transactions", TRANSACTION_READ),
        (f"/admin/transactions/{SALE}", TRANSACTION_READ),
        (f"/admin/terminals/{journal.tid}", TERMINAL_PAGE_READ),
    ]
    for username in STAFF:
        login(client, username)
        for url, roles in pages:
            response = client.get(url)
            if _allowed(username, roles):
                assert response.status_code == 200, (username, url, response.text[:300])
            else:
                assert response.status_code == 403, (username, url)
                assert "Your role does not allow this" in response.text
                assert not _listed(response.text)
                assert "¥128.00" not in response.text
    client.cookies.clear()
    response = client.get("/admin/transactions", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=/admin/transactions"


def test_navigation_shows_transactions_to_those_who_may_read_them(
    client: TestClient, journal: Journal
) -> None:
    for username in ("ops", "risk", "support", "auditor", "admin", "reviewer", "tech"):
        login(client, username)
        html = _page(client, "/admin/merchants" if username != "tech" else "/admin/inventory").text
        shown = '<a href="/admin/transactions">交易</a>' in html
        assert shown == _allowed(username, TRANSACTION_READ), username


# --- The search page --------------------------------------------------------------------------


def test_search_lists_todays_transactions_in_chinese(client: TestClient, journal: Journal) -> None:
    login(client, "ops")
    html = _page(client, "/admin/transactions").text
    assert _listed(html) == set(ALL)
    assert "<h1>交易</h1>" in html
    # Newest first.
    order = re.findall(r'<tr id="txn-(\d{12})"', html)
    assert order == [ELSEWHERE, REVERSAL, REVERSED_SALE, QR_SALE, REFUND, DECLINED, SALE]
    declined = html.split(f'id="txn-{DECLINED}"')[1].split("</tr>")[0]
    assert "<code>51</code> 资金不足" in declined
    assert "¥6,880.00" in declined
    assert "拒绝" in declined
    assert f'href="/admin/transactions/{DECLINED}"' in declined
    assert f'href="/admin/terminals/{journal.tid}"' in declined
    refund = html.split(f'id="txn-{REFUND}"')[1].split("</tr>")[0]
    assert "退货" in refund
    assert f'href="/admin/transactions/{SALE}"' in refund  # its original
    qr = html.split(f'id="txn-{QR_SALE}"')[1].split("</tr>")[0]
    assert "扫码支付" in qr
    assert "WXP" in qr
    assert "共 7 笔交易 · 第 1/1 页" in html
    assert PAN_TOKEN not in html
    # The form shows the week searched.
    assert re.search(r'id="f-date_from" value="\d{4}-\d{2}-\d{2}"', html)


def test_search_in_english(client: TestClient, journal: Journal) -> None:
    login(client, "support")
    client.cookies.set(LANG_COOKIE, "en")
    html = _page(client, f"/admin/transactions?response_code=51&mid={journal.mid}").text
    assert _listed(html) == {DECLINED}
    assert "<code>51</code> Insufficient funds" in html
    assert '<option value="51" selected>51 Insufficient funds</option>' in html
    assert f'value="{journal.mid}"' in html
    assert "1 found · page 1 of 1" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tid={tid}", {SALE, DECLINED, REFUND, QR_SALE, REVERSED_SALE, REVERSAL}),
        ("mid={mid}", {SALE, DECLINED, REFUND, QR_SALE, REVERSED_SALE, REVERSAL}),
        (f"rrn={SALE}", {SALE, REFUND}),
        ("last4=0123", {SALE, DECLINED, REFUND, REVERSED_SALE, REVERSAL, ELSEWHERE}),
        ("response_code=51", {DECLINED}),
        ("kind=reversal", {REVERSAL}),
        ("kind=qr_sale&tid={tid}", {QR_SALE}),
    ],
)
def test_filters(client: TestClient, journal: Journal, query: str, expected: set[str]) -> None:
    login(client, "risk")
    url = "/admin/transactions?" + query.format(tid=journal.tid, mid=journal.mid)
    assert _listed(_page(client, url).text) == expected


@pytest.mark.parametrize(
    ("query", "field", "zh", "en"),
    [
        ("mid=123", "mid", "商户号（MID）为 15 位数字。", "A MID is 15 digits."),
        ("tid=12", "tid", "终端号（TID）为 8 位字母或数字。", "A TID is 8 letters or digits."),
        ("rrn=1", "rrn", "检索参考号（RRN）为 12 位数字。", "An RRN (retrieval reference number) is 12 digits."),
        ("last4=1", "last4", "请填写卡号后 4 位数字。", "Give the last 4 digits of the card number."),
        ("response_code=A7", "response_code", "A7 不是规范中的应答码。", "A7 is not a response code of the specification."),
        ("date_from=2026-1-1", "date_from", "须为YYYY-MM-DD格式的日期。", "Must be a date written as YYYY-MM-DD."),
        ("date_from=2026-12-04&date_to=2026-12-01", "date_to", "结束日期早于开始日期。", "The end date is before the start date."),
        ("date_from=2026-01-01&date_to=2026-06-30", "date_to", "一次查询最多跨 92 天，请缩小日期范围。", "A search spans at most 92 days; narrow the dates."),
        ("kind=purchase", "kind", "网关不记录此交易类型。", "Not a kind of transaction the gateway records."),
        ("page_size=500", "page_size", "不能大于200。", "Must be at most 200."),
    ],
)  # fmt: skip
def test_a_bad_filter_is_shown_beside_its_field(
    client: TestClient, journal: Journal, query: str, field: str, zh: str, en: str
) -> None:
    login(client, "ops")
    response = _page(client, f"/admin/transactions?{query}", 422)
    assert f'id="err-{field}">{field + ": " if field.startswith("page") else ""}{zh}<' in (
        response.text
    )
    assert 'id="results"' not in response.text
    client.cookies.set(LANG_COOKIE, "en")
    response = _page(client, f"/admin/transactions?{query}", 422)
    assert en in response.text


def test_empty_state(client: TestClient, journal: Journal) -> None:
    login(client, "ops")
    html = _page(client, "/admin/transactions?last4=0000").text
    assert _listed(html) == set()
    assert 'id="no-transactions">没有符合条件的交易。<' in html
    assert 'id="search-reset"' in html
    client.cookies.set(LANG_COOKIE, "en")
    html = _page(client, "/admin/transactions?date_from=2020-01-01&date_to=2020-01-31").text
    assert "No transaction matches these filters." in html


def test_paging_keeps_the_filters(client: TestClient, journal: Journal) -> None:
    login(client, "ops")
    first = _page(client, f"/admin/transactions?tid={journal.tid}&page_size=4").text
    assert len(_listed(first)) == 4
    assert 'id="page-previous"' not in first
    link = re.search(r'<a href="([^"]+)" id="page-next"', first)
    assert link
    target = link.group(1).replace("&amp;", "&")
    assert f"tid={journal.tid}" in target
    assert "page=2" in target
    assert "page_size=4" in target
    second = _page(client, target).text
    assert len(_listed(second)) == 2
    assert _listed(first).isdisjoint(_listed(second))
    assert 'id="page-next"' not in second
    assert 'id="page-previous"' in second


# --- One transaction ---------------------------------------------------------------------------


def test_detail_with_its_timeline(client: TestClient, journal: Journal) -> None:
    login(client, "auditor")
    html = _page(client, f"/admin/transactions/{REFUND}").text
    assert f'id="rrn">{REFUND}<' in html
    assert 'id="txn-amount">¥20.00<' in html
    steps = re.findall(r'<li class="depth-(\d)( current)?" id="step-(\d{12})"', html)
    assert [(rrn, depth, bool(current)) for depth, current, rrn in steps] == [
        (SALE, "0", False),
        (REFUND, "1", True),
    ]
    assert f'href="/admin/terminals/{journal.tid}"' in html
    assert f'href="/admin/merchants/{journal.mid}"' in html
    html = _page(client, f"/admin/transactions/{SALE}").text
    assert 'id="txn-refunded">¥20.00<' in html
    assert "退货" in html


def test_detail_of_a_reversal_in_english(client: TestClient, journal: Journal) -> None:
    login(client, "ops")
    client.cookies.set(LANG_COOKIE, "en")
    html = _page(client, f"/admin/transactions/{REVERSAL}").text
    assert 'id="txn-reversal-reason"><code>98</code> Issuer timeout<' in html
    assert "Reversal" in html
    assert "Answered by PosHub" in html
    assert re.findall(r'id="step-(\d{12})"', html) == [REVERSED_SALE, REVERSAL]
    html = _page(client, f"/admin/transactions/{QR_SALE}").text
    assert "WX20261204000001" in html
    assert 'id="timeline-empty"' in html


def test_detail_of_nothing(client: TestClient, journal: Journal) -> None:
    login(client, "ops")
    assert (
        "没有此检索参考号（RRN）的交易。"
        in _page(client, "/admin/transactions/999999999999", 404).text
    )
    _page(client, "/admin/transactions/abc", 422)


# --- The terminal page -----------------------------------------------------------------------------


def test_terminal_page_for_operations(client: TestClient, journal: Journal) -> None:
    login(client, "ops")
    html = _page(client, f"/admin/terminals/{journal.tid}").text
    assert f'id="tid">{journal.tid}<' in html
    # The session: check values, never the sealed keys.
    assert 'id="pik-kcv">3F1A9C2B<' in html
    assert 'id="mak-kcv">77D0E415<' in html
    assert "双倍长 PIN 密钥（003）" in html
    assert "连续 1 次（达到 5 次锁定终端）" in html
    assert "sealed" not in html
    # Its transactions (not the other terminal's), and the search link.
    section = html.split('id="transactions"')[1].split("</section>")[0]
    assert _listed(section) == {SALE, DECLINED, REFUND, QR_SALE, REVERSED_SALE, REVERSAL}
    assert "最近 6 笔，共 6 笔。" in section
    assert f'href="/admin/transactions?tid={journal.tid}"' in section
    # Batches: the open one counted so far, the settled one balanced.
    batches = html.split('id="batches"')[1].split("</section>")[0]
    assert 'id="batch-000002"' in batches
    assert "截至目前" in batches
    assert "对账平" in batches
    # Host's running count of the open batch: the approved sale and QR sale, and the refund.
    assert "借记 2 笔 ¥163.50" in batches
    assert "贷记 1 笔 ¥20.00" in batches


def test_terminal_page_for_a_technician_shows_the_session_only(
    client: TestClient, journal: Journal
) -> None:
    login(client, "tech")
    html = _page(client, f"/admin/terminals/{journal.tid}").text
    assert 'id="gateway-session"' in html
    assert 'id="pik-kcv">3F1A9C2B<' in html
    assert 'id="transactions"' not in html
    assert 'id="batches"' not in html
    assert not _listed(html)
    assert "/admin/transactions" not in html
    assert f"/admin/merchants/{journal.mid}" not in html  # no merchant page for technicians


def test_terminal_page_of_nothing(client: TestClient, journal: Journal) -> None:
    login(client, "ops")
    for tid in ("99999999", "1000000", f"{journal.tid}X"):
        _page(client, f"/admin/terminals/{tid}", 404)


def test_terminal_that_never_signed_on(client: TestClient, state: AppState) -> None:
    journal = terminal_with_journal(client, state, "SN-TXN-PAGE-02")
    with state.db.unit_of_work() as uow:
        from poshub.gateway.models import TerminalSession

        session = uow.session.get(TerminalSession, journal.tid)
        assert session is not None
        uow.session.delete(session)
        uow.commit()
    login(client, "ops")
    html = _page(client, f"/admin/terminals/{journal.tid}").text
    assert 'id="never-signed-on"' in html


# --- The merchant page ---------------------------------------------------------------------------


def test_merchant_page_links_to_its_transactions_and_terminals(
    client: TestClient, journal: Journal
) -> None:
    login(client, "support")
    html = _page(client, f"/admin/merchants/{journal.mid}").text
    assert f'href="/admin/transactions?mid={journal.mid}" id="merchant-transactions"' in html
    assert f'href="/admin/terminals/{journal.tid}"' in html
    login(client, "reviewer")
    html = _page(client, f"/admin/merchants/{journal.mid}").text
    assert 'id="merchant-transactions"' not in html
