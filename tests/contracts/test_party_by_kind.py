"""Party B and the clauses that follow the merchant's kind, in the contract the merchant
downloads (PBOC 2013 No. 9): a business is named by its business name with its legal
representative or operator beside it; an individual is the person."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.factories import approved_merchant, bearer, credit_code, generate_contract

BUSINESS = "合肥蜀山明辉便利超市"
PERSON = "陈明"


def _enterprise_code() -> str:
    return credit_code(prefix="91")


def _overrides(kind: str) -> dict[str, Any]:
    if kind == "enterprise":
        return {
            "kind": kind,
            "business_name": "合肥明辉商贸有限公司",
            "uscc": _enterprise_code(),
            "settlement_account": {
                "bank_name": "徽商银行合肥蜀山支行",
                "account_name": "合肥明辉商贸有限公司",
                "account_number": "34050146860800001234",
            },
        }
    if kind == "individual":
        return {"kind": kind, "business_name": "陈明小吃摊"}
    return {"kind": kind}


def _contract_text(client: TestClient, kind: str) -> tuple[str, str]:
    """The merchant's view of its generated contract: (HTML text, PDF text), squashed."""
    created, mid = approved_merchant(client, **_overrides(kind))
    generate_contract(client, mid, plan="MICRO" if kind == "individual" else "STANDARD")
    base = f"/api/v1/applications/{created['id']}/contract"
    html = client.get(f"{base}/html", headers=bearer(created["access_token"]))
    assert html.status_code == 200, html.text
    pdf = client.get(f"{base}/pdf", headers=bearer(created["access_token"]))
    assert pdf.status_code == 200, pdf.text
    pdf_text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    html_text = re.sub(r"<[^>]+>", " ", html.text)
    return re.sub(r"\s+", "", html_text), re.sub(r"\s+", "", pdf_text)


@pytest.mark.parametrize("view", [0, 1], ids=["html", "pdf"])
def test_an_enterprise_is_party_b_by_its_name_with_its_legal_representative(
    client: TestClient, view: int
) -> None:
    text = _contract_text(client, "enterprise")[view]
    assert "商户名称合肥明辉商贸有限公司" in text
    assert f"法定代表人{PERSON}" in text
    assert f"商户名称{PERSON}" not in text
    assert "单位银行结算账户，户名应与乙方商户名称一致" in text
    assert "不得以个人银行账户或他人账户作为结算账户" in text
    assert "乙方（盖章）" in text
    assert "同名个人银行结算账户" not in text


def test_an_individual_business_may_settle_to_the_operators_own_account(
    client: TestClient,
) -> None:
    text, pdf_text = _contract_text(client, "individual_business")
    for seen in (text, pdf_text):
        assert f"商户名称{BUSINESS}" in seen
        assert f"经营者{PERSON}" in seen
        assert "或乙方经营者本人名下的同名个人银行结算账户" in seen
        assert f"商户名称{PERSON}" not in seen


def test_an_individual_is_party_b_in_person(client: TestClient) -> None:
    text, pdf_text = _contract_text(client, "individual")
    for seen in (text, pdf_text):
        assert f"姓名{PERSON}" in seen
        assert "乙方本人名下的个人银行结算账户，户名应与乙方姓名一致" in seen
        assert "单位银行结算账户" not in seen
        assert "法定代表人" not in seen.split("乙方（特约商户）")[1].split("甲方是依法取得")[0]
        assert "乙方（签字）" in seen
