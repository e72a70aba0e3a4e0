"""Running the gateway for tests: the network simulator and the gateway on ephemeral
ports in the test's event loop, and the demo terminal to talk to them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from poshub.core.db import Database, utcnow
from poshub.core.settings import Settings
from poshub.gateway import codec
from poshub.gateway.link import TcpNetworkLink
from poshub.gateway.process import RunningGateway, start_gateway
from poshub.risk.models import RiskRuleVersion
from poshub.risk.schemas import RULES, RuleCode
from poshub.simulators.network import NetworkSimulator
from poshub.simulators.terminal import Card, TerminalClient

DEMO_TID = "10000001"
DEMO_MID = "898340154110001"
TEST_TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
CARD = Card(pan="6225880123456783", expiry="3012", pin="123456")
"""A debit test card (docs/test-cards.md)."""
OTHER_CARD = Card(pan="6222021234567890128", expiry="3012", pin="123456")
TPDU = bytes.fromhex("6000030000")
HEADER = bytes.fromhex("603100000000")

T = TypeVar("T")


@dataclass
class Env:
    settings: Settings
    database: Database
    gateway: RunningGateway
    simulator: NetworkSimulator

    @property
    def port(self) -> int:
        return self.gateway.port

    def terminal(self, **overrides: Any) -> TerminalClient:
        options: dict[str, Any] = {
            "tid": DEMO_TID,
            "mid": DEMO_MID,
            "tmk": TEST_TMK,
            "timeout_seconds": 5.0,
        }
        options.update(overrides)
        return TerminalClient("127.0.0.1", self.port, **options)


def set_rule(database: Database, code: RuleCode, *, enabled: bool = True, **params: Any) -> None:
    """Save a new version of one risk rule (what a risk officer does in the back office);
    a running gateway picks it up at its next risk refresh, a starting one at once."""
    with database.unit_of_work() as uow:
        session = uow.session
        latest = max(
            (v.version for v in session.query(RiskRuleVersion).filter_by(code=code.value)),
            default=0,
        )
        session.add(
            RiskRuleVersion(
                code=code.value,
                version=latest + 1,
                enabled=enabled,
                action=RULES[code].action.value,
                params=params,
                reason="test",
                created_by="test",
                created_at=utcnow(),
            )
        )
        uow.commit()


@asynccontextmanager
async def running(settings: Settings, database: Database) -> AsyncIterator[Env]:
    simulator = NetworkSimulator(settings, host="127.0.0.1", port=0)
    await simulator.start()
    link = TcpNetworkLink("127.0.0.1", simulator.port)
    gateway = await start_gateway(settings, database=database, link=link, host="127.0.0.1", port=0)
    try:
        yield Env(settings, database, gateway, simulator)
    finally:
        await gateway.stop()
        await simulator.stop()


def run(settings: Settings, database: Database, scenario: Callable[[Env], Awaitable[T]]) -> T:
    """Run ``scenario`` against a fresh gateway and simulator; return what it returns."""

    async def main() -> T:
        async with running(settings, database) as env:
            return await scenario(env)

    return asyncio.run(main())


async def exchange(port: int, frames: list[bytes], *, timeout: float = 5.0) -> list[bytes]:
    """Send raw frames on one connection, one at a time; the answers' payloads (empty
    bytes when the host closed the connection instead)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers: list[bytes] = []
    try:
        for frame in frames:
            writer.write(frame)
            await writer.drain()
            try:
                length = int.from_bytes(
                    await asyncio.wait_for(reader.readexactly(2), timeout), "big"
                )
                answers.append(await asyncio.wait_for(reader.readexactly(length), timeout))
            except (asyncio.IncompleteReadError, ConnectionResetError):
                answers.append(b"")
                break
    finally:
        writer.close()
    return answers


def decode_answer(payload: bytes) -> tuple[codec.Envelope, codec.Message]:
    envelope = codec.split_envelope(payload)
    return envelope, codec.decode(envelope.body)
