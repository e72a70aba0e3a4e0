"""The TCP side of the gateway: connections, framing and their bounds.

One ``asyncio.Protocol`` per terminal connection (uvloop when installed). It reads
2-byte-length frames (spec §1.1), hands each to the pipeline in order — a terminal has at
most one request outstanding, and requests on one connection are answered in the order
they came — and writes the answer back. Bounds: frame size, connections per address and in
all, the time between frames (idle) and the time to finish a frame once its length has
arrived (a slow sender cannot hold a connection half-open). A frame that cannot be a
frame closes the connection; nothing a connection does affects another.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Final, cast

from poshub.core import limits
from poshub.gateway import codec
from poshub.gateway.pipeline import Gateway

log = logging.getLogger(__name__)

QUEUED_FRAMES_MAX: Final = 8
"""Frames read ahead on one connection before reading pauses (terminals send one at a time)."""


@dataclass(slots=True)
class ServerStats:
    connections: int = 0
    open_connections: int = 0
    refused_connections: int = 0
    frames: int = 0
    closed_bad_frame: int = 0
    closed_idle: int = 0
    errors: int = 0
    per_address: dict[str, int] = field(default_factory=dict)


class GatewayServer:
    def __init__(
        self,
        gateway: Gateway,
        *,
        host: str,
        port: int,
        frame_bytes_max: int = limits.GATEWAY_FRAME_BYTES_MAX,
        idle_seconds: float = limits.GATEWAY_IDLE_SECONDS,
        frame_read_seconds: float = limits.GATEWAY_FRAME_READ_SECONDS,
        connections_per_address_max: int = limits.GATEWAY_CONNECTIONS_PER_ADDRESS_MAX,
        connections_max: int = limits.GATEWAY_CONNECTIONS_MAX,
        reuse_port: bool = False,
    ) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        self.frame_bytes_max = frame_bytes_max
        self.idle_seconds = idle_seconds
        self.frame_read_seconds = frame_read_seconds
        self.connections_per_address_max = connections_per_address_max
        self.connections_max = connections_max
        self.reuse_port = reuse_port
        self.stats = ServerStats()
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self),
            self.host,
            self.port,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
            backlog=1024,
        )
        sockets = self._server.sockets
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        return self.port

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop accepting, let requests being processed finish, close the rest."""
        if self._server is not None:
            self._server.close()
        deadline = asyncio.get_running_loop().time() + drain_seconds
        while (
            any(c.busy for c in self._connections) and asyncio.get_running_loop().time() < deadline
        ):
            await asyncio.sleep(0.01)
        for connection in list(self._connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()

    # --- bookkeeping used by connections -------------------------------------------------
    def admit(self, connection: _Connection, address: str) -> bool:
        stats = self.stats
        count = stats.per_address.get(address, 0)
        if (
            count >= self.connections_per_address_max
            or stats.open_connections >= self.connections_max
        ):
            stats.refused_connections += 1
            return False
        stats.per_address[address] = count + 1
        stats.open_connections += 1
        stats.connections += 1
        self._connections.add(connection)
        return True

    def release(self, connection: _Connection, address: str) -> None:
        if connection not in self._connections:
            return
        self._connections.discard(connection)
        stats = self.stats
        stats.open_connections -= 1
        remaining = stats.per_address.get(address, 1) - 1
        if remaining <= 0:
            stats.per_address.pop(address, None)
        else:
            stats.per_address[address] = remaining


class _Connection(asyncio.Protocol):
    def __init__(self, server: GatewayServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.address = "?"
        self.buffer = bytearray()
        self.frames: collections.deque[bytes] = collections.deque()
        self.busy = False
        self.closing = False
        self.paused = False
        self._idle: asyncio.TimerHandle | None = None
        self._partial: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()

    # --- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without inheriting from it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if peer else "?"
        if not self.server.admit(self, self.address):
            self.closing = True
            self.transport.abort()
            return
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._cancel_timers()
        self.server.release(self, self.address)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buffer += data
        buffer = self.buffer
        while len(buffer) >= codec.LENGTH_PREFIX_BYTES:
            length = int.from_bytes(buffer[:2], "big")
            if length > self.server.frame_bytes_max or length < codec.ENVELOPE_BYTES_MIN:
                self.server.stats.closed_bad_frame += 1
                log.info("closing %s: frame length %d out of bounds", self.address, length)
                self.close()
                return
            if len(buffer) < 2 + length:
                if self._partial is None:
                    self._partial = self.loop.call_later(
                        self.server.frame_read_seconds, self._frame_too_slow
                    )
                break
            self.frames.append(bytes(buffer[2 : 2 + length]))
            del buffer[: 2 + length]
            if self._partial is not None:
                self._partial.cancel()
                self._partial = None
        if self.frames:
            self._arm_idle()
            if (
                len(self.frames) >= QUEUED_FRAMES_MAX
                and not self.paused
                and self.transport is not None
            ):
                self.transport.pause_reading()
                self.paused = True
            if not self.busy:
                self.busy = True
                self.loop.create_task(self._drain())

    # --- processing ---------------------------------------------------------------------------
    async def _drain(self) -> None:
        try:
            while self.frames and not self.closing:
                payload = self.frames.popleft()
                self.server.stats.frames += 1
                try:
                    response = await self.server.gateway.handle(payload)
                except codec.FrameError as error:
                    self.server.stats.closed_bad_frame += 1
                    log.info("closing %s: %s", self.address, error)
                    self.close()
                    return
                except Exception:
                    # Never let one request take the server down; this connection's
                    # terminal gets no answer and will reverse or resend by itself.
                    self.server.stats.errors += 1
                    log.exception("request from %s failed", self.address)
                    self.close()
                    return
                if response is None:
                    self.server.stats.closed_bad_frame += 1
                    self.close()
                    return
                # An empty answer: an advice the network has not answered; the terminal
                # resends it (spec §5.4), so nothing is written and the connection stays.
                if response and self.transport is not None and not self.closing:
                    self.transport.write(response)
                if (
                    self.paused
                    and len(self.frames) < QUEUED_FRAMES_MAX
                    and self.transport is not None
                ):
                    self.transport.resume_reading()
                    self.paused = False
        finally:
            self.busy = False
            if self.frames and not self.closing:
                self.busy = True
                self.loop.create_task(self._drain())

    # --- timers ------------------------------------------------------------------------------------
    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = self.loop.call_later(self.server.idle_seconds, self._idle_timeout)

    def _idle_timeout(self) -> None:
        if self.busy:
            self._arm_idle()
            return
        self.server.stats.closed_idle += 1
        self.close()

    def _frame_too_slow(self) -> None:
        self._partial = None
        self.server.stats.closed_bad_frame += 1
        log.info("closing %s: frame not completed in time", self.address)
        self.close()

    def _cancel_timers(self) -> None:
        for timer in (self._idle, self._partial):
            if timer is not None:
                timer.cancel()
        self._idle = self._partial = None

    def close(self) -> None:
        if self.closing and self.transport is None:
            return
        self.closing = True
        self._cancel_timers()
        if self.transport is not None:
            self.transport.close()
