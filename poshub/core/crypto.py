"""The key vault: everything derived from the key-encrypting key (KEK).

The KEK comes from outside the database (``POSHUB_KEK`` or ``POSHUB_KEK_FILE``) and
never touches it. From it we derive, with HKDF-SHA256 and a distinct label each:

* a data key for AES-256-GCM field encryption of personal data at rest (resident ID
  numbers, settlement account numbers), bound to the column it belongs to;
* token keys for HMAC-SHA256 lookup tokens, so equal values can be found (duplicates,
  blacklist) without storing them in clear;
* the key that signs CSRF tokens;
* the key-block protection key (AES-256) under which terminal master keys are stored
  as TR-31 key blocks (``poshub.terminals.hsm``). Without the KEK a stolen database
  holds no usable terminal key;
* the audit-chain key (HMAC-SHA256 over each audit row, ``poshub.core.audit``) and the
  audit-anchor key (HMAC over each anchor written outside the database,
  ``poshub.core.anchors``), so that a person with write access to the database alone
  cannot recompute the chain after rewriting rows.

Production refuses a weak KEK at start-up (:func:`kek_weakness`); demo and test modes
accept theirs.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from poshub.core.settings import Mode, Settings

log = logging.getLogger(__name__)

KEK_LENGTH_BYTES = 32
_FIELD_CIPHER_VERSION = b"\x01"
_NONCE_LENGTH_BYTES = 12


class KeyMaterialError(Exception):
    """The key-encrypting key is missing or malformed (message names no key material)."""


def _derive(kek: bytes, label: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"poshub/{label}".encode()
    ).derive(kek)


class KeyVault:
    def __init__(self, kek: bytes) -> None:
        if len(kek) != KEK_LENGTH_BYTES:
            raise KeyMaterialError(f"the key-encrypting key must be {KEK_LENGTH_BYTES} bytes")
        self._data_key = AESGCM(_derive(kek, "field-encryption/v1"))
        self._token_key = _derive(kek, "lookup-token/v1")
        self.csrf_key = _derive(kek, "csrf/v1")
        # The key-block protection key (TR-31 KBPK, AES-256) that wraps terminal master
        # keys: derived from the KEK so that a wrapped key block is useless without the
        # KEK, and separated from the field-encryption key by its label.
        self.key_block_key = _derive(kek, "tr31-kbpk/v1")
        # Keyed audit chain (docs/security.md): one key MACs the rows, another the anchors
        # kept outside the database, so neither is usable for the other's job.
        self.audit_key = _derive(kek, "audit-chain/v1")
        self.audit_anchor_key = _derive(kek, "audit-anchor/v1")
        # Uploaded documents, contract PDFs and photos at rest (AES-256-GCM in
        # poshub.core.storage.ContentStore): a label of its own, so a file key never
        # opens a personal-data field and the reverse.
        self.document_key = _derive(kek, "document-encryption/v1")

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """Encrypt a short personal-data field; ``context`` (e.g. the column name) is bound
        as associated data so a ciphertext cannot be moved to another column."""
        nonce = os.urandom(_NONCE_LENGTH_BYTES)
        sealed = self._data_key.encrypt(nonce, plaintext.encode(), context.encode())
        return _FIELD_CIPHER_VERSION + nonce + sealed

    def decrypt(self, blob: bytes, *, context: str) -> str:
        if blob[:1] != _FIELD_CIPHER_VERSION:
            raise KeyMaterialError("unknown field-encryption version")
        nonce = blob[1 : 1 + _NONCE_LENGTH_BYTES]
        return self._data_key.decrypt(
            nonce, blob[1 + _NONCE_LENGTH_BYTES :], context.encode()
        ).decode()

    def token(self, value: str, *, purpose: str) -> str:
        """A deterministic lookup token: HMAC-SHA256 over ``purpose`` and the value, hex."""
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(self._token_key, message, hashlib.sha256).hexdigest()


def load_kek(settings: Settings) -> bytes:
    """Read the KEK from settings; in demo mode create a key file if none exists."""
    if settings.kek:
        return _checked(_parse_hex(settings.kek, "POSHUB_KEK"), "POSHUB_KEK", settings)
    path = settings.kek_file or (
        settings.data_dir / "kek.hex" if settings.mode != Mode.PRODUCTION else None
    )
    if path is None:
        raise KeyMaterialError(
            "no key-encrypting key: set POSHUB_KEK (64 hex digits) or POSHUB_KEK_FILE"
        )
    if not path.exists():
        if settings.mode == Mode.PRODUCTION:
            raise KeyMaterialError(f"key file {path} does not exist")
        _create_key_file(path)
        log.warning("created a new key-encrypting key file at %s (demo/test only)", path)
    return _checked(_parse_hex(path.read_text().strip(), str(path)), str(path), settings)


# Key-encrypting keys that have been published (documentation samples, the test suite's),
# so are not secret whatever their shape. Compared after hex decoding.
_PUBLISHED_KEKS = frozenset(
    bytes.fromhex(text)
    for text in (
        "11" * KEK_LENGTH_BYTES,  # the test suite's KEK (tests/conftest.py)
        "0123456789ABCDEFFEDCBA9876543210" * 2,  # the demo terminal's test key, doubled
        # docs/tms.md's worked example key, and SHA-256 of nothing, printed there too.
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    )
)
_KEK_DISTINCT_BYTES_MIN = 16
"""A random 32-byte key has about 30 distinct byte values; fewer than 16 happens by chance
with probability below 2**-100, so it means a typed or patterned key."""


def kek_weakness(kek: bytes) -> str | None:
    """Why ``kek`` is unfit for production, or ``None``. The reason names the pattern,
    never the key: all one byte, a repeated block, a counting sequence, too few distinct
    bytes, or a published value."""
    if len(kek) < KEK_LENGTH_BYTES:
        return "it is shorter than 32 bytes"
    if len(set(kek)) == 1:
        return "every byte is the same"
    for block in (2, 4, 8, 16):
        if kek == kek[:block] * (len(kek) // block):
            return "it repeats one block"
    steps = {(b - a) % 256 for a, b in itertools.pairwise(kek)}
    if len(steps) == 1:
        return "it is a counting sequence"
    if any(hmac.compare_digest(kek, known) for known in _PUBLISHED_KEKS):
        return "it is a published test or example key"
    if len(set(kek)) < _KEK_DISTINCT_BYTES_MIN:
        return "it has too few distinct bytes to be random"
    return None


def _checked(kek: bytes, source: str, settings: Settings) -> bytes:
    """Production refuses a weak KEK at start-up; demo and test keep their keys."""
    if settings.mode == Mode.PRODUCTION:
        reason = kek_weakness(kek)
        if reason is not None:
            raise KeyMaterialError(
                f"{source} is not acceptable in production: {reason}. Generate a random "
                "key (for example `openssl rand -hex 32`) with your key custodians"
            )
    return kek


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(KEK_LENGTH_BYTES) + "\n")


def _parse_hex(text: str, source: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyMaterialError(f"{source} is not hexadecimal") from None
    if len(key) != KEK_LENGTH_BYTES:
        raise KeyMaterialError(f"{source} must hold {KEK_LENGTH_BYTES * 2} hex digits")
    return key


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mask_tail(value: str, visible: int = 4) -> str:
    """``6222021234567890123`` → ``***************0123``: keeps only the last digits."""
    if len(value) <= visible:
        return "*" * len(value)
    return "*" * (len(value) - visible) + value[-visible:]


def mask_mobile(value: str) -> str:
    """``13905510001`` → ``139****0001``: the carrier prefix and the last four."""
    return value[:3] + "****" + value[-4:] if len(value) >= 7 else "****"


def mask_resident_id(value: str) -> str:
    """``34010419900307123X`` → ``340104********123X`` — region and last four only."""
    if len(value) != 18:
        return mask_tail(value)
    return value[:6] + "*" * 8 + value[-4:]
