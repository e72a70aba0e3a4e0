"""Real-name (实名认证) and bank-card four-element (四要素) verification.

Chinese acquirers do not check identities themselves: a licensed verification
provider compares name and resident ID with the public-security register, and
name, ID, account number and reserved mobile with the issuing bank. PosHub talks
to such a provider through :class:`VerificationProvider`; the sandbox provider
here answers deterministically for development and testing.

ID and account numbers are personal data: they never appear in logs, results or
exception messages raised here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


class VerificationOutcome(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class VerificationResult:
    """A provider's definite answer; ``reference`` is its transaction reference."""

    outcome: VerificationOutcome
    provider: str
    reference: str
    detail_code: str | None = None


class ProviderUnavailable(Exception):
    """The provider could not answer (timeout, outage): record the check as pending."""


@runtime_checkable
class VerificationProvider(Protocol):
    """A verification service; definite answers are results, outages raise ProviderUnavailable."""

    name: str

    def verify_identity(self, name: str, id_number: str) -> VerificationResult:
        """Whether ``name`` and ``id_number`` belong to the same registered person."""
        ...

    def verify_bank_card(
        self, name: str, id_number: str, account_number: str, mobile: str
    ) -> VerificationResult:
        """Whether the bank holds the account under this name, ID and reserved mobile."""
        ...


# Sandbox triggers, documented for testers in docs/verification-sandbox.md.
SANDBOX_IDENTITY_MISMATCH_MARKER = "冒名"
SANDBOX_IDENTITY_UNAVAILABLE_MARKER = "超时"
SANDBOX_BANK_CARD_MISMATCH_MOBILE_SUFFIX = "4444"
SANDBOX_UNAVAILABLE_MOBILE_SUFFIX = "0000"


def _sandbox_reference(kind: str, *inputs: str) -> str:
    # A digest rather than the inputs keeps personal data out of the reference,
    # and makes the same request give the same reference on every run. The unit
    # separator keeps ('ab', 'c') and ('a', 'bc') apart.
    digest = hashlib.sha256("\x1f".join((kind, *inputs)).encode("utf-8")).hexdigest()
    return "SBX" + digest[:16]


class SandboxVerificationProvider:
    """Deterministic answers without network access, driven by marker inputs.

    Identity: MISMATCH when the name contains 冒名; ProviderUnavailable when it
    contains 超时. Bank card: ProviderUnavailable when the mobile ends in 0000,
    MISMATCH when it ends in 4444. Anything else matches. ``unavailable=True``
    makes every call raise ProviderUnavailable, as in a full outage.
    """

    name = "sandbox"

    def __init__(self, *, unavailable: bool = False) -> None:
        self.unavailable = unavailable

    def _check_outage(self) -> None:
        if self.unavailable:
            raise ProviderUnavailable("sandbox verification provider is switched off")

    def verify_identity(self, name: str, id_number: str) -> VerificationResult:
        """Name and resident ID against the (simulated) public-security register."""
        self._check_outage()
        if SANDBOX_IDENTITY_UNAVAILABLE_MARKER in name:
            raise ProviderUnavailable("sandbox identity check timed out")
        reference = _sandbox_reference("identity", name, id_number)
        if SANDBOX_IDENTITY_MISMATCH_MARKER in name:
            return VerificationResult(
                VerificationOutcome.MISMATCH, self.name, reference, "sandbox.identity_mismatch"
            )
        return VerificationResult(VerificationOutcome.MATCH, self.name, reference)

    def verify_bank_card(
        self, name: str, id_number: str, account_number: str, mobile: str
    ) -> VerificationResult:
        """Four elements against the (simulated) issuing bank."""
        self._check_outage()
        mobile = mobile.strip()
        if mobile.endswith(SANDBOX_UNAVAILABLE_MOBILE_SUFFIX):
            raise ProviderUnavailable("sandbox bank-card check timed out")
        reference = _sandbox_reference("bank_card", name, id_number, account_number, mobile)
        if mobile.endswith(SANDBOX_BANK_CARD_MISMATCH_MOBILE_SUFFIX):
            return VerificationResult(
                VerificationOutcome.MISMATCH, self.name, reference, "sandbox.bank_card_mismatch"
            )
        return VerificationResult(VerificationOutcome.MATCH, self.name, reference)


_PROVIDERS: dict[str, Callable[[], VerificationProvider]] = {
    "sandbox": SandboxVerificationProvider,
}


def build_provider(name: str) -> VerificationProvider:
    """The provider configured under ``name``; ValueError names the allowed ones."""
    factory = _PROVIDERS.get(name)
    if factory is None:
        allowed = ", ".join(sorted(_PROVIDERS))
        raise ValueError(f"unknown verification provider {name!r}; allowed: {allowed}")
    return factory()
