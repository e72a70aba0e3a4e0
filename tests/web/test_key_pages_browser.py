"""Key custody in headless Chromium at desktop width, with screenshots in
test-artifacts/screenshots/ (keys-*.png) for people to look at.

Two operators form a transport key (the first also mistypes a published test key and
reads why it is refused), then one requests a terminal's key export from the terminal
page, the other approves it, and the requester collects the cryptogram once; going back
and collecting again is refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from poshub.bootstrap import AppState
from poshub.core.roles import Role
from poshub.terminals.hsm import combine_components, kcv
from tests.factories import SECOND_OPERATOR, STAFF, add_second_operator
from tests.terminals.test_key_custody import _component as component_bytes
from tests.terminals.test_key_custody import _terminal as allocated_terminal
from tests.web.test_transactions_browser import Staff, _nothing_overflows, _shot, staff

# Browser tests need one backend only: SQLite, whatever POSHUB_TEST_POSTGRES_URL says.
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
__all__ = ["staff"]  # the fixture, shared with the transaction pages' browser test


def _component() -> str:
    return component_bytes().hex().upper()


@pytest.mark.browser
def test_ceremony_and_export_by_two_operators(
    staff: Staff,
    client: TestClient,
    state: AppState,
    screenshot_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_second_operator(state)
    # The browser helper logs in whoever STAFF names: name the second operator too.
    monkeypatch.setitem(STAFF, SECOND_OPERATOR[0], (SECOND_OPERATOR[1], (Role.OPERATIONS,)))
    provisioned = allocated_terminal(client, "SN-KEYS-BROWSER-01")
    tid, tmk_kcv = provisioned["tid"], provisioned["kcv"]
    first, second = _component(), _component()

    # The first custodian: a published test key is refused beside the field, then the
    # real component starts the ceremony.
    ops = staff.log_in("ops", "/admin/keys")
    expect(ops.locator("nav a[href='/admin/keys']")).to_have_text("密钥管理")
    ops.fill("#start-label", "KLD-01 密钥注入设备")
    ops.fill("#start-component", "0123456789ABCDEFFEDCBA9876543210")
    ops.click("#start-submit")
    expect(ops.locator("#start-component-error")).to_contain_text("公开的测试密钥或弱密钥")
    expect(ops.locator("#start-component")).to_have_value("")
    expect(ops.locator("#start-label")).to_have_value("KLD-01 密钥注入设备")
    _shot(ops, screenshot_dir, "keys-weak-component.png")
    ops.fill("#start-component", first)
    ops.click("#start-submit")
    expect(ops.locator("tr[id^=transport-key-] [id^=waiting-]")).to_be_visible()
    _nothing_overflows(ops, tables_fit=True)
    _shot(ops, screenshot_dir, "keys-ceremony-started.png")

    # The second custodian enters the other component: the key is registered by its KCV.
    ops2 = staff.log_in("ops2", "/admin/keys")
    ops2.locator("form.component-form input[name=component]").fill(second)
    ops2.locator("form.component-form button").click()
    combined = combine_components(bytes.fromhex(first), bytes.fromhex(second))
    transport_kcv = kcv(combined)[:6]
    expect(ops2.locator("#transport-keys code.kcv").first).to_have_text(transport_kcv)
    _nothing_overflows(ops2, tables_fit=True)
    _shot(ops2, screenshot_dir, "keys-registered.png")

    # The requester asks for the export on the terminal's page.
    ops.goto(f"/admin/terminals/{tid}")
    ops.select_option("#export-kcv", transport_kcv)
    _shot(ops, screenshot_dir, "keys-terminal-request.png")
    ops.click("#key-export-submit")
    ops.wait_for_url("**/admin/keys#export-*")
    request_id = ops.url.rsplit("-", 1)[1]
    row = ops.locator(f"#export-{request_id}")
    expect(row).to_contain_text("须由另一位操作员批准")
    expect(ops.locator(f"#approve-{request_id}")).to_have_count(0)
    _shot(ops, screenshot_dir, "keys-requested.png")

    # The other operator approves; there is nothing for them to collect.
    ops2.goto("/admin/keys")
    ops2.click(f"#approve-{request_id}")
    ops2.wait_for_url("**/admin/keys#export-*")
    expect(ops2.locator(f"#collect-{request_id}")).to_have_count(0)
    _shot(ops2, screenshot_dir, "keys-approved.png")

    # The requester collects the cryptogram, once (a second tab still shows the button).
    ops.goto("/admin/keys")
    stale = ops.context.new_page()
    stale.goto("/admin/keys")
    ops.click(f"#collect-{request_id}")
    expect(ops.locator("#key-block")).to_be_visible()
    expect(ops.locator("#kcv")).to_have_text(tmk_kcv)
    expect(ops.locator("#transport-kcv")).to_have_text(transport_kcv)
    assert re.fullmatch(r"[0-9A-Z]{40,}", ops.locator("#key-block").inner_text())
    _nothing_overflows(ops, tables_fit=True)
    _shot(ops, screenshot_dir, "keys-collected.png")

    # Collect again from the stale tab: refused, with the reason, and no cryptogram.
    stale.click(f"#collect-{request_id}")
    expect(stale.locator("#keys-error")).to_contain_text("此密钥导出已被领取")
    expect(stale.locator("#key-block")).to_have_count(0)
    expect(stale.locator(f"#collect-{request_id}")).to_have_count(0)
    _shot(stale, screenshot_dir, "keys-collected-again.png")
    # The only failed loads are the two refusals this test asked for.
    assert [
        e
        for e in staff.console_errors
        if "(Unprocessable Entity)" not in e and "(Conflict)" not in e
    ] == []
