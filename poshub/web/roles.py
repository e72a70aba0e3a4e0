"""Which roles each group of routes admits (DESIGN §6). Routes name these sets."""

from __future__ import annotations

from poshub.core.roles import STAFF_ROLES, Role

ANY_STAFF = tuple(sorted(STAFF_ROLES))
REVIEW_READ = (Role.REVIEWER, Role.RISK_OFFICER, Role.AUDITOR)
REVIEW_WRITE = (Role.REVIEWER,)
REVIEW_OVERRIDE = (Role.RISK_OFFICER,)
"""The second approval of an approval over failed or pending checks (maker-checker):
risk officers only, and never the reviewer who asked for it (the service checks that)."""
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
MERCHANT_HOURS_WRITE = (Role.OPERATIONS, Role.RISK_OFFICER)
"""Correct a merchant's declared business hours (the business-hours risk rule reads them)."""
MERCHANT_CLOSE = (Role.OPERATIONS, Role.RISK_OFFICER)
"""End a merchant relationship: operations (the contract ended) or a risk officer
(termination for risk). Not admin, who manages accounts, not business relationships."""
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
TRANSACTION_READ = (
    Role.OPERATIONS,
    Role.RISK_OFFICER,
    Role.SUPPORT_AGENT,
    Role.AUDITOR,
    Role.ADMIN,
)
"""Search the gateway journal and read a terminal's session and batches: operations run
the terminals, risk officers investigate, support answers merchants' "where is my
payment", auditors and administrators read everything. Not reviewers (they decide
applications, before any transaction exists) nor technicians (field work needs the
terminal, not its customers' payments)."""
TERMINAL_PAGE_READ = tuple(sorted(set(FLEET_READ) | set(TRANSACTION_READ)))
"""The terminal page: the fleet's readers, and risk officers who arrive from a
transaction. Its transactions and batches show only to ``TRANSACTION_READ``."""
RISK_READ = (Role.RISK_OFFICER, Role.AUDITOR, Role.ADMIN)
"""Risk control's queues, cases, rules, limits and grades: risk officers work them,
auditors and administrators read them."""
RISK_WRITE = (Role.RISK_OFFICER,)
"""Open and work cases, freeze and release, block cards, edit rules, request and approve
limit changes (never one's own: the service checks), regrade merchants."""
