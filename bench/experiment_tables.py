"""Markdown tables for bench/RESULTS.md from one or more `mentor-train experiment` reports.

`experiment.txt` holds one invocation's tables; a study that ran its seeds in several invocations
(e.g. seeds 1,2 then 3,4 from the same checkpoint A with `--reuse-sft`) needs them pooled. This
reads every given `experiment.json`, pools the GRPO evaluations by method over all seeds, and prints
accuracy per split, tool use in domain, and tool-name F1 / argument score out of domain, each cell
as mean ± half the range over seeds, with the per-seed values listed so seed noise can be read
directly. Checkpoint A must be the same in every report (the script checks its in-domain numbers), and
so must the GRPO settings (learning rate, KL beta, temperature, prompts per step): the tables open with
them, and reports that ran with different settings are refused rather than pooled.

    python bench/experiment_tables.py runs/issue11-cpu2/experiment.json runs/issue11-cpu2-s34/experiment.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from mentor_trainer.experiment_report import describe_grpo_settings, grpo_settings

SPLIT_ORDER = ("test", "ood_long", "ood_combo", "ood_dates", "ood_units", "ood_retrieval", "ood_retrieval_2hop")
ID_METRICS = (
    "call_rate",
    "invalid_tool_rate",
    "malformed_call_rate",
    "tool_name_f1",
    "argument_score",
    "finished_rate",
)


Loaded = tuple[dict[str, Any], dict[str, dict[int, dict[str, Any]]], list[str], dict[str, Any]]


def load(paths: list[str]) -> Loaded:
    """Checkpoint A's evaluation, GRPO evaluations by method and seed, the split order and the GRPO settings."""
    settings: dict[str, Any] | None = None
    sft: dict[str, Any] | None = None
    runs: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    splits: list[str] = []
    for path in paths:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        ran = grpo_settings(report)
        if settings is not None and ran != settings:
            raise SystemExit(f"{path}: GRPO settings {ran} differ from the first report's {settings}; not pooled")
        settings = ran
        for entry in report["evaluations"]:
            if entry["method"] == "sft":
                if sft is not None and sft["test"]["accuracy"] != entry["splits"]["test"]["accuracy"]:
                    raise SystemExit(f"{path}: checkpoint A differs from the first report's")
                sft = sft or entry["splits"]
            else:
                if entry["seed"] in runs[entry["method"]]:
                    raise SystemExit(f"{path}: {entry['method']} seed {entry['seed']} appears twice")
                runs[entry["method"]][entry["seed"]] = entry["splits"]
        splits = splits or [s for s in SPLIT_ORDER if s in report["splits"]]
    if sft is None:
        raise SystemExit("no checkpoint A evaluation in the reports")
    assert settings is not None  # set with the first report
    return sft, runs, splits, settings


def number(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    """One value, or "-" where the metric does not apply (no tool calls: no invalid-tool rate)."""
    return "-" if value is None else f"{scale * value:.{digits}f}"


def cell(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{scale * values[0]:.{digits}f}"
    mean = sum(values) / len(values)
    half = (max(values) - min(values)) / 2
    return f"{scale * mean:.{digits}f} ± {scale * half:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, align, *rows])


def main(paths: list[str]) -> None:
    sft, runs, splits, settings = load(paths)
    print(f"GRPO settings: {describe_grpo_settings(settings)}\n")
    order = [m for m in ("sparse", "mentor", "flexible", "strict") if m in runs] + sorted(
        m for m in runs if m not in ("sparse", "mentor", "flexible", "strict")
    )

    def n(split: str) -> int:
        return int(sft[split]["n"])

    def values(method: str, split: str, metric: str) -> list[float]:
        found = [runs[method][s][split][metric] for s in sorted(runs[method])]
        return [float(v) for v in found if v is not None]

    seeds = {m: sorted(runs[m]) for m in order}
    print("Answer accuracy (%), greedy; GRPO cells: mean ± half the range over seeds\n")
    header = ["method", "seeds"] + [f"{'in-domain test' if s == 'test' else s} (n={n(s)})" for s in splits]
    rows = [["SFT (checkpoint A)", "-"] + [number(sft[s]["accuracy"], 100, 1) for s in splits]]
    rows += [
        [f"GRPO `{m}`", ",".join(map(str, seeds[m]))] + [cell(values(m, s, "accuracy"), 100, 1) for s in splits]
        for m in order
    ]
    print(table(header, rows))

    print("\nPer-seed answer accuracy (%), in-domain / ood_combo / ood_long\n")
    rows = []
    for m in order:
        per = [
            f"s{seed}: {100 * runs[m][seed]['test']['accuracy']:.1f} / "
            f"{100 * runs[m][seed]['ood_combo']['accuracy']:.1f} / {100 * runs[m][seed]['ood_long']['accuracy']:.1f}"
            for seed in seeds[m]
        ]
        rows.append([f"GRPO `{m}`", "; ".join(per)])
    print(table(["method", "per seed"], rows).replace("| --- | ---: |", "| --- | --- |"))

    print("\nTool use on the in-domain test split (mean ± half range)\n")
    header = [
        "method",
        "call rate",
        "invalid-tool rate",
        "malformed-call rate",
        "tool-name F1",
        "argument score",
        "finished",
    ]
    rows = [["SFT (checkpoint A)"] + [number(sft["test"][k]) for k in ID_METRICS]]
    rows += [[f"GRPO `{m}`"] + [cell(values(m, "test", k)) for k in ID_METRICS] for m in order]
    print(table(header, rows))

    ood = [s for s in splits if s != "test"]
    print("\nOut of domain: tool-name F1 / argument score / invalid-tool rate / finished (mean over seeds)\n")

    def quad(get: Any) -> str:
        return " / ".join(
            number(get(k)) for k in ("tool_name_f1", "argument_score", "invalid_tool_rate", "finished_rate")
        )

    rows = [["SFT (checkpoint A)"] + [quad(lambda k, s=s: sft[s][k]) for s in ood]]
    rows += [
        [f"GRPO `{m}`"]
        + [
            quad(lambda k, s=s, m=m: sum(values(m, s, k)) / len(values(m, s, k)) if values(m, s, k) else None)
            for s in ood
        ]
        for m in order
    ]
    print(table(["method", *ood], rows))


if __name__ == "__main__":
    main(sys.argv[1:])
