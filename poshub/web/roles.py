"""Which roles each group of routes admits (DESIGN §6). Routes name these sets."""

from __future__ import annotations

from poshub.core.roles import STAFF_ROLES, Role

ANY_STAFF = tuple(sorted(STAFF_ROLES))
REVIEW_READ = (Role.REVIEWER, Role.RISK_OFFICER, Role.AUDITOR)
REVIEW_WRITE = (Role.REVIEWER,)
BLACKLIST_READ = (Role.RISK_OFFICER, Role.REVIEWER, Role.AUDITOR)
BLACKLIST_WRITE = (Role.RISK_OFFICER,)
AUDIT_READ = (Role.AUDITOR, Role.ADMIN)
MERCHANT_READ = (
    Role.REVIEWER,
    Role.RISK_OFFICER,
    Role.OPERATIONS,
    Role.SUPPORT_AGENT,
    Role.AUDITOR,
    Role.ADMIN,
)
CONTRACT_READ = (
    Role.REVIEWER,
    Role.OPERATIONS,
    Role.SUPPORT_AGENT,
    Role.AUDITOR,
    Role.ADMIN,
)
CONTRACT_WRITE = (Role.REVIEWER, Role.OPERATIONS)
"""Prepare contracts and amendments (the merchant's account manager)."""
CONTRACT_COUNTERSIGN = (Role.OPERATIONS,)
"""Seal on behalf of the acquirer; never the person who prepared the version."""
FLEET_READ = (Role.OPERATIONS, Role.TECHNICIAN, Role.SUPPORT_AGENT, Role.AUDITOR, Role.ADMIN)
FLEET_WRITE = (Role.OPERATIONS,)
"""Stock-in, allocation, swaps; key export is operations only as well."""
TMS_READ = (Role.OPERATIONS, Role.SUPPORT_AGENT, Role.AUDITOR, Role.ADMIN)
TMS_WRITE = (Role.OPERATIONS,)
FIELDWORK_READ = (Role.OPERATIONS, Role.TECHNICIAN, Role.SUPPORT_AGENT, Role.AUDITOR, Role.ADMIN)
FIELDWORK_WRITE = (Role.OPERATIONS, Role.TECHNICIAN)
FIELDWORK_DISPATCH = (Role.OPERATIONS,)
