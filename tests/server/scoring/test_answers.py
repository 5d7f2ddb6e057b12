"""Answer judging: `\\boxed{}` extraction, equivalence, time limits, threads and parity verdicts."""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mentor_server.scoring.answers import AnswerJudge, AnswerVerdict, extract_boxed, strip_boxed
from mentor_server.scoring.types import ScoringConfigError

PARITY_FILE = Path(__file__).resolve().parents[2] / "data" / "mentor_seed_public.jsonl"
EOS = "<|im_end|>"

# A sum sympy keeps expanding for far longer than any limit used here (over 20 s measured), and
# that passes every complexity guard, so only the deadline can stop it.
SLOW_SYMBOLIC = r"\sum_{k=1}^{3000} k^{k}"
GENEROUS_S = 10.0  # bound on wall time for a timed-out item: loose on purpose (shared CI machines)


@pytest.fixture(scope="module")
def judge() -> AnswerJudge:
    j = AnswerJudge()
    j.warm_up()  # the one-off import must not count against the timing assertions below
    return j


# ---------------------------------------------------------------------------- extraction

EXTRACT_CASES = [
    ("simple", r"The answer is \boxed{42}.", "42"),
    ("last-of-several", r"\boxed{1} then \boxed{2} and finally \boxed{3}", "3"),
    ("nested-braces", r"\boxed{\frac{1}{\sqrt{2}}}", r"\frac{1}{\sqrt{2}}"),
    ("fbox", r"so \fbox{7}", "7"),
    ("fbox-after-boxed", r"\boxed{1} \fbox{2}", "2"),
    ("boxed-after-fbox", r"\fbox{1} \boxed{2}", "2"),
    ("space-before-brace", r"\boxed {5}", "5"),
    ("newline-before-brace", "\\boxed\n{5}", "5"),
    ("empty-box", r"\boxed{}", ""),
    ("no-box", "The answer is 5.", None),
    ("empty-text", "", None),
    ("unbalanced", r"\boxed{5", None),
    ("last-unbalanced-wins", r"\boxed{5} and then \boxed{6", None),
    ("mention-without-brace-skipped", r"\boxed{5}; I always use \boxed to answer", "5"),
    ("longer-command-is-not-a-box", r"\boxedanswer{5}", None),
    ("escaped-braces-inside", r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
    ("left-brace-unmatched-right-dot", r"\boxed{\left\{ x > 1 \right.}", r"\left\{ x > 1 \right."),
    ("escaped-closing-does-not-close", r"\boxed{a\}b}", r"a\}b"),
    ("in-dollars", r"$\boxed{x+1}$", "x+1"),
    ("qwen-completion", "<think>2+2</think>\nThe answer is \\boxed{4}.<|im_end|>", "4"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in EXTRACT_CASES], ids=[c[0] for c in EXTRACT_CASES])
def test_extract_boxed(text: str, expected: str | None) -> None:
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{" * 50_000 + "x" + "}" * 50_000, "{" * 49_999 + "x" + "}" * 49_999),
        ("{" * 50_000, None),
        ("word " * 50_000, None),
    ],
    ids=["deeply-nested", "never-closes", "long-text-no-box"],
)
def test_extract_boxed_is_linear_on_large_input(text: str, expected: str | None) -> None:
    text = ("\\boxed" + text) if text.startswith("{") else text
    started = time.perf_counter()
    assert extract_boxed(text) == expected
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("gt", "expected"),
    [
        (r"\boxed{12}", "12"),
        (r"  \boxed{\frac{1}{2}} ", r"\frac{1}{2}"),
        (r"\fbox{x}", "x"),
        (r"\boxed {3}", "3"),
        ("12", "12"),
        (r"\boxed{1} + \boxed{2}", r"\boxed{1} + \boxed{2}"),
        (r"\boxed{1", r"\boxed{1"),
        (r"2\boxed{1}", r"2\boxed{1}"),
    ],
    ids=["boxed", "padded-nested", "fbox", "space", "bare", "two-boxes", "unbalanced", "box-not-whole"],
)
def test_strip_boxed(gt: str, expected: str) -> None:
    assert strip_boxed(gt) == expected


# ---------------------------------------------------------------------------- equivalence

# (id, predicted, ground truth, correct, method that decides)
JUDGE_CASES = [
    ("int", "42", "42", True, "exact"),
    ("dollars", "$42$", "42", True, "exact"),
    ("trailing-full-stop", "10.", "10", True, "exact"),
    ("boxed-prediction", r"\boxed{12}", "12", True, "exact"),
    ("boxed-gold", "12", r"\boxed{12}", True, "exact"),
    ("unicode-minus", "\u22123", "-3", True, "exact"),
    ("whitespace", "x + 1", "x+1", True, "exact"),
    ("left-right", r"\left(1,2\right)", "(1,2)", True, "exact"),
    ("decimal-vs-frac", "0.5", r"\frac{1}{2}", True, "numeric"),
    ("frac-vs-decimal", r"\frac{1}{2}", "0.5", True, "numeric"),
    ("slash-vs-frac", "2/3", r"\frac{2}{3}", True, "numeric"),
    ("int-vs-trailing-zero", "-3", "-3.0", True, "numeric"),
    ("dfrac", r"\dfrac{3}{4}", "0.75", True, "numeric"),
    ("tfrac", r"\tfrac{3}{4}", "3/4", True, "numeric"),
    ("negative-frac", r"-\frac{1}{2}", "-0.5", True, "numeric"),
    ("sign-in-numerator", r"\frac{-1}{2}", "-1/2", True, "numeric"),
    ("sign-in-denominator", r"\frac{1}{-2}", "-0.5", True, "numeric"),
    ("frac-shorthand", r"\frac12", "0.5", True, "numeric"),
    ("thousands-comma", "1,000", "1000", True, "numeric"),
    ("thousands-latex", r"1{,}000", "1000", True, "numeric"),
    ("thousands-thin-space", r"1\,000", "1000", True, "numeric"),
    ("trailing-zeros", "3.50", "3.5", True, "numeric"),
    ("plus-sign", "+5", "5", True, "numeric"),
    ("leading-dot", ".5", "0.5", True, "numeric"),
    ("percent-as-fraction", "50%", "0.5", True, "numeric"),
    ("latex-percent-as-number", r"50\%", "50", True, "numeric"),
    ("scientific-e", "1e3", "1000", True, "numeric"),
    ("scientific-times", r"1.5 \times 10^{3}", "1500", True, "numeric"),
    ("six-decimals", "0.333333", r"\frac{1}{3}", True, "numeric"),
    ("text-wrapper", r"\text{five}", "five", True, "text"),
    ("case-articles-punctuation", "the Eiffel Tower", "Eiffel tower.", True, "text"),
    ("choice-letter-case", "A", "a", True, "text"),
    ("commuted-sum", "x+1", "1+x", True, "symbolic"),
    ("surd", r"3\sqrt{2}", r"\sqrt{18}", True, "symbolic"),
    ("rationalised", r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", True, "symbolic"),
    ("factored", "x^2-1", "(x-1)(x+1)", True, "symbolic"),
    ("equation-vs-value", "x=3", "3", True, "symbolic"),
    # non-equivalences
    ("number-vs-word", "5", "five", False, "numeric"),
    ("digits-swapped", "13", "31", False, "numeric"),
    ("off-by-one", "1000", "999", False, "numeric"),
    ("sign", "-3", "3", False, "numeric"),
    ("two-decimals-not-enough", "0.67", "2/3", False, "numeric"),
    ("percent-other-scale", "50%", "5", False, "numeric"),
    ("tuple-is-not-thousands", "1, 234", "1234", False, "symbolic"),
    ("minus-is-not-punctuation", "x-1", "x1", False, "symbolic"),
    ("other-polynomial", "x+2", "x+1", False, "symbolic"),
    ("pi-rounded", r"\pi", "3.14", False, "symbolic"),
    ("open-vs-closed-interval", "(1,2)", "[1,2]", False, "symbolic"),
    ("article-is-not-a-choice", "an", "A", False, "symbolic"),
    ("division-by-zero", "2/0", "2", False, "symbolic"),
]


@pytest.mark.parametrize(
    ("predicted", "gold", "correct", "method"),
    [c[1:] for c in JUDGE_CASES],
    ids=[c[0] for c in JUDGE_CASES],
)
def test_judge(judge: AnswerJudge, predicted: str, gold: str, correct: bool, method: str) -> None:
    verdict = judge.judge(predicted, [gold])
    assert (verdict.correct, verdict.method) == (correct, method), verdict.reason


@pytest.mark.parametrize(
    ("predicted", "golds", "correct"),
    [
        ("5", ["five", "5"], True),
        ("7", ["8", "7"], True),
        ("13", ["31", "13"], True),
        ("0.5", ["0.5", r"\frac{1}{2}"], True),
        ("12", [r"\boxed{12}", "12"], True),
        ("1000", ["999", "999"], False),
        ("5", ["five", "999"], False),
        ("5", "5", True),
        ("5", "55", False),
    ],
    ids=[
        "second",
        "last",
        "swapped-first",
        "both",
        "boxed-first",
        "duplicates",
        "none",
        "plain-str",
        "plain-str-no",
    ],
)
def test_any_acceptable_answer(judge: AnswerJudge, predicted: str, golds: list[str] | str, correct: bool) -> None:
    assert judge.judge(predicted, golds).correct is correct


@pytest.mark.parametrize(
    ("predicted", "golds", "reason"),
    [
        ("", ["5"], "empty answer"),
        ("   ", ["5"], "empty answer"),
        ("$ $", ["5"], "empty answer"),
        ("5", [], "no acceptable answer given"),
    ],
    ids=["empty", "blank", "empty-math", "no-gold"],
)
def test_no_answer(judge: AnswerJudge, predicted: str, golds: list[str], reason: str) -> None:
    assert judge.judge(predicted, golds) == AnswerVerdict(False, "no_answer", reason)


@pytest.mark.parametrize(
    ("options", "predicted", "gold", "correct"),
    [
        ({"rel_tol": 0.01}, "101", "100", True),
        ({}, "101", "100", False),
        ({"abs_tol": 0.5}, "2.4", "2", True),
        ({"abs_tol": 0.1}, "2.4", "2", False),
        ({"float_rounding": None}, "0.333333", "1/3", False),
        ({"float_rounding": 2}, "0.33", "1/3", True),
        ({"use_math_verify": False}, "x+1", "1+x", False),
        ({"use_math_verify": False}, "0.5", r"\frac{1}{2}", True),
        ({"cache_size": 0}, "0.5", r"\frac{1}{2}", True),
    ],
    ids=[
        "rel-tol",
        "exact-default",
        "abs-tol",
        "abs-tol-too-small",
        "no-rounding",
        "two-places",
        "no-symbolic",
        "no-symbolic-numbers-still",
        "no-cache",
    ],
)
def test_options(options: dict[str, object], predicted: str, gold: str, correct: bool) -> None:
    assert AnswerJudge(**options).judge(predicted, [gold]).correct is correct  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"rel_tol": -1}, "rel_tol"),
        ({"abs_tol": float("nan")}, "abs_tol"),
        ({"abs_tol": "0.1"}, "abs_tol"),
        ({"float_rounding": 31}, "float_rounding"),
        ({"float_rounding": 1.5}, "float_rounding"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": True}, "timeout_s"),
        ({"use_math_verify": "yes"}, "use_math_verify"),
        ({"cache_size": -1}, "cache_size"),
        ({"max_symbolic_chars": 0}, "max_symbolic_chars"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else next(iter(v)) + "=" + repr(next(iter(v.values()))),
)
def test_bad_options_name_the_field(options: dict[str, object], param: str) -> None:
    with pytest.raises(ScoringConfigError) as info:
        AnswerJudge(**options)  # type: ignore[arg-type]
    assert info.value.param == param


def test_caches_do_not_change_verdicts() -> None:
    cached, uncached = AnswerJudge(), AnswerJudge(cache_size=0)
    pairs = [(p, [g]) for _, p, g, _, _ in JUDGE_CASES]
    first = [cached.judge(p, g) for p, g in pairs]
    assert [cached.judge(p, g) for p, g in pairs] == first  # served from the verdict cache
    assert [uncached.judge(p, g) for p, g in pairs] == first


def test_pickle_keeps_options() -> None:
    judge = AnswerJudge(rel_tol=0.01, timeout_s=3.0, use_math_verify=False)
    clone = pickle.loads(pickle.dumps(judge))
    assert repr(clone) == repr(judge)
    assert clone.judge("101", ["100"]).correct


def test_fast_paths_never_import_sympy() -> None:
    code = (
        "import sys\n"
        "from mentor_server.scoring.answers import AnswerJudge\n"
        "j = AnswerJudge()\n"
        "pairs = [('42', '42'), ('0.5', r'\\frac{1}{2}'), ('2/3', r'\\dfrac{2}{3}'), ('-3', '-3.0'),\n"
        "         ('1,000', '1000'), ('5', 'five'), ('13', '31'), (r'\\text{Paris}', 'paris')]\n"
        "methods = {j.judge(p, [g]).method for p, g in pairs}\n"
        "assert methods <= {'exact', 'numeric', 'text'}, methods\n"
        "print('sympy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------- time limits

PATHOLOGICAL = [
    ("power-tower", r"9^{9^{9^{9}}}"),
    ("bare-power-chain", "9^9^9"),
    ("huge-exponent", r"2^{1000000000}"),
    ("huge-factorial", "1000000!"),
    ("factorial-of-power", r"(10^{9})!"),
    ("hundred-thousand-digits", "7" * 100_000),
    ("sixty-one-digit-product", "9" * 61 + "x"),
    ("deep-braces", "{" * 5_000 + "1" + "}" * 5_000),
    ("deep-parens", "(" * 40 + "x" + ")" * 40),
    ("huge-binomial", r"\binom{1000000000}{500000000}"),
]


@pytest.mark.parametrize("predicted", [c[1] for c in PATHOLOGICAL], ids=[c[0] for c in PATHOLOGICAL])
def test_pathological_input_is_refused_quickly(judge: AnswerJudge, predicted: str) -> None:
    started = time.perf_counter()
    verdict = judge.judge(predicted, ["5"])
    assert time.perf_counter() - started < 1.0
    assert not verdict.correct
    assert "too complex" in verdict.reason or verdict.method == "numeric", verdict


def test_slow_symbolic_check_times_out_and_leaves_the_thread_clean(judge: AnswerJudge) -> None:
    quick = AnswerJudge(timeout_s=0.5)
    quick.warm_up()
    alarm_handler = signal.getsignal(signal.SIGALRM)
    started = time.perf_counter()
    verdict = quick.judge(SLOW_SYMBOLIC, ["5"])
    elapsed = time.perf_counter() - started
    assert verdict == AnswerVerdict(False, "symbolic", "timeout", "judge_timeout")
    assert 0.5 <= elapsed < GENEROUS_S
    assert signal.getsignal(signal.SIGALRM) is alarm_handler
    # No interruption is left pending, and sympy still evaluates normally afterwards.
    time.sleep(0.6)
    assert sum(i for i in range(200_000)) > 0
    assert quick.judge("x+1", ["1+x"]).correct
    assert judge.judge(r"3\sqrt{2}", [r"\sqrt{18}"]).correct


def test_a_timeout_is_not_cached_from_a_shared_budget() -> None:
    quick = AnswerJudge(timeout_s=0.5)
    quick.warm_up()
    # The slow gold uses up the item's budget; the second gold gets the rest, none.
    assert quick.judge("7", [SLOW_SYMBOLIC, "x+7-x"]).reason == "timeout"
    assert quick.judge("7", ["x+7-x"]).correct


def test_a_gold_whose_parse_times_out_is_not_parsed_again() -> None:
    # 60 squared symbols: about 2 s to parse on the development machine, no guard applies.
    slow_gold = "+".join(f"x_{{{i}}}^{{2}}" for i in range(60))
    quick = AnswerJudge(timeout_s=0.3)
    quick.warm_up()
    assert quick.judge("y", [slow_gold]).reason == "timeout"
    started = time.perf_counter()
    assert quick.judge("z", [slow_gold]).reason == "timeout"  # another rollout, same gold
    assert time.perf_counter() - started < 0.25


def test_works_and_times_out_in_worker_threads(judge: AnswerJudge) -> None:
    quick = AnswerJudge(timeout_s=0.5)
    quick.warm_up()
    jobs = [
        (judge, "x+1", ["1+x"], True),
        (judge, r"\frac{\sqrt{2}}{2}", [r"\frac{1}{\sqrt{2}}"], True),
        (judge, "x+2", ["x+1"], False),
        (judge, "0.5", [r"\frac{1}{2}"], True),
        (quick, SLOW_SYMBOLIC, ["5"], False),
    ]
    assert threading.current_thread() is threading.main_thread()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=3) as pool:
        verdicts = list(pool.map(lambda job: job[0].judge(job[1], job[2]), jobs))
    assert time.perf_counter() - started < GENEROUS_S
    assert [v.correct for v in verdicts] == [job[3] for job in jobs]
    assert verdicts[-1].reason == "timeout"
    assert all(v.method == "symbolic" for v in verdicts[:3])


# ---------------------------------------------------------------------------- parity


def _parity_cases() -> list[dict[str, object]]:
    return [json.loads(line) for line in PARITY_FILE.read_text().splitlines() if line.strip()]


def test_authors_verdict_on_every_parity_case(judge: AnswerJudge) -> None:
    """sparse = 1.0 means the authors judged the answer correct, 0.1 wrong or absent; 0.0 marks a
    missing EOS, where they judged nothing."""
    cases = _parity_cases()
    assert len(cases) == 150
    judged, mismatches = 0, []
    for index, case in enumerate(cases):
        completion, expected = str(case["completion"]), case["expected"]
        assert isinstance(expected, dict)
        if not completion.endswith(EOS):
            assert expected["sparse"] == 0.0
            continue
        judged += 1
        gold = case["ground_truth"]
        golds = [str(g) for g in gold] if isinstance(gold, list) else [str(gold)]
        answer = extract_boxed(completion)
        correct = bool(answer) and judge.judge(answer or "", golds).correct
        if correct != (expected["sparse"] == 1.0):
            mismatches.append((index, answer, golds, expected["sparse"]))
    assert judged == 139
    assert mismatches == []


# ---------------------------------------------------------------------------- properties

_FRAGMENT_WORDS = r"\boxed{ \fbox{ { } \{ \frac \dfrac ^ 9 0 . , / - + % \% x \sqrt ! \text{ $ = e \pi the"
FRAGMENTS = st.sampled_from([" ", r"\left(", r"\right)", *_FRAGMENT_WORDS.split()])
ANSWERS = st.one_of(st.text(max_size=30), st.lists(FRAGMENTS, max_size=15).map("".join))
PROPERTY_JUDGE = AnswerJudge(timeout_s=1.0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(predicted=ANSWERS, golds=st.lists(ANSWERS, max_size=3))
def test_judge_never_raises(predicted: str, golds: list[str]) -> None:
    verdict = PROPERTY_JUDGE.judge(predicted, golds)
    assert isinstance(verdict.correct, bool)
    assert verdict.method != "error", verdict.reason


@settings(max_examples=150, deadline=None)
@given(answer=ANSWERS)
def test_judge_is_reflexive(answer: str) -> None:
    verdict = PROPERTY_JUDGE.judge(answer, [answer])
    assert verdict.correct or verdict.method == "no_answer"


@settings(max_examples=200, deadline=None)
@given(text=ANSWERS)
def test_extract_boxed_returns_a_substring(text: str) -> None:
    boxed = extract_boxed(text)
    assert boxed is None or boxed in text
