"""POST /v1/score: the service scores exactly as the in-process engine, in order, with aggregates."""

from __future__ import annotations

from typing import Any

import pytest
from _service_helpers import assert_error, wire_item
from fastapi.testclient import TestClient

from mentor_client.results import batch_stats, item_result
from mentor_server.scoring import ScoringEngine, resolve_spec

PAPER_PRESETS = ["sparse", "mentor", "mentor-partial", "mentor-f1", "mentor-no-tool-match"]


def _engine_results(preset: str, items: list[dict[str, Any]]) -> list[Any]:
    return ScoringEngine(resolve_spec(preset)).score_dicts(items)


@pytest.mark.parametrize("preset", PAPER_PRESETS, ids=PAPER_PRESETS)
def test_scores_equal_the_in_process_engine(
    client: TestClient, parity_cases: list[dict[str, Any]], preset: str
) -> None:
    items = [wire_item(c) for c in parity_cases[:40]]
    response = client.post("/v1/score", json={"preset": preset, "items": items, "run_id": "r", "step": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = _engine_results(preset, items)
    assert [r["reward"] for r in body["results"]] == [e.reward for e in expected]
    assert [r["components"] for r in body["results"]] == [e.components for e in expected]
    assert [r["reason"] for r in body["results"]] == [e.reason for e in expected]
    assert body["spec_hash"] == resolve_spec(preset).hash
    assert body["preset"] == preset
    assert body["stats"] == batch_stats([item_result(e) for e in expected]).model_dump()


def test_paper_parity_values_through_the_service(client: TestClient, parity_cases: list[dict[str, Any]]) -> None:
    items = [wire_item(c) for c in parity_cases]
    body = client.post("/v1/score", json={"preset": "mentor", "items": items}).json()
    got = [r["reward"] for r in body["results"]]
    want = [c["expected"]["mentor"] for c in parity_cases]
    assert got == pytest.approx(want, abs=1e-6)


def test_a_large_batch_is_chunked_and_keeps_its_order(make_client: Any, parity_cases: list[dict[str, Any]]) -> None:
    service = make_client(workers=2)
    items = [wire_item(parity_cases[i % len(parity_cases)]) for i in range(300)]
    body = service.post("/v1/score", json={"preset": "mentor-f1", "items": items}).json()
    assert len(body["results"]) == 300
    expected = _engine_results("mentor-f1", items)
    assert [r["reward"] for r in body["results"]] == [e.reward for e in expected]
    assert service.app.state.service.pool.split(300) == [(0, 75), (75, 150), (150, 225), (225, 300)]


def test_message_completions_inline_spec_overrides_and_inline_tools(client: TestClient) -> None:
    completion = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": "lookup", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "name": "lookup", "content": "2.1M"},
        {"role": "assistant", "content": "\\boxed{2.1M}<|im_end|>"},
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "population",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    spec = resolve_spec("flexible").to_dict()
    spec.pop("toolset")
    request = {
        "spec": spec,
        "overrides": {"components": {"efficiency": {"weight": 0.05}}},
        "tools": tools,
        "parser": "openai",
        "items": [
            {
                "completion": completion,
                "ground_truth": "2.1M",
                "reference": {"calls": [{"name": "lookup", "arguments": {"city": "Paris"}, "result": "2.1M"}]},
            }
        ],
    }
    response = client.post("/v1/score", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    result = body["results"][0]
    assert result["error"] is None
    assert result["components"]["schema_valid"] == 1.0
    assert result["components"]["no_hallucination"] == 1.0
    assert body["preset"] is None
    merged = resolve_spec(spec=spec, overrides=request["overrides"])
    assert body["spec_hash"] == merged.hash != resolve_spec(spec=spec).hash


def test_a_bad_item_is_reported_in_place_and_its_neighbours_are_scored(
    client: TestClient, parity_cases: list[dict[str, Any]]
) -> None:
    good = wire_item(parity_cases[0])
    bad = {"completion": "x", "reference": {"calls": [{"name": ""}]}}
    body = client.post("/v1/score", json={"preset": "mentor", "items": [good, bad, good]}).json()
    first, middle, last = body["results"]
    assert first["reward"] == last["reward"] is not None
    assert middle["reward"] is None
    assert middle["error"]["type"] == "invalid_item"
    assert "reference" in middle["error"]["param"]
    assert body["stats"]["n_items"] == 3 and body["stats"]["n_errors"] == 1


def test_an_empty_batch_is_answered_with_no_results(client: TestClient) -> None:
    response = client.post("/v1/score", json={"preset": "mentor", "items": []})
    assert response.status_code == 200
    body = response.json()
    assert body["results"] == []
    assert body["stats"]["n_items"] == 0 and body["stats"]["mean_reward"] is None


def test_an_empty_batch_still_validates_the_reward_choice(client: TestClient) -> None:
    assert_error(client.post("/v1/score", json={"preset": "nope", "items": []}), 400, "invalid_config", "preset")


@pytest.mark.parametrize(
    ("request_fields", "param"),
    [
        ({"preset": "no-such-preset"}, "preset"),
        ({"preset": "mentor", "toolset": "no-such-toolset"}, "toolset"),
        ({"preset": "mentor", "parser": "no-such-parser"}, "parser"),
        ({"preset": "mentor", "spec": {"components": {"outcome": {}}}}, "spec"),
        ({"spec": {"components": {"outcome": {"weight": "heavy"}}}}, "components.outcome.weight"),
        ({"spec": {"components": {"telepathy": {"weight": 1}}}}, "components"),
        (
            {"preset": "mentor", "overrides": {"components": {"tool_names": {"options": {"mode": "psychic"}}}}},
            "components.tool_names.options.mode",
        ),
        (
            {
                "preset": "mentor",
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "blob"}}}],
            },
            None,
        ),
    ],
    ids=[
        "unknown-preset",
        "unknown-toolset",
        "unknown-parser",
        "preset-and-spec",
        "bad-weight",
        "unknown-component",
        "bad-option",
        "bad-tool-schema",
    ],
)
def test_a_bad_reward_choice_is_a_400_naming_the_field(
    client: TestClient, request_fields: dict[str, Any], param: str | None
) -> None:
    response = client.post("/v1/score", json={**request_fields, "items": [{"completion": "x"}]})
    error = assert_error(response, 400, "invalid_config")
    assert error["param"]
    if param is not None:
        assert error["param"] == param


def test_too_many_items_is_a_413_that_states_the_limit(make_client: Any) -> None:
    service = make_client(lifespan=False, max_items=5)
    response = service.post("/v1/score", json={"preset": "mentor", "items": [{"completion": "x"}] * 6})
    error = assert_error(response, 413, "too_many_items", "items")
    assert "5" in error["message"]


def test_step_beyond_64_bits_is_rejected(client: TestClient) -> None:
    assert_error(
        client.post("/v1/score", json={"preset": "mentor", "items": [], "step": 2**70}), 422, "validation_error", "step"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"toolset": "calculator", "tools": [{"name": "lookup", "parameters": {"type": "object"}}]},
        {"tools": []},
    ],
    ids=["toolset-and-tools", "empty-tools"],
)
def test_ambiguous_or_empty_tools_are_a_bad_request_naming_tools(client: TestClient, body: dict[str, Any]) -> None:
    item = {"completion": "\\boxed{1}<|im_end|>", "ground_truth": "1"}
    response = client.post("/v1/score", json={"preset": "mentor", "items": [item], **body})
    assert_error(response, 400, "invalid_config", "tools")


def test_a_judge_timeout_is_an_item_error_counted_in_metrics(client: TestClient) -> None:
    overrides = {"components": {"outcome": {"options": {"judge": {"timeout_s": 1e-9}}}}}
    item = {"completion": "\\boxed{x + 1}<|im_end|>", "ground_truth": "1 + x", "teacher_tools": ["add"]}
    body = client.post("/v1/score", json={"preset": "mentor", "overrides": overrides, "items": [item]}).json()
    result = body["results"][0]
    assert result["reward"] is None and result["error"]["type"] == "judge_timeout"
    assert result["error"]["param"] == "items[0]"
    assert body["stats"]["n_errors"] == 1 and body["stats"]["mean_reward"] is None
    counted = [line for line in client.get("/metrics").text.splitlines() if 'type="judge_timeout"' in line]
    assert counted and float(counted[0].split()[-1]) >= 1
