"""Tool-call matching: how close a student's calls are to a teacher's, as pure functions.

Everything here is pure (no I/O, no global state) and sized for real traces (1–8 calls), so it
runs per rollout without caching. Values are compared type-aware (a bool is not an int, an int
stands for a float, `"5"` against `5` earns only partial credit by default), numbers within a
tolerance, strings after BFCL's normalisation and, failing equality, by a thresholded fuzzy
ratio that never reaches full credit. Reference arguments may be BFCL *acceptable-value lists*
(`{"unit": ["celsius", ""]}`, where `""` marks the parameter optional). Calls are paired by a
maximum-weight assignment (Hungarian algorithm, pure Python) rather than greedily, so a student
is never scored against the wrong teacher call because of call order.

Bounds (see `pairing`): calls are paired optimally while both sides have at most
`OPTIMAL_PAIRING_MAX_CALLS` (64) calls; above that greedily by similarity while at most
`MAX_SIMILARITY_PAIRS` (16,384) similarities are needed; beyond, in order by tool name, calls
with equal arguments first (results: by canonical value). The reason says which rule ran.
Fuzzy string credit is skipped for pairs of strings longer than `FUZZY_MAX_CELLS` together (its
cost is the product of the lengths), and the `order` tool-name mode counts a longest common
subsequence with bit-parallel integers (O(n·m/word size)). Beside the flexible
scores, the module reproduces two baselines exactly: the MENTOR paper's strict trajectory
match and ToolRL's correctness reward. Bad options raise `ScoringConfigError` naming the field;
malformed student calls are scored (as zero), never raised.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Final

from .pairing import MAX_SIMILARITY_PAIRS, OPTIMAL_PAIRING_MAX_CALLS, greedy_pairing, optimal_pairing, pair_bounded
from .types import JSONValue, ReferenceCall, ScoringConfigError, ToolCall

__all__ = [
    "MAX_SIMILARITY_PAIRS",
    "MISSING",
    "OPTIMAL_PAIRING_MAX_CALLS",
    "TOOL_NAME_MODES",
    "ValueMatchOptions",
    "acceptable_value_score",
    "arguments_score",
    "call_similarity",
    "greedy_pairing",
    "optimal_pairing",
    "result_matches",
    "results_score",
    "standardize_string",
    "strict_sequence_match",
    "tool_name_score",
    "toolrl_correctness",
    "toolrl_to_unit",
    "value_similarity",
]


class _Missing(enum.Enum):
    """Marks a parameter the student did not pass (distinct from an explicit `null`)."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing.MISSING

TOOL_NAME_MODES: Final[tuple[str, ...]] = ("exact_set", "any_overlap", "f1", "multiset_f1", "order")


# ---------------------------------------------------------------------------- options
@dataclass(frozen=True, slots=True)
class ValueMatchOptions:
    """How values, calls and results are compared. Validated on construction.

    Value level:
    - `rel_tol`, `abs_tol`: numeric tolerance (`math.isclose`) used when either number is a
      float; two ints must be equal (an id off by one is wrong whatever its size).
    - `normalize_strings`: BFCL's rule before string equality (drop spaces and `,./-_*^`,
      lower-case, `'` -> `"`).
    - `fuzzy`, `fuzzy_threshold`, `fuzzy_weight`: partial credit for unequal strings:
      `fuzzy_weight * ratio` when the rapidfuzz ratio (0–1) reaches the threshold, else 0.
      Unequal strings never reach full credit.
    - `coercion_credit`: credit when two values agree only after reading a string as a number or
      a boolean (`"5"` vs `5`, `"true"` vs `True`); 1.0 treats them as equal, 0.0 as different.
    - `float_for_int_credit`: credit when the reference is an int and the student wrote an
      equal float (`5.0` for `5`); BFCL's type check gives 0, the default 1.0 keeps the
      comparison symmetric. An int for a float always earns full credit.
    - `unordered_lists`: compare lists as multisets (optimal pairing of elements); BFCL and
      the default compare them in order.
    - `max_depth`: nesting beyond this depth is compared with plain equality (guards
      pathological inputs).

    Call level:
    - `key_weight`: share of a call's similarity given to key agreement (shared keys over the
      union of expected and given keys); the rest is the mean value similarity over the
      expected keys.
    - `name_mismatch_credit`: factor applied to the argument similarity of a call whose name
      differs from the reference call (0: a wrong name scores 0).

    Result level:
    - `results_same_name`: in `results_score`, a result only counts for a student call with the
      same tool name as the teacher call (off by default: a different route to the same result
      is exactly what flexible alignment rewards).
    """

    rel_tol: float = 1e-9
    abs_tol: float = 1e-12
    normalize_strings: bool = True
    fuzzy: bool = True
    fuzzy_threshold: float = 0.8
    fuzzy_weight: float = 0.9
    coercion_credit: float = 0.5
    float_for_int_credit: float = 1.0
    unordered_lists: bool = False
    max_depth: int = 32
    key_weight: float = 0.25
    name_mismatch_credit: float = 0.0
    results_same_name: bool = False

    def __post_init__(self) -> None:
        for name, (kind, low, high) in _OPTION_RULES.items():
            _check_option(name, getattr(self, name), kind, low, high)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValueMatchOptions:
        """Build options from a plain dict; an unknown key or a bad value names the key.

        >>> ValueMatchOptions.from_dict({"coercion_credit": 1.0}).coercion_credit
        1.0
        """
        if not isinstance(data, Mapping):
            raise ScoringConfigError("match options must be an object", param=None)
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ScoringConfigError(
                    f"unknown match option {key!r}; known: {', '.join(sorted(known))}", param=str(key)
                )
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_OPTION_RULES: Final[dict[str, tuple[type, float | None, float | None]]] = {
    "rel_tol": (float, 0.0, None),
    "abs_tol": (float, 0.0, None),
    "normalize_strings": (bool, None, None),
    "fuzzy": (bool, None, None),
    "fuzzy_threshold": (float, 0.0, 1.0),
    "fuzzy_weight": (float, 0.0, 1.0),
    "coercion_credit": (float, 0.0, 1.0),
    "float_for_int_credit": (float, 0.0, 1.0),
    "unordered_lists": (bool, None, None),
    "max_depth": (int, 1, 1000),
    "key_weight": (float, 0.0, 1.0),
    "name_mismatch_credit": (float, 0.0, 1.0),
    "results_same_name": (bool, None, None),
}


def _check_option(name: str, value: object, kind: type, low: float | None, high: float | None) -> None:
    if kind is bool:
        if not isinstance(value, bool):
            raise ScoringConfigError(f"{name} must be true or false, got {value!r}", param=name)
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScoringConfigError(f"{name} must be a number, got {value!r}", param=name)
    if kind is int and not isinstance(value, int):
        raise ScoringConfigError(f"{name} must be an integer, got {value!r}", param=name)
    if not math.isfinite(value):
        raise ScoringConfigError(f"{name} must be finite, got {value!r}", param=name)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ScoringConfigError(f"{name} must be in {bounds}, got {value!r}", param=name)


_DEFAULT: Final = ValueMatchOptions()


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


# ---------------------------------------------------------------------------- values
_BFCL_STRIP = re.compile(r"[ ,./\-_*^]")
_BELOW_ONE: Final = math.nextafter(1.0, 0.0)
_TRUE_WORDS: Final = frozenset({"true", "yes"})
_FALSE_WORDS: Final = frozenset({"false", "no"})
# Above this many element pairs an unordered list comparison stops pairing elements
# optimally (cubic) and counts exact multiset agreement instead (linear).
_PAIRING_LIMIT: Final = 1024
FUZZY_MAX_CELLS: Final = 1 << 26
"""Fuzzy credit is computed only when len(student) x len(reference) is at most this (e.g. two
8,192-character strings, ~3 ms); rapidfuzz's cost is that product, so two 1 MB strings took
~35 s. Longer unequal strings get no fuzzy credit."""


def standardize_string(text: str) -> str:
    """BFCL's string normalisation: drop spaces and `,./-_*^`, lower-case, `'` -> `"`.

    >>> standardize_string("April 1, 2024")
    'april12024'
    """
    return _BFCL_STRIP.sub("", text).lower().replace("'", '"')


@lru_cache(maxsize=1)
def _fuzz_ratio() -> Callable[[str, str], float]:
    try:
        from rapidfuzz import fuzz
    except ImportError as exc:  # pragma: no cover - rapidfuzz is a declared server dependency
        raise ImportError(
            "fuzzy string matching needs rapidfuzz: pip install 'mentor-reward[server]' "
            "(or set the match option fuzzy=false)"
        ) from exc
    ratio: Callable[[str, str], float] = fuzz.ratio
    return ratio


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numbers_equal(student: float, reference: float, options: ValueMatchOptions) -> float:
    """Credit for two numbers: ints must be equal, a float on either side allows tolerance."""
    if isinstance(student, int) and isinstance(reference, int):
        return 1.0 if student == reference else 0.0
    try:
        close = math.isclose(student, reference, rel_tol=options.rel_tol, abs_tol=options.abs_tol)
    except OverflowError:  # an int too large for a float
        close = False
    if not close:
        return 0.0
    if isinstance(reference, int) and isinstance(student, float):
        return options.float_for_int_credit
    return 1.0


def _parse_number(text: str) -> int | float | None:
    text = text.strip()
    if not text or len(text) > 64:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _parse_bool(text: str) -> bool | None:
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    return None


def _string_similarity(student: str, reference: str, options: ValueMatchOptions) -> float:
    if student == reference:
        return 1.0
    if options.normalize_strings:
        student, reference = standardize_string(student), standardize_string(reference)
        if student == reference:
            return 1.0
    if not options.fuzzy or not student or not reference or len(student) * len(reference) > FUZZY_MAX_CELLS:
        return 0.0
    ratio = _fuzz_ratio()(student, reference) / 100.0
    if ratio < options.fuzzy_threshold:
        return 0.0
    return min(options.fuzzy_weight * ratio, _BELOW_ONE)


def _coerced(student: Any, reference: Any, options: ValueMatchOptions) -> float:
    """Credit when a string on one side reads as the number/boolean on the other."""
    if isinstance(student, str) == isinstance(reference, str):
        return 0.0
    text, other = (student, reference) if isinstance(student, str) else (reference, student)
    if isinstance(other, bool):
        agrees = _parse_bool(text) is other
    elif _is_number(other):
        parsed = _parse_number(text)
        agrees = parsed is not None and _numbers_equal(parsed, other, options) >= 1.0
    else:
        agrees = False
    return options.coercion_credit if agrees else 0.0


def _list_similarity(
    student: Sequence[Any],
    reference: Sequence[Any],
    element: Callable[[Any, Any], float],
    options: ValueMatchOptions,
) -> float:
    if not student and not reference:
        return 1.0
    longest = max(len(student), len(reference))
    if not options.unordered_lists:
        return sum(element(s, r) for s, r in zip(student, reference, strict=False)) / longest
    if len(student) * len(reference) > _PAIRING_LIMIT:
        try:
            common = Counter(map(_canonical, student)) & Counter(map(_canonical, reference))
        except RecursionError:
            return 0.0
        return sum(common.values()) / longest
    matrix = [[element(s, r) for r in reference] for s in student]
    return sum(matrix[i][j] for i, j in optimal_pairing(matrix)) / longest


def _canonical(value: Any) -> Any:
    """A hashable form under which equal values (BFCL rules, no tolerance) coincide."""
    if isinstance(value, bool) or value is None:
        return ("b", value)
    if _is_number(value):
        try:
            return ("n", float(value))
        except OverflowError:  # an int past the float range equals no float: keep it exact
            return ("n", value)
    if isinstance(value, str):
        return ("s", standardize_string(value))
    if isinstance(value, list | tuple):
        return ("l", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("d", tuple(sorted((str(k), _canonical(v)) for k, v in value.items())))
    return ("o", repr(value))


def _dict_similarity(
    student: Mapping[str, Any], reference: Mapping[str, Any], options: ValueMatchOptions, depth: int
) -> float:
    keys = set(student) | set(reference)
    if not keys:
        return 1.0
    total = sum(
        _similarity(student[k], reference[k], options, depth + 1) for k in keys if k in student and k in reference
    )
    return total / len(keys)


def _plain_equal(student: Any, reference: Any) -> float:
    try:
        return 1.0 if type(student) is type(reference) and student == reference else 0.0
    except RecursionError:  # nesting deeper than Python compares: not a meaningful argument
        return 0.0


def _similarity(student: Any, reference: Any, options: ValueMatchOptions, depth: int) -> float:
    if depth > options.max_depth:
        return _plain_equal(student, reference)
    if isinstance(student, bool) or isinstance(reference, bool):
        if isinstance(student, bool) and isinstance(reference, bool):
            return 1.0 if student is reference else 0.0
        return _coerced(student, reference, options)
    if student is None or reference is None:
        return 1.0 if student is None and reference is None else 0.0
    if _is_number(student) and _is_number(reference):
        return _numbers_equal(student, reference, options)
    if isinstance(student, str) and isinstance(reference, str):
        return _string_similarity(student, reference, options)
    if isinstance(student, list | tuple) and isinstance(reference, list | tuple):
        return _list_similarity(student, reference, lambda s, r: _similarity(s, r, options, depth + 1), options)
    if isinstance(student, dict) and isinstance(reference, dict):
        return _dict_similarity(student, reference, options, depth)
    return _coerced(student, reference, options)


def value_similarity(student: JSONValue, reference: JSONValue, *, options: ValueMatchOptions = _DEFAULT) -> float:
    """Similarity of two JSON values in [0, 1]; 1.0 means equal under the options' rules.

    Lists are compared in order (or as multisets with `unordered_lists`), with missing or extra
    elements counting 0 over the longer length; dicts over the union of their keys.

    >>> value_similarity(5, 5.0)
    1.0
    >>> value_similarity(True, 1)
    0.0
    >>> value_similarity("5", 5)
    0.5
    >>> value_similarity("New York, NY", "new york ny")
    1.0
    >>> value_similarity([1, 2], [1, 2, 3])
    0.6666666666666666
    """
    return _similarity(student, reference, options, 0)


# ---------------------------------------------------------------------------- acceptable values
def _is_optional(acceptable: Sequence[Any]) -> bool:
    return any(isinstance(a, str) and a == "" for a in acceptable)


def _as_acceptable(value: Any) -> list[Any]:
    # Inside an acceptable value the nesting is BFCL's: a dict's values are acceptable lists.
    # A value that is not a list (or an empty list) is taken as the one acceptable value.
    return value if isinstance(value, list) and value else [value]


def _best_acceptable(student: Any, acceptable: Sequence[Any], options: ValueMatchOptions, depth: int) -> float:
    if student is MISSING:
        return 1.0 if _is_optional(acceptable) else 0.0
    best = 0.0
    for candidate in acceptable:
        best = max(best, _acceptable_similarity(student, candidate, options, depth))
        if best >= 1.0:
            break
    return best


def _acceptable_similarity(student: Any, candidate: Any, options: ValueMatchOptions, depth: int) -> float:
    """Similarity of a student value to one acceptable value written in BFCL's nested form."""
    if depth > options.max_depth:
        return _similarity(student, candidate, options, depth)
    if isinstance(candidate, dict):
        if not isinstance(student, dict):
            return 0.0
        considered = 0
        total = 0.0
        for key, alternatives in candidate.items():
            acceptable = _as_acceptable(alternatives)
            if key in student:
                considered += 1
                total += _best_acceptable(student[key], acceptable, options, depth + 1)
            elif not _is_optional(acceptable):
                considered += 1
        considered += sum(1 for key in student if key not in candidate)
        return 1.0 if considered == 0 else total / considered
    if isinstance(candidate, list) and any(isinstance(c, dict | list) for c in candidate):
        if not isinstance(student, list | tuple):
            return 0.0
        return _list_similarity(
            student, candidate, lambda s, c: _acceptable_similarity(s, c, options, depth + 1), options
        )
    return _similarity(student, candidate, options, depth)


def acceptable_value_score(
    student_value: JSONValue | _Missing, acceptable: list[JSONValue], options: ValueMatchOptions = _DEFAULT
) -> float:
    """Best similarity of a student value to any of the acceptable values (BFCL convention).

    `acceptable` lists the values the teacher accepts; `""` in it marks the parameter optional,
    so a missing value (`MISSING`) then scores 1.0 (and an explicit `""` matches too, as in
    BFCL). Nested dicts follow BFCL's form: inside an acceptable dict every value is itself an
    acceptable list (`{"unit": ["C", ""]}`); a nested value that is not a list is taken as the
    single acceptable value.

    >>> acceptable_value_score(MISSING, ["celsius", ""])
    1.0
    >>> acceptable_value_score("Celsius", ["celsius", ""])
    1.0
    >>> acceptable_value_score({"min": 3}, [{"min": [3], "max": ["", 9]}])
    1.0
    """
    if not isinstance(acceptable, list) or not acceptable:
        raise ScoringConfigError(f"acceptable values must be a non-empty list, got {acceptable!r}", param="acceptable")
    return _best_acceptable(student_value, acceptable, options, 0)


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
