"""`teach`'s options, its report, and the chat-completions endpoint it talks to (retries, backoff,
failures that stop the run). Kept free of the training stack: the reward image runs `teach`."""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # httpx loads when a run starts, so registering the command costs nothing
    import httpx

# Why an attempt was discarded (exactly one per discarded attempt).
FAILURE_REASONS = (
    "wrong_answer",  # a boxed answer that does not verify
    "no_answer",  # a final turn without a \boxed{} answer
    "truncated",  # the final turn hit the token limit
    "turn_limit",  # still calling tools after --max-turns requests
    "tool_errors",  # a correct answer after failed or malformed calls (see --allow-tool-errors)
    "request_failed",  # the endpoint kept failing (after retries), or timed out
    "request_rejected",  # the endpoint refused the request (a 4xx other than auth / not found)
    "bad_response",  # a 200 whose body is not a chat completion
)
# Attempts that say nothing about the model: a rerun tries the task again.
_TRANSIENT = frozenset({"request_failed"})
_RETRY_STATUS = frozenset({408, 409, 425, 429})
_FATAL_STATUS = frozenset({401, 403, 404})
_MAX_BACKOFF_S = 30.0


class EndpointError(RuntimeError):
    """The endpoint cannot serve this run at all (unreachable, bad key, unknown model): stop, do not retry."""


# ---------------------------------------------------------------------------- options and report
@dataclass(frozen=True, slots=True)
class TeachOptions:
    """How to talk to the teacher and how hard to try.

    `toolset` None uses each row's own `toolset` column (else "calculator"). `samples_per_task`
    is the number of attempts per task; attempts stop early once `keep_per_task` traces of the
    task were kept. `max_turns` counts requests (assistant turns) per attempt. `temperature`,
    `max_tokens` and `seed` are sent only when set; `extra_body` is merged into every request
    (e.g. `{"top_p": 0.9, "chat_template_kwargs": {"enable_thinking": false}}`).
    """

    endpoint: str
    model: str
    api_key: str | None = None
    toolset: str | None = None
    max_turns: int = 6
    samples_per_task: int = 1
    keep_per_task: int = 1
    concurrency: int = 8
    max_retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 300.0
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    extra_body: dict[str, Any] | None = None
    allow_tool_errors: bool = False
    retry_failed: bool = False
    limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_turns", "samples_per_task", "keep_per_task", "concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1")
        if self.max_retries < 0:
            raise ValueError("max-retries must be 0 or more")
        if self.keep_per_task > self.samples_per_task:
            raise ValueError("keep-per-task cannot exceed samples-per-task")


@dataclass
class TeachReport:
    """What a run did. Counts are this run's; `skipped` tasks were already done by an earlier run."""

    endpoint: str
    model: str
    split: str
    out: str
    tasks: int = 0
    skipped: int = 0
    attempted_tasks: int = 0
    attempts: int = 0
    kept: int = 0
    kept_tasks: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # the first message seen per failure reason
    requests: int = 0
    retries: int = 0
    tool_calls: int = 0
    seconds: float = 0.0

    @property
    def keep_rate(self) -> float:
        return self.kept / self.attempts if self.attempts else 0.0

    @property
    def task_keep_rate(self) -> float:
        return self.kept_tasks / self.attempted_tasks if self.attempted_tasks else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["keep_rate"] = round(self.keep_rate, 4)
        data["task_keep_rate"] = round(self.task_keep_rate, 4)
        return data

    def lines(self) -> list[str]:
        failures = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items(), key=lambda kv: -kv[1]))
        return [
            f"tasks: {self.tasks} ({self.skipped} already done, {self.attempted_tasks} attempted)",
            f"attempts: {self.attempts}, kept: {self.kept} (keep rate {self.keep_rate:.1%}; "
            f"tasks with a kept trace {self.kept_tasks}/{self.attempted_tasks})",
            f"failures: {failures or 'none'}",
            f"requests: {self.requests} ({self.retries} retries), tool calls: {self.tool_calls}, {self.seconds:.1f} s",
        ]


# ---------------------------------------------------------------------------- the endpoint
def chat_completions_url(endpoint: str) -> str:
    """`http://h:p`, `http://h:p/v1` or the full `.../chat/completions` URL → the full URL."""
    url = endpoint.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--endpoint must be an http(s) URL, got {endpoint!r}")
    if url.endswith("/chat/completions"):
        return url
    if re.search(r"/v\d+[a-z]*$", url):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class Reply:
    """One chat completion: the assistant message and why it stopped, or why there is none."""

    message: dict[str, Any] | None
    finish_reason: str | None = None
    failure: str | None = None
    detail: str = ""


class ChatEndpoint:
    """POSTs chat completions with retries: connection errors, timeouts, 408/409/425/429 and 5xx are
    retried with exponential backoff and jitter (a `Retry-After` header wins); 401/403/404 stop the
    run (`EndpointError`); other 4xx fail the attempt. `transport` swaps the network (tests)."""

    def __init__(self, options: TeachOptions, transport: httpx.AsyncBaseTransport | None = None) -> None:
        import httpx

        self.url = chat_completions_url(options.endpoint)
        self.options = options
        headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(options.timeout_s, connect=min(options.timeout_s, 10.0)),
            limits=httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=options.concurrency),
            transport=transport,
        )
        self._semaphore = asyncio.Semaphore(options.concurrency)
        self.requests = 0
        self.retries = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    def body(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], sample: int) -> dict[str, Any]:
        o = self.options
        body: dict[str, Any] = {"model": o.model, "messages": messages}
        if tools:
            body["tools"] = tools
        if o.temperature is not None:
            body["temperature"] = o.temperature
        if o.max_tokens is not None:
            body["max_tokens"] = o.max_tokens
        if o.seed is not None:
            body["seed"] = o.seed + sample
        body.update(o.extra_body or {})
        return body

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            header = response.headers.get("retry-after")
            if header is not None:
                try:
                    return min(max(float(header), 0.0), _MAX_BACKOFF_S)
                except ValueError:
                    pass  # an HTTP date: fall back to our own backoff
        base = self.options.backoff_s * 2.0**attempt
        return min(base * (0.5 + random.random()), _MAX_BACKOFF_S)

    async def complete(self, body: dict[str, Any]) -> Reply:
        import httpx

        last = ""
        refused = False
        for attempt in range(self.options.max_retries + 1):
            response: httpx.Response | None = None
            async with self._semaphore:
                self.requests += 1
                try:
                    response = await self._client.post(self.url, json=body)
                except httpx.ConnectError as exc:
                    refused, last = True, f"cannot connect to {self.url}: {exc}"
                except httpx.TransportError as exc:
                    refused, last = False, f"{type(exc).__name__}: {exc}"
            if response is not None:
                refused = False
                status = response.status_code
                if status < 400:
                    return _read_reply(response)
                last = f"HTTP {status}: {response.text[:300]}"
                if status in _FATAL_STATUS:
                    raise EndpointError(f"{self.url} answered {last} (check --endpoint, --model and --api-key)")
                if status not in _RETRY_STATUS and status < 500:
                    return Reply(None, failure="request_rejected", detail=last)
            if attempt < self.options.max_retries:
                self.retries += 1
                await asyncio.sleep(self._delay(attempt, response))
        if refused:
            # Nothing listens there: every other task would fail the same way, so stop now.
            raise EndpointError(f"{last} (after {self.options.max_retries + 1} tries)")
        return Reply(None, failure="request_failed", detail=last)


def _read_reply(response: httpx.Response) -> Reply:
    try:
        data = response.json()
        choice = data["choices"][0]
        message = choice["message"]
        if not isinstance(message, dict):
            raise TypeError("message is not an object")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return Reply(None, failure="bad_response", detail=f"not a chat completion ({exc}): {response.text[:300]}")
    return Reply(message, finish_reason=choice.get("finish_reason"))
