"""Hostile requests against the app in-process: bounded metrics, UTF-8 keys, cheap size bounds, tool inputs.

Each case has its stated answer: made-up HTTP methods share one metrics label and
`/metrics` stays small; a non-ASCII API key works when sent as UTF-8 and a wrong one is a
401; an oversized tool call is a 413 before it is parsed; a lone surrogate in a tool call
is an answer, never a 500; the per-field bounds in `guards` are 413s naming the field.
"""

from __future__ import annotations

import json
import random
import string
from typing import Any

import pytest
from _service_helpers import assert_error
from fastapi.testclient import TestClient

from mentor_client.protocol import ExecuteToolResponse, ScoreResponse
from mentor_server.api.errors import ApiError
from mentor_server.api.guards import check_run_id, check_score_limits
from mentor_server.api.settings import ServiceSettings


def test_made_up_methods_share_one_label_and_metrics_stay_small(make_client: Any) -> None:
    service: TestClient = make_client(api_keys=["k"])
    rng = random.Random(7)
    for _ in range(300):
        method = "".join(rng.choices(string.ascii_uppercase, k=12))
        service.request(method, "/v1/" + "".join(rng.choices(string.ascii_lowercase, k=20)))
    # Unauthenticated requests on real routes too: counted, under fixed labels.
    for _ in range(50):
        service.get("/v1/presets")
    text = service.get("/metrics", headers={"Authorization": "Bearer k"}).text
    requests = [line for line in text.splitlines() if line.startswith("mentor_http_requests_total{")]
    assert {line.split('method="')[1].split('"')[0] for line in requests} <= {"GET", "other"}
    assert len(requests) <= 4, requests
    assert len(text) < 30_000


NON_ASCII_KEY = "clé-ünïcode-密钥"


def test_a_non_ascii_api_key_works_over_utf8(make_client: Any) -> None:
    service: TestClient = make_client(api_keys=[NON_ASCII_KEY])
    good = service.get("/v1/presets", headers=[(b"authorization", f"Bearer {NON_ASCII_KEY}".encode())])
    assert good.status_code == 200, good.text
    wrong = service.get("/v1/presets", headers=[(b"authorization", "Bearer clé-ünïcode".encode())])
    assert_error(wrong, 401, "unauthorized")
    latin1 = service.get("/v1/presets", headers=[(b"authorization", f"Bearer {NON_ASCII_KEY[:5]}".encode("latin-1"))])
    assert_error(latin1, 401, "unauthorized")


def test_an_oversized_tool_call_is_a_413_before_it_is_parsed(make_client: Any) -> None:
    service: TestClient = make_client(max_tool_request_bytes=64 * 1024)
    body = json.dumps({"name": "add", "arguments": {"a": list(range(1_000_000)), "b": 1}})
    error = assert_error(
        service.post("/v1/tools/execute", content=body, headers={"content-type": "application/json"}),
        413,
        "too_large",
    )
    assert "65536" in error["message"]


@pytest.mark.parametrize(
    "request_body",
    [
        {"name": "add", "arguments": {"\ud800": 1, "a": 1, "b": 2}},
        {"name": "\ud800", "arguments": {}},
        {"name": "add", "arguments": {"a": "\ud800", "b": 2}},
    ],
    ids=["surrogate-key", "surrogate-name", "surrogate-value"],
)
def test_a_lone_surrogate_in_a_tool_call_is_an_answer_not_a_500(client: TestClient, request_body: Any) -> None:
    # json.dumps writes the surrogate as an escape, exactly what a client sends.
    response = client.post(
        "/v1/tools/execute", content=json.dumps(request_body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    # Parsed as the client parses it (pydantic's strict JSON reader refuses a lone surrogate).
    body = ExecuteToolResponse.model_validate_json(response.content)
    assert body.ok is False and body.error is not None
    assert body.error.type in {"invalid_arguments", "unknown_tool"}


def test_a_long_argument_list_is_validated_off_the_event_loop(client: TestClient) -> None:
    # Within the size bound, a schema violation deep in a long array is still the model's error.
    body = client.post("/v1/tools/execute", json={"name": "add", "arguments": {"a": [1] * 5000, "b": 2}}).json()
    assert body["ok"] is False and body["error"]["type"] == "invalid_arguments"


SETTINGS = ServiceSettings(
    max_items=4,
    max_completion_chars=100,
    max_messages_per_completion=3,
    max_calls_per_completion=2,
    max_tools_per_request=2,
    max_schema_bytes=1024,
    max_run_id_chars=8,
)
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
CALL = {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
USER = {"role": "user", "content": "x"}


def _calls(n: int) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": "", "tool_calls": [CALL] * n}]


def _texts(*lengths: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "x" * n} for n in lengths]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"items": [{"completion": "x"}] * 5}, 413, "items"),
        ({"items": [{"completion": "x" * 101}]}, 413, "items[0].completion"),
        (
            {"items": [{"completion": "ok"}, {"completion": [USER] * 4}]},
            413,
            "items[1].completion",
        ),
        (
            {"items": [{"completion": _calls(3)}]},
            413,
            "items[0].completion",
        ),
        (
            {
                "items": [
                    {"completion": [{"role": "assistant", "content": "x" * 60}, {"role": "user", "content": "y" * 60}]}
                ]
            },
            413,
            "items[0].completion",
        ),
        ({"items": [], "tools": [TOOL] * 3}, 413, "tools"),
        ({"items": [], "tools": [{**TOOL, "description": "d" * 2000}]}, 413, "tools"),
        ({"items": [], "spec": {"components": {"outcome": {"weight": 1, "options": {"x": "y" * 2000}}}}}, 413, "spec"),
        ({"items": [], "run_id": "r" * 9}, 413, "run_id"),
    ],
    ids=["items", "text", "messages", "calls", "message-text", "tools-count", "tools-size", "spec-size", "run-id"],
)
def test_per_field_bounds_are_413s_naming_the_field(body: dict[str, Any], status: int, param: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_score_limits(body, SETTINGS)
    assert caught.value.status_code == status and caught.value.param == param
    assert "limit" in caught.value.message


def test_bodies_within_the_bounds_pass() -> None:
    check_score_limits(
        {
            "items": [
                {"completion": "x" * 100},
                {"completion": [{"role": "assistant", "content": "", "tool_calls": [CALL] * 2}]},
            ],
            "tools": [TOOL] * 2,
            "run_id": "r" * 8,
        },
        SETTINGS,
    )
    check_run_id(None, 8)


@pytest.mark.parametrize(
    "item",
    [
        {"completion": '<tool_call>{"name": "\ud800", "arguments": {}}</tool_call>\\boxed{5}', "ground_truth": "5"},
        {"completion": "\\boxed{5}\ud800", "ground_truth": "5\udfff", "teacher_tools": ["\ud800"]},
    ],
    ids=["surrogate-tool-name", "surrogates-everywhere"],
)
def test_a_lone_surrogate_in_an_item_is_scored_not_a_500(client: TestClient, item: dict[str, Any]) -> None:
    body = json.dumps({"preset": "mentor", "items": [item, {"completion": "\\boxed{5}", "ground_truth": "5"}]})
    response = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    parsed = ScoreResponse.model_validate_json(response.content)  # as the client reads it
    assert len(parsed.results) == 2 and parsed.results[1].reward is not None
