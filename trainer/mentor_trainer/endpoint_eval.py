"""Evaluation through any OpenAI-compatible server: our benchmark splits and BFCL's single-turn categories.

`mentor-train eval --endpoint URL --model NAME` evaluates a model that something else serves
(vLLM, SGLang, `transformers serve`, a hosted API) instead of one loaded here:

- **benchmark splits** run the same multi-turn tool loop as the in-process eval, over
  `/v1/chat/completions` with the split's toolset as `tools=`: each call the model makes (structured
  `tool_calls`, or `<tool_call>` text from a server without a tool parser, read by the scoring
  engine's parser) is executed for real by the tool executor (in-process toolsets, or the reward
  service's `/v1/tools/execute`) and answered with a `tool` message, until the model answers or
  the turn cap. The finished conversations are scored by the same code as the in-process eval
  (`evaluate.score_rollouts` / `summarise`): the same table, the same rollouts file;
- **BFCL** single-turn categories (`bfcl_data`: the `bfcl-eval` wheel's prompts, function docs and
  possible answers) are one request each: their functions have no implementation to run. The
  model's calls are scored with our engine against BFCL's possible answers (`arguments` with
  `possible_answers`, plus `tool_names`, `schema_valid`, `no_hallucination`), and judged again by
  BFCL's own `ast_checker` on the same calls; the table puts BFCL's accuracy, ours and their
  agreement side by side. Our verdict for an AST category is "every call paired with the right
  name and acceptable arguments" (`arguments` = 1 and `tool_names` = 1); for irrelevance "no call"
  and for relevance "a call" (`tool_names` against an empty reference, 1 or 0).

A request that fails for good (after the endpoint client's retries) or an item the engine cannot
score is counted as an error in its row of the table and kept in the raw outputs with its reason;
it is never turned into a verdict or a score.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bfcl_data import (
    BFCL_VERSION,
    BfclCase,
    Checker,
    categories_in_wheel,
    load_bfcl_checker,
    load_cases,
    openai_tools,
    wheel_path,
)
from .bfcl_judge import BfclOutput, CategoryTally, bfcl_table, judge_category
from .chat import prompt_without_tool_block
from .evaluate import Rollout, finish_warnings, format_table, score_rollouts, summarise
from .families_retrieval import local_toolset_files, serve_retrieval
from .teach import ChatEndpoint, TeachOptions, Turn, read_turn

if TYPE_CHECKING:
    import httpx

    from mentor_client.adapters.trl_tools import ToolExecutor


@dataclass(frozen=True, slots=True)
class EndpointEvalOptions:
    """What to evaluate and how to talk to the endpoint.

    `limit` is per split and per BFCL category. `max_tokens`, `temperature` and `seed` are sent when
    set; `extra_body` is merged into every request. `bfcl_categories` may hold "all" (every
    single-turn category the wheel has).
    """

    endpoint: str
    model: str
    api_key: str | None = None
    splits: tuple[str, ...] = ()
    bfcl_categories: tuple[str, ...] = ()
    limit: int | None = None
    max_turns: int = 6
    max_tokens: int | None = 512
    temperature: float | None = 0.0
    seed: int | None = None
    concurrency: int = 8
    max_retries: int = 3
    timeout_s: float = 300.0
    extra_body: dict[str, Any] | None = None
    preset: str = "flexible"
    bfcl_cache: str | None = None
    bfcl_version: str = BFCL_VERSION

    def __post_init__(self) -> None:
        if not self.splits and not self.bfcl_categories:
            raise ValueError("nothing to evaluate: give --data with --split, or --bfcl-categories")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be at least 1")

    def chat(self) -> TeachOptions:
        """The endpoint client's settings (the same client `teach` uses: retries, backoff, fatal errors)."""
        return TeachOptions(
            endpoint=self.endpoint,
            model=self.model,
            api_key=self.api_key,
            max_turns=self.max_turns,
            concurrency=self.concurrency,
            max_retries=self.max_retries,
            timeout_s=self.timeout_s,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
            extra_body=self.extra_body,
        )


# ---------------------------------------------------------------------------- benchmark splits
@dataclass
class _SplitRollout:
    rollout: Rollout = field(default_factory=Rollout)
    error: str | None = None


def _malformed(call: Any) -> bool:
    return call.error is not None or call.name is None


def _stored_assistant(turn: Turn) -> dict[str, Any]:
    """The turn in the trainer's chat format (what the in-process eval stores): dict arguments,
    malformed calls kept as the text the model wrote."""
    good = [c for c in turn.calls if not _malformed(c)]
    bad = [c for c in turn.calls if _malformed(c)]
    content = "\n".join([turn.content, *(f"<tool_call>{c.raw}</tool_call>" for c in bad)]).strip()
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if good:
        message["tool_calls"] = [
            {"type": "function", "function": {"name": c.name, "arguments": dict(c.arguments)}} for c in good
        ]
    return message


async def _roll_row(
    endpoint: ChatEndpoint, runner: ToolExecutor, row: dict[str, Any], schemas: list[dict[str, Any]], max_turns: int
) -> _SplitRollout:
    toolset = row.get("toolset") or "calculator"
    # The server's chat template writes the tool block from `tools=`: send the bare instruction.
    wire = prompt_without_tool_block(row["prompt"])
    out = _SplitRollout()
    r = out.rollout
    for turn_index in range(1, max_turns + 1):
        reply = await endpoint.complete(endpoint.body(wire, schemas, 0))
        if reply.message is None:
            out.error = f"{reply.failure}: {reply.detail}"
            return out
        turn = read_turn(reply.message)
        r.turns += 1
        r.calls += len(turn.calls)
        r.malformed_calls += sum(1 for c in turn.calls if _malformed(c))
        r.completion.append(_stored_assistant(turn))
        if not turn.calls:
            r.finished = reply.finish_reason != "length"
            return out
        wire_calls = []
        answers = []
        for k, call in enumerate(turn.calls):
            call_id = f"call_{turn_index}_{k}"
            arguments = json.dumps(call.arguments, ensure_ascii=False)
            wire_calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name or "unknown", "arguments": arguments},
                }
            )
            if _malformed(call):
                # The model sees why (it may fix the call next turn); the engine scores the raw text.
                content = json.dumps({"error": f"malformed tool call: {call.error or 'missing tool name'}"})
            else:
                assert call.name is not None
                content = await asyncio.to_thread(runner.run, toolset, call.name, dict(call.arguments))
                r.completion.append({"role": "tool", "name": call.name, "content": content})
            answers.append({"role": "tool", "tool_call_id": call_id, "content": content})
        wire.append({"role": "assistant", "content": turn.content or None, "tool_calls": wire_calls})
        wire.extend(answers)
    return out  # still calling at the turn cap: not finished


async def _roll_split(
    endpoint: ChatEndpoint, runner: ToolExecutor, rows: list[dict[str, Any]], max_turns: int
) -> list[_SplitRollout]:
    toolsets = {row.get("toolset") or "calculator" for row in rows}
    schemas = {name: await asyncio.to_thread(runner.schemas, name) for name in sorted(toolsets)}
    return await asyncio.gather(
        *(_roll_row(endpoint, runner, row, schemas[row.get("toolset") or "calculator"], max_turns) for row in rows)
    )


def _split_report(
    split: str, rows: list[dict[str, Any]], rolled: list[_SplitRollout], runner: ToolExecutor, preset: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The in-process eval's metrics over the rows whose requests succeeded, plus `request_errors`."""
    ok = [i for i, r in enumerate(rolled) if r.error is None]
    kept_rows = [rows[i] for i in ok]
    rollouts = [rolled[i].rollout for i in ok]
    scores = score_rollouts(kept_rows, rollouts, runner, preset) if kept_rows else []
    metrics = summarise(kept_rows, rollouts, scores) if kept_rows else {"n": 0}
    metrics["request_errors"] = len(rows) - len(ok)
    details: list[dict[str, Any]] = []
    by_index = dict(zip(ok, scores, strict=True))
    for i, (row, r) in enumerate(zip(rows, rolled, strict=True)):
        entry = {"id": row["id"], "split": split, **asdict(r.rollout)}
        entry.update({"error": r.error} if r.error is not None else {"score": by_index[i]})
        details.append(entry)
    return metrics, details


# ---------------------------------------------------------------------------- BFCL
async def _ask_bfcl(endpoint: ChatEndpoint, case: BfclCase) -> BfclOutput:
    tools, names = openai_tools(case)
    reply = await endpoint.complete(endpoint.body(list(case.messages), tools, 0))
    out = BfclOutput(case, reply.message, reply.finish_reason)
    if reply.message is None:
        out.error = f"{reply.failure}: {reply.detail}"
        return out
    turn = read_turn(reply.message)
    out.content = turn.content
    for call in turn.calls:
        name = names.get(call.name, call.name) if call.name else call.name
        out.calls.append({"name": name, "arguments": dict(call.arguments), "error": call.error, "raw": call.raw})
    return out


def resolve_categories(requested: tuple[str, ...], wheel: Path) -> list[str]:
    """`all` → every single-turn category in the wheel; other names are checked against it."""
    present = categories_in_wheel(wheel)
    names = [c for value in requested for c in value.split(",") if c]
    if names == ["all"]:
        return present
    missing = [c for c in names if c not in present]
    if missing:
        raise ValueError(
            f"no BFCL single-turn category {', '.join(missing)} in {wheel.name}; present: {', '.join(present)}"
        )
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------------------- the run
def run_endpoint_eval(
    options: EndpointEvalOptions,
    runner: ToolExecutor,
    *,
    data_dir: str | Path | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """Evaluate the endpoint's model on `options.splits` of `data_dir` and on BFCL; write `out`
    (eval.json, rollouts.jsonl, bfcl_outputs.jsonl, bfcl_table.md) when given; return the report.

    Raises EndpointError when the endpoint cannot be used at all (unreachable, bad key, unknown model).
    """
    started = time.perf_counter()
    say: Callable[[str], None] = (
        (lambda text: print(text, file=sys.stderr, flush=True)) if progress else (lambda text: None)
    )
    per_split: dict[str, list[dict[str, Any]]] = {}
    if options.splits:
        if data_dir is None:
            raise ValueError("--split needs --data (the benchmark folder)")
        from .benchmark import load_rows

        per_split = {split: load_rows(data_dir, split, options.limit) for split in options.splits}
        serve_retrieval(runner, {r.get("toolset") or "calculator" for rows in per_split.values() for r in rows})
    check: Checker | None = None
    cases: dict[str, list[BfclCase]] = {}
    if options.bfcl_categories:
        wheel = wheel_path(options.bfcl_cache, options.bfcl_version)
        for category in resolve_categories(options.bfcl_categories, wheel):
            cases[category] = load_cases(wheel, category, options.limit)
        check = load_bfcl_checker(wheel)

    async def ask_all() -> tuple[dict[str, list[_SplitRollout]], dict[str, tuple[list[BfclOutput], float]]]:
        endpoint = ChatEndpoint(options.chat(), transport)
        try:
            rolled = {}
            for split, rows in per_split.items():
                t0 = time.perf_counter()
                rolled[split] = await _roll_split(endpoint, runner, rows, options.max_turns)
                say(f"split {split}: {len(rows)} rows in {time.perf_counter() - t0:.1f} s")
            answered = {}
            for category, items in cases.items():
                t0 = time.perf_counter()
                outputs = await asyncio.gather(*(_ask_bfcl(endpoint, case) for case in items))
                answered[category] = (list(outputs), time.perf_counter() - t0)
                say(f"bfcl {category}: {len(items)} cases in {answered[category][1]:.1f} s")
            return rolled, answered
        finally:
            await endpoint.aclose()

    rolled, answered = asyncio.run(ask_all())
    splits: dict[str, dict[str, Any]] = {}
    details: list[dict[str, Any]] = []
    for split, rows in per_split.items():
        splits[split], split_details = _split_report(split, rows, rolled[split], runner, options.preset)
        details.extend(split_details)
    categories: dict[str, dict[str, Any]] = {}
    raw: list[dict[str, Any]] = []
    total = CategoryTally()
    for category, (outputs, seconds) in answered.items():
        assert check is not None
        tally, category_raw = judge_category(outputs, runner, check)
        tally.seconds = seconds
        categories[category] = tally.metrics()
        total.add(tally)
        raw.extend(category_raw)
    if categories:
        categories["all"] = total.metrics()
    warnings = finish_warnings({s: m for s, m in splits.items() if m.get("n")})
    warnings += [
        f"split {s!r}: {m['request_errors']} of {m['request_errors'] + m['n']} rows failed at the endpoint "
        "(not scored; see rollouts.jsonl)"
        for s, m in splits.items()
        if m["request_errors"]
    ]
    result: dict[str, Any] = {
        "endpoint": options.endpoint,
        "model": options.model,
        "data": None if data_dir is None else str(data_dir),
        "options": {k: v for k, v in asdict(options).items() if k != "api_key"},
        "backend": "local" if runner.local else runner.base_url,
        "splits": splits,
        "table": format_table({s: m for s, m in splits.items() if m.get("n")}) if splits else "",
        "bfcl": {"categories": categories, "table": bfcl_table(categories) if categories else ""},
        "seconds": round(time.perf_counter() - started, 2),
        "warnings": warnings,
    }
    if out is not None:
        _write(Path(out), result, details, raw)
    return result


def _write(out: Path, result: dict[str, Any], details: list[dict[str, Any]], raw: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    with (out / "rollouts.jsonl").open("w", encoding="utf-8") as fh:
        for d in details:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    with (out / "bfcl_outputs.jsonl").open("w", encoding="utf-8") as fh:
        for entry in raw:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    (out / "bfcl_table.md").write_text((result["bfcl"]["table"] or "(no BFCL categories run)") + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- command line
def endpoint_command(args: Any) -> int:
    """`mentor-train eval --endpoint ...`: run, print the tables; 1 when the endpoint cannot be used."""
    import os

    from mentor_client.adapters.trl_tools import ToolExecutor

    from .benchmark import split_names
    from .registry import json_object_arg
    from .teach import EndpointError, chat_completions_url

    chat_completions_url(args.endpoint)  # a bad URL fails before anything loads
    extra = json_object_arg(args.extra_body, "--extra-body")
    splits: tuple[str, ...] = ()
    if args.data is not None:
        splits = split_names(args.split, args.data)
    elif args.split:
        raise ValueError("--split needs --data (the benchmark folder)")
    options = EndpointEvalOptions(
        endpoint=args.endpoint,
        model=args.model,
        api_key=args.endpoint_api_key or os.environ.get("MENTOR_ENDPOINT_API_KEY") or os.environ.get("OPENAI_API_KEY"),
        splits=splits,
        bfcl_categories=tuple(args.bfcl_categories or ()),
        limit=args.limit,
        max_turns=args.max_turns,
        max_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=args.seed,
        concurrency=args.concurrency,
        max_retries=args.max_retries,
        timeout_s=args.request_timeout,
        extra_body=extra,
        preset=args.preset,
        bfcl_cache=args.bfcl_cache,
    )
    out = Path(args.out or Path("runs") / f"eval-{re.sub(r'[^A-Za-z0-9._-]', '_', args.model)}")
    runner = ToolExecutor(
        None if args.local else args.reward_url or os.environ.get("MENTOR_REWARD_URL"),
        local=args.local,
        api_key=args.api_key,
        # As the in-process eval: the retrieval splits' search index when make-data wrote one.
        toolset_files=local_toolset_files(args.data, args.local),
    )
    try:
        result = run_endpoint_eval(options, runner, data_dir=args.data, out=out, progress=not args.json)
    except EndpointError as exc:
        print(f"mentor-train eval: error: {exc}", file=sys.stderr)
        return 1
    finally:
        runner.close()
    for text in result["warnings"]:
        print(f"warning: {text}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for part in (result["table"], result["bfcl"]["table"]):
            if part:
                print(part + "\n")
        print(f"wrote {out}/eval.json, rollouts.jsonl, bfcl_outputs.jsonl and bfcl_table.md")
    return 0
