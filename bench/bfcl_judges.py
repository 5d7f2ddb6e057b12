"""Both judges of `mentor-train eval --endpoint` on every BFCL single-turn case, fed known answers.

`eval --endpoint` judges each model answer to a BFCL case twice: our engine's verdict (the
`bfcl-eval` spec of mentor_trainer.bfcl_judge, scored through the client's local backend) and
BFCL's own (`ast_checker`, or its (ir)relevance rule). This runs that judging code, not a model, on
two answers per case of all thirteen categories in the wheel:

  (a) the ground truth: each call with its first acceptable value per parameter (optional ones
      left out; Java/JavaScript values written as text, JSON for containers, as a model answering
      BFCL's string-typed parameters would); for relevance a call of the first function, for
      irrelevance no call. Both judges should accept it;
  (b) no call at all: both judges should reject it, except in the irrelevance categories.

The table reports, per category, how often each judge accepts (a) and rejects (b), and how often
the two verdicts agree. Cases the engine cannot score (a possible answer with no acceptable value)
are counted as scoring errors, never as verdicts.

    python bench/bfcl_judges.py              # downloads the wheel once into bench/_downloads
    python bench/bfcl_judges.py --no-write   # print only
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _results import write_section  # noqa: E402
from bfcl_agreement import DOWNLOADS, acceptable_variants  # noqa: E402

from mentor_client.adapters.trl_tools import ToolExecutor  # noqa: E402
from mentor_trainer import bfcl_data  # noqa: E402
from mentor_trainer.bfcl_judge import BfclOutput, CategoryTally, judge_category  # noqa: E402


def as_source(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def ground_truth_calls(case: bfcl_data.BfclCase) -> list[dict[str, Any]]:
    if case.ground_truth is None:
        if "irrelevance" in case.category or not case.functions:
            return []
        return [{"name": case.functions[0]["name"], "arguments": {}, "error": None, "raw": "{}"}]
    empty = [k for call in case.ground_truth for params in call.values() for k, v in params.items() if v == []]
    if empty:
        # No acceptable value at all: send the other parameters; the engine rejects the reference.
        truth = [{n: {k: v for k, v in p.items() if v != []} for n, p in call.items()} for call in case.ground_truth]
    else:
        truth = case.ground_truth
    variant = next(acceptable_variants(case.id, truth))
    calls = []
    for name, arguments in variant.calls:
        if case.language != "python":
            arguments = {k: as_source(v) for k, v in arguments.items()}
        calls.append({"name": name, "arguments": arguments, "error": None, "raw": json.dumps(arguments)})
    return calls


def run(
    categories: list[str],
) -> tuple[dict[str, tuple[CategoryTally, CategoryTally]], list[dict[str, Any]], float]:
    wheel = bfcl_data.wheel_path(DOWNLOADS)
    check = bfcl_data.load_bfcl_checker(wheel)
    runner = ToolExecutor(local=True)
    started = time.perf_counter()
    out: dict[str, tuple[CategoryTally, CategoryTally]] = {}
    differ: list[dict[str, Any]] = []
    try:
        for category in categories:
            cases = bfcl_data.load_cases(wheel, category)
            empty_message = {"role": "assistant", "content": "I cannot help with that."}
            truth = [BfclOutput(c, empty_message, "stop", calls=ground_truth_calls(c)) for c in cases]
            silent = [BfclOutput(c, empty_message, "stop") for c in cases]
            truth_tally, raw = judge_category(truth, runner, check)
            out[category] = (truth_tally, judge_category(silent, runner, check)[0])
            differ += [r for r in raw if r.get("agree") is False]
            print(f"{category}: {len(cases)} cases", file=sys.stderr, flush=True)
    finally:
        runner.close()
    return out, differ, time.perf_counter() - started


def _reason(entry: dict[str, Any]) -> str:
    """BFCL's error without the case's own values: its type and the parameter's declared type."""
    error = str(entry["bfcl"]["error"])
    kind = error.split(":", 2)
    declared = re.search(r"Expected type (\w+)", error)
    return ":".join(kind[:2]) + (f" (expected {declared.group(1)})" if declared else "")


CAUSES = {
    "type_error": "BFCL's Java checker parses Java literals (`new int[]{1, 2}`, `new ArrayList<>(Arrays.asList(..))`, "
    "`42L`, a HashMap's Java syntax); this answer wrote JSON text (`[1, 2]`, `{...}`, `42`), which our read-back "
    "of Java values takes",
    "missing_required": "data: the possible answer marks the parameter optional but the function doc requires it; "
    "argument matching reads the possible answer (as in the BFCL agreement section)",
    "unexpected_param": "data: the possible answer lists a parameter the function doc does not define (as in the "
    "BFCL agreement section)",
}


def _cause(reason: str) -> str:
    return next((text for key, text in CAUSES.items() if key in reason), "unexplained")


def report(
    results: dict[str, tuple[CategoryTally, CategoryTally]], differ: list[dict[str, Any]], seconds: float
) -> str:
    rows = [
        "| category | cases | ground truth: BFCL accepts | ours accepts | agree | no call: BFCL rejects "
        "| ours rejects | agree | scoring errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    total_truth, total_silent = CategoryTally(), CategoryTally()
    for category, (truth, silent) in [*results.items(), ("**all**", (total_truth, total_silent))]:
        if category != "**all**":
            total_truth.add(truth)
            total_silent.add(silent)
        cells = [
            f"{truth.n:,}",
            f"{truth.bfcl_pass:,}/{truth.judged:,}",
            f"{truth.ours_pass:,}/{truth.judged:,}",
            f"{truth.agree:,}/{truth.judged:,}",
            f"{silent.judged - silent.bfcl_pass:,}/{silent.judged:,}",
            f"{silent.judged - silent.ours_pass:,}/{silent.judged:,}",
            f"{silent.agree:,}/{silent.judged:,}",
            f"{truth.scoring_errors + silent.scoring_errors}",
        ]
        rows.append(f"| {category} | " + " | ".join(cells) + " |")
    lines = [*rows, "", f"Both answers of every case judged in {seconds:.0f} s (local backend).", ""]
    if not differ:
        return "\n".join([*lines, "Disagreements: none."])
    groups = Counter((d["category"], _reason(d)) for d in differ)
    lines.append(f"Disagreements ({len(differ)}, ours accepts, BFCL rejects unless said), by BFCL's reason:")
    for (category, reason), count in groups.most_common():
        ids = sorted(d["id"] for d in differ if d["category"] == category and _reason(d) == reason)
        shown = ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
        lines.append(f"- {category}, {count}× {reason}: {shown}. Cause: {_cause(reason)}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true", help="print only, do not update bench/RESULTS.md")
    parser.add_argument("--categories", nargs="*", default=list(bfcl_data.SINGLE_TURN_CATEGORIES))
    args = parser.parse_args()
    results, differ, seconds = run(args.categories)
    body = report(results, differ, seconds)
    print(body)
    if not args.no_write:
        write_section("issue13-bfcl-judges", "Issue 13: both judges of `eval --endpoint` on BFCL's ground truth", body)


if __name__ == "__main__":
    main()
