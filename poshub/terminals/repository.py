"""Every query of the terminals domain (inventory, terminals, keys, credentials, TMS)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from poshub.terminals.models import (
    Device,
    DeviceCredential,
    KeyExportRequest,
    Terminal,
    TerminalKey,
    TmsAuthFailureCount,
    TmsParameterSet,
    TransportKey,
    TransportKeyStatus,
)


def device_by_serial(session: Session, serial: str, *, for_update: bool = False) -> Device | None:
    query = select(Device).where(Device.serial_number == serial)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def existing_serials(session: Session, serials: Collection[str]) -> set[str]:
    if not serials:
        return set()
    found: set[str] = set()
    ordered = sorted(set(serials))
    for start in range(0, len(ordered), 500):  # bounded IN lists
        chunk = ordered[start : start + 500]
        found.update(
            session.execute(
                select(Device.serial_number).where(Device.serial_number.in_(chunk))
            ).scalars()
        )
    return found


def devices(
    session: Session,
    *,
    status: str | None = None,
    model_code: str | None = None,
    limit: int,
    offset: int = 0,
) -> Sequence[Device]:
    query = select(Device).order_by(Device.serial_number).limit(limit).offset(offset)
    if status:
        query = query.where(Device.status == status)
    if model_code:
        query = query.where(Device.model_code == model_code)
    return session.execute(query).scalars().all()


def device_export_rows(
    session: Session, *, status: str | None, model_code: str | None, limit: int
) -> Sequence[tuple[str, str, str, str, str | None, str | None, dt.datetime]]:
    """Serial, model, status, warehouse, firmware, TID and receipt date of each device."""
    query = (
        select(
            Device.serial_number,
            Device.model_code,
            Device.status,
            Device.warehouse,
            Device.firmware_version,
            Terminal.tid,
            Device.received_at,
        )
        .outerjoin(Terminal, Device.terminal_id == Terminal.id)
        .order_by(Device.serial_number)
        .limit(limit)
    )
    if status:
        query = query.where(Device.status == status)
    if model_code:
        query = query.where(Device.model_code == model_code)
    return [tuple(row) for row in session.execute(query).all()]  # type: ignore[misc]


def device_counts(session: Session) -> dict[tuple[str, str], int]:
    """(model code, status) → number of devices."""
    rows = session.execute(
        select(Device.model_code, Device.status, func.count()).group_by(
            Device.model_code, Device.status
        )
    ).all()
    return {(model, status): count for model, status, count in rows}


def device(session: Session, device_id: int) -> Device | None:
    return session.get(Device, device_id)


def terminal_by_tid(session: Session, tid: str, *, for_update: bool = False) -> Terminal | None:
    query = select(Terminal).where(Terminal.tid == tid)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def terminal(session: Session, terminal_id: int) -> Terminal | None:
    return session.get(Terminal, terminal_id)


def terminals_of(session: Session, merchant_id: int) -> Sequence[Terminal]:
    return (
        session.execute(
            select(Terminal).where(Terminal.merchant_id == merchant_id).order_by(Terminal.tid)
        )
        .scalars()
        .all()
    )


def terminals(session: Session, *, limit: int, offset: int = 0) -> Sequence[Terminal]:
    return (
        session.execute(select(Terminal).order_by(Terminal.tid).limit(limit).offset(offset))
        .scalars()
        .all()
    )


def device_of(session: Session, terminal_id: int) -> Device | None:
    return session.execute(
        select(Device).where(Device.terminal_id == terminal_id)
    ).scalar_one_or_none()


def open_terminal_counts_by_model(session: Session, merchant_id: int) -> dict[str, int]:
    """Terminals of the merchant not closed, per model code: what the contract's terminal
    lines cover."""
    rows = session.execute(
        select(Terminal.model_code, func.count())
        .where(Terminal.merchant_id == merchant_id, Terminal.status != "closed")
        .group_by(Terminal.model_code)
    ).all()
    return {str(code): int(count) for code, count in rows}


def active_terminal_count(session: Session, merchant_id: int) -> int:
    return session.execute(
        select(func.count())
        .select_from(Terminal)
        .where(Terminal.merchant_id == merchant_id, Terminal.status == "active")
    ).scalar_one()


def current_key(session: Session, terminal_id: int) -> TerminalKey | None:
    return session.execute(
        select(TerminalKey)
        .where(TerminalKey.terminal_id == terminal_id, TerminalKey.retired_at.is_(None))
        .order_by(TerminalKey.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def retire_keys(session: Session, terminal_id: int, *, now: dt.datetime) -> None:
    session.execute(
        update(TerminalKey)
        .where(TerminalKey.terminal_id == terminal_id, TerminalKey.retired_at.is_(None))
        .values(retired_at=now)
    )


def active_credential(session: Session, device_id: int) -> DeviceCredential | None:
    return session.execute(
        select(DeviceCredential)
        .where(DeviceCredential.device_id == device_id, DeviceCredential.revoked_at.is_(None))
        .order_by(DeviceCredential.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def revoke_credentials(session: Session, device_id: int, *, now: dt.datetime) -> None:
    session.execute(
        update(DeviceCredential)
        .where(DeviceCredential.device_id == device_id, DeviceCredential.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def current_parameters(session: Session, terminal_id: int) -> TmsParameterSet | None:
    return session.execute(
        select(TmsParameterSet)
        .where(TmsParameterSet.terminal_id == terminal_id)
        .order_by(TmsParameterSet.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def parameter_history(
    session: Session, terminal_id: int, *, limit: int
) -> Sequence[TmsParameterSet]:
    return (
        session.execute(
            select(TmsParameterSet)
            .where(TmsParameterSet.terminal_id == terminal_id)
            .order_by(TmsParameterSet.version.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


def count_auth_failure(session: Session, reason: str, count: int, *, now: dt.datetime) -> None:
    """Add ``count`` refused TMS requests under ``reason`` (upsert without a race: the row
    is created once per reason, then only incremented)."""
    updated = session.execute(
        update(TmsAuthFailureCount)
        .where(TmsAuthFailureCount.reason == reason)
        .values(failures=TmsAuthFailureCount.failures + count, last_failure_at=now)
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(
            insert(TmsAuthFailureCount).values(reason=reason, failures=count, last_failure_at=now)
        )


def count_device_auth_failure(
    session: Session, device_id: int, count: int, *, now: dt.datetime
) -> None:
    session.execute(
        update(Device)
        .where(Device.id == device_id)
        .values(tms_auth_failures=Device.tms_auth_failures + count, last_auth_failure_at=now)
    )


def auth_failure_counts(session: Session) -> dict[str, int]:
    return {
        row.reason: row.failures
        for row in session.execute(select(TmsAuthFailureCount)).scalars().all()
    }


# --- Key custody (poshub.terminals.custody) ---------------------------------------------


def transport_key(
    session: Session, key_id: int, *, for_update: bool = False
) -> TransportKey | None:
    query = select(TransportKey).where(TransportKey.id == key_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def transport_key_by_kcv(session: Session, kcv: str) -> TransportKey | None:
    return session.execute(select(TransportKey).where(TransportKey.kcv == kcv)).scalar_one_or_none()


def transport_keys(session: Session, *, limit: int) -> Sequence[TransportKey]:
    return (
        session.execute(select(TransportKey).order_by(TransportKey.id.desc()).limit(limit))
        .scalars()
        .all()
    )


def active_transport_keys(session: Session) -> Sequence[TransportKey]:
    return (
        session.execute(
            select(TransportKey)
            .where(TransportKey.status == TransportKeyStatus.ACTIVE)
            .order_by(TransportKey.kcv)
        )
        .scalars()
        .all()
    )


def key_export_request(
    session: Session, request_id: int, *, for_update: bool = False
) -> KeyExportRequest | None:
    query = select(KeyExportRequest).where(KeyExportRequest.id == request_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def key_export_requests(
    session: Session, *, status: str | None, limit: int
) -> Sequence[KeyExportRequest]:
    query = select(KeyExportRequest)
    if status:
        query = query.where(KeyExportRequest.status == status)
    return session.execute(query.order_by(KeyExportRequest.id.desc()).limit(limit)).scalars().all()
