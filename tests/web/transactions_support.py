"""A merchant with a real terminal and a day of journal rows on it, for the transaction
pages and their browser test: the terminal exists in the fleet (its page needs it), the
journal rows are written directly (no gateway runs)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.core.db import utcnow
from tests.factories import approved_merchant, login, sign_contract, stock_in
from tests.gateway.journal_rows import batch, terminal_session, txn, write

SALE = "000000000011"
DECLINED = "000000000012"
REFUND = "000000000013"
QR_SALE = "000000000014"
REVERSED_SALE = "000000000015"
REVERSAL = "000000000016"
ELSEWHERE = "000000000019"
"""A sale on another merchant's terminal: never on this terminal's page."""
OTHER_MID = "898340154119999"
OTHER_TID = "19999999"


@dataclass(frozen=True)
class Journal:
    mid: str
    tid: str


def terminal_with_journal(client: TestClient, state: AppState, serial: str) -> Journal:
    """An approved merchant with a signed contract, a terminal allocated from stock, its
    gateway session and batches, and six transactions (with a refund and a reversal)."""
    _, mid = approved_merchant(client)
    sign_contract(state, mid)
    stock_in(client, [serial])
    csrf = login(client, "ops")
    response = client.post(
        f"/api/v1/merchants/{mid}/terminals", headers=csrf, json={"serial_number": serial}
    )
    assert response.status_code == 201, response.text
    tid: str = response.json()["tid"]
    client.cookies.clear()

    now = utcnow().replace(microsecond=0)
    at = {n: now - dt.timedelta(minutes=60 - n) for n in range(60)}
    on = {"mid": mid, "tid": tid, "batch_no": "000002"}
    write(
        state.db,
        txn(SALE, **on, amount_fen=12_800, received_at=at[1], refunded_fen=2_000),
        txn(DECLINED, **on, amount_fen=688_000, response_code="51", status="declined",
            auth_code=None, received_at=at[5]),
        txn(REFUND, **on, kind="refund", amount_fen=2_000, original_rrn=SALE,
            received_at=at[10]),
        txn(QR_SALE, **on, kind="qr_sale", amount_fen=3_550, pan_masked=None, pan_last4=None,
            pan_token=None, entry_mode="031", wallet="WXP", qr_voucher="WX20261204000001",
            received_at=at[20]),
        txn(REVERSED_SALE, **on, amount_fen=9_900, status="reversed", received_at=at[30]),
        txn(REVERSAL, **on, kind="reversal", mti="0400", amount_fen=9_900,
            original_rrn=REVERSED_SALE, reversal_reason="98", status="answered",
            upstream="none", upstream_us=None, received_at=at[31]),
        txn(ELSEWHERE, mid=OTHER_MID, tid=OTHER_TID, received_at=at[40]),
        terminal_session(tid, signed_on_at=now - dt.timedelta(hours=2), mac_failures=1,
                         last_mac_failure_at=at[50]),
        batch("000001", tid, status="closed", opened_at=now - dt.timedelta(days=1),
              closed_at=now - dt.timedelta(hours=3), settled_at=now - dt.timedelta(hours=3),
              settlement_rrn="000000000010", terminal_debit_fen=50_000, terminal_debit_count=3,
              terminal_credit_fen=0, terminal_credit_count=0, host_debit_fen=50_000,
              host_debit_count=3, host_credit_fen=0, host_credit_count=0, result="1"),
        batch("000002", tid, opened_at=now - dt.timedelta(hours=3)),
    )  # fmt: skip
    return Journal(mid=mid, tid=tid)
