"""Request and response bodies of the fieldwork API: one input model per step.

Times without a zone (what a phone's ``datetime-local`` field sends) are read as
Asia/Shanghai; the service converts them to UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from poshub.core.text import PersonName, PlainTextInput
from poshub.fieldwork.models import WorkOrderKind
from poshub.fieldwork.states import (
    Condition,
    NetworkKind,
    TrainingTopic,
    WorkOrderStatus,
)

NOTE_LENGTH_MAX = 500
ACCEPTANCE_RESPONSE_MS_MAX = 180_000
"""Upper bound on a recorded response time; the service holds it to the terminal's own
response timeout (TMS parameter ``response_timeout_seconds``)."""

Note = Annotated[str | None, Field(default=None, max_length=NOTE_LENGTH_MAX)]
Text = Annotated[str, Field(min_length=2, max_length=NOTE_LENGTH_MAX)]
Serial = Annotated[str, Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]+$")]
Mobile = Annotated[str, Field(pattern=r"^1[3-9]\d{9}$")]
Username = Annotated[str, Field(min_length=1, max_length=64)]


class _In(PlainTextInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- Orders ------------------------------------------------------------------------------


class WorkOrderIn(_In):
    """A new work order, created by operations."""

    kind: WorkOrderKind
    mid: Annotated[str, Field(pattern=r"^\d{15}$")]
    tid: Annotated[str | None, Field(default=None, pattern=r"^\d{8}$")] = None
    """Required for every kind but a site survey (which may come before any terminal)."""
    site_address: Annotated[str | None, Field(default=None, min_length=4, max_length=300)] = None
    """Defaults to the terminal's installation address, else the shop's address."""
    contact_mobile: Mobile | None = None
    """Defaults to the merchant's mobile number."""
    technician: Username | None = None
    """Assign at once (a username with the technician role)."""
    note: Note = None


class AssignIn(_In):
    technician: Username
    note: Note = None


# --- Steps -------------------------------------------------------------------------------


class NoteStepIn(_In):
    """A step that needs no more than an optional note (e.g. closing a repair)."""

    note: Note = None


class ScheduleIn(_In):
    appointment_at: dt.datetime
    note: Note = None


class CheckInIn(_In):
    """Arrival on site. For an installation or a swap the technician reads the serial
    number off the device's label: it must be the device this order is about."""

    serial_number: Serial | None = None
    note: Note = None


class SurveyIn(_In):
    """The site-survey checklist (R6)."""

    power_available: bool
    network: NetworkKind
    signal_ok: bool
    """The terminal's network is usable where it will stand (bars, a test ping)."""
    position: Annotated[str, Field(min_length=2, max_length=300)]
    """Where the terminal will stand (e.g. "cashier counter, left of the scale")."""
    feasible: bool
    reason: Note = None
    """Why not, when the installation is not feasible."""


class ShippedIn(_In):
    carrier: Annotated[str, Field(min_length=2, max_length=40)]
    tracking_number: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{6,32}$")]
    note: Note = None


class DeliveredIn(_In):
    received_by: Annotated[PersonName, Field(min_length=1, max_length=100)]
    received_at: dt.datetime
    note: Note = None


class InspectionIn(_In):
    """Inspection on arrival: the box, the device and its serial number."""

    condition: Condition
    serial_number: Serial
    notes: Note = None
    """Required when the device arrived damaged: what is broken."""


class DevicePreparedIn(_In):
    new_serial: Serial
    note: Note = None


class ParametersLoadedIn(_In):
    note: Note = None


class AcceptanceIn(_In):
    """The acceptance test (R9): one real transaction through the production path."""

    reference: Annotated[str, Field(pattern=r"^\d{12}$")]
    """The test transaction's retrieval reference number (RRN, 12 digits)."""
    response_time_ms: Annotated[int, Field(ge=1, le=ACCEPTANCE_RESPONSE_MS_MAX)]
    receipt_printed: bool
    """The receipt printed, legibly, with the right merchant name, MID and TID."""
    record_matches: bool
    """The host's record (amount, card, time) matches the receipt."""
    note: Note = None


class TrainingIn(_In):
    """Training sign-off by the merchant (R10)."""

    signer_name: Annotated[PersonName, Field(min_length=1, max_length=100)]
    topics: Annotated[list[TrainingTopic], Field(min_length=1, max_length=len(TrainingTopic))]
    manual_given: bool = False
    """The quick-reference manual was handed over."""
    note: Note = None


class RepairIn(_In):
    diagnosis: Text
    action: Text


class SwapRequiredIn(_In):
    diagnosis: Text


class CancelIn(_In):
    reason: Text


def step_schema(kind: str, target: WorkOrderStatus) -> type[_In]:
    """The body a step takes in an order of ``kind``."""
    if target is WorkOrderStatus.COMPLETED and kind == WorkOrderKind.SITE_SURVEY:
        return SurveyIn
    if target is WorkOrderStatus.CHECKED_IN:
        return CheckInIn
    return _STEP_SCHEMAS.get(target, NoteStepIn)


_STEP_SCHEMAS: dict[WorkOrderStatus, type[_In]] = {
    WorkOrderStatus.ASSIGNED: AssignIn,
    WorkOrderStatus.SCHEDULED: ScheduleIn,
    WorkOrderStatus.SHIPPED: ShippedIn,
    WorkOrderStatus.DELIVERED: DeliveredIn,
    WorkOrderStatus.INSPECTED: InspectionIn,
    WorkOrderStatus.DAMAGED: InspectionIn,
    WorkOrderStatus.DEVICE_PREPARED: DevicePreparedIn,
    WorkOrderStatus.PARAMETERS_LOADED: ParametersLoadedIn,
    WorkOrderStatus.ACCEPTANCE_PASSED: AcceptanceIn,
    WorkOrderStatus.TRAINED: TrainingIn,
    WorkOrderStatus.RESOLVED: RepairIn,
    WorkOrderStatus.SWAP_REQUIRED: SwapRequiredIn,
    WorkOrderStatus.CANCELLED: CancelIn,
}


# --- Responses -----------------------------------------------------------------------------


class StepOut(BaseModel):
    from_status: str
    to_status: str
    actor: str
    data: dict[str, Any]
    note: str
    at: dt.datetime


class PhotoOut(BaseModel):
    id: int
    content_type: str
    size_bytes: int
    sha256: str
    caption: str
    uploaded_by: str
    uploaded_at: dt.datetime


class NextStepOut(BaseModel):
    target: str
    label: str
    performer: str
    """``operations``, ``technician`` (the assigned one) or ``operations_or_technician``."""


class WorkOrderOut(BaseModel):
    number: str
    kind: str
    status: str
    mid: str
    business_name: str
    tid: str | None
    device_serial: str | None
    replaced_device_serial: str | None
    technician: str | None
    site_address: str
    contact_mobile: str
    appointment_at: dt.datetime | None
    due_at: dt.datetime
    sla_state: str
    """on_track, due_today, breached; met or missed once completed; stopped otherwise."""
    sla_breached_at: dt.datetime | None
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    completed_at: dt.datetime | None


class WorkOrderDetailOut(WorkOrderOut):
    data: dict[str, Any]
    """What the steps recorded so far, by step."""
    steps: list[StepOut]
    photos: list[PhotoOut]
    next_steps: list[NextStepOut]


class ProvisionedOut(BaseModel):
    """Shown once, to operations, after preparing a replacement device."""

    tid: str
    serial_number: str
    kcv: str
    device_secret: str
    """Inject with the keys; PosHub keeps it only encrypted and never shows it again."""


class StepResultOut(BaseModel):
    work_order: WorkOrderDetailOut
    provisioned: ProvisionedOut | None = None
    follow_up: str | None = None
    """The number of the order this step created (a swap after a failed repair)."""
