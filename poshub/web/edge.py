"""Hostile input stopped at the edge, before any route sees it.

* :class:`BodyLimit` (ASGI middleware) bounds every request body: a declared
  ``Content-Length`` above the limit is answered 413 before a byte is read, and a body
  that streams more (chunked, or lying about its length) is cut off at the limit. JSON
  and form bodies get :data:`~poshub.core.limits.REQUEST_BODY_BYTES_MAX`; multipart
  uploads the larger :data:`~poshub.core.limits.UPLOAD_BODY_BYTES_MAX` (each route still
  holds each file to its own limit).
* :func:`refuse_nul` (a dependency of every route) answers NUL in the path with 404 and
  NUL in a query parameter, form field or JSON string with 422 naming it: PostgreSQL
  refuses NUL in text, which used to end in a 500. Other control characters are refused
  per field by the request models (:mod:`poshub.core.text`).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from poshub.core import limits
from poshub.core.errors import N_, PosHubError, TooLarge
from poshub.core.text import CONTROL_ERROR, CONTROL_MESSAGE, has_nul, nul_paths

TOO_LARGE_MESSAGE = N_("The request is too large: at most {limit_kb} KB.")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit. An HTTPException so
    that FastAPI's body reading lets it through; the app answers it as :class:`TooLarge`."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail="too large")
        self.limit = limit


def too_large(limit: int) -> TooLarge:
    return TooLarge(TOO_LARGE_MESSAGE, limit_kb=str(limit // 1024))


def body_limit_for(headers: Headers) -> int:
    content_type = headers.get("content-type", "").lower()
    if content_type.startswith("multipart/"):
        return limits.UPLOAD_BODY_BYTES_MAX
    return limits.REQUEST_BODY_BYTES_MAX


class BodyLimit:
    """See the module docstring. Plain ASGI, so it adds nothing but a counter per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = body_limit_for(headers)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _answer(scope, receive, send, too_large(limit))
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted_receive, send)


async def _answer(scope: Scope, receive: Receive, send: Send, error: PosHubError) -> None:
    """Answer as the app answers a domain error (JSON for the API, the error page else)."""
    request = Request(scope, receive)
    handler = request.app.exception_handlers[PosHubError]
    response = await handler(request, error)
    await response(scope, receive, send)


async def body_too_large(request: Request, exc: Exception) -> Any:
    """Exception handler for :class:`BodyTooLarge`: the domain 413 answer."""
    assert isinstance(exc, BodyTooLarge)
    handler = request.app.exception_handlers[PosHubError]
    return await handler(request, too_large(exc.limit))


def _nul_error(loc: tuple[str | int, ...]) -> dict[str, Any]:
    return {"type": CONTROL_ERROR, "loc": loc, "msg": CONTROL_MESSAGE, "input": None}


async def refuse_nul(request: Request) -> None:
    """NUL anywhere in the request's text: 404 in the path, 422 naming the field else."""
    if has_nul(request.scope["path"]):
        raise HTTPException(status_code=404)
    errors = [
        _nul_error(("query", key))
        for key, value in request.query_params.multi_items()
        if has_nul(key) or has_nul(value)
    ]
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        errors += [
            _nul_error(("body", key))
            for key, value in form.multi_items()
            if has_nul(key) or (isinstance(value, str) and has_nul(value))
        ]
    elif "json" in content_type:
        body = await request.body()
        if b"\\u0000" in body:
            try:
                document = await request.json()
            except ValueError:
                document = None  # the route's own parsing answers malformed JSON
            errors += [_nul_error(("body", *path)) for path in nul_paths(document)]
    if errors:
        raise RequestValidationError(errors)
