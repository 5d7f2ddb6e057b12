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
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chat import canonical_number, parse_assistant_turn, prompt_without_tool_block
from .registry import json_object_arg
from .teach_endpoint import _TRANSIENT as _TRANSIENT
from .teach_endpoint import FAILURE_REASONS as FAILURE_REASONS
from .teach_endpoint import ChatEndpoint as ChatEndpoint
from .teach_endpoint import EndpointError as EndpointError
from .teach_endpoint import Reply as Reply
from .teach_endpoint import TeachOptions as TeachOptions
from .teach_endpoint import TeachReport as TeachReport
from .teach_endpoint import chat_completions_url as chat_completions_url
from .teach_files import Task as Task
from .teach_files import _load_progress as _load_progress
from .teach_files import _prompt, _Writer
from .teach_files import attempts_path as attempts_path
from .teach_files import make_tasks as make_tasks
from .teach_files import report_path as report_path

if TYPE_CHECKING:  # httpx loads when a run starts, so registering the command costs nothing
    import httpx

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
    extra = json_object_arg(args.extra_body, "--extra-body")
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
