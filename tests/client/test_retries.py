"""Which failures the clients retry, how long they wait, and what they raise at the end.

Every test runs against both `RewardClient` and `AsyncRewardClient` (the `make_client`
fixture), with an injected sleep that records the waits instead of waiting.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable

import httpx
import pytest
from client_fakes import FakeService, Runner, SleepRecorder, error_response

from mentor_client import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseValidationError,
    RetriesExhaustedError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from mentor_client._base import parse_retry_after

MakeClient = Callable[..., Runner]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504], ids=lambda s: f"HTTP{s}")
def test_retryable_status_is_retried_then_succeeds(
    make_client: MakeClient, sleep: SleepRecorder, status: int
) -> None:
    service = FakeService(script=[status, status])
    client = make_client(service)
    assert client.health().status == "ok"
    assert len(service.requests) == 3
    assert len(sleep.waits) == 2


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (409, APIError),
        (413, PayloadTooLargeError),
        (422, BadRequestError),
    ],
    ids=lambda v: f"HTTP{v}" if isinstance(v, int) else v.__name__,
)
def test_client_error_is_raised_at_once_as_its_class(
    make_client: MakeClient, sleep: SleepRecorder, status: int, error_class: type[APIError]
) -> None:
    service = FakeService(script=[status])
    with pytest.raises(error_class) as caught:
        make_client(service).health()
    assert type(caught.value) is error_class
    assert caught.value.status_code == status
    assert caught.value.error.message == f"scripted {status}"
    assert len(service.requests) == 1
    assert sleep.waits == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.25", 0.25), ("600", 60.0)],
    ids=["seconds", "fraction", "capped-at-retry_after_max"],
)
def test_retry_after_replaces_the_backoff(
    make_client: MakeClient, sleep: SleepRecorder, header: str, expected: float
) -> None:
    limited = error_response(429, "rate_limited", "slow down", headers={"Retry-After": header})
    service = FakeService(script=[limited])
    make_client(service).health()
    assert sleep.waits == [expected]


def test_retry_after_on_503_is_honoured_too(make_client: MakeClient, sleep: SleepRecorder) -> None:
    busy = error_response(503, "not_ready", "warming up", headers={"Retry-After": "2"})
    make_client(FakeService(script=[busy])).health()
    assert sleep.waits == [2.0]


def test_backoff_without_jitter_doubles_up_to_the_cap(make_client: MakeClient, sleep: SleepRecorder) -> None:
    policy = RetryPolicy(max_retries=5, backoff_base=0.5, backoff_max=2.0, jitter=False)
    make_client(FakeService(script=[503] * 5), retry=policy).health()
    assert sleep.waits == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_jittered_backoff_stays_within_its_bounds(make_client: MakeClient, sleep: SleepRecorder) -> None:
    policy = RetryPolicy(max_retries=8, backoff_base=0.1, backoff_max=1.0)
    for _ in range(5):
        make_client(FakeService(script=[500] * 8), retry=policy).health()
    assert len(sleep.waits) == 40
    for index, wait in enumerate(sleep.waits):
        assert 0.0 <= wait <= min(1.0, 0.1 * 2 ** (index % 8))
    # Full jitter draws below the bound, not at it: 40 waits all at the bound would mean no jitter.
    assert len(set(sleep.waits)) > 10


def test_persistent_5xx_raises_retries_exhausted_never_a_result(
    make_client: MakeClient, sleep: SleepRecorder
) -> None:
    service = FakeService(script=[503] * 10)
    client = make_client(service, retry=RetryPolicy(max_retries=3, backoff_base=0.0))
    with pytest.raises(RetriesExhaustedError) as caught:
        client.score([{"completion": "c1"}])
    assert caught.value.attempts == 4
    assert isinstance(caught.value.last_error, ServerError)
    assert caught.value.__cause__ is caught.value.last_error
    assert len(service.requests) == 4
    assert len(sleep.waits) == 3


def test_rate_limit_exhaustion_keeps_the_retry_after(make_client: MakeClient) -> None:
    limited = error_response(429, "rate_limited", "slow down", headers={"Retry-After": "7"})
    client = make_client(FakeService(script=[limited]), retry=RetryPolicy(max_retries=0))
    with pytest.raises(RetriesExhaustedError) as caught:
        client.health()
    last = caught.value.last_error
    assert isinstance(last, RateLimitedError)
    assert last.retry_after == 7.0


@pytest.mark.parametrize(
    ("raised", "translated"),
    [
        (httpx.ConnectError("refused"), ConnectError),
        (httpx.ConnectTimeout("slow connect"), ConnectError),
        (httpx.ReadTimeout("slow read"), RequestTimeoutError),
        (httpx.ReadError("reset"), TransportError),
        (httpx.RemoteProtocolError("server hung up"), TransportError),
    ],
    ids=["connect-error", "connect-timeout", "read-timeout", "read-error", "remote-protocol"],
)
def test_transport_failures_are_retried_and_translated(
    make_client: MakeClient, sleep: SleepRecorder, raised: httpx.HTTPError, translated: type[TransportError]
) -> None:
    service = FakeService(script=[raised])
    assert make_client(service).health().status == "ok"
    assert len(sleep.waits) == 1

    service = FakeService(script=[raised] * 3)
    with pytest.raises(RetriesExhaustedError) as caught:
        make_client(service, retry=RetryPolicy(max_retries=2, backoff_base=0.0)).health()
    last = caught.value.last_error
    assert type(last) is translated
    assert last.__cause__ is raised  # the httpx exception stays reachable
    assert last.url == "http://svc:8000"


def test_unretryable_transport_failure_raises_at_once(make_client: MakeClient, sleep: SleepRecorder) -> None:
    raised = httpx.UnsupportedProtocol("no such scheme")
    service = FakeService(script=[raised])
    with pytest.raises(TransportError) as caught:
        make_client(service).health()
    assert type(caught.value) is TransportError
    assert caught.value.__cause__ is raised
    assert len(service.requests) == 1
    assert sleep.waits == []


def test_error_body_that_is_not_json_still_gives_a_typed_error(make_client: MakeClient) -> None:
    service = FakeService(script=[httpx.Response(400, text="plain words")])
    with pytest.raises(BadRequestError) as caught:
        make_client(service).health()
    assert caught.value.error.type == "http_error"
    assert caught.value.error.message == "plain words"


def test_error_param_is_kept(make_client: MakeClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        make_client(FakeService()).validate_spec(preset="nope")
    assert caught.value.error.param == "preset"
    assert "preset" in str(caught.value)


def test_success_with_a_foreign_body_is_a_validation_error(make_client: MakeClient) -> None:
    service = FakeService(script=[httpx.Response(200, json={"unexpected": True})])
    with pytest.raises(ResponseValidationError):
        make_client(service).presets()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("5", 5.0),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        (email.utils.formatdate(1_000_030.0, usegmt=True), 30.0),
        (email.utils.formatdate(999_000.0, usegmt=True), 0.0),
    ],
    ids=["absent", "seconds", "negative", "garbage", "nan", "http-date-future", "http-date-past"],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=1_000_000.0) == expected


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"backoff_base": -0.1}, {"backoff_max": -1.0}, {"retry_after_max": -1.0}],
    ids=["max_retries", "backoff_base", "backoff_max", "retry_after_max"],
)
def test_retry_policy_rejects_negative_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
