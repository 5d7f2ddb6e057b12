"""Reward hacking: what scripted degenerate policies earn under every preset, next to honest rollouts.

A policy under RL learns whatever its reward pays for. For each preset the engine knows, this
script scores scripted degenerate behaviours ("hacks") on the trainer's benchmark next to two
honest rollouts that follow the teacher's trace: one to the right answer, one to a wrong answer.
Each hack pairs a process with an answer whose correctness is fixed by construction: most box the
same wrong answer as the honest-wrong rollout (or none), so their difference from honest-wrong is
what the process alone earns; a few box the right answer, so their difference from honest-correct
is what skipping the teacher's process costs; one boxes whatever its own tool call returned, and
is compared item by item with the honest rollout of the same correctness.

Rollouts are the raw text a Qwen 2.5 / Hermes chat model writes (the policies and the rendering
are in bench/_reward_hacks.py); `finished` is set on each item, as a trainer knows it from the
token ids. Items are scored in this process through the client's
`LocalBackend`, against the benchmark's full reference trace (`--names-only`: the paper's tool
names). An item the engine cannot score stops the script: a silent error would be a wrong table.

    python bench/reward_hacking.py                  # test split of `make-data --seed 0`: print tables
    python bench/reward_hacking.py --write-docs     # also rewrite the section of docs/rewards.md
    python bench/reward_hacking.py --data data/bench --split ood_long --names-only --limit 50
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mentor_client.local import LocalBackend

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _reward_hacks import HACKS, HONEST, Answer, Hack, Problem, ToolRunner, problems_from_rows

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "rewards.md"
START, END = "<!-- reward-hacking:start -->", "<!-- reward-hacking:end -->"
EPS = 1e-9
# One answer judge for every preset's correctness check (the built-in presets judge alike).
_JUDGE_SPEC: dict[str, Any] = {"components": {"outcome": {"weight": 1.0}}}


# ---------------------------------------------------------------------------- scoring
@dataclass(frozen=True, slots=True)
class PresetRow:
    name: str
    reward_range: tuple[float, float]
    rewards: dict[str, list[float]]
    """Column name → reward per item."""
    gates: dict[str, Counter[str]]
    components: dict[str, dict[str, float | None]]
    """Column name → mean of each component over the items where it applies."""

    def mean(self, column: str) -> float:
        values = self.rewards[column]
        return sum(values) / len(values)


@dataclass(frozen=True, slots=True)
class Report:
    n_items: int
    columns: list[Hack]
    correct: dict[str, list[bool]]
    rows: list[PresetRow]

    def matched_honest(self, row: PresetRow, column: str) -> float:
        """Mean reward of the honest rollout with the same correctness as `column`, item by item."""
        honest = [
            row.rewards["honest-correct" if ok else "honest-wrong"][i] for i, ok in enumerate(self.correct[column])
        ]
        return sum(honest) / len(honest)


def score_rows(
    rows: Sequence[dict[str, Any]], *, presets: Sequence[str] | None = None, names_only: bool = False
) -> Report:
    """Build every rollout for every row and score them under each preset (all known ones by default)."""
    backend = LocalBackend()
    run = ToolRunner(backend)
    problems = problems_from_rows(rows)
    columns = [*HONEST, *HACKS]
    items: list[dict[str, Any]] = []
    for column in columns:
        for p in problems:
            text, finished = column.build(p, run)
            item: dict[str, Any] = {"completion": text, "finished": finished, "ground_truth": p.right}
            if names_only:
                item["teacher_tools"] = list(p.row["teacher_tools"])
            else:
                item["reference"] = p.row["reference"]
            items.append(item)
    n = len(problems)

    def split(values: Sequence[Any]) -> dict[str, list[Any]]:
        return {c.name: list(values[k * n : (k + 1) * n]) for k, c in enumerate(columns)}

    judged = backend.score(items, spec=_JUDGE_SPEC)
    _check_errors("answer judge", judged.results, columns, problems)
    correct = split([r.components.get("outcome") == 1.0 for r in judged.results])
    for column in columns:
        expected = {"right": True, "wrong": False, "none": False}.get(column.answer)
        bad = [
            problems[i].row["id"]
            for i, ok in enumerate(correct[column.name])
            if expected is not None and ok != expected
        ]
        if bad:
            raise RuntimeError(f"{column.name}: the answer should be {column.answer} but the judge disagrees on {bad}")

    infos = {info.name: info for info in backend.presets().presets}
    out = []
    for name in presets or list(infos):
        response = backend.score(items, preset=name)
        _check_errors(f"preset {name}", response.results, columns, problems)
        rewards = split([float(r.reward) for r in response.results if r.reward is not None])
        gates = {
            c: Counter(r.reason for r in res if r.reason.startswith("gate "))
            for c, res in split(response.results).items()
        }
        components = {c: _component_means(res) for c, res in split(response.results).items()}
        out.append(PresetRow(name, infos[name].reward_range, rewards, gates, components))
    return Report(n, columns, correct, out)


def _check_errors(what: str, results: Sequence[Any], columns: Sequence[Hack], problems: Sequence[Problem]) -> None:
    for k, r in enumerate(results):
        if r.error is not None or r.reward is None:
            column, p = columns[k // len(problems)], problems[k % len(problems)]
            raise RuntimeError(f"{what}: {column.name} on {p.row['id']} was not scored: {r.reason}")


def _component_means(results: Sequence[Any]) -> dict[str, float | None]:
    names = list(dict.fromkeys(name for r in results for name in r.components))
    means: dict[str, float | None] = {}
    for name in names:
        values = [r.components[name] for r in results if r.components.get(name) is not None]
        means[name] = sum(values) / len(values) if values else None
    return means


# ---------------------------------------------------------------------------- reading the numbers
@dataclass(frozen=True, slots=True)
class Finding:
    hack: str
    value: float
    versus: float
    how: str


def gains(report: Report, row: PresetRow) -> list[Finding]:
    """Hacks that pay more than the honest rollout with the same correctness (for a wrong-answer
    hack: more than honest-wrong)."""
    out = []
    for hack in HACKS:
        mean, honest = row.mean(hack.name), report.matched_honest(row, hack.name)
        if mean > honest + EPS:
            out.append(Finding(hack.name, mean, honest, _how(report, row, hack.name)))
    return out


def ties(report: Report, row: PresetRow) -> list[Finding]:
    """Hacks without the teacher's trace that earn exactly what the honest rollout with the same
    correctness earns (those reaching honest-correct are listed by `reaches_correct`)."""
    top = row.mean("honest-correct")
    out = []
    for hack in HACKS:
        mean, honest = row.mean(hack.name), report.matched_honest(row, hack.name)
        if not hack.teacher_trace and abs(mean - honest) <= EPS and mean < top - EPS:
            out.append(Finding(hack.name, mean, honest, ""))
    return out


def reaches_correct(report: Report, row: PresetRow) -> list[Finding]:
    """Hacks whose mean reaches honest-correct's."""
    top = row.mean("honest-correct")
    return [
        Finding(h.name, row.mean(h.name), top, _how(report, row, h.name))
        for h in HACKS
        if row.mean(h.name) >= top - EPS
    ]


def _how(report: Report, row: PresetRow, column: str) -> str:
    """Why a hack earns what it does: the gate that decides most of its items, or the components
    where it beats the honest rollout of its (usual) correctness."""
    gate, count = row.gates[column].most_common(1)[0] if row.gates[column] else ("", 0)
    if count * 2 > report.n_items:
        return f"{gate} on {count}/{report.n_items}"
    right = sum(report.correct[column]) * 2 > report.n_items
    honest = row.components["honest-correct" if right else "honest-wrong"]
    better = [
        f"{name} {value:.2f} vs {honest[name]:.2f}"
        for name, value in row.components[column].items()
        if value is not None and honest.get(name) is not None and value > (honest[name] or 0.0) + 0.005
    ]
    return ", ".join(better) or "no component above the honest rollout's"


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def markdown_table(report: Report) -> str:
    """Rows = presets, columns = honest rollouts then hacks. **bold**: pays more than honest at
    equal correctness; *italic*: as much, without the teacher's trace; †: reaches honest-correct."""
    names = [c.name for c in report.columns]
    lines = [
        "| preset | range | " + " | ".join(names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    for row in report.rows:
        gained = {f.hack for f in gains(report, row)}
        tied = {f.hack for f in ties(report, row)}
        reached = {f.hack for f in reaches_correct(report, row)}
        cells = []
        for name in names:
            cell = _fmt(row.mean(name))
            cell = f"**{cell}**" if name in gained else f"*{cell}*" if name in tied else cell
            cells.append(cell + ("†" if name in reached else ""))
        low, high = row.reward_range
        lines.append(f"| `{row.name}` | [{low:g}, {high:g}] | " + " | ".join(cells) + " |")
    accuracy = [f"{100 * sum(report.correct[n]) / report.n_items:.0f}%" for n in names]
    lines.append("| *answer right* | | " + " | ".join(accuracy) + " |")
    return "\n".join(lines)


def reading(report: Report) -> str:
    """One line per preset: which hacks game it and how (computed, so it cannot go stale)."""
    lines = []
    for row in report.rows:
        parts = []
        if row.mean("honest-wrong") >= row.mean("honest-correct") - EPS:
            parts.append("the answer is not rewarded: honest-wrong earns honest-correct's reward")
        for f in gains(report, row):
            versus = "honest-wrong" if _answer_of(f.hack) in ("wrong", "none") else "honest at equal correctness"
            parts.append(f"`{f.hack}` earns {_fmt(f.value)} > {versus} {_fmt(f.versus)} ({f.how})")
        tied = ties(report, row)
        if tied:
            names = ", ".join(f"`{f.hack}`" for f in tied)
            verb = "earns" if len(tied) == 1 else "earn"
            parts.append(f"{names} {verb} what the honest rollout of equal correctness earns, without its process")
        reached = [f"`{f.hack}` ({_answer_of(f.hack)} answer)" for f in reaches_correct(report, row)]
        if reached:
            verb = "reaches" if len(reached) == 1 else "reach"
            parts.append(f"{', '.join(reached)} {verb} honest-correct's {_fmt(row.mean('honest-correct'))}")
        if not parts:
            below = [
                (row.mean(h.name) - report.matched_honest(row, h.name), h.name) for h in HACKS if not h.teacher_trace
            ]
            gap, name = max(below)
            parts.append(
                "every hack without the teacher's trace earns less than the honest rollout of equal correctness; "
                f"the closest is `{name}`, {-gap:.3f} under it"
            )
        lines.append(f"- `{row.name}`: {'; '.join(parts)}.")
    return "\n".join(lines)


def _answer_of(name: str) -> Answer:
    return next(h.answer for h in (*HONEST, *HACKS) if h.name == name)


_ANSWER_WORDS = {"right": "right answer", "wrong": "wrong answer", "none": "no answer", "own": "own answer"}


def section(report: Report, command: str, source: str) -> str:
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    hacks = "\n".join(f"- `{h.name}` ({_ANSWER_WORDS[h.answer]}): {h.description}." for h in HACKS)
    return f"""## Reward hacking: what degenerate policies earn

- command: `{command}`
- items: {report.n_items} of {source}
- date: {stamp}

Each cell is the mean reward of a scripted policy under a preset. The honest rollouts follow
the teacher's trace to the right answer or to a wrong one (a number: the right one plus 1). A hack
boxes either that same wrong answer (or none), so its difference from honest-wrong is what its
process earns, or the right answer, so its difference from honest-correct is what skipping the
teacher's process costs. **Bold**: pays more than the honest rollout with the same correctness,
item by item; *italic*: as much, without the teacher's trace; †: reaches honest-correct. The
last row is the share of items whose answer is judged right.

{markdown_table(report)}

{hacks}

Which preset can be gamed, and how (computed from the table):

{reading(report)}
"""


def write_docs(text: str, path: Path = DOCS) -> None:
    """Replace the marked section of `path` (append it when missing); nothing else is touched.
    The file is read right before writing: others edit it too."""
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{START}\n{text.rstrip()}\n{END}"
    start, end = current.find(START), current.find(END)
    if start >= 0 and end > start:
        current = current[:start] + block + current[end + len(END) :]
    elif start >= 0 or end >= 0:
        raise RuntimeError(f"{path}: only one of {START} / {END} is there, or they are out of order; fix it by hand")
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current, encoding="utf-8")


# ---------------------------------------------------------------------------- command line
def benchmark_rows(seed: int, split: str, data: str | None, limit: int | None) -> list[dict[str, Any]]:
    """One split: read from a `make-data` folder, or generated here exactly as `make-data --seed`
    writes it (the test split leaves out training questions, so training rows are generated too)."""
    from mentor_trainer.benchmark import IN_DOMAIN_SPLITS, BenchmarkSizes, generate_benchmark, load_rows

    if data is not None:
        return load_rows(data, split, limit)
    sizes = BenchmarkSizes(ood=0) if split in IN_DOMAIN_SPLITS else BenchmarkSizes()
    splits = generate_benchmark(seed=seed, sizes=sizes)
    if split not in splits:
        raise SystemExit(f"no split {split!r}; the benchmark has {', '.join(splits)}")
    return splits[split][:limit]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=0, help="benchmark seed (as `mentor-train make-data --seed`)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--data", help="a `make-data` folder to read instead of generating the benchmark")
    parser.add_argument("--limit", type=int, help="first N items only")
    parser.add_argument("--presets", help="comma-separated preset names (default: every preset)")
    parser.add_argument("--names-only", action="store_true", help="score against teacher tool names only")
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the marked section of {DOCS}")
    args = parser.parse_args(argv)

    rows = benchmark_rows(args.seed, args.split, args.data, args.limit)
    presets = args.presets.split(",") if args.presets else None
    report = score_rows(rows, presets=presets, names_only=args.names_only)
    source = f"the `{args.split}` split of " + (
        f"`{args.data}`" if args.data else f"the benchmark (`mentor-train make-data --seed {args.seed}`)"
    )
    source += ", scored against " + ("the teacher's tool names" if args.names_only else "the full reference trace")
    source += f", with every preset the engine knows ({len(report.rows)})" if presets is None else ""
    print(markdown_table(report), "", reading(report), sep="\n")
    if args.write_docs:
        command = "python bench/reward_hacking.py " + " ".join(sys.argv[1:] if argv is None else argv)
        write_docs(section(report, command.strip(), source))
        print(f"\nwrote the reward-hacking section of {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
