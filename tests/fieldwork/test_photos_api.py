"""Work-order photos are screened like applicants' documents, over HTTP: decoded and
re-encoded (the EXIF, with a GPS position, is gone), trailing data refused."""

from __future__ import annotations

import io

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from poshub.bootstrap import AppState
from poshub.demo import tiny_png
from tests.factories import login
from tests.fieldwork.support import Site, contracted_site

BASE = "/api/v1/work-orders"
GPS_IFD = 0x8825
MAKE = 0x010F


@pytest.fixture
def survey(client: TestClient, state: AppState) -> str:
    site: Site = contracted_site(client, state)
    response = client.post(
        BASE,
        json={"kind": "site_survey", "mid": site.mid, "technician": "tech"},
        headers=login(client, "ops"),
    )
    assert response.status_code == 201, response.text
    number: str = response.json()["number"]
    return number


def _upload(
    client: TestClient, number: str, content: bytes, name: str = "shop.jpg"
) -> httpx.Response:
    response: httpx.Response = client.post(
        f"{BASE}/{number}/photos",
        files={"file": (name, content, "image/jpeg")},
        data={"caption": "门头"},
        headers=login(client, "tech") | {"Accept-Language": "en"},
    )
    return response


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[MAKE] = "SecretCam"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (31.0, 49.0, 12.0), 3: "E", 4: (117.0, 13.0, 5.0)})
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 16, 46)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_a_real_jpeg_is_stored_re_encoded_without_its_exif(client: TestClient, survey: str) -> None:
    original = _jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as image:
        assert image.getexif().get_ifd(GPS_IFD)  # the upload does carry a position
    response = _upload(client, survey, original)
    assert response.status_code == 201, response.text
    photo = response.json()
    assert photo["content_type"] == "image/jpeg"
    served = client.get(f"{BASE}/{survey}/photos/{photo['id']}", headers=login(client, "tech"))
    assert served.status_code == 200
    assert served.content != original
    assert b"SecretCam" not in served.content
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.size == (40, 30)
        assert not image.getexif()
    assert photo["size_bytes"] == len(served.content)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (tiny_png() + b"PK\x03\x04hidden.zip", "file.image_trailing_data"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "file.image_unreadable"),
    ],
    ids=["trailing-data", "not-an-image"],
)
def test_a_photo_with_trailing_data_or_that_does_not_decode_is_refused(
    client: TestClient, survey: str, content: bytes, code: str
) -> None:
    response = _upload(client, survey, content)
    assert response.status_code == 422, response.text
    assert [(d["field"], d["code"]) for d in response.json()["detail"]] == [("file", code)]
    detail = client.get(f"{BASE}/{survey}", headers=login(client, "tech")).json()
    assert detail["photos"] == []
