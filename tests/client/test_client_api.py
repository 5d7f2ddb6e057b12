"""The clients' methods, headers and configuration against the fake service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from client_fakes import FakeService, Runner

from mentor_client import (
    AsyncRewardBackend,
    AsyncRewardClient,
    AuthenticationError,
    ClientConfig,
    RetryPolicy,
    RewardBackend,
    RewardClient,
)
from mentor_client.protocol import ScoreItem

MakeClient = Callable[..., Runner]


def test_discovery_and_tools(make_client: MakeClient) -> None:
    service = FakeService()
    client = make_client(service)
    assert [p.name for p in client.presets().presets] == ["mentor"]
    assert client.toolsets().toolsets[0].executable == ["add"]
    assert client.validate_spec(preset="mentor").spec_hash == "abc123"
    executed = client.execute_tool("add", {"a": 2, "b": 3})
    assert (executed.ok, executed.result, executed.content) == (True, 5, "5")
    assert json.loads(service.requests[-1].content) == {
        "toolset": "calculator",
        "name": "add",
        "arguments": {"a": 2, "b": 3},
    }


def test_records_sends_its_filters_as_query_parameters(make_client: MakeClient) -> None:
    service = FakeService()
    records = make_client(service).records(run_id="run-7", step=3, limit=10).records
    assert (records[0].run_id, records[0].step) == ("run-7", 3)
    params = service.requests[-1].url.params
    assert dict(params) == {"run_id": "run-7", "step": "3", "limit": "10"}


def test_health_and_readiness(make_client: MakeClient) -> None:
    service = FakeService()
    client = make_client(service)
    assert client.health().status == "ok"
    assert client.ready() is True


@pytest.mark.parametrize("service_kwargs", [{"script": [503]}, {"down": {"svc"}}], ids=["503", "unreachable"])
def test_not_ready_is_false_and_asked_once(make_client: MakeClient, service_kwargs: dict[str, object]) -> None:
    service = FakeService(**service_kwargs)  # type: ignore[arg-type,unused-ignore]
    assert make_client(service).ready() is False
    assert len(service.requests) == 1


def test_readiness_with_a_wrong_key_raises(make_client: MakeClient) -> None:
    with pytest.raises(AuthenticationError):
        make_client(FakeService(script=[401])).ready()


def test_readiness_asks_every_replica(make_client: MakeClient) -> None:
    service = FakeService(down={"b"})
    assert make_client(service, base_url=["http://a:1", "http://b:1"]).ready() is False
    assert [r.url.host for r in service.requests] == ["a", "b"]


@pytest.mark.parametrize(("api_key", "expected"), [("sk-1", "Bearer sk-1"), (None, None)], ids=["key", "no-key"])
def test_headers(make_client: MakeClient, api_key: str | None, expected: str | None) -> None:
    service = FakeService()
    make_client(service, api_key=api_key).health()
    headers = service.requests[0].headers
    assert headers.get("authorization") == expected
    assert headers["user-agent"].startswith("mentor-client/")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://svc:8000/", "http://svc:8000"),
        ("http://svc:8000/v1", "http://svc:8000"),
        ("https://proxy.example/reward/", "https://proxy.example/reward"),
    ],
    ids=["trailing-slash", "v1-suffix", "path-prefix"],
)
def test_base_url_is_normalised(given: str, expected: str) -> None:
    seen: list[str] = []

    def service(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"status": "ok"})

    client = RewardClient(given, transport=httpx.MockTransport(service))
    assert client.base_urls == (expected,)
    client.health()
    assert seen == [expected + "/healthz"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_urls": ()},
        {"base_urls": ("ftp://svc",)},
        {"base_urls": ("svc:8000",)},
        {"timeout": 0},
        {"chunk_size": 0},
        {"max_concurrency": 0},
    ],
    ids=["no-url", "bad-scheme", "no-scheme", "timeout", "chunk_size", "max_concurrency"],
)
def test_invalid_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ClientConfig(**kwargs)  # type: ignore[arg-type]


def test_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTOR_REWARD_URL", "http://a:1, http://b:2/")
    monkeypatch.setenv("MENTOR_REWARD_API_KEY", "sk-env")
    monkeypatch.setenv("MENTOR_REWARD_TIMEOUT", "12.5")
    client = RewardClient()
    assert client.config.base_urls == ("http://a:1", "http://b:2")
    assert client.config.api_key == "sk-env"
    assert client.config.timeout == 12.5
    # An explicit keyword wins over the environment; a given config is not mixed with it.
    assert RewardClient("http://c:3").base_urls == ("http://c:3",)
    assert RewardClient(config=ClientConfig()).base_urls == ("http://127.0.0.1:8000",)


def test_keywords_override_a_given_config() -> None:
    base = ClientConfig(base_urls=("http://a:1",), chunk_size=8, retry=RetryPolicy(max_retries=1))
    client = RewardClient(config=base, chunk_size=16)
    assert client.config.chunk_size == 16
    assert client.config.retry.max_retries == 1
    assert client.config.base_urls == ("http://a:1",)


def test_api_key_is_not_in_the_repr() -> None:
    assert "sk-secret" not in repr(ClientConfig(api_key="sk-secret"))


def test_items_may_be_dicts_or_models_and_are_sent_as_given(make_client: MakeClient) -> None:
    service = FakeService()
    client = make_client(service)
    response = client.score([ScoreItem(completion="c1"), {"completion": "c2", "ground_truth": "2"}])
    assert [r.reward for r in response.results] == [1.0, 2.0]
    # A malformed item is the service's to judge (it becomes that item's error there, and its
    # neighbours are scored): the client never fails a whole batch for one item.
    client.score([{"ground_truth": "no completion"}, {"completion": "c3"}])
    assert len(service.requests) == 2
    with pytest.raises(TypeError):
        client.score("c1")
    assert len(service.requests) == 2


def test_clients_satisfy_the_backend_protocols() -> None:
    assert isinstance(RewardClient("http://svc"), RewardBackend)
    assert isinstance(AsyncRewardClient("http://svc"), AsyncRewardBackend)


def test_context_managers_close_the_pool() -> None:
    transport = httpx.MockTransport(FakeService())
    with RewardClient("http://svc", transport=transport) as client:
        client.health()
    assert client._http.is_closed

    async def run() -> AsyncRewardClient:
        async with AsyncRewardClient("http://svc", transport=httpx.MockTransport(FakeService())) as aclient:
            await aclient.health()
        return aclient

    assert asyncio.run(run()).is_closed
