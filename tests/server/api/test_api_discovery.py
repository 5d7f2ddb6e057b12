"""Discovery (presets, toolsets) and spec validation."""

from __future__ import annotations

import pytest
from _service_helpers import assert_error
from fastapi.testclient import TestClient

from mentor_server.scoring import list_presets, resolve_spec
from mentor_server.toolsets import get_toolset, list_toolsets


def test_presets_lists_every_registered_preset_with_its_hash(client: TestClient) -> None:
    body = client.get("/v1/presets").json()
    names = [p["name"] for p in body["presets"]]
    assert names == [p.name for p in list_presets()]
    for name in ("sparse", "mentor", "mentor-partial", "mentor-f1", "mentor-no-tool-match"):
        assert name in names
    mentor = next(p for p in body["presets"] if p["name"] == "mentor")
    assert mentor["spec_hash"] == resolve_spec("mentor").hash
    assert mentor["reward_range"] == list(resolve_spec("mentor").reward_range)
    assert mentor["formula"]


def test_one_preset_and_an_unknown_one(client: TestClient) -> None:
    assert client.get("/v1/presets/mentor-f1").json()["spec"] == resolve_spec("mentor-f1").to_dict()
    assert_error(client.get("/v1/presets/nope"), 404, "not_found", "name")


def test_toolsets_list_schemas_and_executable_tools(client: TestClient) -> None:
    body = client.get("/v1/toolsets").json()
    assert [t["name"] for t in body["toolsets"]] == [t.name for t in list_toolsets()]
    calculator = client.get("/v1/toolsets/calculator").json()
    assert calculator["tools"] == get_toolset("calculator").schemas()
    assert set(calculator["executable"]) == set(get_toolset("calculator").names)
    assert_error(client.get("/v1/toolsets/nope"), 404, "not_found", "name")


@pytest.mark.parametrize(
    "request_body",
    [
        {"preset": "mentor"},
        {"preset": "mentor", "overrides": {"components": {"no_hallucination": {"weight": 0.2}}}},
        {"spec": {"components": {"outcome": {"weight": 1.0}}}},
    ],
    ids=["preset", "preset+overrides", "inline"],
)
def test_validate_returns_the_normalised_spec_and_hash(client: TestClient, request_body: dict) -> None:
    body = client.post("/v1/specs/validate", json=request_body).json()
    spec = resolve_spec(**request_body)
    assert body == {"spec": spec.to_dict(), "spec_hash": spec.hash, "reward_range": list(spec.reward_range)}


def test_validate_names_the_bad_field(client: TestClient) -> None:
    response = client.post(
        "/v1/specs/validate",
        json={"spec": {"components": {"outcome": {"weight": 1, "wrong_answer_scale": 7}}}},
    )
    assert_error(response, 400, "invalid_config", "components.outcome.wrong_answer_scale")
