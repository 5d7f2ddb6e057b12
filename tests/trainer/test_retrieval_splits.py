"""The retrieval family as out-of-domain splits: data, the experiment's service, and evaluation.

`mentor-train experiment` enables the family, so the benchmark gains `ood_retrieval` (one search)
and `ood_retrieval_2hop` (two chained searches); its reward service loads the world's search index
(`write_index`); and evaluation scores those rows with the family's QA judge. Here the teacher's
turns are replayed through the real rollout loop against that service (and in-process), so every
search runs for real and must return what the teacher saw, and each answer must be judged right.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from trainer_helpers import ChatRenderer, Script, cli, scripted_generate, subprocess_env

from mentor_client.adapters.trl_tools import ToolExecutor
from mentor_server.toolsets import load_toolsets_file
from mentor_trainer import families_retrieval as fr
from mentor_trainer.benchmark import BenchmarkSizes, generate_benchmark
from mentor_trainer.evaluate import rollout, score_rollouts, summarise
from mentor_trainer.experiment_sizes import SIZES, ExperimentOptions
from mentor_trainer.experiment_stages import start_service

RETRIEVAL_SPLITS = ("ood_retrieval", "ood_retrieval_2hop")
SEED = 7
SIZES_ARGS = {"train": 16, "test": 4, "ood": 6}


@pytest.fixture(scope="module")
def bench_splits() -> Iterator[dict[str, list[dict[str, Any]]]]:
    fr.enable()
    try:
        yield generate_benchmark(seed=SEED, sizes=BenchmarkSizes(**SIZES_ARGS))
    finally:
        fr.disable()


# ---------------------------------------------------------------------------- replaying the teacher
def _teacher(row: dict[str, Any], turn: int) -> str:
    """The teacher's assistant turn `turn`, as the model would write it."""
    message = [m for m in row["messages"] if m["role"] == "assistant"][turn]
    calls = [c["function"] for c in message.get("tool_calls", [])]
    blocks = [
        f"<tool_call>\n{json.dumps({'name': f['name'], 'arguments': f['arguments']})}\n</tool_call>" for f in calls
    ]
    return (message["content"] or "") + "".join(blocks)


def _article(row: dict[str, Any], turn: int) -> str:
    """The teacher, except that the answer reads `the <ANSWER>`: right by SQuAD exact match."""
    text = _teacher(row, turn)
    if "<tool_call>" in text:
        return text
    return f"The answer is \\boxed{{the {row['ground_truth'].upper()}}}."


def _replay(rows: list[dict[str, Any]], runner: ToolExecutor, script: Script) -> list[Any]:
    fr.serve_retrieval(runner, {r["toolset"] for r in rows})
    return rollout(
        None,
        ChatRenderer(),
        [r["prompt"] for r in rows],
        [r["toolset"] for r in rows],
        runner,
        generate=scripted_generate(rows, script),
    )


def _assert_teacher_scores_perfectly(rows: list[dict[str, Any]], runner: ToolExecutor) -> None:
    rollouts = _replay(rows, runner, _teacher)
    report = summarise(rows, rollouts, score_rollouts(rows, rollouts, runner, "flexible"))
    assert report["scoring_errors"] == 0
    assert report["accuracy"] == 1.0 and report["reward"] == pytest.approx(1.0)
    assert report["tool_name_f1"] == 1.0 and report["argument_score"] == 1.0 and report["invalid_tool_rate"] == 0.0
    for row, r in zip(rows, rollouts, strict=True):  # the searches returned what the teacher read
        assert [m for m in r.completion if m["role"] == "tool"] == [m for m in row["messages"] if m["role"] == "tool"]


# ---------------------------------------------------------------------------- tests
def test_the_benchmark_gains_two_retrieval_splits(bench_splits: dict[str, list[dict[str, Any]]]) -> None:
    assert list(bench_splits)[-2:] == list(RETRIEVAL_SPLITS)
    for split, hops in zip(RETRIEVAL_SPLITS, (1, 2), strict=True):
        rows = bench_splits[split]
        assert len(rows) == SIZES_ARGS["ood"] and {r["toolset"] for r in rows} == {fr.RETRIEVAL}
        for row in rows:
            assert len(row["reference"]["calls"]) == hops and fr.verify_retrieval_row(row) == [], row["id"]


@pytest.mark.e2e
def test_make_data_writes_the_same_rows_and_a_servable_index(
    tmp_path: Path, bench_splits: dict[str, list[dict[str, Any]]]
) -> None:
    """Another process, the same seed: the same rows (the world, the index and the draws are seeded)."""
    argv = cli(
        "make-data", "--out", str(tmp_path / "data"), "--seed", str(SEED), "--retrieval", "--no-parquet", "--json",
        "--train-size", str(SIZES_ARGS["train"]), "--test-size", str(SIZES_ARGS["test"]),
        "--ood-size", str(SIZES_ARGS["ood"]),
    )  # fmt: skip
    done = subprocess.run(argv, env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads(done.stdout)
    assert printed["retrieval_toolsets"] == str(tmp_path / "data" / "retrieval" / "toolsets.json")
    assert set(printed["splits"]) == set(bench_splits)
    for split, rows in bench_splits.items():
        lines = (tmp_path / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == rows, split
    (loaded,) = load_toolsets_file(printed["retrieval_toolsets"])
    assert loaded.name == fr.RETRIEVAL and loaded.execute("search", {"query": "Works founded by"}).ok


@pytest.mark.e2e
def test_the_experiments_service_runs_the_searches_and_judges_answers_by_exact_match(
    tmp_path: Path, bench_splits: dict[str, list[dict[str, Any]]]
) -> None:
    options = ExperimentOptions(size=SIZES["toy"], out=tmp_path / "out", workdir=tmp_path / "work")
    service = start_service(options, workers=1)
    runner = ToolExecutor(service.base_url, timeout=120.0)
    try:
        service.wait_ready()
        for split in RETRIEVAL_SPLITS:
            _assert_teacher_scores_perfectly(bench_splits[split], runner)
        # A year written as "the 1102": exact match after SQuAD normalisation, which the evaluation
        # preset's own (numeric) judge would call wrong: the family's judge is the one that scored it.
        rows = [r for r in bench_splits["ood_retrieval_2hop"] if r["ground_truth"].isdigit()]
        assert rows, "no year answer among the two-hop rows"
        rollouts = _replay(rows, runner, _article)
        assert summarise(rows, rollouts, score_rollouts(rows, rollouts, runner, "flexible"))["accuracy"] == 1.0
        items = [
            {"completion": r.completion, "ground_truth": row["ground_truth"], "reference": row["reference"]}
            for row, r in zip(rows, rollouts, strict=True)
        ]
        plain = runner.backend.score(items, preset="flexible", toolset=fr.RETRIEVAL)
        assert [result.components["outcome"] for result in plain.results] == [0.0] * len(rows)
    finally:
        runner.close()
        service.stop()


def test_local_evaluation_loads_the_index_from_the_data_folder(
    tmp_path: Path, bench_splits: dict[str, list[dict[str, Any]]]
) -> None:
    fr.disable()  # nothing registered in this process: the runner has to bring the toolset
    rows = bench_splits["ood_retrieval"]
    bare = ToolExecutor(local=True)
    with pytest.raises(RuntimeError, match=r"does not serve .*retrieval/toolsets\.json"):
        fr.serve_retrieval(bare, {fr.RETRIEVAL, "calculator"})
    bare.close()
    runner = ToolExecutor(local=True, toolset_files=[fr.write_index(tmp_path / "retrieval")])
    try:
        _assert_teacher_scores_perfectly(rows, runner)
    finally:
        runner.close()
        fr.disable()
