"""Probing the running gateway the way a terminal vendor, an attacker or an auditor would:
raw frames on fresh connections, messages built field by field (also ones the codec
refuses to encode), and the database read or changed as staff would change it.

Used with ``tests.gateway.support`` (the gateway and the network simulator on ephemeral
ports): ``send`` answers what a terminal would see of one request, ``journal`` and
``rows`` what the host kept, and the ``staff_*`` helpers act as the back office does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import iso8583
from sqlalchemy import select, update

from poshub.core.audit import Actor
from poshub.core.db import Base, Database, table_of, utcnow
from poshub.gateway import codec
from poshub.gateway import spec as dialect
from poshub.gateway.codec import Message
from poshub.gateway.constants import F_MAC, F_RESPONSE_CODE, MTI, SENSITIVE_FIELDS
from poshub.gateway.crypto import WorkingKeys
from poshub.gateway.models import GatewayTransaction, NetworkReversal, TerminalSession
from poshub.merchants.models import Merchant
from poshub.simulators.terminal import Card, JournalEntry, Kind, Result, TerminalClient
from poshub.terminals import repository as terminal_repository
from poshub.terminals import service as terminal_service
from poshub.terminals import tms_service
from poshub.terminals.models import Terminal
from tests.gateway.support import TPDU

HEADER_OFFSET = codec.TPDU_BYTES
"""Where the application header starts in a frame's payload."""
SECRET_RESPONSE_FIELDS = frozenset(SENSITIVE_FIELDS - {"2", "14"}) | {"62"}
"""What no refusal may carry: tracks, PIN block, chip data, keys. (Field 2 and 14 are
echoed by every financial response, spec §5.3.)"""


@dataclass(frozen=True)
class Reply:
    """What came back for one frame."""

    tpdu: bytes
    header: bytes
    body: bytes
    message: Message

    @property
    def code(self) -> str:
        return self.message.get(F_RESPONSE_CODE, "")

    @property
    def requirement(self) -> int:
        """The header's processing requirement (spec §1.3): 3 = sign on again."""
        return self.header[2] & 0x0F

    @property
    def mac(self) -> bool:
        return F_MAC in self.message

    def verifies(self, keys: WorkingKeys | None) -> bool:
        """Whether the answer is MACed, and with ``keys``."""
        return self.mac and keys is not None and keys.verify_mac(self.body)


def reply_of(payload: bytes) -> Reply:
    """The answer decoded and checked by the codec; an answer to a request MTI outside the
    dialect (0300 → 0310) is decoded without the MTI check."""
    envelope = codec.split_envelope(payload)
    try:
        message = codec.decode(envelope.body)
    except codec.MessageFormatError as error:
        if error.field != MTI:
            raise
        message = iso8583.decode(envelope.body, dialect.SPEC)[0]
    return Reply(envelope.tpdu, envelope.header, envelope.body, message)


async def read_payload(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    """One frame's payload, or None when the host closed the connection instead."""
    try:
        prefix = await asyncio.wait_for(reader.readexactly(2), timeout)
        return await asyncio.wait_for(reader.readexactly(int.from_bytes(prefix, "big")), timeout)
    except (asyncio.IncompleteReadError, ConnectionResetError):
        return None


async def send(port: int, frame: bytes, *, timeout: float = 5.0) -> Reply | None:
    """``frame`` on a new connection: the answer, or None when the host closed it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        await writer.drain()
        payload = await read_payload(reader, timeout)
    finally:
        writer.close()
    return reply_of(payload) if payload is not None else None


async def closed_by_host(reader: asyncio.StreamReader, timeout: float = 3.0) -> bool:
    """Whether the host closes the connection (EOF, nothing more sent) within ``timeout``."""
    try:
        data = await asyncio.wait_for(reader.read(1), timeout)
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return data == b""


# --- Building requests ---------------------------------------------------------------------
def request(
    terminal: TerminalClient,
    kind: Kind,
    *,
    card: Card | None = None,
    amount_fen: int | None = None,
    original: JournalEntry | None = None,
    qr_code: str | None = None,
    stan: str | None = None,
    changes: Mapping[str, str | None] | None = None,
) -> Message:
    """A financial request of ``terminal`` (next STAN unless given), with ``changes``
    applied on top of what the terminal would send (None removes a field)."""
    message = terminal.build_request(
        kind,
        stan=stan or terminal.state.next_stan(),
        card=card,
        amount_fen=amount_fen,
        original=original,
        qr_code=qr_code,
    )
    for key, value in (changes or {}).items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    return message


def framed(body: bytes) -> bytes:
    return codec.frame(TPDU, bytes.fromhex("603100000000"), body)


def spoil_mac(frame: bytes) -> bytes:
    """The same frame with its MAC's last byte changed (still ASCII hex)."""
    last = frame[-1:]
    return frame[:-1] + (b"0" if last != b"0" else b"1")


def raw_body(message: Mapping[str, str], raw: Mapping[int, bytes] | None = None) -> bytes:
    """MTI, bitmap and fields, each field encoded alone by the codec except those in
    ``raw`` (field number → the exact bytes, length prefix included): for messages the
    codec rightly refuses to build (a 20-digit PAN, a letter in an amount …)."""
    raw = dict(raw or {})
    numbers = sorted({int(k) for k in message if k.isdigit()} | set(raw))
    bitmap = 0
    parts: list[bytes] = []
    mti = message[MTI]
    for number in numbers:
        bitmap |= 1 << (64 - number)
        if number in raw:
            parts.append(raw[number])
        else:
            alone = codec.encode({MTI: mti, str(number): message[str(number)]})
            parts.append(alone[codec.MESSAGE_BYTES_MIN :])
    return bytes.fromhex(mti) + bitmap.to_bytes(8, "big") + b"".join(parts)


def signed_raw_body(
    keys: WorkingKeys, message: Mapping[str, str], raw: Mapping[int, bytes] | None = None
) -> bytes:
    """``raw_body`` with field 64 present and MACed with ``keys``."""
    body = raw_body({**message, F_MAC: "00" * 8}, raw)
    return keys.sign(body)


def original_of(terminal: TerminalClient, result: Result) -> JournalEntry:
    """The terminal's journal entry of an approved ``result`` (for voids, refunds …)."""
    assert result.rrn is not None, result.response_code
    entry = terminal.state.find(result.rrn)
    assert entry is not None, result.response_code
    return entry


# --- What the host kept ---------------------------------------------------------------------
def rows(database: Database, model: type[Base], order: str = "rrn") -> list[Any]:
    table = table_of(model)
    with database.unit_of_work(read_only=True) as uow:
        return list(uow.session.execute(select(table).order_by(table.c[order])).all())


def journal(database: Database) -> list[Any]:
    return rows(database, GatewayTransaction, "rrn")


def journal_row(database: Database, rrn: str | None) -> Any:
    assert rrn is not None
    table = table_of(GatewayTransaction)
    with database.unit_of_work(read_only=True) as uow:
        return uow.session.execute(select(table).where(table.c.rrn == rrn)).one()


def reversals_owed(database: Database) -> list[Any]:
    return rows(database, NetworkReversal, "id")


def session_row(database: Database, tid: str) -> Any:
    table = table_of(TerminalSession)
    with database.unit_of_work(read_only=True) as uow:
        return uow.session.execute(select(table).where(table.c.tid == tid)).first()


def terminal_status(database: Database, tid: str) -> str:
    with database.unit_of_work(read_only=True) as uow:
        return str(
            uow.session.execute(select(Terminal.status).where(Terminal.tid == tid)).scalar_one()
        )


# --- What staff do (run these in a thread: they write while the gateway writes) -----------------
STAFF = Actor.system("test-staff")


def _terminal(uow_session: Any, tid: str) -> Terminal:
    terminal = terminal_repository.terminal_by_tid(uow_session, tid, for_update=True)
    assert terminal is not None
    return terminal


def staff_lock(database: Database, tid: str, reason: str = "lost device reported") -> None:
    with database.unit_of_work() as uow:
        terminal_service.lock(
            uow.session, _terminal(uow.session, tid), reason=reason, actor=STAFF, now=utcnow()
        )
        uow.commit()


def staff_unlock(database: Database, tid: str) -> None:
    with database.unit_of_work() as uow:
        terminal_service.unlock(uow.session, _terminal(uow.session, tid), actor=STAFF, now=utcnow())
        uow.commit()


def staff_parameters(database: Database, tid: str, changes: dict[str, Any]) -> None:
    with database.unit_of_work() as uow:
        tms_service.update_parameters(
            uow.session, _terminal(uow.session, tid), changes, actor=STAFF, now=utcnow()
        )
        uow.commit()


def set_merchant_status(database: Database, mid: str, status: str) -> None:
    with database.unit_of_work() as uow:
        uow.session.execute(update(Merchant).where(Merchant.mid == mid).values(status=status))
        uow.commit()


async def in_thread(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


async def eventually(
    check: Callable[[], Any], *, timeout: float = 5.0, interval: float = 0.05
) -> Any:
    """Poll ``check`` (sync) until it returns something truthy; that value, or the last
    falsy one after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(interval)
