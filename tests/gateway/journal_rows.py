"""Journal rows written straight into the database, for tests of what staff read.

The gateway is not needed to test the search, the detail and the terminal page: these
helpers insert ``gateway_transactions``, ``terminal_sessions`` and ``terminal_batches`` rows
through a unit of work, with plausible defaults (an approved ¥12.34 card sale) that each
test overrides where it matters.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from poshub.core.clock import business_date
from poshub.core.db import Database
from poshub.gateway.models import GatewayTransaction, TerminalBatch, TerminalSession

MID = "898340154110001"
TID = "10000001"
PAN = "6222021234567890123"
"""The card the rows were made from; only its masked form and last four are stored."""
PAN_MASKED = "622202*********0123"
PAN_TOKEN = "7a0c" + "5e" * 30
"""A stand-in for the HMAC lookup token: it must never appear in what staff see."""
MOMENT = dt.datetime(2026, 12, 4, 2, 30, tzinfo=dt.UTC)
"""10:30 in Beijing on 2026-12-04."""
TODAY = business_date(MOMENT)


def txn(rrn: str, **fields: Any) -> GatewayTransaction:
    """An approved card sale of ¥12.34 at ``MOMENT`` on ``TID``/``MID``; ``fields``
    override any column (``host_date`` follows ``received_at`` unless given)."""
    received_at: dt.datetime = fields.pop("received_at", MOMENT)
    values: dict[str, Any] = {
        "rrn": rrn,
        "tid": TID,
        "mid": MID,
        "kind": "sale",
        "mti": "0200",
        "processing_code": "000000",
        "type_code": "22",
        "network_code": "000",
        "stan": rrn[-6:],
        "batch_no": "000001",
        "host_date": business_date(received_at),
        "pan_masked": PAN_MASKED,
        "pan_last4": PAN[-4:],
        "pan_token": PAN_TOKEN,
        "entry_mode": "051",
        "amount_fen": 1234,
        "currency": "156",
        "response_code": "00",
        "auth_code": "A1B2C3",
        "status": "approved",
        "refunded_fen": 0,
        "upstream": "answered",
        "upstream_us": 12_345,
        "total_us": 15_678,
        "received_at": received_at,
        "responded_at": received_at + dt.timedelta(milliseconds=16),
    }
    values.update(fields)
    return GatewayTransaction(**values)


def terminal_session(tid: str = TID, **fields: Any) -> TerminalSession:
    values: dict[str, Any] = {
        "tid": tid,
        "keys_sealed": b"sealed working keys: never shown",
        "key_mode": "003",
        "pik_kcv": "3F1A9C2B",
        "mak_kcv": "77D0E415",
        "batch_no": "000002",
        "signed_on_at": MOMENT - dt.timedelta(hours=2),
        "signed_off_at": None,
        "mac_failures": 0,
        "last_mac_failure_at": None,
        "updated_at": MOMENT,
    }
    values.update(fields)
    return TerminalSession(**values)


def batch(batch_no: str, tid: str = TID, **fields: Any) -> TerminalBatch:
    values: dict[str, Any] = {
        "tid": tid,
        "batch_no": batch_no,
        "status": "open",
        "opened_at": MOMENT - dt.timedelta(days=1),
        "closed_at": None,
        "uploaded_records": 0,
    }
    values.update(fields)
    return TerminalBatch(**values)


def write(database: Database, *rows: object) -> None:
    """Insert ``rows`` in one transaction."""
    with database.unit_of_work() as uow:
        uow.session.add_all(rows)
        uow.commit()
