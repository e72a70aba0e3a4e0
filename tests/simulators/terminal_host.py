"""A tiny scripted host for terminal-side tests: answers sign-on with fixed keys (spec V3),
MACs its answers, and can be told to stay silent, close, or spoil a MAC.

It is not the gateway: it knows just enough of the dialect to exercise a terminal.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from poshub.gateway import codec, crypto
from poshub.gateway.codec import Message
from poshub.gateway.constants import MAC_MTIS, response_mti
from poshub.gateway.fields import Settlement48, parameter_download62

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PIK = bytes.fromhex("6B7A1C5D3E4F2091A0B1C2D3E4F50617")
MAK = bytes.fromhex("1F2E3D4C5B6A7988")
TDK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
V3_KEYS = crypto.WorkingKeys(pik=PIK, mak=MAK, tdk=TDK)
HOST_DATE = "0601"
HOST_TIME = "101530"

# What the host does with one request: answer, say nothing, close the connection, answer
# with a spoiled MAC, or answer with a given response code.
SILENT = "silent"
CLOSE = "close"
BAD_MAC = "bad_mac"


@dataclass
class ScriptedHost:
    keys: crypto.WorkingKeys = field(default_factory=lambda: V3_KEYS)
    batch: str = "000001"
    settle_result: str = "1"
    requirement: int = 0
    sign_on_code: str = "00"
    corrupt_check_value: bool = False
    merchant_name: str = "测试商户"
    codes: dict[str, str] = field(default_factory=dict)
    """Response code by amount (12 digits) for 0100/0200/0220; default 00."""
    script: list[str] = field(default_factory=list)
    """Actions for the next financial requests (0100/0200/0220/0400), consumed in order."""
    received: list[Message] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    react: Callable[[Message], str | None] | None = None
    port: int = 0
    _rrn: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def mtis(self) -> list[str]:
        return [m["t"] for m in self.received]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                prefix = await reader.readexactly(2)
                payload = await reader.readexactly(int.from_bytes(prefix, "big"))
                envelope = codec.split_envelope(payload)
                request = codec.decode(envelope.body)
                self.received.append(request)
                self.frames.append(prefix + payload)
                action = None
                if request["t"] in MAC_MTIS:
                    if self.react is not None:
                        action = self.react(request)
                    if action is None and self.script:
                        action = self.script.pop(0)
                if action == SILENT:
                    continue
                if action == CLOSE:
                    break
                response = self.answer(request)
                body = codec.encode(response)
                if response["t"][:3] in ("011", "021", "023", "041") and "64" in response:
                    body = self.keys.sign(body)
                    if action == BAD_MAC:
                        body = body[:-1] + bytes([body[-1] ^ 0x01])
                writer.write(
                    codec.frame(
                        codec.response_tpdu(envelope.tpdu),
                        codec.response_header(envelope.header, self.requirement),
                        body,
                    )
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def answer(self, request: Message) -> Message:
        mti = request["t"]
        response: Message = {"t": response_mti(mti)}
        for key in ("2", "3", "4", "11", "25", "41", "42", "49", "60"):
            if key in request:
                response[key] = request[key]
        response["12"], response["13"] = HOST_TIME, HOST_DATE
        if mti == "0800":
            return self._management(request, response)
        if mti == "0820":
            response["39"] = "00"
            return response
        if mti == "0500":
            totals = Settlement48.parse(request["48"])
            response["48"] = Settlement48(
                totals.domestic, self.settle_result, totals.foreign, "1"
            ).text()
            response["39"] = "00"
            return response
        if mti == "0320":
            response["39"] = "00"
            return response
        code = self.codes.get(request.get("4", ""), "00")
        self._rrn += 1
        response["15"] = HOST_DATE
        response["32"] = "89800000"
        response["37"] = f"{self._rrn:012d}"
        response["39"] = code
        if code == "00" and mti != "0400":
            response["38"] = f"A{self._rrn:05d}"
        if request.get("59", "").startswith("A3"):
            response["59"] = f"A4020V{self._rrn:019d}"
            response["63"] = "WXP"
        elif "2" in request or "35" in request:
            response["63"] = "CUP中国银联"
        if mti == "0200" and request.get("3") == "310000":
            response["54"] = "1002156C000000012345"
        response["64"] = "00" * 8
        return response

    def _management(self, request: Message, response: Message) -> Message:
        network_code = request["60"][8:11]
        response["60"] = "00" + self.batch + network_code
        if network_code in ("001", "003", "004"):
            response["39"] = self.sign_on_code
            if self.sign_on_code == "00":
                keys = self.keys
                if network_code == "001":
                    keys = crypto.WorkingKeys(pik=keys.pik[:8], mak=keys.mak)
                data = bytearray(crypto.field62_for(TMK, keys, network_code))
                if self.corrupt_check_value:
                    data[16] ^= 0x01  # the PIK's check value (003/004 layout)
                response["62"] = bytes(data).hex().upper()
            return response
        response["39"] = "00"
        if network_code == "360":
            response["62"] = parameter_download62(self.merchant_name, 30).hex().upper()
        return response


@contextmanager
def host_in_thread(host: ScriptedHost) -> Iterator[ScriptedHost]:
    """The host on its own event loop in a thread, for code that runs its own loop (CLI)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(host.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield host
    finally:
        asyncio.run_coroutine_threadsafe(host.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
