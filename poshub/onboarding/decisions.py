"""Reason codes for decisions and the wording of automated checks (data, translated at the edge)."""

from __future__ import annotations

from poshub.core.errors import N_

REJECTION_REASONS: dict[str, str] = {
    "documents_invalid": N_("Documents are missing, unreadable or not authentic"),
    "identity_not_verified": N_("Identity could not be verified"),
    "licence_invalid": N_("Business licence is invalid or expired"),
    "account_mismatch": N_("Settlement account does not belong to the applicant"),
    "blacklisted": N_("Applicant is on the risk blacklist"),
    "duplicate": N_("Duplicate of an existing application or merchant"),
    "prohibited_business": N_("Business category not accepted"),
    "site_survey_failed": N_("Site survey found the premises unsuitable"),
    "phone_not_confirmed": N_("Phone confirmation failed"),
    "credit_record": N_("Credit record does not meet our requirements"),
    "no_response": N_("Applicant did not provide the requested information"),
    "other": N_("Other (see note)"),
}

CHECK_LABELS: dict[str, str] = {
    "resident_id": N_("Resident ID valid, holder an adult"),
    "uscc": N_("Unified social credit code valid"),
    "licence": N_("Business licence in force"),
    "mobile": N_("Mainland mobile number"),
    "account_number": N_("Settlement account number"),
    "account_name": N_("Account holder matches applicant"),
    "duplicates": N_("No open application or live merchant with the same ID or code"),
    "blacklist": N_("Not on the blacklist"),
    "terminal_count": N_("Terminal count within limit"),
    "mcc_risk": N_("Merchant category risk"),
    "documents": N_("Required documents provided"),
    "real_name": N_("Real-name verification (name + ID)"),
    "bank_card_four": N_("Bank card four-element verification"),
}

CHECK_DETAILS: dict[str, str] = {
    "ok": N_("Passed."),
    "duplicates.application": N_(
        "Open application {tracking_number} has the same ID number or credit code."
    ),
    "duplicates.merchant": N_("Merchant {mid} has the same ID number or credit code."),
    "blacklist.hit": N_("Blacklisted {kinds}: {reasons}"),
    "mcc_risk.low": N_("Low-risk category {mcc} ({description})."),
    "mcc_risk.standard": N_("Standard-risk category {mcc} ({description})."),
    "mcc_risk.high": N_(
        "High-risk category {mcc} ({description}): a site survey is required before approval."
    ),
    "documents.missing": N_("Missing: {kinds}"),
    "verification.match": N_("Provider {provider} confirmed the details (reference {reference})."),
    "verification.mismatch": N_(
        "Provider {provider} reports the details do not match (reference {reference})."
    ),
    "verification.unavailable": N_(
        "The verification provider did not answer; rerun the checks later."
    ),
    "licence.expiring": N_("The licence expires on {expiry}, within {days} days."),
    "licence.long_term": N_("Long-term licence."),
    "not_applicable": N_("Not applicable to this applicant kind."),
}

LICENCE_EXPIRY_WARNING_DAYS = 30
"""A licence that ends within this many days is flagged to the reviewer."""
