"""Constants and helpers shared by the trainer tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = [ROOT / "server", ROOT / "client", ROOT / "trainer"]
E2E_DIR = ROOT / "tests" / "e2e"

# The warm start: one task family's fixed format is learned in ~100 steps (~10 s on 2 cores).
WARM_FAMILY = "add"
WARM_ROWS = 16
WARM_STEPS = 100


def subprocess_env() -> dict[str, str]:
    """Environment for `mentor-train` child processes: offline, CPU, the source tree importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTOR_")}
    env.update(
        CUDA_VISIBLE_DEVICES="",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=os.pathsep.join([*map(str, SOURCE_DIRS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    return env


def cli(*args: str) -> list[str]:
    """The `mentor-train` command line as a child process runs it."""
    return [sys.executable, "-m", "mentor_trainer.cli", *args]
