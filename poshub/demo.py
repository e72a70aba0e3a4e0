"""Demo data: staff for every role, the catalogue, and applications in every state.

Everything is created through the same services the web process uses, so the demo
database looks exactly like one that real people filled in.
"""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from dataclasses import dataclass

from sqlalchemy.orm import Session
from stdnum import luhn
from stdnum.cn import ric, uscc

from poshub.catalog import service as catalog_service
from poshub.contracts import service as contracts
from poshub.contracts.models import SettlementCycle
from poshub.contracts.schemas import ContractIn, SignIn
from poshub.core.audit import Actor
from poshub.core.db import utcnow
from poshub.core.roles import Role
from poshub.core.settings import Mode
from poshub.fieldwork import service as fieldwork
from poshub.fieldwork.models import WorkOrder, WorkOrderKind
from poshub.fieldwork.schemas import WorkOrderIn
from poshub.fieldwork.service import FieldworkDeps
from poshub.gateway.checks import mask_pan
from poshub.merchants import repository as merchant_repository
from poshub.merchants.models import Merchant
from poshub.onboarding import repository, service
from poshub.onboarding.consent import PRIVACY_NOTICE_VERSION
from poshub.onboarding.jobs import run_requested_checks
from poshub.onboarding.models import BlacklistKind
from poshub.onboarding.rules import DocumentKind, organization_code_check_digit
from poshub.onboarding.schemas import ApplicationIn, ApproveIn, BlacklistIn, NoteIn, RejectIn
from poshub.onboarding.service import OnboardingDeps, applicant_actor
from poshub.risk import cases as risk_cases
from poshub.risk.models import RiskAlert
from poshub.staff import repository as staff_repository
from poshub.staff import service as staff_service
from poshub.staff.service import Principal
from poshub.terminals import service as fleet
from poshub.terminals import tms_service
from poshub.terminals.parameters import TRANSACTION_TYPES

DEMO_MID = "898340154110001"
ADMIN_PASSWORD = "poshub-demo-admin"  # noqa: S105 - documented demo login (DESIGN §7)


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    role: Role

    @property
    def password(self) -> str:
        return f"poshub-demo-{self.username}"


DEMO_USERS = (
    DemoUser("admin", "系统管理员 Admin", Role.ADMIN),
    DemoUser("reviewer", "审核员 李审", Role.REVIEWER),
    DemoUser("reviewer2", "复核员 王复", Role.REVIEWER),
    DemoUser("risk", "风控专员 赵风", Role.RISK_OFFICER),
    # A limit change is requested by one risk officer and approved by another (maker-checker).
    DemoUser("risk2", "风控复核 冯控", Role.RISK_OFFICER),
    DemoUser("ops", "运营专员 钱运", Role.OPERATIONS),
    # Operations has maker-checker steps of its own (a contract prepared by one operator is
    # countersigned by another; key ceremonies and key exports need a second person).
    DemoUser("ops2", "运营复核 郑核", Role.OPERATIONS),
    DemoUser("tech", "装机工程师 孙工", Role.TECHNICIAN),
    DemoUser("support", "客服专员 周服", Role.SUPPORT_AGENT),
    DemoUser("auditor", "审计员 吴审", Role.AUDITOR),
)


def resident_id(region: str, born: dt.date, sequence: str) -> str:
    """A checksum-valid resident ID number for a fictional person."""
    body = f"{region}{born:%Y%m%d}{sequence}"
    return body + ric.calc_check_digit(body + "0")


def credit_code(body17: str) -> str:
    """A valid credit code from its first 16 characters (the 17th, the organisation code's
    GB 11714 check character, is computed)."""
    body17 = body17[:16] + organization_code_check_digit(body17[8:16])
    return body17 + uscc.calc_check_digit(body17)


def card_number(body: str) -> str:
    """A Luhn-valid card number for a fictional account (body without the check digit)."""
    return body + luhn.calc_check_digit(body)


def tiny_png(seed: str = "") -> bytes:
    """A valid 8×8 PNG (a scan stand-in), built without an imaging library; its colour
    follows ``seed``, so the stand-ins for different documents are different files."""
    width = height = 8
    colour = zlib.crc32(seed.encode()).to_bytes(4, "big")[:3] if seed else b"\xc8\x10\x2e"
    raw = b"".join(b"\x00" + colour * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def tiny_pdf(title: str) -> bytes:
    """A one-page PDF with a cross-reference table, so a real parser reads it."""
    text = title.encode("ascii", "replace")
    objects = (
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>",
    )
    out = b"%PDF-1.4\n% " + text + b"\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj" % number + body + b"endobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )


def _payload(
    *,
    kind: str,
    name: str,
    id_number: str,
    mobile: str,
    business: str,
    code: str | None,
    mcc: str,
    province: str,
    city: str,
    district: str,
    detail: str,
    bank: str,
    account: str,
    terminals: list[tuple[str, int]],
    volume_fen: int,
    region_code: str | None = None,
) -> ApplicationIn:
    return ApplicationIn.model_validate(
        {
            "applicant_kind": kind,
            "legal_name": name,
            "id_number": id_number,
            "mobile": mobile,
            "business_name": business,
            "uscc": code,
            "id_expiry": (utcnow().date() + dt.timedelta(days=3000)).isoformat(),
            # An enterprise's legal representative, its sole shareholder here.
            "beneficial_owners": [
                {"name": name, "id_number": id_number, "basis": "share", "share_percent": "100"}
            ]
            if kind == "enterprise"
            else [],
            "licence_long_term": code is not None,
            "established_on": "2019-05-20" if code else None,
            "mcc": mcc,
            "address": {
                "province": province,
                "city": city,
                "district": district,
                "detail": detail,
                "region_code": region_code,
            },
            "settlement_account": {
                "bank_name": bank,
                "account_name": business if kind == "enterprise" else name,
                "account_type": "unit" if kind == "enterprise" else "personal",
                "account_number": account,
            },
            "expected_monthly_volume_fen": volume_fen,
            "terminals": [{"model_code": m, "count": c} for m, c in terminals],
            # The demo applicants read the notice and consent to both (docs/privacy.md).
            "consents": {
                "notice_version": PRIVACY_NOTICE_VERSION,
                "privacy_notice": True,
                "verification_provider": True,
            },
        }
    )


def _principal(session: Session, username: str) -> Principal:
    user = staff_repository.by_username(session, username)
    assert user is not None
    return Principal(
        user.id, user.username, user.display_name, staff_repository.roles_of(session, user.id)
    )


def _upload_all(session: Session, deps: OnboardingDeps, application_id: str) -> None:
    """Make the application ready to submit: its mobile number proved with the one-time
    code (as the applicant does on the tracking page) and every required document."""
    application = repository.get(session, application_id)
    assert application is not None
    sms = service.request_mobile_code(
        session, deps, application, source_address="demo-seed", now=utcnow()
    )
    assert service.confirm_mobile(session, deps, application, sms.code, now=utcnow()) is None
    today = utcnow().date()
    for kind in sorted(service.required_documents(application, today)):
        content = (
            tiny_pdf(kind.value)
            if kind
            in (
                DocumentKind.LEASE_CONTRACT,
                DocumentKind.FINANCIAL_STATEMENTS,
                DocumentKind.BUSINESS_PLAN,
            )
            else tiny_png(kind.value)
        )
        service.add_document(
            session,
            deps,
            application,
            kind=kind.value,
            file_name=f"{kind.value}.{'pdf' if content.startswith(b'%PDF') else 'png'}",
            content=content,
            uploaded_by=applicant_actor(application),
            now=utcnow(),
        )


DEMO_TID = "10000001"
DEMO_SERIAL = "A8-2026-000001"
DEMO_STOCK = (
    "serial_number,model_code,warehouse,firmware_version\n"
    f"{DEMO_SERIAL},SMART-A8,合肥中心仓,2.3.1\n"
    "A8-2026-000002,SMART-A8,合肥中心仓,2.3.1\n"
    "A8-2026-000003,SMART-A8,合肥中心仓,2.3.1\n"
    "E2-2026-000001,ESIGN-E2,合肥中心仓,1.8.0\n"
    "E2-2026-000002,ESIGN-E2,合肥中心仓,1.8.0\n"
    "T60-2026-000001,TRAD-T60,芜湖仓,5.0.4\n"
    "M3-2026-000001,MPOS-M3,芜湖仓,3.2.0\n"
)


def _sign_contract(
    session: Session,
    deps: OnboardingDeps,
    merchant: Merchant,
    reviewer: Principal,
    ops: Principal,
) -> None:
    """The standard plan, T+1: generated by the reviewer, signed by the merchant from the
    tracking link, countersigned by operations."""
    contract = contracts.generate(
        session,
        deps,
        merchant,
        reviewer,
        ContractIn(fee_plan_code="STANDARD", settlement_cycle=SettlementCycle.T1),
        now=utcnow(),
    )
    contracts.sign_by_merchant(
        session,
        deps,
        contract,
        merchant,
        SignIn(signer_name=merchant.legal_name, agree=True, pdf_sha256=contract.pdf_sha256),
        ip="127.0.0.1",
        user_agent="PosHub demo seed",
        now=utcnow(),
    )
    contracts.countersign(session, deps, contract, merchant, ops, ip="127.0.0.1", now=utcnow())


def _seed_fleet(
    session: Session, deps: OnboardingDeps, merchant: Merchant, reviewer: Principal
) -> None:
    """DESIGN §7: the demo merchant signs its contract, gets terminal 10000001 keyed with
    the published test key, and goes live through an installation work order."""
    ops = _principal(session, "ops")
    _sign_contract(session, deps, merchant, reviewer, ops)
    fleet.stock_in(
        session,
        DEMO_STOCK.encode(),
        file_name="demo-stock.csv",
        user_id=ops.user_id,
        actor=ops.actor,
        now=utcnow(),
    )
    provisioned = fleet.allocate(
        session,
        deps.settings,
        deps.vault,
        merchant,
        DEMO_SERIAL,
        install_address=None,
        actor=ops.actor,
        now=utcnow(),
        use_known_test_key=True,
    )
    if provisioned.terminal.tid != DEMO_TID:
        raise RuntimeError(f"the demo terminal got TID {provisioned.terminal.tid}")
    _go_live(session, deps, merchant, provisioned, ops)
    # The demo terminal may do everything the gateway supports, pre-authorization
    # included (a new terminal starts with the common set; a hotel asks for the rest).
    tms_service.update_parameters(
        session,
        provisioned.terminal,
        {"enabled_transactions": list(TRANSACTION_TYPES)},
        actor=ops.actor,
        now=utcnow(),
    )


def _go_live(
    session: Session,
    deps: OnboardingDeps,
    merchant: Merchant,
    provisioned: fleet.Provisioned,
    ops: Principal,
) -> None:
    """Survey, shipping and installation orders through go-live, as the field team would
    record them; then an open repair order so the technician's view has work in it."""
    tech = _principal(session, "tech")
    field = FieldworkDeps(deps.settings, deps.vault, deps.store)
    tid, serial = provisioned.terminal.tid, provisioned.device.serial_number

    def order(kind: WorkOrderKind, terminal: str | None) -> WorkOrder:
        return fieldwork.create_order(
            session,
            WorkOrderIn(kind=kind, mid=merchant.mid, tid=terminal, technician="tech"),
            ops,
            now=utcnow(),
        )

    def step(work: WorkOrder, who: Principal, target: str, body: dict[str, object]) -> None:
        fieldwork.perform_step(session, field, work, who, target, body, now=utcnow())

    soon = (utcnow() + dt.timedelta(hours=1)).isoformat()
    survey = order(WorkOrderKind.SITE_SURVEY, None)
    step(survey, tech, "checked_in", {})
    step(
        survey,
        tech,
        "completed",
        {
            "power_available": True,
            "network": "4g",
            "signal_ok": True,
            "position": "收银台左侧，靠近电源插座",
            "feasible": True,
        },
    )
    shipping = order(WorkOrderKind.SHIPPING, tid)
    step(shipping, ops, "shipped", {"carrier": "顺丰速运", "tracking_number": "SF1400000001"})
    step(
        shipping,
        ops,
        "delivered",
        {"received_by": merchant.legal_name, "received_at": utcnow().isoformat()},
    )
    step(shipping, tech, "inspected", {"condition": "ok", "serial_number": serial})
    step(shipping, tech, "completed", {})
    install = order(WorkOrderKind.INSTALLATION, tid)
    step(install, tech, "scheduled", {"appointment_at": soon})
    step(install, tech, "checked_in", {"serial_number": serial})
    # The terminal downloads its parameters over the TMS, as a real one does at install.
    tms_service.fetch_parameters(session, provisioned.device, now=utcnow())
    step(install, tech, "parameters_loaded", {})
    step(
        install,
        tech,
        "acceptance_passed",
        {
            "reference": "000000000001",
            "response_time_ms": 820,
            "receipt_printed": True,
            "record_matches": True,
        },
    )
    step(
        install,
        tech,
        "trained",
        {
            "signer_name": merchant.legal_name,
            "topics": ["sale", "void", "refund", "settlement", "receipts", "faults"],
            "manual_given": True,
        },
    )
    step(install, tech, "completed", {})
    repair = order(WorkOrderKind.REPAIR, tid)
    step(repair, tech, "scheduled", {"appointment_at": soon})


def seed(session: Session, deps: OnboardingDeps) -> bool:
    """Create the demo data once; return False if it is already there."""
    if merchant_repository.by_mid(session, DEMO_MID) is not None:
        return False
    catalog_service.load(session, catalog_service.default_catalog())
    system = Actor.system("demo")
    for user in DEMO_USERS:
        if staff_repository.by_username(session, user.username) is None:
            staff_service.create_user(
                session,
                username=user.username,
                display_name=user.display_name,
                password=user.password,
                roles=[user.role],
                actor=system,
                enforce_policy=False,
            )
    session.flush()
    reviewer = _principal(session, "reviewer")
    now = utcnow

    # 1. Live-to-be merchant of DESIGN §7: a Hefei supermarket, MCC 5411 → MID 898340154110001.
    approved, _ = service.create_application(
        session,
        deps,
        _payload(
            kind="individual_business",
            name="陈明",
            id_number=resident_id("340104", dt.date(1985, 6, 15), "031"),
            mobile="13905510001",
            business="合肥蜀山明辉便利超市",
            code=credit_code("92340104MA2N0001X"[:17]),
            mcc="5411",
            province="安徽省",
            city="合肥市",
            district="蜀山区",
            detail="长江西路 100 号",
            bank="徽商银行合肥蜀山支行",
            account=card_number("622202123456789012"),
            terminals=[("SMART-A8", 1), ("ESIGN-E2", 1)],
            volume_fen=30_000_000,
        ),
        locale="zh_CN",
        now=now(),
    )
    _upload_all(session, deps, approved.id)
    service.submit(session, deps, approved, now=now())
    service.claim(session, approved, reviewer, now=now())
    service.add_note(
        session,
        approved,
        reviewer,
        NoteIn(
            kind="phone_confirmation", body="已电话核实经营者身份与店铺地址。", outcome="confirmed"
        ),
        now=now(),
    )
    run_requested_checks(session, deps, now=now())
    merchant = service.approve(
        session, deps, approved, reviewer, ApproveIn(note="材料齐全，核验通过。"), now=now()
    )
    assert isinstance(merchant, Merchant), "the demo merchant's checks all pass"
    _seed_fleet(session, deps, merchant, reviewer)

    # 2. Draft: saved, documents not yet uploaded.
    service.create_application(
        session,
        deps,
        _payload(
            kind="individual",
            name="刘芳",
            id_number=resident_id("110105", dt.date(1992, 3, 7), "024"),
            mobile="13800000002",
            business="刘芳手工花店",
            code=None,
            mcc="5992",
            province="北京市",
            city="北京市",
            district="朝阳区",
            detail="三里屯路 8 号",
            bank="中国工商银行北京朝阳支行",
            account=card_number("621226020001234567"),
            terminals=[("MPOS-M3", 1)],
            volume_fen=2_000_000,
        ),
        locale="zh_CN",
        now=now(),
    )

    # 3. Submitted, waiting in the queue.
    submitted, _ = service.create_application(
        session,
        deps,
        _payload(
            kind="individual_business",
            name="黄伟",
            id_number=resident_id("440305", dt.date(1988, 11, 2), "057"),
            mobile="13700000003",
            business="深圳南山伟记餐馆",
            code=credit_code("92440300MA5F0003Q"[:17]),
            mcc="5812",
            province="广东省",
            city="深圳市",
            district="南山区",
            detail="科技园南路 18 号",
            bank="招商银行深圳南山支行",
            account=card_number("622588011234567"),
            terminals=[("TRAD-T60", 2)],
            volume_fen=80_000_000,
        ),
        locale="zh_CN",
        now=now(),
    )
    _upload_all(session, deps, submitted.id)
    service.submit(session, deps, submitted, now=now())

    # 4. Under review, high-risk category (jewellery): the checks ask for a site survey.
    in_review, _ = service.create_application(
        session,
        deps,
        _payload(
            kind="enterprise",
            name="孙丽",
            id_number=resident_id("320106", dt.date(1979, 8, 21), "062"),
            mobile="13600000004",
            business="南京金辉珠宝有限公司",
            code=credit_code("91320106MA1X0004R"[:17]),
            mcc="5944",
            province="江苏省",
            city="南京市",
            district="鼓楼区",
            detail="中山北路 200 号",
            bank="南京银行鼓楼支行",
            account="0123456789012345678901",
            terminals=[("SMART-A8", 3)],
            volume_fen=500_000_000,
            region_code="320106",  # 鼓楼区 exists in both Nanjing and Xuzhou
        ),
        locale="zh_CN",
        now=now(),
    )
    _upload_all(session, deps, in_review.id)
    service.submit(session, deps, in_review, now=now())
    service.claim(session, in_review, reviewer, now=now())

    # 5. Needs information: the reviewer asked for a clearer licence scan.
    needs_info, _ = service.create_application(
        session,
        deps,
        _payload(
            kind="individual_business",
            name="马强",
            id_number=resident_id("510104", dt.date(1990, 1, 30), "079"),
            mobile="13500000005",
            business="成都锦江马记茶铺",
            code=credit_code("92510104MA6C0005T"[:17]),
            mcc="5814",
            province="四川省",
            city="成都市",
            district="锦江区",
            detail="春熙路 66 号",
            bank="成都银行锦江支行",
            account=card_number("623058000012345678"),
            terminals=[("ESIGN-E2", 1)],
            volume_fen=10_000_000,
        ),
        locale="en",
        now=now(),
    )
    _upload_all(session, deps, needs_info.id)
    service.submit(session, deps, needs_info, now=now())
    service.claim(session, needs_info, reviewer, now=now())
    service.request_info(
        session,
        deps,
        needs_info,
        reviewer,
        "营业执照照片不清晰，请重新上传清晰的营业执照。",
        now=now(),
    )

    # 6. Rejected: real-name and four-element verification both report a mismatch.
    rejected, _ = service.create_application(
        session,
        deps,
        _payload(
            kind="individual",
            name="冒名测试",
            id_number=resident_id("330106", dt.date(1995, 7, 9), "085"),
            mobile="13400004444",
            business="杭州西湖某小店",
            code=None,
            mcc="5499",
            province="浙江省",
            city="杭州市",
            district="西湖区",
            detail="文三路 1 号",
            bank="杭州银行西湖支行",
            account=card_number("622848000000000000"),
            terminals=[("MPOS-M3", 1)],
            volume_fen=1_000_000,
        ),
        locale="zh_CN",
        now=now(),
    )
    _upload_all(session, deps, rejected.id)
    service.submit(session, deps, rejected, now=now())
    service.claim(session, rejected, reviewer, now=now())
    service.reject(
        session,
        deps,
        rejected,
        reviewer,
        RejectIn(reasons=["identity_not_verified"], note="实名认证不一致。"),
        now=now(),
    )
    run_requested_checks(session, deps, now=now())
    risk = _principal(session, "risk")
    service.add_blacklist_entry(
        session,
        deps.vault,
        BlacklistIn(
            kind=BlacklistKind.MOBILE, value="13312345678", reason="冒用他人身份申请（示例）"
        ),
        risk,
        now=now(),
    )
    _seed_risk_cases(session, deps, merchant, risk)
    return True


DEMO_CARD = "6212260200012345678"
"""A fictional card the demo's risk alerts are about (only its token and masked form are
stored, as the gateway stores them)."""


def _seed_risk_cases(
    session: Session, deps: OnboardingDeps, merchant: Merchant, risk: Principal
) -> None:
    """A few alerts on the demo merchant as the rule engine raises them, and one open case
    made from three of them, so the risk officer's queue and case pages have work. No
    freeze or hold: the demo terminal keeps trading (the gateway tests use it)."""
    now = utcnow()
    card = {
        "pan_token": deps.vault.token(DEMO_CARD, purpose="pan"),
        "pan_masked": mask_pan(DEMO_CARD),
    }
    on = {
        "mid": merchant.mid,
        "tid": DEMO_TID,
        "rule_version": 0,
        "status": "open",
        "dedupe_key": None,
    }
    seeded = [
        RiskAlert(
            **on, **card, rule_code="card_testing", action="decline", severity="high",
            rrn=None, amount_fen=880_000, created_at=now - dt.timedelta(hours=5),
            detail={"declines": 6, "max_declines": 5, "window_minutes": 10},
        ),
        RiskAlert(
            **on, **card, rule_code="cashout", action="hold", severity="high",
            rrn=None, amount_fen=4_990_000, created_at=now - dt.timedelta(hours=4, minutes=40),
            detail={"signals": ["round_amount", "night"], "min_signals": 2,
                    "amount_fen": 4_990_000, "same_card_today": 3},
        ),
        RiskAlert(
            **on, rule_code="relocation", action="alert", severity="high", rrn=None,
            pan_token=None, pan_masked=None, amount_fen=None,
            created_at=now - dt.timedelta(hours=3),
            detail={"latitude": 32.0603, "longitude": 118.7969, "distance_km": 141.2,
                    "max_km": 5.0},
        ),
        RiskAlert(
            **on, pan_token=None, pan_masked=None, rule_code="business_hours",
            action="alert", severity="low", rrn=None, amount_fen=26_800,
            created_at=now - dt.timedelta(hours=2),
            detail={"local_time": "23:41", "opening_time": "08:00", "closing_time": "22:00",
                    "grace_minutes": 30},
        ),
        RiskAlert(
            **on, **card, rule_code="ticket_above_norm", action="alert", severity="medium",
            rrn=None, amount_fen=1_200_000, created_at=now - dt.timedelta(hours=1),
            detail={"amount_fen": 1_200_000, "norm_fen": 8_500, "factor": 10.0,
                    "basis": "ticket"},
        ),
    ]  # fmt: skip
    session.add_all(seeded)
    session.flush()
    risk_cases.open_case(
        session,
        risk,
        title="疑似试卡与夜间套现，终端移机",
        alert_ids=[seeded[0].id, seeded[1].id, seeded[2].id],
        note="同一卡片连续拒绝后夜间整额消费，终端出现在南京。已电话联系商户负责人，待回访。",
        now=now,
    )


# --- Load-test terminals (poshub loadgen, bench/gateway.py) ------------------------------
LOAD_MERCHANT_BUSINESS = "安徽示范连锁超市有限公司"
LOAD_TERMINALS_MAX = 200
"""An enterprise may ask for 200 terminals (limits.TERMINALS_PER_APPLICANT_MAX)."""
LOAD_TID_FILE = "load-terminals.csv"


def seed_load_terminals(
    session: Session, deps: OnboardingDeps, count: int
) -> tuple[str, list[str]]:
    """Outside production: an enterprise merchant with ``count`` active terminals keyed
    with the published test key, for load generation. It goes through the same services
    as a real merchant (application, approval, a contract for 200 terminals, stock,
    allocation, activation), so every rule holds for it. Idempotent: returns the MID and
    the TIDs, creating only what is missing."""
    if deps.settings.mode == Mode.PRODUCTION:
        raise RuntimeError("load-test terminals use the published test key: not in production")
    if not 1 <= count <= LOAD_TERMINALS_MAX:
        raise ValueError(f"between 1 and {LOAD_TERMINALS_MAX} load-test terminals")
    merchant = _load_merchant(session, deps)
    system = Actor.system("demo")
    ops = _principal(session, "ops")
    tids = [t.tid for t in fleet.merchant_terminals(session, merchant.id)]
    missing = count - len(tids)
    if missing > 0:
        first = len(tids) + 1
        serials = [f"LOAD-{index:06d}" for index in range(first, first + missing)]
        # The contract's two lines: 100 smart terminals, then 100 traditional ones.
        stock = "serial_number,model_code,warehouse,firmware_version\n" + "".join(
            f"{serial},{'SMART-A8' if int(serial[5:]) <= 100 else 'TRAD-T60'},合肥中心仓,2.3.1\n"
            for serial in serials
        )
        fleet.stock_in(
            session,
            stock.encode(),
            file_name="load-stock.csv",
            user_id=ops.user_id,
            actor=ops.actor,
            now=utcnow(),
        )
        for serial in serials:
            provisioned = fleet.allocate(
                session,
                deps.settings,
                deps.vault,
                merchant,
                serial,
                install_address=None,
                actor=ops.actor,
                now=utcnow(),
                use_known_test_key=True,
            )
            fleet.mark_shipped(session, provisioned.device, actor=system, now=utcnow())
            fleet.mark_installed(session, provisioned.device, actor=system, now=utcnow())
            fleet.activate(
                session,
                merchant,
                provisioned.terminal,
                provisioned.device,
                acceptance_reference="LOADTEST",
                actor=system,
                now=utcnow(),
            )
            tms_service.update_parameters(
                session,
                provisioned.terminal,
                {"enabled_transactions": list(TRANSACTION_TYPES)},
                actor=system,
                now=utcnow(),
            )
            tids.append(provisioned.terminal.tid)
    return merchant.mid, sorted(tids)[:count]


def _load_merchant(session: Session, deps: OnboardingDeps) -> Merchant:
    for candidate in merchant_repository.newest(session, 100):
        if candidate.business_name == LOAD_MERCHANT_BUSINESS:
            return candidate
    reviewer = _principal(session, "reviewer")
    application, _ = service.create_application(
        session,
        deps,
        _payload(
            kind="enterprise",
            name="赵建国",
            id_number=resident_id("340104", dt.date(1975, 4, 18), "019"),
            mobile="13905510099",
            business=LOAD_MERCHANT_BUSINESS,
            code=credit_code("91340104MA2N0099Q"[:17]),
            mcc="5411",
            province="安徽省",
            city="合肥市",
            district="蜀山区",
            detail="潜山路 200 号",
            bank="徽商银行合肥蜀山支行",
            account="13020110092000123456",  # a unit account (单位银行结算账户)
            terminals=[("SMART-A8", 100), ("TRAD-T60", 100)],
            volume_fen=5_000_000_000,
        ),
        locale="zh_CN",
        now=utcnow(),
    )
    _upload_all(session, deps, application.id)
    service.submit(session, deps, application, now=utcnow())
    service.claim(session, application, reviewer, now=utcnow())
    service.add_note(
        session,
        application,
        reviewer,
        NoteIn(kind="phone_confirmation", body="压力测试商户，已核实。", outcome="confirmed"),
        now=utcnow(),
    )
    run_requested_checks(session, deps, now=utcnow())
    merchant = service.approve(
        session, deps, application, reviewer, ApproveIn(note="压力测试商户。"), now=utcnow()
    )
    assert isinstance(merchant, Merchant), "the load-test merchant's checks all pass"
    ops = _principal(session, "ops")
    _sign_contract(session, deps, merchant, reviewer, ops)
    return merchant
