"""The software HSM: vectors from the spec, key generation and parsing, TR-31 key blocks,
and that neither key material nor psec's deprecation warnings leak out."""

from __future__ import annotations

import functools
import secrets
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import psec
import pytest
from cryptography.utils import CryptographyDeprecationWarning
from hypothesis import given, settings
from hypothesis import strategies as st

from poshub.terminals import hsm
from poshub.terminals.hsm import KeyBlockError

REPO_ROOT = Path(__file__).resolve().parents[2]

TEST_TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # DESIGN §7, spec V3
V1_TMK = bytes.fromhex("70F2A84CCBC2AE8625CBB0F2C22AB923")
PIK = bytes.fromhex("6B7A1C5D3E4F2091A0B1C2D3E4F50617")
TDK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
MAK = bytes.fromhex("1F2E3D4C5B6A7988")
KBPK = bytes(range(32))
OTHER_KBPK = bytes(range(1, 33))
TRANSPORT_2KEY = bytes.fromhex("89ABCDEF01234567FEDCBA9876543210")
TRANSPORT_3KEY = bytes.fromhex("89ABCDEF01234567FEDCBA98765432100123456789ABCDEF")


@functools.cache
def stored_block() -> str:
    """One stored block of the test TMK, shared by the (read-only) tests that need it."""
    return hsm.wrap_tmk(KBPK, TEST_TMK)


def has_odd_parity(key: bytes) -> bool:
    return all(byte.bit_count() % 2 == 1 for byte in key)


# --- spec vectors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (TEST_TMK, "08D7B4FB"),  # V3 TMK
        (PIK, "AA2D167F"),  # V2 PIK
        (TDK, "FB097599"),  # V3 TDK
        (MAK, "72305BF7"),  # V3 MAK, single DES
        (PIK[:8], "754D248E"),  # V3 60.3 001: single-length PIK check value
        (bytes.fromhex("C24A8FB57AA20123"), "0547DB3E"),  # V1 MAK
    ],
)
def test_kcv_matches_spec_vectors(key: bytes, expected: str) -> None:
    assert hsm.kcv(key) == expected


def test_kcv_rejects_bad_key_length() -> None:
    with pytest.raises(ValueError, match="8, 16 or 24 bytes"):
        hsm.kcv(bytes(12))


def test_field_62_003_and_004_vectors() -> None:
    """Spec V3: working keys encrypted under the test TMK, ECB per 8-byte block."""
    assert hsm.encrypt_ecb(TEST_TMK, PIK).hex().upper() == "FF429E3C2366D612834EA3591FD1AA02"
    assert hsm.encrypt_ecb(TEST_TMK, MAK).hex().upper() == "1F0E1BFFA5BC7EB1"
    assert hsm.encrypt_ecb(TEST_TMK, TDK).hex().upper() == "31A7364CAC91CA39C0489F69BEC54FA2"


def test_field_62_001_vector_single_length_pik() -> None:
    assert hsm.encrypt_ecb(TEST_TMK, PIK[:8]).hex().upper() == "FF429E3C2366D612"


def test_decrypt_matches_v1_and_v3() -> None:
    assert hsm.decrypt_ecb(V1_TMK, bytes.fromhex("96D605EA176B7E9E")) == bytes.fromhex(
        "C24A8FB57AA20123"
    )
    assert hsm.decrypt_ecb(TEST_TMK, bytes.fromhex("FF429E3C2366D612834EA3591FD1AA02")) == PIK


def test_ecb_with_single_des_key_is_single_des() -> None:
    """An 8-byte key is plain DES: the same as 3DES with K1 = K2 = K3."""
    data = bytes(range(16))
    assert hsm.encrypt_ecb(MAK, data) == hsm.encrypt_ecb(MAK * 2, data)
    assert hsm.encrypt_ecb(MAK, data) == hsm.encrypt_ecb(MAK * 3, data)


@pytest.mark.parametrize("length", [0, 7, 9, 15])
def test_ecb_rejects_partial_blocks(length: int) -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        hsm.encrypt_ecb(TEST_TMK, bytes(length))
    with pytest.raises(ValueError, match="multiple of 8"):
        hsm.decrypt_ecb(TEST_TMK, bytes(length))


@pytest.mark.parametrize("length", [0, 7, 15, 17, 32])
def test_ecb_rejects_bad_key_length(length: int) -> None:
    with pytest.raises(ValueError, match="8, 16 or 24 bytes"):
        hsm.encrypt_ecb(bytes(length), bytes(8))


@given(
    key=st.binary(min_size=16, max_size=16),
    blocks=st.integers(min_value=1, max_value=6),
    data=st.data(),
)
@settings(max_examples=50)
def test_ecb_round_trip(key: bytes, blocks: int, data: st.DataObject) -> None:
    plaintext = data.draw(st.binary(min_size=8 * blocks, max_size=8 * blocks))
    assert hsm.decrypt_ecb(key, hsm.encrypt_ecb(key, plaintext)) == plaintext


# --- generation -------------------------------------------------------------------------


def test_generated_keys_are_double_length_odd_parity_and_distinct() -> None:
    keys = [hsm.generate_tmk() for _ in range(200)]
    for key in keys:
        assert len(key) == 16
        assert has_odd_parity(key)
        assert key[:8] != key[8:]
        assert key[:8] not in hsm._WEAK_DES_KEYS
        assert key[8:] not in hsm._WEAK_DES_KEYS
        assert not hsm.is_known_test_key(key)
    assert len(set(keys)) == len(keys)


def test_weak_key_list_has_odd_parity() -> None:
    assert len(hsm._WEAK_DES_KEYS) == 16
    assert all(has_odd_parity(key) for key in hsm._WEAK_DES_KEYS)


def test_parity_is_set_on_every_byte_value() -> None:
    adjusted = hsm._with_odd_parity(bytes(range(256)))
    assert has_odd_parity(adjusted)
    # Only the parity bit (the low bit) may change.
    assert all((a ^ b) in (0, 1) for a, b in zip(adjusted, range(256), strict=True))


def test_generation_redraws_weak_and_degenerate_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    good = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    draws = iter(
        [
            bytes.fromhex("0101010101010101") + good[8:],  # weak first half
            good[:8] + bytes.fromhex("1FE01FE00EF10EF1"),  # semi-weak second half
            good[:8] + good[:8],  # K1 = K2
            good,
        ]
    )
    monkeypatch.setattr(secrets, "token_bytes", lambda n: next(draws))
    assert hsm.generate_tmk() == good


def test_generation_gives_up_on_a_broken_random_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "token_bytes", lambda n: bytes(n))
    with pytest.raises(RuntimeError, match="random generator"):
        hsm.generate_tmk()


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "0123456789ABCDEFFEDCBA9876543210",
        "0123456789abcdeffedcba9876543210",
        "0123 4567 89AB CDEF FEDC BA98 7654 3210",
        "  0123456789ABCDEF\tFEDCBA9876543210\n",
    ],
)
def test_parse_key_hex_accepts(text: str) -> None:
    assert hsm.parse_key_hex(text) == TEST_TMK


@pytest.mark.parametrize(
    "text",
    [
        "0123456789ABCDEFFEDCBA987654321",  # 31 digits
        "0123456789ABCDEFFEDCBA98765432100",  # 33 digits
        "0123456789ABCDEFFEDCBA987654321G",  # not hex
        "0123456789ABCDEF-FEDCBA9876543210",  # separator other than whitespace
        "0x0123456789ABCDEFFEDCBA98765432",  # prefix
        "０123456789ABCDEFFEDCBA9876543210",  # full-width digit
        "",
        "1F2E3D4C5B6A79881F2E3D4C5B6A7988",  # K1 = K2
        "0123456789ABCDEF0023456789ABCDEF",  # K1 = K2 up to parity bits: still single DES
    ],
)
def test_parse_key_hex_rejects_without_echoing(text: str) -> None:
    with pytest.raises(ValueError, match=r".") as caught:
        hsm.parse_key_hex(text)
    message = str(caught.value)
    compact = "".join(text.split())
    # No run of 8 input characters (a DES key half is 16) appears in the message.
    for start in range(len(compact) - 7):
        assert compact[start : start + 8].upper() not in message.upper()
    assert caught.value.__context__ is None


# --- known test keys --------------------------------------------------------------------


def test_known_test_keys() -> None:
    assert TEST_TMK in hsm.KNOWN_TEST_KEYS
    assert V1_TMK in hsm.KNOWN_TEST_KEYS
    assert isinstance(hsm.KNOWN_TEST_KEYS, frozenset)
    assert hsm.is_known_test_key(TEST_TMK)
    assert hsm.is_known_test_key(V1_TMK)


def test_known_test_key_ignores_parity_and_triple_length_form() -> None:
    flipped = bytes([TEST_TMK[0] ^ 1]) + TEST_TMK[1:]
    assert hsm.is_known_test_key(flipped)
    assert hsm.is_known_test_key(TEST_TMK + TEST_TMK[:8])


def test_unknown_keys_are_not_test_keys() -> None:
    assert not hsm.is_known_test_key(hsm.generate_tmk())
    assert not hsm.is_known_test_key(TEST_TMK[:8])
    assert not hsm.is_known_test_key(b"")
    assert not hsm.is_known_test_key(TEST_TMK + bytes(8))


# --- TR-31: store -------------------------------------------------------------------------


def test_wrap_unwrap_round_trip_keeps_the_kcv() -> None:
    tmk = hsm.generate_tmk()
    block = hsm.wrap_tmk(KBPK, tmk)
    unwrapped = hsm.unwrap_tmk(KBPK, block)
    assert unwrapped == tmk
    assert hsm.kcv(unwrapped) == hsm.kcv(tmk)


def test_stored_block_header() -> None:
    block = stored_block()
    assert block.startswith("D0112K0TB00E0000")
    assert len(block) == 112
    header, key = psec.tr31.unwrap(KBPK, block)
    assert (header.version_id, header.key_usage, header.algorithm) == ("D", "K0", "T")
    assert (header.mode_of_use, header.exportability) == ("B", "E")
    assert key == TEST_TMK


def test_block_does_not_contain_the_clear_key() -> None:
    block = stored_block()
    assert TEST_TMK.hex().upper() not in block.upper()
    assert TEST_TMK[:8].hex().upper() not in block.upper()
    assert TEST_TMK[8:].hex().upper() not in block.upper()


def test_wrapping_twice_gives_different_blocks() -> None:
    assert hsm.wrap_tmk(KBPK, TEST_TMK) != hsm.wrap_tmk(KBPK, TEST_TMK)


def assert_clean_error(error: KeyBlockError, block: str) -> None:
    """The message names no key material and no block contents, and psec's exception
    (which quotes block data) is neither the cause nor the context."""
    message = str(error)
    assert block not in message
    assert block[16:32] not in message
    assert block[-32:] not in message
    assert TEST_TMK.hex().upper() not in message.upper()
    assert error.__cause__ is None
    assert error.__context__ is None


def test_unwrap_with_another_kbpk_fails() -> None:
    block = stored_block()
    with pytest.raises(KeyBlockError) as caught:
        hsm.unwrap_tmk(OTHER_KBPK, block)
    assert_clean_error(caught.value, block)


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33])
def test_unwrap_with_a_kbpk_of_the_wrong_length_fails(length: int) -> None:
    with pytest.raises(KeyBlockError, match="32 bytes"):
        hsm.unwrap_tmk(bytes(length), stored_block())


@pytest.mark.parametrize("position", [0, 3, 5, 8, 11, 13, 15, 16, 50, 80, 111])
def test_a_block_with_one_character_changed_fails(position: int) -> None:
    block = stored_block()
    replacement = "0" if block[position] != "0" else "1"
    tampered = block[:position] + replacement + block[position + 1 :]
    with pytest.raises(KeyBlockError) as caught:
        hsm.unwrap_tmk(KBPK, tampered)
    assert_clean_error(caught.value, tampered)


@given(
    position=st.integers(min_value=0, max_value=111),
    replacement=st.characters(codec="ascii"),
)
@settings(max_examples=200)
def test_any_single_character_change_fails(position: int, replacement: str) -> None:
    block = stored_block()
    if block[position] == replacement:
        return
    tampered = block[:position] + replacement + block[position + 1 :]
    with pytest.raises(KeyBlockError):
        hsm.unwrap_tmk(KBPK, tampered)


def test_lower_case_block_fails() -> None:
    """bytes.fromhex would read lower-case hex as the same bytes: canonical form only."""
    block = stored_block()
    with pytest.raises(KeyBlockError):
        hsm.unwrap_tmk(KBPK, block[:16] + block[16:].lower())


@pytest.mark.parametrize(
    "header",
    [
        "D0000P0TE00E0000",  # a PIN key
        "D0000K0TE00E0000",  # other mode of use
        "D0000K0TB00N0000",  # non-exportable
        "D0000K0AB00E0000",  # AES
        "D0000K0TB01E0000",  # key version 01
    ],
)
def test_a_valid_block_with_another_header_fails(header: str) -> None:
    """Correctly MACed under our KBPK, but not a stored TMK block."""
    block = psec.tr31.wrap(KBPK, header, TEST_TMK)
    with pytest.raises(KeyBlockError) as caught:
        hsm.unwrap_tmk(KBPK, block)
    assert_clean_error(caught.value, block)


def test_a_block_with_optional_blocks_fails() -> None:
    header = psec.tr31.Header("D", "K0", "T", "B", "00", "E")
    header.blocks["KS"] = "00604B120F9292800000"
    block = psec.tr31.wrap(KBPK, header, TEST_TMK)
    with pytest.raises(KeyBlockError):
        hsm.unwrap_tmk(KBPK, block)


@pytest.mark.parametrize(
    "key",
    [
        TEST_TMK + TEST_TMK[:8],  # triple length
        TEST_TMK[:8],  # single length
        MAK * 2,  # K1 = K2
    ],
)
def test_a_valid_block_holding_the_wrong_kind_of_key_fails(key: bytes) -> None:
    block = psec.tr31.wrap(KBPK, hsm._STORED_HEADER, key)
    with pytest.raises(KeyBlockError, match="double-length"):
        hsm.unwrap_tmk(KBPK, block)


@pytest.mark.parametrize("block", ["", "D", "D0112", "D0112K0TB00E0000", "not a key block"])
def test_malformed_blocks_fail(block: str) -> None:
    with pytest.raises(KeyBlockError):
        hsm.unwrap_tmk(KBPK, block)


def test_truncated_and_extended_blocks_fail() -> None:
    block = stored_block()
    for candidate in (block[:-2], block[:-32], block + "00", block + "0" * 32):
        with pytest.raises(KeyBlockError):
            hsm.unwrap_tmk(KBPK, candidate)


@pytest.mark.parametrize(
    ("kbpk", "tmk", "match"),
    [
        (bytes(16), TEST_TMK, "32 bytes"),
        (KBPK, TEST_TMK[:8], "16 bytes"),
        (KBPK, TEST_TMK + TEST_TMK[:8], "16 bytes"),
        (KBPK, MAK * 2, "K1 = K2"),
    ],
)
def test_wrap_refuses_bad_keys(kbpk: bytes, tmk: bytes, match: str) -> None:
    with pytest.raises(KeyBlockError, match=match) as caught:
        hsm.wrap_tmk(kbpk, tmk)
    assert tmk.hex().upper() not in str(caught.value).upper()


# --- TR-31: export ------------------------------------------------------------------------


@pytest.mark.parametrize("transport_key", [TRANSPORT_2KEY, TRANSPORT_3KEY])
def test_export_unwraps_under_the_transport_key(transport_key: bytes) -> None:
    exported = hsm.export_for_injection(KBPK, stored_block(), transport_key)
    assert exported.startswith("B0096K0TB00E0000")
    assert TEST_TMK.hex().upper() not in exported
    header, key = psec.tr31.unwrap(transport_key, exported)
    assert key == TEST_TMK
    assert hsm.kcv(key) == "08D7B4FB"
    assert (header.version_id, header.key_usage, header.algorithm) == ("B", "K0", "T")
    assert (header.mode_of_use, header.exportability) == ("B", "E")


@pytest.mark.parametrize("length", [0, 8, 15, 17, 23, 25, 32])
def test_export_refuses_bad_transport_key_lengths(length: int) -> None:
    with pytest.raises(KeyBlockError, match="16 or 24 bytes"):
        hsm.export_for_injection(KBPK, stored_block(), bytes(range(length)))


@pytest.mark.parametrize(
    "transport_key",
    [
        MAK * 2,  # K1 = K2
        MAK + bytes([MAK[0] ^ 1]) + MAK[1:],  # K1 = K2 up to parity
        MAK * 2 + TEST_TMK[:8],  # K1 = K2, 24 bytes
        TEST_TMK[:8] + MAK * 2,  # K2 = K3
    ],
)
def test_export_refuses_single_des_in_disguise(transport_key: bytes) -> None:
    with pytest.raises(KeyBlockError, match="single DES") as caught:
        hsm.export_for_injection(KBPK, stored_block(), transport_key)
    assert transport_key.hex().upper() not in str(caught.value).upper()


def test_export_refuses_the_tmk_as_its_own_transport_key() -> None:
    with pytest.raises(KeyBlockError, match="itself"):
        hsm.export_for_injection(KBPK, stored_block(), TEST_TMK)


def test_export_of_a_block_that_does_not_verify_fails() -> None:
    block = stored_block()
    with pytest.raises(KeyBlockError) as caught:
        hsm.export_for_injection(OTHER_KBPK, block, TRANSPORT_2KEY)
    assert_clean_error(caught.value, block)


# --- warnings -----------------------------------------------------------------------------


def exercise_everything() -> None:
    tmk = hsm.generate_tmk()
    hsm.kcv(tmk)
    hsm.kcv(MAK)
    hsm.decrypt_ecb(tmk, hsm.encrypt_ecb(tmk, PIK))
    hsm.encrypt_ecb(MAK, MAK)
    block = hsm.wrap_tmk(KBPK, tmk)
    hsm.unwrap_tmk(KBPK, block)
    with pytest.raises(KeyBlockError):
        hsm.unwrap_tmk(OTHER_KBPK, block)
    hsm.export_for_injection(KBPK, block, TRANSPORT_2KEY)
    hsm.export_for_injection(KBPK, block, TRANSPORT_3KEY)


def test_no_warning_escapes_even_when_all_are_shown() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exercise_everything()
    assert [str(w.message) for w in caught] == []


def test_the_filter_is_narrow_and_does_not_pile_up() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hsm.kcv(MAK)
        hsm.wrap_tmk(KBPK, TEST_TMK)
        count = len(warnings.filters)
        hsm.wrap_tmk(KBPK, TEST_TMK)
        hsm.unwrap_tmk(KBPK, stored_block())
        assert len(warnings.filters) == count
        assert warnings.filters[0] == hsm._PSEC_FILTER
        # The same warning raised outside psec still gets through.
        warnings.warn("TripleDES elsewhere", CryptographyDeprecationWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["TripleDES elsewhere"]


def test_no_deprecation_warning_in_a_fresh_interpreter() -> None:
    """Outside pytest's own warning handling, with warnings turned into errors."""
    script = textwrap.dedent(
        """
        import psec
        from poshub.terminals import hsm

        kbpk = bytes(range(32))
        tmk = hsm.generate_tmk()
        assert hsm.kcv(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")) == "08D7B4FB"
        assert hsm.kcv(bytes.fromhex("1F2E3D4C5B6A7988")) == "72305BF7"
        assert hsm.decrypt_ecb(tmk, hsm.encrypt_ecb(tmk, bytes(16))) == bytes(16)
        block = hsm.wrap_tmk(kbpk, tmk)
        assert hsm.unwrap_tmk(kbpk, block) == tmk
        try:
            hsm.unwrap_tmk(bytes(32), block)
        except hsm.KeyBlockError:
            pass
        for transport in (bytes(range(16, 32)), bytes(range(40, 64))):
            exported = hsm.export_for_injection(kbpk, block, transport)
            assert psec.tr31.unwrap(transport, exported)[1] == tmk
        print("ok")
        """
    )
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own interpreter
        [
            sys.executable,
            "-W",
            "error::DeprecationWarning",
            "-W",
            "error::UserWarning",
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert "Warning" not in result.stderr
