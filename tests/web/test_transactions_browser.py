"""The transaction pages in headless Chromium, with screenshots in
test-artifacts/screenshots/ (transactions-*.png) for people to look at.

Operations log in, search the journal by TID, open a declined sale and a refund with its
timeline, switch to English, and open the terminal page with its session and batches.
The search is also looked at on a phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from poshub.bootstrap import AppState
from tests.factories import STAFF
from tests.web.conftest import LiveServer
from tests.web.transactions_support import (
    DECLINED,
    REFUND,
    SALE,
    Journal,
    terminal_with_journal,
)

# Browser tests need one backend only: SQLite, whatever POSHUB_TEST_POSTGRES_URL says.
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


class Staff:
    """Logged-in browser contexts, recording console errors (CSP, 404s, scripts)."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.opened: list[BrowserContext] = []
        self.console_errors: list[str] = []

    def log_in(self, username: str, target: str, *, phone: bool = False) -> Page:
        context = self.browser.new_context(
            base_url=self.server.url,
            viewport=PHONE if phone else DESKTOP,
            is_mobile=phone,
            has_touch=phone,
            locale="zh-CN",
        )
        context.set_default_timeout(10_000)
        context.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )
        context.on("weberror", lambda e: self.console_errors.append(str(e.error)))
        self.opened.append(context)
        page = context.new_page()
        page.goto(f"/admin/login?next={target}")
        page.fill("#username", username)
        page.fill("#password", STAFF[username][0])
        page.click("#login-submit")
        page.wait_for_url(f"**{target}")
        return page

    def close(self) -> None:
        for context in self.opened:
            context.close()


@pytest.fixture
def staff(browser: Browser, live_server: LiveServer) -> Iterator[Staff]:
    opened = Staff(browser, live_server)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def journal(client: TestClient, state: AppState) -> Journal:
    return terminal_with_journal(client, state, "SN-TXN-BROWSER-01")


def _shot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / name), full_page=True)
    page.evaluate("() => window.scrollTo(0, 0)")  # see tests/web/test_browser.py::_shot


def _nothing_overflows(page: Page, *, tables_fit: bool) -> None:
    """No horizontal scroll of the page, nothing sticking out of the main column, and (at
    desktop width) no table that needs its own scroll bar."""
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the window"
    sticking_out = page.evaluate(
        """() => {
          const main = document.querySelector('main').getBoundingClientRect();
          return [...document.querySelectorAll('main *')]
            .filter(e => !e.closest('.table-wrap'))
            .filter(e => e.getBoundingClientRect().right > main.right + 1)
            .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)
            .slice(0, 5);
        }"""
    )
    assert sticking_out == [], f"{page.url}: wider than the page: {sticking_out}"
    if tables_fit:
        scrolled = page.evaluate(
            """() => [...document.querySelectorAll('.table-wrap')]
                 .filter(w => w.scrollWidth > w.clientWidth + 1)
                 .map(w => w.closest('section')?.id || w.className)"""
        )
        assert scrolled == [], f"{page.url}: tables wider than their card: {scrolled}"


def _chinese_is_drawn(page: Page, selector: str, text: str) -> None:
    """``text`` is drawn by a CJK font: Noto Sans CJK draws each character about 1 em wide
    (a missing font would leave tofu boxes or a fallback of another width)."""
    width = page.evaluate(
        """([s, text]) => {
          const canvas = document.createElement('canvas').getContext('2d');
          const style = getComputedStyle(document.querySelector(s));
          canvas.font = style.fontSize + ' ' + style.fontFamily;
          return canvas.measureText(text).width / parseFloat(style.fontSize) / text.length;
        }""",
        [selector, text],
    )
    assert 0.9 <= width <= 1.1, width


@pytest.mark.browser
def test_operations_search_open_and_switch_to_english(
    staff: Staff, journal: Journal, screenshot_dir: Path
) -> None:
    ops = staff.log_in("ops", "/admin")

    # --- The navigation leads to the search; this week's transactions, in Chinese.
    ops.click("nav a[href='/admin/transactions']")
    ops.wait_for_url("**/admin/transactions")
    expect(ops.locator("h1")).to_have_text("交易")
    expect(ops.locator("table.transactions tbody tr")).to_have_count(7)
    _chinese_is_drawn(ops, "h1", "交易")

    # --- Search by TID: the other merchant's sale goes.
    ops.fill("#f-tid", journal.tid)
    ops.click("#search-submit")
    ops.wait_for_url(re.compile(rf"/admin/transactions\?.*tid={journal.tid}"))
    expect(ops.locator("table.transactions tbody tr")).to_have_count(6)
    expect(ops.locator("#result-count")).to_contain_text("共 6 笔交易")
    declined = ops.locator(f"#txn-{DECLINED}")
    expect(declined.locator("td.rc")).to_have_text("51 资金不足")
    expect(declined.locator("td.num")).to_have_text("¥6,880.00")
    _chinese_is_drawn(ops, f"#txn-{DECLINED} td.rc", "资金不足")
    _nothing_overflows(ops, tables_fit=True)
    _shot(ops, screenshot_dir, "transactions-search-zh.png")

    # --- A bad filter is refused beside its field.
    ops.fill("#f-rrn", "12345")
    ops.click("#search-submit")
    expect(ops.locator("#err-rrn")).to_have_text("检索参考号（RRN）为 12 位数字。")
    _nothing_overflows(ops, tables_fit=True)
    _shot(ops, screenshot_dir, "transactions-search-refused-zh.png")
    ops.fill("#f-rrn", "")

    # --- The refund: its timeline from the sale it refunds.
    ops.fill("#f-tid", journal.tid)
    ops.click("#search-submit")
    ops.click(f"#txn-{REFUND} td:nth-child(2) a")
    ops.wait_for_url(f"**/admin/transactions/{REFUND}")
    expect(ops.locator("#txn-amount")).to_have_text("¥20.00")
    expect(ops.locator(".txn-timeline li")).to_have_count(2)
    expect(ops.locator(f"#step-{SALE}")).to_contain_text("消费")
    expect(ops.locator(f"#step-{REFUND}")).to_have_class(re.compile(r"current"))
    _nothing_overflows(ops, tables_fit=True)
    _shot(ops, screenshot_dir, "transactions-detail-zh.png")

    # --- English: the same page, the codes' meanings in English.
    ops.click("header .lang a")
    ops.wait_for_url(f"**/admin/transactions/{REFUND}")
    expect(ops.locator("h1")).to_contain_text("Refund")
    expect(ops.locator(f"#step-{SALE}")).to_contain_text("Approved or completed successfully")
    ops.click(f"#step-{SALE} a")
    ops.wait_for_url(f"**/admin/transactions/{SALE}")
    expect(ops.locator("#txn-refunded")).to_have_text("¥20.00")
    _nothing_overflows(ops, tables_fit=True)
    _shot(ops, screenshot_dir, "transactions-detail-en.png")

    # --- The terminal page: its session, transactions and batches.
    ops.click("#txn-tid")
    ops.wait_for_url(f"**/admin/terminals/{journal.tid}")
    expect(ops.locator("#pik-kcv")).to_have_text("3F1A9C2B")
    expect(ops.locator("#transactions table.transactions tbody tr")).to_have_count(6)
    expect(ops.locator(f"#txn-{DECLINED} td.rc")).to_have_text("51 Insufficient funds")
    expect(ops.locator("#batch-000001")).to_contain_text("Balanced")
    _nothing_overflows(ops, tables_fit=True)
    _shot(ops, screenshot_dir, "transactions-terminal-en.png")
    ops.click("#terminal-search")
    ops.wait_for_url(re.compile(rf"/admin/transactions\?tid={journal.tid}$"))
    expect(ops.locator("table.transactions tbody tr")).to_have_count(6)
    _shot(ops, screenshot_dir, "transactions-search-en.png")

    # The refused search is answered with a 422, which Chromium logs; nothing else.
    assert [e for e in staff.console_errors if "status of 422" not in e] == []


@pytest.mark.browser
def test_search_on_a_phone(staff: Staff, journal: Journal, screenshot_dir: Path) -> None:
    """Support staff answer merchants from anywhere: the form folds to one column and the
    table scrolls inside its card, never the page."""
    support = staff.log_in("support", f"/admin/transactions?mid={journal.mid}", phone=True)
    expect(support.locator("table.transactions tbody tr")).to_have_count(6)
    _nothing_overflows(support, tables_fit=False)
    _shot(support, screenshot_dir, "transactions-search-phone-zh.png")
    assert staff.console_errors == []
