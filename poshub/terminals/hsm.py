"""The software HSM: the one module that does terminal key cryptography.

Everything that touches a terminal master key (TMK) in clear goes through here: generating
it, parsing it from the 32 hex digits an operator types in, its key check value (KCV),
wrapping it for storage, unwrapping it, and re-wrapping it for a key-injection device. The
gateway also uses the DES/3DES ECB primitives here to encrypt working keys under the TMK
(spec ``unionpay-pos-8583.md`` §6.3).

Why one module: ``psec`` (TR-31 key blocks) is unmaintained since 2022 and calls
``cryptography``'s deprecated two-key TripleDES. Project rule: only this module imports
``psec``, so it can be replaced here without touching callers. Clear keys never leave this
module except as return values: nothing here logs key bytes, key hex or key-block
contents, or puts them into a ``repr`` or an exception message (``psec``'s own exceptions
quote block contents, so they are replaced, never chained).

Key blocks (TR-31 / ANSI X9.143)
--------------------------------
Stored form, ``wrap_tmk``: header ``D0112K0TB00E0000`` (length filled in by the library):

* version ``D``: the key-block protection key (KBPK) is AES-256
  (``KeyVault.key_block_key``, derived from the KEK), and ``D`` is the AES key-derivation
  binding method (CMAC-authenticated header and key, AES-CBC encrypted key);
* key usage ``K0``: key-encryption / key-wrapping key. A TMK protects the working keys
  (PIK, MAK, TDK) sent in field 62 of the 0810, which is exactly a KEK's job;
* algorithm ``T``: TDES. The spec fixes a double-length 3DES TMK (§6.1, §11.1);
* mode of use ``B``: wrap *and* unwrap. The TMK is a symmetric key shared by two ends: the
  host encrypts working keys under it, the terminal decrypts them, and the block exported
  for injection carries the same attributes as the stored one (a re-wrapped key keeps its
  attributes rather than gaining different ones), so the one header must allow both;
* key version ``00``: not used (no component numbering, no anti-replay versioning);
* exportability ``E``: exportable only under a trusted key-encryption key. The TMK has to
  leave the host once, re-wrapped under a key-injection device's transport key
  (``export_for_injection``); ``N`` would forbid that and ``S`` (exportable under any
  KEK) is more than we need;
* no optional blocks. The key length is masked to 24 bytes (psec's default for ``T``),
  so the block does not tell a double- from a triple-length key.

``unwrap_tmk`` accepts only exactly this header (checked before any cryptography and
authenticated by the block MAC), in canonical upper-case form, so a block wrapped for
another purpose under the same KBPK (say a ``P0`` PIN key) is refused.

Export form, ``export_for_injection``: the same attributes under version ``B``
(``B0096K0TB00E0000``), the TDES key-derivation binding method, because key-injection
devices hold double- or triple-length TDES transport keys.
"""

from __future__ import annotations

import hmac
import re
import secrets
import warnings
from typing import Final

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.utils import CryptographyDeprecationWarning
from psec import tr31 as _tr31

__all__ = [
    "KCV_TRANSPORT_LENGTH",
    "KNOWN_TEST_KEYS",
    "TMK_LENGTH_BYTES",
    "KeyBlockError",
    "combine_components",
    "decrypt_ecb",
    "ecb_cipher",
    "encrypt_ecb",
    "export_for_injection",
    "generate_tmk",
    "is_known_test_key",
    "kcv",
    "parse_key_hex",
    "transport_key_weakness",
    "unwrap_tmk",
    "unwrap_transport_key",
    "wrap_tmk",
    "wrap_transport_key",
]

TMK_LENGTH_BYTES: Final = 16
KBPK_LENGTH_BYTES: Final = 32
_DES_BLOCK_BYTES: Final = 8
_TRANSPORT_KEY_LENGTHS: Final = frozenset({16, 24})
_GENERATE_ATTEMPTS: Final = 8

# Attributes of the stored and the exported key block (see the module docstring). The
# "0000" length is a placeholder: psec computes and writes the real length when wrapping.
_KEY_USAGE: Final = "K0"
_ALGORITHM: Final = "T"
_MODE_OF_USE: Final = "B"
_KEY_VERSION: Final = "00"
_EXPORTABILITY: Final = "E"
_ATTRIBUTES: Final = f"{_KEY_USAGE}{_ALGORITHM}{_MODE_OF_USE}{_KEY_VERSION}{_EXPORTABILITY}"
_STORED_HEADER: Final = f"D0000{_ATTRIBUTES}0000"
_EXPORT_HEADER: Final = f"B0000{_ATTRIBUTES}0000"
# A stored block is exactly: "D", 4-digit length, our attributes, "00" optional blocks,
# "00" reserved, then upper-case hex (encrypted key data and MAC). Requiring the canonical
# form also makes every one-character change fail: bytes.fromhex would otherwise accept a
# lower-case hex digit as the same byte and the block would still verify.
_STORED_BLOCK_RE: Final = re.compile(rf"D[0-9]{{4}}{_ATTRIBUTES}0000[0-9A-F]+")

# ---------------------------------------------------------------------------------------
# Deprecation warnings from psec
#
# psec builds cryptography's TripleDES from the old location and with 16-byte keys, so
# cryptography emits CryptographyDeprecationWarning ("TripleDES has been moved",
# "Two-key TripleDES is deprecated") on every TR-31 operation with a TDES key. Two-key
# 3DES is what the UnionPay spec and TR-31 version B require, so the warning is noise
# here, but it must not hide the same warning raised anywhere else. Hence a filter that
# matches only that category, only messages about TripleDES and only warnings attributed
# to psec's own modules. It is a process-wide filter, installed, never removed:
# warnings.catch_warnings() would swap the global filter list for the duration of a call
# and back, which is not thread-safe (it would silence or un-silence warnings in other
# threads and can clobber their filter changes). Because other code may replace the
# filter list after we are imported (pytest does so around every test, and
# catch_warnings() in any caller drops filters added inside it), the filter is re-asserted
# before each psec call; that is a no-op when it is already the first filter. Our own DES
# (kcv, encrypt_ecb, decrypt_ecb) uses cryptography's decrepit TripleDES with 24-byte
# keys and emits no warning at all.
_PSEC_MODULES: Final = r"psec(\..*)?\Z"
_TRIPLE_DES_MESSAGE: Final = r".*TripleDES"
_PSEC_FILTER: Final = (
    "ignore",
    re.compile(_TRIPLE_DES_MESSAGE, re.IGNORECASE),
    CryptographyDeprecationWarning,
    re.compile(_PSEC_MODULES),
    0,
)


def _silence_psec_triple_des_warnings() -> None:
    """Make sure the psec-only TripleDES deprecation filter is the first warnings filter.

    Idempotent and cheap when the filter is already in place; otherwise
    ``warnings.filterwarnings`` removes any older copy before inserting, so the filter list
    never grows.
    """
    filters = warnings.filters
    if not filters or filters[0] != _PSEC_FILTER:
        warnings.filterwarnings(
            "ignore",
            message=_TRIPLE_DES_MESSAGE,
            category=CryptographyDeprecationWarning,
            module=_PSEC_MODULES,
        )


_silence_psec_triple_des_warnings()


class KeyBlockError(Exception):
    """A key block could not be created, verified or unwrapped.

    The message names what went wrong in general terms only: never key bytes, key hex or
    any part of a key block, since exception messages end up in logs.
    """


# ---------------------------------------------------------------------------------------
# Test keys


def _strip_parity(key: bytes) -> bytes:
    """Clear each byte's parity bit (the low bit): DES ignores it, so two keys that differ
    only there are the same key."""
    return bytes(byte & 0xFE for byte in key)


KNOWN_TEST_KEYS: Final[frozenset[bytes]] = frozenset(
    bytes.fromhex(text)
    for text in (
        # DESIGN §7: the demo terminal's TMK; also the spec's V3 sign-on TMK.
        "0123456789ABCDEFFEDCBA9876543210",
        # Spec §12 V1: TMK of the public MAC worked example.
        "70F2A84CCBC2AE8625CBB0F2C22AB923",
        # Spec §12 V2/V3 PIK and V3 TDK: published, so never acceptable as a TMK either.
        "6B7A1C5D3E4F2091A0B1C2D3E4F50617",
        "00112233445566778899AABBCCDDEEFF",
    )
)
_KNOWN_TEST_KEYS_NO_PARITY: Final = tuple(_strip_parity(key) for key in KNOWN_TEST_KEYS)


def is_known_test_key(key: bytes) -> bool:
    """Whether ``key`` is one of :data:`KNOWN_TEST_KEYS` (published, so not secret).

    Production mode refuses these keys and the demo warns about them; that decision is the
    caller's, this is only the predicate. Parity bits are ignored (they do not change a DES
    key) and a triple-length ``K1 K2 K1`` form counts as its double-length key. Each
    candidate is compared with :func:`hmac.compare_digest` and all of them are compared,
    so the time taken does not depend on the key.
    """
    candidate = bytes(key)
    if len(candidate) == 24 and hmac.compare_digest(candidate[16:], candidate[:8]):
        candidate = candidate[:16]
    candidate = _strip_parity(candidate)
    found = False
    for known in _KNOWN_TEST_KEYS_NO_PARITY:
        found |= hmac.compare_digest(candidate, known)
    return found


# ---------------------------------------------------------------------------------------
# Key generation and parsing

# DES weak and semi-weak keys, with odd parity (FIPS 74 / NIST SP 800-67). A TMK half equal
# to one of these makes encryption an involution (weak) or pairs it with another key
# (semi-weak).
_WEAK_DES_KEYS: Final = frozenset(
    bytes.fromhex(text)
    for text in (
        "0101010101010101",
        "FEFEFEFEFEFEFEFE",
        "E0E0E0E0F1F1F1F1",
        "1F1F1F1F0E0E0E0E",
        "011F011F010E010E",
        "1F011F010E010E01",
        "01E001E001F101F1",
        "E001E001F101F101",
        "01FE01FE01FE01FE",
        "FE01FE01FE01FE01",
        "1FE01FE00EF10EF1",
        "E01FE01FF10EF10E",
        "1FFE1FFE0EFE0EFE",
        "FE1FFE1FFE0EFE0E",
        "E0FEE0FEF1FEF1FE",
        "FEE0FEE0FEF1FEF1",
    )
)


def _with_odd_parity(key: bytes) -> bytes:
    """Set each byte's low bit so the byte has an odd number of one bits (DES parity)."""
    return bytes((byte & 0xFE) | (((byte & 0xFE).bit_count() & 1) ^ 1) for byte in key)


def _same_des_key(first: bytes, second: bytes) -> bool:
    """Whether two 8-byte DES keys are equal ignoring parity bits, in constant time."""
    return hmac.compare_digest(_strip_parity(first), _strip_parity(second))


def _halves_equal(key: bytes) -> bool:
    """Whether a 16-byte key has K1 = K2 (or a 24-byte key K1 = K2 or K2 = K3): 3DES EDE
    with such a key reduces to single DES, i.e. 56 bits of strength."""
    first, second, third = key[:8], key[8:16], key[16:24]
    degenerate = _same_des_key(first, second)
    if third:
        degenerate |= _same_des_key(second, third)
    return degenerate


def generate_tmk() -> bytes:
    """A fresh double-length 3DES terminal master key (16 bytes).

    From the operating system's CSPRNG (:mod:`secrets`), with DES odd parity on every byte
    (terminals and key-injection devices check it), ``K1 != K2`` (else it would be single
    DES) and neither half a DES weak or semi-weak key. A draw that fails is discarded and
    redrawn; that happens with probability about 2**-52, so running out of attempts means
    the random source is broken and we refuse rather than loop.
    """
    for _ in range(_GENERATE_ATTEMPTS):
        key = _with_odd_parity(secrets.token_bytes(TMK_LENGTH_BYTES))
        if _halves_equal(key) or key[:8] in _WEAK_DES_KEYS or key[8:] in _WEAK_DES_KEYS:
            continue
        return key
    raise RuntimeError("the random generator repeatedly produced unusable DES keys")


_HEX_KEY_RE: Final = re.compile(r"[0-9A-Fa-f]{32}")


def parse_key_hex(text: str) -> bytes:
    """Parse a double-length key typed or pasted as 32 hex digits, returning 16 bytes.

    Whitespace between groups (``0123 4567 …``) is allowed and ignored; nothing else is.
    Only ASCII hex digits count (no full-width digits). ``K1 = K2`` is refused because it
    is single DES in disguise (spec §11.1: K1 ≠ K2). Error messages never repeat the input,
    which is a key.
    """
    compact = "".join(text.split())
    if _HEX_KEY_RE.fullmatch(compact) is None:
        raise ValueError("a key must be exactly 32 hexadecimal digits (16 bytes)")
    key = bytes.fromhex(compact)
    if _halves_equal(key):
        raise ValueError("the two halves of the key are equal (K1 = K2 is single DES)")
    return key


# ---------------------------------------------------------------------------------------
# Transport keys (TK / ZMK) under dual control

KCV_TRANSPORT_LENGTH: Final = 6
"""A transport key is named by the first 6 hex digits of its KCV, as key ceremonies do."""

# Single-length keys published in the spec's test vectors (§12 V1 and V3 MAKs): a
# transport key half equal to one of these, or to a half of a KNOWN_TEST_KEYS entry, is
# as public as the whole key.
_PUBLISHED_HALVES: Final = frozenset(
    _strip_parity(half)
    for half in (
        bytes.fromhex("C24A8FB57AA20123"),
        bytes.fromhex("1F2E3D4C5B6A7988"),
        *(key[start : start + 8] for key in KNOWN_TEST_KEYS for start in (0, 8)),
    )
)
_WEAK_DES_KEYS_NO_PARITY: Final = frozenset(_strip_parity(key) for key in _WEAK_DES_KEYS)
_TRANSPORT_DISTINCT_BYTES_MIN: Final = 8
"""16 random bytes (parity bits cleared: 128 values) have about 15 distinct values; fewer
than 8 happens by chance with probability below 2**-40. Fewer means a typed pattern."""


def transport_key_weakness(key: bytes) -> str | None:
    """Why a double-length key (or key component) must not become a transport key, or
    ``None``. Applies in every mode: a transport key protects exported terminal keys, so
    a published or patterned one would hand them out. Parity bits are ignored throughout
    (DES does not use them). The reason names the pattern, never the key."""
    if len(key) != TMK_LENGTH_BYTES:
        return "it is not a double-length key (16 bytes)"
    bare = _strip_parity(key)
    first, second = bare[:8], bare[8:]
    if len(set(bare)) == 1:
        return "every byte is the same"
    if is_known_test_key(key):
        return "it is a published test key"
    if first in _PUBLISHED_HALVES or second in _PUBLISHED_HALVES:
        return "a half of it is a published test key"
    if first == second:
        return "its two halves are equal (single DES)"
    for block in (1, 2, 4):
        if first == first[:block] * (8 // block) or second == second[:block] * (8 // block):
            return "a half of it repeats one short block"
    if first in _WEAK_DES_KEYS_NO_PARITY or second in _WEAK_DES_KEYS_NO_PARITY:
        return "a half of it is a DES weak or semi-weak key"
    if len(set(bare)) < _TRANSPORT_DISTINCT_BYTES_MIN:
        return "it has too few distinct bytes to be random"
    return None


def combine_components(first: bytes, second: bytes) -> bytes:
    """The key two custodians' components make: their XOR, with DES odd parity set on
    every byte (two odd-parity components XOR to even parity)."""
    if len(first) != TMK_LENGTH_BYTES or len(second) != TMK_LENGTH_BYTES:
        raise ValueError("key components must be 16 bytes each")
    return _with_odd_parity(bytes(a ^ b for a, b in zip(first, second, strict=True)))


def wrap_transport_key(kbpk: bytes, transport_key: bytes) -> str:
    """A registered transport key, stored as a TR-31 key block under the KBPK with the
    same attributes as a TMK (``K0``: a key-encryption key, TDES, wrap and unwrap)."""
    return wrap_tmk(kbpk, transport_key)


def unwrap_transport_key(kbpk: bytes, block: str) -> bytes:
    """Inverse of :func:`wrap_transport_key`; keep the result in memory only."""
    return unwrap_tmk(kbpk, block)


# ---------------------------------------------------------------------------------------
# DES / 3DES primitives (spec §6.3)


def _cipher(key: bytes) -> Cipher[modes.ECB]:
    """An ECB cipher for an 8-, 16- or 24-byte DES key.

    Keys are expanded to three-key form before they reach cryptography (``K`` → ``K K K``,
    which is single DES; ``K1 K2`` → ``K1 K2 K1``, which is two-key 3DES EDE): the results
    are identical and cryptography deprecates (and warns about) 8- and 16-byte keys.
    """
    if len(key) == 8:
        full = key * 3
    elif len(key) == 16:
        full = key + key[:8]
    elif len(key) == 24:
        full = key
    else:
        raise ValueError("a DES key must be 8, 16 or 24 bytes long")
    # ECB is not a choice here: the spec encrypts keys and check values block by block.
    return Cipher(TripleDES(full), modes.ECB())  # noqa: S305


def ecb_cipher(key: bytes) -> Cipher[modes.ECB]:
    """The ECB cipher of :func:`encrypt_ecb` for callers that keep an encryptor context
    per key and feed it whole blocks many times (the gateway's MAC and PIN work: building
    a cipher costs more than using one)."""
    return _cipher(key)


def _check_blocks(data: bytes) -> None:
    if not data or len(data) % _DES_BLOCK_BYTES:
        raise ValueError("ECB data must be a non-empty multiple of 8 bytes")


def encrypt_ecb(key: bytes, data: bytes) -> bytes:
    """Encrypt whole 8-byte blocks in ECB mode: single DES for an 8-byte key, two-key 3DES
    (EDE, K1 K2 K1) for 16 bytes, three-key 3DES for 24 bytes.

    This is how the host protects working keys under the TMK in field 62 (spec §6.3).
    No padding: the caller passes whole blocks.
    """
    _check_blocks(data)
    encryptor = _cipher(key).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def decrypt_ecb(key: bytes, data: bytes) -> bytes:
    """Inverse of :func:`encrypt_ecb` (what a terminal does with field 62)."""
    _check_blocks(data)
    decryptor = _cipher(key).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def kcv(key: bytes) -> str:
    """Key check value as spec §6.3 defines it: encrypt eight zero bytes with the key
    (single DES for 8 bytes, two-key 3DES EDE for 16), keep the first 4 bytes, return them
    as 8 upper-case hex characters.

    Safe to show and log: it identifies a key without revealing it, which is how
    operators and terminals confirm that both ends hold the same key.
    """
    return encrypt_ecb(key, bytes(_DES_BLOCK_BYTES))[:4].hex().upper()


# ---------------------------------------------------------------------------------------
# TR-31 key blocks


def _tr31_wrap(kbpk: bytes, header: str, key: bytes) -> str | None:
    """psec's wrap, or ``None`` on any failure (psec's messages may quote block data)."""
    _silence_psec_triple_des_warnings()
    try:
        return _tr31.wrap(kbpk, header, key)
    except Exception:  # any failure means "could not wrap"; the detail is not ours to leak
        return None


def _tr31_unwrap(kbpk: bytes, block: str) -> tuple[_tr31.Header, bytes] | None:
    """psec's unwrap, or ``None`` on any failure (wrong KBPK, bad MAC, malformed block).

    Returning instead of raising inside ``except`` keeps psec's exception (whose message
    quotes the encrypted key data and MAC) out of our exception's ``__context__``.
    """
    _silence_psec_triple_des_warnings()
    try:
        return _tr31.unwrap(kbpk, block)
    except Exception:  # any failure means "does not verify"; see the docstring
        return None


def _check_kbpk(kbpk: bytes) -> None:
    if len(kbpk) != KBPK_LENGTH_BYTES:
        raise KeyBlockError("the key-block protection key must be 32 bytes (AES-256)")


def _check_tmk(tmk: bytes) -> None:
    if len(tmk) != TMK_LENGTH_BYTES:
        raise KeyBlockError("a terminal master key must be 16 bytes (double-length 3DES)")
    if _halves_equal(tmk):
        raise KeyBlockError("the terminal master key has K1 = K2 (single DES)")


def wrap_tmk(kbpk: bytes, tmk: bytes) -> str:
    """Wrap a TMK for storage as a TR-31 version D key block under ``kbpk``.

    ``kbpk`` is ``KeyVault.key_block_key`` (AES-256, derived from the KEK), so a stored
    block is useless without the KEK. The header is described in the module docstring.
    Each call gives a different block (random padding, and the MAC doubles as the IV).
    """
    _check_kbpk(kbpk)
    _check_tmk(tmk)
    block = _tr31_wrap(kbpk, _STORED_HEADER, tmk)
    if block is None:
        raise KeyBlockError("the terminal master key could not be wrapped")
    return block


def unwrap_tmk(kbpk: bytes, block: str) -> bytes:
    """Verify a stored TMK key block and return the clear 16-byte TMK.

    Raises :class:`KeyBlockError` when the block is not in exactly the stored form
    (version ``D``, ``K0 T B 00 E``, no optional blocks, upper-case hex), when it does not
    verify under ``kbpk`` (wrong key, any modified character) or when it holds anything but
    a double-length key with distinct halves. Keep the result in memory only, for as short
    a time as possible.
    """
    _check_kbpk(kbpk)
    if not isinstance(block, str) or _STORED_BLOCK_RE.fullmatch(block) is None:
        raise KeyBlockError("not a terminal master key block in the expected format")
    unwrapped = _tr31_unwrap(kbpk, block)
    if unwrapped is None:
        raise KeyBlockError("the key block does not verify under this key-block protection key")
    header, tmk = unwrapped
    # Belt and braces: the regular expression already fixed these header fields and the
    # block MAC authenticated them.
    if (
        header.version_id != "D"
        or header.key_usage != _KEY_USAGE
        or header.algorithm != _ALGORITHM
        or header.mode_of_use != _MODE_OF_USE
        or header.exportability != _EXPORTABILITY
        or len(header.blocks) != 0
    ):
        raise KeyBlockError("the key block header is not that of a terminal master key")
    if len(tmk) != TMK_LENGTH_BYTES or _halves_equal(tmk):
        raise KeyBlockError("the key block does not hold a double-length 3DES key")
    return tmk


def export_for_injection(kbpk: bytes, block: str, transport_key: bytes) -> str:
    """Re-wrap a stored TMK under a key-injection device's transport key.

    The stored block is verified and unwrapped in memory only, then wrapped as a TR-31
    version ``B`` block (TDES key derivation) with the same attributes (``K0 T B 00 E``).
    The transport key must be double- or triple-length TDES (16 or 24 bytes); a key whose
    halves make 3DES collapse to single DES (K1 = K2, or K2 = K3 for 24 bytes) is refused,
    and so is a transport key equal to the TMK itself.
    """
    if len(transport_key) not in _TRANSPORT_KEY_LENGTHS:
        raise KeyBlockError("the transport key must be 16 or 24 bytes (TDES)")
    if _halves_equal(transport_key):
        raise KeyBlockError("the transport key reduces to single DES (equal halves)")
    tmk = unwrap_tmk(kbpk, block)
    if _same_des_key(transport_key[:8], tmk[:8]) and _same_des_key(transport_key[8:16], tmk[8:]):
        raise KeyBlockError("the transport key must not be the terminal master key itself")
    exported = _tr31_wrap(transport_key, _EXPORT_HEADER, tmk)
    if exported is None:
        raise KeyBlockError("the terminal master key could not be wrapped for injection")
    return exported
