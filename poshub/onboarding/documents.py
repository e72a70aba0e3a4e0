"""Deciding what an uploaded file is from its bytes (never from its name), and making
it safe to keep and hand out.

Only three kinds are accepted, each recognised by its signature: JPEG, PNG and PDF.
A general-purpose type guesser adds nothing here: we allow-list three signatures and
refuse the rest, naming executables specifically because that is the dangerous case.

:func:`screen` then reads the file for real. Images are decoded and re-encoded with
Pillow, which drops metadata (EXIF, ICC, text chunks) and anything hidden after the
image; bytes after the image's end (a polyglot), a decompression bomb or an image that
does not decode are refused. PDFs are parsed with pypdf and every object reachable
from the trailer or listed in a cross-reference (object streams included, names
already unescaped by the parser) is walked, within named bounds, for scripts, launch,
submit and import actions, additional actions and embedded files; encrypted and
unparseable PDFs are refused.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from PIL import Image, ImageOps
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, PdfObject

from poshub.core import limits
from poshub.core.errors import N_

JPEG = "image/jpeg"
PNG = "image/png"
PDF = "application/pdf"

_ALLOWED_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"%PDF-", PDF),
)
_EXECUTABLE_SIGNATURES: tuple[bytes, ...] = (
    b"MZ",  # Windows PE / DOS
    b"\x7fELF",  # Linux and most Unix
    b"\xfe\xed\xfa\xce",  # Mach-O 32-bit
    b"\xfe\xed\xfa\xcf",  # Mach-O 64-bit
    b"\xcf\xfa\xed\xfe",
    b"\xce\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal / Java class
    b"#!",  # script with an interpreter line
    b"dex\n",  # Android
)
EXTENSIONS: dict[str, str] = {JPEG: ".jpg", PNG: ".png", PDF: ".pdf"}
"""The file-name extension a download gets, from the type detected in its bytes."""

Image.MAX_IMAGE_PIXELS = limits.IMAGE_PIXELS_MAX


@dataclass(frozen=True)
class Rejection:
    code: str
    message: str
    params: dict[str, str]


def sniff(data: bytes) -> str | Rejection:
    """The MIME type of an acceptable document, or why it is refused."""
    if not data:
        return Rejection("file.empty", N_("The file is empty."), {})
    if len(data) > limits.DOCUMENT_SIZE_BYTES_MAX:
        return Rejection(
            "file.too_large",
            N_("The file is larger than {limit_mb} MB."),
            {"limit_mb": str(limits.DOCUMENT_SIZE_BYTES_MAX // (1024 * 1024))},
        )
    for signature in _EXECUTABLE_SIGNATURES:
        if data.startswith(signature):
            return Rejection(
                "file.executable",
                N_("The file is an executable program, not a document. Upload a JPG, PNG or PDF."),
                {},
            )
    for signature, mime in _ALLOWED_SIGNATURES:
        if data.startswith(signature):
            return mime
    return Rejection(
        "file.type",
        N_("Only JPG, PNG and PDF files are accepted (the file's content is none of these)."),
        {},
    )


@dataclass(frozen=True)
class Screened:
    """An accepted upload: its detected type and the bytes to keep (re-encoded images)."""

    content_type: str
    data: bytes


def screen(data: bytes) -> Screened | Rejection:
    """The type and the bytes to store of an acceptable document, or why it is refused."""
    verdict = sniff(data)
    if isinstance(verdict, Rejection):
        return verdict
    if verdict == PDF:
        problem = inspect_pdf(data)
        return problem if problem is not None else Screened(PDF, data)
    return reencode_image(data, verdict)


# --- Images -----------------------------------------------------------------------------

_PIL_FORMATS = {JPEG: "JPEG", PNG: "PNG"}
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
_JPEG_MODES = frozenset({"L", "RGB", "CMYK"})
JPEG_QUALITY = 90

log = logging.getLogger(__name__)


def _image_unreadable() -> Rejection:
    return Rejection(
        "file.image_unreadable",
        N_("The image could not be read; it may be damaged. Save or photograph it again."),
        {},
    )


def _image_too_large() -> Rejection:
    return Rejection(
        "file.image_too_large",
        N_("The image is larger than {limit} megapixels; upload a smaller photo or scan."),
        {"limit": str(limits.IMAGE_PIXELS_MAX // 1_000_000)},
    )


def reencode_image(data: bytes, content_type: str) -> Screened | Rejection:
    """Decode and re-encode a JPEG or PNG; refuse trailing data, bombs and broken images."""
    end = _jpeg_end(data) if content_type == JPEG else _png_end(data)
    if end is None:
        return _image_unreadable()
    if end != len(data):
        return Rejection(
            "file.image_trailing_data",
            N_("The image carries other data after its end; save it again as a plain JPG or PNG."),
            {},
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[content_type]]) as image:
                if image.width * image.height > limits.IMAGE_PIXELS_MAX:
                    return _image_too_large()
                transparency = image.info.get("transparency")
                image.load()
                upright = ImageOps.exif_transpose(image)
                return Screened(content_type, _encode(upright, content_type, transparency))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return _image_too_large()
    except Exception:  # any decoder failure on untrusted bytes is "unreadable"
        log.info("an uploaded %s did not decode", content_type, exc_info=True)
        return _image_unreadable()


def _encode(image: Image.Image, content_type: str, transparency: object) -> bytes:
    # The writers copy some of what the decoder found (comments, ICC profiles) from
    # ``info``: nothing of the upload's metadata is carried over.
    image.info = {}
    out = io.BytesIO()
    if content_type == JPEG:
        if image.mode not in _JPEG_MODES:
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=JPEG_QUALITY)
    else:
        options: dict[str, object] = {}
        if image.mode not in _PNG_MODES:
            image = image.convert("RGBA")
        elif transparency is not None and image.mode in ("1", "L", "I", "P", "RGB"):
            options["transparency"] = transparency
        image.save(out, "PNG", **options)
    return out.getvalue()


def _png_end(data: bytes) -> int | None:
    """Offset just after the IEND chunk, walking the chunks from the signature."""
    position = 8
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        position += 12 + length
        if kind == b"IEND":
            return position if position <= len(data) else None
    return None


def _jpeg_end(data: bytes) -> int | None:
    """Offset just after the EOI marker that ends the image (not an embedded thumbnail's:
    segments are skipped by their length, entropy-coded scans marker by marker)."""
    size = len(data)
    position = 2
    while position < size:
        if data[position] != 0xFF:
            return None
        while position < size and data[position] == 0xFF:
            position += 1  # fill bytes
        if position >= size:
            return None
        marker = data[position]
        position += 1
        if marker == 0xD9:  # EOI
            return position
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length
            continue
        if position + 2 > size:
            return None
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2:
            return None
        position += length
        if marker == 0xDA:  # SOS: entropy-coded data up to the next real marker
            while True:
                found = data.find(b"\xff", position)
                if found < 0 or found + 1 >= size:
                    return None
                following = data[found + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    position = found + 2
                elif following == 0xFF:
                    position = found + 1
                else:
                    position = found
                    break
    return None


# --- PDF --------------------------------------------------------------------------------

_PDF_FORBIDDEN_NAMES: dict[str, str] = {
    "/JS": "JavaScript",
    "/JavaScript": "JavaScript",
    "/AA": "AA",
    "/Launch": "Launch",
    "/SubmitForm": "SubmitForm",
    "/ImportData": "ImportData",
    "/EmbeddedFiles": "EmbeddedFiles",
    "/EmbeddedFile": "EmbeddedFiles",
    "/FileAttachment": "FileAttachment",
    "/XFA": "XFA",
    "/RichMedia": "RichMedia",
    "/GoToE": "GoToE",
}
"""Names (as keys or values, after the parser has undone ``#xx`` escapes) that mark
scripts, actions run on events or on opening, and files carried inside the PDF."""


class _TooComplex(Exception):
    pass


class _Found(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _pdf_rejection(code: str, message: str, **params: str) -> Rejection:
    return Rejection(code, message, params)


def inspect_pdf(data: bytes) -> Rejection | None:
    """Why a PDF is refused (encrypted, unparseable, too complex, active content) or None."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return _pdf_rejection(
                "file.pdf_encrypted",
                N_("The PDF is encrypted or password-protected; upload it without protection."),
            )
        _walk_pdf(reader)
    except _Found as found:
        return _pdf_rejection(
            "file.pdf_active_content",
            N_(
                "The PDF carries scripts, actions or embedded files ({found}); upload a plain scan or export."
            ),
            found=found.what,
        )
    except _TooComplex:
        return _pdf_rejection(
            "file.pdf_too_complex",
            N_("The PDF has more than {limit} objects or nests them too deeply."),
            limit=str(limits.PDF_OBJECTS_MAX),
        )
    except Exception:  # any parser failure on untrusted bytes is "unreadable"
        log.info("an uploaded PDF did not parse", exc_info=True)
        return _pdf_rejection(
            "file.pdf_unreadable",
            N_("The PDF could not be read; it may be damaged. Export or scan it again."),
        )
    return None


def _listed_objects(reader: PdfReader) -> Iterator[IndirectObject]:
    """Every object a cross-reference section or stream lists, compressed ones included."""
    for generation, numbers in getattr(reader, "xref", {}).items():
        for number in numbers:
            yield IndirectObject(number, generation, reader)
    for number in getattr(reader, "xref_objStm", {}):
        yield IndirectObject(number, 0, reader)


def _walk_pdf(reader: PdfReader) -> None:
    """Visit the trailer and every object, following references, within the named bounds."""
    seen: set[tuple[int, int]] = set()
    budget = [limits.PDF_OBJECTS_MAX]
    pending: list[PdfObject] = [reader.trailer, *_listed_objects(reader)]
    while pending:
        item = pending.pop()
        if isinstance(item, IndirectObject):
            key = (item.idnum, item.generation)
            if key in seen:
                continue
            seen.add(key)
            resolved = reader.get_object(item)
            if resolved is None:
                continue
            item = resolved
        _visit(item, pending, budget, depth=0)


def _visit(node: PdfObject, pending: list[PdfObject], budget: list[int], *, depth: int) -> None:
    if depth > limits.PDF_NESTING_DEPTH_MAX:
        raise _TooComplex
    if isinstance(node, IndirectObject):
        pending.append(node)
        return
    if isinstance(node, NameObject):
        _check_name(node)
        return
    if isinstance(node, DictionaryObject):
        _spend(budget)
        for key, value in node.items():
            _check_name(key)
            if key == "/OpenAction":
                _check_open_action(value)
            _visit(value, pending, budget, depth=depth + 1)
    elif isinstance(node, ArrayObject):
        _spend(budget)
        for value in node:
            _visit(value, pending, budget, depth=depth + 1)


def _spend(budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooComplex


def _check_name(name: object) -> None:
    what = _PDF_FORBIDDEN_NAMES.get(str(name))
    if what is not None:
        raise _Found(what)


def _check_open_action(value: PdfObject) -> None:
    """An open action may show a page (a destination or a GoTo action), nothing else."""
    action = value.get_object() if isinstance(value, IndirectObject) else value
    if isinstance(action, DictionaryObject) and action.get("/S") != "/GoTo":
        raise _Found("OpenAction")


class StoredDocument(Protocol):
    id: str
    kind: str
    sha256: str


def same_content_kinds(documents: Iterable[StoredDocument]) -> dict[str, list[str]]:
    """For each document whose exact bytes (SHA-256) were also uploaded as another kind of
    document, those other kinds: one scan passed off as two documents is for a reviewer
    to see. Documents with no such twin are absent."""
    kinds_by_hash: dict[str, set[str]] = defaultdict(set)
    listed = list(documents)
    for document in listed:
        kinds_by_hash[document.sha256].add(document.kind)
    return {
        document.id: sorted(kinds_by_hash[document.sha256] - {document.kind})
        for document in listed
        if len(kinds_by_hash[document.sha256]) > 1
    }


def download_name(file_name: str, content_type: str) -> str:
    """The name a download is saved under: the display name with the extension of the
    type found in the bytes (``evil.exe`` holding a PNG is saved as ``evil.png``)."""
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    return (stem.strip(" .") or "document") + EXTENSIONS.get(content_type, ".bin")


_UNSAFE_NAME = re.compile(r"[^\w.\-() \u4e00-\u9fff]")


def safe_file_name(name: str | None) -> str:
    """A display name with no path, control characters or odd symbols, at most 120 chars."""
    base = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKC", base)
    base = _UNSAFE_NAME.sub("_", base).strip(" .") or "upload"
    return base[:120]
