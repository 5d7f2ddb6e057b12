"""Evaluation: the tool-executing rollout loop, scoring with the engine, the metrics and the table.

A scripted generator replays the teacher's turns through the real loop (parsing, local tool
execution, scoring with the `flexible` preset): the teacher must score perfectly, and scripted
misbehaviours must show up in the metric they are about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from trainer_helpers import ChatRenderer, Script, scripted_generate

from mentor_client.adapters.trl_tools import ToolExecutor
from mentor_trainer.evaluate import (
    METRICS,
    EvalOptions,
    format_table,
    rollout,
    run_eval,
    score_rollouts,
    summarise,
)


def _teacher_turn(row: dict[str, Any], turn: int) -> str:
    assistant = [m for m in row["messages"] if m["role"] == "assistant"][turn]
    text = assistant["content"] or ""
    for call in assistant.get("tool_calls", []):
        f = call["function"]
        text += f"<tool_call>\n{json.dumps({'name': f['name'], 'arguments': f['arguments']})}\n</tool_call>"
    return text


def _no_tools(row: dict[str, Any], turn: int) -> str:
    return "The answer is \\boxed{-123456789}."


def _hallucinated_tool(row: dict[str, Any], turn: int) -> str:
    if turn == 0:
        return '<tool_call>\n{"name": "teleport", "arguments": {"x": 1}}\n</tool_call>'
    return "\\boxed{-1}"


def _malformed_call(row: dict[str, Any], turn: int) -> str:
    return '<tool_call>\n{"name": "add", "arguments": {"a": 1,\n</tool_call>'


def _endless_calls(row: dict[str, Any], turn: int) -> str:
    return '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 1}}\n</tool_call>'


def _run(rows: list[dict[str, Any]], script: Script, max_turns: int = 6) -> tuple[dict[str, Any], list[Any]]:
    runner = ToolExecutor(local=True)
    rollouts = rollout(
        None,
        ChatRenderer(),
        [r["prompt"] for r in rows],
        [r["toolset"] for r in rows],
        runner,
        max_turns=max_turns,
        batch_size=5,
        generate=scripted_generate(rows, script),
    )
    return summarise(rows, rollouts, score_rollouts(rows, rollouts, runner, "flexible")), rollouts


@pytest.mark.parametrize("split", ["test", "ood_long", "ood_combo", "ood_units", "ood_dates"])
def test_replaying_the_teacher_scores_perfectly(split: str, bench_rows: dict[str, list[dict[str, Any]]]) -> None:
    rows = bench_rows[split][:10]
    report, rollouts = _run(rows, _teacher_turn)
    assert report["accuracy"] == 1.0 and report["reward"] == pytest.approx(1.0)
    assert report["tool_name_f1"] == 1.0 and report["argument_score"] == 1.0
    assert report["call_rate"] == 1.0 and report["invalid_tool_rate"] == 0.0 and report["malformed_call_rate"] == 0.0
    assert report["avg_calls"] == report["teacher_avg_calls"] and report["finished_rate"] == 1.0
    # The loop executed the calls: the tool messages are the teacher's.
    for row, r in zip(rows, rollouts, strict=True):
        assert [m for m in r.completion if m["role"] == "tool"] == [m for m in row["messages"] if m["role"] == "tool"]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (_no_tools, {"call_rate": 0.0, "avg_calls": 0.0, "accuracy": 0.0, "invalid_tool_rate": None}),
        (
            _hallucinated_tool,
            {"call_rate": 1.0, "invalid_tool_rate": 1.0, "tool_name_f1": 0.0, "accuracy": 0.0},
        ),
        (_malformed_call, {"call_rate": 1.0, "malformed_call_rate": 1.0, "argument_score": 0.0}),
        (_endless_calls, {"avg_calls": 3.0, "finished_rate": 0.0, "malformed_call_rate": 0.0}),
    ],
    ids=["no-tools", "hallucinated-tool", "malformed-call", "turn-limit"],
)
def test_misbehaviour_shows_in_its_metric(
    script: Script, expected: dict[str, Any], bench_rows: dict[str, list[dict[str, Any]]]
) -> None:
    report, _ = _run(bench_rows["test"][:6], script, max_turns=3)
    for metric, value in expected.items():
        assert report[metric] == value, metric


def test_table_lists_every_metric_for_every_split() -> None:
    report = {
        "test": {"n": 3, **{m: 0.5 for m, _ in METRICS}},
        "ood_units": {"n": 2, **{m: None for m, _ in METRICS}},
    }
    table = format_table(report)
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "test", "ood_units"]
    for metric, _ in METRICS:
        assert any(line.split()[0] == metric for line in lines), metric
    assert "0.500" in table and " -" in table


def test_run_eval_with_the_model_writes_the_report(tmp_path: Path, bench: Path, warm: Path) -> None:
    result = run_eval(
        bench,
        warm,
        ToolExecutor(local=True),
        EvalOptions(splits=("test", "ood_units"), limit=6, max_new_tokens=48, max_turns=3),
        out=tmp_path,
        progress=False,
    )
    assert set(result["splits"]) == {"test", "ood_units"}
    for split in ("test", "ood_units"):
        metrics = result["splits"][split]
        assert metrics["n"] == 6 and metrics["scoring_errors"] == 0
        for name in ("accuracy", "call_rate", "finished_rate"):
            assert 0.0 <= metrics[name] <= 1.0
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["table"] == result["table"] and "tool_name_f1" in saved["table"]
    lines = (tmp_path / "rollouts.jsonl").read_text().splitlines()
    assert len(lines) == 12 and all("score" in json.loads(line) for line in lines)
