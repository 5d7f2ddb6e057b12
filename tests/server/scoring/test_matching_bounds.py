"""The cost bounds of matching: which pairing rule runs at which size, and that it says so.

Pairing is optimal up to `OPTIMAL_PAIRING_MAX_CALLS` calls a side, greedy by similarity up to
`MAX_SIMILARITY_PAIRS` similarities, and by key (tool name, canonical result) beyond; the
number of similarities computed is counted here, so the bound is checked exactly rather than
by timing. Also: the bit-parallel LCS of the `order` tool-name mode agrees with the textbook
dynamic programme, and fuzzy string credit is skipped past `FUZZY_MAX_CELLS`.
"""

from __future__ import annotations

import random

import pytest

from mentor_server.scoring import matching
from mentor_server.scoring.matching import (
    FUZZY_MAX_CELLS,
    MAX_SIMILARITY_PAIRS,
    OPTIMAL_PAIRING_MAX_CALLS,
    arguments_score,
    optimal_pairing,
    results_score,
    tool_name_score,
    value_similarity,
)
from mentor_server.scoring.matching.traces import _lcs_length
from mentor_server.scoring.pairing import pair_bounded
from mentor_server.scoring.types import ReferenceCall, ToolCall


def _pair(rows: int, cols: int) -> tuple[int, str, str, int]:
    """Pair a rows x cols problem where row i fits column i best; (evaluations, rule, note, pairs)."""
    evaluations = 0

    def similarity(i: int, j: int) -> float:
        nonlocal evaluations
        evaluations += 1
        return 1.0 if i == j else 0.1

    pairing = pair_bounded(rows, cols, similarity, lambda i: ((f"t{i}",),), lambda j: ((f"t{j}",),))
    assert all(i == j and weight == 1.0 for i, j, weight in pairing.pairs)
    return evaluations, pairing.rule, pairing.note, len(pairing.pairs)


def test_small_problems_are_paired_optimally_over_the_whole_matrix() -> None:
    k = OPTIMAL_PAIRING_MAX_CALLS
    assert _pair(k, k) == (k * k, "optimal", "", k)
    assert _pair(3, k) == (3 * k, "optimal", "", 3)


def test_above_the_call_cap_pairing_is_greedy_and_says_so() -> None:
    k = OPTIMAL_PAIRING_MAX_CALLS + 1
    evaluations, rule, note, pairs = _pair(k, k)
    assert (evaluations, rule, pairs) == (k * k, "greedy", k)
    assert note == f"paired greedily: {k} calls above the optimal-pairing cap of {OPTIMAL_PAIRING_MAX_CALLS}"


def test_above_the_matrix_cap_only_keyed_pairs_are_compared() -> None:
    evaluations, rule, note, pairs = _pair(800, 800)  # the service's 17-second case
    assert (evaluations, rule, pairs) == (800, "by_key", 800)
    assert (
        note
        == f"paired in order by key: 800x800 calls exceed the similarity-matrix cap of {MAX_SIMILARITY_PAIRS} pairs"
    )
    assert _pair(1, MAX_SIMILARITY_PAIRS)[1] == "greedy"
    assert _pair(1, MAX_SIMILARITY_PAIRS + 1)[1] == "by_key"


def test_keyed_pairing_takes_each_row_once_in_order() -> None:
    rows_keys = [("a",), ("a", "b"), ("b",), ("a",)]
    cols_keys = [("b",), ("a",), ("a",), ("b",), ("a",), ("c",)]
    rows, cols = 200, 100  # above the matrix cap; only the first few rows and columns have keys
    pairing = pair_bounded(
        rows,
        cols,
        lambda i, j: 1.0,
        lambda i: (rows_keys[i] if i < len(rows_keys) else (),),
        lambda j: (cols_keys[j] if j < len(cols_keys) else (),),
    )
    # b -> row 1 (first row with b); a -> row 0; a -> row 3 (row 1 is taken); b -> row 2; a -> none left.
    assert [(i, j) for i, j, _ in pairing.pairs] == [(0, 1), (1, 0), (2, 3), (3, 2)]


def test_keyed_pairing_pairs_equal_arguments_before_names_alone() -> None:
    # One tool, 200 x 200 calls: each student call's exact twin sits elsewhere in the teacher's list.
    student = [ToolCall("f", {"x": i % 50, "y": "abc"}) for i in range(200)]
    reference = [ReferenceCall("f", {"x": (i * 7) % 50, "y": "abc"}) for i in range(200)]
    score, reason = arguments_score(student, reference)
    assert "paired in order by tool name" in reason
    assert score == 1.0  # in plain call order, most pairs would disagree on x


def test_argument_scores_name_the_rule_in_the_reason() -> None:
    def calls(n: int) -> tuple[list[ToolCall], list[ReferenceCall]]:
        student = [ToolCall(f"tool{i}", {"x": i}) for i in range(n)]
        reference = [ReferenceCall(f"tool{i}", {"x": i}) for i in reversed(range(n))]
        return student, reference

    assert arguments_score(*calls(8)) == (1.0, "8/8 calls paired, mean arg sim 1.00")
    score, reason = arguments_score(*calls(100))
    assert score == 1.0
    assert (
        reason
        == "100/100 calls paired, mean arg sim 1.00; paired greedily: 100 calls above the optimal-pairing cap of 64"
    )
    score, reason = arguments_score(*calls(800))
    assert score == 1.0
    assert reason.endswith(
        f"; paired in order by tool name: 800x800 calls exceed the similarity-matrix cap "
        f"of {MAX_SIMILARITY_PAIRS} pairs"
    )


def test_the_optimal_rule_gives_what_optimal_pairing_gives() -> None:
    rnd = random.Random(5)
    names = ["a", "b", "c"]
    student = [ToolCall(rnd.choice(names), {"x": rnd.randint(0, 3), "y": "s" * rnd.randint(0, 3)}) for _ in range(12)]
    reference = [
        ReferenceCall(rnd.choice(names), {"x": rnd.randint(0, 3), "y": "s" * rnd.randint(0, 3)}) for _ in range(9)
    ]
    matrix = [[matching.call_similarity(s, r) for r in reference] for s in student]
    pairs = [(i, j) for i, j in optimal_pairing(matrix) if matrix[i][j] > 0]
    expected = min(1.0, sum(matrix[i][j] for i, j in pairs) / 12)
    assert arguments_score(student, reference)[0] == pytest.approx(expected, abs=0, rel=1e-15)


def test_result_scores_above_the_caps() -> None:
    n = 200  # 40,000 pairs: above the matrix cap
    student = [ToolCall("f", {}, result=str(i)) for i in range(n)]
    reference = [ReferenceCall("g", {}, result=float(i)) for i in reversed(range(n))]
    score, reason = results_score(student, reference)
    assert score == 1.0
    assert reason.startswith(f"{n}/{n} teacher results reproduced; paired in order by canonical value")
    score, reason = results_score(student[:100], reference[-100:])
    assert (score, reason) == (
        1.0,
        "100/100 teacher results reproduced; paired greedily: 100 results above the optimal-pairing cap of 64",
    )


def _lcs_reference(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_bit_parallel_lcs_agrees_with_the_dynamic_programme() -> None:
    rnd = random.Random(11)
    for _ in range(400):
        a = [rnd.choice("abcd") for _ in range(rnd.randint(0, 30))]
        b = [rnd.choice("abce") for _ in range(rnd.randint(0, 30))]
        assert _lcs_length(a, b) == _lcs_reference(a, b), (a, b)
    big = [f"t{i % 50}" for i in range(5000)]
    assert tool_name_score(big, list(reversed(big)), "order") > 0.0


def test_fuzzy_credit_stops_at_the_cell_cap() -> None:
    side = int(FUZZY_MAX_CELLS**0.5)
    near = "ab" * (side // 2)
    assert 0.8 < value_similarity(near, near[:-1] + "x") < 1.0
    long = near + "ab"  # (side + 2)^2 cells: over the cap
    assert value_similarity(long, long[:-1] + "x") == 0.0
    assert value_similarity(long, long) == 1.0  # equality needs no fuzzy matching


def test_unordered_lists_with_huge_integers_compare_without_overflow() -> None:
    options = matching.ValueMatchOptions(unordered_lists=True)
    huge = [10**400 + i for i in range(40)]  # 1,600 pairs: the canonical multiset path
    assert value_similarity(huge, list(reversed(huge)), options=options) == 1.0
