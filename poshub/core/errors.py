"""Domain errors. Each carries an HTTP status, a stable code and a message template.

Templates are English msgids marked with ``N_`` and translated at the edge (web, CLI)
in the caller's language; ``params`` fill their ``{placeholders}``. Messages never
contain secrets (full ID numbers, account numbers, tokens, keys).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Mark a string for translation without translating it here."""
    return message


@dataclass(frozen=True)
class FieldError:
    """One invalid input field: dotted ``field`` path, stable ``code``, message template."""

    field: str
    code: str
    message: str
    params: dict[str, str] = dataclasses.field(default_factory=dict)


class PosHubError(Exception):
    status_code = 400
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, **params: str) -> None:
        super().__init__(message)
        self.message = message
        self.params = params
        if code is not None:
            self.code = code


class NotFound(PosHubError):
    status_code = 404
    code = "not_found"


class Conflict(PosHubError):
    """The request is valid but the resource's state does not allow it (409)."""

    status_code = 409
    code = "conflict"


class Forbidden(PosHubError):
    status_code = 403
    code = "forbidden"


class Unauthorized(PosHubError):
    status_code = 401
    code = "unauthorized"


class ValidationFailed(PosHubError):
    """Input that fails a rule (422), naming every offending field."""

    status_code = 422
    code = "validation_failed"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(N_("Some fields are not valid."))
        self.errors = errors


class TooLarge(PosHubError):
    status_code = 413
    code = "too_large"


class TooManyRequests(PosHubError):
    """A named rate limit (poshub/core/limits.py) is reached (429). The message names what
    was limited; ``retry_after_seconds`` becomes the ``Retry-After`` header."""

    status_code = 429
    code = "rate_limited"

    def __init__(
        self, message: str, *, code: str, retry_after_seconds: int | None = None, **params: str
    ) -> None:
        super().__init__(message, code=code, **params)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(PosHubError):
    """A service PosHub depends on (e.g. the SMS gateway) did not answer; try again (503)."""

    status_code = 503
    code = "unavailable"
