"""Tool-call matching: names, values, acceptable values, calls, pairing, trace scores, baselines."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import rapidfuzz
from hypothesis import given, settings
from hypothesis import strategies as st

from mentor_server.scoring.matching import (
    MISSING,
    ValueMatchOptions,
    acceptable_value_score,
    arguments_score,
    call_similarity,
    greedy_pairing,
    optimal_pairing,
    result_matches,
    results_score,
    standardize_string,
    strict_sequence_match,
    tool_name_score,
    toolrl_correctness,
    toolrl_to_unit,
    value_similarity,
)
from mentor_server.scoring.types import ReferenceCall, ScoringConfigError, ToolCall

DEFAULT = ValueMatchOptions()
KW = DEFAULT.key_weight


def opts(**changes: Any) -> ValueMatchOptions:
    return ValueMatchOptions.from_dict(changes)


def bad_call(name: str | None = "add") -> ToolCall:
    return ToolCall(name, {}, raw="{oops", error="invalid JSON")


# ---------------------------------------------------------------------------- tool names
NAME_CASES = [
    ("exact_set", ["a", "b"], ["b", "a"], 1.0),
    ("exact_set", ["a", "a", "b"], ["a", "b"], 1.0),
    ("exact_set", ["a"], ["a", "b"], 0.0),
    ("exact_set", [], [], 0.0),
    ("exact_set", ["a"], [], 0.0),
    ("any_overlap", ["a", "z"], ["a", "b"], 1.0),
    ("any_overlap", ["z"], ["a", "b"], 0.0),
    ("any_overlap", [], [], 0.0),
    ("f1", ["a", "b"], ["a", "b"], 1.0),
    ("f1", ["a"], ["a", "b"], 2 / 3),
    ("f1", ["a", "a", "a"], ["a"], 1.0),
    ("f1", ["a", "z"], ["a", "b"], 0.5),
    ("f1", [], [], 1.0),
    ("f1", [], ["a"], 0.0),
    ("f1", ["a"], [], 0.0),
    ("multiset_f1", ["a", "a", "a"], ["a"], 0.5),
    ("multiset_f1", ["a", "a"], ["a", "a"], 1.0),
    ("multiset_f1", ["a", "b"], ["b", "c"], 0.5),
    ("multiset_f1", [], [], 1.0),
    ("order", ["a", "b", "c"], ["a", "b", "c"], 1.0),
    ("order", ["c", "b", "a"], ["a", "b", "c"], 1 / 3),
    ("order", ["a", "x", "b"], ["a", "b"], 2 / 3),
    ("order", ["b", "a"], ["a", "b"], 0.5),
    ("order", [], [], 1.0),
    ("order", ["a"], [], 0.0),
]


@pytest.mark.parametrize(
    ("mode", "student", "teacher", "expected"),
    NAME_CASES,
    ids=[f"{m}:{'+'.join(s) or 'none'}_vs_{'+'.join(t) or 'none'}" for m, s, t, _ in NAME_CASES],
)
def test_tool_name_score(mode: str, student: list[str], teacher: list[str], expected: float) -> None:
    assert tool_name_score(student, teacher, mode) == pytest.approx(expected)


def test_tool_name_score_unknown_mode_names_the_param() -> None:
    with pytest.raises(ScoringConfigError) as info:
        tool_name_score(["a"], ["a"], "jaccard")
    assert info.value.param == "mode"


names = st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=6)


@settings(max_examples=150, deadline=None)
@given(names, names, st.sampled_from(["exact_set", "any_overlap", "f1", "multiset_f1", "order"]))
def test_tool_name_score_bounded_and_symmetric(student: list[str], teacher: list[str], mode: str) -> None:
    score = tool_name_score(student, teacher, mode)
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(tool_name_score(teacher, student, mode))
    if student and student == teacher:
        assert score == 1.0


# ---------------------------------------------------------------------------- values
VALUE_CASES: list[tuple[str, Any, Any, ValueMatchOptions, float]] = [
    ("equal-ints", 5, 5, DEFAULT, 1.0),
    ("different-ints", 5, 6, DEFAULT, 0.0),
    ("int-for-float", 5, 5.0, DEFAULT, 1.0),
    ("float-for-int-default", 5.0, 5, DEFAULT, 1.0),
    ("float-for-int-strict", 5.0, 5, opts(float_for_int_credit=0.0), 0.0),
    ("int-for-float-strict-still-ok", 5, 5.0, opts(float_for_int_credit=0.0), 1.0),
    ("bool-is-not-int", True, 1, DEFAULT, 0.0),
    ("int-is-not-bool", 0, False, DEFAULT, 0.0),
    ("bools-equal", False, False, DEFAULT, 1.0),
    ("bools-differ", True, False, DEFAULT, 0.0),
    ("float-rounding", 0.1 + 0.2, 0.3, DEFAULT, 1.0),
    ("float-off", 0.31, 0.3, DEFAULT, 0.0),
    ("float-loose-tolerance", 0.31, 0.3, opts(rel_tol=0.05), 1.0),
    ("abs-tolerance-near-zero", 1e-13, 0.0, DEFAULT, 1.0),
    ("big-ints-exact", 10**12, 10**12 + 1, opts(rel_tol=0.01), 0.0),
    ("string-number-partial", "5", 5, DEFAULT, 0.5),
    ("number-string-partial", 5, "5", DEFAULT, 0.5),
    ("string-number-full", "5", 5, opts(coercion_credit=1.0), 1.0),
    ("string-number-none", "5", 5, opts(coercion_credit=0.0), 0.0),
    ("string-number-wrong", "6", 5, DEFAULT, 0.0),
    ("string-float-for-int", "5.0", 5, DEFAULT, 0.5),
    ("string-bool-partial", "true", True, DEFAULT, 0.5),
    ("string-bool-wrong", "false", True, DEFAULT, 0.0),
    ("none-none", None, None, DEFAULT, 1.0),
    ("none-vs-zero", None, 0, DEFAULT, 0.0),
    ("none-vs-string", "null", None, DEFAULT, 0.0),
    ("bfcl-normalised", "April 1, 2024", "april 1 2024", DEFAULT, 1.0),
    ("bfcl-quotes", "say 'hi'", 'say "hi"', DEFAULT, 1.0),
    ("bfcl-off", "New York", "new york", opts(normalize_strings=False, fuzzy=False), 0.0),
    ("exact-without-normalisation", "New York", "New York", opts(normalize_strings=False), 1.0),
    ("far-strings-no-credit", "Paris", "Tokyo", DEFAULT, 0.0),
    ("fuzzy-off", "Berkeley CA", "Berkeley CB", opts(fuzzy=False), 0.0),
    ("empty-vs-text", "", "text", DEFAULT, 0.0),
    ("list-equal", [1, "a b"], [1, "AB"], DEFAULT, 1.0),
    ("list-order-matters", [1, 2], [2, 1], DEFAULT, 0.0),
    ("list-unordered", [1, 2], [2, 1], opts(unordered_lists=True), 1.0),
    ("list-length-penalty", [1, 2], [1, 2, 3], DEFAULT, 2 / 3),
    ("list-empty-both", [], [], DEFAULT, 1.0),
    ("list-empty-vs-full", [], [1], DEFAULT, 0.0),
    ("tuple-as-list", (1, 2), [1, 2], DEFAULT, 1.0),
    ("dict-equal", {"a": 1, "b": [True]}, {"b": [True], "a": 1}, DEFAULT, 1.0),
    ("dict-key-union", {"a": 1, "c": 3}, {"a": 1, "b": 2}, DEFAULT, 1 / 3),
    ("dict-value-partial", {"a": 1, "b": "5"}, {"a": 1, "b": 5}, DEFAULT, 0.75),
    ("dict-empty-both", {}, {}, DEFAULT, 1.0),
    ("nested", {"p": [{"x": 1.0}]}, {"p": [{"x": 1}]}, DEFAULT, 1.0),
    ("list-vs-dict", [1], {"a": 1}, DEFAULT, 0.0),
    ("string-vs-list", "1", [1], DEFAULT, 0.0),
]


@pytest.mark.parametrize(
    ("student", "reference", "options", "expected"),
    [c[1:] for c in VALUE_CASES],
    ids=[c[0] for c in VALUE_CASES],
)
def test_value_similarity(student: Any, reference: Any, options: ValueMatchOptions, expected: float) -> None:
    assert value_similarity(student, reference, options=options) == pytest.approx(expected)


FUZZY_CASES = [("Berkeley, CA", "Berkley, CA"), ("San Francisco", "San Fransisco"), ("celsius", "celcius")]


@pytest.mark.parametrize(("student", "reference"), FUZZY_CASES, ids=[f"{a}~{b}" for a, b in FUZZY_CASES])
def test_fuzzy_partial_credit_is_weighted_ratio_below_one(student: str, reference: str) -> None:
    ratio = rapidfuzz.fuzz.ratio(standardize_string(student), standardize_string(reference)) / 100
    assert ratio >= DEFAULT.fuzzy_threshold  # the cases are near misses
    score = value_similarity(student, reference)
    assert score == pytest.approx(DEFAULT.fuzzy_weight * ratio)
    assert 0.0 < score < 1.0
    assert value_similarity(student, reference, options=opts(fuzzy_threshold=1.0)) == 0.0
    # Even a full weight cannot turn a near miss into a match.
    assert value_similarity(student, reference, options=opts(fuzzy_weight=1.0)) < 1.0


def test_standardize_string_follows_bfcl() -> None:
    assert standardize_string("Hello, World. a/b-c_d*e^f 'q'") == 'helloworldabcdef"q"'


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_deep_nesting_is_guarded_not_recursed() -> None:
    assert value_similarity(nested(40, 1), nested(40, 1)) == 1.0
    assert value_similarity(nested(40, 1), nested(40, 2)) == 0.0
    # Past Python's own recursion limit the comparison gives up (0.0) instead of raising.
    assert value_similarity(nested(5000, 1), nested(5000, 1)) in (0.0, 1.0)
    assert acceptable_value_score(nested(5000, 1), [nested(5000, 1)], DEFAULT) in (0.0, 1.0)


def test_large_unordered_lists_fall_back_to_multiset_counting() -> None:
    big = list(range(100))
    assert value_similarity(big[::-1], big, options=opts(unordered_lists=True)) == 1.0
    assert value_similarity(big[:50] + [-1] * 50, big, options=opts(unordered_lists=True)) == 0.5


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(alphabet="abcAB ,.-_'5 1", max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from("abcd"), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(json_values, json_values, st.booleans())
def test_value_similarity_bounded_symmetric_reflexive(a: Any, b: Any, unordered: bool) -> None:
    options = opts(unordered_lists=unordered)
    score = value_similarity(a, b, options=options)
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(value_similarity(b, a, options=options))
    assert value_similarity(a, a, options=options) == 1.0


# ---------------------------------------------------------------------------- acceptable values
ACCEPTABLE_CASES: list[tuple[str, Any, list[Any], float]] = [
    ("missing-optional", MISSING, ["celsius", ""], 1.0),
    ("missing-required", MISSING, ["celsius"], 0.0),
    ("explicit-empty-string", "", ["celsius", ""], 1.0),
    ("second-alternative", "Fahrenheit", ["celsius", "fahrenheit"], 1.0),
    ("best-of-partials", "5", [6, 5], 0.5),
    ("null-alternative", None, ["", None], 1.0),
    (
        "list-alternative",
        ["Monterey", "Santa Barbara"],
        [["Santa Barbara", "Monterey"], ["Monterey", "Santa Barbara"]],
        1.0,
    ),
    ("empty-list-alternative", [], ["", []], 1.0),
    ("nested-dict", {"min": 3, "max": 9}, [{"min": [3], "max": [9, 10]}], 1.0),
    ("nested-dict-optional-key", {"min": 3}, [{"min": [3], "max": ["", 9]}], 1.0),
    ("nested-dict-missing-required", {"min": 3}, [{"min": [3], "max": [9]}], 0.5),
    ("nested-dict-extra-key", {"min": 3, "x": 1}, [{"min": [3]}], 0.5),
    ("nested-dict-literal-value", {"pos": {"x": 1.5}}, [{"pos": [{"x": 1.5}]}], 1.0),
    ("list-of-dicts", [{"f": "age", "v": "25"}], [[{"f": ["age"], "v": ["25"]}]], 1.0),
    ("list-of-dicts-wrong-value", [{"f": "age", "v": "26"}], [[{"f": ["age"], "v": ["25"]}]], 0.5),
    ("dict-expected-got-string", "min=3", [{"min": [3]}], 0.0),
    ("nested-list-of-lists", {"A": ["x", "y"]}, [{"A": [["x", "y"]]}], 1.0),
]


@pytest.mark.parametrize(
    ("student", "acceptable", "expected"),
    [c[1:] for c in ACCEPTABLE_CASES],
    ids=[c[0] for c in ACCEPTABLE_CASES],
)
def test_acceptable_value_score(student: Any, acceptable: list[Any], expected: float) -> None:
    assert acceptable_value_score(student, acceptable, DEFAULT) == pytest.approx(expected)


@pytest.mark.parametrize("acceptable", [[], "celsius", None], ids=["empty-list", "not-a-list", "none"])
def test_acceptable_value_score_rejects_malformed_reference(acceptable: Any) -> None:
    with pytest.raises(ScoringConfigError) as info:
        acceptable_value_score("x", acceptable, DEFAULT)
    assert info.value.param == "acceptable"


@settings(max_examples=150, deadline=None)
@given(json_values, st.lists(json_values, min_size=1, max_size=4))
def test_acceptable_score_is_max_over_alternatives_for_flat_values(
    student: Any, acceptable: list[Any]
) -> None:
    flat = [a for a in acceptable if not isinstance(a, dict | list)] or [1]
    expected = max(value_similarity(student, a) for a in flat)
    assert acceptable_value_score(student, flat, DEFAULT) == pytest.approx(expected)


# ---------------------------------------------------------------------------- calls
REF = ReferenceCall("get_weather", {"city": "Paris", "days": 3})
POSSIBLE = ReferenceCall(
    "get_weather", {"city": ["Paris", "Paris, France"], "days": [3], "unit": ["celsius", ""]}
)

CALL_CASES: list[tuple[str, ToolCall, ReferenceCall, bool, ValueMatchOptions, float]] = [
    ("exact", ToolCall("get_weather", {"days": 3, "city": "paris"}), REF, False, DEFAULT, 1.0),
    ("wrong-name", ToolCall("get_forecast", {"city": "Paris", "days": 3}), REF, False, DEFAULT, 0.0),
    (
        "wrong-name-credit",
        ToolCall("get_forecast", {"city": "Paris", "days": 3}),
        REF,
        False,
        opts(name_mismatch_credit=0.5),
        0.5,
    ),
    ("malformed", bad_call("get_weather"), REF, False, DEFAULT, 0.0),
    (
        "missing-key",
        ToolCall("get_weather", {"city": "Paris"}),
        REF,
        False,
        DEFAULT,
        KW * 1 / 2 + (1 - KW) * 1 / 2,
    ),
    (
        "extra-key",
        ToolCall("get_weather", {"city": "Paris", "days": 3, "x": 1}),
        REF,
        False,
        DEFAULT,
        KW * 2 / 3 + (1 - KW),
    ),
    (
        "wrong-value",
        ToolCall("get_weather", {"city": "Tokyo", "days": 3}),
        REF,
        False,
        DEFAULT,
        KW + (1 - KW) / 2,
    ),
    ("no-args-both", ToolCall("now", {}), ReferenceCall("now", {}), False, DEFAULT, 1.0),
    (
        "extra-arg-to-no-arg-tool",
        ToolCall("now", {"tz": "UTC"}),
        ReferenceCall("now", {}),
        False,
        DEFAULT,
        1 - KW,
    ),
    (
        "possible-optional-omitted",
        ToolCall("get_weather", {"city": "Paris", "days": 3}),
        POSSIBLE,
        True,
        DEFAULT,
        1.0,
    ),
    (
        "possible-alternative",
        ToolCall("get_weather", {"city": "paris france", "days": 3, "unit": "Celsius"}),
        POSSIBLE,
        True,
        DEFAULT,
        1.0,
    ),
    (
        "possible-missing-required",
        ToolCall("get_weather", {"city": "Paris"}),
        POSSIBLE,
        True,
        DEFAULT,
        KW * 1 / 2 + (1 - KW) * 1 / 2,
    ),
    (
        "possible-wrong-optional",
        ToolCall("get_weather", {"city": "Paris", "days": 3, "unit": "kelvin"}),
        POSSIBLE,
        True,
        DEFAULT,
        KW + (1 - KW) * 2 / 3,
    ),
]


@pytest.mark.parametrize(
    ("student", "ref", "possible", "options", "expected"),
    [c[1:] for c in CALL_CASES],
    ids=[c[0] for c in CALL_CASES],
)
def test_call_similarity(
    student: ToolCall, ref: ReferenceCall, possible: bool, options: ValueMatchOptions, expected: float
) -> None:
    assert call_similarity(student, ref, possible_answers=possible, options=options) == pytest.approx(
        expected
    )


def test_call_similarity_rejects_non_list_possible_answer() -> None:
    with pytest.raises(ScoringConfigError) as info:
        call_similarity(ToolCall("f", {"a": 1}), ReferenceCall("f", {"a": 1}), possible_answers=True)
    assert info.value.param == "arguments.a"


# ---------------------------------------------------------------------------- pairing
def brute_force_best(sim: list[list[float]]) -> float:
    rows, cols = len(sim), len(sim[0]) if sim else 0
    if rows == 0 or cols == 0:
        return 0.0
    if rows <= cols:
        return max(sum(sim[i][p[i]] for i in range(rows)) for p in itertools.permutations(range(cols), rows))
    return max(sum(sim[p[j]][j] for j in range(cols)) for p in itertools.permutations(range(rows), cols))


def weight(sim: list[list[float]], pairs: list[tuple[int, int]]) -> float:
    return sum(sim[i][j] for i, j in pairs)


PAIRING_CASES = [
    ("identity", [[1.0, 0.0], [0.0, 1.0]], [(0, 0), (1, 1)]),
    ("anti-diagonal", [[0.0, 1.0], [1.0, 0.0]], [(0, 1), (1, 0)]),
    ("greedy-trap", [[0.9, 0.8], [0.8, 0.0]], [(0, 1), (1, 0)]),
    ("wide", [[0.1, 0.2, 0.9]], [(0, 2)]),
    ("tall", [[0.1], [0.7], [0.3]], [(1, 0)]),
    ("wide-2x3", [[0.5, 0.6, 0.0], [0.0, 0.6, 0.1]], [(0, 0), (1, 1)]),
    ("empty", [], []),
    ("no-columns", [[], []], []),
]


@pytest.mark.parametrize(
    ("sim", "expected"), [c[1:] for c in PAIRING_CASES], ids=[c[0] for c in PAIRING_CASES]
)
def test_optimal_pairing(sim: list[list[float]], expected: list[tuple[int, int]]) -> None:
    assert optimal_pairing(sim) == expected


def test_greedy_pairing_is_worse_on_the_trap() -> None:
    sim = [[0.9, 0.8], [0.8, 0.0]]
    assert weight(sim, greedy_pairing(sim)) == pytest.approx(0.9)
    assert weight(sim, optimal_pairing(sim)) == pytest.approx(1.6)


@pytest.mark.parametrize(
    "sim", [[[1.0, 0.5], [0.2]], [[math.nan]], [[math.inf, 0.0]]], ids=["ragged", "nan", "infinite"]
)
def test_optimal_pairing_rejects_bad_matrices(sim: list[list[float]]) -> None:
    with pytest.raises(ValueError):
        optimal_pairing(sim)


matrices = st.integers(min_value=1, max_value=6).flatmap(
    lambda rows: st.integers(min_value=1, max_value=6).flatmap(
        lambda cols: st.lists(
            st.lists(
                st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0)), min_size=cols, max_size=cols
            ),
            min_size=rows,
            max_size=rows,
        )
    )
)


@settings(max_examples=200, deadline=None)
@given(matrices)
def test_optimal_pairing_matches_brute_force_and_beats_greedy(sim: list[list[float]]) -> None:
    pairs = optimal_pairing(sim)
    assert len(pairs) == min(len(sim), len(sim[0]))
    assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs})
    assert weight(sim, pairs) == pytest.approx(brute_force_best(sim))
    assert weight(sim, pairs) >= weight(sim, greedy_pairing(sim)) - 1e-9


# ---------------------------------------------------------------------------- arguments score
ADD = ReferenceCall("add", {"a": 1, "b": 2})
MUL = ReferenceCall("mul", {"a": 3, "b": 4})

ARGUMENT_CASES: list[tuple[str, list[ToolCall], list[ReferenceCall], float, str]] = [
    (
        "same",
        [ToolCall("add", {"a": 1, "b": 2}), ToolCall("mul", {"a": 3, "b": 4})],
        [ADD, MUL],
        1.0,
        "2/2 calls paired",
    ),
    (
        "order-free",
        [ToolCall("mul", {"a": 3, "b": 4}), ToolCall("add", {"a": 1, "b": 2})],
        [ADD, MUL],
        1.0,
        "2/2 calls paired",
    ),
    ("missing-call", [ToolCall("add", {"a": 1, "b": 2})], [ADD, MUL], 0.5, "1/2 calls paired"),
    (
        "extra-call",
        [ToolCall("add", {"a": 1, "b": 2}), ToolCall("add", {"a": 1, "b": 2})],
        [ADD],
        0.5,
        "1 extra",
    ),
    (
        "malformed-ignored",
        [bad_call(), ToolCall("add", {"a": 1, "b": 2})],
        [ADD],
        1.0,
        "1/1 calls paired",
    ),
    ("only-malformed", [bad_call()], [ADD], 0.0, "no valid student call"),
    ("none-expected-none-made", [], [], 1.0, "none made"),
    ("none-expected-some-made", [ToolCall("add", {"a": 1, "b": 2})], [], 0.0, "1 made"),
    ("wrong-tool", [ToolCall("sub", {"a": 1, "b": 2})], [ADD], 0.0, "0/1 calls paired"),
]


@pytest.mark.parametrize(
    ("student", "ref", "expected", "reason_part"),
    [c[1:] for c in ARGUMENT_CASES],
    ids=[c[0] for c in ARGUMENT_CASES],
)
def test_arguments_score(
    student: list[ToolCall], ref: list[ReferenceCall], expected: float, reason_part: str
) -> None:
    score, reason = arguments_score(student, ref)
    assert score == pytest.approx(expected)
    assert reason_part in reason


def test_arguments_score_pairs_optimally_not_greedily() -> None:
    # Greedy takes the perfect (student 0, teacher 1) pair first and leaves student 1 with
    # teacher 0, a poor match; the optimum pairs each student call with a good partner.
    ref = [ReferenceCall("f", {"x": 1}), ReferenceCall("f", {"x": 1, "y": 2})]
    student = [ToolCall("f", {"x": 1, "y": 2}), ToolCall("f", {"x": 2, "y": 2})]
    sim = [[call_similarity(s, r) for r in ref] for s in student]
    greedy = weight(sim, greedy_pairing(sim)) / 2
    score, reason = arguments_score(student, ref)
    assert score == pytest.approx(weight(sim, [(0, 0), (1, 1)]) / 2)
    assert score > greedy + 0.1
    assert reason.startswith("2/2 calls paired")


call_args = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 3), max_size=3)
student_calls = st.lists(st.builds(ToolCall, st.sampled_from(["f", "g"]), call_args), max_size=4)
ref_calls = st.lists(st.builds(ReferenceCall, st.sampled_from(["f", "g"]), call_args), max_size=4)


@settings(max_examples=150, deadline=None)
@given(student_calls, ref_calls, st.randoms(use_true_random=False))
def test_arguments_score_bounded_and_order_invariant(
    student: list[ToolCall], ref: list[ReferenceCall], rng: Any
) -> None:
    score, _ = arguments_score(student, ref)
    assert 0.0 <= score <= 1.0
    shuffled = list(student)
    rng.shuffle(shuffled)
    assert arguments_score(shuffled, ref)[0] == pytest.approx(score)
    if student and [(c.name, c.arguments) for c in student] == [(r.name, r.arguments) for r in ref]:
        assert score == 1.0


# ---------------------------------------------------------------------------- results
def res(name: str, result: str | None, **arguments: Any) -> ToolCall:
    return ToolCall(name, arguments, result=result)


RESULT_CASES: list[tuple[str, list[ToolCall], list[ReferenceCall], float | None]] = [
    ("same-result-other-args", [res("add", "5", a=3, b=2)], [ReferenceCall("add", {"a": 2, "b": 3}, 5)], 1.0),
    ("other-tool-same-result", [res("calc", "5.0")], [ReferenceCall("add", {}, 5)], 1.0),
    ("numeric-tolerance", [res("f", "0.30000000000000004")], [ReferenceCall("f", {}, 0.3)], 1.0),
    ("numeric-differs", [res("f", "0.31")], [ReferenceCall("f", {}, 0.3)], 0.0),
    ("string-normalised", [res("f", "  New-York ")], [ReferenceCall("f", {}, "new york")], 1.0),
    (
        "json-structure",
        [res("f", '{"t": 21, "u": "C"}')],
        [ReferenceCall("f", {}, {"u": "c", "t": 21.0})],
        1.0,
    ),
    ("json-string-result", [res("f", '"Paris"')], [ReferenceCall("f", {}, "Paris")], 1.0),
    ("bool-result", [res("f", "True")], [ReferenceCall("f", {}, True)], 1.0),
    (
        "each-student-result-counts-once",
        [res("f", "5")],
        [ReferenceCall("f", {}, 5), ReferenceCall("g", {}, "5")],
        0.5,
    ),
    (
        "order-free",
        [res("g", "7"), res("f", "5")],
        [ReferenceCall("f", {}, 5), ReferenceCall("g", {}, 7)],
        1.0,
    ),
    (
        "unknown-teacher-results-skipped",
        [res("f", "5")],
        [ReferenceCall("f", {}, 5), ReferenceCall("g", {})],
        1.0,
    ),
    ("no-student-results", [ToolCall("f", {})], [ReferenceCall("f", {}, 5)], 0.0),
    ("no-teacher-results", [res("f", "5")], [ReferenceCall("f", {})], None),
    ("no-calls-at-all", [], [], None),
]


@pytest.mark.parametrize(
    ("student", "ref", "expected"), [c[1:] for c in RESULT_CASES], ids=[c[0] for c in RESULT_CASES]
)
def test_results_score(student: list[ToolCall], ref: list[ReferenceCall], expected: float | None) -> None:
    score, reason = results_score(student, ref, options=DEFAULT)
    if expected is None:
        assert score is None
        assert "no teacher result" in reason
    else:
        assert score == pytest.approx(expected)


def test_results_same_name_option() -> None:
    ref = [ReferenceCall("add", {}, 5)]
    assert results_score([res("calc", "5")], ref, options=opts(results_same_name=True))[0] == 0.0
    assert results_score([res("add", "5")], ref, options=opts(results_same_name=True))[0] == 1.0


@pytest.mark.parametrize(
    ("student", "reference", "expected"),
    [
        ("5", 5, True),
        ("5", "5.0", True),
        ("[1, 2]", [1, 2], True),
        ("[2, 1]", [1, 2], False),
        ("abc", "abd", False),
    ],
    ids=["int", "numeric-strings", "list", "list-order", "near-miss-is-no-match"],
)
def test_result_matches(student: str, reference: Any, expected: bool) -> None:
    assert result_matches(student, reference) is expected


# ---------------------------------------------------------------------------- strict sequence
STRICT_CASES: list[tuple[str, list[ToolCall], list[ReferenceCall], bool, float]] = [
    ("same", [ToolCall("add", {"a": 1, "b": 2}), ToolCall("mul", {"a": 3, "b": 4})], [ADD, MUL], False, 1.0),
    ("normalised-equal", [ToolCall("add", {"a": 1.0, "b": 2})], [ADD], False, 1.0),
    (
        "swapped",
        [ToolCall("mul", {"a": 3, "b": 4}), ToolCall("add", {"a": 1, "b": 2})],
        [ADD, MUL],
        False,
        0.0,
    ),
    ("one-value-off", [ToolCall("add", {"a": 1, "b": 3})], [ADD], False, 0.0),
    ("coerced-is-not-equal", [ToolCall("add", {"a": "1", "b": 2})], [ADD], False, 0.0),
    ("missing-key", [ToolCall("add", {"a": 1})], [ADD], False, 0.0),
    ("extra-key", [ToolCall("add", {"a": 1, "b": 2, "c": 0})], [ADD], False, 0.0),
    ("extra-call", [ToolCall("add", {"a": 1, "b": 2}), ToolCall("add", {"a": 1, "b": 2})], [ADD], False, 0.0),
    ("malformed", [bad_call()], [ADD], False, 0.0),
    ("both-empty", [], [], False, 1.0),
    (
        "possible-optional-omitted",
        [ToolCall("get_weather", {"city": "Paris", "days": 3})],
        [POSSIBLE],
        True,
        1.0,
    ),
    ("possible-wrong", [ToolCall("get_weather", {"city": "Lyon", "days": 3})], [POSSIBLE], True, 0.0),
]


@pytest.mark.parametrize(
    ("student", "ref", "possible", "expected"),
    [c[1:] for c in STRICT_CASES],
    ids=[c[0] for c in STRICT_CASES],
)
def test_strict_sequence_match(
    student: list[ToolCall], ref: list[ReferenceCall], possible: bool, expected: float
) -> None:
    assert strict_sequence_match(student, ref, DEFAULT, possible_answers=possible) == expected


def test_strict_sequence_coercion_can_be_allowed() -> None:
    assert (
        strict_sequence_match([ToolCall("add", {"a": "1", "b": 2})], [ADD], opts(coercion_credit=1.0)) == 1.0
    )


# ---------------------------------------------------------------------------- ToolRL
# Expected values worked by hand from the formula: c = 6·S/S_max − 3.
TOOLRL_CASES: list[tuple[str, list[ToolCall], list[ReferenceCall], float]] = [
    ("no-gold-call", [ToolCall("add", {"a": 1})], [], 0.0),
    ("no-prediction", [], [ADD], -3.0),
    ("malformed", [bad_call()], [ADD], -3.0),
    ("exact", [ToolCall("add", {"a": 1, "b": 2})], [ADD], 3.0),
    # S = 1 (names) + 1 (keys) + 1 (a) = 3, S_max = 1 + 3 = 4.
    ("one-value-wrong", [ToolCall("add", {"a": 1, "b": 3})], [ADD], 1.5),
    # Plain ==: "1" != 1, so only b counts: S = 1 + 1 + 1 = 3 of 4.
    ("string-for-int", [ToolCall("add", {"a": "1", "b": 2})], [ADD], 1.5),
    # Plain ==: 1.0 == 1, and the dicts compare equal, so the lists are equal.
    ("float-equals-int", [ToolCall("add", {"a": 1.0, "b": 2})], [ADD], 3.0),
    # Names {add} vs {sub}: Jaccard 0; no same-name prediction: S = 0 → −3.
    ("wrong-name", [ToolCall("sub", {"a": 1, "b": 2})], [ADD], -3.0),
    # Same calls, other order: lists differ; S = 1 + (1 + 2) + (1 + 2) = 7 = S_max → +3.
    ("swapped", [ToolCall("mul", {"a": 3, "b": 4}), ToolCall("add", {"a": 1, "b": 2})], [ADD, MUL], 3.0),
    # Names: multiset Jaccard({add}, {add, add}) = 1/2; pair 3 of S_max 4 → S = 3.5: 6·3.5/4 − 3 = 2.25.
    ("extra-duplicate", [ToolCall("add", {"a": 1, "b": 2}), ToolCall("add", {"a": 1, "b": 2})], [ADD], 2.25),
    # Keys {a} vs {a, b}: Jaccard 1/2; a correct: S = 1 + 0.5 + 1 = 2.5 of 4 → 0.75.
    ("missing-param", [ToolCall("add", {"a": 1})], [ADD], 0.75),
    # Missing call: names Jaccard 1/2; add pair 3; S = 3.5, S_max = 7 → 0.
    ("missing-call", [ToolCall("add", {"a": 1, "b": 2})], [ADD, MUL], 0.0),
]


@pytest.mark.parametrize(
    ("student", "ref", "expected"), [c[1:] for c in TOOLRL_CASES], ids=[c[0] for c in TOOLRL_CASES]
)
def test_toolrl_correctness(student: list[ToolCall], ref: list[ReferenceCall], expected: float) -> None:
    assert toolrl_correctness(student, ref) == pytest.approx(expected)


def test_toolrl_pairs_greedily_in_gold_order() -> None:
    # Gold 0 takes its best prediction first: pred 0 scores Jaccard({x}, {x, y}) 0.5 + 1 value = 1.5,
    # pred 1 scores 1 + 0 = 1, so pred 0. Gold 1 is left with pred 1: 0.5 + 0 = 0.5.
    # S = 1 + 1.5 + 0.5 = 3, S_max = 1 + 2 + 3 = 6 → 0. Optimal pairing would give S = 5 → +2.
    gold = [ReferenceCall("f", {"x": 1}), ReferenceCall("f", {"x": 1, "y": 2})]
    predicted = [ToolCall("f", {"x": 1, "y": 2}), ToolCall("f", {"x": 5})]
    assert toolrl_correctness(predicted, gold) == pytest.approx(0.0)


@pytest.mark.parametrize(("raw", "unit"), [(-3.0, 0.0), (0.0, 0.5), (3.0, 1.0), (1.5, 0.75)], ids=str)
def test_toolrl_to_unit(raw: float, unit: float) -> None:
    assert toolrl_to_unit(raw) == pytest.approx(unit)


@settings(max_examples=150, deadline=None)
@given(student_calls, ref_calls)
def test_toolrl_correctness_bounded(student: list[ToolCall], ref: list[ReferenceCall]) -> None:
    assert -3.0 <= toolrl_correctness(student, ref) <= 3.0


# ---------------------------------------------------------------------------- options
BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"fuzzy_treshold": 0.5}, "fuzzy_treshold"),
    ({"rel_tol": -1.0}, "rel_tol"),
    ({"rel_tol": "small"}, "rel_tol"),
    ({"abs_tol": math.inf}, "abs_tol"),
    ({"fuzzy": 1}, "fuzzy"),
    ({"coercion_credit": 1.5}, "coercion_credit"),
    ({"coercion_credit": True}, "coercion_credit"),
    ({"max_depth": 2.5}, "max_depth"),
    ({"max_depth": 0}, "max_depth"),
    ({"key_weight": -0.1}, "key_weight"),
]


@pytest.mark.parametrize(
    ("data", "param"), BAD_OPTIONS, ids=[f"{p}={next(iter(d.values()))!r}" for d, p in BAD_OPTIONS]
)
def test_options_from_dict_names_the_bad_key(data: dict[str, Any], param: str) -> None:
    with pytest.raises(ScoringConfigError) as info:
        ValueMatchOptions.from_dict(data)
    assert info.value.param == param


def test_options_round_trip_and_defaults() -> None:
    assert ValueMatchOptions.from_dict({}) == DEFAULT
    custom = opts(rel_tol=0.01, unordered_lists=True, max_depth=4)
    assert ValueMatchOptions.from_dict(custom.to_dict()) == custom
    assert opts(rel_tol=1).rel_tol == 1  # ints are accepted where floats are expected
