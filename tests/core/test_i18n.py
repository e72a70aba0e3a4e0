"""Translations: the zh_CN catalogue covers every marked string, and the translator works.

The completeness test runs the same extraction as ``make messages`` (babel.cfg, keywords
``N_``, ``_`` and ``t``) over the source tree, so a new user-visible string fails here until
``make messages`` has been run and the string translated in
``poshub/locale/zh_CN/LC_MESSAGES/messages.po``.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from poshub.core.i18n import DEFAULT_LOCALE, LOCALE_DIR, Translator, negotiate

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "poshub"
TEMPLATES = PACKAGE / "web" / "templates"
PO_FILE = LOCALE_DIR / DEFAULT_LOCALE / "LC_MESSAGES" / "messages.po"

# The same keywords as the `messages` target in the Makefile (`-k N_ -k _ -k t`).
EXTRA_KEYWORDS = ("N_", "_", "t")
KEYWORDS = {**DEFAULT_KEYWORDS, **dict.fromkeys(EXTRA_KEYWORDS)}

# Calls whose first argument must be a literal for extraction to see it.
MARKERS = {"N_", "_", "t"}


@cache
def extracted() -> dict[str, list[str]]:
    """Every msgid the Makefile's extraction finds, with where it occurs."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")  # type: ignore[no-untyped-call]
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


@cache
def catalog() -> Catalog:
    with PO_FILE.open("rb") as handle:
        return read_po(handle, locale=DEFAULT_LOCALE)


def placeholders(text: str) -> set[str]:
    """The ``{names}`` that ``str.format`` fills in ``text``."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def strings(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    """A message's msgid or msgstr as a list (one item, or one per plural form)."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def translations() -> Iterator[tuple[str, str]]:
    """(msgid, msgstr) for every translation in the catalogue, plural forms included."""
    for message in catalog():
        if message.id:
            msgid = strings(message.id)[0]
            for text in strings(message.string):
                yield msgid, text


def test_extraction_finds_the_known_kinds_of_call() -> None:
    found = extracted()
    # N_ in Python data, a template call with keyword arguments, a string inside a macro
    # call and one in a `{% for ... in [(..., _("..."))] %}` list.
    for msgid in (
        "Approved",
        "decision expected by {date}",
        "Chain broken at row {seq}: {reason}",
        "Name (as on the resident ID)",
        "Individual business (with licence)",
        "Some fields are not valid.",
    ):
        assert msgid in found, msgid


def test_extraction_sees_every_literal_template_call() -> None:
    """A cross-check on the Jinja extractor: each literal ``_("...")`` in a template."""
    call = re.compile(r"""\b_\(\s*(?:"([^"\\]*)"|'([^'\\]*)')""")
    found = extracted()
    missed = sorted(
        f"{path.relative_to(ROOT)}: {literal}"
        for path in TEMPLATES.rglob("*.html")
        for match in call.finditer(path.read_text(encoding="utf-8"))
        if (literal := match.group(1) if match.group(1) is not None else match.group(2))
        not in found
    )
    assert not missed, "not extracted from templates:\n" + "\n".join(missed)


def test_markers_are_called_with_literal_strings() -> None:
    """``N_(name)`` or ``t(f"...")`` cannot be extracted; mark the literal instead."""
    problems = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id not in MARKERS or not node.args:
                continue
            first = node.args[0]
            literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
            if isinstance(first, ast.JoinedStr) or (node.func.id == "N_" and not literal):
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not problems, "not extractable:\n" + "\n".join(problems)


def test_every_extracted_msgid_is_translated_into_chinese() -> None:
    messages = catalog()
    missing = []
    for msgid, where in sorted(extracted().items()):
        message = messages.get(msgid)
        if message is None or message.fuzzy or not all(strings(message.string) or [""]):
            missing.append(f"{msgid!r} ({where[0]})")
    assert not missing, (
        f"{len(missing)} msgid(s) without a zh_CN translation in {PO_FILE.relative_to(ROOT)} "
        "(run `make messages`, then translate):\n" + "\n".join(missing)
    )


def test_catalogue_header() -> None:
    messages = catalog()
    assert str(messages.locale_identifier) in ("zh_CN", "zh_Hans_CN")
    assert "Language: zh_CN" in PO_FILE.read_text(encoding="utf-8")
    assert messages.charset.lower() == "utf-8"
    assert messages.num_plurals == 1
    assert messages.plural_expr == "0"
    assert not messages.fuzzy


def test_translations_keep_the_placeholders() -> None:
    wrong = []
    for msgid, text in translations():
        if not text:
            continue
        try:
            if placeholders(text) != placeholders(msgid):
                wrong.append(f"{msgid!r} -> {text!r}")
        except ValueError as error:  # unbalanced braces: str.format would fail
            wrong.append(f"{msgid!r} -> {text!r} ({error})")
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


def test_chinese_translator() -> None:
    t = Translator("zh_CN")
    assert t.locale == "zh_CN"
    assert t("Approved") == "已通过"
    assert t("Unified social credit code") == "统一社会信用代码"
    assert t("Not a msgid at all") == "Not a msgid at all"


def test_english_translator_is_the_identity() -> None:
    t = Translator("en")
    assert t.locale == "en"
    assert t("Approved") == "Approved"
    assert t("Unified social credit code") == "Unified social credit code"


def test_translator_formats_params() -> None:
    zh = Translator("zh_CN")
    en = Translator("en")
    assert zh("Please upload: {label}.", label=zh("Business licence")) == "请上传：营业执照。"
    assert zh("Must be at least {ge}.", {"ge": 1}) == "不能小于1。"
    assert en("Must be at least {ge}.", {"ge": 1}) == "Must be at least 1."
    assert (
        en("{n} working days elapsed", {"n": 2}, n=3) == "3 working days elapsed"
    )  # keyword arguments win over the mapping


def test_unknown_locale_falls_back_to_chinese() -> None:
    t = Translator("fr")
    assert t.locale == DEFAULT_LOCALE == "zh_CN"
    assert t("Approved") == "已通过"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9", "en"),
        ("en", "en"),
        ("zh-CN", "zh_CN"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("en;q=0.5,zh-CN", "zh_CN"),
        ("fr-FR,fr;q=0.9", "zh_CN"),
        ("de", "zh_CN"),
        ("", "zh_CN"),
        (None, "zh_CN"),
    ],
)
def test_negotiate(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_makefile_uses_the_same_keywords() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = makefile.split("\nmessages:", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"-k\s+(\S+)", target)) == set(EXTRA_KEYWORDS)
