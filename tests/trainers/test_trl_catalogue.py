"""The TRL reward on the shared catalogue, with columns as GRPOTrainer hands them from a `datasets.Dataset`.

GRPOTrainer passes every dataset column except `prompt` to the reward as a list, one value per
completion (`{key: [example[key] for example in inputs]}`), the completions with special tokens
stripped and their token ids beside them. The rewards must equal the service's own, whether the
reference column holds JSON text or dicts (which Arrow null-fills).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from trainers_catalogue import CASES, PRESETS, service_answers
from trainers_support import require

from mentor_client import RewardClient
from mentor_client.adapters.trl import trl_reward_func

pytestmark = [pytest.mark.e2e]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("form", ["json", "dict"])
def test_trl_reward_matches_the_service(
    service: Any, client: RewardClient, tokenizer_dirs: dict[str, Path], form: str, preset: str
) -> None:
    datasets = require("datasets")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dirs["chatml"])

    def reference(case: Any) -> Any:
        ref = case.label.get("reference")
        return None if ref is None else (json.dumps(ref) if form == "json" else ref)

    dataset = datasets.Dataset.from_list(
        [
            {
                "prompt": "What is 2 + 3?",
                "ground_truth": c.label["ground_truth"],
                "reference": reference(c),
                "teacher_tools": c.label.get("teacher_tools"),
            }
            for c in CASES
        ]
    )
    inputs = list(dataset)
    if form == "dict":  # Arrow merged the calls' arguments: add(a, b) gained sqrt's x as null
        assert inputs[4]["reference"]["calls"][0]["arguments"] == {"a": 2, "b": 3, "x": None}
    columns = {key: [example[key] for example in inputs] for key in inputs[0] if key != "prompt"}
    ids = [tokenizer(c.text, add_special_tokens=False)["input_ids"] for c in CASES]
    ids = [[*i, tokenizer.eos_token_id] if c.finished else i for i, c in zip(ids, CASES, strict=True)]
    reward = trl_reward_func(service.base_url, preset=preset, tokenizer=tokenizer)
    got = asyncio.run(
        reward(
            prompts=[e["prompt"] for e in inputs], completions=[c.text for c in CASES], completion_ids=ids, **columns
        )
    )
    expected = service_answers(client, preset, eos_tokens=[tokenizer.eos_token])
    assert got == pytest.approx([r for r, _ in expected], abs=1e-9)
