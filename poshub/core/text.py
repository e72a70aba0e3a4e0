"""What a text field may contain: the shared base of every request body, and personal names.

Control characters (C0, DEL, C1), Unicode format characters (bidi embeddings, overrides
and isolates U+202A-U+202E and U+2066-U+2069, zero-width characters, the BOM, soft
hyphens: category Cf), lone surrogates and the line/paragraph separators U+2028/U+2029
are refused in every text field: they hide or reorder what a reviewer reads (a bidi
override turns ``exe.txt`` into ``txt.exe``), break exports and logs, and NUL makes
PostgreSQL refuse the whole statement. Fields that legitimately hold several lines
(messages, notes, reasons) may contain line feeds, carriage returns and tabs.

Personal names (a legal representative, a signer) take name characters only: letters of
any script (Chinese, Latin, Uyghur, ...), combining marks, spaces, the middle dot of
minority names (``·``; the look-alike dots people type are stored as U+00B7, the dot
printed on the resident ID), apostrophes, hyphens and full stops.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from poshub.core.errors import N_

CONTROL_ERROR: Final = "text_control_character"
"""Error type (and API ``code``) of a text with a control or invisible format character."""
PERSON_NAME_ERROR: Final = "person_name"
"""Error type of a personal name with a character no name has."""

CONTROL_MESSAGE: Final = N_("Must not contain control characters or invisible formatting marks.")
PERSON_NAME_MESSAGE: Final = N_(
    "A name may contain only letters, spaces, the middle dot ·, apostrophes and hyphens."
)

MULTILINE_ALLOWED: Final = frozenset("\n\r\t")
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

MULTILINE_FIELD_NAMES: Final = frozenset(
    {"message", "body", "note", "notes", "reason", "summary", "comment", "description"}
)
"""Fields of these names may span several lines, in every request body (see
:class:`PlainTextInput`); everything else is one line."""

MIDDLE_DOT: Final = "\u00b7"
_MIDDLE_DOT_LOOKALIKES: Final = {"\u30fb": MIDDLE_DOT, "\uff65": MIDDLE_DOT, "\u2027": MIDDLE_DOT}
_NAME_PUNCTUATION: Final = frozenset({MIDDLE_DOT, " ", "'", "\u2019", "-", "."})


def refused_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character a text field may not hold, or None when the text is clean."""
    for char in value:
        if char.isprintable():
            continue  # the fast path: letters, digits, punctuation, the space
        if multiline and char in MULTILINE_ALLOWED:
            continue
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def has_nul(value: str) -> bool:
    return "\x00" in value


def _check(value: Any, multiline: bool) -> None:
    if isinstance(value, str):
        if refused_character(value, multiline=multiline) is not None:
            raise PydanticCustomError(CONTROL_ERROR, CONTROL_MESSAGE)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check(key, False)
            _check(item, multiline)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check(item, multiline)


class PlainTextInput(BaseModel):
    """Base of request bodies: every string in them, however nested in lists and dicts,
    is held to :func:`refused_character` (a 422 naming the field). Nested models check
    their own fields. A class may widen ``multiline_fields``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    multiline_fields: ClassVar[frozenset[str]] = MULTILINE_FIELD_NAMES

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, value: Any, info: ValidationInfo) -> Any:
        _check(value, info.field_name in cls.multiline_fields)
        return value


def person_name(value: str) -> str:
    """A personal name, with the middle dot's look-alikes made U+00B7; refuses digits,
    symbols and anything but letters, marks and name punctuation."""
    value = "".join(_MIDDLE_DOT_LOOKALIKES.get(c, c) for c in value)
    letters = 0
    for char in value:
        category = unicodedata.category(char)
        if category[0] == "L":
            letters += 1
        elif category[0] != "M" and char not in _NAME_PUNCTUATION:
            raise PydanticCustomError(PERSON_NAME_ERROR, PERSON_NAME_MESSAGE)
    if letters == 0:
        raise PydanticCustomError(PERSON_NAME_ERROR, PERSON_NAME_MESSAGE)
    return value


PersonName = Annotated[str, AfterValidator(person_name)]
"""A personal name field (combine with a ``Field`` for its length)."""


def nul_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterable[tuple[str | int, ...]]:
    """Where in a parsed JSON document a string (or key) holds NUL."""
    if isinstance(value, str):
        if has_nul(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and has_nul(key):
                yield (*path, key)
            else:
                yield from nul_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nul_paths(item, (*path, index))
