"""``/api/v1/docs`` works: Swagger UI from static/vendor, inside the site's CSP."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser

from poshub.web.pages.apidocs import SWAGGER_UI_DIR, SWAGGER_UI_VERSION
from tests.web.conftest import LiveServer

VENDOR = Path(__file__).resolve().parents[2] / "poshub" / "web" / "static" / "vendor"


def test_docs_page_names_only_same_origin_files_and_no_inline_script(client: TestClient) -> None:
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources
    assert all(s.startswith("/") or s.startswith("data:") for s in sources), sources
    assert re.search(r"<script>(?!</script>)", page.text) is None  # no inline code
    for source in sources:
        if source.startswith("/static/"):
            assert client.get(source).status_code == 200, source


def test_vendored_swagger_ui_matches_its_recorded_version_and_hashes() -> None:
    versions = (VENDOR / "VERSIONS.md").read_text(encoding="utf-8")
    directory = VENDOR / f"swagger-ui-{SWAGGER_UI_VERSION}"
    assert SWAGGER_UI_DIR.endswith(directory.name)
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
        assert f"| swagger-ui-{SWAGGER_UI_VERSION}/{name} | {SWAGGER_UI_VERSION} |" in versions
        assert digest in versions, name
    assert (directory / "LICENSE").is_file()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_swagger_ui_renders_the_operations_in_chromium(
    browser: Browser, live_server: LiveServer, tmp_path: Path
) -> None:
    context = browser.new_context(base_url=live_server.url)
    errors: list[str] = []
    context.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page = context.new_page()
    page.goto("/api/v1/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    assert page.locator(".opblock").count() > 50
    assert page.get_by_text("/api/v1/applications", exact=True).first.is_visible()
    page.screenshot(path=str(tmp_path / "apidocs.png"))
    Path("/tmp/issue8-shots").mkdir(exist_ok=True)
    page.screenshot(path="/tmp/issue8-shots/apidocs.png")
    context.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_every_api_operation_has_a_summary_of_its_own(client: TestClient) -> None:
    """Swagger UI lists what each route does, not FastAPI's title-cased function name."""
    schema = client.get("/api/v1/openapi.json").json()
    generated = {
        f"{method.upper()} {path}": operation["summary"]
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        # FastAPI's fallback: the endpoint function's name, title-cased.
        if operation["summary"]
        == operation["operationId"].split("_api_v1")[0].split("_")[0].title()
        or operation["summary"].lower().replace(" ", "_") in operation["operationId"]
    }
    assert not generated, generated
    login = schema["paths"]["/api/v1/auth/login"]["post"]
    assert login["summary"] != "Login"
