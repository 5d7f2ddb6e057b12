"""The paper's five reward functions reproduce the authors' own scores on all 150 parity cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mentor_server.scoring import ScoringEngine, item_from_dict, resolve_spec

PARITY_FILE = Path(__file__).resolve().parents[2] / "data" / "mentor_seed_public.jsonl"
PAPER_PRESETS = ("sparse", "mentor", "mentor-partial", "mentor-f1", "mentor-no-tool-match")
CASES = [json.loads(line) for line in PARITY_FILE.read_text().splitlines() if line.strip()]


def test_parity_file_has_all_cases() -> None:
    assert len(CASES) == 150
    assert all(set(case["expected"]) == set(PAPER_PRESETS) for case in CASES)


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_preset_reproduces_the_authors_scores(preset: str) -> None:
    engine = ScoringEngine(resolve_spec(preset))
    items = [item_from_dict(case) for case in CASES]
    results = engine.score_batch(items)
    mismatches = [
        (i, case["expected"][preset], result.reward, result.reason)
        for i, (case, result) in enumerate(zip(CASES, results, strict=True))
        if result.reward is None or abs(result.reward - case["expected"][preset]) > 1e-6
    ]
    assert not mismatches, f"{len(mismatches)} of {len(CASES)} differ, first: {mismatches[:3]}"


def test_finished_flag_overrides_the_eos_token() -> None:
    # TRL strips special tokens: the adapter tells the engine about termination instead.
    case = next(c for c in CASES if c["expected"]["sparse"] == 1.0)
    text = case["completion"].removesuffix("<|im_end|>")
    engine = ScoringEngine(resolve_spec("sparse"))
    unfinished = engine.score_batch([item_from_dict({**case, "completion": text})])[0]
    told = engine.score_batch([item_from_dict({**case, "completion": text, "finished": True})])[0]
    assert unfinished.reward == 0.0
    assert told.reward == 1.0


def test_eos_token_is_configurable() -> None:
    case = next(c for c in CASES if c["expected"]["sparse"] == 1.0)
    text = case["completion"].removesuffix("<|im_end|>") + "</s>"
    default = ScoringEngine(resolve_spec("sparse")).score_batch(
        [item_from_dict({**case, "completion": text})]
    )[0]
    custom_spec = resolve_spec("sparse", overrides={"eos_token": "</s>"})
    custom = ScoringEngine(custom_spec).score_batch([item_from_dict({**case, "completion": text})])[0]
    assert default.reward == 0.0
    assert custom.reward == 1.0
