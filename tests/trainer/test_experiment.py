"""`mentor-train experiment --size toy` end to end on the CPU, plus its budget and timing arithmetic.

The toy run is the GPU experiment at a size a 2-core machine finishes in about a minute: the same
script, service, SFT, GRPO under every reward with tools executed by the service, and evaluation
of every checkpoint. It runs with a (generous) wall-time budget, so the step-count planning that
the GPU run relies on runs here first.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from trainer_helpers import cli, subprocess_env

from mentor_trainer.experiment import SIZES, busy_seconds, options_from_args, plan_runs, plan_steps
from mentor_trainer.experiment_report import describe_grpo_settings, grpo_settings

SPLITS = ["test", "ood_long", "ood_combo", "ood_dates", "ood_retrieval", "ood_retrieval_2hop", "ood_units"]
METHODS = ["sparse", "mentor", "flexible", "strict"]
TOOL_METRICS = ("accuracy", "call_rate", "invalid_tool_rate", "tool_name_f1", "argument_score")
STEPS = 4
# Far above what the toy needs, so the step cap decides and no run is skipped even on a busy machine;
# the budget path (calibration, planning, the note) still runs.
BUDGET_S = 3600


# ---------------------------------------------------------------------------- the toy run
@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("experiment")
    argv = cli(
        "experiment", "--size", "toy", "--out", str(out / "report"), "--workdir", str(out / "work"),
        "--with-strict", "--seeds", "3", "--budget-s", str(BUDGET_S), "--grpo-steps", str(STEPS),
        "--torch-threads", "1", "--grpo-beta", "0.04", "--grpo-lr", "2e-5",
    )  # fmt: skip
    # A non-zero KL beta makes TRL load checkpoint A again as the reference model: that path runs here.
    # One torch thread: on a CPU other jobs share, two threads wait at every op for a descheduled one.
    # The timeout only catches a hung run; a busy 2-core machine takes minutes.
    done = subprocess.run(argv, env=subprocess_env(), capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done.stdout, json.loads((out / "report" / "experiment.json").read_text())


def _table(stdout: str, title: str) -> list[str]:
    """The lines of the table printed under the paragraph that starts with `title`."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1 : end]


@pytest.mark.e2e
@pytest.mark.slow
def test_accuracy_table_has_a_row_per_method_and_a_column_per_split(toy: tuple[Path, str, dict[str, Any]]) -> None:
    _, stdout, report = toy
    table = _table(stdout, "Answer accuracy")
    header = re.findall(r"(in-domain|ood_\w+) \(n=(\d+)\)", table[0])
    assert [s for s, _ in header] == ["in-domain", *SPLITS[1:]]
    assert table[0].rstrip().endswith("OOD mean")
    rows = {line[:16].strip(): line[16:].split() for line in table[2:]}
    assert list(rows) == ["SFT (A)", *[f"GRPO {m}" for m in METHODS]]
    for label, cells in rows.items():
        assert len(cells) == len(SPLITS) + 1, label
        assert all(c == "-" or 0.0 <= float(c) <= 1.0 for c in cells), label
    assert report["tables"]["accuracy"] in stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_json_has_every_metric_of_every_checkpoint(toy: tuple[Path, str, dict[str, Any]]) -> None:
    _, _, report = toy
    assert report["complete"] is True and report["splits"] == SPLITS
    assert [(e["method"], e["seed"]) for e in report["evaluations"]] == [("sft", None), *[(m, 3) for m in METHODS]]
    for entry in report["evaluations"]:
        assert list(entry["splits"]) == SPLITS
        for split, metrics in entry["splits"].items():
            assert metrics["n"] == (SIZES["toy"].test_rows if split == "test" else SIZES["toy"].ood_rows)
            assert metrics["scoring_errors"] == 0
            for name in TOOL_METRICS:
                value = metrics[name]
                assert value is None or 0.0 <= value <= 1.0, (entry["method"], split, name)


@pytest.mark.e2e
@pytest.mark.slow
def test_grpo_runs_timed_their_reward_and_tool_waits(toy: tuple[Path, str, dict[str, Any]]) -> None:
    _, stdout, report = toy
    runs = report["grpo_runs"]
    assert [r["method"] for r in runs] == METHODS
    completions = SIZES["toy"].completions_per_step
    for run in runs:
        assert run["steps"] == len(run["step_seconds"]) == STEPS
        # Each step awaited one reward batch holding the whole generation batch.
        assert run["reward_batches"] == [completions] * STEPS
        for step, reward, tools in zip(
            run["step_seconds"], run["reward_wait_seconds"], run["tool_wait_seconds"], strict=True
        ):
            assert 0.0 < reward < step and 0.0 <= tools < step
        assert 0.0 < run["stats"]["reward_wait_share"] < 1.0
        # The service saw every reward batch (and the tool calls the clocks counted).
        assert run["service_requests"]["/v1/score"] == STEPS
        assert run["service_requests"]["/v1/tools/execute"] == sum(run["tool_calls"])
        assert run["reward_series"]["reward"] and "outcome" in run["reward_series"]
    assert sum(sum(r["tool_calls"]) for r in runs) > 0, "no GRPO rollout called a tool"
    assert len(_table(stdout, "GRPO step cost")) == 2 + len(runs)


@pytest.mark.e2e
@pytest.mark.slow
def test_budget_and_command_are_recorded(toy: tuple[Path, str, dict[str, Any]]) -> None:
    out, stdout, report = toy
    budget = report["budget"]
    assert budget["budget_s"] == BUDGET_S and budget["steps"] == STEPS and budget["runs"] == len(METHODS)
    assert budget["step_seconds"] > 0 and not budget["skipped_runs"] and not budget["dropped_seeds"]
    assert f"GRPO steps per run scaled to {STEPS}" in stdout
    assert "experiment --size toy" in report["command"] and report["seeds"] == [3]
    assert report["environment"]["device"] == "cpu"
    assert report["grpo_settings"] == {
        "learning_rate": 2e-5, "beta": 0.04, "temperature": 1.0, "prompts_per_step": 2, "num_generations": 4,
        "completions_per_step": 8,
    }  # fmt: skip
    assert "GRPO settings: lr 2e-05, KL beta 0.04, temperature 1, 2 prompts x 4 completions per step" in stdout
    assert (out / "report" / "experiment.txt").read_text().strip() in stdout
    assert not (out / "work").exists()  # checkpoints go unless --keep


# ---------------------------------------------------------------------------- arithmetic
@pytest.mark.parametrize(
    ("intervals", "window", "expected"),
    [
        ([], (0.0, 10.0), 0.0),
        ([(1.0, 2.0), (3.0, 5.0)], (0.0, 10.0), 3.0),
        ([(1.0, 4.0), (2.0, 3.0), (3.5, 6.0)], (0.0, 10.0), 5.0),
        ([(-2.0, 1.0), (9.0, 12.0)], (0.0, 10.0), 2.0),
        ([(11.0, 12.0)], (0.0, 10.0), 0.0),
    ],
    ids=["none", "disjoint", "overlapping-counted-once", "clipped-to-the-step", "outside"],
)
def test_busy_seconds(intervals: list[tuple[float, float]], window: tuple[float, float], expected: float) -> None:
    assert busy_seconds(intervals, *window) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("remaining", "step", "setup", "evaluation", "runs", "done", "cap", "expected"),
    [
        # (N-3)·2 + 10 + 2·(5 + N·2 + 10) <= 300  ->  6N <= 266  ->  N = 44
        (300.0, 2.0, 5.0, 10.0, 3, 3, 100, 44),
        (300.0, 2.0, 5.0, 10.0, 3, 3, 20, 20),
        (30.0, 2.0, 5.0, 10.0, 3, 3, 100, 3),
        (100.0, 1.0, 0.0, 0.0, 1, 3, 1000, 103),
    ],
    ids=["fits", "capped", "never-below-the-steps-done", "one-run"],
)
def test_plan_steps(
    remaining: float, step: float, setup: float, evaluation: float, runs: int, done: int, cap: int, expected: int
) -> None:
    steps = plan_steps(remaining, step, setup, evaluation, runs, done, cap)
    assert steps == expected
    if done < expected < cap:  # the plan fits, and one more step per run would not
        used = (steps - done) * step + evaluation + (runs - 1) * (setup + steps * step + evaluation)
        assert used <= remaining < used + runs * step


@pytest.mark.parametrize(
    ("remaining", "seeds", "expected"),
    [
        # 6 runs: (200 - 10 - 5·15 + 3·2) // (6·2) = 10 >= 10 steps: both seeds stay
        (200.0, (1, 2), (10, (1, 2))),
        # 6 runs would get 5 steps: seed 2 goes, 3 runs get (150 - 10 - 2·15 + 6) // 6 = 19
        (150.0, (1, 2), (19, (1,))),
        # one seed is never dropped, and a run never stops before the steps it has done
        (50.0, (1,), (3, (1,))),
    ],
    ids=["both-seeds-fit", "second-seed-dropped", "single-seed-kept"],
)
def test_plan_runs_drops_later_seeds_before_starving_runs(
    remaining: float, seeds: tuple[int, ...], expected: tuple[int, tuple[int, ...]]
) -> None:
    assert plan_runs(remaining, 2.0, 5.0, 10.0, seeds, 3, 3, 60, 10) == expected


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"size": "tpu"}, "--size"),
        ({"methods": "sparse,mentorr"}, "--methods"),
        ({"seeds": "1,two"}, "--seeds"),
        ({"seeds": ","}, "--seeds"),
        ({"budget_s": 0.0}, "--budget-s"),
        ({"grpo_steps": 0}, "--grpo-steps"),
        ({"sft_steps": 0}, "--sft-steps"),
        ({"grpo_lr": 0.0}, "--grpo-lr"),
        ({"grpo_beta": -0.1}, "--grpo-beta"),
        ({"grpo_temperature": 0.0}, "--grpo-temperature"),
        ({"grpo_prompts": 0}, "--grpo-prompts"),
    ],
    ids=[
        "size",
        "unknown-preset",
        "seed-not-int",
        "no-seed",
        "budget",
        "steps",
        "sft-steps",
        "grpo-lr",
        "grpo-beta",
        "grpo-temperature",
        "grpo-prompts",
    ],
)
def test_bad_options_name_the_flag(changes: dict[str, Any], flag: str) -> None:
    with pytest.raises(ValueError, match=re.escape(flag)):
        options_from_args(**{**OPTION_ARGS, **changes})


OPTION_ARGS: dict[str, Any] = {
    "size": "cpu", "out": None, "workdir": None, "methods": None, "with_strict": False, "seeds": "1",
    "budget_s": None, "grpo_steps": None, "sft_seconds": None, "eval_rows": None, "service_workers": None,
    "data_seed": 0, "keep": False, "command": "",
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "steps", "seconds"),
    [
        ({}, 1000, 1800.0),  # the cpu size: 1,000 steps, capped at 30 minutes
        ({"sft_seconds": 600.0}, None, 600.0),  # a time budget alone
        ({"sft_steps": 1200}, 1200, None),  # a step count alone: no time cap to cut it short under load
        ({"sft_steps": 1200, "sft_seconds": 600.0}, 1200, 600.0),  # both: whichever comes first
    ],
    ids=["default", "seconds", "steps", "both"],
)
def test_sft_length_flags(changes: dict[str, Any], steps: int | None, seconds: float | None) -> None:
    size = options_from_args(**{**OPTION_ARGS, **changes}).size
    assert (size.sft_steps, size.sft_seconds) == (steps, seconds)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {"learning_rate": 2e-4, "beta": 0.0, "temperature": 1.0, "prompts_per_step": 2}),
        (
            {"grpo_lr": 2e-5, "grpo_beta": 0.04, "grpo_temperature": 0.7, "grpo_prompts": 4},
            {"learning_rate": 2e-5, "beta": 0.04, "temperature": 0.7, "prompts_per_step": 4},
        ),
    ],
    ids=["cpu-size-defaults", "every-flag"],
)
def test_grpo_setting_flags(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    size = options_from_args(**{**OPTION_ARGS, **changes}).size
    settings = size.grpo_settings()
    assert {k: settings[k] for k in expected} == expected
    # Prompts per step are micro-batches of the size's batch; each prompt keeps its 8 completions.
    assert settings["completions_per_step"] == 8 * expected["prompts_per_step"] == size.completions_per_step
    assert size.grpo_batch == SIZES["cpu"].grpo_batch


def test_grpo_settings_of_a_report_written_before_they_were_recorded() -> None:
    old = {"size": {k: v for k, v in asdict(SIZES["cpu"]).items() if k != "grpo_beta"}}
    assert grpo_settings(old) == SIZES["cpu"].grpo_settings()
    assert describe_grpo_settings(grpo_settings(old)) == (
        "lr 0.0002, KL beta 0, temperature 1, 2 prompts x 8 completions per step"
    )


def test_gpu_size_matches_the_notes() -> None:
    gpu = SIZES["gpu"]
    # hidden 384 × 6 layers (~13M parameters), >= 256 completions per GRPO step, an ~8 minute budget.
    assert (gpu.hidden_size, gpu.layers) == (384, 6)
    assert gpu.completions_per_step >= 256 and gpu.completions_per_step % gpu.num_generations == 0
    assert gpu.budget_s is not None and gpu.budget_s <= 480
