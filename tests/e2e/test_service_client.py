"""The client SDK against a real uvicorn process over real sockets: scoring, discovery, auth."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from service_process import ServiceProcess, free_port, service_env

from mentor_client import AuthenticationError, RewardClient
from mentor_client.results import batch_stats, item_result
from mentor_server.scoring import ScoringEngine, resolve_spec

pytestmark = pytest.mark.e2e


def test_a_grpo_sized_batch_scores_exactly_as_the_engine(
    service: ServiceProcess, parity_items: list[dict[str, Any]]
) -> None:
    items = [parity_items[i % len(parity_items)] for i in range(512)]
    with RewardClient(service.base_url, chunk_size=128, max_concurrency=2) as client:
        response = client.score(items, preset="mentor-f1", run_id="e2e", step=0)
    expected = ScoringEngine(resolve_spec("mentor-f1")).score_dicts(items)
    assert [r.reward for r in response.results] == [e.reward for e in expected]
    assert [r.components for r in response.results] == [e.components for e in expected]
    assert response.spec_hash == resolve_spec("mentor-f1").hash
    assert response.stats == batch_stats([item_result(e) for e in expected])


def test_discovery_and_tools_through_the_client(service: ServiceProcess) -> None:
    with RewardClient(service.base_url) as client:
        assert "mentor" in [p.name for p in client.presets().presets]
        assert client.execute_tool("multiply", {"a": 6, "b": 7}).result == 42
        assert client.ready()


def test_openrlhf_endpoint_over_http(service: ServiceProcess) -> None:
    completion = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>\\boxed{5}<|im_end|>'
    body = httpx.post(
        service.base_url + "/v1/openrlhf",
        json={
            "query": ["PROMPT " + completion],
            "prompts": ["PROMPT "],
            "labels": ['{"ground_truth": "5", "teacher_tools": ["add"]}'],
        },
        timeout=30,
    ).json()
    assert body["rewards"] == [pytest.approx(1.1)]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Any:
    process = ServiceProcess(
        free_port(),
        service_env(api_keys="k-one,k-two", workers="1"),
        tmp_path_factory.mktemp("secured") / "service.log",
    ).start()
    yield process
    process.stop()


@pytest.mark.parametrize("key", [None, "wrong"], ids=["missing-key", "wrong-key"])
def test_without_the_right_key_the_client_gets_401(secured: ServiceProcess, key: str | None, monkeypatch: Any) -> None:
    monkeypatch.delenv("MENTOR_REWARD_API_KEY", raising=False)
    with RewardClient(secured.base_url, api_key=key) as client, pytest.raises(AuthenticationError):
        client.score([{"completion": "x"}])
    raw = httpx.post(
        secured.base_url + "/v1/score",
        json={"items": []},
        headers={} if key is None else {"Authorization": f"Bearer {key}"},
    )
    assert raw.status_code == 401 and raw.json()["error"]["type"] == "unauthorized"


def test_with_a_key_the_client_scores_and_health_stays_open(secured: ServiceProcess) -> None:
    with RewardClient(secured.base_url, api_key="k-two") as client:
        assert (
            client.score([{"completion": "\\boxed{1}<|im_end|>", "ground_truth": "1"}], preset="sparse")
            .results[0]
            .reward
            == 1.0
        )
    assert httpx.get(secured.base_url + "/healthz").status_code == 200
    assert httpx.get(secured.base_url + "/readyz").status_code == 200
    assert httpx.get(secured.base_url + "/metrics").status_code == 401
