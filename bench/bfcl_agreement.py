"""Agreement of our argument matching with BFCL's possible-answer data and its own AST checker.

For six single-turn BFCL v4 categories, every ground-truth case is turned into student calls:

  (a) acceptable variants, built from the acceptable values (`""` = leave the parameter out):
      exhaustive when a case has at most 64 top-level combinations, otherwise every acceptable
      value of every parameter once (the rest at their first value) plus 16 seeded random
      combinations; nested acceptable dicts are instantiated at their first and at random
      values; parallel cases also get a reversed call order. All must score
      `arguments_score == 1.0`.
  (b) mutated variants of the first acceptable variant, one change each: a number changed,
      a string changed, a bool flipped (at any depth), a required parameter dropped, an
      unexpected parameter added, the function renamed, a call duplicated. All must score < 1.0.

As an independent oracle, BFCL's own checker (`ast_checker`, imported from the downloaded
wheel with its model-handler registry stubbed out, never installed) judges the same variants;
the table reports how often its pass/fail verdict equals ours (`score == 1.0`), and every
disagreement is listed with its cause.

    python bench/bfcl_agreement.py              # downloads the wheel once into bench/_downloads
    python bench/bfcl_agreement.py --no-write   # print only
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _results import write_section  # noqa: E402

from mentor_server.scoring.matching import arguments_score, standardize_string  # noqa: E402
from mentor_server.scoring.types import ReferenceCall, ToolCall  # noqa: E402
from mentor_trainer import bfcl_data  # noqa: E402

DOWNLOADS = ROOT / "bench" / "_downloads"
VERSION = bfcl_data.BFCL_VERSION
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple", "live_multiple")
EXHAUSTIVE_LIMIT = 64
RANDOM_VARIANTS = 16
TARGETS_PER_MUTATION = 2
OMIT = object()  # an optional parameter or key left out


# ---------------------------------------------------------------------------- data
# The wheel download, the data reading and the checker import are mentor_trainer.bfcl_data's (one
# implementation, shared with `mentor-train eval --endpoint`).
def wheel_path() -> Path:
    return bfcl_data.wheel_path(DOWNLOADS, VERSION)


# ---------------------------------------------------------------------------- variants
def is_optional(acceptable: list[Any]) -> bool:
    return any(isinstance(a, str) and a == "" for a in acceptable)


def alternatives(value: Any) -> list[Any]:
    """Alternatives of a nested acceptable entry (a non-list is its own single alternative)."""
    return value if isinstance(value, list) and value else [value]


def instantiate(value: Any, pick: Callable[[list[Any]], Any]) -> Any:
    """A concrete value from one acceptable value in BFCL's nested form."""
    if isinstance(value, dict):
        out = {}
        for key, entry in value.items():
            chosen = pick(alternatives(entry))
            if isinstance(chosen, str) and chosen == "" and is_optional(alternatives(entry)):
                continue
            out[key] = instantiate(chosen, pick)
        return out
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return [instantiate(v, pick) for v in value]
    return value


def first(options: list[Any]) -> Any:
    return options[0]


@dataclass
class Variant:
    kind: str  # "acceptable" or the mutation name
    calls: list[tuple[str, dict[str, Any]]]
    detail: str = ""


def acceptable_variants(case_id: str, truth: list[dict[str, dict[str, list[Any]]]]) -> Iterator[Variant]:
    slots: list[tuple[int, str, list[Any]]] = []  # (call index, param, acceptable values)
    names: list[str] = []
    for index, call in enumerate(truth):
        ((name, params),) = call.items()
        names.append(name)
        slots.extend((index, param, acceptable) for param, acceptable in params.items())
    rng = random.Random(case_id)

    def build(choice: list[int], pick: Callable[[list[Any]], Any]) -> list[tuple[str, dict[str, Any]]]:
        calls: list[tuple[str, dict[str, Any]]] = [(name, {}) for name in names]
        for (index, param, acceptable), k in zip(slots, choice, strict=True):
            value = acceptable[k]
            if isinstance(value, str) and value == "":
                continue  # "" marks the parameter optional: leave it out
            calls[index][1][param] = instantiate(value, pick)
        return calls

    sizes = [len(acceptable) for _, _, acceptable in slots]
    total = 1
    for size in sizes:
        total *= size
    choices: list[list[int]]
    if total <= EXHAUSTIVE_LIMIT:
        choices = [list(c) for c in itertools.product(*(range(s) for s in sizes))]
    else:
        choices = [[0] * len(slots)]
        for slot, size in enumerate(sizes):
            for k in range(1, size):
                choice = [0] * len(slots)
                choice[slot] = k
                choices.append(choice)
        choices += [[rng.randrange(s) for s in sizes] for _ in range(RANDOM_VARIANTS)]
    seen: set[str] = set()
    for choice in choices:
        for pick_name, pick in (("first", first), ("random", rng.choice)):
            calls = build(choice, pick)
            key = json.dumps(calls, sort_keys=True)
            if key not in seen:
                seen.add(key)
                yield Variant("acceptable", calls, f"choice={choice} nested={pick_name}")
    if len(names) > 1:
        calls = build([0] * len(slots), first)
        yield Variant("acceptable", calls[::-1], "reversed call order")


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))
    else:
        yield path, value


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def acceptable_leaves(acceptable: list[Any]) -> set[Any]:
    """Canonical forms of every scalar anywhere in a parameter's acceptable values."""
    return {canonical(leaf) for _, leaf in leaves(acceptable)}


def canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", standardize_string(value))
    return ("o", repr(value))


def changed_leaf(leaf: Any, taken: set[Any]) -> tuple[str, Any] | None:
    """A different value of the same type that is not acceptable anywhere in the parameter."""
    if isinstance(leaf, bool):
        return ("flip bool", not leaf) if canonical(not leaf) not in taken else None
    if isinstance(leaf, int | float):
        step = 1 if isinstance(leaf, int) else 1.5
        new = leaf + step
        while canonical(new) in taken:
            new += step
        return "change number", new
    if isinstance(leaf, str) and leaf:
        text = leaf + "qx"
        while canonical(text) in taken:
            text += "qx"
        return "change string", text
    return None


def mutated_variants(base: list[tuple[str, dict[str, Any]]], truth: list[dict[str, Any]]) -> Iterator[Variant]:
    leaf_changes: dict[str, list[Variant]] = defaultdict(list)
    for index, (name, args) in enumerate(base):
        (params,) = truth[index].values()
        for param, value in args.items():
            taken = acceptable_leaves(params[param])
            for path, leaf in leaves(value):
                change = changed_leaf(leaf, taken)
                if change is None:
                    continue
                kind, new = change
                calls = [(n, dict(a)) for n, a in base]
                calls[index][1][param] = replaced(value, path, new)
                where = ".".join(str(p) for p in (param, *path))
                leaf_changes[kind].append(Variant(kind, calls, f"{name}.{where}: {leaf!r} -> {new!r}"))
    for changes in leaf_changes.values():
        yield from changes[:TARGETS_PER_MUTATION]
    dropped = 0
    for index, call in enumerate(truth):
        ((name, params),) = call.items()
        for param, acceptable in params.items():
            if dropped < TARGETS_PER_MUTATION and not is_optional(acceptable) and param in base[index][1]:
                calls = [(n, dict(a)) for n, a in base]
                del calls[index][1][param]
                dropped += 1
                yield Variant("drop required", calls, f"{name}: without {param}")
    calls = [(n, dict(a)) for n, a in base]
    calls[0][1]["zz_unexpected"] = 1
    yield Variant("add unexpected", calls, f"{base[0][0]}: zz_unexpected=1")
    calls = [(n, dict(a)) for n, a in base]
    calls[0] = (calls[0][0] + "_x", calls[0][1])
    yield Variant("rename function", calls, f"{base[0][0]} -> {calls[0][0]}")
    yield Variant("duplicate call", [*base, base[0]], f"{base[0][0]} twice")


# ---------------------------------------------------------------------------- scoring
def our_score(calls: list[tuple[str, dict[str, Any]]], reference: list[ReferenceCall]) -> float:
    student = [ToolCall(name, args) for name, args in calls]
    return arguments_score(student, reference, possible_answers=True)[0]


def bfcl_verdict(
    check: bfcl_data.Checker, case: dict[str, Any], calls: list[tuple[str, dict[str, Any]]]
) -> tuple[bool, str]:
    """BFCL's pass/fail and, on fail, its error type and first message."""
    return bfcl_data.checker_verdict(check, case["functions"], case["truth"], case["category"], calls)


@dataclass
class Tally:
    cases: int = 0
    acceptable: int = 0
    acceptable_ok: int = 0  # ours == 1.0
    acceptable_bfcl: int = 0  # BFCL valid
    mutated: int = 0
    mutated_ok: int = 0  # ours < 1.0
    mutated_bfcl: int = 0  # BFCL invalid
    agree: int = 0
    mutated_scores: list[float] = field(default_factory=list)
    by_mutation: Counter[str] = field(default_factory=Counter)
    by_mutation_ok: Counter[str] = field(default_factory=Counter)
    unsatisfiable: list[str] = field(default_factory=list)


def explain(kind: str, category: str, bfcl_error: str, ours: float, bfcl: bool) -> str:
    """The cause of a disagreement, for the patterns this data shows (else 'unexplained')."""
    if kind == "acceptable" and ours == 1.0 and not bfcl:
        if "missing_required" in bfcl_error:
            return (
                'data: the possible answer marks the parameter optional ("") but the function schema '
                "requires it; BFCL enforces the schema, argument matching reads only the possible answer "
                "(schema validity is the separate schema_valid component)"
            )
        if "unexpected_param" in bfcl_error:
            return (
                "data: the possible answer lists a parameter the function schema does not define; BFCL "
                "rejects it as unexpected, argument matching reads only the possible answer"
            )
        if "parallel" in category:
            return (
                "BFCL pairs parallel calls greedily in ground-truth order and an earlier ground-truth call "
                "with broader acceptable values takes a student call a later one needed; optimal pairing "
                "matches every call"
            )
    return "unexplained"


@dataclass
class Disagreement:
    case_id: str
    cause: str
    line: str


def run(categories: tuple[str, ...]) -> tuple[dict[str, Tally], list[Disagreement], list[float], int]:
    wheel = wheel_path()
    check = bfcl_data.load_bfcl_checker(wheel)
    tallies: dict[str, Tally] = {}
    disagreements: list[Disagreement] = []
    timings: list[float] = []
    most_calls = 0
    with zipfile.ZipFile(wheel) as archive:
        for category in categories:
            answers = bfcl_data.read_jsonl(archive, f"bfcl_eval/data/possible_answer/BFCL_v4_{category}.json")
            questions = {q["id"]: q for q in bfcl_data.read_jsonl(archive, f"bfcl_eval/data/BFCL_v4_{category}.json")}
            tally = tallies.setdefault(category, Tally())
            for answer in answers:
                truth = answer["ground_truth"]
                case = {
                    "functions": questions[answer["id"]]["function"],
                    "truth": truth,
                    "category": category,
                }
                reference = [ReferenceCall(name, params) for call in truth for name, params in call.items()]
                empty = [f"{r.name}.{k}" for r in reference for k, v in r.arguments.items() if v == []]
                if empty:
                    # No acceptable value at all: BFCL can never pass such a case, and our engine
                    # rejects the reference (ScoringConfigError naming the argument).
                    tally.unsatisfiable.append(f"{answer['id']} ({', '.join(empty)})")
                    continue
                tally.cases += 1
                variants = list(acceptable_variants(answer["id"], truth))
                variants += list(mutated_variants(variants[0].calls, truth))
                for variant in variants:
                    most_calls = max(most_calls, len(variant.calls))
                    start = time.perf_counter()
                    ours = our_score(variant.calls, reference)
                    timings.append(time.perf_counter() - start)
                    bfcl, bfcl_error = bfcl_verdict(check, case, variant.calls)
                    tally.agree += (ours == 1.0) == bfcl
                    if variant.kind == "acceptable":
                        tally.acceptable += 1
                        tally.acceptable_ok += ours == 1.0
                        tally.acceptable_bfcl += bfcl
                        expected_ok = ours == 1.0
                    else:
                        tally.mutated += 1
                        tally.mutated_ok += ours < 1.0
                        tally.mutated_bfcl += not bfcl
                        tally.mutated_scores.append(ours)
                        tally.by_mutation[variant.kind] += 1
                        tally.by_mutation_ok[variant.kind] += ours < 1.0
                        expected_ok = ours < 1.0
                    if not expected_ok or (ours == 1.0) != bfcl:
                        line = (
                            f"{answer['id']} [{variant.kind}, {variant.detail}]: ours {ours:.3f}, "
                            f"BFCL {'valid' if bfcl else 'invalid'} ({bfcl_error}); "
                            f"calls {json.dumps(variant.calls)[:240]}"
                        )
                        cause = explain(variant.kind, category, bfcl_error, ours, bfcl)
                        disagreements.append(Disagreement(answer["id"], cause, line))
    return tallies, disagreements, timings, most_calls


def table_row(label: str, t: Tally) -> str:
    mean = statistics.fmean(t.mutated_scores) if t.mutated_scores else 0.0
    cells = [
        label,
        f"{t.cases:,}",
        f"{t.acceptable_ok:,}/{t.acceptable:,}",
        f"{t.acceptable_bfcl:,}",
        f"{t.mutated_ok:,}/{t.mutated:,}",
        f"{t.mutated_bfcl:,}",
        f"{t.agree:,}/{t.acceptable + t.mutated:,}",
        f"{mean:.3f}",
    ]
    return "| " + " | ".join(cells) + " |"


def report(tallies: dict[str, Tally], disagreements: list[Disagreement], timings: list[float], most_calls: int) -> str:
    rows = [
        "| category | cases | acceptable variants scoring 1.0 | BFCL valid | mutated variants scoring < 1.0 "
        "| BFCL invalid | verdict agreement with BFCL | mean mutated score |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    total = Tally()
    for category, t in tallies.items():
        rows.append(table_row(category, t))
        for name in ("cases", "acceptable", "acceptable_ok", "acceptable_bfcl", "mutated", "mutated_ok"):
            setattr(total, name, getattr(total, name) + getattr(t, name))
        total.mutated_bfcl += t.mutated_bfcl
        total.agree += t.agree
        total.mutated_scores += t.mutated_scores
        total.by_mutation += t.by_mutation
        total.by_mutation_ok += t.by_mutation_ok
        total.unsatisfiable += t.unsatisfiable
    rows.append(table_row("**all**", total))
    kinds = ", ".join(f"{k} {total.by_mutation_ok[k]:,}/{n:,}" for k, n in sorted(total.by_mutation.items()))
    lines = [
        *rows,
        "",
        f"Mutated variants scoring < 1.0 by kind: {kinds}.",
        "",
        f"Median time of one `arguments_score` call (possible answers, 1–{most_calls} calls, "
        f"{len(timings):,} calls): {statistics.median(timings) * 1e6:.1f} µs.",
        "",
    ]
    if total.unsatisfiable:
        lines += [
            f"Skipped {len(total.unsatisfiable)} cases whose ground truth has an empty acceptable list for a "
            f"parameter (unsatisfiable under BFCL's own rules; our engine rejects such a reference with "
            f"ScoringConfigError): {', '.join(total.unsatisfiable)}.",
            "",
        ]
    if not disagreements:
        lines.append("Disagreements: none.")
        return "\n".join(lines)
    lines += [f"Disagreements: {len(disagreements)} variants, by cause:", ""]
    by_cause: dict[str, list[Disagreement]] = defaultdict(list)
    for d in disagreements:
        by_cause[d.cause].append(d)
    for cause, items in sorted(by_cause.items(), key=lambda kv: -len(kv[1])):
        ids = sorted({d.case_id for d in items})
        lines.append(f"- {len(items)} variants in {len(ids)} cases ({', '.join(ids)}): {cause}.")
        lines.append(f"  Example: {items[0].line}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true", help="print only, do not update bench/RESULTS.md")
    parser.add_argument("--categories", nargs="*", default=list(CATEGORIES))
    args = parser.parse_args()
    tallies, disagreements, timings, most_calls = run(tuple(args.categories))
    body = report(tallies, disagreements, timings, most_calls)
    print(body)
    if not args.no_write:
        write_section("bfcl_agreement", "BFCL agreement of argument matching", body)


if __name__ == "__main__":
    main()
