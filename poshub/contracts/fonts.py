"""CJK fonts for contract PDFs: discovery, and small per-document TrueType subsets.

Where the font comes from, first found wins: ``POSHUB_CJK_FONT``; Debian's
``fonts-noto-cjk``; the ``noto-cjk-sans-otc`` package from PyPI (a pinned dependency, so a
fresh ``pip install`` can render contracts; it ships the regular weight only, which then
sets the bold text too). Noto Sans/Serif CJK come as OpenType *collections* (one face per
language: the Simplified Chinese one is picked) with CFF (PostScript) outlines.

fpdf2 can embed such a face directly, but it then writes the font with a custom encoding
CMap that common text extractors (pypdf among them) cannot decode once a document uses
more than 255 distinct glyphs, which every Chinese contract does. So, for each document, this module builds a small TrueType font holding only the
characters that document uses (CFF curves converted to quadratic TrueType curves within
one font unit), which fpdf2 embeds as a plain ``Identity-H`` CID font: it renders the same
and its text can be searched, copied and extracted.

Everything here is deterministic: the same characters from the same font file give the
same bytes, whatever the process, thread or hash seed.

Caching (per process, thread-safe): the opened source face, each converted glyph outline
and the last few subset fonts. Opening a face costs ~0.15 s and converting a glyph ~0.5 ms
(~1 s for the first Chinese contract of a process, both weights); later contracts only
convert the characters they add.
"""

from __future__ import annotations

import importlib.resources
import io
import logging
import os
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.recordingPen import DecomposingRecordingPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont

# fontTools reports every subsetting step at INFO ("name pruned", …): noise in a server log.
logging.getLogger("fontTools").setLevel(logging.WARNING)

FONT_ENV_VAR = "POSHUB_CJK_FONT"
"""Path of a regular-weight CJK font (``.ttc``, ``.otf`` or ``.ttf``) to use instead of the
installed ones. A bold face is looked up next to it (``Regular`` → ``Bold`` in the name)."""

DEBIAN_PACKAGE = "fonts-noto-cjk"
PYPI_PACKAGE = "noto-cjk-sans-otc"
PYPI_FONT_MODULE = "noto_cjk_sans_otc"
PYPI_FONT_FILE = "NotoSansCJK-Regular.ttc"
"""The Noto Sans CJK collection (regular weight only) shipped by the pinned PyPI package, so
that contract PDFs render on a machine without a system CJK font."""

DEBIAN_FONT_CANDIDATES: tuple[tuple[Path, Path], ...] = (
    (
        Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
        Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
    ),
    (
        Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),
        Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc"),
    ),
    (
        Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"),
        Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Bold.ttc"),
    ),
)
"""(regular, bold) pairs, best first, where Debian and Ubuntu install ``fonts-noto-cjk``."""

_MAX_ERROR_UNITS = 1.0
"""Largest distance, in font units (1/1000 em), between a CFF curve and its TrueType copy."""
_GLYPH_CACHE_LIMIT = 30_000
_SUBSET_CACHE_LIMIT = 16
_FIXED_TIMESTAMP = 3_029_529_600
"""``head.created``/``modified`` of every subset (2000-01-01, in seconds since 1904): fixed,
so the bytes never vary."""


class ContractFontMissing(RuntimeError):
    """No CJK font to render contract PDFs with."""


class ContractGlyphMissing(ContractFontMissing):
    """The font lacks a character of the contract (a rare 生僻字 in a name, an emoji):
    refused rather than printed as a blank, which would change a party's name."""


@dataclass(frozen=True, slots=True)
class FontFace:
    """One face of a font file (``index`` selects the face inside a ``.ttc`` collection)."""

    path: Path
    index: int = 0


@dataclass(frozen=True, slots=True)
class CjkFonts:
    regular: FontFace
    bold: FontFace


def discover_cjk_fonts() -> CjkFonts:
    """The fonts to typeset contracts with: ``$POSHUB_CJK_FONT`` if set, else Debian's
    ``fonts-noto-cjk`` (regular and bold), else the regular face from the ``noto-cjk-sans-otc``
    Python package (which then sets the bold text too).

    An explicit ``POSHUB_CJK_FONT`` that does not exist is an error, never a silent fall
    back to another font (which would change every PDF's bytes).
    """
    configured = os.environ.get(FONT_ENV_VAR, "").strip()
    if configured:
        regular_path = Path(configured)
        if not regular_path.is_file():
            raise ContractFontMissing(
                f"{FONT_ENV_VAR} points at {configured!r}, which is not a font file; "
                f"set it to a CJK font or unset it to use the installed Noto Sans CJK "
                f"(the Debian package {DEBIAN_PACKAGE} or the Python package {PYPI_PACKAGE})"
            )
        bold_path = _bold_sibling(regular_path)
        return CjkFonts(_face(regular_path), _face(bold_path or regular_path))
    for regular_path, bold_path in DEBIAN_FONT_CANDIDATES:
        if regular_path.is_file():
            bold = bold_path if bold_path.is_file() else regular_path
            return CjkFonts(_face(regular_path), _face(bold))
    packaged = packaged_font()
    if packaged is not None:
        face = _face(packaged)
        return CjkFonts(face, face)
    searched = ", ".join(str(regular) for regular, _ in DEBIAN_FONT_CANDIDATES)
    raise ContractFontMissing(
        f"no CJK font found for contract PDFs (looked for {searched} and the Python package "
        f"{PYPI_PACKAGE}); reinstall the pinned dependencies (pip install -r "
        f"requirements.lock), install the Debian package {DEBIAN_PACKAGE} (apt-get install "
        f"{DEBIAN_PACKAGE}) or set {FONT_ENV_VAR} to a CJK font file"
    )


def packaged_font() -> Path | None:
    """The font file of the ``noto-cjk-sans-otc`` package, if it is installed as files."""
    try:
        package = importlib.resources.files(PYPI_FONT_MODULE)
    except ModuleNotFoundError:
        return None
    # An installed wheel is a directory; anything else (a zip import) has no path to
    # hand fontTools, and counts as missing.
    path = Path(str(package / PYPI_FONT_FILE))
    return path if path.is_file() else None


def _bold_sibling(regular: Path) -> Path | None:
    if "Regular" not in regular.name:
        return None
    candidate = regular.with_name(regular.name.replace("Regular", "Bold"))
    return candidate if candidate.is_file() else None


def _face(path: Path) -> FontFace:
    return FontFace(path, _simplified_chinese_index(path, *_file_identity(path)))


def _file_identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@cache
def _simplified_chinese_index(path: Path, _mtime_ns: int, _size: int) -> int:
    """The face of a collection to use: Simplified Chinese (``… SC``, not monospaced) if
    there is one, else the first face that has 协议, else the first face."""
    if path.suffix.lower() not in (".ttc", ".otc"):
        return 0
    collection = TTCollection(str(path), lazy=True)
    try:
        covering: int | None = None
        for index, face in enumerate(collection.fonts):
            family = str(face["name"].getDebugName(1) or "")
            words = family.replace("-", " ").split()
            if "SC" in words and "Mono" not in words:
                return index
            if covering is None and {0x534F, 0x8BAE} <= set(face.getBestCmap() or {}):
                covering = index
        return covering or 0
    finally:
        collection.close()


@dataclass(frozen=True, slots=True)
class _Glyph:
    name: str
    advance: int
    outline: tuple[tuple[str, tuple[Any, ...]], ...]
    """Quadratic outline as recorded pen operations, replayed into each subset."""


class _SourceFont:
    """One opened face and its converted glyphs. fontTools loads tables lazily and is not
    thread-safe, so every access goes through ``lock``."""

    def __init__(self, face: FontFace) -> None:
        self.lock = threading.Lock()
        self.font = TTFont(str(face.path), fontNumber=face.index, lazy=True, recalcTimestamp=False)
        self.cmap: dict[int, str] = dict(self.font.getBestCmap() or {})
        self.glyph_set = self.font.getGlyphSet()
        self.hmtx = self.font["hmtx"]
        self.units_per_em = int(self.font["head"].unitsPerEm)
        hhea, os2, post = self.font["hhea"], self.font["OS/2"], self.font["post"]
        self.hhea = {"ascent": hhea.ascent, "descent": hhea.descent, "lineGap": hhea.lineGap}
        self.os2 = {
            name: getattr(os2, name)
            for name in (
                "usWeightClass",
                "usWidthClass",
                "fsType",
                "sTypoAscender",
                "sTypoDescender",
                "sTypoLineGap",
                "usWinAscent",
                "usWinDescent",
                "sxHeight",
                "sCapHeight",
                "yStrikeoutSize",
                "yStrikeoutPosition",
                "ySubscriptXSize",
                "ySubscriptYSize",
                "ySubscriptYOffset",
                "ySuperscriptXSize",
                "ySuperscriptYSize",
                "ySuperscriptYOffset",
            )
            if hasattr(os2, name)
        }
        self.post = {
            "underlinePosition": post.underlinePosition,
            "underlineThickness": post.underlineThickness,
        }
        names = self.font["name"]
        self.names = {
            key: str(names.getDebugName(name_id))
            for key, name_id in (
                ("copyright", 0),
                ("familyName", 1),
                ("styleName", 2),
                ("psName", 6),
                ("licenseDescription", 13),
                ("licenseInfoURL", 14),
            )
            if names.getDebugName(name_id)
        }
        self.glyphs: dict[str, _Glyph] = {}
        self.subsets: OrderedDict[str, bytes] = OrderedDict()

    def glyph(self, name: str) -> _Glyph:
        found = self.glyphs.get(name)
        if found is not None:
            return found
        # Decomposing: a TrueType source may build glyphs from components; the subset does not.
        pen = DecomposingRecordingPen(self.glyph_set)
        self.glyph_set[name].draw(Cu2QuPen(pen, _MAX_ERROR_UNITS, reverse_direction=self._is_cff()))
        glyph = _Glyph(
            name=name,
            advance=int(self.hmtx[name][0]),
            outline=tuple((op, tuple(args)) for op, args in pen.value),
        )
        if len(self.glyphs) < _GLYPH_CACHE_LIMIT:
            self.glyphs[name] = glyph
        return glyph

    def _is_cff(self) -> bool:
        return "CFF " in self.font or "CFF2" in self.font


@cache
def _source(face: FontFace, _mtime_ns: int, _size: int) -> _SourceFont:
    return _SourceFont(face)


def uncovered(face: FontFace, characters: str) -> list[str]:
    """The visible characters of ``characters`` that ``face`` has no glyph for, sorted."""
    source = _source(face, *_file_identity(face.path))
    return sorted(
        {
            c
            for c in characters
            if ord(c) not in source.cmap and unicodedata.category(c) not in ("Cc", "Cf")
        }
    )


def truetype_subset(face: FontFace, characters: str) -> bytes:
    """A TrueType font with the glyphs ``face`` has for ``characters`` (plus ``.notdef``
    and the space), with the face's names, vertical metrics and weight."""
    source = _source(face, *_file_identity(face.path))
    codepoints = sorted({ord(c) for c in characters} | {0x20})
    key = "".join(map(chr, codepoints))
    with source.lock:
        cached = source.subsets.get(key)
        if cached is not None:
            source.subsets.move_to_end(key)
            return cached
        data = _build(source, codepoints)
        source.subsets[key] = data
        while len(source.subsets) > _SUBSET_CACHE_LIMIT:
            source.subsets.popitem(last=False)
        return data


def _build(source: _SourceFont, codepoints: list[int]) -> bytes:
    cmap = {cp: source.cmap[cp] for cp in codepoints if cp in source.cmap}
    # Source glyph order, so the subset does not depend on the order characters came in.
    names = [".notdef", *sorted(set(cmap.values()) - {".notdef"}, key=source.font.getGlyphID)]
    glyphs = {name: source.glyph(name) for name in names}

    builder = FontBuilder(source.units_per_em, isTTF=True)
    builder.font.recalcTimestamp = False
    builder.setupHead(
        unitsPerEm=source.units_per_em, created=_FIXED_TIMESTAMP, modified=_FIXED_TIMESTAMP
    )
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap(cmap)
    tt_glyphs = {}
    for name, glyph in glyphs.items():
        pen = TTGlyphPen(None)
        for op, args in glyph.outline:
            getattr(pen, op)(*args)
        tt_glyphs[name] = pen.glyph()
    builder.setupGlyf(tt_glyphs)
    glyf = builder.font["glyf"]
    metrics = {}
    for name, glyph in glyphs.items():
        tt_glyph = glyf[name]
        metrics[name] = (glyph.advance, getattr(tt_glyph, "xMin", 0))
    builder.setupHorizontalMetrics(metrics)
    builder.setupHorizontalHeader(**source.hhea)
    family = source.names.get("familyName", "CJK")
    style = source.names.get("styleName", "Regular")
    builder.setupNameTable(
        {
            **source.names,
            "familyName": family,
            "styleName": style,
            "fullName": f"{family} {style}",
            "psName": source.names.get("psName", f"{family}-{style}".replace(" ", "")),
            "uniqueFontIdentifier": f"{family} {style} subset",
        },
        mac=False,
    )
    builder.setupOS2(**source.os2)
    builder.setupPost(keepGlyphNames=True, **source.post)
    out = io.BytesIO()
    builder.save(out)
    return out.getvalue()
