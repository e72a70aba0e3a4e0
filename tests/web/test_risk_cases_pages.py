"""The risk officer's pages (/admin/risk/alerts, /admin/risk/cases, a case's page) and the
merchant page's risk card, in Chinese: names instead of codes, every action through its
form, refusals beside the form, no forms for readers or on a closed case."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from tests.factories import PNG, login
from tests.gateway.journal_rows import PAN_MASKED, PAN_TOKEN
from tests.risk.cases_support import DECLINED, SALE, World, world

# One backend: the pages read what the service tests cover on both.
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
def risk(client: TestClient, state: AppState) -> World:
    return world(client, state)


def _form(client: TestClient, csrf: dict[str, str], url: str, **data: object) -> object:
    return client.post(
        url, data={"csrf_token": csrf["X-CSRF-Token"], **data}, follow_redirects=False
    )


def test_the_queue_reads_in_chinese_and_opens_a_case(client: TestClient, risk: World) -> None:
    csrf = login(client, "risk")
    page = client.get("/admin/risk/alerts?lang=zh_CN")
    assert page.status_code == 200
    html = page.text
    for text in (
        "同一卡片交易过于频繁",
        "试卡（连续拒绝）",
        "终端移机",
        "合肥蜀山明辉便利超市",
        "¥6,880.00",
        "已拒绝交易",
        "距离（公里）",
    ):
        assert text in html, text
    assert ">card_velocity<" not in html
    assert PAN_TOKEN not in html
    assert PAN_MASKED in html
    assert html.count('name="alert_id"') == 4

    bad = client.get("/admin/risk/alerts?lang=zh_CN&status=nope&mid=1")
    assert bad.status_code == 422
    assert 'id="err-status"' in bad.text
    assert 'id="err-mid"' in bad.text

    refused = client.post(
        "/admin/risk/cases",
        data={"csrf_token": csrf["X-CSRF-Token"], "alert_id": risk.alert_ids, "title": ""},
        follow_redirects=False,
    )
    assert refused.status_code == 422
    assert 'id="case-title-error"' in refused.text
    assert refused.text.count("checked") >= 3  # the ticks stay

    opened = client.post(
        "/admin/risk/cases",
        data={"csrf_token": csrf["X-CSRF-Token"], "alert_id": risk.alert_ids, "title": "门店试卡"},
        follow_redirects=False,
    )
    assert opened.status_code == 303
    location = opened.headers["location"]
    assert re.fullmatch(r"/admin/risk/cases/RC-\d{8}-0001", location)
    case = client.get(location + "?lang=zh_CN").text
    for text in (
        "商户与终端",
        "规则命中",
        "位置轨迹",
        "402.3",
        "31.2304",
        "案件已立案",
        "冻结商户",
    ):
        assert text in case, text
    assert f"txn-{SALE}" in case
    assert f"txn-{DECLINED}" in case

    dismissed = client.post(
        "/admin/risk/alerts/dismiss",
        data={
            "csrf_token": csrf["X-CSRF-Token"],
            "alert_id": [risk.other_alert_id],
            "reason": "测试卡",
        },
        follow_redirects=False,
    )
    assert dismissed.status_code == 303
    assert "已排除 1 条告警" in client.get(dismissed.headers["location"] + "&lang=zh_CN").text
    assert 'id="no-alerts"' in client.get("/admin/risk/alerts").text
    shown = client.get("/admin/risk/alerts?status=dismissed&lang=zh_CN").text
    assert "已排除: 测试卡 (risk" in shown
    assert "已排除 x" not in client.get("/admin/risk/alerts?dismissed=x&lang=zh_CN").text


def test_acting_on_a_case_from_its_page(client: TestClient, risk: World) -> None:
    csrf = login(client, "risk")
    opened = client.post(
        "/admin/risk/cases",
        data={"csrf_token": csrf["X-CSRF-Token"], "alert_id": risk.alert_ids, "title": "门店试卡"},
        follow_redirects=False,
    )
    url = opened.headers["location"]

    refused = client.post(
        f"{url}/freeze-merchant", data={"csrf_token": csrf["X-CSRF-Token"], "reason": ""}
    )
    assert refused.status_code == 422
    assert 'id="freeze-merchant-reason-error"' in refused.text
    frozen = client.post(
        f"{url}/freeze-merchant",
        data={"csrf_token": csrf["X-CSRF-Token"], "reason": "试卡"},
        follow_redirects=False,
    )
    assert frozen.status_code == 303
    page = client.get(url + "?lang=zh_CN").text
    assert 'class="card frozen"' in page
    assert "商户已冻结" in page
    again = client.post(
        f"{url}/freeze-merchant", data={"csrf_token": csrf["X-CSRF-Token"], "reason": "再次"}
    )
    assert again.status_code == 409
    assert 'id="freeze-merchant-error"' in again.text

    note = client.post(
        f"{url}/notes",
        data={"csrf_token": csrf["X-CSRF-Token"], "note": "已致电商户。"},
        follow_redirects=False,
    )
    assert note.status_code == 303
    attached = client.post(
        f"{url}/attachments",
        data={"csrf_token": csrf["X-CSRF-Token"]},
        files={"file": ("报案回执.png", PNG, "image/png")},
        follow_redirects=False,
    )
    assert attached.status_code == 303, attached.text
    unknown = client.post(
        f"{url}/items", data={"csrf_token": csrf["X-CSRF-Token"], "rrn": "999999999999"}
    )
    assert unknown.status_code == 404
    assert 'id="link-error"' in unknown.text

    # The merchant page shows the freeze and the open case.
    merchant = client.get(f"/admin/merchants/{risk.mid}?lang=zh_CN").text
    assert 'id="risk"' in merchant
    assert url.rsplit("/", 1)[1] in merchant
    assert "商户已冻结" in merchant

    page = client.get(url).text
    freeze_id = re.search(r'id="freeze-(\d+)"', page)
    assert freeze_id
    released = client.post(
        f"{url}/freezes/{freeze_id[1]}/release",
        data={"csrf_token": csrf["X-CSRF-Token"], "reason": "商户已说明"},
        follow_redirects=False,
    )
    assert released.status_code == 303
    closed = client.post(
        f"{url}/close",
        data={"csrf_token": csrf["X-CSRF-Token"], "outcome": "false_positive", "note": "误报。"},
        follow_redirects=False,
    )
    assert closed.status_code == 303
    page = client.get(url + "?lang=zh_CN").text
    assert "误报" in page
    assert 'id="actions"' not in page  # closed: no forms
    for event in ("商户已冻结", "冻结或暂缓结算已解除", "已上传附件", "案件已结案"):
        assert event in page, event
    exported = client.post(f"{url}/export", data={"csrf_token": csrf["X-CSRF-Token"]})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")


def test_readers_see_no_forms(client: TestClient, risk: World) -> None:
    csrf = login(client, "risk")
    client.post(
        "/admin/risk/cases",
        data={"csrf_token": csrf["X-CSRF-Token"], "alert_id": risk.alert_ids[:1], "title": "x"},
    )
    login(client, "auditor")
    queue = client.get("/admin/risk/alerts").text
    assert 'name="alert_id"' not in queue
    listing = client.get("/admin/risk/cases?lang=zh_CN").text
    reference = re.search(r"RC-\d{8}-0001", listing)
    assert reference
    assert 'id="open-case"' not in listing
    page = client.get(f"/admin/risk/cases/{reference[0]}").text
    assert 'id="actions"' not in page
    assert 'id="export"' not in page
