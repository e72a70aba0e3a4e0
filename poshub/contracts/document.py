"""The merchant contract (POS机商户服务协议, R5) as HTML and as a PDF, in Chinese or English.

Pure functions of a frozen :class:`ContractTerms`: no database, no settings, no clock.
Both renderers draw the same document model (:func:`_build`), so the HTML a merchant reads
before signing and the PDF whose SHA-256 they sign carry the same clauses and figures.

The PDF is deterministic: the same terms give byte-identical output in any process (the
creation date is ``generated_at``, the file ID is derived from the content, fonts are
subset deterministically), as long as fpdf2, fontTools and the font file are the same
versions. Store the bytes that were signed; do not expect a re-render after an upgrade
to reproduce them.

The wording lives here rather than in the gettext catalogues on purpose: it is legal text
whose every change must produce a new contract version, never a silent re-translation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from poshub.contracts.fonts import (
    ContractFontMissing,
    ContractGlyphMissing,
    discover_cjk_fonts,
    truetype_subset,
    uncovered,
)
from poshub.core.clock import SHANGHAI
from poshub.core.money import format_fen

__all__ = [
    "Acquirer",
    "Amendment",
    "ContractFontMissing",
    "ContractGlyphMissing",
    "ContractTerms",
    "DisputeResolution",
    "FeePlanLike",
    "FeeTerms",
    "Merchant",
    "RefundPolicy",
    "SettlementAccount",
    "TerminalLine",
    "format_date",
    "format_rate",
    "render_html",
    "render_pdf",
]

Language = Literal["zh", "en"]
MerchantKind = Literal["individual", "individual_business", "enterprise"]
SettlementCycle = Literal["D0", "T1"]
BackupFrequency = Literal["realtime", "daily", "weekly"]

# --------------------------------------------------------------------------- terms


@dataclass(frozen=True, slots=True, kw_only=True)
class Acquirer:
    """Party A (甲方): the bank or licensed payment institution running PosHub."""

    name_zh: str
    name_en: str
    address: str
    licence_kind: Literal["financial", "payment"]
    """``financial``: a bank's 金融许可证; ``payment``: a 支付业务许可证."""
    licence_number: str
    service_hotline: str | None = None
    """24-hour customer-service number quoted in the maintenance clause, if known."""
    address_en: str | None = None
    """English address for the English text; the Chinese one is shown when absent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Merchant:
    """Party B (乙方): the merchant. Personal identifiers arrive masked."""

    legal_name: str
    """Registered name (营业执照名称), or the person's name for an individual."""
    business_name: str
    """Trading name shown on the shop front and on receipts (经营名称)."""
    mid: str
    identifier_kind: Literal["uscc", "resident_id"]
    """Unified social credit code for businesses, resident ID card for individuals."""
    identifier_masked: str
    """The USCC may be shown in full (it is public); a resident ID must be masked."""
    address: str
    mobile_masked: str
    representative: str | None = None
    """Legal representative or operator (法定代表人/经营者), if it should be named."""
    kind: MerchantKind | None = None
    """The applicant kind. Set, it decides how Party B is named and which clauses follow
    the kind (PBOC 2013 No. 9): a business (个体工商户, enterprise) is Party B under its
    business name (商户名称) with its legal representative or operator beside it, an
    individual is the person. ``None`` (contracts generated before kinds were recorded)
    keeps the earlier wording, so a signed version re-renders as it was signed."""


class TerminalLine(NamedTuple):
    """A model and how many of it; a plain ``(name_zh, name_en, quantity)`` tuple works too."""

    name_zh: str
    name_en: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SettlementAccount:
    bank_name: str
    account_name: str
    account_number_masked: str


class FeePlanLike(Protocol):
    """What :meth:`FeeTerms.from_plan` reads; ``poshub.catalog.models.FeePlan`` fits."""

    @property
    def code(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def name_zh(self) -> str: ...
    @property
    def name_en(self) -> str: ...
    @property
    def debit_rate(self) -> Decimal: ...
    @property
    def debit_cap_fen(self) -> int | None: ...
    @property
    def credit_rate(self) -> Decimal: ...
    @property
    def qr_rate(self) -> Decimal: ...
    @property
    def d0_surcharge_rate(self) -> Decimal: ...
    @property
    def deposit_fen(self) -> int: ...
    @property
    def deposit_refund_volume_fen(self) -> int | None: ...
    @property
    def deposit_refund_days(self) -> int | None: ...
    @property
    def monthly_rent_fen(self) -> int: ...
    @property
    def rent_waiver_volume_fen(self) -> int | None: ...
    @property
    def maintenance_fee_fen(self) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeTerms:
    """The fee plan version the contract freezes. Rates are fractions (0.005 = 0.5 %).

    The deposit, the monthly rent and the yearly maintenance fee are per terminal; the
    contract states each per terminal and in total for the terminals it covers.
    """

    code: str
    version: int
    name_zh: str
    name_en: str
    debit_rate: Decimal
    debit_cap_fen: int | None
    credit_rate: Decimal
    qr_rate: Decimal
    d0_surcharge_rate: Decimal
    deposit_fen: int
    deposit_refund_volume_fen: int | None
    """Cumulative volume of a terminal that earns its deposit back ..."""
    deposit_refund_days: int | None
    """... within this many days of its activation."""
    monthly_rent_fen: int
    rent_waiver_volume_fen: int | None
    """A terminal's volume in a calendar month at or above which that month's rent is waived."""
    maintenance_fee_fen: int

    @classmethod
    def from_plan(cls, plan: FeePlanLike) -> FeeTerms:
        return cls(
            code=plan.code,
            version=plan.version,
            name_zh=plan.name_zh,
            name_en=plan.name_en,
            debit_rate=Decimal(plan.debit_rate),
            debit_cap_fen=plan.debit_cap_fen,
            credit_rate=Decimal(plan.credit_rate),
            qr_rate=Decimal(plan.qr_rate),
            d0_surcharge_rate=Decimal(plan.d0_surcharge_rate),
            deposit_fen=plan.deposit_fen,
            deposit_refund_volume_fen=plan.deposit_refund_volume_fen,
            deposit_refund_days=plan.deposit_refund_days,
            monthly_rent_fen=plan.monthly_rent_fen,
            rent_waiver_volume_fen=plan.rent_waiver_volume_fen,
            maintenance_fee_fen=plan.maintenance_fee_fen,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundPolicy:
    window_days: int
    """Returns (退货) may be initiated up to this many days after the original transaction."""
    fee_refunded: bool
    """Whether the fee charged on the original transaction is returned pro rata."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeResolution:
    """Negotiation first; then litigation before ``venue`` or arbitration by ``venue``."""

    forum: Literal["court", "arbitration"]
    venue_zh: str
    venue_en: str

    @classmethod
    def court_at_acquirer_seat(cls) -> DisputeResolution:
        return cls(
            forum="court",
            venue_zh="甲方住所地有管辖权的人民法院",
            venue_en="the people's court having jurisdiction over the place of Party A's domicile",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Amendment:
    """Set when ``ContractTerms.version`` > 1: what this version replaces and why."""

    previous_contract_number: str
    previous_version: int
    changes_zh: tuple[str, ...] = ()
    """What changed, one item per entry, for the Chinese text ..."""
    changes_en: tuple[str, ...] = ()
    """... and for the English text."""
    previous_sha256: str | None = None
    """SHA-256 of the signed PDF of the previous version, tying the versions together."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractTerms:
    """Every term of one contract version; the only input of the renderers."""

    contract_number: str
    version: int
    language: Language
    generated_at: dt.datetime
    """Aware; shown in Asia/Shanghai time and used as the PDF creation date."""
    effective_from: dt.date
    term_months: int
    end_date: dt.date
    acquirer: Acquirer
    merchant: Merchant
    fees: FeeTerms
    settlement_cycle: SettlementCycle
    settlement_account: SettlementAccount
    terminals: tuple[TerminalLine, ...]
    data_backup_frequency: BackupFrequency
    refund_policy: RefundPolicy
    dispute: DisputeResolution = field(default_factory=DisputeResolution.court_at_acquirer_seat)
    auto_renewal_months: int | None = None
    """Renew automatically for this many months unless a party objects; None: no renewal."""
    amendment: Amendment | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def terminal_count(self) -> int:
        return sum(line[2] for line in self.terminals)


def _validate(terms: ContractTerms) -> None:
    problems: list[str] = []
    if not terms.contract_number.strip():
        problems.append("contract_number is empty")
    if terms.language not in ("zh", "en"):
        problems.append("language must be 'zh' or 'en'")
    if terms.generated_at.tzinfo is None or terms.generated_at.utcoffset() is None:
        problems.append("generated_at must be timezone-aware")
    if terms.version < 1:
        problems.append("version starts at 1")
    if terms.term_months < 1:
        problems.append("term_months must be positive")
    if terms.end_date <= terms.effective_from:
        problems.append("end_date must be after effective_from")
    if terms.settlement_cycle not in ("D0", "T1"):
        problems.append("settlement_cycle must be 'D0' or 'T1'")
    if terms.data_backup_frequency not in _BACKUP_WORDS:
        problems.append("unknown data_backup_frequency")
    if not terms.terminals or any(
        len(line) != 3 or not isinstance(line[2], int) or line[2] < 1 for line in terms.terminals
    ):
        problems.append("at least one terminal, each line with a positive count")
    if terms.auto_renewal_months is not None and terms.auto_renewal_months < 1:
        problems.append("auto_renewal_months must be positive")
    if terms.refund_policy.window_days < 1:
        problems.append("refund window must be at least one day")
    fees = terms.fees
    for name in ("debit_rate", "credit_rate", "qr_rate", "d0_surcharge_rate"):
        rate = getattr(fees, name)
        if not isinstance(rate, Decimal) or not rate.is_finite() or not 0 <= rate < 1:
            problems.append(f"{name} must be a Decimal fraction in [0, 1)")
    for name in (
        "debit_cap_fen",
        "deposit_fen",
        "deposit_refund_volume_fen",
        "deposit_refund_days",
        "monthly_rent_fen",
        "rent_waiver_volume_fen",
        "maintenance_fee_fen",
    ):
        value = getattr(fees, name)
        if value is not None and (not isinstance(value, int) or value < 0):
            problems.append(f"{name} must be a non-negative int")
    if (fees.deposit_refund_volume_fen is None) != (fees.deposit_refund_days is None):
        problems.append("deposit refund volume and days go together")
    if terms.merchant.identifier_kind == "resident_id" and not _looks_masked(
        terms.merchant.identifier_masked
    ):
        problems.append("a resident ID number must be masked")
    if not _looks_masked(terms.merchant.mobile_masked):
        problems.append("the mobile number must be masked")
    if not _looks_masked(terms.settlement_account.account_number_masked):
        problems.append("the account number must be masked")
    amendment = terms.amendment
    if terms.version > 1 and amendment is None:
        problems.append("a version after the first needs an amendment")
    if terms.version == 1 and amendment is not None:
        problems.append("the first version cannot amend anything")
    if amendment is not None and not 1 <= amendment.previous_version < terms.version:
        problems.append("previous_version must be below version")
    if problems:
        raise ValueError("invalid contract terms: " + "; ".join(problems))


def _looks_masked(value: str) -> bool:
    """Some of it hidden, and no more than 10 digits showing (6 + 4 of an ID card)."""
    return "*" in value and sum(c.isdigit() for c in value) <= 10


# ------------------------------------------------------------------- formatting


def format_rate(rate: Decimal) -> str:
    """``Decimal("0.006")`` → ``0.60%``; more decimals only when the rate has them (never
    rounded: a contract must state the exact rate)."""
    percent = rate * 100
    two = percent.quantize(Decimal("0.01"))
    if two == percent:
        return f"{two}%"
    return f"{percent.normalize():f}%"


_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def format_date(day: dt.date, language: Language) -> str:
    """``2026年11月22日`` or ``22 November 2026``."""
    if language == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"


def _format_moment(moment: dt.datetime, language: Language) -> str:
    local = moment.astimezone(SHANGHAI)
    clock = f"{local.hour:02d}:{local.minute:02d}"
    if language == "zh":
        return f"{format_date(local.date(), 'zh')} {clock}（北京时间）"
    return f"{format_date(local.date(), 'en')}, {clock} Beijing time (UTC+8)"


_CN_DIGITS = "零一二三四五六七八九"


def _chinese_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 20 → 二十, 99 → 九十九."""
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    text = ("" if tens == 1 else _CN_DIGITS[tens]) + "十" if tens else ""
    return text + (_CN_DIGITS[ones] if ones else "")


_BACKUP_WORDS: dict[str, tuple[str, str]] = {
    "realtime": ("实时", "in real time"),
    "daily": ("每日", "daily"),
    "weekly": ("每周", "weekly"),
}

# ---------------------------------------------------------------- document model


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    """CSS suffix: ``contract-table-<name>``."""
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[float, ...]
    """Relative column widths for the PDF."""
    footer: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class _Item:
    number: str
    text: str
    strong: bool = False
    """A term of material interest to the merchant, set in bold (民法典 第496条)."""
    table: _Table | None = None


@dataclass(frozen=True, slots=True)
class _Clause:
    number: int
    label: str
    heading: str
    items: tuple[_Item, ...]


@dataclass(frozen=True, slots=True)
class _Party:
    role: str
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _Notice:
    heading: str
    text: str
    changes_heading: str
    changes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Signature:
    role: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Document:
    lang: str
    title: str
    meta: tuple[tuple[str, str], ...]
    notice: _Notice | None
    parties: tuple[_Party, ...]
    preamble: str
    clauses: tuple[_Clause, ...]
    closing: str
    signatures: tuple[_Signature, ...]
    header_right: str
    page_label: str
    """Footer with ``{page}`` and ``{pages}`` placeholders."""


class _Writer:
    """Picks the Chinese or English wording of every sentence."""

    def __init__(self, language: Language) -> None:
        self.zh = language == "zh"
        self.language = language

    def __call__(self, zh: str, en: str) -> str:
        return zh if self.zh else en

    def money(self, fen: int) -> str:
        return format_fen(fen)

    def date(self, day: dt.date) -> str:
        return format_date(day, self.language)


def _build(terms: ContractTerms) -> _Document:
    say = _Writer(terms.language)
    a, m, fees = terms.acquirer, terms.merchant, terms.fees
    count = terms.terminal_count
    plan_name = say(fees.name_zh, fees.name_en)
    plan_ref = say(
        f"{fees.name_zh}（方案代码 {fees.code}，第 {fees.version} 版）",
        f"{fees.name_en} (plan code {fees.code}, version {fees.version})",
    )
    licence_label = (
        say("金融许可证编号", "Financial licence No.")
        if a.licence_kind == "financial"
        else say("支付业务许可证编号", "Payment business permit No.")
    )
    licence_name = (
        say("金融许可证", "a financial licence")
        if a.licence_kind == "financial"
        else say("支付业务许可证", "a payment business permit")
    )

    meta = (
        (say("协议编号", "Contract No."), terms.contract_number),
        (say("版本", "Version"), say(f"第 {terms.version} 版", f"Version {terms.version}")),
        (say("适用费率方案", "Fee plan"), plan_ref),
        (say("生成时间", "Generated"), _format_moment(terms.generated_at, terms.language)),
    )

    notice = None
    if terms.amendment is not None:
        am = terms.amendment
        changes = am.changes_zh if say.zh else am.changes_en
        digest = (
            say(f"（文件 SHA-256：{am.previous_sha256}）", f" (file SHA-256: {am.previous_sha256})")
            if am.previous_sha256
            else ""
        )
        notice = _Notice(
            heading=say("修订说明", "Amendment note"),
            text=say(
                f"本协议为第 {terms.version} 版，自生效之日起取代协议编号 "
                f"{am.previous_contract_number} 第 {am.previous_version} 版{digest}。",
                f"This Agreement is version {terms.version}. From its effective date it "
                f"supersedes version {am.previous_version} of contract "
                f"{am.previous_contract_number}{digest}.",
            ),
            changes_heading=say("本版主要变更：", "Main changes in this version:")
            if changes
            else "",
            changes=changes,
        )

    acquirer_rows: tuple[tuple[str, str], ...] = (
        (say("名称", "Name"), say(a.name_zh, f"{a.name_en} ({a.name_zh})")),
        (say("住所", "Address"), say(a.address, a.address_en or a.address)),
        (licence_label, a.licence_number),
    )
    if a.service_hotline:
        acquirer_rows += ((say("客服热线", "Customer service hotline"), a.service_hotline),)
    identifier_label = (
        say("统一社会信用代码", "Unified social credit code")
        if m.identifier_kind == "uscc"
        else say("居民身份证号码", "Resident identity card No.")
    )
    merchant_rows = _merchant_rows(m, say, identifier_label)
    merchant_rows += (
        (say("经营地址", "Business address"), m.address),
        (say("联系电话", "Mobile phone"), m.mobile_masked),
    )
    parties = (
        _Party(say("甲方（收单机构）", "Party A (Acquirer)"), acquirer_rows),
        _Party(say("乙方（特约商户）", "Party B (Merchant)"), merchant_rows),
    )

    preamble = say(
        f"甲方是依法取得{licence_name}、经营银行卡收单业务的机构；乙方是依法从事经营活动、"
        "同意按照本协议受理银行卡及条码支付的特约商户。根据《中华人民共和国民法典》"
        "《中华人民共和国电子签名法》《银行卡收单业务管理办法》等法律法规及中国人民银行、"
        "中国银联的相关规定，双方本着平等自愿、诚实信用的原则，经协商一致，订立本协议，"
        "以资共同遵守。",
        f"Party A is an institution that holds {licence_name} and lawfully conducts bank card "
        "acquiring business. Party B is a merchant lawfully conducting business that agrees to "
        "accept bank cards and QR-code payments under this Agreement. In accordance with the "
        "Civil Code of the People's Republic of China, the Electronic Signature Law of the "
        "People's Republic of China, the Administrative Measures for Bank Card Acquiring "
        "Business and other applicable laws and regulations, and the rules of the People's "
        "Bank of China and China UnionPay, the Parties, on the principles of equality, free "
        "will and good faith, have agreed as follows.",
    )

    clauses = [
        _scope_clause(terms, say),
        _term_clause(terms, say),
        _fees_clause(terms, say, plan_name, count),
        _settlement_clause(terms, say),
        _terminal_clause(terms, say),
        _data_clause(terms, say),
        _refund_clause(terms, say),
        _obligations_clause(terms, say),
        _termination_clause(terms, say),
        _liability_clause(terms, say),
        _dispute_clause(terms, say),
        _miscellaneous_clause(terms, say),
    ]
    numbered = tuple(
        _Clause(
            number=index,
            label=say(f"第{_chinese_number(index)}条", f"Article {index}"),
            heading=heading,
            items=tuple(
                dataclasses.replace(item, number=f"{index}.{sub}")
                for sub, item in enumerate(items, start=1)
            ),
        )
        for index, (heading, items) in enumerate(clauses, start=1)
    )

    blank = "________________"
    signatures = (
        _Signature(
            say("甲方", "Party A"),
            (
                say(f"甲方（盖章）：{blank}", f"Party A (seal): {blank}"),
                say(
                    f"法定代表人或授权代表（签字）：{blank}",
                    f"Legal or authorised representative (signature): {blank}",
                ),
                say("签署日期：________年____月____日", "Date: ____________________"),
            ),
        ),
        _Signature(say("乙方", "Party B"), _merchant_signature(m.kind, say, blank)),
    )

    return _Document(
        lang=say("zh-CN", "en"),
        title=say("POS机商户服务协议", "POS Merchant Services Agreement"),
        meta=meta,
        notice=notice,
        parties=parties,
        preamble=preamble,
        clauses=numbered,
        closing=say("（以下无正文）", "(No further text below; signatures follow.)"),
        signatures=signatures,
        header_right=say(
            f"协议编号 {terms.contract_number} · 第 {terms.version} 版",
            f"Contract No. {terms.contract_number} · Version {terms.version}",
        ),
        page_label=say("第 {page} 页 / 共 {pages} 页", "Page {page} of {pages}"),
    )


_ClauseParts = tuple[str, list[_Item]]


def _merchant_signature(kind: MerchantKind | None, say: _Writer, blank: str) -> tuple[str, ...]:
    date = say("签署日期：________年____月____日", "Date: ____________________")
    if kind == "individual":
        return (say(f"乙方（签字）：{blank}", f"Party B (signature): {blank}"), date)
    if kind == "enterprise":
        return (
            say(f"乙方（盖章）：{blank}", f"Party B (seal): {blank}"),
            say(
                f"法定代表人或授权代表（签字）：{blank}",
                f"Legal or authorised representative (signature): {blank}",
            ),
            date,
        )
    if kind == "individual_business":
        return (
            say(f"乙方（签章）：{blank}", f"Party B (signature or seal): {blank}"),
            say(
                f"经营者或授权代表（签字）：{blank}",
                f"Operator or authorised representative (signature): {blank}",
            ),
            date,
        )
    return (
        say(f"乙方（签章）：{blank}", f"Party B (signature or seal): {blank}"),
        say(
            f"法定代表人/经营者或授权代表（签字）：{blank}",
            f"Legal representative, operator or authorised representative (signature): {blank}",
        ),
        date,
    )


def _representative_label(kind: MerchantKind | None, say: _Writer) -> str:
    if kind == "enterprise":
        return say("法定代表人", "Legal representative")
    if kind == "individual_business":
        return say("经营者", "Operator")
    return say("法定代表人/经营者", "Legal representative / operator")


def _merchant_rows(m: Merchant, say: _Writer, identifier_label: str) -> tuple[tuple[str, str], ...]:
    """Party B's identification. A business is named by its business name (商户名称) with
    its legal representative or operator beside it; an individual is the person."""
    if m.kind is None:  # a version generated before kinds were recorded: as it was signed
        rows: tuple[tuple[str, str], ...] = (
            (say("商户名称", "Registered name"), m.legal_name),
            (say("经营名称", "Trading name"), m.business_name),
            (say("商户编号", "Merchant ID (MID)"), m.mid),
            (identifier_label, m.identifier_masked),
        )
        if m.representative:
            rows += ((_representative_label(None, say), m.representative),)
        return rows
    if m.kind == "individual":
        return (
            (say("姓名", "Name"), m.legal_name),
            (say("经营名称", "Trading name"), m.business_name),
            (say("商户编号", "Merchant ID (MID)"), m.mid),
            (identifier_label, m.identifier_masked),
        )
    rows = ((say("商户名称", "Merchant name"), m.legal_name),)
    if m.business_name and m.business_name != m.legal_name:
        rows += ((say("经营名称", "Trading name"), m.business_name),)
    if m.representative:
        rows += ((_representative_label(m.kind, say), m.representative),)
    return (
        *rows,
        (say("商户编号", "Merchant ID (MID)"), m.mid),
        (identifier_label, m.identifier_masked),
    )


def _item(text: str, *, strong: bool = False, table: _Table | None = None) -> _Item:
    return _Item(number="", text=text, strong=strong, table=table)


def _scope_clause(terms: ContractTerms, say: _Writer) -> _ClauseParts:
    rows = tuple(
        (say(name_zh, name_en), str(quantity)) for name_zh, name_en, quantity in terms.terminals
    )
    table = _Table(
        name="terminals",
        headers=(say("终端型号", "Terminal model"), say("数量（台）", "Quantity")),
        rows=rows,
        widths=(3, 1),
        footer=(say("合计", "Total"), str(terms.terminal_count)),
    )
    return say("服务内容", "Scope of services"), [
        _item(
            say(
                "甲方为乙方提供银行卡（借记卡、贷记卡）及条码支付（付款码）收单服务，包括受理终端的"
                "布放、安装调试、操作培训、资金结算、交易查询、对账及售后维护。",
                "Party A shall provide Party B with acquiring services for bank cards (debit and "
                "credit cards) and QR-code payments (payment codes), including the deployment, "
                "installation and configuration of acceptance terminals, operator training, "
                "settlement of funds, transaction enquiries, reconciliation and after-sales "
                "maintenance.",
            )
        ),
        _item(
            say(
                "甲方向乙方布放下列受理终端（以下简称“终端”）：",
                "Party A shall deploy the following acceptance terminals (the “Terminals”) "
                "to Party B:",
            ),
            table=table,
        ),
        _item(
            say(
                f"终端仅限在乙方的经营地址使用，且仅用于{_own_zh(terms.merchant.kind)}真实的商品或"
                "服务交易。",
                "The Terminals shall be used only at Party B's business address and only for "
                "genuine sales of goods or services by Party B itself.",
            )
        ),
        _item(
            say(
                "甲方将交易资金直接划付至乙方名下的结算账户（一清），不经任何第三方归集或代收。",
                "Party A shall pay transaction funds directly into Party B's own settlement "
                "account (direct settlement); no third party shall collect or hold the funds.",
            )
        ),
    ]


def _term_clause(terms: ContractTerms, say: _Writer) -> _ClauseParts:
    start, end, months = say.date(terms.effective_from), say.date(terms.end_date), terms.term_months
    items = [
        _item(
            say(
                f"本协议有效期为 {months} 个月，自{start}起至{end}止。",
                f"This Agreement has a term of {months} months, from {start} to {end} "
                "(both dates inclusive).",
            ),
            strong=True,
        )
    ]
    renewal = terms.auto_renewal_months
    if renewal:
        items.append(
            _item(
                say(
                    f"有效期届满三十日前，任何一方未书面通知对方不再续约的，本协议自动续期 "
                    f"{renewal} 个月，续期次数不限。",
                    "Unless either Party notifies the other in writing at least 30 days before "
                    "expiry that it will not renew, this Agreement is renewed automatically for "
                    f"successive periods of {renewal} months.",
                )
            )
        )
    else:
        items.append(
            _item(
                say(
                    "有效期届满前三十日内，双方可以协商续签；续签的，甲方提供新版本协议供乙方签署。",
                    "The Parties may agree to renew this Agreement within the 30 days before it "
                    "expires, in which case Party A will provide a new version of this Agreement "
                    "for Party B to sign.",
                )
            )
        )
    return say("协议期限", "Term"), items


def _fees_clause(terms: ContractTerms, say: _Writer, plan_name: str, count: int) -> _ClauseParts:
    fees = terms.fees
    money = say.money
    per_txn = say("按每笔交易金额计收", "Charged on the amount of each transaction")
    if fees.debit_cap_fen is not None:
        debit = say(
            f"{format_rate(fees.debit_rate)}，封顶 {money(fees.debit_cap_fen)}/笔",
            f"{format_rate(fees.debit_rate)}, capped at {money(fees.debit_cap_fen)} "
            "per transaction",
        )
    else:
        debit = format_rate(fees.debit_rate)
    d0_note = say(
        "选择 D0 结算时，在上述费率基础上加收",
        "Added to the rates above when settlement is D0",
    )
    if terms.settlement_cycle == "T1":
        d0_note += say(
            "；本协议约定 T+1 结算，不适用", "; not applicable: this Agreement provides for T+1"
        )
    none = say("免收", "None")
    deposit_condition = say("本协议终止并返还终端后退还", "Refunded after termination")
    if fees.deposit_refund_volume_fen is not None:
        deposit_condition = say(
            f"开通之日起 {fees.deposit_refund_days} 日内累计交易满 "
            f"{money(fees.deposit_refund_volume_fen)} 全额退还",
            f"Refunded in full once the terminal's transactions reach "
            f"{money(fees.deposit_refund_volume_fen)} within {fees.deposit_refund_days} days "
            "of activation",
        )
    rent_condition = (
        say(
            f"当月交易额满 {money(fees.rent_waiver_volume_fen)} 免收当月月租",
            f"Waived for a month in which the terminal's transactions reach "
            f"{money(fees.rent_waiver_volume_fen)}",
        )
        if fees.rent_waiver_volume_fen is not None
        else say("按月收取", "Charged monthly")
    )
    rows: list[tuple[str, str, str]] = [
        (say("借记卡交易手续费", "Debit card transaction fee"), debit, per_txn),
        (
            say("贷记卡交易手续费", "Credit card transaction fee"),
            format_rate(fees.credit_rate),
            per_txn,
        ),
        (
            say("条码支付（付款码）手续费", "QR-code payment fee"),
            format_rate(fees.qr_rate),
            per_txn,
        ),
        (
            say("D0 结算附加手续费", "D0 settlement surcharge"),
            format_rate(fees.d0_surcharge_rate),
            d0_note,
        ),
        (
            say("押金", "Deposit"),
            say(f"{money(fees.deposit_fen)}/台", f"{money(fees.deposit_fen)} per terminal")
            if fees.deposit_fen
            else none,
            deposit_condition if fees.deposit_fen else "",
        ),
        (
            say("月租", "Monthly rent"),
            say(
                f"{money(fees.monthly_rent_fen)}/台/月",
                f"{money(fees.monthly_rent_fen)} per terminal per month",
            )
            if fees.monthly_rent_fen
            else none,
            rent_condition if fees.monthly_rent_fen else "",
        ),
        (
            say("维护费", "Maintenance fee"),
            say(
                f"{money(fees.maintenance_fee_fen)}/台/年",
                f"{money(fees.maintenance_fee_fen)} per terminal per year",
            )
            if fees.maintenance_fee_fen
            else none,
            say("按年收取", "Charged yearly") if fees.maintenance_fee_fen else "",
        ),
    ]
    table = _Table(
        name="fees",
        headers=(say("收费项目", "Item"), say("标准", "Rate or amount"), say("说明", "Conditions")),
        rows=tuple(rows),
        widths=(2.2, 2.6, 3.6),
    )
    items = [
        _item(
            say(
                f"乙方适用{plan_name}（方案代码 {fees.code}，第 {fees.version} 版），"
                "收费标准如下：",
                f"The fee plan applicable to Party B is the {plan_name} (plan code {fees.code}, "
                f"version {fees.version}). The fees and charges are:",
            ),
            strong=True,
            table=table,
        ),
        _item(
            say(
                "交易手续费按笔计算，以分为单位四舍五入，由甲方在结算时从交易资金中直接扣收。"
                "乙方不得将手续费转嫁给持卡人。",
                "Transaction fees are calculated per transaction, rounded half-up to the "
                "nearest fen, and deducted by Party A from the transaction funds at settlement. "
                "Party B shall not pass the fees on to cardholders.",
            )
        ),
    ]
    if fees.debit_cap_fen is not None:
        cap = money(fees.debit_cap_fen)
        items.append(
            _item(
                say(
                    f"借记卡交易手续费按交易金额乘以费率计算，单笔手续费超过 {cap} 的，按 {cap} "
                    "收取（封顶）。",
                    "The debit card fee is the transaction amount multiplied by the rate, capped "
                    f"at {cap} for any single transaction.",
                )
            )
        )
    if fees.deposit_fen:
        deposit, total = money(fees.deposit_fen), money(fees.deposit_fen * count)
        text = say(
            f"乙方应在终端布放前按每台 {deposit} 向甲方交纳押金，{count} 台合计 {total}。"
            "押金不计利息。",
            f"Party B shall pay Party A a deposit of {deposit} per terminal before the "
            f"Terminals are deployed, {total} in total for {count} "
            f"{'terminal' if count == 1 else 'terminals'}. No interest accrues on the deposit.",
        )
        if fees.deposit_refund_volume_fen is not None:
            volume = money(fees.deposit_refund_volume_fen)
            text += say(
                f"自某台终端开通之日起 {fees.deposit_refund_days} 日内，该终端累计交易金额达到 "
                f"{volume} 的，甲方应在条件达成后十个工作日内将该终端的押金全额退还至乙方结算"
                "账户。未达到上述条件的，",
                f" If the cumulative transaction amount of a terminal reaches {volume} within "
                f"{fees.deposit_refund_days} days of its activation, Party A shall refund that "
                "terminal's deposit in full to Party B's settlement account within ten working "
                "days after the condition is met. Otherwise, ",
            )
        else:
            text += say("", " ")
        text += say(
            "押金在本协议终止、乙方返还终端并结清应付款项后无息退还；终端丢失或损坏的，甲方有权"
            "从押金中扣除相应赔偿。",
            "the deposit shall be refunded without interest after this Agreement ends, the "
            "Terminals have been returned and all amounts due have been paid; Party A may "
            "deduct from the deposit compensation for a lost or damaged terminal.",
        )
        items.append(_item(text, strong=True))
    else:
        items.append(
            _item(say("甲方不向乙方收取终端押金。", "Party A charges no terminal deposit."))
        )
    if fees.monthly_rent_fen:
        rent = money(fees.monthly_rent_fen)
        text = say(
            f"终端月租为每台每月 {rent}，由甲方按月从乙方结算资金中扣收。",
            f"The rent is {rent} per terminal per calendar month, deducted monthly by Party A "
            "from Party B's settlement funds.",
        )
        if fees.rent_waiver_volume_fen is not None:
            waiver = money(fees.rent_waiver_volume_fen)
            text += say(
                f"某一自然月内某台终端的交易金额达到 {waiver} 的，免收该终端当月月租。",
                f" The rent of a terminal for a calendar month is waived if that terminal's "
                f"transactions in the month reach {waiver}.",
            )
        items.append(_item(text, strong=True))
    else:
        items.append(
            _item(say("甲方不收取终端月租。", "Party A charges no monthly rent for the Terminals."))
        )
    if fees.maintenance_fee_fen:
        fee = money(fees.maintenance_fee_fen)
        items.append(
            _item(
                say(
                    f"维护费为每台每年 {fee}，自终端开通之日起按年预收，用于第五条约定的维护服务。",
                    f"The maintenance fee is {fee} per terminal per year, charged yearly in "
                    "advance from the activation date of each terminal, for the maintenance "
                    "services described in Article 5.",
                ),
                strong=True,
            )
        )
    else:
        items.append(
            _item(
                say(
                    "甲方免费提供第五条约定的维护服务，不收取维护费。",
                    "Party A provides the maintenance services described in Article 5 free of "
                    "charge.",
                )
            )
        )
    items += [
        _item(
            say(
                "本协议有效期内，上述收费标准不变。确需调整的，甲方应提前三十日书面通知乙方，并与"
                "乙方签订新版本协议；乙方不同意调整的，有权解除本协议。",
                "The fees and charges above remain unchanged during the term of this Agreement. "
                "Any change requires at least 30 days' written notice from Party A and a new "
                "version of this Agreement signed by both Parties; if Party B does not accept a "
                "change, it may terminate this Agreement.",
            )
        ),
        _item(
            say(
                "甲方按乙方实际支付的费用向乙方开具发票（含电子发票）。",
                "Party A shall issue invoices (including electronic invoices) to Party B for "
                "the fees actually paid.",
            )
        ),
    ]
    return say("手续费及其他费用", "Fees and charges"), items


def _own_zh(kind: MerchantKind | None) -> str:
    """Whose trade the terminals serve, in the Chinese text."""
    if kind == "individual":
        return "乙方本人"
    if kind is None:
        return "乙方本人（本单位）"
    return "乙方本单位"


def _account_rule(kind: MerchantKind | None, say: _Writer) -> str:
    """Whose account the funds go to: the rule follows the merchant's kind."""
    if kind == "enterprise":
        return say(
            "该账户应为乙方名下的单位银行结算账户，户名应与乙方商户名称一致；乙方不得以个人银行"
            "账户或他人账户作为结算账户。",
            "The account shall be a unit bank settlement account held in Party B's own name, "
            "the account name matching Party B's merchant name; a personal account or another "
            "person's account may not be used.",
        )
    if kind == "individual_business":
        return say(
            "该账户应为乙方名下的单位银行结算账户，或乙方经营者本人名下的同名个人银行结算账户，"
            "户名应与乙方商户名称或经营者姓名一致。",
            "The account shall be a unit bank settlement account held in Party B's name, or a "
            "personal bank settlement account in the operator's own name, the account name "
            "matching Party B's merchant name or the operator's name.",
        )
    if kind == "individual":
        return say(
            "该账户应为乙方本人名下的个人银行结算账户，户名应与乙方姓名一致。",
            "The account shall be a personal bank settlement account in Party B's own name, "
            "the account name matching Party B's name.",
        )
    return say(
        "该账户应为乙方名下的银行账户，户名应与乙方商户名称或经营者姓名一致。",
        "The account shall be held in Party B's own name, matching Party B's registered "
        "name or the name of its operator.",
    )


def _settlement_clause(terms: ContractTerms, say: _Writer) -> _ClauseParts:
    if terms.settlement_cycle == "D0":
        cycle = say(
            "结算周期为 D0（当日结算）：甲方于交易当日将扣除手续费后的交易资金划付至乙方结算账户，"
            "周末及法定节假日照常结算；D0 结算按第三条加收附加手续费。",
            "The settlement cycle is D0 (same-day settlement): Party A pays the transaction "
            "funds, net of fees, into Party B's settlement account on the day of the "
            "transaction, including weekends and public holidays. The D0 settlement surcharge "
            "in Article 3 applies.",
        )
    else:
        cycle = say(
            "结算周期为 T+1：甲方于交易日后的第一个工作日将扣除手续费后的交易资金划付至乙方结算"
            "账户。",
            "The settlement cycle is T+1: Party A pays the transaction funds, net of fees, into "
            "Party B's settlement account on the first working day after the transaction date.",
        )
    cycle += say(
        "资金到账时间以收款银行入账时间为准。",
        " The time at which funds become available depends on the receiving bank.",
    )
    account = terms.settlement_account
    return say("资金结算", "Settlement"), [
        _item(cycle, strong=True),
        _item(
            say(
                f"乙方的结算账户为：开户银行 {account.bank_name}；户名 {account.account_name}；"
                f"账号 {account.account_number_masked}。",
                f"Party B's settlement account is: bank {account.bank_name}; account name "
                f"{account.account_name}; account number {account.account_number_masked}. ",
            )
            + _account_rule(terms.merchant.kind, say)
        ),
        _item(
            say(
                "乙方变更结算账户的，应向甲方提交书面申请及证明材料，经甲方审核通过后生效。",
                "A change of settlement account requires a written application from Party B "
                "with supporting documents and takes effect once approved by Party A.",
            )
        ),
        _item(
            say(
                "乙方可通过甲方商户服务平台或客服热线查询交易及结算明细；对结算结果有异议的，应在"
                "结算之日起三十日内向甲方提出，甲方应及时核查并答复。",
                "Party B may view transaction and settlement details through Party A's merchant "
                "service platform or the customer service hotline. Any objection to a "
                "settlement shall be raised with Party A within 30 days of that settlement; "
                "Party A shall investigate and reply promptly.",
            )
        ),
        _item(
            say(
                "甲方发现可疑交易或乙方涉嫌违反本协议的，有权依法对相关交易资金延迟结算并通知"
                "乙方；经核实交易正常的，甲方应立即恢复结算。",
                "If Party A detects a suspicious transaction or Party B is suspected of "
                "breaching this Agreement, Party A may, as permitted by law, defer settlement of "
                "the funds concerned and shall notify Party B; once the transaction is verified "
                "as genuine, Party A shall resume settlement immediately.",
            )
        ),
    ]


def _terminal_clause(terms: ContractTerms, say: _Writer) -> _ClauseParts:
    hotline = terms.acquirer.service_hotline
    return say("终端及维护服务", "Terminals and maintenance"), [
        _item(
            say(
                "终端的所有权归甲方，乙方在本协议有效期内享有使用权。甲方负责终端的安装、调试及参数"
                "设置，并对乙方操作人员进行培训。",
                "The Terminals remain the property of Party A; Party B has the right to use them "
                "during the term of this Agreement. Party A is responsible for installing and "
                "configuring the Terminals and for training Party B's operators.",
            )
        ),
        _item(
            say(
                f"甲方提供 7×24 小时客服热线{f' {hotline}' if hotline else ''}。终端发生故障的，"
                "甲方应在接到报修后及时远程处理；无法远程排除的，安排上门维修或更换终端。",
                "Party A provides a 24-hour customer service hotline"
                f"{f' ({hotline})' if hotline else ''}. Party A shall deal with a reported "
                "terminal fault promptly, remotely where possible and otherwise by on-site "
                "repair or replacement of the terminal.",
            )
        ),
        _item(
            say(
                "甲方负责终端软件的更新升级及定期硬件检查；非因乙方原因造成的终端故障，甲方免费"
                "维修或更换。",
                "Party A shall update the terminal software and inspect the hardware "
                "periodically. Faults not caused by Party B are repaired, or the terminal "
                "replaced, free of charge.",
            )
        ),
        _item(
            say(
                "乙方应妥善保管终端，不得擅自拆卸、改装或移机，不得出租、出借或转让终端；终端因乙方"
                "原因丢失或损坏的，乙方应赔偿甲方的实际损失。",
                "Party B shall take good care of the Terminals and shall not dismantle, modify "
                "or relocate them without Party A's consent, nor rent, lend or transfer them. "
                "Party B shall compensate Party A for the actual loss if a terminal is lost or "
                "damaged for reasons attributable to Party B.",
            )
        ),
        _item(
            say(
                "本协议终止后，乙方应在十五日内将终端完好返还甲方。",
                "Within 15 days after this Agreement ends, Party B shall return the Terminals to "
                "Party A in good condition.",
            )
        ),
    ]


def _data_clause(terms: ContractTerms, say: _Writer) -> _ClauseParts:
    zh_word, en_word = _BACKUP_WORDS[terms.data_backup_frequency]
    return say("数据备份与信息安全", "Data backup and information security"), [
        _item(
            say(
                f"甲方{zh_word}对乙方的交易数据进行备份，备份数据在本地及异地分别保存，并按照法律法规"
                "及监管规定的期限保存交易记录，确保系统发生故障时数据可以恢复。",
                f"Party A backs up Party B's transaction data {en_word}, keeps the backups both "
                "locally and at a remote site, and retains transaction records for the period "
                "required by laws, regulations and supervisory rules, so that data can be "
                "restored after a system failure.",
            ),
            strong=True,
        ),
        _item(
            say(
                "甲方采取加密传输及加密存储等措施保护交易数据及乙方信息安全，并对乙方的商户信息和"
                "交易信息负有保密义务，法律法规另有规定或有权机关依法要求的除外。",
                "Party A protects transaction data and Party B's information with measures "
                "including encrypted transmission and storage, and shall keep Party B's "
                "merchant and transaction information confidential, except as otherwise "
                "required by law or by a competent authority.",
            )
        ),
        _item(
            say(
                "乙方不得留存持卡人的银行卡磁道信息、卡片验证码、个人标识码（PIN）及卡片有效期等"
                "敏感信息，不得将持卡人信息用于交易以外的用途；乙方应定期修改终端操作员密码。",
                "Party B shall not store cardholders' sensitive data such as magnetic stripe "
                "data, card verification codes, personal identification numbers (PINs) or card "
                "expiry dates, nor use cardholder information for any purpose other than the "
                "transaction, and shall change terminal operator passwords regularly.",
            )
        ),
    ]


def _refund_clause(terms: ContractTerms, say: _Writer) -> _ClauseParts:
    policy = terms.refund_policy
    fee = (
        say(
            "发生退货的，甲方按退款金额相应退还原交易已收取的手续费。",
            "Party A refunds the fee charged on the original transaction in proportion to the "
            "amount refunded.",
        )
        if policy.fee_refunded
        else say(
            "发生退货的，原交易已收取的手续费不予退还。",
            "Fees already charged on the original transaction are not refunded.",
        )
    )
    return say("退货与退款", "Returns and refunds"), [
        _item(
            say(
                "交易当日，乙方可以通过终端撤销原交易。",
                "On the day of a transaction, Party B may void it on the terminal.",
            )
        ),
        _item(
            say(
                f"乙方可在原交易日起 {policy.window_days} 日内，通过原受理终端或甲方商户服务平台"
                "对原交易发起退货（退款），退款金额累计不得超过原交易金额，资金原路退回持卡人账户。"
                + fee,
                f"Within {policy.window_days} days of the original transaction, Party B may "
                "initiate a return (refund) of that transaction through the original terminal "
                "or Party A's merchant service platform. Refunds may not exceed the original "
                "transaction amount in total, and funds are returned to the account originally "
                "charged. " + fee,
            ),
            strong=True,
        ),
        _item(
            say(
                "退款资金从乙方待结算资金中扣减；待结算资金不足的，乙方应在接到甲方通知后三个工作日"
                "内补足。",
                "Refunds are deducted from Party B's funds awaiting settlement; if those are "
                "insufficient, Party B shall make up the difference within three working days of "
                "Party A's notice.",
            )
        ),
        _item(
            say(
                "乙方应自交易之日起至少保存交易凭证一年，并配合甲方处理持卡人的查询（调单）、争议"
                "及拒付；因乙方原因造成的拒付损失由乙方承担。",
                "Party B shall keep transaction receipts for at least one year from the "
                "transaction date and cooperate with Party A in handling cardholder enquiries "
                "(retrieval requests), disputes and chargebacks; chargeback losses attributable "
                "to Party B are borne by Party B.",
            )
        ),
    ]


def _obligations_clause(terms: ContractTerms, say: _Writer) -> _ClauseParts:
    return say("双方的权利和义务", "Rights and obligations of the Parties"), [
        _item(
            say(
                "甲方应按本协议约定及时、足额结算交易资金，提供终端维护及客户服务，并在调整业务"
                "规则、交易限额等影响乙方权益的事项前通知乙方。",
                "Party A shall settle transaction funds in full and on time, provide terminal "
                "maintenance and customer service as agreed, and notify Party B before changing "
                "business rules, transaction limits or other matters affecting Party B's "
                "interests.",
            )
        ),
        _item(
            say(
                "甲方有权对乙方进行实名核实、交易监测和风险管理，根据乙方的经营情况和风险状况设置"
                "或调整交易限额；发现乙方交易异常的，有权采取延迟结算、暂停部分或全部交易功能等"
                "措施。",
                "Party A may verify Party B's identity, monitor its transactions and manage risk, "
                "and may set or adjust transaction limits according to Party B's business and "
                "risk profile; where it detects abnormal transactions, Party A may defer "
                "settlement or suspend some or all transaction functions.",
            )
        ),
        _item(
            say(
                "乙方应保证所提供的身份证明、营业执照、结算账户等资料真实、完整、有效；资料发生变更"
                "的，应在变更之日起十日内通知甲方。",
                "Party B warrants that the identity documents, business licence, settlement "
                "account details and other information it provides are true, complete and valid, "
                "and shall notify Party A of any change within ten days.",
            )
        ),
        _item(
            say(
                "乙方应遵守银行卡及条码支付受理的相关规定，不得有下列行为：（1）虚构交易、套取现金；"
                "（2）利用终端为他人收款，或将终端转借他人使用；（3）擅自将终端移至经营地址以外的"
                "地点使用；（4）向持卡人收取附加费用或拒绝受理合规的银行卡；（5）拆分交易，或为违法"
                "违规活动提供收款服务。",
                "Party B shall comply with the rules on accepting bank cards and QR-code payments "
                "and shall not: (1) process fictitious transactions or provide cash-out; (2) use "
                "the Terminals to collect payments for others or lend them to others; (3) use a "
                "terminal anywhere other than its business address without consent; (4) charge "
                "cardholders any surcharge or refuse valid bank cards; or (5) split transactions "
                "or collect payments for unlawful activities.",
            )
        ),
        _item(
            say(
                "乙方应配合甲方的风险核查和现场检查，并按甲方要求提供交易相关资料。",
                "Party B shall cooperate with Party A's risk reviews and on-site inspections and "
                "provide transaction records on request.",
            )
        ),
    ]


def _termination_clause(terms: ContractTerms, say: _Writer) -> _ClauseParts:
    return say("协议的变更与解除", "Amendment and termination"), [
        _item(
            say(
                "本协议的任何变更，均以双方签署新版本协议的方式进行；新版本自生效之日起取代原版本。",
                "Any amendment of this Agreement shall be made by both Parties signing a new "
                "version, which supersedes the previous version from its effective date.",
            )
        ),
        _item(
            say(
                "任何一方可以提前三十日书面通知对方解除本协议。",
                "Either Party may terminate this Agreement by giving the other at least 30 days' "
                "written notice.",
            )
        ),
        _item(
            say(
                "乙方有第 8.4 款所列行为，或提供虚假资料、涉嫌违法犯罪的，甲方有权立即暂停服务并"
                "解除本协议。",
                "If Party B commits any act listed in clause 8.4, provides false information or "
                "is suspected of a criminal offence, Party A may suspend the services and "
                "terminate this Agreement with immediate effect.",
            )
        ),
        _item(
            say(
                "本协议终止后，双方应结清全部款项，乙方应返还终端；本协议的终止不影响终止前已发生"
                "交易的结算、退货及拒付处理。",
                "On termination the Parties shall settle all amounts due and Party B shall "
                "return the Terminals. Termination does not affect the settlement, refund or "
                "chargeback of transactions made before it.",
            )
        ),
    ]


def _liability_clause(terms: ContractTerms, say: _Writer) -> _ClauseParts:
    return say("违约责任", "Liability"), [
        _item(
            say(
                "任何一方违反本协议约定给对方造成损失的，应赔偿对方因此遭受的直接损失。",
                "A Party that breaches this Agreement shall compensate the other Party for the "
                "direct losses caused by the breach.",
            )
        ),
        _item(
            say(
                "因不可抗力或银行卡清算机构、通信运营商等第三方系统故障导致不能履行本协议的，受影响"
                "一方在及时通知对方并采取合理措施减少损失的前提下，不承担违约责任。",
                "A Party is not liable for failure to perform caused by force majeure or by "
                "failures of card clearing organisations, telecommunications operators or other "
                "third-party systems, provided that it promptly notifies the other Party and "
                "takes reasonable measures to limit the loss.",
            )
        ),
    ]


def _dispute_clause(terms: ContractTerms, say: _Writer) -> _ClauseParts:
    d = terms.dispute
    if d.forum == "court":
        forum = say(
            f"任何一方均可向{d.venue_zh}提起诉讼",
            f"either Party may bring proceedings before {d.venue_en}",
        )
    else:
        forum = say(
            f"任何一方均可将争议提交{d.venue_zh}，按照申请仲裁时该会现行有效的仲裁规则进行仲裁。"
            "仲裁裁决是终局的，对双方均有约束力",
            f"either Party may submit the dispute to {d.venue_en} for arbitration in accordance "
            "with its arbitration rules in force when the application is made. The arbitral "
            "award is final and binding on both Parties",
        )
    return say("争议解决", "Dispute resolution"), [
        _item(
            say(
                "本协议的订立、效力、解释、履行及争议解决均适用中华人民共和国法律（为本协议之目的，"
                "不包括香港特别行政区、澳门特别行政区和台湾地区的法律）。",
                "This Agreement is governed by the laws of the People's Republic of China (for "
                "the purposes of this Agreement excluding the laws of the Hong Kong SAR, the "
                "Macao SAR and Taiwan).",
            )
        ),
        _item(
            say(
                "因本协议引起的或与本协议有关的争议，双方应首先友好协商解决；自一方书面提出协商之日"
                f"起三十日内协商不成的，{forum}。",
                "The Parties shall first seek to resolve any dispute arising from or in "
                "connection with this Agreement through friendly negotiation. If the dispute is "
                "not resolved within 30 days after either Party requests negotiation in writing, "
                f"{forum}.",
            ),
            strong=True,
        ),
        _item(
            say(
                "争议解决期间，除争议事项外，双方应继续履行本协议的其他条款。",
                "While a dispute is being resolved, the Parties shall continue to perform the "
                "provisions of this Agreement that are not in dispute.",
            )
        ),
    ]


def _miscellaneous_clause(terms: ContractTerms, say: _Writer) -> _ClauseParts:
    items = [
        _item(
            say(
                "甲方已在乙方签署本协议前，就本协议全部条款，特别是手续费率、押金及其退还条件、"
                "月租、维护费、结算周期、退货退款及争议解决等与乙方有重大利害关系的条款，以加粗等"
                "显著方式提示乙方注意并作出说明。乙方确认已阅读并充分理解本协议全部条款。",
                "Before Party B signed this Agreement, Party A drew Party B's attention, in bold "
                "type or by other prominent means, to all of its terms, in particular those on "
                "fee rates, the deposit and the conditions for its refund, monthly rent, the "
                "maintenance fee, the settlement cycle, returns and refunds and dispute "
                "resolution, which materially affect Party B's interests, and explained them. "
                "Party B confirms that it has read and fully understood all the terms of this "
                "Agreement.",
            ),
            strong=True,
        ),
        _item(
            say(
                "本协议可以电子方式签署，双方的可靠电子签名与手写签名或者盖章具有同等法律效力。"
                "甲方记录并保存本协议电子文本的 SHA-256 摘要值，用于核验协议文本未被篡改。",
                "This Agreement may be signed electronically; the reliable electronic signatures "
                "of the Parties have the same legal effect as handwritten signatures or seals. "
                "Party A records and keeps the SHA-256 digest of the electronic text of this "
                "Agreement to verify that the text has not been altered.",
            )
        ),
        _item(
            say(
                "本协议自双方签署（盖章）之日起成立，在第二条约定的期限内有效。",
                "This Agreement is concluded when signed (and sealed) by both Parties and "
                "remains in force for the term set out in Article 2.",
            )
        ),
    ]
    am = terms.amendment
    if am is not None:
        items.append(
            _item(
                say(
                    f"本协议为第 {terms.version} 版，自生效之日起取代协议编号 "
                    f"{am.previous_contract_number} 第 {am.previous_version} 版；原版本有效期间"
                    "已发生的交易及费用仍按原版本处理。",
                    f"This Agreement is version {terms.version} and supersedes version "
                    f"{am.previous_version} of contract {am.previous_contract_number} from its "
                    "effective date; transactions and charges incurred while the previous "
                    "version was in force remain governed by it.",
                )
            )
        )
    items.append(
        _item(
            say(
                "本协议有中文和英文两种文本，两种文本如有不一致，以中文文本为准。",
                "This Agreement is made in Chinese and English. In case of any discrepancy "
                "between the two texts, the Chinese text prevails.",
            )
        )
    )
    return say("其他", "Miscellaneous"), items


# --------------------------------------------------------------------------- HTML

_ENV = Environment(
    loader=PackageLoader("poshub.contracts", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(terms: ContractTerms) -> Markup:
    """The contract as an HTML fragment (``<article class="contract">``), autoescaped,
    with no inline style or script. ``Markup`` is a ``str`` a Jinja page can include."""
    html = _ENV.get_template("contract.html").render(doc=_build(terms))
    return Markup(html)  # noqa: S704 - rendered by an autoescaping environment


# ---------------------------------------------------------------------------- PDF

_FAMILY = "cjk"
_MARGIN = 20.0
_TOP = 22.0
_BOTTOM = 18.0
_INK = (20, 20, 20)
_MUTED = (110, 110, 110)
_RULE = (170, 170, 170)
_FILL = (236, 238, 241)


class _ContractPDF(FPDF):
    def __init__(self, doc: _Document) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc = doc

    def header(self) -> None:
        self.set_font(_FAMILY, "", 8)
        self.set_text_color(*_MUTED)
        self.set_xy(_MARGIN, 10)
        width = self.w - 2 * _MARGIN
        self.cell(width / 2, 5, self.doc.title)
        self.cell(width / 2, 5, self.doc.header_right, align="R")
        self.set_draw_color(*_RULE)
        self.set_line_width(0.2)
        self.line(_MARGIN, 16, self.w - _MARGIN, 16)
        self.set_text_color(*_INK)
        self.set_xy(_MARGIN, _TOP)

    def footer(self) -> None:
        self.set_font(_FAMILY, "", 8)
        self.set_text_color(*_MUTED)
        self.set_xy(_MARGIN, -12)
        label = self.doc.page_label.format(page=self.page_no(), pages=self.str_alias_nb_pages)
        self.cell(self.w - 2 * _MARGIN, 5, label, align="C")
        self.set_text_color(*_INK)


def render_pdf(terms: ContractTerms) -> bytes:
    """The contract as an A4 PDF; the same terms always give the same bytes.

    Raises :class:`ContractFontMissing` when no CJK font is installed, and its subclass
    :class:`ContractGlyphMissing` when the font lacks a character of the contract.
    """
    doc = _build(terms)
    fonts = discover_cjk_fonts()
    characters = "".join(_strings(doc)) + _ASCII
    for face in (fonts.regular, fonts.bold):
        missing = uncovered(face, characters)
        if missing:
            listed = ", ".join(f"{c} (U+{ord(c):04X})" for c in missing[:10])
            raise ContractGlyphMissing(
                f"the font {face.path} has no glyph for {listed}; correct the text or set "
                f"POSHUB_CJK_FONT to a font that covers it"
            )
    regular = truetype_subset(fonts.regular, characters)
    bold = truetype_subset(fonts.bold, characters)
    with tempfile.TemporaryDirectory(prefix="poshub-contract-") as tmp:
        regular_path, bold_path = Path(tmp, "regular.ttf"), Path(tmp, "bold.ttf")
        regular_path.write_bytes(regular)
        bold_path.write_bytes(bold)
        pdf = _ContractPDF(doc)
        pdf.add_font(_FAMILY, "", regular_path)
        pdf.add_font(_FAMILY, "B", bold_path)
        _typeset(pdf, doc, terms)
        return bytes(pdf.output())


_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))
"""Always in the font subsets: the page-number alias, digits and anything a header uses."""


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, tuple):
        for element in value:
            yield from _strings(element)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name))


def _typeset(pdf: _ContractPDF, doc: _Document, terms: ContractTerms) -> None:
    generated = terms.generated_at.astimezone(dt.UTC)
    pdf.set_creation_date(generated)
    pdf.set_producer("PosHub")
    pdf.set_creator("PosHub")
    pdf.set_title(f"{doc.title} {terms.contract_number} v{terms.version}")
    pdf.set_subject(doc.title)
    pdf.set_author(terms.acquirer.name_zh if terms.language == "zh" else terms.acquirer.name_en)
    pdf.set_lang(doc.lang)
    pdf.set_compression(True)
    pdf.set_margins(_MARGIN, _TOP, _MARGIN)
    pdf.set_auto_page_break(True, margin=_BOTTOM)
    pdf.set_text_color(*_INK)
    pdf.add_page()
    width = pdf.w - 2 * _MARGIN

    pdf.set_font(_FAMILY, "B", 17)
    pdf.cell(width, 10, doc.title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    _key_values(pdf, doc.meta, size=9, label_width=28)
    pdf.ln(3)

    if doc.notice is not None:
        _heading(pdf, doc.notice.heading, size=10.5)
        _paragraph(pdf, doc.notice.text, _MARGIN, width, size=9.5)
        if doc.notice.changes:
            _paragraph(pdf, doc.notice.changes_heading, _MARGIN, width, size=9.5)
            for index, change in enumerate(doc.notice.changes, start=1):
                _numbered(pdf, f"{index}.", change, size=9.5)
        pdf.ln(3)

    for party in doc.parties:
        _heading(pdf, party.role, size=10.5)
        _key_values(pdf, party.rows, size=9.5, label_width=42)
        pdf.ln(2.5)

    _paragraph(pdf, doc.preamble, _MARGIN, width, size=10)
    pdf.ln(2)

    for clause in doc.clauses:
        _ensure_space(pdf, 22)
        _heading(pdf, f"{clause.label}  {clause.heading}", size=11.5)
        for item in clause.items:
            _numbered(pdf, item.number, item.text, size=10, bold=item.strong)
            if item.table is not None:
                pdf.ln(1)
                _table(pdf, item.table, x=_MARGIN + 10, width=width - 10, size=9)
                pdf.ln(1.5)
        pdf.ln(1.5)

    pdf.set_font(_FAMILY, "", 10)
    pdf.cell(width, 8, doc.closing, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _signatures(pdf, doc.signatures, width)


def _line_height(size: float) -> float:
    return size * 0.3528 * 1.65


def _ensure_space(pdf: FPDF, height: float) -> None:
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()


def _heading(pdf: FPDF, text: str, *, size: float) -> None:
    pdf.set_font(_FAMILY, "B", size)
    height = _line_height(size)
    _ensure_space(pdf, height * 2.5)
    pdf.ln(1.5)
    _paragraph(pdf, text, _MARGIN, pdf.w - 2 * _MARGIN, size=size, bold=True)
    pdf.ln(0.5)


def _paragraph(
    pdf: FPDF, text: str, x: float, width: float, *, size: float, bold: bool = False
) -> None:
    pdf.set_font(_FAMILY, "B" if bold else "", size)
    height = _line_height(size)
    for line in _wrap(text, width, pdf.get_string_width):
        _ensure_space(pdf, height)
        pdf.set_x(x)
        pdf.cell(width, height, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _numbered(pdf: FPDF, number: str, text: str, *, size: float, bold: bool = False) -> None:
    indent = 10.0
    height = _line_height(size)
    _ensure_space(pdf, height * 2)
    pdf.set_font(_FAMILY, "B" if bold else "", size)
    y = pdf.get_y()
    pdf.set_xy(_MARGIN, y)
    pdf.cell(indent, height, number)
    pdf.set_xy(_MARGIN + indent, y)
    _paragraph(pdf, text, _MARGIN + indent, pdf.w - 2 * _MARGIN - indent, size=size, bold=bold)
    pdf.ln(0.8)


def _key_values(
    pdf: FPDF, rows: tuple[tuple[str, str], ...], *, size: float, label_width: float
) -> None:
    height = _line_height(size)
    width = pdf.w - 2 * _MARGIN - label_width
    for label, value in rows:
        pdf.set_font(_FAMILY, "", size)
        lines = _wrap(value, width, pdf.get_string_width)
        _ensure_space(pdf, height * len(lines))
        y = pdf.get_y()
        pdf.set_text_color(*_MUTED)
        pdf.set_font(_FAMILY, "", size)
        pdf.set_xy(_MARGIN, y)
        pdf.cell(label_width, height, label)
        pdf.set_text_color(*_INK)
        for line in lines:
            pdf.set_x(_MARGIN + label_width)
            pdf.cell(width, height, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _table(pdf: FPDF, table: _Table, *, x: float, width: float, size: float) -> None:
    total = sum(table.widths)
    widths = [width * w / total for w in table.widths]
    pad = 1.6
    height = _line_height(size)
    pdf.set_draw_color(*_RULE)
    pdf.set_line_width(0.2)

    def row(cells: tuple[str, ...], *, bold: bool, fill: bool) -> None:
        pdf.set_font(_FAMILY, "B" if bold else "", size)
        wrapped = [
            _wrap(text, w - 2 * pad, pdf.get_string_width) if text else [""]
            for text, w in zip(cells, widths, strict=True)
        ]
        row_height = max(len(lines) for lines in wrapped) * height + 2 * pad
        if pdf.get_y() + row_height > pdf.page_break_trigger:
            pdf.add_page()
            if not fill:
                row(table.headers, bold=True, fill=True)
                pdf.set_font(_FAMILY, "B" if bold else "", size)
        top = pdf.get_y()
        left = x
        for lines, w in zip(wrapped, widths, strict=True):
            if fill:
                pdf.set_fill_color(*_FILL)
            pdf.rect(left, top, w, row_height, style="DF" if fill else "D")
            for index, line in enumerate(lines):
                pdf.set_xy(left + pad, top + pad + index * height)
                pdf.cell(w - 2 * pad, height, line)
            left += w
        pdf.set_xy(_MARGIN, top + row_height)

    row(table.headers, bold=True, fill=True)
    for cells in table.rows:
        row(cells, bold=False, fill=False)
    if table.footer is not None:
        row(table.footer, bold=True, fill=False)


def _signatures(pdf: FPDF, signatures: tuple[_Signature, ...], width: float) -> None:
    size = 10.0
    height = _line_height(size) + 3.5
    needed = (max(len(s.lines) for s in signatures) + 1) * height + 8
    _ensure_space(pdf, needed)
    pdf.ln(4)
    top = pdf.get_y()
    gap = 10.0
    column = (width - gap) / len(signatures)
    for index, signature in enumerate(signatures):
        left = _MARGIN + index * (column + gap)
        pdf.set_xy(left, top)
        pdf.set_font(_FAMILY, "B", size)
        pdf.cell(column, height, signature.role)
        pdf.set_font(_FAMILY, "", size)
        y = top + height
        for line in signature.lines:
            for part in _wrap(line, column, pdf.get_string_width):
                pdf.set_xy(left, y)
                pdf.cell(column, height, part)
                y += height
    pdf.set_xy(_MARGIN, top + needed)


# ------------------------------------------------------------------ line breaking

_NO_LINE_START = frozenset("，。、；：？！）》」』】〕〉”’％…—,.;:?!)]}%")
_NO_LINE_END = frozenset("（《「『【〔〈“‘([{")


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _units(text: str) -> list[str]:
    """Unbreakable pieces: each wide (CJK) character alone, runs of other characters
    (words, numbers such as ``¥200,000.00``) whole; spaces stay at the end of a piece.
    Closing punctuation joins the piece before it and opening punctuation the one after
    (Chinese line-breaking rules: no line starts with ，or ends with （)."""
    pieces: list[str] = []
    run = ""
    for char in text:
        if char == " ":
            if run:
                pieces.append(run + " ")
                run = ""
            elif pieces:
                pieces[-1] += " "
        elif _is_wide(char):
            if run:
                pieces.append(run)
                run = ""
            pieces.append(char)
        else:
            run += char
    if run:
        pieces.append(run)
    merged: list[str] = []
    for piece in pieces:
        if merged and (piece[0] in _NO_LINE_START or merged[-1][-1] in _NO_LINE_END):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def _wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Lines of ``text`` no wider than ``width`` (a piece wider than a line is cut)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for piece in _units(paragraph):
            candidate = line + piece
            if not line or measure(candidate.rstrip()) <= width:
                line = candidate
            else:
                lines.append(line.rstrip())
                line = piece
            while measure(line.rstrip()) > width and len(line.rstrip()) > 1:
                cut = len(line)
                while cut > 1 and measure(line[:cut]) > width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line.rstrip())
    return lines
