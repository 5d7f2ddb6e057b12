"""Large batches: split into chunks, spread over replicas, failed over, merged back in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from client_fakes import FakeService, Runner, fake_stats

from mentor_client import (
    AsyncRewardClient,
    BadRequestError,
    ConnectError,
    ResponseValidationError,
    RetriesExhaustedError,
    RetryPolicy,
)

MakeClient = Callable[..., Runner]
REPLICAS = ["http://a:8000", "http://b:8000", "http://c:8000"]
FAST = RetryPolicy(max_retries=3, backoff_base=0.0)


def items(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"completion": f"c{i}"} for i in range(start, start + n)]


def chunk_hosts(service: FakeService) -> dict[int, str]:
    """First item number of each successful chunk -> host that scored it."""
    out: dict[int, str] = {}
    for request in service.requests:
        if request.url.path == "/v1/score" and request.url.host not in service.down:
            first = FakeService.first_item(request)
            out[first] = request.url.host
    return out


@pytest.mark.parametrize("concurrency", [1, 3], ids=["sequential", "concurrent"])
def test_chunks_go_round_robin_and_come_back_in_order(make_client: MakeClient, concurrency: int) -> None:
    service = FakeService()
    client = make_client(service, base_url=REPLICAS, chunk_size=2, max_concurrency=concurrency)
    response = client.score(items(11))
    assert [r.reward for r in response.results] == [float(i) for i in range(11)]
    assert chunk_hosts(service) == {0: "a", 2: "b", 4: "c", 6: "a", 8: "b", 10: "c"}
    sizes = {int(b["items"][0]["completion"][1:]): len(b["items"]) for b in service.bodies()}
    assert [sizes[k] for k in sorted(sizes)] == [2, 2, 2, 2, 2, 1]


def test_rotation_continues_across_calls(make_client: MakeClient) -> None:
    service = FakeService()
    client = make_client(service, base_url=REPLICAS, chunk_size=2, max_concurrency=1)
    client.score(items(4))  # chunks on a, b
    client.score(items(2, start=100))  # next replica: c
    client.health()  # then a
    assert service.hosts() == ["a", "b", "c"]
    assert service.requests[-1].url.host == "a"


def test_unreachable_replica_fails_over_to_the_next(make_client: MakeClient) -> None:
    service = FakeService(down={"b"})
    client = make_client(service, base_url=REPLICAS, chunk_size=2, max_concurrency=1, retry=FAST)
    response = client.score(items(6))
    assert [r.reward for r in response.results] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert chunk_hosts(service) == {0: "a", 2: "c", 4: "c"}
    assert service.hosts().count("b") == 1  # tried once, then the chunk moved on


def test_every_replica_down_raises_with_the_connect_error(make_client: MakeClient) -> None:
    service = FakeService(down={"a", "b", "c"})
    client = make_client(service, base_url=REPLICAS, chunk_size=2, retry=FAST)
    with pytest.raises(RetriesExhaustedError) as caught:
        client.score(items(4))
    assert isinstance(caught.value.last_error, ConnectError)


@pytest.mark.parametrize("with_counts", [True, False], ids=["per-item-counts", "no-per-item-counts"])
def test_merged_stats_equal_the_stats_of_one_request(make_client: MakeClient, with_counts: bool) -> None:
    batch = [*items(13), {"completion": "bad1"}, *items(4, start=40)]
    whole = make_client(FakeService(with_counts=with_counts), chunk_size=100).score(batch)
    chunked = make_client(FakeService(with_counts=with_counts), base_url=REPLICAS, chunk_size=3).score(batch)
    assert chunked.results == whole.results
    merged, single = chunked.stats, whole.stats
    assert merged.n_items == single.n_items == 18
    assert merged.n_errors == single.n_errors == 1
    assert merged.mean_reward == pytest.approx(single.mean_reward)
    assert merged.component_means == pytest.approx(single.component_means)
    if with_counts:
        assert merged.tool_call_rate == pytest.approx(single.tool_call_rate)
        assert merged.invalid_tool_rate == pytest.approx(single.invalid_tool_rate)
    else:
        # Without per-item call counts the rates cannot be recomputed; they are not guessed.
        assert merged.tool_call_rate is None and merged.invalid_tool_rate is None
    assert single.invalid_tool_rate is None or with_counts


def test_single_chunk_keeps_the_service_stats(make_client: MakeClient) -> None:
    service = FakeService()
    response = make_client(service).score(items(5))
    assert response.stats == fake_stats(response.results)
    assert len(service.requests) == 1


def test_replicas_with_different_specs_are_refused(make_client: MakeClient) -> None:
    service = FakeService(spec_hash_by_host={"b": "other"})
    client = make_client(service, base_url=REPLICAS, chunk_size=2)
    with pytest.raises(ResponseValidationError, match="different specs"):
        client.score(items(4))


def test_wrong_result_count_is_refused(make_client: MakeClient) -> None:
    with pytest.raises(ResponseValidationError, match="sent 3 items, got 2"):
        make_client(FakeService(drop_last_result=True)).score(items(3))


def test_a_failing_chunk_fails_the_call(make_client: MakeClient) -> None:
    service = FakeService(script=[400])
    client = make_client(service, chunk_size=2, max_concurrency=1)
    with pytest.raises(BadRequestError):
        client.score(items(6))


def test_score_parameters_are_sent_with_every_chunk(make_client: MakeClient) -> None:
    service = FakeService()
    make_client(service, chunk_size=2).score(
        items(3), preset="mentor-f1", toolset="calculator", overrides={"bias": 0.1}, run_id="r1", step=4
    )
    bodies = service.bodies()
    assert len(bodies) == 2
    for body in bodies:
        assert body["preset"] == "mentor-f1"
        assert body["toolset"] == "calculator"
        assert body["overrides"] == {"bias": 0.1}
        assert (body["run_id"], body["step"]) == ("r1", 4)
        assert "spec" not in body and "tools" not in body  # None is not sent


def test_async_chunks_respect_max_concurrency() -> None:
    service = FakeService(delay_s=0.01)
    client = AsyncRewardClient(REPLICAS, chunk_size=1, max_concurrency=3, transport=service.async_transport())
    response = asyncio.run(client.score(items(12)))
    assert [r.reward for r in response.results] == [float(i) for i in range(12)]
    assert service.max_in_flight == 3


def test_sync_chunks_respect_max_concurrency() -> None:
    from mentor_client import RewardClient

    service = FakeService(delay_s=0.02)
    client = RewardClient(REPLICAS, chunk_size=1, max_concurrency=3, transport=service.transport())
    response = client.score(items(9))
    assert [r.reward for r in response.results] == [float(i) for i in range(9)]
    assert 1 < service.max_in_flight <= 3


def test_async_failure_cancels_the_remaining_chunks() -> None:
    service = FakeService(delay_s=0.01, script=[400])
    client = AsyncRewardClient("http://svc", chunk_size=1, max_concurrency=2, transport=service.async_transport())
    with pytest.raises(BadRequestError):
        asyncio.run(client.score(items(20)))
    # The first answer was the 400; chunks not yet started were never sent.
    assert len(service.requests) < 20
