"""The catalogue of bad inputs: each gets its stated answer, always in the one error body.

| input                                   | answer                                        |
|-----------------------------------------|-----------------------------------------------|
| malformed JSON                          | 422 invalid_json                              |
| a body that is not UTF-8                | 422 invalid_json                              |
| a 100k-digit number                     | 422 invalid_json (over the 4300-digit limit)  |
| JSON nested 100k levels                 | 422 too_deep (refused while parsing)          |
| arguments nested past max_json_depth    | 422 too_deep, param = the item                |
| wrong types in the request envelope     | 422 validation_error, param = the field path  |
| a missing required field                | 422 validation_error, param = the field       |
| an unknown field in the envelope        | 400 unknown_field, param = the field          |
| no reward named (neither preset nor spec)| 400 invalid_config, param = preset            |
| a malformed item (wrong types, missing  | 200: that item's error (invalid_item, param   |
| completion, unknown field, not an object)| items[i]...), its neighbours scored          |
| no JSON content type                    | 422 validation_error                          |
| a body over max_body_bytes              | 413 too_large (by Content-Length or counted)  |
| a huge string under the body limit      | 200, scored                                   |
| an empty batch                          | 200, zero results                             |
| an unknown, repeated or non-integer      | 422 validation_error, param = its name        |
| query parameter                         |                                               |
| an unknown route / wrong method         | 404 / 405                                     |
| a server bug                            | 500 internal_error                            |
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _service_helpers import assert_error, raising_score_chunk
from fastapi.testclient import TestClient

from mentor_server.api.pool import ScoringPool

GOOD_COMPLETION = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>\\boxed{5}<|im_end|>'


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


RAW_BODIES = [
    ("malformed-json", b'{"items": [', 422, "invalid_json"),
    ("trailing-garbage", b'{"items": []} xyz', 422, "invalid_json"),
    ("invalid-utf8", b'{"items": [{"completion": "\xff\xfe\xfa"}]}', 422, "invalid_json"),
    ("100k-digit-number", b'{"items": [], "step": ' + b"9" * 100_000 + b"}", 422, "invalid_json"),
    ("nested-100k-levels", b'{"items": [], "spec": ' + _nested(100_000).encode() + b"}", 422, "too_deep"),
    ("not-an-object", b"[1, 2, 3]", 422, "validation_error"),
    ("json-null", b"null", 422, "validation_error"),
]


@pytest.mark.parametrize(("body", "status", "kind"), [r[1:] for r in RAW_BODIES], ids=[r[0] for r in RAW_BODIES])
def test_undecodable_bodies(client: TestClient, body: bytes, status: int, kind: str) -> None:
    response = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert_error(response, status, kind)


WRONG_SHAPES = [
    ("items-not-a-list", {"preset": "mentor", "items": {"completion": "x"}}, "items"),
    ("missing-items", {"preset": "mentor"}, "items"),
    ("step-string", {"preset": "mentor", "items": [], "step": "seven"}, "step"),
    ("preset-list", {"items": [], "preset": ["mentor"]}, "preset"),
    ("eos-tokens-string", {"preset": "mentor", "items": [], "eos_tokens": "</s>"}, "eos_tokens"),
]


@pytest.mark.parametrize(("payload", "param"), [w[1:] for w in WRONG_SHAPES], ids=[w[0] for w in WRONG_SHAPES])
def test_wrong_types_name_the_field(client: TestClient, payload: dict[str, Any], param: str) -> None:
    error = assert_error(client.post("/v1/score", json=payload), 422, "validation_error", param)
    assert param in error["message"]


GOOD_ITEM = {"completion": GOOD_COMPLETION, "ground_truth": "5", "teacher_tools": ["add"]}

BAD_ITEMS = [
    ("completion-number", {"completion": 5}, "items[1].completion"),
    ("missing-completion", {"ground_truth": "1"}, "items[1].completion"),
    ("teacher-tools-string", {"completion": "x", "teacher_tools": "add"}, "items[1].teacher_tools"),
    ("finished-string", {"completion": "x", "finished": "maybe"}, "items[1].finished"),
    ("ground-truth-object", {"completion": "x", "ground_truth": {"a": 1}}, "items[1].ground_truth"),
    ("reference-list", {"completion": "x", "reference": []}, "items[1].reference"),
    ("message-not-object", {"completion": ["hi"]}, "items[1].completion[0]"),
    ("misspelt-field", {"completion": "x", "ground_truht": "5"}, "items[1].ground_truht"),
    (
        "reference-call-field",
        {"completion": "x", "reference": {"calls": [{"name": "a", "args": {}}]}},
        "items[1].reference.calls[0].args",
    ),
    ("not-an-object", [1, 2], "items[1]"),
    ("a-number", 7, "items[1]"),
]


@pytest.mark.parametrize(("item", "param"), [b[1:] for b in BAD_ITEMS], ids=[b[0] for b in BAD_ITEMS])
def test_a_malformed_item_is_its_own_error_and_its_neighbours_score(client: TestClient, item: Any, param: str) -> None:
    response = client.post("/v1/score", json={"preset": "mentor", "items": [GOOD_ITEM, item, GOOD_ITEM]})
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert results[0]["reward"] == pytest.approx(1.1) and results[2]["reward"] == pytest.approx(1.1)
    assert results[1]["reward"] is None
    assert results[1]["error"]["type"] == "invalid_item" and results[1]["error"]["param"] == param
    assert param in results[1]["error"]["message"]
    assert body["stats"]["n_errors"] == 1


def test_a_numeric_ground_truth_is_scored(client: TestClient) -> None:
    item = {"completion": GOOD_COMPLETION, "ground_truth": 5, "teacher_tools": ["add"]}
    body = client.post("/v1/score", json={"preset": "mentor", "items": [item]}).json()
    assert body["results"][0]["error"] is None and body["results"][0]["reward"] == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"presett": "mentor-f1", "items": []}, "presett"),
        ({"preset": "mentor", "items": [], "temperature": 0.7}, "temperature"),
    ],
    ids=["misspelt-preset", "unknown-field"],
)
def test_unknown_request_fields_are_a_400_naming_them(client: TestClient, payload: dict[str, Any], param: str) -> None:
    error = assert_error(client.post("/v1/score", json=payload), 400, "unknown_field", param)
    assert param in error["message"]


def test_a_request_that_names_no_reward_is_a_400(client: TestClient) -> None:
    error = assert_error(client.post("/v1/score", json={"items": [GOOD_ITEM]}), 400, "invalid_config", "preset")
    assert "preset" in error["message"]
    assert_error(client.post("/v1/specs/validate", json={}), 400, "invalid_config", "preset")


def test_deeply_nested_arguments_are_refused_before_scoring(client: TestClient) -> None:
    deep: Any = 1
    for _ in range(200):
        deep = {"x": deep}
    item = {"completion": "x", "reference": {"calls": [{"name": "add", "arguments": deep}]}}
    assert_error(client.post("/v1/score", json={"preset": "mentor", "items": [item]}), 422, "too_deep", "items[0]")
    assert_error(
        client.post("/v1/tools/execute", json={"name": "add", "arguments": deep}),
        422,
        "too_deep",
        "arguments",
    )


def test_nesting_within_the_limit_is_scored(client: TestClient) -> None:
    deep: Any = 1
    for _ in range(30):
        deep = {"x": deep}
    item = {
        "completion": GOOD_COMPLETION,
        "reference": {"calls": [{"name": "add", "arguments": {"a": deep}}]},
    }
    response = client.post("/v1/score", json={"preset": "flexible", "items": [item]})
    assert response.status_code == 200, response.text


def test_a_body_without_json_content_type_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/score", content=b'{"items": []}', headers={"content-type": "text/plain"})
    assert_error(response, 422, "validation_error")


@pytest.fixture
def small_limit(make_client: Any) -> Iterator[TestClient]:
    yield make_client(lifespan=False, max_body_bytes=4096)


def test_a_body_over_the_limit_by_content_length_is_a_413(small_limit: TestClient) -> None:
    body = b'{"items": [{"completion": "' + b"x" * 5000 + b'"}]}'
    error = assert_error(
        small_limit.post("/v1/score", content=body, headers={"content-type": "application/json"}),
        413,
        "too_large",
    )
    assert "4096" in error["message"]


def test_a_streamed_body_over_the_limit_is_a_413(small_limit: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"items": [{"completion": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}]}'

    response = small_limit.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "too_large")


def test_a_huge_string_under_the_limit_is_scored(client: TestClient) -> None:
    completion = "blah " * 190_000 + GOOD_COMPLETION  # 0.95 MB of text, under max_completion_chars
    body = client.post(
        "/v1/score",
        json={
            "preset": "mentor",
            "items": [{"completion": completion, "ground_truth": "5", "teacher_tools": ["add"]}],
        },
    ).json()
    assert body["results"][0]["error"] is None
    assert body["results"][0]["reward"] == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/nothing-here", 404), ("GET", "/v1/score", 405), ("DELETE", "/v1/presets", 405)],
    ids=["unknown-route", "get-on-post", "delete"],
)
def test_routing_errors_use_the_error_body(client: TestClient, method: str, path: str, status: int) -> None:
    assert_error(client.request(method, path), status)


def test_a_server_bug_is_a_500_with_the_error_body(make_client: Any) -> None:
    service = make_client(pool=ScoringPool(1, score_fn=raising_score_chunk))
    error = assert_error(
        service.post("/v1/score", json={"preset": "mentor", "items": [{"completion": "x"}]}), 500, "internal_error"
    )
    assert "Traceback" not in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "param"),
    [
        ("POST", "/v1/openrlhf?presets=mentor-f1", "presets"),
        ("GET", "/v1/records?run=1", "run"),
        ("GET", "/healthz?x=1", "x"),
        ("POST", "/v1/openrlhf?preset=mentor&preset=sparse", "preset"),
        ("POST", "/v1/openrlhf?step=7.0", "step"),
        ("GET", "/v1/records?limit=1e3", "limit"),
    ],
    ids=["openrlhf-typo", "records-typo", "health", "repeated", "float-step", "exponent-limit"],
)
def test_query_parameters_are_checked_strictly(client: TestClient, method: str, path: str, param: str) -> None:
    body = {"query": [], "prompts": [], "labels": []} if method == "POST" else None
    assert_error(client.request(method, path, json=body), 422, "validation_error", param)


def test_a_completion_over_its_size_limit_is_that_items_error(client: TestClient) -> None:
    huge = {"completion": "blah " * 300_000, "ground_truth": "5"}  # 1.5 M characters, over the 1 M limit
    body = client.post("/v1/score", json={"preset": "mentor", "items": [GOOD_ITEM, huge, GOOD_ITEM]}).json()
    results = body["results"]
    assert results[1]["reward"] is None and results[1]["error"]["type"] == "too_large"
    assert results[1]["error"]["param"] == "items[1].completion"
    assert results[0]["reward"] == pytest.approx(1.1) and results[2]["reward"] == pytest.approx(1.1)
