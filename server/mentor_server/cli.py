"""`mentor-reward`: score saved rollouts, list presets, serve the reward service, report on its records.

    mentor-reward score --preset mentor rollouts.jsonl > scores.jsonl
    mentor-reward presets
    mentor-reward serve --port 8000
    mentor-reward report --records runs/scores.sqlite3 --out report.html

`score` streams: it reads JSONL in chunks and writes one JSON line per input line, in order,
so a file of any length runs in bounded memory. Each output line is the service's per-item
result (`protocol.ItemResult`): `{"reward", "components", "reason", "error", "n_tool_calls",
"n_invalid_tools"}`. A line that is not a valid item gets `reward: null` and an `error` whose
`param` names it as `items[i]` (i = line number - 1), and the following lines are still scored.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

_CHUNK_LINES = 512


def _read_spec_file(path: str) -> dict[str, Any]:
    text = Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: a spec file must hold one object")
    return data


def _chunks(stream: IO[str], size: int) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    for number, line in enumerate(stream, start=1):
        chunk.append((number, line))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _score_command(args: argparse.Namespace) -> int:
    from .scoring import ScoringConfigError, resolve_engine_config

    if (args.preset is None) == (args.spec is None):
        print("error: name the reward with exactly one of --preset NAME or --spec FILE", file=sys.stderr)
        return 2
    try:
        config = resolve_engine_config(
            preset=args.preset,
            spec=_read_spec_file(args.spec) if args.spec else None,
            toolset=args.toolset,
            parser=args.parser,
            eos_tokens=args.eos_token,
        )
    except ScoringConfigError as exc:
        where = f" ({exc.param})" if exc.param else ""
        print(f"error{where}: {exc}", file=sys.stderr)
        return 2

    stream: IO[str] = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8", errors="replace")  # noqa: SIM115
    try:
        asyncio.run(_score_stream(args, config, stream, sys.stdout))
    except BrokenPipeError:  # `mentor-reward score ... | head` is normal use
        return 0
    finally:
        if stream is not sys.stdin:
            stream.close()
    return 0


async def _score_stream(args: argparse.Namespace, config: Any, stream: IO[str], out: IO[str]) -> None:
    """Score JSONL line by line in order, each item under a hard time limit.

    The items run in the service's scoring pool (one or more worker processes), so an item that
    overruns `--item-timeout` (a judge, parser or schema that cannot be interrupted) is killed
    with its process and reported as that line's `timeout` error, and the file goes on.
    """
    from mentor_client.results import item_result

    from .api.pool import ScoringPool
    from .scoring import ITEM_FIELDS, ItemScore

    pool = ScoringPool(args.workers, item_timeout_s=args.item_timeout, nice=0)
    pool.open()
    try:
        await pool.wait_ready()
        for chunk in _chunks(stream, _CHUNK_LINES):
            scores: list[ItemScore | None] = []
            jobs: list[tuple[int, Any]] = []
            for number, line in chunk:
                index = number - 1  # errors name `items[index]`, as the service names a request's items
                try:
                    data = json.loads(line)
                except RecursionError:
                    scores.append(_line_error("too_deep", f"line {number} nests too deeply to read", index))
                    continue
                except ValueError as exc:  # not JSON, or an integer over Python's digit limit
                    message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                    scores.append(_line_error("invalid_json", f"line {number} is not JSON: {message}", index))
                    continue
                if args.ignore_unknown_fields and isinstance(data, dict):
                    data = {key: value for key, value in data.items() if key in ITEM_FIELDS}
                scores.append(None)
                jobs.append((index, data))
            scored = iter(await pool.score(config, jobs) if jobs else [])
            lines_out = []
            for (number, _line), score in zip(chunk, scores, strict=True):
                result = score if score is not None else next(scored)
                if result.error is not None and result.error.param is None:
                    result = _line_error(result.error.type, result.error.message, number - 1)
                lines_out.append(item_result(result).model_dump_json())
            out.write("\n".join(lines_out) + "\n")
            out.flush()
    finally:
        await asyncio.to_thread(pool.close, 5.0)


def _line_error(kind: str, message: str, index: int) -> Any:
    from .scoring import ItemError, ItemScore

    return ItemScore(None, {}, message, ItemError(kind, message, f"items[{index}]"))


def _presets_command(args: argparse.Namespace) -> int:
    from .scoring import list_presets

    presets = list_presets()
    if args.json:
        payload = [
            {
                "name": p.name,
                "description": p.description,
                "formula": p.formula,
                "reward_range": list(p.reward_range),
                "spec_hash": p.spec.hash,
                "spec": p.spec.to_dict(),
            }
            for p in presets
        ]
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    for p in presets:
        low, high = p.reward_range
        print(f"{p.name}  [{low:g}, {high:g}]  hash {p.spec.hash}")
        print(f"    {p.description}")
        print(f"    reward = {p.formula}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mentor-reward",
        description="Teacher-guided tool-use rewards: score rollouts, list presets, run the reward service.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    score = sub.add_parser(
        "score",
        help="score a JSONL file of rollouts (JSONL out, one line per input line)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  mentor-reward score --preset mentor rollouts.jsonl\n"
            "  mentor-reward score --spec my_reward.yaml --toolset calculator - < rollouts.jsonl\n\n"
            'input line: {"completion": str | [messages], "ground_truth": str | [str],\n'
            '             "teacher_tools": [names]  or  "reference": {"calls": [...], "answer": ...},\n'
            '             "finished": bool (optional)}\n'
            'output line: {"reward": float|null, "components": {name: float|null}, "reason": str,\n'
            '              "error": null | {"type", "message", "param": "items[<line-1>]..."}, ...}'
        ),
    )
    score.add_argument("input", help="JSONL file, or - for stdin")
    score.add_argument("--preset", help="preset name (see `mentor-reward presets`); or give --spec")
    score.add_argument("--spec", help="a reward spec file (JSON or YAML) instead of a preset")
    score.add_argument(
        "--item-timeout",
        type=float,
        default=10.0,
        help="seconds one item may take; past it the item is that line's `timeout` error (default 10)",
    )
    score.add_argument("--workers", type=int, default=1, help="scoring processes (default 1)")
    score.add_argument(
        "--ignore-unknown-fields",
        action="store_true",
        help="drop fields other than the item's own (e.g. a dataset's id or prompt) instead of "
        "reporting them as the line's error",
    )
    score.add_argument(
        "--eos-token",
        action="append",
        default=None,
        help="the policy's end-of-sequence token; repeat for several (default: the common chat templates' ones)",
    )
    score.add_argument("--toolset", help="toolset name (default: the spec's own, e.g. calculator)")
    score.add_argument(
        "--parser", default="auto", help="rollout parser: auto, hermes, openai, llama3, mistral, pythonic"
    )
    score.set_defaults(func=_score_command)

    presets = sub.add_parser("presets", help="list the built-in presets with their formulas")
    presets.add_argument("--json", action="store_true", help="print the specs as JSON")
    presets.set_defaults(func=_presets_command)

    from .index_command import add_index_command

    add_index_command(sub)

    if importlib.util.find_spec("fastapi") is not None:  # without the service extra, scoring still works
        from .api.cli_commands import add_service_commands

        add_service_commands(sub)
        from .report.command import add_report_command

        add_report_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except BrokenPipeError:  # `mentor-reward presets | head` is normal use
        sys.stderr.close()
        return 0
    return result


if __name__ == "__main__":
    raise SystemExit(main())
