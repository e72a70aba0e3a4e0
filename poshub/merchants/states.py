"""The merchant lifecycle after approval (DESIGN §3): ``approved → contracted →
provisioning → live``, ``suspended``, ``closed``. Pure: the contracts, terminals and
fieldwork services move a merchant through it."""

from __future__ import annotations

from poshub.core.errors import N_
from poshub.core.transitions import ensure_transition
from poshub.merchants.models import MerchantStatus

MERCHANT_TRANSITIONS: dict[MerchantStatus, frozenset[MerchantStatus]] = {
    MerchantStatus.APPROVED: frozenset({MerchantStatus.CONTRACTED, MerchantStatus.CLOSED}),
    MerchantStatus.CONTRACTED: frozenset({MerchantStatus.PROVISIONING, MerchantStatus.CLOSED}),
    MerchantStatus.PROVISIONING: frozenset(
        {MerchantStatus.LIVE, MerchantStatus.SUSPENDED, MerchantStatus.CLOSED}
    ),
    MerchantStatus.LIVE: frozenset({MerchantStatus.SUSPENDED, MerchantStatus.CLOSED}),
    MerchantStatus.SUSPENDED: frozenset({MerchantStatus.LIVE, MerchantStatus.CLOSED}),
    MerchantStatus.CLOSED: frozenset(),
}

CONTRACTED_OR_LATER = frozenset(
    {MerchantStatus.CONTRACTED, MerchantStatus.PROVISIONING, MerchantStatus.LIVE}
)
"""States in which a merchant holds a signed contract and may receive terminals."""


def ensure_merchant_transition(current: str, target: MerchantStatus) -> MerchantStatus:
    return ensure_transition(
        MERCHANT_TRANSITIONS,
        MerchantStatus(current),
        target,
        message=N_(
            "A merchant in state {current} cannot move to {target}; allowed next: {allowed}."
        ),
        code="invalid_merchant_transition",
    )


def advance(current: str, target: MerchantStatus) -> str:
    """The merchant's state after an event that moves it *at least* to ``target``: a live
    merchant allocated a second terminal stays live; an approved one moves on."""
    order = [
        MerchantStatus.APPROVED,
        MerchantStatus.CONTRACTED,
        MerchantStatus.PROVISIONING,
        MerchantStatus.LIVE,
    ]
    state = MerchantStatus(current)
    if state in order and order.index(state) >= order.index(target):
        return str(state)
    return str(ensure_merchant_transition(current, target))
