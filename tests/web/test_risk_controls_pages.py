"""The back office's risk rules and limits pages, the merchant page's limits card and the
applicant's limits on the tracking page: who may open and act, Chinese names rather than
codes, maker-checker in forms (the requester never sees Approve; self-approval is 403),
refusals beside their fields with the rule or limits unchanged."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.risk.schemas import RULES as RULE_DEFINITIONS
from poshub.web.labels import RULE_PARAM_LABELS
from poshub.web.security import APPLICANT_COOKIE, LANG_COOKIE
from tests.factories import (
    add_second_risk_officer,
    approved_merchant,
    create,
    login,
    login_second_risk_officer,
)

RULES = "/admin/risk/rules"
LIMITS = "/admin/risk/limits"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def _page(client: TestClient, url: str) -> httpx.Response:
    response: httpx.Response = client.get(url)
    assert response.status_code == 200, response.text[:500]
    return response


def _post(client: TestClient, url: str, page: httpx.Response, **form: str) -> httpx.Response:
    response: httpx.Response = client.post(
        url, data={"csrf_token": _csrf(page.text), **form}, follow_redirects=False
    )
    return response


def _english(client: TestClient) -> None:
    """Pages and the forms' answers in English (the assertions read English messages)."""
    client.cookies.set(LANG_COOKIE, "en")


def _visible(html: str) -> str:
    """The page's text as read (no tags, attributes or scripts)."""
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.parametrize(
    ("username", "status", "forms"),
    [
        ("risk", 200, True),
        ("auditor", 200, False),
        ("admin", 200, False),
        ("reviewer", 403, False),
        ("ops", 403, False),
        ("support", 403, False),
    ],
)
def test_who_opens_the_pages_and_who_gets_forms(
    client: TestClient, username: str, status: int, forms: bool
) -> None:
    login(client, username)
    rules = client.get(RULES)
    limits = client.get(LIMITS)
    assert (rules.status_code, limits.status_code) == (status, status)
    if status == 200:
        assert ('id="rule-card_velocity-form"' in rules.text) is forms
        assert ('id="request-form"' in limits.text) is forms


def test_rules_page_reads_in_chinese_without_codes(client: TestClient) -> None:
    login(client, "risk")
    page = _page(client, f"{RULES}?lang=zh_CN").text
    text = _visible(page)
    for words in (
        "风控规则",
        "同一卡片交易过于频繁",
        "时间窗口（分钟）",
        "时间窗口内最多交易笔数",
        "拒绝授权",
    ):
        assert words in text, words
    for code in ("card_velocity", "max_count", "window_minutes", "decline", "night_start"):
        assert code not in text, code
    assert "出厂默认设置" in text  # nothing saved yet


def test_every_threshold_of_every_rule_has_a_name() -> None:
    """A threshold added to a rule's model needs its label, or the page shows its code."""
    unnamed = [
        f"{code}.{name}"
        for code, definition in RULE_DEFINITIONS.items()
        for name in definition.params.model_fields
        if f"{code}.{name}" not in RULE_PARAM_LABELS and name not in RULE_PARAM_LABELS
    ]
    assert unnamed == []


def test_a_rule_saved_from_its_form_is_the_next_version(client: TestClient) -> None:
    login(client, "risk")
    _english(client)
    page = _page(client, f"{RULES}?lang=en")
    saved = _post(
        client,
        f"{RULES}/cashout",
        page,
        enabled="1",
        action="alert",
        **{
            "params.round_unit_fen": "2000",
            "params.round_min_fen": "5000",
            "params.near_limit_percent": "5",
            "params.night_start": "22:30",
            "params.night_end": "06:00",
            "params.same_card_per_day": "3",
            "params.min_signals": "2",
        },
        reason="Hold fewer payments; alert instead.",
    )
    assert saved.status_code == 303, saved.text[:800]
    assert saved.headers["location"] == f"{RULES}#rule-cashout"
    rule = client.get("/api/v1/risk/rules/cashout").json()
    assert rule["version"] == 1
    assert rule["action"] == "alert"
    assert rule["params"]["round_unit_fen"] == 200_000  # typed in CNY, kept in fen
    assert rule["params"]["night_start"] == "22:30"
    shown = _page(client, f"{RULES}?lang=en").text
    assert "Version 1, saved by Risk" in shown
    assert 'id="rule-cashout-v1"' in shown


def test_a_refused_edit_shows_each_error_beside_its_field_and_changes_nothing(
    client: TestClient,
) -> None:
    login(client, "risk")
    _english(client)
    page = _page(client, f"{RULES}?lang=en")
    refused = _post(
        client,
        f"{RULES}/card_testing",
        page,
        enabled="1",
        action="decline",
        **{
            "params.max_declines": "-3",
            "params.window_minutes": "ten",
            "params.cooldown_minutes": "30",
        },
        reason="",
    )
    assert refused.status_code == 422
    html = refused.text
    assert 'id="rule-card_testing-max_declines-error"' in html
    assert "Must be at least 1." in html
    assert 'id="rule-card_testing-window_minutes-error"' in html
    assert "Must be a whole number." in html
    assert 'value="-3"' in html  # what was typed comes back
    assert "Must have at least 1 characters." in html  # the reason
    assert client.get("/api/v1/risk/rules/card_testing").json()["version"] == 0

    amount = _post(
        client,
        f"{RULES}/refund_ratio",
        page,
        enabled="1",
        action="alert",
        **{"params.max_percent": "0", "params.min_sales_fen": "12.345"},
        reason="Tighter.",
    )
    assert amount.status_code == 422
    assert "at most two decimals" in amount.text
    assert 'id="rule-refund_ratio-max_percent-error"' in amount.text  # still named


def test_preview_from_the_form_saves_nothing(client: TestClient) -> None:
    login(client, "risk")
    _english(client)
    page = _page(client, f"{RULES}?lang=en")
    fields = {"params.max_count": "0", "params.window_minutes": "10"}
    refused = _post(
        client, f"{RULES}/card_velocity/preview", page, enabled="1", action="alert", **fields
    )
    assert refused.status_code == 422
    assert 'id="rule-card_velocity-max_count-error"' in refused.text
    pytest.importorskip("poshub.risk.preview")  # helper H1's replay of the journal
    fields["params.max_count"] = "2"
    shown = _post(
        client,
        f"{RULES}/card_velocity/preview",
        page,
        enabled="1",
        action="alert",
        days="3",
        **fields,
    )
    assert shown.status_code == 200
    assert 'id="rule-card_velocity-preview-result"' in shown.text
    assert "Over the last 3 days this setting would have raised 0 alerts" in shown.text
    assert client.get("/api/v1/risk/rules/card_velocity").json()["version"] == 0


def test_limits_maker_checker_in_the_back_office(client: TestClient, state: AppState) -> None:
    _, mid = approved_merchant(client)
    add_second_risk_officer(state)
    login(client, "risk")
    page = _page(client, f"{LIMITS}?lang=zh_CN")
    text = _visible(page.text)
    for words in ("默认限额", "扫码支付", "借记卡", "¥10,000.00", "¥100,000.00", "单卡单日"):
        assert words in text, words
    assert "per_day_fen" not in text

    requested = _post(
        client,
        f"{LIMITS}/changes",
        page,
        scope="merchant",
        subject=mid,
        channel="qr",
        per_transaction_fen="20000",
        per_day_fen="200000.50",
        reason="批发商户，客单价高",
    )
    assert requested.status_code == 303, requested.text[:800]
    change_id = requested.headers["location"].rsplit("-", 1)[1]
    page = _page(client, f"{LIMITS}?lang=en")
    assert f'id="change-{change_id}-waiting"' in page.text
    assert f'id="approve-{change_id}"' not in page.text
    _english(client)
    self_approval = _post(client, f"{LIMITS}/changes/{change_id}/approve", page)
    assert self_approval.status_code == 403
    assert "Another risk officer must decide this change" in self_approval.text

    login_second_risk_officer(client)
    page = _page(client, f"{LIMITS}?lang=en")
    assert f'id="approve-{change_id}"' in page.text
    assert f'id="withdraw-{change_id}"' not in page.text
    approved = _post(client, f"{LIMITS}/changes/{change_id}/approve", page, note="看过门店")
    assert approved.status_code == 303
    shown = _page(client, f"{LIMITS}?lang=en").text
    assert 'id="no-pending"' in shown
    assert "¥200,000.50" in shown  # the version, in CNY
    limits = client.get(f"/api/v1/risk/limits/merchants/{mid}").json()
    qr = next(c for c in limits["channels"] if c["channel"] == "qr")
    assert qr["in_force"]["per_day_fen"] == 20_000_050


def test_a_refused_limit_request_shows_its_reasons_beside_the_fields(client: TestClient) -> None:
    _, mid = approved_merchant(client)
    login(client, "risk")
    _english(client)
    page = _page(client, f"{LIMITS}?lang=en")
    refused = _post(
        client,
        f"{LIMITS}/changes",
        page,
        scope="merchant",
        subject=mid,
        channel="qr",
        per_transaction_fen="5000",
        per_day_fen="4000",
        per_month_fen="lots",
        reason="Test.",
    )
    assert refused.status_code == 422
    assert 'id="request-per_day_fen-error"' in refused.text
    assert "The daily limit cannot be below the per-transaction limit." in refused.text
    assert 'id="request-per_month_fen-error"' in refused.text
    assert 'value="lots"' in refused.text
    unknown = _post(
        client,
        f"{LIMITS}/changes",
        page,
        scope="terminal",
        subject="99999999",
        channel="qr",
        per_transaction_fen="100",
        reason="Test.",
    )
    assert unknown.status_code == 422
    assert 'id="request-subject-error"' in unknown.text
    assert "No terminal has this TID." in unknown.text
    assert client.get("/api/v1/risk/limits/changes").json() == []


def test_the_merchant_page_shows_the_limits_in_force(client: TestClient) -> None:
    _, mid = approved_merchant(client)
    login(client, "support")
    page = _page(client, f"/admin/merchants/{mid}?lang=zh_CN").text
    card = page[page.index('id="limits"') :]
    assert "交易限额" in card
    assert "¥10,000.00" in card
    assert "默认限额" in card
    assert 'id="request-limit-change"' not in card
    login(client, "risk")
    page = _page(client, f"/admin/merchants/{mid}").text
    assert f"/admin/risk/limits?scope=merchant&amp;subject={mid}#request" in page
    form = _page(client, f"{LIMITS}?scope=merchant&subject={mid}").text
    assert f'id="request-subject" value="{mid}"' in form


def test_an_applicant_sees_their_own_limits_and_no_one_elses(client: TestClient) -> None:
    created, mid = approved_merchant(client)
    client.cookies.set(APPLICANT_COOKIE, created["access_token"])
    page = client.get(f"/apply/track/{created['tracking_number']}?lang=zh_CN")
    assert page.status_code == 200
    card = page.text[page.text.index('id="limits"') :]
    assert "您的交易限额" in card
    assert "扫码支付" in card
    assert "¥10,000.00" in card
    assert "¥100,000.00" in card

    other = create(client)  # another applicant, not yet a merchant
    client.cookies.set(APPLICANT_COOKIE, other["access_token"])
    theirs = client.get(f"/apply/track/{other['tracking_number']}?lang=zh_CN")
    assert theirs.status_code == 200
    assert 'id="limits"' not in theirs.text
    intruding = client.get(f"/apply/track/{created['tracking_number']}?lang=zh_CN")
    assert 'id="limits"' not in intruding.text
    assert "¥10,000.00" not in intruding.text
    assert mid not in intruding.text
