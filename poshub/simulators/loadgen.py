"""``poshub loadgen``: many terminals selling at a target rate, with latency percentiles.

The gateway, the network simulator and this generator share two cores, so the generator
keeps its own cost per request small:

* every terminal signs on once, before the clock starts;
* every request frame is built before the clock starts: STANs are allocated in advance
  and the MAC computed then. One message per card variant is encoded with pyiso8583 as a
  template; each frame is the template with amount and STAN patched in place and its MAC
  recomputed (checked against a full encode at the start of every template);
* the timed loop runs on asyncio protocol callbacks (no task or stream per request): an
  answer's callback finds MTI, STAN and field 39 by walking the bitmap, verifies the MAC
  and writes the next frame;
* uvloop when installed.

Pacing (``rate > 0``) is open loop: terminal *i* of *N* sends at
``t0 + i/R + k·N/R``. Terminals are strict request/response, so a terminal whose previous
answer is late sends as soon as it arrives, and latency is measured from the time the
request was *due*, not from when it went out: a slow host cannot hide its queueing
(no coordinated omission). ``rate = 0`` is closed loop: each terminal sends its next
request as soon as the previous answer arrives.

A request unanswered within the timeout (or whose approval fails its MAC) is reversed as
a real terminal would (spec §5.5): the terminal reconnects and sends the 0400 before its
next sale, up to three tries.

STANs must not repeat within a batch (the host answers ``94``), so each terminal's STAN
counter is kept in its ``terminal-<TID>.json`` state file, the one ``poshub terminal``
uses, and the next run (of either tool) continues from it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import random
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from poshub.core import limits
from poshub.gateway import codec
from poshub.gateway.constants import UNSIGNED_RESPONSE_CODES, Rc
from poshub.gateway.crypto import WorkingKeys
from poshub.simulators.terminal import (
    APPROVED_CODES,
    DEFAULT_TIMEOUT_SECONDS,
    DEMO_MID,
    DEMO_TID,
    REVERSAL_TRIES,
    TEST_TMK_HEX,
    Card,
    HostUnreachable,
    Kind,
    NoAnswer,
    SignOnRefused,
    TerminalClient,
    TerminalState,
    UsageError,
    resolve_tmk,
    run_async,
)

if TYPE_CHECKING:
    from poshub.core.settings import Settings

DECLINE_ENDINGS: Final = (51, 5, 61, 96)
"""Amount endings (fen) the sandbox issuer declines with that code (spec §11.14)."""
AVOIDED_ENDINGS: Final = frozenset({51, 5, 61, 96, 91})
"""Never used for an approval: the declines above and ``91`` (never answered upstream)."""
AMOUNT_FEN_MIN: Final = 100
AMOUNT_FEN_MAX: Final = 19_999
"""Up to ¥199.99: a sandbox card (¥100,000.00 to spend, docs/test-cards.md) lasts ~1,000 sales."""
TEST_CARD_BIN: Final = "622588"
TEST_CARD_EXPIRY: Final = "3012"
TEST_PIN: Final = "123456"
SALES_PER_CARD: Final = 200
"""Sales planned per test card, far below what its balance allows, so a run (and the runs
after it, which draw other cards unless --seed repeats one) are not answered 51."""
CARDS_PER_TERMINAL_MIN: Final = 4
TEMPLATE_CHECKS: Final = 4
"""Templates whose patched frame is compared with a full encoding (their layouts are alike)."""
CLOSED_LOOP_PLANNING_RATE: Final = 8_000
"""Requests a second assumed for a closed-loop run when planning frames (above the gateway's
~5,000 sales/s target); a terminal that runs out builds more during the run (counted)."""
PREBUILT_FRAMES_MAX: Final = 2_000_000
"""About 250 MB of frames; beyond this frames are built during the run."""
EXTEND_FRAMES: Final = 256
"""Frames built at once when a terminal runs out mid-run (a short stall of the loop)."""
SIGN_ON_CONCURRENCY: Final = 32
WATCHDOG_SECONDS: Final = 0.05
RECONNECT_PAUSE_SECONDS: Final = 0.2
PERCENTILES: Final = (50.0, 90.0, 99.0, 99.9)

_LL: Final = -1
_LLL: Final = -2
# Byte sizes of the fields that may precede 39 in an answer (spec §3); variable ones by
# their length prefix. A bitmap naming any other field below 39 goes to the full decoder.
_FIELD_BYTES: Final[dict[int, int]] = {
    2: _LL, 3: 3, 4: 6, 11: 3, 12: 3, 13: 2, 14: 2, 15: 2, 22: 2, 23: 2, 25: 1, 26: 1,
    32: _LL, 35: _LL, 36: _LLL, 37: 12, 38: 6, 39: 2,
}  # fmt: skip
_MAC_BIT: Final = 1


class LoadError(Exception):
    """The run could not start (bad configuration, unreachable host, sign-on refused)."""


# --- Configuration ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TerminalSpec:
    tid: str
    mid: str


def terminal_range(tid_start: str, count: int, mid: str) -> tuple[TerminalSpec, ...]:
    """``count`` consecutive TIDs from ``tid_start`` (8 digits), all of merchant ``mid``."""
    if len(tid_start) != 8 or not tid_start.isdigit():
        raise LoadError("--tid-start is 8 digits")
    first = int(tid_start)
    if first + count - 1 > 99_999_999:
        raise LoadError("the TID range runs past 99999999")
    return tuple(TerminalSpec(f"{first + i:08d}", mid) for i in range(count))


def read_terminals_file(path: Path) -> tuple[TerminalSpec, ...]:
    """A CSV of ``tid,mid`` rows (a header row ``tid,mid`` is allowed)."""
    specs: list[TerminalSpec] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                cells = [c.strip() for c in row]
                if not cells or not any(cells) or cells[0].startswith("#"):
                    continue
                if number == 1 and cells[0].lower() == "tid":
                    continue
                if len(cells) != 2 or len(cells[0]) != 8 or len(cells[1]) != 15:
                    raise LoadError(f"{path}:{number}: expected tid (8),mid (15)")
                specs.append(TerminalSpec(cells[0], cells[1]))
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror}") from None
    if not specs:
        raise LoadError(f"{path} lists no terminal")
    return tuple(specs)


@dataclass(frozen=True, slots=True)
class LoadConfig:
    terminals: tuple[TerminalSpec, ...]
    host: str = "127.0.0.1"
    port: int = 8583
    rate: float = 0.0
    """Target requests per second over all terminals; 0 = closed loop, as fast as possible."""
    duration_seconds: float = 10.0
    tmk: bytes = bytes.fromhex(TEST_TMK_HEX)
    """Every load-test terminal is provisioned with the published test key."""
    key_mode: str = "003"
    decline_percent: float = 0.0
    """Share of sales whose amount ends in a decline code (51, 05, 61, 96)."""
    pin_share: float = 0.5
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    verify_mac: bool = True
    seed: int | None = None
    """Cards and amounts; None draws one (printed in the summary, to repeat a run)."""
    state_dir: Path | None = None
    """Where ``terminal-<TID>.json`` keeps each terminal's STAN counter, shared with
    ``poshub terminal`` (None: STANs start at 000001)."""
    sign_on: bool = True
    """False for hosts that know no keys (the benchmark's echo and naive reference
    servers): the terminals use the spec's published V3 working keys without signing on,
    and responses are not MAC-checked."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.terminals) <= limits.LOADGEN_TERMINALS_MAX:
            raise LoadError(f"--terminals must be 1 to {limits.LOADGEN_TERMINALS_MAX}")
        if len({t.tid for t in self.terminals}) != len(self.terminals):
            raise LoadError("a TID appears twice")
        if not 0 < self.duration_seconds <= limits.LOADGEN_DURATION_SECONDS_MAX:
            raise LoadError(
                f"--duration must be more than 0 and at most"
                f" {limits.LOADGEN_DURATION_SECONDS_MAX} seconds"
            )
        if not (self.rate >= 0 and math.isfinite(self.rate)):
            raise LoadError("--rate must be 0 (as fast as possible) or a positive number")
        if not 0 <= self.decline_percent <= 100:
            raise LoadError("--mix is a percentage, 0 to 100")
        if not 0 <= self.pin_share <= 1:
            raise LoadError("--pin-share is 0 to 1")
        if not self.timeout_seconds > 0:
            raise LoadError("--timeout must be positive")


# --- Results ------------------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of ascending values: the smallest value with at least p %
    of the values at or below it (p99 of 1..100 is 99, p99.9 of 1..1000 is 999)."""
    if not sorted_values:
        return 0.0
    if not 0 < p <= 100:
        raise ValueError("a percentile is in (0, 100]")
    # The small epsilon keeps 99.9 % of 1000 at rank 999 despite binary floating point.
    rank = math.ceil(p / 100 * len(sorted_values) - 1e-9)
    return sorted_values[max(rank, 1) - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max and mean, in milliseconds rounded to the microsecond."""
    ordered = sorted(seconds)
    summary = {f"p{p:g}": round(percentile(ordered, p) * 1000, 3) for p in PERCENTILES}
    summary["max"] = round(ordered[-1] * 1000, 3) if ordered else 0.0
    summary["mean"] = round(sum(ordered) / len(ordered) * 1000, 3) if ordered else 0.0
    return summary


@dataclass(frozen=True, slots=True)
class LoadSummary:
    terminals: int
    target_rate: float
    duration_seconds: float
    elapsed_seconds: float
    """From the first scheduled send until the last answer (or timeout)."""
    sent: int
    answered: int
    throughput_per_second: float
    """Answers per second of elapsed time."""
    latency_ms: dict[str, float]
    response_codes: dict[str, int]
    timeouts: int
    errors: int
    """Connections lost or refused, and answers that did not match their request."""
    mac_errors: int
    reversals_sent: int
    reversals_acknowledged: int
    reversals_abandoned: int
    frames_prebuilt: int
    prebuild_seconds: float
    frames_built_during_run: int
    sign_on_seconds: float
    seed: int
    """Repeats the run's cards and amounts with ``--seed``."""
    cpu_seconds: float
    """CPU (user + system) this process used during the timed run: the generator's own
    cost, to subtract when the gateway shares the machine."""
    cpu_us_per_request: float
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def render(self) -> str:
        loop = f"target {self.target_rate:g}/s, open loop" if self.target_rate else "closed loop"
        latency = "  ".join(f"{k} {v:.3f}" for k, v in self.latency_ms.items())
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.response_codes.items())) or "-"
        lines = [
            f"loadgen: {self.terminals} terminals, {loop}, {self.duration_seconds:g} s"
            f" (elapsed {self.elapsed_seconds:.2f} s)",
            f"  sent        {self.sent}",
            f"  answered    {self.answered}",
            f"  throughput  {self.throughput_per_second:.1f}/s",
            f"  latency ms  {latency}",
            f"  codes       {codes}",
            f"  timeouts    {self.timeouts}   errors {self.errors}   MAC errors {self.mac_errors}",
            f"  reversals   {self.reversals_sent} sent, {self.reversals_acknowledged}"
            f" acknowledged, {self.reversals_abandoned} abandoned",
            f"  frames      {self.frames_prebuilt} prebuilt in {self.prebuild_seconds:.2f} s,"
            f" {self.frames_built_during_run} during the run; sign-on"
            f" {self.sign_on_seconds:.2f} s; seed {self.seed}",
            f"  generator   {self.cpu_seconds:.2f} s CPU in the run,"
            f" {self.cpu_us_per_request:.0f} µs per request",
        ]
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


@dataclass(slots=True)
class Progress:
    """What the progress display shows; updated by the run, read by the callback."""

    elapsed: float = 0.0
    duration: float = 0.0
    sent: int = 0
    answered: int = 0
    timeouts: int = 0


# --- Answers, quickly -----------------------------------------------------------------------
_plans: dict[bytes, tuple[tuple[int, int], ...] | None] = {}


def _plan(bitmap: bytes) -> tuple[tuple[int, int], ...] | None:
    """For a bitmap: (field, size) of every field up to 39, or None when one has no size
    here (then the full decoder reads the answer). Cached: answers share few bitmaps."""
    plan = _plans.get(bitmap)
    if plan is None and bitmap not in _plans:
        bits = int.from_bytes(bitmap, "big")
        steps: list[tuple[int, int]] = []
        for number in range(2, 40):
            if bits >> (64 - number) & 1:
                size = _FIELD_BYTES.get(number)
                if size is None:
                    steps = []
                    plan = None
                    break
                steps.append((number, size))
        else:
            plan = tuple(steps)
        if len(_plans) < 256:
            _plans[bitmap] = plan
    return plan


def scan_answer(body: bytes) -> tuple[bytes, bytes | None, str | None, bool]:
    """MTI bytes, the raw 3 bytes of field 11, field 39 and whether field 64 is present,
    read without decoding the rest. Falls back to the codec for unusual layouts."""
    bitmap = body[2:10]
    has_mac = bool(bitmap[7] & _MAC_BIT)
    plan = _plan(bitmap)
    if plan is None:
        return _scan_slowly(body, has_mac)
    position = 10
    stan: bytes | None = None
    for number, size in plan:
        if number == 39:
            return body[:2], stan, body[position : position + 2].decode("ascii", "replace"), has_mac
        if size == _LL:
            digits = (body[position] >> 4) * 10 + (body[position] & 0x0F)
            position += 1 + (digits + 1) // 2
        elif size == _LLL:
            digits = int(body[position : position + 2].hex())
            position += 2 + (digits + 1) // 2
        else:
            if number == 11:
                stan = body[position : position + 3]
            position += size
    return body[:2], stan, None, has_mac


def _scan_slowly(body: bytes, has_mac: bool) -> tuple[bytes, bytes | None, str | None, bool]:
    try:
        message = codec.decode(body)
    except codec.MessageFormatError:
        return body[:2], None, None, has_mac
    stan = message.get("11")
    return body[:2], bytes.fromhex(stan) if stan else None, message.get("39"), has_mac


# --- Frames -----------------------------------------------------------------------------------
def luhn_complete(partial: str) -> str:
    """``partial`` with its Luhn check digit appended."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return partial + str((10 - total % 10) % 10)


def make_test_cards(rng: random.Random, count: int) -> list[str]:
    return [
        luhn_complete(TEST_CARD_BIN + "".join(rng.choice("0123456789") for _ in range(9)))
        for _ in range(count)
    ]


def sale_amount(rng: random.Random, decline_percent: float) -> int:
    """An amount in fen: with probability ``decline_percent`` % one ending in a decline
    code, otherwise one ending in anything else (and never in 91)."""
    base = rng.randrange(AMOUNT_FEN_MIN // 100, AMOUNT_FEN_MAX // 100 + 1) * 100
    if decline_percent and rng.random() * 100 < decline_percent:
        return base + rng.choice(DECLINE_ENDINGS)
    ending = rng.randrange(100)
    while ending in AVOIDED_ENDINGS:
        ending = rng.randrange(100)
    return base + ending


class _Template:
    """One encoded sale for a card variant; frames patch amount and STAN, re-MAC."""

    __slots__ = ("amount_at", "body", "card", "keys", "prefix", "stan_at")

    def __init__(self, client: TerminalClient, card: Card) -> None:
        keys = client.keys
        assert keys is not None
        self.keys: WorkingKeys = keys
        self.card = card
        message = client.build_request(Kind.SALE, stan="000000", card=card, amount_fen=1)
        self.body = codec.encode(message)
        if card.entry != "manual":
            raise ValueError("load-test cards are keyed in (field 2 leads the message)")
        # MTI 2 + bitmap 8 + field 2 (length byte + digits) + field 3 (3 bytes).
        self.amount_at = 2 + 8 + 1 + (len(card.pan) + 1) // 2 + 3
        self.stan_at = self.amount_at + 6
        if self.body[self.amount_at : self.amount_at + 6] != bytes.fromhex("000000000001"):
            raise AssertionError("sale template layout changed: amount not where expected")
        frame = codec.frame(client.tpdu, client.header, self.body)
        self.prefix = frame[: len(frame) - len(self.body)]

    def frame(self, stan: int, amount_fen: int) -> bytes:
        body = bytearray(self.body)
        body[self.amount_at : self.amount_at + 6] = bytes.fromhex(f"{amount_fen:012d}")
        body[self.stan_at : self.stan_at + 3] = bytes.fromhex(f"{stan:06d}")
        body[-8:] = self.keys.mac(bytes(body[:-8]))
        return self.prefix + bytes(body)


class _Plan:
    """The frames one terminal will send, with what is needed to reverse any of them.

    Variant ``2·c + p`` is card ``c`` of the terminal's pool, with a PIN when ``p`` is 1;
    its template is encoded the first time a frame uses it."""

    def __init__(
        self, client: TerminalClient, config: LoadConfig, rng: random.Random, planned: int
    ) -> None:
        self.client = client
        self.rng = rng
        self.decline_percent = config.decline_percent
        self.pin_share = config.pin_share
        cards = max(CARDS_PER_TERMINAL_MIN, math.ceil(planned / SALES_PER_CARD))
        self.pans = make_test_cards(rng, cards)
        self.templates: dict[int, _Template] = {}
        self.frames: list[bytes] = []
        self.stans = array("l")
        self.amounts = array("q")
        self.variants = array("l")

    def card(self, variant: int) -> Card:
        pin = TEST_PIN if variant % 2 else None
        return Card(self.pans[variant // 2], TEST_CARD_EXPIRY, pin=pin)

    def extend(self, count: int) -> None:
        rng = self.rng
        cards = len(self.pans)
        for _ in range(count):
            variant = rng.randrange(cards) * 2 + (1 if rng.random() < self.pin_share else 0)
            stan = int(self.client.state.next_stan())
            amount = sale_amount(rng, self.decline_percent)
            template = self.templates.get(variant)
            if template is None:
                template = self.templates[variant] = _Template(self.client, self.card(variant))
                if len(self.templates) <= TEMPLATE_CHECKS:
                    # Proof that patching equals encoding from scratch.
                    expected = self.client.encode_frame(self.message(variant, stan, amount))
                    if template.frame(stan, amount) != expected:
                        raise AssertionError("a patched sale frame differs from its full encoding")
            self.frames.append(template.frame(stan, amount))
            self.stans.append(stan)
            self.amounts.append(amount)
            self.variants.append(variant)

    def message(self, variant: int, stan: int, amount: int) -> dict[str, str]:
        return self.client.build_request(
            Kind.SALE, stan=f"{stan:06d}", card=self.card(variant), amount_fen=amount
        )

    def reversal_frame(self, index: int, reason: str) -> bytes:
        message = self.message(self.variants[index], self.stans[index], self.amounts[index])
        return self.client.encode_frame(TerminalClient.reversal_of(message, reason))


# --- The timed run ----------------------------------------------------------------------------
_REVERSAL: Final = -1
_clock: Final = time.perf_counter
"""Latencies and schedules use the high-resolution clock: uvloop's ``loop.time()`` moves
in whole milliseconds, too coarse for sub-millisecond answers. Timers take delays."""
START_DELAY_SECONDS: Final = 0.05


class _Connection(asyncio.Protocol):
    __slots__ = ("buffer", "driver", "transport")

    def __init__(self, driver: _Driver) -> None:
        self.driver = driver
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        if not buffer and len(data) >= 2 and len(data) == 2 + ((data[0] << 8) | data[1]):
            self.driver.on_payload(self, data[2:])  # the usual case: one whole frame
            return
        buffer += data
        while len(buffer) >= 2:
            length = (buffer[0] << 8) | buffer[1]
            if len(buffer) < 2 + length:
                break
            payload = bytes(buffer[2 : 2 + length])
            del buffer[: 2 + length]
            self.driver.on_payload(self, payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver.on_lost(self)


class _Run:
    """Counters and clocks shared by the drivers."""

    def __init__(self, config: LoadConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.t0 = 0.0
        self.t_end = 0.0
        self.last_event = 0.0
        self.latencies = array("d")
        self.codes: Counter[str] = Counter()
        self.sent = 0
        self.answered = 0
        self.timeouts = 0
        self.errors = 0
        self.mac_errors = 0
        self.reversals_sent = 0
        self.reversals_acknowledged = 0
        self.reversals_abandoned = 0
        self.built_during_run = 0
        self.tasks: set[asyncio.Task[None]] = set()


class _Driver:
    """One terminal in the timed loop: callbacks only, one request in flight."""

    def __init__(self, run: _Run, plan: _Plan, offset: float, interval: float) -> None:
        self.run = run
        self.plan = plan
        self.keys = plan.client.keys
        self.offset = offset
        self.interval = interval
        self.next = 0
        self.inflight: int | None = None
        self.base = 0.0
        self.deadline = math.inf
        self.connection: _Connection | None = None
        self.reversal: tuple[bytes, bytes, int] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.done: asyncio.Future[None] = run.loop.create_future()

    async def connect(self) -> None:
        client = self.plan.client
        _, protocol = await self.run.loop.create_connection(
            lambda: _Connection(self), client.host, client.port
        )
        self.connection = protocol

    # -- sending ----------------------------------------------------------------------------
    def send_next(self, fired: bool = False) -> None:
        if self.done.done() or self.inflight is not None or self.connection is None:
            return
        if self.reversal is not None:
            frame, _, _ = self.reversal
            self._write(_REVERSAL, frame, _clock())
            self.run.reversals_sent += 1
            return
        run = self.run
        now = _clock()
        if self.interval:
            due = run.t0 + self.offset + self.next * self.interval
            if due >= run.t_end:
                self._finish()
                return
            if due > now and not fired:
                if self.timer is None:
                    self.timer = run.loop.call_later(due - now, self._due)
                return
            # A timer fires at the loop's clock resolution (uvloop: 1 ms), possibly a hair
            # early: then the request goes now and its latency counts from now.
            base = min(due, now)
        else:
            if now >= run.t_end:
                self._finish()
                return
            base = now
        if self.next >= len(self.plan.frames):
            self.plan.extend(EXTEND_FRAMES)
            run.built_during_run += EXTEND_FRAMES
        self._write(self.next, self.plan.frames[self.next], base)
        self.next += 1
        run.sent += 1

    def _due(self) -> None:
        self.timer = None
        self.send_next(fired=True)

    def _write(self, index: int, frame: bytes, base: float) -> None:
        connection = self.connection
        assert connection is not None
        assert connection.transport is not None
        self.inflight = index
        self.base = base
        self.deadline = _clock() + self.run.config.timeout_seconds
        connection.transport.write(frame)

    # -- receiving ----------------------------------------------------------------------------
    def on_payload(self, connection: _Connection, payload: bytes) -> None:
        index = self.inflight
        if connection is not self.connection or index is None:
            self.run.errors += 1  # an answer nobody asked for
            return
        run = self.run
        now = _clock()
        body = payload[codec.TPDU_BYTES + codec.HEADER_BYTES :]
        _, stan, code, has_mac = scan_answer(body)
        if index == _REVERSAL:
            self._reversal_answered(stan, code, has_mac, body)
        else:
            if stan is not None and stan != _stan_bytes(self.plan.stans[index]):
                run.errors += 1  # not the answer to this request: keep waiting for it
                return
            run.latencies.append(now - self.base)
            run.answered += 1
            code = code or "??"
            run.codes[code] += 1
            if (
                code in APPROVED_CODES
                and run.config.verify_mac
                and not (has_mac and self.keys is not None and self.keys.verify_mac(body))
            ):
                run.mac_errors += 1
                self._owe_reversal(index, Rc.MAC_ERROR)
        self.inflight = None
        self.deadline = math.inf
        run.last_event = now
        self.send_next()

    def _reversal_answered(
        self, stan: bytes | None, code: str | None, has_mac: bool, body: bytes
    ) -> None:
        assert self.reversal is not None
        frame, expected_stan, tries = self.reversal
        if stan is not None and stan != expected_stan:
            self.run.errors += 1
            return
        verified = (
            has_mac and self.keys is not None and self.keys.verify_mac(body)
        ) or code in UNSIGNED_RESPONSE_CODES
        if verified:
            self.run.reversals_acknowledged += 1
            self.reversal = None
        else:
            self._reversal_failed(frame, expected_stan, tries)

    def _owe_reversal(self, index: int, reason: str) -> None:
        self.reversal = (
            self.plan.reversal_frame(index, reason),
            _stan_bytes(self.plan.stans[index]),
            0,
        )

    def _reversal_failed(self, frame: bytes, stan: bytes, tries: int) -> None:
        if tries + 1 >= REVERSAL_TRIES:
            self.run.reversals_abandoned += 1
            self.reversal = None
        else:
            self.reversal = (frame, stan, tries + 1)

    # -- trouble -----------------------------------------------------------------------------
    def check_deadline(self, now: float) -> None:
        if self.inflight is not None and now > self.deadline:
            self._give_up_request()

    def _give_up_request(self) -> None:
        index = self.inflight
        self.inflight = None
        self.deadline = math.inf
        if index == _REVERSAL:
            assert self.reversal is not None
            self._reversal_failed(*self.reversal)
        elif index is not None:
            self.run.timeouts += 1
            self._owe_reversal(index, Rc.ISSUER_TIMEOUT)
        # The abandoned connection might still deliver the late answer: a new one.
        connection, self.connection = self.connection, None
        if connection is not None and connection.transport is not None:
            connection.transport.abort()
        self._reconnect_soon()

    def on_lost(self, connection: _Connection) -> None:
        if connection is not self.connection:
            return  # one we abandoned ourselves
        self.run.errors += 1
        if self.inflight is not None:
            self._give_up_request()
        else:
            self.connection = None
            self._reconnect_soon()

    def _reconnect_soon(self) -> None:
        if self.done.done():
            return
        task = self.run.loop.create_task(self._reconnect())
        self.run.tasks.add(task)
        task.add_done_callback(self.run.tasks.discard)

    async def _reconnect(self) -> None:
        run = self.run
        hard_stop = run.t_end + run.config.timeout_seconds * (REVERSAL_TRIES + 1)
        while not self.done.done():
            if _clock() > hard_stop or (_clock() >= run.t_end and self.reversal is None):
                self._finish()
                return
            try:
                await asyncio.wait_for(self.connect(), run.config.timeout_seconds)
            except (OSError, TimeoutError):
                run.errors += 1
                await asyncio.sleep(RECONNECT_PAUSE_SECONDS)
                continue
            self.send_next()
            return

    def _finish(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.done.done():
            self.done.set_result(None)

    def close(self) -> None:
        self._finish()
        if self.connection is not None and self.connection.transport is not None:
            self.connection.transport.close()
        self.connection = None


def _stan_bytes(stan: int) -> bytes:
    return bytes.fromhex(f"{stan:06d}")


# --- Orchestration ------------------------------------------------------------------------------
def state_path(directory: Path, tid: str) -> Path:
    """The terminal's state file, the one ``poshub terminal`` uses: both tools continue
    the same STAN counter, so neither repeats a STAN the other sent in the batch."""
    return directory / f"terminal-{tid}.json"


def _load_state(directory: Path | None, spec: TerminalSpec) -> TerminalState:
    if directory is None:
        return TerminalState(tid=spec.tid, mid=spec.mid)
    path = state_path(directory, spec.tid)
    try:
        return TerminalState.load(path, tid=spec.tid, mid=spec.mid)
    except (OSError, ValueError, KeyError) as exc:
        raise LoadError(f"terminal state {path}: {exc}") from None


def _save_states(directory: Path | None, clients: Sequence[TerminalClient]) -> None:
    """Write back STAN and batch only: a journal or owed reversal of ``poshub terminal``
    in the same file is kept as it is."""
    if directory is None:
        return
    for client in clients:
        path = state_path(directory, client.tid)
        with contextlib.suppress(LoadError):
            current = _load_state(directory, TerminalSpec(client.tid, client.mid))
            current.stan, current.batch = client.state.stan, client.state.batch
            current.save(path)


REFERENCE_PIK: Final = bytes.fromhex("6B7A1C5D3E4F2091A0B1C2D3E4F50617")
REFERENCE_MAK: Final = bytes.fromhex("1F2E3D4C5B6A7988")
"""The spec's published V3 working keys, for reference hosts that do not sign on."""


async def _sign_on_all(config: LoadConfig) -> list[TerminalClient]:
    states = {spec.tid: _load_state(config.state_dir, spec) for spec in config.terminals}
    semaphore = asyncio.Semaphore(SIGN_ON_CONCURRENCY)
    refused: list[str] = []
    unreachable: list[str] = []

    async def sign_on(spec: TerminalSpec) -> TerminalClient:
        client = TerminalClient(
            config.host,
            config.port,
            tid=spec.tid,
            mid=spec.mid,
            tmk=config.tmk,
            key_mode=config.key_mode,
            timeout_seconds=config.timeout_seconds,
            state=states[spec.tid],
        )
        if not config.sign_on:
            client.install_keys(WorkingKeys(pik=REFERENCE_PIK, mak=REFERENCE_MAK))
            return client
        async with semaphore:
            try:
                await client.sign_on()
            except SignOnRefused as exc:
                refused.append(str(exc))
            except (HostUnreachable, NoAnswer) as exc:
                unreachable.append(f"terminal {spec.tid}: {exc}")
            finally:
                await client.close()
        return client

    clients = await asyncio.gather(*(sign_on(spec) for spec in config.terminals))
    if refused or unreachable:
        problems = refused + unreachable
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise LoadError("; ".join(problems[:5]) + more)
    return list(clients)


def _frames_per_terminal(config: LoadConfig) -> int:
    count = len(config.terminals)
    rate = config.rate or CLOSED_LOOP_PLANNING_RATE
    wanted = math.ceil(rate * config.duration_seconds / count) + 1
    return max(1, min(wanted, PREBUILT_FRAMES_MAX // count))


async def run_load(
    config: LoadConfig, *, on_progress: Callable[[Progress], None] | None = None
) -> LoadSummary:
    """Sign every terminal on, build the frames, run for ``duration_seconds``, summarise."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    clients = await _sign_on_all(config)
    sign_on_seconds = time.perf_counter() - started

    started = time.perf_counter()
    seed = config.seed if config.seed is not None else random.SystemRandom().getrandbits(32)
    rng = random.Random(seed)
    per_terminal = _frames_per_terminal(config)
    plans = []
    for client in clients:
        plan = _Plan(client, config, random.Random(rng.getrandbits(64)), per_terminal)
        plan.extend(per_terminal)
        plans.append(plan)
    # Saved before the clock starts: a run that dies midway never reuses its STANs.
    _save_states(config.state_dir, clients)
    prebuild_seconds = time.perf_counter() - started

    run = _Run(config, loop)
    count = len(plans)
    interval = count / config.rate if config.rate else 0.0
    drivers = [
        _Driver(run, plan, (i / config.rate) if config.rate else 0.0, interval)
        for i, plan in enumerate(plans)
    ]
    try:
        await asyncio.gather(*(driver.connect() for driver in drivers))
    except OSError as exc:
        for driver in drivers:
            driver.close()
        raise LoadError(f"cannot connect to {config.host}:{config.port}: {exc}") from None

    progress = Progress(duration=config.duration_seconds)
    run.t0 = _clock() + START_DELAY_SECONDS
    run.t_end = run.t0 + config.duration_seconds
    run.last_event = run.t0
    for driver in drivers:
        loop.call_later(START_DELAY_SECONDS, driver.send_next)

    async def watch() -> None:
        while True:
            await asyncio.sleep(WATCHDOG_SECONDS)
            now = _clock()
            for driver in drivers:
                driver.check_deadline(now)
            if on_progress is not None:
                progress.elapsed = min(max(now - run.t0, 0.0), config.duration_seconds)
                progress.sent, progress.answered = run.sent, run.answered
                progress.timeouts = run.timeouts
                on_progress(progress)

    failures: list[str] = []
    previous_handler = loop.get_exception_handler()

    def on_callback_error(event_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # A fault in a driver's callback would otherwise leave its terminal silent until
        # the hard stop: end the run at once and report it.
        failures.append(str(context.get("exception") or context.get("message")))
        for driver in drivers:
            driver.close()

    loop.set_exception_handler(on_callback_error)
    watchdog = loop.create_task(watch())
    cpu_started = time.process_time()
    hard_stop = config.duration_seconds + config.timeout_seconds * (REVERSAL_TRIES + 2) + 5
    try:
        await asyncio.wait([d.done for d in drivers], timeout=hard_stop + 0.1)
    finally:
        run_cpu_seconds = time.process_time() - cpu_started
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        for driver in drivers:
            driver.close()
        for task in list(run.tasks):
            task.cancel()
        _save_states(config.state_dir, clients)
        loop.set_exception_handler(previous_handler)
    if failures:
        raise LoadError(f"the run failed: {failures[0]}")

    elapsed = max(run.last_event - run.t0, 1e-9)
    notes = []
    if run.built_during_run:
        notes.append("frames ran out and were built during the run; raise the plan or rate")
    return LoadSummary(
        terminals=count,
        target_rate=config.rate,
        duration_seconds=config.duration_seconds,
        elapsed_seconds=round(elapsed, 4),
        sent=run.sent,
        answered=run.answered,
        throughput_per_second=round(run.answered / elapsed, 2),
        latency_ms=latency_summary(run.latencies),
        response_codes=dict(run.codes),
        timeouts=run.timeouts,
        errors=run.errors,
        mac_errors=run.mac_errors,
        reversals_sent=run.reversals_sent,
        reversals_acknowledged=run.reversals_acknowledged,
        reversals_abandoned=run.reversals_abandoned,
        frames_prebuilt=per_terminal * count,
        prebuild_seconds=round(prebuild_seconds, 3),
        frames_built_during_run=run.built_during_run,
        sign_on_seconds=round(sign_on_seconds, 3),
        seed=seed,
        cpu_seconds=round(run_cpu_seconds, 3),
        cpu_us_per_request=round(run_cpu_seconds / run.sent * 1e6, 1) if run.sent else 0.0,
        notes=notes,
    )


# --- Command line ---------------------------------------------------------------------------------
def _config_from_args(args: argparse.Namespace, settings: Settings) -> LoadConfig:
    from poshub.core.settings import Mode

    if args.terminals_file:
        specs = read_terminals_file(Path(args.terminals_file))
        if args.terminals is not None:
            if args.terminals > len(specs):
                raise LoadError(
                    f"--terminals {args.terminals} but {args.terminals_file} lists {len(specs)}"
                )
            specs = specs[: args.terminals]
    else:
        count = 1 if args.terminals is None else args.terminals
        if not 1 <= count <= limits.LOADGEN_TERMINALS_MAX:
            raise LoadError(f"--terminals must be 1 to {limits.LOADGEN_TERMINALS_MAX}")
        specs = terminal_range(args.tid_start, count, args.mid)
    try:
        tmk = resolve_tmk(args.tmk, production=settings.mode == Mode.PRODUCTION)
    except UsageError as exc:
        raise LoadError(str(exc)) from None
    state_dir = Path(args.state_dir) if args.state_dir else settings.data_dir
    return LoadConfig(
        terminals=specs,
        host=args.host or settings.gateway_public_host,
        port=args.port or settings.gateway_port,
        rate=args.rate,
        duration_seconds=args.duration,
        tmk=tmk,
        key_mode=args.key_mode,
        decline_percent=args.mix,
        pin_share=args.pin_share,
        timeout_seconds=args.timeout,
        verify_mac=not args.no_verify_mac,
        seed=args.seed,
        state_dir=state_dir,
    )


def _run_with_progress(config: LoadConfig, show: bool) -> LoadSummary:
    if not show:
        summary: LoadSummary = run_async(run_load(config))
        return summary
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    with RichProgress(
        TextColumn("[bold]loadgen"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("run", total=config.duration_seconds, detail="signing on")

        def update(progress: Progress) -> None:
            rate = progress.answered / progress.elapsed if progress.elapsed else 0.0
            bar.update(
                task,
                completed=progress.elapsed,
                detail=f"sent {progress.sent}  answered {progress.answered}"
                f"  {rate:,.0f}/s  timeouts {progress.timeouts}",
            )

        summary = run_async(run_load(config, on_progress=update))
    return summary


def _cmd_loadgen(
    settings_factory: Callable[[argparse.Namespace], Settings], args: argparse.Namespace
) -> int:
    try:
        config = _config_from_args(args, settings_factory(args))
    except LoadError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    try:
        summary = _run_with_progress(config, show=not args.no_progress and sys.stderr.isatty())
    except LoadError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 1
    print(summary.render())
    if args.json:
        Path(args.json).write_text(json.dumps(summary.to_json(), indent=2) + "\n", encoding="utf-8")
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a non-negative number")
    return value


def add_cli(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    settings_factory: Callable[[argparse.Namespace], Settings],
) -> None:
    """Add the top-level ``poshub loadgen`` command."""
    parser = subparsers.add_parser(
        "loadgen",
        help="many terminals selling against the gateway; latency percentiles",
        description="Sign N terminals on, then send sales at a total rate R for S seconds and"
        " print throughput, latency percentiles and response codes.",
    )
    parser.add_argument(
        "--terminals",
        type=int,
        help=f"terminals (connections), 1 to {limits.LOADGEN_TERMINALS_MAX} (default 1,"
        " or all of --terminals-file)",
    )
    parser.add_argument(
        "--rate", type=_positive_float, default=0.0, help="requests/s in all; 0 = closed loop"
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=10.0,
        help=f"seconds, at most {limits.LOADGEN_DURATION_SECONDS_MAX}",
    )
    parser.add_argument("--host", help="gateway address (default: settings gateway_public_host)")
    parser.add_argument("--port", type=int, help="gateway port (default: settings gateway_port)")
    parser.add_argument("--tid-start", default=DEMO_TID, help="first TID of the range")
    parser.add_argument("--mid", default=DEMO_MID, help="merchant of the TID range")
    parser.add_argument("--terminals-file", help="CSV of tid,mid instead of a TID range")
    parser.add_argument(
        "--tmk", help="master key of every terminal (default: the published test key)"
    )
    parser.add_argument("--key-mode", choices=("001", "003", "004"), default="003")
    parser.add_argument(
        "--mix",
        type=_positive_float,
        default=0.0,
        help="percent of sales with a declining amount (ending 51, 05, 61 or 96); default 0",
    )
    parser.add_argument(
        "--pin-share", type=_positive_float, default=0.5, help="share of sales with a PIN"
    )
    parser.add_argument(
        "--timeout", type=_positive_float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds"
    )
    parser.add_argument(
        "--seed", type=int, help="random seed of cards and amounts (default: a fresh one)"
    )
    parser.add_argument(
        "--state-dir",
        help="directory of the terminals' state files (STAN counters shared with"
        " `poshub terminal`; default the data directory)",
    )
    parser.add_argument(
        "--no-verify-mac", action="store_true", help="do not verify answers' MACs (less CPU)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", help="also write the summary as JSON to this file")
    parser.set_defaults(func=lambda args: _cmd_loadgen(settings_factory, args))
