"""The paper's five reward functions reproduce the authors' own scores on all 150 parity cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mentor_server.scoring import ITEM_FIELDS, ScoringEngine, item_from_dict, resolve_spec

PARITY_FILE = Path(__file__).resolve().parents[2] / "data" / "mentor_seed_public.jsonl"
PAPER_PRESETS = ("sparse", "mentor", "mentor-partial", "mentor-f1", "mentor-no-tool-match")
CASES = [json.loads(line) for line in PARITY_FILE.read_text().splitlines() if line.strip()]


def as_item(case: dict) -> dict:
    """The case without its `expected` scores (an item's unknown field is an error)."""
    return {key: value for key, value in case.items() if key in ITEM_FIELDS}


def test_parity_file_has_all_cases() -> None:
    assert len(CASES) == 150
    assert all(set(case["expected"]) == set(PAPER_PRESETS) for case in CASES)


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_preset_reproduces_the_authors_scores(preset: str) -> None:
    engine = ScoringEngine(resolve_spec(preset))
    items = [item_from_dict(as_item(case)) for case in CASES]
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
    unfinished = engine.score_batch([item_from_dict({**as_item(case), "completion": text})])[0]
    told = engine.score_batch([item_from_dict({**as_item(case), "completion": text, "finished": True})])[0]
    assert unfinished.reward == 0.0
    assert told.reward == 1.0


def test_no_chat_template_is_assumed() -> None:
    # A Llama-3 or Mistral rollout that ends with its own EOS is finished under every paper preset.
    case = next(c for c in CASES if c["expected"]["sparse"] == 1.0)
    for eos in ("</s>", "<|eot_id|>", "<|endoftext|>"):
        text = case["completion"].removesuffix("<|im_end|>") + eos
        for preset in PAPER_PRESETS:
            result = ScoringEngine(resolve_spec(preset)).score_batch(
                [item_from_dict({**as_item(case), "completion": text})]
            )
            assert result[0].reward == pytest.approx(case["expected"][preset]), (eos, preset)


def test_the_models_eos_tokens_decide_when_given() -> None:
    case = next(c for c in CASES if c["expected"]["sparse"] == 1.0)
    text = case["completion"].removesuffix("<|im_end|>") + "</s>"
    item = item_from_dict({**as_item(case), "completion": text})
    chatml = ScoringEngine(resolve_spec("sparse"), eos_tokens=["<|im_end|>"]).score_batch([item])[0]
    mistral = ScoringEngine(resolve_spec("sparse"), eos_tokens=["</s>"]).score_batch([item])[0]
    assert chatml.reward == 0.0  # that model's rollout did not end with its EOS: truncated
    assert mistral.reward == 1.0
    # The legacy spec field still pins a token.
    legacy = ScoringEngine(resolve_spec("sparse", overrides={"eos_token": "<|im_end|>"})).score_batch([item])[0]
    assert legacy.reward == 0.0
