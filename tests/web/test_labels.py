"""No raw codes in the Chinese back office: audit actions, actors, entities and GB/T 2260
region codes are shown as words a person reads."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi.testclient import TestClient

from poshub.core.audit import ActorKind
from poshub.core.regions import display_name
from poshub.web.labels import ACTOR_KIND_LABELS, AUDIT_ACTION_LABELS, AUDIT_ENTITY_LABELS
from tests.factories import approved_merchant, login, submitted_application

PACKAGE = Path(__file__).resolve().parents[2] / "poshub"


def _recorded_actions() -> dict[str, str]:
    """Every literal audit action in the source: ``audit.record(s, actor, "x.y", "x", ...)``
    and ``audit.Action(actor, "x.y", "x", ...)``, with the file it is in."""
    found: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            index = {"record": 2, "Action": 1}.get(name)
            if index is None or len(node.args) <= index + 1:
                continue
            action, entity = node.args[index], node.args[index + 1]
            if isinstance(action, ast.Constant) and isinstance(action.value, str):
                found[action.value] = str(path.relative_to(PACKAGE))
                if isinstance(entity, ast.Constant) and isinstance(entity.value, str):
                    found["entity:" + entity.value] = str(path.relative_to(PACKAGE))
    return found


def test_every_audit_action_and_entity_in_the_source_has_a_label() -> None:
    found = _recorded_actions()
    assert len(found) > 30  # the scan sees the calls
    missing = {
        code: where
        for code, where in found.items()
        if (
            code.removeprefix("entity:") not in AUDIT_ENTITY_LABELS
            if code.startswith("entity:")
            else code not in AUDIT_ACTION_LABELS
        )
    }
    assert not missing, missing
    assert set(ACTOR_KIND_LABELS) == {str(kind) for kind in ActorKind}


def test_region_codes_read_as_places() -> None:
    assert display_name("340104") == "合肥市蜀山区"
    assert display_name("3401") == "安徽省合肥市"
    assert display_name("110101") == "北京市东城区"
    assert display_name("999999") is None
    assert display_name("34") is None


def test_the_chinese_audit_log_shows_actions_not_codes(client: TestClient) -> None:
    submitted_application(client)
    login(client, "auditor")
    page = client.get("/admin/audit?lang=zh_CN").text
    assert "申请已提交" in page
    assert "<code>application.submitted</code>" not in page
    assert ">staff:" not in page
    assert ">applicant:" not in page


def test_merchant_pages_show_the_area_by_name(client: TestClient) -> None:
    _created, mid = approved_merchant(client)
    login(client, "reviewer")
    listing = client.get("/admin/merchants?lang=zh_CN").text
    assert "合肥市蜀山区" in listing
    assert "<td>340104</td>" not in listing
    detail = client.get(f"/admin/merchants/{mid}?lang=zh_CN").text
    assert "合肥市蜀山区" in detail
    assert ">340104<" not in detail
