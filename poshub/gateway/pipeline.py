"""The transaction pipeline: one request in, one response out (DESIGN §3, spec §5, §11).

    frame → decode → identify → terminal and merchant → MAC → batch → checks →
    repeat detection → risk (before) → PIN translation → journal (pending) →
    network → risk (after) → journal (final) → response

Risk (poshub/gateway/risk.py) decides before forwarding, in memory; what it must write
rides on the journal writes the request makes anyway: limit reservations on the pending
row's commit (no room left → ``61``), alerts, holds and releases on the final one.

Each step is a small method; a step that decides the answer returns the response code and
the pipeline stops there. What the terminal is told and what the journal records are built
from the same values, and no approved answer leaves before its journal row is durable.

Everything here runs on the event loop; database reads go to a small thread pool, writes
to the journal's writer thread. Terminal views (status, merchant, parameters) are cached
for ``limits.GATEWAY_TERMINAL_CACHE_SECONDS`` so the hot path makes no database read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from poshub.core import limits
from poshub.core.audit import Actor
from poshub.core.clock import SHANGHAI
from poshub.core.crypto import KeyVault
from poshub.core.db import Database, utcnow
from poshub.core.settings import Settings
from poshub.gateway import checks, classify, codec, fields, repository
from poshub.gateway.constants import (
    F_ACQUIRER_ID,
    F_AMOUNT,
    F_AUTH_CODE,
    F_BALANCE,
    F_CONDITION_CODE,
    F_CURRENCY,
    F_ENTRY_MODE,
    F_EXPIRY,
    F_LOCAL_DATE,
    F_LOCAL_TIME,
    F_MAC,
    F_MID,
    F_ORIGINAL,
    F_PAN,
    F_PIN_BLOCK,
    F_PRIVATE_48,
    F_PRIVATE_59,
    F_PROCESSING_CODE,
    F_RESERVED_60,
    F_RESERVED_62,
    F_RESERVED_63,
    F_RESPONSE_CODE,
    F_RRN,
    F_SECURITY_CONTROL,
    F_SETTLEMENT_DATE,
    F_STAN,
    F_TID,
    MTI,
    REQUIREMENT_NONE,
    REQUIREMENT_SIGN_ON,
    SECURITY_DOUBLE_PIK,
    SETTLE_BALANCED,
    SETTLE_UNBALANCED,
    TAG_QR_VOUCHER,
    UNSIGNED_RESPONSE_CODES,
    NetworkCode,
    Rc,
    response_mti,
)
from poshub.gateway.crypto import PinError, WorkingKeys, ZonePinKey, issue_working_keys
from poshub.gateway.journal import (
    DuplicateKey,
    Journal,
    JournalFailed,
    JournalFull,
    LimitReached,
    Op,
)
from poshub.gateway.link import LinkDown, NetworkLink
from poshub.gateway.models import BatchStatus, TxnKind, TxnStatus
from poshub.gateway.risk import ALLOW, AllowAll, RiskContext, RiskDecision, RiskHooks
from poshub.merchants.models import MerchantStatus
from poshub.risk import bins
from poshub.terminals import hsm
from poshub.terminals.models import TerminalStatus

log = logging.getLogger(__name__)

NETWORK_TPDU: Final = bytes.fromhex("6000000000")
NETWORK_HEADER: Final = bytes.fromhex("603100000000")
MAC_PLACEHOLDER: Final = "0" * 16
NO_ANSWER: Final = b""
"""What ``handle`` returns when the terminal must get no answer at all (it will resend)."""
BATCH_FIRST: Final = "000001"
BATCH_LAST: Final = 999_999
RRN_SEQUENCE: Final = "gateway-rrn"
PENDING_RECOVERY_BATCH: Final = 500
READ_THREADS: Final = 2
PENDING_WAIT_MARGIN_SECONDS: Final = 2.0
"""Beyond the upstream timeout, how long a request found pending in another process may
still be waiting for its final journal write."""
PENDING_POLL_SECONDS: Final = 0.05

ECHOED_FIELDS: Final = ("2", "3", "4", "11", "14", "22", "23", "25", "41", "42", "49", "60", "61")
"""Request fields a financial response repeats (spec §5.3): the terminal matches on them."""

FORWARDED_FIELDS: Final = ("3", "4", "22", "23", "25", "41", "42", "49", "60", "61", "55")

VOIDABLE: Final[dict[TxnKind, tuple[str, ...]]] = {
    TxnKind.VOID: (TxnKind.SALE.value, TxnKind.QR_SALE.value),
    TxnKind.COMPLETION_VOID: (TxnKind.COMPLETION.value,),
}
"""What each void cancels: an approved transaction of the same terminal's open batch."""

UNDOES: Final = frozenset({TxnKind.VOID, TxnKind.PREAUTH_CANCEL, TxnKind.COMPLETION_VOID})
"""Requests whose approval sets their original to ``voided`` (and whose reversal puts the
original back to ``approved``)."""

FORWARDED_KINDS: Final = classify.FINANCIAL | {TxnKind.BALANCE}
"""What goes to the network: every financial request and the balance inquiry."""

PROVISIONING_KINDS: Final = frozenset(
    {TxnKind.SIGN_ON, TxnKind.SIGN_OFF, TxnKind.ECHO, TxnKind.PARAMETERS, TxnKind.SALE,
     TxnKind.VOID, TxnKind.REVERSAL, TxnKind.SETTLEMENT, TxnKind.BATCH_UPLOAD,
     TxnKind.BATCH_UPLOAD_END}
)  # fmt: skip
"""What a terminal still in provisioning may do: sign on and run its acceptance test
(a sale, voided or reversed, and settle it)."""


# --- State kept per terminal ----------------------------------------------------------------
@dataclass(slots=True)
class SessionState:
    """A terminal's sign-on state as this process knows it. One object per TID for the
    life of the process: refreshing the terminal's view never replaces it, so a sign-on
    is never undone by a refresh that read the database a moment before it."""

    keys: WorkingKeys | None
    key_mode: str | None
    batch_no: str
    mac_failures: int
    has_session: bool
    """Whether a ``terminal_sessions`` row exists (the first sign-on creates it)."""
    signed_on_at: dt.datetime | None = None
    signed_off_at: dt.datetime | None = None


@dataclass(slots=True)
class TerminalView:
    """The gateway's cached view of one terminal and its merchant, with its session."""

    tid: str
    terminal_id: int
    mid: str
    terminal_status: str
    merchant_status: str
    merchant_name: str
    params: dict[str, Any]
    key_block: str | None
    session: SessionState
    loaded_at: float

    @property
    def keys(self) -> WorkingKeys | None:
        return self.session.keys

    @keys.setter
    def keys(self, value: WorkingKeys | None) -> None:
        self.session.keys = value

    @property
    def key_mode(self) -> str | None:
        return self.session.key_mode

    @key_mode.setter
    def key_mode(self, value: str | None) -> None:
        self.session.key_mode = value

    @property
    def batch_no(self) -> str:
        return self.session.batch_no

    @batch_no.setter
    def batch_no(self, value: str) -> None:
        self.session.batch_no = value

    @property
    def mac_failures(self) -> int:
        return self.session.mac_failures

    @mac_failures.setter
    def mac_failures(self, value: int) -> None:
        self.session.mac_failures = value

    @property
    def has_session(self) -> bool:
        return self.session.has_session

    @has_session.setter
    def has_session(self, value: bool) -> None:
        self.session.has_session = value

    @property
    def enabled_transactions(self) -> list[str]:
        return list(self.params.get("enabled_transactions", []))

    @property
    def limit_fen(self) -> int:
        return int(
            self.params.get(
                "single_transaction_limit_fen", limits.TMS_SINGLE_TRANSACTION_LIMIT_FEN_DEFAULT
            )
        )


@dataclass(frozen=True, slots=True)
class Stored:
    """What a repeat of a request is answered with (spec §11.9): the original answer."""

    fingerprint: tuple[str, ...]
    rrn: str
    response_code: str
    auth_code: str | None
    local_time: str | None
    local_date: str | None
    settlement_date: str | None
    qr_voucher: str | None
    wallet: str | None
    status: str
    upstream: str


@dataclass(slots=True)
class Exchange:
    """One request travelling through the pipeline."""

    envelope: codec.Envelope
    request: codec.Message
    received_at: dt.datetime
    started: float
    rrn: str
    local: dt.datetime
    identified: classify.Identified | None = None
    view: TerminalView | None = None
    pan: str | None = None
    pan_token: str | None = None
    pan_masked: str | None = None
    amount_fen: int | None = None
    requirement: int = REQUIREMENT_NONE
    extra: codec.Message = field(default_factory=dict)
    """Fields the response adds (37, 38, 54, 59, 62, 63 …)."""
    original: Any = None
    """The journal row this request acts on (void, refund, completion, reversal)."""
    network_stan: str | None = None
    upstream: str = "none"
    upstream_us: int | None = None
    status: str = TxnStatus.ANSWERED.value
    auth_code: str | None = None
    qr_voucher: str | None = None
    wallet: str | None = None
    dedupe_key: str | None = None
    channel: str | None = None
    """debit, credit or qr (poshub/risk/bins.py), for financial requests."""
    risk: RiskDecision | None = None
    """The risk hooks' decision before forwarding, handed back to them at the end."""
    risk_context: RiskContext | None = None
    """What the risk hooks were shown (built once per request)."""
    _hhmmss: str | None = None
    _mmdd: str | None = None

    @property
    def kind(self) -> TxnKind:
        return self.identified.kind if self.identified else TxnKind.UNKNOWN

    @property
    def host_date(self) -> dt.date:
        return self.local.date()

    @property
    def hhmmss(self) -> str:
        """Field 12: host local time (computed once per request)."""
        if self._hhmmss is None:
            self._hhmmss = self.local.strftime("%H%M%S")
        return self._hhmmss

    @property
    def mmdd(self) -> str:
        """Fields 13 and 15: host local date."""
        if self._mmdd is None:
            self._mmdd = self.local.strftime("%m%d")
        return self._mmdd


@dataclass(slots=True)
class GatewayStats:
    requests: int = 0
    approved: int = 0
    declined: int = 0
    format_errors: int = 0
    mac_failures: int = 0
    repeats: int = 0
    upstream_timeouts: int = 0
    reversals_queued: int = 0
    response_codes: dict[str, int] = field(default_factory=dict)


class Answer(Exception):
    """Stops the pipeline with a response code (and an optional header requirement)."""

    def __init__(self, code: Rc, requirement: int = REQUIREMENT_NONE) -> None:
        super().__init__(code.value)
        self.code = code
        self.requirement = requirement


# --- RRNs ------------------------------------------------------------------------------
class RrnAllocator:
    """RRNs (field 37) from a database counter, reserved a block at a time: unique per
    host for as long as the counter runs (10^12 values), across processes and restarts."""

    def __init__(
        self, reserve: Callable[[int], int], block: int = limits.GATEWAY_RRN_BLOCK
    ) -> None:
        self._reserve = reserve
        self._block = block
        self._next = 0
        self._end = 0
        self._refill: asyncio.Future[None] | None = None
        self._spare: tuple[int, int] | None = None

    async def start(self, loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor) -> None:
        self._loop = loop
        self._executor = executor
        first = await loop.run_in_executor(executor, self._reserve, self._block)
        self._next, self._end = first, first + self._block

    async def take(self) -> int:
        if self._next >= self._end:
            if self._spare is not None:
                self._next, self._end = self._spare
                self._spare = None
            else:
                first = await self._loop.run_in_executor(self._executor, self._reserve, self._block)
                if self._next >= self._end:
                    self._next, self._end = first, first + self._block
                else:  # another coroutine refilled while we waited: keep ours for later
                    self._spare = (first, first + self._block)
        value = self._next
        self._next += 1
        if self._end - self._next == self._block // 2 and self._spare is None:
            self._prefetch()
        return value

    def _prefetch(self) -> None:
        async def fetch() -> None:
            first = await self._loop.run_in_executor(self._executor, self._reserve, self._block)
            self._spare = (first, first + self._block)

        task = self._loop.create_task(fetch())
        task.add_done_callback(lambda t: t.exception())  # a failure retries on exhaustion


def network_stan_of(sequence: int) -> str:
    return f"{sequence % 999_999 + 1:06d}"


def next_batch(batch_no: str) -> str:
    value = int(batch_no) + 1
    return f"{1 if value > BATCH_LAST else value:06d}"


# --- The gateway ----------------------------------------------------------------------------
class Gateway:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        vault: KeyVault,
        zpk: ZonePinKey,
        link: NetworkLink,
        journal: Journal,
        risk: RiskHooks | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.database = database
        self.vault = vault
        self.zpk = zpk
        self.link = link
        self.journal = journal
        self.risk: RiskHooks = risk or AllowAll()
        self.clock = clock
        self.stats = GatewayStats()
        self.upstream_timeout = settings.gateway_upstream_timeout_seconds
        self._views: dict[str, TerminalView] = {}
        self._sessions: dict[str, SessionState] = {}
        self._refreshing: dict[str, asyncio.Task[TerminalView | None]] = {}
        self._recent: OrderedDict[str, Stored] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[Stored]] = {}
        self._reads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="gateway-read")
        self._rrns = RrnAllocator(self._reserve_rrns)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_reversal_queued: Callable[[], None] = lambda: None
        """Called after a reversal owed to the network is durable (wakes store-and-forward)."""

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._rrns.start(self._loop, self._reads)
        await self.risk.start(self.read)
        self._refresher = self._loop.create_task(self._refresh_forever(), name="terminal-views")

    def close(self) -> None:
        refresher = getattr(self, "_refresher", None)
        if refresher is not None:
            refresher.cancel()
        self.risk.close()
        self._reads.shutdown(wait=False, cancel_futures=True)

    async def read(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a read in the thread pool (a read-only unit of work)."""
        assert self._loop is not None

        def run() -> Any:
            with self.database.unit_of_work(read_only=True) as uow:
                return function(uow.session, *args)

        return await self._loop.run_in_executor(self._reads, run)

    def _reserve_rrns(self, size: int) -> int:
        with self.database.engine.begin() as connection:
            return repository.reserve_block(connection, RRN_SEQUENCE, size)

    # --- entry point -------------------------------------------------------------------------
    async def handle(self, payload: bytes) -> bytes | None:
        """One frame's payload (after the length prefix) → the response frame, or None
        when the connection must be closed (nothing readable to answer)."""
        started = time.perf_counter()
        envelope = codec.split_envelope(payload)  # FrameError → the server closes
        now = self.clock()
        self.stats.requests += 1
        try:
            request = codec.decode(envelope.body)
        except codec.MessageFormatError as error:
            return await self._format_error(envelope, error, now, started)
        exchange = Exchange(
            envelope=envelope,
            request=request,
            received_at=now,
            started=started,
            rrn=f"{await self._rrns.take():012d}",
            local=now.astimezone(SHANGHAI),
        )
        try:
            return await self._process(exchange)
        except Answer as answer:
            return await self._answer(exchange, answer.code, answer.requirement)
        except (JournalFull, JournalFailed):
            if exchange.upstream in ("answered", "timeout"):
                # The network acted and its outcome could not be recorded: no answer, so
                # the terminal reverses (or resends its advice) as for a lost answer
                # (spec §5.5); a 96 would be final, the money taken all the same.
                log.error(
                    "journal unavailable after forwarding; not answering %s",
                    request.get(F_TID, "?"),
                )
                return None
            log.error("journal unavailable; answering 96 to %s", request.get(F_TID, "?"))
            return self._respond(exchange, Rc.SYSTEM_MALFUNCTION)

    async def _format_error(
        self,
        envelope: codec.Envelope,
        error: codec.MessageFormatError,
        now: dt.datetime,
        started: float,
    ) -> bytes | None:
        """Answer 30 when the TID and STAN could be read; otherwise close (spec, issue)."""
        self.stats.format_errors += 1
        log.info(
            "format error: %s", error.reason + (f" (field {error.field})" if error.field else "")
        )
        if error.tid is None or error.stan is None or error.mti is None:
            return None
        mti = error.mti if error.mti[2] in "0246" else "0800"
        request: codec.Message = {MTI: mti, F_TID: error.tid, F_STAN: error.stan}
        exchange = Exchange(
            envelope=envelope,
            request=request,
            received_at=now,
            started=started,
            rrn=f"{await self._rrns.take():012d}",
            local=now.astimezone(SHANGHAI),
        )
        return await self._answer(exchange, Rc.FORMAT_ERROR)

    async def _process(self, x: Exchange) -> bytes:
        try:
            x.identified = classify.identify(x.request)
            classify.check_presence(x.identified, x.request)
        except classify.RequestFormatError as error:
            log.info("request refused as malformed (field %s)", error.field)
            self.stats.format_errors += 1
            raise Answer(Rc.FORMAT_ERROR) from None
        except fields.SubfieldError as error:
            log.info("request refused as malformed (field %s)", error.field)
            self.stats.format_errors += 1
            raise Answer(Rc.FORMAT_ERROR) from None
        if not x.identified.supported:
            raise Answer(Rc.NOT_SUPPORTED)
        x.view = await self._terminal(x.request[F_TID])
        self._check_terminal(x)
        kind = x.kind
        if kind == TxnKind.ECHO:
            return await self._answer(x, Rc.APPROVED)
        if kind == TxnKind.SIGN_ON:
            return await self._sign_on(x)
        if x.identified.needs_mac:
            await self._verify_mac(x)
        if kind == TxnKind.SIGN_OFF:
            return await self._sign_off(x)
        if kind == TxnKind.PARAMETERS:
            return await self._parameters(x)
        if kind == TxnKind.REVERSAL:
            # A reversal names its original's batch, which may be closed by now: that is
            # answered by the reversal rules (12), not by re-synchronising the batch (77).
            if x.view is None or x.view.keys is None:
                raise Answer(Rc.SIGN_ON_AGAIN, REQUIREMENT_SIGN_ON)
            return await self._reversal(x)
        self._check_batch(x)
        if kind == TxnKind.SETTLEMENT:
            return await self._settlement(x)
        if kind == TxnKind.BATCH_UPLOAD:
            return await self._batch_upload(x)
        if kind == TxnKind.BATCH_UPLOAD_END:
            return await self._batch_upload_end(x)
        return await self._financial(x)

    # --- terminal ------------------------------------------------------------------------
    async def _terminal(self, tid: str) -> TerminalView | None:
        """The cached view; read on first sight. ``refresh_views`` keeps every cached view
        within ``limits.GATEWAY_TERMINAL_CACHE_SECONDS`` of the database, so the hot path
        makes no read (a lock, a freeze or a parameter change reaches it that fast)."""
        view = self._views.get(tid)
        if view is not None:
            return view
        task = self._refreshing.get(tid)
        if task is None:
            task = asyncio.ensure_future(self._load_view(tid))
            self._refreshing[tid] = task
            task.add_done_callback(lambda _t: self._refreshing.pop(tid, None))
        return await asyncio.shield(task)

    async def refresh_views(self) -> int:
        """Read every cached terminal again in one go (status, merchant, parameters, key),
        updating the views in place; forget terminals that no longer exist."""
        tids = list(self._views)
        if not tids:
            return 0
        records = await self.read(repository.terminal_records, tids)
        now = time.monotonic()
        for tid in tids:
            view = self._views.get(tid)
            if view is None:
                continue
            record = records.get(tid)
            if record is None:
                self._views.pop(tid, None)
                self._sessions.pop(tid, None)
                continue
            view.terminal_id, view.mid = record.terminal_id, record.mid
            view.terminal_status, view.merchant_status = (
                record.terminal_status,
                record.merchant_status,
            )
            view.merchant_name, view.params = record.merchant_name, record.params
            view.key_block, view.loaded_at = record.key_block, now
        return len(records)

    async def _refresh_forever(self) -> None:
        assert self._loop is not None
        while True:
            await asyncio.sleep(limits.GATEWAY_TERMINAL_CACHE_SECONDS)
            try:
                await self.refresh_views()
            except Exception:  # the database is away: keep the last known view, retry
                log.exception("refreshing terminal views failed")
            try:
                # Keep SQLite's WAL short from outside the writer: otherwise a committing
                # journal write copies tens of MB back when the WAL reaches the automatic
                # checkpoint, and every answer waiting on that commit waits with it.
                await self._loop.run_in_executor(self._reads, self.database.checkpoint)
            except Exception:
                log.exception("WAL checkpoint failed")

    async def _load_view(self, tid: str, *, reload_session: bool = False) -> TerminalView | None:
        """Read the terminal, its merchant and parameters again. The session is read from
        the database only the first time (or when ``reload_session``: another gateway
        process may have signed the terminal on); afterwards this process's memory of it is
        the newest, since every change to it goes through here."""
        loaded = await self.read(_load_terminal, tid)
        if loaded is None:
            self._views.pop(tid, None)
            self._sessions.pop(tid, None)
            return None
        record, session_row = loaded
        session = self._sessions.get(tid)
        if session is None or reload_session:
            fresh = self._session_from_row(tid, session_row)
            if session is None:
                session = fresh
                self._sessions[tid] = session
            else:  # update in place: views held by requests in flight see it too
                session.keys, session.key_mode = fresh.keys, fresh.key_mode
                session.batch_no, session.has_session = fresh.batch_no, fresh.has_session
                session.mac_failures = fresh.mac_failures
                session.signed_on_at, session.signed_off_at = (
                    fresh.signed_on_at,
                    fresh.signed_off_at,
                )
        view = TerminalView(
            tid=tid,
            terminal_id=record.terminal_id,
            mid=record.mid,
            terminal_status=record.terminal_status,
            merchant_status=record.merchant_status,
            merchant_name=record.merchant_name,
            params=record.params,
            key_block=record.key_block,
            session=session,
            loaded_at=time.monotonic(),
        )
        self._views[tid] = view
        return view

    def _session_from_row(self, tid: str, row: Any) -> SessionState:
        if row is None:
            return SessionState(None, None, BATCH_FIRST, 0, has_session=False)
        return SessionState(
            keys=self._unseal(tid, row.keys_sealed),
            key_mode=row.key_mode,
            batch_no=row.batch_no,
            mac_failures=row.mac_failures,
            has_session=True,
            signed_on_at=row.signed_on_at,
            signed_off_at=row.signed_off_at,
        )

    def _seal(self, tid: str, keys: WorkingKeys) -> bytes:
        return self.vault.encrypt(keys.serialise().hex(), context=f"terminal-session:{tid}")

    def _unseal(self, tid: str, sealed: bytes | None) -> WorkingKeys | None:
        if sealed is None:
            return None
        return WorkingKeys.deserialise(
            bytes.fromhex(self.vault.decrypt(sealed, context=f"terminal-session:{tid}"))
        )

    def _check_terminal(self, x: Exchange) -> None:
        view = x.view
        if view is None:
            raise Answer(Rc.UNKNOWN_TERMINAL)
        if x.request.get(F_MID) != view.mid:
            raise Answer(Rc.INVALID_MERCHANT)
        kind = x.kind
        if view.terminal_status == TerminalStatus.PROVISIONING:
            if kind not in PROVISIONING_KINDS:
                raise Answer(Rc.NOT_PERMITTED_TERMINAL)
        elif view.terminal_status != TerminalStatus.ACTIVE:
            # Locked (by staff, the TMS or MAC failures) or closed.
            raise Answer(Rc.NOT_PERMITTED_TERMINAL)
        merchant = view.merchant_status
        if merchant == MerchantStatus.LIVE:
            return
        if merchant in (MerchantStatus.CONTRACTED, MerchantStatus.PROVISIONING) and (
            view.terminal_status == TerminalStatus.PROVISIONING
        ):
            return  # the acceptance test of the merchant's first terminal
        if kind in (TxnKind.ECHO, TxnKind.SIGN_OFF, TxnKind.REVERSAL):
            return  # a frozen merchant's terminal may still undo and say goodbye
        raise Answer(Rc.INVALID_MERCHANT)

    async def _verify_mac(self, x: Exchange) -> None:
        view = x.view
        assert view is not None
        if view.keys is None:
            raise Answer(Rc.SIGN_ON_AGAIN, REQUIREMENT_SIGN_ON)
        if view.keys.verify_mac(x.envelope.body):
            if view.mac_failures:
                view.mac_failures = 0
                await self.journal.write([self._session_op(view)])
            return
        # Another gateway process may have signed the terminal on since we cached it.
        keys_before = view.keys
        fresh = await self._load_view(view.tid, reload_session=True)
        if fresh is not None:
            x.view = view = fresh
            if (
                view.keys is not None
                and view.keys is not keys_before
                and view.keys.verify_mac(x.envelope.body)
            ):
                return
        view.mac_failures += 1
        self.stats.mac_failures += 1
        await self.journal.write(
            [
                Op(
                    repository.MAC_FAILURE,
                    {
                        "b_tid": view.tid,
                        "mac_failures": view.mac_failures,
                        "last_mac_failure_at": x.received_at,
                    },
                )
            ]
        )
        if view.mac_failures >= limits.GATEWAY_MAC_FAILURES_BEFORE_LOCK:
            await self._lock_for_mac_failures(view)
        raise Answer(Rc.MAC_ERROR)

    async def _lock_for_mac_failures(self, view: TerminalView) -> None:
        assert self._loop is not None

        def lock() -> None:
            from poshub.terminals import repository as terminal_repository
            from poshub.terminals import service as terminal_service

            with self.database.unit_of_work() as uow:
                terminal = terminal_repository.terminal_by_tid(
                    uow.session, view.tid, for_update=True
                )
                if terminal is None or terminal.status != TerminalStatus.ACTIVE:
                    return
                terminal_service.lock(
                    uow.session,
                    terminal,
                    reason=f"{view.mac_failures} consecutive MAC failures at the gateway",
                    actor=Actor.system("gateway"),
                    now=utcnow(),
                )
                uow.commit()

        await self._loop.run_in_executor(self._reads, lock)
        view.terminal_status = TerminalStatus.LOCKED.value
        # The lock is the consequence of these failures; once staff unlock the terminal it
        # starts counting afresh (else its next single bad MAC would lock it again).
        failures, view.mac_failures = view.mac_failures, 0
        await self.journal.write([self._session_op(view)])
        log.warning("terminal %s locked after %d MAC failures", view.tid, failures)

    def _check_batch(self, x: Exchange) -> None:
        view = x.view
        identified = x.identified
        assert view is not None
        assert identified is not None
        if view.keys is None:
            raise Answer(Rc.SIGN_ON_AGAIN, REQUIREMENT_SIGN_ON)
        if identified.f60.batch != view.batch_no:
            raise Answer(Rc.SIGN_ON_AGAIN, REQUIREMENT_SIGN_ON)

    def _session_op(self, view: TerminalView, *, signed_on_at: dt.datetime | None = None,
                    signed_off_at: dt.datetime | None = None, now: dt.datetime | None = None) -> Op:  # fmt: skip
        keys = view.keys
        return Op(
            repository.UPSERT_SESSION,
            {
                "tid": view.tid,
                "keys_sealed": self._seal(view.tid, keys) if keys is not None else None,
                "key_mode": view.key_mode,
                "pik_kcv": hsm.kcv(keys.pik) if keys is not None else None,
                "mak_kcv": hsm.kcv(keys.mak) if keys is not None else None,
                "batch_no": view.batch_no,
                # Every write of the session carries both times, so that saving a batch
                # change or a MAC count never erases when the terminal signed on.
                "signed_on_at": signed_on_at or view.session.signed_on_at,
                "signed_off_at": signed_off_at or view.session.signed_off_at,
                "mac_failures": view.mac_failures,
                "last_mac_failure_at": None,
                "updated_at": now or self.clock(),
            },
        )

    # --- management ----------------------------------------------------------------------------
    async def _sign_on(self, x: Exchange) -> bytes:
        view = x.view
        identified = x.identified
        assert view is not None
        assert identified is not None
        mode = identified.f60.network_code
        if view.key_block is None:
            raise Answer(Rc.NOT_PERMITTED_TERMINAL)
        tmk = hsm.unwrap_tmk(self.vault.key_block_key, view.key_block)
        keys, field62 = issue_working_keys(tmk, mode)
        del tmk
        ops: list[Op] = []
        if not view.has_session:
            ops.append(self._batch_insert(view.tid, view.batch_no, x.received_at))
        view.keys, view.key_mode, view.mac_failures, view.has_session = keys, mode, 0, True
        view.session.signed_on_at, view.session.signed_off_at = x.received_at, None
        ops.append(self._session_op(view, signed_on_at=x.received_at, now=x.received_at))
        x.extra[F_RESERVED_62] = field62.hex().upper()
        x.extra[F_RESERVED_60] = identified.f60.with_batch(view.batch_no).text()
        # From the moment this answer leaves, only the new keys are valid (spec §6.4).
        return await self._answer(x, Rc.APPROVED, ops=ops)

    def _batch_insert(self, tid: str, batch_no: str, now: dt.datetime) -> Op:
        return Op(
            repository.INSERT_BATCH,
            {
                "tid": tid,
                "batch_no": batch_no,
                "status": BatchStatus.OPEN.value,
                "opened_at": now,
                "closed_at": None,
                "uploaded_records": 0,
            },
        )

    async def _sign_off(self, x: Exchange) -> bytes:
        view = x.view
        assert view is not None
        view.keys = None
        view.session.signed_off_at = x.received_at
        return await self._answer(
            x,
            Rc.APPROVED,
            ops=[self._session_op(view, signed_off_at=x.received_at, now=x.received_at)],
        )

    async def _parameters(self, x: Exchange) -> bytes:
        view = x.view
        identified = x.identified
        assert view is not None
        assert identified is not None
        if identified.f60.network_code == NetworkCode.PARAMETERS:
            timeout = int(view.params.get("response_timeout_seconds", 60))
            x.extra[F_RESERVED_62] = (
                fields.parameter_download62(view.merchant_name, timeout).hex().upper()
            )
        return await self._answer(x, Rc.APPROVED)

    # --- settlement ------------------------------------------------------------------------------
    async def _settlement(self, x: Exchange) -> bytes:
        view = x.view
        assert view is not None
        try:
            sent = fields.Settlement48.parse(x.request[F_PRIVATE_48])
        except fields.SubfieldError:
            raise Answer(Rc.FORMAT_ERROR) from None
        batch_row, totals = await self.read(_batch_and_totals, view.tid, view.batch_no)
        # Compared as numbers: the host's counts may exceed the three digits a terminal can
        # send (a busy terminal that never settled), which is simply not balanced.
        host_debit_fen, host_debit_count, host_credit_fen, host_credit_count = totals
        sent_totals = (
            sent.domestic.debit_fen,
            sent.domestic.debit_count,
            sent.domestic.credit_fen,
            sent.domestic.credit_count,
        )
        result = SETTLE_BALANCED if tuple(totals) == sent_totals else SETTLE_UNBALANCED
        # Foreign cards are not acquired in v1: balanced when the terminal counts none.
        foreign_result = (
            SETTLE_BALANCED if sent.foreign == fields.ZERO_TOTALS else SETTLE_UNBALANCED
        )
        x.extra[F_PRIVATE_48] = fields.Settlement48(
            sent.domestic, result, sent.foreign, foreign_result
        ).text()
        ops: list[Op] = []
        if batch_row is None:
            ops.append(self._batch_insert(view.tid, view.batch_no, x.received_at))
        else:
            ops.append(
                Op(
                    repository.SETTLE_BATCH,
                    {
                        "b_id": batch_row.id,
                        "settlement_rrn": x.rrn,
                        "terminal_debit_fen": sent.domestic.debit_fen,
                        "terminal_debit_count": sent.domestic.debit_count,
                        "terminal_credit_fen": sent.domestic.credit_fen,
                        "terminal_credit_count": sent.domestic.credit_count,
                        "host_debit_fen": host_debit_fen,
                        "host_debit_count": host_debit_count,
                        "host_credit_fen": host_credit_fen,
                        "host_credit_count": host_credit_count,
                        "result": result,
                        "settled_at": x.received_at,
                    },
                )
            )
        x.extra[F_SETTLEMENT_DATE] = x.mmdd
        return await self._answer(x, Rc.APPROVED, ops=ops)

    async def _batch_upload(self, x: Exchange) -> bytes:
        view = x.view
        assert view is not None
        try:
            records = fields.parse_batch_upload(x.request[F_PRIVATE_48])
        except fields.SubfieldError:
            raise Answer(Rc.FORMAT_ERROR) from None
        batch_row, _ = await self.read(_batch_and_totals, view.tid, view.batch_no)
        ops = []
        if batch_row is not None:
            ops.append(
                Op(repository.UPLOADED_RECORDS, {"b_id": batch_row.id, "delta": len(records)})
            )
        return await self._answer(x, Rc.APPROVED, ops=ops)

    async def _batch_upload_end(self, x: Exchange) -> bytes:
        view = x.view
        assert view is not None
        try:
            fields.parse_upload_end(x.request[F_PRIVATE_48])
        except fields.SubfieldError:
            raise Answer(Rc.FORMAT_ERROR) from None
        batch_row, _ = await self.read(_batch_and_totals, view.tid, view.batch_no)
        ops: list[Op] = []
        if batch_row is not None:
            ops.append(
                Op(repository.CLOSE_BATCH, {"b_id": batch_row.id, "closed_at": x.received_at})
            )
        view.batch_no = next_batch(view.batch_no)
        ops.append(self._batch_insert(view.tid, view.batch_no, x.received_at))
        ops.append(self._session_op(view, now=x.received_at))
        return await self._answer(x, Rc.APPROVED, ops=ops)

    # --- reversal ------------------------------------------------------------------------------------
    async def _reversal(self, x: Exchange) -> bytes:
        view = x.view
        assert view is not None
        request = x.request
        stan = request[F_STAN]
        batch_no = x.identified.f60.batch if x.identified else view.batch_no
        x.amount_fen = _amount(request)
        self._card(x)
        # A reversal may overtake its original while the original is still in flight.
        inflight_key = self._dedupe_key(view.tid, batch_no, stan)
        waiting = self._inflight.get(inflight_key)
        if waiting is not None:
            # If the original failed, there is nothing to reverse; look it up either way.
            with contextlib.suppress(Exception):
                await asyncio.shield(waiting)
        original = await self.read(repository.original_for_reversal, view.tid, batch_no, stan)
        ops: list[Op] = []
        if original is None:
            # Never received: 00 stops the terminal retrying (spec §11.9).
            return await self._answer(x, Rc.APPROVED, ops=ops)
        x.original = original
        x.channel = original.channel
        if original.amount_fen is not None and x.amount_fen != original.amount_fen:
            raise Answer(Rc.ORIGINAL_AMOUNT_WRONG)
        if original.status == TxnStatus.REVERSED:
            return await self._answer(x, Rc.APPROVED)
        if original.status in (TxnStatus.VOIDED, TxnStatus.COMPLETED) or original.refunded_fen:
            # Later transactions build on it (a void, a cancel, a completion, refunds): the
            # network refuses its reversal as well (12); those are reversed first.
            raise Answer(Rc.INVALID_TRANSACTION)
        if original.status in (TxnStatus.APPROVED, TxnStatus.PENDING) or (
            original.response_code is None
        ):
            if batch_no != view.batch_no or await self.read(_batch_settled, view.tid, batch_no):
                # The batch's totals were agreed at settlement (0510): no longer undone
                # here, left for manual follow-up (spec §11.9, §5.5).
                raise Answer(Rc.INVALID_TRANSACTION)
            ops.extend(
                self._reverse_ops(
                    original, reason=request.get(F_RESPONSE_CODE, "98"), now=x.received_at
                )
            )
            undoing = None
            if TxnKind(original.kind) in UNDOES and original.original_rrn:
                undoing = await self.read(repository.transaction, original.original_rrn)
            ops.extend(self.risk.undone(original, undoing))
        else:
            # Declined originals changed nothing upstream; just mark them.
            ops.append(
                Op(
                    repository.SET_STATUS,
                    {"b_rrn": original.rrn, "status": TxnStatus.REVERSED.value},
                )
            )
        return await self._answer(x, Rc.APPROVED, ops=ops, wake_saf=True)

    def _reverse_ops(self, original: Any, *, reason: str, now: dt.datetime) -> list[Op]:
        """Mark ``original`` reversed, put back what it had undone (or, for a completion,
        captured: the network restores the pre-auth's hold), and owe the network its
        reversal (store-and-forward), all in one commit."""
        ops = [
            Op(repository.SET_STATUS, {"b_rrn": original.rrn, "status": TxnStatus.REVERSED.value})
        ]
        if (
            (TxnKind(original.kind) in UNDOES or original.kind == TxnKind.COMPLETION)
            and original.original_rrn
            and original.status != TxnStatus.PENDING
        ):
            ops.append(
                Op(
                    repository.SET_STATUS,
                    {"b_rrn": original.original_rrn, "status": TxnStatus.APPROVED.value},
                )
            )
        if original.upstream != "none" and original.network_stan:
            ops.append(self.saf_op(original, reason=reason, now=now))
        return ops

    def saf_op(self, original: Any, *, reason: str, now: dt.datetime) -> Op:
        """The reversal owed to the network for ``original`` (a journal row or a
        ``_RowView``), as a store-and-forward row."""
        self.stats.reversals_queued += 1
        view = original if isinstance(original, _RowView) else _RowView.of_row(original)
        return Op(
            repository.INSERT_REVERSAL,
            {
                "rrn": view.rrn,
                "network_stan": view.network_stan,
                "tid": view.tid,
                "mid": view.mid,
                "mti": view.mti,
                "processing_code": view.processing_code or "000000",
                "condition_code": view.condition_code,
                "type_code": view.type_code or "22",
                "amount_fen": view.amount_fen or 0,
                "reason": reason if reason in ("98", "A0", "06", "96") else "98",
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
                "acknowledged_at": None,
                "last_error": None,
            },
        )

    # --- financial -------------------------------------------------------------------------------------
    def _dedupe_key(self, tid: str, batch_no: str, stan: str) -> str:
        """Repeats are per batch (spec §11.9), not per day: an advice resent after
        midnight is still the same advice. (A terminal's batch number comes back only
        after 999,999 settlements.)"""
        return f"{tid}:{batch_no}:{stan}:F"

    def _card(self, x: Exchange) -> None:
        pan = checks.card_pan(x.request)
        if pan is not None:
            x.pan = pan
            x.pan_token = self.vault.token(pan, purpose="pan")
            x.pan_masked = checks.mask_pan(pan)

    def _fingerprint(self, x: Exchange) -> tuple[str, ...]:
        request = x.request
        return (
            request[MTI],
            request.get(F_PROCESSING_CODE, ""),
            request.get(F_AMOUNT, ""),
            x.pan_token or "",
        )

    async def _financial(self, x: Exchange) -> bytes:
        view = x.view
        identified = x.identified
        assert view is not None
        assert identified is not None
        kind = identified.kind
        request = x.request
        if not checks.enabled(kind, view.enabled_transactions):
            raise Answer(Rc.NOT_PERMITTED_TERMINAL)
        self._card(x)
        x.amount_fen = _amount(request)
        if kind != TxnKind.BALANCE:
            code = checks.check_amount(request.get(F_AMOUNT), limit_fen=view.limit_fen)
            if code is None:
                code = checks.check_currency(request.get(F_CURRENCY))
            if code is not None:
                raise Answer(code)
        elif request.get(F_CURRENCY) and checks.check_currency(request.get(F_CURRENCY)) is not None:
            raise Answer(Rc.INVALID_AMOUNT)
        qr = kind == TxnKind.QR_SALE or request.get(F_ENTRY_MODE, "").startswith("03")
        if identified.financial:
            x.channel = bins.channel_of(kind, x.pan, qr=qr, original_channel=None)
        if not qr:
            code = checks.check_card(x.pan, checks.card_expiry(request), x.host_date)
            if code is not None:
                raise Answer(code)
        if not identified.financial:
            return await self._forward_and_answer(x)
        # Repeats: the same (TID, batch, STAN) gets the first answer (spec §11.9).
        x.dedupe_key = self._dedupe_key(view.tid, identified.f60.batch, request[F_STAN])
        replay = await self._repeat(x)
        if replay is not None:
            return replay
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._inflight[x.dedupe_key] = future
        try:
            response = await self._financial_new(x)
        except BaseException as error:
            if not future.done():
                future.set_exception(
                    error if isinstance(error, Exception) else RuntimeError("cancelled")
                )
                future.exception()  # retrieved: waiters re-check the journal
            raise
        finally:
            self._inflight.pop(x.dedupe_key, None)
        if not future.done():
            stored = self._recent.get(x.dedupe_key)
            if stored is not None:
                future.set_result(stored)
            else:
                future.set_exception(RuntimeError("no stored answer"))
                future.exception()
        return response

    async def _settled_row(self, dedupe_key: str) -> Any:
        """The journal row of ``dedupe_key``. A ``pending`` row young enough to be in
        flight in another gateway process is waited for (until the upstream timeout and
        a margin have passed since it arrived), so both copies of a request get the same
        answer; a row a crash left pending is returned as it is."""
        row = await self.read(repository.transaction_by_dedupe, dedupe_key)
        if row is None or row.status != TxnStatus.PENDING or row.upstream != "forwarded":
            return row
        age = max(0.0, (self.clock() - row.received_at).total_seconds())
        deadline = time.monotonic() + self.upstream_timeout + PENDING_WAIT_MARGIN_SECONDS - age
        while row is not None and row.status == TxnStatus.PENDING and time.monotonic() < deadline:
            await asyncio.sleep(PENDING_POLL_SECONDS)
            row = await self.read(repository.transaction_by_dedupe, dedupe_key)
        return row

    async def _repeat(self, x: Exchange) -> bytes | None:
        assert x.dedupe_key is not None
        key = x.dedupe_key
        waiting = self._inflight.get(key)
        if waiting is not None:
            try:
                stored = await asyncio.shield(waiting)
            except Exception:
                stored = None
        else:
            stored = self._recent.get(key)
        if stored is None and waiting is None:
            return None
        if stored is None:
            row = await self.read(repository.transaction_by_dedupe, key)
            if row is None:
                return None
            stored = _stored_from_row(row)
        return await self._replay(x, stored)

    async def _replay(self, x: Exchange, stored: Stored) -> bytes:
        self.stats.repeats += 1
        if stored.fingerprint != self._fingerprint(x):
            # A new request reusing a STAN already used in this batch (spec §11.9).
            x.dedupe_key = None
            return await self._answer(x, Rc.DUPLICATE)
        if (
            stored.status == TxnStatus.PENDING
            and stored.upstream in ("timeout", "forwarded")
            and x.identified
            and not x.identified.reversible
        ):
            # An advice (0220) the network has not confirmed: ask again with the same RRN;
            # the network answers a repeated RRN with its first answer. "forwarded": a
            # crash came before the answer (recovery leaves advices pending for this).
            x.rrn = stored.rrn
            x.dedupe_key = None
            return await self._financial_new(x, resend=True)
        x.rrn = stored.rrn
        x.auth_code = stored.auth_code
        x.qr_voucher, x.wallet = stored.qr_voucher, stored.wallet
        return self._respond(
            x,
            Rc(stored.response_code),
            local_time=stored.local_time,
            local_date=stored.local_date,
            settlement_date=stored.settlement_date,
        )

    async def _financial_new(self, x: Exchange, *, resend: bool = False) -> bytes:
        view = x.view
        identified = x.identified
        assert view is not None
        assert identified is not None
        kind = identified.kind
        if kind in VOIDABLE or kind in (
            TxnKind.REFUND,
            TxnKind.PREAUTH_CANCEL,
            TxnKind.COMPLETION,
            TxnKind.COMPLETION_ADVICE,
        ):
            await self._find_original(x)
            if x.original is not None and x.original.channel:
                x.channel = x.original.channel
        decision = ALLOW if resend else self.risk.before_forward(self._risk_context(x))
        if not decision.allow:
            declined = (
                decision.response_code
                if decision.response_code != Rc.APPROVED
                else Rc.DO_NOT_HONOUR
            )
            return await self._answer(x, declined, ops=list(decision.ops))
        x.risk = decision
        upstream = self._network_request(x)
        self._translate_pin(x, upstream)
        if not resend:
            sequence = int(x.rrn)
            x.network_stan = network_stan_of(sequence)
            x.status = TxnStatus.PENDING.value
            x.upstream = "forwarded"
            try:
                await self.journal.write(
                    [Op(repository.INSERT_TXN, self._row(x, pending=True)), *decision.ops]
                )
            except LimitReached:
                # Another request (here or in another gateway process) took the room left
                # under a limit first: nothing was written or forwarded.
                self.risk.limit_reached(self._risk_context(x), decision)
                x.risk = None
                x.upstream = "none"
                x.network_stan = None
                return await self._answer(x, Rc.EXCEEDS_AMOUNT_LIMIT)
            except DuplicateKey:
                # The same request arrived through another connection or process first.
                assert x.dedupe_key is not None
                row = await self._settled_row(x.dedupe_key)
                if row is None:
                    raise Answer(Rc.SYSTEM_MALFUNCTION) from None
                return await self._replay(x, _stored_from_row(row))
        else:
            row = await self.read(repository.transaction, x.rrn)
            x.network_stan = row.network_stan if row is not None else network_stan_of(int(x.rrn))
        upstream[F_STAN] = x.network_stan or network_stan_of(int(x.rrn))
        upstream[F_RRN] = x.rrn
        sent = time.perf_counter()
        try:
            response = await self.link.request(upstream, timeout=self.upstream_timeout)
        except LinkDown:
            response = None
            x.upstream = "none"
            x.upstream_us = None
            return await self._finish(x, Rc.UNREACHABLE, status=TxnStatus.DECLINED)
        x.upstream_us = int((time.perf_counter() - sent) * 1e6)
        if response is None:
            self.stats.upstream_timeouts += 1
            x.upstream = "timeout"
            if identified.reversible:
                # The terminal gets 98 and the network a reversal (store-and-forward).
                return await self._finish(
                    x, Rc.ISSUER_TIMEOUT, status=TxnStatus.REVERSED, reverse_upstream="98"
                )
            # An advice is never reversed (spec §5.4): it stays pending and the terminal is
            # not answered, so it resends the same advice, which goes upstream again with
            # the same RRN until the network answers. A 98 here would read as a decline to
            # the terminal while the network may have paid the refund.
            await self._finish(x, Rc.ISSUER_TIMEOUT, status=TxnStatus.PENDING)
            return NO_ANSWER
        x.upstream = "answered"
        code = _network_code(response)
        x.auth_code = response.get(F_AUTH_CODE)
        if F_BALANCE in response:
            x.extra[F_BALANCE] = response[F_BALANCE]
        if F_PRIVATE_59 in response:
            tlv = _tlv(response[F_PRIVATE_59])
            x.qr_voucher = tlv.get(TAG_QR_VOUCHER)
        if F_RESERVED_63 in response:
            x.wallet = response[F_RESERVED_63][:3]
        after = self.risk.after_response(self._risk_context(x), code.value, x.risk or ALLOW)
        if code == Rc.APPROVED and not after.allow:
            refused = (
                after.response_code if after.response_code != Rc.APPROVED else Rc.DO_NOT_HONOUR
            )
            return await self._finish(x, refused, status=TxnStatus.REVERSED, reverse_upstream="06")
        if code == Rc.APPROVED:
            return await self._finish(x, code, status=TxnStatus.APPROVED)
        return await self._finish(x, code, status=TxnStatus.DECLINED)

    def _translate_pin(self, x: Exchange, upstream: codec.Message) -> None:
        """Field 52 from the terminal's PIK to the network's zone PIN key (99 when the block
        is malformed); a PIN block without a card number to bind it to is a format error."""
        block = x.request.get(F_PIN_BLOCK)
        if block is None:
            return
        keys = x.view.keys if x.view is not None else None
        if x.pan is None or keys is None:
            raise Answer(Rc.FORMAT_ERROR)
        try:
            upstream[F_PIN_BLOCK] = (
                keys.translate_pin(bytes.fromhex(block), x.pan, self.zpk).hex().upper()
            )
        except PinError as error:
            raise Answer(error.code) from None
        upstream[F_SECURITY_CONTROL] = SECURITY_DOUBLE_PIK

    async def _forward_and_answer(self, x: Exchange) -> bytes:
        """Balance inquiry: forwarded, journalled, no financial effect, never repeated."""
        view = x.view
        assert view is not None
        upstream = self._network_request(x)
        self._translate_pin(x, upstream)
        x.network_stan = network_stan_of(int(x.rrn))
        upstream[F_STAN] = x.network_stan
        upstream[F_RRN] = x.rrn
        sent = time.perf_counter()
        try:
            response = await self.link.request(upstream, timeout=self.upstream_timeout)
        except LinkDown:
            raise Answer(Rc.UNREACHABLE) from None
        x.upstream_us = int((time.perf_counter() - sent) * 1e6)
        if response is None:
            x.upstream = "timeout"
            raise Answer(Rc.ISSUER_TIMEOUT)
        x.upstream = "answered"
        if F_BALANCE in response:
            x.extra[F_BALANCE] = response[F_BALANCE]
        code = _network_code(response)
        return await self._answer(x, code)

    async def _find_original(self, x: Exchange) -> None:
        """The transaction a void, refund, cancel or completion acts on (spec §11.8)."""
        view = x.view
        identified = x.identified
        assert view is not None
        assert identified is not None
        kind = identified.kind
        request = x.request
        try:
            original_ref = fields.Field61.parse(request[F_ORIGINAL])
        except (fields.SubfieldError, KeyError):
            raise Answer(Rc.FORMAT_ERROR) from None
        if kind in VOIDABLE:
            original = await self.read(
                repository.original_in_batch,
                view.tid,
                view.batch_no,
                original_ref.stan,
                VOIDABLE[kind],
            )
            if original is None or original.batch_no != original_ref.batch:
                raise Answer(Rc.ORIGINAL_NOT_FOUND)
            if request.get(F_RRN) != original.rrn:
                raise Answer(Rc.MISMATCH)
            if original.status != TxnStatus.APPROVED:
                raise Answer(Rc.INVALID_TRANSACTION)
            if original.amount_fen != x.amount_fen:
                raise Answer(Rc.ORIGINAL_AMOUNT_WRONG)
            if (
                original.pan_token is not None
                and x.pan_token is not None
                and original.pan_token != x.pan_token
            ):
                raise Answer(Rc.MISMATCH)
        elif kind == TxnKind.REFUND:
            original = await self.read(repository.transaction, request.get(F_RRN, ""))
            if (
                original is None
                or original.mid != view.mid
                or original.kind not in (TxnKind.SALE, TxnKind.QR_SALE, TxnKind.COMPLETION)
                or original.response_code != Rc.APPROVED
                or original.batch_no != original_ref.batch
                or original.stan != original_ref.stan
            ):
                raise Answer(Rc.ORIGINAL_NOT_FOUND)
            if original.status != TxnStatus.APPROVED:
                raise Answer(Rc.INVALID_TRANSACTION)
            if (original.refunded_fen or 0) + (x.amount_fen or 0) > (original.amount_fen or 0):
                raise Answer(Rc.INVALID_AMOUNT)
        else:  # pre-auth cancel, completion request, completion advice: 38 + PAN + 61.3
            original = await self.read(
                _preauth_by_auth_code, view.mid, request.get(F_AUTH_CODE, ""), x.pan_token
            )
            if original is None or (
                original_ref.date is not None and original.local_date != original_ref.date
            ):
                raise Answer(Rc.ORIGINAL_NOT_FOUND)
            if original.status != TxnStatus.APPROVED:
                raise Answer(Rc.INVALID_TRANSACTION)
            if kind == TxnKind.PREAUTH_CANCEL and original.amount_fen != x.amount_fen:
                raise Answer(Rc.ORIGINAL_AMOUNT_WRONG)
            if (
                kind in (TxnKind.COMPLETION, TxnKind.COMPLETION_ADVICE)
                and (x.amount_fen or 0) * 100
                > (original.amount_fen or 0) * limits.GATEWAY_COMPLETION_TOLERANCE_PERCENT
            ):
                raise Answer(Rc.INVALID_AMOUNT)
        x.original = original

    def _network_request(self, x: Exchange) -> codec.Message:
        request = x.request
        upstream: codec.Message = {MTI: request[MTI]}
        for key in FORWARDED_FIELDS:
            if key in request:
                upstream[key] = request[key]
        if x.pan is not None:
            upstream[F_PAN] = x.pan
        expiry = checks.card_expiry(request)
        if expiry is not None:
            upstream[F_EXPIRY] = expiry
        upstream[F_LOCAL_TIME] = x.hhmmss
        upstream[F_LOCAL_DATE] = x.mmdd
        upstream[F_ACQUIRER_ID] = self.settings.acquirer_institution_id
        if F_AUTH_CODE in request:
            upstream[F_AUTH_CODE] = request[F_AUTH_CODE]
        if x.original is not None:
            upstream[F_PRIVATE_48] = x.original.rrn
        if F_PRIVATE_59 in request:
            upstream[F_PRIVATE_59] = request[F_PRIVATE_59]
        return upstream

    def _risk_context(self, x: Exchange) -> RiskContext:
        """What the risk hooks see of ``x``: built once, when the original is known."""
        if x.risk_context is not None:
            return x.risk_context
        view = x.view
        assert view is not None
        original = x.original
        x.risk_context = RiskContext(
            kind=x.kind,
            tid=view.tid,
            mid=view.mid,
            amount_fen=x.amount_fen,
            pan_token=x.pan_token,
            pan_masked=x.pan_masked,
            entry_mode=x.request.get(F_ENTRY_MODE),
            rrn=x.rrn,
            received_at=x.received_at,
            channel=x.channel,
            local=x.local,
            terminal_limit_fen=view.limit_fen,
            original_rrn=original.rrn if original is not None else None,
            original_kind=original.kind if original is not None else None,
            original_amount_fen=original.amount_fen if original is not None else None,
            original_host_date=original.host_date if original is not None else None,
            original_tid=original.tid if original is not None else None,
            original_pan_token=original.pan_token if original is not None else None,
        )
        return x.risk_context

    async def _finish(
        self, x: Exchange, code: Rc, *, status: TxnStatus, reverse_upstream: str | None = None
    ) -> bytes:
        """The final journal write of a forwarded request, then the answer."""
        x.status = status.value
        ops: list[Op] = []
        original = x.original
        if code == Rc.APPROVED and original is not None:
            kind = x.kind
            if kind in UNDOES:
                ops.append(
                    Op(
                        repository.SET_STATUS,
                        {"b_rrn": original.rrn, "status": TxnStatus.VOIDED.value},
                    )
                )
            elif kind == TxnKind.REFUND:
                ops.append(
                    Op(
                        repository.ADD_REFUNDED,
                        {"b_rrn": original.rrn, "delta_fen": x.amount_fen or 0},
                    )
                )
            elif kind in (TxnKind.COMPLETION, TxnKind.COMPLETION_ADVICE):
                ops.append(
                    Op(
                        repository.SET_STATUS,
                        {"b_rrn": original.rrn, "status": TxnStatus.COMPLETED.value},
                    )
                )
        if reverse_upstream is not None:
            ops.append(self.saf_op(_RowView.of(x), reason=reverse_upstream, now=self.clock()))
        ops.extend(
            self.risk.finish(
                self._risk_context(x),
                x.risk or ALLOW,
                code.value,
                approved=status == TxnStatus.APPROVED,
            )
        )
        return await self._answer(
            x, code, ops=ops, finish=True, wake_saf=reverse_upstream is not None
        )

    # --- answering ------------------------------------------------------------------------------
    async def _answer(
        self,
        x: Exchange,
        code: Rc,
        requirement: int = REQUIREMENT_NONE,
        *,
        ops: list[Op] | None = None,
        finish: bool = False,
        wake_saf: bool = False,
    ) -> bytes:
        """Journal the request and its answer (durably), then build the response."""
        x.requirement = max(x.requirement, requirement)
        if (
            not finish
            and x.status == TxnStatus.ANSWERED
            and x.identified is not None
            and x.identified.financial
        ):
            x.status = TxnStatus.APPROVED.value if code == Rc.APPROVED else TxnStatus.DECLINED.value
        if not finish and x.status == TxnStatus.PENDING:
            # Declined before it was ever forwarded (a check after the pending write).
            x.status = TxnStatus.DECLINED.value
        response = self._respond(x, code)
        row_ops = list(ops or [])
        # The full row: for a forwarded request it replaces its pending row (same RRN).
        row_ops.insert(0, Op(repository.INSERT_TXN, self._row(x, code=code)))
        try:
            await self.journal.write(row_ops)
        except DuplicateKey:
            key = x.dedupe_key
            if key is None:
                raise
            # Lost a race with an identical request: answer as it was answered.
            x.dedupe_key = None
            row = await self._settled_row(key)
            if row is None:
                raise
            return await self._replay(x, _stored_from_row(row))
        if x.dedupe_key is not None:
            self._remember(x, code)
        if wake_saf:
            self.on_reversal_queued()
        return response

    def _remember(self, x: Exchange, code: Rc) -> None:
        assert x.dedupe_key is not None
        self._recent[x.dedupe_key] = Stored(
            fingerprint=self._fingerprint(x),
            rrn=x.rrn,
            response_code=code.value,
            auth_code=x.auth_code,
            local_time=x.hhmmss,
            local_date=x.mmdd,
            settlement_date=x.mmdd if code == Rc.APPROVED else None,
            qr_voucher=x.qr_voucher,
            wallet=x.wallet,
            status=x.status,
            upstream=x.upstream,
        )
        while len(self._recent) > limits.GATEWAY_DEDUPE_CACHE_MAX:
            self._recent.popitem(last=False)

    def _respond(
        self,
        x: Exchange,
        code: Rc,
        *,
        local_time: str | None = None,
        local_date: str | None = None,
        settlement_date: str | None = None,
    ) -> bytes:
        request = x.request
        self.stats.response_codes[code.value] = self.stats.response_codes.get(code.value, 0) + 1
        if code == Rc.APPROVED:
            self.stats.approved += 1
        else:
            self.stats.declined += 1
        mti = request[MTI]
        response: codec.Message = {MTI: response_mti(mti)}
        for key in ECHOED_FIELDS:
            if key in request:
                response[key] = request[key]
        response[F_LOCAL_TIME] = local_time or x.hhmmss
        response[F_LOCAL_DATE] = local_date or x.mmdd
        response[F_RESPONSE_CODE] = code.value
        kind = x.kind
        if kind not in (
            TxnKind.ECHO,
            TxnKind.SIGN_OFF,
            TxnKind.UNKNOWN,
            TxnKind.BATCH_UPLOAD,
            TxnKind.BATCH_UPLOAD_END,
        ):
            response[F_RRN] = x.rrn
            response[F_ACQUIRER_ID] = self.settings.acquirer_institution_id
        if code == Rc.APPROVED:
            if x.auth_code:
                response[F_AUTH_CODE] = x.auth_code
            if kind in FORWARDED_KINDS and kind != TxnKind.BALANCE:
                response[F_SETTLEMENT_DATE] = settlement_date or x.mmdd
            if x.qr_voucher:
                response[F_PRIVATE_59] = f"{TAG_QR_VOUCHER}{len(x.qr_voucher):03d}{x.qr_voucher}"
            if x.wallet:
                response[F_RESERVED_63] = x.wallet
        for key, value in x.extra.items():
            if key == F_RESERVED_62 and code != Rc.APPROVED:
                continue
            if key == F_BALANCE and code != Rc.APPROVED:
                continue
            response[key] = value
        if kind == TxnKind.SETTLEMENT and F_RESERVED_63 in request:
            response[F_RESERVED_63] = request[F_RESERVED_63]
        if F_RESERVED_60 not in response and x.identified is not None:
            response[F_RESERVED_60] = x.identified.f60.text()
        view = x.view
        signed = (
            x.identified is not None
            and x.identified.needs_mac
            and code not in UNSIGNED_RESPONSE_CODES
            and view is not None
            and view.keys is not None
        )
        if signed:
            response[F_MAC] = MAC_PLACEHOLDER
        try:
            body = codec.encode(response)
        except codec.MessageFormatError:
            # An echoed field we cannot re-encode: answer the bare minimum.
            body = codec.encode({MTI: response[MTI], F_TID: request.get(F_TID, " " * 8)[:8].ljust(8),
                                 F_RESPONSE_CODE: Rc.FORMAT_ERROR.value})  # fmt: skip
            signed = False
        if signed:
            assert view is not None
            assert view.keys is not None
            body = view.keys.sign(body)
        requirement = x.requirement
        return codec.frame(
            codec.response_tpdu(x.envelope.tpdu),
            codec.response_header(x.envelope.header, requirement),
            body,
        )

    def _row(self, x: Exchange, *, code: Rc | None = None, pending: bool = False) -> dict[str, Any]:
        request = x.request
        identified = x.identified
        view = x.view
        total_us = None if pending else int((time.perf_counter() - x.started) * 1e6)
        return {
            "rrn": x.rrn,
            "tid": request.get(F_TID),
            "mid": request.get(F_MID),
            "kind": x.kind.value,
            "mti": request[MTI],
            "processing_code": request.get(F_PROCESSING_CODE),
            "type_code": identified.f60.type_code if identified else None,
            "network_code": identified.f60.network_code if identified else None,
            "stan": request.get(F_STAN),
            "batch_no": identified.f60.batch if identified else None,
            "host_date": x.host_date,
            "dedupe_key": x.dedupe_key,
            "pan_masked": x.pan_masked,
            "pan_last4": x.pan[-4:] if x.pan else None,
            "pan_token": x.pan_token,
            "entry_mode": request.get(F_ENTRY_MODE),
            "channel": x.channel,
            "amount_fen": x.amount_fen,
            "currency": request.get(F_CURRENCY),
            "response_code": code.value if code is not None else None,
            "auth_code": x.auth_code,
            "status": x.status,
            "original_rrn": x.original.rrn if x.original is not None else None,
            "refunded_fen": 0,
            "reversal_reason": request.get(F_RESPONSE_CODE) if x.kind == TxnKind.REVERSAL else None,
            "qr_voucher": x.qr_voucher,
            "wallet": x.wallet,
            "local_time": x.hhmmss,
            "local_date": x.mmdd,
            "settlement_date": x.mmdd if code == Rc.APPROVED else None,
            "network_stan": x.network_stan,
            "upstream": x.upstream,
            "upstream_us": x.upstream_us,
            "total_us": total_us,
            "received_at": x.received_at,
            "responded_at": None if pending else self.clock(),
        } | ({"mid": view.mid} if view is not None and request.get(F_MID) is None else {})


# --- helpers -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _RowView:
    """The journal fields a reversal needs, from an exchange that has no row object yet."""

    rrn: str
    network_stan: str | None
    tid: str | None
    mid: str | None
    mti: str
    processing_code: str | None
    condition_code: str
    type_code: str | None
    amount_fen: int | None

    @classmethod
    def of(cls, x: Exchange) -> _RowView:
        request = x.request
        return cls(
            rrn=x.rrn,
            network_stan=x.network_stan,
            tid=request.get(F_TID),
            mid=request.get(F_MID),
            mti=request[MTI],
            processing_code=request.get(F_PROCESSING_CODE),
            condition_code=request.get(F_CONDITION_CODE, "00"),
            type_code=x.identified.f60.type_code if x.identified else None,
            amount_fen=x.amount_fen,
        )

    @classmethod
    def of_row(cls, row: Any) -> _RowView:
        return cls(
            rrn=row.rrn,
            network_stan=row.network_stan,
            tid=row.tid,
            mid=row.mid,
            mti=row.mti,
            processing_code=row.processing_code,
            condition_code=_condition_of(row),
            type_code=row.type_code,
            amount_fen=row.amount_fen,
        )


def _condition_of(row: Any) -> str:
    return "06" if row.kind in (TxnKind.PREAUTH, TxnKind.PREAUTH_CANCEL, TxnKind.COMPLETION,
                                TxnKind.COMPLETION_VOID, TxnKind.COMPLETION_ADVICE) else "00"  # fmt: skip


def _network_code(response: codec.Message) -> Rc:
    """The network's field 39; a code outside §9 (or none) counts as a system malfunction."""
    try:
        return Rc(response.get(F_RESPONSE_CODE, Rc.SYSTEM_MALFUNCTION.value))
    except ValueError:
        return Rc.SYSTEM_MALFUNCTION


def _amount(request: codec.Message) -> int | None:
    text = request.get(F_AMOUNT)
    return int(text) if text is not None and text.isdigit() else None


def _tlv(text: str) -> dict[str, str]:
    try:
        return fields.parse_tlv(text)
    except fields.SubfieldError:
        return {}


def _stored_from_row(row: Any) -> Stored:
    return Stored(
        fingerprint=(
            row.mti,
            row.processing_code or "",
            f"{row.amount_fen:012d}" if row.amount_fen is not None else "",
            row.pan_token or "",
        ),
        rrn=row.rrn,
        response_code=row.response_code or Rc.ISSUER_TIMEOUT.value,
        auth_code=row.auth_code,
        local_time=row.local_time,
        local_date=row.local_date,
        settlement_date=row.settlement_date,
        qr_voucher=row.qr_voucher,
        wallet=row.wallet,
        status=row.status,
        upstream=row.upstream,
    )


def _load_terminal(session: Any, tid: str) -> tuple[repository.TerminalRecord, Any] | None:
    record = repository.terminal_record(session, tid)
    if record is None:
        return None
    return record, repository.terminal_session(session, tid)


def _batch_and_totals(
    session: Any, tid: str, batch_no: str
) -> tuple[Any, tuple[int, int, int, int]]:
    return repository.open_batch(session, tid), repository.batch_totals(session, tid, batch_no)


def _batch_settled(session: Any, tid: str, batch_no: str) -> bool:
    """Whether the terminal's open batch ``batch_no`` has had its settlement (0500)."""
    batch = repository.open_batch(session, tid)
    return batch is not None and batch.batch_no == batch_no and batch.settled_at is not None


def _preauth_by_auth_code(session: Any, mid: str, auth_code: str, pan_token: str | None) -> Any:
    return repository.preauth_by_auth_code(session, mid, auth_code, pan_token)
