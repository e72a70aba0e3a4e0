"""Use cases of the terminal fleet: stock-in, allocation (TID, master key, device
credential, first parameters), key export, lifecycle moves, lock/unlock and swap.

Never commits: the request or job that calls owns the transaction. Clear keys and device
secrets exist only in memory, inside these functions and in the one response that shows
a secret once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from poshub.catalog import repository as catalog_repository
from poshub.contracts import repository as contract_repository
from poshub.contracts import service as contract_service
from poshub.contracts.models import Contract
from poshub.core import audit, ids, limits
from poshub.core.audit import Actor
from poshub.core.clock import business_date
from poshub.core.crypto import KeyVault, sha256_hex
from poshub.core.errors import N_, Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from poshub.core.sequences import take_next
from poshub.core.settings import Mode, Settings
from poshub.merchants import service as merchant_service
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.merchants.states import CONTRACTED_OR_LATER
from poshub.terminals import hsm, parameters, repository, stock
from poshub.terminals.models import (
    Device,
    DeviceCredential,
    DeviceStatus,
    KeySource,
    StockBatch,
    Terminal,
    TerminalKey,
    TerminalStatus,
    TmsParameterSet,
)
from poshub.terminals.states import ensure_device_transition, ensure_terminal_transition

DEVICE_SECRET_CONTEXT = "devices.tms_secret"  # noqa: S105 - an encryption context label
DEMO_TEST_KEY_HEX = "0123456789ABCDEFFEDCBA9876543210"
"""DESIGN §7: the demo terminal's master key. Published, so production refuses it."""


# --- Stock-in ----------------------------------------------------------------------


@dataclass(frozen=True)
class StockInResult:
    batch: StockBatch | None
    imported: int
    problems: list[stock.RowProblem]


def stock_in(
    session: Session,
    data: bytes,
    *,
    file_name: str,
    user_id: int,
    actor: Actor,
    now: dt.datetime,
) -> StockInResult:
    """Import every device of a CSV, or none of them (see ``terminals.stock``)."""
    known = {m.code for m in catalog_repository.terminal_models(session, active_only=False)}
    existing = repository.existing_serials(session, stock.serials_in(data))
    parsed = stock.parse(data, known_models=known, existing_serials=existing)
    if parsed.problems:
        return StockInResult(None, 0, parsed.problems)
    batch = StockBatch(
        file_name=file_name[:120],
        file_sha256=sha256_hex(data),
        device_count=len(parsed.rows),
        imported_by_id=user_id,
        imported_at=now,
    )
    session.add(batch)
    session.flush()
    session.add_all(
        Device(
            serial_number=row.serial_number,
            model_code=row.model_code,
            status=str(DeviceStatus.IN_STOCK),
            stock_batch_id=batch.id,
            warehouse=row.warehouse,
            received_at=now,
            firmware_version=row.firmware_version,
            tms_auth_failures=0,
            updated_at=now,
        )
        for row in parsed.rows
    )
    session.flush()
    audit.record(
        session,
        actor,
        "inventory.stock_in",
        "stock_batch",
        str(batch.id),
        {"file_sha256": batch.file_sha256, "devices": batch.device_count},
    )
    return StockInResult(batch, len(parsed.rows), [])


# --- Allocation -------------------------------------------------------------------


@dataclass(frozen=True)
class Provisioned:
    """What allocation or a swap hands to operations, once: the key's check value and
    the device secret to inject with the keys. Nothing here is stored in clear."""

    terminal: Terminal
    device: Device
    kcv: str
    device_secret: str
    """Hex; shown once. The database keeps it only encrypted under the key vault."""


def allocate(
    session: Session,
    settings: Settings,
    vault: KeyVault,
    merchant: Merchant,
    serial_number: str,
    *,
    install_address: str | None,
    actor: Actor,
    now: dt.datetime,
    use_known_test_key: bool = False,
) -> Provisioned:
    """Give a contracted merchant a terminal: a TID under its MID, a device from stock,
    a fresh master key wrapped under the KEK, a device credential and parameters v1."""
    contract = contract_repository.in_effect(session, merchant.id, business_date(now))
    if MerchantStatus(merchant.status) not in CONTRACTED_OR_LATER or contract is None:
        raise Conflict(
            N_(
                "Merchant {mid} has no contract signed by both parties, so no terminal can be "
                "allocated: generate the contract, have the merchant sign it and countersign it first."
            ),
            code="contract_not_signed",
            mid=merchant.mid,
        )
    device = _device_in_stock(session, serial_number)
    _check_contract_covers(session, merchant, contract, device.model_code)
    tid = ids.make_tid(take_next(session, ids.TID_SEQUENCE_NAME, maximum=ids.TID_MAX))
    terminal = Terminal(
        tid=tid,
        merchant_id=merchant.id,
        model_code=device.model_code,
        status=str(TerminalStatus.PROVISIONING),
        contract_id=contract.id,
        install_address=(install_address or contract.terms.get("merchant_address", ""))[:300],
        created_at=now,
        updated_at=now,
    )
    session.add(terminal)
    session.flush()
    device.status = str(DeviceStatus.ALLOCATED)
    device.terminal_id = terminal.id
    device.updated_at = now
    kcv, secret = _provision_device(
        session, settings, vault, terminal, device, now=now, use_known_test_key=use_known_test_key
    )
    session.add(
        TmsParameterSet(
            terminal_id=terminal.id,
            version=1,
            params=parameters.build(
                mid=merchant.mid,
                tid=tid,
                receipt_name_zh=merchant.business_name[:40],
                receipt_name_en=merchant.business_name[:40],
                host=settings.gateway_public_host,
                port=settings.gateway_port,
            ),
            created_at=now,
            created_by=actor.id,
        )
    )
    merchant_service.terminal_allocated(merchant)
    audit.record(
        session,
        actor,
        "terminal.allocated",
        "terminal",
        tid,
        {"mid": merchant.mid, "serial": device.serial_number, "kcv": kcv},
    )
    return Provisioned(terminal, device, kcv, secret)


def _check_contract_covers(
    session: Session, merchant: Merchant, contract: Contract, model_code: str
) -> None:
    """The contract in effect fixes which models and how many of each the merchant rents
    (R5, PBOC 2013 No. 9): another model or one more needs a supplementary agreement
    (补充协议, ``terminal_change``), not a quiet allocation."""
    allowance = contract_service.terminal_allowance(session, contract)
    if model_code not in allowance:
        raise Conflict(
            N_(
                "Contract {number} (version {version}) of merchant {mid} does not cover model "
                "{model}; it covers {models}. A supplementary agreement adding the model must "
                "be signed first."
            ),
            code="contract_terminal_model",
            mid=merchant.mid,
            number=contract.contract_number,
            version=str(contract.version),
            model=model_code,
            models=", ".join(sorted(allowance)) or "-",
        )
    allowed = allowance[model_code]
    if repository.open_terminal_counts_by_model(session, merchant.id).get(model_code, 0) >= allowed:
        raise Conflict(
            N_(
                "Contract {number} (version {version}) allows merchant {mid} {allowed} terminals "
                "of model {model} and all are allocated: a supplementary agreement raising the "
                "count must be signed first."
            ),
            code="contract_terminal_limit",
            mid=merchant.mid,
            number=contract.contract_number,
            version=str(contract.version),
            model=model_code,
            allowed=str(allowed),
        )


def _device_in_stock(session: Session, serial_number: str) -> Device:
    device = repository.device_by_serial(session, serial_number.strip().upper(), for_update=True)
    if device is None:
        raise NotFound(N_("No device has this serial number."), code="device_not_found")
    if device.status != DeviceStatus.IN_STOCK:
        raise Conflict(
            N_("Device {serial} is {status}, not in stock; choose a device in stock."),
            code="device_not_in_stock",
            serial=device.serial_number,
            status=device.status,
        )
    return device


def _provision_device(
    session: Session,
    settings: Settings,
    vault: KeyVault,
    terminal: Terminal,
    device: Device,
    *,
    now: dt.datetime,
    use_known_test_key: bool,
) -> tuple[str, str]:
    """New master key and device credential for ``device`` serving ``terminal``."""
    if use_known_test_key:
        if settings.mode == Mode.PRODUCTION:
            raise Forbidden(
                N_("Production refuses the published test key; a fresh key is generated instead."),
                code="test_key_refused",
            )
        tmk = hsm.parse_key_hex(DEMO_TEST_KEY_HEX)
        source = KeySource.KNOWN_TEST_KEY
    else:
        tmk = hsm.generate_tmk()
        source = KeySource.GENERATED
    if settings.mode == Mode.PRODUCTION and hsm.is_known_test_key(tmk):
        # Cannot happen with a CSPRNG; kept so that no code path ever stores one.
        raise Forbidden(N_("Production refuses a known test key."), code="test_key_refused")
    kcv = hsm.kcv(tmk)
    block = hsm.wrap_tmk(vault.key_block_key, tmk)
    del tmk
    repository.retire_keys(session, terminal.id, now=now)
    session.add(
        TerminalKey(
            terminal_id=terminal.id,
            device_id=device.id,
            key_block=block,
            kcv=kcv,
            source=str(source),
            created_at=now,
            export_count=0,
        )
    )
    secret = secrets.token_hex(limits.DEVICE_SECRET_BYTES)
    repository.revoke_credentials(session, device.id, now=now)
    session.add(
        DeviceCredential(
            device_id=device.id,
            secret_enc=vault.encrypt(secret, context=DEVICE_SECRET_CONTEXT),
            created_at=now,
        )
    )
    return kcv, secret


def device_secret(vault: KeyVault, secret_enc: bytes) -> bytes:
    """The device's HMAC secret (``DeviceCredential.secret_enc`` decrypted), for verifying
    its TMS request signatures."""
    return bytes.fromhex(vault.decrypt(secret_enc, context=DEVICE_SECRET_CONTEXT))


# --- Reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TerminalSummary:
    """One terminal of a merchant as staff see it: the TID, its device and key check value."""

    tid: str
    model_code: str
    status: str
    install_address: str
    serial_number: str | None
    device_status: str | None
    kcv: str | None
    activated_at: dt.datetime | None


def merchant_terminals(session: Session, merchant_id: int) -> list[TerminalSummary]:
    summaries = []
    for terminal in repository.terminals_of(session, merchant_id):
        device = repository.device_of(session, terminal.id)
        key = repository.current_key(session, terminal.id)
        summaries.append(
            TerminalSummary(
                tid=terminal.tid,
                model_code=terminal.model_code,
                status=terminal.status,
                install_address=terminal.install_address,
                serial_number=device.serial_number if device else None,
                device_status=device.status if device else None,
                kcv=key.kcv if key else None,
                activated_at=terminal.activated_at,
            )
        )
    return summaries


# --- Key check (export: poshub.terminals.custody) -----------------------------------


def key_check_value(session: Session, vault: KeyVault, terminal: Terminal) -> str | None:
    """The KCV of the stored key, recomputed from the unwrapped block: proves the block
    unwraps under the KEK and matches the KCV shown at allocation."""
    key = repository.current_key(session, terminal.id)
    if key is None:
        return None
    return hsm.kcv(hsm.unwrap_tmk(vault.key_block_key, key.key_block))


# --- Lifecycle moves used by fieldwork ----------------------------------------------


def mark_shipped(session: Session, device: Device, *, actor: Actor, now: dt.datetime) -> None:
    device.status = str(ensure_device_transition(device.status, DeviceStatus.SHIPPED))
    device.updated_at = now
    audit.record(session, actor, "device.shipped", "device", device.serial_number, {})


def mark_installed(session: Session, device: Device, *, actor: Actor, now: dt.datetime) -> None:
    device.status = str(ensure_device_transition(device.status, DeviceStatus.INSTALLED))
    device.updated_at = now
    audit.record(session, actor, "device.installed", "device", device.serial_number, {})


def activate(
    session: Session,
    merchant: Merchant,
    terminal: Terminal,
    device: Device,
    *,
    acceptance_reference: str,
    actor: Actor,
    now: dt.datetime,
) -> None:
    """The acceptance test passed on ``device``. A new terminal and its device become
    active, and the merchant is live with its first active terminal; a replacement device
    behind an already active TID (a swap) becomes active on its own."""
    if terminal.status == TerminalStatus.ACTIVE:
        device.status = str(ensure_device_transition(device.status, DeviceStatus.ACTIVE))
        device.updated_at = now
        terminal.acceptance_reference = acceptance_reference
        terminal.updated_at = now
        audit.record(
            session,
            actor,
            "device.activated",
            "device",
            device.serial_number,
            {"tid": terminal.tid, "acceptance_reference": acceptance_reference},
        )
        return
    if terminal.status != TerminalStatus.PROVISIONING:
        # A locked terminal must be unlocked deliberately, never by an acceptance test.
        raise Conflict(
            N_("Terminal {tid} is {status}; unlock it before the acceptance test."),
            code="terminal_not_testable",
            tid=terminal.tid,
            status=terminal.status,
        )
    terminal.status = str(ensure_terminal_transition(terminal.status, TerminalStatus.ACTIVE))
    terminal.activated_at = now
    terminal.acceptance_reference = acceptance_reference
    if device.latitude is not None and device.longitude is not None:
        # Where the device last reported itself becomes the registered installation
        # location that heartbeats are compared with (移机, poshub/risk/relocation.py).
        terminal.install_latitude = device.latitude
        terminal.install_longitude = device.longitude
    terminal.updated_at = now
    device.status = str(ensure_device_transition(device.status, DeviceStatus.ACTIVE))
    device.updated_at = now
    went_live = merchant_service.terminal_activated(merchant, now=now)
    audit.record(
        session,
        actor,
        "terminal.activated",
        "terminal",
        terminal.tid,
        {
            "serial": device.serial_number,
            "acceptance_reference": acceptance_reference,
            "install_latitude": terminal.install_latitude,
            "install_longitude": terminal.install_longitude,
        },
    )
    if went_live:
        audit.record(
            session, actor, "merchant.live", "merchant", merchant.mid, {"tid": terminal.tid}
        )


# --- Remote lock -----------------------------------------------------------------------


def lock(
    session: Session, terminal: Terminal, *, reason: str, actor: Actor, now: dt.datetime
) -> None:
    """Lock a terminal remotely: the gateway refuses its transactions until unlocked."""
    if not reason.strip():
        raise ValidationFailed(
            [FieldError("reason", "reason.required", N_("Say why the terminal is locked."))]
        )
    terminal.status = str(ensure_terminal_transition(terminal.status, TerminalStatus.LOCKED))
    terminal.locked_reason = reason.strip()[:300]
    terminal.locked_at = now
    terminal.updated_at = now
    device = repository.device_of(session, terminal.id)
    if device is not None and device.status == DeviceStatus.ACTIVE:
        device.status = str(DeviceStatus.LOCKED)
        device.updated_at = now
    audit.record(session, actor, "terminal.locked", "terminal", terminal.tid, {"reason": reason})


def unlock(session: Session, terminal: Terminal, *, actor: Actor, now: dt.datetime) -> None:
    terminal.status = str(ensure_terminal_transition(terminal.status, TerminalStatus.ACTIVE))
    terminal.locked_reason = None
    terminal.locked_at = None
    terminal.updated_at = now
    device = repository.device_of(session, terminal.id)
    if device is not None and device.status == DeviceStatus.LOCKED:
        device.status = str(DeviceStatus.ACTIVE)
        device.updated_at = now
    audit.record(session, actor, "terminal.unlocked", "terminal", terminal.tid, {})


# --- Recall ----------------------------------------------------------------------------


def recall(
    session: Session, terminal: Terminal, *, reason: str, actor: Actor, now: dt.datetime
) -> None:
    """Take a terminal out of service for good (the merchant leaves, or the TID is given
    up): the TID is closed, so the gateway refuses it; its device is returned for
    inspection and its credential revoked. Closing a merchant needs every TID recalled."""
    if not reason.strip():
        raise ValidationFailed(
            [FieldError("reason", "reason.required", N_("Say why the terminal is recalled."))]
        )
    terminal.status = str(ensure_terminal_transition(terminal.status, TerminalStatus.CLOSED))
    terminal.updated_at = now
    device = repository.device_of(session, terminal.id)
    serial = None
    if device is not None:
        serial = device.serial_number
        device.status = str(ensure_device_transition(device.status, DeviceStatus.RETURNED))
        device.terminal_id = None
        device.updated_at = now
        repository.revoke_credentials(session, device.id, now=now)
    audit.record(
        session,
        actor,
        "terminal.recalled",
        "terminal",
        terminal.tid,
        {"reason": reason.strip()[:300], "serial": serial},
    )


# --- Swap ------------------------------------------------------------------------------


def swap(
    session: Session,
    settings: Settings,
    vault: KeyVault,
    terminal: Terminal,
    new_serial: str,
    *,
    actor: Actor,
    now: dt.datetime,
) -> Provisioned:
    """Put a new device behind the same TID: the old one is returned, its key retired
    and its credential revoked; the new one gets a new key and credential (DESIGN §3)."""
    if terminal.status == TerminalStatus.CLOSED:
        raise Conflict(N_("Terminal {tid} is closed."), code="terminal_closed", tid=terminal.tid)
    new_device = _device_in_stock(session, new_serial)
    if new_device.model_code != terminal.model_code:
        raise Conflict(
            N_("The replacement must be a {model} like the device it replaces."),
            code="swap_model_mismatch",
            model=terminal.model_code,
        )
    old_device = repository.device_of(session, terminal.id)
    if old_device is not None:
        old_device.status = str(ensure_device_transition(old_device.status, DeviceStatus.RETURNED))
        old_device.terminal_id = None
        old_device.updated_at = now
        repository.revoke_credentials(session, old_device.id, now=now)
    session.flush()
    new_device.status = str(DeviceStatus.ALLOCATED)
    new_device.terminal_id = terminal.id
    new_device.updated_at = now
    kcv, secret = _provision_device(
        session, settings, vault, terminal, new_device, now=now, use_known_test_key=False
    )
    audit.record(
        session,
        actor,
        "terminal.device_swapped",
        "terminal",
        terminal.tid,
        {
            "old_serial": old_device.serial_number if old_device else None,
            "new_serial": new_device.serial_number,
            "kcv": kcv,
        },
    )
    return Provisioned(terminal, new_device, kcv, secret)


def return_to_stock(
    session: Session, device: Device, *, sound: bool, actor: Actor, now: dt.datetime
) -> None:
    """A returned device inspected at the warehouse: back in stock, or retired."""
    target = DeviceStatus.IN_STOCK if sound else DeviceStatus.RETIRED
    device.status = str(ensure_device_transition(device.status, target))
    device.updated_at = now
    audit.record(session, actor, f"device.{target}", "device", device.serial_number, {})
