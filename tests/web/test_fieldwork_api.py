"""The work-order API and the technician pages over HTTP, with their role checks."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from tests.factories import PDF, PNG, STAFF, login
from tests.fieldwork.support import (
    SECOND_TECHNICIAN,
    SECOND_TECHNICIAN_PASSWORD,
    Site,
    add_second_technician,
    contracted_site,
    mark_parameters_fetched,
    stock,
)

BASE = "/api/v1/work-orders"
EN = {"Accept-Language": "en"}


@pytest.fixture
def site(client: TestClient, state: AppState) -> Site:
    return contracted_site(client, state)


def as_user(client: TestClient, username: str) -> dict[str, str]:
    client.cookies.clear()
    return login(client, username) | EN


def created(client: TestClient, site: Site, kind: str = "installation", **extra: Any) -> str:
    csrf = as_user(client, "ops")
    body = {"kind": kind, "mid": site.mid, "tid": site.tid, **extra}
    response = client.post(BASE, json=body, headers=csrf)
    assert response.status_code == 201, response.text
    number: str = response.json()["number"]
    return number


def post_step(
    client: TestClient, csrf: dict[str, str], number: str, target: str, body: dict[str, Any]
) -> Any:
    return client.post(f"{BASE}/{number}/steps/{target}", json=body, headers=csrf)


def test_operations_create_and_assign_technicians_work_their_orders(
    client: TestClient, site: Site, state: AppState
) -> None:
    number = created(client, site, technician="tech")
    assert re.fullmatch(r"WO\d{4}-\d{7}", number)
    ops = as_user(client, "ops")
    detail = client.get(f"{BASE}/{number}", headers=ops).json()
    assert detail["status"] == "assigned"
    assert detail["technician"] == "tech"
    assert detail["tid"] == site.tid
    assert detail["device_serial"] == site.serial
    assert detail["sla_state"] in ("on_track", "due_today")
    assert [s["to_status"] for s in detail["steps"]] == ["open", "assigned"]
    # Operations may re-book or cancel; the technician's steps are not theirs.
    assert {s["target"] for s in detail["next_steps"]} == {"scheduled", "cancelled"}

    tech = as_user(client, "tech")
    mine = client.get(BASE, headers=tech).json()
    assert [o["number"] for o in mine] == [number]
    detail = client.get(f"{BASE}/{number}", headers=tech).json()
    assert [s["target"] for s in detail["next_steps"]] == ["scheduled"]
    assert detail["next_steps"][0]["performer"] == "operations_or_technician"

    response = post_step(client, tech, number, "checked_in", {"serial_number": site.serial})
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "invalid_work_order_transition"
    assert "allowed next: cancelled, scheduled" in body["message"]


def test_out_of_order_and_invalid_fields(client: TestClient, site: Site) -> None:
    number = created(client, site, technician="tech")
    tech = as_user(client, "tech")
    response = post_step(client, tech, number, "acceptance_passed", {"reference": "1"})
    assert response.status_code == 409, response.text
    assert response.json()["message"] == (
        "A installation work order in state assigned cannot move to acceptance_passed; "
        "allowed next: cancelled, scheduled."
    )
    response = post_step(client, tech, number, "scheduled", {"appointment_at": "not a time"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [d["field"] for d in detail] == ["appointment_at"]
    assert detail[0]["loc"] == ["body", "appointment_at"]
    response = post_step(client, tech, number, "scheduled", {"appointment_at": "2020-01-01T10:00"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "appointment_at"
    assert response.json()["detail"][0]["code"] == "appointment_at.past"

    ops = as_user(client, "ops")
    response = client.post(BASE, json={"kind": "repair", "mid": site.mid}, headers=ops)
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == ["tid"]
    response = client.post(
        BASE, json={"kind": "nope", "mid": "1", "contact_mobile": "999"}, headers=ops
    )
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["detail"]} == {"kind", "mid", "contact_mobile"}
    response = client.post(f"{BASE}/{number}/assign", json={"technician": "reviewer"}, headers=ops)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "technician"


def test_roles(client: TestClient, site: Site, state: AppState) -> None:
    number = created(client, site)
    # Reads: operations, technicians (their own), support, auditors, administrators.
    for username in ("support", "auditor", "admin"):
        headers = as_user(client, username)
        assert client.get(f"{BASE}/{number}", headers=headers).status_code == 200
        assert client.get(BASE, headers=headers).json()[0]["number"] == number
        response = post_step(client, headers, number, "cancelled", {"reason": "Testing roles."})
        assert response.status_code == 403
        assert response.json()["error"] == "role_forbidden"
    for username in ("reviewer", "risk"):
        headers = as_user(client, username)
        assert client.get(f"{BASE}/{number}", headers=headers).status_code == 403
    # Only operations create and assign.
    tech = as_user(client, "tech")
    response = client.post(BASE, json={"kind": "repair", "mid": site.mid}, headers=tech)
    assert response.status_code == 403
    assert response.json()["error"] == "role_forbidden"
    response = client.post(f"{BASE}/{number}/assign", json={"technician": "tech"}, headers=tech)
    assert response.status_code == 403
    # A technician neither sees nor touches an order that is not theirs.
    assert client.get(BASE, headers=tech).json() == []
    response = client.get(f"{BASE}/{number}", headers=tech)
    assert response.status_code == 403
    assert response.json()["error"] == "not_assignee"
    response = post_step(client, tech, number, "cancelled", {"reason": "Not mine."})
    assert response.status_code == 403
    # Without a login: 401; without the CSRF header: 403.
    client.cookies.clear()
    assert client.get(BASE).status_code == 401
    headers = as_user(client, "ops")
    response = client.post(f"{BASE}/{number}/steps/cancelled", json={"reason": "No CSRF."})
    assert response.status_code == 403
    assert response.json()["error"] == "csrf"
    assert client.get(f"{BASE}/WO2000-0000001", headers=headers).status_code == 404


def test_technicians_see_only_their_own_orders(
    client: TestClient, site: Site, state: AppState
) -> None:
    add_second_technician(state)
    mine = created(client, site, technician="tech")
    theirs = created(client, site, kind="site_survey", technician=SECOND_TECHNICIAN)
    tech = as_user(client, "tech")
    assert [o["number"] for o in client.get(BASE, headers=tech).json()] == [mine]
    # Even when asking for the other technician's list.
    listed = client.get(BASE, params={"technician": SECOND_TECHNICIAN}, headers=tech).json()
    assert [o["number"] for o in listed] == [mine]
    assert client.get(f"{BASE}/{theirs}", headers=tech).status_code == 403
    ops = as_user(client, "ops")
    listed = client.get(BASE, params={"technician": SECOND_TECHNICIAN}, headers=ops).json()
    assert [o["number"] for o in listed] == [theirs]
    listed = client.get(BASE, params={"kind": "installation", "open": True}, headers=ops).json()
    assert [o["number"] for o in listed] == [mine]


def test_go_live_over_http(client: TestClient, site: Site, state: AppState) -> None:
    number = created(client, site, technician="tech")
    tech = as_user(client, "tech")
    steps: list[tuple[str, dict[str, Any]]] = [
        ("scheduled", {"appointment_at": "2099-01-05T10:00:00+08:00"}),
    ]
    response = post_step(client, tech, number, *steps[0])
    assert response.status_code == 422  # more than 90 days ahead
    assert response.json()["detail"][0]["code"] == "appointment_at.too_far"
    from poshub.core.db import utcnow

    soon = (utcnow().replace(microsecond=0)).isoformat()
    assert post_step(client, tech, number, "scheduled", {"appointment_at": soon}).status_code == 200
    response = post_step(client, tech, number, "checked_in", {"serial_number": site.serial})
    assert response.status_code == 200, response.text
    response = post_step(client, tech, number, "parameters_loaded", {})
    assert response.status_code == 409
    assert "must download its parameters first" in response.json()["message"]
    mark_parameters_fetched(state, site.tid, site.serial)
    assert post_step(client, tech, number, "parameters_loaded", {}).status_code == 200
    response = post_step(
        client,
        tech,
        number,
        "acceptance_passed",
        {
            "reference": "612345678901",
            "response_time_ms": 700,
            "receipt_printed": True,
            "record_matches": True,
        },
    )
    assert response.status_code == 200, response.text
    response = post_step(
        client,
        tech,
        number,
        "trained",
        {"signer_name": "陈明", "topics": ["sale", "void", "refund", "settlement", "security"]},
    )
    assert response.status_code == 200, response.text
    response = post_step(client, tech, number, "completed", {})
    assert response.status_code == 200, response.text
    done = response.json()["work_order"]
    assert done["status"] == "completed"
    assert done["sla_state"] == "met"
    assert done["next_steps"] == []
    assert done["data"]["trained"]["topics"] == ["sale", "void", "refund", "settlement", "security"]
    merchant = client.get(f"/api/v1/work-orders/{number}", headers=tech).json()
    assert merchant["mid"] == site.mid


def test_swap_shows_the_device_secret_once(client: TestClient, site: Site, state: AppState) -> None:
    stock(state, "SN-A8-000009")
    number = created(client, site, kind="swap", technician="tech")
    ops = as_user(client, "ops")
    response = post_step(client, ops, number, "device_prepared", {"new_serial": "SN-A8-000009"})
    assert response.status_code == 200, response.text
    provisioned = response.json()["provisioned"]
    assert provisioned["tid"] == site.tid
    assert provisioned["kcv"] != site.kcv
    secret = provisioned["device_secret"]
    assert len(secret) == 64
    again = client.get(f"{BASE}/{number}", headers=ops)
    assert secret not in again.text
    assert again.json()["device_serial"] == "SN-A8-000009"
    assert again.json()["replaced_device_serial"] == site.serial


def test_photos_upload_and_download(client: TestClient, site: Site, state: AppState) -> None:
    number = created(client, site, kind="site_survey", technician="tech")
    tech = as_user(client, "tech")
    response = client.post(
        f"{BASE}/{number}/photos",
        files={"file": ("shop.png", PNG, "image/png")},
        data={"caption": "门头"},
        headers=tech,
    )
    assert response.status_code == 201, response.text
    photo = response.json()
    assert photo["content_type"] == "image/png"
    assert photo["caption"] == "门头"
    download = client.get(f"{BASE}/{number}/photos/{photo['id']}", headers=tech)
    assert download.status_code == 200
    assert download.content.startswith(b"\x89PNG")  # re-encoded on upload
    assert download.headers["content-type"] == "image/png"
    # A PDF called .jpg is refused by its content.
    response = client.post(
        f"{BASE}/{number}/photos", files={"file": ("shop.jpg", PDF, "image/jpeg")}, headers=tech
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "file"
    # Support reads the photo; cannot add one.
    support = as_user(client, "support")
    assert client.get(f"{BASE}/{number}/photos/{photo['id']}", headers=support).status_code == 200
    response = client.post(
        f"{BASE}/{number}/photos", files={"file": ("shop.png", PNG, "image/png")}, headers=support
    )
    assert response.status_code == 403
    assert client.get(f"{BASE}/{number}/photos/99999", headers=support).status_code == 404


# --- The pages ---------------------------------------------------------------------------------


def page_login(client: TestClient, username: str, password: str | None = None) -> str:
    """Log in through /tech/login as a browser does; return the page's CSRF token."""
    client.cookies.clear()
    form = client.get("/tech/login?lang=en")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    response = client.post(
        "/tech/login",
        data={
            "username": username,
            "password": password or STAFF[username][0],
            "csrf_token": token[1],
            "next": "/tech",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"] + "?lang=en")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found[1]


def test_pages_without_login_send_the_browser_to_the_field_login(client: TestClient) -> None:
    response = client.get("/tech/orders/WO2026-0000001", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/tech/login?next=/tech/orders/WO2026-0000001"


def test_technician_pages(client: TestClient, site: Site, state: AppState) -> None:
    number = created(client, site, technician="tech")
    token = page_login(client, "tech")
    client.cookies.set("poshub_lang", "en")  # the assertions below read English messages
    orders = client.get("/tech?lang=en")
    assert orders.status_code == 200
    assert number in orders.text
    assert 'href="/static/tech.css' in orders.text
    page = client.get(f"/tech/orders/{number}?lang=en")
    assert page.status_code == 200
    assert 'href="tel:13905510001"' in page.text
    assert 'capture="environment"' in page.text
    assert 'id="step-scheduled"' in page.text
    assert 'id="step-cancelled"' not in page.text  # operations' step: not offered

    # A form step, refused with the field named next to it, then accepted.
    response = client.post(
        f"/tech/orders/{number}/steps/scheduled",
        data={"csrf_token": token, "appointment_at": "2020-01-01T10:00"},
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert 'id="err-appointment_at"' in response.text
    assert "The appointment must be in the future." in response.text
    response = client.post(
        f"/tech/orders/{number}/steps/scheduled",
        data={"csrf_token": token, "appointment_at": "2099-01-01T10:00"},
        follow_redirects=False,
    )
    assert response.status_code == 422
    from poshub.core.clock import SHANGHAI
    from poshub.core.db import utcnow

    # Tomorrow in Shanghai: between 23:00 and midnight there, "today at 23:00" is past.
    tomorrow = (utcnow().astimezone(SHANGHAI).date() + dt.timedelta(days=1)).isoformat()
    response = client.post(
        f"/tech/orders/{number}/steps/scheduled",
        data={"csrf_token": token, "appointment_at": f"{tomorrow}T23:00", "note": ""},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get(f"/tech/orders/{number}?lang=en")
    assert 'id="step-checked_in"' in page.text
    # Out of order through a form: the page says which steps are allowed.
    response = client.post(
        f"/tech/orders/{number}/steps/trained",
        data={"csrf_token": token, "signer_name": "陈明", "topics": ["sale"]},
        follow_redirects=False,
    )
    assert response.status_code == 409
    assert "allowed next: cancelled, checked_in, scheduled" in response.text
    # Photos from the phone.
    response = client.post(
        f"/tech/orders/{number}/photos",
        data={"csrf_token": token, "caption": "收银台"},
        files={"file": ("IMG_0001.png", PNG, "image/png")},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = client.get(f"/tech/orders/{number}?lang=en")
    assert "收银台" in page.text
    response = client.post(
        f"/tech/orders/{number}/photos",
        data={"csrf_token": token},
        files={"file": ("scan.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert "Only JPG and PNG photos are accepted" in response.text


def test_another_technician_gets_403_pages(client: TestClient, site: Site, state: AppState) -> None:
    add_second_technician(state)
    number = created(client, site, technician="tech")
    token = page_login(client, SECOND_TECHNICIAN, SECOND_TECHNICIAN_PASSWORD)
    assert number not in client.get("/tech?lang=en").text
    assert client.get(f"/tech/orders/{number}?lang=en").status_code == 403
    response = client.post(
        f"/tech/orders/{number}/steps/scheduled",
        data={"csrf_token": token, "appointment_at": "2099-01-01T10:00"},
    )
    assert response.status_code == 403


def test_dispatch_page(client: TestClient, site: Site, state: AppState) -> None:
    token = page_login(client, "ops")
    page = client.get("/tech/dispatch?lang=en")
    assert page.status_code == 200
    response = client.post(
        "/tech/dispatch?lang=en",
        data={"csrf_token": token, "kind": "installation", "mid": site.mid, "tid": "12"},
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert "Has the wrong format." in response.text
    response = client.post(
        "/tech/dispatch",
        data={
            "csrf_token": token,
            "kind": "installation",
            "mid": site.mid,
            "tid": site.tid,
            "technician": "tech",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    number = response.headers["location"].rsplit("/", 1)[-1]
    page = client.get("/tech/dispatch?lang=en")
    assert number in page.text
    response = client.post(
        f"/tech/orders/{number}/assign",
        data={"csrf_token": token, "technician": "tech", "back": "/tech/dispatch"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/tech/dispatch"
    # A technician cannot open dispatch.
    page_login(client, "tech")
    assert client.get("/tech/dispatch?lang=en").status_code == 403


def test_swap_pages_show_the_secret_once_and_who_is_waited_for(
    client: TestClient, site: Site, state: AppState
) -> None:
    stock(state, "SN-A8-000010")
    number = created(client, site, kind="swap", technician="tech")
    page_login(client, "tech")
    page = client.get(f"/tech/orders/{number}?lang=en")
    assert 'id="waiting"' in page.text
    assert "Waiting for operations: Prepare the replacement device." in page.text
    assert 'class="step-form"' not in page.text

    token = page_login(client, "ops")
    response = client.post(
        f"/tech/orders/{number}/steps/device_prepared?lang=en",
        data={"csrf_token": token, "new_serial": "SN-A8-000010"},
        follow_redirects=False,
    )
    assert response.status_code == 200, response.text
    secret = re.search(r'id="device-secret">([0-9a-f]{64})<', response.text)
    assert secret
    assert response.headers["cache-control"] == "no-store"
    again = client.get(f"/tech/orders/{number}?lang=en")
    assert secret[1] not in again.text
    assert 'id="device-secret"' not in again.text
