"""Device and terminal lifecycles (DESIGN §3) as data and pure functions."""

from __future__ import annotations

from poshub.core.errors import N_
from poshub.core.transitions import ensure_transition
from poshub.terminals.models import DeviceStatus, TerminalStatus

DEVICE_TRANSITIONS: dict[DeviceStatus, frozenset[DeviceStatus]] = {
    DeviceStatus.IN_STOCK: frozenset({DeviceStatus.ALLOCATED, DeviceStatus.RETIRED}),
    DeviceStatus.ALLOCATED: frozenset(
        {DeviceStatus.SHIPPED, DeviceStatus.INSTALLED, DeviceStatus.RETURNED}
    ),
    # Installed directly from "allocated" when a technician carries the device to the site
    # instead of a carrier delivering it.
    DeviceStatus.SHIPPED: frozenset({DeviceStatus.INSTALLED, DeviceStatus.RETURNED}),
    DeviceStatus.INSTALLED: frozenset({DeviceStatus.ACTIVE, DeviceStatus.RETURNED}),
    DeviceStatus.ACTIVE: frozenset({DeviceStatus.LOCKED, DeviceStatus.RETURNED}),
    DeviceStatus.LOCKED: frozenset({DeviceStatus.ACTIVE, DeviceStatus.RETURNED}),
    # A returned device is inspected: back to stock if sound, retired if not.
    DeviceStatus.RETURNED: frozenset({DeviceStatus.IN_STOCK, DeviceStatus.RETIRED}),
    DeviceStatus.RETIRED: frozenset(),
}

TERMINAL_TRANSITIONS: dict[TerminalStatus, frozenset[TerminalStatus]] = {
    TerminalStatus.PROVISIONING: frozenset({TerminalStatus.ACTIVE, TerminalStatus.CLOSED}),
    TerminalStatus.ACTIVE: frozenset({TerminalStatus.LOCKED, TerminalStatus.CLOSED}),
    TerminalStatus.LOCKED: frozenset({TerminalStatus.ACTIVE, TerminalStatus.CLOSED}),
    TerminalStatus.CLOSED: frozenset(),
}


def ensure_device_transition(current: str, target: DeviceStatus) -> DeviceStatus:
    """Return ``target`` if a device in ``current`` may move there, else 409 naming the
    allowed next states."""
    return ensure_transition(
        DEVICE_TRANSITIONS,
        DeviceStatus(current),
        target,
        message=N_("A device in state {current} cannot move to {target}; allowed next: {allowed}."),
        code="invalid_device_transition",
    )


def ensure_terminal_transition(current: str, target: TerminalStatus) -> TerminalStatus:
    return ensure_transition(
        TERMINAL_TRANSITIONS,
        TerminalStatus(current),
        target,
        message=N_(
            "A terminal in state {current} cannot move to {target}; allowed next: {allowed}."
        ),
        code="invalid_terminal_transition",
    )
