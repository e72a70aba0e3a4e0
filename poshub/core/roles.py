"""The roles of the security model (DESIGN §6)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    """Manages staff accounts and configuration; does not decide applications."""
    REVIEWER = "reviewer"
    """Reviews and decides merchant applications."""
    RISK_OFFICER = "risk_officer"
    """Manages the blacklist, risk rules, alerts and freezes."""
    OPERATIONS = "operations"
    """Runs terminals, keys, settlement and day-to-day operations."""
    TECHNICIAN = "technician"
    """Field work: surveys, installation, repair."""
    SUPPORT_AGENT = "support_agent"
    """Customer service: tickets and merchant questions."""
    AUDITOR = "auditor"
    """Read-only; sees the audit log."""
    MERCHANT = "merchant"
    """A merchant's own login to the portal: own data only."""


STAFF_ROLES = frozenset(Role) - {Role.MERCHANT}
