"""Display labels for codes shown on pages (English msgids, translated in templates)."""

from __future__ import annotations

from poshub.core.errors import N_
from poshub.gateway.response_codes import RESPONSE_CODE_MEANINGS
from poshub.onboarding.decisions import REJECTION_REASONS
from poshub.onboarding.rules import DOCUMENT_LABELS
from poshub.risk.cases import CASE_STATUS_NAMES, OUTCOME_LABELS
from poshub.risk.schemas import ALERT_CODE_LABELS

TERMINAL_KIND_LABELS = {
    "traditional": N_("Traditional POS"),
    "smart": N_("Smart POS"),
    "mobile": N_("Mobile POS"),
    "esign": N_("E-signature POS"),
}
APPLICATION_STATUS_LABELS = {
    "draft": N_("Draft"),
    "submitted": N_("Submitted"),
    "under_review": N_("Under review"),
    "needs_info": N_("More information needed"),
    "pending_override": N_("Awaiting risk officer approval"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "withdrawn": N_("Withdrawn"),
}
APPLICANT_KIND_LABELS = {
    "individual": N_("Individual / small merchant"),
    "individual_business": N_("Individual business (with licence)"),
    "enterprise": N_("Enterprise"),
}
EVENT_LABELS = {
    "submitted": N_("Submitted for review"),
    "claimed": N_("Taken into review"),
    "phone_confirmation": N_("Phone confirmation"),
    "site_survey": N_("Site survey"),
    "note": N_("Note"),
    "info_requested": N_("More information requested"),
    "applicant_answered": N_("Applicant answered"),
    "edited": N_("Corrected by reviewer"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "sla_breached": N_("Review deadline breached"),
    "override_requested": N_("Approval over failed checks requested"),
    "override_approved": N_("Override approved by risk officer"),
    "override_declined": N_("Override declined by risk officer"),
}
CHECK_STATUS_LABELS = {
    "pass": N_("Pass"),
    "fail": N_("Fail"),
    "warn": N_("Attention"),
    "pending": N_("Pending"),
}
SLA_LABELS = {
    "on_track": N_("On track"),
    "due_today": N_("Due today"),
    "overdue": N_("Overdue"),
    "breached": N_("SLA breached"),
    "paused": N_("Waiting for applicant"),
    "stopped": N_("Decided"),
    "not_started": N_("Not submitted"),
}
BLACKLIST_KIND_LABELS = {
    "id_number": N_("Resident ID number"),
    "uscc": N_("Unified social credit code"),
    "account_number": N_("Account number"),
    "mobile": N_("Mobile number"),
}
MERCHANT_STATUS_LABELS = {
    "approved": N_("Approved"),
    "contracted": N_("Contracted"),
    "provisioning": N_("Provisioning"),
    "live": N_("Live"),
    "suspended": N_("Suspended"),
    "closed": N_("Closed"),
}
NOTE_OUTCOME_LABELS = {
    "confirmed": N_("Confirmed"),
    "not_confirmed": N_("Not confirmed"),
    "feasible": N_("Feasible"),
    "not_feasible": N_("Not feasible"),
}

CONTRACT_STATUS_LABELS = {
    "awaiting_merchant": N_("Waiting for the merchant's signature"),
    "awaiting_countersign": N_("Waiting for the acquirer's countersignature"),
    "signed": N_("Signed by both parties"),
    "withdrawn": N_("Withdrawn"),
}
DEVICE_STATUS_LABELS = {
    "in_stock": N_("In stock"),
    "allocated": N_("Allocated"),
    "shipped": N_("Shipped"),
    "installed": N_("Installed"),
    "active": N_("Active"),
    "locked": N_("Locked"),
    "returned": N_("Returned"),
    "retired": N_("Retired"),
}
TERMINAL_STATUS_LABELS = {
    "provisioning": N_("Provisioning"),
    "active": N_("Active"),
    "locked": N_("Locked"),
    "closed": N_("Closed"),
}
SETTLEMENT_CYCLE_LABELS = {
    "D0": N_("Same day (D0)"),
    "T1": N_("Next working day (T+1)"),
}

TXN_KIND_LABELS = {
    "sign_on": N_("Sign-on"),
    "sign_off": N_("Sign-off"),
    "echo": N_("Echo test"),
    "parameters": N_("Parameter download"),
    "balance_inquiry": N_("Balance inquiry"),
    "sale": N_("Sale"),
    "qr_sale": N_("QR payment"),
    "void": N_("Void"),
    "refund": N_("Refund"),
    "preauth": N_("Pre-authorization"),
    "preauth_cancel": N_("Pre-authorization cancellation"),
    "completion": N_("Pre-authorization completion"),
    "completion_void": N_("Completion void"),
    "completion_advice": N_("Completion advice"),
    "reversal": N_("Reversal"),
    "settlement": N_("Settlement"),
    "batch_upload": N_("Batch upload"),
    "batch_upload_end": N_("Batch upload end"),
    "unknown": N_("Unidentified request"),
}
"""Every ``gateway.models.TxnKind``."""
TXN_STATUS_LABELS = {
    "pending": N_("Awaiting the network"),
    "approved": N_("Succeeded"),
    "declined": N_("Declined"),
    "voided": N_("Voided"),
    "reversed": N_("Reversed"),
    "completed": N_("Completed"),
    "answered": N_("Answered"),
}
"""Every ``gateway.models.TxnStatus``."""
UPSTREAM_LABELS = {
    "none": N_("Answered by PosHub"),
    "forwarded": N_("Forwarded, no answer yet"),
    "answered": N_("Answered by the network"),
    "timeout": N_("Network timeout"),
}
BATCH_STATUS_LABELS = {
    "open": N_("Collecting"),
    "closed": N_("Settled and closed"),
}
SETTLEMENT_RESULT_LABELS = {
    "balanced": N_("Balanced"),
    "unbalanced": N_("Not balanced"),
}
KEY_MODE_LABELS = {
    "001": N_("Single-length keys (001)"),
    "003": N_("Double-length PIN key (003)"),
    "004": N_("Double-length PIN key and data key (004)"),
}
"""60.3 of the sign-on the working keys came from (spec §11.2)."""
RESPONSE_CODE_LABELS = RESPONSE_CODE_MEANINGS

RISK_RULE_LABELS = ALERT_CODE_LABELS
RISK_SEVERITY_LABELS = {
    "low": N_("Low"),
    "medium": N_("Medium"),
    "high": N_("High"),
}
RISK_ACTION_LABELS = {
    "decline": N_("Authorization declined"),
    "alert": N_("Approved, alert raised"),
    "hold": N_("Approved, settlement held"),
    "notice": N_("Alert raised"),
}
"""What a rule hit did to the authorization (``risk.models.RuleAction``); ``notice`` for an
alert raised outside any authorization (a relocation, an external list hit)."""
ALERT_STATUS_LABELS = {
    "open": N_("Awaiting review"),
    "in_case": N_("In a case"),
    "dismissed": N_("Dismissed"),
}
CASE_STATUS_LABELS = CASE_STATUS_NAMES
CASE_OUTCOME_LABELS = OUTCOME_LABELS
FREEZE_KIND_LABELS = {
    "merchant_freeze": N_("Merchant frozen"),
    "terminal_freeze": N_("Terminal frozen"),
    "merchant_hold": N_("Merchant's settlement held"),
    "transaction_hold": N_("Transaction's settlement held"),
}
"""What a ``risk_freezes`` row does (``risk.cases.freeze_kind``)."""
CASE_EVENT_LABELS = {
    "opened": N_("Case opened"),
    "alert_linked": N_("Alert added as evidence"),
    "transaction_linked": N_("Transaction added as evidence"),
    "note_added": N_("Note"),
    "attachment_added": N_("File attached"),
    "merchant_frozen": N_("Merchant frozen"),
    "terminal_frozen": N_("Terminal frozen"),
    "settlement_held": N_("Settlement held"),
    "transaction_held": N_("Transaction's settlement held"),
    "released": N_("Freeze or hold released"),
    "card_blocked": N_("Card blocked"),
    "assigned": N_("Assigned"),
    "report_exported": N_("Suspicious-transaction report exported"),
    "closed": N_("Case closed"),
}
"""Every ``risk.cases.CaseEventAction``."""
LIMIT_CHANNEL_LABELS = {
    "debit": N_("Debit cards"),
    "credit": N_("Credit cards"),
    "qr": N_("QR payments"),
}
"""Every ``risk.models.Channel``."""
LIMIT_SCOPE_LABELS = {
    "default": N_("Default (every merchant)"),
    "merchant": N_("Merchant (MID)"),
    "terminal": N_("Terminal (TID)"),
}
"""Every ``risk.schemas.LimitScope``."""
LIMIT_FIELD_LABELS = {
    "per_transaction_fen": N_("Per transaction"),
    "per_day_fen": N_("Per day"),
    "per_month_fen": N_("Per month"),
    "per_card_per_day_fen": N_("Per card per day"),
}
"""The amounts of a level's limits (``risk.controls.AMOUNT_FIELDS``)."""
LIMIT_CHANGE_STATUS_LABELS = {
    "pending": N_("Waiting for a second risk officer"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "withdrawn": N_("Withdrawn"),
}
"""Every ``risk.models.ChangeStatus``."""
RULE_SETTING_ACTION_LABELS = {
    "decline": N_("Decline the authorization"),
    "alert": N_("Approve and raise an alert"),
    "hold": N_("Approve, alert and hold settlement"),
}
"""What a rule is set to do on a hit (``risk.models.RuleAction``), as the edit form offers it."""
RULE_PARAM_LABELS = {
    "max_count": N_("Most payments in the window"),
    "window_minutes": N_("Window (minutes)"),
    "max_declines": N_("Most declines in the window"),
    "cooldown_minutes": N_("Terminal declined after a hit for (minutes)"),
    "round_unit_fen": N_("A round amount is a multiple of (CNY)"),
    "round_min_fen": N_("Round amounts count from (CNY)"),
    "near_limit_percent": N_("Near the card's limit: within (%)"),
    "night_start": N_("Night starts (HH:MM)"),
    "night_end": N_("Night ends (HH:MM)"),
    "same_card_per_day": N_("Same card at one merchant per day"),
    "min_signals": N_("Signals that make a hit"),
    "grace_minutes": N_("Grace around business hours (minutes)"),
    "ticket_above_norm.factor": N_("One ticket above (× the category's typical ticket)"),
    "average_factor": N_("Day's average ticket above (× the typical ticket)"),
    "min_transactions": N_("…once the day has this many payments"),
    "new_days": N_("A merchant is new for (days)"),
    "new_merchant_volume.factor": N_("Month's volume above (× declared monthly volume)"),
    "max_percent": N_("Most refunds (% of the day's sales)"),
    "min_sales_fen": N_("Only once the day's sales reach (CNY)"),
    "max_km": N_("Farthest from the installation address (km)"),
    "lock_terminal": N_("Also lock the terminal through the TMS"),
}
"""Every threshold of every rule (``risk.schemas``' parameter models), by name or, where
two rules use one name differently, by ``rule.name``."""

ROLE_LABELS = {
    "admin": N_("Administrator"),
    "reviewer": N_("Reviewer"),
    "risk_officer": N_("Risk officer"),
    "operations": N_("Operations"),
    "technician": N_("Technician"),
    "support_agent": N_("Support agent"),
    "auditor": N_("Auditor"),
    "merchant": N_("Merchant"),
}

AUDIT_ACTION_LABELS = {
    "application.created": N_("Application started"),
    "application.updated": N_("Application changed by the applicant"),
    "application.document_added": N_("Document uploaded"),
    "application.submitted": N_("Application submitted"),
    "application.checks_run": N_("Automated checks run"),
    "application.checks_rerun": N_("Automated checks run again"),
    "application.claimed": N_("Taken into review"),
    "application.edited": N_("Corrected by reviewer"),
    "application.info_requested": N_("More information requested"),
    "application.answered": N_("Applicant answered"),
    "application.mobile_code_sent": N_("SMS code sent to the applicant's mobile"),
    "application.mobile_code_wrong": N_("Wrong SMS code entered"),
    "application.mobile_verified": N_("Applicant's mobile number confirmed"),
    "application.consent_given": N_("Applicant gave consent"),
    "application.consent_withdrawn": N_("Applicant withdrew consent"),
    "application.note.phone_confirmation": N_("Phone confirmation recorded"),
    "application.note.site_survey": N_("Site survey recorded"),
    "application.note.note": N_("Review note added"),
    "application.override_requested": N_("Approval over failed checks requested"),
    "application.override_approved": N_("Override approved by risk officer"),
    "application.override_declined": N_("Override declined by risk officer"),
    "application.approved": N_("Application approved"),
    "application.rejected": N_("Application rejected"),
    "application.sla_breached": N_("Review deadline breached"),
    "blacklist.added": N_("Added to the blacklist"),
    "blacklist.removed": N_("Removed from the blacklist"),
    "merchant.created": N_("Merchant created"),
    "merchant.live": N_("Merchant went live"),
    "merchant.closed": N_("Merchant closed"),
    "merchant.business_hours_changed": N_("Merchant's business hours changed"),
    "risk.merchant_graded": N_("Merchant risk grade set"),
    "risk.install_location_set": N_("Terminal's installation location set"),
    "merchant.purged": N_("Merchant's personal data purged after retention"),
    "contract.generated": N_("Contract prepared"),
    "contract.signed_by_merchant": N_("Contract signed by the merchant"),
    "contract.countersigned": N_("Contract countersigned"),
    "contract.withdrawn": N_("Contract withdrawn"),
    "inventory.stock_in": N_("Devices taken into stock"),
    "device.shipped": N_("Device shipped"),
    "device.installed": N_("Device installed"),
    "device.activated": N_("Device activated"),
    "terminal.allocated": N_("Terminal allocated"),
    "terminal.activated": N_("Terminal activated"),
    "terminal.device_swapped": N_("Terminal device swapped"),
    "terminal.key_exported": N_("Terminal key exported"),
    "terminal.key_export_requested": N_("Terminal key export requested"),
    "terminal.key_export_approved": N_("Terminal key export approved"),
    "transport_key.component_entered": N_("Transport key component entered"),
    "transport_key.registered": N_("Transport key registered"),
    "transport_key.refused": N_("Transport key refused"),
    "terminal.locked": N_("Terminal locked"),
    "terminal.unlocked": N_("Terminal unlocked"),
    "terminal.recalled": N_("Terminal recalled"),
    "terminal.parameters_changed": N_("Terminal parameters changed"),
    "work_order.created": N_("Work order created"),
    "work_order.photo_added": N_("Work order photo added"),
    "work_order.sla_breached": N_("Work order deadline breached"),
    "risk.alert_dismissed": N_("Risk alert dismissed"),
    "risk.case_opened": N_("Risk case opened"),
    "risk.case_alert_linked": N_("Alert added to a risk case"),
    "risk.case_transaction_linked": N_("Transaction added to a risk case"),
    "risk.case_note_added": N_("Note added to a risk case"),
    "risk.case_attachment_added": N_("File attached to a risk case"),
    "risk.case_assigned": N_("Risk case assigned"),
    "risk.case_closed": N_("Risk case closed"),
    "risk.merchant_frozen": N_("Merchant frozen"),
    "risk.terminal_frozen": N_("Terminal frozen"),
    "risk.settlement_held": N_("Merchant's settlement held"),
    "risk.transaction_held": N_("Transaction's settlement held"),
    "risk.freeze_released": N_("Freeze or hold released"),
    "risk.report_exported": N_("Suspicious-transaction report exported"),
    "risk.card_blocked": N_("Card blocked"),
    "risk.card_released": N_("Card unblocked"),
    "risk.limit_change_requested": N_("Limit change requested"),
    "risk.limit_change_approved": N_("Limit change approved"),
    "risk.limit_change_rejected": N_("Limit change rejected"),
    "risk.limit_change_withdrawn": N_("Limit change withdrawn"),
    "risk.rule_edited": N_("Risk rule changed"),
    "settlement.reconciliation_exceptions_queued": N_("Reconciliation differences queued"),
    "settlement.reconciliation_exception_resolved": N_("Reconciliation difference resolved"),
    "staff.created": N_("Staff account created"),
    "staff.login": N_("Staff login"),
    "staff.locked": N_("Staff account locked"),
    "staff.login_throttled": N_("Logins paused after repeated failures"),
}
"""Every audit action PosHub records (tests/web/test_labels.py scans the source for them)."""
AUDIT_ENTITY_LABELS = {
    "application": N_("Application"),
    "blacklist": N_("Blacklist"),
    "blacklist_entry": N_("Blacklist entry"),
    "merchant": N_("Merchant"),
    "contract": N_("Contract"),
    "inventory": N_("Inventory"),
    "stock_batch": N_("Stock-in batch"),
    "device": N_("Device"),
    "terminal": N_("Terminal"),
    "transport_key": N_("Transport key"),
    "work_order": N_("Work order"),
    "reconciliation": N_("Reconciliation of a business day"),
    "reconciliation_exception": N_("Reconciliation difference"),
    "risk_alert": N_("Risk alert"),
    "risk_case": N_("Risk case"),
    "risk_blocked_card": N_("Blocked card"),
    "risk_limit_change": N_("Limit change request"),
    "risk_rule": N_("Risk rule"),
    "staff": N_("Staff account"),
    "staff_user": N_("Staff account"),
}
"""Entity types of audit entries; an action missing above is shown by its entity."""
ACTOR_KIND_LABELS = {
    "staff": N_("Staff"),
    "applicant": N_("Applicant"),
    "merchant": N_("Merchant"),
    "system": N_("System"),
}
"""Every ``core.audit.ActorKind``."""


TEMPLATE_GLOBALS = {
    "ROLE_LABELS": ROLE_LABELS,
    "RISK_RULE_LABELS": RISK_RULE_LABELS,
    "RISK_SEVERITY_LABELS": RISK_SEVERITY_LABELS,
    "RISK_ACTION_LABELS": RISK_ACTION_LABELS,
    "ALERT_STATUS_LABELS": ALERT_STATUS_LABELS,
    "CASE_STATUS_LABELS": CASE_STATUS_LABELS,
    "CASE_OUTCOME_LABELS": CASE_OUTCOME_LABELS,
    "FREEZE_KIND_LABELS": FREEZE_KIND_LABELS,
    "CASE_EVENT_LABELS": CASE_EVENT_LABELS,
    "LIMIT_CHANNEL_LABELS": LIMIT_CHANNEL_LABELS,
    "LIMIT_SCOPE_LABELS": LIMIT_SCOPE_LABELS,
    "LIMIT_FIELD_LABELS": LIMIT_FIELD_LABELS,
    "LIMIT_CHANGE_STATUS_LABELS": LIMIT_CHANGE_STATUS_LABELS,
    "RULE_SETTING_ACTION_LABELS": RULE_SETTING_ACTION_LABELS,
    "DOCUMENT_LABELS": {k.value: v for k, v in DOCUMENT_LABELS.items()},
    "REJECTION_REASONS": REJECTION_REASONS,
    "KIND_LABELS": TERMINAL_KIND_LABELS,
    "STATUS_LABELS": APPLICATION_STATUS_LABELS,
    "KIND_OF_APPLICANT": APPLICANT_KIND_LABELS,
    "EVENT_LABELS": EVENT_LABELS,
    "CHECK_STATUS_LABELS": CHECK_STATUS_LABELS,
    "SLA_LABELS": SLA_LABELS,
    "BLACKLIST_KIND_LABELS": BLACKLIST_KIND_LABELS,
    "MERCHANT_STATUS_LABELS": MERCHANT_STATUS_LABELS,
    "NOTE_OUTCOME_LABELS": NOTE_OUTCOME_LABELS,
    "CONTRACT_STATUS_LABELS": CONTRACT_STATUS_LABELS,
    "DEVICE_STATUS_LABELS": DEVICE_STATUS_LABELS,
    "TERMINAL_STATUS_LABELS": TERMINAL_STATUS_LABELS,
    "SETTLEMENT_CYCLE_LABELS": SETTLEMENT_CYCLE_LABELS,
    "TXN_KIND_LABELS": TXN_KIND_LABELS,
    "TXN_STATUS_LABELS": TXN_STATUS_LABELS,
    "UPSTREAM_LABELS": UPSTREAM_LABELS,
    "BATCH_STATUS_LABELS": BATCH_STATUS_LABELS,
    "SETTLEMENT_RESULT_LABELS": SETTLEMENT_RESULT_LABELS,
    "KEY_MODE_LABELS": KEY_MODE_LABELS,
    "RESPONSE_CODE_LABELS": RESPONSE_CODE_LABELS,
    "AUDIT_ACTION_LABELS": AUDIT_ACTION_LABELS,
    "AUDIT_ENTITY_LABELS": AUDIT_ENTITY_LABELS,
    "ACTOR_KIND_LABELS": ACTOR_KIND_LABELS,
}
