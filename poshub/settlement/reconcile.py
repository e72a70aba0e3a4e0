"""Reconciliation of one business day (pure: no database, no files).

Two comparisons, each giving exceptions for operations (docs/settlement.md,
Reconciliation):

* our clearing items (the journal's approved, unreversed financial messages of the day)
  against the network's clearing file, matched by RRN: ``missing_at_network`` (we have it,
  the network did not clear it), ``missing_at_host`` (the network cleared what we do not
  have), ``amount_mismatch`` and ``kind_mismatch`` (both have it, differently);
* each terminal batch settled that day whose totals as the terminal sent them differ from
  the totals the host counted: ``batch_totals``.

Amounts are signed integer fen: debits (sales, completions) positive, credits (voids,
completion voids, refunds) negative.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from poshub.settlement.clearing_file import CREDIT_TRANSACTIONS, ClearingFile

JsonScalar = str | int | None


class ExceptionKind(StrEnum):
    MISSING_AT_NETWORK = "missing_at_network"
    MISSING_AT_HOST = "missing_at_host"
    AMOUNT_MISMATCH = "amount_mismatch"
    KIND_MISMATCH = "kind_mismatch"
    BATCH_TOTALS = "batch_totals"


KIND_ORDER: Final = tuple(ExceptionKind)


@dataclass(frozen=True, slots=True)
class OurItem:
    """One clearing item of our journal; ``amount_fen`` is signed."""

    rrn: str
    kind: str
    amount_fen: int
    mid: str | None
    tid: str | None

    @classmethod
    def of(cls, rrn: str, kind: str, amount_fen: int, mid: str | None, tid: str | None) -> OurItem:
        """From an unsigned journal amount: credits become negative."""
        sign = -1 if kind in CREDIT_TRANSACTIONS else 1
        return cls(rrn=rrn, kind=kind, amount_fen=sign * amount_fen, mid=mid, tid=tid)


@dataclass(frozen=True, slots=True)
class BatchTotals:
    """A settled terminal batch: what the terminal said and what the host counted."""

    key: str
    """The settlement's RRN, or ``tid-batch`` when it has none."""
    tid: str
    batch_no: str
    terminal: tuple[int | None, int | None, int | None, int | None]
    """Debit fen, debit count, credit fen, credit count as the terminal sent them."""
    host: tuple[int | None, int | None, int | None, int | None]


@dataclass(frozen=True, slots=True)
class ReconciliationException:
    kind: ExceptionKind
    rrn: str
    mid: str | None
    tid: str | None
    our_amount_fen: int | None
    network_amount_fen: int | None
    detail: dict[str, JsonScalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    business_date: dt.date
    matched_count: int
    matched_fen: int
    our_count: int
    our_fen: int
    network_count: int
    network_fen: int
    exceptions: tuple[ReconciliationException, ...]

    def counts(self) -> dict[str, int]:
        """Matched and each exception kind, in a fixed order (zero included)."""
        out = {"matched": self.matched_count}
        for kind in KIND_ORDER:
            out[kind.value] = 0
        for exception in self.exceptions:
            out[exception.kind.value] += 1
        return out


_BATCH_FIELDS: Final = ("debit_fen", "debit_count", "credit_fen", "credit_count")


def reconcile(
    business_date: dt.date,
    ours: Iterable[OurItem],
    network: ClearingFile,
    batches: Iterable[BatchTotals] = (),
) -> Reconciliation:
    """Compare a day's journal with the network's file and the day's batch totals."""
    theirs = {record.rrn: record for record in network.records}
    exceptions: list[ReconciliationException] = []
    matched_count = matched_fen = our_count = our_fen = 0
    seen: set[str] = set()
    for item in ours:
        our_count += 1
        our_fen += item.amount_fen
        seen.add(item.rrn)
        record = theirs.get(item.rrn)
        if record is None:
            exceptions.append(
                ReconciliationException(
                    ExceptionKind.MISSING_AT_NETWORK,
                    item.rrn,
                    item.mid,
                    item.tid,
                    item.amount_fen,
                    None,
                    {"our_kind": item.kind},
                )
            )
            continue
        detail: dict[str, JsonScalar] = {
            "our_kind": item.kind,
            "network_kind": record.transaction,
            "network_line": record.line_no,
        }
        if record.transaction != item.kind:
            kind = ExceptionKind.KIND_MISMATCH
        elif record.signed_amount_fen != item.amount_fen:
            kind = ExceptionKind.AMOUNT_MISMATCH
        else:
            matched_count += 1
            matched_fen += item.amount_fen
            continue
        exceptions.append(
            ReconciliationException(
                kind,
                item.rrn,
                item.mid or record.mid,
                item.tid or record.tid,
                item.amount_fen,
                record.signed_amount_fen,
                detail,
            )
        )
    for record in network.records:
        if record.rrn not in seen:
            exceptions.append(
                ReconciliationException(
                    ExceptionKind.MISSING_AT_HOST,
                    record.rrn,
                    record.mid,
                    record.tid,
                    None,
                    record.signed_amount_fen,
                    {"network_kind": record.transaction, "network_line": record.line_no},
                )
            )
    for batch in batches:
        if batch.terminal == batch.host:
            continue
        batch_detail: dict[str, JsonScalar] = {"batch_no": batch.batch_no}
        for name, terminal, host in zip(_BATCH_FIELDS, batch.terminal, batch.host, strict=True):
            batch_detail[f"terminal_{name}"] = terminal
            batch_detail[f"host_{name}"] = host
        exceptions.append(
            ReconciliationException(
                ExceptionKind.BATCH_TOTALS,
                batch.key,
                None,
                batch.tid,
                _net(batch.host),
                _net(batch.terminal),
                batch_detail,
            )
        )
    return Reconciliation(
        business_date=business_date,
        matched_count=matched_count,
        matched_fen=matched_fen,
        our_count=our_count,
        our_fen=our_fen,
        network_count=len(network.records),
        network_fen=network.debit_fen - network.credit_fen,
        exceptions=tuple(exceptions),
    )


def _net(totals: tuple[int | None, int | None, int | None, int | None]) -> int | None:
    """Debits minus credits, None when either is unknown."""
    debit, _, credit, _ = totals
    if debit is None or credit is None:
        return None
    return debit - credit
