"""End to end: `mentor-train grpo` then `eval`, rewards and tools local, then over HTTP in real processes.

The warmed tiny model (it writes `<tool_call>` blocks) trains for a few GRPO steps on prompts of
its task family; TRL runs the tool loop with our tool callables and scores with the client's
TRL reward. The HTTP variant starts the real reward service (`python -m mentor_server.cli
serve`), runs `mentor-train grpo` as its own process under `accelerate launch`, and checks on the
service's own metrics that both the rewards and the rollouts' tool calls went through it.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from trainer_helpers import E2E_DIR, WARM_FAMILY, cli, subprocess_env

from mentor_trainer.cli import main
from mentor_trainer.runtime import load_model

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COMPONENTS = ("outcome", "tool_names", "arguments", "tool_results", "no_hallucination")
GRPO_ARGS = ("--preset", "flexible", "--family", WARM_FAMILY, "--max-steps", "4", "--temperature", "0.8")


def _run(argv: list[str], timeout: float = 420) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _steps(out: Path) -> list[dict[str, Any]]:
    history = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    return [entry for entry in history if "loss" in entry and "step" in entry]


def _check_training(out: Path, base: Path) -> list[dict[str, Any]]:
    steps = _steps(out)
    assert len(steps) == 4
    for entry in steps:
        missing = [c for c in COMPONENTS if c not in entry]
        assert not missing, f"step {entry['step']}: no per-component reward metric {missing}"
        assert 0.0 <= entry["outcome"] <= 1.0
    # Rewards varied inside a group at least once (otherwise GRPO has no gradient at all)...
    assert min(e["frac_reward_zero_std"] for e in steps) < 1.0
    # ...the rollouts really called tools through TRL's loop...
    assert max(e["tools/call_frequency"] for e in steps) > 0.0
    # ...and the weights moved.
    before, after = load_model(base), load_model(out)
    assert any(
        not torch.equal(p, q)
        for (_, p), (_, q) in zip(before.named_parameters(), after.named_parameters(), strict=True)
    )
    return steps


@pytest.fixture(scope="module")
def grpo_local(tmp_path_factory: pytest.TempPathFactory, bench: Path, warm: Path) -> tuple[Path, dict[str, Any]]:
    """The CLI in this process (the imports are paid already); the HTTP variant below is a real process."""
    out = tmp_path_factory.mktemp("grpo-local")
    argv = [
        "grpo",
        "--data",
        str(bench),
        "--model",
        str(warm),
        "--out",
        str(out),
        "--local",
        *GRPO_ARGS,
        "--json",
    ]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(argv) == 0
    return out, _json_tail(stdout.getvalue())


def _json_tail(stdout: str) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(stdout[stdout.index("{\n") :])  # the summary ends the output
    return summary


def _summary(argv: list[str]) -> dict[str, Any]:
    return _json_tail(_run(argv).stdout)


def test_grpo_with_local_rewards(grpo_local: tuple[Path, dict[str, Any]], warm: Path) -> None:
    out, summary = grpo_local
    _check_training(out, warm)
    assert summary["steps"] == 4 and summary["device"] == "cpu"
    assert summary["reward"]["preset"] == "flexible" and summary["reward"]["local"] is True
    assert set(COMPONENTS) <= set(summary["reward"]["components"]) and summary["reward"]["spec_hash"]
    assert summary["reward_series"]["rewards/flexible/mean"]  # named after the preset


def test_eval_command_prints_the_table(
    grpo_local: tuple[Path, dict[str, Any]], bench: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = grpo_local
    argv = ["eval", "--data", str(bench), "--model", str(out), "--split", "test,ood_dates", "--local"]
    assert main([*argv, "--limit", "6", "--max-turns", "3", "--max-new-tokens", "48", "--out", str(tmp_path)]) == 0
    stdout = capsys.readouterr().out
    header = next(line for line in stdout.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "test", "ood_dates"]
    for metric in (
        "accuracy",
        "call_rate",
        "invalid_tool_rate",
        "tool_name_f1",
        "argument_score",
        "avg_calls",
    ):
        assert re.search(rf"^{metric}\s", stdout, re.M), metric
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["splits"]["test"]["n"] == 6 and report["backend"] == "local"


# ---------------------------------------------------------------------------- over HTTP
@pytest.fixture(scope="module")
def reward_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    sys.path.insert(0, str(E2E_DIR))
    try:
        from service_process import ServiceProcess, free_port, service_env
    finally:
        sys.path.remove(str(E2E_DIR))
    log = tmp_path_factory.mktemp("service") / "service.log"
    service = ServiceProcess(free_port(), service_env(workers="1"), log).start()
    yield service
    service.stop()


def _requests(metrics: str, route: str) -> float:
    pattern = rf'^mentor_http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*status="200"[^}}]*\}} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, metrics, re.M))


def test_grpo_through_the_service_under_accelerate(
    reward_service: Any, tmp_path: Path, bench: Path, warm: Path
) -> None:
    before = httpx.get(reward_service.base_url + "/metrics").text
    launch = ["-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1", "--num_machines", "1"]
    argv = [
        sys.executable, *launch, "--mixed_precision", "no", "--dynamo_backend", "no",
        *cli("grpo")[1:],
        "--data", str(bench), "--model", str(warm), "--out", str(tmp_path),
        "--reward-url", reward_service.base_url, *GRPO_ARGS, "--json",
    ]  # fmt: skip
    summary = _summary(argv)
    steps = _check_training(tmp_path, warm)
    assert summary["reward"]["base_url"] == reward_service.base_url and summary["reward"]["local"] is False
    after = httpx.get(reward_service.base_url + "/metrics").text
    # Every step scored its group over HTTP, and every tool call of the rollouts ran on the service.
    assert _requests(after, "/v1/score") - _requests(before, "/v1/score") >= len(steps)
    assert _requests(after, "/v1/tools/execute") - _requests(before, "/v1/tools/execute") > 0


def test_eval_through_the_service(
    reward_service: Any, warm: Path, bench: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = httpx.get(reward_service.base_url + "/metrics").text
    argv = ["eval", "--data", str(bench), "--model", str(warm), "--split", "train", "--limit", "4"]
    assert main([*argv, "--reward-url", reward_service.base_url, "--max-turns", "2", "--out", str(tmp_path)]) == 0
    assert re.search(r"^call_rate\s", capsys.readouterr().out, re.M)
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["backend"] == reward_service.base_url and report["splits"]["train"]["scoring_errors"] == 0
    after = httpx.get(reward_service.base_url + "/metrics").text
    assert _requests(after, "/v1/score") > _requests(before, "/v1/score")
    # The warm model calls `add` on any arithmetic prompt; its well-formed calls ran on the service.
    rollouts = [json.loads(line) for line in (tmp_path / "rollouts.jsonl").read_text().splitlines()]
    executed = sum(1 for r in rollouts for m in r["completion"] if m["role"] == "tool")
    assert executed > 0
    assert _requests(after, "/v1/tools/execute") - _requests(before, "/v1/tools/execute") == executed
