"""One check for every state machine in PosHub: a move not in the table is a 409 that
names the allowed next states, so the caller learns what to do instead."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from poshub.core.errors import Conflict

S = TypeVar("S", bound=StrEnum)


def ensure_transition(
    table: Mapping[S, frozenset[S]], current: S, target: S, *, message: str, code: str
) -> S:
    """Return ``target`` if ``table`` allows ``current → target``; else raise ``Conflict``
    with ``message`` (a message id with ``{current}``, ``{target}`` and ``{allowed}``)."""
    if target not in table[current]:
        raise Conflict(
            message,
            code=code,
            current=str(current),
            target=str(target),
            allowed=", ".join(sorted(table[current])) or "none",
        )
    return target
