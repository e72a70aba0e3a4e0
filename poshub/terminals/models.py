"""The terminal fleet (R7, R8, R11, R17): physical devices, the logical terminals (TIDs)
they serve, their master keys, TMS parameters and device credentials.

A *device* is a box with a serial number and the lifecycle of DESIGN §3
(``in_stock → allocated → shipped → installed → active ⇄ locked``, ``returned``,
``retired``). A *terminal* is a TID under a merchant's MID: it outlives the device — a
swap puts a new device behind the same TID with new keys.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from poshub.core.db import Base


class DeviceStatus(StrEnum):
    IN_STOCK = "in_stock"
    ALLOCATED = "allocated"
    SHIPPED = "shipped"
    INSTALLED = "installed"
    ACTIVE = "active"
    LOCKED = "locked"
    RETURNED = "returned"
    RETIRED = "retired"


class TerminalStatus(StrEnum):
    PROVISIONING = "provisioning"
    """TID assigned, not yet through acceptance: the gateway accepts only the acceptance
    test transaction's sign-on and sale."""
    ACTIVE = "active"
    LOCKED = "locked"
    """Remotely locked: the gateway refuses its transactions."""
    CLOSED = "closed"


class StockBatch(Base):
    """One CSV stock-in: what was imported, by whom, from which file."""

    __tablename__ = "stock_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(120))
    file_sha256: Mapped[str] = mapped_column(String(64))
    device_count: Mapped[int]
    imported_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    imported_at: Mapped[dt.datetime]


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial_number: Mapped[str] = mapped_column(String(32), unique=True)
    model_code: Mapped[str] = mapped_column(ForeignKey("terminal_models.code"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    stock_batch_id: Mapped[int | None] = mapped_column(ForeignKey("stock_batches.id"))
    warehouse: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime]
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id"), index=True)
    """The TID this device currently serves; None in stock or after return."""
    firmware_version: Mapped[str | None] = mapped_column(String(32))
    app_version: Mapped[str | None] = mapped_column(String(32))
    network: Mapped[str | None] = mapped_column(String(16))
    signal_dbm: Mapped[int | None]
    battery_percent: Mapped[int | None]
    latitude: Mapped[str | None] = mapped_column(String(16))
    longitude: Mapped[str | None] = mapped_column(String(16))
    last_heartbeat_at: Mapped[dt.datetime | None]
    tms_auth_failures: Mapped[int] = mapped_column(default=0)
    """Requests for this serial refused for a wrong or missing device credential."""
    last_auth_failure_at: Mapped[dt.datetime | None]
    note: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[dt.datetime]


class Terminal(Base):
    """A TID under a merchant's MID."""

    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(primary_key=True)
    tid: Mapped[str] = mapped_column(String(8), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    model_code: Mapped[str] = mapped_column(ForeignKey("terminal_models.code"))
    status: Mapped[str] = mapped_column(String(16), index=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    """The signed contract under which the terminal was allocated."""
    install_address: Mapped[str] = mapped_column(String(300))
    install_latitude: Mapped[str | None] = mapped_column(String(16))
    install_longitude: Mapped[str | None] = mapped_column(String(16))
    """Where the terminal was registered as installed (decimal degrees, WGS-84); a
    heartbeat farther away than the relocation rule allows raises a 移机 alert."""
    locked_reason: Mapped[str | None] = mapped_column(String(300))
    locked_at: Mapped[dt.datetime | None]
    activated_at: Mapped[dt.datetime | None]
    acceptance_reference: Mapped[str | None] = mapped_column(String(64))
    """Reference (RRN) of the acceptance test transaction that made it active."""
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class KeySource(StrEnum):
    GENERATED = "generated"
    """From the CSPRNG (``poshub.terminals.hsm.generate_tmk``)."""
    KNOWN_TEST_KEY = "known_test_key"
    """The published test key, allowed only outside production mode (the demo)."""


class TerminalKey(Base):
    """A terminal master key, stored only as a TR-31 key block under the key-block
    protection key derived from the KEK. The clear key is never stored."""

    __tablename__ = "terminal_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    key_block: Mapped[str] = mapped_column(Text)
    kcv: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime]
    retired_at: Mapped[dt.datetime | None]
    """Set when a swap or a re-key replaces it; the gateway uses the one key not retired."""
    export_count: Mapped[int] = mapped_column(default=0)


class DeviceCredential(Base):
    """The per-device secret with which a terminal signs its TMS requests (HMAC-SHA256).

    The secret is kept encrypted under the key vault (it must be recoverable to verify
    signatures); it is shown once, to operations, for injection with the keys.
    """

    __tablename__ = "device_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class TmsParameterSet(Base):
    """One version of a terminal's parameters; the latest version is the one served."""

    __tablename__ = "tms_parameter_sets"
    __table_args__ = (UniqueConstraint("terminal_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), index=True)
    version: Mapped[int]
    params: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    fetched_at: Mapped[dt.datetime | None]
    """When the device last downloaded this version (acceptance checks it was loaded)."""
    fetched_by_serial: Mapped[str | None] = mapped_column(String(32))


class TmsAuthFailureCount(Base):
    """TMS requests refused (401), counted by reason across the fleet. Per-device counts
    live on ``Device``; requests naming an unknown serial are counted here only, so an
    attacker inventing serials cannot grow the table."""

    __tablename__ = "tms_auth_failure_counts"

    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    failures: Mapped[int] = mapped_column(BigInteger)
    last_failure_at: Mapped[dt.datetime]


class TransportKeyStatus(StrEnum):
    PENDING = "pending"
    """The first custodian's component is entered; waiting for the second."""
    ACTIVE = "active"
    """Both components entered: the key is registered and named by its KCV."""
    CANCELLED = "cancelled"
    """The ceremony was abandoned (the combined key was refused); no key exists."""


class TransportKey(Base):
    """A transport key (TK / ZMK) of a key-injection device, formed under dual control:
    two custodians each enter a component, the key is their XOR. Stored only as a TR-31
    key block under the KBPK; the first component waits encrypted under the KEK-derived
    field key and is erased when the second arrives."""

    __tablename__ = "transport_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    kcv: Mapped[str | None] = mapped_column(String(6), unique=True)
    """The registered key's check value (6 hex digits), its name; None until registered."""
    key_block: Mapped[str | None] = mapped_column(Text)
    first_component_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    first_component_kcv: Mapped[str] = mapped_column(String(6))
    first_custodian_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    second_custodian_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    second_component_kcv: Mapped[str | None] = mapped_column(String(6))
    created_at: Mapped[dt.datetime]
    registered_at: Mapped[dt.datetime | None]


class KeyExportStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    COLLECTED = "collected"
    """The cryptogram was released to the requester, once."""


class KeyExportRequest(Base):
    """One export of a terminal master key under a registered transport key: requested by
    one operator, approved by another, then collected once by the requester. The
    cryptogram is computed at collection and never stored."""

    __tablename__ = "key_export_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), index=True)
    terminal_key_id: Mapped[int] = mapped_column(ForeignKey("terminal_keys.id"))
    transport_key_id: Mapped[int] = mapped_column(ForeignKey("transport_keys.id"))
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    requested_at: Mapped[dt.datetime]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    approved_at: Mapped[dt.datetime | None]
    collected_at: Mapped[dt.datetime | None]
