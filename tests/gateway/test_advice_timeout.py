"""A refund (an 0220 advice) the network does not answer: the terminal gets no answer,
not a 98 it would read as a decline, and resends it (spec §5.4)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from poshub.core.db import Database, table_of
from poshub.core.settings import Settings
from poshub.gateway.models import GatewayTransaction
from poshub.simulators.terminal import NoAnswer
from tests.gateway.support import CARD, Env, run


def test_an_unanswered_refund_gets_no_answer_and_stays_pending(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> dict[str, Any]:
        # Just above the gateway's 1 s upstream timeout: each of the four sends of the
        # advice waits for the gateway to give up upstream, and no longer.
        async with env.terminal(timeout_seconds=1.3) as terminal:
            await terminal.sign_on()
            sale = await terminal.sale(CARD, 10_000)
            assert sale.rrn is not None
            original = terminal.state.find(sale.rrn)
            assert original is not None
            with pytest.raises(NoAnswer):
                await terminal.refund(original, CARD, 191)  # the simulator never answers 91
            return {"owed": terminal.state.pending_advice is not None}

    outcome = run(gateway_settings, demo_database, scenario)
    assert outcome["owed"]  # the terminal keeps the refund to resend it
    table = table_of(GatewayTransaction)
    with demo_database.unit_of_work(read_only=True) as uow:
        refund = uow.session.execute(select(table).where(table.c.kind == "refund")).one()
    assert refund.status == "pending"
    assert refund.upstream == "timeout"
    assert refund.response_code == "98"  # recorded for staff; never sent to the terminal


def test_the_session_keeps_its_sign_on_time_across_later_writes(
    gateway_settings: Settings, demo_database: Database
) -> None:
    async def scenario(env: Env) -> None:
        async with env.terminal() as terminal:
            await terminal.sign_on()
            await terminal.sale(CARD, 100)
            await terminal.settle()  # closes the batch: the session is written again

    run(gateway_settings, demo_database, scenario)
    from poshub.gateway.models import TerminalSession

    table = table_of(TerminalSession)
    with demo_database.unit_of_work(read_only=True) as uow:
        session = uow.session.execute(select(table)).one()
    assert session.signed_on_at is not None
    assert session.batch_no == "000002"
