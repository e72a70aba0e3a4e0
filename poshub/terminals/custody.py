"""Key custody: transport keys formed under dual control, and terminal key export
approved by a second person.

Transport key (TK / ZMK) ceremony
    One operator starts it with a label and the first key component (32 hex digits); a
    *different* operator enters the second. The key is the XOR of the two (odd parity
    set), registered as a TR-31 block under the KBPK and named by its 6-digit check
    value. Each component, and the combined key, is refused when it is a published test
    key or a weak key (``hsm.transport_key_weakness``) in every mode, demo and test
    included. A refused combination cancels the ceremony. The first component waits
    encrypted under the KEK-derived field key and is erased when the ceremony ends. Each
    step is audited with check values only.

Export (maker-checker)
    One operator requests the export of a terminal's master key under a registered
    transport key (by KCV); a different operator approves; then the requester collects
    the cryptogram (TR-31 block under the TK, with the TMK's KCV) once. The cryptogram is
    computed at collection and never stored. A request lapses after
    ``limits.KEY_EXPORT_REQUEST_VALID_HOURS`` and when the terminal's key changes.

Never commits; clear components and keys exist only in memory inside these functions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from poshub.core import audit, limits
from poshub.core.crypto import KeyVault
from poshub.core.errors import N_, Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from poshub.staff.service import Principal
from poshub.terminals import hsm, repository
from poshub.terminals.models import (
    KeyExportRequest,
    KeyExportStatus,
    Terminal,
    TransportKey,
    TransportKeyStatus,
)

COMPONENT_CONTEXT = "transport_keys.first_component"


def _kcv6(key: bytes) -> str:
    return hsm.kcv(key)[: hsm.KCV_TRANSPORT_LENGTH]


def _component(text: str) -> bytes:
    """A typed component, or 422 naming ``component`` (the message never repeats it)."""
    try:
        component = hsm.parse_key_hex(text)
    except ValueError:
        component = None
    if component is None:
        raise ValidationFailed(
            [
                FieldError(
                    "component",
                    "component.invalid",
                    N_(
                        "A key component is 32 hexadecimal characters, a double-length key "
                        "whose two halves differ."
                    ),
                )
            ]
        )
    if hsm.transport_key_weakness(component) is not None:
        raise ValidationFailed(
            [
                FieldError(
                    "component",
                    "component.weak",
                    N_(
                        "This component is a published test key or a weak key (one byte "
                        "repeated, repeated blocks, a DES weak key); enter a freshly "
                        "generated random component."
                    ),
                )
            ]
        )
    return component


def start_transport_key(
    session: Session,
    vault: KeyVault,
    principal: Principal,
    *,
    label: str,
    component_hex: str,
    now: dt.datetime,
) -> TransportKey:
    """The first custodian's step: the ceremony waits for a second person's component."""
    component = _component(component_hex)
    key = TransportKey(
        label=label,
        status=TransportKeyStatus.PENDING,
        first_component_enc=vault.encrypt(component.hex(), context=COMPONENT_CONTEXT),
        first_component_kcv=_kcv6(component),
        first_custodian_id=principal.user_id,
        created_at=now,
    )
    del component
    session.add(key)
    session.flush()
    audit.record(
        session,
        principal.actor,
        "transport_key.component_entered",
        "transport_key",
        str(key.id),
        {"label": label, "component": 1, "component_kcv": key.first_component_kcv},
    )
    return key


@dataclass(frozen=True)
class CeremonyRefused:
    """The second component was entered but the combined key is refused; the ceremony
    is cancelled (the caller commits that, then reports ``error``)."""

    key: TransportKey
    error: ValidationFailed | Conflict


def complete_transport_key(
    session: Session,
    vault: KeyVault,
    principal: Principal,
    key_id: int,
    *,
    component_hex: str,
    now: dt.datetime,
) -> TransportKey | CeremonyRefused:
    """The second custodian's step: combine, check, register under the KCV."""
    key = repository.transport_key(session, key_id, for_update=True)
    if key is None:
        raise NotFound(N_("No transport key ceremony has this id."), code="transport_key_not_found")
    if key.status != TransportKeyStatus.PENDING or key.first_component_enc is None:
        raise Conflict(
            N_("This transport key ceremony is not waiting for a component."),
            code="ceremony_closed",
        )
    if key.first_custodian_id == principal.user_id:
        raise Forbidden(
            N_("The second component must be entered by a different person."),
            code="same_custodian",
        )
    second = _component(component_hex)
    first = bytes.fromhex(vault.decrypt(key.first_component_enc, context=COMPONENT_CONTEXT))
    combined = hsm.combine_components(first, second)
    key.second_custodian_id = principal.user_id
    key.second_component_kcv = _kcv6(second)
    key.first_component_enc = None  # erased whatever happens next
    kcv = _kcv6(combined)
    del first, second
    details = {
        "label": key.label,
        "component": 2,
        "component_kcv": key.second_component_kcv,
    }
    error: ValidationFailed | Conflict | None = None
    if hsm.transport_key_weakness(combined) is not None:
        error = ValidationFailed(
            [
                FieldError(
                    "component",
                    "transport_key.weak",
                    N_(
                        "The two components combine into a published test key or a weak "
                        "key. The ceremony is cancelled; start again with new components."
                    ),
                )
            ]
        )
    elif repository.transport_key_by_kcv(session, kcv) is not None:
        error = Conflict(
            N_(
                "A transport key with this check value is already registered. The ceremony "
                "is cancelled; start again with new components."
            ),
            code="transport_key_exists",
        )
    if error is not None:
        key.status = TransportKeyStatus.CANCELLED
        audit.record(
            session,
            principal.actor,
            "transport_key.refused",
            "transport_key",
            str(key.id),
            {**details, "reason": error.code or "weak"},
        )
        return CeremonyRefused(key, error)
    key.key_block = hsm.wrap_transport_key(vault.key_block_key, combined)
    del combined
    key.kcv = kcv
    key.status = TransportKeyStatus.ACTIVE
    key.registered_at = now
    audit.record(
        session,
        principal.actor,
        "transport_key.registered",
        "transport_key",
        str(key.id),
        {**details, "kcv": kcv},
    )
    return key


# --- Export --------------------------------------------------------------------------


def _request(session: Session, request_id: int) -> KeyExportRequest:
    request = repository.key_export_request(session, request_id, for_update=True)
    if request is None:
        raise NotFound(N_("No key export request has this id."), code="export_not_found")
    return request


def _stale() -> Conflict:
    return Conflict(
        N_("The terminal's key has changed since this export was requested; request a new one."),
        code="export_stale",
    )


def _check_current(session: Session, request: KeyExportRequest, now: dt.datetime) -> None:
    if now - request.requested_at > dt.timedelta(hours=limits.KEY_EXPORT_REQUEST_VALID_HOURS):
        raise Conflict(
            N_("This key export request has expired; request a new one."), code="export_expired"
        )
    current = repository.current_key(session, request.terminal_id)
    if current is None or current.id != request.terminal_key_id:
        raise _stale()


def request_export(
    session: Session,
    principal: Principal,
    terminal: Terminal,
    *,
    transport_key_kcv: str,
    now: dt.datetime,
) -> KeyExportRequest:
    """The maker's step: which terminal's key, under which registered transport key."""
    transport = repository.transport_key_by_kcv(session, transport_key_kcv.strip().upper())
    if transport is None or transport.status != TransportKeyStatus.ACTIVE:
        raise ValidationFailed(
            [
                FieldError(
                    "transport_key_kcv",
                    "transport_key.unknown",
                    N_("No registered transport key has this check value."),
                )
            ]
        )
    key = repository.current_key(session, terminal.id)
    if key is None or repository.device_of(session, terminal.id) is None:
        raise Conflict(
            N_("Terminal {tid} has no device and key to export; allocate or swap a device first."),
            code="no_key",
            tid=terminal.tid,
        )
    request = KeyExportRequest(
        terminal_id=terminal.id,
        terminal_key_id=key.id,
        transport_key_id=transport.id,
        status=KeyExportStatus.REQUESTED,
        requested_by_id=principal.user_id,
        requested_at=now,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        principal.actor,
        "terminal.key_export_requested",
        "terminal",
        terminal.tid,
        {"request": request.id, "kcv": key.kcv, "transport_key_kcv": transport.kcv},
    )
    return request


def approve_export(
    session: Session, principal: Principal, request_id: int, *, now: dt.datetime
) -> KeyExportRequest:
    """The checker's step: a different operator approves; nothing is released yet."""
    request = _request(session, request_id)
    if request.requested_by_id == principal.user_id:
        raise Forbidden(
            N_("Another operator must approve this key export; the requester cannot."),
            code="own_request",
        )
    if request.status != KeyExportStatus.REQUESTED:
        raise Conflict(
            N_("This key export request is not waiting for approval."),
            code="export_not_requested",
        )
    _check_current(session, request, now)
    request.status = KeyExportStatus.APPROVED
    request.approved_by_id = principal.user_id
    request.approved_at = now
    terminal = repository.terminal(session, request.terminal_id)
    assert terminal is not None  # foreign key
    audit.record(
        session,
        principal.actor,
        "terminal.key_export_approved",
        "terminal",
        terminal.tid,
        {"request": request.id},
    )
    return request


@dataclass(frozen=True)
class Cryptogram:
    tid: str
    serial_number: str
    kcv: str
    """Check value of the terminal master key (what the injected device must show)."""
    transport_key_kcv: str
    key_block: str
    """TR-31 key block under the transport key; the clear key never leaves the host."""


def collect_export(
    session: Session, vault: KeyVault, principal: Principal, request_id: int, *, now: dt.datetime
) -> Cryptogram:
    """Release the approved cryptogram to the requester, once."""
    request = _request(session, request_id)
    if request.requested_by_id != principal.user_id:
        raise Forbidden(
            N_("Only the operator who requested this export can collect it."),
            code="not_requester",
        )
    if request.status == KeyExportStatus.COLLECTED:
        raise Conflict(
            N_("This key export was already collected; request a new one."),
            code="export_collected",
        )
    if request.status != KeyExportStatus.APPROVED:
        raise Conflict(
            N_("This key export has not been approved by a second operator."),
            code="export_not_approved",
        )
    _check_current(session, request, now)
    terminal = repository.terminal(session, request.terminal_id)
    key = repository.current_key(session, request.terminal_id)
    device = repository.device_of(session, request.terminal_id)
    transport = repository.transport_key(session, request.transport_key_id)
    assert terminal is not None
    assert key is not None
    assert transport is not None
    if device is None or transport.status != TransportKeyStatus.ACTIVE or not transport.key_block:
        raise _stale()
    transport_key = hsm.unwrap_transport_key(vault.key_block_key, transport.key_block)
    block = hsm.export_for_injection(vault.key_block_key, key.key_block, transport_key)
    del transport_key
    request.status = KeyExportStatus.COLLECTED
    request.collected_at = now
    key.export_count += 1
    audit.record(
        session,
        principal.actor,
        "terminal.key_exported",
        "terminal",
        terminal.tid,
        {
            "request": request.id,
            "kcv": key.kcv,
            "transport_key_kcv": transport.kcv or "",
            "serial": device.serial_number,
            "export": key.export_count,
        },
    )
    return Cryptogram(terminal.tid, device.serial_number, key.kcv, transport.kcv or "", block)
