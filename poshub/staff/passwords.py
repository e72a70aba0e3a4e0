"""Password hashing (argon2id), its concurrency cap, and the password policy (R20)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from poshub.core import limits
from poshub.core.errors import N_, PosHubError


class HashingBusy(PosHubError):
    """Every hashing slot is taken and the queue is full, or the wait ran out (503)."""

    status_code = 503
    code = "busy"


BUSY = N_("Too many logins at once. Try again in a few seconds.")


class HashingGate:
    """At most ``slots`` password hashes at once in this process, and at most
    ``waiting_max`` callers waiting for one (each waiting caller holds a worker thread):
    logins cannot take every thread or core from the other requests."""

    def __init__(self, slots: int, waiting_max: int, wait_seconds: float) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self.waiting_max = waiting_max
        self.wait_seconds = wait_seconds

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self.waiting_max:
                    raise HashingBusy(BUSY)
                self._waiting += 1
            try:
                acquired = self._slots.acquire(timeout=self.wait_seconds)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not acquired:
                raise HashingBusy(BUSY)
        try:
            yield
        finally:
            self._slots.release()


GATE = HashingGate(
    limits.PASSWORD_HASHING_CONCURRENT_MAX,
    limits.PASSWORD_HASHING_WAITING_MAX,
    limits.PASSWORD_HASHING_WAIT_SECONDS,
)

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

# A password is checked against the same dummy hash when the user does not exist, so
# that the response time does not reveal which usernames are valid.
DUMMY_HASH = _hasher.hash("poshub-dummy-password-for-timing")


def hash_password(password: str) -> str:
    with GATE.slot():
        return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """One argon2 verification (in a :data:`GATE` slot); False for a wrong password."""
    with GATE.slot():
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problems(password: str, username: str) -> list[str]:
    """Message ids of every policy rule the password breaks (empty when acceptable)."""
    problems: list[str] = []
    if len(password) < limits.PASSWORD_LENGTH_MIN:
        problems.append(N_("The password must have at least {min_length} characters."))
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < 3:
        problems.append(
            N_("The password must mix at least three of: lower case, upper case, digits, symbols.")
        )
    if username and username.lower() in password.lower():
        problems.append(N_("The password must not contain the user name."))
    return problems
