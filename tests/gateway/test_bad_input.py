"""Bad input (spec §1, §2, issue "Bad input"): what the gateway does with bytes that are not
a request of the dialect, and with connections that hold it up.

The rule: a frame that cannot be a frame, or a message whose TID and STAN cannot be read,
closes its connection; a message that can be read that far is answered ``30``, unsigned and
carrying nothing secret. Nothing one connection sends affects another: after every case a
terminal on its own, older connection still gets its sale approved, and the server logs no
error."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from poshub.core.db import Database
from poshub.core.settings import Settings
from poshub.gateway import codec
from poshub.gateway.constants import MTI
from poshub.gateway.server import GatewayServer
from poshub.simulators.terminal import Kind, TerminalClient
from tests.gateway import probes
from tests.gateway.probes import Reply, closed_by_host, framed, raw_body, request, send
from tests.gateway.support import CARD, DEMO_MID, DEMO_TID, TPDU, Env, run

ECHO = {MTI: "0820", "41": DEMO_TID, "42": DEMO_MID, "60": "00000001301"}


def _no_gateway_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("poshub.gateway") and r.levelno >= logging.ERROR
    ]


async def _served(terminal: TerminalClient) -> str:
    """A sale from a terminal on its own (kept-open) connection."""
    return (await terminal.sale(CARD, 100)).response_code


async def _answer_or_close(port: int, data: bytes, *, half_close: bool = False) -> Reply | None:
    """Send ``data`` as it is; the answer, or None when the host closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        if half_close:
            writer.write_eof()
        await writer.drain()
        payload = await probes.read_payload(reader, 3.0)
    finally:
        writer.close()
    return probes.reply_of(payload) if payload is not None else None


def _sale_fields(terminal: TerminalClient) -> dict[str, str]:
    message = request(terminal, Kind.SALE, card=CARD, amount_fen=100)
    message.pop("64")
    return message


# --- Frames and messages that close the connection -------------------------------------------------
def test_what_cannot_be_read_closes_only_its_own_connection(
    gateway_settings: Settings, demo_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="poshub.gateway")

    async def scenario(env: Env) -> dict[str, object]:
        outcomes: dict[str, object] = {}
        async with env.terminal() as terminal:
            await terminal.sign_on()
            keys = terminal.keys
            assert keys is not None
            sale = _sale_fields(terminal)
            good_body = keys.sign(codec.encode({**sale, "64": "00" * 8}))
            twenty_digit_pan = bytes([0x20]) + bytes.fromhex("62258801234567830000")
            header = bytes.fromhex("603100000000")
            cases: dict[str, tuple[bytes, bool]] = {
                "length beyond 2048": (b"\x08\x01" + TPDU + header + good_body, False),
                "length below the envelope": (b"\x00\x05" + TPDU, False),
                "length zero": (b"\x00\x00", False),
                "TPDU not 60": (codec.frame(b"\x00\x00\x03\x00\x00", header, good_body), False),
                "HTTP instead of ISO 8583": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False),
                "truncated, then the peer closes": (
                    (300).to_bytes(2, "big") + TPDU + header + good_body[:40],
                    True,
                ),
                "secondary bitmap": (
                    framed(good_body[:2] + bytes([good_body[2] | 0x80]) + good_body[3:]),
                    False,
                ),
                "field 5 before TID and STAN": (framed(raw_body(sale, {5: b"\x00" * 6})), False),
                "PAN of 20 digits": (framed(raw_body(sale, {2: twenty_digit_pan})), False),
            }
            for name, (data, half_close) in cases.items():
                reply = await _answer_or_close(env.port, data, half_close=half_close)
                outcomes[name] = "closed" if reply is None else reply.code
                outcomes[f"{name}: then"] = await _served(terminal)
        outcomes["errors"] = env.gateway.server.stats.errors
        outcomes["forwarded"] = env.simulator.counters.requests
        return outcomes

    outcomes = run(gateway_settings, demo_database, scenario)
    closed = [k for k in outcomes if not k.endswith(": then") and k not in ("errors", "forwarded")]
    assert {k: outcomes[k] for k in closed} == dict.fromkeys(closed, "closed")
    assert {k: v for k, v in outcomes.items() if k.endswith(": then")} == {
        f"{k}: then": "00" for k in closed
    }
    assert outcomes["errors"] == 0
    assert outcomes["forwarded"] == len(closed)  # only the good sales reached the network
    assert _no_gateway_errors(caplog) == []


# --- Messages answered 30 ------------------------------------------------------------------------------
def test_a_readable_tid_and_stan_get_an_unsigned_30_with_nothing_secret(
    gateway_settings: Settings, demo_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="poshub.gateway")

    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            keys = terminal.keys
            assert keys is not None
            with_pin = request(terminal, Kind.SALE, card=CARD, amount_fen=100)
            with_pin.pop("64")
            swiped = dict(with_pin)
            swiped.pop("2")
            swiped["35"] = CARD.pan + "D3012101" + "0" * 8

            def signed(message: dict[str, str], raw: dict[int, bytes] | None = None) -> bytes:
                return framed(probes.signed_raw_body(keys, message, raw))

            cases = {
                "field 57 after TID and STAN": signed(with_pin, {57: b"\x00\x03ABC"}),
                "field 60 of 18 digits": signed(with_pin, {60: b"\x00\x18" + b"\x22" * 9}),
                "field 63 of 164 bytes": signed(with_pin, {63: b"\x01\x64" + b"A" * 164}),
                "letter in the amount": signed(with_pin, {4: bytes.fromhex("00000000012A")}),
                "MTI 0300": signed({**swiped, MTI: "0300"}),
                "processing code 990000": signed({**swiped, "3": "990000"}),
                "condition code 99": signed({**swiped, "25": "99"}),
            }
            for name, frame in cases.items():
                reply = await send(env.port, frame)
                assert reply is not None, name
                assert reply.code == "30", name
                assert not reply.mac, name
                assert (reply.message["41"], reply.message["11"]) == (DEMO_TID, with_pin["11"]), (
                    name
                )
                assert not (set(reply.message) & probes.SECRET_RESPONSE_FIELDS), name
                assert reply.tpdu == codec.response_tpdu(TPDU), name
                assert (await _served(terminal)) == "00", name
            assert env.simulator.counters.requests == len(cases)
            assert env.gateway.server.stats.errors == 0
        assert _no_gateway_errors(caplog) == []

    run(gateway_settings, demo_database, scenario)


def test_the_largest_frame_the_spec_allows_is_served(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            message = request(terminal, Kind.SALE, card=CARD, amount_fen=100)
            # A chip sale carrying every large field at (or near) its maximum.
            message["36"] = "9" * 104
            message["55"] = "9F2608" + "11" * 8 + "DF01" + "81F0" + "00" * 240
            message["59"] = "A2994" + "S" * 994
            message["62"] = "00" * 512
            room = 2 + 2048 - len(terminal.encode_frame(message)) - 2
            assert 3 <= room <= 163
            message["63"] = "CUP" + " " * (room - 3)
            frame = terminal.encode_frame(message)
            assert int.from_bytes(frame[:2], "big") == 2048
            reply = await send(env.port, frame)
        assert reply is not None
        assert reply.code == "00"

    run(gateway_settings, demo_database, scenario)


# --- Connections that hold the gateway up ------------------------------------------------------------
@asynccontextmanager
async def _bounded_server(env: Env, **bounds: float) -> AsyncIterator[GatewayServer]:
    """A second listener on the same pipeline with small bounds (the production ones are
    minutes long)."""
    server = GatewayServer(env.gateway.gateway, host="127.0.0.1", port=0, **bounds)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop(drain_seconds=1.0)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    writer.write(framed(codec.encode(ECHO)))
    await writer.drain()
    payload = await probes.read_payload(reader, 3.0)
    return "closed" if payload is None else probes.reply_of(payload).code


def test_idle_connections_are_closed_after_the_idle_bound(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with _bounded_server(env, idle_seconds=1.0, frame_read_seconds=5.0) as server:
            silent = await asyncio.open_connection("127.0.0.1", server.port)
            talking = await asyncio.open_connection("127.0.0.1", server.port)
            for _ in range(5):  # 1.5 s in all, never 1 s between two frames
                assert await _echo(*talking) == "00"
                last_frame = time.monotonic()
                await asyncio.sleep(0.3)
            assert await closed_by_host(silent[0], timeout=0.1)  # long gone
            assert await closed_by_host(talking[0], timeout=3.0)
            assert time.monotonic() - last_frame >= 1.0 - 0.1
            assert server.stats.closed_idle == 2
            for _, writer in (silent, talking):
                writer.close()

    run(gateway_settings, demo_database, scenario)


def test_a_half_sent_frame_is_dropped_after_the_frame_read_bound(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with _bounded_server(env, idle_seconds=30.0, frame_read_seconds=0.3) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            frame = framed(codec.encode(ECHO))
            started = time.monotonic()
            writer.write(frame[: len(frame) // 2])
            await writer.drain()
            assert await closed_by_host(reader, timeout=3.0)
            assert 0.25 <= time.monotonic() - started < 3.0
            writer.close()
            assert server.stats.closed_bad_frame == 1
            assert await _echo(*await asyncio.open_connection("127.0.0.1", server.port)) == "00"

    run(gateway_settings, demo_database, scenario)


def test_connections_per_address_are_bounded(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with _bounded_server(env, connections_per_address_max=3) as server:
            admitted = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
            for connection in admitted:
                assert await _echo(*connection) == "00"
            extra = await asyncio.open_connection("127.0.0.1", server.port)
            assert await closed_by_host(extra[0], timeout=1.0)
            assert server.stats.refused_connections == 1
            for connection in admitted:  # the admitted ones are untouched
                assert await _echo(*connection) == "00"
            admitted[0][1].close()
            await probes.eventually(lambda: server.stats.open_connections == 2, timeout=2.0)
            again = await asyncio.open_connection("127.0.0.1", server.port)
            assert await _echo(*again) == "00"
            for _, writer in (*admitted[1:], extra, again):
                writer.close()

    run(gateway_settings, demo_database, scenario)
