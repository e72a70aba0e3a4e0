"""Working keys, field 62, the CUP ECB MAC and PIN blocks against spec §6–§8 and the test
vectors V1–V4 of §12."""

from __future__ import annotations

from pathlib import Path

import pytest

from poshub.core.crypto import KeyMaterialError
from poshub.core.settings import Mode, Settings
from poshub.gateway import crypto
from poshub.gateway.constants import Rc
from poshub.gateway.crypto import PinError, WorkingKeys, ZonePinKey
from poshub.terminals import hsm
from tests.gateway.test_codec import V4_BODY

# --- V1: the public MAC example -----------------------------------------------------------

V1_TMK = bytes.fromhex("70F2A84CCBC2AE8625CBB0F2C22AB923")
V1_MAK = bytes.fromhex("C24A8FB57AA20123")
V1_MAB = bytes.fromhex(
    "0200302004C020C0981100000000000000005100183402100006324392260009942820D131210112008439"
    "3136363838303134303030303030303030303030303031313536ACF46E73838A82F926000000000000000008"
    "22000001"
)


def _xor(*blocks: bytes) -> bytes:
    out = bytes(8)
    for block in blocks:
        out = bytes(a ^ b for a, b in zip(out, block, strict=True))
    return out


def _blocks(data: bytes) -> list[bytes]:
    padded = data + bytes(-len(data) % 8)
    return [padded[i : i + 8] for i in range(0, len(padded), 8)]


def test_v1_mak_decrypts_from_the_tmk() -> None:
    assert hsm.decrypt_ecb(V1_TMK, bytes.fromhex("96D605EA176B7E9E")) == V1_MAK
    assert hsm.kcv(V1_MAK) == "0547DB3E"


def test_v1_intermediates_step_by_step() -> None:
    """§7.3 steps 1–7 done by hand, each against the published value."""
    blocks = _blocks(V1_MAB)
    assert _xor(*blocks[:4]).hex().upper() == "9A1753638ED222D9"
    folded = _xor(*blocks)
    assert folded.hex().upper() == "4D08F434464FE7BF"
    text = folded.hex().upper().encode()
    c1 = hsm.encrypt_ecb(V1_MAK, text[:8])
    assert c1.hex().upper() == "6A4DF084B6D23759"
    t = _xor(c1, text[8:])
    assert t.hex().upper() == "5E7BC4C2F3E5751F"
    c2 = hsm.encrypt_ecb(V1_MAK, t)
    assert c2.hex().upper() == "8A9E91B88D839AC5"


def test_v1_mac() -> None:
    keys = WorkingKeys(pik=V1_MAK, mak=V1_MAK)
    assert keys.mac(V1_MAB) == b"8A9E91B8"
    assert keys.mac(V1_MAB).hex().upper() == "3841394539314238"
    assert keys.verify_mac(V1_MAB + b"8A9E91B8")
    assert not keys.verify_mac(V1_MAB + b"8A9E91B9")


def test_mac_of_an_aligned_mab_adds_no_padding_block() -> None:
    keys = WorkingKeys(pik=V1_MAK, mak=V1_MAK)
    aligned = V1_MAB + bytes(-len(V1_MAB) % 8)
    # Zero padding is what step 1 appends: the same MAC whether sent aligned or not.
    assert keys.mac(aligned) == keys.mac(V1_MAB)
    assert keys.mac(aligned + bytes(8)) == keys.mac(V1_MAB)


def test_mac_is_uppercase_hex_text() -> None:
    keys = WorkingKeys(pik=V1_MAK, mak=V1_MAK)
    for mab in (b"", b"\x00", b"\xff" * 17, V1_MAB[:33]):
        mac = keys.mac(mab)
        assert len(mac) == 8
        assert all(c in b"0123456789ABCDEF" for c in mac)


def test_double_length_mak_uses_3des() -> None:
    mak16 = V1_MAK + bytes.fromhex("0123456789ABCDEF")
    keys = WorkingKeys(pik=V1_MAK, mak=mak16)
    text = _xor(*_blocks(V1_MAB)).hex().upper().encode()
    c1 = hsm.encrypt_ecb(mak16, text[:8])
    c2 = hsm.encrypt_ecb(mak16, _xor(c1, text[8:]))
    assert keys.mac(V1_MAB) == c2.hex().upper()[:8].encode()
    assert keys.mac(V1_MAB) != b"8A9E91B8"


def test_verify_mac_of_a_body_shorter_than_the_mac() -> None:
    keys = WorkingKeys(pik=V1_MAK, mak=V1_MAK)
    assert not keys.verify_mac(b"")
    assert not keys.verify_mac(b"1234567")


# --- V2: PIN block ------------------------------------------------------------------------

V2_PIK = bytes.fromhex("6B7A1C5D3E4F2091A0B1C2D3E4F50617")
V2_PAN = "6225880123456783"
V2_CLEAR = bytes.fromhex("06126CD6EDCBA987")
V2_FIELD52 = bytes.fromhex("72B4F8429002FD2F")


def test_v2_pin_block() -> None:
    assert hsm.kcv(V2_PIK) == "AA2D167F"
    assert crypto.pin_pan_field(V2_PAN) == bytes.fromhex("0000588012345678")
    assert crypto.clear_pin_block("123456", V2_PAN) == V2_CLEAR
    assert _xor(V2_CLEAR, crypto.pin_pan_field(V2_PAN)) == bytes.fromhex("061234 56FFFFFFFF")
    assert hsm.encrypt_ecb(V2_PIK, V2_CLEAR) == V2_FIELD52
    assert crypto.pin_from_block(V2_CLEAR, V2_PAN) == "123456"


@pytest.mark.parametrize(
    ("pan", "field"),
    [
        ("6225880123456783", "0000588012345678"),
        ("6225880123456789012", "0000012345678901"),
        ("622588012345", "0000062258801234"),
        ("4111111111111111", "0000111111111111"),
    ],
)
def test_pin_pan_field(pan: str, field: str) -> None:
    assert crypto.pin_pan_field(pan).hex().upper() == field


@pytest.mark.parametrize("pin", ["1234", "123456", "000000", "123456789012"])
def test_pin_round_trip(pin: str) -> None:
    assert crypto.pin_from_block(crypto.clear_pin_block(pin, V2_PAN), V2_PAN) == pin


@pytest.mark.parametrize(
    "field_hex",
    [
        "16123456FFFFFFFF",  # format nibble 1
        "03123FFFFFFFFFFF",  # 3 digits
        "0D1234567890123F",  # 13 digits
        "06123A56FFFFFFFF",  # a non-digit
        "0612345600000000",  # filler not F
        "061234560FFFFFFF",  # one filler nibble 0
    ],
)
def test_malformed_pin_block_is_99(field_hex: str) -> None:
    clear = _xor(bytes.fromhex(field_hex), crypto.pin_pan_field(V2_PAN))
    with pytest.raises(PinError) as caught:
        crypto.pin_from_block(clear, V2_PAN)
    assert caught.value.code is Rc.PIN_FORMAT


def test_translate_pin_to_the_zone_key() -> None:
    zpk = ZonePinKey(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    keys = WorkingKeys(pik=V2_PIK, mak=V1_MAK)
    translated = keys.translate_pin(V2_FIELD52, V2_PAN, zpk)
    assert translated != V2_FIELD52
    assert zpk.decrypt_block(translated) == V2_CLEAR
    assert zpk.encrypt_block(V2_CLEAR) == translated


def test_translate_pin_with_the_wrong_pan_or_key_is_99() -> None:
    zpk = ZonePinKey(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    keys = WorkingKeys(pik=V2_PIK, mak=V1_MAK)
    with pytest.raises(PinError) as caught:
        keys.translate_pin(V2_FIELD52, "6225880123456791", zpk)
    assert caught.value.code is Rc.PIN_FORMAT
    other = WorkingKeys(pik=bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")[::-1], mak=V1_MAK)
    with pytest.raises(PinError):
        other.translate_pin(V2_FIELD52, V2_PAN, zpk)


def test_pin_error_text_has_no_pin() -> None:
    error = PinError(Rc.PIN_FORMAT)
    assert "123456" not in str(error)
    assert "99" in str(error)


def test_zone_pin_key_must_be_double_length() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        ZonePinKey(bytes(8))


# --- V3: sign-on field 62 ------------------------------------------------------------------

V3_TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
V3_MAK = bytes.fromhex("1F2E3D4C5B6A7988")
V3_TDK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
V3_62_003 = bytes.fromhex(
    "FF429E3C2366D612834EA3591FD1AA02AA2D167F1F0E1BFFA5BC7EB1000000000000000072305BF7"
)
V3_62_004 = V3_62_003 + bytes.fromhex("31A7364CAC91CA39C0489F69BEC54FA2FB097599")
V3_62_001 = bytes.fromhex("FF429E3C2366D612754D248E1F0E1BFFA5BC7EB172305BF7")


def test_v3_check_values() -> None:
    assert hsm.kcv(V3_TMK) == "08D7B4FB"
    assert hsm.kcv(V3_MAK) == "72305BF7"
    assert hsm.kcv(V3_TDK) == "FB097599"


@pytest.mark.parametrize(
    ("mode", "keys", "expected"),
    [
        pytest.param("003", WorkingKeys(pik=V2_PIK, mak=V3_MAK), V3_62_003, id="003"),
        pytest.param("004", WorkingKeys(pik=V2_PIK, mak=V3_MAK, tdk=V3_TDK), V3_62_004, id="004"),
        pytest.param("001", WorkingKeys(pik=V2_PIK[:8], mak=V3_MAK), V3_62_001, id="001"),
    ],
)
def test_v3_field62(mode: str, keys: WorkingKeys, expected: bytes) -> None:
    assert crypto.field62_for(V3_TMK, keys, mode) == expected
    read = crypto.read_field62(V3_TMK, expected, mode)
    assert (read.pik, read.mak, read.tdk) == (keys.pik, keys.mak, keys.tdk)


@pytest.mark.parametrize(
    ("mode", "data", "corrupt_at"),
    [
        pytest.param("003", V3_62_003, 0, id="003-pik"),
        pytest.param("003", V3_62_003, 17, id="003-pik-cv"),
        pytest.param("003", V3_62_003, 20, id="003-mak"),
        pytest.param("003", V3_62_003, 39, id="003-mak-cv"),
        pytest.param("004", V3_62_004, 45, id="004-tdk"),
        pytest.param("004", V3_62_004, 59, id="004-tdk-cv"),
        pytest.param("001", V3_62_001, 3, id="001-pik"),
        pytest.param("001", V3_62_001, 23, id="001-mak-cv"),
    ],
)
def test_v3_check_value_mismatch(mode: str, data: bytes, corrupt_at: int) -> None:
    corrupted = bytearray(data)
    corrupted[corrupt_at] ^= 0x10
    with pytest.raises(ValueError, match="check value"):
        crypto.read_field62(V3_TMK, bytes(corrupted), mode)


def test_v3_wrong_tmk_fails_the_check_values() -> None:
    with pytest.raises(ValueError, match="check value"):
        crypto.read_field62(V1_TMK, V3_62_003, "003")


@pytest.mark.parametrize(
    ("mode", "data"),
    [
        pytest.param("001", V3_62_003, id="001-given-40"),
        pytest.param("003", V3_62_001, id="003-given-24"),
        pytest.param("003", V3_62_004, id="003-given-60"),
        pytest.param("004", V3_62_003, id="004-given-40"),
        pytest.param("003", V3_62_003[:-1], id="003-given-39"),
    ],
)
def test_field62_of_the_wrong_length(mode: str, data: bytes) -> None:
    with pytest.raises(ValueError, match="62"):
        crypto.read_field62(V3_TMK, data, mode)


def test_sixteen_byte_mak_slot_is_a_double_length_mak() -> None:
    """§6.2: a MAK slot whose second half is not zero holds a double-length MAK."""
    mak16 = bytes.fromhex("1F2E3D4C5B6A79880123456789ABCDEF")
    data = crypto.field62_for(V3_TMK, WorkingKeys(pik=V2_PIK, mak=mak16), "003")
    assert len(data) == 40
    assert crypto.read_field62(V3_TMK, data, "003").mak == mak16


def _odd_parity(key: bytes) -> bool:
    return all(byte.bit_count() % 2 == 1 for byte in key)


@pytest.mark.parametrize(
    ("mode", "pik", "tdk", "length"),
    [("001", 8, None, 24), ("003", 16, None, 40), ("004", 16, 16, 60)],
)
def test_issue_working_keys(mode: str, pik: int, tdk: int | None, length: int) -> None:
    keys, field62 = crypto.issue_working_keys(V3_TMK, mode)
    assert len(keys.pik) == pik
    assert len(keys.mak) == 8
    assert (len(keys.tdk) if keys.tdk else None) == tdk
    assert len(field62) == length
    for key in (keys.pik, keys.mak, keys.tdk or keys.mak):
        assert _odd_parity(key)
    if pik == 16:
        assert keys.pik[:8] != keys.pik[8:]
        assert field62[28:36] == bytes(8)  # single-length MAK in a 16-byte slot
    read = crypto.read_field62(V3_TMK, field62, mode)
    assert (read.pik, read.mak, read.tdk) == (keys.pik, keys.mak, keys.tdk)


def test_issue_working_keys_is_fresh_each_time() -> None:
    first, _ = crypto.issue_working_keys(V3_TMK, "003")
    second, _ = crypto.issue_working_keys(V3_TMK, "003")
    assert first.pik != second.pik
    assert first.mak != second.mak


@pytest.mark.parametrize("mode", ["000", "002", "005", ""])
def test_issue_working_keys_unknown_mode(mode: str) -> None:
    with pytest.raises(ValueError, match="mode"):
        crypto.issue_working_keys(V3_TMK, mode)


# --- V4 and the WorkingKeys object --------------------------------------------------------------


def test_v4_mab_fold_and_mac() -> None:
    mab = V4_BODY[:-8]
    assert _xor(*_blocks(mab)).hex().upper() == "5E9995D205BC05BE"
    assert WorkingKeys(pik=V2_PIK, mak=V3_MAK).mac(mab) == b"B3F93CD3"


def test_working_keys_repr_hides_the_keys() -> None:
    keys = WorkingKeys(pik=V2_PIK, mak=V3_MAK, tdk=V3_TDK)
    for text in (repr(keys), str(keys)):
        for key in (V2_PIK, V3_MAK, V3_TDK):
            assert key.hex() not in text.lower()
            assert key.hex().upper() not in text


@pytest.mark.parametrize("tdk", [None, V3_TDK], ids=["no-tdk", "tdk"])
def test_working_keys_serialise_round_trip(tdk: bytes | None) -> None:
    keys = WorkingKeys(pik=V2_PIK, mak=V3_MAK, tdk=tdk)
    back = WorkingKeys.deserialise(keys.serialise())
    assert (back.pik, back.mak, back.tdk) == (V2_PIK, V3_MAK, tdk)
    assert back.mac(V1_MAB) == keys.mac(V1_MAB)


def test_sign_replaces_only_the_last_eight_bytes() -> None:
    keys = WorkingKeys(pik=V2_PIK, mak=V3_MAK)
    placeholder = V4_BODY[:-8] + b"\x00" * 8
    signed = keys.sign(placeholder)
    assert signed[:-8] == V4_BODY[:-8]
    assert keys.verify_mac(signed)


# --- The zone PIN key from settings -------------------------------------------------------------

ZPK_HEX = "0123456789ABCDEFFEDCBA9876543210"


@pytest.fixture(autouse=True)
def _no_zpk_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read POSHUB_* variables; a developer's own must not decide these tests."""
    monkeypatch.delenv("POSHUB_NETWORK_ZPK", raising=False)
    monkeypatch.delenv("POSHUB_NETWORK_ZPK_FILE", raising=False)


def test_zpk_from_the_setting(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, network_zpk=ZPK_HEX)
    zpk = crypto.load_network_zpk(settings)
    assert zpk.decrypt_block(zpk.encrypt_block(V2_CLEAR)) == V2_CLEAR
    assert zpk.encrypt_block(V2_CLEAR) == hsm.encrypt_ecb(bytes.fromhex(ZPK_HEX), V2_CLEAR)


def test_zpk_file_created_outside_production_and_reused(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.DEMO, data_dir=tmp_path)
    first = crypto.load_network_zpk(settings)
    path = tmp_path / "network-zpk.hex"
    assert path.stat().st_mode & 0o777 == 0o600
    second = crypto.load_network_zpk(settings)
    assert first.encrypt_block(V2_CLEAR) == second.encrypt_block(V2_CLEAR)


def test_zpk_required_in_production(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError):
        crypto.load_network_zpk(Settings(mode=Mode.PRODUCTION, data_dir=tmp_path))
    with pytest.raises(KeyMaterialError, match="does not exist"):
        crypto.load_network_zpk(
            Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, network_zpk_file=tmp_path / "x")
        )


def test_zpk_malformed(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError, match="POSHUB_NETWORK_ZPK"):
        crypto.load_network_zpk(
            Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, network_zpk="00" * 8)
        )
    with pytest.raises(KeyMaterialError) as caught:
        crypto.load_network_zpk(
            Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, network_zpk="zz" * 16)
        )
    assert "zz" not in str(caught.value)
