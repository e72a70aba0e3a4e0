"""Store-and-forward: reversals the host owes the network, sent until acknowledged.

A reversal is owed when the network did not answer in time (the terminal got ``98``),
when a terminal reversed an approved request, when a risk hook refused an approval, and
for every request found forwarded-but-unanswered after a crash. Each is a
``network_reversals`` row written in the same commit as the decision, so none is lost
across restarts; the unique original RRN makes sure none is owed twice. The loop here sends
due rows in batches, and on no answer retries with a doubling backoff (bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any, Final

from poshub.core import limits
from poshub.core.clock import SHANGHAI
from poshub.core.db import utcnow
from poshub.gateway import codec, repository
from poshub.gateway.constants import (
    F_ACQUIRER_ID,
    F_AMOUNT,
    F_CONDITION_CODE,
    F_CURRENCY,
    F_LOCAL_DATE,
    F_LOCAL_TIME,
    F_MID,
    F_PROCESSING_CODE,
    F_RESERVED_60,
    F_RESPONSE_CODE,
    F_RRN,
    F_STAN,
    F_TID,
    MTI,
    Mti,
    Rc,
)
from poshub.gateway.journal import Op
from poshub.gateway.link import LinkDown
from poshub.gateway.models import TxnKind, TxnStatus
from poshub.gateway.pipeline import Gateway

log = logging.getLogger(__name__)

ACKNOWLEDGING_CODES: Final = frozenset(
    {Rc.APPROVED.value, Rc.ORIGINAL_NOT_FOUND.value, Rc.INVALID_TRANSACTION.value}
)
"""Answers after which the network owes us nothing more for this reversal: done, never
seen (nothing to undo), or no longer reversible (logged for manual follow-up)."""


def reversal_message(row: Any, now: dt.datetime, acquirer_id: str) -> codec.Message:
    """The 0400 the network gets for a store-and-forward row."""
    local = now.astimezone(SHANGHAI)
    return {
        MTI: Mti.REVERSAL.value,
        F_PROCESSING_CODE: row.processing_code,
        F_AMOUNT: f"{row.amount_fen:012d}",
        F_STAN: row.network_stan,
        F_LOCAL_TIME: local.strftime("%H%M%S"),
        F_LOCAL_DATE: local.strftime("%m%d"),
        F_CONDITION_CODE: row.condition_code,
        F_ACQUIRER_ID: acquirer_id,
        F_RRN: row.rrn,
        F_RESPONSE_CODE: row.reason,
        F_TID: row.tid,
        F_MID: row.mid,
        F_CURRENCY: "156",
        F_RESERVED_60: f"{row.type_code}000000000",
    }


def backoff_seconds(attempts: int) -> float:
    delay = limits.SAF_RETRY_SECONDS_MIN * float(2 ** min(max(0, attempts - 1), 16))
    return min(limits.SAF_RETRY_SECONDS_MAX, delay)


class StoreAndForward:
    def __init__(self, gateway: Gateway, *, poll_seconds: float = 1.0) -> None:
        self.gateway = gateway
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.acknowledged = 0
        gateway.on_reversal_queued = self.wake

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="store-and-forward")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("store-and-forward pass failed")
                sent = 0
            if sent >= limits.SAF_BATCH_MAX:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def run_once(self) -> int:
        """Send every due reversal once; returns how many were sent."""
        gateway = self.gateway
        now = utcnow()
        rows = await gateway.read(repository.due_reversals, now, limits.SAF_BATCH_MAX)
        if not rows:
            return 0
        results = await asyncio.gather(*(self._send(row, now) for row in rows))
        ops = [op for op in results if op is not None]
        if ops:
            await gateway.journal.write(ops)
        return len(rows)

    async def _send(self, row: Any, now: dt.datetime) -> Op:
        gateway = self.gateway
        attempts = row.attempts + 1
        message = reversal_message(row, now, gateway.settings.acquirer_institution_id)
        self.sent += 1
        try:
            response = await gateway.link.request(message, timeout=gateway.upstream_timeout)
        except LinkDown:
            response = None
            error = "link down"
        else:
            error = "no answer"
        if response is not None and response.get(F_RESPONSE_CODE) in ACKNOWLEDGING_CODES:
            self.acknowledged += 1
            if response.get(F_RESPONSE_CODE) != Rc.APPROVED:
                log.warning(
                    "network answered %s to the reversal of %s: manual follow-up",
                    response.get(F_RESPONSE_CODE),
                    row.rrn,
                )
            return Op(
                repository.ACK_REVERSAL,
                {"b_id": row.id, "acknowledged_at": utcnow(), "attempts": attempts},
            )
        if response is not None:
            error = f"answered {response.get(F_RESPONSE_CODE, '??')}"
        return Op(
            repository.RETRY_REVERSAL,
            {
                "b_id": row.id,
                "attempts": attempts,
                "next_attempt_at": now + dt.timedelta(seconds=backoff_seconds(attempts)),
                "last_error": error,
            },
        )


async def recover(gateway: Gateway) -> int:
    """After a crash: every journal row still ``pending`` was forwarded (or about to be)
    and its terminal never got an answer. Reversible ones are marked reversed and their
    upstream reversal owed, in one commit per batch; advices stay pending (the terminal
    resends them and the network answers a repeated RRN with its first answer)."""
    recovered = 0
    now = utcnow()
    while True:
        # Only reversible kinds are read: a page full of pending advices must not hide the
        # sales behind it.
        rows = await gateway.read(repository.pending_transactions, limits.SAF_BATCH_MAX)
        if not rows:
            return recovered
        ops: list[Op] = []
        for row in rows:
            ops.append(
                Op(
                    repository.FINISH_TXN,
                    {
                        "b_rrn": row.rrn,
                        "status": TxnStatus.REVERSED.value,
                        "response_code": None,
                        "auth_code": None,
                        "local_time": row.local_time,
                        "local_date": row.local_date,
                        "settlement_date": None,
                        "qr_voucher": None,
                        "wallet": None,
                        "upstream": "timeout",
                        "upstream_us": None,
                        "total_us": None,
                        "responded_at": None,
                        "original_rrn": row.original_rrn,
                    },
                )
            )
            if row.network_stan:
                ops.append(gateway.saf_op(row, reason="98", now=now))
            # What the request reserved under limits is given back.
            ops.extend(gateway.risk.undone(row, None))
        await gateway.journal.write(ops)
        recovered += len(rows)
        log.warning("recovered %d forwarded, unanswered requests: reversals queued", len(rows))


__all__ = ["StoreAndForward", "TxnKind", "backoff_seconds", "recover", "reversal_message"]
