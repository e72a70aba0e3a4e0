"""Hostile input at the web edge: oversized bodies, control and bidi characters, NUL.

Every case goes through the HTTP API; with ``POSHUB_TEST_POSTGRES_URL`` set, the NUL cases
also run on PostgreSQL, which refuses NUL in text (before the edge checks: a 500).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from poshub.core import limits
from tests.factories import login, payload

EN = {"Accept-Language": "en"}


def fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {d["field"]: d["code"] for d in response.json()["detail"]}


# --- Body size ------------------------------------------------------------------------


def test_a_json_body_over_64_kb_is_413_before_it_is_read(client: TestClient) -> None:
    body = json.dumps(payload(business_name="x" * (limits.REQUEST_BODY_BYTES_MAX + 1)))
    response = client.post(
        "/api/v1/applications",
        content=body,
        headers={**EN, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": "too_large",
        "message": "The request is too large: at most 64 KB.",
    }
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_chunked_body_is_counted_as_it_streams(client: TestClient) -> None:
    """No Content-Length to check: the bytes are counted and the reading stops at 64 KB."""
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(200):  # 200 x 4 KB = 800 KB, far over the limit
            sent.append(4096)
            yield b"[" + b" " * 4094 + b"]"

    response = client.post(
        "/api/v1/applications",
        content=chunks(),
        headers={**EN, "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_a_body_just_under_the_limit_is_read(client: TestClient) -> None:
    """The limit refuses what is over it, nothing else: a 60 KB body gets its 422."""
    body = json.dumps(payload(business_name="x" * (60 * 1024)))
    response = client.post(
        "/api/v1/applications", content=body, headers={"Content-Type": "application/json"}
    )
    assert fields(response)["business_name"] == "string_too_long"


NOBODY = "/api/v1/applications/AP0000000000"
"""No such application: a body that passes validation is answered 404 (or 401), one that
does not is answered 422 first, which is what these tests look at."""
TOKEN = {"Authorization": "Bearer not-a-real-token"}


def test_a_form_over_the_limit_is_413_and_an_upload_keeps_its_larger_limit(
    client: TestClient,
) -> None:
    form = client.post(
        "/admin/login?lang=en",
        data={"username": "x" * limits.REQUEST_BODY_BYTES_MAX, "password": "p"},
    )
    assert form.status_code == 413
    assert "The request is too large" in form.text  # the error page, not a bare text

    upload = client.post(
        f"{NOBODY}/documents",
        headers=TOKEN,
        data={"kind": "business_licence"},
        # 200 KB: past the JSON limit, well within a document's
        files={"file": ("scan.png", b"\x89PNG" + b"\x00" * 200_000, "image/png")},
    )
    assert upload.status_code in (401, 404), upload.text


# --- Control, format and bidi characters ------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "明辉\x07便利",  # BEL
        "明辉\x85便利",  # C1 NEL
        "明辉\u202e便利",  # RIGHT-TO-LEFT OVERRIDE
        "明辉\u2066便利",  # LEFT-TO-RIGHT ISOLATE
        "明辉\u200b便利",  # ZERO WIDTH SPACE
        "明辉\ufeff便利",  # BOM
        "明辉\n便利",  # a line feed in a one-line field
    ],
)
def test_text_fields_refuse_control_and_bidi_characters(client: TestClient, bad: str) -> None:
    body = payload(business_name=bad)
    body["address"] = {**body["address"], "detail": "长江西路\u202d100号"}
    response = client.post("/api/v1/applications", json=body, headers=EN)
    errors = fields(response)
    # Every offending field at once, each named.
    assert errors["business_name"] == "text_control_character"
    assert errors["address.detail"] == "text_control_character"
    messages = {d["field"]: d["msg"] for d in response.json()["detail"]}
    assert messages["business_name"] == (
        "Must not contain control characters or invisible formatting marks."
    )
    zh = client.post("/api/v1/applications", json=body, headers={"Accept-Language": "zh-CN"})
    assert "控制字符" in {d["field"]: d["msg"] for d in zh.json()["detail"]}["business_name"]


def test_messages_may_have_several_lines_but_no_control_characters(client: TestClient) -> None:
    csrf = login(client, "reviewer")
    base = "/api/v1/review/applications/AP0000000000"
    ok = client.post(
        f"{base}/notes", headers=csrf, json={"kind": "note", "body": "第一行\n第二行\r\n\t缩进"}
    )
    assert ok.status_code == 404, ok.text
    bad = client.post(f"{base}/notes", headers=csrf, json={"kind": "note", "body": "隐藏\u202e"})
    assert fields(bad) == {"body": "text_control_character"}


def test_personal_names_take_name_characters_only(client: TestClient) -> None:
    for name in ("阿依古丽·买买提", "阿依古丽・买买提", "Anne-Marie O'Neil", "陈明"):
        response = client.patch(NOBODY, headers=TOKEN, json={"legal_name": name})
        assert response.status_code in (401, 404), (name, response.text)
    for name in ("陈明2", "<script>", "陈明@", "·", "陈\u202e明", "--"):
        response = client.patch(NOBODY, headers={**TOKEN, **EN}, json={"legal_name": name})
        assert fields(response)["legal_name"] in ("person_name", "text_control_character"), name
    message = client.patch(NOBODY, headers={**TOKEN, **EN}, json={"legal_name": "陈明2"})
    assert "middle dot" in message.json()["detail"][0]["msg"]


def test_a_minority_name_is_stored_with_the_id_card_middle_dot(client: TestClient) -> None:
    body = payload(legal_name="热依拉・艾力")  # typed with the Japanese-style dot
    body["settlement_account"]["account_name"] = "热依拉·艾力"
    created = client.post("/api/v1/applications", json=body)
    assert created.status_code == 201, created.text
    view = client.get(
        f"/api/v1/applications/{created.json()['id']}",
        headers={"Authorization": f"Bearer {created.json()['access_token']}"},
    ).json()
    assert view["legal_name"] == "热依拉·艾力"


def test_the_contract_signer_name_is_a_personal_name(client: TestClient) -> None:
    response = client.post(
        f"{NOBODY}/contract/sign",
        headers=TOKEN,
        json={"signer_name": "陈明 1=1", "agree": True, "pdf_sha256": "0" * 64},
    )
    assert fields(response) == {"signer_name": "person_name"}


# --- NUL never reaches the database -----------------------------------------------------


def test_nul_in_a_query_parameter_is_422_naming_it(client: TestClient) -> None:
    login(client, "ops")
    response = client.get("/api/v1/work-orders", params={"technician": "te\x00ch"}, headers=EN)
    assert fields(response) == {"technician": "text_control_character"}
    assert response.json()["detail"][0]["loc"] == ["query", "technician"]


def test_nul_in_a_path_is_404(client: TestClient) -> None:
    login(client, "ops")
    response = client.get("/api/v1/merchants/898%00", headers=EN)
    assert response.status_code == 404
    page = client.get("/admin/merchants/898%00")
    assert page.status_code == 404


def test_nul_in_a_form_field_is_422(client: TestClient) -> None:
    page = client.get("/admin/login")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/admin/login?lang=en",
        data={"username": "rev\x00iewer", "password": "x", "csrf_token": csrf},
    )
    assert response.status_code == 422
    assert "invisible formatting marks" in response.text


def test_nul_in_any_json_string_is_422_even_outside_the_models(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/login", json={"username": "rev\x00iewer", "password": "x"}, headers=EN
    )
    assert fields(response) == {"username": "text_control_character"}
    nested = client.post(
        "/api/v1/applications",
        json=payload(terminals=[{"model_code": "SMART\x00A8", "count": 1}]),
        headers=EN,
    )
    assert fields(nested)["terminals[0].model_code"] == "text_control_character"
