"""Argument values: the options of value matching, type-aware similarity of two JSON values
(numbers within a tolerance, BFCL-normalised strings, thresholded fuzzy credit, lists and
dicts), and BFCL acceptable-value lists. Pure functions."""

from __future__ import annotations

import enum
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Final

from ..pairing import optimal_pairing
from ..types import JSONValue, ScoringConfigError


class _Missing(enum.Enum):
    """Marks a parameter the student did not pass (distinct from an explicit `null`)."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing.MISSING


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
