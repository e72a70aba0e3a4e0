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
