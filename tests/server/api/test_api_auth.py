"""API keys: every endpoint but the health probes needs `Authorization: Bearer <key>`."""

from __future__ import annotations

from typing import Any

import pytest
from _service_helpers import assert_error
from fastapi.testclient import TestClient

from mentor_server.api.guards import ApiKeyMiddleware

KEYS = ["alpha-key", "beta-key"]


@pytest.fixture(scope="module")
def secured() -> TestClient:
    from mentor_server.api import ServiceSettings, create_app

    # No lifespan: these requests are decided before any scoring happens.
    return TestClient(create_app(ServiceSettings(workers=1, api_keys=KEYS)), raise_server_exceptions=False)


PROTECTED = [
    ("POST", "/v1/score", {"items": []}),
    ("GET", "/v1/presets", None),
    ("GET", "/v1/toolsets/calculator", None),
    ("POST", "/v1/specs/validate", {"preset": "mentor"}),
    ("POST", "/v1/tools/execute", {"name": "add", "arguments": {"a": 1, "b": 2}}),
    ("POST", "/v1/openrlhf", {"query": [], "prompts": [], "labels": []}),
    ("GET", "/v1/records", None),
    ("GET", "/ui/data", None),  # the dashboard's data (its shell, /ui without a key header, is public)
    ("GET", "/metrics", None),
    ("GET", "/v1/does-not-exist", None),
]
IDS = [f"{m} {p}" for m, p, _ in PROTECTED]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=IDS)
@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-key", "Bearer ", "Basic YWxwaGEta2V5", "alpha-key", "Bearer alpha-key-and-more"],
    ids=["missing", "wrong", "empty", "basic-scheme", "no-scheme", "key-prefix"],
)
def test_requests_without_a_valid_key_get_401(
    secured: TestClient, method: str, path: str, body: Any, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = secured.request(method, path, json=body, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("key", KEYS)
def test_every_configured_key_is_accepted(secured: TestClient, key: str) -> None:
    response = secured.get("/v1/presets", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    lower_scheme = secured.get("/v1/presets", headers={"Authorization": f"bearer {key}"})
    assert lower_scheme.status_code == 200


def test_the_401_comes_before_the_body_is_read(secured: TestClient) -> None:
    # Malformed, oversized JSON from a stranger is refused for the key, not parsed.
    response = secured.post("/v1/score", content=b"{" * 10, headers={"content-type": "application/json"})
    assert_error(response, 401)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_probes_stay_open(secured: TestClient, path: str) -> None:
    response = secured.get(path)
    # /readyz is 503 here because this app's lifespan (and so its pool) is not running.
    assert response.status_code in (200, 503)
    assert response.status_code != 401


def test_without_keys_everything_is_open(client: TestClient) -> None:
    assert client.get("/v1/presets").status_code == 200


def test_the_openapi_schema_declares_the_bearer_scheme(secured: TestClient) -> None:
    schema = secured.get("/openapi.json", headers={"Authorization": "Bearer beta-key"}).json()
    assert any(s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values())


def test_key_check_compares_digests_against_every_key() -> None:
    guard = ApiKeyMiddleware(app=None, keys=KEYS)  # type: ignore[arg-type]
    assert guard._authorized("Bearer beta-key")
    assert not guard._authorized("Bearer beta-ke")
    assert not guard._authorized(None)
