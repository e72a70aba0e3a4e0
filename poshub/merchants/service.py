"""Merchant use cases: the look-up by MID, creation when an application is approved, and
the status moves that contracts, terminals and fieldwork make happen.

Every function works inside the caller's transaction and never commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from poshub.core import audit, ids
from poshub.core.audit import Actor
from poshub.core.crypto import KeyVault
from poshub.core.errors import N_, Conflict, FieldError, NotFound, ValidationFailed
from poshub.core.sequences import take_next
from poshub.merchants import hours, repository
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.merchants.states import advance

MERCHANT_ACCOUNT_CONTEXT = "merchants.account_number"
"""Associated data of the merchant's encrypted settlement account number."""
MID_SEQUENCE_PREFIX = "mid:"
"""Name prefix of the gap-free MID sequences in ``id_sequences`` (one per MID prefix)."""


@dataclass(frozen=True, slots=True)
class NewMerchant:
    """What a merchant is created from: the approved application's vetted data."""

    application_id: str
    applicant_kind: str
    legal_name: str
    business_name: str
    id_number_token: str
    uscc: str | None
    mcc: str
    region_code: str
    """GB/T 2260 county code; its first four digits go into the MID."""
    mobile: str
    bank_name: str
    account_name: str
    account_number: str
    """In clear: encrypted here under the merchant's own context."""
    account_number_masked: str
    opening_time: str | None = None
    """Declared business hours (``HH:MM``, both or neither; poshub/merchants/hours.py)."""
    closing_time: str | None = None


def get_merchant(session: Session, mid: str) -> Merchant:
    """The merchant with this MID, or 404 naming it."""
    merchant = repository.by_mid(session, mid)
    if merchant is None:
        raise NotFound(N_("No merchant with MID {mid}."), code="merchant_not_found", mid=mid[:15])
    return merchant


def create_merchant(
    session: Session, vault: KeyVault, acquirer_code: str, new: NewMerchant, *, now: dt.datetime
) -> Merchant:
    """A new ``approved`` merchant with the next MID of its prefix (acquirer, area, MCC)."""
    area_code = new.region_code[:4]
    prefix = ids.mid_prefix(acquirer_code, area_code, new.mcc)
    sequence = take_next(session, MID_SEQUENCE_PREFIX + prefix, maximum=ids.MID_SEQUENCE_MAX)
    merchant = Merchant(
        mid=ids.make_mid(acquirer_code, area_code, new.mcc, sequence),
        application_id=new.application_id,
        status=str(MerchantStatus.APPROVED),
        applicant_kind=new.applicant_kind,
        legal_name=new.legal_name,
        business_name=new.business_name,
        id_number_token=new.id_number_token,
        uscc=new.uscc,
        mcc=new.mcc,
        region_code=new.region_code,
        mobile=new.mobile,
        bank_name=new.bank_name,
        account_name=new.account_name,
        account_number_enc=vault.encrypt(new.account_number, context=MERCHANT_ACCOUNT_CONTEXT),
        account_number_masked=new.account_number_masked,
        opening_time=new.opening_time,
        closing_time=new.closing_time,
        created_at=now,
    )
    session.add(merchant)
    session.flush()
    return merchant


def contract_signed(merchant: Merchant, *, now: dt.datetime) -> None:
    """The merchant's first contract is signed by both parties: ``contracted``."""
    merchant.status = advance(merchant.status, MerchantStatus.CONTRACTED)
    merchant.contracted_at = now


def terminal_allocated(merchant: Merchant) -> None:
    """A terminal was allocated under the MID: at least ``provisioning``."""
    merchant.status = advance(merchant.status, MerchantStatus.PROVISIONING)


def terminal_activated(merchant: Merchant, *, now: dt.datetime) -> bool:
    """A terminal passed its acceptance test: ``live``, dated by the first such test.
    True when this made the merchant live (it was not already)."""
    was_live = merchant.status == MerchantStatus.LIVE
    merchant.status = advance(merchant.status, MerchantStatus.LIVE)
    if not was_live and merchant.live_at is None:
        merchant.live_at = now
    return not was_live


def set_business_hours(
    session: Session,
    merchant: Merchant,
    opening_time: str | None,
    closing_time: str | None,
    *,
    reason: str,
    actor: Actor,
) -> None:
    """Staff correct the declared business hours (both, or neither to clear them); the
    business-hours risk rule reads the new ones. 422 names the field, 409 for a closed
    merchant; audited with the times before and after."""
    opening, closing = hours.normalise(opening_time), hours.normalise(closing_time)
    errors = hours.hours_errors(opening, closing)
    if not reason.strip():
        errors.append(
            FieldError("reason", "reason.required", N_("Say why the business hours change."))
        )
    if errors:
        raise ValidationFailed(errors)
    if merchant.status == MerchantStatus.CLOSED:
        raise Conflict(N_("Merchant {mid} is closed."), code="merchant_closed", mid=merchant.mid)
    before = {"opening_time": merchant.opening_time, "closing_time": merchant.closing_time}
    merchant.opening_time, merchant.closing_time = opening, closing
    audit.record(
        session,
        actor,
        "merchant.business_hours_changed",
        "merchant",
        merchant.mid,
        {
            "from": before,
            "to": {"opening_time": opening, "closing_time": closing},
            "reason": reason.strip()[:500],
        },
    )
