"""The gateway's link to the card network (docs/gateway.md, "The network link").

``NetworkLink`` is the one interface the pipeline uses; ``TcpNetworkLink`` implements it
over a few persistent TCP connections (``limits.NETWORK_LINK_CONNECTIONS``) in the same
framing and dialect as terminals. Unlike a terminal connection, many requests are
outstanding on one connection at once, and answers come back in any order: each is
matched to its request by (response MTI, field 11, field 37), as jPOS's QMUX does. The
MTI is part of the key because a 0400 reuses the RRN (and often the STAN) of its
original: a late 0210 of a timed-out sale must not be taken for the 0410 of its reversal.

The outcomes the caller must tell apart:

* a response: the network answered;
* ``None``: the request was written to a socket and no answer came in time (or the
  connection dropped while it was outstanding) — the network may have acted on it, so the
  gateway answers the terminal ``98`` and reverses upstream;
* ``LinkDown``: nothing was written (no connection, or too many requests outstanding) —
  the network cannot have acted on it, so ``92`` and no reversal.

Nothing here logs a field value: a malformed response is logged by its reason only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Final, Protocol, cast

from poshub.core import limits
from poshub.core.settings import Settings
from poshub.gateway import codec
from poshub.gateway.constants import F_RRN, F_STAN, MTI, response_mti

log = logging.getLogger(__name__)

LINK_TPDU: Final = bytes.fromhex("6000000000")
LINK_HEADER: Final = bytes.fromhex("603100000000")
_LENGTH_BYTES: Final = codec.LENGTH_PREFIX_BYTES

MatchKey = tuple[str, str, str]
"""(response MTI, field 11, field 37) of an outstanding request."""


class LinkDown(Exception):
    """The request was not written to any connection: the network never saw it."""


class NetworkLink(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def is_up(self) -> bool: ...

    async def request(self, message: codec.Message, *, timeout: float) -> codec.Message | None:
        """The network's answer to ``message``; None when it was written but not answered
        within ``timeout`` seconds. Raises ``LinkDown`` when it could not be written."""
        ...


@dataclass(slots=True)
class LinkCounters:
    """Running totals since the link was built (read them, do not reset them)."""

    sent: int = 0
    """Requests written to a socket."""
    answered: int = 0
    """Requests that got their response."""
    timed_out: int = 0
    """Requests written and not answered within their timeout."""
    lost: int = 0
    """Requests outstanding on a connection when it dropped (answered None at once)."""
    late: int = 0
    """Responses that matched no outstanding request (timed out before, or unknown)."""
    refused: int = 0
    """Requests not written: no connection up, or the pending bound reached."""
    malformed: int = 0
    """Response frames that could not be decoded (dropped)."""
    reconnects: int = 0
    """Connections established again after a drop or a failed attempt."""


class FrameReader:
    """Splits a byte stream into frames by their 2-byte length prefix.

    ``feed`` returns the payloads (TPDU onwards) that are complete. A length outside
    [envelope minimum, ``frame_bytes_max``] raises ``codec.FrameError``: the stream cannot
    be resynchronised after that, so the caller closes the connection. The buffer never
    holds more than one frame plus what arrived with it.
    """

    __slots__ = ("_buffer", "_frame_bytes_max")

    def __init__(self, frame_bytes_max: int = limits.GATEWAY_FRAME_BYTES_MAX) -> None:
        self._buffer = bytearray()
        self._frame_bytes_max = frame_bytes_max

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        offset = 0
        available = len(buffer)
        while available - offset >= _LENGTH_BYTES:
            length = int.from_bytes(buffer[offset : offset + _LENGTH_BYTES], "big")
            if not codec.ENVELOPE_BYTES_MIN <= length <= self._frame_bytes_max:
                raise codec.FrameError("frame length out of bounds")
            end = offset + _LENGTH_BYTES + length
            if end > available:
                break
            frames.append(bytes(buffer[offset + _LENGTH_BYTES : end]))
            offset = end
        if offset:
            # One deletion per read, not per frame: a read carrying many frames stays linear.
            del buffer[:offset]
        return frames


class _Waiter:
    __slots__ = ("connection", "future", "key")

    def __init__(
        self, key: MatchKey, future: asyncio.Future[codec.Message | None], connection: _Connection
    ) -> None:
        self.key = key
        self.future = future
        self.connection = connection


class _Connection(asyncio.Protocol):
    """One persistent connection: writes frames, reads and dispatches responses."""

    def __init__(self, link: TcpNetworkLink) -> None:
        self._link = link
        self._reader = FrameReader()
        self.transport: asyncio.Transport | None = None
        self.waiters: set[_Waiter] = set()
        self.paused = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass).
        self.transport = cast(asyncio.Transport, transport)

    def is_up(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except codec.FrameError as error:
            log.warning("network link: closing a connection: %s", error)
            self._link.counters.malformed += 1
            if self.transport is not None:
                self.transport.close()
            return
        for payload in frames:
            self._link._on_response(payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._link._on_connection_lost(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False


class TcpNetworkLink:
    """``NetworkLink`` over persistent TCP connections with STAN/RRN matching."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connections: int = limits.NETWORK_LINK_CONNECTIONS,
        pending_max: int = limits.GATEWAY_PENDING_REQUESTS_PER_LINK_MAX,
        connect_timeout: float = limits.NETWORK_LINK_CONNECT_SECONDS,
        backoff_min: float = limits.NETWORK_LINK_BACKOFF_SECONDS_MIN,
        backoff_max: float = limits.NETWORK_LINK_BACKOFF_SECONDS_MAX,
    ) -> None:
        if connections < 1:
            raise ValueError("a network link needs at least one connection")
        self.host = host
        self.port = port
        self.counters = LinkCounters()
        self._slots: list[_Connection | None] = [None] * connections
        self._next = 0
        self._pending: dict[MatchKey, list[_Waiter]] = {}
        self._pending_count = 0
        self._pending_max = pending_max
        self._connect_timeout = connect_timeout
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._supervisors: list[asyncio.Task[None]] = []
        self._closing = False

    @classmethod
    def from_settings(cls, settings: Settings) -> TcpNetworkLink:
        return cls(settings.network_host, settings.network_port)

    # --- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        """Open the connections. Returns once each has been tried once, so ``is_up`` tells
        the truth right away; connections that failed keep retrying in the background."""
        if self._supervisors:
            return
        self._closing = False
        loop = asyncio.get_running_loop()
        first_attempts = [loop.create_future() for _ in self._slots]
        self._supervisors = [
            asyncio.create_task(self._supervise(slot, first), name=f"network-link-{slot}")
            for slot, first in enumerate(first_attempts)
        ]
        await asyncio.gather(*first_attempts)

    async def close(self) -> None:
        """Close every connection; outstanding requests are answered None."""
        self._closing = True
        for connection in self._slots:
            if connection is not None and connection.transport is not None:
                connection.transport.close()
        for task in self._supervisors:
            task.cancel()
        for task in self._supervisors:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._supervisors = []
        self._slots = [None] * len(self._slots)
        for waiters in list(self._pending.values()):
            for waiter in waiters:
                self._resolve_lost(waiter)
        self._pending.clear()
        self._pending_count = 0

    def is_up(self) -> bool:
        return any(c is not None and c.is_up() for c in self._slots)

    @property
    def pending(self) -> int:
        """Requests outstanding now."""
        return self._pending_count

    async def _supervise(self, slot: int, first_attempt: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        delay = self._backoff_min
        ever_connected = False
        failed_before = False
        while not self._closing:
            try:
                _, connection = await asyncio.wait_for(
                    loop.create_connection(lambda: _Connection(self), self.host, self.port),
                    timeout=self._connect_timeout,
                )
            except (OSError, TimeoutError) as error:
                if not failed_before:
                    # Once per outage, not once per attempt: a down network must not
                    # flood the log at the backoff rate.
                    log.warning(
                        "network link: cannot connect to %s:%s (%s); retrying",
                        self.host,
                        self.port,
                        type(error).__name__,
                    )
                failed_before = True
                if not first_attempt.done():
                    first_attempt.set_result(None)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            if ever_connected or failed_before:
                self.counters.reconnects += 1
                log.info("network link: connected to %s:%s again", self.host, self.port)
            ever_connected, failed_before = True, False
            delay = self._backoff_min
            self._slots[slot] = connection
            if not first_attempt.done():
                first_attempt.set_result(None)
            try:
                await connection.closed
            finally:
                if self._slots[slot] is connection:
                    self._slots[slot] = None
            if not self._closing:
                log.warning("network link: connection to %s:%s lost", self.host, self.port)
                await asyncio.sleep(delay)

    # --- requests -----------------------------------------------------------------
    def _pick(self) -> _Connection:
        """The next connection round-robin, preferring one whose socket is not backed
        up; an all-backed-up link still queues (bounded by ``pending_max``)."""
        count = len(self._slots)
        fallback: _Connection | None = None
        for step in range(count):
            connection = self._slots[(self._next + step) % count]
            if connection is None or not connection.is_up():
                continue
            if connection.paused:
                fallback = fallback or connection
                continue
            self._next = (self._next + step + 1) % count
            return connection
        if fallback is not None:
            return fallback
        raise LinkDown("no connection to the network")

    async def request(self, message: codec.Message, *, timeout: float) -> codec.Message | None:
        if self._pending_count >= self._pending_max:
            self.counters.refused += 1
            raise LinkDown("too many requests outstanding on the network link")
        try:
            connection = self._pick()
        except LinkDown:
            self.counters.refused += 1
            raise
        body = codec.encode(message)
        if len(body) + len(LINK_TPDU) + len(LINK_HEADER) > limits.GATEWAY_FRAME_BYTES_MAX:
            raise codec.MessageFormatError("message longer than a frame may be")
        key = (response_mti(message[MTI]), message.get(F_STAN, ""), message.get(F_RRN, ""))
        loop = asyncio.get_running_loop()
        waiter = _Waiter(key, loop.create_future(), connection)
        # Registered before the write: a response cannot overtake its own registration.
        self._pending.setdefault(key, []).append(waiter)
        self._pending_count += 1
        connection.waiters.add(waiter)
        assert connection.transport is not None
        connection.transport.write(codec.frame(LINK_TPDU, LINK_HEADER, body))
        self.counters.sent += 1
        timer = loop.call_later(timeout, self._expire, waiter)
        try:
            return await waiter.future
        finally:
            timer.cancel()
            self._forget(waiter)

    def _forget(self, waiter: _Waiter) -> None:
        waiters = self._pending.get(waiter.key)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            self._pending_count -= 1
            if not waiters:
                del self._pending[waiter.key]
        waiter.connection.waiters.discard(waiter)

    def _expire(self, waiter: _Waiter) -> None:
        if not waiter.future.done():
            self.counters.timed_out += 1
            waiter.future.set_result(None)
        self._forget(waiter)

    def _resolve_lost(self, waiter: _Waiter) -> None:
        if not waiter.future.done():
            self.counters.lost += 1
            waiter.future.set_result(None)

    def _on_connection_lost(self, connection: _Connection) -> None:
        # Written but unanswered: the network may have acted on them, so they end like a
        # timeout (None → 98 and a reversal), only sooner.
        for waiter in list(connection.waiters):
            self._resolve_lost(waiter)
            self._forget(waiter)

    def _on_response(self, payload: bytes) -> None:
        try:
            envelope = codec.split_envelope(payload)
            message = codec.decode(envelope.body)
        except (codec.FrameError, codec.MessageFormatError) as error:
            # The reason names a field and a position, never a value (codec's rule).
            self.counters.malformed += 1
            log.warning("network link: dropped a malformed response: %s", error)
            return
        key = (message[MTI], message.get(F_STAN, ""), message.get(F_RRN, ""))
        waiters = self._pending.pop(key, None)
        if waiters is None:
            self.counters.late += 1
            return
        # Identical requests outstanding together (a resend) share the one answer.
        self._pending_count -= len(waiters)
        for waiter in waiters:
            waiter.connection.waiters.discard(waiter)
            if not waiter.future.done():
                self.counters.answered += 1
                waiter.future.set_result(message)
