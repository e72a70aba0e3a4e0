"""The contract renderer (R5): same clauses and figures in HTML and PDF, zh and en,
byte-identical PDFs for identical terms."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html
import io
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from fontTools.ttLib import TTCollection
from pypdf import PdfReader

from poshub.catalog.models import FeePlan
from poshub.contracts import fonts
from poshub.contracts.document import (
    Acquirer,
    Amendment,
    ContractFontMissing,
    ContractGlyphMissing,
    ContractTerms,
    FeeTerms,
    Merchant,
    RefundPolicy,
    SettlementAccount,
    TerminalLine,
    format_date,
    format_rate,
    render_html,
    render_pdf,
)

REPO = Path(__file__).resolve().parents[2]


def _a_font_is_installed() -> bool:
    try:
        fonts.discover_cjk_fonts()
    except ContractFontMissing:
        return False
    return True


# The pinned noto-cjk-sans-otc package provides one, so this skips only in a broken install.
pytestmark = pytest.mark.skipif(
    not _a_font_is_installed(), reason="needs a CJK font: pip install -r requirements.lock"
)


def make_terms(**overrides: object) -> ContractTerms:
    terms = ContractTerms(
        contract_number="898-2026-000123",
        version=1,
        language="zh",
        generated_at=dt.datetime(2026, 11, 22, 6, 5, 30, tzinfo=dt.UTC),
        effective_from=dt.date(2026, 12, 1),
        term_months=36,
        end_date=dt.date(2029, 11, 30),
        acquirer=Acquirer(
            name_zh="浦惠农村商业银行股份有限公司",
            name_en="Puhui Rural Commercial Bank Co., Ltd.",
            address="上海市浦东新区世纪大道100号",
            address_en="100 Century Avenue, Pudong New Area, Shanghai",
            licence_kind="financial",
            licence_number="B1234H231000001",
            service_hotline="95588",
        ),
        merchant=Merchant(
            legal_name="上海小笼包餐饮有限公司",
            business_name="老街小笼包",
            mid="898310058120001",
            identifier_kind="uscc",
            identifier_masked="91310115MA1K4XXX7Q",
            address="上海市黄浦区南京东路200号",
            mobile_masked="138****5678",
            representative="张三",
        ),
        fees=FeeTerms(
            code="STANDARD",
            version=1,
            name_zh="标准商户套餐",
            name_en="Standard merchant plan",
            debit_rate=Decimal("0.0050"),
            debit_cap_fen=2000,
            credit_rate=Decimal("0.0060"),
            qr_rate=Decimal("0.0038"),
            d0_surcharge_rate=Decimal("0.0003"),
            deposit_fen=29900,
            deposit_refund_volume_fen=20_000_000,
            deposit_refund_days=90,
            monthly_rent_fen=3000,
            rent_waiver_volume_fen=5_000_000,
            maintenance_fee_fen=12000,
        ),
        settlement_cycle="D0",
        settlement_account=SettlementAccount(
            bank_name="中国工商银行上海南京东路支行",
            account_name="上海小笼包餐饮有限公司",
            account_number_masked="6222 **** **** 1234",
        ),
        terminals=(
            TerminalLine("智能POS A8", "Smart POS A8", 2),
            TerminalLine("传统POS T60（有线/无线）", "Traditional POS T60 (wired/wireless)", 1),
        ),
        data_backup_frequency="daily",
        refund_policy=RefundPolicy(window_days=180, fee_refunded=False),
    )
    return dataclasses.replace(terms, **overrides)  # type: ignore[arg-type]


AMENDMENT = Amendment(
    previous_contract_number="898-2026-000123",
    previous_version=1,
    changes_zh=("结算周期由 D0 调整为 T+1。",),
    changes_en=("Settlement cycle changed from D0 to T+1.",),
    previous_sha256="ab" * 32,
)

# What every rendering must state, per language (whitespace is ignored when comparing:
# PDF text comes back broken into lines).
EXPECTED = {
    "zh": [
        "0.50%，封顶 ¥20.00",  # debit rate and cap
        "0.60%",  # credit
        "0.38%",  # QR
        "0.03%",  # D0 surcharge
        "¥299.00/台",  # deposit ...
        "90 日内累计交易满 ¥200,000.00 全额退还",  # ... and when it comes back
        "3 台合计 ¥897.00",
        "¥30.00/台/月",  # rent ...
        "当月交易额满 ¥50,000.00 免收当月月租",  # ... and its waiver
        "¥120.00/台/年",  # maintenance
        "D0（当日结算）",
        "周末及法定节假日照常结算",
        "6222 **** **** 1234",
        "中国工商银行上海南京东路支行",
        "有效期为 36 个月，自2026年12月1日起至2029年11月30日止",
        "甲方每日对乙方的交易数据进行备份",
        "原交易日起 180 日内",
        "原交易已收取的手续费不予退还",
        "首先友好协商解决",
        "甲方住所地有管辖权的人民法院提起诉讼",
        "上海小笼包餐饮有限公司",
        "标准商户套餐（方案代码 STANDARD，第 1 版）",
        "2026年11月22日 14:05（北京时间）",
        "以中文文本为准",
    ],
    "en": [
        "0.50%, capped at ¥20.00 per transaction",
        "0.60%",
        "0.38%",
        "0.03%",
        "¥299.00 per terminal",
        "Refunded in full once the terminal's transactions reach ¥200,000.00 within 90 days",
        "¥897.00 in total for 3 terminals",
        "¥30.00 per terminal per month",
        "Waived for a month in which the terminal's transactions reach ¥50,000.00",
        "¥120.00 per terminal per year",
        "D0 (same-day settlement)",
        "including weekends and public holidays",
        "6222 **** **** 1234",
        "中国工商银行上海南京东路支行",
        "a term of 36 months, from 1 December 2026 to 30 November 2029",
        "backs up Party B's transaction data daily",
        "Within 180 days of the original transaction",
        "Fees already charged on the original transaction are not refunded",
        "friendly negotiation",
        "the people's court having jurisdiction over the place of Party A's domicile",
        "Puhui Rural Commercial Bank Co., Ltd.",
        "Standard merchant plan (plan code STANDARD, version 1)",
        "22 November 2026, 14:05 Beijing time",
        "the Chinese text prevails",
    ],
}


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def html_text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def pdf_pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def pdfs() -> dict[str, bytes]:
    return {lang: render_pdf(make_terms(language=lang)) for lang in ("zh", "en")}


# ------------------------------------------------------------------------- HTML


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_html_states_every_term(lang: str) -> None:
    text = squash(html_text(render_html(make_terms(language=lang))))
    missing = [phrase for phrase in EXPECTED[lang] if squash(phrase) not in text]
    assert missing == []


def test_html_is_a_fragment_without_inline_style_or_script() -> None:
    fragment = render_html(make_terms())
    assert fragment.startswith('<article class="contract" lang="zh-CN">')
    assert fragment.rstrip().endswith("</article>")
    assert "style=" not in fragment
    assert "<script" not in fragment
    assert re.search(r"\son\w+=", fragment) is None
    assert '<table class="contract-table contract-table-fees">' in fragment
    assert fragment.count('<section class="contract-clause"') == 12
    assert "<strong>" in fragment  # terms of material interest are set in bold


def test_html_escapes_merchant_text() -> None:
    hostile = dataclasses.replace(
        make_terms().merchant, legal_name="<script>alert(1)</script>", business_name='"&<b>'
    )
    fragment = render_html(make_terms(merchant=hostile))
    assert "<script>" not in fragment
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment
    assert "<b>" not in fragment


def test_t1_settlement_says_t_plus_1_and_the_surcharge_does_not_apply() -> None:
    zh = squash(html_text(render_html(make_terms(settlement_cycle="T1"))))
    en = squash(html_text(render_html(make_terms(settlement_cycle="T1", language="en"))))
    assert squash("结算周期为 T+1") in zh
    assert squash("本协议约定 T+1 结算，不适用") in zh
    assert squash("The settlement cycle is T+1") in en
    assert "当日结算" not in zh


def test_amendment_refers_to_the_previous_version() -> None:
    terms = make_terms(version=2, amendment=AMENDMENT)
    zh = squash(html_text(render_html(terms)))
    assert squash("取代协议编号 898-2026-000123 第 1 版") in zh
    assert "ab" * 32 in zh
    assert squash("结算周期由 D0 调整为 T+1。") in zh
    en = squash(html_text(render_html(dataclasses.replace(terms, language="en"))))
    assert squash("supersedes version 1 of contract 898-2026-000123") in en
    assert squash("Settlement cycle changed from D0 to T+1.") in en


def test_free_plan_items_say_so() -> None:
    fees = dataclasses.replace(
        make_terms().fees,
        deposit_fen=0,
        deposit_refund_volume_fen=None,
        deposit_refund_days=None,
        monthly_rent_fen=0,
        rent_waiver_volume_fen=None,
        maintenance_fee_fen=0,
        debit_cap_fen=None,
    )
    text = squash(html_text(render_html(make_terms(fees=fees))))
    assert squash("甲方不向乙方收取终端押金") in text
    assert squash("甲方不收取终端月租") in text
    assert squash("甲方免费提供第五条约定的维护服务") in text
    assert "封顶" not in text


# -------------------------------------------------------------------------- PDF


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pdf_states_every_term(pdfs: dict[str, bytes], lang: str) -> None:
    text = squash("".join(pdf_pages(pdfs[lang])))
    missing = [phrase for phrase in EXPECTED[lang] if squash(phrase) not in text]
    assert missing == []


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pdf_is_a4_with_numbered_pages_and_a_header_on_each(
    pdfs: dict[str, bytes], lang: str
) -> None:
    reader = PdfReader(io.BytesIO(pdfs[lang]))
    pages = [page.extract_text() for page in reader.pages]
    total = len(pages)
    assert total >= 2
    for number, text in enumerate(pages, start=1):
        flat = squash(text)
        if lang == "zh":
            assert squash(f"第 {number} 页 / 共 {total} 页") in flat
            assert squash("协议编号 898-2026-000123 · 第 1 版") in flat
        else:
            assert squash(f"Page {number} of {total}") in flat
            assert squash("Contract No. 898-2026-000123 · Version 1") in flat
    width, height = (float(v) for v in reader.pages[0].mediabox[2:])
    assert (round(width), round(height)) == (595, 842)  # A4 in points


def test_pdf_metadata_comes_from_the_terms(pdfs: dict[str, bytes]) -> None:
    meta = PdfReader(io.BytesIO(pdfs["zh"])).metadata
    assert meta is not None
    assert meta.creation_date == dt.datetime(2026, 11, 22, 6, 5, 30, tzinfo=dt.UTC)
    assert meta.producer == "PosHub"
    assert "898-2026-000123" in (meta.title or "")


def test_same_terms_give_the_same_bytes(pdfs: dict[str, bytes]) -> None:
    assert render_pdf(make_terms()) == pdfs["zh"]
    assert render_pdf(make_terms(language="en")) == pdfs["en"]


def test_same_bytes_in_a_fresh_process_with_another_hash_seed(pdfs: dict[str, bytes]) -> None:
    """Nothing may depend on the process: caches, set order, time, temp paths."""
    script = (
        "import hashlib\n"
        "from poshub.contracts.document import render_pdf\n"
        "from tests.contracts.test_document import make_terms\n"
        "print(hashlib.sha256(render_pdf(make_terms())).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(  # noqa: S603 - fixed script, our own interpreter
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip() == hashlib.sha256(pdfs["zh"]).hexdigest()


def test_a_changed_rate_changes_the_hash(pdfs: dict[str, bytes]) -> None:
    fees = dataclasses.replace(make_terms().fees, credit_rate=Decimal("0.0061"))
    changed = render_pdf(make_terms(fees=fees))
    assert hashlib.sha256(changed).digest() != hashlib.sha256(pdfs["zh"]).digest()
    assert "0.61%" in "".join(pdf_pages(changed))


def test_pdf_of_an_amendment_refers_to_the_previous_version() -> None:
    text = squash("".join(pdf_pages(render_pdf(make_terms(version=2, amendment=AMENDMENT)))))
    assert squash("取代协议编号 898-2026-000123 第 1 版") in text
    assert squash("第 2 版") in text
    assert "ab" * 32 in text


def test_amounts_are_never_split_across_lines(pdfs: dict[str, bytes]) -> None:
    for lang in ("zh", "en"):
        lines = "\n".join(pdf_pages(pdfs[lang])).splitlines()
        found = {m for line in lines for m in re.findall(r"¥[\d,]+\.\d\d", line)}
        assert {"¥20.00", "¥299.00", "¥200,000.00", "¥50,000.00", "¥120.00"} <= found
        assert not any(line.rstrip().endswith("¥") for line in lines)


def test_missing_configured_font_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = "/nonexistent/NotoSansCJK-Regular.ttc"
    monkeypatch.setenv(fonts.FONT_ENV_VAR, missing)
    with pytest.raises(ContractFontMissing, match="fonts-noto-cjk") as caught:
        render_pdf(make_terms())
    assert missing in str(caught.value)


def test_no_font_installed_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(fonts.FONT_ENV_VAR, raising=False)
    monkeypatch.setattr(
        fonts,
        "DEBIAN_FONT_CANDIDATES",
        ((tmp_path / "NotoSansCJK-Regular.ttc", tmp_path / "NotoSansCJK-Bold.ttc"),),
    )
    monkeypatch.setattr(fonts, "packaged_font", lambda: None)
    with pytest.raises(ContractFontMissing, match="apt-get install fonts-noto-cjk") as caught:
        render_pdf(make_terms())
    assert fonts.PYPI_PACKAGE in str(caught.value)


def test_without_a_system_font_the_pypi_font_sets_chinese_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No POSHUB_CJK_FONT, no fonts-noto-cjk: the noto-cjk-sans-otc package's collection, its
    Simplified Chinese face (not the Japanese one first in the file), for regular and bold."""
    monkeypatch.delenv(fonts.FONT_ENV_VAR, raising=False)
    monkeypatch.setattr(
        fonts,
        "DEBIAN_FONT_CANDIDATES",
        ((tmp_path / "NotoSansCJK-Regular.ttc", tmp_path / "NotoSansCJK-Bold.ttc"),),
    )
    packaged = fonts.packaged_font()
    assert packaged is not None
    assert packaged.name == fonts.PYPI_FONT_FILE
    found = fonts.discover_cjk_fonts()
    assert found.regular == found.bold == fonts.FontFace(packaged, 2)
    collection = TTCollection(str(packaged), lazy=True)
    assert collection.fonts[2]["name"].getDebugName(1) == "Noto Sans CJK SC"
    collection.close()

    pdf = render_pdf(make_terms())
    assert pdf.startswith(b"%PDF-")
    assert b"+NotoSansCJKSC" in pdf  # the embedded subsets are named after their face
    assert b"NotoSansCJKJP" not in pdf
    text = squash("".join(pdf_pages(pdf)))
    missing = [phrase for phrase in EXPECTED["zh"] if squash(phrase) not in text]
    assert missing == []


def test_a_character_the_font_lacks_is_refused_not_dropped() -> None:
    merchant = dataclasses.replace(make_terms().merchant, legal_name="\U0002a6a5记餐饮店")
    with pytest.raises(ContractGlyphMissing, match="U\\+2A6A5"):
        render_pdf(make_terms(merchant=merchant))
    assert "\U0002a6a5记" in render_html(make_terms(merchant=merchant))  # browsers have fallbacks


def test_configured_font_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    serif = Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc")
    if not serif.is_file():
        pytest.skip("Noto Serif CJK not installed")
    monkeypatch.setenv(fonts.FONT_ENV_VAR, str(serif))
    found = fonts.discover_cjk_fonts()
    assert found.regular.path == serif
    assert found.bold.path == serif.with_name("NotoSerifCJK-Bold.ttc")
    pdf = render_pdf(make_terms())
    assert b"NotoSerifCJKSC" in pdf
    assert "封顶" in "".join(pdf_pages(pdf))


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"version": 2}, "needs an amendment"),
        ({"amendment": AMENDMENT}, "cannot amend"),
        ({"generated_at": dt.datetime(2026, 11, 22, 6, 5)}, "timezone-aware"),
        ({"end_date": dt.date(2026, 11, 30)}, "end_date"),
        ({"terminals": ()}, "at least one terminal"),
        (
            {
                "settlement_account": SettlementAccount(
                    bank_name="b", account_name="n", account_number_masked="6222021234567890123"
                )
            },
            "account number must be masked",
        ),
    ],
)
def test_invalid_terms_are_refused(overrides: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        make_terms(**overrides)


def test_unmasked_resident_id_is_refused() -> None:
    merchant = dataclasses.replace(
        make_terms().merchant, identifier_kind="resident_id", identifier_masked="34010419900307123X"
    )
    with pytest.raises(ValueError, match="resident ID"):
        make_terms(merchant=merchant)
    masked = dataclasses.replace(merchant, identifier_masked="340104********123X")
    assert "340104********123X" in render_html(make_terms(merchant=masked))


def test_fee_terms_from_a_catalogue_plan() -> None:
    plan = FeePlan(
        code="MICRO",
        version=3,
        effective_from=dt.date(2026, 1, 1),
        name_zh="小微商户套餐",
        name_en="Micro merchant plan",
        applicant_kinds="individual",
        debit_rate=Decimal("0.0050"),
        debit_cap_fen=None,
        credit_rate=Decimal("0.0060"),
        qr_rate=Decimal("0.0038"),
        d0_surcharge_rate=Decimal("0.0005"),
        deposit_fen=9900,
        deposit_refund_volume_fen=5_000_000,
        deposit_refund_days=90,
        monthly_rent_fen=0,
        rent_waiver_volume_fen=None,
        maintenance_fee_fen=0,
    )
    fees = FeeTerms.from_plan(plan)
    assert (fees.code, fees.version, fees.debit_cap_fen, fees.deposit_fen) == (
        "MICRO",
        3,
        None,
        9900,
    )
    assert "0.05%" in render_html(make_terms(fees=fees))


# ------------------------------------------------------------------ formatting


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        ("0.006", "0.60%"),
        ("0.0060", "0.60%"),
        ("0.005", "0.50%"),
        ("0.0038", "0.38%"),
        ("0.00385", "0.385%"),
        ("0.000125", "0.0125%"),
        ("0", "0.00%"),
    ],
)
def test_format_rate_never_rounds(rate: str, text: str) -> None:
    assert format_rate(Decimal(rate)) == text


def test_format_date() -> None:
    assert format_date(dt.date(2026, 11, 22), "zh") == "2026年11月22日"
    assert format_date(dt.date(2026, 11, 2), "en") == "2 November 2026"
