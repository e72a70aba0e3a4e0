"""Deciding what an uploaded file is from its bytes (never from its name).

Only three kinds are accepted, each recognised by its signature: JPEG, PNG and PDF.
A general-purpose type guesser adds nothing here: we allow-list three signatures and
refuse the rest, naming executables specifically because that is the dangerous case.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

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
# Active content a document has no business carrying.
_PDF_ACTIVE_CONTENT = (b"/JavaScript", b"/JS ", b"/JS(", b"/Launch", b"/EmbeddedFile")


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
            if mime == PDF and any(marker in data for marker in _PDF_ACTIVE_CONTENT):
                return Rejection(
                    "file.pdf_active_content",
                    N_(
                        "The PDF contains scripts or embedded files; upload a plain scan or export."
                    ),
                    {},
                )
            return mime
    return Rejection(
        "file.type",
        N_("Only JPG, PNG and PDF files are accepted (the file's content is none of these)."),
        {},
    )


_UNSAFE_NAME = re.compile(r"[^\w.\-() \u4e00-\u9fff]")


def safe_file_name(name: str | None) -> str:
    """A display name with no path, control characters or odd symbols, at most 120 chars."""
    base = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKC", base)
    base = _UNSAFE_NAME.sub("_", base).strip(" .") or "upload"
    return base[:120]
