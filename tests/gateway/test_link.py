"""``TcpNetworkLink``: matching by (MTI, STAN, RRN) with many requests outstanding, timeouts,
late and malformed responses, reconnection, and ``LinkDown`` when nothing was written."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from poshub.gateway import codec
from poshub.gateway.constants import response_mti
from poshub.gateway.link import LINK_HEADER, LINK_TPDU, FrameReader, LinkDown, TcpNetworkLink
from poshub.simulators.network import NetworkSimulator
from tests.simulators.support import (
    CARD_OPENING_FEN,
    DEBIT_PAN,
    Numbers,
    fixed_clock,
    reversal,
    sale,
    send,
    settings_for,
)

Handler = Callable[[list[codec.Message], asyncio.StreamWriter], Awaitable[None]]


def respond(writer: asyncio.StreamWriter, request: codec.Message, **fields: str) -> None:
    """Write the answer to ``request`` the way the network does (STAN and RRN echoed)."""
    response: codec.Message = {
        "t": response_mti(request["t"]),
        "11": request["11"],
        "37": request["37"],
        "39": "00",
    }
    response.update(fields)
    writer.write(codec.frame(LINK_TPDU, LINK_HEADER, codec.encode(response)))


async def fake_network(batch: int, handler: Handler) -> tuple[asyncio.Server, int]:
    """A server that collects ``batch`` requests per connection, then calls ``handler``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader()
        pending: list[codec.Message] = []
        try:
            while data := await reader.read(65536):
                for payload in frames.feed(data):
                    pending.append(codec.decode(codec.split_envelope(payload).body))
                    if len(pending) == batch:
                        await handler(pending, writer)
                        pending = []
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_many_outstanding_requests_answered_out_of_order_reach_their_callers() -> None:
    count = 200

    async def backwards(requests: list[codec.Message], writer: asyncio.StreamWriter) -> None:
        for request in reversed(requests):
            respond(writer, request, **{"38": request["11"]})

    async def main() -> None:
        server, port = await fake_network(count, backwards)
        link = TcpNetworkLink("127.0.0.1", port, connections=1)
        await link.start()
        numbers = Numbers()
        requests = [sale(numbers, DEBIT_PAN, 10_00) for _ in range(count)]
        responses = await asyncio.gather(*(link.request(r, timeout=5) for r in requests))
        for request, response in zip(requests, responses, strict=True):
            assert response is not None
            assert (response["37"], response["38"]) == (request["37"], request["11"])
        assert (link.counters.sent, link.counters.answered, link.pending) == (count, count, 0)
        await link.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_requests_are_spread_over_every_connection(tmp_path: Path) -> None:
    async def main() -> None:
        simulator = NetworkSimulator(settings_for(tmp_path), port=0, clock=fixed_clock())
        await simulator.start()
        link = TcpNetworkLink("127.0.0.1", simulator.port, connections=4)
        await link.start()
        numbers = Numbers()
        responses = await asyncio.gather(
            *(link.request(sale(numbers, DEBIT_PAN, 1_00), timeout=5) for _ in range(400))
        )
        assert all(r is not None and r["39"] == "00" for r in responses)
        assert simulator.counters.connections == 4
        assert simulator.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN - 400 * 1_00
        await link.close()
        await simulator.stop()

    asyncio.run(main())


def test_a_late_response_is_dropped_and_counted() -> None:
    async def slow(requests: list[codec.Message], writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.3)
        respond(writer, requests[0])

    async def main() -> None:
        server, port = await fake_network(1, slow)
        link = TcpNetworkLink("127.0.0.1", port, connections=1)
        await link.start()
        assert await link.request(sale(Numbers(), DEBIT_PAN, 1_00), timeout=0.1) is None
        assert link.counters.timed_out == 1
        for _ in range(50):
            if link.counters.late:
                break
            await asyncio.sleep(0.02)
        assert (link.counters.late, link.counters.answered, link.pending) == (1, 0, 0)
        assert link.is_up()  # a late answer is not a reason to drop the connection
        await link.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_the_response_mti_is_part_of_the_key() -> None:
    """A late 0210 of a timed-out sale carries the same STAN and RRN as the 0410 of its
    reversal; it must not be taken for it."""

    async def late_original_first(
        requests: list[codec.Message], writer: asyncio.StreamWriter
    ) -> None:
        (request,) = requests
        respond(writer, dict(request, t="0200"), **{"39": "05"})
        respond(writer, request)

    async def main() -> None:
        server, port = await fake_network(1, late_original_first)
        link = TcpNetworkLink("127.0.0.1", port, connections=1)
        await link.start()
        original = sale(Numbers(), DEBIT_PAN, 1_00)
        response = await link.request(reversal(original), timeout=2)
        assert response is not None
        assert (response["t"], response["39"]) == ("0410", "00")
        assert link.counters.late == 1
        await link.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_a_malformed_response_is_logged_by_reason_only_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)

    async def garbage(requests: list[codec.Message], writer: asyncio.StreamWriter) -> None:
        # A 0210 bitmap naming field 2 with a non-digit PAN nibble: undecodable.
        body = bytes.fromhex("0210" + "4000000000000000" + "16" + DEBIT_PAN[:-1] + "A")
        writer.write(codec.frame(LINK_TPDU, LINK_HEADER, body))
        respond(writer, requests[0])

    async def main() -> None:
        server, port = await fake_network(1, garbage)
        link = TcpNetworkLink("127.0.0.1", port, connections=1)
        await link.start()
        response = await link.request(sale(Numbers(), DEBIT_PAN, 1_00), timeout=2)
        assert response is not None  # the good frame after the bad one still matches
        assert link.counters.malformed == 1
        await link.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert "malformed response" in caplog.text
    assert DEBIT_PAN[:-1] not in caplog.text


def test_an_oversized_frame_closes_the_connection_and_answers_none_at_once() -> None:
    async def oversized(requests: list[codec.Message], writer: asyncio.StreamWriter) -> None:
        writer.write(b"\xff\xff" + bytes(16))

    async def main() -> None:
        server, port = await fake_network(1, oversized)
        link = TcpNetworkLink("127.0.0.1", port, connections=1, backoff_min=0.02)
        await link.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await link.request(sale(Numbers(), DEBIT_PAN, 1_00), timeout=5) is None
        assert loop.time() - started < 2
        assert (link.counters.malformed, link.counters.lost) == (1, 1)
        await link.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_link_down_when_nothing_listens() -> None:
    async def main() -> None:
        link = TcpNetworkLink("127.0.0.1", free_port(), connections=2, backoff_min=0.02)
        await link.start()
        assert not link.is_up()
        with pytest.raises(LinkDown):
            await link.request(sale(Numbers(), DEBIT_PAN, 1_00), timeout=1)
        assert (link.counters.sent, link.counters.refused) == (0, 1)
        await link.close()

    asyncio.run(main())


def test_link_down_before_start_and_after_close(tmp_path: Path) -> None:
    async def main() -> None:
        simulator = NetworkSimulator(settings_for(tmp_path), port=0, clock=fixed_clock())
        await simulator.start()
        link = TcpNetworkLink("127.0.0.1", simulator.port, connections=1)
        with pytest.raises(LinkDown):
            await link.request(sale(Numbers(), DEBIT_PAN, 1_00), timeout=1)
        await link.start()
        await send(link, sale(Numbers(), DEBIT_PAN, 1_00))
        await link.close()
        assert not link.is_up()
        with pytest.raises(LinkDown):
            await link.request(sale(Numbers(), DEBIT_PAN, 1_00), timeout=1)
        await simulator.stop()

    asyncio.run(main())


def test_beyond_the_pending_bound_requests_are_refused(tmp_path: Path) -> None:
    async def main() -> None:
        simulator = NetworkSimulator(settings_for(tmp_path), port=0, clock=fixed_clock())
        await simulator.start()
        link = TcpNetworkLink("127.0.0.1", simulator.port, connections=1, pending_max=2)
        await link.start()
        numbers = Numbers()
        # Amounts ending 91 are never answered: two fill the bound.
        silent = [
            asyncio.create_task(link.request(sale(numbers, DEBIT_PAN, 1_91), timeout=0.3))
            for _ in range(2)
        ]
        await asyncio.sleep(0.05)
        assert link.pending == 2
        with pytest.raises(LinkDown):
            await link.request(sale(numbers, DEBIT_PAN, 1_00), timeout=1)
        assert await asyncio.gather(*silent) == [None, None]
        assert link.pending == 0
        await send(link, sale(numbers, DEBIT_PAN, 1_00))
        await link.close()
        await simulator.stop()

    asyncio.run(main())


def test_a_dropped_connection_answers_its_requests_none_and_reconnects(tmp_path: Path) -> None:
    async def main() -> None:
        clock = fixed_clock()
        simulator = NetworkSimulator(settings_for(tmp_path), port=0, clock=clock)
        await simulator.start()
        port = simulator.port
        link = TcpNetworkLink("127.0.0.1", port, connections=2, backoff_min=0.02, backoff_max=0.05)
        await link.start()
        numbers = Numbers()
        loop = asyncio.get_running_loop()
        started = loop.time()
        outstanding = asyncio.create_task(link.request(sale(numbers, DEBIT_PAN, 5_91), timeout=10))
        await asyncio.sleep(0.05)
        await simulator.stop()  # the network restarts while a request is outstanding
        assert await outstanding is None
        assert loop.time() - started < 2  # not the 10 s timeout
        assert link.counters.lost == 1
        with pytest.raises(LinkDown):
            await link.request(sale(numbers, DEBIT_PAN, 1_00), timeout=1)

        restarted = NetworkSimulator(settings_for(tmp_path), port=port, clock=clock)
        await restarted.start()
        for _ in range(100):
            if link.is_up():
                break
            await asyncio.sleep(0.02)
        assert link.is_up()
        assert (await send(link, sale(numbers, DEBIT_PAN, 1_00)))["39"] == "00"
        assert link.counters.reconnects >= 1
        # The restarted simulator kept the state: the 91 sale was applied before the drop.
        assert restarted.balance_fen(DEBIT_PAN) == CARD_OPENING_FEN - 5_91 - 1_00
        await link.close()
        await restarted.stop()

    asyncio.run(main())


def test_identical_requests_outstanding_together_share_the_answer() -> None:
    async def once(requests: list[codec.Message], writer: asyncio.StreamWriter) -> None:
        respond(writer, requests[0])

    async def main() -> None:
        server, port = await fake_network(2, once)
        link = TcpNetworkLink("127.0.0.1", port, connections=1)
        await link.start()
        request = sale(Numbers(), DEBIT_PAN, 1_00)
        both = await asyncio.gather(
            link.request(request, timeout=2), link.request(request, timeout=2)
        )
        assert all(r is not None and r["39"] == "00" for r in both)
        assert (link.counters.answered, link.pending) == (2, 0)
        await link.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_frame_reader_splits_a_stream_into_frames() -> None:
    reader = FrameReader(frame_bytes_max=64)
    one = codec.frame(LINK_TPDU, LINK_HEADER, bytes(10))
    two = codec.frame(LINK_TPDU, LINK_HEADER, bytes(12))
    stream = one + two
    assert reader.feed(stream[:1]) == []
    assert reader.feed(stream[1:5]) == []
    assert reader.feed(stream[5 : len(one) + 3]) == [one[2:]]
    assert reader.feed(stream[len(one) + 3 :]) == [two[2:]]
    with pytest.raises(codec.FrameError):
        FrameReader(frame_bytes_max=64).feed(b"\x00\x41")  # 65 > 64
    with pytest.raises(codec.FrameError):
        FrameReader().feed(b"\x00\x05")  # shorter than TPDU, header, MTI and bitmap


def test_an_unencodable_request_raises_before_anything_is_written(tmp_path: Path) -> None:
    async def main() -> None:
        simulator = NetworkSimulator(settings_for(tmp_path), port=0, clock=fixed_clock())
        await simulator.start()
        link = TcpNetworkLink("127.0.0.1", simulator.port, connections=1)
        await link.start()
        bad = sale(Numbers(), DEBIT_PAN, 1_00)
        bad["41"] = "TOO-LONG-TID"
        with pytest.raises(codec.MessageFormatError):
            await link.request(bad, timeout=1)
        assert (link.counters.sent, link.pending) == (0, 0)
        await link.close()
        await simulator.stop()

    asyncio.run(main())
