"""Translations (Babel/gettext): Simplified Chinese by default, English available.

Message ids are English. Catalogues live as ``.po`` files under ``poshub/locale`` and are
compiled in memory when first used, so there is no build step and no binary file in
the repository.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from babel import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
SUPPORTED_LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """Compiled translations for ``locale``; English is the identity."""
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if locale == "en" or not po_path.exists():
        return gettext.NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def normalise_locale(value: str | None) -> str | None:
    """``zh``, ``zh-CN``, ``zh_Hans_CN`` → ``zh_CN``; ``en-US`` → ``en``; else None."""
    if not value:
        return None
    value = value.strip().replace("-", "_")
    lowered = value.lower()
    if lowered.startswith("zh"):
        return "zh_CN"
    if lowered.startswith("en"):
        return "en"
    return None


def negotiate(accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Pick a supported locale from an ``Accept-Language`` header."""
    if not accept_language:
        return default
    preferred: list[tuple[float, str]] = []
    for index, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        preferred.append((-quality + index * 1e-6, tag.strip()))
    tags = [tag.replace("-", "_") for _, tag in sorted(preferred) if tag]
    chosen = negotiate_locale(tags, list(SUPPORTED_LOCALES), sep="_") or next(
        (n for n in (normalise_locale(t) for t in tags) if n), None
    )
    return chosen or default


class Translator:
    """gettext bound to one locale, with ``{placeholder}`` formatting."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in SUPPORTED_LOCALES else DEFAULT_LOCALE
        self._t = translations(self.locale)

    def __call__(
        self, message: str, params: Mapping[str, object] | None = None, /, **kwargs: object
    ) -> str:
        text = self._t.gettext(message)
        values = {**(params or {}), **kwargs}
        if values:
            try:
                return text.format(**values)
            except (KeyError, IndexError, ValueError):
                return text
        return text

    def ngettext(self, singular: str, plural: str, n: int, **kwargs: object) -> str:
        return self._t.ngettext(singular, plural, n).format(n=n, **kwargs)

    @property
    def babel_locale(self) -> Locale:
        return Locale.parse(self.locale)
