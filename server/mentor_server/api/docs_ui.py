"""The service's own API documentation: Swagger UI at `/docs`, ReDoc at `/redoc`, both offline.

FastAPI's default pages load their JavaScript and CSS from a CDN, so on an offline GPU cluster
they stay blank. Here the same pages load the files shipped in the `fastapi-offline` package
(Swagger UI, ReDoc and a favicon, served under `/docs-assets/`), and nothing on either page
reaches another host: Swagger UI's online validator badge is off, ReDoc's web fonts are off.

The OpenAPI schema is also made to say what the service really does:
- a bearer security scheme is always declared, so Swagger UI shows its Authorize button; its
  description says whether this service requires a key (with keys configured, the routes
  also name the scheme: `create_app` adds FastAPI's `HTTPBearer` to them);
- each route lists only the errors it can answer (`ROUTE_ERRORS`): every router declares the
  whole `ERROR_RESPONSES` table, which would otherwise promise a 413 or a body error on
  `GET /v1/presets`. A route without a body answers 422 only for its query parameters.

Without the package (an environment assembled by hand) the service starts without the two
pages and logs why. The pages, their assets and `/openapi.json` need no key (a browser cannot send
the header on a page load; see `guards.DOC_PATHS`); the calls "Try it out" makes carry the key
given to Authorize.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from mentor_client.protocol import API_PREFIX

from .guards import OPEN_PATHS

log = logging.getLogger("mentor_server.api")

ASSETS_URL = "/docs-assets"
"""Where the Swagger UI / ReDoc files are served (one folder of the `fastapi-offline` package)."""

BEARER_SCHEME = "HTTPBearer"
"""The scheme's name: the one FastAPI's `HTTPBearer` dependency declares when keys are configured."""

_QUERY_422 = "A query parameter is unknown, given twice, or not of its type (e.g. `step=7.0`)."

ROUTE_ERRORS: dict[tuple[str, str], frozenset[int]] = {
    ("POST", f"{API_PREFIX}/score"): frozenset({400, 503}),
    ("POST", f"{API_PREFIX}/specs/validate"): frozenset({400}),
    ("POST", f"{API_PREFIX}/tools/execute"): frozenset({400, 503}),
    ("POST", f"{API_PREFIX}/openrlhf"): frozenset({400, 503}),
    ("GET", f"{API_PREFIX}/presets"): frozenset(),
    ("GET", f"{API_PREFIX}/presets/{{name}}"): frozenset({404}),
    ("GET", f"{API_PREFIX}/toolsets"): frozenset(),
    ("GET", f"{API_PREFIX}/toolsets/{{name}}"): frozenset({404}),
    ("GET", f"{API_PREFIX}/records"): frozenset({404, 503}),
    ("GET", "/healthz"): frozenset(),
    ("GET", "/readyz"): frozenset({503}),
}
"""Per route, the statuses it answers beyond the ones every route may (401 where a key guards it,
422, 500, and 413 with a body). A route missing here keeps the list it declares."""


def _assets_dir() -> Path | None:
    """The package's folder of UI files, or None where it is not installed (a hand-made
    environment such as the GPU machine's carried wheels): the service then runs without pages."""
    try:
        return Path(str(files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        return None


def route_error_statuses(method: str, path: str, *, has_body: bool) -> frozenset[int] | None:
    """The error statuses a route can answer, or None for a route `ROUTE_ERRORS` does not know."""
    extra = ROUTE_ERRORS.get((method, path))
    if extra is None:
        return None
    common = {422, 500} | ({413} if has_body else set()) | (set() if path in OPEN_PATHS else {401})
    return frozenset(common | extra)


def _trim_route_errors(schema: dict[str, Any]) -> None:
    """Drop from each operation the error statuses its route cannot answer (on the generated
    schema: FastAPI builds included routes lazily, so their objects are not the place)."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            has_body = "requestBody" in operation
            statuses = route_error_statuses(method.upper(), path, has_body=has_body)
            if statuses is None:
                continue
            responses = operation.get("responses", {})
            for code in [c for c in responses if c.isdigit() and int(c) >= 400 and int(c) not in statuses]:
                del responses[code]
            if not has_body and "422" in responses:
                responses["422"]["description"] = _QUERY_422


def _bearer_description(secured: bool) -> str:
    if secured:
        return (
            "This service requires an API key: send `Authorization: Bearer <key>` on every route but "
            "/healthz and /readyz. Click Authorize and paste one of the keys in the service's `api_keys` "
            "setting (MENTOR_API_KEYS)."
        )
    return (
        "This service has no API keys configured, so every route is open and a key is ignored. "
        "Set `api_keys` (MENTOR_API_KEYS) to require one."
    )


def _describe_schema(app: FastAPI, secured: bool) -> None:
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_schema()
            _trim_route_errors(schema)
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            scheme = schemes.setdefault(BEARER_SCHEME, {"type": "http", "scheme": "bearer"})
            scheme["description"] = _bearer_description(secured)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema


_REDOC_LOGO_URL = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='0' height='0'/%3E"


@cache
def _offline_redoc_js(path: Path) -> str:
    """ReDoc's bundle with the one URL it fetches from another host (the logo of its menu's
    footer, drawn unconditionally) replaced by an empty inline image: offline, that request
    would fail and log an error on every load of /redoc."""
    return path.read_text(encoding="utf-8").replace(_REDOC_LOGO_URL, _EMPTY_IMAGE)


def install_api_docs(app: FastAPI, *, secured: bool) -> None:
    """Serve `/docs` and `/redoc` from local files and make the schema say what the routes do.

    Call it on an app built with `docs_url=None, redoc_url=None`, after its routers are included.
    """
    _describe_schema(app, secured)
    assets = _assets_dir()
    if assets is None:
        log.warning("/docs and /redoc are off: the package with their files (fastapi-offline) is not installed")
        return
    redoc_js_path = assets / "redoc.standalone.js"

    # Registered before the mount below, which would otherwise answer for this path too.
    @app.get(f"{ASSETS_URL}/redoc.offline.js", include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(_offline_redoc_js(redoc_js_path), media_type="text/javascript")

    app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")
    # Swagger UI would show a badge fetched from its online validator; keep the key across reloads.
    parameters = {**swagger_ui_default_parameters, "validatorUrl": None, "persistAuthorization": True}
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=parameters,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.offline.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
