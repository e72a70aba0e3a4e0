"""The application state machine (DESIGN §3), as data and pure functions."""

from __future__ import annotations

from enum import StrEnum

from poshub.core.errors import N_, Conflict


class ApplicationStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    NEEDS_INFO = "needs_info"
    PENDING_OVERRIDE = "pending_override"
    """The reviewer approved over failed or pending checks a reviewer alone may not
    override (``decisions.OVERRIDE_CHECKS``): a risk officer must approve or decline."""
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"

    @property
    def is_open(self) -> bool:
        """Still in progress: counts for the duplicate check and the review queue."""
        return self in OPEN_STATUSES

    @property
    def applicant_may_edit(self) -> bool:
        return self in (ApplicationStatus.DRAFT, ApplicationStatus.NEEDS_INFO)


OPEN_STATUSES = frozenset(
    {
        ApplicationStatus.SUBMITTED,
        ApplicationStatus.UNDER_REVIEW,
        ApplicationStatus.NEEDS_INFO,
        ApplicationStatus.PENDING_OVERRIDE,
    }
)

REVIEW_CLOCK_STATUSES = frozenset(
    {
        ApplicationStatus.SUBMITTED,
        ApplicationStatus.UNDER_REVIEW,
        ApplicationStatus.PENDING_OVERRIDE,
    }
)
"""The acquirer is working on the application: the review SLA clock runs."""

TRANSITIONS: dict[ApplicationStatus, frozenset[ApplicationStatus]] = {
    ApplicationStatus.DRAFT: frozenset({ApplicationStatus.SUBMITTED, ApplicationStatus.WITHDRAWN}),
    ApplicationStatus.SUBMITTED: frozenset(
        {ApplicationStatus.UNDER_REVIEW, ApplicationStatus.WITHDRAWN}
    ),
    ApplicationStatus.UNDER_REVIEW: frozenset(
        {
            ApplicationStatus.NEEDS_INFO,
            ApplicationStatus.PENDING_OVERRIDE,
            ApplicationStatus.APPROVED,
            ApplicationStatus.REJECTED,
            ApplicationStatus.WITHDRAWN,
        }
    ),
    # A risk officer approves (the merchant is created) or declines (back to the reviewer).
    ApplicationStatus.PENDING_OVERRIDE: frozenset(
        {ApplicationStatus.APPROVED, ApplicationStatus.UNDER_REVIEW}
    ),
    ApplicationStatus.NEEDS_INFO: frozenset(
        {ApplicationStatus.UNDER_REVIEW, ApplicationStatus.REJECTED, ApplicationStatus.WITHDRAWN}
    ),
    ApplicationStatus.APPROVED: frozenset(),
    ApplicationStatus.REJECTED: frozenset(),
    ApplicationStatus.WITHDRAWN: frozenset(),
}


def applicant_status(status: str) -> str:
    """The status the applicant sees: a pending override is still "under review" to them
    (that a check failed and a second person is looking is the acquirer's business)."""
    if status == ApplicationStatus.PENDING_OVERRIDE:
        return str(ApplicationStatus.UNDER_REVIEW)
    return status


def allowed_next(current: ApplicationStatus) -> frozenset[ApplicationStatus]:
    return TRANSITIONS[current]


def ensure_transition(current: str, target: ApplicationStatus) -> ApplicationStatus:
    """Return ``target`` if the move is allowed, else raise 409 naming the allowed moves."""
    state = ApplicationStatus(current)
    if target not in TRANSITIONS[state]:
        allowed = ", ".join(sorted(TRANSITIONS[state])) or "none"
        raise Conflict(
            N_(
                "An application in state {current} cannot move to {target}; allowed next: {allowed}."
            ),
            code="invalid_transition",
            current=str(state),
            target=str(target),
            allowed=allowed,
        )
    return target
