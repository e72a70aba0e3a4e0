"""Setting the cookies of a browser session."""

from __future__ import annotations

from fastapi import Request, Response

from poshub.core import limits
from poshub.web.deps import app_state
from poshub.web.security import CSRF_COOKIE, SESSION_COOKIE, csrf_token_for, new_csrf_cookie


def open_browser_session(request: Request, response: Response, session_token: str) -> str:
    """Set the session cookie and a fresh CSRF cookie; return the matching CSRF token.

    The CSRF cookie is renewed at login so that a value planted before login is useless.
    """
    state = app_state(request)
    secure = state.settings.cookie_secure
    response.set_cookie(
        SESSION_COOKIE,
        session_token,
        max_age=limits.SESSION_ABSOLUTE_HOURS * 3600,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )
    csrf_cookie = new_csrf_cookie()
    response.set_cookie(
        CSRF_COOKIE, csrf_cookie, httponly=True, secure=secure, samesite="lax", path="/"
    )
    request.state.csrf_cookie = csrf_cookie
    return csrf_token_for(state.vault.csrf_key, csrf_cookie)
