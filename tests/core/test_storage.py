"""Documents at rest, through the HTTP API: what is on disk is never the clear bytes, is
bound to its address and to the KEK, is checked on every read, files written before
encryption are sealed, and every data file PosHub creates is 0600 (directories 0700)."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from poshub.bootstrap import AppState, build_state
from poshub.core.db import Database
from poshub.core.settings import Mode, Settings
from poshub.core.storage import SEALED_MARKER
from poshub.demo import tiny_png
from poshub.web.app import create_app
from tests.factories import PDF, bearer, create, download_document, upload_document


def _upload(client: TestClient, created: dict[str, Any], content: bytes, kind: str) -> str:
    response = upload_document(client, created, content, kind=kind, name=f"{kind}.bin")
    assert response.status_code == 201, response.text
    document_id: str = response.json()["id"]
    return document_id


def _blob(state: AppState, content: bytes) -> Path:
    path = state.onboarding.store.path_for(hashlib.sha256(content).hexdigest())
    assert path.exists()
    return path


def test_files_on_disk_are_never_the_clear_bytes(client: TestClient, state: AppState) -> None:
    created = create(client)
    png, pdf = tiny_png("at-rest"), PDF
    png_id = _upload(client, created, png, "id_card_front")
    pdf_id = _upload(client, created, pdf, "business_licence")

    served_png = download_document(client, created, png_id).content
    assert download_document(client, created, pdf_id).content == pdf
    on_disk = [p.read_bytes() for p in state.settings.documents_dir.rglob("*") if p.is_file()]
    assert on_disk
    for stored in on_disk:
        assert pdf not in stored
        assert served_png not in stored
        assert b"%PDF" not in stored
        assert b"\x89PNG" not in stored
    assert _blob(state, pdf).read_bytes().startswith(b"PHS1")


def test_every_read_is_verified(client: TestClient, state: AppState) -> None:
    created = create(client)
    document_id = _upload(client, created, PDF, "business_licence")
    path = _blob(state, PDF)
    sealed = bytearray(path.read_bytes())
    sealed[-5] ^= 0x01
    path.write_bytes(bytes(sealed))
    response = download_document(client, created, document_id)
    assert response.status_code == 500
    assert response.json()["error"] == "document_integrity"
    assert PDF not in response.content


def test_a_sealed_file_cannot_be_moved_to_another_address(
    client: TestClient, state: AppState
) -> None:
    """The address (the hash of the clear bytes) is bound as associated data: another
    document's valid file copied over this one's is refused, not served."""
    created = create(client)
    first = _upload(client, created, tiny_png("first"), "id_card_front")
    _upload(client, created, tiny_png("second"), "id_card_back")
    first_path = _blob_of(client, created, state, first)
    other = next(
        p for p in state.settings.documents_dir.rglob("*") if p.is_file() and p != first_path
    )
    first_path.write_bytes(other.read_bytes())
    response = download_document(client, created, first)
    assert response.status_code == 500
    assert response.json()["error"] == "document_integrity"


def _blob_of(
    client: TestClient, created: dict[str, Any], state: AppState, document_id: str
) -> Path:
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    ).json()
    digest = next(d["sha256"] for d in view["documents"] if d["id"] == document_id)
    return state.onboarding.store.path_for(digest)


def test_files_are_unreadable_under_another_kek(
    client: TestClient, state: AppState, settings: Settings, database: Database
) -> None:
    created = create(client)
    document_id = _upload(client, created, PDF, "business_licence")
    other = build_state(settings.model_copy(update={"kek": "5a" * 32}), database=database)
    with TestClient(create_app(other), base_url="http://testserver") as stranger:
        response = download_document(stranger, created, document_id)
    assert response.status_code == 500
    assert response.json()["error"] == "document_integrity"


def test_files_written_before_encryption_are_sealed_and_still_served(
    client: TestClient, state: AppState, settings: Settings, database: Database
) -> None:
    created = create(client)
    first = _upload(client, created, PDF, "business_licence")
    second = _upload(client, created, tiny_png("legacy"), "id_card_front")
    # As a version before encryption at rest left them: the clear bytes at their address.
    paths = {first: _blob(state, PDF), second: _blob_of(client, created, state, second)}
    clear = {}
    for document_id, path in paths.items():
        clear[document_id] = download_document(client, created, document_id).content
        path.write_bytes(clear[document_id])
    (settings.documents_dir / SEALED_MARKER).unlink()

    # Read before any restart: served (the hash is checked) and sealed in place.
    assert download_document(client, created, first).content == clear[first]
    assert paths[first].read_bytes().startswith(b"PHS1")
    assert paths[second].read_bytes() == clear[second]

    # The next process start seals every file left, once.
    restarted = build_state(settings, database=database)
    assert paths[second].read_bytes().startswith(b"PHS1")
    assert (settings.documents_dir / SEALED_MARKER).exists()
    with TestClient(create_app(restarted), base_url="http://testserver") as again:
        assert download_document(again, created, second).content == clear[second]

    # A clear file that does not match its address is not served either.
    paths[second].write_bytes(b"\x89PNG\r\n\x1a\n not the uploaded bytes")
    response = download_document(client, created, second)
    assert response.status_code == 500
    assert response.json()["error"] == "document_integrity"


def _modes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in [root, *root.rglob("*")]
    }


def test_data_files_are_0600_and_directories_0700(
    client: TestClient, state: AppState, settings: Settings
) -> None:
    created = create(client)
    _upload(client, created, PDF, "business_licence")
    _upload(client, created, tiny_png("modes"), "id_card_front")
    modes = _modes(settings.data_dir)
    if state.db.dialect == "sqlite":
        assert {"poshub.db", "poshub.db-wal", "poshub.db-shm"} <= set(modes)
    assert any(name.startswith("documents/") for name in modes)
    loose = {
        name: mode
        for name, mode in modes.items()
        if mode != ("0o700" if (settings.data_dir / name).is_dir() else "0o600")
    }
    assert loose == {}


def test_a_new_data_directory_and_key_file_are_private(tmp_path: Path) -> None:
    from poshub.bootstrap import open_database, upgrade

    settings = Settings(mode=Mode.DEMO, data_dir=tmp_path / "var" / "poshub")
    database = open_database(settings)
    upgrade(database)
    state = build_state(settings, database=database)
    state.onboarding.store.put(b"%PDF-1.4 anything")
    database.dispose()
    modes = _modes(tmp_path / "var")
    assert modes.pop(".") == "0o700"
    assert "poshub/kek.hex" in modes
    assert "poshub/poshub.db" in modes
    for name, mode in modes.items():
        expected = "0o700" if (tmp_path / "var" / name).is_dir() else "0o600"
        assert mode == expected, name
