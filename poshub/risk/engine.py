"""The real-time risk engine: the gateway's ``RiskHooks`` (R14, R19; docs/risk.md).

For every financial request, before it is forwarded, in this order:

1. a merchant or terminal freeze in force → ``58``;
2. a blocked card → ``62`` (rule ``blocked_card``);
3. payments (sale, QR sale, pre-authorization): card testing → ``59`` (and a cooldown),
   card and terminal velocity → ``65``, then cash-out, business hours, ticket above the
   category's norm and new-merchant volume, each per its action; refunds: refund ratio;
4. payments: the limits (per transaction, day and month per channel at merchant and
   terminal level, per card per merchant and day) → ``61``; otherwise the reservation on
   every limit counter rides on the pending journal write (poshub/risk/counters.py).

A rule set to *decline* answers with its code (``rules.DECLINE_CODES``) and raises an
alert with the declined row; *alert* lets the request through and raises an alert if the
network approves it; *hold* does that and holds the transaction's settlement (a
``risk_freezes`` row, scope ``transaction``). Alerts and holds ride on the request's final
journal write: nothing waits for them.

State kept in memory, all bounded (``limits.RISK_*``): rule settings, limits, freezes,
blocked cards and merchant profiles (reread every ``limits.RISK_REFRESH_SECONDS`` in one
read), velocity windows and the business day's figures (rebuilt from the last 24 hours of
the journal at start, so a restart forgets nothing that matters), and the last known limit
totals (``CounterView``). Velocity and card-testing windows are per gateway process (a
terminal's connection stays with one process); limits are exact across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError

from poshub.core import limits
from poshub.core.clock import SHANGHAI
from poshub.core.db import utcnow
from poshub.gateway import repository as journal_statements
from poshub.gateway.constants import Rc
from poshub.gateway.journal import Op
from poshub.gateway.models import TxnKind, TxnStatus
from poshub.gateway.risk import ALLOW, Reader, RiskContext, RiskDecision
from poshub.risk import counters, repository, rules
from poshub.risk.counters import CounterView, Slot
from poshub.risk.models import AlertStatus, Channel, FreezeScope, RuleAction
from poshub.risk.rules import CARD_KINDS, DECLINE_CODES, PAYMENT_KINDS, REFUND_KINDS, Hit
from poshub.risk.schemas import (
    DEFAULT_LIMITS,
    DEFAULT_SUBJECT,
    RULES,
    LimitScope,
    LimitValues,
    RuleCode,
    RuleSetting,
    default_setting,
    grade_controls,
    merchant_limits,
    setting_from_row,
    terminal_limits,
)

log = logging.getLogger(__name__)

ENGINE_ACTOR: Final = "risk-engine"
"""Who made the alerts and holds the engine writes."""

FREEZE_KINDS: Final = PAYMENT_KINDS | {TxnKind.REFUND, TxnKind.COMPLETION}
"""What a merchant or terminal freeze declines: new money asked for or paid out. Voids
and cancels (which reduce what the merchant is owed) and reversals still go through."""

UNDOING_KINDS: Final = frozenset({TxnKind.VOID, TxnKind.PREAUTH_CANCEL})
"""Approved, these give their original's amount back to the limits."""

NOT_ISSUER_DECLINES: Final = frozenset(
    {Rc.APPROVED.value, Rc.ISSUER_TIMEOUT.value, Rc.UNREACHABLE.value,
     Rc.SYSTEM_MALFUNCTION.value}
)  # fmt: skip
"""Answers that are not an issuer looking at a card and saying no: not card testing."""

APPROVED_STATUSES: Final = frozenset({TxnStatus.APPROVED.value, TxnStatus.COMPLETED.value})
DAY_SECONDS: Final = 24 * 3600
RAISED_MAX: Final = 100_000
"""Dedupe keys of alerts this process raised, remembered so a flood sends each once."""

# Enum members read once: attribute access on an Enum class costs on every authorization.
_BLOCKED_CARD: Final = RuleCode.BLOCKED_CARD
_CARD_VELOCITY: Final = RuleCode.CARD_VELOCITY
_TERMINAL_VELOCITY: Final = RuleCode.TERMINAL_VELOCITY
_CARD_TESTING: Final = RuleCode.CARD_TESTING
_CASHOUT: Final = RuleCode.CASHOUT
_BUSINESS_HOURS: Final = RuleCode.BUSINESS_HOURS
_TICKET_ABOVE_NORM: Final = RuleCode.TICKET_ABOVE_NORM
_NEW_MERCHANT_VOLUME: Final = RuleCode.NEW_MERCHANT_VOLUME
_REFUND_RATIO: Final = RuleCode.REFUND_RATIO
_DECLINE: Final = RuleAction.DECLINE
_HOLD: Final = RuleAction.HOLD
_CREDIT: Final = Channel.CREDIT.value
_DEBIT: Final = Channel.DEBIT.value
_CHANNELS: Final = tuple(c.value for c in Channel)


@dataclass(frozen=True, slots=True)
class Profile:
    """A merchant as the rules see it."""

    mcc: str
    live_on: dt.date | None
    opening_time: str | None
    closing_time: str | None
    grade_percent: int
    expected_monthly_fen: int | None
    norm_fen: int


@dataclass(slots=True)
class MerchantDay:
    """A merchant's approved payments and refunds in one business day."""

    day: dt.date
    sales_count: int = 0
    sales_fen: int = 0
    refunds_fen: int = 0


@dataclass(frozen=True, slots=True)
class Pending:
    """What the engine remembers of an allowed request until its final write."""

    slots: tuple[Slot, ...]
    amount_fen: int
    hits: tuple[tuple[Hit, RuleSetting], ...]
    """Hits of rules set to alert or hold: raised if the network approves."""


@dataclass(slots=True)
class EngineStats:
    evaluations: int = 0
    declines: dict[str, int] = field(default_factory=dict)
    """By reason (freeze, a rule code, ``limit:<name>``)."""
    hits: dict[str, int] = field(default_factory=dict)
    limit_races: int = 0
    """Reservations the database refused (another request took the room first)."""
    refreshes: int = 0
    refresh_failures: int = 0


class RiskEngine:
    """``RiskHooks`` with rules, limits, freezes and blocked cards (see the module doc)."""

    def __init__(
        self,
        *,
        refresh_seconds: float = limits.RISK_REFRESH_SECONDS,
        keys_max: int = limits.RISK_TRACKED_KEYS_MAX,
        events_max: int = limits.RISK_WINDOW_EVENTS_MAX,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._refresh_seconds = refresh_seconds
        self._keys_max = keys_max
        self._events_max = events_max
        self._clock = clock
        self.settings: dict[RuleCode, RuleSetting] = {
            code: default_setting(code) for code, rule in RULES.items() if rule.in_gateway
        }
        self._defaults: dict[str, LimitValues] = {c.value: v for c, v in DEFAULT_LIMITS.items()}
        self._merchant_own: dict[tuple[str, str], LimitValues] = {}
        self._terminal_own: dict[tuple[str, str], LimitValues] = {}
        self._limit_cache: dict[tuple[str, str, str], tuple[LimitValues, LimitValues]] = {}
        self._frozen_merchants: frozenset[str] = frozenset()
        self._frozen_terminals: frozenset[str] = frozenset()
        self._blocked: frozenset[str] = frozenset()
        self.profiles: dict[str, Profile] = {}
        self.counters = CounterView(keys_max=keys_max)
        self._card_events: OrderedDict[str, deque[float]] = OrderedDict()
        self._terminal_events: OrderedDict[str, deque[float]] = OrderedDict()
        self._terminal_declines: OrderedDict[str, deque[float]] = OrderedDict()
        self._cooling: dict[str, dt.datetime] = {}
        self._same_card: OrderedDict[str, list[Any]] = OrderedDict()
        self._days: OrderedDict[str, MerchantDay] = OrderedDict()
        self._raised: OrderedDict[str, None] = OrderedDict()
        self.stats = EngineStats()
        self._read: Reader | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self, read: Reader) -> None:
        """Load everything once, rebuild the windows from the journal, then keep rereading
        every ``refresh_seconds`` on a task of the running loop."""
        self._read = read
        await self.refresh(full=True)
        await self.rebuild()
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            self._refresh_forever(), name="risk-refresh"
        )

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _refresh_forever(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._refresh_seconds)
            self._wake.clear()
            try:
                await self.refresh()
            except Exception:  # the database is away: keep deciding by what we know
                self.stats.refresh_failures += 1
                log.exception("risk refresh failed")

    async def refresh(self, *, full: bool = False) -> None:
        """Reread rules, limits, freezes, blocked cards, merchant profiles and the watched
        limit counters (every current counter when ``full``) in one read."""
        assert self._read is not None
        today = self._today()
        snapshot: repository.EngineSnapshot = await self._read(
            _snapshot, today, None if full else self.counters.watched()
        )
        self.install(snapshot, today=today, full=full)

    def install(self, snapshot: repository.EngineSnapshot, *, today: dt.date, full: bool) -> None:
        """Replace what the engine decides by with ``snapshot``."""
        settings = {code: default_setting(code) for code, rule in RULES.items() if rule.in_gateway}
        for code, version, enabled, action, params in snapshot.rules:
            try:
                setting = setting_from_row(code, version, enabled, action, params)
            except (KeyError, ValueError, ValidationError):
                log.error(
                    "rule %s version %s is not valid any more: default in force", code, version
                )
                continue
            if setting.code in settings:
                settings[setting.code] = setting
        self.settings = settings
        defaults = {c.value: v for c, v in DEFAULT_LIMITS.items()}
        merchant_own: dict[tuple[str, str], LimitValues] = {}
        terminal_own: dict[tuple[str, str], LimitValues] = {}
        for scope, subject, channel, amounts in snapshot.limits:
            values = LimitValues(*amounts)
            if scope == LimitScope.DEFAULT and subject == DEFAULT_SUBJECT:
                defaults[channel] = values
            elif scope == LimitScope.MERCHANT:
                merchant_own[(subject, channel)] = values
            elif scope == LimitScope.TERMINAL:
                terminal_own[(subject, channel)] = values
        self._defaults, self._merchant_own, self._terminal_own = (
            defaults,
            merchant_own,
            terminal_own,
        )
        self._frozen_merchants = frozenset(
            s for scope, s in snapshot.frozen if scope == FreezeScope.MERCHANT
        )
        self._frozen_terminals = frozenset(
            s for scope, s in snapshot.frozen if scope == FreezeScope.TERMINAL
        )
        self._blocked = frozenset(snapshot.blocked)
        norms = rules.ticket_norms()
        self.profiles = {
            p.mid: Profile(
                mcc=p.mcc,
                live_on=p.live_at.astimezone(SHANGHAI).date() if p.live_at is not None else None,
                opening_time=p.opening_time,
                closing_time=p.closing_time,
                grade_percent=grade_controls(p.risk_grade).limit_percent,
                expected_monthly_fen=p.expected_monthly_fen,
                norm_fen=norms.norm_fen(p.mcc),
            )
            for p in snapshot.profiles
        }
        self._limit_cache = {}
        if full:
            self.counters.load(snapshot.counters)
        else:
            self.counters.load(snapshot.counters, asked=self.counters.watched())
        self.counters.forget_before(today)
        self.stats.refreshes += 1

    async def rebuild(self) -> int:
        """Velocity windows and the day's figures from the journal's last 24 hours (at most
        ``limits.RISK_REBUILD_ROWS_MAX`` rows, the newest)."""
        assert self._read is not None
        now = self._clock()
        since = now - dt.timedelta(seconds=DAY_SECONDS)
        rows = await self._read(
            _recent_journal, since, since.astimezone(SHANGHAI).date(), limits.RISK_REBUILD_ROWS_MAX
        )
        self.replay(reversed(rows), today=now.astimezone(SHANGHAI).date())
        return len(rows)

    def replay(self, rows: Iterable[Any], *, today: dt.date) -> None:
        """Feed journal rows, oldest first, into the windows and the day's figures."""
        for row in rows:
            try:
                kind = TxnKind(row.kind)
            except ValueError:
                continue
            at = row.received_at.timestamp()
            if kind in PAYMENT_KINDS:
                if row.pan_token is not None:
                    self._window(self._card_events, row.pan_token).append(at)
                    if row.host_date == today:
                        self._same_card_count(row.mid, row.pan_token, today, add=True)
                self._window(self._terminal_events, row.tid).append(at)
                if row.upstream == "answered" and row.response_code not in NOT_ISSUER_DECLINES:
                    self._window(self._terminal_declines, row.tid).append(at)
                if row.host_date == today and row.status in APPROVED_STATUSES:
                    figures = self._day(row.mid, today)
                    figures.sales_count += 1
                    figures.sales_fen += row.amount_fen or 0
            elif (
                kind in REFUND_KINDS and row.host_date == today and row.status in APPROVED_STATUSES
            ):
                self._day(row.mid, today).refunds_fen += row.amount_fen or 0

    def _today(self) -> dt.date:
        return self._clock().astimezone(SHANGHAI).date()

    # --- bounded state --------------------------------------------------------------------
    def _window(self, windows: OrderedDict[str, deque[float]], key: str) -> deque[float]:
        events = windows.get(key)
        if events is None:
            events = deque(maxlen=self._events_max)
            windows[key] = events
            if len(windows) > self._keys_max:
                windows.popitem(last=False)
        else:
            windows.move_to_end(key)
        return events

    def _same_card_count(self, mid: str, token: str, day: dt.date, *, add: bool) -> int:
        key = f"{mid}:{token}"
        entry = self._same_card.get(key)
        if entry is None or entry[0] != day:
            entry = [day, 0]
            self._same_card[key] = entry
            if len(self._same_card) > self._keys_max:
                self._same_card.popitem(last=False)
        else:
            self._same_card.move_to_end(key)
        if add:
            entry[1] += 1
        return int(entry[1])

    def _day(self, mid: str, day: dt.date) -> MerchantDay:
        figures = self._days.get(mid)
        if figures is None or figures.day != day:
            figures = MerchantDay(day)
            self._days[mid] = figures
            if len(self._days) > self._keys_max:
                self._days.popitem(last=False)
        else:
            self._days.move_to_end(mid)
        return figures

    def _unsell(self, mid: str, day: dt.date, amount_fen: int) -> None:
        """A payment of ``day`` undone: out of that day's figures (if they are still kept)."""
        figures = self._days.get(mid)
        if figures is not None and figures.day == day:
            figures.sales_count = max(0, figures.sales_count - 1)
            figures.sales_fen = max(0, figures.sales_fen - amount_fen)

    def limits_for(self, mid: str, tid: str, channel: str) -> tuple[LimitValues, LimitValues]:
        """The merchant's and the terminal's limits in force on ``channel``."""
        key = (mid, tid, channel)
        found = self._limit_cache.get(key)
        if found is not None:
            return found
        profile = self.profiles.get(mid)
        percent = profile.grade_percent if profile else grade_controls(None).limit_percent
        merchant = merchant_limits(
            self._defaults.get(channel, LimitValues()),
            self._merchant_own.get((mid, channel)),
            percent,
        )
        found = (merchant, terminal_limits(merchant, self._terminal_own.get((tid, channel))))
        if len(self._limit_cache) >= self._keys_max:
            self._limit_cache.clear()
        self._limit_cache[key] = found
        return found

    # --- hooks ----------------------------------------------------------------------------
    def before_forward(self, context: RiskContext) -> RiskDecision:
        kind = context.kind
        if kind not in FREEZE_KINDS:
            return ALLOW
        self.stats.evaluations += 1
        if context.mid in self._frozen_merchants or context.tid in self._frozen_terminals:
            return self._declined(Rc.NOT_PERMITTED_TERMINAL, "freeze")
        later: list[tuple[Hit, RuleSetting]] = []
        token = context.pan_token
        if token is not None and kind in CARD_KINDS:
            setting = self.settings[_BLOCKED_CARD]
            if setting.enabled:
                hit = rules.blocked_card(context, token in self._blocked, setting.params)
                if decided := self._apply(context, hit, setting, later):
                    return decided
        if kind in PAYMENT_KINDS:
            return self._payment(context, later)
        if kind in REFUND_KINDS:
            self._refund(context, later)
        if not later:
            return ALLOW
        return RiskDecision(True, state=Pending((), 0, tuple(later)))

    def _payment(self, context: RiskContext, later: list[tuple[Hit, RuleSetting]]) -> RiskDecision:
        settings = self.settings
        mid, tid, token = context.mid, context.tid, context.pan_token
        at = context.received_at.timestamp()
        amount = context.amount_fen or 0
        channel = context.channel or _DEBIT
        day = context.host_date
        # Windows and counts, recorded whatever the rules are set to (switching a rule on
        # finds its history there).
        card_velocity = settings[_CARD_VELOCITY]
        card_count = 0
        if token is not None:
            card_count = _add_and_count(
                self._window(self._card_events, token),
                at,
                card_velocity.params.window_minutes * 60,
            )
        terminal_velocity = settings[_TERMINAL_VELOCITY]
        terminal_count = _add_and_count(
            self._window(self._terminal_events, tid),
            at,
            terminal_velocity.params.window_minutes * 60,
        )
        same_card = self._same_card_count(mid, token, day, add=True) if token is not None else 0
        merchant_values, terminal_values = self.limits_for(mid, tid, channel)
        profile = self.profiles.get(mid)

        testing = settings[_CARD_TESTING]
        if testing.enabled:
            declines = self._terminal_declines.get(tid)
            window = testing.params.window_minutes * 60
            count = _count(declines, at, window) if declines is not None else 0
            hit = rules.card_testing(context, count, self._cooling.get(tid), testing.params)
            if hit is not None and testing.action == _DECLINE and not hit.detail["cooling"]:
                self._cool(tid, dt.datetime.fromisoformat(hit.detail["cooldown_until"]))
            if decided := self._apply(context, hit, testing, later):
                return decided
        if card_velocity.enabled:
            hit = rules.card_velocity(context, card_count, card_velocity.params)
            if decided := self._apply(context, hit, card_velocity, later):
                return decided
        if terminal_velocity.enabled:
            hit = rules.terminal_velocity(context, terminal_count, terminal_velocity.params)
            if decided := self._apply(context, hit, terminal_velocity, later):
                return decided
        cashout = settings[_CASHOUT]
        if cashout.enabled and channel == _CREDIT:
            hit = rules.cashout(
                context,
                same_card_today=same_card,
                per_transaction_limit_fen=_lowest(
                    terminal_values.per_transaction_fen, context.terminal_limit_fen
                ),
                params=cashout.params,
            )
            if decided := self._apply(context, hit, cashout, later):
                return decided
        if profile is not None:
            decision = self._merchant_rules(context, profile, day, amount, later)
            if decision is not None:
                return decision
        # Limits last: only a request every rule let through reserves anything.
        found = counters.slots(
            mid=mid,
            tid=tid,
            channel=channel,
            pan_token=token,
            day=day,
            merchant=merchant_values,
            terminal=terminal_values,
        )
        view = self.counters
        for slot in found:
            if slot.limit_fen is not None:
                view.watch(slot.key)
        over = counters.exceeded(amount, terminal_values.per_transaction_fen, found, view)
        if over is not None:
            return self._declined(Rc.EXCEEDS_AMOUNT_LIMIT, f"limit:{over[0]}")
        return RiskDecision(
            True,
            ops=tuple(counters.reserve_ops(found, amount)),
            state=Pending(tuple(found), amount, tuple(later)),
        )

    def _merchant_rules(
        self,
        context: RiskContext,
        profile: Profile,
        day: dt.date,
        amount: int,
        later: list[tuple[Hit, RuleSetting]],
    ) -> RiskDecision | None:
        settings = self.settings
        hours = settings[_BUSINESS_HOURS]
        if hours.enabled:
            hit = rules.business_hours(
                context, profile.opening_time, profile.closing_time, hours.params
            )
            if decided := self._apply(context, hit, hours, later):
                return decided
        ticket = settings[_TICKET_ABOVE_NORM]
        if ticket.enabled:
            figures = self._day(context.mid, day)
            hit = rules.ticket_above_norm(
                context,
                norm_fen=profile.norm_fen,
                day_count=figures.sales_count + 1,
                day_total_fen=figures.sales_fen + amount,
                params=ticket.params,
            )
            if decided := self._apply(context, hit, ticket, later):
                return decided
        volume = settings[_NEW_MERCHANT_VOLUME]
        if (
            volume.enabled
            and profile.live_on is not None
            and profile.expected_monthly_fen
            and (day - profile.live_on).days < volume.params.new_days
        ):
            month = 0
            month_text = counters.month_tag(day)
            for channel in _CHANNELS:
                key = f"m:{context.mid}:{channel}:m:{month_text}"
                self.counters.watch(key)
                month += self.counters.get(key)
            hit = rules.new_merchant_volume(
                context,
                live_on=profile.live_on,
                expected_monthly_fen=profile.expected_monthly_fen,
                month_volume_fen=month + amount,
                params=volume.params,
            )
            if hit is not None:
                later.append((hit, volume))  # alert or hold only (schemas.RULES)
        return None

    def _refund(self, context: RiskContext, later: list[tuple[Hit, RuleSetting]]) -> None:
        setting = self.settings[_REFUND_RATIO]
        if not setting.enabled:
            return
        figures = self._day(context.mid, context.host_date)
        hit = rules.refund_ratio(
            context,
            day_sales_fen=figures.sales_fen,
            day_refunds_fen=figures.refunds_fen + (context.amount_fen or 0),
            params=setting.params,
        )
        if hit is not None:
            later.append((hit, setting))  # alert or hold only (schemas.RULES)

    def limit_reached(self, context: RiskContext, decision: RiskDecision) -> None:
        """The database had no room: reread the request's counters at once, so the next
        request over the limit is declined without a write."""
        self.stats.limit_races += 1
        self._count(self.stats.declines, "limit:race")
        if isinstance(decision.state, Pending):
            for slot in decision.state.slots:
                if slot.limit_fen is not None:
                    self.counters.watch(slot.key)
        if self._wake is not None:
            self._wake.set()

    def after_response(
        self, context: RiskContext, response_code: str, decision: RiskDecision
    ) -> RiskDecision:
        """Every rule decides before forwarding; nothing is refused after an approval."""
        return ALLOW

    def finish(
        self, context: RiskContext, decision: RiskDecision, response_code: str, approved: bool
    ) -> list[Op]:
        kind = context.kind
        ops: list[Op] = []
        state = decision.state
        if isinstance(state, Pending):
            if state.slots and not approved:
                ops.extend(counters.release_ops([s.key for s in state.slots], state.amount_fen))
            if approved:
                for hit, setting in state.hits:
                    ops.extend(self._alert_ops(context, hit, setting, setting.action))
        if kind in PAYMENT_KINDS:
            if approved:
                figures = self._day(context.mid, context.host_date)
                figures.sales_count += 1
                figures.sales_fen += context.amount_fen or 0
            elif response_code not in NOT_ISSUER_DECLINES:
                self._window(self._terminal_declines, context.tid).append(
                    context.received_at.timestamp()
                )
        elif kind in REFUND_KINDS and approved:
            self._day(context.mid, context.host_date).refunds_fen += context.amount_fen or 0
        elif kind in UNDOING_KINDS and approved and context.original_amount_fen:
            original_day = context.original_host_date or context.host_date
            keys = counters.payment_keys(
                mid=context.mid,
                tid=context.original_tid or context.tid,
                channel=context.channel or _DEBIT,
                pan_token=context.original_pan_token,
                day=original_day,
            )
            ops.extend(counters.release_ops([k for k, _ in keys], context.original_amount_fen))
            self._unsell(context.mid, original_day, context.original_amount_fen)
        return ops

    def undone(self, row: Any, original_of_row: Any | None) -> list[Op]:
        """A reversed payment gives its amount back to the limits; a reversed void or
        cancel takes its original's amount again (unconditionally: the payment stands)."""
        try:
            kind = TxnKind(row.kind)
        except ValueError:
            return []
        channel = row.channel or _DEBIT
        if (
            kind in PAYMENT_KINDS
            and row.amount_fen
            and row.status in (TxnStatus.APPROVED.value, TxnStatus.PENDING.value)
        ):
            keys = counters.payment_keys(
                mid=row.mid,
                tid=row.tid,
                channel=channel,
                pan_token=row.pan_token,
                day=row.host_date,
            )
            if row.status == TxnStatus.APPROVED.value:
                self._unsell(row.mid, row.host_date, row.amount_fen)
            return counters.release_ops([k for k, _ in keys], row.amount_fen)
        if (
            kind in UNDOING_KINDS
            and row.status == TxnStatus.APPROVED.value
            and original_of_row is not None
            and original_of_row.amount_fen
            and original_of_row.kind in PAYMENT_KINDS
        ):
            original_channel = original_of_row.channel or channel
            merchant_values, terminal_values = self.limits_for(
                original_of_row.mid, original_of_row.tid, original_channel
            )
            found = counters.slots(
                mid=original_of_row.mid,
                tid=original_of_row.tid,
                channel=original_channel,
                pan_token=original_of_row.pan_token,
                day=original_of_row.host_date,
                merchant=merchant_values,
                terminal=terminal_values,
            )
            return counters.add_ops(
                [(s.key, s.expires_on) for s in found], original_of_row.amount_fen
            )
        return []

    # --- decisions and alerts ---------------------------------------------------------------
    def _cool(self, tid: str, until: dt.datetime) -> None:
        self._cooling[tid] = until
        if len(self._cooling) > self._keys_max:
            now = self._clock()
            self._cooling = {k: v for k, v in self._cooling.items() if v > now}

    def _apply(
        self,
        context: RiskContext,
        hit: Hit | None,
        setting: RuleSetting,
        later: list[tuple[Hit, RuleSetting]],
    ) -> RiskDecision | None:
        """A rule's hit: the decline when it is set to decline, else kept for ``finish``."""
        if hit is None:
            return None
        if setting.action == _DECLINE:
            return self._decline(context, hit, setting)
        later.append((hit, setting))
        return None

    def _declined(self, code: Rc, reason: str, ops: Iterable[Op] = ()) -> RiskDecision:
        self._count(self.stats.declines, reason)
        return RiskDecision(False, code, reason, ops=tuple(ops))

    def _decline(self, context: RiskContext, hit: Hit, setting: RuleSetting) -> RiskDecision:
        self._count(self.stats.hits, hit.code.value)
        return self._declined(
            DECLINE_CODES[hit.code],
            hit.code.value,
            self._alert_ops(context, hit, setting, _DECLINE),
        )

    def _alert_ops(
        self, context: RiskContext, hit: Hit, setting: RuleSetting, action: RuleAction
    ) -> list[Op]:
        if action != _DECLINE:
            self._count(self.stats.hits, hit.code.value)
        dedupe = hit.dedupe
        if dedupe is not None:
            if dedupe in self._raised:
                return []
            self._raised[dedupe] = None
            if len(self._raised) > RAISED_MAX:
                self._raised.popitem(last=False)
        ops = [alert_op(context, hit, setting, action)]
        if action == _HOLD:
            ops.append(hold_op(context, hit, setting))
        return ops

    @staticmethod
    def _count(counts: dict[str, int], key: str) -> None:
        counts[key] = counts.get(key, 0) + 1


def alert_op(context: RiskContext, hit: Hit, setting: RuleSetting, action: RuleAction) -> Op:
    """The ``risk_alerts`` row of one hit (the values the rule saw; never a PAN)."""
    return Op(
        journal_statements.INSERT_ALERT,
        {
            "rule_code": hit.code.value,
            "rule_version": setting.version,
            "action": action.value,
            "severity": RULES[hit.code].severity.value,
            "mid": context.mid,
            "tid": context.tid,
            "rrn": context.rrn,
            "pan_token": context.pan_token,
            "pan_masked": context.pan_masked,
            "amount_fen": context.amount_fen,
            "detail": hit.detail,
            "status": AlertStatus.OPEN.value,
            "created_at": context.received_at,
            "dedupe_key": hit.dedupe,
        },
    )


def hold_op(context: RiskContext, hit: Hit, setting: RuleSetting) -> Op:
    """A settlement hold on the transaction (its RRN): approved, but not paid out until a
    risk officer releases it."""
    return Op(
        journal_statements.INSERT_HOLD,
        {
            "scope": FreezeScope.TRANSACTION.value,
            "subject": context.rrn,
            "mid": context.mid,
            "blocks_authorization": False,
            "holds_settlement": True,
            "reason": f"rule {hit.code.value} (version {setting.version}) set to hold",
            "created_by": ENGINE_ACTOR,
            "created_at": context.received_at,
        },
    )


def _add_and_count(events: deque[float], at: float, window_seconds: float) -> int:
    """Record an event at ``at`` and count the events within the window ending there."""
    events.append(at)
    return _count(events, at, window_seconds)


def _count(events: deque[float], at: float, window_seconds: float) -> int:
    cutoff = at - window_seconds
    while events and events[0] <= cutoff:
        events.popleft()
    return len(events)


def _lowest(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _snapshot(session: Any, today: dt.date, keys: list[str] | None) -> repository.EngineSnapshot:
    return repository.engine_snapshot(
        session,
        today=today,
        counter_keys=keys,
        rows_max=limits.RISK_READ_ROWS_MAX,
        profiles_max=limits.RISK_MERCHANT_PROFILES_MAX,
        counters_max=limits.RISK_TRACKED_KEYS_MAX,
        chunk=counters.REFRESH_CHUNK,
    )


def _recent_journal(session: Any, since: dt.datetime, since_date: dt.date, limit: int) -> list[Any]:
    return repository.recent_journal(session, since=since, since_date=since_date, limit=limit)
