"""docs/presets.md's worked example is what the engine computes.

The table scores examples/rollouts.jsonl with every built-in preset; here the same rollouts go
through the engine (the code `mentor-reward score --preset X` runs) and every cell must match;
the page's command itself runs as written for one preset, and its lines are that column.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from doc_blocks import block, venv_paths

from mentor_server.scoring import ScoringEngine, item_from_dict, resolve_spec
from mentor_server.scoring.presets import BUILTIN_PRESETS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "presets.md"
ROLLOUTS = ROOT / "examples" / "rollouts.jsonl"


def _table() -> tuple[list[str], list[list[str]]]:
    lines = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    header = next(line for line in lines if line.startswith("| rollout |"))
    presets = re.findall(r"`([\w-]+)`", header)
    rows = [line.strip("| ").split(" | ")[1:] for line in lines if re.match(r"\| \d\. ", line)]
    return presets, rows


def _cell(reward: float) -> str:
    return f"{reward:.3f}".rstrip("0").rstrip(".")


def test_the_worked_example_covers_every_builtin_preset_and_rollout() -> None:
    presets, rows = _table()
    # Built-in ones: other tests register extra presets in this process.
    assert set(presets) == set(BUILTIN_PRESETS)
    assert len(rows) == len(ROLLOUTS.read_text(encoding="utf-8").splitlines())
    assert all(len(row) == len(presets) for row in rows)


def test_every_cell_is_the_engines_reward() -> None:
    presets, rows = _table()
    items = [item_from_dict(json.loads(line)) for line in ROLLOUTS.read_text(encoding="utf-8").splitlines()]
    for column, preset in enumerate(presets):
        results = ScoringEngine(resolve_spec(preset)).score_batch(items)
        for index, (result, row) in enumerate(zip(results, rows, strict=True)):
            assert result.error is None, (preset, index, result.error)
            assert result.reward is not None
            assert _cell(result.reward) == row[column], f"rollout {index + 1}, preset {preset}"


@pytest.mark.slow
def test_the_pages_command_prints_a_column() -> None:
    presets, rows = _table()
    preset = "flexible"  # PRESET on the page stands for any preset; this column has the most distinct values
    command = venv_paths(block("presets-score").body).replace("PRESET", preset)
    result = subprocess.run(["bash", "-e", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [_cell(line["reward"]) for line in lines] == [row[presets.index(preset)] for row in rows]
