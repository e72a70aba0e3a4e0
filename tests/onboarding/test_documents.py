from __future__ import annotations

from pathlib import Path

import pytest

from poshub.core import limits
from poshub.core.storage import ContentStore
from poshub.onboarding.documents import JPEG, PDF, PNG, Rejection, safe_file_name, screen, sniff
from tests.factories import EXECUTABLE_AS_PDF, pdf_file, plain_pdf
from tests.factories import PDF as PDF_BYTES
from tests.factories import PNG as PNG_BYTES


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG_BYTES, PNG),
        (PDF_BYTES, PDF),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20, JPEG),
    ],
)
def test_accepted_types_are_read_from_the_bytes(data: bytes, expected: str) -> None:
    assert sniff(data) == expected


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (EXECUTABLE_AS_PDF, "file.executable"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 50, "file.executable"),
        (b"#!/bin/sh\nrm -rf /\n", "file.executable"),
        (b"PK\x03\x04 a zip archive", "file.type"),
        (b"", "file.empty"),
        (
            pdf_file({**plain_pdf(), 4: b"<</S/JavaScript/JS(app.alert(1))>>"}),
            "file.pdf_active_content",
        ),
        (b"%PDF-1.7\n1 0 obj<</OpenAction<</S/JavaScript/JS(1)>>>>", "file.pdf_unreadable"),
        (b"%PDF-1.4" + b"\x00" * limits.DOCUMENT_SIZE_BYTES_MAX, "file.too_large"),
    ],
)
def test_refusals_name_the_reason(data: bytes, code: str) -> None:
    verdict = screen(data)
    assert isinstance(verdict, Rejection)
    assert verdict.code == code


def test_file_names_are_display_only_and_safe() -> None:
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("C:\\Users\\me\\营业执照.pdf") == "营业执照.pdf"
    assert safe_file_name("a<script>.png") == "a_script_.png"
    assert safe_file_name(None) == "upload"
    assert len(safe_file_name("x" * 500)) == 120


def test_store_is_content_addressed_and_verifies_on_read(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, b"k" * 32)
    digest = store.put(PNG_BYTES)
    assert store.put(PNG_BYTES) == digest
    assert store.get(digest) == PNG_BYTES
    assert list(tmp_path.rglob(".incoming-*")) == []
    store.path_for(digest).write_bytes(b"tampered")
    with pytest.raises(OSError, match="does not match"):
        store.get(digest)
    with pytest.raises(ValueError, match="SHA-256"):
        store.path_for("../../etc/passwd")
