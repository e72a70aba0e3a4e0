"""The route table is the contract: every route says who may call it, and is held to it.

The cases are generated from the route table of ``create_app``, so a new route is
covered (or fails loudly for want of a plausible path value) without editing this file.
The many cases share one seeded database per backend (``world``); each case logs in on
a fresh client, and a case that changes data works on data of its own.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState, build_state
from poshub.core.db import Database, make_engine
from poshub.core.roles import Role
from poshub.core.settings import Mode, Settings
from poshub.notify.adapters import MemoryNotifier
from poshub.web.app import create_app
from poshub.web.deps import Access
from poshub.web.security import (
    APPLICANT_COOKIE,
    CSRF_COOKIE,
    LANG_COOKIE,
    SAFE_METHODS,
    RouteAccess,
    csrf_token_for,
)
from tests.conftest import (
    BACKENDS,
    TEST_KEK,
    migrated_postgres_schema,
    seed_reference_data,
)
from tests.factories import (
    PNG,
    STAFF,
    bearer,
    create,
    create_and_submit,
    login,
    submitted_application,
)

# --- The route table ------------------------------------------------------------------

LOGIN_REDIRECTS = ("/admin/login?next=", "/tech/login?next=")
"""Pages send a browser without a session to a login form: the back office's, or the
technician's phone login for /tech."""
FRAMEWORK_ROUTES = frozenset({"/api/v1/openapi.json"})
"""Routes FastAPI adds itself (the schema): public, read-only, no Access dependency. The docs
page is ours (pages/apidocs.py) and declares PUBLIC like any other route."""
STATIC_MOUNTS = frozenset({"/static"})
"""Mounted static files: public by nature."""


@dataclass(frozen=True)
class Endpoint:
    """One method of one route, with the access it declares."""

    method: str
    path: str
    access: RouteAccess

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def unsafe(self) -> bool:
        return self.method not in SAFE_METHODS

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def walk_routes(
    routes: Iterable[Any], prefix: str = "", inherited: tuple[Any, ...] = ()
) -> Iterator[tuple[str, Any, tuple[Any, ...]]]:
    """Every leaf route with its full path and the dependencies its includes add.

    FastAPI 0.165 keeps an included router as one ``_IncludedRouter`` entry holding the
    original router; older and newer versions may flatten them instead, so descend only
    where there is something to descend into.
    """
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from walk_routes(
                inner.routes,
                prefix + str(getattr(context, "prefix", "") or ""),
                inherited + tuple(getattr(context, "dependencies", None) or ()),
            )
            continue
        yield prefix + str(getattr(route, "path", "")), route, inherited


def access_dependencies(dependant: Any) -> list[Access]:
    """Every Access instance in a dependency tree (they never nest, but look anyway)."""
    found: list[Access] = []
    for dependency in getattr(dependant, "dependencies", ()):
        if isinstance(getattr(dependency, "call", None), Access):
            found.append(dependency.call)
        found.extend(access_dependencies(dependency))
    return found


def route_accesses(route: APIRoute, inherited: tuple[Any, ...]) -> list[Access]:
    from_includes = [
        d.dependency for d in inherited if isinstance(getattr(d, "dependency", None), Access)
    ]
    return from_includes + access_dependencies(route.dependant)


def endpoints_of(app: FastAPI) -> list[Endpoint]:
    """Every method of every APIRoute that declares exactly one Access."""
    found: list[Endpoint] = []
    for path, route, inherited in walk_routes(app.routes):
        if not isinstance(route, APIRoute):
            continue
        accesses = route_accesses(route, inherited)
        if len(accesses) != 1:
            continue  # test_every_route_declares_exactly_one_access reports it
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append(Endpoint(method, path, accesses[0].declaration))
    return found


def _route_table_app() -> FastAPI:
    """The app, built only to read its route table at collection time (never connects)."""
    scratch = Path(tempfile.gettempdir()) / "poshub-route-table-unused"
    settings = Settings(
        mode=Mode.TEST,
        data_dir=scratch,
        kek=TEST_KEK,
        database_url=f"sqlite:///{scratch / 'never-opened.db'}",
    )
    database = Database(make_engine(settings.effective_database_url))
    return create_app(build_state(settings, database=database, notifier=MemoryNotifier()))


ENDPOINTS = endpoints_of(_route_table_app())
STAFF_ENDPOINTS = [e for e in ENDPOINTS if e.access.audience == "staff"]
APPLICANT_ENDPOINTS = [e for e in ENDPOINTS if e.access.audience == "applicant"]
DEVICE_ENDPOINTS = [e for e in ENDPOINTS if e.access.audience == "device"]
UNSAFE_STAFF_API = [e for e in STAFF_ENDPOINTS if e.is_api and e.unsafe]
UNSAFE_APPLICANT_API = [e for e in APPLICANT_ENDPOINTS if e.is_api and e.unsafe]
PAGE_FORMS = [e for e in ENDPOINTS if not e.is_api and e.unsafe]


def test_every_route_declares_exactly_one_access() -> None:
    app = _route_table_app()
    problems: list[str] = []
    exceptions_seen: set[str] = set()
    for path, route, inherited in walk_routes(app.routes):
        if isinstance(route, APIRoute):
            count = len(route_accesses(route, inherited))
            if count != 1:
                problems.append(
                    f"{sorted(route.methods or ())} {path}: {count} Access dependencies"
                )
            continue
        if path in FRAMEWORK_ROUTES or path in STATIC_MOUNTS:
            exceptions_seen.add(path)
            continue
        problems.append(
            f"{type(route).__name__} {path} is not an APIRoute and not a listed exception"
        )
    assert problems == []
    # The exceptions exist: the list stays an exact description of the app.
    assert exceptions_seen == FRAMEWORK_ROUTES | STATIC_MOUNTS


def test_route_table_is_what_the_cases_cover(world: World) -> None:
    """The table read at collection time is the served one, and every audience is known."""
    served = endpoints_of(world.app)
    assert {str(e) for e in served} == {str(e) for e in ENDPOINTS}
    assert {e.access.audience for e in ENDPOINTS} == {"public", "applicant", "staff", "device"}
    for endpoint in STAFF_ENDPOINTS:
        assert endpoint.access.roles, f"{endpoint} admits no role"
        assert Role.MERCHANT not in endpoint.access.roles, f"{endpoint} admits merchants"
    # Every staff role is somebody in the test staff, so the matrix below is complete.
    assert {role for _, roles in STAFF.values() for role in roles} == set(Role) - {Role.MERCHANT}


# --- The shared, seeded database ------------------------------------------------------------


@dataclass
class World:
    app: FastAPI
    state: AppState
    application_id: str
    """A submitted application with every required document; never changed by the cases."""
    tracking_number: str
    access_token: str
    document_id: str
    intruder_token: str
    """The access token of another applicant's application."""
    mid: str
    entry_id: int
    contracted: dict[str, str]
    """The approved application (MID ``mid``) with a contract waiting for its signature:
    the applicant contract routes are read through it."""


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("rbac")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            path = data_dir / "poshub.db"
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            url = f"sqlite:///{path}"
        else:
            # A schema of its own, so per-test truncation elsewhere cannot touch this
            # module's data.
            url = stack.enter_context(migrated_postgres_schema("poshub_rbac"))
        yield from _world(data_dir, url)


def _world(data_dir: Path, url: str) -> Iterator[World]:
    database = Database(make_engine(url))
    settings = Settings(
        mode=Mode.TEST,
        data_dir=data_dir,
        kek=TEST_KEK,
        database_url=url,
        # This module's one world starts an application per staff case, all with the
        # factories' one mobile number and address: the per-day limits are not what it tests.
        applications_per_mobile_per_day=1000,
        applications_per_address_per_day=100_000,
        mobile_codes_per_number_per_day=100,
        mobile_codes_per_address_per_day=100_000,
    )
    state = build_state(settings, database=database, notifier=MemoryNotifier())
    seed_reference_data(database)
    app = create_app(state)
    with TestClient(app, base_url="http://testserver") as client:
        victim = create_and_submit(client)
        view = client.get(
            f"/api/v1/applications/{victim['id']}", headers=bearer(victim["access_token"])
        ).json()
        intruder = create(client)
        approved = create_and_submit(client)
        csrf = login(client, "reviewer")
        claimed = client.post(f"/api/v1/review/applications/{approved['id']}/claim", headers=csrf)
        assert claimed.status_code == 200, claimed.text
        response = client.post(
            f"/api/v1/review/applications/{approved['id']}/approve",
            headers=csrf,
            json={"note": "Seeded merchant."},
        )
        assert response.status_code == 200, response.text
        mid = response.json()["mid"]
        response = client.post(
            f"/api/v1/merchants/{mid}/contracts", headers=csrf, json={"fee_plan_code": "STANDARD"}
        )
        assert response.status_code == 201, response.text
        client.cookies.clear()
        entry_id = _blacklist_entry(client)
    yield World(
        app=app,
        state=state,
        application_id=victim["id"],
        tracking_number=victim["tracking_number"],
        access_token=victim["access_token"],
        document_id=view["documents"][0]["id"],
        intruder_token=intruder["access_token"],
        mid=mid,
        entry_id=entry_id,
        contracted={
            "application_id": approved["id"],
            "tracking_number": approved["tracking_number"],
            "access_token": approved["access_token"],
        },
    )
    database.dispose()


_mobiles = iter(range(10_000_000, 99_999_999))


def _blacklist_entry(client: TestClient) -> int:
    """A fresh blacklist entry, added by the risk officer on ``client`` (then logged out)."""
    csrf = login(client, "risk")
    response = client.post(
        "/api/v1/blacklist",
        headers=csrf,
        json={"kind": "mobile", "value": f"137{next(_mobiles)}", "reason": "Seeded entry."},
    )
    assert response.status_code == 201, response.text
    client.post("/api/v1/auth/logout", headers=csrf)
    client.cookies.clear()
    entry_id: int = response.json()["id"]
    return entry_id


@pytest.fixture(scope="module")
def _web_client(world: World) -> Iterator[TestClient]:
    # One client for the module's ~1000 cases: opening one costs ~7 ms (its event loop
    # thread and the app's lifespan), and only its cookie jar makes it a browser.
    with TestClient(world.app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def web(_web_client: TestClient) -> TestClient:
    """A fresh browser on the shared app: no cookies but English pages; redirects not followed."""
    _web_client.cookies.clear()
    _web_client.cookies.set(LANG_COOKIE, "en")
    return _web_client


# --- Making a plausible request to any endpoint ------------------------------------------

JSON_BODIES: dict[str, dict[str, Any]] = {
    "PATCH /api/v1/applications/{application_id}": {"business_name": "合肥蜀山明辉超市"},
    "POST /api/v1/applications/{application_id}/answer": {"message": "Uploaded it again."},
    "POST /api/v1/applications/{application_id}/consents": {
        "notice_version": "2026-12",
        "verification_provider": True,
    },
    "POST /api/v1/applications/{application_id}/consents/withdraw": {
        "kind": "verification_provider"
    },
    "POST /api/v1/merchants/{mid}/close": {
        "terminated_on": "2026-01-01",
        "reason": "Contract ended.",
    },
    "POST /api/v1/applications/{application_id}/mobile/verify": {"code": "123456"},
    "POST /api/v1/review/applications/{application_id}/notes": {
        "kind": "phone_confirmation",
        "body": "Called the owner.",
        "outcome": "confirmed",
    },
    "POST /api/v1/review/applications/{application_id}/request-info": {
        "message": "Please upload a clearer licence."
    },
    "PATCH /api/v1/review/applications/{application_id}": {
        "business_name": "合肥蜀山明辉超市",
        "reason": "Confirmed by phone.",
    },
    "POST /api/v1/review/applications/{application_id}/approve": {"note": "All good."},
    "POST /api/v1/applications/{application_id}/contract/sign": {
        "signer_name": "陈明",
        "agree": True,
        "pdf_sha256": "0" * 64,
    },
    "POST /api/v1/review/applications/{application_id}/reject": {
        "reasons": ["other"],
        "note": "Testing the route.",
        "message": "Testing the route.",
    },
    "POST /api/v1/review/overrides/{override_id}/approve": {"note": "Checked with the bank."},
    "POST /api/v1/review/overrides/{override_id}/decline": {"note": "Not convinced."},
    "POST /api/v1/blacklist": {"kind": "mobile", "value": "13712345678", "reason": "Fraud."},
    "PUT /api/v1/terminals/{tid}/parameters": {"params": {"receipt_footer": "Thank you."}},
    "POST /api/v1/terminals/{tid}/lock": {"reason": "Testing the route."},
}
FORM_BODIES: dict[str, dict[str, str]] = {
    "POST /admin/login": {"username": "nobody", "password": "wrong-password-1A!"},
    "POST /admin/applications/{application_id}/notes": {"kind": "note", "body": "Called."},
    "POST /admin/applications/{application_id}/request-info": {"message": "Please resend."},
    "POST /admin/applications/{application_id}/edit": {
        "reason": "Confirmed by phone.",
        "business_name": "合肥蜀山明辉超市",
    },
    "POST /admin/applications/{application_id}/approve": {"note": "All good."},
    "POST /admin/applications/{application_id}/reject": {
        "reasons": "other",
        "note": "Testing.",
        "message": "Testing.",
    },
    "POST /admin/overrides/{override_id}/approve": {"note": "Checked with the bank."},
    "POST /admin/overrides/{override_id}/decline": {"note": "Not convinced."},
    "POST /admin/blacklist": {"kind": "mobile", "value": "13712345679", "reason": "Fraud."},
    "POST /apply/track": {"tracking_number": "AP000", "access_token": "nothing"},
    "POST /apply/track/{tracking_number}/mobile/verify": {"code": "123456"},
    "POST /apply/track/{tracking_number}/answer": {"message": "Uploaded it again."},
    "POST /apply": {"legal_name": "陈明"},
}
UPLOADS = {
    "POST /api/v1/work-orders/{number}/photos",
    "POST /tech/orders/{number}/photos",
    "POST /api/v1/applications/{application_id}/documents",
    "POST /apply/track/{tracking_number}/documents",
}


def path_values(world: World, **overrides: str) -> dict[str, str]:
    values = {
        "application_id": world.application_id,
        "document_id": world.document_id,
        "tracking_number": world.tracking_number,
        "mid": world.mid,
        "entry_id": str(world.entry_id),
        "code": "en",
        "number": "WO2026-9999999",  # no such order: admitted roles get 404, not 401/403
        "target": "cancelled",
        "photo_id": "1",
        "tid": "10000001",
        "serial": "SN-RBAC-000001",
        "contract_id": "no-such-contract",
        "rrn": "000000000001",  # no such transaction: admitted roles get 404
        "override_id": "999999",  # no such override request: admitted roles get 404
        "key_id": "999999",  # no such transport key ceremony: admitted roles get 404
        "request_id": "999999",  # no such key export request: admitted roles get 404
        "reference": "RC-20000101-9999",  # no such risk case: admitted roles get 404
        "alert_id": "999999",  # no such risk alert: admitted roles get 404
        "freeze_id": "999999",
        "attachment_id": "999999",
        "card_id": "999999",  # no such blocked card: admitted roles get 404
    }
    values.update(overrides)
    return values


def url_for(endpoint: Endpoint, values: dict[str, str]) -> str:
    try:
        return endpoint.path.format_map(values)
    except KeyError as missing:
        pytest.fail(
            f"{endpoint}: add a plausible value for path parameter {missing} to path_values"
        )


def send(
    client: TestClient,
    endpoint: Endpoint,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    csrf_field: str | None = None,
) -> httpx.Response:
    """The request a real caller would make: JSON for the API, a form for pages.

    ``csrf_field`` puts the CSRF token into the form, as the pages' forms do.
    """
    key = str(endpoint)
    kwargs: dict[str, Any] = {}
    if key in UPLOADS:
        kwargs["data"] = {"kind": "premises_proof"} | (
            {"csrf_token": csrf_field} if csrf_field else {}
        )
        kwargs["files"] = {"file": ("shop.png", PNG, "image/png")}
    elif endpoint.is_api and endpoint.method in ("POST", "PATCH", "PUT"):
        kwargs["json"] = JSON_BODIES.get(key, {})
    elif not endpoint.is_api and endpoint.unsafe:
        form = dict(FORM_BODIES.get(key, {}))
        if csrf_field:
            form["csrf_token"] = csrf_field
        kwargs["data"] = form
    response: httpx.Response = client.request(endpoint.method, url, headers=headers, **kwargs)
    return response


def fresh_claimed_application(client: TestClient, csrf: dict[str, str]) -> str:
    """A new submitted application, claimed by whoever is logged in on ``client``."""
    created = submitted_application(client)
    response = client.post(f"/api/v1/review/applications/{created['id']}/claim", headers=csrf)
    assert response.status_code == 200, response.text
    application_id: str = created["id"]
    return application_id


# --- Staff routes: the role matrix -----------------------------------------------------------


# On SQLite only: who may call a route is decided before any query, the same on every
# database, and this matrix (every staff route × every role, over 2,000 cases) is a tenth
# of the suite's time per backend. The route table, the login and session cases below
# still run on both.
@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
@pytest.mark.parametrize("username", list(STAFF))
@pytest.mark.parametrize("endpoint", STAFF_ENDPOINTS, ids=str)
def test_staff_route_admits_exactly_its_roles(
    world: World, web: TestClient, endpoint: Endpoint, username: str
) -> None:
    roles = set(STAFF[username][1])
    allowed = not roles.isdisjoint(endpoint.access.roles)
    csrf = login(web, username)
    overrides: dict[str, str] = {}
    if allowed and endpoint.unsafe:
        # Acting changes data: act on data of this case's own.
        if "{application_id}" in endpoint.path:
            overrides["application_id"] = fresh_claimed_application(web, csrf)
        if "{entry_id}" in endpoint.path:
            overrides["entry_id"] = str(_blacklist_entry(web))
            csrf = login(web, username)
    url = url_for(endpoint, path_values(world, **overrides))
    if endpoint.is_api:
        response = send(web, endpoint, url, headers=csrf)
    else:
        response = send(web, endpoint, url, csrf_field=csrf["X-CSRF-Token"])

    if allowed:
        assert response.status_code not in (401, 403), (
            f"{username} {sorted(roles)} may call {endpoint}: {response.status_code} {response.text[:300]}"
        )
        # Not sent to log in (logging out does end on the login form, without ?next=).
        assert not response.headers.get("location", "").startswith(LOGIN_REDIRECTS)
    elif endpoint.is_api:
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "role_forbidden"
        for role in endpoint.access.roles:
            assert role.value in response.json()["message"]
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert "Your role does not allow this" in response.text
        for role in endpoint.access.roles:
            assert role.value in response.text


@pytest.mark.parametrize("endpoint", STAFF_ENDPOINTS, ids=str)
def test_staff_route_without_login(world: World, web: TestClient, endpoint: Endpoint) -> None:
    url = url_for(endpoint, path_values(world))
    response = send(web, endpoint, url)
    if endpoint.is_api:
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "login_required"
    else:
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith(LOGIN_REDIRECTS)


@pytest.mark.parametrize("endpoint", STAFF_ENDPOINTS, ids=str)
def test_staff_route_with_revoked_session(
    world: World, web: TestClient, endpoint: Endpoint
) -> None:
    """A session cookie that was logged out is worth nothing, even replayed."""
    username = next(
        u for u, (_, roles) in STAFF.items() if not endpoint.access.roles.isdisjoint(roles)
    )
    csrf = login(web, username)
    cookies = dict(web.cookies)
    assert web.post("/api/v1/auth/logout", headers=csrf).status_code == 204
    for name, value in cookies.items():
        web.cookies.set(name, value)
    url = url_for(endpoint, path_values(world))
    if endpoint.is_api:
        response = send(web, endpoint, url, headers=csrf)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "session_expired"
    else:
        response = send(web, endpoint, url, csrf_field=csrf["X-CSRF-Token"])
        assert response.status_code == 303
        assert response.headers["location"].startswith(LOGIN_REDIRECTS)


# --- Applicant routes: only the application's own token -------------------------------------


def _applicant_request(
    web: TestClient, world: World, endpoint: Endpoint, token: str | None
) -> httpx.Response:
    overrides = {}
    if "/contract" in endpoint.path:  # only an approved merchant has a contract
        overrides = {
            "application_id": world.contracted["application_id"],
            "tracking_number": world.contracted["tracking_number"],
        }
        if token == world.access_token:
            token = world.contracted["access_token"]
    url = url_for(endpoint, path_values(world, **overrides))
    if endpoint.is_api:
        return send(web, endpoint, url, headers=bearer(token) if token else None)
    if token:
        web.cookies.set(APPLICANT_COOKIE, token)
    csrf = _browser_csrf(web, world)
    return send(web, endpoint, url, csrf_field=csrf)


def _browser_csrf(web: TestClient, world: World) -> str:
    """What a page gives the browser: a CSRF cookie and the token that goes with it."""
    cookie = "browser-csrf-cookie"
    web.cookies.set(CSRF_COOKIE, cookie)
    return csrf_token_for(world.state.vault.csrf_key, cookie)


@pytest.mark.parametrize("endpoint", APPLICANT_ENDPOINTS, ids=str)
def test_another_applicants_token_reads_nothing(
    world: World, web: TestClient, endpoint: Endpoint
) -> None:
    response = _applicant_request(web, world, endpoint, world.intruder_token)
    assert response.status_code == 404, response.text
    if endpoint.is_api:
        assert response.json()["error"] == "application_not_found"
        assert world.tracking_number not in response.text
    assert "陈明" not in response.text
    assert "合肥蜀山明辉便利超市" not in response.text


@pytest.mark.parametrize("endpoint", [e for e in APPLICANT_ENDPOINTS if not e.unsafe], ids=str)
def test_own_token_reads(world: World, web: TestClient, endpoint: Endpoint) -> None:
    """The control for the test above: the same request with the right token works."""
    response = _applicant_request(web, world, endpoint, world.access_token)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("endpoint", APPLICANT_ENDPOINTS, ids=str)
def test_applicant_route_without_token(world: World, web: TestClient, endpoint: Endpoint) -> None:
    response = _applicant_request(web, world, endpoint, None)
    if endpoint.is_api:
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "applicant_token_missing"
    else:
        # A page (e.g. the SMS link opened on another device) leads to the form that asks
        # for the access code; nothing of the application is served.
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith("/apply/track?number=AP")


# --- Device routes: a signature or nothing ------------------------------------------------


@pytest.mark.parametrize("endpoint", DEVICE_ENDPOINTS, ids=str)
def test_device_route_refuses_unsigned_requests(
    world: World, web: TestClient, endpoint: Endpoint
) -> None:
    """No cookie, session or CSRF token stands in for the device signature (docs/tms.md)."""
    url = url_for(endpoint, path_values(world))
    response = send(web, endpoint, url)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "device_credential_missing"
    login(web, "admin")  # a staff session is no device credential either
    forged = {
        "X-PosHub-Device": "SN-RBAC-000001",
        "X-PosHub-Timestamp": "1767225600",
        "X-PosHub-Signature": "0" * 64,
    }
    response = send(web, endpoint, url, headers=forged)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "device_credential_invalid"


# --- CSRF ---------------------------------------------------------------------------------


def _admitted(endpoint: Endpoint) -> str:
    return next(u for u, (_, roles) in STAFF.items() if not endpoint.access.roles.isdisjoint(roles))


@pytest.mark.parametrize("forged", [None, "0" * 64], ids=["missing", "forged"])
@pytest.mark.parametrize("endpoint", UNSAFE_STAFF_API, ids=str)
def test_staff_api_needs_csrf_header_with_session_cookie(
    world: World, web: TestClient, endpoint: Endpoint, forged: str | None
) -> None:
    login(web, _admitted(endpoint))
    url = url_for(endpoint, path_values(world))
    response = send(web, endpoint, url, headers={"X-CSRF-Token": forged} if forged else None)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "csrf"


@pytest.mark.parametrize("endpoint", UNSAFE_APPLICANT_API, ids=str)
def test_applicant_api_needs_csrf_with_tracking_cookie(
    world: World, web: TestClient, endpoint: Endpoint
) -> None:
    """The tracking cookie is ambient authority too; a bearer token is not."""
    web.cookies.set(APPLICANT_COOKIE, world.access_token)
    web.cookies.set(CSRF_COOKIE, "browser-csrf-cookie")
    response = send(web, endpoint, url_for(endpoint, path_values(world)))
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "csrf"


@pytest.mark.parametrize("forged", [None, "0" * 64], ids=["missing", "forged"])
@pytest.mark.parametrize("endpoint", PAGE_FORMS, ids=str)
def test_page_forms_need_csrf_token(
    world: World, web: TestClient, endpoint: Endpoint, forged: str | None
) -> None:
    if endpoint.access.audience == "staff":
        login(web, _admitted(endpoint))
    elif endpoint.access.audience == "applicant":
        web.cookies.set(APPLICANT_COOKIE, world.access_token)
    _browser_csrf(web, world)  # the browser has its CSRF cookie, but the form lacks the token
    response = send(web, endpoint, url_for(endpoint, path_values(world)), csrf_field=forged)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "The form expired or did not come from PosHub" in response.text


def test_own_application_is_unchanged_by_the_cases(world: World, web: TestClient) -> None:
    """Nothing above was allowed to act on the shared application."""
    view = web.get(
        f"/api/v1/applications/{world.application_id}", headers=bearer(world.access_token)
    ).json()
    assert view["status"] == "submitted"
    assert view["business_name"] == "合肥蜀山明辉便利超市"
