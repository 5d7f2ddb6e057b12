"""docs/rewards.md's blocks are what the engine reads and computes.

Both JSON blocks load with the real spec parser. The "Spec format" spec scores a right and a
wrong rollout, and each reward is the page's formula applied to the components the engine
reported (weights, the wrong-answer scale, the bias); its hash ignores key order, as the page
says. The QA block's `qa_f1` judge gives the word F1 as `outcome`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from doc_blocks import block

from mentor_server.scoring import RewardSpec, ScoringEngine, item_from_dict

REFERENCE = {"calls": [{"name": "add", "arguments": {"a": 2, "b": 3}, "result": 5}], "answer": "5"}


def _rollout(b: int, answer: int) -> str:
    call = json.dumps({"name": "add", "arguments": {"a": 2, "b": b}})
    return f"<tool_call>{call}</tool_call>The answer is \\boxed{{{answer}}}.<|im_end|>"


def _reversed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed(value[key]) for key in reversed(value)}
    return value


def test_the_spec_format_block_is_a_valid_spec_whose_hash_ignores_key_order() -> None:
    shown = json.loads(block("rewards-spec").body)
    spec = RewardSpec.from_dict(shown)
    assert spec.toolset == "calculator"
    assert RewardSpec.from_dict(_reversed(shown)).hash == spec.hash


@pytest.mark.parametrize(("b", "answer", "right"), [(3, 5, True), (4, 6, False)], ids=["right", "wrong"])
def test_the_formula_is_what_the_engine_computes(b: int, answer: int, right: bool) -> None:
    formula = block("rewards-formula").body
    assert formula.startswith("reward = bias + Σ_c weight_c · score_c · (wrong_answer_scale_c")
    shown = json.loads(block("rewards-spec").body)
    result = ScoringEngine(RewardSpec.from_dict(shown)).score_batch(
        [item_from_dict({"completion": _rollout(b, answer), "reference": REFERENCE})]
    )[0]
    assert result.error is None and result.gate is None
    assert (result.components["outcome"] == 1.0) is right
    expected = shown["bias"]
    for name, component in shown["components"].items():
        score = result.components[name]
        if score is not None:  # "over components whose score is not None" (none_policy: skip)
            scale = 1.0 if right else component.get("wrong_answer_scale", 1.0)
            expected += component["weight"] * score * scale
    assert result.reward == pytest.approx(expected)
    assert (result.reward == pytest.approx(1.0)) is right  # the weights sum to 1


def test_the_qa_block_scores_word_f1() -> None:
    shown = json.loads(block("rewards-qa-f1").body)
    spec = RewardSpec.from_dict(shown)
    # "boxed_or_final": no box, so the final text; 2 of its 5 words match the 2 of the answer.
    item = item_from_dict({"completion": "It was Ada Venn Smith.<|im_end|>", "ground_truth": "Ada Venn"})
    (result,) = ScoringEngine(spec).score_batch([item])
    precision, recall = 2 / 5, 2 / 2
    assert result.components["outcome"] == pytest.approx(2 * precision * recall / (precision + recall))
