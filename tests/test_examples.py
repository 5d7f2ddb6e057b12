"""examples/ does what the README says: the sample service.yaml starts a real service with its
toolsets and preset, the own-code toolset runs the example module's function, the dataset row is
a correct benchmark row, and the rollouts file scores with every built-in preset.

The services are the commands of docs/bring-your-own.md's "byo-serve" block (the README's
`serve --config examples/service.yaml` is the same line), run as written on a free port by
tests/doc_services.py, each in its own session and killed with the test.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from doc_blocks import block, shell_lines
from doc_services import documented_service

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SERVE_LINES = shell_lines(block("byo-serve").body)


@contextlib.contextmanager
def _serve(line: str, tmp_path: Path) -> Iterator[str]:
    """A documented serve line as written (tests/doc_services.py), its records kept in tmp_path."""
    # The environment wins over the file: keep the test's records out of the repository.
    records = str(tmp_path / "records.sqlite3")
    with documented_service(line, ROOT, tmp_path / "serve.log", MENTOR_RECORD_PATH=records) as (url, _):
        yield url


def test_the_readme_and_the_guide_give_the_same_command() -> None:
    readme = [shlex.split(line, comments=True) for line in shell_lines(block("readme-serve").body)]
    assert shlex.split(SERVE_LINES[0]) in readme


@pytest.mark.e2e
def test_sample_service_yaml_starts_with_its_toolsets_and_preset(tmp_path: Path) -> None:
    assert SERVE_LINES[0] == ".venv/bin/mentor-reward serve --config examples/service.yaml"
    with _serve(SERVE_LINES[0], tmp_path) as url:
        toolset = httpx.get(f"{url}/v1/toolsets/stats", timeout=30).json()
        assert set(toolset["executable"]) == {"mean", "median"}  # lookup_population is schema-only
        mean = httpx.post(
            f"{url}/v1/tools/execute",
            json={"toolset": "stats", "name": "mean", "arguments": {"data": [1, 2, 6]}},
            timeout=30,
        ).json()
        assert mean["ok"] and mean["result"] == 3
        completion = (
            '<tool_call>{"name": "mean", "arguments": {"data": [1, 2, 6]}}</tool_call>'
            "<tool_response>3.0</tool_response>The mean is \\boxed{3}.<|im_end|>"
        )
        score = httpx.post(
            f"{url}/v1/score",
            json={
                "preset": "stats-f1",
                "items": [{"completion": completion, "ground_truth": "3", "teacher_tools": ["mean"]}],
            },
            timeout=60,
        ).json()
        assert score["results"][0]["reward"] == pytest.approx(1.0), score
        assert score["results"][0]["components"] == {"outcome": 1.0, "tool_names": 1.0}
    assert (tmp_path / "records.sqlite3").exists()


@pytest.mark.e2e
def test_own_code_toolset_runs_the_example_module(tmp_path: Path) -> None:
    assert SERVE_LINES[1].startswith("PYTHONPATH=examples ")  # the line itself makes the module importable
    with _serve(SERVE_LINES[1], tmp_path) as url:
        words = httpx.post(
            f"{url}/v1/tools/execute",
            json={"toolset": "text", "name": "word_count", "arguments": {"text": "three small words"}},
            timeout=30,
        ).json()
        assert words["ok"] and words["result"] == 3, words


def test_the_dataset_row_is_a_correct_benchmark_row() -> None:
    from mentor_trainer.benchmark import verify_row

    (line,) = (EXAMPLES / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    row = json.loads(line)
    assert verify_row(row) == []
    assert set(row) >= {"prompt", "ground_truth", "reference", "teacher_tools", "toolset", "messages"}


def test_every_rollout_line_is_a_valid_item() -> None:
    from mentor_client.protocol import ScoreItem

    lines = (EXAMPLES / "rollouts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6
    for line in lines:
        ScoreItem.model_validate_json(line)
