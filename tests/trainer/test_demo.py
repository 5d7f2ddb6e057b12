"""`mentor-train demo --quick` as a real process: data, tiny model, a live reward service, SFT, GRPO, eval.

The demo starts the reward service itself (a subprocess on a free port); the test checks the
table it printed, the JSON it wrote, and, from the service's own request counters recorded in
that JSON, that the GRPO rewards and the rollouts' tool calls really went over HTTP.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from trainer_helpers import cli, subprocess_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OOD_SPLITS = ("ood_long", "ood_combo", "ood_units", "ood_dates")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        cli("demo", "--quick", "--workdir", str(workdir)),
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=1800,  # only catches a hang: on a busy 2-core machine the demo takes minutes
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((workdir / "demo.json").read_text())
    return workdir, done.stdout, report


def test_prints_the_table_for_every_split(demo: tuple[Path, str, dict[str, Any]]) -> None:
    workdir, stdout, _ = demo
    header = next(line for line in stdout.splitlines() if line.startswith("metric"))
    assert set(header.split()[1:]) == {"test", *OOD_SPLITS}
    for metric in ("accuracy", "call_rate", "invalid_tool_rate", "tool_name_f1", "argument_score"):
        assert re.search(rf"^{metric}\s", stdout, re.M), metric
    assert str(workdir / "demo.json") in stdout


@pytest.mark.parametrize("stage", ["data", "tiny_model", "sft", "grpo", "eval", "stop"], ids=lambda s: f"stage-{s}")
def test_every_stage_reported_its_time(demo: tuple[Path, str, dict[str, Any]], stage: str) -> None:
    _, stdout, report = demo
    assert report["stage_seconds"][stage] >= 0.0
    assert re.search(rf"^\[\d/6\] {stage}: [\d.]+ s$", stdout, re.M)


def test_rewards_and_tools_went_through_the_service(demo: tuple[Path, str, dict[str, Any]]) -> None:
    _, _, report = demo
    grpo = report["grpo"]
    # One score request per GRPO step at least; the warm model calls `add`, so its rollouts ran tools.
    assert grpo["service_requests"]["/v1/score"] >= grpo["steps"] == report["options"]["grpo_steps"]
    assert grpo["service_requests"]["/v1/tools/execute"] > 0
    assert grpo["reward"]["base_url"] == report["service"] and grpo["reward"]["local"] is False
    # Evaluation scored through the service as well.
    total = report["service_requests_total"]
    assert total["/v1/score"] > grpo["service_requests"]["/v1/score"]
    assert report["eval"]["backend"] == report["service"]


def test_evaluation_json_covers_every_split(demo: tuple[Path, str, dict[str, Any]]) -> None:
    workdir, _, report = demo
    evaluation = json.loads((workdir / "eval" / "eval.json").read_text())
    assert set(evaluation["splits"]) == {"test", *OOD_SPLITS}
    for split, metrics in evaluation["splits"].items():
        assert metrics["n"] == report["options"]["eval_rows"], split
        assert metrics["scoring_errors"] == 0, split
        assert 0.0 <= metrics["accuracy"] <= 1.0, split
    assert (workdir / "eval" / "rollouts.jsonl").exists()


def test_without_keep_only_the_reports_stay(demo: tuple[Path, str, dict[str, Any]]) -> None:
    workdir, _, _ = demo
    assert sorted(p.name for p in workdir.iterdir()) == ["demo.json", "eval", "service.log"]
