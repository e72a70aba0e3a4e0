"""The SMS link opened on another phone, in headless Chromium at 390 px.

One phone applies, copies the access code with the copy button and proves its mobile
number; the tracking link then arrives by SMS. A second phone (no cookie) opens that
link, is asked for the access code, gets a clear message for a wrong one, and with the
right one reaches the application. Screenshots land in the test's tmp directory and in
/tmp/issue8-shots/ for people to look at.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.factories import resident_id
from tests.web import test_browser
from tests.web.conftest import LiveServer
from tests.web.test_browser import (
    PHONE,
    Contexts,
    _fill_application,
    _no_horizontal_scroll,
    _shot,
    prove_mobile,
)

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

contexts = test_browser.contexts  # the browser-context fixture of the onboarding pages

SHARED_SHOTS = Path("/tmp/issue8-shots")
MOBILE = "13905510001"
LINK_WAIT_SECONDS = 10.0


def _inside_the_phone(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    assert box["x"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= PHONE["width"], (selector, box)


def _sms_link(server: LiveServer, tracking: str) -> str:
    """The path of the tracking link the worker sent by SMS (waits for the worker)."""
    deadline = time.monotonic() + LINK_WAIT_SECONDS
    pattern = re.compile(rf"https?://[^\s]+(/apply/track/{re.escape(tracking)})")
    while time.monotonic() < deadline:
        for _, recipient, text in server.state.notifier.sent:  # type: ignore[attr-defined]
            match = pattern.search(text)
            if recipient == MOBILE and match:
                return match.group(1)
        time.sleep(0.1)
    raise AssertionError("no SMS with the tracking link reached the applicant")


@pytest.mark.browser
def test_the_sms_link_on_another_phone_asks_for_the_code_and_opens_the_application(
    contexts: Contexts, live_server: LiveServer, tmp_path: Path
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()

    # --- Phone 1 applies; the access code is shown once, with a copy button.
    first = contexts.new(phone=True)
    first.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = first.new_page()
    page.goto("/apply")
    _fill_application(page, resident_id())
    for consent in ("#f-consent_privacy_notice", "#f-consent_verification_provider"):
        if page.locator(consent).count():
            page.check(consent)
    page.click("#apply-submit")
    expect(page.locator("#access-token")).to_be_visible()
    tracking = page.inner_text("#tracking-number").strip()
    token = page.inner_text("#access-token").strip()
    copy = page.locator("#copy-token")
    expect(copy).to_be_visible()  # the script un-hid it
    _inside_the_phone(page, "#copy-token")
    copy.click()
    expect(page.locator("#copy-status")).to_have_text("已复制")
    assert page.evaluate("() => navigator.clipboard.readText()") == token
    _no_horizontal_scroll(page)
    _shot(page, shots, "01-created-copy-button.png")

    # --- Still phone 1: nothing is sent to the number before it is proved.
    assert not any(r == MOBILE for _, r, _ in live_server.state.notifier.sent)  # type: ignore[attr-defined]
    page.click("#continue")
    page.wait_for_url(f"**/apply/track/{tracking}")
    expect(page.locator("#mobile")).to_be_visible()
    _no_horizontal_scroll(page)
    _shot(page, shots, "02-track-confirm-mobile.png")
    prove_mobile(page, live_server, MOBILE)
    link = _sms_link(live_server, tracking)

    # --- Phone 2 (no cookie) opens the link from the SMS: a form, not a 401.
    page2 = contexts.new(phone=True).new_page()
    response = page2.goto(link)
    assert response is not None
    assert response.status == 200
    page2.wait_for_url(re.compile(r"/apply/track\?number="))
    expect(page2.locator("#track-login")).to_be_visible()
    expect(page2.locator("#tracking-number-input")).to_have_value(tracking)
    expect(page2.locator("#login-intro")).to_contain_text(tracking)
    for control in ("#tracking-number-input", "#access-code-input", "#track-open"):
        _inside_the_phone(page2, control)
    _no_horizontal_scroll(page2)
    _shot(page2, shots, "03-other-phone-asks-for-code.png")

    page2.fill("#access-code-input", token[:-1] + ("A" if token[-1] != "A" else "B"))
    page2.click("#track-open")
    expect(page2.locator("#login-error")).to_contain_text(tracking)
    expect(page2.locator("#login-error")).to_contain_text("访问码")
    _no_horizontal_scroll(page2)
    _shot(page2, shots, "04-other-phone-wrong-code.png")

    page2.fill("#access-code-input", token)
    page2.click("#track-open")
    page2.wait_for_url(f"**/apply/track/{tracking}")
    expect(page2.locator("#status")).to_have_class(re.compile(r"\bstatus-draft\b"))
    expect(page2.locator("#documents")).to_be_visible()
    expect(page2.locator("#mobile")).to_have_count(0)  # proved on phone 1
    _no_horizontal_scroll(page2)
    _shot(page2, shots, "05-other-phone-application.png")
    contexts.assert_no_console_errors(expected="status of 404")

    SHARED_SHOTS.mkdir(parents=True, exist_ok=True)
    for shot in shots.iterdir():
        shutil.copyfile(shot, SHARED_SHOTS / shot.name)
