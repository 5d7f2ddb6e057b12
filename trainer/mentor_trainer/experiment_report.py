"""The tables of `mentor-train experiment`: accuracy per split (mean and spread over seeds), tool use,
and GRPO step cost, rendered as text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TOOL_METRICS = (
    ("call_rate", "call"),
    ("invalid_tool_rate", "invalid"),
    ("tool_name_f1", "name F1"),
    ("argument_score", "args"),
)


def _mean(values: Sequence[float | None]) -> float | None:
    real = [v for v in values if v is not None]
    return sum(real) / len(real) if real else None


def _fmt(value: float | None, spread: float | None = None, pct: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{100 * value:.1f}%" if pct else f"{value:.3f}"
    return text if spread is None else f"{text}±{spread:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- GRPO settings
def grpo_settings(report: dict[str, Any]) -> dict[str, Any]:
    """The GRPO hyper-parameters a report ran with; reports written before they were recorded
    (no `grpo_settings`) had no KL term, and the rest follows from their size."""
    if "grpo_settings" in report:
        return dict(report["grpo_settings"])
    size = report["size"]
    completions = size["grpo_batch"] * size["grpo_grad_accum"]
    return {
        "learning_rate": size["grpo_lr"],
        "beta": size.get("grpo_beta", 0.0),
        "temperature": size["temperature"],
        "prompts_per_step": completions // size["num_generations"],
        "num_generations": size["num_generations"],
        "completions_per_step": completions,
    }


def describe_grpo_settings(settings: dict[str, Any]) -> str:
    """One line, e.g. `lr 2e-05, KL beta 0.04, temperature 1.0, 2 prompts x 8 completions per step`."""
    return (
        f"lr {settings['learning_rate']:g}, KL beta {settings['beta']:g}, temperature {settings['temperature']:g}, "
        f"{settings['prompts_per_step']} prompts x {settings['num_generations']} completions per step"
    )


# ---------------------------------------------------------------------------- tables
def _label(method: str) -> str:
    return "SFT (A)" if method == "sft" else f"GRPO {method}"


def _aggregate(evals: list[dict[str, dict[str, Any]]], split: str, metric: str) -> tuple[float | None, float | None]:
    """Mean over seeds and half the range between them (None with one seed)."""
    values = [e[split].get(metric) for e in evals if split in e]
    real = [float(v) for v in values if v is not None]
    if not real:
        return None, None
    spread = (max(real) - min(real)) / 2 if len(real) > 1 else None
    return sum(real) / len(real), spread


def _ood_mean(evaluation: dict[str, dict[str, Any]], metric: str) -> float | None:
    return _mean([m.get(metric) for s, m in evaluation.items() if s.startswith("ood_")])


def build_tables(report: dict[str, Any]) -> dict[str, str]:
    """The three tables: accuracy (paper-shaped), tool use, and GRPO step cost."""
    splits: list[str] = report["splits"]
    by_method: dict[str, list[dict[str, dict[str, Any]]]] = {}
    for entry in report["evaluations"]:
        evaluation = dict(entry["splits"])
        evaluation["ood_mean"] = {k: _ood_mean(entry["splits"], k) for k in ("accuracy", *[m for m, _ in TOOL_METRICS])}
        by_method.setdefault(entry["method"], []).append(evaluation)
    order = [m for m in ("sft", *report["methods"]) if m in by_method]
    n = {s: next((e[s]["n"] for e in by_method.get("sft", []) if s in e), "?") for s in splits}
    seeds = len(report["seeds"])

    columns = [*splits, "ood_mean"]
    header = [
        "method",
        *[f"{'in-domain' if s == 'test' else s} (n={n[s]})" if s != "ood_mean" else "OOD mean" for s in columns],
    ]
    rows = [[_label(m), *[_fmt(*_aggregate(by_method[m], s, "accuracy")) for s in columns]] for m in order]
    accuracy = _table(header, rows)
    if seeds > 1:
        accuracy += f"\n(GRPO cells: mean over {seeds} seeds ± half their range; SFT is one checkpoint)"

    header = ["method", *[f"ID {short}" for _, short in TOOL_METRICS], *[f"OOD {short}" for _, short in TOOL_METRICS]]
    rows = [
        [
            _label(m),
            *[_fmt(_aggregate(by_method[m], "test", metric)[0]) for metric, _ in TOOL_METRICS],
            *[_fmt(_aggregate(by_method[m], "ood_mean", metric)[0]) for metric, _ in TOOL_METRICS],
        ]
        for m in order
    ]
    tool_use = _table(header, rows)

    header = [
        "run",
        "steps",
        "compl/step",
        "s/step",
        "1st step s",
        "reward s/step",
        "reward share",
        "tools s/step",
        "tools share",
    ]
    rows = []
    for run in report["grpo_runs"]:
        st = run["stats"]
        rows.append(
            [
                f"{run['method']} seed {run['seed']}",
                str(run["steps"]),
                str(run["completions_per_step"]),
                _fmt(st["median_step_s"]),
                _fmt(st["first_step_s"]),
                _fmt(st["reward_wait_s_per_step"]),
                _fmt(st["reward_wait_share"], pct=True),
                _fmt(st["tool_wait_s_per_step"]),
                _fmt(st["tool_wait_share"], pct=True),
            ]
        )
    cost = _table(header, rows) if rows else "(no GRPO run finished)"
    return {"accuracy": accuracy, "tool_use": tool_use, "cost": cost}


def render_report(report: dict[str, Any]) -> str:
    tables = report["tables"]
    size = report["size"]
    lines = [
        f"MENTOR in miniature ({size['name']} size, {report['environment']['device']}"
        + (f", {report['environment']['gpu']}" if "gpu" in report["environment"] else "")
        + f"), seeds {','.join(map(str, report['seeds']))}, data seed {report['data_seed']}",
        "GRPO settings: " + describe_grpo_settings(grpo_settings(report)),
        "",
        "Answer accuracy, greedy decoding (rows: method; columns: in-domain test and each out-of-domain split):",
        tables["accuracy"],
        "",
        "Tool use (ID = in-domain test, OOD = mean of the out-of-domain splits): call rate, invalid-tool rate, "
        "tool-name F1 and argument score against the teacher:",
        tables["tool_use"],
        "",
        "GRPO step cost, client-side (steps after the first; share = waiting time / step time):",
        tables["cost"],
    ]
    se = report.get("accuracy_standard_error")
    if se:
        lines += [
            "",
            f"Noise: at n={se['n']} rows a split's accuracy has a standard error up to {se['max_se']:.3f} (p=0.5).",
        ]
    budget = report.get("budget") or {}
    if budget.get("note"):
        lines += ["", budget["note"]]
    return "\n".join(lines)
