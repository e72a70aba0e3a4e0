"""Terminal relocation (移机, R19): a terminal used far from where it was installed.

Each terminal has a registered installation location (``terminals.install_latitude`` and
``install_longitude``): taken from its device's last reported heartbeat when it passes
its acceptance test, or set by operations (after an approved move, say). Every TMS
heartbeat that carries a location is compared with it; farther than the relocation
rule's ``max_km`` raises a ``risk_alerts`` row (rule ``relocation``, one per terminal and
business day) and, when the rule says ``lock_terminal``, locks the terminal through the
TMS: the heartbeat's answer then tells the device it may not transact, and the gateway
refuses it until operations unlock it.

The heartbeat path stays cheap: nothing is read unless the heartbeat has a location and
the terminal a registered one; then one indexed read of the rule's latest version.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Final

from pydantic import ValidationError
from sqlalchemy.orm import Session

from poshub.core import audit, limits
from poshub.core.audit import Actor
from poshub.core.clock import business_date
from poshub.core.errors import N_, Conflict, FieldError, ValidationFailed
from poshub.merchants import repository as merchant_repository
from poshub.risk import repository
from poshub.risk.models import AlertStatus
from poshub.risk.schemas import (
    RULES,
    Relocation,
    RuleCode,
    RuleSetting,
    default_setting,
    setting_from_row,
)
from poshub.terminals import service as terminal_service
from poshub.terminals.models import Terminal, TerminalStatus

log = logging.getLogger(__name__)

EARTH_RADIUS_KM: Final = 6371.0088
"""The mean Earth radius (IUGG), in km."""
LOCK_ACTOR: Final = Actor.system("relocation")


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two WGS-84 points in km (spherical Earth: within
    0.5 % of the ellipsoid, far below the rule's kilometres).

    >>> round(haversine_km(31.8206, 117.2272, 31.2304, 121.4737))  # Hefei - Shanghai
    408
    """
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def rule_in_force(session: Session) -> RuleSetting:
    """The relocation rule's latest saved version, or its default."""
    rows = repository.rule_versions(session, RuleCode.RELOCATION.value, limit=1)
    if not rows:
        return default_setting(RuleCode.RELOCATION)
    row = rows[0]
    try:
        return setting_from_row(row.code, row.version, row.enabled, row.action, row.params)
    except (KeyError, ValueError, ValidationError):
        log.exception("relocation rule version %s is not valid; using the default", row.version)
        return default_setting(RuleCode.RELOCATION)


@dataclass(frozen=True, slots=True)
class Moved:
    """A heartbeat far from the registered location."""

    distance_km: float
    max_km: float
    alert_id: int | None
    """The alert raised, or None when the terminal already had one that day."""
    locked: bool
    """The terminal was locked by this heartbeat."""


def _coordinates(terminal: Terminal) -> tuple[float, float] | None:
    if terminal.install_latitude is None or terminal.install_longitude is None:
        return None
    try:
        return float(terminal.install_latitude), float(terminal.install_longitude)
    except ValueError:
        return None


def check_heartbeat(
    session: Session,
    terminal: Terminal,
    latitude: float,
    longitude: float,
    *,
    serial: str,
    now: dt.datetime,
) -> Moved | None:
    """Compare a heartbeat's location with the terminal's registered one; farther than
    the rule allows → an alert (once per terminal and day) and, if the rule says so, a
    lock. None when there is nothing to compare or the terminal is where it should be."""
    registered = _coordinates(terminal)
    if registered is None or terminal.status == TerminalStatus.CLOSED:
        return None
    setting = rule_in_force(session)
    if not setting.enabled:
        return None
    params: Relocation = setting.params
    distance = haversine_km(registered[0], registered[1], latitude, longitude)
    if distance <= params.max_km:
        return None
    merchant = merchant_repository.get(session, terminal.merchant_id)
    mid = merchant.mid if merchant else None
    lock = params.lock_terminal and terminal.status == TerminalStatus.ACTIVE
    alert_id = repository.insert_alert_once(
        session,
        {
            "rule_code": RuleCode.RELOCATION.value,
            "rule_version": setting.version,
            "action": setting.action.value,
            "severity": RULES[RuleCode.RELOCATION].severity.value,
            "mid": mid,
            "tid": terminal.tid,
            "rrn": None,
            "pan_token": None,
            "pan_masked": None,
            "amount_fen": None,
            "detail": {
                "latitude": round(latitude, 6),
                "longitude": round(longitude, 6),
                "distance_km": round(distance, 3),
                "max_km": params.max_km,
                "registered_latitude": registered[0],
                "registered_longitude": registered[1],
                "serial": serial,
                "lock_terminal": params.lock_terminal,
            },
            "status": AlertStatus.OPEN.value,
            "case_id": None,
            "created_at": now,
            "dedupe_key": f"relocation:{terminal.tid}:{business_date(now):%Y%m%d}",
        },
    )
    if lock:
        terminal_service.lock(
            session,
            terminal,
            reason=f"移机 relocation: {distance:.1f} km from the installation (max {params.max_km:g} km)",
            actor=LOCK_ACTOR,
            now=now,
        )
    return Moved(distance, params.max_km, alert_id, lock)


def _coordinate_errors(latitude: float, longitude: float, reason: str) -> list[FieldError]:
    errors = []
    if not (math.isfinite(latitude) and -90 <= latitude <= 90):
        errors.append(
            FieldError("latitude", "latitude.range", N_("A latitude from -90 to 90 degrees."))
        )
    if not (math.isfinite(longitude) and -180 <= longitude <= 180):
        errors.append(
            FieldError("longitude", "longitude.range", N_("A longitude from -180 to 180 degrees."))
        )
    if not reason.strip():
        errors.append(
            FieldError(
                "reason", "reason.required", N_("Say why the installation location changes.")
            )
        )
    return errors


def set_install_location(
    session: Session,
    terminal: Terminal,
    latitude: float,
    longitude: float,
    *,
    reason: str,
    actor: Actor,
    now: dt.datetime,
) -> None:
    """Operations register where the terminal is installed (an approved move, a first
    installation without a located heartbeat). 422 names the field; 409 for a closed
    terminal. Audited with the location before and after."""
    errors = _coordinate_errors(latitude, longitude, reason)
    if errors:
        raise ValidationFailed(errors)
    if terminal.status == TerminalStatus.CLOSED:
        raise Conflict(N_("Terminal {tid} is closed."), code="terminal_closed", tid=terminal.tid)
    before = {"latitude": terminal.install_latitude, "longitude": terminal.install_longitude}
    terminal.install_latitude = f"{latitude:.6f}"
    terminal.install_longitude = f"{longitude:.6f}"
    terminal.updated_at = now
    audit.record(
        session,
        actor,
        "risk.install_location_set",
        "terminal",
        terminal.tid,
        {
            "from": before,
            "to": {"latitude": terminal.install_latitude, "longitude": terminal.install_longitude},
            "reason": reason.strip()[: limits.RISK_INSTALL_LOCATION_REASON_MAX],
        },
    )
