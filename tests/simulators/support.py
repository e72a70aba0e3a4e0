"""Helpers for driving the network simulator over a real ``TcpNetworkLink``: settings on a
temporary directory, a fixed clock, and the request messages the gateway forwards."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from poshub.core.settings import Mode, Settings
from poshub.gateway import codec, crypto, fields
from poshub.gateway.constants import (
    CC_NORMAL,
    CC_PREAUTH,
    MTI,
    PC_BALANCE,
    PC_PREAUTH,
    PC_PURCHASE,
    PC_VOID,
    TAG_QR_CODE,
    TAG_QR_VOUCHER,
    Mti,
    TypeCode,
)
from poshub.gateway.link import TcpNetworkLink
from poshub.simulators.network import NetworkSimulator

ZPK_HEX = "89ABCDEF0123456776543210FEDCBA98"
ZPK = crypto.ZonePinKey(bytes.fromhex(ZPK_HEX))
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 5, 20, 10, 30, 0, tzinfo=SHANGHAI)

DEBIT_PAN = "6212260000000001"
DEBIT_PAN_19 = "6217001234567890122"
CREDIT_PAN = "6225880123456783"
LUHN_INVALID_PAN = "6212260000000002"
EXPIRY_OK = "3012"
TID = "10000001"
OTHER_TID = "10000002"
MID = "898340154110001"
OTHER_MID = "898340154110002"

QR_UNIONPAY = "6212345678901234567"
QR_WECHAT = "134567890123456789"
QR_ALIPAY = "281234567890123456"

CARD_OPENING_FEN = 10_000_000
WALLET_OPENING_FEN = 1_000_000


def settings_for(data_dir: Path) -> Settings:
    return Settings(mode=Mode.TEST, data_dir=data_dir, network_zpk=ZPK_HEX)


def fixed_clock(now: datetime = NOW) -> Callable[[], datetime]:
    return lambda: now


class Numbers:
    """RRNs and network STANs, unique within a test."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    def next(self) -> tuple[str, str]:
        n = next(self._counter)
        return f"{n:012d}", f"{n % 999_999 + 1:06d}"


def pin_block(pin: str, pan: str) -> str:
    return ZPK.encrypt_block(crypto.clear_pin_block(pin, pan)).hex().upper()


def request(
    mti: str,
    processing_code: str,
    condition_code: str,
    type_code: str,
    *,
    rrn: str,
    stan: str,
    amount_fen: int | None = None,
    pan: str | None = None,
    expiry: str | None = EXPIRY_OK,
    entry_mode: str = "012",
    original_rrn: str | None = None,
    tid: str = TID,
    mid: str = MID,
    pin: str | None = None,
    extra: codec.Message | None = None,
) -> codec.Message:
    """A request as the gateway forwards it (docs/gateway.md, the network link)."""
    message: codec.Message = {
        MTI: mti,
        "3": processing_code,
        "11": stan,
        "12": "103000",
        "13": "0520",
        "22": entry_mode,
        "25": condition_code,
        "32": "8980000",
        "37": rrn,
        "41": tid,
        "42": mid,
        "49": "156",
        "60": f"{type_code}000001000",
    }
    if amount_fen is not None:
        message["4"] = f"{amount_fen:012d}"
    if pan is not None:
        message["2"] = pan
        if expiry is not None:
            message["14"] = expiry
    if pin is not None:
        assert pan is not None
        message["52"] = pin_block(pin, pan)
        message["53"] = "2600000000000000"
    if original_rrn is not None:
        message["48"] = original_rrn
    if extra:
        message.update(extra)
    return message


def balance(
    numbers: Numbers, pan: str, *, pin: str | None = None, expiry: str | None = EXPIRY_OK
) -> codec.Message:
    rrn, stan = numbers.next()
    return request(
        Mti.FINANCIAL_REQUEST,
        PC_BALANCE,
        CC_NORMAL,
        TypeCode.BALANCE,
        rrn=rrn,
        stan=stan,
        pan=pan,
        pin=pin,
        expiry=expiry,
    )


def sale(
    numbers: Numbers,
    pan: str,
    amount_fen: int,
    *,
    pin: str | None = None,
    expiry: str | None = EXPIRY_OK,
    tid: str = TID,
    mid: str = MID,
) -> codec.Message:
    rrn, stan = numbers.next()
    return request(
        Mti.FINANCIAL_REQUEST,
        PC_PURCHASE,
        CC_NORMAL,
        TypeCode.SALE,
        rrn=rrn,
        stan=stan,
        pan=pan,
        amount_fen=amount_fen,
        pin=pin,
        expiry=expiry,
        tid=tid,
        mid=mid,
    )


def qr_sale(numbers: Numbers, code: str, amount_fen: int) -> codec.Message:
    rrn, stan = numbers.next()
    return request(
        Mti.FINANCIAL_REQUEST,
        PC_PURCHASE,
        CC_NORMAL,
        TypeCode.SALE,
        rrn=rrn,
        stan=stan,
        amount_fen=amount_fen,
        entry_mode="032",
        extra={"59": fields.build_tlv({TAG_QR_CODE: code})},
    )


_LINKED: dict[str, tuple[str, str, str, str]] = {
    "void": (Mti.FINANCIAL_REQUEST, PC_VOID, CC_NORMAL, TypeCode.VOID),
    "refund": (Mti.ADVICE, PC_VOID, CC_NORMAL, TypeCode.REFUND),
    "preauth_cancel": (Mti.AUTH_REQUEST, PC_VOID, CC_PREAUTH, TypeCode.PREAUTH_CANCEL),
    "completion": (Mti.FINANCIAL_REQUEST, PC_PURCHASE, CC_PREAUTH, TypeCode.COMPLETION),
    "completion_void": (Mti.FINANCIAL_REQUEST, PC_VOID, CC_PREAUTH, TypeCode.COMPLETION_VOID),
    "completion_advice": (Mti.ADVICE, PC_PURCHASE, CC_PREAUTH, TypeCode.COMPLETION_ADVICE),
}


def linked(
    numbers: Numbers,
    kind: str,
    original: codec.Message,
    amount_fen: int | None = None,
    *,
    tid: str = TID,
    mid: str = MID,
    pan: str | None = None,
    voucher: str | None = None,
) -> codec.Message:
    """A void, refund, pre-auth cancel, completion (request or advice) or completion void
    naming ``original`` by its RRN in field 48, with the original's card unless ``pan``."""
    mti, processing_code, condition_code, type_code = _LINKED[kind]
    rrn, stan = numbers.next()
    return request(
        mti,
        processing_code,
        condition_code,
        type_code,
        rrn=rrn,
        stan=stan,
        pan=pan or original.get("2"),
        amount_fen=amount_fen if amount_fen is not None else int(original["4"]),
        entry_mode=original["22"],
        original_rrn=original["37"],
        tid=tid,
        mid=mid,
        extra={"59": fields.build_tlv({TAG_QR_VOUCHER: voucher})} if voucher else None,
    )


def preauth(numbers: Numbers, pan: str, amount_fen: int) -> codec.Message:
    rrn, stan = numbers.next()
    return request(
        Mti.AUTH_REQUEST,
        PC_PREAUTH,
        CC_PREAUTH,
        TypeCode.PREAUTH,
        rrn=rrn,
        stan=stan,
        pan=pan,
        amount_fen=amount_fen,
    )


def reversal(original: codec.Message, *, amount_fen: int | None = None) -> codec.Message:
    """The 0400 store-and-forward sends for ``original`` (same STAN and RRN)."""
    message: codec.Message = {
        MTI: Mti.REVERSAL.value,
        "3": original["3"],
        "4": f"{amount_fen:012d}" if amount_fen is not None else original.get("4", "0" * 12),
        "11": original["11"],
        "12": "103500",
        "13": "0520",
        "25": original["25"],
        "32": "8980000",
        "37": original["37"],
        "39": "98",
        "41": original["41"],
        "42": original["42"],
        "49": "156",
        "60": original["60"][:2] + "000000000",
    }
    return message


@asynccontextmanager
async def running(
    data_dir: Path,
    *,
    clock: Callable[[], datetime] | None = None,
    connections: int = 2,
    port: int = 0,
) -> AsyncIterator[tuple[NetworkSimulator, TcpNetworkLink]]:
    simulator = NetworkSimulator(
        settings_for(data_dir), host="127.0.0.1", port=port, clock=clock or fixed_clock()
    )
    await simulator.start()
    link = TcpNetworkLink(
        "127.0.0.1", simulator.port, connections=connections, backoff_min=0.02, backoff_max=0.1
    )
    await link.start()
    try:
        yield simulator, link
    finally:
        await link.close()
        await simulator.stop()


async def send(link: TcpNetworkLink, message: codec.Message, timeout: float = 2.0) -> codec.Message:
    response = await link.request(message, timeout=timeout)
    assert response is not None, "the simulator did not answer"
    return response
