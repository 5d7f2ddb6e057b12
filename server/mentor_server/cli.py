"""`mentor-reward`: score saved rollouts, list presets, serve the reward service.

    mentor-reward score --preset mentor rollouts.jsonl > scores.jsonl
    mentor-reward presets
    mentor-reward serve --port 8000

`score` streams: it reads JSONL in chunks and writes one JSON line per input line, in order,
so a file of any length runs in bounded memory. A line that is not a valid item becomes
`{"error": {"type", "message", "line"}}` and the following lines are still scored.
"""

from __future__ import annotations

import argparse
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
    from .scoring import ScoringConfigError, ScoringEngine, item_from_dict, resolve_spec
    from .scoring.types import ScoringItem
    from .toolsets import get_toolset

    try:
        spec = resolve_spec(
            preset=None if args.spec else args.preset,
            spec=_read_spec_file(args.spec) if args.spec else None,
        )
        toolset = get_toolset(args.toolset) if args.toolset else None
        engine = ScoringEngine(spec, toolset=toolset, parser=args.parser)
    except ScoringConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    stream: IO[str] = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8", errors="replace")  # noqa: SIM115
    out = sys.stdout
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    try:
        for chunk in _chunks(stream, _CHUNK_LINES):
            lines_out: list[str] = []
            items: list[ScoringItem] = []
            slots: list[int] = []  # index into lines_out for each scored item
            for number, line in chunk:
                error = None
                try:
                    data = json.loads(line)
                    items.append(item_from_dict(data))
                    slots.append(len(lines_out))
                    lines_out.append("")
                    continue
                except json.JSONDecodeError as exc:
                    error = {
                        "type": "invalid_json",
                        "message": f"line is not JSON: {exc.msg}",
                        "line": number,
                    }
                except ScoringConfigError as exc:
                    error = {"type": "invalid_item", "message": str(exc), "line": number}
                    if exc.param:
                        error["param"] = exc.param
                except RecursionError:
                    error = {"type": "too_deep", "message": "line nests too deeply", "line": number}
                lines_out.append(dumps({"error": error}))
            for slot, result in zip(slots, engine.score_batch(items), strict=True):
                if result.error is not None:
                    body: dict[str, Any] = {
                        "error": {
                            "type": result.error.type,
                            "message": result.error.message,
                            "line": chunk[slot][0],
                        }
                    }
                else:
                    body = {"reward": result.reward, "components": result.components, "reason": result.reason}
                lines_out[slot] = dumps(body)
            out.write("\n".join(lines_out) + "\n")
            out.flush()
    except BrokenPipeError:  # `mentor-reward score ... | head` is normal use
        return 0
    finally:
        if stream is not sys.stdin:
            stream.close()
    return 0


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
            'output line: {"reward": float|null, "components": {name: float|null}, "reason": str}\n'
            '             or {"error": {"type", "message", "line"}}'
        ),
    )
    score.add_argument("input", help="JSONL file, or - for stdin")
    score.add_argument("--preset", default="mentor", help="preset name (default: mentor; see `mentor-reward presets`)")
    score.add_argument("--spec", help="a reward spec file (JSON or YAML) instead of a preset")
    score.add_argument("--toolset", help="toolset name (default: the spec's own, e.g. calculator)")
    score.add_argument(
        "--parser", default="auto", help="rollout parser: auto, hermes, openai, llama3, mistral, pythonic"
    )
    score.set_defaults(func=_score_command)

    presets = sub.add_parser("presets", help="list the built-in presets with their formulas")
    presets.add_argument("--json", action="store_true", help="print the specs as JSON")
    presets.set_defaults(func=_presets_command)

    try:
        from .api.cli_commands import add_service_commands
    except ImportError:  # the service extra is not installed: scoring still works
        pass
    else:
        add_service_commands(sub)
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
