"""Hostile inputs before and after the linear-time work: parsers, `extract_boxed`, pairing, schema regexes.

Each case is one input of the size the attack used (issue 9), run once in a fresh interpreter
against two trees: the working tree ("after") and a commit exported with `git archive`
("before", default 09d8cbe, the last commit before this work). A run reports its CPU time
(`time.process_time`) and the growth of its peak RSS; a run that outlives `--limit` seconds of
wall time is stopped and reported as "> limit" (its speed-up is then a lower bound computed from
that wall time, which on a busy machine is more than the CPU time it got). Both trees run on
the same machine in the same invocation, so the ratio column is the comparison to read.

    python bench/bench_hostile_parsing.py                 # all cases, writes bench/RESULTS.md
    python bench/bench_hostile_parsing.py --limit 30 --no-write --only boxed
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _results import write_section  # noqa: E402

# name -> (description, setup code defining `run()`); the code imports from the tree under test.
CASES: dict[str, tuple[str, str]] = {
    "boxed": (
        "`extract_boxed` on 100,000 bare `\\boxed` mentions",
        "from mentor_server.scoring.answers import extract_boxed\n"
        "text = '\\\\boxed ' * 100_000\n"
        "def run(): extract_boxed(text)",
    ),
    "mistral": (
        "Mistral parser, 40,000 `[TOOL_CALLS][` with broken lists",
        "from mentor_server.scoring.parsing import parse_completion\n"
        "text = '[TOOL_CALLS][' * 40_000\n"
        "def run(): parse_completion(text, parser='mistral')",
    ),
    "pythonic-2k": (
        "pythonic parser, a list of 2,000 calls",
        "from mentor_server.scoring.parsing import parse_completion\n"
        "text = '[' + ', '.join(['f(a=1, b=\"x\")'] * 2_000) + ']'\n"
        "def run(): parse_completion(text, parser='pythonic')",
    ),
    "pythonic-10k": (
        "pythonic parser, a list of 10,000 calls",
        "from mentor_server.scoring.parsing import parse_completion\n"
        "text = '[' + ', '.join(['f(a=1)'] * 10_000) + ']'\n"
        "def run(): parse_completion(text, parser='pythonic')",
    ),
    "fence": (
        "pythonic parser, ` ``` ` then 50,000 spaces (fence regex)",
        "from mentor_server.scoring.parsing import parse_completion\n"
        "text = '```' + ' ' * 50_000 + 'x'\n"
        "def run(): parse_completion(text, parser='pythonic')",
    ),
    "user-responses": (
        "user turn with 16,000 unclosed `<tool_response>`",
        "from mentor_server.scoring.parsing import parse_completion\n"
        "messages = [{'role': 'user', 'content': '<tool_response>' * 16_000}, {'role': 'assistant', 'content': 'ok'}]\n"
        "def run(): parse_completion(messages, parser='openai')",
    ),
    "auto-5mb": (
        "`auto` on a 5 MB `[1,1,...]`",
        "from mentor_server.scoring.parsing import parse_completion\n"
        "text = '[' + '1,' * 2_500_000 + '1]'\n"
        "def run(): parse_completion(text, parser='auto')",
    ),
    "pairing-800": (
        "`arguments_score`, 800 x 800 calls of one tool (random small arguments)",
        "import random\n"
        "from mentor_server.scoring.matching import arguments_score\n"
        "from mentor_server.scoring.types import ToolCall, ReferenceCall\n"
        "rnd = random.Random(0)\n"
        "def args(): return {'x': rnd.randint(0, 50), 'y': rnd.choice(['abc', 'abd', 'xyz'])}\n"
        "student = [ToolCall('f', args()) for _ in range(800)]\n"
        "reference = [ReferenceCall('f', args()) for _ in range(800)]\n"
        "def run(): return round(arguments_score(student, reference)[0], 4)",
    ),
    "lcs-order": (
        "`tool_names` order mode, 5,000 x 5,000 names",
        "from mentor_server.scoring.matching import tool_name_score\n"
        "a = [f't{i % 97}' for i in range(5_000)]\n"
        "b = [f't{i % 89}' for i in range(5_000)]\n"
        "def run(): tool_name_score(a, b, 'order')",
    ),
    "fuzzy-64k": (
        "argument similarity of two random 64 KB strings (fuzzy ratio)",
        "import random\n"
        "from mentor_server.scoring.matching import value_similarity\n"
        "rnd = random.Random(0)\n"
        "a = ''.join(rnd.choice('abcdefgh') for _ in range(65_536))\n"
        "b = ''.join(rnd.choice('abcdefgh') for _ in range(65_536))\n"
        "def run(): value_similarity(a, b)",
    ),
    "schema-regex": (
        'inline schema `pattern: "^(a+)+$"` against 26 `a` and `!`',
        "from mentor_server.toolsets import toolset_from_schemas\n"
        "tools = toolset_from_schemas([{'type': 'function', 'function': {'name': 'p', 'parameters': "
        "{'type': 'object', 'properties': {'s': {'type': 'string', 'pattern': '^(a+)+$'}}}}}])\n"
        "def run(): tools.validate_arguments('p', {'s': 'a' * 26 + '!'})",
    ),
}

_RUNNER = """
import json, resource, sys, time
sys.setrecursionlimit(10_000)
{setup}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.process_time()
value = run()
cpu = time.process_time() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"cpu_s": cpu, "rss_growth_mb": (peak - base) / 1024, "value": value}}))
"""


def measure(server_dir: Path, setup: str, limit: float) -> dict[str, Any] | None:
    """One fresh interpreter on `server_dir`; None when it outlived `limit` seconds (then killed)."""
    env = {**os.environ, "PYTHONPATH": str(server_dir)}
    code = _RUNNER.format(setup=setup)
    with subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/"
    ) as proc:
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return None
    if proc.returncode != 0:
        raise RuntimeError(f"case failed: {err[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="09d8cbe", help="commit to compare with (default: %(default)s)")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds before a run is stopped")
    parser.add_argument("--only", nargs="*", default=None, help="case names (substring match)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "server"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        trees = {"before": Path(tmp) / "server", "after": ROOT / "server"}
        rows = []
        for name, (description, setup) in CASES.items():
            if args.only and not any(o in name for o in args.only):
                continue
            found = {label: measure(path, setup, args.limit) for label, path in trees.items()}
            before, after = found["before"], found["after"]

            def cpu(result: dict[str, Any] | None) -> str:
                return f"> {args.limit:.0f} s wall (stopped)" if result is None else f"{result['cpu_s']:.3f} s"

            def rss(result: dict[str, Any] | None) -> str:
                return "-" if result is None else f"{result['rss_growth_mb']:.0f} MB"

            if before is None or after is None:
                ratio = "> {:.0f}x".format(args.limit / max(after["cpu_s"], 1e-3)) if after else "?"
            else:
                ratio = f"{before['cpu_s'] / max(after['cpu_s'], 1e-4):.0f}x"
            values = [r.get("value") if r else None for r in (before, after)]
            result = " → ".join("?" if v is None else str(v) for v in values) if any(values) else ""
            row = (
                f"| {description} | {cpu(before)} | {cpu(after)} | {ratio} | {rss(before)} | {rss(after)} | {result} |"
            )
            print(row, flush=True)
            rows.append(row)

    body = (
        f"Before = commit `{args.before}`, after = this tree; one fresh interpreter per run, CPU time of the one\n"
        f"call, and the growth of the process's peak RSS during it. Runs are stopped after {args.limit:.0f} s of wall\n"
        "time (the machine was shared with other jobs, so a stopped run had less CPU than that).\n\n"
        "The pairing case changes the rule, not only the cost: above the similarity-matrix cap calls are\n"
        "paired by name and equal arguments instead of optimally; its `arguments` score is in the last column.\n\n"
        "| case | before CPU | after CPU | speed-up | before peak RSS growth | after peak RSS growth | result |\n"
        "|---|---:|---:|---:|---:|---:|---|\n" + "\n".join(rows)
    )
    if not args.no_write:
        write_section("hostile_parsing", "Hostile inputs: linear-time parsing and bounded matching", body)


if __name__ == "__main__":
    main()
