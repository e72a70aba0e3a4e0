"""The network simulator's daily clearing file (one CSV per business date).

The card network tells each acquirer, per business date (Asia/Shanghai), which messages it
cleared and what they cost; PosHub's settlement reconciles its own journal against this
file. One line per approved message that moved money and was not reversed: sales, QR
sales, completions and completion advices (debits to the cardholder), voids, completion
voids and refunds (credits). Balance inquiries, pre-auths and their cancels move no money
and are not listed.

Fees follow the 2016 NDRC bank-card fee schedule (发改价格〔2016〕557号), per transaction,
rounded half-up to the fen (``poshub.core.money.round_half_up_fen``):

* interchange (issuer fee): debit card 0.35 % capped at ¥13.00, credit card 0.45 %
  uncapped; QR wallet payments are charged like debit cards (the simulator's choice: the
  schedule predates QR payments, and UnionPay QR is priced like the card behind it, which
  for a payment code is usually a debit card);
* network fee (品牌服务费): 0.0325 % capped at ¥3.25, charged to each side; the
  acquirer-side and issuer-side fees have their own columns.

A credit line (void, refund) carries the fees of its own amount: the simulator returns them
to the acquirer. The trailer's fee totals are net (debit lines minus credit lines).

Columns (the header line names them; the format is the network's, defined with its reader
in ``poshub.settlement.clearing_file``)::

    business_date, message_type, transaction, rrn, stan, tid, mid, card_kind, masked_pan,
    amount_fen, direction, interchange_fee_fen, network_fee_acquirer_fen,
    network_fee_issuer_fen

Trailer line::

    TRAILER, business_date, line_count, debit_count, debit_fen, credit_count, credit_fen,
    interchange_fee_fen, network_fee_acquirer_fen, network_fee_issuer_fen

The file is written to a temporary name and renamed into place, so a reader never sees half
a file. It holds masked PANs (first six, last four) only.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Final

from poshub.core.money import round_half_up_fen
from poshub.settlement.clearing_file import CREDIT, DEBIT, TRAILER_TAG
from poshub.settlement.clearing_file import HEADER as HEADER  # the simulator tests read it here
from poshub.settlement.clearing_file import default_clearing_path as default_clearing_path
from poshub.simulators.issuer import CREDIT_KINDS, CardKind, TxKind

DEBIT_INTERCHANGE_RATE: Final = Decimal("0.0035")
DEBIT_INTERCHANGE_CAP_FEN: Final = 1300
CREDIT_INTERCHANGE_RATE: Final = Decimal("0.0045")
NETWORK_FEE_RATE: Final = Decimal("0.000325")
NETWORK_FEE_CAP_FEN: Final = 325


def interchange_fee_fen(card_kind: CardKind, amount_fen: int) -> int:
    """The issuer's fee on one transaction (wallets as debit cards)."""
    if card_kind is CardKind.CREDIT:
        return round_half_up_fen(amount_fen * CREDIT_INTERCHANGE_RATE)
    return min(round_half_up_fen(amount_fen * DEBIT_INTERCHANGE_RATE), DEBIT_INTERCHANGE_CAP_FEN)


def network_fee_fen(amount_fen: int) -> int:
    """The network's fee on one side of one transaction."""
    return min(round_half_up_fen(amount_fen * NETWORK_FEE_RATE), NETWORK_FEE_CAP_FEN)


@dataclass(frozen=True, slots=True)
class ClearingItem:
    """An approved, unreversed financial message as the clearing file needs it."""

    business_date: date
    message_type: str
    transaction: TxKind
    rrn: str
    stan: str
    tid: str
    mid: str
    card_kind: CardKind
    masked_pan: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class ClearingLine:
    item: ClearingItem
    direction: str
    interchange_fee_fen: int
    network_fee_acquirer_fen: int
    network_fee_issuer_fen: int

    @classmethod
    def of(cls, item: ClearingItem) -> ClearingLine:
        network_fee = network_fee_fen(item.amount_fen)
        return cls(
            item=item,
            direction=CREDIT if item.transaction in CREDIT_KINDS else DEBIT,
            interchange_fee_fen=interchange_fee_fen(item.card_kind, item.amount_fen),
            network_fee_acquirer_fen=network_fee,
            network_fee_issuer_fen=network_fee,
        )

    def row(self) -> list[str]:
        item = self.item
        return [
            item.business_date.isoformat(),
            item.message_type,
            item.transaction.value,
            item.rrn,
            item.stan,
            item.tid,
            item.mid,
            item.card_kind.value,
            item.masked_pan,
            str(item.amount_fen),
            self.direction,
            str(self.interchange_fee_fen),
            str(self.network_fee_acquirer_fen),
            str(self.network_fee_issuer_fen),
        ]


@dataclass(frozen=True, slots=True)
class ClearingSummary:
    """What the trailer says; fee totals are net (debit lines minus credit lines)."""

    path: Path
    business_date: date
    line_count: int
    debit_count: int
    debit_fen: int
    credit_count: int
    credit_fen: int
    interchange_fee_fen: int
    network_fee_acquirer_fen: int
    network_fee_issuer_fen: int

    def trailer(self) -> list[str]:
        return [
            TRAILER_TAG,
            self.business_date.isoformat(),
            str(self.line_count),
            str(self.debit_count),
            str(self.debit_fen),
            str(self.credit_count),
            str(self.credit_fen),
            str(self.interchange_fee_fen),
            str(self.network_fee_acquirer_fen),
            str(self.network_fee_issuer_fen),
        ]


def write_clearing_file(
    items: Iterable[ClearingItem], business_date: date, path: Path
) -> ClearingSummary:
    """Write the file for ``business_date`` from ``items`` (streamed, in their order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    counts = {DEBIT: 0, CREDIT: 0}
    amounts = {DEBIT: 0, CREDIT: 0}
    interchange = network_acquirer = network_issuer = 0
    try:
        with temporary.open("w", newline="", encoding="ascii") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(HEADER)
            for item in items:
                line = ClearingLine.of(item)
                sign = 1 if line.direction == DEBIT else -1
                counts[line.direction] += 1
                amounts[line.direction] += item.amount_fen
                interchange += sign * line.interchange_fee_fen
                network_acquirer += sign * line.network_fee_acquirer_fen
                network_issuer += sign * line.network_fee_issuer_fen
                writer.writerow(line.row())
            summary = ClearingSummary(
                path=path,
                business_date=business_date,
                line_count=counts[DEBIT] + counts[CREDIT],
                debit_count=counts[DEBIT],
                debit_fen=amounts[DEBIT],
                credit_count=counts[CREDIT],
                credit_fen=amounts[CREDIT],
                interchange_fee_fen=interchange,
                network_fee_acquirer_fen=network_acquirer,
                network_fee_issuer_fen=network_issuer,
            )
            writer.writerow(summary.trailer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return summary


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is (POSIX); not possible on
    # every platform, where the rename alone is the best there is.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
