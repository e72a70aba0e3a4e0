"""Notification texts (English msgids, translated into the recipient's language)."""

from __future__ import annotations

from poshub.core.errors import N_

TEMPLATES: dict[str, str] = {
    "application_created": N_(
        "PosHub: your application {tracking_number} is saved as a draft. "
        "Upload your documents and submit it: {url}"
    ),
    "mobile_confirmed": N_(
        "PosHub: this number now receives the news of application {tracking_number}. "
        "Follow it here: {url}"
    ),
    "application_submitted": N_(
        "PosHub: we received application {tracking_number}. Review normally takes up to "
        "{target_days} working days (by {target_date})."
    ),
    "review_started": N_(
        "PosHub: a reviewer is now checking application {tracking_number}. We may call you "
        "to confirm your details."
    ),
    "info_requested": N_(
        "PosHub: application {tracking_number} needs more information from you: {message} "
        "Reply here: {url}"
    ),
    "application_approved": N_(
        "PosHub: application {tracking_number} is approved. Your merchant number is {mid}. "
        "We will contact you about the contract."
    ),
    "application_rejected": N_(
        "PosHub: application {tracking_number} was not approved. Reasons: {reasons}."
    ),
    "contract_ready": N_(
        "PosHub: your merchant contract {contract_number} (version {version}) is ready. "
        "Review and sign it here: {url}"
    ),
    "contract_signed": N_(
        "PosHub: contract {contract_number} (version {version}) is signed by both parties and "
        "takes effect on {effective_from}."
    ),
}
