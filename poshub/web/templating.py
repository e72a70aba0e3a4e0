"""Server-rendered pages: Jinja2 with the request's translator, CSRF token and user."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from poshub.core.clock import local_time
from poshub.core.money import format_fen
from poshub.core.regions import display_name as region_name
from poshub.onboarding.mcc_names import mcc_choices, mcc_label
from poshub.web import roles as route_roles
from poshub.web.deps import app_state, request_locale, request_translator
from poshub.web.labels import TEMPLATE_GLOBALS
from poshub.web.security import CSRF_COOKIE, csrf_token_for, new_csrf_cookie

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
STATIC_VERSION = "4"
"""Bump when a file under static/ changes, so browsers fetch the new one."""


def _format_datetime(value: dt.datetime | None) -> str:
    return local_time(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _region(code: str | None) -> str:
    """合肥市蜀山区 for 340104: staff read places, not GB/T 2260 digits."""
    if not code:
        return ""
    return region_name(code) or code


@pass_context
def _mcc(context: Context, code: str | None) -> str:
    """5411 大型仓储式超市/超市 (or the English name on English pages), not bare digits."""
    return mcc_label(code, context.get("locale"))


@pass_context
def _mcc_choices(context: Context) -> list[tuple[str, str]]:
    """The categories an applicant may pick, named in the page's language (apply form)."""
    request = context.get("request")
    prohibited = app_state(request).settings.prohibited_mccs if request is not None else {}
    return mcc_choices(context.get("locale"), prohibited)


templates.env.filters["fen"] = format_fen
templates.env.filters["local"] = _format_datetime
templates.env.filters["region"] = _region
templates.env.filters["mcc"] = _mcc
templates.env.globals["mcc_choices"] = _mcc_choices
templates.env.globals.update(TEMPLATE_GLOBALS)
# The role sets the routes declare, so that a menu entry or a button shows only to whom
# the route behind it admits (base.html): the page and the route read the same tuple.
templates.env.globals.update(
    {name: value for name, value in vars(route_roles).items() if name.isupper()}
)


def csrf_token(request: Request) -> str:
    """The token for this browser, creating its CSRF cookie value on first use."""
    cookie = getattr(request.state, "csrf_cookie", None) or request.cookies.get(CSRF_COOKIE)
    if not cookie:
        cookie = new_csrf_cookie()
        request.state.csrf_cookie = cookie
        request.state.csrf_cookie_is_new = True
    return csrf_token_for(app_state(request).vault.csrf_key, cookie)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    t = request_translator(request)
    ctx: dict[str, Any] = {
        "_": t,
        "locale": request_locale(request),
        "csrf_token": csrf_token(request),
        "principal": getattr(request.state, "principal", None),
        "path": request.url.path,
        "static_version": STATIC_VERSION,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    if getattr(request.state, "csrf_cookie_is_new", False):
        response.set_cookie(
            CSRF_COOKIE,
            request.state.csrf_cookie,
            httponly=True,
            secure=app_state(request).settings.cookie_secure,
            samesite="lax",
            path="/",
        )
    response.headers["Cache-Control"] = "no-store"
    return response


def render_error_page(
    request: Request, status_code: int, message: str, detail: list[dict[str, Any]] | None
) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"status_code": status_code, "message": message, "detail": detail or []},
        status_code,
    )
