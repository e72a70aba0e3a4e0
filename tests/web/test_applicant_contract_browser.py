"""The applicant reviews and signs the contract in headless Chromium, on a phone and on a
desktop, with screenshots in test-artifacts/screenshots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.factories import approved_merchant, generate_contract
from tests.web.conftest import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database", ["sqlite"], indirect=True),
]

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


def _open_contract(page: Page, created: dict[str, str]) -> None:
    page.goto("/apply/track")
    page.fill("input[name=tracking_number]", created["tracking_number"])
    page.fill("input[name=access_token]", created["access_token"])
    page.click("form button[type=submit]")
    page.wait_for_url(f"**/apply/track/{created['tracking_number']}")
    page.click("#open-contract")
    page.wait_for_url("**/contract")


def test_applicant_signs_the_contract_in_chromium(
    client: TestClient, live_server: LiveServer, browser: Browser, screenshot_dir: Path
) -> None:
    created, mid = approved_merchant(client)
    contract = generate_contract(client, mid, plan="STANDARD", cycle="T1")

    phone = browser.new_context(
        base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    phone.set_default_timeout(10_000)
    page = phone.new_page()
    _open_contract(page, created)
    expect(page.locator("#pdf-sha256")).to_have_text(contract["pdf_sha256"])
    expect(page.locator("article.contract")).to_contain_text(contract["contract_number"])
    expect(page.locator("article.contract")).to_contain_text("0.60%")
    overflow = page.evaluate("() => document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"], f"horizontal overflow at 390 px: {overflow}"
    page.screenshot(path=str(screenshot_dir / "contract-applicant-phone.png"), full_page=True)
    phone.close()

    desktop = browser.new_context(base_url=live_server.url, viewport=DESKTOP, locale="zh-CN")
    desktop.set_default_timeout(10_000)
    page = desktop.new_page()
    _open_contract(page, created)
    page.screenshot(path=str(screenshot_dir / "contract-applicant-desktop.png"))
    page.fill("#signer-name", "陈明")
    page.check("#agree")
    page.click("#sign-submit")
    page.wait_for_url("**/contract#signed")
    expect(page.locator("#signed")).to_contain_text("陈明")
    page.screenshot(path=str(screenshot_dir / "contract-applicant-signed.png"))
    desktop.close()

    signed = client.get(
        f"/api/v1/applications/{created['id']}/contract",
        headers={"Authorization": f"Bearer {created['access_token']}"},
    ).json()
    assert signed["status"] == "awaiting_countersign"
    assert signed["merchant_signed_ip"] == "127.0.0.1"
