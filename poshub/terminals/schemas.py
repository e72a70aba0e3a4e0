"""Request and response bodies of the TMS API (devices and staff).

No response carries a secret: device credentials, keys and signatures never appear here.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from poshub.core.text import PlainTextInput

NETWORKS = ("4g", "5g", "wifi", "ethernet")
Network = Literal["4g", "5g", "wifi", "ethernet"]
Version = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z][0-9A-Za-z._+-]*$")
]

SIGNAL_DBM_MIN = -150
SIGNAL_DBM_MAX = 0


class _In(PlainTextInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- Device side ------------------------------------------------------------------------


class HeartbeatIn(_In):
    """What a terminal reports about itself, every few minutes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    app_version: Version
    firmware_version: Version
    network: Network
    signal_dbm: Annotated[int | None, Field(ge=SIGNAL_DBM_MIN, le=SIGNAL_DBM_MAX)] = None
    """Received signal strength (mobile and Wi-Fi); omit on Ethernet."""
    battery_percent: Annotated[int | None, Field(ge=0, le=100)] = None
    """Omit on mains-powered terminals."""
    latitude: Annotated[float | None, Field(ge=-90, le=90)] = None
    """WGS-84 degrees; give both coordinates or neither."""
    longitude: Annotated[float | None, Field(ge=-180, le=180)] = None


class DeviceTerminalState(BaseModel):
    """What the device must know to behave: may it transact, which parameters are current."""

    serial: str
    tid: str | None
    terminal_status: str | None
    """``provisioning``, ``active``, ``locked``, ``closed``; None if the device serves no TID."""
    locked: bool
    """Remotely locked by operations: the gateway refuses every transaction."""
    may_transact: bool
    """False when locked, closed or not allocated: stop offering payments."""
    parameter_version: int | None
    """The version the host serves; re-fetch the parameters when it differs from yours."""
    server_time: dt.datetime


class HeartbeatOut(DeviceTerminalState):
    pass


class TmsParametersOut(DeviceTerminalState):
    params: dict[str, Any]
    """MID, TID, host, port, receipt names, timeouts, enabled transactions, limits, footer."""
    version_created_at: dt.datetime


# --- Staff side -------------------------------------------------------------------------


class DeviceStatusOut(BaseModel):
    serial: str
    model_code: str
    status: str
    app_version: str | None
    firmware_version: str | None
    network: str | None
    signal_dbm: int | None
    battery_percent: int | None
    latitude: str | None
    longitude: str | None
    last_heartbeat_at: dt.datetime | None
    tms_auth_failures: int
    """TMS requests naming this serial that were refused (401)."""
    last_auth_failure_at: dt.datetime | None


class TerminalOut(BaseModel):
    tid: str
    mid: str | None
    status: str
    model_code: str
    install_address: str
    install_latitude: str | None = None
    install_longitude: str | None = None
    """The registered installation location heartbeats are compared with (移机)."""
    locked_reason: str | None
    locked_at: dt.datetime | None
    activated_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    parameter_version: int | None
    parameters_fetched_at: dt.datetime | None
    """When the device last downloaded the current version (None: not yet)."""
    device: DeviceStatusOut | None


class ParameterSetOut(BaseModel):
    version: int
    params: dict[str, Any]
    created_at: dt.datetime
    created_by: str
    fetched_at: dt.datetime | None
    fetched_by_serial: str | None


class ParameterChangeIn(_In):
    """The parameters to change (only the editable ones); the rest carry over."""

    params: Annotated[dict[str, Any], Field(min_length=1, max_length=20)]


class LockIn(_In):
    reason: Annotated[str, Field(min_length=1, max_length=300)]


class AuthFailureCountsOut(BaseModel):
    total: int
    by_reason: dict[str, int]
    """Every refusal reason, with 0 where none was counted."""


# --- Inventory, allocation and keys (web/api/fleet.py) ---------------------------------


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    serial_number: str
    model_code: str
    status: str
    warehouse: str
    received_at: dt.datetime
    firmware_version: str | None
    app_version: str | None
    last_heartbeat_at: dt.datetime | None
    tms_auth_failures: int


class StockInOut(BaseModel):
    batch_id: int
    imported: int
    file_sha256: str


class AllocateIn(PlainTextInput):
    model_config = ConfigDict(extra="forbid")

    serial_number: str = Field(min_length=4, max_length=32)
    install_address: str | None = Field(default=None, max_length=300)


class SwapIn(PlainTextInput):
    model_config = ConfigDict(extra="forbid")

    serial_number: str = Field(min_length=4, max_length=32)


class ProvisionedOut(BaseModel):
    """Shown once, to operations: the device secret is never shown again."""

    tid: str
    mid: str
    serial_number: str
    terminal_status: str
    device_status: str
    kcv: str
    device_secret: str


class TerminalSummaryOut(BaseModel):
    tid: str
    mid: str
    model_code: str
    status: str
    serial_number: str | None
    device_status: str | None
    kcv: str | None
    activated_at: dt.datetime | None


class TransportKeyStartIn(PlainTextInput):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=64)
    """What the key is for, e.g. the key-injection device or the bank's ZMK name."""
    component: str = Field(min_length=32, max_length=47, repr=False)
    """The first custodian's component: 32 hex digits (spaces allowed between groups)."""


class TransportKeyComponentIn(PlainTextInput):
    model_config = ConfigDict(extra="forbid")

    component: str = Field(min_length=32, max_length=47, repr=False)
    """The second custodian's component; must be entered by another person."""


class TransportKeyOut(BaseModel):
    id: int
    label: str
    status: str
    kcv: str | None
    """The registered key's check value (its name); None while the ceremony is open."""
    first_component_kcv: str
    second_component_kcv: str | None
    first_custodian: str
    second_custodian: str | None
    created_at: dt.datetime
    registered_at: dt.datetime | None


class KeyExportRequestIn(PlainTextInput):
    model_config = ConfigDict(extra="forbid")

    transport_key_kcv: str = Field(pattern=r"^\s*[0-9A-Fa-f]{6}\s*$")
    """The registered transport key to export under, by its 6-digit check value."""


class KeyExportRequestOut(BaseModel):
    id: int
    tid: str
    status: str
    transport_key_kcv: str
    requested_by: str
    requested_at: dt.datetime
    approved_by: str | None
    approved_at: dt.datetime | None
    collected_at: dt.datetime | None
    expires_at: dt.datetime


class KeyExportOut(BaseModel):
    """The cryptogram, released once to the requester after a second person's approval."""

    tid: str
    serial_number: str
    kcv: str
    transport_key_kcv: str
    key_block: str


class InspectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sound: bool
