"""One catalogue of odd items, scored through every entry point: the same input, the same result.

The entry points: raw HTTP against a real uvicorn process, the SDK client over sockets, the
in-process `LocalBackend`, the `mentor-reward score` CLI as a subprocess, and the TRL adapter.
Each item gets its stated answer (a reward, or its own error naming `items[i]`), and every
entry point agrees with the service item by item, errors included. A misspelt field, a number
as completion or a non-ChatML end token never becomes a silently different reward.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from service_process import ServiceProcess

from mentor_client import LocalBackend, RewardClient
from mentor_client.adapters.trl import trl_reward_func

CALL = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'
BODY = CALL + "<tool_response>5</tool_response> so \\boxed{5}"
GOOD = {"ground_truth": "5", "teacher_tools": ["add"]}

# (id, item, expected reward under `mentor` or the error type, the error's param)
CATALOGUE: list[tuple[str, Any, float | str]] = [
    ("chatml", {"completion": BODY + "<|im_end|>", **GOOD}, 1.1),
    ("llama3-eos", {"completion": BODY + "<|eot_id|>", **GOOD}, 1.1),
    ("mistral-eos", {"completion": BODY + "</s>", **GOOD}, 1.1),
    ("truncated", {"completion": BODY, **GOOD}, 0.0),
    ("told-finished", {"completion": BODY, "finished": True, **GOOD}, 1.1),
    ("numeric-ground-truth", {"completion": BODY + "<|im_end|>", "ground_truth": 5, "teacher_tools": ["add"]}, 1.1),
    ("float-ground-truth", {"completion": BODY + "<|im_end|>", "ground_truth": 5.0, "teacher_tools": ["add"]}, 1.1),
    (
        "parameters-key",
        {
            "completion": '<tool_call>{"name": "add", "parameters": {"a": 2, "b": 3}}</tool_call> \\boxed{5}<|im_end|>',
            **GOOD,
        },
        1.1,
    ),
    ("wrong-answer", {"completion": CALL + " \\boxed{6}<|im_end|>", **GOOD}, pytest.approx(0.16)),
    (
        "surrogate-tool-name",
        {"completion": '<tool_call>{"name": "\\ud800", "arguments": {}}</tool_call> \\boxed{5}<|im_end|>', **GOOD},
        pytest.approx(0.7),
    ),
    ("completion-number", {"completion": 5, **GOOD}, "invalid_item"),
    ("missing-completion", dict(GOOD), "invalid_item"),
    ("misspelt-field", {"completion": BODY + "<|im_end|>", "ground_truht": "5"}, "invalid_item"),
    ("ground-truth-bool", {"completion": BODY + "<|im_end|>", "ground_truth": True}, "invalid_item"),
    ("not-an-object", ["completion"], "invalid_item"),
]
ITEMS = [item for _, item, _ in CATALOGUE]
IDS = [name for name, _, _ in CATALOGUE]


def _summary(reward: float | None, error: dict[str, Any] | None) -> tuple[Any, ...]:
    if error is not None:
        return ("error", error["type"], error["param"])
    return ("reward", round(float(reward), 9) if reward is not None else None)


@pytest.fixture(scope="module")
def over_http(service: ServiceProcess) -> list[dict[str, Any]]:
    body = json.dumps({"preset": "mentor", "items": ITEMS}, ensure_ascii=True)
    response = httpx.post(
        service.base_url + "/v1/score", content=body, headers={"content-type": "application/json"}, timeout=120
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


@pytest.mark.parametrize(("index", "expected"), [(i, c[2]) for i, c in enumerate(CATALOGUE)], ids=IDS)
def test_each_item_gets_its_stated_answer(over_http: list[dict[str, Any]], index: int, expected: Any) -> None:
    result = over_http[index]
    if isinstance(expected, str):
        assert result["reward"] is None and result["error"]["type"] == expected
        assert result["error"]["param"].startswith(f"items[{index}]")
    else:
        assert result["error"] is None, result
        assert result["reward"] == expected


def test_the_client_local_backend_and_cli_agree_with_the_service(
    service: ServiceProcess, over_http: list[dict[str, Any]]
) -> None:
    want = [_summary(r["reward"], r["error"]) for r in over_http]
    with RewardClient(service.base_url) as client:
        via_client = client.score(ITEMS, preset="mentor")
    assert [_summary(r.reward, r.error and r.error.model_dump()) for r in via_client.results] == want
    with LocalBackend() as backend:
        local = backend.score(ITEMS, preset="mentor")
    assert [_summary(r.reward, r.error and r.error.model_dump()) for r in local.results] == want
    assert local.stats == via_client.stats

    lines = "\n".join(json.dumps(item, ensure_ascii=True) for item in ITEMS) + "\n"
    cli = subprocess.run(
        [sys.executable, "-m", "mentor_server.cli", "score", "--preset", "mentor", "-"],
        input=lines,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stderr
    rows = [json.loads(line) for line in cli.stdout.splitlines()]
    assert [_summary(r["reward"], r["error"]) for r in rows] == want


def test_a_chunked_batch_names_each_item_by_its_index_in_the_whole_request(service: ServiceProcess) -> None:
    # 300 items: the service splits them into chunks over its workers, the client into requests.
    items: list[Any] = [CATALOGUE[0][1]] * 300
    items[100] = {"completion": 5}
    items[250] = {"completion": "x", "ground_truht": "1"}
    body = httpx.post(service.base_url + "/v1/score", json={"preset": "mentor", "items": items}, timeout=120).json()
    errors = {i: r["error"]["param"] for i, r in enumerate(body["results"]) if r["error"]}
    assert errors == {100: "items[100].completion", 250: "items[250].ground_truht"}
    with RewardClient(service.base_url, chunk_size=64) as client:
        chunked = client.score(items, preset="mentor")
    assert {i: r.error.param for i, r in enumerate(chunked.results) if r.error} == errors
    assert chunked.stats.n_errors == 2


def test_the_trl_adapter_gives_the_services_rewards(service: ServiceProcess, over_http: list[dict[str, Any]]) -> None:
    # TRL hands text completions and dataset columns: every item the service scores gets the
    # service's reward; a row the service refuses is refused by the adapter too, naming the row
    # (TRL has no per-item error, and its None would sum to a silent 0 with no other reward).
    columns = {"completion", "ground_truth", "teacher_tools"}
    usable = [
        i
        for i, item in enumerate(ITEMS)
        if isinstance(item, dict) and isinstance(item.get("completion"), str) and set(item) <= columns
    ]
    reward = trl_reward_func(service.base_url, preset="mentor")

    def call(indices: list[int]) -> list[float | None]:
        return asyncio.run(
            reward(
                prompts=["p"] * len(indices),
                completions=[ITEMS[i]["completion"] for i in indices],
                ground_truth=[ITEMS[i].get("ground_truth") for i in indices],
                teacher_tools=[ITEMS[i].get("teacher_tools") for i in indices],
            )
        )

    scored = [i for i in usable if over_http[i]["error"] is None]
    refused = [i for i in usable if over_http[i]["error"] is not None]
    assert scored and refused
    assert call(scored) == [over_http[i]["reward"] for i in scored]
    for i in refused:
        with pytest.raises(Exception, match="row 0"):
            call([i])


def _label_items(over_http: list[dict[str, Any]]) -> list[int]:
    # Items a trainer's label column can carry: text completions with the ground truth and tools.
    columns = {"completion", "ground_truth", "teacher_tools"}
    return [
        i
        for i, item in enumerate(ITEMS)
        if isinstance(item, dict) and isinstance(item.get("completion"), str) and set(item) <= columns
    ]


def test_the_verl_and_openrlhf_adapters_give_the_services_rewards(
    service: ServiceProcess, over_http: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mentor_client.adapters import openrlhf_reward_func, verl

    monkeypatch.setenv("MENTOR_REWARD_URL", service.base_url)
    monkeypatch.setenv("MENTOR_REWARD_PRESET", "mentor")
    monkeypatch.setenv("MENTOR_REWARD_FINISHED", "detect")  # read the EOS from the text, as the service does
    monkeypatch.setattr(verl, "_SERVICES", {})
    for i in _label_items(over_http):
        item = ITEMS[i]
        label = json.dumps({"ground_truth": item.get("ground_truth"), "teacher_tools": item.get("teacher_tools")})
        want = over_http[i]
        if want["error"] is not None:
            # The row is refused, named, rather than given a number.
            with pytest.raises(Exception, match="ground_truth"):
                verl.compute_score_sync("contract", item["completion"], label)
            with pytest.raises(Exception, match="ground_truth"):
                openrlhf_reward_func.reward_func([item["completion"]], [""], [label])
            continue
        got = verl.compute_score_sync("contract", item["completion"], label)
        assert got["score"] == pytest.approx(want["reward"]), IDS[i]
        assert {k: v for k, v in got.items() if k != "score"} == want["components"], IDS[i]
        out = openrlhf_reward_func.reward_func([item["completion"]], [""], [label])
        assert float(out["rewards"][0]) == pytest.approx(want["reward"]), IDS[i]
        url = httpx.post(
            service.base_url + "/v1/openrlhf",
            content=json.dumps({"query": [item["completion"]], "prompts": [""], "labels": [label]}, ensure_ascii=True),
            headers={"content-type": "application/json"},
            timeout=60,
        ).json()
        assert url["rewards"][0] == pytest.approx(want["reward"]), IDS[i]
        assert {k: float(v[0]) for k, v in out["extra_logs"].items()} == {
            k: v[0] for k, v in url["extra_logs"].items()
        }, IDS[i]


def test_the_client_pages_through_records_and_reads_recording_health(start_service: Any, tmp_path: Any) -> None:
    recorded = start_service(record_backend="sqlite", record_path=str(tmp_path / "records.sqlite3"))
    with RewardClient(recorded.base_url) as client:
        client.score(ITEMS[:5], preset="mentor", run_id="paging", step=3)
        seen: list[Any] = []
        offset: int | None = 0
        while offset is not None:
            page = client.records(run_id="paging", limit=2, offset=offset)
            seen.extend(page.records)
            offset = page.next_offset
        health = client.health()
    assert [r.reward for r in seen] == [r["reward"] for r in _http_results(recorded, ITEMS[:5])]
    assert {r.step for r in seen} == {3}
    assert health.recording is not None and health.recording.status == "ok"


def _http_results(service: ServiceProcess, items: list[Any]) -> list[dict[str, Any]]:
    body = json.dumps({"preset": "mentor", "items": items}, ensure_ascii=True)
    response = httpx.post(
        service.base_url + "/v1/score", content=body, headers={"content-type": "application/json"}, timeout=120
    )
    results: list[dict[str, Any]] = response.json()["results"]
    return results
