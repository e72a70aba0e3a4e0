"""The gateway's cryptography: working keys, MAC and PIN translation (spec §6–§8).

* ``issue_working_keys`` draws fresh PIK, MAK (and TDK) at every sign-on and lays out
  field 62 of the 0810 — the keys encrypted under the terminal master key, each with its
  check value (§6.2, §6.3).
* ``WorkingKeys.mac`` is the CUP "ECB" MAC of §7.3 over the MAC element block.
* ``WorkingKeys.translate_pin`` is the only place a PIN block exists in clear: decrypted
  under the terminal's PIK, checked (ISO 9564 format 0), and re-encrypted under the
  network's zone PIN key in the same call. Nothing else in PosHub sees a clear block.

DES contexts are built once per key and reused (ECB keeps no state between blocks), which
is most of the cost of a MAC. Key bytes are never logged or put into messages.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from poshub.core.crypto import KeyMaterialError
from poshub.core.settings import Mode, Settings
from poshub.gateway.constants import NetworkCode, Rc
from poshub.terminals import hsm

DES_BLOCK_BYTES: Final = 8
MAC_FIELD_BYTES: Final = 8
PIN_LENGTH_MIN: Final = 4
PIN_LENGTH_MAX: Final = 12


class PinError(Exception):
    """A PIN block that cannot be translated; ``code`` is the response code to answer."""

    def __init__(self, code: Rc) -> None:
        super().__init__(f"PIN block refused ({code.value})")
        self.code = code


class _Des:
    """A reusable ECB encryptor/decryptor pair for one DES or 3DES key."""

    __slots__ = ("_dec", "_enc")

    def __init__(self, key: bytes) -> None:
        cipher = hsm.ecb_cipher(key)
        self._enc: Any = cipher.encryptor()
        self._dec: Any = cipher.decryptor()

    def encrypt(self, data: bytes) -> bytes:
        return bytes(self._enc.update(data))

    def decrypt(self, data: bytes) -> bytes:
        return bytes(self._dec.update(data))


def _xor_blocks(data: bytes) -> bytes:
    """XOR of every 8-byte block of ``data`` zero-padded to a multiple of 8 (§7.3 1–2)."""
    padded = data + bytes(-len(data) % DES_BLOCK_BYTES)
    acc = 0
    for offset in range(0, len(padded), DES_BLOCK_BYTES):
        acc ^= int.from_bytes(padded[offset : offset + DES_BLOCK_BYTES], "big")
    return acc.to_bytes(DES_BLOCK_BYTES, "big")


def cup_ecb_mac(des: _Des, mab: bytes) -> bytes:
    """Field 64 for ``mab`` (spec §7.3): eight ASCII hex characters."""
    folded = _xor_blocks(mab).hex().upper().encode()
    first = des.encrypt(folded[:8])
    second_input = bytes(a ^ b for a, b in zip(first, folded[8:], strict=True))
    return des.encrypt(second_input).hex().upper()[:8].encode()


def pin_pan_field(pan: str) -> bytes:
    """``0000`` + the 12 rightmost PAN digits excluding the check digit (§8 step 2)."""
    digits = pan[:-1][-12:].rjust(12, "0")
    return bytes.fromhex("0000" + digits)


def clear_pin_block(pin: str, pan: str) -> bytes:
    """ISO 9564 format 0 clear PIN block — for terminals (simulator, tests) only."""
    field_hex = f"0{len(pin):X}{pin}".ljust(16, "F")
    return bytes(a ^ b for a, b in zip(bytes.fromhex(field_hex), pin_pan_field(pan), strict=True))


def pin_from_block(clear: bytes, pan: str) -> str:
    """The PIN in a clear format-0 block, or ``PinError(99)`` if the block is malformed."""
    field_hex = bytes(a ^ b for a, b in zip(clear, pin_pan_field(pan), strict=True)).hex().upper()
    length = int(field_hex[1], 16)
    pin, filler = field_hex[2 : 2 + length], field_hex[2 + length :]
    if (
        field_hex[0] != "0"
        or not PIN_LENGTH_MIN <= length <= PIN_LENGTH_MAX
        or not pin.isdigit()
        or filler != "F" * len(filler)
    ):
        raise PinError(Rc.PIN_FORMAT)
    return pin


class ZonePinKey:
    """The key under which PIN blocks travel to the network (a zone PIN key, ZPK)."""

    __slots__ = ("_des",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise ValueError("the zone PIN key must be 16 bytes")
        self._des = _Des(key)

    def encrypt_block(self, clear: bytes) -> bytes:
        return self._des.encrypt(clear)

    def decrypt_block(self, block: bytes) -> bytes:
        """For the issuer side (the network simulator), which verifies PINs."""
        return self._des.decrypt(block)


@dataclass(slots=True)
class WorkingKeys:
    """A terminal's PIK, MAK and optional TDK from its last sign-on."""

    pik: bytes
    mak: bytes
    tdk: bytes | None = None
    _pik_des: _Des = field(init=False, repr=False)
    _mak_des: _Des = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pik_des = _Des(self.pik)
        self._mak_des = _Des(self.mak)

    def __repr__(self) -> str:  # never the keys themselves
        return "WorkingKeys(<hidden>)"

    def mac(self, mab: bytes) -> bytes:
        """Field 64 over the MAC element block (MTI … the field before 64)."""
        return cup_ecb_mac(self._mak_des, mab)

    def verify_mac(self, body: bytes) -> bool:
        """Whether a message (MTI onwards, field 64 last) carries the right MAC."""
        if len(body) < MAC_FIELD_BYTES:
            return False
        expected = self.mac(body[:-MAC_FIELD_BYTES])
        return hmac.compare_digest(expected, body[-MAC_FIELD_BYTES:])

    def sign(self, body: bytes) -> bytes:
        """``body`` encoded with an 8-byte placeholder in field 64, MAC filled in."""
        return body[:-MAC_FIELD_BYTES] + self.mac(body[:-MAC_FIELD_BYTES])

    def translate_pin(self, block: bytes, pan: str, zpk: ZonePinKey) -> bytes:
        """Field 52 under the PIK → the same PIN under the network's ZPK.

        The clear block lives only inside this call. A malformed block is ``99`` (§8).
        """
        clear = self._pik_des.decrypt(block)
        pin_from_block(clear, pan)  # checks the format; the PIN itself is not kept
        return zpk.encrypt_block(clear)

    def serialise(self) -> bytes:
        """PIK ‖ MAK ‖ TDK with one length byte each, for sealing under the key vault."""
        parts = [self.pik, self.mak, self.tdk or b""]
        return b"".join(bytes([len(p)]) + p for p in parts)

    @classmethod
    def deserialise(cls, data: bytes) -> WorkingKeys:
        parts: list[bytes] = []
        offset = 0
        for _ in range(3):
            length = data[offset]
            parts.append(data[offset + 1 : offset + 1 + length])
            offset += 1 + length
        return cls(pik=parts[0], mak=parts[1], tdk=parts[2] or None)


def _random_des_key(length: int) -> bytes:
    # Odd parity like a TMK; K1 != K2 for double length (else it is single DES).
    while True:
        key = bytes(
            (b & 0xFE) | (((b & 0xFE).bit_count() & 1) ^ 1) for b in secrets.token_bytes(length)
        )
        if length == 8 or key[:8] != key[8:]:
            return key


def issue_working_keys(tmk: bytes, mode: str) -> tuple[WorkingKeys, bytes]:
    """Fresh working keys for a sign-on with 60.3 ``mode`` and field 62 carrying them.

    ``001``: 8-byte PIK and MAK (24 bytes). ``003``: 16-byte PIK, 8-byte MAK in a
    16-byte slot padded with zeros (40 bytes). ``004``: as 003 plus a 16-byte TDK (60).
    """
    if mode == NetworkCode.SIGN_ON_SINGLE:
        keys = WorkingKeys(pik=_random_des_key(8), mak=_random_des_key(8))
    elif mode == NetworkCode.SIGN_ON_DOUBLE:
        keys = WorkingKeys(pik=_random_des_key(16), mak=_random_des_key(8))
    elif mode == NetworkCode.SIGN_ON_DOUBLE_TDK:
        keys = WorkingKeys(pik=_random_des_key(16), mak=_random_des_key(8), tdk=_random_des_key(16))
    else:
        raise ValueError("unknown sign-on key mode")
    return keys, field62_for(tmk, keys, mode)


def field62_for(tmk: bytes, keys: WorkingKeys, mode: str) -> bytes:
    """The 0810 field 62 layout of spec §6.2 for given keys (deterministic, for tests)."""

    def part(key: bytes, slot: int) -> bytes:
        encrypted = hsm.encrypt_ecb(tmk, key)
        encrypted = encrypted + bytes(slot - len(encrypted))
        return encrypted + bytes.fromhex(hsm.kcv(key))

    if mode == NetworkCode.SIGN_ON_SINGLE:
        return part(keys.pik, 8) + part(keys.mak, 8)
    out = part(keys.pik, 16) + part(keys.mak, 16)
    if mode == NetworkCode.SIGN_ON_DOUBLE_TDK:
        assert keys.tdk is not None
        out += part(keys.tdk, 16)
    return out


def read_field62(tmk: bytes, data: bytes, mode: str) -> WorkingKeys:
    """The terminal's side of sign-on: decrypt field 62 and verify every check value.

    Raises ``ValueError`` when a check value does not match (the terminal must then keep
    no new key, §6.3)."""

    def take(offset: int, length: int, slot: int) -> tuple[bytes, int]:
        encrypted = data[offset : offset + length]
        check = data[offset + slot : offset + slot + 4].hex().upper()
        key = hsm.decrypt_ecb(tmk, encrypted)
        if not hmac.compare_digest(hsm.kcv(key), check):
            raise ValueError("a working key's check value does not match")
        return key, offset + slot + 4

    if mode == NetworkCode.SIGN_ON_SINGLE:
        if len(data) != 24:
            raise ValueError("field 62 of a single-length sign-on has 24 bytes")
        pik, offset = take(0, 8, 8)
        mak, _ = take(offset, 8, 8)
        return WorkingKeys(pik=pik, mak=mak)
    expected = 60 if mode == NetworkCode.SIGN_ON_DOUBLE_TDK else 40
    if len(data) != expected:
        raise ValueError("field 62 has the wrong length for its key mode")
    pik, offset = take(0, 16, 16)
    mak_slot = data[offset + 8 : offset + 16]
    mak, offset = take(offset, 8 if mak_slot == bytes(8) else 16, 16)
    tdk = None
    if mode == NetworkCode.SIGN_ON_DOUBLE_TDK:
        tdk, _ = take(offset, 16, 16)
    return WorkingKeys(pik=pik, mak=mak, tdk=tdk)


def load_network_zpk(settings: Settings) -> ZonePinKey:
    """The zone PIN key from ``POSHUB_NETWORK_ZPK`` or its file; outside production a file
    under the data directory is created on first use (the simulator reads the same file)."""
    if settings.network_zpk:
        return ZonePinKey(_zpk_bytes(settings.network_zpk, "POSHUB_NETWORK_ZPK"))
    path = settings.network_zpk_file or (
        settings.data_dir / "network-zpk.hex" if settings.mode != Mode.PRODUCTION else None
    )
    if path is None:
        raise KeyMaterialError(
            "no zone PIN key: set POSHUB_NETWORK_ZPK (32 hex digits) or POSHUB_NETWORK_ZPK_FILE"
        )
    if not path.exists():
        if settings.mode == Mode.PRODUCTION:
            raise KeyMaterialError(f"zone PIN key file {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of the demo created it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(_random_des_key(16).hex().upper() + "\n")
    return ZonePinKey(_zpk_bytes(path.read_text().strip(), str(path)))


def _zpk_bytes(text: str, source: str) -> bytes:
    try:
        return hsm.parse_key_hex(text)
    except ValueError:
        raise KeyMaterialError(f"{source} must hold a double-length key (32 hex digits)") from None
