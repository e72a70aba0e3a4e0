"""Delivery adapters. ``log`` ships (the demo's); an SMS gateway is another implementation."""

from __future__ import annotations

import logging
from typing import Protocol


class DeliveryFailed(Exception):
    """Transient delivery problem: the outbox row stays pending and is retried."""


class Notifier(Protocol):
    name: str

    def send(self, channel: str, recipient: str, text: str, *, secret: str | None = None) -> None:
        """Deliver ``text``. ``secret`` (a one-time code inside it) must reach the recipient
        and nothing else: no log line, no stored copy outside a test or demo adapter."""
        ...


WITHHELD = "[code withheld]"


class LogNotifier:
    """Writes each message to the process log (``poshub.notify`` logger)."""

    name = "log"

    def __init__(self) -> None:
        self._log = logging.getLogger("poshub.notify")

    def send(self, channel: str, recipient: str, text: str, *, secret: str | None = None) -> None:
        masked = recipient[:3] + "****" + recipient[-4:] if len(recipient) >= 11 else recipient
        if secret:
            text = text.replace(secret, WITHHELD)
        self._log.info("notify %s to %s: %s", channel, masked, text)


class MemoryNotifier:
    """Keeps messages in a bounded list: for tests and for inspecting the demo. One-time
    codes are kept too, so that tests (and the demo) can read them: never use it for
    real applicants."""

    name = "memory"
    capacity = 1000

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self._codes: dict[str, str] = {}

    def send(self, channel: str, recipient: str, text: str, *, secret: str | None = None) -> None:
        if len(self.sent) >= self.capacity:
            self.sent.pop(0)
        self.sent.append((channel, recipient, text))
        if secret:
            self._codes.pop(recipient, None)
            if len(self._codes) >= self.capacity:
                self._codes.pop(next(iter(self._codes)))
            self._codes[recipient] = secret

    def last_code(self, recipient: str) -> str | None:
        """The one-time code most recently sent to ``recipient``."""
        return self._codes.get(recipient)


def build_notifier(name: str) -> Notifier:
    if name == "log":
        return LogNotifier()
    if name == "memory":
        return MemoryNotifier()
    raise ValueError(f"unknown notifier {name!r}: choose log or memory")
