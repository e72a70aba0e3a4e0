"""Onboarding use cases: apply, upload, submit, check, review, decide.

Every function works inside the caller's transaction and never commits. Each state
change writes the audit log and, where the applicant should hear of it, a
notification into the outbox.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from poshub.catalog.service import ActiveModelCodes
from poshub.core import audit, ids, limits, regions
from poshub.core.audit import Actor, ActorKind
from poshub.core.calendar import working_days_between
from poshub.core.clock import business_date, local_time
from poshub.core.crypto import KeyVault, mask_resident_id, mask_tail
from poshub.core.errors import (
    N_,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PosHubError,
    TooManyRequests,
    Unavailable,
    ValidationFailed,
)
from poshub.core.i18n import Translator
from poshub.core.settings import Settings
from poshub.core.storage import ContentStore
from poshub.merchants import hours
from poshub.merchants import repository as merchant_repository
from poshub.merchants import service as merchant_service
from poshub.merchants.models import Merchant
from poshub.notify import service as notify
from poshub.notify.adapters import DeliveryFailed, Notifier
from poshub.onboarding import consent, mobile, repository, rules, sla
from poshub.onboarding.decisions import (
    LICENCE_EXPIRY_WARNING_DAYS,
    OVERRIDE_CHECKS,
    REJECTION_REASONS,
    SITE_SURVEY_GAPS,
    SITE_SURVEY_OUTCOMES,
    site_survey_gap,
)
from poshub.onboarding.documents import Rejection, safe_file_name, screen
from poshub.onboarding.models import (
    ApplicantKind,
    Application,
    ApplicationCheck,
    ApplicationEditor,
    ApplicationEvent,
    ApplicationOverride,
    BlacklistEntry,
    BlacklistKind,
    CheckStatus,
    ConsentAction,
    ConsentKind,
    Document,
    EventKind,
    MobileChallenge,
    OverrideStatus,
)
from poshub.onboarding.schemas import (
    AddressIn,
    ApplicationIn,
    ApplicationPatch,
    ApproveIn,
    BlacklistIn,
    ConsentsIn,
    NoteIn,
    OverrideDecisionIn,
    RejectIn,
    StaffEditIn,
)
from poshub.onboarding.states import ApplicationStatus, ensure_transition
from poshub.onboarding.verification import (
    ProviderUnavailable,
    VerificationOutcome,
    VerificationProvider,
    VerificationResult,
)
from poshub.risk import grading, lists
from poshub.risk import repository as risk_repository
from poshub.risk.lists import ListSubject, RiskListProvider, SandboxListProvider, SubjectKind
from poshub.risk.models import ListCheckStatus
from poshub.staff.service import Principal

ID_NUMBER_CONTEXT = "applications.id_number"
ACCOUNT_NUMBER_CONTEXT = "applications.account_number"
AGENT_ID_NUMBER_CONTEXT = "applications.agent_id_number"
OWNER_ID_NUMBER_CONTEXT = "application_beneficial_owners.id_number"
TOKEN_PURPOSE = {
    BlacklistKind.ID_NUMBER: "resident_id",
    BlacklistKind.ACCOUNT_NUMBER: "account_number",
    BlacklistKind.USCC: "uscc",
    BlacklistKind.MOBILE: "mobile",
}


@dataclass(frozen=True)
class OnboardingDeps:
    """What the use cases need from outside the database."""

    settings: Settings
    vault: KeyVault
    store: ContentStore
    verifier: VerificationProvider
    model_codes: ActiveModelCodes = dataclasses.field(default_factory=ActiveModelCodes)
    """Orderable terminal models, cached for a few seconds (see ActiveModelCodes)."""
    risk_lists: RiskListProvider = dataclasses.field(default_factory=SandboxListProvider)
    """External risk lists checked at onboarding (``POSHUB_RISK_LIST_PROVIDER``)."""


def hash_access_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def applicant_actor(application: Application) -> Actor:
    return Actor(ActorKind.APPLICANT, application.id)


# --- Validation -----------------------------------------------------------------


def _violation(violation: rules.RuleViolation, prefix: str = "") -> FieldError:
    """The field error of a rule's violation; ``prefix`` places it inside a nested field
    (``agent.`` turns ``id_number`` into ``agent.id_number``)."""
    field = prefix + violation.code.rsplit(".", 1)[0]
    params = dict(violation.params)
    if violation.code == "id_number.minor":
        params.setdefault("adult_age", str(limits.ADULT_AGE_YEARS))
    return FieldError(field, violation.code, rules.MESSAGES[violation.code], params)


def validate_fields(
    session: Session,
    data: ApplicationIn,
    today: dt.date,
    model_codes: ActiveModelCodes,
    *,
    prohibited_mccs: Mapping[str, str] = limits.PROHIBITED_MCCS,
) -> tuple[list[FieldError], str | None]:
    """Every rule an application's fields must meet; returns errors and the resolved region code."""
    errors: list[FieldError] = []

    def add(violation: rules.RuleViolation | None) -> None:
        if violation is not None:
            errors.append(_violation(violation))

    add(rules.check_resident_id(data.id_number, today))
    errors.extend(compliance_errors(data, today, prohibited_mccs))
    add(rules.check_mobile(data.mobile))
    kind = ApplicantKind(data.applicant_kind)
    if kind.needs_licence and not data.uscc:
        errors.append(
            FieldError(
                "uscc",
                "uscc.required",
                N_(
                    "A business applicant must give the unified social credit code from its licence."
                ),
            )
        )
    if data.uscc:
        add(rules.check_uscc(data.uscc))
    if kind.needs_licence:
        if data.licence_expiry is None and not data.licence_long_term:
            errors.append(
                FieldError(
                    "licence_expiry",
                    "licence_expiry.required",
                    N_("Give the licence's expiry date, or mark it as long-term."),
                )
            )
        elif data.licence_expiry is not None and data.licence_long_term:
            errors.append(
                FieldError(
                    "licence_expiry",
                    "licence_expiry.conflict",
                    N_("A long-term licence has no expiry date; give one or the other."),
                )
            )
        else:
            add(rules.check_licence_expiry(data.licence_expiry, today))
    if data.established_on is not None and data.established_on > today:
        errors.append(
            FieldError(
                "established_on",
                "established_on.future",
                N_("The founding date cannot be in the future."),
            )
        )
    add(rules.check_mcc(data.mcc))
    errors.extend(
        hours.hours_errors(hours.normalise(data.opening_time), hours.normalise(data.closing_time))
    )
    region_code = _resolve_region(data.address, errors)
    seen: set[str] = set()
    codes = [line.model_code for line in data.terminals]
    known = model_codes.get(session)
    for index, code in enumerate(codes):
        if code in seen:
            errors.append(
                FieldError(
                    f"terminals[{index}].model_code",
                    "terminals.duplicate_model",
                    N_("Model {model_code} is listed twice; give one line per model."),
                    {"model_code": code},
                )
            )
        elif code not in known:
            errors.append(
                FieldError(
                    f"terminals[{index}].model_code",
                    "terminals.model_unknown",
                    N_("{model_code} is not a terminal model in our catalogue."),
                    {"model_code": code},
                )
            )
        seen.add(code)
    return errors, region_code


def compliance_errors(
    data: ApplicationIn, today: dt.date, prohibited_mccs: Mapping[str, str]
) -> list[FieldError]:
    """The merchant compliance rules (docs/onboarding.md, "Compliance"): ID card validity,
    the credit code's type against the applicant kind, prohibited categories, who the
    settlement account may belong to, the agent and the beneficial owners."""
    errors: list[FieldError] = []

    def add(violation: rules.RuleViolation | None, prefix: str = "") -> None:
        if violation is not None:
            errors.append(_violation(violation, prefix))

    kind = ApplicantKind(data.applicant_kind)
    add(rules.check_id_expiry(data.id_expiry, data.id_long_term, data.id_number, today))
    if data.uscc and rules.check_uscc(data.uscc) is None:
        add(rules.check_uscc_kind(data.uscc, str(kind)))
    add(rules.check_mcc_allowed(data.mcc, prohibited_mccs))
    account = data.settlement_account
    for violation in rules.check_settlement_account(
        str(kind),
        str(account.account_type),
        account.account_name,
        account.account_number,
        legal_name=data.legal_name,
        business_name=data.business_name,
    ):
        add(violation)
    agent_id = data.agent.id_number if data.agent is not None else None
    found = rules.check_agent(data.applied_by_agent, agent_id, data.id_number, today)
    owners = [
        rules.Owner(owner.id_number, str(owner.basis), owner.share_percent)
        for owner in data.beneficial_owners
    ]
    found += rules.check_beneficial_owners(str(kind), owners, today)
    errors.extend(_field_violation(path, violation) for path, violation in found)
    return errors


def _field_violation(path: str, violation: rules.RuleViolation) -> FieldError:
    return dataclasses.replace(_violation(violation), field=path)


def _resolve_region(address: AddressIn, errors: list[FieldError]) -> str | None:
    try:
        regions.resolve_area_code(address.province, address.district, address.region_code)
    except regions.RegionError as exc:
        field = exc.code.rsplit(".", 1)[0]
        errors.append(FieldError(field, exc.code, rules.MESSAGES[exc.code], dict(exc.params)))
        return None
    if address.region_code:
        return address.region_code
    candidates = regions.find(address.province, address.district)
    return candidates[0].code if candidates else None


def _raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed(errors)


# --- Applicant: create, edit, documents, submit, answer -------------------------


def _apply_fields(
    application: Application, data: ApplicationIn, region_code: str, vault: KeyVault
) -> None:
    id_number = rules.normalize_resident_id(data.id_number)
    account_number = rules.normalize_account_number(data.settlement_account.account_number)
    application.applicant_kind = str(data.applicant_kind)
    application.legal_name = data.legal_name
    application.id_number_enc = vault.encrypt(id_number, context=ID_NUMBER_CONTEXT)
    application.id_number_token = vault.token(
        id_number, purpose=TOKEN_PURPOSE[BlacklistKind.ID_NUMBER]
    )
    application.id_number_masked = mask_resident_id(id_number)
    application.mobile = rules.normalize_mobile(data.mobile)
    application.business_name = data.business_name
    application.uscc = rules.normalize_uscc(data.uscc) if data.uscc else None
    application.licence_expiry = data.licence_expiry
    application.established_on = data.established_on
    application.mcc = data.mcc
    application.province = data.address.province
    application.city = data.address.city
    application.district = data.address.district
    application.address_detail = data.address.detail
    application.region_code = region_code
    application.bank_name = data.settlement_account.bank_name
    application.account_name = data.settlement_account.account_name
    application.account_number_enc = vault.encrypt(account_number, context=ACCOUNT_NUMBER_CONTEXT)
    application.account_number_token = vault.token(
        account_number, purpose=TOKEN_PURPOSE[BlacklistKind.ACCOUNT_NUMBER]
    )
    application.account_number_masked = mask_tail(account_number)
    application.account_type = str(data.settlement_account.account_type)
    application.expected_monthly_volume_fen = data.expected_monthly_volume_fen
    application.opening_time = hours.normalise(data.opening_time)
    application.closing_time = hours.normalise(data.closing_time)
    application.id_expiry = data.id_expiry
    application.id_long_term = data.id_long_term
    application.applied_by_agent = data.applied_by_agent
    agent = data.agent if data.applied_by_agent else None
    agent_id = rules.normalize_resident_id(agent.id_number) if agent else None
    application.agent_name = agent.name if agent else None
    application.agent_id_number_enc = (
        vault.encrypt(agent_id, context=AGENT_ID_NUMBER_CONTEXT) if agent_id else None
    )
    application.agent_id_number_token = (
        vault.token(agent_id, purpose=TOKEN_PURPOSE[BlacklistKind.ID_NUMBER]) if agent_id else None
    )
    application.agent_id_number_masked = mask_resident_id(agent_id) if agent_id else None


def _replace_beneficial_owners(
    session: Session, application: Application, data: ApplicationIn, vault: KeyVault
) -> None:
    """Store the owners like the applicant's ID number: encrypted, a token and masked."""
    rows = []
    for owner in data.beneficial_owners:
        number = rules.normalize_resident_id(owner.id_number)
        rows.append(
            {
                "name": owner.name,
                "id_number_enc": vault.encrypt(number, context=OWNER_ID_NUMBER_CONTEXT),
                "id_number_token": vault.token(
                    number, purpose=TOKEN_PURPOSE[BlacklistKind.ID_NUMBER]
                ),
                "id_number_masked": mask_resident_id(number),
                "basis": str(owner.basis),
                "share_percent": owner.share_percent,
            }
        )
    repository.replace_beneficial_owners(session, application.id, rows)


def _replace_terminal_lines(
    session: Session, application: Application, data: ApplicationIn, *, new: bool = False
) -> None:
    repository.replace_terminal_lines(
        session,
        application.id,
        [(line.model_code, line.count) for line in data.terminals],
        new=new,
    )


def create_application(
    session: Session,
    deps: OnboardingDeps,
    data: ApplicationIn,
    *,
    locale: str,
    now: dt.datetime,
    source_address: str = "",
) -> tuple[Application, str]:
    """Validate and store a draft; return it with the applicant's access token (shown once).
    Needs the applicant's agreement to the current privacy notice (``consents``).

    The mobile number is not proved yet: no message goes to it (not even the tracking link)
    until the applicant confirms it with a one-time code (:func:`confirm_mobile`), and the
    application cannot be submitted before. Applications per number and per source address
    are limited (429, :func:`ensure_application_allowed`)."""
    ensure_application_allowed(session, deps.settings, data.mobile, source_address, now=now)
    today = business_date(now)
    errors, region_code = validate_fields(
        session, data, today, deps.model_codes, prohibited_mccs=deps.settings.prohibited_mccs
    )
    errors.extend(consent_errors(data.consents, required=(ConsentKind.PRIVACY_NOTICE,)))
    _raise_if(errors)
    assert region_code is not None
    token = ids.new_access_token()
    application = Application(
        id=ids.new_id(),
        tracking_number=ids.new_tracking_number(today),
        status=str(ApplicationStatus.DRAFT),
        access_token_hash=hash_access_token(token),
        locale=locale,
        created_at=now,
        updated_at=now,
        submitted_at=None,
        sla_start_date=None,
        sla_paused_working_days=0,
        info_requested_at=None,
        sla_target_date=None,
        sla_breach_date=None,
        sla_breach_reported_at=None,
        assigned_reviewer_id=None,
        decided_at=None,
        decided_by_id=None,
        decision_reasons=None,
        decision_note=None,
        check_run=0,
        checks_requested_at=None,
        purged_at=None,
        mobile_verified_at=None,
        source_address=source_address[:SOURCE_ADDRESS_LENGTH_MAX] or None,
    )
    _apply_fields(application, data, region_code, deps.vault)
    repository.insert_application(session, application)
    _replace_terminal_lines(session, application, data, new=True)
    _replace_beneficial_owners(session, application, data, deps.vault)
    assert data.consents is not None
    _record_consents(
        session, application, data.consents, source_address=source_address, now=now, event=False
    )
    audit.record(
        session,
        applicant_actor(application),
        "application.created",
        "application",
        application.id,
        {
            "tracking_number": application.tracking_number,
            "applicant_kind": application.applicant_kind,
        },
    )
    return application, token


def ensure_application_allowed(
    session: Session, settings: Settings, raw_mobile: str, source_address: str, *, now: dt.datetime
) -> None:
    """Refuse (429, naming the limit) a new application past the applications allowed per
    mobile number or per source address in 24 hours."""
    since = mobile.window_start(now)
    if rules.check_mobile(raw_mobile) is None:
        number = rules.normalize_mobile(raw_mobile)
        limit = settings.applications_per_mobile_per_day
        if repository.applications_started_since(session, since, mobile=number) >= limit:
            raise TooManyRequests(
                mobile.APPLICATIONS_PER_MOBILE,
                code="rate_limited.applications_per_mobile",
                mobile=mobile.mask_mobile(number),
                limit=str(limit),
            )
    if source_address:
        limit = settings.applications_per_address_per_day
        source = source_address[:SOURCE_ADDRESS_LENGTH_MAX]
        if repository.applications_started_since(session, since, source=source) >= limit:
            raise TooManyRequests(
                mobile.APPLICATIONS_PER_ADDRESS,
                code="rate_limited.applications_per_address",
                limit=str(limit),
            )


def _notify_applicant(
    session: Session, application: Application, template: str, params: dict[str, object]
) -> None:
    """Queue a message to the applicant, in the language they applied in. Nothing goes to a
    mobile number the applicant has not proved (:func:`confirm_mobile`): the message is
    dropped, and the tracking page shows the same news."""
    if application.mobile_verified_at is None:
        return
    notify.enqueue(
        session,
        subject_type="application",
        subject_id=application.id,
        recipient=application.mobile,
        template=template,
        params=params,
        locale=application.locale,
    )


def tracking_url(settings: Settings, application: Application) -> str:
    return f"{settings.base_url}/apply/track/{application.tracking_number}"


def current_input(
    session: Session, deps: OnboardingDeps, application: Application
) -> ApplicationIn:
    """The stored application as input data (decrypting what was encrypted)."""
    return ApplicationIn(
        applicant_kind=ApplicantKind(application.applicant_kind),
        legal_name=application.legal_name,
        id_number=deps.vault.decrypt(application.id_number_enc, context=ID_NUMBER_CONTEXT),
        mobile=application.mobile,
        business_name=application.business_name,
        uscc=application.uscc,
        licence_expiry=application.licence_expiry,
        licence_long_term=application.licence_expiry is None
        and ApplicantKind(application.applicant_kind).needs_licence,
        established_on=application.established_on,
        mcc=application.mcc,
        address=AddressIn(
            province=application.province,
            city=application.city,
            district=application.district,
            detail=application.address_detail,
            region_code=application.region_code,
        ),
        settlement_account={
            "bank_name": application.bank_name,
            "account_name": application.account_name,
            "account_number": deps.vault.decrypt(
                application.account_number_enc, context=ACCOUNT_NUMBER_CONTEXT
            ),
            "account_type": application.account_type,
        },
        expected_monthly_volume_fen=application.expected_monthly_volume_fen,
        opening_time=application.opening_time,
        closing_time=application.closing_time,
        terminals=[
            {"model_code": t.model_code, "count": t.count}
            for t in repository.terminal_lines(session, application.id)
        ],
        id_expiry=application.id_expiry,
        id_long_term=application.id_long_term,
        applied_by_agent=application.applied_by_agent,
        agent={
            "name": application.agent_name,
            "id_number": deps.vault.decrypt(
                application.agent_id_number_enc, context=AGENT_ID_NUMBER_CONTEXT
            ),
        }
        if application.applied_by_agent
        and application.agent_name
        and application.agent_id_number_enc
        else None,
        beneficial_owners=[
            {
                "name": owner.name,
                "id_number": deps.vault.decrypt(
                    owner.id_number_enc, context=OWNER_ID_NUMBER_CONTEXT
                ),
                "basis": owner.basis,
                "share_percent": owner.share_percent,
            }
            for owner in repository.beneficial_owners(session, application.id)
        ],
    )


def update_application(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    patch: ApplicationPatch,
    *,
    now: dt.datetime,
) -> Application:
    """The applicant corrects their application while it is a draft or needs information."""
    if not ApplicationStatus(application.status).applicant_may_edit:
        raise Conflict(
            N_(
                "The application can be changed only while it is a draft or more information was requested."
            ),
            code="not_editable",
        )
    changes = patch.model_dump(exclude_unset=True)
    if not changes:
        return application
    merged = current_input(session, deps, application).model_dump()
    if "address" in changes and "region_code" not in (
        patch.address.model_fields_set if patch.address else set()
    ):
        changes["address"]["region_code"] = None
    if changes.get("licence_expiry") is not None:
        merged["licence_long_term"] = False
    if changes.get("id_expiry") is not None:
        merged["id_long_term"] = False
    elif changes.get("id_long_term"):
        merged["id_expiry"] = None
    if changes.get("applied_by_agent") is False and "agent" not in changes:
        merged["agent"] = None
    merged.update(changes)
    data = ApplicationIn.model_validate(merged)
    errors, region_code = validate_fields(
        session,
        data,
        business_date(now),
        deps.model_codes,
        prohibited_mccs=deps.settings.prohibited_mccs,
    )
    _raise_if(errors)
    assert region_code is not None
    proved_mobile = application.mobile
    _apply_fields(application, data, region_code, deps.vault)
    if application.mobile != proved_mobile:
        # A new number is unproved: nothing goes to it until the applicant confirms it.
        application.mobile_verified_at = None
    if "terminals" in changes:
        _replace_terminal_lines(session, application, data)
    if "beneficial_owners" in changes:
        _replace_beneficial_owners(session, application, data, deps.vault)
    application.updated_at = now
    audit.record(
        session,
        applicant_actor(application),
        "application.updated",
        "application",
        application.id,
        {"fields": sorted(changes)},
    )
    return application


def add_document(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    *,
    kind: str,
    file_name: str | None,
    content: bytes,
    uploaded_by: Actor,
    now: dt.datetime,
) -> Document:
    errors: list[FieldError] = []
    try:
        document_kind = rules.DocumentKind(kind)
    except ValueError:
        errors.append(
            FieldError(
                "kind",
                "document.kind_unknown",
                N_("Unknown document kind {kind}; choose one of: {allowed}."),
                {
                    "kind": kind[:40],
                    "allowed": ", ".join(k.value for k in rules.ACCEPTED_DOCUMENT_KINDS),
                },
            )
        )
    else:
        if document_kind in rules.RETIRED_DOCUMENT_KINDS:
            errors.append(
                FieldError(
                    "kind",
                    "document.kind_retired",
                    N_(
                        "A tax registration certificate is no longer needed: since the "
                        "three-in-one reform (三证合一) the business licence replaces it."
                    ),
                )
            )
    # Read for real (images re-encoded, PDFs walked for active content); what is kept is
    # the screened bytes, never the upload as sent.
    verdict = screen(content)
    if isinstance(verdict, Rejection):
        errors.append(FieldError("file", verdict.code, verdict.message, verdict.params))
    _raise_if(errors)
    assert not isinstance(verdict, Rejection)
    if not ApplicationStatus(application.status).applicant_may_edit:
        raise Conflict(
            N_(
                "Documents can be added only while the application is a draft or more information was requested."
            ),
            code="not_editable",
        )
    if repository.document_count(session, application.id) >= limits.DOCUMENTS_PER_APPLICATION_MAX:
        raise Conflict(
            N_("This application already has {limit} documents, the most allowed."),
            code="too_many_documents",
            limit=str(limits.DOCUMENTS_PER_APPLICATION_MAX),
        )
    digest = deps.store.put(verdict.data)
    values = {
        "id": ids.new_id(),
        "application_id": application.id,
        "kind": str(document_kind),
        "content_type": verdict.content_type,
        "sha256": digest,
        "size_bytes": len(verdict.data),
        "file_name": safe_file_name(file_name),
        "uploaded_at": now,
        "uploaded_by": uploaded_by.id,
    }
    repository.insert_document(session, values)
    repository.update_application(session, application, updated_at=now)
    document = Document(**values)
    audit.record(
        session,
        uploaded_by,
        "application.document_added",
        "application",
        application.id,
        {
            "kind": document.kind,
            "sha256": digest,
            "content_type": verdict.content_type,
            "size_bytes": len(verdict.data),
        },
    )
    return document


def required_documents(application: Application, today: dt.date) -> frozenset[rules.DocumentKind]:
    return rules.required_documents(
        application.applicant_kind,
        application.established_on,
        today,
        account_type=application.account_type,
        by_agent=application.applied_by_agent,
    )


def compliance_gaps(
    application: Application, beneficial_owner_count: int, today: dt.date
) -> list[FieldError]:
    """What must hold again at submission (and at review): an ID card still in force,
    and an enterprise's beneficial owners named."""
    errors: list[FieldError] = []
    violation = rules.check_id_expiry(application.id_expiry, application.id_long_term, "", today)
    if violation is not None:
        errors.append(_violation(violation))
    violation = rules.check_beneficial_owners_named(
        application.applicant_kind, beneficial_owner_count
    )
    if violation is not None:
        errors.append(_violation(violation))
    return errors


def missing_documents(
    session: Session, application: Application, today: dt.date
) -> list[rules.DocumentKind]:
    provided = repository.document_kinds(session, application.id)
    return sorted(k for k in required_documents(application, today) if k.value not in provided)


def missing_document_errors(missing: Sequence[rules.DocumentKind]) -> list[FieldError]:
    """A field error naming each missing document."""
    return [
        FieldError(
            f"documents.{kind.value}",
            "documents.missing",
            N_("Please upload: {label}."),
            {"label": rules.DOCUMENT_LABELS[kind]},
        )
        for kind in missing
    ]


@dataclass(frozen=True)
class PreparedSubmission:
    """What a submission decided before writing: checked in a read-only transaction, so
    the write lock is held only for the writes."""

    today: dt.date
    target: dt.date
    breach: dt.date


def prepare_submission(
    session: Session, deps: OnboardingDeps, application: Application, *, now: dt.datetime
) -> PreparedSubmission:
    """Refuse a submission that cannot happen (state, missing documents); compute the SLA.
    Reads only; documents are never removed, so a check passed here still holds."""
    ensure_transition(application.status, ApplicationStatus.SUBMITTED)
    today = business_date(now)
    missing = missing_documents(session, application, today)
    errors = missing_document_errors(missing)
    errors.extend(missing_consents(session, application))
    errors.extend(unproved_mobile(application))
    owners = repository.beneficial_owner_counts(session, [application.id]).get(application.id, 0)
    errors.extend(compliance_gaps(application, owners, today))
    _raise_if(errors)
    target, breach = _deadlines(deps.settings, today, paused_working_days=0)
    return PreparedSubmission(today, target, breach)


def submit(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    *,
    now: dt.datetime,
    prepared: PreparedSubmission | None = None,
) -> None:
    """Submit for review: needs every required document; queues the automated checks.
    ``prepared`` comes from :func:`prepare_submission` in an earlier read-only transaction;
    the write then happens only if the application is still a draft."""
    if prepared is None:
        prepared = prepare_submission(session, deps, application, now=now)
    # One UPDATE for the whole transition, the queued checks included (request_checks).
    submitted = repository.update_application_in_status(
        session,
        application,
        str(ApplicationStatus.DRAFT),
        status=str(ApplicationStatus.SUBMITTED),
        submitted_at=now,
        updated_at=now,
        sla_start_date=prepared.today,
        sla_paused_working_days=0,
        sla_target_date=prepared.target,
        sla_breach_date=prepared.breach,
        checks_requested_at=now,
    )
    if not submitted:  # submitted or withdrawn meanwhile, e.g. from another tab
        ensure_transition(
            repository.status_of(session, application.id) or application.status,
            ApplicationStatus.SUBMITTED,
        )
    record_event(
        session,
        application,
        EventKind.SUBMITTED,
        applicant_actor(application),
        visible=True,
        now=now,
    )
    audit.record(
        session,
        applicant_actor(application),
        "application.submitted",
        "application",
        application.id,
        {"sla_target_date": str(application.sla_target_date)},
    )
    _notify_applicant(
        session,
        application,
        "application_submitted",
        {
            "tracking_number": application.tracking_number,
            "target_days": str(deps.settings.review_sla_target_working_days),
            "target_date": str(application.sla_target_date),
        },
    )


def request_checks(application: Application, *, now: dt.datetime) -> None:
    """Queue a check run for the worker (``poshub.onboarding.jobs.run_requested_checks``).

    Checks ask outside verification providers, which answer in hundreds of milliseconds
    or not at all; running them in the worker keeps the applicant's request fast and lets
    the worker retry and batch them.
    """
    application.checks_requested_at = now


def _deadlines(
    settings: Settings, start: dt.date, *, paused_working_days: int
) -> tuple[dt.date, dt.date]:
    return sla.deadlines(
        start,
        paused_working_days,
        settings.review_sla_target_working_days,
        settings.review_sla_breach_working_days,
    )


def _update_deadlines(settings: Settings, application: Application) -> None:
    assert application.sla_start_date is not None
    application.sla_target_date, application.sla_breach_date = _deadlines(
        settings,
        application.sla_start_date,
        paused_working_days=application.sla_paused_working_days,
    )


def answer_request(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    message: str,
    *,
    now: dt.datetime,
) -> None:
    """The applicant answers a request for information; the review clock resumes."""
    ensure_transition(application.status, ApplicationStatus.UNDER_REVIEW)
    if application.status != ApplicationStatus.NEEDS_INFO:
        raise Conflict(N_("No information was requested from you."), code="no_request")
    today = business_date(now)
    missing = missing_documents(session, application, today)
    if missing or application.mobile_verified_at is None:
        raise ValidationFailed(missing_document_errors(missing) + unproved_mobile(application))
    if application.info_requested_at is not None:
        application.sla_paused_working_days += working_days_between(
            business_date(application.info_requested_at), today
        )
    application.info_requested_at = None
    _update_deadlines(deps.settings, application)
    application.status = str(ApplicationStatus.UNDER_REVIEW)
    application.updated_at = now
    record_event(
        session,
        application,
        EventKind.APPLICANT_ANSWERED,
        applicant_actor(application),
        body=message,
        visible=True,
        now=now,
    )
    request_checks(application, now=now)
    audit.record(
        session,
        applicant_actor(application),
        "application.answered",
        "application",
        application.id,
        {"paused_working_days": application.sla_paused_working_days},
    )


# --- Consents (PIPL; poshub/onboarding/consent.py, docs/privacy.md) -----------------

CONSENT_REQUIRED: dict[ConsentKind, str] = {
    ConsentKind.PRIVACY_NOTICE: N_(
        "Please read the privacy notice and agree to it: without it we cannot process your "
        "application."
    ),
    ConsentKind.VERIFICATION_PROVIDER: N_(
        "Please consent to sending your name, ID number, account number and mobile number to "
        "the verification provider: without it your identity and account cannot be verified "
        "and the application cannot be submitted."
    ),
}
NOTICE_OUTDATED = N_(
    "The privacy notice has changed (now version {version}): read it again and give your "
    "consent under it."
)
CONSENT_OPEN_STATUSES = frozenset(
    {
        ApplicationStatus.DRAFT,
        ApplicationStatus.SUBMITTED,
        ApplicationStatus.UNDER_REVIEW,
        ApplicationStatus.NEEDS_INFO,
    }
)
"""Consents are given and withdrawn until the decision; after it the data is processed to
perform the contract, and the merchant's closure ends that (docs/privacy.md)."""
SOURCE_ADDRESS_LENGTH_MAX = 64


def consent_errors(
    consents: ConsentsIn | None, *, required: Sequence[ConsentKind]
) -> list[FieldError]:
    """Field errors of consents given with a request: each required kind must be given,
    under the current notice version."""
    errors: list[FieldError] = []
    if consents is not None and consents.notice_version != consent.PRIVACY_NOTICE_VERSION:
        errors.append(
            FieldError(
                "consents.notice_version",
                "consent.notice_outdated",
                NOTICE_OUTDATED,
                {"version": consent.PRIVACY_NOTICE_VERSION},
            )
        )
    for kind in required:
        if consents is None or not getattr(consents, kind.value):
            errors.append(
                FieldError(f"consents.{kind.value}", "consent.required", CONSENT_REQUIRED[kind])
            )
    return errors


def consent_state(
    session: Session, application: Application
) -> dict[ConsentKind, consent.ConsentState]:
    rows = repository.consents_of(session, [application.id]).get(application.id, [])
    return consent.current(rows)


def missing_consents(session: Session, application: Application) -> list[FieldError]:
    """A field error for each consent submission needs that is not in force now."""
    state = consent_state(session, application)
    return [
        FieldError(f"consents.{kind.value}", "consent.required", CONSENT_REQUIRED[kind])
        for kind in ConsentKind
        if not consent.has_current(state, kind)
    ]


def _ensure_consent_open(application: Application) -> None:
    if ApplicationStatus(application.status) not in CONSENT_OPEN_STATUSES:
        raise Conflict(
            N_(
                "The application was decided ({status}): consents can no longer be changed here. "
                "Ask us to close the merchant relationship to end the processing."
            ),
            code="consent_after_decision",
            status=application.status,
        )


def _record_consents(
    session: Session,
    application: Application,
    data: ConsentsIn,
    *,
    source_address: str,
    now: dt.datetime,
    event: bool = True,
) -> list[ConsentKind]:
    kinds = [kind for kind in ConsentKind if getattr(data, kind.value)]
    repository.insert_consents(
        session,
        [
            {
                "application_id": application.id,
                "kind": str(kind),
                "action": str(ConsentAction.GRANTED),
                "notice_version": data.notice_version,
                "source_address": source_address[:SOURCE_ADDRESS_LENGTH_MAX],
                "at": now,
            }
            for kind in kinds
        ],
    )
    details: dict[str, object] = {
        "kinds": [str(k) for k in kinds],
        "notice_version": data.notice_version,
    }
    if event:
        record_event(
            session,
            application,
            EventKind.CONSENT_GIVEN,
            applicant_actor(application),
            data=details,
            visible=True,
            now=now,
        )
    # The source address stays out of the audit log: that log is never purged.
    audit.record(
        session,
        applicant_actor(application),
        "application.consent_given",
        "application",
        application.id,
        details,
    )
    return kinds


def give_consents(
    session: Session,
    application: Application,
    data: ConsentsIn,
    *,
    source_address: str,
    now: dt.datetime,
) -> None:
    """The applicant gives one or both consents (before the decision). A verification
    consent given after submission queues the checks again, so the provider is asked."""
    _ensure_consent_open(application)
    errors = consent_errors(data, required=())
    if not errors and not (data.privacy_notice or data.verification_provider):
        errors.append(
            FieldError(
                "consents",
                "consent.none_given",
                N_("Tick at least one consent to give it."),
            )
        )
    _raise_if(errors)
    kinds = _record_consents(session, application, data, source_address=source_address, now=now)
    application.updated_at = now
    if ConsentKind.VERIFICATION_PROVIDER in kinds and application.status != ApplicationStatus.DRAFT:
        request_checks(application, now=now)


def withdraw_consent(
    session: Session,
    application: Application,
    kind: ConsentKind,
    *,
    source_address: str,
    now: dt.datetime,
) -> None:
    """The applicant withdraws a consent before the decision (PIPL art. 15). Nothing more
    is sent to the provider; a submitted application's checks run again and show the
    verification pending for want of consent, so the reviewer sees it."""
    _ensure_consent_open(application)
    state = consent_state(session, application)
    if not state[kind].granted:
        raise Conflict(
            N_("This consent is not in force, so there is nothing to withdraw."),
            code="consent_not_given",
        )
    repository.insert_consents(
        session,
        [
            {
                "application_id": application.id,
                "kind": str(kind),
                "action": str(ConsentAction.WITHDRAWN),
                "notice_version": state[kind].notice_version or consent.PRIVACY_NOTICE_VERSION,
                "source_address": source_address[:SOURCE_ADDRESS_LENGTH_MAX],
                "at": now,
            }
        ],
    )
    record_event(
        session,
        application,
        EventKind.CONSENT_WITHDRAWN,
        applicant_actor(application),
        data={"kind": str(kind)},
        visible=True,
        now=now,
    )
    audit.record(
        session,
        applicant_actor(application),
        "application.consent_withdrawn",
        "application",
        application.id,
        {"kind": str(kind)},
    )
    application.updated_at = now
    if application.status != ApplicationStatus.DRAFT:
        request_checks(application, now=now)


def ensure_privacy_consent(session: Session, application: Application) -> None:
    """409 when the applicant withdrew agreement to the privacy notice: the application
    cannot be decided in favour of processing the applicant refused."""
    state = consent_state(session, application)
    if not state[ConsentKind.PRIVACY_NOTICE].granted:
        raise Conflict(
            N_(
                "The applicant withdrew agreement to the privacy notice: the application "
                "cannot be approved."
            ),
            code="consent_withdrawn",
        )


# --- Automated checks -------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    code: str
    status: CheckStatus
    detail_code: str | None
    params: dict[str, str]


CheckRow = tuple[str, CheckStatus, str | None, dict[str, str]]


@dataclass(frozen=True)
class _Lookups:
    """What the checks of a batch of applications read from the database: one query per
    kind of lookup for the whole batch rather than five per application."""

    open_applications: Sequence[tuple[str, str, str, str | None]]
    """(id, tracking number, ID number token, credit code), oldest first."""
    merchants: Sequence[tuple[str, str, str | None]]
    """(MID, ID number token, credit code), oldest first."""
    blacklisted: Sequence[tuple[str, str, str]]
    """(kind, value token, reason), in the order added."""
    terminal_totals: dict[str, int]
    document_kinds: dict[str, set[str]]
    beneficial_owner_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    """Beneficial owners named per application (absent: none)."""
    verification_consented: frozenset[str] = frozenset()
    """Applications whose applicant consents now to the verification provider: only
    their data is sent to it (PIPL art. 23)."""
    list_attempts: dict[str, int] = dataclasses.field(default_factory=dict)
    """Unanswered external list checks in a row per application (the retry backoff)."""


@dataclass(frozen=True)
class ComputedChecks:
    """A batch's check results, computed but not yet written."""

    rows: list[dict[str, object]]
    runs: list[tuple[Application, int]]
    checked: dict[str, list[CheckResult]]
    list_rows: list[dict[str, object]] = dataclasses.field(default_factory=list)
    """The external list questions asked (``risk_list_checks`` rows)."""

    def only(self, application_ids: set[str]) -> ComputedChecks:
        """The part of the batch for these applications."""
        return ComputedChecks(
            [r for r in self.rows if r["application_id"] in application_ids],
            [(a, run) for a, run in self.runs if a.id in application_ids],
            {k: v for k, v in self.checked.items() if k in application_ids},
            [r for r in self.list_rows if r["subject"] in application_ids],
        )


def run_checks(
    session: Session,
    deps: OnboardingDeps,
    applications: Sequence[Application],
    *,
    now: dt.datetime,
) -> dict[str, list[CheckResult]]:
    """Run every automated check on each application as a new run, by application id;
    the reviewer sees the latest run. Also takes the applications off the worker's queue.

    Checks inform the reviewer and never change the application's state.
    """
    computed = compute_checks(session, deps, applications, now=now)
    record_checks(session, computed)
    return computed.checked


def record_checks(session: Session, computed: ComputedChecks) -> None:
    """Write a computed batch: the check rows, each application's new run number and the
    external list questions (a new one replaces any earlier unanswered one's retries)."""
    repository.insert_checks(session, computed.rows)
    repository.finish_check_runs(session, computed.runs)
    risk_repository.stop_list_retries(
        session, SubjectKind.APPLICATION.value, [str(r["subject"]) for r in computed.list_rows]
    )
    risk_repository.insert_list_checks(session, computed.list_rows)


def compute_checks(
    session: Session,
    deps: OnboardingDeps,
    applications: Sequence[Application],
    *,
    now: dt.datetime,
) -> ComputedChecks:
    """Every automated check of each application, reading what the batch needs and
    calling the verification provider, but writing nothing: the worker does this outside
    the write transaction, so a slow provider never holds the database's write lock."""
    if not applications:
        return ComputedChecks([], [], {})
    # The lookups are plain statements, which do not autoflush.
    session.flush()
    today = business_date(now)
    decrypted: dict[str, tuple[str, str]] = {
        a.id: (
            deps.vault.decrypt(a.id_number_enc, context=ID_NUMBER_CONTEXT),
            deps.vault.decrypt(a.account_number_enc, context=ACCOUNT_NUMBER_CONTEXT),
        )
        for a in applications
    }
    tokens = {a.id: _blacklist_tokens(deps.vault, a) for a in applications}
    id_number_tokens = {a.id_number_token for a in applications}
    usccs = {a.uscc for a in applications if a.uscc}
    ids_ = [a.id for a in applications]
    lookups = _Lookups(
        open_applications=repository.open_applications_matching(session, id_number_tokens, usccs),
        merchants=merchant_repository.matching_identities(session, id_number_tokens, usccs),
        blacklisted=repository.blacklist_matching(
            session, {token for pairs in tokens.values() for _, token in pairs}
        ),
        terminal_totals=repository.terminal_totals(session, ids_),
        document_kinds=repository.document_kinds_of(session, ids_),
        beneficial_owner_counts=repository.beneficial_owner_counts(session, ids_),
        verification_consented=frozenset(
            application_id
            for application_id, rows in repository.consents_of(session, ids_).items()
            if consent.has_current(consent.current(rows), ConsentKind.VERIFICATION_PROVIDER)
        ),
        list_attempts={
            application_id: row.attempts
            for application_id, row in risk_repository.latest_list_checks(
                session, SubjectKind.APPLICATION.value, ids_
            ).items()
            if row.status == ListCheckStatus.PENDING
        },
    )
    rows: list[dict[str, object]] = []
    runs: list[tuple[Application, int]] = []
    checked: dict[str, list[CheckResult]] = {}
    list_rows: list[dict[str, object]] = []
    for application in applications:
        id_number, account_number = decrypted[application.id]
        results = _check(
            deps, application, id_number, account_number, tokens[application.id], lookups, today
        )
        asked = lists.ask(
            deps.risk_lists,
            ListSubject(
                SubjectKind.APPLICATION,
                application.id,
                application.business_name,
                application.legal_name,
                application.uscc,
            ),
            attempts=lookups.list_attempts.get(application.id, 0) + 1,
            now=now,
        )
        results.append(_list_check(asked))
        list_rows.append(asked.row(now))
        run = application.check_run + 1
        rows.extend(
            {
                "application_id": application.id,
                "run": run,
                "code": code,
                "status": str(status),
                "detail_code": detail,
                "params": params,
                "checked_at": now,
            }
            for code, status, detail, params in results
        )
        runs.append((application, run))
        checked[application.id] = [CheckResult(*result) for result in results]
    return ComputedChecks(rows, runs, checked, list_rows)


def _list_check(asked: lists.Asked) -> CheckRow:
    """The external list answer as the application's check ``external_list``: pending
    while the provider has not answered, never passed."""
    params = {"provider": asked.provider, **asked.detail}
    if asked.status == ListCheckStatus.CLEAR:
        return "external_list", CheckStatus.PASS, "external_list.clear", params
    if asked.status == ListCheckStatus.HIT:
        return "external_list", CheckStatus.FAIL, "external_list.hit", params
    retry = local_time(asked.next_attempt_at).strftime("%H:%M") if asked.next_attempt_at else "-"
    return (
        "external_list",
        CheckStatus.PENDING,
        "external_list.unavailable",
        {"provider": asked.provider, "retry_at": retry},
    )


def _check(
    deps: OnboardingDeps,
    application: Application,
    id_number: str,
    account_number: str,
    blacklist_tokens: list[tuple[str, str]],
    lookups: _Lookups,
    today: dt.date,
) -> list[CheckRow]:
    """The checks of one application, given what was looked up for its batch."""
    results: list[CheckRow] = []

    def rule(code: str, violation: rules.RuleViolation | None) -> None:
        if violation is None:
            results.append((code, CheckStatus.PASS, "ok", {}))
        else:
            results.append((code, CheckStatus.FAIL, violation.code, _violation(violation).params))

    rule("resident_id", rules.check_resident_id(id_number, today))
    rule(
        "id_expiry",
        rules.check_id_expiry(application.id_expiry, application.id_long_term, id_number, today),
    )
    kind = ApplicantKind(application.applicant_kind)
    if application.uscc:
        rule(
            "uscc",
            rules.check_uscc(application.uscc)
            or rules.check_uscc_kind(application.uscc, str(kind)),
        )
    elif kind.needs_licence:
        results.append(("uscc", CheckStatus.FAIL, "uscc.required", {}))
    if kind.needs_licence:
        expiry = application.licence_expiry
        violation = rules.check_licence_expiry(expiry, today)
        if violation is not None:
            rule("licence", violation)
        elif expiry is None:
            results.append(("licence", CheckStatus.PASS, "licence.long_term", {}))
        elif (expiry - today).days <= LICENCE_EXPIRY_WARNING_DAYS:
            results.append(
                (
                    "licence",
                    CheckStatus.WARN,
                    "licence.expiring",
                    {"expiry": str(expiry), "days": str(LICENCE_EXPIRY_WARNING_DAYS)},
                )
            )
        else:
            results.append(("licence", CheckStatus.PASS, "ok", {}))
    rule("mobile", rules.check_mobile(application.mobile))
    account_violations = rules.check_settlement_account(
        str(kind),
        application.account_type,
        application.account_name,
        account_number,
        legal_name=application.legal_name,
        business_name=application.business_name,
    )
    rule("settlement_account", account_violations[0] if account_violations else None)
    if kind is ApplicantKind.ENTERPRISE:
        owners = lookups.beneficial_owner_counts.get(application.id, 0)
        rule("beneficial_owners", rules.check_beneficial_owners_named(str(kind), owners))
    results.append(_duplicates_check(application, lookups))
    results.append(_blacklist_check(blacklist_tokens, lookups))
    rule(
        "terminal_count",
        rules.check_terminal_count(
            application.applicant_kind,
            lookups.terminal_totals.get(application.id, 0),
            deps.settings.terminals_per_applicant_max,
        ),
    )
    info = rules.mcc_info(application.mcc)
    prohibited = rules.check_mcc_allowed(application.mcc, deps.settings.prohibited_mccs)
    if info is None:
        results.append(("mcc_risk", CheckStatus.FAIL, "mcc.unknown", {"mcc": application.mcc}))
    elif prohibited is not None:
        results.append(("mcc_risk", CheckStatus.FAIL, prohibited.code, prohibited.params))
    else:
        status = (
            CheckStatus.WARN if info.risk_class == rules.MccRiskClass.HIGH else CheckStatus.PASS
        )
        results.append(
            (
                "mcc_risk",
                status,
                f"mcc_risk.{info.risk_class.value}",
                {"mcc": info.code, "description": info.description},
            )
        )
    provided = lookups.document_kinds.get(application.id, set())
    missing = sorted(k for k in required_documents(application, today) if k.value not in provided)
    if missing:
        results.append(
            (
                "documents",
                CheckStatus.FAIL,
                "documents.missing",
                {"kinds": ", ".join(m.value for m in missing)},
            )
        )
    else:
        results.append(("documents", CheckStatus.PASS, "ok", {}))
    if application.id not in lookups.verification_consented:
        # Nothing leaves for the provider without the applicant's separate consent.
        results.extend(
            (code, CheckStatus.PENDING, "verification.no_consent", {})
            for code in ("real_name", "bank_card_four")
        )
    else:
        results.append(
            _verification(
                "real_name",
                lambda: deps.verifier.verify_identity(application.legal_name, id_number),
            )
        )
        results.append(
            _verification(
                "bank_card_four",
                lambda: deps.verifier.verify_bank_card(
                    application.account_name, id_number, account_number, application.mobile
                ),
            )
        )
    return results


def _verification(code: str, call: object) -> CheckRow:
    assert callable(call)
    try:
        result: VerificationResult = call()
    except ProviderUnavailable:
        return code, CheckStatus.PENDING, "verification.unavailable", {}
    params = {"provider": result.provider, "reference": result.reference}
    if result.outcome == VerificationOutcome.MATCH:
        return code, CheckStatus.PASS, "verification.match", params
    return code, CheckStatus.FAIL, "verification.mismatch", params


def _duplicates_check(application: Application, lookups: _Lookups) -> CheckRow:
    def same_party(id_number_token: str, uscc: str | None) -> bool:
        return id_number_token == application.id_number_token or bool(
            application.uscc and uscc == application.uscc
        )

    for other_id, tracking_number, id_number_token, uscc in lookups.open_applications:
        if other_id != application.id and same_party(id_number_token, uscc):
            return (
                "duplicates",
                CheckStatus.FAIL,
                "duplicates.application",
                {"tracking_number": tracking_number},
            )
    for mid, id_number_token, uscc in lookups.merchants:
        if same_party(id_number_token, uscc):
            # An existing merchant may legitimately apply for more terminals, so this is
            # a warning for the reviewer rather than a failure.
            return "duplicates", CheckStatus.WARN, "duplicates.merchant", {"mid": mid}
    return "duplicates", CheckStatus.PASS, "ok", {}


def _blacklist_tokens(vault: KeyVault, application: Application) -> list[tuple[str, str]]:
    """(kind, lookup token) of every value of the application the blacklist can name."""
    tokens = [
        (str(BlacklistKind.ID_NUMBER), application.id_number_token),
        (str(BlacklistKind.ACCOUNT_NUMBER), application.account_number_token),
        (
            str(BlacklistKind.MOBILE),
            vault.token(application.mobile, purpose=TOKEN_PURPOSE[BlacklistKind.MOBILE]),
        ),
    ]
    if application.uscc:
        tokens.append(
            (
                str(BlacklistKind.USCC),
                vault.token(application.uscc, purpose=TOKEN_PURPOSE[BlacklistKind.USCC]),
            )
        )
    return tokens


def _blacklist_check(tokens: list[tuple[str, str]], lookups: _Lookups) -> CheckRow:
    wanted = set(tokens)
    hits = [
        (kind, reason) for kind, token, reason in lookups.blacklisted if (kind, token) in wanted
    ]
    if not hits:
        return "blacklist", CheckStatus.PASS, "ok", {}
    return (
        "blacklist",
        CheckStatus.FAIL,
        "blacklist.hit",
        {
            "kinds": ", ".join(sorted({kind for kind, _ in hits})),
            "reasons": "; ".join(reason for _, reason in hits[:3]),
        },
    )


# --- Review -------------------------------------------------------------------------


def record_event(
    session: Session,
    application: Application,
    kind: EventKind,
    actor: Actor,
    *,
    now: dt.datetime,
    body: str = "",
    data: dict[str, object] | None = None,
    visible: bool = False,
) -> ApplicationEvent:
    """Add to the application's timeline; returns the event as written (not attached to
    the session: nothing needs its id)."""
    values = {
        "application_id": application.id,
        "kind": str(kind),
        "author_kind": str(actor.kind),
        "author_id": actor.id,
        "body": body,
        "data": data or {},
        "visible_to_applicant": visible,
        "created_at": now,
    }
    repository.insert_event(session, values)
    return ApplicationEvent(**values)


def get_for_review(
    session: Session, application_id: str, *, for_update: bool = False
) -> Application:
    application = repository.get(session, application_id, for_update=for_update)
    if application is None:
        raise NotFound(N_("No such application."), code="application_not_found")
    return application


def claim(
    session: Session, application: Application, reviewer: Principal, *, now: dt.datetime
) -> None:
    """Take the application into one's own queue (taking over from another reviewer is allowed and audited)."""
    status = ApplicationStatus(application.status)
    if status == ApplicationStatus.SUBMITTED:
        application.status = str(ensure_transition(status, ApplicationStatus.UNDER_REVIEW))
        _notify_applicant(
            session, application, "review_started", {"tracking_number": application.tracking_number}
        )
    elif status not in (ApplicationStatus.UNDER_REVIEW, ApplicationStatus.NEEDS_INFO):
        raise Conflict(
            N_("Only submitted applications under review can be claimed (this one is {status})."),
            code="not_claimable",
            status=str(status),
        )
    previous = application.assigned_reviewer_id
    application.assigned_reviewer_id = reviewer.user_id
    application.updated_at = now
    data: dict[str, object] = (
        {"previous_reviewer_id": previous} if previous and previous != reviewer.user_id else {}
    )
    record_event(session, application, EventKind.CLAIMED, reviewer.actor, data=data, now=now)
    audit.record(
        session, reviewer.actor, "application.claimed", "application", application.id, data
    )


def _ensure_assignee(application: Application, reviewer: Principal) -> None:
    if application.assigned_reviewer_id != reviewer.user_id:
        raise Forbidden(
            N_("Claim this application before acting on it: it is not assigned to you."),
            code="not_assignee",
        )


def add_note(
    session: Session,
    application: Application,
    reviewer: Principal,
    note: NoteIn,
    *,
    now: dt.datetime,
) -> ApplicationEvent:
    """Phone confirmation, site survey or a free note on the application's timeline."""
    if ApplicationStatus(application.status) not in (
        ApplicationStatus.UNDER_REVIEW,
        ApplicationStatus.NEEDS_INFO,
        ApplicationStatus.SUBMITTED,
    ):
        raise Conflict(
            N_("Notes can be added only while the application is being reviewed."),
            code="not_in_review",
        )
    is_survey = note.kind == EventKind.SITE_SURVEY
    if is_survey and note.outcome not in SITE_SURVEY_OUTCOMES:
        raise ValidationFailed(
            [
                FieldError(
                    "outcome",
                    "outcome.site_survey",
                    N_("A site survey must say whether the premises are feasible or not feasible."),
                )
            ]
        )
    data: dict[str, object] = {"outcome": note.outcome} if note.outcome else {}
    audit_data = dict(data)
    if is_survey:
        # The survey is of the address as it is now: if the address changes, it no
        # longer counts for approval (decisions.site_survey_gap).
        data["site"] = surveyed_site(application)
    event = record_event(
        session,
        application,
        EventKind(note.kind),
        reviewer.actor,
        body=note.body,
        data=data,
        now=now,
    )
    audit.record(
        session,
        reviewer.actor,
        f"application.note.{note.kind}",
        "application",
        application.id,
        audit_data,
    )
    return event


def surveyed_site(application: Application) -> str:
    """The premises a site survey of this application covers, as one comparable string."""
    return "|".join(
        (
            application.region_code,
            application.province,
            application.city,
            application.district,
            application.address_detail,
        )
    )


def _internal_note(
    session: Session,
    application: Application,
    actor: Actor,
    note: str | None,
    *,
    about: str,
    now: dt.datetime,
) -> None:
    """Staff's note on a decision, on the timeline but never shown to the applicant."""
    if note and note.strip():
        record_event(
            session,
            application,
            EventKind.NOTE,
            actor,
            body=note.strip(),
            data={"about": about},
            visible=False,
            now=now,
        )


def request_info(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    reviewer: Principal,
    message: str,
    *,
    now: dt.datetime,
    note: str | None = None,
) -> None:
    """Ask the applicant for more: ``message`` is shown to them, ``note`` stays internal."""
    ensure_transition(application.status, ApplicationStatus.NEEDS_INFO)
    _ensure_assignee(application, reviewer)
    _internal_note(session, application, reviewer.actor, note, about="info_requested", now=now)
    application.status = str(ApplicationStatus.NEEDS_INFO)
    application.info_requested_at = now
    application.updated_at = now
    record_event(
        session,
        application,
        EventKind.INFO_REQUESTED,
        reviewer.actor,
        body=message,
        visible=True,
        now=now,
    )
    audit.record(
        session, reviewer.actor, "application.info_requested", "application", application.id, {}
    )
    _notify_applicant(
        session,
        application,
        "info_requested",
        {
            "tracking_number": application.tracking_number,
            "message": message[:200],
            "url": tracking_url(deps.settings, application),
        },
    )


def staff_edit(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    reviewer: Principal,
    edit: StaffEditIn,
    *,
    now: dt.datetime,
) -> list[str]:
    """A reviewer corrects the application. The editor may no longer approve it (maker-checker)."""
    if ApplicationStatus(application.status) not in (
        ApplicationStatus.UNDER_REVIEW,
        ApplicationStatus.NEEDS_INFO,
    ):
        raise Conflict(
            N_("Only an application under review can be corrected."), code="not_in_review"
        )
    changes = edit.model_dump(exclude_unset=True, exclude={"reason"})
    if not changes:
        raise ValidationFailed(
            [FieldError("reason", "edit.empty", N_("Nothing to change was given."))]
        )
    errors: list[FieldError] = []
    if edit.mcc is not None:
        violation = rules.check_mcc(edit.mcc) or rules.check_mcc_allowed(
            edit.mcc, deps.settings.prohibited_mccs
        )
        if violation:
            errors.append(_violation(violation))
    if edit.business_name is not None:
        # The settlement account must still be one this applicant may be paid to: an
        # enterprise's unit account is in the business's name.
        errors.extend(
            _violation(violation)
            for violation in rules.check_settlement_account(
                application.applicant_kind,
                application.account_type,
                application.account_name,
                deps.vault.decrypt(application.account_number_enc, context=ACCOUNT_NUMBER_CONTEXT),
                legal_name=application.legal_name,
                business_name=edit.business_name,
            )
        )
    region_code = _resolve_region(edit.address, errors) if edit.address is not None else None
    _raise_if(errors)
    if edit.business_name is not None:
        application.business_name = edit.business_name
    if edit.mcc is not None:
        application.mcc = edit.mcc
    if edit.address is not None:
        assert region_code is not None
        application.province = edit.address.province
        application.city = edit.address.city
        application.district = edit.address.district
        application.address_detail = edit.address.detail
        application.region_code = region_code
    if edit.expected_monthly_volume_fen is not None:
        application.expected_monthly_volume_fen = edit.expected_monthly_volume_fen
    if edit.bank_name is not None:
        application.bank_name = edit.bank_name
    application.updated_at = now
    if reviewer.user_id not in repository.editor_ids(session, application.id):
        session.add(
            ApplicationEditor(application_id=application.id, staff_user_id=reviewer.user_id)
        )
    fields = sorted(changes)
    record_event(
        session,
        application,
        EventKind.EDITED,
        reviewer.actor,
        body=edit.reason,
        data={"fields": fields},
        now=now,
    )
    audit.record(
        session,
        reviewer.actor,
        "application.edited",
        "application",
        application.id,
        {"fields": fields, "reason": edit.reason},
    )
    request_checks(application, now=now)
    return fields


@dataclass(frozen=True)
class ApprovalBlocker:
    """Something that must happen before anyone may approve (shown instead of the button)."""

    code: str
    message: str
    params: dict[str, str]


def approval_blockers(session: Session, application: Application) -> list[ApprovalBlocker]:
    """What stops this application being approved whatever the reviewer writes.

    A high-risk category (``rules.requires_site_survey``) needs a site survey recorded on
    the application's timeline whose latest outcome is ``feasible``, of the address the
    application names now. Work orders (``poshub.fieldwork``) belong to merchants, which
    do not exist before approval, so the survey before approval is recorded here, by the
    reviewing staff, as a site-survey entry with its outcome.
    """
    gap = site_survey_gap(
        rules.requires_site_survey(application.mcc),
        repository.site_surveys(session, application.id),
        surveyed_site(application),
    )
    if gap is None:
        return []
    return [
        ApprovalBlocker("site_survey_required", SITE_SURVEY_GAPS[gap], {"mcc": application.mcc})
    ]


def _ensure_no_blockers(session: Session, application: Application) -> None:
    for blocker in approval_blockers(session, application):
        raise Conflict(blocker.message, code=blocker.code, **blocker.params)


def open_checks(session: Session, application: Application) -> list[str]:
    """Codes of the latest run's failed or pending checks."""
    return [
        c.code
        for c in repository.latest_checks(session, application)
        if c.status in (CheckStatus.FAIL, CheckStatus.PENDING)
    ]


def override_checks(session: Session, application: Application) -> list[str]:
    """The open checks a reviewer alone may not approve over (``OVERRIDE_CHECKS``)."""
    return [code for code in open_checks(session, application) if code in OVERRIDE_CHECKS]


def approve(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    reviewer: Principal,
    decision: ApproveIn,
    *,
    now: dt.datetime,
) -> Merchant | ApplicationOverride:
    """The reviewer approves. Over failed or pending checks a note is required; over a
    blacklist, duplicate, real-name, four-element or external risk list check the approval
    waits for a risk officer (the override request is returned), otherwise the merchant is
    created (and graded, poshub/risk/grading.py)."""
    ensure_transition(application.status, ApplicationStatus.APPROVED)
    _ensure_assignee(application, reviewer)
    ensure_privacy_consent(session, application)
    if reviewer.user_id in repository.editor_ids(session, application.id):
        raise Forbidden(
            N_("You edited this application, so another reviewer must approve it (maker-checker)."),
            code="maker_checker",
        )
    if application.checks_requested_at is not None:
        raise Conflict(
            N_("The automated checks are still running; look at their results before approving."),
            code="checks_running",
        )
    _ensure_no_blockers(session, application)
    unresolved = open_checks(session, application)
    note = (decision.note or "").strip()
    if unresolved and not note:
        raise ValidationFailed(
            [
                FieldError(
                    "note",
                    "note.required_with_open_checks",
                    N_(
                        "Checks {checks} failed or are pending: explain in a note why you approve anyway."
                    ),
                    {"checks": ", ".join(unresolved)},
                )
            ]
        )
    message = (decision.message or "").strip() or None
    if any(code in OVERRIDE_CHECKS for code in unresolved):
        return _request_override(session, application, reviewer, unresolved, note, message, now=now)
    return _finish_approval(
        session,
        deps,
        application,
        reviewer.actor,
        reviewer.user_id,
        note=note or None,
        message=message,
        overridden=unresolved,
        now=now,
    )


def _request_override(
    session: Session,
    application: Application,
    reviewer: Principal,
    checks: list[str],
    reason: str,
    message: str | None,
    *,
    now: dt.datetime,
) -> ApplicationOverride:
    application.status = str(
        ensure_transition(application.status, ApplicationStatus.PENDING_OVERRIDE)
    )
    application.updated_at = now
    row = repository.insert_override(
        session,
        ApplicationOverride(
            application_id=application.id,
            status=str(OverrideStatus.PENDING),
            checks=checks,
            check_run=application.check_run,
            reason=reason,
            message=message,
            requested_by_id=reviewer.user_id,
            requested_at=now,
            decided_by_id=None,
            decided_at=None,
            decision_note=None,
        ),
    )
    data: dict[str, object] = {"override_id": row.id, "checks": checks}
    record_event(
        session,
        application,
        EventKind.OVERRIDE_REQUESTED,
        reviewer.actor,
        body=reason,
        data=data,
        now=now,
    )
    audit.record(
        session,
        reviewer.actor,
        "application.override_requested",
        "application",
        application.id,
        {**data, "check_run": row.check_run, "reason": reason[:500]},
    )
    return row


def get_override(
    session: Session, override_id: int, *, for_update: bool = False
) -> tuple[ApplicationOverride, Application]:
    row = repository.override(session, override_id, for_update=for_update)
    application = (
        repository.get(session, row.application_id, for_update=for_update) if row else None
    )
    if row is None or application is None:
        raise NotFound(N_("No such override request."), code="override_not_found")
    return row, application


def _ensure_second_person(
    session: Session, application: Application, row: ApplicationOverride, officer: Principal
) -> None:
    """The override is decided by someone other than who asked for it or changed the data."""
    if row.status != OverrideStatus.PENDING:
        raise Conflict(
            N_("This override request was already decided ({status})."),
            code="override_not_pending",
            status=row.status,
        )
    if officer.user_id == row.requested_by_id:
        raise Forbidden(
            N_("You asked for this override, so another person must decide it (maker-checker)."),
            code="override_same_person",
        )
    if officer.user_id in repository.editor_ids(session, application.id):
        raise Forbidden(
            N_(
                "You edited this application, so another person must decide the override (maker-checker)."
            ),
            code="override_editor",
        )


def approve_override(
    session: Session,
    deps: OnboardingDeps,
    row: ApplicationOverride,
    application: Application,
    officer: Principal,
    decision: OverrideDecisionIn,
    *,
    now: dt.datetime,
) -> Merchant:
    """A risk officer's second approval: the merchant is created."""
    _ensure_second_person(session, application, row, officer)
    ensure_transition(application.status, ApplicationStatus.APPROVED)
    ensure_privacy_consent(session, application)
    if application.checks_requested_at is not None or application.check_run != row.check_run:
        raise Conflict(
            N_(
                "The checks changed since the override was asked for; the reviewer must decide again."
            ),
            code="override_stale",
        )
    _ensure_no_blockers(session, application)
    _decide_override(session, application, row, officer, decision, OverrideStatus.APPROVED, now=now)
    return _finish_approval(
        session,
        deps,
        application,
        officer.actor,
        officer.user_id,
        note=row.reason,
        message=row.message,
        overridden=list(row.checks),
        now=now,
    )


def decline_override(
    session: Session,
    row: ApplicationOverride,
    application: Application,
    officer: Principal,
    decision: OverrideDecisionIn,
    *,
    now: dt.datetime,
) -> None:
    """A risk officer declines: the application goes back to its reviewer."""
    _ensure_second_person(session, application, row, officer)
    application.status = str(ensure_transition(application.status, ApplicationStatus.UNDER_REVIEW))
    application.updated_at = now
    _decide_override(session, application, row, officer, decision, OverrideStatus.DECLINED, now=now)


def _decide_override(
    session: Session,
    application: Application,
    row: ApplicationOverride,
    officer: Principal,
    decision: OverrideDecisionIn,
    outcome: OverrideStatus,
    *,
    now: dt.datetime,
) -> None:
    row.status = str(outcome)
    row.decided_by_id = officer.user_id
    row.decided_at = now
    row.decision_note = decision.note
    kind = (
        EventKind.OVERRIDE_APPROVED
        if outcome == OverrideStatus.APPROVED
        else EventKind.OVERRIDE_DECLINED
    )
    data: dict[str, object] = {"override_id": row.id, "checks": list(row.checks)}
    record_event(session, application, kind, officer.actor, body=decision.note, data=data, now=now)
    audit.record(
        session,
        officer.actor,
        f"application.{kind.value}",
        "application",
        application.id,
        {**data, "requested_by_id": row.requested_by_id, "note": decision.note[:500]},
    )


def _finish_approval(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    actor: Actor,
    decided_by_id: int,
    *,
    note: str | None,
    message: str | None,
    overridden: list[str],
    now: dt.datetime,
) -> Merchant:
    merchant = _create_merchant(session, deps, application, now=now)
    # The merchant starts with a risk grade from what it is, declared and how its checks
    # came out (poshub/risk/grading.py): its limits and settlement depend on it.
    grading.grade_at_approval(
        session, merchant, application, actor=Actor.system("risk_grading"), now=now
    )
    application.status = str(ApplicationStatus.APPROVED)
    application.decided_at = now
    application.decided_by_id = decided_by_id
    application.decision_reasons = []
    application.decision_note = note
    application.decision_message = message
    application.updated_at = now
    _internal_note(session, application, actor, note, about="approved", now=now)
    record_event(
        session,
        application,
        EventKind.APPROVED,
        actor,
        body=message or "",
        data={"mid": merchant.mid, "overridden_checks": overridden},
        visible=True,
        now=now,
    )
    audit.record(
        session,
        actor,
        "application.approved",
        "application",
        application.id,
        {"mid": merchant.mid, "overridden_checks": overridden},
    )
    audit.record(
        session,
        actor,
        "merchant.created",
        "merchant",
        merchant.mid,
        {"application_id": application.id},
    )
    _notify_applicant(
        session,
        application,
        "application_approved",
        {"tracking_number": application.tracking_number, "mid": merchant.mid},
    )
    return merchant


def _create_merchant(
    session: Session, deps: OnboardingDeps, application: Application, *, now: dt.datetime
) -> Merchant:
    return merchant_service.create_merchant(
        session,
        deps.vault,
        deps.settings.acquirer_code,
        merchant_service.NewMerchant(
            application_id=application.id,
            applicant_kind=application.applicant_kind,
            legal_name=application.legal_name,
            business_name=application.business_name,
            id_number_token=application.id_number_token,
            uscc=application.uscc,
            mcc=application.mcc,
            region_code=application.region_code,
            mobile=application.mobile,
            bank_name=application.bank_name,
            account_name=application.account_name,
            account_number=deps.vault.decrypt(
                application.account_number_enc, context=ACCOUNT_NUMBER_CONTEXT
            ),
            account_number_masked=application.account_number_masked,
            opening_time=application.opening_time,
            closing_time=application.closing_time,
        ),
        now=now,
    )


def reject(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    reviewer: Principal,
    decision: RejectIn,
    *,
    now: dt.datetime,
) -> None:
    ensure_transition(application.status, ApplicationStatus.REJECTED)
    _ensure_assignee(application, reviewer)
    errors: list[FieldError] = []
    for index, reason in enumerate(decision.reasons):
        if reason not in REJECTION_REASONS:
            errors.append(
                FieldError(
                    f"reasons[{index}]",
                    "reasons.unknown",
                    N_("Unknown reason code {reason}; choose from: {allowed}."),
                    {"reason": reason[:40], "allowed": ", ".join(REJECTION_REASONS)},
                )
            )
    note = (decision.note or "").strip() or None
    message = (decision.message or "").strip() or None
    if "other" in decision.reasons and not message:
        errors.append(
            FieldError(
                "message",
                "message.required_for_other",
                N_("Explain the reason 'other' in the message to the applicant."),
            )
        )
    _raise_if(errors)
    reasons = list(dict.fromkeys(decision.reasons))
    application.status = str(ApplicationStatus.REJECTED)
    application.decided_at = now
    application.decided_by_id = reviewer.user_id
    application.decision_reasons = reasons
    application.decision_note = note
    application.decision_message = message
    application.updated_at = now
    _internal_note(session, application, reviewer.actor, note, about="rejected", now=now)
    record_event(
        session,
        application,
        EventKind.REJECTED,
        reviewer.actor,
        body=message or "",
        data={"reasons": reasons},
        visible=True,
        now=now,
    )
    audit.record(
        session,
        reviewer.actor,
        "application.rejected",
        "application",
        application.id,
        {"reasons": reasons},
    )
    _notify_applicant(
        session,
        application,
        "application_rejected",
        {
            "tracking_number": application.tracking_number,
            "reasons": [REJECTION_REASONS[r] for r in reasons],
        },
    )


def rerun_checks(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    reviewer: Principal,
    *,
    now: dt.datetime,
) -> list[CheckResult]:
    if ApplicationStatus(application.status) not in (
        ApplicationStatus.SUBMITTED,
        ApplicationStatus.UNDER_REVIEW,
        ApplicationStatus.NEEDS_INFO,
    ):
        raise Conflict(N_("Checks run only on applications being reviewed."), code="not_in_review")
    checks = run_checks(session, deps, [application], now=now)[application.id]
    audit.record(
        session,
        reviewer.actor,
        "application.checks_rerun",
        "application",
        application.id,
        {"check_run": application.check_run},
    )
    return checks


# --- Blacklist ----------------------------------------------------------------------


def _normalise_blacklist_value(
    kind: BlacklistKind, value: str
) -> tuple[str, str, FieldError | None]:
    if kind == BlacklistKind.ID_NUMBER:
        normalised = rules.normalize_resident_id(value)
        violation = rules.check_resident_id(normalised, dt.date.max.replace(year=9000))
        if violation is not None and violation.code != "id_number.minor":
            return normalised, "", _violation(violation)
        return normalised, mask_resident_id(normalised), None
    if kind == BlacklistKind.USCC:
        normalised = rules.normalize_uscc(value)
        violation = rules.check_uscc(normalised)
        return normalised, normalised, _violation(violation) if violation else None
    if kind == BlacklistKind.MOBILE:
        violation = rules.check_mobile(value)
        if violation:
            return value, "", _violation(violation)
        normalised = rules.normalize_mobile(value)
        return normalised, normalised[:3] + "****" + normalised[-4:], None
    normalised = rules.normalize_account_number(value)
    violation = rules.check_account_number(normalised)
    return normalised, mask_tail(normalised), _violation(violation) if violation else None


def add_blacklist_entry(
    session: Session, vault: KeyVault, entry: BlacklistIn, officer: Principal, *, now: dt.datetime
) -> BlacklistEntry:
    kind = BlacklistKind(entry.kind)
    normalised, masked, error = _normalise_blacklist_value(kind, entry.value)
    if error is not None:
        raise ValidationFailed([FieldError("value", error.code, error.message, error.params)])
    row = BlacklistEntry(
        kind=str(kind),
        value_token=vault.token(normalised, purpose=TOKEN_PURPOSE[kind]),
        value_masked=masked,
        reason=entry.reason,
        added_by=officer.username,
        added_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        officer.actor,
        "blacklist.added",
        "blacklist_entry",
        str(row.id),
        {"kind": str(kind), "value": masked, "reason": entry.reason},
    )
    return row


def remove_blacklist_entry(
    session: Session, entry_id: int, officer: Principal, *, now: dt.datetime
) -> BlacklistEntry:
    row = repository.blacklist_entry(session, entry_id)
    if row is None:
        raise NotFound(N_("No such blacklist entry."), code="blacklist_entry_not_found")
    if row.removed_at is not None:
        raise Conflict(N_("This entry was already removed."), code="already_removed")
    row.removed_at = now
    row.removed_by = officer.username
    audit.record(
        session,
        officer.actor,
        "blacklist.removed",
        "blacklist_entry",
        str(row.id),
        {"kind": row.kind, "value": row.value_masked},
    )
    return row


def sorted_checks(checks: Sequence[ApplicationCheck]) -> list[ApplicationCheck]:
    order = {CheckStatus.FAIL: 0, CheckStatus.PENDING: 1, CheckStatus.WARN: 2, CheckStatus.PASS: 3}
    return sorted(checks, key=lambda c: (order[CheckStatus(c.status)], c.id))


# --- Mobile proof (poshub/onboarding/mobile.py, docs/onboarding.md) -----------------

MOBILE_CODE_PURPOSE = "mobile_code"


def unproved_mobile(application: Application) -> list[FieldError]:
    """The field error of an application whose mobile number is not proved yet."""
    if application.mobile_verified_at is not None:
        return []
    return [FieldError("mobile", "mobile.unverified", mobile.NOT_PROVED)]


@dataclass(frozen=True)
class MobileCode:
    """A code the caller sends (after committing) with :func:`send_mobile_code`."""

    code: str
    mobile: str
    text: str
    """The SMS, in the applicant's language, with the code in it."""
    expires_at: dt.datetime
    resend_after_seconds: int


def _code_digest(vault: KeyVault, nonce: str, code: str) -> str:
    return vault.token(f"{nonce}:{code}", purpose=MOBILE_CODE_PURPOSE)


def request_mobile_code(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    *,
    source_address: str,
    now: dt.datetime,
) -> MobileCode:
    """Make a one-time code for the application's mobile number and keep only its keyed
    hash. Refused with 429 during the resend cool-down and past the codes allowed per
    number and per source address in 24 hours; 409 when the number is already proved."""
    if application.mobile_verified_at is not None:
        raise Conflict(mobile.ALREADY_PROVED, code="mobile_already_verified")
    latest = repository.latest_mobile_challenge(session, application.id)
    same_number = latest is not None and latest.mobile == application.mobile
    wait = mobile.resend_wait_seconds(latest.sent_at if latest and same_number else None, now)
    if wait:
        raise TooManyRequests(
            mobile.RESEND_WAIT,
            code="rate_limited.code_resend",
            retry_after_seconds=wait,
            seconds=str(wait),
        )
    settings = deps.settings
    since = mobile.window_start(now)
    source = source_address[:SOURCE_ADDRESS_LENGTH_MAX]
    per_number = settings.mobile_codes_per_number_per_day
    if repository.mobile_codes_sent_since(session, since, mobile=application.mobile) >= per_number:
        raise TooManyRequests(
            mobile.CODES_PER_NUMBER,
            code="rate_limited.codes_per_mobile",
            mobile=mobile.mask_mobile(application.mobile),
            limit=str(per_number),
        )
    per_address = settings.mobile_codes_per_address_per_day
    if repository.mobile_codes_sent_since(session, since, source=source) >= per_address:
        raise TooManyRequests(
            mobile.CODES_PER_ADDRESS,
            code="rate_limited.codes_per_address",
            limit=str(per_address),
        )
    code, nonce = mobile.new_code(), mobile.new_nonce()
    expires_at = now + dt.timedelta(minutes=limits.MOBILE_CODE_VALID_MINUTES)
    repository.insert_mobile_challenge(
        session,
        MobileChallenge(
            application_id=application.id,
            mobile=application.mobile,
            code_hash=_code_digest(deps.vault, nonce, code),
            nonce=nonce,
            source_address=source,
            sent_at=now,
            expires_at=expires_at,
            attempts=0,
            verified_at=None,
        ),
    )
    audit.record(
        session,
        applicant_actor(application),
        "application.mobile_code_sent",
        "application",
        application.id,
        {"mobile": mobile.mask_mobile(application.mobile)},
    )
    text = Translator(application.locale)(
        mobile.CODE_SMS, code=code, minutes=str(limits.MOBILE_CODE_VALID_MINUTES)
    )
    return MobileCode(code, application.mobile, text, expires_at, limits.MOBILE_CODE_RESEND_SECONDS)


def send_mobile_code(notifier: Notifier, sms: MobileCode) -> None:
    """Send the code straight to the number (never through the outbox, which would store
    it); the adapter keeps it out of its log. 503 when the SMS gateway fails."""
    try:
        notifier.send("sms", sms.mobile, sms.text, secret=sms.code)
    except DeliveryFailed as exc:
        raise Unavailable(mobile.SMS_UNAVAILABLE, code="sms_unavailable") from exc


def confirm_mobile(
    session: Session,
    deps: OnboardingDeps,
    application: Application,
    typed: str,
    *,
    now: dt.datetime,
) -> PosHubError | None:
    """Check a code the applicant typed. None: the number is proved, and the tracking link
    is queued to it. Otherwise the refusal, which the caller raises *after* committing,
    since a wrong code counts against the code's attempts."""
    code = mobile.normalise_code(typed)
    if code is None:
        return ValidationFailed(
            [
                FieldError(
                    "code",
                    "mobile_code.format",
                    mobile.CODE_FORMAT,
                    {"digits": str(limits.MOBILE_CODE_DIGITS)},
                )
            ]
        )
    if application.mobile_verified_at is not None:
        return Conflict(mobile.ALREADY_PROVED, code="mobile_already_verified")
    challenge = repository.latest_mobile_challenge(session, application.id)
    state = (
        mobile.ChallengeState(
            challenge.mobile, challenge.expires_at, challenge.attempts, challenge.verified_at
        )
        if challenge is not None
        else None
    )
    matches = challenge is not None and mobile.digests_match(
        challenge.code_hash, _code_digest(deps.vault, challenge.nonce, code)
    )
    verdict = mobile.judge(state, application.mobile, matches, now)
    actor = applicant_actor(application)
    if verdict is mobile.Verdict.WRONG:
        assert challenge is not None
        challenge.attempts += 1
        audit.record(
            session,
            actor,
            "application.mobile_code_wrong",
            "application",
            application.id,
            {"attempts": challenge.attempts},
        )
        left = mobile.attempts_left(challenge.attempts)
        if left:
            return ValidationFailed(
                [FieldError("code", "mobile_code.wrong", mobile.CODE_WRONG, {"left": str(left)})]
            )
        verdict = mobile.Verdict.EXHAUSTED
    if verdict is mobile.Verdict.EXHAUSTED:
        return TooManyRequests(mobile.CODE_EXHAUSTED, code="mobile_code.exhausted")
    if verdict is mobile.Verdict.EXPIRED:
        return ValidationFailed([FieldError("code", "mobile_code.expired", mobile.CODE_EXPIRED)])
    if verdict is mobile.Verdict.NO_CODE:
        return Conflict(mobile.CODE_NONE, code="mobile_code.none")
    assert challenge is not None
    challenge.verified_at = now
    application.mobile_verified_at = now
    audit.record(
        session,
        actor,
        "application.mobile_verified",
        "application",
        application.id,
        {"mobile": mobile.mask_mobile(application.mobile)},
    )
    # The first message to the number: where to follow the application.
    draft = application.status == ApplicationStatus.DRAFT
    _notify_applicant(
        session,
        application,
        "application_created" if draft else "mobile_confirmed",
        {
            "tracking_number": application.tracking_number,
            "url": tracking_url(deps.settings, application),
        },
    )
    return None


def access_code_throttled(session: Session, source: str, now: dt.datetime) -> PosHubError | None:
    """429 when ``source`` entered too many wrong access codes on the tracking login."""
    minutes = limits.ACCESS_CODE_FAILURE_WINDOW_MINUTES
    since = now - dt.timedelta(minutes=minutes)
    failures = repository.access_code_failures_since(
        session, source[:SOURCE_ADDRESS_LENGTH_MAX], since
    )
    if failures < limits.ACCESS_CODE_FAILURES_PER_ADDRESS:
        return None
    return TooManyRequests(
        mobile.ACCESS_CODE_THROTTLED,
        code="rate_limited.access_code",
        retry_after_seconds=minutes * 60,
        minutes=str(minutes),
    )


def record_access_code_failure(session: Session, source: str, now: dt.datetime) -> None:
    """Count a wrong access code from ``source``; the address's failures older than the
    throttle's window are deleted, so the table holds at most a window's worth."""
    window = dt.timedelta(minutes=limits.ACCESS_CODE_FAILURE_WINDOW_MINUTES)
    repository.insert_access_code_failure(
        session, source[:SOURCE_ADDRESS_LENGTH_MAX], now, forget_before=now - window
    )
