"""Learning signal the user can see: GRPO warns on flat rewards and on no tool calls; eval warns when
no rollout finished."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mentor_trainer.demo import explain_family, family_accuracy
from mentor_trainer.evaluate import finish_warnings
from mentor_trainer.grpo import CALL_RATE_KEY, ZERO_STD_KEY, SignalMonitor, signal_callback


def _feed(monitor: SignalMonitor, entries: list[dict[str, Any]]) -> list[list[str]]:
    return [monitor.observe(step, logs) for step, logs in enumerate(entries, start=1)]


def test_flat_reward_warns_once_after_patience_steps() -> None:
    monitor = SignalMonitor(patience=3)
    said = _feed(monitor, [{ZERO_STD_KEY: 1.0}] * 2 + [{ZERO_STD_KEY: 0.97}] + [{ZERO_STD_KEY: 1.0}] * 3)
    assert [len(s) for s in said] == [0, 0, 1, 0, 0, 0]
    assert "no variance within groups for 3 steps" in said[2][0]
    assert monitor.warnings == said[2]


def test_a_step_with_signal_resets_the_count() -> None:
    monitor = SignalMonitor(patience=3)
    _feed(monitor, [{ZERO_STD_KEY: 1.0}, {ZERO_STD_KEY: 1.0}, {ZERO_STD_KEY: 0.5}, {ZERO_STD_KEY: 1.0}])
    assert monitor.warnings == []


def test_no_tool_calls_warns() -> None:
    monitor = SignalMonitor(patience=2)
    said = _feed(monitor, [{CALL_RATE_KEY: 0.0, ZERO_STD_KEY: 0.0}, {CALL_RATE_KEY: 0.0, ZERO_STD_KEY: 0.0}])
    assert said[0] == [] and len(said[1]) == 1
    assert "no rollout has called a tool for 2 steps" in said[1][0]


def test_calls_and_varied_rewards_stay_quiet() -> None:
    monitor = SignalMonitor(patience=1)
    _feed(monitor, [{CALL_RATE_KEY: 0.5, ZERO_STD_KEY: 0.25}] * 5 + [{"loss": 0.1}])
    assert monitor.warnings == []


def test_callback_feeds_the_monitor_from_trainer_logs() -> None:
    said: list[str] = []
    monitor = SignalMonitor(patience=1)
    callback = signal_callback(monitor, said.append)

    class State:
        global_step = 7

    callback.on_log(None, State(), None, logs={CALL_RATE_KEY: 0.0})
    assert len(said) == 1 and said[0].startswith("step 7:")
    assert monitor.warnings == said


def test_eval_warns_when_no_rollout_finished() -> None:
    report = {
        "test": {"n": 8, "finished_rate": 0.0},
        "ood_long": {"n": 8, "finished_rate": 0.25},
        "empty": {"n": 0, "finished_rate": None},
    }
    warnings = finish_warnings(report)
    assert len(warnings) == 1 and "'test'" in warnings[0]


def test_demo_reports_its_trained_family_and_explains_a_zero(tmp_path: Path) -> None:
    from mentor_trainer.benchmark import BenchmarkSizes, generate_benchmark, write_benchmark

    data = tmp_path / "data"
    splits = generate_benchmark(seed=0, sizes=BenchmarkSizes(train=16, test=32, ood=2))
    write_benchmark(data, splits, seed=0, parquet=False)
    adds = [r["id"] for r in splits["test"] if r["family"] == "add"]
    other = next(r["id"] for r in splits["test"] if r["family"] != "add")
    assert adds
    lines = [
        {"id": i, "split": "test", "score": {"components": {"outcome": 1.0 if k == 0 else 0.0}}}
        for k, i in enumerate(adds)
    ]
    lines.append({"id": other, "split": "test", "score": {"components": {"outcome": 1.0}}})
    rollouts = tmp_path / "rollouts.jsonl"
    rollouts.write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
    result = family_accuracy(data, rollouts, "add")
    assert result == {"family": "add", "n": len(adds), "accuracy": 1 / len(adds)}
    assert explain_family(result, {"warm_rows": 16, "warm_steps": 100}).startswith("accuracy on the 'add' family")

    zero = {"family": "add", "n": 4, "accuracy": 0.0}
    text = explain_family(zero, {"warm_rows": 16, "warm_steps": 100})
    assert "16 'add' traces for 100 steps" in text and "experiment --size cpu" in text
