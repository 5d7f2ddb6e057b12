"""A scripted stand-in for the reward service, served through `httpx.MockTransport`.

It answers every route of the v1 API with the wire models, records each request, and can be
told to fail: per host (`down={"b"}` refuses connections to host b) or by a script of answers
consumed one per request (`script=[503, 503]`: two 503s, then normal answers).

Scores are a pure function of the completion text `"c<N>"`, so order and merging are
checkable: reward N, `outcome` 1.0 for even N else 0.0, `tool_names` None when 3 divides N
else N/100, N % 2 tool calls, one invalid tool when N % 4 == 1. A completion starting with
`bad` is an item error. Its batch stats use their own formulas (not the client's code).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpx

from mentor_client.protocol import (
    BatchStats,
    ErrorInfo,
    ErrorResponse,
    ExecuteToolResponse,
    HealthResponse,
    ItemResult,
    PresetInfo,
    PresetList,
    RecordList,
    ScoreRecord,
    ScoreRequest,
    ScoreResponse,
    ToolsetInfo,
    ToolsetList,
    ValidateSpecResponse,
)

SPEC = {"name": "mentor", "components": {"outcome": {"weight": 0.7}, "tool_names": {"weight": 0.3}}}
SPEC_HASH = "abc123"


def fake_result(completion: Any, *, with_counts: bool = True) -> ItemResult:
    text = completion if isinstance(completion, str) else json.dumps(completion)
    if text.startswith("bad"):
        return ItemResult(reward=None, reason="bad", error=ErrorInfo(type="invalid_item", message="bad item"))
    n = int(text[1:]) if text[:1] == "c" and text[1:].isdigit() else len(text)
    return ItemResult(
        reward=float(n),
        components={"outcome": 1.0 if n % 2 == 0 else 0.0, "tool_names": None if n % 3 == 0 else n / 100},
        reason=f"n={n}",
        n_tool_calls=(n % 2) if with_counts else None,
        n_invalid_tools=(1 if n % 4 == 1 else 0) if with_counts else None,
    )


def fake_stats(results: list[ItemResult], *, with_counts: bool = True) -> BatchStats:
    ok = [r for r in results if r.error is None]
    outcome = [r.components["outcome"] for r in ok if r.components.get("outcome") is not None]
    tools = [r.components["tool_names"] for r in ok if r.components.get("tool_names") is not None]
    calls: list[int] = [int(r.reason[2:]) % 2 for r in ok]
    invalid: list[int] = [1 if int(r.reason[2:]) % 4 == 1 else 0 for r in ok]
    total_calls = sum(calls)
    return BatchStats(
        n_items=len(results),
        n_errors=len(results) - len(ok),
        mean_reward=(sum(r.reward or 0.0 for r in ok) / len(ok)) if ok else None,
        component_means={
            "outcome": (sum(v or 0.0 for v in outcome) / len(outcome)) if outcome else None,
            "tool_names": (sum(v or 0.0 for v in tools) / len(tools)) if tools else None,
        }
        if ok
        else {},
        tool_call_rate=(sum(1 for c in calls if c) / len(ok)) if ok else None,
        invalid_tool_rate=(sum(invalid) / total_calls) if with_counts and total_calls > 0 else None,
    )


class FakeService:
    """Callable handler for `httpx.MockTransport`; see the module docstring."""

    def __init__(
        self,
        *,
        script: Iterable[int | Exception | httpx.Response] = (),
        down: Iterable[str] = (),
        with_counts: bool = True,
        spec_hash_by_host: dict[str, str] | None = None,
        drop_last_result: bool = False,
        delay_s: float = 0.0,
    ) -> None:
        self.script: deque[int | Exception | httpx.Response] = deque(script)
        self.down = set(down)
        self.with_counts = with_counts
        self.spec_hash_by_host = spec_hash_by_host or {}
        self.drop_last_result = drop_last_result
        self.delay_s = delay_s
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ inspection
    def bodies(self, path: str = "/v1/score") -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path and r.content]

    @staticmethod
    def first_item(request: httpx.Request) -> int:
        """N of the first item `cN` of a score request."""
        completion = json.loads(request.content)["items"][0]["completion"]
        return int(completion[1:])

    def hosts(self, path: str = "/v1/score") -> list[str]:
        return [r.url.host for r in self.requests if r.url.path == path]

    # ------------------------------------------------------------------ transport handlers
    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            with self._lock:
                return self._answer(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return self._answer(request)
        finally:
            self.in_flight -= 1

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_async)

    # ------------------------------------------------------------------ answers
    def _answer(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.script:
            step = self.script.popleft()
            if isinstance(step, Exception):
                raise step
            if isinstance(step, httpx.Response):
                return step
            return error_response(step, "scripted", f"scripted {step}")
        return self._route(request)

    def _route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/score":
            payload = json.loads(request.content)
            # The fake scores whatever reward is named (or none): the real service's 400 for an
            # unnamed reward is tested end to end, against the service itself.
            payload.setdefault("preset", "mentor")
            body = ScoreRequest.model_validate(payload)
            results = [fake_result(item.get("completion"), with_counts=self.with_counts) for item in body.items]
            if self.drop_last_result:
                results = results[:-1]
            response = ScoreResponse(
                results=results,
                spec_hash=self.spec_hash_by_host.get(request.url.host, SPEC_HASH),
                preset=body.preset,
                stats=fake_stats(results, with_counts=self.with_counts),
            )
            return json_response(response)
        if path == "/v1/presets":
            info = PresetInfo(
                name="mentor",
                description="d",
                formula="f",
                reward_range=(0.0, 1.1),
                spec=SPEC,
                spec_hash=SPEC_HASH,
            )
            return json_response(PresetList(presets=[info]))
        if path == "/v1/toolsets":
            tool = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
            return json_response(
                ToolsetList(toolsets=[ToolsetInfo(name="calculator", tools=[tool], executable=["add"])])
            )
        if path == "/v1/specs/validate":
            body = json.loads(request.content)
            if body.get("preset") == "nope":
                return error_response(404, "not_found", "unknown preset 'nope'", param="preset")
            return json_response(ValidateSpecResponse(spec=SPEC, spec_hash=SPEC_HASH))
        if path == "/v1/tools/execute":
            body = json.loads(request.content)
            total = sum(body["arguments"].values())
            return json_response(ExecuteToolResponse(ok=True, result=total, content=str(total)))
        if path == "/v1/records":
            record = ScoreRecord(
                run_id=request.url.params.get("run_id"),
                step=int(request.url.params.get("step", "0")),
                spec_hash=SPEC_HASH,
                preset="mentor",
                item={"completion": "c1"},
                reward=1.0,
                components={},
                reason="",
                created_at=0.0,
            )
            return json_response(RecordList(records=[record]))
        if path == "/healthz":
            return json_response(HealthResponse(status="ok", version="test"))
        if path == "/readyz":
            return json_response(HealthResponse(status="ready"))
        return error_response(404, "not_found", f"no route {path}")


def json_response(model: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=model.model_dump_json(),
        headers={"content-type": "application/json", **(headers or {})},
    )


def error_response(
    status: int, kind: str, message: str, *, param: str | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = ErrorResponse(error=ErrorInfo(type=kind, message=message, param=param))
    return json_response(body, status, headers)


class SleepRecorder:
    """Injectable sleep: records the requested waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


class Runner:
    """One client under test, sync or async, with the same call syntax: `runner.health()`.

    Async methods run in a fresh `asyncio.run` each; MockTransport keeps no connections, so
    one AsyncRewardClient may serve several loops here (a real one must not).
    """

    def __init__(self, kind: str, service: FakeService, sleep: SleepRecorder, **kwargs: Any) -> None:
        from mentor_client import AsyncRewardClient, RewardClient

        self.kind = kind
        kwargs.setdefault("base_url", "http://svc:8000")
        self.client: RewardClient | AsyncRewardClient
        if kind == "sync":
            self.client = RewardClient(transport=service.transport(), sleep=sleep, **kwargs)
        else:
            self.client = AsyncRewardClient(transport=service.async_transport(), sleep=sleep.async_sleep, **kwargs)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if self.kind == "sync":
            return method

        def run(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run(method(*args, **kwargs))

        return run
