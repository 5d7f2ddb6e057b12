"""A controlled executable-tool benchmark: generated problems, a programmatic teacher, seeded splits.

Each *task family* writes a word or number problem and solves it by calling real tools through the
toolset's executor: the teacher trace (calls with name, arguments and the result the tool actually
returned, then the final answer) is therefore correct by construction, and the ground truth is the
last tool result. Families fix their tool sequence, which lets the splits probe generalisation the
way the MENTOR paper does:

- `train` / `test`: in-domain, 1-2 calls, every calculator tool alone plus a fixed set of pairs;
- `ood_long`: chains of 3-4 calls built from in-domain tools;
- `ood_combo`: pairs of (seen) tools never paired in training;
- `ood_<group>`: another domain with different tools (e.g. `ood_units`; `ood_retrieval` and
  `ood_retrieval_2hop` when the retrieval family is enabled, see `families_retrieval`).

Generation is seeded per split (`random.Random(f"{seed}:{split}")`) and test questions that also
occur in `train` are dropped, so two runs with one seed write identical files.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chat import SYSTEM_INSTRUCTION, boxed, canonical_number, format_answer, tool_system_prompt

# The families and the teacher live in `families`; these names stay importable from here.
from .families import CALCULATOR as CALCULATOR
from .families import FAMILIES as FAMILIES
from .families import IN_DOMAIN_SPLITS as IN_DOMAIN_SPLITS
from .families import MAX_MISSES as MAX_MISSES
from .families import Builder as Builder
from .families import Family as Family
from .families import GenerationError as GenerationError
from .families import Teacher as Teacher
from .families import family as family


# ---------------------------------------------------------------------------- splits and rows
@dataclass(frozen=True, slots=True)
class BenchmarkSizes:
    """Rows per split: `train`, `test` (in-domain) and each out-of-domain split."""

    train: int = 2000
    test: int = 200
    ood: int = 200


def split_groups() -> dict[str, str]:
    """Split name → family group. Another domain's group becomes `ood_<group>` once the toolsets its
    families use are registered (`units`, `dates`; `retrieval` and `retrieval_2hop` after
    `families_retrieval.enable()`)."""
    from mentor_server.toolsets import list_toolsets

    registered = {ts.name for ts in list_toolsets()}
    splits = {"train": "in_domain", "test": "in_domain", "ood_long": "ood_long", "ood_combo": "ood_combo"}
    for group, families in FAMILIES.items():
        if group not in ("in_domain", "ood_long", "ood_combo") and all(f.toolset in registered for f in families):
            splits[f"ood_{group}"] = group
    return splits


def _row(split: str, index: int, fam: Family, question: str, teacher: Teacher, system: str) -> dict[str, Any]:
    answer = format_answer(teacher.calls[-1]["result"] if teacher.answer is None else teacher.answer)
    prompt = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    messages = list(prompt)
    for call, content in zip(teacher.calls, teacher.contents, strict=True):
        call_message: dict[str, Any] = {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}],
        }
        messages.append(call_message)
        messages.append({"role": "tool", "name": call["name"], "content": content})
    messages.append({"role": "assistant", "content": f"The answer is {boxed(answer)}."})
    return {
        "id": f"{split}-{index:05d}",
        "split": split,
        "toolset": fam.toolset,
        "family": fam.name,
        "prompt": prompt,
        "ground_truth": answer,
        "reference": {"calls": teacher.calls, "answer": answer},
        "teacher_tools": list(dict.fromkeys(c["name"] for c in teacher.calls)),
        "messages": messages,
    }


def _system_prompts(toolset_names: Iterable[str]) -> dict[str, str]:
    from mentor_client.adapters.trl_tools import prompt_schemas
    from mentor_server.toolsets import get_toolset

    return {
        name: tool_system_prompt(prompt_schemas(get_toolset(name).schemas()), SYSTEM_INSTRUCTION)
        for name in set(toolset_names)
    }


def generate_split(
    split: str, group: str, n: int, seed: int, exclude: set[str] | None = None, progress: Any = None
) -> list[dict[str, Any]]:
    """`n` rows of one split; families are used in turn so every combo is represented."""
    from mentor_server.toolsets import get_toolset

    families = FAMILIES[group]
    systems = _system_prompts(f.toolset for f in families)
    rng = random.Random(f"{seed}:{split}")
    rows: list[dict[str, Any]] = []
    seen = set(exclude or ())
    # Families take turns; one whose problem space is used up (say, square roots of small
    # squares) drops out after MAX_MISSES draws in a row that fail or repeat, and the others
    # fill the split.
    active = list(range(len(families)))
    misses = [0] * len(families)
    turn = 0
    while len(rows) < n:
        if not active:
            raise GenerationError(
                f"split {split}: its families can write only {len(rows)} distinct problems, not {n}; ask for fewer rows"
            )
        index = active[turn % len(active)]
        fam = families[index]
        teacher = Teacher(get_toolset(fam.toolset))
        try:
            question = fam.build(rng, teacher)
        except GenerationError:
            question = None
        if question is None or question in seen:
            misses[index] += 1
            if misses[index] >= MAX_MISSES:
                active.remove(index)
            continue
        misses[index] = 0
        turn += 1
        seen.add(question)
        rows.append(_row(split, len(rows), fam, question, teacher, systems[fam.toolset]))
        if progress is not None:
            progress.update(1)
    return rows


def generate_benchmark(
    seed: int = 0, sizes: BenchmarkSizes | None = None, progress: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Every split, in memory. Test questions never repeat a training question."""
    sizes = sizes or BenchmarkSizes()
    groups = split_groups()
    counts = {name: sizes.train if name == "train" else sizes.test if name == "test" else sizes.ood for name in groups}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(counts.values()), desc="make-data", unit="row")
    out: dict[str, list[dict[str, Any]]] = {}
    train_questions: set[str] = set()
    for name, group in groups.items():
        rows = generate_split(
            name,
            group,
            counts[name],
            seed,
            exclude=train_questions if name != "train" else None,
            progress=bar,
        )
        if name == "train":
            train_questions = {r["prompt"][-1]["content"] for r in rows}
        out[name] = rows
    if bar is not None:
        bar.close()
    return out


# ---------------------------------------------------------------------------- files
JSON_TEXT_COLUMNS = ("reference", "messages")
"""Columns stored as JSON text in parquet and `datasets` (see `to_dataset`)."""


def dataset_features() -> Any:
    """The `datasets` schema of a benchmark split.

    `prompt` (strings only) uses the `Json` type, so TRL reads it as a message list. `reference`
    and `messages` hold tool arguments and results, i.e. floats, and `datasets`' `Json` type is
    lossy for floats (it encodes with pandas' ujson at 10 decimals and decodes imprecisely:
    0.0038608 comes back as 0.0038607999999999997), so they are exact JSON text instead;
    `json.loads` them, or read the JSONL files. The client's TRL reward accepts a JSON-text
    `reference` as it is.
    """
    from datasets import Features, Json, List, Value

    return Features(
        {
            "id": Value("string"),
            "split": Value("string"),
            "toolset": Value("string"),
            "family": Value("string"),
            "prompt": List(Json()),
            "ground_truth": Value("string"),
            "reference": Value("string"),
            "teacher_tools": List(Value("string")),
            "messages": Value("string"),
        }
    )


def to_dataset(rows: list[dict[str, Any]], features: Any) -> Any:
    """A `datasets.Dataset` of `rows` with `features`; JSON is encoded here, with exact floats.

    Values bound for a `Json` feature, or for a string feature while not yet strings (the
    `JSON_TEXT_COLUMNS`), are encoded with the standard library: `datasets` keeps a value that is
    already JSON text as it is, instead of re-encoding it at 10 decimal places.
    """
    from datasets import Dataset, Json, List, Value

    def encode(value: Any, feature: Any) -> Any:
        if isinstance(feature, Json) or (isinstance(feature, Value) and not isinstance(value, str)):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(feature, List) and isinstance(feature.feature, Json) and isinstance(value, list):
            return [json.dumps(v, ensure_ascii=False) for v in value]
        return value

    encoded = [{k: encode(r[k], f) for k, f in features.items()} for r in rows]
    return Dataset.from_list(encoded, features=features)


def write_benchmark(
    out: str | Path, splits: dict[str, list[dict[str, Any]]], seed: int, parquet: bool = True
) -> dict[str, Any]:
    """Write `<split>.jsonl` (and `.parquet`) plus `manifest.json` with counts and content hashes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"seed": seed, "splits": {}}
    for name, rows in splits.items():
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
        (out / f"{name}.jsonl").write_text(text, encoding="utf-8")
        if parquet:
            to_dataset(rows, dataset_features()).to_parquet(str(out / f"{name}.parquet"))
        manifest["splits"][name] = {
            "rows": len(rows),
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "families": dict(sorted(Counter(r["family"] for r in rows).items())),
            "toolsets": sorted({r["toolset"] for r in rows}),
        }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def split_names(values: list[str] | None, data_dir: str | Path) -> tuple[str, ...]:
    """The splits a `--split` flag names (repeatable or comma-separated; default `test`); `all` is
    every split file in `data_dir` except `train`."""
    names = [s for v in (values or ["test"]) for s in v.split(",") if s]
    if names == ["all"]:
        names = sorted(p.stem for p in Path(data_dir).glob("*.jsonl") if p.stem != "train")
    return tuple(names)


def load_rows(data_dir: str | Path, split: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of one split as plain dicts (from `<split>.jsonl`)."""
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.exists():
        available = sorted(p.stem for p in Path(data_dir).glob("*.jsonl"))
        raise FileNotFoundError(f"no split {split!r} in {data_dir} (available: {', '.join(available) or 'none'})")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
                if limit is not None and len(rows) >= limit:
                    break
    return rows


def load_split(data_dir: str | Path, split: str, limit: int | None = None) -> Any:
    """One split as a `datasets.Dataset` with `dataset_features()` (the parquet files' schema).

    Heterogeneous values (each tool's arguments have their own keys) never go through a struct
    column, which would add `None` for every key of every other tool.
    """
    from datasets import Features

    rows = load_rows(data_dir, split, limit)
    features = Features({k: v for k, v in dataset_features().items() if all(k in r for r in rows)})
    return to_dataset(rows, features)


# ---------------------------------------------------------------------------- verification
def verify_row(row: dict[str, Any]) -> list[str]:
    """Re-execute a row's reference trace with the toolset; return the problems found (none: correct).

    Checks: each recorded result is what the tool returns for the recorded arguments; the tool
    messages show the toolset's content; the final answer is the last result and is boxed.
    """
    from mentor_server.toolsets import get_toolset

    problems: list[str] = []
    toolset = get_toolset(row["toolset"])
    calls = row["reference"]["calls"]
    tool_messages = [m for m in row["messages"] if m["role"] == "tool"]
    if len(tool_messages) != len(calls):
        problems.append("tool messages and reference calls differ in number")
    for i, call in enumerate(calls):
        execution = toolset.execute(call["name"], call["arguments"])
        if not execution.ok:
            problems.append(f"call {i} ({call['name']}) fails: {execution.error_message}")
            continue
        if canonical_number(execution.result) != call["result"]:
            problems.append(f"call {i} ({call['name']}): recorded {call['result']!r}, tool says {execution.result!r}")
        if i < len(tool_messages) and tool_messages[i]["content"] != execution.content:
            problems.append(f"call {i}: the tool message is not the tool's content")
        if i > 0 and not _uses_previous(call["arguments"], calls[i - 1]["result"]):
            problems.append(f"call {i} does not use the previous result")
    answer = format_answer(calls[-1]["result"]) if calls else None
    if row["ground_truth"] != answer or row["reference"]["answer"] != answer:
        problems.append(f"ground truth {row['ground_truth']!r} is not the last result {answer!r}")
    if boxed(str(answer)) not in str(row["messages"][-1]["content"]):
        problems.append("the final message does not box the answer")
    if row["teacher_tools"] != list(dict.fromkeys(c["name"] for c in calls)):
        problems.append("teacher_tools does not list the trace's tools")
    return problems


def _uses_previous(arguments: dict[str, Any], previous: Any) -> bool:
    values = [v for value in arguments.values() for v in (value if isinstance(value, list) else [value])]
    return any(v == previous for v in values)
