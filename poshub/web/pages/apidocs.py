"""``/api/v1/docs``: Swagger UI served from ``static/vendor`` inside the site's CSP.

FastAPI's built-in page loads Swagger UI from a CDN and starts it with an inline script;
both are refused by our ``Content-Security-Policy`` (``script-src 'self'``), so the page
was blank. This page names only same-origin files: the vendored bundle (version in
``static/vendor/VERSIONS.md``) and ``static/apidocs.js``, which reads the schema's URL from
a data attribute instead of an inline script.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from poshub.web.deps import PUBLIC

SWAGGER_UI_VERSION = "5.35.0"
SWAGGER_UI_DIR = f"/static/vendor/swagger-ui-{SWAGGER_UI_VERSION}"
OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/v1/docs"

router = APIRouter(include_in_schema=False)

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>PosHub API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{SWAGGER_UI_DIR}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{OPENAPI_URL}"></div>
  <script src="{SWAGGER_UI_DIR}/swagger-ui-bundle.js"></script>
  <script src="/static/apidocs.js"></script>
</body>
</html>
"""


@router.get(DOCS_URL, dependencies=[PUBLIC])
def api_docs() -> HTMLResponse:
    return HTMLResponse(_PAGE)
