"""The README's TRL example, run as written: GRPOTrainer with the service's tools and reward.

The script block is taken from README.md verbatim and run as its own process against a live
service, with a tiny local model in place of the hub model it names (MODEL / TOKENIZER, as
the script reads them) and one step (MAX_STEPS). The service records every scored item, so the
test checks that TRL's rewards went through the service, step-labelled, and that rescoring a
recorded item gives the same reward.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from doc_blocks import block
from service_process import SOURCE_DIRS
from trainers_catalogue import corpus
from trainers_support import require

from mentor_client import RewardClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def readme_script() -> str:
    script = block("readme-trl-script").body  # README.md's block marked `<!-- block: readme-trl-script -->`
    assert script.startswith("# trl_grpo.py")
    return script


def test_the_readme_trl_script_trains_through_the_service(service: Any, client: RewardClient, tmp_path: Path) -> None:
    require("trl")
    from mentor_trainer.tiny import build_tiny

    tiny = build_tiny(tmp_path / "tiny", corpus=corpus() * 3)
    script = tmp_path / "trl_grpo.py"
    script.write_text(readme_script(), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(p) for p in SOURCE_DIRS),
        "MENTOR_REWARD_URL": service.base_url,
        "MODEL": tiny["model_dir"],
        "TOKENIZER": tiny["tokenizer_dir"],
        "MAX_STEPS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-4000:]
    records = client.records(run_id="trl-example").records
    assert len(records) >= 4 and {r.step for r in records} == {0}
    # The reward TRL got is the service's own: rescoring a recorded item gives the same number.
    first = records[0]
    again = client.score([first.item], preset="flexible", toolset="calculator", eos_tokens=["<|im_end|>"])
    assert again.results[0].reward == pytest.approx(first.reward)
    assert first.item["reference"]["calls"][0]["name"] == "add"
