"""Turning errors into responses a person or a program can act on.

API: JSON ``{"error", "message", "detail": [{"loc", "field", "code", "msg"}]}`` in the
request's language. Pages: the error page, or (for a staff page without a session) a
redirect to the login form.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from poshub.core.errors import (
    N_,
    FieldError,
    PosHubError,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from poshub.core.i18n import Translator
from poshub.core.text import (
    CONTROL_ERROR,
    CONTROL_MESSAGE,
    PERSON_NAME_ERROR,
    PERSON_NAME_MESSAGE,
)
from poshub.web.deps import is_api, request_translator

log = logging.getLogger(__name__)

# Pydantic error types → message templates (ctx values fill the placeholders).
PYDANTIC_MESSAGES: dict[str, str] = {
    "missing": N_("This field is required."),
    "string_too_short": N_("Must have at least {min_length} characters."),
    "string_too_long": N_("Must have at most {max_length} characters."),
    "string_type": N_("Must be text."),
    "string_pattern_mismatch": N_("Has the wrong format."),
    "int_parsing": N_("Must be a whole number."),
    "int_type": N_("Must be a whole number."),
    "int_from_float": N_("Must be a whole number."),
    "greater_than_equal": N_("Must be at least {ge}."),
    "less_than_equal": N_("Must be at most {le}."),
    "bool_parsing": N_("Must be true or false."),
    "bool_type": N_("Must be true or false."),
    "date_from_datetime_parsing": N_("Must be a date written as YYYY-MM-DD."),
    "date_parsing": N_("Must be a date written as YYYY-MM-DD."),
    "date_type": N_("Must be a date written as YYYY-MM-DD."),
    "enum": N_("Must be one of: {expected}."),
    "literal_error": N_("Must be one of: {expected}."),
    "extra_forbidden": N_("This field is not expected."),
    "too_short": N_("Must have at least {min_length} entries."),
    "too_long": N_("Must have at most {max_length} entries."),
    "list_type": N_("Must be a list."),
    "model_type": N_("Must be an object."),
    "model_attributes_type": N_("Must be an object."),
    "dict_type": N_("Must be an object."),
    "json_invalid": N_("The request body is not valid JSON."),
    CONTROL_ERROR: CONTROL_MESSAGE,
    PERSON_NAME_ERROR: PERSON_NAME_MESSAGE,
}
GENERIC_INVALID = N_("This value is not valid.")


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "address", "province")`` → ``address.province``; list indexes in brackets."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "form"):
        parts = parts[1:]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "body"


def pydantic_errors(errors: list[dict[str, Any]] | Any, t: Translator) -> list[dict[str, Any]]:
    detail = []
    for error in errors:
        kind = str(error.get("type", ""))
        ctx = {k: str(v) for k, v in (error.get("ctx") or {}).items()}
        template = PYDANTIC_MESSAGES.get(kind, GENERIC_INVALID)
        field = field_path(error.get("loc", ()))
        detail.append(
            {
                "loc": list(error.get("loc", ())),
                "field": field,
                "code": kind,
                "msg": t(template, ctx),
            }
        )
    return detail


_FIELD_PART = re.compile(r"\[(\d+)\]|[^.\[\]]+")


def field_loc(field: str) -> list[str | int]:
    """``terminals[0].model_code`` → ``["body", "terminals", 0, "model_code"]``: the inverse
    of :func:`field_path`, so rule errors have the same ``loc`` shape as pydantic's."""
    return ["body", *(int(m[1]) if m[1] else m[0] for m in _FIELD_PART.finditer(field))]


def field_errors(errors: list[FieldError], t: Translator) -> list[dict[str, Any]]:
    return [
        {
            "loc": field_loc(error.field),
            "field": error.field,
            "code": error.code,
            "msg": t(error.message, {k: t(v) for k, v in error.params.items()}),
        }
        for error in errors
    ]


def refusal(exc: PosHubError | ValidationError, t: Translator) -> tuple[list[str], int]:
    """What a page shows when an action is refused: one translated line per problem, and
    the status code to answer with."""
    if isinstance(exc, ValidationError):
        return [f"{e['field']}: {e['msg']}" for e in pydantic_errors(exc.errors(), t)], 422
    if isinstance(exc, ValidationFailed):
        return [e["msg"] for e in field_errors(exc.errors, t)], exc.status_code
    return [t(exc.message, {k: t(v) for k, v in exc.params.items()})], exc.status_code


def refusal_by_field(
    exc: PosHubError | ValidationError, t: Translator
) -> tuple[dict[str, str], int]:
    """What a page shows beside each field of a refused form: the translated messages by
    field (``form`` for a refusal that names none, such as a 409), and the status code."""
    if isinstance(exc, ValidationError):
        detail = pydantic_errors(exc.errors(), t)
    elif isinstance(exc, ValidationFailed):
        detail = field_errors(exc.errors, t)
    else:
        messages, status_code = refusal(exc, t)
        return {"form": " ".join(messages)}, status_code
    found: dict[str, str] = {}
    for error in detail:
        field = error["field"] if error["field"] != "body" else "form"
        found[field] = f"{found[field]} {error['msg']}" if field in found else error["msg"]
    return found, 422


def _body(code: str, message: str, detail: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    return body


_TRACKING_NUMBER = re.compile(r"AP\d{8}-[0-9A-Z]{6}")


def applicant_login_url(path: str) -> str:
    """The tracking login for the application a ``/apply/track/AP…`` path names."""
    parts = path.split("/")
    number = parts[3].upper() if len(parts) > 3 else ""
    return f"/apply/track?number={number}" if _TRACKING_NUMBER.fullmatch(number) else "/apply/track"


ErrorPage = Callable[[Request, int, str, list[dict[str, Any]] | None], Response]


def install(app: FastAPI, render_error_page: ErrorPage) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        t = request_translator(request)
        detail = pydantic_errors(exc.errors(), t)
        if not is_api(request):
            return render_error_page(request, 422, t("Some fields are not valid."), detail)
        return JSONResponse(
            _body("validation_failed", t("Some fields are not valid."), detail), 422
        )

    @app.exception_handler(PosHubError)
    async def _domain(request: Request, exc: PosHubError) -> Response:
        t = request_translator(request)
        message = t(exc.message, {k: t(v) for k, v in exc.params.items()})
        detail = field_errors(exc.errors, t) if isinstance(exc, ValidationFailed) else None
        if not is_api(request):
            if isinstance(exc, Unauthorized) and request.url.path.startswith("/admin"):
                return RedirectResponse(f"/admin/login?next={request.url.path}", status_code=303)
            if isinstance(exc, Unauthorized) and request.url.path.startswith("/apply/track/"):
                # The SMS link opened where no access code is held: a page to enter it.
                return RedirectResponse(applicant_login_url(request.url.path), status_code=303)
            response = render_error_page(request, exc.status_code, message, detail)
        else:
            response = JSONResponse(_body(exc.code, message, detail), exc.status_code)
        if isinstance(exc, TooManyRequests) and exc.retry_after_seconds:
            response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        t = request_translator(request)
        message = t(N_("Not found.")) if exc.status_code == 404 else str(exc.detail)
        if not is_api(request):
            return render_error_page(request, exc.status_code, message, None)
        return JSONResponse(_body("http_error", message), exc.status_code, headers=exc.headers)
