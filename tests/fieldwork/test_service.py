"""Fieldwork use cases through the database (SQLite, and PostgreSQL when configured):
installation to go-live, who may act, the fields each step needs, swaps, repairs,
shipping, photos and the SLA clock."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError
from sqlalchemy import select

from poshub.bootstrap import AppState
from poshub.core import audit, limits
from poshub.core.clock import SHANGHAI
from poshub.core.db import utcnow
from poshub.core.errors import Conflict, Forbidden, PosHubError, TooLarge, ValidationFailed
from poshub.fieldwork import jobs, repository, service
from poshub.fieldwork.models import WorkOrder, WorkOrderStep
from poshub.fieldwork.schemas import WorkOrderIn
from poshub.fieldwork.service import FieldworkDeps, StepResult
from poshub.merchants import repository as merchant_repository
from poshub.terminals import repository as terminal_repository
from tests.factories import EXECUTABLE_AS_PDF, PDF, PNG
from tests.fieldwork.support import (
    SECOND_TECHNICIAN,
    Site,
    add_second_technician,
    contracted_site,
    mark_parameters_fetched,
    principal,
    stock,
)

ACCEPTANCE = {
    "reference": "612345678901",
    "response_time_ms": 850,
    "receipt_printed": True,
    "record_matches": True,
}
TRAINING = {
    "signer_name": "陈明",
    "topics": ["sale", "void", "refund", "settlement", "receipts"],
    "manual_given": True,
}


@pytest.fixture
def site(client: TestClient, state: AppState) -> Site:
    return contracted_site(client, state)


def deps(state: AppState) -> FieldworkDeps:
    return FieldworkDeps(state.settings, state.vault, state.onboarding.store)


def create(
    state: AppState,
    kind: str,
    site: Site | None = None,
    *,
    mid: str | None = None,
    now: dt.datetime | None = None,
    **fields: Any,
) -> str:
    with state.db.unit_of_work() as uow:
        data = WorkOrderIn.model_validate(
            {"kind": kind, "mid": mid or (site.mid if site else ""), **fields}
            | ({"tid": site.tid} if site and kind != "site_survey" else {})
        )
        order = service.create_order(
            uow.session, data, principal(uow.session, "ops"), now=now or utcnow()
        )
        uow.commit()
        return order.number


def step(
    state: AppState,
    username: str,
    number: str,
    target: str,
    body: dict[str, Any] | None = None,
    *,
    now: dt.datetime | None = None,
) -> StepResult:
    with state.db.unit_of_work() as uow:
        who = principal(uow.session, username)
        order = service.get_for(uow.session, number, who, for_update=True)
        result = service.perform_step(
            uow.session, deps(state), order, who, target, body or {}, now=now or utcnow()
        )
        uow.commit()
        return result


def order(state: AppState, number: str) -> WorkOrder:
    with state.db.unit_of_work(read_only=True) as uow:
        found = repository.by_number(uow.session, number)
        assert found is not None
        uow.session.expunge(found)  # keep its loaded state past the read-only rollback
        return found


def tomorrow_10am() -> str:
    day = (utcnow().astimezone(SHANGHAI) + dt.timedelta(days=1)).date()
    return f"{day.isoformat()}T10:00"


def to_parameters_loaded(state: AppState, site: Site, number: str) -> None:
    step(state, "ops", number, "assigned", {"technician": "tech"})
    step(state, "tech", number, "scheduled", {"appointment_at": tomorrow_10am()})
    step(state, "tech", number, "checked_in", {"serial_number": site.serial.lower()})
    mark_parameters_fetched(state, site.tid, site.serial)
    step(state, "tech", number, "parameters_loaded")


def live_site(state: AppState, site: Site) -> str:
    """Install ``site``'s terminal through to go-live; return the order number."""
    number = create(state, "installation", site)
    to_parameters_loaded(state, site, number)
    step(state, "tech", number, "acceptance_passed", ACCEPTANCE)
    step(state, "tech", number, "trained", TRAINING)
    step(state, "tech", number, "completed")
    return number


def fields_of(error: ValidationError | ValidationFailed) -> set[str]:
    if isinstance(error, ValidationError):
        return {".".join(str(p) for p in e["loc"]) for e in error.errors()}
    return {e.field for e in error.errors}


# --- Installation to go-live ---------------------------------------------------------------------


def test_installation_to_go_live_makes_the_terminal_active_and_the_merchant_live(
    state: AppState, site: Site
) -> None:
    number = create(state, "installation", site)
    created = order(state, number)
    assert created.status == "open"
    assert created.site_address == "安徽省合肥市蜀山区长江西路 100 号"  # the terminal's address
    assert created.contact_mobile == "13905510001"  # the merchant's
    assert created.due_at > utcnow()

    step(state, "ops", number, "assigned", {"technician": "tech"})
    appointment = step(state, "tech", number, "scheduled", {"appointment_at": tomorrow_10am()})
    assert appointment.order.appointment_at is not None
    assert appointment.order.appointment_at.astimezone(SHANGHAI).hour == 10
    step(state, "tech", number, "checked_in", {"serial_number": site.serial})

    with state.db.unit_of_work(read_only=True) as uow:
        device = terminal_repository.device_by_serial(uow.session, site.serial)
        assert device is not None
        assert device.status == "installed"

    # The device has not downloaded its parameters: the step is refused, nothing changes.
    with pytest.raises(Conflict) as refused:
        step(state, "tech", number, "parameters_loaded")
    assert refused.value.code == "parameters_not_fetched"
    assert refused.value.params["tid"] == site.tid
    assert order(state, number).status == "checked_in"
    # …until the TMS saw the download.
    mark_parameters_fetched(state, site.tid, site.serial)
    loaded = step(state, "tech", number, "parameters_loaded")
    assert loaded.order.data["parameters_loaded"]["parameters_version"] == 1

    with state.db.unit_of_work(read_only=True) as uow:
        merchant = merchant_repository.by_mid(uow.session, site.mid)
        assert merchant is not None
        assert merchant.status == "provisioning"

    step(state, "tech", number, "acceptance_passed", ACCEPTANCE)
    with state.db.unit_of_work(read_only=True) as uow:
        terminal = terminal_repository.terminal_by_tid(uow.session, site.tid)
        merchant = merchant_repository.by_mid(uow.session, site.mid)
        device = terminal_repository.device_by_serial(uow.session, site.serial)
        assert terminal is not None
        assert merchant is not None
        assert device is not None
        assert terminal.status == "active"
        assert terminal.acceptance_reference == ACCEPTANCE["reference"]
        assert device.status == "active"
        assert merchant.status == "live"
        assert merchant.live_at is not None

    step(state, "tech", number, "trained", TRAINING)
    done = step(state, "tech", number, "completed", {"note": "商户已开始使用。"})
    assert done.order.status == "completed"
    assert done.order.completed_at is not None
    assert service.sla_state(done.order, utcnow()) == "met"

    with state.db.unit_of_work(read_only=True) as uow:
        history = repository.steps(uow.session, done.order.id)
        assert [(s.from_status, s.to_status) for s in history] == [
            ("", "open"),
            ("open", "assigned"),
            ("assigned", "scheduled"),
            ("scheduled", "checked_in"),
            ("checked_in", "parameters_loaded"),
            ("parameters_loaded", "acceptance_passed"),
            ("acceptance_passed", "trained"),
            ("trained", "completed"),
        ]
        assert history[-1].note == "商户已开始使用。"
        assert history[5].data["reference"] == ACCEPTANCE["reference"]
        actions = [e.action for e in audit.recent(uow.session, entity_id=number, limit=50)]
        for action in (
            "work_order.created",
            "work_order.assigned",
            "work_order.checked_in",
            "work_order.acceptance_passed",
            "work_order.completed",
        ):
            assert action in actions
        _, problem = audit.verify(uow.session)
        assert problem is None


def test_go_live_waits_for_training_with_the_required_topics(state: AppState, site: Site) -> None:
    number = create(state, "installation", site)
    to_parameters_loaded(state, site, number)
    step(state, "tech", number, "acceptance_passed", ACCEPTANCE)
    with pytest.raises(Conflict) as early:
        step(state, "tech", number, "completed")
    assert early.value.params["allowed"] == "trained"
    with pytest.raises(ValidationFailed) as short:
        step(state, "tech", number, "trained", {"signer_name": "陈明", "topics": ["sale", "void"]})
    assert fields_of(short.value) == {"topics"}
    assert "settlement" in short.value.errors[0].params["topics"]


def test_out_of_order_step_is_409_naming_the_allowed_steps(state: AppState, site: Site) -> None:
    number = create(state, "installation", site)
    step(state, "ops", number, "assigned", {"technician": "tech"})
    with pytest.raises(Conflict) as raised:
        step(state, "tech", number, "acceptance_passed", ACCEPTANCE)
    assert raised.value.status_code == 409
    assert raised.value.params["current"] == "assigned"
    assert raised.value.params["allowed"] == "cancelled, scheduled"


# --- Who may act ------------------------------------------------------------------------------------


def test_a_technician_cannot_act_on_someone_elses_order(state: AppState, site: Site) -> None:
    add_second_technician(state)
    number = create(state, "installation", site, technician="tech")
    with pytest.raises(Forbidden) as raised:
        step(state, SECOND_TECHNICIAN, number, "scheduled", {"appointment_at": tomorrow_10am()})
    assert raised.value.status_code == 403
    assert raised.value.code == "not_assignee"
    # Nor read it.
    with state.db.unit_of_work(read_only=True) as uow, pytest.raises(Forbidden):
        service.get_for(uow.session, number, principal(uow.session, SECOND_TECHNICIAN))
    # Nor add photos to it.
    with pytest.raises(Forbidden):
        add_photo(state, SECOND_TECHNICIAN, number, PNG)
    # After a hand-over it is theirs, and no longer the first technician's.
    step(state, "ops", number, "assigned", {"technician": SECOND_TECHNICIAN})
    assert order(state, number).status == "assigned"
    step(state, SECOND_TECHNICIAN, number, "scheduled", {"appointment_at": tomorrow_10am()})
    with pytest.raises(Forbidden):
        step(state, "tech", number, "checked_in", {"serial_number": site.serial})


def test_each_step_belongs_to_operations_or_the_technician(state: AppState, site: Site) -> None:
    number = create(state, "installation", site, technician="tech")
    step(state, "tech", number, "scheduled", {"appointment_at": tomorrow_10am()})
    # Operations do not check in for the technician…
    with pytest.raises(Forbidden) as raised:
        step(state, "ops", number, "checked_in", {"serial_number": site.serial})
    assert raised.value.code == "technician_only"
    # …and the technician neither cancels nor hands the order over.
    with pytest.raises(Forbidden) as raised:
        step(state, "tech", number, "cancelled", {"reason": "Merchant not there."})
    assert raised.value.code == "operations_only"
    with pytest.raises(Forbidden):
        step(state, "tech", number, "assigned", {"technician": "tech"})
    # Creating orders is for operations only.
    with state.db.unit_of_work() as uow, pytest.raises(Forbidden):
        service.create_order(
            uow.session,
            WorkOrderIn(kind="repair", mid=site.mid, tid=site.tid),
            principal(uow.session, "tech"),
            now=utcnow(),
        )


def test_only_technicians_can_be_assigned(state: AppState, site: Site) -> None:
    number = create(state, "installation", site)
    for username in ("reviewer", "nobody"):
        with pytest.raises(ValidationFailed) as raised:
            step(state, "ops", number, "assigned", {"technician": username})
        assert fields_of(raised.value) == {"technician"}


# --- 422s name the fields ------------------------------------------------------------------------------


def test_step_bodies_name_every_invalid_field(state: AppState, site: Site) -> None:
    number = create(state, "installation", site)
    to_parameters_loaded(state, site, number)
    with pytest.raises(ValidationError) as shape:
        step(
            state,
            "tech",
            number,
            "acceptance_passed",
            {"reference": "12345", "response_time_ms": -1, "receipt_printed": "maybe"},
        )
    assert fields_of(shape.value) == {
        "reference",
        "response_time_ms",
        "receipt_printed",
        "record_matches",
    }
    with pytest.raises(ValidationFailed) as rules:
        step(
            state,
            "tech",
            number,
            "acceptance_passed",
            ACCEPTANCE
            | {"receipt_printed": False, "record_matches": False, "response_time_ms": 61_000},
        )
    assert fields_of(rules.value) == {"receipt_printed", "record_matches", "response_time_ms"}
    with pytest.raises(ValidationError) as extra:
        step(state, "tech", number, "acceptance_passed", ACCEPTANCE | {"amount": 1})
    assert fields_of(extra.value) == {"amount"}
    assert order(state, number).status == "parameters_loaded"


def test_check_in_needs_the_serial_of_the_orders_device(state: AppState, site: Site) -> None:
    number = create(state, "installation", site, technician="tech")
    step(state, "tech", number, "scheduled", {"appointment_at": tomorrow_10am()})
    with pytest.raises(ValidationFailed) as missing:
        step(state, "tech", number, "checked_in", {})
    assert fields_of(missing.value) == {"serial_number"}
    with pytest.raises(ValidationFailed) as wrong:
        step(state, "tech", number, "checked_in", {"serial_number": "SN-OTHER-1"})
    assert wrong.value.errors[0].code == "serial_number.mismatch"


def test_appointment_must_be_ahead(state: AppState, site: Site) -> None:
    number = create(state, "installation", site, technician="tech")
    with pytest.raises(ValidationFailed) as past:
        step(state, "tech", number, "scheduled", {"appointment_at": "2020-01-01T10:00"})
    assert fields_of(past.value) == {"appointment_at"}


def test_creation_names_unknown_mid_and_tid(state: AppState, site: Site) -> None:
    with pytest.raises(ValidationFailed) as mid:
        create(state, "repair", mid="898340154119999", tid=site.tid)
    assert fields_of(mid.value) == {"mid"}
    with pytest.raises(ValidationFailed) as tid:
        create(state, "repair", mid=site.mid, tid="99999999")
    assert fields_of(tid.value) == {"tid"}
    with pytest.raises(ValidationFailed) as missing:
        create(state, "installation", mid=site.mid)
    assert fields_of(missing.value) == {"tid"}
    with pytest.raises(ValidationError) as shape:
        WorkOrderIn.model_validate({"kind": "party", "mid": "12", "contact_mobile": "12345"})
    assert fields_of(shape.value) == {"kind", "mid", "contact_mobile"}


def test_creation_checks_the_terminal(state: AppState, site: Site) -> None:
    # A repair needs a terminal in service; this one is still being provisioned.
    with pytest.raises(Conflict) as repair:
        create(state, "repair", site)
    assert repair.value.code == "terminal_not_in_service"
    first = create(state, "installation", site)
    with pytest.raises(Conflict) as twice:
        create(state, "installation", site)
    assert twice.value.code == "work_order_exists"
    assert twice.value.params["number"] == first


# --- Site survey --------------------------------------------------------------------------------------


def test_site_survey_records_the_checklist(state: AppState, site: Site) -> None:
    number = create(state, "site_survey", mid=site.mid, technician="tech")
    assert order(state, number).terminal_id is None
    assert order(state, number).site_address.startswith("安徽省合肥市蜀山区")
    step(state, "tech", number, "checked_in")
    with pytest.raises(ValidationFailed) as no_reason:
        step(
            state,
            "tech",
            number,
            "completed",
            {
                "power_available": True,
                "network": "none",
                "signal_ok": False,
                "position": "收银台左侧",
                "feasible": True,
            },
        )
    assert fields_of(no_reason.value) == {"feasible"}
    with pytest.raises(ValidationFailed) as not_feasible:
        step(
            state,
            "tech",
            number,
            "completed",
            {
                "power_available": False,
                "network": "4g",
                "signal_ok": True,
                "position": "收银台左侧",
                "feasible": False,
            },
        )
    assert fields_of(not_feasible.value) == {"reason"}
    done = step(
        state,
        "tech",
        number,
        "completed",
        {
            "power_available": True,
            "network": "4g",
            "signal_ok": True,
            "position": "收银台左侧，电子秤旁",
            "feasible": True,
        },
    )
    assert done.order.data["completed"]["network"] == "4g"
    assert done.order.data["completed"]["feasible"] is True


# --- Shipping --------------------------------------------------------------------------------------------


def test_shipping_moves_the_device_and_records_damage(state: AppState, site: Site) -> None:
    number = create(state, "shipping", site)
    with pytest.raises(Forbidden):
        step(state, "tech", number, "shipped", {"carrier": "顺丰速运", "tracking_number": "SF1"})
    with pytest.raises(ValidationError) as bad:
        step(state, "ops", number, "shipped", {"carrier": "顺丰速运", "tracking_number": "SF 1"})
    assert fields_of(bad.value) == {"tracking_number"}
    step(
        state, "ops", number, "shipped", {"carrier": "顺丰速运", "tracking_number": "sf1234567890"}
    )
    with state.db.unit_of_work(read_only=True) as uow:
        device = terminal_repository.device_by_serial(uow.session, site.serial)
        assert device is not None
        assert device.status == "shipped"
    now_local = utcnow().astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")
    step(state, "ops", number, "delivered", {"received_by": "陈明", "received_at": now_local})
    with pytest.raises(ValidationFailed) as unsaid:
        step(state, "ops", number, "inspected", {"condition": "damaged", "serial_number": "X-1234"})
    assert fields_of(unsaid.value) == {"notes", "serial_number"}
    damaged = step(
        state,
        "ops",
        number,
        "inspected",
        {"condition": "damaged", "serial_number": site.serial, "notes": "屏幕碎裂"},
    )
    assert damaged.order.status == "damaged"
    assert service.sla_state(damaged.order, utcnow()) == "stopped"
    with pytest.raises(Conflict) as final:
        step(state, "ops", number, "completed")
    assert final.value.params["allowed"] == "none"


# --- Swap and repair -------------------------------------------------------------------------------------


def test_swap_keeps_the_tid_and_changes_the_key(state: AppState, site: Site) -> None:
    live_site(state, site)
    stock(state, "SN-A8-000002")
    number = create(state, "swap", site, technician="tech")
    assert order(state, number).status == "assigned"
    with pytest.raises(Forbidden):
        step(state, "tech", number, "device_prepared", {"new_serial": "SN-A8-000002"})
    with pytest.raises(ValidationFailed) as unknown:
        step(state, "ops", number, "device_prepared", {"new_serial": "SN-NOPE-0001"})
    assert fields_of(unknown.value) == {"new_serial"}
    prepared = step(state, "ops", number, "device_prepared", {"new_serial": "sn-a8-000002"})
    assert prepared.provisioned is not None
    assert prepared.provisioned.terminal.tid == site.tid
    assert prepared.provisioned.kcv != site.kcv
    assert len(prepared.provisioned.device_secret) == 64
    record = prepared.order.data["device_prepared"]
    assert record == {"new_serial": "SN-A8-000002", "old_serial": site.serial, "kcv": record["kcv"]}
    assert prepared.provisioned.device_secret not in str(prepared.order.data)

    with state.db.unit_of_work(read_only=True) as uow:
        terminal = terminal_repository.terminal_by_tid(uow.session, site.tid)
        assert terminal is not None
        key = terminal_repository.current_key(uow.session, terminal.id)
        assert key is not None
        assert key.kcv == prepared.provisioned.kcv
        old = terminal_repository.device_by_serial(uow.session, site.serial)
        assert old is not None
        assert old.status == "returned"
        assert old.terminal_id is None
        steps = uow.session.execute(select(WorkOrderStep.data)).scalars().all()
        assert all(prepared.provisioned.device_secret not in str(d) for d in steps)

    step(state, "tech", number, "checked_in", {"serial_number": "SN-A8-000002"})
    # The old device's download does not count for the new one.
    with pytest.raises(Conflict):
        step(state, "tech", number, "parameters_loaded")
    mark_parameters_fetched(state, site.tid, "SN-A8-000002")
    step(state, "tech", number, "parameters_loaded")
    # A swap needs a new test transaction, not the installation's.
    with pytest.raises(ValidationFailed) as reused:
        step(state, "tech", number, "acceptance_passed", ACCEPTANCE)
    assert fields_of(reused.value) == {"reference"}
    step(state, "tech", number, "acceptance_passed", ACCEPTANCE | {"reference": "612345678902"})
    done = step(state, "tech", number, "completed")
    assert done.order.status == "completed"
    with state.db.unit_of_work(read_only=True) as uow:
        terminal = terminal_repository.terminal_by_tid(uow.session, site.tid)
        new = terminal_repository.device_by_serial(uow.session, "SN-A8-000002")
        assert terminal is not None
        assert new is not None
        assert terminal.status == "active"
        assert new.status == "active"
        assert new.terminal_id == terminal.id


def test_repair_that_needs_a_swap_hands_over_to_a_swap_order(state: AppState, site: Site) -> None:
    live_site(state, site)
    number = create(state, "repair", site, technician="tech")
    step(state, "tech", number, "checked_in")
    result = step(state, "tech", number, "swap_required", {"diagnosis": "主板损坏，无法开机"})
    assert result.order.status == "swap_required"
    assert result.follow_up is not None
    swap = order(state, result.follow_up.number)
    assert swap.kind == "swap"
    assert swap.status == "assigned"
    assert swap.technician_id == result.order.technician_id
    assert swap.terminal_id == result.order.terminal_id
    assert result.order.data["swap_required"]["swap_order"] == swap.number


def test_repair_resolved_on_site(state: AppState, site: Site) -> None:
    live_site(state, site)
    number = create(state, "repair", site, technician="tech")
    step(state, "tech", number, "checked_in", {"serial_number": site.serial})
    with pytest.raises(ValidationError) as bad:
        step(state, "tech", number, "resolved", {"diagnosis": "x"})
    assert fields_of(bad.value) == {"diagnosis", "action"}
    step(state, "tech", number, "resolved", {"diagnosis": "打印机卡纸", "action": "清理并更换纸卷"})
    assert step(state, "tech", number, "completed").order.status == "completed"


# --- Photos ---------------------------------------------------------------------------------------------------


def add_photo(state: AppState, username: str, number: str, content: bytes) -> Any:
    with state.db.unit_of_work() as uow:
        found = repository.by_number(uow.session, number, for_update=True)
        assert found is not None
        photo = service.add_photo(
            uow.session,
            state.onboarding.store,
            found,
            principal(uow.session, username),
            content=content,
            caption="门头照片",
            now=utcnow(),
        )
        uow.commit()
        return photo


def test_photos_are_checked_by_content_size_and_count(
    state: AppState, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = create(state, "site_survey", mid=site.mid, technician="tech")
    photo = add_photo(state, "tech", number, PNG)
    assert photo.content_type == "image/png"
    with Image.open(io.BytesIO(state.onboarding.store.get(photo.sha256))) as stored:
        assert stored.size == (8, 8)  # re-encoded: the same picture, not the same bytes
    jpeg = io.BytesIO()
    Image.new("RGB", (16, 12), (10, 120, 200)).save(jpeg, "JPEG")
    assert add_photo(state, "ops", number, jpeg.getvalue()).content_type == "image/jpeg"
    for content in (PDF, EXECUTABLE_AS_PDF, b"", b"GIF89a...."):
        with pytest.raises(ValidationFailed) as refused:
            add_photo(state, "tech", number, content)
        assert fields_of(refused.value) == {"file"}
    monkeypatch.setattr(limits, "WORK_ORDER_PHOTO_BYTES_MAX", 100)
    with pytest.raises(TooLarge):
        add_photo(state, "tech", number, PNG + b"\x00" * 200)
    monkeypatch.setattr(limits, "WORK_ORDER_PHOTOS_MAX", 2)
    with pytest.raises(Conflict) as full:
        add_photo(state, "tech", number, PNG)
    assert full.value.code == "too_many_photos"


# --- SLA ---------------------------------------------------------------------------------------------------------


def test_due_date_counts_chinese_working_days_across_a_holiday(state: AppState, site: Site) -> None:
    # Created on Monday 29 September 2025, before the National Day holiday (1-8 October).
    created = dt.datetime(2025, 9, 29, 10, 0, tzinfo=SHANGHAI)
    survey = create(state, "site_survey", mid=site.mid, now=created)
    install = create(state, "installation", site, now=created)
    assert survey.startswith("WO2025-")
    # Three working days: 30 Sep, 9 Oct, 10 Oct.
    assert order(state, survey).due_at == dt.datetime(2025, 10, 10, 23, 59, 59, tzinfo=SHANGHAI)
    # Five: … 11 Oct (a Saturday worked in exchange) and Monday 13 Oct.
    assert order(state, install).due_at == dt.datetime(2025, 10, 13, 23, 59, 59, tzinfo=SHANGHAI)


def test_breaches_are_flagged_once(state: AppState, site: Site) -> None:
    created = dt.datetime(2025, 9, 29, 10, 0, tzinfo=SHANGHAI)
    late = create(state, "site_survey", mid=site.mid, now=created)
    on_time = create(state, "installation", site)
    with state.db.unit_of_work() as uow:
        assert jobs.flag_sla_breaches(uow.session, utcnow()) == 1
        uow.commit()
    with state.db.unit_of_work() as uow:
        assert jobs.flag_sla_breaches(uow.session, utcnow()) == 0
        breached = [o.number for o in repository.breached(uow.session, limit=10)]
        assert breached == [late]
        assert order(state, on_time).sla_breached_at is None
        assert service.sla_state(order(state, late), utcnow()) == "breached"
        entries = audit.recent(uow.session, entity_id=late, limit=10)
        assert [e.action for e in entries].count("work_order.sla_breached") == 1


def test_cancelled_order_is_final_and_takes_no_photos(state: AppState, site: Site) -> None:
    number = create(state, "installation", site, technician="tech")
    step(state, "ops", number, "cancelled", {"reason": "商户暂停营业"})
    with pytest.raises(Conflict):
        add_photo(state, "tech", number, PNG)
    with pytest.raises(PosHubError):
        step(state, "ops", number, "assigned", {"technician": "tech"})
    # The terminal can be given a new installation order.
    assert create(state, "installation", site) != number
