"""Cookies, CSRF tokens and role declarations for routes.

CSRF: every browser gets a random ``poshub_csrf`` cookie; forms and htmx requests send
``HMAC(csrf_key, cookie)`` back as the ``csrf_token`` field or ``X-CSRF-Token`` header.
A request authenticated by a cookie (staff session, applicant tracking) or posting a
public form must carry it on every state-changing method. Requests authenticated by a
bearer token in a header carry no ambient authority and need none.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from fastapi import Request

from poshub.core.roles import Role

SESSION_COOKIE = "poshub_session"
CSRF_COOKIE = "poshub_csrf"
APPLICANT_COOKIE = "poshub_applicant"
LANG_COOKIE = "poshub_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def safe_local_path(target: str | None, default: str = "/", *, prefix: str = "/") -> str:
    """A redirect target only if it is a path on this site under ``prefix``.

    Refuses scheme-relative ``//host`` and ``/\\host`` (browsers treat a backslash as a
    slash), absolute URLs and control characters, which all lead off-site.
    """
    if (
        not target
        or not target.startswith(prefix)
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 for c in target)
    ):
        return default
    return target


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def proxy_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """``POSHUB_TRUSTED_PROXIES`` as networks (parsed once per distinct setting)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _address(text: str) -> Address | None:
    """An ``X-Forwarded-For`` hop as an address: ``1.2.3.4``, ``1.2.3.4:5678``, ``::1``
    or ``[::1]:5678``; None for anything else (``unknown``, obfuscated names, garbage)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str:
    """The address of the client: the socket peer, unless the peer is a trusted proxy;
    then ``X-Forwarded-For`` is read from the right (the hops the trusted proxies
    appended) and the first hop that is not itself a trusted proxy is the client.

    A client can write anything into the header; only what trusted proxies appended
    counts. A malformed hop ends the walk at the last trusted address before it, and a
    chain of nothing but trusted proxies yields its leftmost hop.
    """
    if not peer:
        return "unknown"
    current = _address(peer)
    if current is None or not trusted or not any(current in net for net in trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not any(address in net for net in trusted):
            break
    return str(current)


def csrf_token_for(key: bytes, cookie_value: str) -> str:
    return hmac.new(key, cookie_value.encode(), hashlib.sha256).hexdigest()


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(24)


async def submitted_csrf_token(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def csrf_valid(request: Request, key: bytes) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    submitted = await submitted_csrf_token(request)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(csrf_token_for(key, cookie), submitted)


Audience = Literal["public", "applicant", "staff", "device"]
"""``device``: a terminal authenticating each request with its own credential (TMS)."""


@dataclass(frozen=True)
class RouteAccess:
    """The declaration every route carries: who may call it."""

    audience: Audience
    roles: frozenset[Role] = frozenset()
