"""/docs and /redoc work offline, and the OpenAPI schema describes the service truthfully.

The pages are fetched from an in-process app with every asset they name: each must be served by
the service itself (no URL to another host in the HTML). The schema must declare the bearer
scheme (Swagger UI's Authorize button), a description and a working example for every request
field of the wire models, and per route only the errors that route can answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mentor_client import protocol
from mentor_server.api import ServiceSettings, create_app
from mentor_server.api.docs_ui import ASSETS_URL, BEARER_SCHEME, ROUTE_ERRORS

_URL_ATTRIBUTE = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: ?'([^']+)'""")
_WIRE_REQUESTS = [
    protocol.ScoreRequest,
    protocol.ScoreItem,
    protocol.ReferenceModel,
    protocol.ReferenceCallModel,
    protocol.ValidateSpecRequest,
    protocol.ExecuteToolRequest,
    protocol.OpenRLHFRequest,
]


@pytest.fixture
def docs_client(make_client: Callable[..., TestClient]) -> TestClient:
    # No lifespan: the pages and the schema need no scoring process.
    return make_client(lifespan=False)


def _urls(html: str) -> list[str]:
    return [a or b for a, b in _URL_ATTRIBUTE.findall(html)]


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.offline.js", "favicon.png"}),
    ],
    ids=["swagger-ui", "redoc"],
)
def test_docs_pages_and_their_assets_are_served_locally(docs_client: TestClient, page: str, assets: set[str]) -> None:
    response = docs_client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    # Nothing on the page may reach another host (the CDN FastAPI uses by default, web fonts).
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), html
    urls = _urls(html)
    assert "/openapi.json" in urls
    served = set()
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = docs_client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url  # a real file, not an error page
        served.add(url.rsplit("/", 1)[-1])
    assert assets <= served


def test_swagger_ui_is_configured_offline(docs_client: TestClient) -> None:
    html = docs_client.get("/docs").text
    # Swagger UI otherwise shows a badge fetched from its online validator.
    assert '"validatorUrl": null' in html
    script = docs_client.get(next(u for u in _urls(html) if u.endswith("swagger-ui-bundle.js")))
    assert "SwaggerUIBundle" in script.text
    assert "javascript" in script.headers["content-type"]


def _schema(client: TestClient, **headers: str) -> dict[str, Any]:
    response = client.get("/openapi.json", headers=headers)
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def test_the_bearer_scheme_is_declared_and_says_keys_are_off(docs_client: TestClient) -> None:
    schema = _schema(docs_client)
    scheme = schema["components"]["securitySchemes"][BEARER_SCHEME]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "no API keys" in scheme["description"]
    # Without keys no operation claims to need one.
    assert not any("security" in op for item in schema["paths"].values() for op in item.values())


def test_with_keys_the_scheme_guards_every_route_but_the_probes(make_client: Callable[..., TestClient]) -> None:
    secured = make_client(lifespan=False, api_keys=["docs-key"])
    # The pages and the schema are public (a browser cannot send the header on a page load) ...
    assert secured.get("/docs").status_code == 200
    assert secured.get("/openapi.json").status_code == 200
    assert secured.get(f"{ASSETS_URL}/swagger-ui-bundle.js").status_code == 200
    # ... the routes they describe are not, and nothing near the docs' paths is opened by them.
    assert secured.get("/v1/presets").status_code == 401
    assert secured.get("/docs-assets").status_code == 401
    assert secured.get("/docsx").status_code == 401
    schema = _schema(secured, Authorization="Bearer docs-key")
    assert "requires an API key" in schema["components"]["securitySchemes"][BEARER_SCHEME]["description"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            guarded = path not in ("/healthz", "/readyz")
            assert ({BEARER_SCHEME: []} in operation.get("security", [])) == guarded, (method, path)
            assert ("401" in operation["responses"]) == guarded, (method, path)


def _model_nodes(node: Any, title: str) -> list[dict[str, Any]]:
    """Every place the schema describes the model `title` (as a component or inlined: ScoreItem
    and the reference models are documented inside ScoreRequest's `items`)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("title") == title and "properties" in node:
            found.append(node)
        for value in node.values():
            found += _model_nodes(value, title)
    elif isinstance(node, list):
        for value in node:
            found += _model_nodes(value, title)
    return found


@pytest.mark.parametrize("model", _WIRE_REQUESTS, ids=lambda m: m.__name__)
def test_every_request_field_has_a_description_and_an_example(docs_client: TestClient, model: type) -> None:
    nodes = _model_nodes(_schema(docs_client), model.__name__)
    assert nodes, f"{model.__name__} is not in the schema"
    for node in nodes:
        assert set(node["properties"]) == set(model.model_fields)  # type: ignore[attr-defined]
        for name, field in node["properties"].items():
            assert field.get("description"), f"{model.__name__}.{name} has no description"
            assert field.get("examples"), f"{model.__name__}.{name} has no example"


def test_the_examples_are_valid_requests(client: TestClient) -> None:
    """The examples in the schema are what a researcher will paste into "Try it out"."""

    def example(model: type, **replace: Any) -> dict[str, Any]:
        fields = model.model_fields  # type: ignore[attr-defined]
        return {**{name: field.examples[0] for name, field in fields.items()}, **replace}

    score = client.post("/v1/score", json=example(protocol.ScoreRequest, spec=None, tools=None))
    assert score.status_code == 200, score.text
    (result,) = score.json()["results"]
    assert result["error"] is None and result["reward"] > 1.0, result  # right answer, right tool
    inline = client.post("/v1/score", json=example(protocol.ScoreRequest, preset=None, overrides=None, toolset=None))
    assert inline.status_code == 200, inline.text
    validate = client.post("/v1/specs/validate", json=example(protocol.ValidateSpecRequest, spec=None))
    assert validate.status_code == 200, validate.text
    tool = client.post("/v1/tools/execute", json=example(protocol.ExecuteToolRequest))
    assert tool.status_code == 200 and tool.json()["result"] == 84, tool.text
    openrlhf = client.post("/v1/openrlhf", json=example(protocol.OpenRLHFRequest))
    assert openrlhf.status_code == 200, openrlhf.text
    item = example(protocol.ScoreItem, reference=None)
    assert protocol.ScoreItem.model_validate(item).teacher_tools == ["multiply"]


def test_each_route_declares_only_the_errors_it_can_answer(docs_client: TestClient) -> None:
    schema = _schema(docs_client)
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            declared = {int(code) for code in operation["responses"] if code[0] in "45"}
            has_body = "requestBody" in operation
            assert (method.upper(), path) in ROUTE_ERRORS, f"{method} {path}: add it to docs_ui.ROUTE_ERRORS"
            if not has_body:
                assert not declared & {400, 413}, (method, path, declared)
                assert "query parameter" in operation["responses"]["422"]["description"]
            else:
                assert {413, 422} <= declared, (method, path)
    healthz = schema["paths"]["/healthz"]["get"]["responses"]
    assert set(healthz) == {"200", "422"}
    assert set(schema["paths"]["/v1/presets"]["get"]["responses"]) == {"200", "401", "422", "500"}
    assert "404" in schema["paths"]["/v1/presets/{name}"]["get"]["responses"]
    assert {"404", "503"} <= set(schema["paths"]["/v1/records"]["get"]["responses"])


@pytest.mark.parametrize(
    ("method", "url", "path", "status"),
    [
        ("GET", "/v1/presets/no-such-preset", "/v1/presets/{name}", 404),
        ("GET", "/v1/records", "/v1/records", 404),  # recording is off in this app
        ("GET", "/v1/presets?bogus=1", "/v1/presets", 422),
        ("GET", "/healthz?bogus=1", "/healthz", 422),
        ("POST", "/v1/score", "/v1/score", 400),
    ],
    ids=["unknown-preset", "records-off", "unknown-query", "healthz-query", "score-unknown-preset"],
)
def test_declared_statuses_are_answered(docs_client: TestClient, method: str, url: str, path: str, status: int) -> None:
    """A sample of the table's claims, each made to happen and found in the schema."""
    body = {"preset": "no-such-preset", "items": []} if method == "POST" else None
    response = docs_client.request(method, url, json=body)
    assert response.status_code == status, response.text
    assert str(status) in _schema(docs_client)["paths"][path][method.lower()]["responses"]


def test_the_default_app_has_its_docs() -> None:
    # create_app wires the docs itself: no fixture, no settings.
    app = create_app(ServiceSettings(workers=1))
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/docs", "/redoc", "/docs-assets"} <= paths


def test_without_the_assets_package_the_service_runs_without_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    from mentor_server.api import docs_ui

    monkeypatch.setattr(docs_ui, "_assets_dir", lambda: None)
    client = TestClient(create_app(ServiceSettings(workers=1)), raise_server_exceptions=False)
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/healthz").status_code == 200
