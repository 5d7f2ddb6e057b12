"""Evaluation: roll a model out on a split with real tool execution, score it, report a table and JSON.

A rollout is the loop a deployed tool-using model runs: generate an assistant turn, read its
`<tool_call>` blocks, execute them (in-process toolset or the service's tool endpoint), show the
results as `tool` messages, and generate again, until the model answers without calling or the
turn limit is reached. All active conversations of a split advance together in batches (left
padding), so a split of a few hundred problems takes seconds on CPU with the tiny model.

The finished conversations are scored by the reward engine (the service's score endpoint, or the
local backend) with the `flexible` preset by default, whose components are the metrics the MENTOR
paper reports: `outcome` (answer accuracy), `tool_names` (tool-name F1 against the teacher),
`arguments` (optimally paired argument score), plus the engine's call and invalid-tool counts.
Rows of a family whose answers are words keep the preset but take that family's outcome judge
(`families_retrieval.EVAL_OVERRIDES`: SQuAD exact match for the `retrieval` toolset's rows).
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mentor_client.adapters.trl_tools import ToolExecutor

from .chat import assistant_message, parse_assistant_turn
from .families_retrieval import EVAL_OVERRIDES, serve_retrieval
from .runtime import configure_offline

METRICS = (
    ("accuracy", "answer accuracy (outcome component)"),
    ("reward", "mean reward of the scoring preset"),
    ("call_rate", "share of rollouts with at least one tool call"),
    ("invalid_tool_rate", "share of calls naming a tool that does not exist"),
    ("malformed_call_rate", "share of <tool_call> blocks that could not be read"),
    ("tool_name_f1", "tool-name F1 against the teacher (tool_names component)"),
    ("argument_score", "argument score against the teacher (arguments component)"),
    ("avg_calls", "tool calls per rollout"),
    ("teacher_avg_calls", "tool calls per teacher trace"),
    ("finished_rate", "share of rollouts that ended with the end-of-turn token"),
)


@dataclass(frozen=True, slots=True)
class EvalOptions:
    splits: tuple[str, ...] = ("test",)
    limit: int | None = None
    max_turns: int = 6
    max_new_tokens: int = 96
    batch_size: int = 32
    temperature: float = 0.0  # 0: greedy
    preset: str = "flexible"
    seed: int = 0


@dataclass
class Rollout:
    """One evaluated conversation: the generated messages (TRL's completion shape) and how it ended."""

    completion: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    turns: int = 0
    calls: int = 0
    malformed_calls: int = 0


# ---------------------------------------------------------------------------- generation
def _generate(
    model: Any, tokenizer: Any, texts: list[str], max_new_tokens: int, temperature: float
) -> list[tuple[str, bool]]:
    """Generate one assistant turn per text: (decoded text without special tokens, ended with EOS)."""
    import torch

    device = next(model.parameters()).device
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    eos = tokenizer.eos_token_id
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    with torch.no_grad():
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            eos_token_id=eos,
            pad_token_id=tokenizer.pad_token_id,
            **sampling,
        )
    results = []
    width = batch["input_ids"].shape[1]
    for row in out[:, width:].tolist():
        ended = eos in row
        if ended:
            row = row[: row.index(eos)]
        results.append((tokenizer.decode(row, skip_special_tokens=True), ended))
    return results


def rollout(
    model: Any,
    tokenizer: Any,
    prompts: list[list[dict[str, Any]]],
    toolsets: list[str],
    runner: ToolExecutor,
    *,
    max_turns: int = 6,
    max_new_tokens: int = 96,
    batch_size: int = 32,
    temperature: float = 0.0,
    progress: bool = False,
    generate: Callable[[list[str]], list[tuple[str, bool]]] | None = None,
) -> list[Rollout]:
    """Run every prompt's tool loop to the end; calls run with the row's toolset.

    `generate` maps rendered conversations to (assistant text, ended with EOS); by default the
    model generates (tests script it to replay teacher traces through the same loop).
    """
    if generate is None:

        def generate(texts: list[str]) -> list[tuple[str, bool]]:
            return _generate(model, tokenizer, texts, max_new_tokens, temperature)

    rollouts = [Rollout() for _ in prompts]
    active = list(range(len(prompts)))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(prompts), desc="rollout", unit="problem")
    for _turn in range(max_turns):
        if not active:
            break
        still: list[int] = []
        for start in range(0, len(active), batch_size):
            chunk = active[start : start + batch_size]
            texts = [
                tokenizer.apply_chat_template(
                    prompts[i] + rollouts[i].completion, tokenize=False, add_generation_prompt=True
                )
                for i in chunk
            ]
            for i, (text, ended) in zip(chunk, generate(texts), strict=True):
                r = rollouts[i]
                turn = parse_assistant_turn(text)
                r.turns += 1
                r.calls += len(turn.calls)
                r.malformed_calls += sum(1 for c in turn.calls if not c.is_valid)
                message = assistant_message(turn)
                r.completion.append(message)
                good = [c for c in turn.calls if c.is_valid]
                if good:
                    for call in good:
                        assert call.name is not None
                        content = runner.run(toolsets[i], call.name, call.arguments)
                        r.completion.append({"role": "tool", "name": call.name, "content": content})
                    still.append(i)
                else:
                    r.finished = ended
                    if bar is not None:
                        bar.update(1)
        active = still
    if bar is not None:
        bar.update(len(active))
        bar.close()
    return rollouts


# ---------------------------------------------------------------------------- scoring
def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score_rollouts(
    rows: list[dict[str, Any]], rollouts: list[Rollout], runner: ToolExecutor, preset: str
) -> list[dict[str, Any]]:
    """Score with the engine (service or local), one request per toolset; returns per-item results."""
    by_toolset: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_toolset[row.get("toolset") or "calculator"].append(i)
    results: list[dict[str, Any]] = [{} for _ in rows]
    for toolset, indexes in by_toolset.items():
        items = [
            {
                "completion": rollouts[i].completion,
                "ground_truth": rows[i]["ground_truth"],
                "reference": rows[i]["reference"],
                "finished": rollouts[i].finished,
            }
            for i in indexes
        ]
        response = runner.backend.score(items, preset=preset, toolset=toolset, overrides=EVAL_OVERRIDES.get(toolset))
        for i, result in zip(indexes, response.results, strict=True):
            results[i] = result.model_dump(mode="json")
    return results


def summarise(rows: list[dict[str, Any]], rollouts: list[Rollout], scores: list[dict[str, Any]]) -> dict[str, Any]:
    """The split's metrics (see METRICS); None where nothing applies (e.g. no calls at all)."""
    comp: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        for name, value in (s.get("components") or {}).items():
            if value is not None:
                comp[name].append(float(value))
    total_calls = sum(r.calls for r in rollouts)
    engine_calls = sum(int(s.get("n_tool_calls") or 0) for s in scores)
    invalid = sum(int(s.get("n_invalid_tools") or 0) for s in scores)
    return {
        "n": len(rows),
        "accuracy": _mean(comp["outcome"]),
        "reward": _mean([float(s["reward"]) for s in scores if s.get("reward") is not None]),
        "call_rate": _mean([1.0 if r.calls else 0.0 for r in rollouts]),
        "invalid_tool_rate": invalid / engine_calls if engine_calls else None,
        "malformed_call_rate": sum(r.malformed_calls for r in rollouts) / total_calls if total_calls else None,
        "tool_name_f1": _mean(comp["tool_names"]),
        "argument_score": _mean(comp["arguments"]),
        "avg_calls": _mean([float(r.calls) for r in rollouts]),
        "teacher_avg_calls": _mean([float(len(row["reference"]["calls"])) for row in rows]),
        "finished_rate": _mean([1.0 if r.finished else 0.0 for r in rollouts]),
        "scoring_errors": sum(1 for s in scores if s.get("error")),
    }


def finish_warnings(report: dict[str, dict[str, Any]]) -> list[str]:
    """Warnings for splits where no rollout finished (every answer was cut off or never came): the
    accuracy is then 0 whatever the model knows, and the rollouts show why."""
    return [
        f"no rollout of split {split!r} finished (finished_rate 0 over {m['n']} rows): every rollout hit the "
        "token or turn limit before its end-of-turn token; raise --max-new-tokens / --max-turns, or read the "
        "saved rollouts"
        for split, m in report.items()
        if m.get("n") and not m.get("finished_rate")
    ]


def format_table(report: dict[str, dict[str, Any]]) -> str:
    """Splits as columns, metrics as rows, fixed-width text."""
    splits = list(report)
    names = ["n", *[m for m, _ in METRICS]]
    width = max(len(n) for n in names) + 2
    col = max(10, *(len(s) + 2 for s in splits))
    lines = ["metric".ljust(width) + "".join(s.rjust(col) for s in splits)]
    lines.append("-" * len(lines[0]))
    for name in names:
        cells = []
        for split in splits:
            value = report[split].get(name)
            cells.append(
                ("-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)).rjust(col)
            )
        lines.append(name.ljust(width) + "".join(cells))
    return "\n".join(lines)


def evaluate_splits(
    model: Any,
    tokenizer: Any,
    per_split: dict[str, list[dict[str, Any]]],
    runner: ToolExecutor,
    options: EvalOptions,
    progress: bool = False,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Roll out every split's rows in one batch stream, score them, and summarise each split.

    Returns (metrics per split, one detail entry per rollout: id, split, the rollout, its score).
    """
    splits = list(per_split)
    rows = [r for s in splits for r in per_split[s]]
    serve_retrieval(runner, {r.get("toolset") or "calculator" for r in rows})
    rollouts = rollout(
        model,
        tokenizer,
        [r["prompt"] for r in rows],
        [r.get("toolset") or "calculator" for r in rows],
        runner,
        max_turns=options.max_turns,
        max_new_tokens=options.max_new_tokens,
        batch_size=options.batch_size,
        temperature=options.temperature,
        progress=progress,
    )
    scores = score_rollouts(rows, rollouts, runner, options.preset)
    report: dict[str, dict[str, Any]] = {}
    details: list[dict[str, Any]] = []
    start = 0
    for split in splits:
        n = len(per_split[split])
        part = slice(start, start + n)
        report[split] = summarise(rows[part], rollouts[part], scores[part])
        for row, r, score in zip(rows[part], rollouts[part], scores[part], strict=True):
            details.append({"id": row["id"], "split": split, **asdict(r), "score": score})
        start += n
    return report, details


def run_eval(
    data_dir: str | Path,
    model_path: str | Path,
    runner: ToolExecutor,
    options: EvalOptions | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate every split in `options.splits`; write `out` (JSON report + rollouts JSONL) if given."""
    configure_offline()
    from .benchmark import load_rows
    from .runtime import cuda_available, load_model, load_tokenizer, seed_everything

    options = options or EvalOptions()
    seed_everything(options.seed)
    tokenizer = load_tokenizer(model_path)
    model = load_model(model_path, "cuda" if cuda_available() else "cpu").eval()
    started = time.perf_counter()
    per_split = {split: load_rows(data_dir, split, options.limit) for split in options.splits}
    report, details = evaluate_splits(model, tokenizer, per_split, runner, options, progress)
    warnings = finish_warnings(report)
    for text in warnings:
        print(f"warning: {text}", file=sys.stderr, flush=True)
    result = {
        "model": str(model_path),
        "data": str(data_dir),
        "options": asdict(options),
        "backend": "local" if runner.local else runner.base_url,
        "splits": report,
        "table": format_table(report),
        "seconds": round(time.perf_counter() - started, 2),
        "warnings": warnings,
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        with (out / "rollouts.jsonl").open("w", encoding="utf-8") as fh:
            for d in details:
                fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    return result
