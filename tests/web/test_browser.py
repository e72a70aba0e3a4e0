"""The onboarding pages driven in headless Chromium, with screenshots.

The same flow as tests/onboarding/test_api_flow.py, through the real pages: an applicant
applies, uploads documents and submits; a reviewer claims, asks for more information;
the applicant answers; the reviewer approves and a MID appears. Screenshots land in
test-artifacts/screenshots/ for people to look at.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    expect,
)

from poshub.bootstrap import AppState
from poshub.core.i18n import Translator
from poshub.onboarding import repository, rules
from poshub.runtime import run_jobs_once
from tests.factories import (
    PDF,
    PNG,
    STAFF,
    card_number,
    create_and_submit,
    credit_code,
    resident_id,
)
from tests.factories import wrong_check_digit as break_check_digit
from tests.web.conftest import LiveServer

# Browser tests need one backend only: SQLite, whatever POSHUB_TEST_POSTGRES_URL says.
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

MID_RE = re.compile(r"^898340154110\d{3}$")
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
INFO_REQUEST = "请上传更清晰的营业执照照片。"
ANSWER = "已重新上传清晰的营业执照。"


def _shot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / name), full_page=True)
    # After a full-page capture this Chromium routes the next click with a stale scroll
    # offset (it lands beside the target, on desktop viewports); scrolling resyncs it.
    page.evaluate("() => window.scrollTo(0, 0)")


class Contexts:
    """Opens browser contexts (separate cookie jars) and records their console errors."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.opened: list[BrowserContext] = []
        self.console_errors: list[str] = []

    def new(self, *, phone: bool = False) -> BrowserContext:
        context = self.browser.new_context(
            base_url=self.server.url,
            viewport=PHONE if phone else DESKTOP,
            is_mobile=phone,
            has_touch=phone,
            locale="zh-CN",
        )
        context.set_default_timeout(10_000)
        context.on("console", self._console)
        context.on("weberror", lambda e: self.console_errors.append(str(e.error)))
        self.opened.append(context)
        return context

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url')})")

    def assert_no_console_errors(self, *, expected: str | None = None) -> None:
        """CSP violations, 404s and script errors all reach the console: expect none
        (apart from those containing ``expected``, e.g. a form answered with a 422)."""
        errors = [e for e in self.console_errors if expected is None or expected not in e]
        assert not errors, "\n".join(errors)

    def close(self) -> None:
        for context in self.opened:
            context.close()


@pytest.fixture
def contexts(browser: Browser, live_server: LiveServer) -> Iterator[Contexts]:
    opened = Contexts(browser, live_server)
    try:
        yield opened
    finally:
        opened.close()


def _fill_application(page: Page, id_number: str) -> None:
    """Fill /apply for an individual business in Hefei with one SMART-A8."""
    page.check("input[name=applicant_kind][value=individual_business]")
    page.fill("#f-legal_name", "陈明")
    page.fill("#f-id_number", id_number)
    page.fill("#f-id_expiry", (dt.date.today() + dt.timedelta(days=3650)).isoformat())
    page.fill("#f-mobile", "13905510001")
    page.fill("#f-business_name", "合肥蜀山明辉便利超市")
    page.fill("#f-uscc", credit_code())
    page.fill("#f-licence_expiry", "2030-12-31")
    page.fill("#f-established_on", "2018-01-01")
    page.fill("#f-mcc", "5411")
    page.fill("#f-expected_monthly_volume_yuan", "300000")
    page.fill("#f-address-province", "安徽省")
    page.fill("#f-address-city", "合肥市")
    page.fill("#f-address-district", "蜀山区")
    page.fill("#f-address-detail", "长江西路 100 号")
    page.fill("#f-settlement_account-bank_name", "徽商银行合肥蜀山支行")
    page.fill("#f-settlement_account-account_name", "陈明")
    page.fill("#f-settlement_account-account_number", card_number())
    page.check("#f-account_type-personal")
    page.fill("#count-SMART-A8", "1")
    # The privacy notice's two consents, given separately (docs/privacy.md).
    page.check("#f-consent_privacy_notice")
    page.check("#f-consent_verification_provider")


def _apply(page: Page) -> str:
    """Submit a valid application from /apply; return the tracking number."""
    page.click("#apply-submit")
    expect(page.locator("#access-token")).to_be_visible()
    tracking = page.inner_text("#tracking-number").strip()
    assert re.fullmatch(r"AP\S+", tracking), tracking
    assert len(page.inner_text("#access-token").strip()) >= 20
    return tracking


def prove_mobile(page: Page, server: LiveServer, mobile: str = "13905510001") -> None:
    """On the tracking page: ask for the SMS code, read it from the test SMS adapter and
    type it, as the applicant does before anything else is sent to the number."""
    page.click("#send-code")
    expect(page.locator("#code-sent")).to_be_visible()
    code = server.state.notifier.last_code(mobile)  # type: ignore[attr-defined]
    assert code
    page.fill("#mobile-code", code)
    page.click("#verify-code")
    expect(page.locator("#mobile")).to_have_count(0)


def _status(page: Page, status: str) -> None:
    try:
        expect(page.locator("#status")).to_have_class(re.compile(rf"\bstatus-{status}\b"))
    except AssertionError as exc:  # say why: the page shows the domain error as an alert
        alerts = page.locator(".alert").all_inner_texts()
        raise AssertionError(f"expected status {status!r}; alerts on the page: {alerts}") from exc


def _log_in(page: Page, username: str, target: str) -> None:
    page.goto(f"/admin/login?next={target}")
    page.fill("#username", username)
    page.fill("#password", STAFF[username][0])
    page.click("#login-submit")
    page.wait_for_url(f"**{target}")


def _checks_done(page: Page) -> None:
    """The worker runs queued checks; the page polls (htmx) until their results show."""
    expect(page.locator("#checks-running")).to_have_count(0)
    expect(page.locator("#checks .pill").first).to_be_visible()


def _application_count(state: AppState) -> int:
    with state.db.unit_of_work(read_only=True) as uow:
        return sum(repository.status_counts(uow.session).values())


def _no_horizontal_scroll(page: Page) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the phone screen"


@pytest.mark.browser
def test_apply_review_needs_info_answer_approve(
    contexts: Contexts, live_server: LiveServer, screenshot_dir: Path, tmp_path: Path
) -> None:
    png = tmp_path / "scan.png"
    png.write_bytes(PNG)
    pdf = tmp_path / "licence.pdf"
    pdf.write_bytes(PDF)

    # --- The applicant fills the form and keeps the token.
    page = contexts.new().new_page()
    page.goto("/apply")
    _fill_application(page, resident_id())
    _shot(page, screenshot_dir, "01-apply-form.png")
    tracking = _apply(page)
    _shot(page, screenshot_dir, "02-token.png")

    # --- Documents, one file each, then submit.
    page.click("#continue")
    page.wait_for_url(f"**/apply/track/{tracking}")
    _status(page, "draft")
    _shot(page, screenshot_dir, "03-track.png")
    prove_mobile(page, live_server)
    required = sorted(rules.required_documents("individual_business", None, dt.date.today()))
    assert required
    for index, kind in enumerate(required, start=1):
        page.select_option("#doc-kind", kind.value)
        file = pdf if kind is rules.DocumentKind.BUSINESS_LICENCE else png
        page.set_input_files("#doc-file", str(file))
        page.click("#doc-upload")
        expect(page.locator("#documents .checklist li.done")).to_have_count(index)
    expect(page.locator("#documents .checklist li.todo")).to_have_count(0)
    expect(page.locator("#documents tbody tr")).to_have_count(len(required))
    page.click("#submit-application")
    _status(page, "submitted")
    expect(page.locator("#submit-application")).to_have_count(0)
    expect(page.locator("#doc-upload")).to_have_count(0)
    _shot(page, screenshot_dir, "04-submitted.png")

    # --- A reviewer, in another browser context, finds and claims it.
    desk = contexts.new().new_page()
    _log_in(desk, "reviewer", "/admin/applications")
    row = desk.locator("#queue-table tbody tr", has_text=tracking)
    expect(row).to_have_count(1)
    _shot(desk, screenshot_dir, "05-review-queue.png")
    row.get_by_role("link", name=tracking).click()
    desk.wait_for_url(re.compile(r"/admin/applications/[^/]+$"))
    _status(desk, "submitted")
    desk.click("#claim")
    _status(desk, "under_review")
    _checks_done(desk)
    expect(desk.locator("#checks .pill.fail")).to_have_count(0)
    _shot(desk, screenshot_dir, "06-review-detail.png")
    desk.fill("#info-message", INFO_REQUEST)
    desk.click("#request-info")
    _status(desk, "needs_info")

    # --- The applicant sees the request and answers it.
    page.reload()
    _status(page, "needs_info")
    request = page.locator("#info-request")
    expect(request).to_be_visible()
    expect(request.locator("blockquote")).to_have_text(INFO_REQUEST)
    request.locator("textarea[name=message]").fill(ANSWER)
    _shot(page, screenshot_dir, "07-needs-info.png")
    page.click("#answer-submit")
    _status(page, "under_review")
    expect(page.locator("#info-request")).to_have_count(0)

    # --- The reviewer sees the answer and approves: a MID appears.
    desk.reload()
    _status(desk, "under_review")
    expect(desk.locator(".timeline")).to_contain_text(ANSWER)
    _checks_done(desk)  # the answer queued a fresh run; approval waits for it
    desk.fill("#approve-note", "资料齐全，电话核实无误。")
    desk.click("#approve")
    _status(desk, "approved")
    mid = desk.inner_text("#mid").strip()
    assert MID_RE.fullmatch(mid), mid
    assert mid == "898340154110001"  # the first merchant in this category and area
    _shot(desk, screenshot_dir, "08-approved.png")

    # --- And the applicant's page shows the same MID.
    page.reload()
    _status(page, "approved")
    expect(page.locator("#mid")).to_have_text(mid)
    _shot(page, screenshot_dir, "09-applicant-approved.png")
    contexts.assert_no_console_errors()


@pytest.mark.browser
def test_review_page_shows_checks_when_the_worker_finishes(
    contexts: Contexts, live_server: LiveServer, client: TestClient, state: AppState
) -> None:
    live_server.stop_worker()
    created = create_and_submit(client, run_checks=False)
    desk = contexts.new().new_page()
    _log_in(desk, "reviewer", f"/admin/applications/{created['id']}")
    expect(desk.locator("#checks-running")).to_be_visible()
    expect(desk.locator("#checks .pill")).to_have_count(0)

    assert run_jobs_once(state)["applications_checked"] == 1
    # No reload: htmx polls the page every 2 s and swaps the checks in.
    expect(desk.locator("#checks-running")).to_have_count(0, timeout=6_000)
    expect(desk.locator("#checks .pill.pass").first).to_be_visible()
    expect(desk.locator("#checks .pill.fail")).to_have_count(0)
    contexts.assert_no_console_errors()


@pytest.mark.browser
def test_wrong_resident_id_check_digit_is_refused_next_to_the_field(
    contexts: Contexts, state: AppState, screenshot_dir: Path
) -> None:
    page = contexts.new().new_page()
    page.goto("/apply")
    bad_id = break_check_digit(resident_id())
    _fill_application(page, bad_id)
    uscc_typed = page.input_value("#f-uscc")
    before = _application_count(state)

    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("#apply-submit")
    assert answer.value.status == 422
    expect(page.locator("#form-errors")).to_be_visible()

    field = page.locator("label.invalid", has=page.locator("#f-id_number"))
    expect(field).to_have_count(1)
    english = rules.MESSAGES["id_number.checksum"]
    message = Translator("zh_CN")(english)
    expect(field.locator(".field-error")).to_have_text(message)
    if message != english:  # the zh_CN catalogue has it
        assert "校验" in message
    # Only the wrong field is marked; everything typed is still there.
    expect(page.locator("label.invalid")).to_have_count(1)
    expect(page.locator("#f-id_number")).to_have_value(bad_id)
    expect(page.locator("#f-legal_name")).to_have_value("陈明")
    expect(page.locator("#f-business_name")).to_have_value("合肥蜀山明辉便利超市")
    expect(page.locator("#f-uscc")).to_have_value(uscc_typed)
    expect(page.locator("#f-licence_expiry")).to_have_value("2030-12-31")
    expect(page.locator("#f-mcc")).to_have_value("5411")
    expect(page.locator("#f-address-district")).to_have_value("蜀山区")
    expect(page.locator("#f-settlement_account-account_number")).to_have_value(card_number())
    expect(page.locator("#count-SMART-A8")).to_have_value("1")
    expect(page.locator("input[name=applicant_kind][value=individual_business]")).to_be_checked()
    _shot(page, screenshot_dir, "10-apply-invalid-id.png")

    assert _application_count(state) == before == 0
    contexts.assert_no_console_errors(expected="status of 422")


@pytest.mark.browser
def test_language_switch(contexts: Contexts, live_server: LiveServer, screenshot_dir: Path) -> None:
    heading = "POS terminals for your business"
    zh = Translator("zh_CN")
    page = contexts.new().new_page()
    page.goto("/")
    # Chinese by default, whatever the browser asks for.
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text(zh(heading))
    expect(page.locator(".lang strong")).to_have_text("中文")

    page.click(".lang a[href^='/lang/en']")
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text(heading)
    expect(page.locator("#models h2")).to_have_text("Terminals")
    expect(page.locator("#plans h2")).to_have_text("Fee plans")
    expect(page.locator(".lang strong")).to_have_text("English")
    _shot(page, screenshot_dir, "11-home-en.png")

    # The choice is a cookie: it follows the visitor to other pages.
    page.goto("/apply")
    expect(page.locator("h1")).to_have_text("Apply for POS terminals")

    page.click(".lang a[href^='/lang/zh_CN']")
    page.wait_for_url(f"{live_server.url}/apply")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text(zh("Apply for POS terminals"))
    page.goto("/")
    expect(page.locator("h1")).to_have_text(zh(heading))
    expect(page.locator(".lang strong")).to_have_text("中文")
    _shot(page, screenshot_dir, "12-home-zh.png")
    contexts.assert_no_console_errors()


@pytest.mark.browser
def test_applicant_pages_on_a_phone(
    contexts: Contexts, screenshot_dir: Path, tmp_path: Path
) -> None:
    png = tmp_path / "front.png"
    png.write_bytes(PNG)
    page = contexts.new(phone=True).new_page()
    page.goto("/apply")
    _no_horizontal_scroll(page)
    _fill_application(page, resident_id())
    _shot(page, screenshot_dir, "13-phone-apply.png")
    tracking = _apply(page)
    _no_horizontal_scroll(page)
    _shot(page, screenshot_dir, "14-phone-token.png")

    page.click("#continue")
    page.wait_for_url(f"**/apply/track/{tracking}")
    page.select_option("#doc-kind", rules.DocumentKind.ID_CARD_FRONT.value)
    page.set_input_files("#doc-file", str(png))
    page.click("#doc-upload")
    expect(page.locator("#documents .checklist li.done")).to_have_count(1)
    for control in ("#doc-kind", "#doc-file", "#doc-upload", "#submit-application"):
        box = page.locator(control).bounding_box()
        assert box is not None, control
        assert box["x"] >= 0, (control, box)
        assert box["x"] + box["width"] <= PHONE["width"], (control, box)
    _no_horizontal_scroll(page)
    _shot(page, screenshot_dir, "15-phone-track.png")
    contexts.assert_no_console_errors()
