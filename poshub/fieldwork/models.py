"""Work orders for the people in the field (R6-R11): site survey, shipping, installation
(with acceptance test and training), repair and device swap.

One table for every kind: the kind decides the state machine (``fieldwork.states``) and
what ``data`` holds (the checklist, the carrier, the training topics…). Each step is a
``WorkOrderStep`` row, so the history of an order is never overwritten.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from poshub.core.db import Base


class WorkOrderKind(StrEnum):
    SITE_SURVEY = "site_survey"
    SHIPPING = "shipping"
    INSTALLATION = "installation"
    REPAIR = "repair"
    SWAP = "swap"


class WorkOrder(Base):
    __tablename__ = "work_orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    """The device the order is about (shipped, installed, repaired; the new one in a swap)."""
    replaced_device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    """In a swap: the device taken out of service."""
    technician_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)
    site_address: Mapped[str] = mapped_column(String(300))
    contact_mobile: Mapped[str] = mapped_column(String(11))
    appointment_at: Mapped[dt.datetime | None]
    due_at: Mapped[dt.datetime]
    """SLA deadline, from the order's kind (``poshub.core.limits``), in working time."""
    sla_breached_at: Mapped[dt.datetime | None]
    data: Mapped[dict[str, Any]]
    """What the steps recorded so far (checklists, carrier, results), merged step by step."""
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]


class WorkOrderStep(Base):
    """One transition of a work order, with what the person recorded at that step."""

    __tablename__ = "work_order_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[str] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime]


class WorkOrderPhoto(Base):
    """A photo taken on site (survey position, delivered box, installed terminal). The
    bytes are in the content-addressed store; the row holds the hash."""

    __tablename__ = "work_order_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[str] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    caption: Mapped[str] = mapped_column(String(120))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[dt.datetime]
