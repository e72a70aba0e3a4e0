"""Merchant category names in the reader's language: "5411 大型仓储式超市/超市".

Staff and applicants read categories, not ISO 18245 digits. English names come from
the ``iso18245`` package (:func:`poshub.onboarding.rules.mcc_info`); the Simplified
Chinese ones are data (``data/mcc_zh.json``), one per assignable code, in the terms of
UnionPay's 商户类别码 list where it has one and a faithful translation otherwise.
They are data rather than gettext message ids: a code is not a sentence to translate,
and the list is checked against the assignable codes by a test.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping
from importlib import resources
from types import MappingProxyType

from poshub.core.i18n import normalise_locale
from poshub.onboarding.rules import mcc_info


@functools.cache
def chinese_names() -> Mapping[str, str]:
    """Code → Simplified Chinese name, read once from the package, read-only."""
    text = resources.files("poshub.onboarding").joinpath("data/mcc_zh.json").read_text("utf-8")
    names: dict[str, str] = json.loads(text)
    return MappingProxyType(names)


def mcc_name(code: str, locale: str | None) -> str | None:
    """The category's name in ``locale`` (Chinese unless English); None if not assignable."""
    info = mcc_info(code)
    if info is None:
        return None
    if normalise_locale(locale) == "en":
        return info.description
    return chinese_names().get(code) or info.description


def mcc_label(code: str | None, locale: str | None) -> str:
    """``5411 大型仓储式超市/超市`` or ``5411 Groceries and supermarkets``; an unknown code alone."""
    if not code:
        return ""
    name = mcc_name(code, locale)
    return f"{code} {name}" if name else code


@functools.cache
def assignable_codes() -> tuple[str, ...]:
    """Every code a merchant can be given (the ISO 18245 codes outside the reserved ranges)."""
    return tuple(code for code in (f"{i:04d}" for i in range(10_000)) if mcc_info(code))


def mcc_choices(locale: str | None, excluded: Collection[str] = ()) -> list[tuple[str, str]]:
    """(code, label) for each assignable code not in ``excluded`` (e.g. the prohibited ones)."""
    return [(code, mcc_label(code, locale)) for code in assignable_codes() if code not in excluded]
