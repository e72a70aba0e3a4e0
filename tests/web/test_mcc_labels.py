"""Merchant categories read as names, not ISO 18245 digits: "5411 大型仓储式超市/超市" on
Chinese pages, "5411 Groceries and supermarkets" on English ones, wherever a merchant
category code is shown (merchant list and page, review queue, review page, apply form)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from poshub.onboarding.mcc_names import assignable_codes, chinese_names, mcc_label
from poshub.onboarding.rules import mcc_info
from tests.factories import approved_merchant, login, payload, submitted_application

CJK = re.compile(r"[\u4e00-\u9fff]")
SUPERMARKET_ZH = "5411 大型仓储式超市/超市"
SUPERMARKET_EN = "5411 Groceries and supermarkets"


def test_every_assignable_category_has_a_chinese_name_and_no_other_code_does() -> None:
    codes = [c for c in (f"{i:04d}" for i in range(10_000)) if mcc_info(c)]
    assert len(codes) > 300  # the ISO 18245 list is read
    assert list(assignable_codes()) == codes
    names = chinese_names()
    assert sorted(names) == codes  # no code missing, none extra (e.g. a reserved 3xxx)
    no_chinese = {code: name for code, name in names.items() if not CJK.search(name.strip())}
    assert not no_chinese, no_chinese
    with_code_inside = {code: name for code, name in names.items() if code in name}
    assert not with_code_inside, with_code_inside


def test_the_label_is_the_code_and_the_name_in_the_pages_language() -> None:
    assert mcc_label("5812", "zh_CN") == "5812 就餐场所和餐馆"
    assert mcc_label("7011", "zh_CN") == "7011 住宿服务（旅馆、酒店、汽车旅馆、度假村等）"
    assert mcc_label("5999", "zh-CN") == "5999 其他专门零售店"
    assert mcc_label("5411", "en") == SUPERMARKET_EN
    # Unknown, reserved (scheme brand codes) and malformed codes are shown as they are.
    assert mcc_label("0001", "zh_CN") == "0001"
    assert mcc_label("3000", "zh_CN") == "3000"
    assert mcc_label("54x1", "en") == "54x1"
    assert mcc_label("", "zh_CN") == ""
    assert mcc_label(None, "en") == ""


@pytest.mark.parametrize(
    ("lang", "mcc", "label", "absent"),
    [
        ("zh_CN", "5411", SUPERMARKET_ZH, "Groceries"),
        ("en", "5812", "5812 Eating places and restaurants", "就餐场所"),
    ],
)
def test_merchant_list_and_page_name_the_category(
    client: TestClient, lang: str, mcc: str, label: str, absent: str
) -> None:
    _created, mid = approved_merchant(client, mcc=mcc)
    login(client, "reviewer")
    listing = client.get(f"/admin/merchants?lang={lang}").text
    assert f"<td>{label}</td>" in listing
    assert f"<td>{mcc}</td>" not in listing
    assert absent not in listing
    detail = client.get(f"/admin/merchants/{mid}?lang={lang}").text
    assert f"MCC {label} ·" in detail
    assert f"MCC {mcc} ·" not in detail


def test_review_queue_and_review_page_name_the_category(client: TestClient) -> None:
    created = submitted_application(client)
    login(client, "reviewer")
    queue = client.get("/admin/applications?lang=zh_CN").text
    assert f"<td>{SUPERMARKET_ZH}</td>" in queue
    assert "<td>5411</td>" not in queue
    review = client.get(f"/admin/applications/{created['id']}?lang=zh_CN").text
    assert f"<dt>MCC</dt><dd>{SUPERMARKET_ZH}</dd>" in review
    assert "<dd>5411</dd>" not in review
    english = client.get(f"/admin/applications/{created['id']}?lang=en").text
    assert f"<dd>{SUPERMARKET_EN}</dd>" in english


def test_apply_form_offers_named_categories_but_not_prohibited_ones(client: TestClient) -> None:
    page = client.get("/apply?lang=zh_CN").text
    assert 'list="mcc-options"' in page
    assert '<option value="5812">5812 就餐场所和餐馆</option>' in page
    assert '<option value="7995">' not in page  # gambling is never onboarded
    assert '<option value="3000">' not in page  # reserved brand codes are not assignable
    english = client.get("/apply?lang=en").text
    assert '<option value="5812">5812 Eating places and restaurants</option>' in english
    # Stripe's list, the only source for 7511, names it "Truck StopIteration".
    assert '<option value="7511">7511 Truck stops</option>' in english
    assert "StopIteration" not in english


def test_apply_form_echoes_the_chosen_category_by_name(client: TestClient) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/apply").text)
    assert token is not None
    form = {"mcc": "5812", "applicant_kind": "individual_business", "csrf_token": token.group(1)}
    page = client.post("/apply?lang=zh_CN", data=form)
    assert page.status_code == 422  # the rest of the form is missing
    assert "<small>5812 就餐场所和餐馆</small>" in page.text
    unknown = client.post("/apply?lang=zh_CN", data={**form, "mcc": "0001"}).text
    assert "<small>0001" not in unknown
    assert payload()["mcc"] == "5411"  # the factories' merchants are supermarkets
