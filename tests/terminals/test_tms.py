"""TMS request signing (poshub.terminals.tms): fixed vectors, the clock window, and every
part of the request the signature must cover."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest

from poshub.core import limits
from poshub.terminals import tms
from poshub.terminals.tms import Refusal

# The worked example of docs/tms.md (checked there with openssl too).
SECRET_HEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
SECRET = bytes.fromhex(SECRET_HEX)
SERIAL = "SN-A8-000001"
PATH = f"/api/v1/tms/terminals/{SERIAL}/parameters"
HEARTBEAT_PATH = f"/api/v1/tms/terminals/{SERIAL}/heartbeat"
TIMESTAMP = "1767225600"  # 2026-01-01T00:00:00Z
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
GET_SIGNATURE = "c5f4b56ded314806e9444454e00dbc043008ba255925e036c50ca09de87aa6e4"
HEARTBEAT_BODY = (
    b'{"app_version":"2.3.1","firmware_version":"1.4.2","network":"4g",'
    b'"signal_dbm":-71,"battery_percent":86}'
)
HEARTBEAT_SIGNATURE = "2a503ad13164ac7734b7b568e828c886530b050e0786449e9acd0bb20be4ebbc"


def test_canonical_request_is_five_lines() -> None:
    assert tms.canonical_request("get", PATH, "", TIMESTAMP, b"") == (
        f"GET\n{PATH}\n\n{TIMESTAMP}\n{EMPTY_SHA256}".encode()
    )


def test_fixed_vectors() -> None:
    assert tms.sign(SECRET, "GET", PATH, "", TIMESTAMP, b"") == GET_SIGNATURE
    assert tms.sign(SECRET_HEX, "GET", PATH, "", TIMESTAMP, b"") == GET_SIGNATURE
    assert (
        tms.sign(SECRET, "POST", HEARTBEAT_PATH, "", TIMESTAMP, HEARTBEAT_BODY)
        == HEARTBEAT_SIGNATURE
    )


def test_signature_is_plain_hmac_sha256_over_the_canonical_request() -> None:
    """What a vendor implements from the documentation, without our code."""
    body_hash = hashlib.sha256(HEARTBEAT_BODY).hexdigest()
    message = f"POST\n{HEARTBEAT_PATH}\n\n{TIMESTAMP}\n{body_hash}".encode()
    assert hmac.new(SECRET, message, hashlib.sha256).hexdigest() == HEARTBEAT_SIGNATURE


def test_canonical_query_sorts_and_reencodes() -> None:
    assert tms.canonical_query("") == ""
    assert tms.canonical_query("b=2&a=1&a=0") == "a=0&a=1&b=2"
    assert tms.canonical_query("c=x+y&d=%e4%b8%ad&e=") == "c=x%20y&d=%E4%B8%AD&e="
    assert tms.canonical_query("d=中") == "d=%E4%B8%AD"


def test_signed_headers_round_trip() -> None:
    headers = tms.signed_headers(SERIAL, SECRET_HEX, "GET", PATH, now=NOW)
    assert headers == {
        "X-PosHub-Device": SERIAL,
        "X-PosHub-Timestamp": TIMESTAMP,
        "X-PosHub-Signature": GET_SIGNATURE,
    }
    credentials = tms.credentials_from({k.lower(): v for k, v in headers.items()})
    assert credentials == tms.Credentials(SERIAL, TIMESTAMP, GET_SIGNATURE)
    assert tms.verify(SECRET, "GET", PATH, "", TIMESTAMP, b"", GET_SIGNATURE, NOW) is None


def test_signed_headers_sign_the_query_of_the_path() -> None:
    headers = tms.signed_headers(SERIAL, SECRET, "GET", PATH + "?b=2&a=1", now=NOW)
    signature = headers["X-PosHub-Signature"]
    assert tms.verify(SECRET, "GET", PATH, "a=1&b=2", TIMESTAMP, b"", signature, NOW) is None
    assert tms.verify(SECRET, "GET", PATH, "a=1", TIMESTAMP, b"", signature, NOW) == (
        Refusal.BAD_SIGNATURE
    )


def test_signed_headers_default_to_the_current_time() -> None:
    headers = tms.signed_headers(SERIAL, SECRET, "GET", PATH)
    assert tms.timestamp_fresh(headers["X-PosHub-Timestamp"], dt.datetime.now(dt.UTC))


def test_uppercase_hex_signature_is_accepted() -> None:
    upper = GET_SIGNATURE.upper()
    assert tms.verify(SECRET, "GET", PATH, "", TIMESTAMP, b"", upper, NOW) is None


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("POST", PATH, "", b""),
        ("GET", PATH.replace("000001", "000002"), "", b""),
        ("GET", PATH + "/", "", b""),
        ("GET", PATH, "x=1", b""),
        ("GET", PATH, "", b"{}"),
    ],
    ids=["method", "path-serial", "path-slash", "query", "body"],
)
def test_tampering_breaks_the_signature(method: str, path: str, query: str, body: bytes) -> None:
    assert tms.verify(SECRET, method, path, query, TIMESTAMP, body, GET_SIGNATURE, NOW) == (
        Refusal.BAD_SIGNATURE
    )


def test_tampered_heartbeat_body() -> None:
    tampered = HEARTBEAT_BODY.replace(b"86", b"87")
    assert (
        tms.verify(
            SECRET, "POST", HEARTBEAT_PATH, "", TIMESTAMP, tampered, HEARTBEAT_SIGNATURE, NOW
        )
        == Refusal.BAD_SIGNATURE
    )


def test_tampered_timestamp_and_wrong_secret() -> None:
    later = str(int(TIMESTAMP) + 1)
    assert tms.verify(SECRET, "GET", PATH, "", later, b"", GET_SIGNATURE, NOW) == (
        Refusal.BAD_SIGNATURE
    )
    other = bytes(32)
    assert tms.verify(other, "GET", PATH, "", TIMESTAMP, b"", GET_SIGNATURE, NOW) == (
        Refusal.BAD_SIGNATURE
    )


@pytest.mark.parametrize(
    "signature", ["", "zz", "0" * 64, GET_SIGNATURE[:-1], GET_SIGNATURE + "0", "签名"]
)
def test_malformed_signatures_are_bad_not_errors(signature: str) -> None:
    assert tms.verify(SECRET, "GET", PATH, "", TIMESTAMP, b"", signature, NOW) == (
        Refusal.BAD_SIGNATURE
    )


@pytest.mark.parametrize(
    ("offset", "fresh"),
    [
        (0, True),
        (limits.TMS_SIGNATURE_SKEW_SECONDS, True),
        (-limits.TMS_SIGNATURE_SKEW_SECONDS, True),
        (limits.TMS_SIGNATURE_SKEW_SECONDS + 1, False),
        (-limits.TMS_SIGNATURE_SKEW_SECONDS - 1, False),
        (86_400, False),
    ],
)
def test_skew_window(offset: int, fresh: bool) -> None:
    """A correctly signed request is stale outside ±TMS_SIGNATURE_SKEW_SECONDS."""
    now = NOW + dt.timedelta(seconds=offset)
    expected = None if fresh else Refusal.STALE_TIMESTAMP
    assert tms.verify(SECRET, "GET", PATH, "", TIMESTAMP, b"", GET_SIGNATURE, now) == expected
    assert tms.verify(SECRET, "GET", PATH, "", TIMESTAMP, b"", GET_SIGNATURE, now.timestamp()) == (
        expected
    )


@pytest.mark.parametrize("timestamp", ["-1767225600", "1767225600.0", "１７６７", "9" * 13, "abc"])
def test_timestamp_must_be_whole_seconds(timestamp: str) -> None:
    """Even correctly signed, a timestamp that is not plain decimal seconds is refused."""
    signature = tms.sign(SECRET, "GET", PATH, "", timestamp, b"")
    assert tms.verify(SECRET, "GET", PATH, "", timestamp, b"", signature, NOW) == (
        Refusal.STALE_TIMESTAMP
    )


def test_bad_signature_wins_over_stale_timestamp() -> None:
    """Only a holder of the secret learns that its clock is off."""
    late = NOW + dt.timedelta(days=1)
    assert tms.verify(SECRET, "GET", PATH, "", TIMESTAMP, b"", "0" * 64, late) == (
        Refusal.BAD_SIGNATURE
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        tms.verify(SECRET, "GET", PATH, "", TIMESTAMP, b"", GET_SIGNATURE, dt.datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-PosHub-Device": SERIAL, "X-PosHub-Timestamp": TIMESTAMP},
        {"X-PosHub-Device": SERIAL, "X-PosHub-Signature": GET_SIGNATURE},
        {"X-PosHub-Timestamp": TIMESTAMP, "X-PosHub-Signature": GET_SIGNATURE},
        {
            "X-PosHub-Device": " ",
            "X-PosHub-Timestamp": TIMESTAMP,
            "X-PosHub-Signature": GET_SIGNATURE,
        },
    ],
)
def test_missing_headers(headers: dict[str, str]) -> None:
    assert tms.credentials_from(headers) is None


def test_refusal_reasons_are_stable() -> None:
    """They are stored as counter keys and documented; renaming one loses history."""
    assert {str(r) for r in Refusal} == {
        "missing_credential",
        "unknown_device",
        "bad_signature",
        "stale_timestamp",
        "revoked_credential",
        "serial_mismatch",
    }
