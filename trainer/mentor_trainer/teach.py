"""Teacher traces from a real model: `mentor-train teach`, rejection sampling over a chat endpoint.

A data set's tasks (from `make-data`, or any JSONL with the same columns) are sent to a chat
endpoint that speaks OpenAI's `/v1/chat/completions` (vLLM, SGLang, OpenAI, `transformers serve`)
with the toolset's schemas as `tools=`. The model's tool calls, read from structured `tool_calls`
or from Hermes `<tool_call>` text in the content (servers started without a tool parser), run
in-process with the registered toolset and go back as `tool` messages until the model answers or
the turn limit is reached. A trace is kept only when its `\\boxed{}` answer verifies against the
ground truth with the scoring engine's judge: rejection sampling, with the keep rate and the
reasons for every discarded attempt in the report. Kept traces are written as rows of the data
set's own shape (`prompt`, `ground_truth`, `reference`, `teacher_tools`, `messages`), so `sft`,
`grpo` and the reward service read them unchanged. Requests run concurrently (asyncio, one
semaphore), transient failures (connection errors, 408/429/5xx) are retried with backoff, and the
output is resumable: every row and every attempt is appended and flushed as it completes, and a
rerun skips the tasks already done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .chat import canonical_number, parse_assistant_turn, prompt_without_tool_block

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

TEACH_HELP = "collect verified teacher traces from an OpenAI-compatible endpoint (rejection sampling)"
TEACH_DESCRIPTION = (
    "Send each task to a chat-completions endpoint (vLLM, SGLang, OpenAI, `transformers serve`) with the "
    "toolset's tools, execute the calls it makes (structured tool_calls or <tool_call> text), loop until it "
    "answers or --max-turns, and keep the trace only when its \\boxed{} answer matches the ground truth. "
    "Kept traces are rows of the data set's shape (SFT-ready); OUT.attempts.jsonl logs every attempt and "
    "OUT.report.json the keep rate. Rerunning with the same --out resumes where it stopped."
)
TEACH_EXAMPLES = (
    "mentor-train teach --endpoint http://127.0.0.1:8001/v1 --model Qwen/Qwen2.5-7B-Instruct "
    "--data data/bench --split train --out data/traces/train.jsonl",
    "mentor-train teach --endpoint https://api.openai.com/v1 --model gpt-4o-mini --api-key $OPENAI_API_KEY "
    "--data data/bench --split train --out traces/train.jsonl --samples-per-task 4 --temperature 0.7",
    "mentor-train teach --endpoint http://localhost:8001 --model runs/teacher --data data/bench "
    "--out t.jsonl   (after: transformers serve runs/teacher --port 8001)",
)


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


# ---------------------------------------------------------------------------- one assistant turn
@dataclass(frozen=True, slots=True)
class RequestedCall:
    """A tool call the teacher asked for; `error` says why it cannot run as written."""

    name: str | None
    arguments: dict[str, Any]
    raw: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """An assistant turn: its free text (calls removed) and the calls in order."""

    content: str
    calls: tuple[RequestedCall, ...]
    structured: bool  # the calls came as `tool_calls` (else from text in the content)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


def read_turn(message: dict[str, Any]) -> Turn:
    """The calls of an assistant message, read by the scoring engine's parsers: structured
    `tool_calls` when present, else the tool-call markup in its content (Hermes `<tool_call>` and
    the other formats the engine reads). What runs here is what a reward would score."""
    from mentor_server.scoring.parsing import parse_completion

    content = _text(message.get("content"))
    structured = message.get("tool_calls") or []
    if structured:
        parsed = parse_completion(
            [{"role": "assistant", "content": content, "tool_calls": structured}],
            parser="openai",
            eos_token=None,
            finished=True,
        )
        calls = tuple(RequestedCall(c.name, dict(c.arguments), c.raw, c.error) for c in parsed.calls)
        return Turn(content.strip(), calls, True)
    turn = parse_assistant_turn(content, parser="auto")
    if not turn.calls:
        return Turn(content.strip(), (), False)
    calls = tuple(RequestedCall(c.name, dict(c.arguments), c.raw, c.error) for c in turn.calls)
    # The calls go back to the endpoint as structured tool_calls; the text keeps only the prose.
    return Turn(turn.content, calls, False)


# ---------------------------------------------------------------------------- one attempt
@dataclass(frozen=True, slots=True)
class Attempt:
    """One rollout of one task: the kept row, or why it was discarded."""

    task_id: str
    sample: int
    row: dict[str, Any] | None
    reason: str | None
    detail: str
    turns: int
    calls: int

    def log_entry(self) -> dict[str, Any]:
        return {
            "id": self.task_id,
            "sample": self.sample,
            "kept": self.row is not None,
            "reason": self.reason,
            "detail": self.detail[:500],
            "turns": self.turns,
            "calls": self.calls,
        }


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    row: dict[str, Any]
    toolset: str
    ground_truths: tuple[str, ...]


def _prompt(row: dict[str, Any]) -> list[dict[str, Any]]:
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list) or not prompt:
        raise ValueError(f"row {row.get('id')!r}: 'prompt' must be a message list or a string")
    return [dict(m) for m in prompt]


def _ground_truths(row: dict[str, Any]) -> tuple[str, ...]:
    gt = row.get("ground_truth")
    values = gt if isinstance(gt, list) else [gt]
    out = tuple(str(v) for v in values if v is not None and str(v).strip())
    if not out:
        raise ValueError(f"row {row.get('id')!r} has no ground_truth")
    return out


def make_tasks(rows: Sequence[dict[str, Any]], split: str, toolset: str | None) -> list[Task]:
    tasks = []
    for i, row in enumerate(rows):
        task_id = str(row.get("id") or f"{split}-{i:05d}")
        _prompt(row)
        tasks.append(Task(task_id, row, toolset or str(row.get("toolset") or "calculator"), _ground_truths(row)))
    return tasks


@dataclass
class _Rollout:
    """The conversation of one attempt, kept twice: as sent (OpenAI wire format: JSON-string
    arguments, call ids) and as stored (the data set's format: dict arguments, named tool messages)."""

    wire: list[dict[str, Any]]
    stored: list[dict[str, Any]]
    reference_calls: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    failed_calls: int = 0


class _Teacher:
    """Runs attempts for tasks against one endpoint (shared toolsets, judge and counters)."""

    def __init__(self, endpoint: ChatEndpoint, options: TeachOptions) -> None:
        from mentor_server.scoring.answers import AnswerJudge

        self.endpoint = endpoint
        self.options = options
        self.judge = AnswerJudge()
        self.tool_calls = 0
        self._toolsets: dict[str, tuple[Any, list[dict[str, Any]]]] = {}

    def toolset(self, name: str) -> tuple[Any, list[dict[str, Any]]]:
        """The toolset and its OpenAI schemas (an unknown name raises ScoringConfigError)."""
        if name not in self._toolsets:
            from mentor_server.toolsets import get_toolset

            toolset = get_toolset(name)
            self._toolsets[name] = (toolset, toolset.schemas())
        return self._toolsets[name]

    async def attempt(self, task: Task, sample: int) -> Attempt:
        toolset, schemas = self.toolset(task.toolset)
        prompt = _prompt(task.row)
        # The endpoint's chat template writes the tool block from `tools=`: send the bare instruction.
        state = _Rollout(wire=prompt_without_tool_block(prompt), stored=list(prompt))
        for turn_index in range(1, self.options.max_turns + 1):
            reply = await self.endpoint.complete(self.endpoint.body(state.wire, schemas, sample))
            if reply.message is None:
                return self._discard(task, sample, state, str(reply.failure), reply.detail, turn_index)
            turn = read_turn(reply.message)
            if not turn.calls:
                return await self._final(task, sample, state, turn, reply.finish_reason, turn_index)
            await self._run_calls(toolset, state, turn, turn_index)
        detail = f"still calling tools after {self.options.max_turns} turns"
        return self._discard(task, sample, state, "turn_limit", detail, self.options.max_turns)

    async def _run_calls(self, toolset: Any, state: _Rollout, turn: Turn, turn_index: int) -> None:
        wire_calls: list[dict[str, Any]] = []
        stored_calls: list[dict[str, Any]] = []
        results: list[tuple[str, str, str]] = []
        for k, call in enumerate(turn.calls):
            state.calls += 1
            call_id = f"call_{turn_index}_{k}"
            name = call.name or "unknown"
            arguments = json.dumps(call.arguments, ensure_ascii=False)
            function = {"name": name, "arguments": arguments}
            wire_calls.append({"id": call_id, "type": "function", "function": function})
            if call.error is not None or call.name is None:
                # The model sees why (it may fix the call next turn); the trace is marked failed.
                state.failed_calls += 1
                content = json.dumps({"error": f"malformed tool call: {call.error or 'missing tool name'}"})
            else:
                execution = await asyncio.to_thread(toolset.execute, call.name, call.arguments)
                self.tool_calls += 1
                content = str(execution.content)
                if execution.ok:
                    result = canonical_number(execution.result)
                    state.reference_calls.append({"name": call.name, "arguments": call.arguments, "result": result})
                else:
                    state.failed_calls += 1
                stored_calls.append({"type": "function", "function": {"name": call.name, "arguments": call.arguments}})
            results.append((call_id, name, content))
        state.wire.append({"role": "assistant", "content": turn.content or None, "tool_calls": wire_calls})
        text = turn.content
        malformed = [c for c in turn.calls if c.error is not None or c.name is None]
        if malformed:  # kept as the model wrote them, the way the trainer's chat format stores them
            text = "\n".join([text, *(f"<tool_call>{c.raw}</tool_call>" for c in malformed)]).strip()
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if stored_calls:
            message["tool_calls"] = stored_calls
        state.stored.append(message)
        for call_id, name, content in results:
            state.wire.append({"role": "tool", "tool_call_id": call_id, "content": content})
            state.stored.append({"role": "tool", "name": name, "content": content})

    async def _final(
        self, task: Task, sample: int, state: _Rollout, turn: Turn, finish_reason: str | None, turns: int
    ) -> Attempt:
        from mentor_server.scoring.answers import extract_boxed

        tail = turn.content[-200:]
        if finish_reason == "length":
            detail = f"the final turn hit the token limit: {tail!r}"
            return self._discard(task, sample, state, "truncated", detail, turns)
        answer = extract_boxed(turn.content)
        if answer is None or not answer.strip():
            detail = f"no \\boxed{{}} answer in {tail!r}"
            return self._discard(task, sample, state, "no_answer", detail, turns)
        verdict = await asyncio.to_thread(self.judge.judge, answer, list(task.ground_truths))
        if not verdict.correct:
            detail = f"answered {answer!r}, expected {task.ground_truths[0]!r}"
            return self._discard(task, sample, state, "wrong_answer", detail, turns)
        if state.failed_calls and not self.options.allow_tool_errors:
            detail = f"correct, but {state.failed_calls} call(s) failed on the way"
            return self._discard(task, sample, state, "tool_errors", detail, turns)
        messages = [*state.stored, {"role": "assistant", "content": turn.content}]
        row: dict[str, Any] = {k: task.row[k] for k in ("split", "family") if k in task.row}
        row.update(
            {
                "id": task.id,
                "toolset": task.toolset,
                "prompt": task.row["prompt"],
                "ground_truth": task.row["ground_truth"],
                "reference": {"calls": state.reference_calls, "answer": task.ground_truths[0]},
                "teacher_tools": list(dict.fromkeys(c["name"] for c in state.reference_calls)),
                "messages": messages,
                "teacher": {"model": self.options.model, "sample": sample, "answer": answer, "turns": turns},
            }
        )
        return Attempt(task.id, sample, row, None, "", turns, state.calls)

    @staticmethod
    def _discard(task: Task, sample: int, state: _Rollout, reason: str, detail: str, turns: int) -> Attempt:
        return Attempt(task.id, sample, None, reason, detail, turns, state.calls)


# ---------------------------------------------------------------------------- files and resuming
def attempts_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".attempts.jsonl") if out.suffix != ".jsonl" else out.with_suffix(".attempts.jsonl")


def report_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_suffix(".report.json") if out.suffix == ".jsonl" else out.with_name(out.name + ".report.json")


def _read_jsonl_repairing(path: Path) -> list[dict[str, Any]]:
    """Rows of an append-only JSONL file; a torn last line (the process died mid-write) is cut off
    so the next append starts on a fresh line."""
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with path.open("r+b") as fh:
            fh.truncate(cut)
        data = data[:cut]
    rows = []
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


@dataclass
class _Progress:
    """What earlier runs left in the output files, per task id."""

    kept: Counter[str] = field(default_factory=Counter)
    judged: Counter[str] = field(default_factory=Counter)

    def done(self, task_id: str, options: TeachOptions) -> bool:
        if self.kept[task_id] >= options.keep_per_task:
            return True
        return not options.retry_failed and self.judged[task_id] >= options.samples_per_task


def _load_progress(out: Path) -> _Progress:
    progress = _Progress()
    for row in _read_jsonl_repairing(out):
        progress.kept[str(row.get("id"))] += 1
    for entry in _read_jsonl_repairing(attempts_path(out)):
        if entry.get("reason") not in _TRANSIENT:
            progress.judged[str(entry.get("id"))] += 1
    return progress


class _Writer:
    """Appends rows and attempt entries, one flushed line each (the event loop serialises writes)."""

    def __init__(self, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        self._rows: TextIO = out.open("a", encoding="utf-8")
        self._log: TextIO = attempts_path(out).open("a", encoding="utf-8")

    def write(self, attempt: Attempt) -> None:
        if attempt.row is not None:
            self._rows.write(json.dumps(attempt.row, ensure_ascii=False, sort_keys=True) + "\n")
            self._rows.flush()
        self._log.write(json.dumps(attempt.log_entry(), ensure_ascii=False) + "\n")
        self._log.flush()

    def close(self) -> None:
        self._rows.close()
        self._log.close()


# ---------------------------------------------------------------------------- the run
async def teach_tasks(
    tasks: Sequence[Task],
    out: str | Path,
    options: TeachOptions,
    *,
    split: str = "",
    progress: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> TeachReport:
    """Attempt every task not already done in `out`; append kept rows to `out` as they come."""
    out = Path(out)
    report = TeachReport(options.endpoint, options.model, split, str(out), tasks=len(tasks))
    done = _load_progress(out)
    todo = [t for t in tasks if not done.done(t.id, options)]
    report.skipped = len(tasks) - len(todo)
    if not todo:
        return report
    endpoint = ChatEndpoint(options, transport)
    teacher = _Teacher(endpoint, options)
    for name in {t.toolset for t in todo}:
        teacher.toolset(name)  # an unknown toolset fails before any request
    writer = _Writer(out)
    bar = _bar(len(todo)) if progress else None
    started = time.perf_counter()
    failures: Counter[str] = Counter()

    async def run_task(task: Task) -> None:
        kept, earlier = done.kept[task.id], done.judged[task.id]
        # Without --retry-failed a task resumes its remaining attempts; with it, it gets a fresh budget.
        budget = options.samples_per_task if options.retry_failed else options.samples_per_task - earlier
        report.attempted_tasks += 1
        for sample in range(earlier, earlier + budget):
            if kept >= options.keep_per_task:
                break
            attempt = await teacher.attempt(task, sample)
            writer.write(attempt)
            report.attempts += 1
            if attempt.row is not None:
                kept += 1
                report.kept += 1
            elif attempt.reason is not None:
                failures[attempt.reason] += 1
                report.examples.setdefault(attempt.reason, attempt.detail[:300])
        report.kept_tasks += kept > done.kept[task.id]
        if bar is not None:
            bar.update(1)
            bar.set_postfix(kept=report.kept, attempts=report.attempts)

    # Tasks are pulled by `concurrency` workers; the endpoint's semaphore bounds requests in flight,
    # and a task's attempts run one after another so it can stop at its first kept trace.
    queue: asyncio.Queue[Task] = asyncio.Queue()
    for task in todo:
        queue.put_nowait(task)

    async def worker() -> None:
        while not queue.empty():
            await run_task(queue.get_nowait())

    workers = [asyncio.create_task(worker()) for _ in range(min(options.concurrency, len(todo)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        # One fatal error (EndpointError, Ctrl-C) stops the others; what was written stays.
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        writer.close()
        await endpoint.aclose()
        if bar is not None:
            bar.close()
        report.failures = dict(failures)
        report.requests, report.retries = endpoint.requests, endpoint.retries
        report.tool_calls = teacher.tool_calls
        report.seconds = round(time.perf_counter() - started, 2)
    return report


def _bar(total: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with datasets/transformers
        return None
    return tqdm(total=total, desc="teach", unit="task")


def run_teach(
    data_dir: str | Path,
    split: str,
    out: str | Path,
    options: TeachOptions,
    *,
    progress: bool = False,
    report_file: str | Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> TeachReport:
    """Collect verified traces for `split` of `data_dir` into `out` (JSONL, appended); write the report
    (`report_file`, default OUT.report.json) and return it. Raises `EndpointError` when the endpoint
    cannot be used at all, ValueError / FileNotFoundError for bad options or data."""
    from .benchmark import load_rows

    rows = load_rows(data_dir, split, options.limit)
    tasks = make_tasks(rows, split, options.toolset)
    report = asyncio.run(teach_tasks(tasks, out, options, split=split, progress=progress, transport=transport))
    path = Path(report_file) if report_file is not None else report_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return report


# ---------------------------------------------------------------------------- command line
def configure_teach(p: argparse.ArgumentParser) -> None:
    """Add `teach`'s arguments to a (sub)parser."""
    p.add_argument("--endpoint", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8001/v1")
    p.add_argument("--model", required=True, help="model name the endpoint serves")
    p.add_argument("--data", required=True, help="data folder with <split>.jsonl (from make-data)")
    p.add_argument("--split", default="train")
    p.add_argument("--out", required=True, help="JSONL of kept traces (appended; rerun to resume)")
    p.add_argument(
        "--api-key", default=None, help="Bearer token; default $MENTOR_TEACHER_API_KEY, else $OPENAI_API_KEY"
    )
    p.add_argument("--toolset", default=None, help="toolset for every task (default: each row's own, else calculator)")
    p.add_argument("--limit", type=int, default=None, help="first N tasks of the split")
    loop = p.add_argument_group("sampling")
    loop.add_argument("--max-turns", type=int, default=6, help="assistant turns (requests) per attempt")
    loop.add_argument("--samples-per-task", type=int, default=1, help="attempts per task")
    loop.add_argument("--keep-per-task", type=int, default=1, help="stop a task after this many kept traces")
    loop.add_argument("--temperature", type=float, default=None, help="sent when set (server default otherwise)")
    loop.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="per assistant turn, sent as max_tokens when set (OpenAI reasoning models: "
        "--extra-body '{\"max_completion_tokens\": N}')",
    )
    loop.add_argument("--seed", type=int, default=None, help="sent as seed + attempt index when set")
    loop.add_argument("--extra-body", default=None, help="JSON merged into every request, e.g. '{\"top_p\": 0.9}'")
    loop.add_argument(
        "--allow-tool-errors",
        action="store_true",
        help="keep correct traces that had failed or malformed calls",
    )
    loop.add_argument("--retry-failed", action="store_true", help="on resume, attempt failed tasks again")
    net = p.add_argument_group("requests")
    net.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    net.add_argument("--max-retries", type=int, default=3, help="retries on connection errors, 408/429 and 5xx")
    net.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    p.add_argument("--report", default=None, help="report file (default OUT.report.json)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def options_from_args(args: argparse.Namespace) -> TeachOptions:
    extra = None
    if args.extra_body:
        try:
            extra = json.loads(args.extra_body)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--extra-body: not valid JSON ({exc.msg})") from exc
        if not isinstance(extra, dict):
            raise ValueError("--extra-body: expected a JSON object")
    api_key = args.api_key or os.environ.get("MENTOR_TEACHER_API_KEY") or os.environ.get("OPENAI_API_KEY")
    return TeachOptions(
        endpoint=args.endpoint,
        model=args.model,
        api_key=api_key,
        toolset=args.toolset,
        max_turns=args.max_turns,
        samples_per_task=args.samples_per_task,
        keep_per_task=args.keep_per_task,
        concurrency=args.concurrency,
        max_retries=args.max_retries,
        timeout_s=args.timeout,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        seed=args.seed,
        extra_body=extra,
        allow_tool_errors=args.allow_tool_errors,
        retry_failed=args.retry_failed,
        limit=args.limit,
    )


def teach_command(args: argparse.Namespace) -> int:
    """`mentor-train teach`: run, print the report; 1 when the endpoint cannot be used."""
    options = options_from_args(args)
    chat_completions_url(options.endpoint)  # a bad URL fails before the data loads
    try:
        report = run_teach(args.data, args.split, args.out, options, progress=not args.json, report_file=args.report)
    except EndpointError as exc:
        print(f"mentor-train teach: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
        written = Path(args.report) if args.report else report_path(args.out)
        print(f"wrote {args.out} (+ {attempts_path(args.out).name}, {written.name})")
    return 0


def add_teach_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register `teach` on an argparse subparsers object (sets `_run` like the other commands)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "teach",
        help=TEACH_HELP,
        description=TEACH_DESCRIPTION,
        epilog="examples:\n" + "\n".join(f"  {e}" for e in TEACH_EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure_teach(p)
    p.set_defaults(_run=teach_command)
    return p
