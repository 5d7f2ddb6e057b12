"""Everything the sync and async clients share that does no I/O.

Configuration (`ClientConfig`, `RetryPolicy`), request bodies, response decoding, the mapping
of HTTP failures to the exception tree, the retry decision, and the splitting of a large batch
into chunks and its re-assembly in order. `RewardClient` and `AsyncRewardClient` add only the
sending, the sleeping and the concurrency; keeping the decisions here means the two cannot
disagree about which failure is retried or how a batch is merged.
"""

from __future__ import annotations

import dataclasses
import email.utils
import itertools
import json
import math
import os
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from ._version import __version__
from .exceptions import (
    APIError,
    ConnectError,
    MentorClientError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseValidationError,
    RetriesExhaustedError,
    TransportError,
    api_error_class,
)
from .protocol import (
    API_PREFIX,
    ErrorInfo,
    ErrorResponse,
    ItemResult,
    ScoreItem,
    ScoreRequest,
    ScoreResponse,
)
from .results import batch_stats

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
ENV_URL = "MENTOR_REWARD_URL"
ENV_API_KEY = "MENTOR_REWARD_API_KEY"
ENV_TIMEOUT = "MENTOR_REWARD_TIMEOUT"

# 408 and 429 are the only 4xx answers that say "try again"; every other 4xx is the caller's
# mistake and repeating it cannot help.
_RETRYABLE_4XX = frozenset({408, 429})

ModelT = TypeVar("ModelT", bound=BaseModel)
ItemLike = ScoreItem | Mapping[str, Any]


# ---------------------------------------------------------------------------- configuration
@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How failed requests are retried.

    Only connection errors, timeouts, 408, 429 and 5xx are retried, at most `max_retries`
    times. The wait before retry `n` (0-based) is drawn uniformly from `[bound / 2, bound]`
    with `bound = min(backoff_max, backoff_base * 2**n)` (jittered, so replicas hit by the same
    outage do not retry in lockstep, yet never short), or is exactly `bound` with
    `jitter=False`. With the defaults the waits add up to at least 15.75 s (at most 31.5 s),
    so a service restart of up to 15 s costs no request. A `Retry-After` header (429, 503)
    replaces the drawn wait, capped at `retry_after_max`.
    """

    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    retry_after_max: float = 60.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_after_max < 0:
            raise ValueError("backoff_base, backoff_max and retry_after_max must be >= 0")

    def delay(self, retry_index: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry_index` (0 for the first retry)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        # min() before the power would overflow for absurd retry counts; 2**60 is already huge.
        bound = min(self.backoff_max, self.backoff_base * 2.0 ** min(retry_index, 60))
        return random.uniform(bound / 2, bound) if self.jitter else bound


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientConfig:
    """Where the service is and how to talk to it.

    `base_urls`: one or several replicas (`http://host:8000`; a trailing `/v1` is accepted).
    Chunks of a batch are spread round-robin across replicas, and a request that cannot reach
    one replica is retried on the next. `api_key` is sent as `Authorization: Bearer <key>`.
    `timeout` (seconds) bounds each request; connecting is bounded by `min(timeout, 10)` so a
    dead replica is left quickly. A batch larger than `chunk_size` items is sent as several
    requests, at most `max_concurrency` at a time.
    """

    base_urls: tuple[str, ...] = (DEFAULT_BASE_URL,)
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    chunk_size: int = 256
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        urls = (self.base_urls,) if isinstance(self.base_urls, str) else tuple(self.base_urls)
        if not urls:
            raise ValueError("base_urls needs at least one URL")
        object.__setattr__(self, "base_urls", tuple(_normalise_url(u) for u in urls))
        if not self.timeout > 0:
            raise ValueError("timeout must be > 0 seconds")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")

    @classmethod
    def from_env(cls, **overrides: Any) -> ClientConfig:
        """Defaults, then MENTOR_REWARD_URL (comma-separated replicas), MENTOR_REWARD_API_KEY and
        MENTOR_REWARD_TIMEOUT, then `overrides` (None values are ignored)."""
        values: dict[str, Any] = {}
        url = os.environ.get(ENV_URL, "").strip()
        if url:
            values["base_urls"] = tuple(part.strip() for part in url.split(",") if part.strip())
        key = os.environ.get(ENV_API_KEY, "").strip()
        if key:
            values["api_key"] = key
        timeout = os.environ.get(ENV_TIMEOUT, "").strip()
        if timeout:
            try:
                values["timeout"] = float(timeout)
            except ValueError as exc:
                raise ValueError(f"{ENV_TIMEOUT} must be a number of seconds, got {timeout!r}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _normalise_url(url: str) -> str:
    if not isinstance(url, str):
        raise TypeError(f"a base URL must be a string, got {type(url).__name__}")
    url = url.strip().rstrip("/")
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)]
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"base URL must look like http://host:port, got {url!r}")
    return url


def resolve_config(
    config: ClientConfig | None,
    *,
    base_url: str | Sequence[str] | None = None,
    api_key: str | None = None,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    chunk_size: int | None = None,
    max_concurrency: int | None = None,
) -> ClientConfig:
    """The clients' constructor rule: `config` (or the environment when absent), then every
    keyword that is not None."""
    overrides: dict[str, Any] = {
        "api_key": api_key,
        "timeout": timeout,
        "retry": retry,
        "chunk_size": chunk_size,
        "max_concurrency": max_concurrency,
    }
    if base_url is not None:
        overrides["base_urls"] = (base_url,) if isinstance(base_url, str) else tuple(base_url)
    if config is None:
        return ClientConfig.from_env(**overrides)
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


# ---------------------------------------------------------------------------- errors
def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or
    unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


def error_from_response(response: httpx.Response) -> APIError:
    """The exception for an error answer, reading the `ErrorResponse` body when there is one."""
    try:
        info = ErrorResponse.model_validate_json(response.content).error
    except ValidationError:
        text = response.text.strip()
        info = ErrorInfo(type="http_error", message=text[:500] or response.reason_phrase or "no body")
    status = response.status_code
    cls = api_error_class(status)
    if cls is RateLimitedError:
        return RateLimitedError(status, info, parse_retry_after(response.headers.get("retry-after")))
    return cls(status, info)


def is_retryable_status(status_code: int) -> bool:
    return status_code in _RETRYABLE_4XX or status_code >= 500


def translate_transport_error(exc: httpx.HTTPError, url: str) -> tuple[TransportError, bool]:
    """Our exception for an httpx one, and whether retrying can help."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ConnectError(f"cannot connect to {url}: {detail}", url=url), True
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(f"request to {url} timed out: {detail}", url=url), True
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return TransportError(f"connection to {url} failed: {detail}", url=url), True
    # Unsupported protocol, local protocol violations, proxy errors: the same request fails again.
    return TransportError(f"request to {url} failed: {detail}", url=url), False


def decode(response: httpx.Response, model: type[ModelT]) -> ModelT:
    """A successful body as a protocol model; a mismatch is a `ResponseValidationError`."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        where = f"{response.request.method} {response.request.url.path}"
        raise ResponseValidationError(f"{where}: the answer is not a valid {model.__name__}: {exc}") from exc


class RetryState:
    """The retry loop's memory for one logical request: attempts made, replica in use.

    The clients loop `send → after_response / after_exception → sleep(delay)`; these two
    methods return the delay before the next attempt (None from `after_response`: done) or
    raise the final exception.
    """

    def __init__(self, config: ClientConfig, replica: int, *, retry: bool = True) -> None:
        self._config = config
        self._replica = replica
        self._retry = retry
        self.attempts = 0

    @property
    def base_url(self) -> str:
        urls = self._config.base_urls
        return urls[self._replica % len(urls)]

    def after_response(self, response: httpx.Response) -> float | None:
        self.attempts += 1
        if response.status_code < 400:
            return None
        error = error_from_response(response)
        if not is_retryable_status(response.status_code):
            raise error
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return self._next(error, retry_after)

    def after_exception(self, exc: httpx.HTTPError) -> float:
        self.attempts += 1
        error, retryable = translate_transport_error(exc, self.base_url)
        error.__cause__ = exc  # what `raise error from exc` would record, wherever it is raised
        if not retryable:
            raise error
        # The replica did not answer at all: the next attempt goes to the next replica.
        self._replica += 1
        return self._next(error, None)

    def _next(self, error: MentorClientError, retry_after: float | None) -> float:
        if not self._retry:
            raise error
        if self.attempts > self._config.retry.max_retries:
            raise RetriesExhaustedError(self.attempts, error) from error
        return self._config.retry.delay(self.attempts - 1, retry_after)


# ---------------------------------------------------------------------------- the shared base
class BaseClient:
    """Configuration, headers, chunking and merging shared by both clients."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._rotation = itertools.count()
        self._rotation_lock = threading.Lock()

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def base_urls(self) -> tuple[str, ...]:
        return self._config.base_urls

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_urls={list(self._config.base_urls)!r})"

    # ------------------------------------------------------------------ request building
    def _headers(self) -> dict[bytes, bytes]:
        headers = {b"User-Agent": f"mentor-client/{__version__}".encode(), b"Accept": b"application/json"}
        if self._config.api_key:
            # As UTF-8 bytes: a key with non-ASCII characters is sent as the service compares it.
            headers[b"Authorization"] = f"Bearer {self._config.api_key}".encode("utf-8", "surrogatepass")
        return headers

    def _timeout(self) -> httpx.Timeout:
        timeout = self._config.timeout
        return httpx.Timeout(timeout, connect=min(timeout, 10.0))

    def _take_replicas(self, count: int) -> int:
        """The replica for the first of `count` requests; successive calls keep rotating."""
        with self._rotation_lock:
            start = next(self._rotation)
            for _ in range(count - 1):
                next(self._rotation)
        return start

    def _retry_state(self, replica: int | None = None, *, retry: bool = True) -> RetryState:
        if replica is None:
            replica = self._take_replicas(1)
        return RetryState(self._config, replica, retry=retry)

    @staticmethod
    def _body(model: BaseModel, exclude: set[str] | None = None) -> bytes:
        # pydantic's own serialiser writes the JSON directly (several times faster than
        # model_dump followed by json.dumps on a 1024-item batch).
        try:
            return model.model_dump_json(exclude_none=True, exclude=exclude).encode()
        except PydanticSerializationError:
            # Model output may hold lone UTF-16 surrogates, which UTF-8 cannot carry; JSON's
            # \uXXXX escapes can, and the service reads them back as the same string.
            return json.dumps(model.model_dump(exclude_none=True, exclude=exclude), ensure_ascii=True).encode()

    @classmethod
    def _score_body(cls, request: ScoreRequest) -> bytes:
        # `reasons` goes out only when it asks for something (false): a server older than the
        # field refuses a request that names it, and true is every server's behaviour.
        return cls._body(request, exclude=None if not request.reasons else {"reasons"})

    @staticmethod
    def _records_params(
        run_id: str | None, step: int | None, limit: int | None, offset: int | None = None
    ) -> dict[str, str | int]:
        params: dict[str, str | int] = {}
        if offset:
            params["offset"] = offset
        if run_id is not None:
            params["run_id"] = run_id
        if step is not None:
            params["step"] = step
        if limit is not None:
            params["limit"] = limit
        return params

    def _score_requests(
        self,
        items: Sequence[ItemLike],
        *,
        preset: str | None,
        spec: Mapping[str, Any] | None,
        overrides: Mapping[str, Any] | None,
        toolset: str | None,
        tools: Sequence[Mapping[str, Any]] | None,
        parser: str,
        eos_tokens: Sequence[str] | None,
        run_id: str | None,
        step: int | None,
        reasons: bool = True,
    ) -> list[ScoreRequest]:
        """One request per chunk of `chunk_size` items, all with the same reward settings.

        Items are sent as given (a `ScoreItem` as its JSON): the service reads each one on its
        own, so a malformed item comes back as that item's error instead of failing the batch
        here. The reward choice is the service's to check (a request naming none is its 400).
        """
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise TypeError("items must be a sequence of ScoreItem or dicts")
        wire = [item_payload(item) for item in items]
        size = self._config.chunk_size
        chunks = [wire[i : i + size] for i in range(0, len(wire), size)] or [[]]
        common: dict[str, Any] = {
            "preset": preset,
            "spec": dict(spec) if spec is not None else None,
            "overrides": dict(overrides) if overrides is not None else None,
            "toolset": toolset,
            "tools": [dict(t) for t in tools] if tools is not None else None,
            "parser": parser,
            "eos_tokens": list(eos_tokens) if eos_tokens is not None else None,
            "run_id": run_id,
            "step": step,
            "reasons": bool(reasons),
        }
        # Built without validation: every field is typed by this signature, and the service,
        # not this process, decides what a request may say (one validation, server-side).
        return [ScoreRequest.model_construct(items=chunk, **common) for chunk in chunks]


def item_payload(item: ItemLike) -> Any:
    """An item as sent: a `ScoreItem` as its JSON object, anything else as given."""
    if isinstance(item, ScoreItem):
        return item.model_dump(mode="json", exclude_none=True)
    return item


# ---------------------------------------------------------------------------- merging chunks
def merge_score_responses(requests: Sequence[ScoreRequest], responses: Sequence[ScoreResponse]) -> ScoreResponse:
    """Re-assemble chunk answers in request order, checking each against its request.

    An item's error names its index in the caller's whole batch (`items[1030]`), not in its chunk.
    """
    for index, (request, response) in enumerate(zip(requests, responses, strict=True)):
        if len(response.results) != len(request.items):
            raise ResponseValidationError(
                f"chunk {index}: sent {len(request.items)} items, got {len(response.results)} results"
            )
    first = responses[0]
    hashes = {r.spec_hash for r in responses}
    if len(hashes) > 1:
        # Replicas configured differently would otherwise mix two rewards in one batch.
        raise ResponseValidationError(f"replicas scored with different specs: {sorted(hashes)}")
    if len(responses) == 1:
        return first
    results: list[ItemResult] = []
    for response in responses:
        offset = len(results)
        results.extend(_shift_index(result, offset) for result in response.results)
    return ScoreResponse(results=results, spec_hash=first.spec_hash, preset=first.preset, stats=batch_stats(results))


_ITEM_INDEX = re.compile(r"items\[(\d+)\]")


def _shift_index(result: ItemResult, offset: int) -> ItemResult:
    error = result.error
    if offset == 0 or error is None:
        return result

    def shifted(text: str) -> str:
        return _ITEM_INDEX.sub(lambda m: f"items[{int(m.group(1)) + offset}]", text, count=1)

    moved = error.model_copy(
        update={"param": shifted(error.param) if error.param else None, "message": shifted(error.message)}
    )
    return result.model_copy(update={"error": moved, "reason": shifted(result.reason)})
