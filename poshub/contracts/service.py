"""Contract use cases (R5, R18): generate, sign, countersign, amend, verify.

The PDF is rendered once, when a version is generated; its exact bytes go to the
content-addressed store and their SHA-256 to the row. Signing binds the signer to that
hash: the merchant's client sends the hash of the bytes it downloaded, the host checks it
and re-hashes the stored file before recording the signature, and again before the
countersignature, so a file altered in the store or a copy altered in transit is caught.
Never commits.
"""

from __future__ import annotations

import calendar as pycalendar
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from poshub.catalog import repository as catalog_repository
from poshub.catalog.models import FeePlan
from poshub.contracts import document, repository
from poshub.contracts.fonts import ContractGlyphMissing
from poshub.contracts.models import AmendmentKind, Contract, ContractStatus, SettlementCycle
from poshub.contracts.schemas import AmendmentIn, ContractIn, SignIn
from poshub.core import audit, ids, limits
from poshub.core.audit import Actor, ActorKind
from poshub.core.clock import business_date
from poshub.core.crypto import mask_mobile, mask_tail, sha256_hex
from poshub.core.errors import N_, Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from poshub.core.sequences import take_next
from poshub.merchants import service as merchant_service
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.merchants.service import MERCHANT_ACCOUNT_CONTEXT
from poshub.notify import service as notify
from poshub.onboarding import repository as onboarding_repository
from poshub.onboarding import rules
from poshub.onboarding.models import Application
from poshub.onboarding.service import OnboardingDeps, tracking_url
from poshub.staff.service import Principal

ACCOUNT_CONTEXT = "contracts.account_number"
DATA_BACKUP_FREQUENCY = "daily"
"""What the contract promises about the acquirer's backups of the merchant's data (R5)."""
REFUND_WINDOW_DAYS = 180
"""A merchant may refund (退货) a sale up to this many days later; the fee on the original
sale is not returned, as is usual for Chinese acquirers."""
AUTO_RENEWAL_MONTHS = 12
PLAN_RATES = ("debit_rate", "credit_rate", "qr_rate", "d0_surcharge_rate")
"""Fee-plan rates a contract freezes (Decimal fractions; kept as strings in the snapshot)."""
PLAN_AMOUNTS = (
    "debit_cap_fen",
    "deposit_fen",
    "deposit_refund_volume_fen",
    "deposit_refund_days",
    "monthly_rent_fen",
    "rent_waiver_volume_fen",
    "maintenance_fee_fen",
)
"""Fee-plan amounts (fen) and days a contract freezes, under the plan's own names."""


def _add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, pycalendar.monthrange(year, month)[1]))


def end_date(effective_from: dt.date, term_months: int) -> dt.date:
    """The last day of the term: the day before the same date ``term_months`` later."""
    return _add_months(effective_from, term_months) - dt.timedelta(days=1)


def _plan_for(session: Session, code: str, applicant_kind: str, on: dt.date, field: str) -> FeePlan:
    plans = {p.code: p for p in catalog_repository.fee_plans_in_force(session, on)}
    plan = plans.get(code.strip().upper())
    if plan is None:
        raise ValidationFailed(
            [
                FieldError(
                    field,
                    "fee_plan_code.unknown",
                    N_("No fee plan {code} is in force on {date}."),
                    {"code": code[:32], "date": on.isoformat()},
                )
            ]
        )
    if applicant_kind not in plan.applicant_kinds.split(","):
        raise ValidationFailed(
            [
                FieldError(
                    field,
                    "fee_plan_code.not_offered",
                    N_("The {code} plan is not offered to this kind of applicant."),
                    {"code": plan.code},
                )
            ]
        )
    return plan


def _snapshot(
    deps: OnboardingDeps,
    merchant: Merchant,
    application: Application,
    plan: FeePlan,
    *,
    contract_number: str,
    version: int,
    cycle: SettlementCycle,
    term_months: int,
    effective_from: dt.date,
    language: str,
    bank_name: str,
    account_name: str,
    account_number_masked: str,
    generated_at: dt.datetime,
    previous: Contract | None,
    change_summary: str | None,
    changes: tuple[list[str], list[str]],
    terminals: list[TerminalTerms],
) -> dict[str, Any]:
    """Every term of this version, as plain JSON: the contract is re-rendered from this,
    never from live rows that may change later."""
    settings = deps.settings
    business = merchant.applicant_kind != "individual"
    return {
        "contract_number": contract_number,
        "version": version,
        "language": language,
        "generated_at": generated_at.isoformat(),
        "effective_from": effective_from.isoformat(),
        "term_months": term_months,
        "end_date": end_date(effective_from, term_months).isoformat(),
        "acquirer_name_zh": settings.acquirer_name_zh,
        "acquirer_name_en": settings.acquirer_name_en,
        "acquirer_address": settings.acquirer_address,
        "acquirer_licence": settings.acquirer_licence,
        "acquirer_licence_kind": settings.acquirer_licence_kind,
        "acquirer_hotline": settings.acquirer_hotline,
        # Party B: a business under its business name (商户名称) with its legal
        # representative or operator beside it; an individual is the person.
        "merchant_kind": merchant.applicant_kind,
        "merchant_legal_name": merchant.business_name if business else merchant.legal_name,
        "merchant_business_name": merchant.business_name,
        "merchant_representative": merchant.legal_name if business else None,
        "mid": merchant.mid,
        "merchant_identifier_kind": "uscc" if business and merchant.uscc else "resident_id",
        "merchant_identifier_masked": (
            merchant.uscc if business and merchant.uscc else application.id_number_masked
        ),
        "merchant_address": " ".join(
            part
            for part in (
                application.province,
                application.city,
                application.district,
                application.address_detail,
            )
            if part
        ),
        "merchant_mobile_masked": mask_mobile(merchant.mobile),
        "plan_code": plan.code,
        "plan_version": plan.version,
        "plan_name_zh": plan.name_zh,
        "plan_name_en": plan.name_en,
        **{name: str(getattr(plan, name)) for name in PLAN_RATES},
        **{name: getattr(plan, name) for name in PLAN_AMOUNTS},
        "settlement_cycle": str(cycle),
        "bank_name": bank_name,
        "account_name": account_name,
        "account_number_masked": account_number_masked,
        "terminals": [list(t) for t in terminals],
        "data_backup_frequency": DATA_BACKUP_FREQUENCY,
        "refund_window_days": REFUND_WINDOW_DAYS,
        "auto_renewal_months": AUTO_RENEWAL_MONTHS,
        "previous_version": previous.version if previous else None,
        "previous_sha256": previous.pdf_sha256 if previous else None,
        "change_summary": change_summary,
        "changes_zh": changes[0],
        "changes_en": changes[1],
    }


def terms_of(snapshot: dict[str, Any]) -> document.ContractTerms:
    """The renderer's input from a stored snapshot."""
    s = snapshot
    previous = s.get("previous_version")
    return document.ContractTerms(
        contract_number=s["contract_number"],
        version=s["version"],
        language=s["language"],
        generated_at=dt.datetime.fromisoformat(s["generated_at"]),
        effective_from=dt.date.fromisoformat(s["effective_from"]),
        term_months=s["term_months"],
        end_date=dt.date.fromisoformat(s["end_date"]),
        acquirer=document.Acquirer(
            name_zh=s["acquirer_name_zh"],
            name_en=s["acquirer_name_en"],
            address=s["acquirer_address"],
            licence_kind=s.get("acquirer_licence_kind", "payment"),
            licence_number=s["acquirer_licence"],
            service_hotline=s["acquirer_hotline"],
        ),
        merchant=document.Merchant(
            legal_name=s["merchant_legal_name"],
            business_name=s["merchant_business_name"],
            mid=s["mid"],
            identifier_kind=s["merchant_identifier_kind"],
            identifier_masked=s["merchant_identifier_masked"],
            address=s["merchant_address"],
            mobile_masked=s["merchant_mobile_masked"],
            representative=s.get("merchant_representative"),
            kind=s.get("merchant_kind"),
        ),
        fees=document.FeeTerms(
            code=s["plan_code"],
            version=s["plan_version"],
            name_zh=s["plan_name_zh"],
            name_en=s["plan_name_en"],
            **{name: Decimal(s[name]) for name in PLAN_RATES},  # type: ignore[arg-type]
            **{name: s[name] for name in PLAN_AMOUNTS},
        ),
        settlement_cycle=s["settlement_cycle"],
        settlement_account=document.SettlementAccount(
            bank_name=s["bank_name"],
            account_name=s["account_name"],
            account_number_masked=s["account_number_masked"],
        ),
        terminals=tuple(
            document.TerminalLine(line[0], line[1], line[2]) for line in s["terminals"]
        ),
        data_backup_frequency=s["data_backup_frequency"],
        refund_policy=document.RefundPolicy(
            window_days=s["refund_window_days"], fee_refunded=False
        ),
        auto_renewal_months=s["auto_renewal_months"],
        amendment=(
            document.Amendment(
                previous_contract_number=s["contract_number"],
                previous_version=previous,
                changes_zh=tuple(s["changes_zh"]),
                changes_en=tuple(s["changes_en"]),
                previous_sha256=s["previous_sha256"],
            )
            if previous
            else None
        ),
    )


TerminalTerms = tuple[str, str, int, str | None]
"""One terminal line of a contract: ``(name_zh, name_en, count, model_code)``. Snapshots
written before the model code was kept have three elements; the code is then found by name
(:func:`terminal_lines`), or is None when no catalogue model has that name."""


def _terminal_line(session: Session, code: str, count: int) -> TerminalTerms:
    model = catalog_repository.terminal_model(session, code)
    return (model.name_zh if model else code, model.name_en if model else code, count, code)


def _terminal_lines(session: Session, application: Application) -> list[TerminalTerms]:
    return [
        _terminal_line(session, line.model_code, line.count)
        for line in onboarding_repository.terminal_lines(session, application.id)
    ]


def terminal_lines(session: Session, contract: Contract) -> list[TerminalTerms]:
    """The terminal lines a contract version covers, each with its model code."""
    lines: list[TerminalTerms] = []
    by_name: dict[str, str] | None = None
    for line in contract.terms.get("terminals", []):
        code: str | None = line[3] if len(line) > 3 else None
        if code is None:
            if by_name is None:
                models = catalog_repository.terminal_models(session, active_only=False)
                by_name = {m.name_zh: m.code for m in models} | {m.name_en: m.code for m in models}
            code = by_name.get(line[0]) or by_name.get(line[1])
        lines.append((line[0], line[1], int(line[2]), code))
    return lines


def terminal_allowance(session: Session, contract: Contract) -> dict[str, int]:
    """Model code → how many terminals of it the contract version covers. A line whose
    model cannot be told covers no model: allocation under it is refused, not guessed."""
    allowance: dict[str, int] = {}
    for _zh, _en, count, code in terminal_lines(session, contract):
        if code is not None:
            allowance[code] = allowance.get(code, 0) + count
    return allowance


def _render_and_store(deps: OnboardingDeps, snapshot: dict[str, Any]) -> tuple[str, int]:
    try:
        pdf = document.render_pdf(terms_of(snapshot))
    except ContractGlyphMissing as error:
        # A name the font cannot draw would be printed without that character: a different
        # party. Refuse, and let staff correct the record or install a fuller font.
        raise Conflict(
            N_(
                "The contract cannot be printed: a name or address contains a character the "
                "contract font lacks. Correct the record or install a font that has it."
            ),
            code="contract_glyph_missing",
        ) from error
    digest = deps.store.put(pdf)
    return digest, len(pdf)


def generate(
    session: Session,
    deps: OnboardingDeps,
    merchant: Merchant,
    staff: Principal,
    data: ContractIn,
    *,
    now: dt.datetime,
) -> Contract:
    """Version 1 of an approved merchant's contract, waiting for the merchant's signature.
    A previous unsigned draft is withdrawn (e.g. a different plan was chosen)."""
    if repository.latest_signed(session, merchant.id) is not None:
        raise Conflict(
            N_("Merchant {mid} already has a signed contract; change it with an amendment."),
            code="contract_exists",
            mid=merchant.mid,
        )
    if merchant.status != MerchantStatus.APPROVED:
        raise Conflict(
            N_("A contract can be generated for an approved merchant; {mid} is {status}."),
            code="merchant_not_approved",
            mid=merchant.mid,
            status=merchant.status,
        )
    _withdraw_pending(session, merchant, staff.actor, now=now)
    application = session.get(Application, merchant.application_id)
    assert application is not None  # foreign key
    effective_from = data.effective_from or business_date(now)
    _check_effective_date(effective_from, business_date(now))
    plan = _plan_for(
        session, data.fee_plan_code, merchant.applicant_kind, effective_from, "fee_plan_code"
    )
    account_number = deps.vault.decrypt(
        merchant.account_number_enc, context=MERCHANT_ACCOUNT_CONTEXT
    )
    number = ids.make_contract_number(
        deps.settings.acquirer_code,
        now.year,
        take_next(
            session, f"{ids.CONTRACT_SEQUENCE_NAME}{now.year}", maximum=ids.CONTRACT_SEQUENCE_MAX
        ),
    )
    return _create_version(
        session,
        deps,
        merchant,
        application,
        plan,
        staff,
        contract_number=number,
        version=1,
        cycle=data.settlement_cycle,
        term_months=data.term_months,
        effective_from=effective_from,
        language=data.language,
        bank_name=merchant.bank_name,
        account_name=merchant.account_name,
        account_number=account_number,
        account_number_masked=merchant.account_number_masked,
        previous=None,
        amendment_kind=None,
        change_summary=None,
        changes=([], []),
        terminals=_terminal_lines(session, application),
        now=now,
    )


def _create_version(
    session: Session,
    deps: OnboardingDeps,
    merchant: Merchant,
    application: Application,
    plan: FeePlan,
    staff: Principal,
    *,
    contract_number: str,
    version: int,
    cycle: SettlementCycle,
    term_months: int,
    effective_from: dt.date,
    language: str,
    bank_name: str,
    account_name: str,
    account_number: str,
    account_number_masked: str,
    previous: Contract | None,
    amendment_kind: AmendmentKind | None,
    change_summary: str | None,
    changes: tuple[list[str], list[str]],
    terminals: list[TerminalTerms],
    now: dt.datetime,
) -> Contract:
    snapshot = _snapshot(
        deps,
        merchant,
        application,
        plan,
        contract_number=contract_number,
        version=version,
        cycle=cycle,
        term_months=term_months,
        effective_from=effective_from,
        language=language,
        bank_name=bank_name,
        account_name=account_name,
        account_number_masked=account_number_masked,
        generated_at=now,
        previous=previous,
        change_summary=change_summary,
        changes=changes,
        terminals=terminals,
    )
    digest, size = _render_and_store(deps, snapshot)
    contract = Contract(
        id=ids.new_id(),
        contract_number=contract_number,
        version=version,
        merchant_id=merchant.id,
        status=str(ContractStatus.AWAITING_MERCHANT),
        amendment_kind=str(amendment_kind) if amendment_kind else None,
        change_summary=change_summary,
        fee_plan_id=plan.id,
        settlement_cycle=str(cycle),
        term_months=term_months,
        effective_from=effective_from,
        end_date=end_date(effective_from, term_months),
        language=language,
        bank_name=bank_name,
        account_name=account_name,
        account_number_enc=deps.vault.encrypt(account_number, context=ACCOUNT_CONTEXT),
        account_number_masked=account_number_masked,
        terms=snapshot,
        pdf_sha256=digest,
        pdf_size_bytes=size,
        generated_at=now,
        generated_by_id=staff.user_id,
    )
    session.add(contract)
    session.flush()
    audit.record(
        session,
        staff.actor,
        "contract.generated",
        "contract",
        contract.id,
        {
            "contract_number": contract_number,
            "version": version,
            "mid": merchant.mid,
            "plan": f"{plan.code}/v{plan.version}",
            "pdf_sha256": digest,
            "amendment_kind": contract.amendment_kind,
            "terminals": {code or name_zh: count for name_zh, _en, count, code in terminals},
        },
    )
    notify.enqueue(
        session,
        subject_type="merchant",
        subject_id=merchant.mid,
        recipient=merchant.mobile,
        template="contract_ready",
        params={
            "contract_number": contract_number,
            "version": str(version),
            "url": tracking_url(deps.settings, application),
        },
        locale=application.locale,
    )
    return contract


def _check_effective_date(effective_from: dt.date, today: dt.date) -> None:
    if effective_from < today:
        raise ValidationFailed(
            [
                FieldError(
                    "effective_from",
                    "effective_from.past",
                    N_("A contract or amendment cannot take effect in the past."),
                )
            ]
        )
    if (effective_from - today).days > limits.CONTRACT_EFFECTIVE_AHEAD_DAYS_MAX:
        raise ValidationFailed(
            [
                FieldError(
                    "effective_from",
                    "effective_from.too_far",
                    N_("A contract or amendment takes effect within a year."),
                )
            ]
        )


def _withdraw_pending(
    session: Session, merchant: Merchant, actor: Actor, *, now: dt.datetime
) -> None:
    pending = repository.pending(session, merchant.id)
    if pending is None:
        return
    if pending.status == ContractStatus.AWAITING_COUNTERSIGN:
        raise Conflict(
            N_(
                "Contract {number} version {version} is signed by the merchant and waits for the "
                "countersignature; countersign it before preparing another version."
            ),
            code="awaiting_countersign",
            number=pending.contract_number,
            version=str(pending.version),
        )
    pending.status = str(ContractStatus.WITHDRAWN)
    pending.withdrawn_at = now
    audit.record(session, actor, "contract.withdrawn", "contract", pending.id, {})


def amend(
    session: Session,
    deps: OnboardingDeps,
    merchant: Merchant,
    staff: Principal,
    data: AmendmentIn,
    *,
    now: dt.datetime,
) -> Contract:
    """A new version of the signed contract: the change named by ``kind``, effective from a
    date; every other term carried over from the latest signed version."""
    current = repository.latest_signed(session, merchant.id)
    if current is None:
        raise Conflict(
            N_("Merchant {mid} has no signed contract to amend."),
            code="no_signed_contract",
            mid=merchant.mid,
        )
    _check_effective_date(data.effective_from, business_date(now))
    if data.effective_from < current.effective_from:
        raise ValidationFailed(
            [
                FieldError(
                    "effective_from",
                    "effective_from.before_current",
                    N_("An amendment cannot take effect before the version it amends ({date})."),
                    {"date": current.effective_from.isoformat()},
                )
            ]
        )
    application = session.get(Application, merchant.application_id)
    assert application is not None
    plan = session.get(FeePlan, current.fee_plan_id)
    assert plan is not None
    cycle = SettlementCycle(current.settlement_cycle)
    bank_name, account_name = current.bank_name, current.account_name
    account_number = deps.vault.decrypt(current.account_number_enc, context=ACCOUNT_CONTEXT)
    masked = current.account_number_masked
    old_plan = f"{plan.code} v{plan.version}"
    terminals = terminal_lines(session, current)
    terminal_changes: tuple[list[str], list[str]] | None = None
    if data.kind == AmendmentKind.TERMINAL_CHANGE:
        old_terminals = terminals
        terminals = _amended_terminals(session, merchant, old_terminals, data)
        terminal_changes = _describe_terminal_change(old_terminals, terminals, data.effective_from)
    elif data.kind == AmendmentKind.FEE_CHANGE:
        if not data.fee_plan_code:
            raise ValidationFailed(
                [
                    FieldError(
                        "fee_plan_code", "fee_plan_code.required", N_("Choose the new fee plan.")
                    )
                ]
            )
        plan = _plan_for(
            session,
            data.fee_plan_code,
            merchant.applicant_kind,
            data.effective_from,
            "fee_plan_code",
        )
    elif data.kind == AmendmentKind.SETTLEMENT_CYCLE_CHANGE:
        if data.settlement_cycle is None or data.settlement_cycle == cycle:
            raise ValidationFailed(
                [
                    FieldError(
                        "settlement_cycle",
                        "settlement_cycle.unchanged",
                        N_("Choose a settlement cycle different from the current one."),
                    )
                ]
            )
        cycle = data.settlement_cycle
    else:
        account = data.settlement_account
        if account is None:
            raise ValidationFailed(
                [
                    FieldError(
                        "settlement_account",
                        "settlement_account.required",
                        N_("Enter the new settlement account."),
                    )
                ]
            )
        errors: list[FieldError] = []
        number = rules.normalize_account_number(account.account_number)
        violation = rules.check_account_number(number)
        if violation is not None:
            errors.append(
                FieldError(
                    "settlement_account.account_number",
                    violation.code,
                    rules.MESSAGES[violation.code],
                    violation.params,
                )
            )
        if not rules.names_match(account.account_name, merchant.legal_name, merchant.business_name):
            errors.append(
                FieldError(
                    "settlement_account.account_name",
                    "settlement_account.account_name.mismatch",
                    N_("The account must be in the merchant's legal or business name."),
                )
            )
        if errors:
            raise ValidationFailed(errors)
        bank_name, account_name = account.bank_name.strip(), account.account_name.strip()
        account_number, masked = number, mask_tail(number)
    changes = terminal_changes or _describe_change(
        data.kind,
        old_plan=old_plan,
        new_plan=f"{plan.code} v{plan.version}",
        old_cycle=current.settlement_cycle,
        new_cycle=str(cycle),
        old_account=current.account_number_masked,
        new_account=masked,
        effective_from=data.effective_from,
    )
    _withdraw_pending(session, merchant, staff.actor, now=now)
    return _create_version(
        session,
        deps,
        merchant,
        application,
        plan,
        staff,
        contract_number=current.contract_number,
        version=current.version + 1,
        cycle=cycle,
        term_months=current.term_months,
        effective_from=data.effective_from,
        language=data.language or current.language,
        bank_name=bank_name,
        account_name=account_name,
        account_number=account_number,
        account_number_masked=masked,
        previous=current,
        amendment_kind=data.kind,
        change_summary=data.summary.strip() or None,
        changes=changes,
        terminals=terminals,
        now=now,
    )


def _amended_terminals(
    session: Session, merchant: Merchant, current: list[TerminalTerms], data: AmendmentIn
) -> list[TerminalTerms]:
    """The terminal lines of a supplementary agreement (补充协议): the current lines with the
    counts given raised and the models given added. Every wrong line is reported at once."""
    if not data.terminals:
        raise ValidationFailed(
            [
                FieldError(
                    "terminals",
                    "terminals.required",
                    N_("List the terminal models and the counts the amended contract covers."),
                )
            ]
        )
    known = {m.code for m in catalog_repository.terminal_models(session)}
    counts = {code: count for _zh, _en, count, code in current if code is not None}
    errors: list[FieldError] = []
    seen: set[str] = set()
    amended = dict(counts)
    for index, line in enumerate(data.terminals):
        code = line.model_code.strip().upper()
        if code not in known:
            errors.append(
                FieldError(
                    f"terminals[{index}].model_code",
                    "terminals.model_unknown",
                    N_("Unknown terminal model {model}."),
                    {"model": code[:32]},
                )
            )
            continue
        if code in seen:
            errors.append(
                FieldError(
                    f"terminals[{index}].model_code",
                    "terminals.model_repeated",
                    N_("Terminal model {model} is listed twice."),
                    {"model": code},
                )
            )
            continue
        seen.add(code)
        if line.count < counts.get(code, 0):
            errors.append(
                FieldError(
                    f"terminals[{index}].count",
                    "terminals.count_lowered",
                    N_(
                        "The contract covers {count} terminals of model {model}; a "
                        "supplementary agreement raises the count, it cannot lower it."
                    ),
                    {"model": code, "count": str(counts[code])},
                )
            )
            continue
        amended[code] = line.count
    if not errors and amended == counts:
        errors.append(
            FieldError(
                "terminals",
                "terminals.unchanged",
                N_("Raise a count or add a model: these are the terminals the contract covers."),
            )
        )
    if not errors:
        violation = rules.check_terminal_count(merchant.applicant_kind, sum(amended.values()))
        if violation is not None:
            errors.append(
                FieldError(
                    "terminals",
                    violation.code,
                    rules.MESSAGES[violation.code],
                    violation.params,
                )
            )
    if errors:
        raise ValidationFailed(errors)
    lines: list[TerminalTerms] = [
        (zh, en, amended[code] if code is not None else count, code)
        for zh, en, count, code in current
    ]
    lines += [
        _terminal_line(session, code, amended[code])
        for code in sorted(amended)
        if code not in counts
    ]
    return lines


def _describe_terminal_change(
    old: list[TerminalTerms], new: list[TerminalTerms], effective_from: dt.date
) -> tuple[list[str], list[str]]:
    """The supplementary agreement's change, in both contract languages."""

    def listed(lines: list[TerminalTerms], zh: bool) -> str:
        if zh:
            return "、".join(f"{name_zh} {count} 台" for name_zh, _en, count, _code in lines)
        return ", ".join(f"{count} × {name_en}" for _zh, name_en, count, _code in lines)

    day = effective_from.isoformat()
    return (
        [
            f"补充协议：自 {day} 起，甲方向乙方布放的终端由 {listed(old, True)}"
            f"（共 {sum(line[2] for line in old)} 台）变更为 {listed(new, True)}"
            f"（共 {sum(line[2] for line in new)} 台）。"
        ],
        [
            f"Supplementary agreement: from {day}, the terminals Party A deploys to Party B "
            f"change from {listed(old, False)} ({sum(line[2] for line in old)} in total) to "
            f"{listed(new, False)} ({sum(line[2] for line in new)} in total)."
        ],
    )


def _describe_change(
    kind: AmendmentKind,
    *,
    old_plan: str,
    new_plan: str,
    old_cycle: str,
    new_cycle: str,
    old_account: str,
    new_account: str,
    effective_from: dt.date,
) -> tuple[list[str], list[str]]:
    """The amendment's change, in both contract languages (printed in the PDF)."""
    cycle_zh = {"D0": "当日到账（D0）", "T1": "次一工作日到账（T+1）"}
    cycle_en = {"D0": "same day (D0)", "T1": "next working day (T+1)"}
    day = effective_from.isoformat()
    if kind == AmendmentKind.FEE_CHANGE:
        return (
            [f"自 {day} 起，费率方案由 {old_plan} 变更为 {new_plan}。"],
            [f"From {day}, the fee plan changes from {old_plan} to {new_plan}."],
        )
    if kind == AmendmentKind.SETTLEMENT_CYCLE_CHANGE:
        return (
            [f"自 {day} 起，结算周期由{cycle_zh[old_cycle]}变更为{cycle_zh[new_cycle]}。"],
            [
                f"From {day}, settlement changes from {cycle_en[old_cycle]} to "
                f"{cycle_en[new_cycle]}."
            ],
        )
    return (
        [f"自 {day} 起，结算账户由 {old_account} 变更为 {new_account}。"],
        [f"From {day}, the settlement account changes from {old_account} to {new_account}."],
    )


# --- Reading and tamper detection ------------------------------------------------------


class ContractTampered(Conflict):
    code = "contract_tampered"


TAMPERED = N_(
    "The stored PDF of contract {number} is missing or does not match its signed hash: it was "
    "altered. Restore it from backup; nothing can be signed meanwhile."
)


PURGED = N_(
    "The PDF of contract {number} was deleted with the merchant's personal data after the "
    "retention period; its hash is kept."
)


def pdf_bytes(deps: OnboardingDeps, contract: Contract) -> bytes:
    """The stored PDF, verified against the hash in the row; a mismatch is refused, and a
    purged contract has none (404 ``contract_purged``)."""
    if contract.purged_at is not None:
        raise NotFound(PURGED, code="contract_purged", number=contract.contract_number)
    try:
        # The store re-hashes what it reads and refuses bytes that do not match.
        data = deps.store.get(contract.pdf_sha256)
    except OSError as error:
        raise ContractTampered(
            TAMPERED,
            number=contract.contract_number,
        ) from error
    if sha256_hex(data) != contract.pdf_sha256:  # belt and braces: never serve a mismatch
        raise ContractTampered(
            TAMPERED,
            number=contract.contract_number,
        )
    return data


@dataclass(frozen=True)
class Verification:
    sha256: str
    contract: Contract | None


def verify_copy(session: Session, data: bytes) -> Verification:
    """Is this exact PDF one of ours? Any change to a byte gives another hash, so an
    altered copy matches nothing."""
    digest = sha256_hex(data)
    return Verification(digest, repository.by_pdf_sha256(session, digest))


def html(contract: Contract) -> str:
    return document.render_html(terms_of(contract.terms))


# --- Signatures ------------------------------------------------------------------------


def sign_by_merchant(
    session: Session,
    deps: OnboardingDeps,
    contract: Contract,
    merchant: Merchant,
    data: SignIn,
    *,
    ip: str,
    user_agent: str,
    now: dt.datetime,
) -> Contract:
    if contract.status != ContractStatus.AWAITING_MERCHANT:
        raise Conflict(
            N_("This contract is {status}; only a contract awaiting your signature can be signed."),
            code="not_awaiting_merchant",
            status=contract.status,
        )
    errors: list[FieldError] = []
    if not data.agree:
        errors.append(
            FieldError(
                "agree", "agree.required", N_("Confirm that you read and accept every term.")
            )
        )
    if not rules.names_match(data.signer_name, merchant.legal_name):
        errors.append(
            FieldError(
                "signer_name",
                "signer_name.mismatch",
                N_("Sign with the legal name on the application."),
            )
        )
    if errors:
        raise ValidationFailed(errors)
    if data.pdf_sha256.lower() != contract.pdf_sha256:
        raise Conflict(
            N_(
                "The copy you reviewed is not this contract's PDF (its SHA-256 differs). Download "
                "the contract again, review it and sign that copy."
            ),
            code="pdf_hash_mismatch",
        )
    pdf_bytes(deps, contract)  # the stored file is still what the hash says
    contract.status = str(ContractStatus.AWAITING_COUNTERSIGN)
    contract.merchant_signer_name = data.signer_name.strip()
    contract.merchant_signed_at = now
    contract.merchant_signed_ip = ip[:64]
    contract.merchant_signed_user_agent = user_agent[:300]
    contract.merchant_signed_sha256 = data.pdf_sha256.lower()
    audit.record(
        session,
        Actor(ActorKind.APPLICANT, merchant.application_id),
        "contract.signed_by_merchant",
        "contract",
        contract.id,
        {
            "contract_number": contract.contract_number,
            "version": contract.version,
            "pdf_sha256": contract.pdf_sha256,
            "ip": ip[:64],
        },
    )
    return contract


def countersign(
    session: Session,
    deps: OnboardingDeps,
    contract: Contract,
    merchant: Merchant,
    staff: Principal,
    *,
    ip: str,
    now: dt.datetime,
) -> Contract:
    if contract.status != ContractStatus.AWAITING_COUNTERSIGN:
        raise Conflict(
            N_(
                "Contract {number} is {status}; it can be countersigned once the merchant has "
                "signed it."
            ),
            code="not_awaiting_countersign",
            number=contract.contract_number,
            status=contract.status,
        )
    if contract.generated_by_id == staff.user_id:
        raise Forbidden(
            N_(
                "You prepared this contract, so another colleague must countersign it (maker-checker)."
            ),
            code="maker_checker",
        )
    pdf_bytes(deps, contract)
    contract.status = str(ContractStatus.SIGNED)
    contract.countersigned_at = now
    contract.countersigned_by_id = staff.user_id
    contract.countersigned_ip = ip[:64]
    if contract.version == 1:
        merchant_service.contract_signed(merchant, now=now)
    audit.record(
        session,
        staff.actor,
        "contract.countersigned",
        "contract",
        contract.id,
        {
            "contract_number": contract.contract_number,
            "version": contract.version,
            "pdf_sha256": contract.pdf_sha256,
        },
    )
    application = session.get(Application, merchant.application_id)
    notify.enqueue(
        session,
        subject_type="merchant",
        subject_id=merchant.mid,
        recipient=merchant.mobile,
        template="contract_signed",
        params={
            "contract_number": contract.contract_number,
            "version": str(contract.version),
            "effective_from": contract.effective_from.isoformat(),
        },
        locale=application.locale if application else deps.settings.default_locale,
    )
    return contract
