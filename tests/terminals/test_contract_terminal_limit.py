"""A contract fixes how many terminals a merchant rents: allocation stops there (R5)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from poshub.bootstrap import AppState
from poshub.core.errors import Conflict
from tests.factories import sign_contract
from tests.fieldwork.support import allocate, approved_merchant, stock


def test_allocation_stops_at_the_contracts_terminal_count(
    client: TestClient, state: AppState
) -> None:
    mid = approved_merchant(client)
    sign_contract(state, mid)  # the contract covers 3 terminals
    serials = [f"SN-A8-10000{index}" for index in range(1, 5)]
    stock(state, *serials)
    tids = [allocate(state, mid, serial).tid for serial in serials[:3]]
    assert len(set(tids)) == 3
    with pytest.raises(Conflict) as refused:
        allocate(state, mid, serials[3])
    assert refused.value.code == "contract_terminal_limit"
    assert refused.value.params["allowed"] == "3"
