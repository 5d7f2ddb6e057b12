"""`RewardClient` (blocking) and `AsyncRewardClient` (asyncio): the reward service's HTTP API.

Both are thin: every decision (config, bodies, retries, errors, chunking, merging) lives in
`_base.py`; the two classes below differ only where I/O happens — how a request is sent, how
the retry wait is slept, how chunks run concurrently (a small thread pool / an
`asyncio.Semaphore`) and how the connection pool is closed.

    >>> import httpx
    >>> from mentor_client import RewardClient
    >>> def service(request: httpx.Request) -> httpx.Response:
    ...     return httpx.Response(200, json={"status": "ok", "version": "0.1.0"})
    >>> with RewardClient("http://reward:8000", transport=httpx.MockTransport(service)) as client:
    ...     client.health().status
    'ok'
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any, Self

import httpx

from ._base import (
    BaseClient,
    ClientConfig,
    ItemLike,
    RetryPolicy,
    decode,
    merge_score_responses,
    resolve_config,
)
from .exceptions import ServerError, TransportError
from .protocol import (
    API_PREFIX,
    ExecuteToolRequest,
    ExecuteToolResponse,
    HealthResponse,
    PresetList,
    RecordList,
    ScoreRequest,
    ScoreResponse,
    ToolsetList,
    ValidateSpecRequest,
    ValidateSpecResponse,
)

_V1 = API_PREFIX
# What a readiness probe reports as "not ready" rather than raising.
_NOT_READY = (ServerError, TransportError)


_JSON_HEADERS = {"Content-Type": "application/json"}


def _json_headers(body: bytes | None) -> dict[str, str] | None:
    return _JSON_HEADERS if body is not None else None


class RewardClient(BaseClient):
    """Blocking client of the reward service.

    Args:
        base_url: the service, or several replicas (chunks are spread round-robin across them
            and a replica that cannot be reached is skipped). Default: MENTOR_REWARD_URL, else
            http://127.0.0.1:8000.
        api_key: sent as a Bearer token. Default: MENTOR_REWARD_API_KEY.
        timeout, retry, chunk_size, max_concurrency: see `ClientConfig`; each keyword given
            replaces the value from `config` (or from the environment when `config` is None).
        transport: an `httpx.BaseTransport` (tests pass `httpx.MockTransport`).
        sleep: how to wait between retries (tests pass a recorder).

    Raises from every method: `MentorClientError` subclasses only (see `exceptions`).
    """

    def __init__(
        self,
        base_url: str | Sequence[str] | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        config: ClientConfig | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            resolve_config(
                config,
                base_url=base_url,
                api_key=api_key,
                timeout=timeout,
                retry=retry,
                chunk_size=chunk_size,
                max_concurrency=max_concurrency,
            )
        )
        self._sleep = sleep
        self._http = httpx.Client(headers=self._headers(), timeout=self._timeout(), transport=transport)

    # ------------------------------------------------------------------ I/O
    def _send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        replica: int | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        state = self._retry_state(replica, retry=retry)
        while True:
            try:
                response = self._http.request(
                    method, state.base_url + path, content=body, headers=_json_headers(body), params=params
                )
            except httpx.HTTPError as exc:
                delay = state.after_exception(exc)
            else:
                done = state.after_response(response)
                if done is None:
                    return response
                delay = done
            self._sleep(delay)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ API
    def score(
        self,
        items: Sequence[ItemLike],
        *,
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        toolset: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        parser: str = "auto",
        eos_tokens: Sequence[str] | None = None,
        run_id: str | None = None,
        step: int | None = None,
        reasons: bool = True,
    ) -> ScoreResponse:
        """Score a batch; results come back in the order of `items`.

        A batch over `chunk_size` items is sent as several requests (at most `max_concurrency`
        at once) and merged: results in order, `stats` recomputed over the whole batch. Items
        that cannot be scored come back with `reward=None` and `error`; a request that fails
        for good raises (`RetriesExhaustedError` after retries) — nothing is ever zero-filled.
        Name the reward with `preset` or `spec` (a `BadRequestError` otherwise); `eos_tokens`
        are the policy's end-of-sequence token(s), which tell a finished text from a truncated one.
        `reasons=False` asks the service to leave each result's `reason` text out (`""`): a
        smaller answer for a trainer that reads only rewards; errors keep their message.
        """
        requests = self._score_requests(
            items,
            preset=preset,
            spec=spec,
            overrides=overrides,
            toolset=toolset,
            tools=tools,
            parser=parser,
            eos_tokens=eos_tokens,
            run_id=run_id,
            step=step,
            reasons=reasons,
        )
        first = self._take_replicas(len(requests))
        workers = min(self._config.max_concurrency, len(requests))
        if workers == 1:
            responses = [self._score_chunk(request, first + i) for i, request in enumerate(requests)]
        else:
            responses = self._score_in_threads(requests, first, workers)
        return merge_score_responses(requests, responses)

    def _score_chunk(self, request: ScoreRequest, replica: int) -> ScoreResponse:
        response = self._send("POST", f"{_V1}/score", body=self._score_body(request), replica=replica)
        return decode(response, ScoreResponse)

    def _score_in_threads(self, requests: list[ScoreRequest], first: int, workers: int) -> list[ScoreResponse]:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mentor-score")
        futures: list[Future[ScoreResponse]] = [
            pool.submit(self._score_chunk, request, first + i) for i, request in enumerate(requests)
        ]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future in done and (error := future.exception()) is not None:
                    raise error
            return [f.result() for f in futures]
        finally:
            # On failure the chunks not yet started are dropped; running ones finish unobserved.
            pool.shutdown(wait=False, cancel_futures=True)

    def presets(self) -> PresetList:
        """The reward presets the service knows, with their specs and formulas."""
        return decode(self._send("GET", f"{_V1}/presets"), PresetList)

    def toolsets(self) -> ToolsetList:
        """The registered toolsets and their tool schemas (OpenAI format)."""
        return decode(self._send("GET", f"{_V1}/toolsets"), ToolsetList)

    def validate_spec(
        self,
        *,
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ValidateSpecResponse:
        """The resolved spec and its hash; an invalid spec raises `BadRequestError` naming the field."""
        request = ValidateSpecRequest.model_construct(
            preset=preset,
            spec=dict(spec) if spec is not None else None,
            overrides=dict(overrides) if overrides is not None else None,
        )
        response = self._send("POST", f"{_V1}/specs/validate", body=self._body(request))
        return decode(response, ValidateSpecResponse)

    def execute_tool(
        self, name: str, arguments: Mapping[str, Any] | None = None, *, toolset: str = "calculator"
    ) -> ExecuteToolResponse:
        """Run one registered deterministic tool; a failing tool is `ok=False`, not an exception."""
        request = ExecuteToolRequest(toolset=toolset, name=name, arguments=dict(arguments or {}))
        response = self._send("POST", f"{_V1}/tools/execute", body=self._body(request))
        return decode(response, ExecuteToolResponse)

    def records(
        self, *, run_id: str | None = None, step: int | None = None, limit: int | None = None, offset: int = 0
    ) -> RecordList:
        """One page of recorded scores (when the service records), filtered by run and step; pass
        the page's `next_offset` as `offset` for the next one."""
        params = self._records_params(run_id, step, limit, offset)
        return decode(self._send("GET", f"{_V1}/records", params=params), RecordList)

    def health(self) -> HealthResponse:
        """Liveness (`/healthz`), retried like any request."""
        return decode(self._send("GET", "/healthz"), HealthResponse)

    def ready(self) -> bool:
        """Readiness (`/readyz`) of every replica, asked once each without retries.

        True when all can score; False when one answers 5xx or cannot be reached. Other errors
        (a wrong API key) raise: waiting would not fix them.
        """
        for replica in range(len(self._config.base_urls)):
            try:
                self._send("GET", "/readyz", replica=replica, retry=False)
            except _NOT_READY:
                return False
        return True


class AsyncRewardClient(BaseClient):
    """The asyncio twin of `RewardClient`: same arguments, same methods, awaited.

    One instance belongs to one event loop (its connection pool does); create one per loop.
    `transport` is an `httpx.AsyncBaseTransport`; `sleep` an async callable.
    """

    def __init__(
        self,
        base_url: str | Sequence[str] | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        config: ClientConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            resolve_config(
                config,
                base_url=base_url,
                api_key=api_key,
                timeout=timeout,
                retry=retry,
                chunk_size=chunk_size,
                max_concurrency=max_concurrency,
            )
        )
        self._sleep = sleep
        self._http = httpx.AsyncClient(headers=self._headers(), timeout=self._timeout(), transport=transport)

    # ------------------------------------------------------------------ I/O
    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        replica: int | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        state = self._retry_state(replica, retry=retry)
        while True:
            try:
                response = await self._http.request(
                    method, state.base_url + path, content=body, headers=_json_headers(body), params=params
                )
            except httpx.HTTPError as exc:
                delay = state.after_exception(exc)
            else:
                done = state.after_response(response)
                if done is None:
                    return response
                delay = done
            await self._sleep(delay)

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ API
    async def score(
        self,
        items: Sequence[ItemLike],
        *,
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        toolset: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        parser: str = "auto",
        eos_tokens: Sequence[str] | None = None,
        run_id: str | None = None,
        step: int | None = None,
        reasons: bool = True,
    ) -> ScoreResponse:
        """Score a batch; see `RewardClient.score`. Chunks run concurrently, at most
        `max_concurrency` at once; the first failure cancels the chunks still running."""
        requests = self._score_requests(
            items,
            preset=preset,
            spec=spec,
            overrides=overrides,
            toolset=toolset,
            tools=tools,
            parser=parser,
            eos_tokens=eos_tokens,
            run_id=run_id,
            step=step,
            reasons=reasons,
        )
        first = self._take_replicas(len(requests))
        if len(requests) == 1:
            return merge_score_responses(requests, [await self._score_chunk(requests[0], first)])
        gate = asyncio.Semaphore(self._config.max_concurrency)

        async def bounded(request: ScoreRequest, replica: int) -> ScoreResponse:
            async with gate:
                return await self._score_chunk(request, replica)

        tasks = [asyncio.ensure_future(bounded(request, first + i)) for i, request in enumerate(requests)]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        for task in tasks:
            if task in done and not task.cancelled() and (error := task.exception()) is not None:
                for other in pending:
                    other.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                raise error
        return merge_score_responses(requests, [t.result() for t in tasks])

    async def _score_chunk(self, request: ScoreRequest, replica: int) -> ScoreResponse:
        response = await self._send("POST", f"{_V1}/score", body=self._score_body(request), replica=replica)
        return decode(response, ScoreResponse)

    async def presets(self) -> PresetList:
        return decode(await self._send("GET", f"{_V1}/presets"), PresetList)

    async def toolsets(self) -> ToolsetList:
        return decode(await self._send("GET", f"{_V1}/toolsets"), ToolsetList)

    async def validate_spec(
        self,
        *,
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ValidateSpecResponse:
        request = ValidateSpecRequest.model_construct(
            preset=preset,
            spec=dict(spec) if spec is not None else None,
            overrides=dict(overrides) if overrides is not None else None,
        )
        response = await self._send("POST", f"{_V1}/specs/validate", body=self._body(request))
        return decode(response, ValidateSpecResponse)

    async def execute_tool(
        self, name: str, arguments: Mapping[str, Any] | None = None, *, toolset: str = "calculator"
    ) -> ExecuteToolResponse:
        request = ExecuteToolRequest(toolset=toolset, name=name, arguments=dict(arguments or {}))
        response = await self._send("POST", f"{_V1}/tools/execute", body=self._body(request))
        return decode(response, ExecuteToolResponse)

    async def records(
        self, *, run_id: str | None = None, step: int | None = None, limit: int | None = None, offset: int = 0
    ) -> RecordList:
        params = self._records_params(run_id, step, limit, offset)
        return decode(await self._send("GET", f"{_V1}/records", params=params), RecordList)

    async def health(self) -> HealthResponse:
        return decode(await self._send("GET", "/healthz"), HealthResponse)

    async def ready(self) -> bool:
        for replica in range(len(self._config.base_urls)):
            try:
                await self._send("GET", "/readyz", replica=replica, retry=False)
            except _NOT_READY:
                return False
        return True
