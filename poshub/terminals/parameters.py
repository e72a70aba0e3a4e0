"""Terminal parameters served by the TMS (R8, R17), as a pure function of what the host
knows about the terminal. Operations may override the editable ones; every change is a
new version (``TmsParameterSet``)."""

from __future__ import annotations

from typing import Any, Final

from poshub.core import limits
from poshub.core.errors import N_, FieldError

TRANSACTION_TYPES: Final = (
    "sale",
    "void",
    "refund",
    "preauth",
    "preauth_completion",
    "balance_inquiry",
    "qr_sale",
)
"""What a terminal may be allowed to do; the gateway refuses the ones not enabled."""

DEFAULT_ENABLED: Final = ("sale", "void", "refund", "balance_inquiry", "qr_sale")

EDITABLE: Final = frozenset(
    {
        "receipt_name_zh",
        "receipt_name_en",
        "receipt_footer",
        "connect_timeout_seconds",
        "response_timeout_seconds",
        "enabled_transactions",
        "single_transaction_limit_fen",
    }
)
"""Keys operations may change; MID, TID and the host come from the host's own records."""


def build(
    *,
    mid: str,
    tid: str,
    receipt_name_zh: str,
    receipt_name_en: str,
    host: str,
    port: int,
) -> dict[str, Any]:
    """The first parameter set of a newly allocated terminal."""
    return {
        "mid": mid,
        "tid": tid,
        "receipt_name_zh": receipt_name_zh,
        "receipt_name_en": receipt_name_en,
        "host": host,
        "port": port,
        "currency": "156",
        "connect_timeout_seconds": 30,
        "response_timeout_seconds": limits.TMS_TIMEOUT_SECONDS_DEFAULT,
        "enabled_transactions": list(DEFAULT_ENABLED),
        "single_transaction_limit_fen": limits.TMS_SINGLE_TRANSACTION_LIMIT_FEN_DEFAULT,
        "receipt_footer": "",
    }


def apply_changes(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``current`` with ``changes`` applied, or ValidationFailed-ready field errors.

    Raises ``ParameterErrors`` naming every offending key.
    """
    errors: list[FieldError] = []
    merged = dict(current)
    for key, value in changes.items():
        field = f"params.{key}"
        if key not in EDITABLE:
            errors.append(
                FieldError(
                    field, "params.not_editable", N_("This parameter cannot be changed here.")
                )
            )
            continue
        problem = _check(key, value)
        if problem is not None:
            errors.append(FieldError(field, problem[0], problem[1]))
            continue
        merged[key] = value
    if errors:
        raise ParameterErrors(errors)
    return merged


class ParameterErrors(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("invalid terminal parameters")
        self.errors = errors


def _check(key: str, value: Any) -> tuple[str, str] | None:
    if key in ("receipt_name_zh", "receipt_name_en"):
        if not isinstance(value, str) or not 1 <= len(value.strip()) <= 40:
            return "params.receipt_name", N_("A receipt name has 1 to 40 characters.")
    elif key == "receipt_footer":
        if not isinstance(value, str) or len(value) > limits.TMS_RECEIPT_FOOTER_LENGTH_MAX:
            return "params.receipt_footer", N_("The receipt footer is too long.")
    elif key in ("connect_timeout_seconds", "response_timeout_seconds"):
        if isinstance(value, bool) or not isinstance(value, int) or not 5 <= value <= 180:
            return "params.timeout", N_("A timeout is a whole number of seconds from 5 to 180.")
    elif key == "enabled_transactions":
        if (
            not isinstance(value, list)
            or not value
            or any(v not in TRANSACTION_TYPES for v in value)
            or len(set(value)) != len(value)
        ):
            return "params.enabled_transactions", N_(
                "Enabled transactions must be a non-empty list of known transaction types."
            )
    elif key == "single_transaction_limit_fen" and (
        isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 10**10
    ):
        return "params.limit", N_("The transaction limit is in fen, from 100 to 10000000000.")
    return None
