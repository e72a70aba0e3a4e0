"""The technician's view driven in headless Chromium on a 390 × 844 phone: log in, open an
order, work it from appointment to go-live, take a photo, and complete a site survey.
Every page must fit the screen (no horizontal scroll) with tap targets of at least 44 px.
Screenshots land in test-artifacts/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, ViewportSize, expect

from poshub.bootstrap import AppState
from poshub.core.clock import SHANGHAI
from poshub.core.db import utcnow
from poshub.fieldwork import service
from poshub.fieldwork.schemas import WorkOrderIn
from poshub.merchants import repository as merchant_repository
from poshub.terminals import repository as terminal_repository
from tests.factories import PNG, STAFF, login
from tests.fieldwork.support import Site, contracted_site, mark_parameters_fetched, principal
from tests.web.conftest import LiveServer

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PHONE: ViewportSize = {"width": 390, "height": 844}
TAP_MIN_PX = 44
TAP_TARGETS = (
    "main button, main .button, main select, main textarea, main summary, main label.choice, "
    "main input:not([type=hidden]):not([type=radio]):not([type=checkbox]), "
    "main .tech-nav a, main .order-card, main .back-link"
)


class Phone:
    """A phone-sized browser context that records console errors."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.context: BrowserContext = browser.new_context(
            base_url=server.url,
            viewport=PHONE,
            is_mobile=True,
            has_touch=True,
            device_scale_factor=2,
            locale="zh-CN",
        )
        self.context.set_default_timeout(10_000)
        self.errors: list[str] = []
        self.context.on("console", self._console)
        self.context.on("weberror", lambda e: self.errors.append(str(e.error)))

    def _console(self, message: ConsoleMessage) -> None:
        # Refused steps answer 409 or 422 on purpose; anything else is a fault.
        expected = ("status of 409", "status of 422")
        if message.type == "error" and not any(e in message.text for e in expected):
            self.errors.append(f"{message.text} ({message.location.get('url')})")


@pytest.fixture
def phone(browser: Browser, live_server: LiveServer) -> Iterator[Phone]:
    opened = Phone(browser, live_server)
    try:
        yield opened
    finally:
        opened.context.close()


def _shot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / name), full_page=True)
    page.evaluate("() => window.scrollTo(0, 0)")


def _fits_the_phone(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide on a 390px phone"


def _tap_targets_are_big_enough(page: Page) -> None:
    small = page.evaluate(
        """([selector, minimum]) => [...document.querySelectorAll(selector)]
            .filter(e => e.offsetParent !== null)
            .map(e => [e.id || e.name || e.className || e.tagName, e.getBoundingClientRect()])
            .filter(([, r]) => r.width > 0 && r.height < minimum)
            .map(([name, r]) => `${name}: ${Math.round(r.width)}x${Math.round(r.height)}`)""",
        [TAP_TARGETS, TAP_MIN_PX],
    )
    assert small == [], f"tap targets under {TAP_MIN_PX}px on {page.url}: {small}"


def _check(page: Page) -> None:
    _fits_the_phone(page)
    _tap_targets_are_big_enough(page)


def _status(page: Page, status: str) -> None:
    try:
        expect(page.locator("#status")).to_have_class(re.compile(rf"\bstatus-{status}\b"))
    except AssertionError as exc:
        alerts = page.locator(".alert").all_inner_texts()
        raise AssertionError(f"expected {status!r}; the page says: {alerts}") from exc


def _orders(client: TestClient, state: AppState, site: Site) -> tuple[str, str]:
    """An installation and an overdue site survey, both assigned to the technician."""
    csrf = login(client, "ops")
    response = client.post(
        "/api/v1/work-orders",
        json={"kind": "installation", "mid": site.mid, "tid": site.tid, "technician": "tech"},
        headers=csrf,
    )
    assert response.status_code == 201, response.text
    installation: str = response.json()["number"]
    client.cookies.clear()
    with state.db.unit_of_work() as uow:
        survey = service.create_order(
            uow.session,
            WorkOrderIn(kind="site_survey", mid=site.mid, technician="tech"),
            principal(uow.session, "ops"),
            now=utcnow() - dt.timedelta(days=12),  # long past its three working days
        )
        uow.commit()
    return installation, survey.number


@pytest.mark.browser
def test_technician_works_an_installation_on_a_phone(
    phone: Phone,
    client: TestClient,
    state: AppState,
    screenshot_dir: Path,
    tmp_path: Path,
) -> None:
    site = contracted_site(client, state)
    installation, survey = _orders(client, state, site)
    page = phone.context.new_page()

    # --- Log in: a page asked for without a session leads to the field login and back.
    page.goto("/tech")
    page.wait_for_url("**/tech/login?next=/tech")
    _check(page)
    _shot(page, screenshot_dir, "20-tech-login.png")
    page.fill("#username", "tech")
    page.fill("#password", STAFF["tech"][0])
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/tech$"))

    # --- My orders: the overdue survey first, its SLA visible.
    cards = page.locator("#open-orders .order-card")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_have_id(f"order-{survey}")
    expect(cards.nth(0)).to_have_class(re.compile(r"\bsla-breached\b"))
    expect(cards.nth(1)).to_have_id(f"order-{installation}")
    _check(page)
    _shot(page, screenshot_dir, "21-tech-my-orders.png")

    # --- The installation: address, tap-to-call, and only the next step's form.
    page.click(f"#order-{installation}")
    page.wait_for_url(f"**/tech/orders/{installation}")
    _status(page, "assigned")
    expect(page.locator("#call")).to_have_attribute("href", "tel:13905510001")
    expect(page.locator("#address")).to_contain_text("长江西路 100 号")
    expect(page.locator("#photo-file")).to_have_attribute("capture", "environment")
    expect(page.locator("#photo-file")).to_have_attribute("accept", "image/*")
    expect(page.locator("form.step-form")).to_have_count(1)
    _check(page)
    _shot(page, screenshot_dir, "22-tech-order.png")

    tomorrow = (utcnow().astimezone(SHANGHAI) + dt.timedelta(days=1)).date()
    page.fill("#f-appointment_at", f"{tomorrow.isoformat()}T14:30")
    page.click("#submit-scheduled")
    _status(page, "scheduled")
    expect(page.locator("#appointment")).to_have_text(f"{tomorrow.isoformat()} 14:30")

    # --- On site: the serial off the label, then a photo of the installed terminal.
    page.fill("#f-serial_number", "SN-A8-999999")
    page.click("#submit-checked_in")
    expect(page.locator("#err-serial_number")).to_be_visible()
    _status(page, "scheduled")
    _fits_the_phone(page)
    page.fill("#f-serial_number", site.serial)
    page.click("#submit-checked_in")
    _status(page, "checked_in")

    photo = tmp_path / "IMG_0001.png"
    photo.write_bytes(PNG)
    page.set_input_files("#photo-file", str(photo))
    page.fill("#photo-caption", "收银台安装位置")
    page.click("#photo-upload")
    expect(page.locator(".photo-grid figure")).to_have_count(1)
    expect(page.locator(".photo-grid img")).to_have_js_property("naturalWidth", 8)

    # --- The parameters: refused until the device has downloaded them.
    page.click("#submit-parameters_loaded")
    expect(page.locator("#step-errors")).to_contain_text(site.tid)
    _status(page, "checked_in")
    _check(page)
    _shot(page, screenshot_dir, "23-tech-parameters-not-loaded.png")
    mark_parameters_fetched(state, site.tid, site.serial)
    page.click("#submit-parameters_loaded")
    _status(page, "parameters_loaded")

    # --- The acceptance test makes the terminal active and the merchant live.
    page.fill("#f-reference", "612345678901")
    page.fill("#f-response_time_ms", "850")
    page.check("input[name=receipt_printed][value=true]")
    page.check("input[name=record_matches][value=true]")
    _check(page)
    _shot(page, screenshot_dir, "24-tech-acceptance.png")
    page.click("#submit-acceptance_passed")
    _status(page, "acceptance_passed")
    with state.db.unit_of_work(read_only=True) as uow:
        terminal = terminal_repository.terminal_by_tid(uow.session, site.tid)
        merchant = merchant_repository.by_mid(uow.session, site.mid)
        assert terminal is not None
        assert terminal.status == "active"
        assert merchant is not None
        assert merchant.status == "live"

    # --- Training sign-off, then go-live.
    page.fill("#f-signer_name", "陈明")
    for topic in ("sale", "void", "refund", "settlement", "receipts", "security"):
        page.check(f"input[name=topics][value={topic}]")
    page.check("input[name=manual_given]")
    _check(page)
    _shot(page, screenshot_dir, "25-tech-training.png")
    page.click("#submit-trained")
    _status(page, "trained")
    expect(page.locator("#go-live-checklist li.done")).to_have_count(4)
    page.click("#submit-completed")
    _status(page, "completed")
    expect(page.locator("#finished")).to_be_visible()
    expect(page.locator("#sla")).to_have_class(re.compile(r"\bsla-met\b"))
    expect(page.locator("#history > ol > li, #history li").first).to_be_visible()
    _check(page)
    _shot(page, screenshot_dir, "26-tech-completed.png")

    # --- The survey: the checklist with yes/no answers a thumb can hit.
    page.goto(f"/tech/orders/{survey}")
    expect(page.locator("#sla")).to_have_class(re.compile(r"\bsla-breached\b"))
    page.click("#submit-checked_in")
    _status(page, "checked_in")
    page.check("input[name=power_available][value=true]")
    page.check('input[name=network][value="4g"]')
    page.check("input[name=signal_ok][value=true]")
    page.fill("#f-position", "收银台左侧，电子秤旁")
    page.check("input[name=feasible][value=true]")
    _check(page)
    _shot(page, screenshot_dir, "27-tech-survey.png")
    page.click("#submit-completed")
    _status(page, "completed")

    page.goto("/tech")
    expect(page.locator("#no-orders")).to_be_visible()
    expect(page.locator("#recent-orders .order-card")).to_have_count(2)
    _check(page)
    assert phone.errors == [], phone.errors


@pytest.mark.browser
def test_dispatch_on_a_phone(
    phone: Phone, client: TestClient, state: AppState, screenshot_dir: Path
) -> None:
    site = contracted_site(client, state)
    page = phone.context.new_page()
    page.goto("/tech/login?next=/tech/dispatch")
    page.fill("#username", "ops")
    page.fill("#password", STAFF["ops"][0])
    page.click("#login-submit")
    page.wait_for_url("**/tech/dispatch")
    page.select_option("#f-kind", "installation")
    page.fill("#f-mid", site.mid)
    page.fill("#f-tid", site.tid)
    page.select_option("#f-technician", "tech")
    page.click("#create-submit")
    page.wait_for_url(re.compile(r"/tech/orders/WO\d{4}-\d{7}$"))
    _status(page, "assigned")
    expect(page.locator("#technician")).to_have_text("tech")
    _check(page)
    page.click("#nav-dispatch")
    expect(page.locator("#dispatch-orders .order-card")).to_have_count(1)
    _check(page)
    _shot(page, screenshot_dir, "28-tech-dispatch.png")
    assert phone.errors == [], phone.errors
