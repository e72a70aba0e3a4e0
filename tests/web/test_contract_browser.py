"""The staff contract and fleet pages in headless Chromium, at desktop width, with
screenshots in test-artifacts/screenshots/ (staff-*.png) for people to look at.

A reviewer prepares the contract from the merchant page, the merchant signs (API), an
operations colleague reads the contract in the page and countersigns it, imports a stock
file (first a refused one), allocates a device and sees its secret once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, ViewportSize, expect

from tests.factories import STAFF, approved_merchant, sign_as_applicant, stock_in
from tests.web.conftest import LiveServer

# Browser tests need one backend only: SQLite, whatever POSHUB_TEST_POSTGRES_URL says.
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

DESKTOP: ViewportSize = {"width": 1280, "height": 900}


class Desk:
    """Browser contexts for staff members, recording console errors (CSP, 404, scripts)."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.opened: list[BrowserContext] = []
        self.console_errors: list[str] = []

    def log_in(self, username: str, target: str) -> Page:
        context = self.browser.new_context(
            base_url=self.server.url, viewport=DESKTOP, locale="zh-CN"
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
def desk(browser: Browser, live_server: LiveServer) -> Iterator[Desk]:
    opened = Desk(browser, live_server)
    try:
        yield opened
    finally:
        opened.close()


def _shot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / name), full_page=True)
    page.evaluate("() => window.scrollTo(0, 0)")  # see tests/web/test_browser.py::_shot


def _nothing_overflows(page: Page) -> None:
    """No horizontal scroll, and no element sticking out of the main column."""
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


def _chinese_is_drawn(page: Page, selector: str) -> None:
    """The text is Chinese and the CJK font draws it (a missing font would give tofu boxes
    of the same width; Noto Sans CJK draws these characters at about 1 em each)."""
    width = page.evaluate(
        """s => {
          const canvas = document.createElement('canvas').getContext('2d');
          const style = getComputedStyle(document.querySelector(s));
          canvas.font = style.fontSize + ' ' + style.fontFamily;
          return canvas.measureText('协议').width / parseFloat(style.fontSize);
        }""",
        selector,
    )
    assert 1.8 <= width <= 2.2, width


@pytest.mark.browser
def test_staff_prepare_read_countersign_and_allocate(
    desk: Desk, client: TestClient, screenshot_dir: Path
) -> None:
    created, mid = approved_merchant(client)
    stock_in(client, ["SN-A8-100001", "SN-A8-100002"])

    # --- A reviewer prepares the contract, with the recommendation beside the form.
    reviewer = desk.log_in("reviewer", f"/admin/merchants/{mid}")
    expect(reviewer.locator("#mid")).to_have_text(mid)
    expect(reviewer.locator("#recommended-plan")).to_be_visible()
    reviewer.select_option("#prepare-plan", "STANDARD")
    reviewer.select_option("#prepare-cycle", "T1")
    _nothing_overflows(reviewer)
    _shot(reviewer, screenshot_dir, "staff-merchant-prepare.png")
    reviewer.click("#prepare-submit")
    expect(reviewer.locator("#contract-v1 .pill")).to_have_class(
        re.compile(r"contract-awaiting_merchant")
    )

    # --- The merchant signs from the tracking credential (API).
    sign_as_applicant(client, created)

    # --- Operations read the contract in the page and countersign it there.
    ops = desk.log_in("ops", f"/admin/merchants/{mid}")
    expect(ops.locator("#countersign-due")).to_be_visible()
    ops.click("#contract-v1 a[href^='/admin/contracts/']")
    ops.wait_for_url(re.compile(r"/admin/contracts/[^/]+$"))
    article = ops.locator("article.contract")
    expect(article).to_be_visible()
    expect(article.locator(".contract-title")).to_have_text("POS机商户服务协议")
    expect(ops.locator("#merchant-signature")).to_contain_text("陈明")
    _chinese_is_drawn(ops, "article.contract .contract-title")
    _nothing_overflows(ops)
    box = article.bounding_box()
    sheet = ops.locator("#contract-text").bounding_box()
    assert box
    assert sheet
    assert box["x"] + box["width"] <= sheet["x"] + sheet["width"] + 1
    _shot(ops, screenshot_dir, "staff-contract-awaiting-countersign.png")
    ops.click("#countersign")
    expect(ops.locator("#contract-status .pill")).to_have_class(re.compile(r"contract-signed"))
    expect(ops.locator("#countersignature")).to_contain_text("ops")
    _shot(ops, screenshot_dir, "staff-contract-signed.png")

    # --- A refused stock file: the per-row report, nothing imported.
    ops.goto("/admin/inventory")
    bad = "serial_number,model_code,warehouse\nSN-A8-100001,SMART-A8,合肥仓\nSN-A8-1000X9,NOPE-9,合肥仓\n"
    upload: FilePayload = {"name": "到货.csv", "mimeType": "text/csv", "buffer": bad.encode()}
    ops.set_input_files("#stock-file", files=[upload])
    ops.click("#stock-submit")
    expect(ops.locator("#stock-in-report")).to_be_visible()
    expect(ops.locator("#stock-in-report tbody tr")).to_have_count(2)
    expect(ops.locator("#total")).to_have_text("2")
    _nothing_overflows(ops)
    _shot(ops, screenshot_dir, "staff-inventory-refused.png")

    # --- Allocation: the secret once, then the merchant page without it.
    ops.goto(f"/admin/merchants/{mid}")
    ops.select_option("#allocate-serial", "SN-A8-100001")
    ops.click("#allocate-submit")
    expect(ops.locator("#secret-warning")).to_be_visible()
    secret = ops.inner_text("#device-secret").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    _nothing_overflows(ops)
    _shot(ops, screenshot_dir, "staff-allocated-secret.png")
    ops.click("#done")
    ops.wait_for_url(re.compile(rf"/admin/merchants/{mid}"))
    expect(ops.locator("#terminals tbody tr")).to_have_count(1)
    assert secret not in ops.content()
    ops.locator("#terminals details.key-export summary").click()
    _nothing_overflows(ops)
    _shot(ops, screenshot_dir, "staff-merchant-contracted.png")

    # The refused stock file is answered with a 422, which Chromium logs; nothing else.
    assert [e for e in desk.console_errors if "status of 422" not in e] == []
