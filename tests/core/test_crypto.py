"""The key vault and what it keeps out of the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.core.crypto import KeyMaterialError, KeyVault, load_kek, mask_resident_id, mask_tail
from poshub.core.settings import Mode, Settings
from tests.factories import card_number, create_and_submit, resident_id


def test_field_encryption_round_trips_and_is_bound_to_its_column() -> None:
    vault = KeyVault(bytes(range(32)))
    blob = vault.encrypt("6222021234567890128", context="applications.account_number")
    assert b"6222021234567890128" not in blob
    assert vault.decrypt(blob, context="applications.account_number") == "6222021234567890128"
    with pytest.raises(InvalidTag):
        vault.decrypt(blob, context="applications.id_number")


def test_each_encryption_is_different_but_tokens_are_stable() -> None:
    vault = KeyVault(bytes(range(32)))
    assert vault.encrypt("x", context="c") != vault.encrypt("x", context="c")
    assert vault.token("x", purpose="p") == vault.token("x", purpose="p")
    assert vault.token("x", purpose="p") != vault.token("x", purpose="q")
    assert KeyVault(bytes(32)).token("x", purpose="p") != vault.token("x", purpose="p")


def test_masks_keep_only_what_a_person_needs() -> None:
    assert mask_resident_id("34010419900307123X") == "340104********123X"
    assert mask_tail("6222021234567890128") == "***************0128"


def test_production_refuses_to_start_without_a_kek(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError, match="no key-encrypting key"):
        load_kek(Settings(mode=Mode.PRODUCTION, data_dir=tmp_path))


def test_bad_kek_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError) as raised:
        load_kek(Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, kek="zz" * 32))
    assert "zz" not in str(raised.value)
    with pytest.raises(KeyMaterialError, match="64 hex digits"):
        load_kek(Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, kek="ab" * 8))


def test_demo_creates_a_private_key_file_once(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.DEMO, data_dir=tmp_path)
    first = load_kek(settings)
    assert (tmp_path / "kek.hex").stat().st_mode & 0o777 == 0o600
    assert load_kek(settings) == first


def test_no_clear_id_or_account_number_reaches_the_database_files(
    client: TestClient, state: AppState, settings: Settings
) -> None:
    id_number = resident_id()
    account = card_number("621226020001234567")
    create_and_submit(
        client,
        id_number=id_number,
        settlement_account={
            "bank_name": "工商银行",
            "account_name": "陈明",
            "account_number": account,
        },
    )
    if state.db.dialect != "sqlite":
        pytest.skip("file scan applies to the embedded database")
    state.db.dispose()  # checkpoint nothing further; read the files as they are
    data = b"".join(p.read_bytes() for p in settings.data_dir.glob("poshub.db*"))
    assert data, "database files not found"
    for secret in (id_number, account, id_number[6:14] + id_number[14:]):
        assert secret.encode() not in data
    # The masked forms are there, so the scan is looking in the right place.
    assert account[-4:].encode() in data
