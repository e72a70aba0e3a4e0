"""How a terminal proves who it is to the TMS (R8, R17): HMAC-SHA256 request signing
with the per-device secret. Pure: no database, no clock of its own.

Every TMS request carries three headers:

``X-PosHub-Device``
    the device's serial number, exactly as PosHub knows it (upper case);
``X-PosHub-Timestamp``
    the time the request was signed, in whole Unix seconds (decimal digits);
``X-PosHub-Signature``
    ``hex(HMAC-SHA256(secret, canonical request))``, 64 lowercase hexadecimal digits.

The *secret* is the 32-byte device credential issued at allocation (and at a swap),
handed to operations once as 64 hexadecimal digits: the HMAC key is the 32 bytes those
digits encode, not the digits' text. The *canonical request* is five lines joined by
``"\\n"`` (no trailing newline), UTF-8 encoded::

    METHOD            upper case, e.g. GET
    PATH              the URL path, percent-decoded, without the query string
    QUERY             the canonical query string (see canonical_query), "" if none
    TIMESTAMP         the X-PosHub-Timestamp header value, as sent
    BODY-SHA256       lowercase hex SHA-256 of the exact body bytes ("" hashes to e3b0…b855)

The host accepts a request when the signature matches the device's credential in force
and the timestamp is within ``TMS_SIGNATURE_SKEW_SECONDS`` of the host clock. The path
carries the serial, so a signature for one device's URL is worthless for another's.
``docs/tms.md`` is the vendor documentation, with a worked example.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import parse_qsl, quote

from poshub.core import limits

HEADER_DEVICE: Final = "X-PosHub-Device"
HEADER_TIMESTAMP: Final = "X-PosHub-Timestamp"
HEADER_SIGNATURE: Final = "X-PosHub-Signature"

SIGNATURE_HEX_LENGTH: Final = 64
TIMESTAMP_DIGITS_MAX: Final = 12
"""Unix seconds have 10 digits until the year 2286; anything longer is not a timestamp."""


class Refusal(StrEnum):
    """Why a TMS request was refused (401). Counted fleet-wide under this value."""

    MISSING_CREDENTIAL = "missing_credential"
    """One of the three headers is absent or empty."""
    UNKNOWN_DEVICE = "unknown_device"
    """No device has the serial in ``X-PosHub-Device``."""
    BAD_SIGNATURE = "bad_signature"
    """The signature does not match the device's credential (wrong secret, or the method,
    path, query, timestamp or body differ from what was signed)."""
    STALE_TIMESTAMP = "stale_timestamp"
    """Correctly signed, but the timestamp is outside the allowed window (or not a whole
    number of seconds): the device's clock is off, or the request is a replay."""
    REVOKED_CREDENTIAL = "revoked_credential"
    """The device has no credential in force: revoked by a swap or return (or never issued)."""
    SERIAL_MISMATCH = "serial_mismatch"
    """Correctly signed by one device, but for another device's URL."""


@dataclass(frozen=True)
class Credentials:
    """The three authentication headers of one request, as sent."""

    serial: str
    timestamp: str
    signature: str


def credentials_from(headers: Mapping[str, str]) -> Credentials | None:
    """The authentication headers (looked up case-insensitively), or None if any is
    missing or blank."""
    lowered = {key.lower(): value for key, value in headers.items()}
    serial = lowered.get(HEADER_DEVICE.lower(), "").strip()
    timestamp = lowered.get(HEADER_TIMESTAMP.lower(), "").strip()
    signature = lowered.get(HEADER_SIGNATURE.lower(), "").strip()
    if not (serial and timestamp and signature):
        return None
    return Credentials(serial, timestamp, signature)


def _encode(text: str) -> str:
    """RFC 3986 percent-encoding of a query key or value (unreserved characters kept)."""
    return quote(text, safe="-_.~")


def canonical_query(query: str) -> str:
    """``b=2&a=1&a=0`` → ``a=0&a=1&b=2``: pairs decoded, re-encoded per RFC 3986 and sorted
    by key then value, so proxies that re-encode or reorder do not break signatures."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_request(method: str, path: str, query: str, timestamp: str, body: bytes) -> bytes:
    """The exact bytes a TMS signature covers."""
    return "\n".join(
        (method.upper(), path, canonical_query(query), timestamp, body_sha256(body))
    ).encode("utf-8")


def _key(secret: bytes | str) -> bytes:
    """A secret given as text is the 64 hex digits handed to operations."""
    return bytes.fromhex(secret) if isinstance(secret, str) else secret


def sign(
    secret: bytes | str, method: str, path: str, query: str, timestamp: str, body: bytes
) -> str:
    """Lowercase hex HMAC-SHA256 of the canonical request under the device secret."""
    message = canonical_request(method, path, query, timestamp, body)
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def _unix_seconds(now: dt.datetime | float) -> int:
    if isinstance(now, dt.datetime):
        if now.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return int(now.timestamp())
    return int(now)


def signature_matches(
    secret: bytes | str,
    method: str,
    path: str,
    query: str,
    timestamp: str,
    body: bytes,
    signature: str,
) -> bool:
    """Constant-time comparison of ``signature`` with the expected one (case-insensitive
    hex). A signature of the wrong shape still costs one HMAC, so timing tells nothing."""
    expected = sign(secret, method, path, query, timestamp, body).encode("ascii")
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


def timestamp_fresh(
    timestamp: str,
    now: dt.datetime | float,
    *,
    skew_seconds: int = limits.TMS_SIGNATURE_SKEW_SECONDS,
) -> bool:
    """Whether ``timestamp`` (decimal Unix seconds) is within ±``skew_seconds`` of ``now``."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > TIMESTAMP_DIGITS_MAX:
        return False
    return abs(int(timestamp) - _unix_seconds(now)) <= skew_seconds


def verify(
    secret: bytes | str,
    method: str,
    path: str,
    query: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: dt.datetime | float,
    *,
    skew_seconds: int = limits.TMS_SIGNATURE_SKEW_SECONDS,
) -> Refusal | None:
    """None if the request is authentic and fresh, else why not.

    The signature is checked first: ``STALE_TIMESTAMP`` is only ever reported for a
    request signed with the right secret, so it tells nobody else anything.
    """
    if not signature_matches(secret, method, path, query, timestamp, body, signature):
        return Refusal.BAD_SIGNATURE
    if not timestamp_fresh(timestamp, now, skew_seconds=skew_seconds):
        return Refusal.STALE_TIMESTAMP
    return None


# --- The client side (terminal vendors, the terminal simulator, tests) ---------------


def signed_headers(
    serial: str,
    secret: bytes | str,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    now: dt.datetime | float | None = None,
) -> dict[str, str]:
    """The headers that authenticate one TMS request.

    ``path`` may include a query string (``/x?a=1``); ``secret`` is the 32-byte credential
    or its 64 hex digits; ``now`` defaults to the current time. Send ``body`` byte for
    byte as signed.
    """
    bare_path, _, query = path.partition("?")
    timestamp = str(_unix_seconds(time.time() if now is None else now))
    return {
        HEADER_DEVICE: serial,
        HEADER_TIMESTAMP: timestamp,
        HEADER_SIGNATURE: sign(secret, method, bare_path, query, timestamp, body),
    }
