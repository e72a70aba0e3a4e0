"""Delivery adapters. ``log`` ships (the demo's); an SMS gateway is another implementation."""

from __future__ import annotations

import logging
from typing import Protocol


class DeliveryFailed(Exception):
    """Transient delivery problem: the outbox row stays pending and is retried."""


class Notifier(Protocol):
    name: str

    def send(self, channel: str, recipient: str, text: str) -> None: ...


class LogNotifier:
    """Writes each message to the process log (``poshub.notify`` logger)."""

    name = "log"

    def __init__(self) -> None:
        self._log = logging.getLogger("poshub.notify")

    def send(self, channel: str, recipient: str, text: str) -> None:
        masked = recipient[:3] + "****" + recipient[-4:] if len(recipient) >= 11 else recipient
        self._log.info("notify %s to %s: %s", channel, masked, text)


class MemoryNotifier:
    """Keeps messages in a bounded list: for tests and for inspecting the demo."""

    name = "memory"
    capacity = 1000

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, channel: str, recipient: str, text: str) -> None:
        if len(self.sent) >= self.capacity:
            self.sent.pop(0)
        self.sent.append((channel, recipient, text))


def build_notifier(name: str) -> Notifier:
    if name == "log":
        return LogNotifier()
    if name == "memory":
        return MemoryNotifier()
    raise ValueError(f"unknown notifier {name!r}: choose log or memory")
