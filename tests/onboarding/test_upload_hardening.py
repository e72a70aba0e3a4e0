"""Uploads are read for real through the HTTP API: images decoded and re-encoded (metadata
and trailing payloads gone, polyglots, bombs and broken images refused), PDFs parsed and
walked for active content however it is escaped or compressed, downloads named by the
detected type, and the same file given as two kinds of document flagged to the reviewer."""

from __future__ import annotations

import io
import re
import struct
import zlib
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pypdf import PdfWriter
from pypdf.actions import JavaScript

from poshub.bootstrap import AppState
from poshub.core import limits
from poshub.demo import tiny_png
from tests.factories import PDF, PNG, create, login, pdf_file, plain_pdf
from tests.factories import download_document as download
from tests.factories import upload_document as upload

EN = {"Accept-Language": "en"}


def refused(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [(d["field"], d["code"]) for d in detail] == [("file", code)]
    error: dict[str, Any] = detail[0]
    return error


def stored_files(state: AppState) -> set[str]:
    root = state.settings.documents_dir
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def jpeg_with_metadata() -> bytes:
    image = Image.new("RGB", (32, 24), (200, 16, 46))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0110] = "Model-X"  # Model
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), comment=b"payload comment")
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_text() -> bytes:
    image = Image.new("RGB", (8, 8), (1, 2, 3))
    out = io.BytesIO()
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "hidden-note-4711")
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


# --- Images ---------------------------------------------------------------------------------


def test_jpeg_is_reencoded_without_its_metadata(client: TestClient) -> None:
    created = create(client)
    original = jpeg_with_metadata()
    response = upload(client, created, original, name="photo.jpg")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["content_type"] == "image/jpeg"
    served = download(client, created, body["id"]).content
    assert served != original
    assert b"SecretCam" not in served
    assert b"payload comment" not in served
    with Image.open(io.BytesIO(served)) as image:
        assert image.size == (32, 24)
        assert not image.getexif()


def test_png_is_reencoded_without_its_text_chunks(client: TestClient) -> None:
    created = create(client)
    response = upload(client, created, png_with_text())
    assert response.status_code == 201, response.text
    served = download(client, created, response.json()["id"]).content
    assert b"hidden-note-4711" not in served
    assert Image.open(io.BytesIO(served)).size == (8, 8)


def test_jpeg_thumbnail_end_marker_inside_metadata_is_not_the_image_end(
    client: TestClient,
) -> None:
    """An APP1 segment may hold a thumbnail with its own FF D9; the image ends later."""
    original = jpeg_with_metadata()
    segment = b"Exif\x00\x00" + b"\xff\xd8thumbnail\xff\xd9"
    with_thumbnail = (
        original[:2] + b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + original[2:]
    )
    response = upload(client, create(client), with_thumbnail, name="photo.jpg")
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (PNG + b"PK\x03\x04 a zip archive after the image", "polyglot.png"),
        (jpeg_with_metadata() + b"<?php system($_GET['c']); ?>", "polyglot.jpg"),
        (PNG + b"\x00", "one-byte.png"),
    ],
    ids=["png+zip", "jpeg+php", "png+nul"],
)
def test_data_after_the_image_end_is_refused(
    client: TestClient, state: AppState, content: bytes, name: str
) -> None:
    created = create(client)
    files = stored_files(state)
    error = refused(upload(client, created, content, name=name), "file.image_trailing_data")
    assert error["msg"].startswith("The image carries other data after its end")
    assert stored_files(state) == files


def test_decompression_bomb_is_refused_before_decoding(client: TestClient) -> None:
    # A header claiming 20000 x 20000 pixels (400 megapixels) over a few bytes of data.
    header = struct.pack(">IIBBBBB", 20_000, 20_000, 1, 0, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )
    error = refused(upload(client, create(client), bomb), "file.image_too_large")
    assert str(limits.IMAGE_PIXELS_MAX // 1_000_000) in error["msg"]


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", b"\x00" * 13) + png_chunk(b"IEND", b""),
        PNG[:40] + png_chunk(b"IEND", b""),
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20,
        jpeg_with_metadata()[:-300] + b"\xff\xd9",
    ],
    ids=["png-zero-size", "png-cut", "jpeg-header-only", "jpeg-cut"],
)
def test_undecodable_image_is_refused(client: TestClient, content: bytes) -> None:
    refused(upload(client, create(client), content), "file.image_unreadable")


# --- PDF ------------------------------------------------------------------------------------

_CATALOG_OPENING = b"<</Type/Catalog/Pages 2 0 R/OpenAction 4 0 R>>"


def _with(**objects: bytes) -> dict[int, bytes]:
    found = plain_pdf()
    found.update({int(k[1:]): v for k, v in objects.items()})
    return found


def _pypdf(build: str) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 100)
    if build == "js":
        writer.add_open_action(JavaScript("app.alert(1)"))
    elif build == "attachment":
        writer.add_attachment("invoice.exe", b"MZ\x90\x00")
    elif build == "encrypted":
        writer.encrypt(user_password="", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


HOSTILE_PDFS: list[tuple[str, bytes, str]] = [
    (
        "open-action-js",
        pdf_file(_with(o1=_CATALOG_OPENING, o4=b"<</S/JavaScript/JS(app.alert(1))>>")),
        "JavaScript",
    ),
    (
        "hex-escaped-names",
        pdf_file(_with(o1=_CATALOG_OPENING, o4=b"<</S/#4Aava#53cript/#4A#53(app.alert(1))>>")),
        "JavaScript",
    ),
    (
        "js-in-object-stream",
        pdf_file(
            {1: _CATALOG_OPENING, 2: plain_pdf()[2], 3: plain_pdf()[3]},
            compressed={4: b"<</S/#4Aava#53cript/#4A#53(app.alert(1))>>"},
        ),
        "JavaScript",
    ),
    (
        "names-tree-js",
        pdf_file(
            _with(
                o1=b"<</Type/Catalog/Pages 2 0 R/Names<</JavaScript 4 0 R>>>>",
                o4=b"<</Names[(x) 5 0 R]>>",
                o5=b"<</S/JavaScript/JS 6 0 R>>",
                o6=b"<</Length 12>>stream\napp.alert(1)\nendstream",
            )
        ),
        "JavaScript",
    ),
    ("pypdf-open-action-js", _pypdf("js"), "JavaScript"),
    (
        "page-additional-actions",
        pdf_file(
            _with(o3=b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]/AA<</O 4 0 R>>>>")
            | {4: b"<</S/GoTo/D[3 0 R/Fit]>>"}
        ),
        "AA",
    ),
    ("launch", pdf_file(_with(o1=_CATALOG_OPENING, o4=b"<</S/Launch/F(cmd.exe)>>")), "Launch"),
    (
        "submit-form-widget",
        pdf_file(
            _with(
                o3=b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]/Annots[4 0 R]>>",
                o4=b"<</Type/Annot/Subtype/Widget/Rect[0 0 10 10]/A<</S/SubmitForm/F(https://evil.example/)>>>>",
            )
        ),
        "SubmitForm",
    ),
    (
        "import-data",
        pdf_file(_with(o1=_CATALOG_OPENING, o4=b"<</S/ImportData/F(data.fdf)>>")),
        "ImportData",
    ),
    (
        "embedded-files",
        pdf_file(
            _with(
                o1=b"<</Type/Catalog/Pages 2 0 R/Names<</EmbeddedFiles<</Names[(a.exe) 4 0 R]>>>>>>",
                o4=b"<</Type/Filespec/F(a.exe)>>",
            )
        ),
        "EmbeddedFiles",
    ),
    ("pypdf-attachment", _pypdf("attachment"), "EmbeddedFiles"),
    (
        "file-attachment-annotation",
        pdf_file(
            _with(
                o3=b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]/Annots[<</Type/Annot/Subtype/FileAttachment/Rect[0 0 9 9]/FS<</Type/Filespec/F(x.exe)>>>>]>>"
            )
        ),
        "FileAttachment",
    ),
    (
        "unreferenced-object-in-stream",
        pdf_file(plain_pdf(), compressed={9: b"<</S/#4C#61unch/F(calc.exe)>>"}),
        "Launch",
    ),
    (
        "open-action-uri",
        pdf_file(_with(o1=_CATALOG_OPENING, o4=b"<</S/URI/URI(https://evil.example/)>>")),
        "OpenAction",
    ),
]


@pytest.mark.parametrize(
    ("content", "found"), [c[1:] for c in HOSTILE_PDFS], ids=[c[0] for c in HOSTILE_PDFS]
)
def test_pdf_with_active_content_is_refused(
    client: TestClient, state: AppState, content: bytes, found: str
) -> None:
    created = create(client)
    files = stored_files(state)
    error = refused(upload(client, created, content, name="licence.pdf"), "file.pdf_active_content")
    assert f"({found})" in error["msg"]
    assert stored_files(state) == files


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (_pypdf("encrypted"), "file.pdf_encrypted"),
        (b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\n", "file.pdf_unreadable"),
        (b"%PDF-1.4\n" + b"\x00" * 400, "file.pdf_unreadable"),
        (
            pdf_file(
                _with(o3=b"<</Type/Page/Parent 2 0 R/Junk " + b"[" * 100 + b"]" * 100 + b">>")
            ),
            "file.pdf_too_complex",
        ),
    ],
    ids=["encrypted", "no-xref", "garbage", "too-deep"],
)
def test_pdf_that_cannot_be_checked_is_refused(
    client: TestClient, content: bytes, code: str
) -> None:
    refused(upload(client, create(client), content, name="licence.pdf"), code)


@pytest.mark.parametrize(
    "content",
    [
        PDF,
        _pypdf("plain"),
        pdf_file(plain_pdf(), compressed={}),
        pdf_file({1: plain_pdf()[1]}, compressed={2: plain_pdf()[2], 3: plain_pdf()[3]}),
        # Showing the first page on opening is not an action to refuse.
        pdf_file(_with(o1=b"<</Type/Catalog/Pages 2 0 R/OpenAction[3 0 R/Fit]>>")),
        # A link to a web page is not active content either.
        pdf_file(
            _with(
                o3=b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]/Annots[<</Subtype/Link/Rect[0 0 9 9]/A<</S/URI/URI(https://example.com/)>>>>]>>"
            )
        ),
    ],
    ids=["demo", "pypdf", "classic-xref", "object-stream", "open-at-page", "web-link"],
)
def test_plain_pdf_is_accepted_and_kept_as_sent(client: TestClient, content: bytes) -> None:
    created = create(client)
    response = upload(client, created, content, name="licence.pdf")
    assert response.status_code == 201, response.text
    assert download(client, created, response.json()["id"]).content == content


# --- Downloads ------------------------------------------------------------------------------


def _attachment_name(response: httpx.Response) -> str:
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    match = re.search(r"filename\*=UTF-8''(.+)$", disposition)
    assert match
    return match.group(1)


@pytest.mark.parametrize(
    ("name", "content", "expected_name", "expected_type"),
    [
        ("evil.exe", PNG, "evil.png", "image/png"),
        ("invoice.pdf.exe", PDF, "invoice.pdf.pdf", "application/pdf"),
        ("scan.html", jpeg_with_metadata(), "scan.jpg", "image/jpeg"),
        ("noextension", PNG, "noextension.png", "image/png"),
    ],
)
def test_download_is_named_and_typed_by_the_detected_type(
    client: TestClient, name: str, content: bytes, expected_name: str, expected_type: str
) -> None:
    created = create(client)
    response = upload(client, created, content, name=name)
    assert response.status_code == 201, response.text
    document = response.json()
    served = download(client, created, document["id"])
    assert served.status_code == 200
    assert _attachment_name(served) == expected_name
    assert served.headers["content-type"] == expected_type
    assert served.headers["x-content-type-options"] == "nosniff"
    # The reviewer's download is named the same way.
    login(client, "reviewer")
    staff_copy = client.get(
        f"/api/v1/review/applications/{created['id']}/documents/{document['id']}"
    )
    assert staff_copy.status_code == 200, staff_copy.text
    assert _attachment_name(staff_copy) == expected_name
    assert staff_copy.headers["content-type"] == expected_type


# --- The same file as two kinds of document -------------------------------------------------


def test_same_file_as_two_kinds_is_flagged_to_the_reviewer(client: TestClient) -> None:
    created = create(client)
    first = upload(client, created, tiny_png("one"), kind="id_card_front", name="front.png")
    assert first.status_code == 201
    assert first.json()["duplicate_of"] == []
    second = upload(client, created, tiny_png("one"), kind="business_licence", name="lic.png")
    assert second.status_code == 201
    assert second.json()["duplicate_of"] == ["id_card_front"]

    login(client, "reviewer")
    view = client.get(f"/api/v1/review/applications/{created['id']}", headers=EN).json()
    flagged = {d["id"]: d["duplicate_of"] for d in view["documents"]}
    assert "business_licence" in flagged[first.json()["id"]]
    assert "id_card_front" in flagged[second.json()["id"]]
    page = client.get(f"/admin/applications/{created['id']}", headers=EN)
    assert page.status_code == 200
    assert f'data-duplicate="{second.json()["id"]}"' in page.text
    assert "同一文件也被上传为：" in page.text  # the staff pages are in Chinese


def test_different_files_or_the_same_kind_twice_are_not_flagged(client: TestClient) -> None:
    created = create(client)
    for kind, seed in (("id_card_front", "a"), ("id_card_back", "b")):
        response = upload(client, created, tiny_png(seed), kind=kind)
        assert response.json()["duplicate_of"] == []
    again = upload(client, created, tiny_png("a"), kind="id_card_front")
    assert again.status_code == 201
    assert again.json()["duplicate_of"] == []
