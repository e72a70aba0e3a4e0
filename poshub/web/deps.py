"""FastAPI dependencies: state, units of work, language, and route access."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from poshub.bootstrap import AppState
from poshub.core.db import UnitOfWork
from poshub.core.errors import N_, Forbidden, Unauthorized
from poshub.core.i18n import Translator, negotiate, normalise_locale
from poshub.core.roles import Role
from poshub.onboarding.service import hash_access_token
from poshub.staff import service as staff_service
from poshub.staff.service import Principal
from poshub.web.security import (
    APPLICANT_COOKIE,
    LANG_COOKIE,
    SAFE_METHODS,
    SESSION_COOKIE,
    RouteAccess,
    client_address,
    csrf_valid,
    proxy_networks,
)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.poshub
    return state


# These dependencies are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in
# the thread pool, and a generator one there twice (enter and exit). Opening a unit of
# work touches no database (the session connects at its first statement, inside the
# route's thread), and closing one after a commit costs nothing, so they run on the event
# loop and a request makes one thread-pool hop instead of five.


async def write_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    """A read-write transaction for this request; the route commits it explicitly."""
    with app_state(request).db.unit_of_work() as uow:
        yield uow


async def read_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    """A read-only transaction (takes no write lock on SQLite)."""
    with app_state(request).db.unit_of_work(read_only=True) as uow:
        yield uow


def request_locale(request: Request) -> str:
    """``?lang=`` first, then the language cookie the switch sets; the API also honours
    ``Accept-Language``. Pages otherwise default to Simplified Chinese."""
    cached: str | None = getattr(request.state, "locale", None)
    if cached:
        return cached
    default = app_state(request).settings.default_locale
    locale = normalise_locale(request.query_params.get("lang")) or normalise_locale(
        request.cookies.get(LANG_COOKIE)
    )
    if locale is None:
        locale = (
            negotiate(request.headers.get("accept-language"), default)
            if is_api(request)
            else default
        )
    request.state.locale = locale
    return locale


def request_translator(request: Request) -> Translator:
    return Translator(request_locale(request))


async def translator(request: Request) -> Translator:
    """The request's translator, as a dependency (async: it does no I/O)."""
    return request_translator(request)


def client_ip(request: Request) -> str:
    """The client's address, for audit records, e-signatures, login throttling and rate
    limits: the only place that reads it (``X-Forwarded-For`` counts only from the
    proxies in ``POSHUB_TRUSTED_PROXIES``; see :func:`~poshub.web.security.client_address`)."""
    trusted = proxy_networks(tuple(app_state(request).settings.trusted_proxies))
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)


def is_api(request: Request) -> bool:
    # The scope's path, not ``request.url``: building the URL object costs more than the
    # rest of this check, and it is asked on every request.
    path: str = request.scope["path"]
    return path.startswith("/api/")


CSRF_MESSAGE = N_("The form expired or did not come from PosHub. Reload the page and try again.")


async def _require_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    if not await csrf_valid(request, app_state(request).vault.csrf_key):
        raise Forbidden(CSRF_MESSAGE, code="csrf")


@dataclass(frozen=True)
class ApplicantCredential:
    """The applicant's access token, hashed; the route matches it to the application."""

    token_hash: str
    via_cookie: bool


class Access:
    """Route dependency that enforces a :class:`RouteAccess` declaration.

    Every route in the app carries exactly one; a test walks the route table to prove it.
    """

    def __init__(self, declaration: RouteAccess) -> None:
        self.declaration = declaration

    async def __call__(self, request: Request) -> Principal | ApplicantCredential | None:
        audience = self.declaration.audience
        if audience == "public":
            # Public pages post forms from the browser: CSRF applies. The public JSON API
            # holds no ambient authority (no cookie is consulted), so it needs none.
            if not is_api(request):
                await _require_csrf(request)
            return None
        if audience == "applicant":
            return await self._applicant(request)
        if audience == "device":
            # Terminals sign every request with their per-device secret; the route checks
            # the signature against the device's credential in its own transaction, so a
            # refusal can be counted (poshub.terminals.tms). No cookie is consulted.
            return None
        return await self._staff(request)

    async def _applicant(self, request: Request) -> ApplicantCredential:
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return ApplicantCredential(hash_access_token(token.strip()), via_cookie=False)
        token = request.headers.get("x-access-token", "").strip()
        if token:
            return ApplicantCredential(hash_access_token(token), via_cookie=False)
        cookie = request.cookies.get(APPLICANT_COOKIE)
        if cookie:
            await _require_csrf(request)
            return ApplicantCredential(hash_access_token(cookie), via_cookie=True)
        raise Unauthorized(
            N_("Give the access token of this application."), code="applicant_token_missing"
        )

    async def _staff(self, request: Request) -> Principal:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise Unauthorized(N_("Please log in."), code="login_required")
        state = app_state(request)
        principal = await run_in_threadpool(_resolve, state, token)
        if principal is None:
            raise Unauthorized(
                N_("Your session has expired. Please log in again."), code="session_expired"
            )
        if not principal.has_any(self.declaration.roles):
            raise Forbidden(
                N_("Your role does not allow this. Allowed roles: {roles}."),
                code="role_forbidden",
                roles=", ".join(sorted(self.declaration.roles)),
            )
        await _require_csrf(request)
        request.state.principal = principal
        return principal


def _resolve(state: AppState, token: str) -> Principal | None:
    idle = state.settings.session_idle_minutes
    with state.db.unit_of_work(read_only=True) as uow:
        resolved = staff_service.resolve_session(uow.session, token, idle_minutes=idle)
    if resolved is None:
        return None
    if resolved.needs_touch:
        with state.db.unit_of_work() as uow:
            staff_service.touch_session(uow.session, token)
            uow.commit()
    return resolved.principal


def public() -> Access:
    return Access(RouteAccess("public"))


def applicant() -> Access:
    return Access(RouteAccess("applicant"))


def device() -> Access:
    return Access(RouteAccess("device"))


def staff(*roles: Role) -> Access:
    if not roles:
        raise ValueError("a staff route must name the roles it admits")
    return Access(RouteAccess("staff", frozenset(roles)))


PUBLIC = Depends(public())
APPLICANT = Depends(applicant())
