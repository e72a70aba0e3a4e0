"""The two reference servers the gateway benchmark compares PosHub with.

    python -m bench.gateway_servers echo  --port P
    python -m bench.gateway_servers naive --port P --database FILE

* ``echo`` — the limit: reads 2-byte-length frames and writes each one straight back. No
  decoding, no work: what the event loop, the sockets and the load generator cost.
* ``naive`` — a straightforward host: decodes the request with pyiso8583 against the same
  dialect spec, inserts one row and commits it to SQLite (WAL, ``synchronous=FULL``) per
  message, encodes a ``00`` response. No MAC, no checks, no network: the baseline the issue
  asks PosHub to beat by 2.5× while doing all of that.

Both use uvloop, like the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sqlite3
from pathlib import Path
from typing import cast

from poshub.gateway import codec
from poshub.gateway.constants import F_RESPONSE_CODE, F_RRN, MTI, response_mti

FRAME_BYTES_MAX = 2048


class _Framed(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without inheriting from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2:
            length = int.from_bytes(self.buffer[:2], "big")
            if length > FRAME_BYTES_MAX:
                assert self.transport is not None
                self.transport.close()
                return
            if len(self.buffer) < 2 + length:
                return
            payload = bytes(self.buffer[2 : 2 + length])
            del self.buffer[: 2 + length]
            self.frame(payload)

    def frame(self, payload: bytes) -> None:
        raise NotImplementedError


class Echo(_Framed):
    def frame(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(len(payload).to_bytes(2, "big") + payload)


class Naive(_Framed):
    connection: sqlite3.Connection
    counter = 0

    def frame(self, payload: bytes) -> None:
        assert self.transport is not None
        envelope = codec.split_envelope(payload)
        request = codec.decode(envelope.body)
        Naive.counter += 1
        rrn = f"{Naive.counter:012d}"
        self.connection.execute(
            "INSERT INTO journal (rrn, tid, stan, amount) VALUES (?, ?, ?, ?)",
            (rrn, request.get("41"), request.get("11"), request.get("4")),
        )
        self.connection.commit()
        response = {MTI: response_mti(request[MTI])}
        for key in ("2", "3", "4", "11", "25", "41", "42", "49", "60"):
            if key in request:
                response[key] = request[key]
        response[F_RRN] = rrn
        response[F_RESPONSE_CODE] = "00"
        body = codec.encode(response)
        self.transport.write(codec.frame(codec.response_tpdu(envelope.tpdu), envelope.header, body))


def open_journal(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level="DEFERRED")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS journal (rrn TEXT PRIMARY KEY, tid TEXT, stan TEXT, amount TEXT)"
    )
    connection.commit()
    return connection


async def serve(kind: str, port: int, database: Path | None) -> None:
    loop = asyncio.get_running_loop()
    if kind == "naive":
        assert database is not None
        Naive.connection = open_journal(database)
        factory: type[_Framed] = Naive
    else:
        factory = Echo
    server = await loop.create_server(factory, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["echo", "naive"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", type=Path)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(serve(args.kind, args.port, args.database))


if __name__ == "__main__":
    main()
