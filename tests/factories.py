"""Test data: valid fictional identities, application payloads, documents, logins."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum import luhn
from stdnum.cn import ric, uscc

from poshub.bootstrap import AppState
from poshub.catalog.models import FeePlan
from poshub.contracts.models import Contract, ContractStatus
from poshub.core import ids
from poshub.core.clock import business_date
from poshub.core.db import utcnow
from poshub.core.roles import Role
from poshub.demo import tiny_pdf, tiny_png
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant, MerchantStatus
from poshub.onboarding import service as onboarding_service
from poshub.onboarding.consent import PRIVACY_NOTICE_VERSION
from poshub.onboarding.models import Application
from poshub.onboarding.rules import organization_code_check_digit
from poshub.onboarding.schemas import ApplicationIn, ApproveIn
from poshub.staff import repository as staff_repository
from poshub.staff.service import Principal

STAFF: dict[str, tuple[str, tuple[Role, ...]]] = {
    "admin": ("Str0ng-Secret-nimda!", (Role.ADMIN,)),
    "reviewer": ("Str0ng-Secret-reweiver!", (Role.REVIEWER,)),
    "reviewer2": ("Str0ng-Secret-2reweiver!", (Role.REVIEWER,)),
    "risk": ("Str0ng-Secret-ksir!", (Role.RISK_OFFICER,)),
    "ops": ("Str0ng-Secret-spo!", (Role.OPERATIONS,)),
    "tech": ("Str0ng-Secret-hcet!", (Role.TECHNICIAN,)),
    "support": ("Str0ng-Secret-troppus!", (Role.SUPPORT_AGENT,)),
    "auditor": ("Str0ng-Secret-rotidua!", (Role.AUDITOR,)),
}

_sequence = itertools.count(100)


def resident_id(
    born: dt.date = dt.date(1990, 3, 7), region: str = "340104", sequence: int | None = None
) -> str:
    """A checksum-valid resident ID for a fictional person; a fresh sequence each call."""
    seq = f"{(sequence if sequence is not None else next(_sequence)) % 1000:03d}"
    body = f"{region}{born:%Y%m%d}{seq}"
    return body + ric.calc_check_digit(body + "0")


def credit_code(serial: int | None = None, *, prefix: str = "92") -> str:
    """A valid credit code: ``prefix`` 92 an individual business, 91 an enterprise; the
    organisation code inside it carries its own GB 11714 check character."""
    organization = f"MA2N{(serial if serial is not None else next(_sequence)) % 10000:04d}"
    body = f"{prefix}340104{organization}{organization_code_check_digit(organization)}"
    return body + uscc.calc_check_digit(body)


def unit_account_number() -> str:
    """A corporate (unit) account number: 20 digits, no card network's first digit."""
    return f"1302011009{next(_sequence) % 10**10:010d}"


def beneficial_owner(**overrides: Any) -> dict[str, Any]:
    owner: dict[str, Any] = {
        "name": "赵建国",
        "id_number": resident_id(dt.date(1970, 5, 1)),
        "basis": "share",
        "share_percent": "60",
    }
    owner.update(overrides)
    return owner


def card_number(body: str = "622202123456789012") -> str:
    return body + luhn.calc_check_digit(body)


def wrong_check_digit(number: str) -> str:
    last = number[-1]
    replacement = "0" if last != "0" else "1"
    return number[:-1] + replacement


def payload(kind: str = "individual_business", **overrides: Any) -> dict[str, Any]:
    enterprise = kind == "enterprise"
    data: dict[str, Any] = {
        "applicant_kind": kind,
        "legal_name": "陈明",
        "id_number": resident_id(),
        "id_expiry": (dt.date.today() + dt.timedelta(days=3650)).isoformat(),
        "mobile": "13905510001",
        "business_name": "合肥蜀山明辉商贸有限公司" if enterprise else "合肥蜀山明辉便利超市",
        "uscc": credit_code(prefix="91" if enterprise else "92") if kind != "individual" else None,
        "licence_expiry": "2030-12-31" if kind != "individual" else None,
        "established_on": "2018-01-01",
        "mcc": "5411",
        "address": {
            "province": "安徽省",
            "city": "合肥市",
            "district": "蜀山区",
            "detail": "长江西路 100 号",
        },
        "settlement_account": {
            "bank_name": "徽商银行合肥蜀山支行",
            "account_name": "合肥蜀山明辉商贸有限公司" if enterprise else "陈明",
            "account_number": unit_account_number() if enterprise else card_number(),
            "account_type": "unit" if enterprise else "personal",
        },
        "beneficial_owners": [beneficial_owner()] if enterprise else [],
        "expected_monthly_volume_fen": 30_000_000,
        "terminals": [{"model_code": "SMART-A8", "count": 3}],
        "consents": {
            "notice_version": PRIVACY_NOTICE_VERSION,
            "privacy_notice": True,
            "verification_provider": True,
        },
    }
    for key, value in overrides.items():
        if value is _DROP:
            data.pop(key, None)
        else:
            data[key] = value
    account = data.get("settlement_account")
    if isinstance(account, dict) and "account_type" not in account:
        # Tests written before the type was asked give an enterprise's account in its name.
        data["settlement_account"] = {
            **account,
            "account_type": "unit" if enterprise else "personal",
        }
    return data


_DROP = object()
DROP = _DROP

PNG = tiny_png()
PDF = tiny_pdf("scan")
EXECUTABLE_AS_PDF = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(client: TestClient, *, prove: bool = True, **overrides: Any) -> dict[str, Any]:
    """Create an application over HTTP and (unless ``prove`` is false) prove its mobile
    number with the one-time code, as an applicant does before anything else."""
    kind = overrides.pop("kind", "individual_business")
    response = client.post("/api/v1/applications", json=payload(kind, **overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    if prove:
        prove_mobile(client, body)
    return body


def sms_code(client: TestClient, mobile: str) -> str:
    """The one-time code the test SMS adapter (MemoryNotifier) last sent to ``mobile``."""
    code: str | None = _state(client).notifier.last_code(mobile)  # type: ignore[attr-defined]
    assert code is not None, f"no code was sent to {mobile}"
    return code


def prove_mobile(client: TestClient, created: dict[str, Any]) -> None:
    """Ask for the SMS code and type it back, through the API."""
    base = f"/api/v1/applications/{created['id']}/mobile"
    headers = bearer(created["access_token"])
    response = client.post(f"{base}/code", headers=headers)
    assert response.status_code == 202, response.text
    view = client.get(f"/api/v1/applications/{created['id']}", headers=headers).json()
    code = sms_code(client, view["mobile"])
    response = client.post(f"{base}/verify", headers=headers, json={"code": code})
    assert response.status_code == 200, response.text


def upload_required(client: TestClient, created: dict[str, Any]) -> None:
    view = client.get(
        f"/api/v1/applications/{created['id']}", headers=bearer(created["access_token"])
    ).json()
    for item in view["required_documents"]:
        response = client.post(
            f"/api/v1/applications/{created['id']}/documents",
            headers=bearer(created["access_token"]),
            data={"kind": item["kind"]},
            files={"file": (f"{item['kind']}.png", PNG, "image/png")},
        )
        assert response.status_code == 201, response.text


def run_worker(client: TestClient) -> dict[str, int]:
    """One pass of the scheduled jobs (automated checks, notifications, SLA sweep)."""
    from poshub.runtime import run_jobs_once

    app: Any = client.app
    return run_jobs_once(app.state.poshub)


def create_and_submit(
    client: TestClient, *, run_checks: bool = True, **overrides: Any
) -> dict[str, Any]:
    """Create, upload every required document, submit and (by default) let the worker run
    the queued checks, as it does within a second in a running system."""
    created = create(client, **overrides)
    upload_required(client, created)
    response = client.post(
        f"/api/v1/applications/{created['id']}/submit", headers=bearer(created["access_token"])
    )
    assert response.status_code == 200, response.text
    if run_checks:
        run_worker(client)
    return created


def login(client: TestClient, username: str) -> dict[str, str]:
    """Log a staff member in on ``client``; return the CSRF header for unsafe requests."""
    password = STAFF[username][0]
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


def approve(client: TestClient, created: dict[str, Any], reviewer: str = "reviewer") -> str:
    """Claim and approve a submitted application; return the new merchant's MID."""
    csrf = login(client, reviewer)
    base = f"/api/v1/review/applications/{created['id']}"
    response = client.post(f"{base}/claim", headers=csrf)
    assert response.status_code == 200, response.text
    response = client.post(f"{base}/approve", headers=csrf, json={"note": "All good."})
    assert response.status_code == 200, response.text
    mid: str = response.json()["mid"]
    return mid


def submitted_application(client: TestClient, **overrides: Any) -> dict[str, Any]:
    """A submitted application with every required document and its automated checks run:
    what creating it over HTTP answers. For tests that start from a submitted application,
    this calls the onboarding services directly in one transaction instead of walking the
    API (create, upload, submit, worker), which tests/onboarding covers; same data, ~10x
    faster."""
    state = _state(client)
    with state.db.unit_of_work() as uow:
        _, created = _submit_directly(uow.session, state, now=utcnow(), **overrides)
        uow.commit()
    return created


def approved_merchant(client: TestClient, **overrides: Any) -> tuple[dict[str, Any], str]:
    """An application approved by ``reviewer``, with its merchant: (what creating it over
    HTTP answers, MID). Like :func:`submitted_application`, through the services in one
    transaction (claim and approval included); the client's cookies are left as they were."""
    state = _state(client)
    now = utcnow()
    with state.db.unit_of_work() as uow:
        session = uow.session
        application, created = _submit_directly(session, state, now=now, **overrides)
        reviewer = _principal(session, "reviewer")
        onboarding_service.claim(session, application, reviewer, now=now)
        merchant = onboarding_service.approve(
            session, state.onboarding, application, reviewer, ApproveIn(note="All good."), now=now
        )
        assert isinstance(merchant, Merchant), "checks needing a second approval failed"
        created["status"] = application.status
        mid = merchant.mid
        uow.commit()
    return created, mid


def _state(client: TestClient) -> AppState:
    app: Any = client.app
    state: AppState = app.state.poshub
    return state


def _submit_directly(
    session: Session, state: AppState, *, now: dt.datetime, **overrides: Any
) -> tuple[Application, dict[str, Any]]:
    deps = state.onboarding
    kind = overrides.pop("kind", "individual_business")
    application, token = onboarding_service.create_application(
        session,
        deps,
        ApplicationIn.model_validate(payload(kind, **overrides)),
        locale=state.settings.default_locale,
        now=now,
    )
    sms = onboarding_service.request_mobile_code(
        session, deps, application, source_address="tests", now=now
    )
    assert onboarding_service.confirm_mobile(session, deps, application, sms.code, now=now) is None
    needed = onboarding_service.required_documents(application, business_date(now))
    for document_kind in sorted(needed):
        onboarding_service.add_document(
            session,
            deps,
            application,
            kind=document_kind.value,
            file_name=f"{document_kind.value}.png",
            content=PNG,
            uploaded_by=onboarding_service.applicant_actor(application),
            now=now,
        )
    onboarding_service.submit(session, deps, application, now=now)
    onboarding_service.run_checks(session, deps, [application], now=now)
    created = {
        "id": application.id,
        "tracking_number": application.tracking_number,
        "status": application.status,
        "access_token": token,
        "tracking_url": onboarding_service.tracking_url(state.settings, application),
    }
    return application, created


def _principal(session: Session, username: str) -> Principal:
    user = staff_repository.by_username(session, username)
    assert user is not None
    return Principal(
        user.id, user.username, user.display_name, staff_repository.roles_of(session, user.id)
    )


def sha256_of(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def generate_contract(
    client: TestClient, mid: str, *, plan: str = "STANDARD", cycle: str = "T1", by: str = "reviewer"
) -> dict[str, Any]:
    csrf = login(client, by)
    response = client.post(
        f"/api/v1/merchants/{mid}/contracts",
        headers=csrf,
        json={"fee_plan_code": plan, "settlement_cycle": cycle, "term_months": 24},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def sign_as_applicant(client: TestClient, created: dict[str, Any]) -> dict[str, Any]:
    base = f"/api/v1/applications/{created['id']}/contract"
    pdf = client.get(f"{base}/pdf", headers=bearer(created["access_token"]))
    assert pdf.status_code == 200, pdf.text
    response = client.post(
        f"{base}/sign",
        headers=bearer(created["access_token"]),
        json={
            "signer_name": payload()["legal_name"],
            "agree": True,
            "pdf_sha256": sha256_of(pdf.content),
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def countersign(client: TestClient, mid: str, contract_id: str, by: str = "ops") -> dict[str, Any]:
    csrf = login(client, by)
    response = client.post(
        f"/api/v1/merchants/{mid}/contracts/{contract_id}/countersign", headers=csrf
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def contracted_merchant(client: TestClient, **overrides: Any) -> tuple[dict[str, Any], str]:
    """An approved merchant whose contract both parties signed."""
    created, mid = approved_merchant(client, **overrides)
    contract = generate_contract(client, mid)
    sign_as_applicant(client, created)
    countersign(client, mid, contract["id"])
    return created, mid


def stock_in(client: TestClient, serials: list[str], model: str = "SMART-A8") -> None:
    csrf = login(client, "ops")
    rows = "\n".join(f"{s},{model},合肥仓,1.0.0" for s in serials)
    response = client.post(
        "/api/v1/inventory/stock-in",
        headers=csrf,
        files={
            "file": (
                "stock.csv",
                f"serial_number,model_code,warehouse,firmware_version\n{rows}\n".encode(),
                "text/csv",
            )
        },
    )
    assert response.status_code == 201, response.text


def sign_contract(state: AppState, mid: str) -> None:
    """A contract signed by both parties, written directly, and the merchant contracted: for
    tests where only that outcome matters (the contract flow has its own tests)."""
    now = utcnow()
    with state.db.unit_of_work() as uow:
        session = uow.session
        merchant = merchant_repository.by_mid(session, mid)
        assert merchant is not None
        plan = session.execute(select(FeePlan).order_by(FeePlan.id).limit(1)).scalar_one()
        ops = staff_repository.by_username(session, "ops")
        assert ops is not None
        today = now.date()
        session.add(
            Contract(
                id=ids.new_id(),
                contract_number=f"HT898-{today.year}-{merchant.id:06d}",
                version=1,
                merchant_id=merchant.id,
                status=str(ContractStatus.SIGNED),
                fee_plan_id=plan.id,
                settlement_cycle="T1",
                term_months=24,
                effective_from=today - dt.timedelta(days=1),
                end_date=today + dt.timedelta(days=730),
                language="zh_CN",
                bank_name=merchant.bank_name,
                account_name=merchant.account_name,
                account_number_enc=merchant.account_number_enc,
                account_number_masked=merchant.account_number_masked,
                terms={
                    "merchant_address": "安徽省合肥市蜀山区长江西路 100 号",
                    "terminals": [["智能POS A8", "Smart POS A8", 3, "SMART-A8"]],
                },
                pdf_sha256="0" * 64,
                pdf_size_bytes=0,
                generated_at=now,
                generated_by_id=ops.id,
                merchant_signer_name=merchant.legal_name,
                merchant_signed_at=now,
                countersigned_at=now,
                countersigned_by_id=ops.id,
            )
        )
        merchant.status = str(MerchantStatus.CONTRACTED)
        merchant.contracted_at = now
        uow.commit()


def pdf_file(
    objects: dict[int, bytes], *, compressed: dict[int, bytes] | None = None, padding: int = 0
) -> bytes:
    """A PDF written by hand: object 1 is the catalog. ``compressed`` objects go into a
    Flate-compressed object stream, found through a cross-reference stream (PDF 1.5), as
    a hostile file would hide them; ``padding`` bytes of comment make a file of a size."""
    import zlib

    out = b"%PDF-1.7\n%" + b"0" * padding + b"\n"
    offsets: dict[int, int] = {}
    for number, body in sorted(objects.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    size = max([*objects, *(compressed or {})]) + 1
    if not compressed:
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % size
        for number in range(1, size):
            free = b"0000000000 65535 f \n"
            out += b"%010d 00000 n \n" % offsets[number] if number in offsets else free
        return out + b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    stream_number, xref_number = size, size + 1
    size += 2
    header = body = b""
    members = sorted(compressed.items())
    for number, member in members:
        header += b"%d %d " % (number, len(body))
        body += member + b"\n"
    data = zlib.compress(header + body)
    offsets[stream_number] = len(out)
    out += (
        b"%d 0 obj\n<</Type/ObjStm/N %d/First %d/Filter/FlateDecode/Length %d>>stream\n"
        % (stream_number, len(members), len(header), len(data))
        + data
        + b"\nendstream\nendobj\n"
    )
    index = {number: position for position, (number, _) in enumerate(members)}
    offsets[xref_number] = len(out)
    rows = b""
    for number in range(size):
        if number in offsets:
            rows += b"\x01" + offsets[number].to_bytes(4, "big") + b"\x00\x00"
        elif number in index:
            rows += b"\x02" + stream_number.to_bytes(4, "big") + index[number].to_bytes(2, "big")
        else:
            rows += b"\x00\x00\x00\x00\x00\xff\xff"
    out += (
        b"%d 0 obj\n<</Type/XRef/Size %d/W[1 4 2]/Root 1 0 R/Length %d>>stream\n"
        % (xref_number, size, len(rows))
        + rows
        + b"\nendstream\nendobj\n"
    )
    return out + b"startxref\n%d\n%%%%EOF\n" % offsets[xref_number]


PDF_CATALOG = b"<</Type/Catalog/Pages 2 0 R>>"
PDF_PAGES = b"<</Type/Pages/Kids[3 0 R]/Count 1>>"
PDF_PAGE = b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>"


def plain_pdf() -> dict[int, bytes]:
    """The objects of a clean one-page PDF (catalog, pages, page), to add to or replace."""
    return {1: PDF_CATALOG, 2: PDF_PAGES, 3: PDF_PAGE}


SECOND_OPERATOR = ("ops2", "Str0ng-Secret-2spo!")
"""A second operations user for maker-checker steps (key export, countersigning)."""


def add_second_operator(state: AppState) -> None:
    """Create :data:`SECOND_OPERATOR` (not in the seeded staff, so most tests keep one)."""
    from poshub.core.audit import Actor
    from poshub.staff import service as staff_service

    username, password = SECOND_OPERATOR
    with state.db.unit_of_work() as uow:
        staff_service.create_user(
            uow.session,
            username=username,
            display_name="Ops Two",
            password=password,
            roles=[Role.OPERATIONS],
            actor=Actor.system("tests"),
        )
        uow.commit()


def login_second_operator(client: TestClient) -> dict[str, str]:
    username, password = SECOND_OPERATOR
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


def upload_document(
    client: TestClient,
    created: dict[str, Any],
    content: bytes,
    *,
    kind: str = "business_licence",
    name: str = "licence.png",
) -> Any:
    """POST one document as the applicant (English messages); the httpx response."""
    return client.post(
        f"/api/v1/applications/{created['id']}/documents",
        headers={**bearer(created["access_token"]), "Accept-Language": "en"},
        data={"kind": kind},
        files={"file": (name, content, "application/octet-stream")},
    )


def download_document(client: TestClient, created: dict[str, Any], document_id: str) -> Any:
    """GET one document as the applicant; the httpx response."""
    return client.get(
        f"/api/v1/applications/{created['id']}/documents/{document_id}",
        headers=bearer(created["access_token"]),
    )


SECOND_RISK_OFFICER = ("risk2", "Str0ng-Secret-2ksir!")
"""A second risk officer for maker-checker steps (limit changes), as the demo seeds one."""


def add_second_risk_officer(state: AppState) -> Principal:
    """Create :data:`SECOND_RISK_OFFICER` (not in the seeded staff, so most tests keep one)
    and return it as a principal, for service-level tests."""
    from poshub.core.audit import Actor
    from poshub.staff import service as staff_service

    username, password = SECOND_RISK_OFFICER
    with state.db.unit_of_work() as uow:
        staff_service.create_user(
            uow.session,
            username=username,
            display_name="Risk Two",
            password=password,
            roles=[Role.RISK_OFFICER],
            actor=Actor.system("tests"),
        )
        uow.commit()
        return _principal(uow.session, username)


def login_second_risk_officer(client: TestClient) -> dict[str, str]:
    username, password = SECOND_RISK_OFFICER
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


def principal_of(state: AppState, username: str) -> Principal:
    """A seeded staff member as the services see them."""
    with state.db.unit_of_work(read_only=True) as uow:
        return _principal(uow.session, username)


def terminal_row(state: AppState, mid: str, tid: str, *, model: str = "SMART-A8") -> None:
    """A terminal ``tid`` of ``mid`` written directly, under a contract signed first: for
    tests that need a TID, not the allocation (tests/terminals walks that)."""
    from poshub.contracts import repository as contract_repository
    from poshub.terminals.models import Terminal

    with state.db.unit_of_work(read_only=True) as uow:
        merchant = merchant_repository.by_mid(uow.session, mid)
        assert merchant is not None
        signed = contract_repository.latest_signed(uow.session, merchant.id) is not None
    if not signed:
        sign_contract(state, mid)
    now = utcnow()
    with state.db.unit_of_work() as uow:
        merchant = merchant_repository.by_mid(uow.session, mid)
        assert merchant is not None
        contract = contract_repository.latest_signed(uow.session, merchant.id)
        assert contract is not None
        uow.session.add(
            Terminal(
                tid=tid,
                merchant_id=merchant.id,
                model_code=model,
                status="active",
                contract_id=contract.id,
                install_address="安徽省合肥市蜀山区长江西路 100 号",
                created_at=now,
                updated_at=now,
            )
        )
        uow.commit()
