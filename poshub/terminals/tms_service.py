"""Use cases of the terminal management system (R8, R17): device authentication,
parameter download, heartbeat, and the operations side (parameter changes, lock).

Like every service, these functions never commit — with one exception,
:meth:`RefusalCounter.flush`: a refused request's own transaction is rolled back, yet the
refusal must be counted. Refusals are counted in memory (no database write per refused
request, so a flood of bad requests cannot turn into a flood of writes) and written in
one transaction of their own at most every ``tms_refusal_flush_seconds``.

Every request that carries credentials costs the same work whether its serial exists, has
no credential in force or signs wrongly: one device look-up, one credential look-up, one
decryption of a device secret (a dummy one when there is none) and one HMAC, so timing
tells an outsider nothing about which serials exist.

Nothing here logs or returns a device secret or a request signature.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from poshub.core import audit, limits
from poshub.core.audit import Actor
from poshub.core.crypto import KeyVault
from poshub.core.db import Database
from poshub.core.errors import N_, Conflict, FieldError, NotFound, Unauthorized, ValidationFailed
from poshub.merchants import repository as merchant_repository
from poshub.risk import relocation
from poshub.terminals import parameters, repository, service, tms
from poshub.terminals.models import Device, Terminal, TerminalStatus, TmsParameterSet
from poshub.terminals.schemas import HeartbeatIn
from poshub.terminals.tms import Refusal

log = logging.getLogger(__name__)

# --- Authentication -------------------------------------------------------------------

_GENERIC_REFUSAL = (
    N_("The device credential is not valid for this terminal."),
    "device_credential_invalid",
)
_REFUSAL_MESSAGES: dict[Refusal, tuple[str, str]] = {
    Refusal.MISSING_CREDENTIAL: (
        N_(
            "Sign the request with the device credential: the X-PosHub-Device, "
            "X-PosHub-Timestamp and X-PosHub-Signature headers are required."
        ),
        "device_credential_missing",
    ),
    # Unknown serial, wrong signature and revoked credential answer alike, so that an
    # outsider learns neither which serials exist nor which of them still hold a credential.
    Refusal.UNKNOWN_DEVICE: _GENERIC_REFUSAL,
    Refusal.BAD_SIGNATURE: _GENERIC_REFUSAL,
    Refusal.REVOKED_CREDENTIAL: _GENERIC_REFUSAL,
    # Reported only for a correctly signed request, so only the device itself learns them.
    Refusal.STALE_TIMESTAMP: (
        N_(
            "The request's timestamp is more than {seconds} seconds away from the host's "
            "clock. Set the terminal's clock (the Date header of this response is the "
            "host's time) and sign the request again."
        ),
        "device_clock_skew",
    ),
    Refusal.SERIAL_MISMATCH: (
        N_("A device may only use its own TMS address: the serial in the path is not yours."),
        "device_serial_mismatch",
    ),
}


class DeviceRefused(Unauthorized):
    """A TMS request refused for its credential (401). ``reason`` is counted; the message
    names nothing secret."""

    def __init__(self, reason: Refusal, *, serial: str | None, device_id: int | None) -> None:
        message, code = _REFUSAL_MESSAGES[reason]
        params = (
            {"seconds": str(limits.TMS_SIGNATURE_SKEW_SECONDS)}
            if reason == Refusal.STALE_TIMESTAMP
            else {}
        )
        super().__init__(message, code=code, **params)
        self.reason = reason
        self.serial = serial
        """The serial the request claimed (header, else path); may be invented."""
        self.device_id = device_id
        """The device that serial names, if it exists: its own counter goes up."""


def _known_serial(serial: str) -> bool:
    return 0 < len(serial) <= limits.SERIAL_NUMBER_LENGTH_MAX


NO_DEVICE_ID = 0
"""Looked up when the serial names no device, so that the credential query still runs."""
_DUMMY_SECRETS: weakref.WeakKeyDictionary[KeyVault, bytes] = weakref.WeakKeyDictionary()
_DUMMY_LOCK = threading.Lock()


def _dummy_secret_enc(vault: KeyVault) -> bytes:
    """A random device secret encrypted under ``vault``, made once per vault: what an
    unknown serial or a revoked credential decrypts and verifies against."""
    with _DUMMY_LOCK:
        blob = _DUMMY_SECRETS.get(vault)
        if blob is None:
            blob = vault.encrypt(
                secrets.token_hex(limits.DEVICE_SECRET_BYTES),
                context=service.DEVICE_SECRET_CONTEXT,
            )
            _DUMMY_SECRETS[vault] = blob
        return blob


def authenticate(
    session: Session,
    vault: KeyVault,
    serial: str,
    headers: Mapping[str, str],
    method: str,
    path: str,
    query: str,
    body: bytes,
    *,
    now: dt.datetime,
) -> Device:
    """The device that signed this request for ``serial``'s address, or ``DeviceRefused``.

    ``serial`` is the one in the URL path; ``headers`` are the request's headers. The
    caller must then count the refusal with :func:`count_refusal` (its own transaction).
    """
    credentials = tms.credentials_from(headers)
    if credentials is None:
        device = repository.device_by_serial(session, serial) if _known_serial(serial) else None
        raise DeviceRefused(
            Refusal.MISSING_CREDENTIAL, serial=serial, device_id=device.id if device else None
        )
    claimed = credentials.serial
    device = repository.device_by_serial(session, claimed) if _known_serial(claimed) else None
    # The same look-up, decryption and HMAC whatever the serial: no timing oracle.
    credential = repository.active_credential(session, device.id if device else NO_DEVICE_ID)
    secret_enc = credential.secret_enc if credential else _dummy_secret_enc(vault)
    refusal = tms.verify(
        service.device_secret(vault, secret_enc),
        method,
        path,
        query,
        credentials.timestamp,
        body,
        credentials.signature,
        now,
    )
    if device is None:
        raise DeviceRefused(Refusal.UNKNOWN_DEVICE, serial=claimed, device_id=None)
    if credential is None:
        raise DeviceRefused(Refusal.REVOKED_CREDENTIAL, serial=claimed, device_id=device.id)
    if refusal is not None:
        raise DeviceRefused(refusal, serial=claimed, device_id=device.id)
    if claimed != serial:
        raise DeviceRefused(Refusal.SERIAL_MISMATCH, serial=claimed, device_id=device.id)
    return device


class RefusalCounter:
    """Refused TMS requests counted in memory, fleet-wide by reason and per device, and
    written to the database in one transaction at most every ``flush_seconds`` (and
    whenever staff read the counts). A refusal costs no database write of its own.
    Thread-safe; one per web process. Counts not yet flushed are lost if the process dies,
    at most ``flush_seconds`` worth."""

    def __init__(
        self, flush_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._reasons: Counter[str] = Counter()
        self._devices: Counter[int] = Counter()
        self._last_at: dt.datetime | None = None
        self._flushed_at = clock()

    def add(self, refused: DeviceRefused, *, now: dt.datetime) -> None:
        """Count one refusal and log it, without any credential."""
        log.warning(
            "TMS request refused: reason=%s serial=%r device_known=%s",
            refused.reason,
            (refused.serial or "")[: limits.SERIAL_NUMBER_LENGTH_MAX],
            refused.device_id is not None,
        )
        with self._lock:
            self._reasons[str(refused.reason)] += 1
            if refused.device_id is not None:
                self._devices[refused.device_id] += 1
            self._last_at = now

    def pending(self) -> int:
        with self._lock:
            return sum(self._reasons.values())

    def due(self) -> bool:
        return self._clock() - self._flushed_at >= self.flush_seconds

    def flush(self, database: Database) -> int:
        """Write what was counted since the last flush, in a transaction of its own
        (committed here); return how many refusals it held. On failure the counts are
        kept for the next flush, and the failure is logged and swallowed."""
        with self._lock:
            reasons, devices, last_at = self._reasons, self._devices, self._last_at
            self._reasons, self._devices = Counter(), Counter()
            self._flushed_at = self._clock()
        if not reasons:
            return 0
        assert last_at is not None
        for attempt in (1, 2):
            try:
                with database.unit_of_work() as uow:
                    for reason, count in sorted(reasons.items()):
                        repository.count_auth_failure(uow.session, reason, count, now=last_at)
                    for device_id, count in sorted(devices.items()):
                        repository.count_device_auth_failure(
                            uow.session, device_id, count, now=last_at
                        )
                    uow.commit()
                return sum(reasons.values())
            except IntegrityError:
                # Two processes' first flushes for a new reason raced to insert its row;
                # the retry finds the row and increments it.
                if attempt == 2:
                    log.exception("could not count refused TMS requests")
            except SQLAlchemyError:
                log.exception("could not count refused TMS requests")
                break
        with self._lock:  # keep them for the next flush
            self._reasons.update(reasons)
            self._devices.update(devices)
        return 0


# --- Device requests -------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceView:
    """What a device is told about its terminal."""

    device: Device
    terminal: Terminal | None
    parameters: TmsParameterSet | None

    @property
    def locked(self) -> bool:
        return self.terminal is not None and self.terminal.status == TerminalStatus.LOCKED

    @property
    def may_transact(self) -> bool:
        return self.terminal is not None and self.terminal.status in (
            TerminalStatus.PROVISIONING,
            TerminalStatus.ACTIVE,
        )


def _not_allocated(device: Device) -> Conflict:
    return Conflict(
        N_(
            "Device {serial} serves no terminal, so it has no parameters; it must be "
            "allocated to a terminal (TID) first."
        ),
        code="device_not_allocated",
        serial=device.serial_number,
    )


def _view(session: Session, device: Device) -> DeviceView:
    terminal = repository.terminal(session, device.terminal_id) if device.terminal_id else None
    current = repository.current_parameters(session, terminal.id) if terminal else None
    return DeviceView(device, terminal, current)


def fetch_parameters(session: Session, device: Device, *, now: dt.datetime) -> DeviceView:
    """The current parameters of the device's terminal, recorded as downloaded by it."""
    view = _view(session, device)
    if view.terminal is None:
        raise _not_allocated(device)
    if view.parameters is None:
        raise Conflict(
            N_("Terminal {tid} has no parameters yet."),
            code="no_parameters",
            tid=view.terminal.tid,
        )
    view.parameters.fetched_at = now
    view.parameters.fetched_by_serial = device.serial_number
    return view


def heartbeat(
    session: Session, device: Device, report: HeartbeatIn, *, now: dt.datetime
) -> DeviceView:
    """Store what the device reports; tell it whether it may transact and which
    parameter version is current."""
    if (report.latitude is None) != (report.longitude is None):
        missing = "longitude" if report.longitude is None else "latitude"
        raise ValidationFailed(
            [
                FieldError(
                    missing,
                    "heartbeat.location_incomplete",
                    N_("Give latitude and longitude together, or neither."),
                )
            ]
        )
    device.app_version = report.app_version
    device.firmware_version = report.firmware_version
    device.network = report.network
    device.signal_dbm = report.signal_dbm
    device.battery_percent = report.battery_percent
    device.latitude = None if report.latitude is None else f"{report.latitude:.6f}"
    device.longitude = None if report.longitude is None else f"{report.longitude:.6f}"
    device.last_heartbeat_at = now
    view = _view(session, device)
    if view.terminal is not None and report.latitude is not None and report.longitude is not None:
        # Far from the registered installation: an alert, and a lock if the rule says so
        # (the answer below then tells the device it may not transact).
        relocation.check_heartbeat(
            session,
            view.terminal,
            report.latitude,
            report.longitude,
            serial=device.serial_number,
            now=now,
        )
    return view


# --- Operations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TerminalDetail:
    terminal: Terminal
    mid: str | None
    device: Device | None
    parameters: TmsParameterSet | None


def get_terminal(session: Session, tid: str, *, for_update: bool = False) -> Terminal:
    terminal = repository.terminal_by_tid(session, tid[:8], for_update=for_update)
    if terminal is None:
        raise NotFound(N_("No terminal has this TID."), code="terminal_not_found")
    return terminal


def terminal_detail(session: Session, terminal: Terminal) -> TerminalDetail:
    """The terminal with its merchant's MID, its device (status, last heartbeat, refused
    requests) and its current parameter version."""
    merchant = merchant_repository.get(session, terminal.merchant_id)
    return TerminalDetail(
        terminal,
        merchant.mid if merchant else None,
        repository.device_of(session, terminal.id),
        repository.current_parameters(session, terminal.id),
    )


def parameter_history(session: Session, terminal: Terminal, *, limit: int) -> list[TmsParameterSet]:
    """Every version, newest first (at most ``limit``)."""
    return list(repository.parameter_history(session, terminal.id, limit=limit))


def update_parameters(
    session: Session,
    terminal: Terminal,
    changes: dict[str, Any],
    *,
    actor: Actor,
    now: dt.datetime,
) -> TmsParameterSet:
    """A new parameter version with ``changes`` applied (editable keys only), served to the
    device at its next download. Changing nothing creates no version. ``terminal`` should
    be read ``for_update`` so that two changes cannot claim the same version number."""
    if terminal.status == TerminalStatus.CLOSED:
        raise Conflict(N_("Terminal {tid} is closed."), code="terminal_closed", tid=terminal.tid)
    current = repository.current_parameters(session, terminal.id)
    if current is None:
        raise Conflict(
            N_("Terminal {tid} has no parameters yet."), code="no_parameters", tid=terminal.tid
        )
    try:
        merged = parameters.apply_changes(current.params, changes)
    except parameters.ParameterErrors as invalid:
        raise ValidationFailed(invalid.errors) from invalid
    changed = {key: value for key, value in changes.items() if current.params.get(key) != value}
    if not changed:
        return current
    new = TmsParameterSet(
        terminal_id=terminal.id,
        version=current.version + 1,
        params=merged,
        created_at=now,
        created_by=actor.id,
    )
    session.add(new)
    session.flush()
    audit.record(
        session,
        actor,
        "terminal.parameters_changed",
        "terminal",
        terminal.tid,
        {
            "version": new.version,
            "changes": {
                key: {"from": current.params.get(key), "to": value}
                for key, value in sorted(changed.items())
            },
        },
    )
    return new


def auth_failure_counts(session: Session) -> dict[str, int]:
    """Refused TMS requests by reason, every reason present (0 if never counted)."""
    counted = repository.auth_failure_counts(session)
    known = {str(reason): counted.get(str(reason), 0) for reason in Refusal}
    return known | counted
