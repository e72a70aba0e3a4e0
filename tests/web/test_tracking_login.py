"""The SMS link on another device: a page to enter the access code, never a bare 401; the
copy button where the code is first shown; wrong codes told clearly and throttled; the
mobile number proved from the tracking page."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from poshub.core import limits
from poshub.notify.adapters import MemoryNotifier
from tests.factories import bearer, create
from tests.web.test_apply_form_compliance import _form as apply_form

EN = {"Accept-Language": "en"}


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _link(created: dict[str, Any]) -> str:
    """The path of the link the SMS carries."""
    url: str = created["tracking_url"]
    return "/apply/track/" + url.rsplit("/apply/track/", 1)[1]


def test_the_sms_link_on_another_device_asks_for_the_access_code(client: TestClient) -> None:
    created = create(client)
    client.get("/lang/en", follow_redirects=False)
    # Another device: no cookie. The link leads to the form, with the number filled in.
    response = client.get(_link(created))
    assert response.status_code == 200
    assert response.url.path == "/apply/track"
    assert 'id="track-login"' in response.text
    assert f'value="{created["tracking_number"]}"' in response.text
    assert (
        f"To open application {created['tracking_number']} on this device, enter its access code"
    ) in response.text
    assert 'name="access_token"' in response.text
    assert "陈明" not in response.text  # nothing of the application before the code

    response = client.post(
        "/apply/track?lang=en",
        data={
            "csrf_token": _csrf(response.text),
            "tracking_number": created["tracking_number"].lower(),
            "access_token": f"  {created['access_token']} ",  # pasted with spaces
        },
    )
    assert response.status_code == 200
    assert response.url.path == _link(created)
    assert 'id="documents"' in response.text
    assert created["tracking_number"] in response.text


def test_an_unknown_number_gets_the_same_form(client: TestClient) -> None:
    response = client.get("/apply/track/AP20260101-ZZZZZZ")
    assert response.status_code == 200
    assert 'value="AP20260101-ZZZZZZ"' in response.text
    # Something that is not a tracking number is not echoed into the form.
    response = client.get("/apply/track/%3Cscript%3E", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/apply/track"


def test_a_cookie_of_another_application_asks_for_this_ones_code(client: TestClient) -> None:
    mine = create(client)
    other = create(client, mobile="13800000002")
    page = client.get("/apply/track")
    client.post(
        "/apply/track",
        data={
            "csrf_token": _csrf(page.text),
            "tracking_number": mine["tracking_number"],
            "access_token": mine["access_token"],
        },
    )
    response = client.get(_link(other) + "?lang=en")
    assert response.status_code == 404
    assert "holds the access code of another application" in response.text
    assert f'value="{other["tracking_number"]}"' in response.text


def test_a_wrong_access_code_is_explained_and_then_throttled(client: TestClient) -> None:
    created = create(client)
    page = client.get(_link(created) + "?lang=en")
    form = {"csrf_token": _csrf(page.text), "tracking_number": created["tracking_number"]}
    response = client.post("/apply/track?lang=en", data={**form, "access_token": "wrong"})
    assert response.status_code == 404
    assert (
        f"This access code does not open application {created['tracking_number']}"
    ) in response.text
    assert "copy button" in response.text
    for _ in range(limits.ACCESS_CODE_FAILURES_PER_ADDRESS - 1):
        assert client.post("/apply/track", data={**form, "access_token": "x"}).status_code == 404
    # Past the limit even the right code waits: guessing is throttled per source address.
    response = client.post(
        "/apply/track?lang=en",
        data={**form, "access_token": created["access_token"]},
        follow_redirects=False,
    )
    assert response.status_code == 429
    assert "Too many wrong access codes from your network address" in response.text
    assert response.headers["Retry-After"] == str(limits.ACCESS_CODE_FAILURE_WINDOW_MINUTES * 60)
    # The API's bearer token still works: the throttle guards the guessing form.
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    )
    assert view.status_code == 200


def _apply(client: TestClient, **fields: str) -> Any:
    page = client.get("/apply")
    data = {**apply_form(**fields), "csrf_token": _csrf(page.text)}
    return client.post("/apply?lang=en", data=data)


def test_the_access_code_is_first_shown_with_a_copy_button(client: TestClient) -> None:
    response = _apply(client)
    assert response.status_code == 200, response.text[:2000]
    html = response.text
    token = re.search(r'<code id="access-token" class="token">([^<]+)</code>', html)
    assert token
    button = re.search(r"<button[^>]*id=\"copy-token\"[^>]*>", html)
    assert button
    assert 'data-copy-target="access-token"' in button.group(0)
    assert " hidden" in button.group(0)  # shown by the script, so it never does nothing
    assert '<script src="/static/copy.js' in html
    assert "<script>" not in html  # no inline script: the CSP allows 'self' only
    assert "script-src 'self'" in response.headers["content-security-policy"]
    script = client.get("/static/copy.js")
    assert script.status_code == 200
    assert "navigator.clipboard" in script.text
    # The created page says what comes next: prove the number, then documents.
    assert "confirm your mobile number with the code we send by SMS" in html


def test_over_the_limit_the_form_says_which_limit(client: TestClient, settings: Any) -> None:
    settings.applications_per_address_per_day = 1
    assert _apply(client).status_code == 200
    response = _apply(client, mobile="13800000002")
    assert response.status_code == 429
    assert "Too many applications from your network address: at most 1 in 24 hours." in (
        response.text
    )


def test_the_tracking_page_proves_the_mobile_number(
    client: TestClient, notifier: MemoryNotifier
) -> None:
    created = create(client, prove=False)
    page = client.get("/apply/track?lang=en")
    client.post(
        "/apply/track",
        data={
            "csrf_token": _csrf(page.text),
            "tracking_number": created["tracking_number"],
            "access_token": created["access_token"],
        },
    )
    page = client.get(_link(created) + "?lang=en")
    assert 'id="mobile"' in page.text
    assert "only after you confirm it" in page.text
    base = _link(created)
    response = client.post(f"{base}/mobile/code?lang=en", data={"csrf_token": _csrf(page.text)})
    assert response.status_code == 200
    assert "We sent a 6-digit code to 139****0001" in response.text
    assert 'id="demo-code"' not in response.text  # only the demo shows it
    code = notifier.last_code("13905510001")
    assert code is not None
    assert code not in response.text
    # Again at once: the cool-down, said on the page.
    response = client.post(f"{base}/mobile/code?lang=en", data={"csrf_token": _csrf(page.text)})
    assert response.status_code == 429
    assert "Wait" in response.text

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = client.post(
        f"{base}/mobile/verify?lang=en", data={"csrf_token": _csrf(page.text), "code": wrong}
    )
    assert response.status_code == 422
    assert "That code is not right. 4 attempts left with this code." in response.text
    response = client.post(
        f"{base}/mobile/verify?lang=en", data={"csrf_token": _csrf(page.text), "code": code}
    )
    assert response.status_code == 200
    assert 'id="mobile"' not in response.text  # proved: the panel is gone
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    )
    assert view.json()["mobile_verified"] is True
