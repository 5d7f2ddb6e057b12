"""QA answer judging (`outcome` judge modes `qa_em` / `qa_f1`) against a reference SQuAD EM/F1.

The reference below is written for clarity, not speed, straight from the SQuAD script's
definition: lower-case, delete ASCII punctuation, blank out the words a/an/the, split on
whitespace; EM compares the joined words, F1 the word multisets (SQuAD v2's rule for empty
answers); several acceptable answers take the best value. The engine must agree with it on
every case, through its public functions and through a scored item.
"""

from __future__ import annotations

import pickle
import re
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mentor_server.scoring import ScoringEngine, list_presets, resolve_spec
from mentor_server.scoring.answers import AnswerJudge
from mentor_server.scoring.engine import resolve_engine_config
from mentor_server.scoring.qa import exact_match, normalize_answer, qa_scores, token_f1
from mentor_server.scoring.types import ScoringConfigError

EOS = "<|im_end|>"


# ------------------------------------------------------------------ the reference
def reference_normal_form(text: str) -> str:
    kept = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    without_articles = re.sub(r"\b(a|an|the)\b", " ", kept)
    return " ".join(without_articles.split())


def reference_em(prediction: str, gold: str) -> float:
    return 1.0 if reference_normal_form(prediction) == reference_normal_form(gold) else 0.0


def reference_f1(prediction: str, gold: str) -> float:
    pred_words = reference_normal_form(prediction).split()
    gold_words = reference_normal_form(gold).split()
    if not pred_words or not gold_words:
        return 1.0 if pred_words == gold_words else 0.0
    shared = sum(min(pred_words.count(word), gold_words.count(word)) for word in set(pred_words))
    if shared == 0:
        return 0.0
    precision = shared / len(pred_words)
    recall = shared / len(gold_words)
    return 2 * precision * recall / (precision + recall)


def reference_best(prediction: str, golds: list[str]) -> tuple[float, float]:
    return (
        max(reference_em(prediction, gold) for gold in golds),
        max(reference_f1(prediction, gold) for gold in golds),
    )


# (prediction, acceptable answers): the engine's EM and F1 must equal the reference's.
CASES: dict[str, tuple[str, list[str]]] = {
    "case": ("PARIS", ["paris"]),
    "leading article": ("The Beatles", ["Beatles"]),
    "articles inside": ("a Tale of the Two Cities", ["tale of two cities"]),
    "article inside a word stays": ("anthem", ["them"]),
    "article in a longer word": ("Theatre Royal", ["atre royal"]),
    "punctuation deleted": ("U.S.A.", ["USA"]),
    "hyphen joins words": ("Eiffel-Tower", ["Eiffel Tower"]),
    "underscore is punctuation": ("snake_case", ["snakecase"]),
    "thousands separator": ("1,000", ["1000"]),
    "decimal point deleted": ("3.5", ["35"]),
    "partial overlap": ("Barack Obama Jr.", ["Barack Obama"]),
    "repeated words": ("the cat cat cat", ["cat"]),
    "word order": ("York New", ["New York"]),
    "no overlap": ("London", ["Paris"]),
    "whitespace runs": ("  New\tYork \n", ["new york"]),
    "several golds, one exact": ("Obama", ["Barack Obama", "President Obama", "obama"]),
    "several golds, best F1": ("Barack H Obama", ["Obama", "Barack Obama", "Michelle"]),
    "several golds, none": ("Paris", ["London", "Berlin"]),
    "both empty after normalising": ("The", ["a"]),
    "prediction empty after normalising": ("?!", ["Paris"]),
    "gold empty after normalising": ("Paris", ["the"]),
    "an empty gold among real ones": ("Paris", ["", "Paris, France"]),
    "unicode letters lower-case": ("Café Müller", ["café müller"]),
    "greek capitals": ("ΑΘΗΝΑ", ["αθηνα"]),
    "dotted capital I": ("İstanbul", ["i̇stanbul"]),
    "curly quotes are kept": ("\u201cParis\u201d", ["Paris"]),
    "article before a unicode symbol": ("the€", ["€"]),
    "accented word is not an article": ("thé", ["th"]),
    "no spaces in CJK": ("日本", ["日本国"]),
    "em dash is kept": ("Rome\u2014Italy", ["Rome Italy"]),
}


def engine_for(mode: str, **judge: Any) -> ScoringEngine:
    spec = {
        "components": {
            "outcome": {"weight": 1.0, "options": {"answer_from": "boxed_or_final", "judge": {"mode": mode, **judge}}}
        }
    }
    return ScoringEngine.from_config(resolve_engine_config(spec=spec))


QA_EM = engine_for("qa_em")
QA_F1 = engine_for("qa_f1")


@pytest.mark.parametrize(("prediction", "golds"), list(CASES.values()), ids=list(CASES))
def test_metrics_agree_with_the_reference(prediction: str, golds: list[str]) -> None:
    em, f1 = reference_best(prediction, golds)
    scores = qa_scores(prediction, golds)
    assert scores.exact_match is (em == 1.0)
    assert scores.f1 == pytest.approx(f1, abs=1e-12)
    assert max(float(exact_match(prediction, g)) for g in golds) == em
    assert max(token_f1(prediction, g) for g in golds) == pytest.approx(f1, abs=1e-12)


@pytest.mark.parametrize(("prediction", "golds"), list(CASES.values()), ids=list(CASES))
def test_the_engine_scores_the_reference_values(prediction: str, golds: list[str]) -> None:
    em, f1 = reference_best(prediction, golds)
    item = {"completion": f"Final answer: \\boxed{{{prediction}}}{EOS}", "ground_truth": golds}
    [by_em] = QA_EM.score_dicts([item])
    [by_f1] = QA_F1.score_dicts([item])
    assert by_em.error is None and by_f1.error is None
    assert by_em.components["outcome"] == em
    assert by_f1.components["outcome"] == pytest.approx(f1, abs=1e-12)
    # With the default threshold (1.0) an F1 answer is correct when every word matches.
    assert QA_F1.judge.judge(prediction.strip(), golds).correct is (f1 == 1.0)
    assert QA_EM.judge.judge(prediction.strip(), golds).correct is (em == 1.0)


WORDS = ["a", "an", "the", "The", "A", "Paris", "paris", "new", "York", "cat", "é", "Ünï", "1,0", "x"]
PIECES = st.sampled_from([*WORDS, " ", "  ", "\t", ".", ",", "-", "!", "'", "\u201c", "_"])
TEXT = st.lists(PIECES, max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(prediction=TEXT, golds=st.lists(TEXT, min_size=1, max_size=3))
def test_metrics_agree_with_the_reference_on_generated_text(prediction: str, golds: list[str]) -> None:
    em, f1 = reference_best(prediction, golds)
    scores = qa_scores(prediction, golds)
    assert scores.exact_match is (em == 1.0)
    assert scores.f1 == pytest.approx(f1, abs=1e-12)
    assert 0.0 <= scores.f1 <= 1.0
    assert normalize_answer(prediction) == reference_normal_form(prediction)


# ------------------------------------------------------------------ answer text and verdicts
def test_latex_wrappers_around_a_worded_answer_are_unwrapped() -> None:
    item = {"completion": f"\\boxed{{\\text{{The Eiffel Tower}}}}{EOS}", "ground_truth": [r"\boxed{Eiffel Tower}"]}
    assert QA_EM.score_dicts([item])[0].components["outcome"] == 1.0


def test_answer_from_decides_where_the_answer_text_comes_from() -> None:
    item = {"completion": f"I searched twice.\nThe Beatles{EOS}", "ground_truth": ["beatles"]}
    assert QA_EM.score_dicts([item])[0].components["outcome"] == 0.0  # the whole final text
    item = {"completion": f"The Beatles{EOS}", "ground_truth": ["beatles"]}
    assert QA_EM.score_dicts([item])[0].components["outcome"] == 1.0
    boxed_only = ScoringEngine.from_config(
        resolve_engine_config(
            spec={"components": {"outcome": {"weight": 1.0, "options": {"judge": {"mode": "qa_em"}}}}}
        )
    )
    [result] = boxed_only.score_dicts([item])
    assert result.components["outcome"] == 0.0 and "no answer" in result.reason


def test_f1_threshold_decides_correct_for_wrong_answer_scaling() -> None:
    # `format` is scaled by 0 when the answer is wrong: the reward shows which side of the threshold it fell.
    def reward(threshold: float) -> tuple[float | None, float | None]:
        spec = {
            "components": {
                "outcome": {"weight": 1.0, "options": {"judge": {"mode": "qa_f1", "f1_threshold": threshold}}},
                "format": {"weight": 1.0, "wrong_answer_scale": 0.0},
            }
        }
        engine = ScoringEngine.from_config(resolve_engine_config(spec=spec))
        item = {"completion": f"\\boxed{{Barack Obama Jr}}{EOS}", "ground_truth": ["Barack Obama"]}
        [result] = engine.score_dicts([item])
        return result.reward, result.components["outcome"]

    assert reward(0.75) == pytest.approx((1.8, 0.8))
    assert reward(0.85) == pytest.approx((0.8, 0.8))


def test_verdicts_carry_their_metric() -> None:
    judge = AnswerJudge(mode="qa_f1", f1_threshold=0.5)
    verdict = judge.judge("Barack Obama Jr", ["Obama", "Barack Obama"])
    assert (verdict.correct, verdict.method) == (True, "qa_f1")
    assert verdict.score == pytest.approx(0.8)
    assert AnswerJudge(mode="qa_em").judge("the Beatles", "Beatles").score == 1.0
    assert AnswerJudge(mode="qa_em").judge("  ", ["x"]).method == "no_answer"
    assert AnswerJudge().judge("0.5", [r"\frac{1}{2}"]).score is None  # math mode: unchanged


def test_a_qa_judge_pickles_with_its_mode() -> None:
    judge = AnswerJudge(mode="qa_f1", f1_threshold=0.5)
    clone = pickle.loads(pickle.dumps(judge))
    assert repr(clone) == repr(judge) == "AnswerJudge(mode='qa_f1', f1_threshold=0.5)"
    assert clone.judge("Barack Obama Jr", ["Barack Obama"]).correct


def test_every_preset_still_judges_math() -> None:
    for preset in list_presets():
        assert ScoringEngine(resolve_spec(preset.name)).judge.mode == "math", preset.name


# ------------------------------------------------------------------ configuration errors
JUDGE_ERRORS = {
    "unknown mode": ({"mode": "qa"}, "mode"),
    "mode not a string": ({"mode": ["qa_em"]}, "mode"),
    "math option in qa_em": ({"mode": "qa_em", "rel_tol": 0.1}, "rel_tol"),
    "math option in qa_f1": ({"mode": "qa_f1", "timeout_s": 1.0}, "timeout_s"),
    "threshold in math": ({"f1_threshold": 0.5}, "f1_threshold"),
    "threshold in qa_em": ({"mode": "qa_em", "f1_threshold": 0.5}, "f1_threshold"),
    "threshold zero": ({"mode": "qa_f1", "f1_threshold": 0}, "f1_threshold"),
    "threshold above one": ({"mode": "qa_f1", "f1_threshold": 1.5}, "f1_threshold"),
    "threshold a string": ({"mode": "qa_f1", "f1_threshold": "0.5"}, "f1_threshold"),
    "threshold a bool": ({"mode": "qa_f1", "f1_threshold": True}, "f1_threshold"),
    "threshold nan": ({"mode": "qa_f1", "f1_threshold": float("nan")}, "f1_threshold"),
}


@pytest.mark.parametrize(("judge", "option"), list(JUDGE_ERRORS.values()), ids=list(JUDGE_ERRORS))
def test_judge_option_errors_name_the_full_path(judge: dict[str, Any], option: str) -> None:
    spec = {"components": {"outcome": {"weight": 1.0, "options": {"judge": judge}}}}
    with pytest.raises(ScoringConfigError) as raised:
        resolve_engine_config(spec=spec)
    assert raised.value.param == f"components.outcome.options.judge.{option}"
    # The judge's own check (Python callers) refuses the same options, naming the bare option.
    with pytest.raises(ScoringConfigError):
        AnswerJudge.check_options(**judge)


def test_judge_option_errors_through_a_preset_override() -> None:
    overrides = {"components": {"outcome": {"options": {"judge": {"mode": "f1"}}}}}
    with pytest.raises(ScoringConfigError) as raised:
        resolve_engine_config(preset="flexible", overrides=overrides)
    assert raised.value.param == "components.outcome.options.judge.mode"


def test_a_preset_takes_a_qa_mode_by_override() -> None:
    overrides = {"components": {"outcome": {"options": {"answer_from": "boxed_or_final", "judge": {"mode": "qa_f1"}}}}}
    engine = ScoringEngine.from_config(resolve_engine_config(preset="flexible", overrides=overrides))
    [result] = engine.score_dicts([{"completion": f"Barack Obama Jr{EOS}", "ground_truth": ["Barack Obama"]}])
    assert result.error is None and result.components["outcome"] == pytest.approx(0.8)
