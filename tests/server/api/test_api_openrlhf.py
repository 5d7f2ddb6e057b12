"""POST /v1/openrlhf: OpenRLHF's `--reward.remote_url` protocol."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _service_helpers import assert_error
from fastapi.testclient import TestClient

from mentor_server.scoring import ScoringEngine, resolve_spec

PROMPT = (
    '<|im_start|>system\nExample: <tool_call>{"name": "power", "arguments": {"a": 2, "b": 2}}</tool_call>'
    "<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n"
)
RESPONSE = (
    '<|im_start|>assistant\n<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call><|im_end|>\n'
    "<|im_start|>user\n<tool_response>5</tool_response><|im_end|>\n<|im_start|>assistant\n\\boxed{5}<|im_end|>"
)


def _expected(preset: str, item: dict[str, Any]) -> float:
    reward = ScoringEngine(resolve_spec(preset)).score_dicts([item])[0].reward
    assert reward is not None
    return reward


@pytest.mark.parametrize(
    "label",
    [
        json.dumps({"ground_truth": "5", "teacher_tools": ["add"]}),
        {"ground_truth": "5", "teacher_tools": ["add"]},
        {
            "ground_truth": ["5", "5.0"],
            "reference": {"calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]},
        },
    ],
    ids=["json-string", "object", "full-reference"],
)
def test_the_prompt_is_stripped_and_the_label_carries_the_reference(client: TestClient, label: Any) -> None:
    response = client.post("/v1/openrlhf", json={"query": [PROMPT + RESPONSE], "prompts": [PROMPT], "labels": [label]})
    assert response.status_code == 200, response.text
    body = response.json()
    # With the prompt's example call counted, S = {power, add} != T and mentor would give 0.8.
    assert body["rewards"] == [pytest.approx(1.1)]
    low, high = resolve_spec("mentor").reward_range
    assert body["scores"] == [pytest.approx((1.1 - low) / (high - low))]  # OpenRLHF reads scores in [0, 1]
    names = ("outcome", "tool_names", "no_hallucination")
    assert set(body["extra_logs"]) == {*names, *(f"{n}/applicable" for n in names), "item_error"}
    assert body["extra_logs"]["item_error"] == [0.0]


def test_a_plain_string_label_is_the_ground_truth_and_query_params_choose_the_preset(
    client: TestClient,
) -> None:
    response = client.post(
        "/v1/openrlhf?preset=sparse&run_id=x&step=3",
        json={"query": [PROMPT + RESPONSE], "prompts": [PROMPT], "labels": ["5"]},
    )
    assert response.json()["rewards"] == [
        pytest.approx(_expected("sparse", {"completion": RESPONSE, "ground_truth": "5"}))
    ]


def test_per_label_presets_and_a_batch_keep_their_order(client: TestClient) -> None:
    labels = [
        {"ground_truth": "5", "teacher_tools": ["add"], "preset": "mentor-no-tool-match"},
        {"ground_truth": "6", "teacher_tools": ["add"]},
        "{1, 2}",
    ]  # not JSON: a set-valued ground truth
    body = client.post(
        "/v1/openrlhf", json={"query": [PROMPT + RESPONSE] * 3, "prompts": [PROMPT] * 3, "labels": labels}
    ).json()
    assert body["rewards"] == [
        pytest.approx(
            _expected(
                "mentor-no-tool-match",
                {"completion": RESPONSE, "ground_truth": "5", "teacher_tools": ["add"]},
            )
        ),
        pytest.approx(_expected("mentor", {"completion": RESPONSE, "ground_truth": "6", "teacher_tools": ["add"]})),
        pytest.approx(_expected("mentor", {"completion": RESPONSE, "ground_truth": "{1, 2}"})),
    ]


def test_a_query_that_does_not_start_with_its_prompt_is_scored_whole(client: TestClient) -> None:
    body = client.post(
        "/v1/openrlhf", json={"query": [RESPONSE], "prompts": ["something else"], "labels": ["5"]}
    ).json()
    assert body["rewards"] == [pytest.approx(_expected("mentor", {"completion": RESPONSE, "ground_truth": "5"}))]


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"query": ["a", "b"], "prompts": ["a"], "labels": ["1", "2"]}, "prompts"),
        ({"query": ["a"], "prompts": ["a"], "labels": []}, "labels"),
        ({"query": ["a"], "prompts": ["a"], "labels": [{"teacher_tools": 5}]}, "labels[0].teacher_tools"),
        ({"query": ["a"], "prompts": ["a"], "labels": [None]}, "labels[0]"),
        (
            {"query": ["a"], "prompts": ["a"], "labels": [{"reference": {"calls": [{"name": ""}]}}]},
            "labels[0].reference.calls[0].name",
        ),
    ],
    ids=["prompt-count", "label-count", "bad-teacher-tools", "null-label", "bad-reference"],
)
def test_malformed_labels_are_422s_naming_them(client: TestClient, payload: dict[str, Any], param: str) -> None:
    assert_error(client.post("/v1/openrlhf", json=payload), 422, param=param)


def test_an_unknown_preset_is_a_400(client: TestClient) -> None:
    response = client.post("/v1/openrlhf?preset=nope", json={"query": ["a"], "prompts": ["a"], "labels": ["1"]})
    assert_error(response, 400, "invalid_config", "preset")


def test_a_rejected_label_is_logged_and_counted(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    payload = {"query": ["a", "b"], "prompts": ["a", "b"], "labels": ["1", {"teacher_tools": 5}]}
    with caplog.at_level("WARNING", logger="mentor_server.api.openrlhf"):
        assert_error(client.post("/v1/openrlhf", json=payload), 422, param="labels[1].teacher_tools")
    assert any("label 1 rejected" in r.getMessage() for r in caplog.records)
    counted = [
        line for line in client.get("/metrics").text.splitlines() if line.startswith("mentor_item_errors_total{")
    ]
    assert any('type="invalid_label"' in line and float(line.split()[-1]) >= 1 for line in counted), counted


def test_a_llama3_query_with_its_eos_is_finished(client: TestClient) -> None:
    llama = RESPONSE.replace("<|im_end|>", "<|eot_id|>")
    label = {"ground_truth": "5", "teacher_tools": ["add"]}
    default = client.post("/v1/openrlhf?preset=sparse", json={"query": [llama], "prompts": [""], "labels": [label]})
    assert default.json()["rewards"] == [pytest.approx(1.0)]
    pinned = client.post(
        "/v1/openrlhf?preset=sparse&eos_tokens=%3C%7Cim_end%7C%3E",
        json={"query": [llama], "prompts": [""], "labels": [label]},
    )
    assert pinned.json()["rewards"] == [pytest.approx(0.0)]  # not that model's EOS: truncated


def test_extra_logs_keys_are_the_default_presets_whatever_a_labels_preset(client: TestClient) -> None:
    labels = [{"ground_truth": "5", "teacher_tools": ["add"], "preset": "flexible"}]
    body = client.post("/v1/openrlhf?preset=sparse", json={"query": [RESPONSE], "prompts": [""], "labels": labels})
    logs = body.json()["extra_logs"]
    names = list(resolve_spec("sparse").components)
    assert set(logs) == {*names, *(f"{n}/applicable" for n in names), "item_error"}
    item = {"completion": RESPONSE, "ground_truth": "5", "teacher_tools": ["add"]}
    assert body.json()["rewards"] == [pytest.approx(_expected("flexible", item))]
