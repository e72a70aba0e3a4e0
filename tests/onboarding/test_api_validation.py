"""Bad input through the API: each problem gets its own 422 naming the field, in the
request's language, and nothing of a refused request is stored. Also the review rules
that refuse an action: maker-checker, open checks, out-of-order steps, duplicates and
the blacklist."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from stdnum.cn import ric

from poshub.bootstrap import AppState
from poshub.core import limits
from poshub.core.clock import business_date
from poshub.core.db import utcnow
from poshub.demo import tiny_png
from poshub.models import metadata
from poshub.onboarding.decisions import CHECK_DETAILS
from poshub.onboarding.rules import MESSAGES
from poshub.web.errors import PYDANTIC_MESSAGES
from tests.factories import (
    DROP,
    EXECUTABLE_AS_PDF,
    bearer,
    card_number,
    create,
    create_and_submit,
    credit_code,
    login,
    payload,
    pdf_file,
    plain_pdf,
    resident_id,
    run_worker,
    upload_required,
    wrong_check_digit,
)

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}
CJK = re.compile(r"[\u4e00-\u9fff]")

COUNTED_TABLES = (
    "applications",
    "application_terminals",
    "application_documents",
    "audit_log",
    "notifications",
    "merchants",
    "blacklist_entries",
)


def row_counts(state: AppState) -> dict[str, int]:
    with state.db.unit_of_work(read_only=True) as uow:
        return {
            name: uow.session.execute(
                select(func.count()).select_from(metadata.tables[name])
            ).scalar_one()
            for name in COUNTED_TABLES
        }


def stored_files(state: AppState) -> set[Path]:
    root = state.settings.documents_dir
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture
def unchanged(state: AppState) -> Iterator[None]:
    """Wrap a test whose requests must all be refused: no row and no file may appear."""
    rows, files = row_counts(state), stored_files(state)
    yield
    assert row_counts(state) == rows
    assert stored_files(state) == files


def today() -> dt.date:
    return business_date(utcnow())


def id_with_birth_digits(birth: str) -> str:
    """A resident ID with the right check digit around any eight birth-date digits."""
    body = f"340104{birth}123"
    return body + ric.calc_check_digit(body + "0")


def completed_years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) <= (born.month, born.day))


def only_error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_failed"
    assert len(body["detail"]) == 1, body["detail"]
    error: dict[str, Any] = body["detail"][0]
    assert error["loc"][0] == "body"
    return error


# --- Field rules -----------------------------------------------------------------------

MINOR_BORN = dt.date(today().year - 17, 6, 15)
RULE_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "id_number",
        "id_number.checksum",
        {"id_number": wrong_check_digit(resident_id())},
        MESSAGES["id_number.checksum"],
    ),
    (
        "id_number",
        "id_number.birth_date",
        {"id_number": id_with_birth_digits("19900230")},
        MESSAGES["id_number.birth_date"],
    ),
    (
        "id_number",
        "id_number.birth_date",
        {"id_number": resident_id(born=today() + dt.timedelta(days=400))},
        MESSAGES["id_number.birth_date"],
    ),
    (
        "id_number",
        "id_number.minor",
        {"id_number": resident_id(born=MINOR_BORN)},
        MESSAGES["id_number.minor"].format(
            age=completed_years(MINOR_BORN, today()), adult_age=limits.ADULT_AGE_YEARS
        ),
    ),
    (
        "id_number",
        "id_number.format",
        {"id_number": "34010419900307123Y"},
        MESSAGES["id_number.format"],
    ),
    (
        "uscc",
        "uscc.checksum",
        {"uscc": wrong_check_digit(credit_code())},
        MESSAGES["uscc.checksum"],
    ),
    ("uscc", "uscc.format", {"uscc": "12345"}, MESSAGES["uscc.format"]),
    (
        "uscc",
        "uscc.required",
        {"uscc": None},
        "A business applicant must give the unified social credit code from its licence.",
    ),
    (
        "licence_expiry",
        "licence_expiry.expired",
        {"licence_expiry": "2020-01-31"},
        MESSAGES["licence_expiry.expired"].format(expiry="2020-01-31"),
    ),
    ("mcc", "mcc.unknown", {"mcc": "3001"}, MESSAGES["mcc.unknown"].format(mcc="3001")),
    ("mcc", "mcc.format", {"mcc": "54A1"}, MESSAGES["mcc.format"]),
    ("mobile", "mobile.invalid", {"mobile": "12345678901"}, MESSAGES["mobile.invalid"]),
    (
        "settlement_account.account_number",
        "settlement_account.account_number.luhn",
        {
            "settlement_account": {
                "bank_name": "徽商银行合肥蜀山支行",
                "account_name": "陈明",
                "account_number": wrong_check_digit(card_number()),
            }
        },
        MESSAGES["settlement_account.account_number.luhn"],
    ),
    (
        "terminals[0].model_code",
        "terminals.model_unknown",
        {"terminals": [{"model_code": "NOPE-9", "count": 1}]},
        "NOPE-9 is not a terminal model in our catalogue.",
    ),
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("field", "code", "overrides", "message"), RULE_CASES, ids=[c[1] for c in RULE_CASES]
)
def test_create_refuses_a_bad_field(
    client: TestClient, field: str, code: str, overrides: dict[str, Any], message: str
) -> None:
    response = client.post("/api/v1/applications", json=payload(**overrides), headers=EN)
    error = only_error(response)
    assert (error["field"], error["code"]) == (field, code)
    assert error["msg"] == message
    assert response.json()["message"] == "Some fields are not valid."


@pytest.mark.usefixtures("unchanged")
def test_every_bad_field_is_named_at_once(client: TestClient) -> None:
    bad = payload(
        id_number=wrong_check_digit(resident_id()),
        uscc=wrong_check_digit(credit_code()),
        mcc="3001",
        terminals=[{"model_code": "NOPE-9", "count": 1}],
    )
    response = client.post("/api/v1/applications", json=bad, headers=EN)
    assert response.status_code == 422
    assert {(d["field"], d["code"]) for d in response.json()["detail"]} == {
        ("id_number", "id_number.checksum"),
        ("uscc", "uscc.checksum"),
        ("mcc", "mcc.unknown"),
        ("terminals[0].model_code", "terminals.model_unknown"),
    }


@pytest.mark.usefixtures("unchanged")
def test_loc_has_one_shape_for_rule_and_shape_errors(client: TestClient) -> None:
    """A client maps errors back to inputs by ``loc``; a list index is a number either way."""
    rule = only_error(
        client.post(
            "/api/v1/applications",
            json=payload(terminals=[{"model_code": "NOPE-9", "count": 1}]),
        )
    )
    shape = only_error(
        client.post(
            "/api/v1/applications",
            json=payload(terminals=[{"model_code": "SMART-A8", "count": 0}]),
        )
    )
    assert shape["loc"] == ["body", "terminals", 0, "count"]
    assert rule["loc"] == ["body", "terminals", 0, "model_code"]
    nested = only_error(
        client.post(
            "/api/v1/applications",
            json=payload(
                settlement_account={
                    "bank_name": "徽商银行合肥蜀山支行",
                    "account_name": "陈明",
                    "account_number": wrong_check_digit(card_number()),
                }
            ),
        )
    )
    assert nested["loc"] == ["body", "settlement_account", "account_number"]


# --- Shape of the request (pydantic) --------------------------------------------------------

ADDRESS_WITHOUT_PROVINCE = {"city": "合肥市", "district": "蜀山区", "detail": "长江西路 100 号"}
SHAPE_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "address.province",
        "missing",
        {"address": ADDRESS_WITHOUT_PROVINCE},
        PYDANTIC_MESSAGES["missing"],
    ),
    ("mcc", "missing", {"mcc": DROP}, PYDANTIC_MESSAGES["missing"]),
    ("referrer", "extra_forbidden", {"referrer": "friend"}, PYDANTIC_MESSAGES["extra_forbidden"]),
    (
        "address.floor",
        "extra_forbidden",
        {"address": {**ADDRESS_WITHOUT_PROVINCE, "province": "安徽省", "floor": "2"}},
        PYDANTIC_MESSAGES["extra_forbidden"],
    ),
    ("terminals", "too_short", {"terminals": []}, "Must have at least 1 entries."),
    (
        "terminals[0].count",
        "greater_than_equal",
        {"terminals": [{"model_code": "SMART-A8", "count": 0}]},
        "Must be at least 1.",
    ),
    (
        "applicant_kind",
        "enum",
        {"applicant_kind": "charity"},
        "Must be one of: 'individual', 'individual_business' or 'enterprise'.",
    ),
    (
        "expected_monthly_volume_fen",
        "int_parsing",
        {"expected_monthly_volume_fen": "a lot"},
        PYDANTIC_MESSAGES["int_parsing"],
    ),
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("field", "code", "overrides", "message"), SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES]
)
def test_create_refuses_a_malformed_request(
    client: TestClient, field: str, code: str, overrides: dict[str, Any], message: str
) -> None:
    error = only_error(client.post("/api/v1/applications", json=payload(**overrides), headers=EN))
    assert (error["field"], error["code"]) == (field, code)
    assert error["msg"] == message


@pytest.mark.usefixtures("unchanged")
def test_create_refuses_a_body_that_is_not_json(client: TestClient) -> None:
    response = client.post(
        "/api/v1/applications",
        content=b"{not json",
        headers={**EN, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["code"] == "json_invalid"
    assert response.json()["detail"][0]["msg"] == "The request body is not valid JSON."


# --- The request's language -------------------------------------------------------------------


def _id_checksum_error(client: TestClient, headers: dict[str, str], **params: str) -> str:
    response = client.post(
        "/api/v1/applications",
        json=payload(id_number=wrong_check_digit(resident_id())),
        headers=headers,
        params=params,
    )
    msg: str = only_error(response)["msg"]
    return msg


def test_english_is_chosen_by_accept_language_or_lang(client: TestClient) -> None:
    assert _id_checksum_error(client, EN) == MESSAGES["id_number.checksum"]
    assert (
        _id_checksum_error(client, {"Accept-Language": "en-GB,zh;q=0.5"})
        == MESSAGES["id_number.checksum"]
    )
    # The UI language (?lang= or the switch's cookie) wins over the header.
    assert _id_checksum_error(client, ZH, lang="en") == MESSAGES["id_number.checksum"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"id_number": wrong_check_digit(resident_id())},
        {"mcc": "3001"},
        {"address": ADDRESS_WITHOUT_PROVINCE},
    ],
    ids=["rule", "rule-with-params", "pydantic"],
)
def test_chinese_messages_for_a_chinese_request(
    client: TestClient, overrides: dict[str, Any]
) -> None:
    english = only_error(client.post("/api/v1/applications", json=payload(**overrides), headers=EN))
    chinese_response = client.post("/api/v1/applications", json=payload(**overrides), headers=ZH)
    chinese = only_error(chinese_response)
    assert (chinese["field"], chinese["code"]) == (english["field"], english["code"])
    assert chinese["msg"] != english["msg"]
    assert CJK.search(chinese["msg"]), chinese["msg"]
    assert CJK.search(chinese_response.json()["message"])
    if "mcc" in overrides:
        assert "3001" in chinese["msg"]


# --- Corrections by the applicant -----------------------------------------------------------


def test_a_refused_correction_changes_nothing(client: TestClient, state: AppState) -> None:
    created = create(client)
    url = f"/api/v1/applications/{created['id']}"
    before = client.get(url, headers=bearer(created["access_token"])).json()
    rows = row_counts(state)
    response = client.patch(
        url,
        headers={**bearer(created["access_token"]), **EN},
        json={"business_name": "新名字便利店", "id_number": wrong_check_digit(resident_id())},
    )
    error = only_error(response)
    assert (error["field"], error["code"]) == ("id_number", "id_number.checksum")
    response = client.patch(
        url,
        headers={**bearer(created["access_token"]), **EN},
        json={"business_name": "新名字便利店", "terminals": [{"model_code": "X", "count": 1}]},
    )
    error = only_error(response)
    assert (error["field"], error["code"]) == ("terminals[0].model_code", "terminals.model_unknown")
    assert row_counts(state) == rows
    assert client.get(url, headers=bearer(created["access_token"])).json() == before


# --- Documents --------------------------------------------------------------------------------


def _upload(
    client: TestClient, created: dict[str, Any], kind: str, name: str, content: bytes, mime: str
) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/api/v1/applications/{created['id']}/documents",
        headers={**bearer(created["access_token"]), **EN},
        data={"kind": kind},
        files={"file": (name, content, mime)},
    )
    return response


UPLOAD_CASES: list[tuple[str, bytes, str, str]] = [
    ("licence.pdf", EXECUTABLE_AS_PDF, "file.executable", "The file is an executable program"),
    ("licence.pdf", b"\x7fELF" + b"\x00" * 64, "file.executable", "The file is an executable"),
    ("licence.pdf", b"", "file.empty", "The file is empty."),
    ("licence.png", b"GIF89a" + b"\x00" * 32, "file.type", "Only JPG, PNG and PDF files"),
    (
        "licence.pdf",
        pdf_file(
            {1: b"<</Type/Catalog/Pages 2 0 R/OpenAction<</S/JavaScript/JS(app.alert(1))>>>>"}
            | {k: v for k, v in plain_pdf().items() if k != 1}
        ),
        "file.pdf_active_content",
        "The PDF carries scripts",
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "code", "message"), UPLOAD_CASES, ids=[c[2] for c in UPLOAD_CASES]
)
def test_upload_refuses_what_is_not_a_document(
    client: TestClient, state: AppState, name: str, content: bytes, code: str, message: str
) -> None:
    created = create(client)
    rows, files = row_counts(state), stored_files(state)
    error = only_error(
        _upload(client, created, "business_licence", name, content, "application/pdf")
    )
    assert (error["field"], error["code"]) == ("file", code)
    assert error["msg"].startswith(message)
    assert row_counts(state) == rows
    assert stored_files(state) == files


def test_upload_over_the_size_limit(client: TestClient, state: AppState) -> None:
    created = create(client)
    rows, files = row_counts(state), stored_files(state)
    too_big = pdf_file(plain_pdf(), padding=limits.DOCUMENT_SIZE_BYTES_MAX)
    response = _upload(client, created, "business_licence", "big.pdf", too_big, "application/pdf")
    # The size is refused while reading the upload, before any field is looked at: 413.
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"] == "file.too_large"
    assert response.json()["message"] == "The file is larger than 10 MB."
    assert row_counts(state) == rows
    assert stored_files(state) == files
    # Exactly at the limit is accepted.
    # A real PDF padded to the limit (the offsets written grow with the padding).
    padding = limits.DOCUMENT_SIZE_BYTES_MAX - len(pdf_file(plain_pdf()))
    padding -= len(pdf_file(plain_pdf(), padding=padding)) - limits.DOCUMENT_SIZE_BYTES_MAX
    at_limit = pdf_file(plain_pdf(), padding=padding)
    assert len(at_limit) == limits.DOCUMENT_SIZE_BYTES_MAX
    response = _upload(client, created, "business_licence", "max.pdf", at_limit, "application/pdf")
    assert response.status_code == 201, response.text[:300]


def test_upload_names_every_bad_field(client: TestClient, state: AppState) -> None:
    created = create(client)
    rows, files = row_counts(state), stored_files(state)
    response = _upload(client, created, "selfie", "me.exe", EXECUTABLE_AS_PDF, "image/png")
    assert response.status_code == 422
    assert {(d["field"], d["code"]) for d in response.json()["detail"]} == {
        ("kind", "document.kind_unknown"),
        ("file", "file.executable"),
    }
    assert row_counts(state) == rows
    assert stored_files(state) == files


def test_upload_after_submission_stores_no_file(client: TestClient, state: AppState) -> None:
    created = create_and_submit(client)
    rows, files = row_counts(state), stored_files(state)
    response = _upload(client, created, "premises_proof", "new.png", tiny_png("new"), "image/png")
    assert response.status_code == 409
    assert response.json()["error"] == "not_editable"
    assert row_counts(state) == rows
    assert stored_files(state) == files


# --- Review: maker-checker and open checks ----------------------------------------------------


def _review(client: TestClient, application_id: str, action: str = "", **kwargs: Any) -> Any:
    url = f"/api/v1/review/applications/{application_id}" + (f"/{action}" if action else "")
    return client.post(url, **kwargs) if action else client.get(url, **kwargs)


def test_whoever_edits_cannot_approve(client: TestClient, state: AppState) -> None:
    created = create_and_submit(client)
    app_id = created["id"]
    csrf = login(client, "reviewer")
    assert _review(client, app_id, "claim", headers=csrf).status_code == 200
    response = client.patch(
        f"/api/v1/review/applications/{app_id}",
        headers=csrf,
        json={"business_name": "合肥蜀山明辉超市", "reason": "Owner confirmed the name by phone."},
    )
    assert response.status_code == 200, response.text
    assert response.json()["editors"] == ["reviewer"]

    rows = row_counts(state)
    response = _review(client, app_id, "approve", headers={**csrf, **EN}, json={"note": "Fine."})
    assert response.status_code == 403
    assert response.json()["error"] == "maker_checker"
    assert response.json()["message"] == (
        "You edited this application, so another reviewer must approve it (maker-checker)."
    )
    assert row_counts(state) == rows

    # The page says the same.
    page = client.post(
        f"/admin/applications/{app_id}/approve?lang=en",
        data={"note": "Fine.", "csrf_token": csrf["X-CSRF-Token"]},
        follow_redirects=False,
    )
    assert page.status_code == 403
    assert "another reviewer must approve it (maker-checker)" in page.text
    assert row_counts(state) == rows

    # Claiming it again changes nothing: the editor stays an editor.
    with TestClient(client.app, base_url="http://testserver") as checker:
        checker_csrf = login(checker, "reviewer2")
        assert _review(checker, app_id, "claim", headers=checker_csrf).status_code == 200
        assert _review(client, app_id, "claim", headers=csrf).status_code == 200
        response = _review(client, app_id, "approve", headers=csrf, json={"note": "Fine."})
        assert response.status_code == 403
        assert response.json()["error"] == "maker_checker"

        # Another reviewer takes it over and approves.
        response = _review(checker, app_id, "claim", headers=checker_csrf)
        assert response.status_code == 200
        assert response.json()["assigned_reviewer"] == "reviewer2"
        assert response.json()["editors"] == ["reviewer"]
        run_worker(client)  # the correction queued a new check run
        response = _review(checker, app_id, "approve", headers=checker_csrf, json={})
        assert response.status_code == 200, response.text
        assert response.json()["business_name"] == "合肥蜀山明辉超市"
        assert _review(checker, app_id, headers=checker_csrf).json()["status"] == "approved"


@pytest.mark.parametrize(
    ("overrides", "open_check"),
    [
        ({"mobile": "13905510000"}, "bank_card_four"),
        (
            {
                "legal_name": "冒名陈明",
                "settlement_account": {
                    "bank_name": "徽商银行合肥蜀山支行",
                    "account_name": "冒名陈明",
                    "account_number": card_number(),
                },
            },
            "real_name",
        ),
    ],
    ids=["pending", "failed"],
)
def test_approving_over_open_checks_needs_a_note(
    client: TestClient, state: AppState, overrides: dict[str, Any], open_check: str
) -> None:
    created = create_and_submit(client, **overrides)
    app_id = created["id"]
    csrf = login(client, "reviewer")
    detail = _review(client, app_id, "claim", headers=csrf).json()
    statuses = {c["code"]: c["status"] for c in detail["checks"]}
    assert statuses[open_check] == ("pending" if open_check == "bank_card_four" else "fail")
    assert [c for c, s in statuses.items() if s in ("fail", "pending")] == [open_check]

    rows = row_counts(state)
    for body in ({}, {"note": None}, {"note": "   "}):
        response = _review(client, app_id, "approve", headers={**csrf, **EN}, json=body)
        error = only_error(response)
        assert (error["field"], error["code"]) == ("note", "note.required_with_open_checks")
        assert open_check in error["msg"]
    assert row_counts(state) == rows

    response = _review(
        client,
        app_id,
        "approve",
        headers=csrf,
        json={"note": "Called the bank: the card and mobile belong to the owner."},
    )
    # These checks need a risk officer's second approval (tests/onboarding/test_review_overrides.py).
    assert response.status_code == 202, response.text
    assert response.json()["reason"].startswith("Called the bank")
    detail = _review(client, app_id, headers=csrf).json()
    assert detail["status"] == "pending_override"
    assert detail["override"]["checks"] == [open_check]


# --- Out-of-order steps ---------------------------------------------------------------------


def _assert_conflict(response: httpx.Response, code: str, *allowed: str) -> None:
    assert response.status_code == 409, response.text
    assert response.json()["error"] == code
    for step in allowed:
        assert step in response.json()["message"]


def test_steps_out_of_order_are_refused_naming_the_next_steps(
    client: TestClient, state: AppState
) -> None:
    draft = create(client)
    token = bearer(draft["access_token"])
    csrf = login(client, "reviewer")
    headers = {**csrf, **EN}
    rows = row_counts(state)

    response = _review(client, draft["id"], "approve", headers=headers, json={"note": "x"})
    _assert_conflict(response, "invalid_transition", "allowed next: submitted, withdrawn")
    response = _review(client, draft["id"], "claim", headers=headers)
    _assert_conflict(response, "not_claimable", "draft")
    response = client.post(
        f"/api/v1/applications/{draft['id']}/answer",
        headers={**token, **EN},
        json={"message": "Here you are."},
    )
    _assert_conflict(response, "invalid_transition", "allowed next: submitted, withdrawn")
    assert row_counts(state) == rows

    upload_required(client, draft)
    submit = f"/api/v1/applications/{draft['id']}/submit"
    assert client.post(submit, headers=token).status_code == 200
    run_worker(client)
    rows = row_counts(state)
    response = client.post(submit, headers={**token, **EN})
    _assert_conflict(response, "invalid_transition", "allowed next: under_review, withdrawn")
    response = client.post(
        f"/api/v1/applications/{draft['id']}/answer",
        headers={**token, **EN},
        json={"message": "Here you are."},
    )
    _assert_conflict(response, "no_request")
    assert response.json()["message"] == "No information was requested from you."
    response = _review(
        client, draft["id"], "request-info", headers=headers, json={"message": "More please."}
    )
    _assert_conflict(response, "invalid_transition", "allowed next: under_review, withdrawn")
    response = client.patch(
        f"/api/v1/applications/{draft['id']}",
        headers={**token, **EN},
        json={"business_name": "新名字便利店"},
    )
    _assert_conflict(response, "not_editable")
    assert row_counts(state) == rows

    assert _review(client, draft["id"], "claim", headers=csrf).status_code == 200
    assert _review(client, draft["id"], "approve", headers=csrf, json={}).status_code == 200
    rows = row_counts(state)
    response = _review(client, draft["id"], "approve", headers=headers, json={"note": "x"})
    _assert_conflict(response, "invalid_transition", "allowed next: none")
    response = _review(
        client, draft["id"], "reject", headers=headers, json={"reasons": ["other"], "note": "x"}
    )
    _assert_conflict(response, "invalid_transition", "allowed next: none")
    assert row_counts(state) == rows


# --- Duplicates and the blacklist -------------------------------------------------------------


def _checks(client: TestClient, application_id: str) -> dict[str, dict[str, Any]]:
    detail = _review(client, application_id, headers=EN).json()
    return {c["code"]: c for c in detail["checks"]}


def test_second_application_with_the_same_id_fails_the_duplicates_check(
    client: TestClient,
) -> None:
    id_number = resident_id()
    first = create_and_submit(client, id_number=id_number)
    second = create_and_submit(client, id_number=id_number)
    login(client, "reviewer")
    check = _checks(client, second["id"])["duplicates"]
    assert check["status"] == "fail"
    assert check["params"] == {"tracking_number": first["tracking_number"]}
    assert check["message"] == CHECK_DETAILS["duplicates.application"].format(
        tracking_number=first["tracking_number"]
    )
    # The first was alone when it was checked.
    assert _checks(client, first["id"])["duplicates"]["status"] == "pass"


def test_applications_checked_in_one_batch_are_duplicates_of_each_other(
    client: TestClient,
) -> None:
    """The worker looks duplicates up for its whole batch at once; each application of the
    batch still finds the others, as when they were checked one after the other."""
    id_number = resident_id()
    first = create_and_submit(client, id_number=id_number, run_checks=False)
    second = create_and_submit(client, id_number=id_number, run_checks=False)
    alone = create_and_submit(client, run_checks=False)
    assert run_worker(client)["applications_checked"] == 3
    login(client, "reviewer")
    assert _checks(client, first["id"])["duplicates"]["params"] == {
        "tracking_number": second["tracking_number"]
    }
    assert _checks(client, second["id"])["duplicates"]["params"] == {
        "tracking_number": first["tracking_number"]
    }
    assert _checks(client, alone["id"])["duplicates"]["status"] == "pass"


ID_ENDING_IN_X = resident_id(born=dt.date(1985, 1, 2), sequence=9)


@pytest.mark.parametrize(
    ("kind", "listed", "applied", "clear"),
    [
        # Listed as written by hand; the application gives it in its plain form.
        ("mobile", "+86 139-0551-9999", {"mobile": "13905519999"}, "13905519999"),
        ("id_number", ID_ENDING_IN_X.lower(), {"id_number": ID_ENDING_IN_X}, ID_ENDING_IN_X),
    ],
    ids=["mobile", "id_number"],
)
def test_blacklisted_value_fails_the_check_and_is_not_stored_in_clear(
    client: TestClient,
    state: AppState,
    kind: str,
    listed: str,
    applied: dict[str, str],
    clear: str,
) -> None:
    assert ID_ENDING_IN_X.endswith("X")
    csrf = login(client, "risk")
    response = client.post(
        "/api/v1/blacklist",
        headers=csrf,
        json={"kind": kind, "value": listed, "reason": "Card cash-out ring."},
    )
    assert response.status_code == 201, response.text
    assert clear not in response.text

    overrides: dict[str, Any] = dict(applied)
    created = create_and_submit(client, **overrides)
    login(client, "reviewer")
    check = _checks(client, created["id"])["blacklist"]
    assert check["status"] == "fail"
    assert check["params"]["kinds"] == kind
    assert "Card cash-out ring." in check["message"]

    csrf = login(client, "risk")
    listing = client.get("/api/v1/blacklist")
    assert listing.status_code == 200
    assert len(listing.json()) == 1
    assert clear not in listing.text
    assert clear[-8:] not in listing.text
    with state.db.unit_of_work(read_only=True) as uow:
        rows = uow.session.execute(select(metadata.tables["blacklist_entries"])).all()
        audit = uow.session.execute(select(metadata.tables["audit_log"])).all()
    assert len(rows) == 1
    assert clear not in repr(rows)
    assert clear[-8:] not in repr(rows)
    assert clear not in repr([r for r in audit if "blacklist" in repr(r)])


def test_blacklist_refuses_an_invalid_value(client: TestClient, state: AppState) -> None:
    csrf = login(client, "risk")
    rows = row_counts(state)
    response = client.post(
        "/api/v1/blacklist",
        headers={**csrf, **EN},
        json={"kind": "id_number", "value": wrong_check_digit(resident_id()), "reason": "Fraud."},
    )
    error = only_error(response)
    assert (error["field"], error["code"]) == ("value", "id_number.checksum")
    assert row_counts(state) == rows


def test_approval_waits_for_the_queued_checks(client: TestClient, state: AppState) -> None:
    created = create_and_submit(client, run_checks=False)
    csrf = login(client, "reviewer")
    assert _review(client, created["id"], "claim", headers=csrf).status_code == 200
    detail = _review(client, created["id"], headers=csrf).json()
    assert detail["checks"] == []
    rows = row_counts(state)
    response = _review(client, created["id"], "approve", headers={**csrf, **EN}, json={"note": "x"})
    assert response.status_code == 409
    assert response.json()["error"] == "checks_running"
    assert row_counts(state) == rows
    assert run_worker(client)["applications_checked"] == 1
    assert run_worker(client)["applications_checked"] == 0
    assert _review(client, created["id"], "approve", headers=csrf, json={}).status_code == 200
