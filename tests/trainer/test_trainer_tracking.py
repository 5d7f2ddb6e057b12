"""Training observability: trackers, checkpoints and resume, logged completions, LoRA, run ids.

The resume test is the crash it guards against: a real `mentor-train grpo` process saving a
checkpoint every two steps is killed (SIGKILL) once one is complete, and the same command with
`--resume` continues from that step (the first step it trains is the checkpoint's + 1), under the
same run id, with the TensorBoard event files and the sampled completions written. The fast tests
check the option handling, which fails before any model loads.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from trainer_helpers import WARM_FAMILY, cli, subprocess_env

from mentor_trainer.cli import build_parser, main
from mentor_trainer.tracking import (
    LoraOptions,
    Tracking,
    check_report_to,
    complete_checkpoints,
    resume_checkpoint,
    run_label,
    tracking_from_args,
)

GRPO_ARGS = ("--local", "--preset", "flexible", "--family", WARM_FAMILY, "--temperature", "0.8", "--json")
# Only catches a hang: a busy 2-core machine takes a few seconds per tiny GRPO step.
HANG = 1800.0


# ---------------------------------------------------------------------------- options (fast)
def test_defaults_change_nothing() -> None:
    assert Tracking().config_kwargs(None) == {"report_to": "none", "save_strategy": "no"}


def test_checkpoints_and_trackers_become_config_fields() -> None:
    kwargs = Tracking(report_to=("tensorboard",), save_steps=5, save_total_limit=2).config_kwargs("flexible-x")
    assert kwargs == {
        "report_to": ["tensorboard"],
        "save_strategy": "steps",
        "save_steps": 5,
        "save_total_limit": 2,
        "run_name": "flexible-x",
    }


def _grpo_args(*extra: str) -> Any:
    return build_parser().parse_args(["grpo", "--data", "d", "--model", "m", "--out", "o", *extra])


def test_flags_parse_into_tracking() -> None:
    args = _grpo_args(
        "--report-to", "tensorboard,trackio", "--report-to", "wandb", "--save-steps", "10", "--resume",
        "--log-completions", "--lora-r", "8", "--lora-target-modules", "q_proj, v_proj",
    )  # fmt: skip
    tracking = tracking_from_args(args)
    assert tracking.report_to == ("tensorboard", "trackio", "wandb")
    assert tracking.save_steps == 10 and tracking.resume == "latest" and tracking.log_completions
    assert tracking.lora == LoraOptions(r=8, alpha=16, dropout=0.05, target_modules=("q_proj", "v_proj"))
    assert tracking_from_args(_grpo_args("--resume", "runs/x/checkpoints/checkpoint-4")).resume.endswith("-4")  # type: ignore[union-attr]
    assert tracking_from_args(_grpo_args()) == Tracking()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--lora-alpha", "8"), "need --lora-r"),
        (("--lora-r", "0"), "--lora-r must be at least 1"),
        (("--save-steps", "0"), "--save-steps must be at least 1"),
        (("--report-to", "none,tensorboard"), "cannot be combined"),
    ],
    ids=["alpha-without-rank", "rank-zero", "save-steps-zero", "none-and-more"],
)
def test_bad_flags_are_errors(extra: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tracking_from_args(_grpo_args(*extra))


def test_report_to_names_a_known_installed_integration() -> None:
    check_report_to(("tensorboard", "none"))  # installed with the train extra
    with pytest.raises(ValueError, match="unknown integration 'tensorbored'"):
        check_report_to(("tensorbored",))
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    missing = sorted(set(INTEGRATION_TO_CALLBACK) - set(get_available_reporting_integrations()))
    assert missing, "every tracker is installed here: nothing to check"
    with pytest.raises(ValueError, match=f"--report-to {missing[0]}: not installed"):
        check_report_to((missing[0],))


def test_resume_finds_the_newest_complete_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no complete checkpoint-N folder"):
        resume_checkpoint(tmp_path, "latest")
    for step in (2, 4, 6):
        (tmp_path / "checkpoints" / f"checkpoint-{step}").mkdir(parents=True)
    for step in (2, 4):  # checkpoint-6 was being written when the process died: no trainer state
        (tmp_path / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert [s for s, _ in complete_checkpoints(tmp_path)] == [2, 4]
    assert resume_checkpoint(tmp_path, "latest").name == "checkpoint-4"
    with pytest.raises(ValueError, match="not a complete checkpoint folder"):
        resume_checkpoint(tmp_path, str(tmp_path / "checkpoints" / "checkpoint-6"))


def test_the_reward_metric_is_named_after_the_preset() -> None:
    assert run_label("flexible", None) == "flexible"
    assert run_label("mentor", {"components": {}}) == "spec"
    assert run_label("my preset/2", None) == "my_preset_2"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--report-to", "tensorbored"), "unknown integration"),
        (("--resume",), "no complete checkpoint-N folder"),
    ],
    ids=["unknown-tracker", "nothing-to-resume"],
)
def test_grpo_rejects_bad_tracking_before_loading_a_model(
    extra: tuple[str, ...], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No model or data exists at these paths: the error must come before anything is loaded.
    argv = ["grpo", "--data", str(tmp_path), "--model", str(tmp_path), "--out", str(tmp_path / "o"), "--local"]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mentor-train grpo: error:") and message in err


# ---------------------------------------------------------------------------- real runs (slow)
def _history_steps(out: Path) -> list[int]:
    history = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    return [int(e["step"]) for e in history if "loss" in e and "step" in e]


def _main_json(argv: list[str]) -> dict[str, Any]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(argv) == 0
    text = stdout.getvalue()
    summary: dict[str, Any] = json.loads(text[text.index("{\n") :])
    return summary


def _run_until_a_checkpoint(argv: list[str], out: Path) -> int:
    """Start `argv`, SIGKILL it once a complete checkpoint exists; the newest complete step."""
    log = (out.parent / f"{out.name}.log").open("w")
    proc = subprocess.Popen(argv, env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + HANG
        while not complete_checkpoints(out):
            assert proc.poll() is None, f"the run ended before its first checkpoint:\n{_tail(out)}"
            assert time.monotonic() < deadline, "no checkpoint: the run hangs"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the crash: no clean shutdown, no final save
        proc.wait()
        log.close()
    assert not (out / "model").exists()
    return complete_checkpoints(out)[-1][0]


def _tail(out: Path) -> str:
    return (out.parent / f"{out.name}.log").read_text()[-3000:]


@pytest.mark.e2e
@pytest.mark.slow
def test_a_killed_grpo_run_resumes_from_its_checkpoint(tmp_path: Path, bench: Path, warm: Path) -> None:
    out = tmp_path / "grpo"
    first = [
        *cli("grpo"), "--data", str(bench), "--model", str(warm), "--out", str(out), *GRPO_ARGS,
        "--save-steps", "2", "--max-steps", "200", "--report-to", "tensorboard", "--log-completions",
        "--num-completions-to-print", "1",
    ]  # fmt: skip
    saved = _run_until_a_checkpoint(first, out)
    run_id = (out / "run_id").read_text().strip()
    assert run_id.startswith("flexible-")

    # The same command with --resume (and a nearer end, to keep the test short).
    resumed = [*first[3:], "--resume"]
    resumed[resumed.index("--max-steps") + 1] = str(saved + 2)
    summary = _main_json(resumed)
    assert summary["resumed_from"].endswith(f"checkpoint-{saved}")
    assert summary["trained_steps"] == [saved + 1, saved + 2], "did not continue from the saved step"
    assert summary["steps"] == saved + 2
    assert summary["run_id"] == run_id == summary["reward"]["run_id"]
    # The log history goes on from the checkpoint's: one entry per step, none trained twice.
    assert _history_steps(out) == list(range(1, saved + 3))
    assert len(summary["reward_series"]["rewards/flexible/mean"]) == saved + 2
    assert "rewards/mentor/mean" not in summary["reward_series"]
    # TensorBoard's event files and the sampled completions of both processes.
    assert list((out / "checkpoints" / "runs").rglob("events.out.tfevents.*"))
    completions = sorted(p.name for p in (out / "checkpoints" / "completions").glob("*.parquet"))
    assert f"completions_{saved + 2:05d}.parquet" in completions
    assert (out / "model" / "config.json").is_file()


@pytest.mark.e2e
@pytest.mark.slow
def test_grpo_with_lora_saves_an_adapter_and_a_merged_model(tmp_path: Path, bench: Path, warm: Path) -> None:
    from mentor_trainer.runtime import load_model

    out = tmp_path / "lora"
    argv = ["grpo", "--data", str(bench), "--model", str(warm), "--out", str(out), *GRPO_ARGS]
    summary = _main_json([*argv, "--max-steps", "2", "--lora-r", "4", "--learning-rate", "0.05"])
    assert summary["steps"] == 2 and summary["adapter"] == str(out / "adapter")
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["r"] == 4
    # OUT/model is a plain model (loads without peft) with the base model's parameters.
    base, merged = load_model(warm), load_model(out)
    assert [n for n, _ in merged.named_parameters()] == [n for n, _ in base.named_parameters()]
    assert summary["run_id"] == (out / "run_id").read_text().strip()


@pytest.mark.slow
def test_sft_checkpoints_resume_and_lora(tmp_path: Path, bench: Path, tiny: Path) -> None:
    out = tmp_path / "sft"
    argv = ["sft", "--data", str(bench), "--model", str(tiny), "--out", str(out), "--limit", "16", "--batch-size", "4"]
    first = _main_json([*argv, "--max-steps", "2", "--save-steps", "1", "--lora-r", "4", "--json"])
    assert first["steps"] == 2 and first["adapter"] == str(out / "adapter")
    assert [s for s, _ in complete_checkpoints(out)] == [1, 2]
    again = _main_json([*argv, "--max-steps", "3", "--save-steps", "1", "--lora-r", "4", "--resume", "--json"])
    assert again["resumed_from"].endswith("checkpoint-2") and again["steps"] == 3
    assert again["run_id"] == first["run_id"]


def test_plain_torch_sft_rejects_tracking_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sft", "--data", str(tmp_path), "--model", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main([*argv, "--plain-torch-overfit", "--save-steps", "5"]) == 2
    assert "not --plain-torch-overfit" in capsys.readouterr().err
