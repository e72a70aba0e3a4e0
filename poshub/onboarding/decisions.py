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
    "id_expiry": N_("Resident ID card in force"),
    "settlement_account": N_("Settlement account type and holder allowed for this applicant"),
    "beneficial_owners": N_("Beneficial owners named"),
    "duplicates": N_("No open application or live merchant with the same ID or code"),
    "blacklist": N_("Not on the blacklist"),
    "terminal_count": N_("Terminal count within limit"),
    "mcc_risk": N_("Merchant category risk"),
    "documents": N_("Required documents provided"),
    "real_name": N_("Real-name verification (name + ID)"),
    "bank_card_four": N_("Bank card four-element verification"),
    "external_list": N_("Not on an external risk list"),
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
    "verification.no_consent": N_(
        "Not sent to the verification provider: the applicant has not consented (or withdrew "
        "consent) to sharing identity and bank data with it."
    ),
    "licence.expiring": N_("The licence expires on {expiry}, within {days} days."),
    "licence.long_term": N_("Long-term licence."),
    "not_applicable": N_("Not applicable to this applicant kind."),
    "external_list.clear": N_("Provider {provider} found no entry (reference {reference})."),
    "external_list.hit": N_(
        "Provider {provider} reports an entry on list {list} (reference {reference})."
    ),
    "external_list.unavailable": N_(
        "The risk list provider {provider} did not answer; asked again automatically from "
        "{retry_at}. Never counted as clear."
    ),
}

LICENCE_EXPIRY_WARNING_DAYS = 30
"""A licence that ends within this many days is flagged to the reviewer."""

OVERRIDE_CHECKS: frozenset[str] = frozenset(
    {"blacklist", "duplicates", "real_name", "bank_card_four", "external_list"}
)
"""Checks a reviewer alone may not approve over while they fail or are pending: the
approval then waits for a risk officer (maker-checker, docs/onboarding.md). Other failed
or pending checks need the reviewer's written note only."""

SITE_SURVEY_PASSED = "feasible"
"""The outcome of a site survey that lets a high-risk application be approved."""

SITE_SURVEY_OUTCOMES = frozenset({"feasible", "not_feasible"})
"""The outcomes a site survey on an application's timeline may record."""


def site_survey_gap(
    survey_required: bool, surveys: list[tuple[str | None, str | None]], site: str
) -> str | None:
    """Why a site survey does not yet allow approval, as a reason code, or None.

    ``surveys`` are the application's site-survey records, oldest first, as
    (outcome, site surveyed). The latest one decides: it must have found the premises
    ``feasible`` and be of the address the application names now (``site``), so a survey
    recorded before the shop moved, or overtaken by a later unfavourable one, counts for
    nothing.
    """
    if not survey_required:
        return None
    if not surveys:
        return "site_survey_missing"
    outcome, surveyed = surveys[-1]
    if outcome != SITE_SURVEY_PASSED:
        return "site_survey_not_passed"
    if surveyed != site:
        return "site_survey_outdated"
    return None


SITE_SURVEY_GAPS: dict[str, str] = {
    "site_survey_missing": N_(
        "A site survey is required for merchant category {mcc}: record a site survey of "
        "the premises with the outcome 'feasible' before approving."
    ),
    "site_survey_not_passed": N_(
        "A site survey is required for merchant category {mcc}: the latest site survey "
        "did not find the premises feasible."
    ),
    "site_survey_outdated": N_(
        "A site survey is required for merchant category {mcc}: the latest site survey "
        "was of another address; survey the address the application names now."
    ),
}
