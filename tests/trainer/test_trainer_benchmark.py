"""The executable-tool benchmark: reproducible, correct by construction, splits that mean what they say."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mentor_client.adapters.trl_tools import trl_tools
from mentor_server.toolsets import get_toolset
from mentor_trainer.benchmark import (
    FAMILIES,
    JSON_TEXT_COLUMNS,
    BenchmarkSizes,
    Family,
    GenerationError,
    Teacher,
    generate_benchmark,
    generate_split,
    load_split,
    verify_row,
    write_benchmark,
)
from mentor_trainer.chat import prompt_without_tool_block, split_tool_block

SMALL = BenchmarkSizes(train=40, test=10, ood=6)
SPLITS = ("train", "test", "ood_long", "ood_combo", "ood_units", "ood_dates")


def _sequence(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(c["name"] for c in row["reference"]["calls"])


def test_same_seed_same_files_other_seed_other_problems(tmp_path: Path) -> None:
    first, again, other = (generate_benchmark(seed=s, sizes=SMALL) for s in (7, 7, 8))
    assert first == again
    assert [r["prompt"][-1]["content"] for r in first["train"]] != [r["prompt"][-1]["content"] for r in other["train"]]
    a = write_benchmark(tmp_path / "a", first, seed=7)
    b = write_benchmark(tmp_path / "b", again, seed=7)
    assert a == b
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == (tmp_path / "b" / "train.jsonl").read_bytes()


def _two_problems(rng: Any, t: Teacher) -> str:
    a = rng.randint(1, 2)
    t.call("add", a, a)
    return f"What is {a} plus {a}?"


def test_an_exhausted_family_drops_out_and_the_others_fill_the_split(monkeypatch: pytest.MonkeyPatch) -> None:
    small = Family("two", "calculator", ("add",), _two_problems)
    add = next(f for f in FAMILIES["in_domain"] if f.name == "add")
    monkeypatch.setitem(FAMILIES, "mixed", [small, add])
    rows = generate_split("x", "mixed", 20, seed=0)
    assert len(rows) == 20 and sum(r["family"] == "two" for r in rows) == 2
    monkeypatch.setitem(FAMILIES, "too_small", [small])
    with pytest.raises(GenerationError, match="only 2 distinct problems, not 3"):
        generate_split("x", "too_small", 3, seed=0)


def test_every_split_is_written(bench: Path) -> None:
    manifest = json.loads((bench / "manifest.json").read_text())
    assert set(manifest["splits"]) == set(SPLITS)
    for split in SPLITS:
        assert (bench / f"{split}.jsonl").exists() and (bench / f"{split}.parquet").exists()


@pytest.mark.parametrize("split", SPLITS)
def test_reference_traces_re_execute_to_the_recorded_answers(
    split: str, bench_rows: dict[str, list[dict[str, Any]]]
) -> None:
    """Correct by construction: replaying each trace with the toolset gives its results and answer."""
    rows = bench_rows[split]
    assert rows
    for row in rows:
        assert verify_row(row) == [], row["id"]
        # An independent replay, not only verify_row: chain the calls and compare the final value.
        toolset = get_toolset(row["toolset"])
        last = None
        for call in row["reference"]["calls"]:
            execution = toolset.execute(call["name"], call["arguments"])
            assert execution.ok and execution.result == call["result"]
            last = execution.content
        assert row["ground_truth"] == last
        assert f"\\boxed{{{row['ground_truth']}}}" in row["messages"][-1]["content"]


def _tamper_result(row: dict[str, Any]) -> None:
    row["reference"]["calls"][-1]["result"] = 123456789


def _tamper_answer(row: dict[str, Any]) -> None:
    row["ground_truth"] = "-1"


def _tamper_tool_message(row: dict[str, Any]) -> None:
    next(m for m in row["messages"] if m["role"] == "tool")["content"] = "999999"


def _tamper_argument(row: dict[str, Any]) -> None:
    call = row["reference"]["calls"][0]
    key = next(iter(call["arguments"]))
    call["arguments"][key] = 987654


def _tamper_teacher_tools(row: dict[str, Any]) -> None:
    row["teacher_tools"] = ["sqrt"]


@pytest.mark.parametrize(
    "tamper",
    [_tamper_result, _tamper_answer, _tamper_tool_message, _tamper_argument, _tamper_teacher_tools],
    ids=["result", "answer", "tool-message", "argument", "teacher-tools"],
)
def test_verify_row_catches_a_tampered_trace(tamper: Any, bench_rows: dict[str, list[dict[str, Any]]]) -> None:
    row = copy.deepcopy(next(r for r in bench_rows["train"] if r["family"] == "add_multiply"))
    assert verify_row(row) == []
    tamper(row)
    assert verify_row(row) != []


@pytest.mark.parametrize(
    ("split", "low", "high"),
    [
        ("train", 1, 2),
        ("test", 1, 2),
        ("ood_long", 3, 4),
        ("ood_combo", 2, 2),
        ("ood_units", 1, 2),
        ("ood_dates", 1, 2),
    ],
)
def test_call_counts_per_split(split: str, low: int, high: int, bench_rows: dict[str, list[dict[str, Any]]]) -> None:
    counts = {len(r["reference"]["calls"]) for r in bench_rows[split]}
    assert min(counts) >= low and max(counts) <= high


def test_out_of_domain_splits_are_out_of_domain(bench_rows: dict[str, list[dict[str, Any]]]) -> None:
    in_domain = {_sequence(r) for r in bench_rows["train"]}
    in_domain_tools = {name for seq in in_domain for name in seq}
    assert in_domain == {f.tools for f in FAMILIES["in_domain"]}  # every in-domain combo is represented
    assert in_domain_tools == set(get_toolset("calculator").names)  # every calculator tool is seen alone
    combos = {_sequence(r) for r in bench_rows["ood_combo"]}
    assert combos and not combos & in_domain  # unseen pairs...
    assert {n for seq in combos for n in seq} <= in_domain_tools  # ...of seen tools
    assert all(len(s) >= 3 for s in {_sequence(r) for r in bench_rows["ood_long"]})
    for domain in ("units", "dates"):
        rows = bench_rows[f"ood_{domain}"]
        names = get_toolset(domain).names
        assert {r["toolset"] for r in rows} == {domain}
        assert all(set(_sequence(r)) <= names for r in rows)


def test_test_questions_never_repeat_training_questions(bench_rows: dict[str, list[dict[str, Any]]]) -> None:
    train = {r["prompt"][-1]["content"] for r in bench_rows["train"]}
    for split, rows in bench_rows.items():
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids))
        if split != "train":
            assert not train & {r["prompt"][-1]["content"] for r in rows}, split


def test_row_columns_have_the_trl_shapes(bench_rows: dict[str, list[dict[str, Any]]]) -> None:
    for rows in bench_rows.values():
        row = rows[0]
        system, user = row["prompt"]
        assert (system["role"], user["role"]) == ("system", "user")
        instruction, has_tools = split_tool_block(system["content"])
        assert has_tools and instruction
        tools_in_prompt = {n for n in get_toolset(row["toolset"]).names if f'"name": "{n}"' in system["content"]}
        assert tools_in_prompt == set(get_toolset(row["toolset"]).names)
        assert row["messages"][:2] == row["prompt"]
        calls = [m for m in row["messages"] if m.get("tool_calls")]
        assert [m["tool_calls"][0]["function"] for m in calls] == [
            {"name": c["name"], "arguments": c["arguments"]} for c in row["reference"]["calls"]
        ]
        assert row["teacher_tools"] == list(dict.fromkeys(_sequence(row)))
        assert row["reference"]["answer"] == row["ground_truth"]


@pytest.mark.parametrize("split", ["ood_units", "ood_combo", "train"])
def test_parquet_holds_the_jsonl_rows_exactly(
    split: str, bench: Path, bench_rows: dict[str, list[dict[str, Any]]]
) -> None:
    """Unit conversions give floats like 0.0038608 that `datasets`' Json type would not round-trip."""
    from datasets import Dataset

    decoded = [
        {**r, **{c: json.loads(r[c]) for c in JSON_TEXT_COLUMNS}}
        for r in Dataset.from_parquet(str(bench / f"{split}.parquet")).to_list()
    ]
    assert decoded == bench_rows[split]


def test_each_tool_keeps_its_own_argument_keys(bench: Path) -> None:
    """No struct column merging every tool's keys (which would add `None` for the others)."""
    loaded = load_split(bench, "train")
    args = [c["arguments"] for r in loaded for c in json.loads(r["reference"])["calls"]]
    assert {("a", "b"), ("numbers",), ("a",)} <= {tuple(sorted(a)) for a in args}
    assert all(None not in a.values() for a in args)
    assert loaded[0]["prompt"] == json.loads(json.dumps(loaded[0]["prompt"]))  # a message list for TRL
    assert isinstance(loaded[0]["prompt"], list) and loaded[0]["prompt"][0]["role"] == "system"


@pytest.mark.parametrize("split", ["train", "ood_units", "ood_dates"])
def test_grpo_renders_the_same_prompt_as_the_data(
    split: str, bench_rows: dict[str, list[dict[str, Any]]], tokenizer: Any
) -> None:
    """GRPOTrainer(tools=...) writes the tool block from the callables: it must be the data's text."""
    row = bench_rows[split][0]
    tools = trl_tools(row["toolset"], local=True)
    via_trl = tokenizer.apply_chat_template(
        prompt_without_tool_block(row["prompt"]), tools=tools, add_generation_prompt=True, tokenize=False
    )
    via_data = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    assert via_trl == via_data
