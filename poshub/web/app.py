"""The FastAPI application factory."""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from poshub import __version__
from poshub.bootstrap import AppState, build_state, load_calendar, open_database
from poshub.core.db import UnitOfWork
from poshub.core.i18n import normalise_locale
from poshub.core.settings import Mode, Settings
from poshub.web import errors
from poshub.web.api import (
    applications,
    auth,
    contracts,
    fieldwork,
    fleet,
    registry,
    review,
    risk_cases,
    risk_controls,
    risk_merchants,
    tms,
    transactions,
)
from poshub.web.deps import PUBLIC, read_uow
from poshub.web.edge import BodyLimit, BodyTooLarge, body_too_large, refuse_nul
from poshub.web.pages import admin, apidocs, contract, keys, public, technician, terminal
from poshub.web.pages import fleet as fleet_pages
from poshub.web.pages import risk_cases as risk_case_pages
from poshub.web.pages import risk_controls as risk_control_pages
from poshub.web.pages import risk_merchants as risk_merchant_pages
from poshub.web.pages import transactions as transaction_pages
from poshub.web.security import LANG_COOKIE, safe_local_path
from poshub.web.templating import render_error_page

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
}


HSTS = "max-age=31536000; includeSubDomains"
"""Production only: browsers then refuse plain HTTP to this host for a year (behind TLS)."""


class SecurityHeaders:
    """Adds the security headers to every response (a plain ASGI middleware: it costs
    nothing per request, unlike a request/response-wrapping one); with ``hsts``, the
    Strict-Transport-Security header too."""

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        headers = {**SECURITY_HEADERS, **({"Strict-Transport-Security": HSTS} if hsts else {})}
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        # API answers carry personal data and, once, device secrets and key blocks: no
        # browser or proxy may keep a copy. (Pages set it when rendered; static assets may
        # be cached.)
        self.api_headers = [*self.headers, (b"cache-control", b"no-store")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        extra = self.api_headers if scope["path"].startswith("/api/") else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in extra if name not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(state: AppState) -> FastAPI:
    docs = state.settings.api_docs  # POSHUB_API_DOCS: off in production unless asked for

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The working-day calendar as operations loaded or edited it (SLA dates shown to
        # staff and applicants); without the table the published schedule and the
        # statutory rules apply (core/calendar.py), which the table starts as anyway.
        load_calendar(state.db)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="PosHub",
        version=__version__,
        description="Acquiring platform for POS terminals: onboarding, review, merchants.",
        openapi_url=apidocs.OPENAPI_URL if docs else None,
        # Served by pages/apidocs.py from the vendored Swagger UI, inside the CSP.
        docs_url=None,
        redoc_url=None,
        # PosHub exports no OpenTelemetry data; FastAPI's native instrumentation would
        # still wrap every request (~3 % of the event loop's time under load).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Before every route's own dependencies: no NUL reaches a query (web/edge.py).
        dependencies=[Depends(refuse_nul)],
    )
    app.state.poshub = state
    errors.install(app, render_error_page)
    app.add_exception_handler(BodyTooLarge, body_too_large)

    app.add_middleware(BodyLimit)
    # Outermost: refusals carry the headers too.
    app.add_middleware(SecurityHeaders, hsts=state.settings.mode == Mode.PRODUCTION)

    @app.get("/healthz", tags=["operations"], dependencies=[PUBLIC])
    def healthz(uow: Annotated[UnitOfWork, Depends(read_uow)]) -> dict[str, str]:
        """Liveness and database check for load balancers and monitoring."""
        uow.session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "database": state.db.dialect}

    @app.get("/lang/{code}", include_in_schema=False, dependencies=[PUBLIC])
    def switch_language(code: str, next: str = "/") -> RedirectResponse:
        locale = normalise_locale(code) or state.settings.default_locale
        target = safe_local_path(next)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            LANG_COOKIE,
            locale,
            max_age=365 * 86400,
            samesite="lax",
            path="/",
            secure=state.settings.cookie_secure,
        )
        return response

    for router in (
        applications.router,
        review.router,
        registry.router,
        tms.router,
        contracts.router,
        fleet.router,
        transactions.router,
        risk_controls.router,
        risk_cases.router,
        risk_merchants.router,
        auth.router,
        public.router,
        contract.router,
        fieldwork.router,
        technician.router,
        fleet_pages.router,
        keys.router,
        transaction_pages.router,
        risk_control_pages.router,
        risk_case_pages.router,
        risk_merchant_pages.router,
        terminal.router,
        admin.router,
    ):
        _summaries_from_docstrings(router.routes)
        app.include_router(router)
    if docs:
        app.include_router(apidocs.router)
    _summaries_from_docstrings(app.routes)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _summaries_from_docstrings(routes: Sequence[BaseRoute]) -> None:
    """Give every API operation the first sentence of its endpoint's docstring as summary.

    Without it Swagger UI lists "Read" and "Approve" (FastAPI title-cases the function
    name); the docstring already says what the route does for whom, and the rest of it
    becomes the operation's description (tests/web/test_apidocs.py holds every route to
    having one).
    """
    for route in routes:
        if isinstance(route, APIRoute) and route.include_in_schema and not route.summary:
            doc = inspect.getdoc(route.endpoint)
            if doc:
                paragraph = " ".join(doc.split("\n\n")[0].split())
                route.summary = paragraph.split(". ")[0].rstrip(".")


def app_from_environment() -> FastAPI:
    """The app built from ``POSHUB_*`` settings alone: the factory each worker process of
    ``poshub web --workers N`` (and the benchmark's server) imports."""
    settings = Settings()
    return create_app(build_state(settings, database=open_database(settings)))
