"""Risk rules and limits in headless Chromium at desktop width, with screenshots in
test-artifacts/screenshots/ (risk-rules-*.png, risk-limits-*.png) for people to look at.

A risk officer previews a rule setting with a wrong threshold (htmx shows the refusal
beside the field in place), previews a good one and saves it, asks for a higher QR limit for a merchant;
a second risk officer approves it, and the merchant page shows the new limit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from poshub.bootstrap import AppState
from poshub.core.roles import Role
from tests.factories import (
    SECOND_RISK_OFFICER,
    STAFF,
    add_second_risk_officer,
    approved_merchant,
)
from tests.web.test_transactions_browser import Staff, _nothing_overflows, _shot, staff

# Browser tests need one backend only: SQLite, whatever POSHUB_TEST_POSTGRES_URL says.
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
__all__ = ["staff"]  # the fixture, shared with the transaction pages' browser test


@pytest.mark.browser
def test_rules_and_limits_by_two_risk_officers(
    staff: Staff,
    client: TestClient,
    state: AppState,
    screenshot_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_second_risk_officer(state)
    monkeypatch.setitem(
        STAFF, SECOND_RISK_OFFICER[0], (SECOND_RISK_OFFICER[1], (Role.RISK_OFFICER,))
    )
    _, mid = approved_merchant(client)

    risk = staff.log_in("risk", "/admin/risk/rules")
    expect(risk.locator("#rule-card_velocity h2")).to_have_text("同一卡片交易过于频繁")
    risk.locator("#rule-card_velocity summary").first.click()
    risk.fill("#rule-card_velocity-max_count-input", "0")
    risk.click("#rule-card_velocity-preview")
    # htmx replaced the rule's card only: the refusal stands beside the field.
    expect(risk.locator("#rule-card_velocity-max_count-error")).to_contain_text("不能小于1")
    expect(risk.locator("#rule-card_velocity-max_count-input")).to_have_value("0")
    _nothing_overflows(risk, tables_fit=True)
    _shot(risk, screenshot_dir, "risk-rules-refused.png")

    risk.fill("#rule-card_velocity-max_count-input", "8")
    risk.click("#rule-card_velocity-preview")
    expect(risk.locator("#rule-card_velocity-preview-result")).to_contain_text("最近 7 天内")
    expect(risk.locator("#rule-card_velocity-version")).to_contain_text("出厂默认设置")
    risk.fill("#rule-card_velocity-reason", "商超高峰期误报较多")
    risk.click("#rule-card_velocity-save")
    expect(risk.locator("#rule-card_velocity-version")).to_contain_text("第 1 版")
    expect(risk.locator("#rule-card_velocity-max_count")).to_contain_text("8")
    _shot(risk, screenshot_dir, "risk-rules.png")

    risk.goto(f"/admin/merchants/{mid}")
    expect(risk.locator("#limits-qr")).to_contain_text("¥10,000.00")
    risk.click("#request-limit-change")
    expect(risk.locator("#request-subject")).to_have_value(mid)
    risk.fill("#request-per_transaction_fen", "30000")
    risk.fill("#request-per_day_fen", "20000")
    risk.fill("#request-reason", "建材批发，客单价高")
    risk.click("#request-submit")
    expect(risk.locator("#request-per_day_fen-error")).to_contain_text("单日限额不能低于单笔限额")
    risk.fill("#request-per_day_fen", "300000")
    risk.click("#request-submit")
    expect(risk.locator("#pending tr.change-pending")).to_have_count(1)
    expect(risk.locator("#pending")).to_contain_text("须由另一名风控专员审批")
    _nothing_overflows(risk, tables_fit=False)
    _shot(risk, screenshot_dir, "risk-limits-requested.png")

    checker = staff.log_in(SECOND_RISK_OFFICER[0], "/admin/risk/limits")
    checker.locator("#pending button", has_text="审批通过").click()
    expect(checker.locator("#no-pending")).to_be_visible()
    expect(checker.locator("#versions")).to_contain_text("¥300,000.00")
    _nothing_overflows(checker, tables_fit=False)
    _shot(checker, screenshot_dir, "risk-limits-approved.png")

    checker.goto(f"/admin/merchants/{mid}")
    expect(checker.locator("#limits-qr")).to_contain_text("¥30,000.00")
    expect(checker.locator("#limits-qr")).to_contain_text("商户单独设定的限额（第 1 版）")
    checker.locator("#limits").screenshot(path=str(screenshot_dir / "risk-limits-merchant.png"))
    # The refused request answered 422 (the page with its reasons), which Chromium logs.
    assert [e for e in staff.console_errors if "status of 422" not in e] == [], staff.console_errors
