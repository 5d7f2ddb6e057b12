"""Traces: tool-name scores, call similarity, the per-trace argument and result scores over
bounded pairings, the paper's strict trajectory match and ToolRL's correctness reward."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..pairing import pair_bounded
from ..types import JSONValue, ReferenceCall, ScoringConfigError, ToolCall
from .values import _DEFAULT, MISSING, ValueMatchOptions, _best_acceptable, _canonical, _is_optional, _similarity

TOOL_NAME_MODES: Final[tuple[str, ...]] = ("exact_set", "any_overlap", "f1", "multiset_f1", "order")


# ---------------------------------------------------------------------------- tool names
def tool_name_score(student: Sequence[str], teacher: Sequence[str], mode: str) -> float:
    """Agreement of the student's tool names with the teacher's, in [0, 1].

    Modes:
    - `exact_set`: 1 when the student's set of names is non-empty and equals the teacher's;
    - `any_overlap`: 1 when the two sets share a name;
    - `f1`: F1 of the two name sets;
    - `multiset_f1`: F1 of the two name multisets (calling a tool twice when the teacher
      called it once costs precision);
    - `order`: longest common subsequence of the two sequences over the longer length.

    Empty lists: `exact_set` and `any_overlap` keep their literal definitions (an empty student
    list scores 0; the paper's presets gate an empty teacher list before this runs). For the
    flexible modes (`f1`, `multiset_f1`, `order`) making no call when the teacher made none is
    agreement: both empty scores 1.0, exactly one empty scores 0.0.

    >>> tool_name_score(["add", "add", "mul"], ["add", "mul"], "multiset_f1")
    0.8
    >>> tool_name_score(["mul", "add"], ["add", "mul"], "order")
    0.5
    """
    if mode == "exact_set":
        return 1.0 if student and set(student) == set(teacher) else 0.0
    if mode == "any_overlap":
        return 1.0 if set(student) & set(teacher) else 0.0
    if mode not in ("f1", "multiset_f1", "order"):
        raise ScoringConfigError(f"unknown tool-name mode {mode!r}; known: {', '.join(TOOL_NAME_MODES)}", param="mode")
    if not student and not teacher:
        return 1.0
    if not student or not teacher:
        return 0.0
    if mode == "f1":
        s, t = set(student), set(teacher)
        return 2.0 * len(s & t) / (len(s) + len(t))
    if mode == "multiset_f1":
        common = sum((Counter(student) & Counter(teacher)).values())
        return 2.0 * common / (len(student) + len(teacher))
    return _lcs_length(student, teacher) / max(len(student), len(teacher))


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of a longest common subsequence, bit-parallel (Allison–Dix / Hyyrö).

    One Python integer holds a row of the dynamic programme as bits (a 0 bit marks a step of
    the LCS), so each element of `a` costs a few big-integer operations on len(b) bits:
    O(len(a)·len(b)/64) machine work instead of a pure-Python double loop.
    """
    full = (1 << len(b)) - 1
    positions: dict[str, int] = {}
    for j, y in enumerate(b):
        positions[y] = positions.get(y, 0) | (1 << j)
    row = full
    for x in a:
        matches = positions.get(x)
        if matches:
            u = row & matches
            row = ((row + u) | (row - u)) & full
    return len(b) - row.bit_count()


# ---------------------------------------------------------------------------- calls
def _check_reference_arguments(ref: ReferenceCall, possible_answers: bool) -> None:
    if not isinstance(ref.arguments, dict):
        raise ScoringConfigError(f"reference call {ref.name!r}: arguments must be an object", param="arguments")
    if possible_answers:
        for key, acceptable in ref.arguments.items():
            if not isinstance(acceptable, list) or not acceptable:
                raise ScoringConfigError(
                    f"reference call {ref.name!r}: with possible answers, argument {key!r} must be a "
                    f"non-empty list of acceptable values, got {acceptable!r}",
                    param=f"arguments.{key}",
                )


def _argument_similarity(
    student: Mapping[str, Any], ref: ReferenceCall, possible_answers: bool, options: ValueMatchOptions
) -> float:
    expected: list[str] = []
    for key, value in ref.arguments.items():
        # An optional parameter the student left out is neither expected nor missing.
        if key in student or not (possible_answers and _is_optional(value)):
            expected.append(key)
    extra = [key for key in student if key not in ref.arguments]
    union = len(expected) + len(extra)
    if union == 0:
        return 1.0
    shared = sum(1 for key in expected if key in student)
    key_score = shared / union
    if expected:
        if possible_answers:
            values = [_best_acceptable(student.get(k, MISSING), ref.arguments[k], options, 0) for k in expected]
        else:
            values = [_similarity(student[k], ref.arguments[k], options, 0) if k in student else 0.0 for k in expected]
        value_score = sum(values) / len(values)
    else:
        value_score = 1.0
    return options.key_weight * key_score + (1.0 - options.key_weight) * value_score


def call_similarity(
    student: ToolCall,
    ref: ReferenceCall,
    *,
    possible_answers: bool = False,
    options: ValueMatchOptions = _DEFAULT,
) -> float:
    """Similarity of one student call to one reference call, in [0, 1].

    A malformed call scores 0. A different name scores 0 unless `name_mismatch_credit` is set.
    Otherwise: `key_weight` × (shared keys / (expected ∪ given keys)) + (1 − `key_weight`) ×
    mean value similarity over the expected keys (a missing required key counts 0). With
    `possible_answers`, reference values are acceptable-value lists and an optional parameter
    the student left out is not expected. 1.0 exactly when the call is right under the rules.
    Raises `ScoringConfigError` when the reference is not in the declared form.
    """
    _check_reference_arguments(ref, possible_answers)
    if not student.is_valid or not isinstance(student.arguments, dict):
        return 0.0
    factor = 1.0 if student.name == ref.name else options.name_mismatch_credit
    if factor == 0.0:
        return 0.0
    return factor * _argument_similarity(student.arguments, ref, possible_answers, options)


# ---------------------------------------------------------------------------- trace scores
def arguments_score(
    student_calls: Sequence[ToolCall],
    ref_calls: Sequence[ReferenceCall],
    *,
    possible_answers: bool = False,
    options: ValueMatchOptions = _DEFAULT,
) -> tuple[float, str]:
    """Optimally paired call similarity, over max(#valid student calls, #reference calls).

    Malformed student calls are left out (the format component scores them); an extra or a
    missing call costs one share of the denominator. No reference call and no student call
    scores 1.0; calls where none were expected score 0.0.

    >>> ref = [ReferenceCall("add", {"a": 1, "b": 2})]
    >>> arguments_score([ToolCall("add", {"a": 1, "b": 2})], ref)
    (1.0, '1/1 calls paired, mean arg sim 1.00')
    """
    valid = [c for c in student_calls if c.is_valid]
    for ref in ref_calls:
        _check_reference_arguments(ref, possible_answers)
    if not ref_calls:
        if not valid:
            return 1.0, "no calls expected, none made"
        return 0.0, f"no calls expected, {len(valid)} made"
    if not valid:
        return 0.0, f"0/{len(ref_calls)} calls paired (no valid student call)"

    def similarity(i: int, j: int) -> float:
        student, ref = valid[i], ref_calls[j]
        if not isinstance(student.arguments, dict):
            return 0.0
        factor = 1.0 if student.name == ref.name else options.name_mismatch_credit
        if factor == 0.0:
            return 0.0
        return factor * _argument_similarity(student.arguments, ref, possible_answers, options)

    def keys(name: str | None, arguments: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        # Tier 0: same name and equal arguments (BFCL rules, no tolerance); tier 1: same name.
        try:
            exact: tuple[Any, ...] = ((name, _canonical(arguments)),)
        except RecursionError:
            exact = ()
        return exact, (name,)

    pairing = pair_bounded(
        len(valid),
        len(ref_calls),
        similarity,
        lambda i: keys(valid[i].name, valid[i].arguments),
        lambda j: keys(ref_calls[j].name, ref_calls[j].arguments),
        key_name="tool name",
    )
    pairs = [weight for _i, _j, weight in pairing.pairs if weight > 0.0]
    total = sum(pairs)
    score = min(1.0, total / max(len(valid), len(ref_calls)))
    mean = total / len(pairs) if pairs else 0.0
    reason = f"{len(pairs)}/{len(ref_calls)} calls paired, mean arg sim {mean:.2f}"
    if len(valid) > len(ref_calls):
        reason += f", {len(valid) - len(ref_calls)} extra"
    if pairing.note:
        reason += f"; {pairing.note}"
    return score, reason


def _result_candidates(value: Any) -> list[Any]:
    candidates = [value.strip() if isinstance(value, str) else value]
    if isinstance(value, str):
        with contextlib.suppress(ValueError, RecursionError):
            candidates.append(json.loads(value))
    return candidates


def result_matches(student_result: str, reference_result: JSONValue, options: ValueMatchOptions = _DEFAULT) -> bool:
    """Whether a student's tool result (text from the rollout) equals a teacher's result.

    Both sides are also read as JSON when they parse (`"5"`, `"[1, 2]"`); numbers compare
    within tolerance, strings after normalisation, structures value by value. Fuzzy credit and
    the coercion discount do not apply: a result either matches or not.

    >>> result_matches(" 5.0 ", 5)
    True
    >>> result_matches('{"temp": 21}', {"temp": 21.0})
    True
    """
    exact = _exact_result_options(options)
    return any(
        _similarity(s, r, exact, 0) == 1.0
        for s in _result_candidates(student_result)
        for r in _result_candidates(reference_result)
    )


def _exact_result_options(options: ValueMatchOptions) -> ValueMatchOptions:
    if not options.fuzzy and options.coercion_credit == 1.0 and options.float_for_int_credit == 1.0:
        return options
    return ValueMatchOptions(
        rel_tol=options.rel_tol,
        abs_tol=options.abs_tol,
        normalize_strings=options.normalize_strings,
        fuzzy=False,
        coercion_credit=1.0,
        float_for_int_credit=1.0,
        unordered_lists=options.unordered_lists,
        max_depth=options.max_depth,
    )


def results_score(
    student_calls: Sequence[ToolCall],
    ref_calls: Sequence[ReferenceCall],
    *,
    options: ValueMatchOptions = _DEFAULT,
) -> tuple[float | None, str]:
    """Share of the teacher's known results that some student call reproduced.

    Flexible alignment by outcome: a student call earns credit for a teacher call when their
    results match (`result_matches`), whatever the arguments, order or (unless
    `results_same_name`) tool. Each student result counts for at most one teacher call
    (optimal pairing). A teacher result of None means unknown; with none known the score is
    None (not applicable).

    >>> ref = [ReferenceCall("add", {"a": 2, "b": 3}, result=5)]
    >>> results_score([ToolCall("add", {"a": 3, "b": 2}, result="5")], ref)
    (1.0, '1/1 teacher results reproduced')
    """
    known = [r for r in ref_calls if r.result is not None]
    if not known:
        return None, "no teacher result known"
    produced = [c for c in student_calls if c.result is not None]
    if not produced:
        return 0.0, f"0/{len(known)} teacher results reproduced (no student results)"
    exact = _exact_result_options(options)
    # Each result is read (as JSON too) once, not once per pair.
    produced_readings = [_result_candidates(c.result or "") for c in produced]
    known_readings = [_result_candidates(r.result) for r in known]
    same_name = options.results_same_name

    def reproduced(i: int, j: int) -> float:
        if same_name and produced[i].name != known[j].name:
            return 0.0
        found = any(_similarity(s, r, exact, 0) == 1.0 for s in produced_readings[i] for r in known_readings[j])
        return 1.0 if found else 0.0

    def keys(readings: list[Any], name: str | None) -> list[Any]:
        # Above the similarity-matrix cap, results pair when a reading has the same canonical form.
        out: list[Any] = []
        for value in readings:
            with contextlib.suppress(RecursionError):
                out.append((name, _canonical(value)) if same_name else _canonical(value))
        return out

    pairing = pair_bounded(
        len(produced),
        len(known),
        reproduced,
        lambda i: (keys(produced_readings[i], produced[i].name),),
        lambda j: (keys(known_readings[j], known[j].name),),
        what="results",
        key_name="canonical value",
    )
    matched = sum(1 for _i, _j, weight in pairing.pairs if weight == 1.0)
    reason = f"{matched}/{len(known)} teacher results reproduced"
    return matched / len(known), reason + (f"; {pairing.note}" if pairing.note else "")


def strict_sequence_match(
    student_calls: Sequence[ToolCall],
    ref_calls: Sequence[ReferenceCall],
    options: ValueMatchOptions = _DEFAULT,
    *,
    possible_answers: bool = False,
) -> float:
    """The paper's strict trajectory matching: 1.0 iff the same calls in the same order.

    Same length, same names position by position, the same argument keys (with
    `possible_answers`, optional parameters may be left out) and every value equal under
    `value_similarity` (or `acceptable_value_score`) == 1. A malformed call fails the match.
    """
    if len(student_calls) != len(ref_calls):
        return 0.0
    for student, ref in zip(student_calls, ref_calls, strict=True):
        _check_reference_arguments(ref, possible_answers)
        if not student.is_valid or student.name != ref.name or not isinstance(student.arguments, dict):
            return 0.0
        args = student.arguments
        if any(key not in ref.arguments for key in args):
            return 0.0
        for key, expected in ref.arguments.items():
            if possible_answers:
                if _best_acceptable(args.get(key, MISSING), expected, options, 0) != 1.0:
                    return 0.0
            elif key not in args or _similarity(args[key], expected, options, 0) != 1.0:
                return 0.0
    return 1.0


# ---------------------------------------------------------------------------- ToolRL
def _toolrl_jaccard(a: Sequence[Any], b: Sequence[Any]) -> float:
    # ToolRL's match score: equal lists (order included) score 1, else multiset Jaccard.
    if list(a) == list(b):
        return 1.0
    if not a or not b:
        return 0.0
    common = sum((Counter(a) & Counter(b)).values())
    return common / (len(a) + len(b) - common)


def toolrl_correctness(student_calls: Sequence[ToolCall], ref_calls: Sequence[ReferenceCall]) -> float:
    """ToolRL's correctness reward (Qian et al. 2025, arXiv 2504.13958), in [-3, 3].

    - No gold call: 0. A malformed student call, or no student call at all (ToolRL finds no
      `<tool_call>` tag): -3. The same list of calls (names and arguments, in order, plain
      `==`): +3.
    - Otherwise S = Jaccard(gold names, predicted names as multisets) + Σ over gold calls, in
      gold order, of the best unused prediction with the same name by [Jaccard(param keys) +
      number of gold params whose value is `==`]; S_max = 1 + Σ (1 + #gold params);
      correctness = 6·S/S_max − 3. Pairing is greedy and values use Python's `==` (so 5 == 5.0
      and True == 1, while "5" != 5), as in ToolRL.

    >>> toolrl_correctness([ToolCall("add", {"a": 1, "b": 3})], [ReferenceCall("add", {"a": 1, "b": 2})])
    1.5
    """
    if not ref_calls:
        return 0.0
    if not student_calls or any(not c.is_valid for c in student_calls):
        return -3.0
    gold = [(r.name, r.arguments) for r in ref_calls]
    predicted = [(c.name, c.arguments) for c in student_calls]
    if gold == predicted:
        return 3.0
    score = _toolrl_jaccard([name for name, _ in gold], [name for name, _ in predicted])
    best_possible = 1.0
    used: set[int] = set()
    # Only predictions with the gold call's name can match it: look those up, in order.
    by_name: dict[str | None, list[int]] = {}
    for index, (p_name, _params) in enumerate(predicted):
        by_name.setdefault(p_name, []).append(index)
    for name, params in gold:
        best_possible += 1.0 + len(params)
        best, best_index = 0.0, -1
        gold_keys = list(params)
        for index in by_name.get(name, ()):
            if index in used:
                continue
            p_params = predicted[index][1]
            match = _toolrl_jaccard(gold_keys, list(p_params)) + sum(
                1.0 for key, value in params.items() if key in p_params and p_params[key] == value
            )
            if match > best:
                best, best_index = match, index
        if best_index >= 0:
            used.add(best_index)
            score += best
    return 6.0 * score / best_possible - 3.0


def toolrl_to_unit(correctness: float) -> float:
    """Map ToolRL's correctness from [-3, 3] onto [0, 1]: (c + 3) / 6."""
    return (correctness + 3.0) / 6.0
