"""The risk officer's alert queue and case page in headless Chromium, in Chinese at
1280 px, with screenshots in test-artifacts/screenshots/ (risk-*.png) for people to look at
(copies of the two main ones are kept in docs/screenshots/).

The risk officer opens the queue, ticks the alerts of one merchant, opens a case from
them, freezes the merchant, adds a note and releases the freeze.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from poshub.bootstrap import AppState
from tests.risk.cases_support import DECLINED, SALE, World, world
from tests.web.test_transactions_browser import (  # the same logged-in Chromium contexts
    Staff,
    _chinese_is_drawn,
    _nothing_overflows,
    _shot,
    staff,  # noqa: F401 - the fixture
)

# Browser tests need one backend only: SQLite, whatever POSHUB_TEST_POSTGRES_URL says.
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
def risk(client: TestClient, state: AppState) -> World:
    return world(client, state, "SN-RISK-BROWSER-01")


@pytest.mark.browser
def test_risk_officer_opens_a_case_freezes_and_releases(
    staff: Staff,  # noqa: F811 - the fixture imported above
    risk: World,
    screenshot_dir: Path,
) -> None:
    officer = staff.log_in("risk", "/admin")

    # --- The queue from the menu: newest first, rules by name, amounts in yuan.
    officer.click("nav a[href='/admin/risk/alerts']")
    officer.wait_for_url("**/admin/risk/alerts")
    expect(officer.locator("h1")).to_have_text("风险告警")
    rows = officer.locator("table.alerts tbody tr")
    expect(rows).to_have_count(4)
    relocation, testing, velocity = (f"#alert-{i}" for i in reversed(risk.alert_ids))
    expect(officer.locator(f"{testing} td.rule .rule-name")).to_have_text("试卡（连续拒绝）")
    expect(officer.locator(f"{testing} td.num")).to_have_text("¥6,880.00")
    expect(officer.locator(f"{velocity} td.merchant")).to_contain_text("合肥蜀山明辉便利超市")
    expect(officer.locator(f"{relocation} td.seen")).to_contain_text("距离（公里）: 402.3")
    _chinese_is_drawn(officer, f"{testing} td.rule .rule-name", "试卡")
    _nothing_overflows(officer, tables_fit=True)
    _shot(officer, screenshot_dir, "risk-alerts.png")

    # --- Tick the merchant's three alerts and open a case from them.
    for alert_id in risk.alert_ids:
        officer.check(f"#tick-{alert_id}")
    officer.fill("#case-title", "门店试卡，终端移机")
    officer.click("#open-case")
    officer.wait_for_url(re.compile(r"/admin/risk/cases/RC-\d{8}-0001$"))
    expect(officer.locator("#case-status")).to_contain_text("调查中")
    expect(officer.locator(f"#transactions #txn-{SALE}")).to_be_visible()
    expect(officer.locator(f"#transactions #txn-{DECLINED}")).to_be_visible()
    expect(officer.locator("#rule-hits table tbody tr")).to_have_count(3)
    expect(officer.locator("#location-trail")).to_contain_text("31.2304")
    expect(officer.locator("#no-freezes")).to_be_visible()

    # --- Freeze the merchant: the freeze shows at the top, with its release form.
    officer.fill("#freeze-merchant-reason", "同卡连续拒绝 6 次，疑似试卡")
    officer.click("#freeze-merchant-submit")
    officer.wait_for_url(re.compile(r"#freezes$"))
    freeze = officer.locator("#freezes .freeze")
    expect(freeze).to_have_count(1)
    expect(freeze).to_contain_text("商户已冻结")
    expect(officer.locator("#freezes")).to_have_class(re.compile(r"frozen"))

    # --- A note.
    officer.fill("#note-text", "已电话联系商户负责人，称收银员误操作，待调取监控核实。")
    officer.click("#note-submit")
    officer.wait_for_url(re.compile(r"#notes$"))
    expect(officer.locator("#notes ul.notes li")).to_have_count(1)
    expect(officer.locator("#timeline li")).to_have_count(3)
    _nothing_overflows(officer, tables_fit=True)
    _shot(officer, screenshot_dir, "risk-case.png")

    # --- The merchant page says so too.
    officer.click("#merchant-link")
    officer.wait_for_url(f"**/admin/merchants/{risk.mid}")
    expect(officer.locator("#risk")).to_contain_text("商户已冻结")
    expect(officer.locator("#risk a[href^='/admin/risk/cases/RC-']")).to_have_count(1)
    _shot(officer, screenshot_dir, "risk-merchant-card.png")
    officer.go_back()

    # --- Release the freeze with a reason: nothing in force any more.
    officer.locator("#freezes input[name=reason]").fill("监控核实为收银员误操作")
    officer.locator("#freezes button[type=submit]").click()
    officer.wait_for_url(re.compile(r"#freezes$"))
    expect(officer.locator("#no-freezes")).to_be_visible()
    expect(officer.locator("#timeline li")).to_have_count(4)
    expect(officer.locator("#timeline li").last).to_contain_text("冻结或暂缓结算已解除")
    _shot(officer, screenshot_dir, "risk-case-released.png")

    # --- The queue now holds only the other merchant's alert.
    officer.goto("/admin/risk/alerts")
    expect(rows).to_have_count(1)
    assert staff.console_errors == []
