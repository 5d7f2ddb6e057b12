"""`AnswerJudge`: prepared gold answers, cheapest check first, cached verdicts (see the package
docstring for the order of the checks and the time limit)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, Generic, TypeVar

from mentor_server.scoring.qa import qa_scores
from mentor_server.scoring.types import ScoringConfigError

from .boxed import strip_boxed
from .numeric import (
    _LOOSE_SPACE,
    _NON_CONSTANT_LETTER,
    _PLAIN_WORDS,
    _TEXT_WRAPPER,
    _canonical,
    _Number,
    _parse_number,
    _round_half_even,
    _text_tokens,
)
from .symbolic import _DeadlineExceeded, _MathVerify, _time_limit, _too_complex

# "math": numeric/symbolic equivalence (the default); "qa_em" / "qa_f1": SQuAD exact match or
# token F1 for worded answers (see `mentor_server.scoring.qa`).
JUDGE_MODES: Final = ("math", "qa_em", "qa_f1")

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# The judge
# --------------------------------------------------------------------------------------------

_NOT_TRIED: Final = 0
_PARSED: Final = 1
_REJECTED: Final = 2


class _Answer:
    """One answer string, prepared once: canonical forms, number, and (lazily) text tokens and
    the math-verify parse. Gold answers are shared through the judge's LRU cache."""

    __slots__ = (
        "_tokens",
        "canonical",
        "compact",
        "number",
        "plain_words",
        "symbolic",
        "symbolic_note",
        "symbolic_state",
    )

    def __init__(self, raw: str) -> None:
        canonical = _canonical(strip_boxed(raw) if "box" in raw else raw)
        self.canonical = canonical
        self.compact = _LOOSE_SPACE.sub("", canonical) if " " in canonical else canonical
        self.number = _parse_number(canonical)
        self.plain_words = False
        if self.number is None:
            unwrapped = _TEXT_WRAPPER.sub(r"\1", canonical) if "\\" in canonical else canonical
            self.plain_words = (
                _PLAIN_WORDS.fullmatch(unwrapped.strip()) is not None
                and _NON_CONSTANT_LETTER.search(unwrapped) is not None
            )
        self._tokens: tuple[str, ...] | None = None
        self.symbolic: Any = None
        self.symbolic_state = _NOT_TRIED
        self.symbolic_note = ""

    @property
    def tokens(self) -> tuple[str, ...]:
        if self._tokens is None:
            self._tokens = _text_tokens(self.canonical) if any(c.isalpha() for c in self.canonical) else ()
        return self._tokens


@dataclass(frozen=True, slots=True)
class AnswerVerdict:
    """The judgement of one predicted answer.

    `method` names the check that decided: "exact", "numeric", "text", "symbolic", "qa_em",
    "qa_f1", or "no_answer" (empty prediction / no ground truth) and "error" (a bug, reported
    not raised).
    `reason` is a short human-readable explanation; it is "timeout" when the time limit hit.
    `error` is set when the judge could not decide: "judge_timeout" (the time limit hit) or
    "judge_error" (an exception inside judging). Such a verdict is not a "wrong answer": the
    engine reports the item as an error instead of scoring it.
    `score` is the QA modes' metric against the best acceptable answer (exact match as 0/1, or
    token F1 in [0, 1]); None in "math" mode, where `correct` is the whole verdict.
    """

    correct: bool
    method: str
    reason: str
    error: str | None = None
    score: float | None = None


_K = TypeVar("_K")
_V = TypeVar("_V")


class _LRU(Generic[_K, _V]):
    """A small thread-safe LRU map (size 0 disables it)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        if self._size == 0:
            return None
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: _K, value: _V) -> None:
        if self._size == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            if len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def _check_number(name: str, value: object, *, minimum: float, exclusive: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= minimum if exclusive else value < minimum):  # type: ignore[operator]
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        raise ScoringConfigError(f"{name} must be a finite number {bound}, got {value!r}", param=name)


def _check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < minimum or (maximum is not None and value > maximum):  # type: ignore[operator]
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ScoringConfigError(f"{name} must be an integer {bound}, got {value!r}", param=name)


_MATH_DEFAULTS: Final[dict[str, Any]] = {
    "rel_tol": 0.0,
    "abs_tol": 0.0,
    "float_rounding": 6,
    "use_math_verify": True,
    "timeout_s": 2.0,
    "cache_size": 4096,
    "max_symbolic_chars": 1000,
}


class AnswerJudge:
    """Judges predicted answers against lists of acceptable ground truths; never raises.

    Args:
        rel_tol, abs_tol: extra numeric tolerance between two numbers (0 = exact values).
        float_rounding: decimal places at which a decimal answer is compared with a value
            (math-verify's rule, so 0.333333 = 1/3); None compares decimals exactly.
        use_math_verify: run the symbolic check when the fast paths cannot decide.
        timeout_s: time limit per `judge` call; the symbolic check stops there ("timeout").
        cache_size: entries of the gold-answer cache and of the verdict cache (0 disables).
        max_symbolic_chars: longer answers skip the symbolic check.
        mode: "math" (the checks above), or "qa_em" / "qa_f1": SQuAD-normalised exact match or
            token F1 against the best acceptable answer, for worded (retrieval QA) answers. The
            options above belong to "math" and are refused in the QA modes.
        f1_threshold: in "qa_f1", the F1 at or above which an answer counts as correct
            (default 1.0: the same bag of words); refused in the other modes.

    Example:
        >>> judge = AnswerJudge()
        >>> judge.judge("0.5", [r"\\frac{1}{2}"]).correct
        True
        >>> judge.judge("5", ["five"]).correct
        False
    """

    def __init__(
        self,
        *,
        rel_tol: float = 0.0,
        abs_tol: float = 0.0,
        float_rounding: int | None = 6,
        use_math_verify: bool = True,
        timeout_s: float = 2.0,
        cache_size: int = 4096,
        max_symbolic_chars: int = 1000,
        mode: str = "math",
        f1_threshold: float | None = None,
    ) -> None:
        math_options = {
            "rel_tol": rel_tol,
            "abs_tol": abs_tol,
            "float_rounding": float_rounding,
            "use_math_verify": use_math_verify,
            "timeout_s": timeout_s,
            "cache_size": cache_size,
            "max_symbolic_chars": max_symbolic_chars,
        }
        if mode != "math":  # defaults cannot be told from absent options: check the changed ones
            math_options = {k: v for k, v in math_options.items() if v != _MATH_DEFAULTS[k]}
        self.check_options(mode=mode, f1_threshold=f1_threshold, **math_options)
        self.mode = mode
        self.f1_threshold = 1.0 if f1_threshold is None else float(f1_threshold)
        self._f1_threshold_option = f1_threshold
        self.rel_tol = float(rel_tol)
        self.abs_tol = float(abs_tol)
        self.float_rounding = float_rounding
        self.use_math_verify = use_math_verify
        self.timeout_s = float(timeout_s)
        self.cache_size = cache_size
        self.max_symbolic_chars = max_symbolic_chars
        self._rel = Fraction(self.rel_tol)
        self._abs = Fraction(self.abs_tol)
        self._golds: _LRU[str, _Answer] = _LRU(cache_size)
        self._verdicts: _LRU[tuple[str, str], AnswerVerdict] = _LRU(cache_size * 4)

    @staticmethod
    def check_options(**options: Any) -> None:
        """Check judge options as they arrive from a JSON reward spec (types as well as ranges),
        without building a judge; a mistake is a ScoringConfigError naming the option."""
        known = (*_MATH_DEFAULTS, "mode", "f1_threshold")
        for name in options:
            if name not in known:
                raise ScoringConfigError(f"unknown judge option {name!r}; known: {', '.join(known)}", param=name)
        mode = options.get("mode", "math")
        if mode not in JUDGE_MODES:
            raise ScoringConfigError(f"mode must be one of {', '.join(JUDGE_MODES)}; got {mode!r}", param="mode")
        if mode != "math":
            # An option the QA metrics never read would be silently ignored: refuse it instead.
            for name in options:
                if name in _MATH_DEFAULTS:
                    raise ScoringConfigError(f"{name} applies to mode 'math' only, not {mode!r}", param=name)
        if options.get("f1_threshold") is not None:
            if mode != "qa_f1":
                raise ScoringConfigError(
                    f"f1_threshold applies to mode 'qa_f1' only, not {mode!r}", param="f1_threshold"
                )
            value = options["f1_threshold"]
            _check_number("f1_threshold", value, minimum=0.0, exclusive=True)
            if value > 1:
                raise ScoringConfigError(f"f1_threshold must be at most 1, got {value!r}", param="f1_threshold")
        if "rel_tol" in options:
            _check_number("rel_tol", options["rel_tol"], minimum=0.0)
        if "abs_tol" in options:
            _check_number("abs_tol", options["abs_tol"], minimum=0.0)
        if options.get("float_rounding") is not None:
            _check_int("float_rounding", options["float_rounding"], minimum=0, maximum=30)
        if "use_math_verify" in options and not isinstance(options["use_math_verify"], bool):
            raise ScoringConfigError("use_math_verify must be true or false", param="use_math_verify")
        if "timeout_s" in options:
            _check_number("timeout_s", options["timeout_s"], minimum=0.0, exclusive=True)
        if "cache_size" in options:
            _check_int("cache_size", options["cache_size"], minimum=0)
        if "max_symbolic_chars" in options:
            _check_int("max_symbolic_chars", options["max_symbolic_chars"], minimum=1)

    # Caches hold locks: pickle (for process pools) the options only.
    def __getstate__(self) -> dict[str, Any]:
        if self.mode != "math":  # the math options are refused there
            return {"mode": self.mode, "f1_threshold": self._f1_threshold_option}
        return {
            "rel_tol": self.rel_tol,
            "abs_tol": self.abs_tol,
            "float_rounding": self.float_rounding,
            "use_math_verify": self.use_math_verify,
            "timeout_s": self.timeout_s,
            "cache_size": self.cache_size,
            "max_symbolic_chars": self.max_symbolic_chars,
            "mode": self.mode,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.__getstate__().items())
        return f"AnswerJudge({options})"

    def warm_up(self) -> None:
        """Import and warm math-verify now (about half a second, once per process) rather than
        inside the first symbolic judgement; a service calls this at start-up."""
        if self.use_math_verify and self.mode == "math":
            _MathVerify.functions()

    def clear_caches(self) -> None:
        self._golds.clear()
        self._verdicts.clear()

    def judge(self, predicted: str, ground_truths: str | Sequence[str]) -> AnswerVerdict:
        """Is `predicted` equivalent to any of `ground_truths` (a `\\boxed{}` wrapper on either
        side is ignored)? An empty prediction is "no answer"; never raises."""
        try:
            if self.mode != "math":
                return self._judge_qa(predicted, ground_truths)
            return self._judge(predicted, ground_truths)
        except Exception as exc:  # a bug must not fail a training batch; it is reported instead
            logger.exception("answer judge failed")
            return AnswerVerdict(False, "error", f"judge error: {type(exc).__name__}: {exc}", "judge_error")

    # -- internals -------------------------------------------------------------------------

    def _judge(self, predicted: str, ground_truths: str | Sequence[str]) -> AnswerVerdict:
        started = time.monotonic()
        golds = [ground_truths] if isinstance(ground_truths, str) else list(ground_truths)
        golds = [g if isinstance(g, str) else str(g) for g in golds if g is not None]
        if not isinstance(predicted, str) or not predicted.strip():
            return AnswerVerdict(False, "no_answer", "empty answer")
        if not golds:
            return AnswerVerdict(False, "no_answer", "no acceptable answer given")
        pred: _Answer | None = None
        last: AnswerVerdict | None = None
        for gold_raw in golds:
            verdict = self._verdicts.get((predicted, gold_raw))
            if verdict is None:
                if pred is None:
                    pred = _Answer(predicted)
                    if not pred.canonical:
                        return AnswerVerdict(False, "no_answer", "empty answer")
                gold = self._gold(gold_raw)
                remaining = self.timeout_s - (time.monotonic() - started)
                verdict = self._compare(pred, gold, remaining)
                # A timeout on a budget shared with earlier golds is not the pair's own verdict.
                if verdict.error != "judge_timeout" or remaining >= 0.95 * self.timeout_s:
                    self._verdicts.put((predicted, gold_raw), verdict)
            if verdict.correct:
                return verdict
            # Report a failure to decide over a plain "no": the answer may have been right.
            if last is None or last.error is None:
                last = verdict
        assert last is not None
        return last

    def _judge_qa(self, predicted: str, ground_truths: str | Sequence[str]) -> AnswerVerdict:
        golds = [ground_truths] if isinstance(ground_truths, str) else list(ground_truths)
        golds = [g if isinstance(g, str) else str(g) for g in golds if g is not None]
        if not isinstance(predicted, str) or not predicted.strip():
            return AnswerVerdict(False, "no_answer", "empty answer", score=0.0)
        if not golds:
            return AnswerVerdict(False, "no_answer", "no acceptable answer given", score=0.0)
        # Linear in the text: no time limit or cache is needed (nor offered as an option).
        scores = qa_scores(predicted, golds)
        if self.mode == "qa_em":
            reason = "exact match after normalisation" if scores.exact_match else "no exact match after normalisation"
            return AnswerVerdict(scores.exact_match, "qa_em", reason, score=1.0 if scores.exact_match else 0.0)
        correct = scores.f1 >= self.f1_threshold
        reason = f"token F1 {scores.f1:.3g} ({'>=' if correct else '<'} {self.f1_threshold:g})"
        return AnswerVerdict(correct, "qa_f1", reason, score=scores.f1)

    def _gold(self, raw: str) -> _Answer:
        gold = self._golds.get(raw)
        if gold is None:
            gold = _Answer(raw)
            self._golds.put(raw, gold)
        return gold

    def _compare(self, pred: _Answer, gold: _Answer, budget_s: float) -> AnswerVerdict:
        if not gold.canonical:
            return AnswerVerdict(False, "exact", "empty ground truth")
        if pred.compact == gold.compact:
            return AnswerVerdict(True, "exact", "same normalised string")
        if pred.number is not None and gold.number is not None:
            if self._numbers_equal(pred.number, gold.number):
                return AnswerVerdict(True, "numeric", "equal numbers")
            return AnswerVerdict(False, "numeric", "different numbers")
        if (pred.number is not None and gold.plain_words) or (gold.number is not None and pred.plain_words):
            return AnswerVerdict(False, "numeric", "a number against words")
        if pred.tokens and pred.tokens == gold.tokens:
            return AnswerVerdict(True, "text", "same normalised text")
        if not self.use_math_verify:
            return AnswerVerdict(False, "text", "not equivalent")
        return self._symbolic(pred, gold, budget_s)

    def _numbers_equal(self, a: _Number, b: _Number) -> bool:
        a_values = ((a.num, a.den), (a.num, a.den * 100)) if a.is_percent else ((a.num, a.den),)
        b_values = ((b.num, b.den), (b.num, b.den * 100)) if b.is_percent else ((b.num, b.den),)
        places = self.float_rounding if a.is_decimal or b.is_decimal else None
        for x_num, x_den in a_values:
            for y_num, y_den in b_values:
                if x_num * y_den == y_num * x_den:
                    return True
                if places is not None and _round_half_even(x_num, x_den, places) == _round_half_even(
                    y_num, y_den, places
                ):
                    return True
                if self._rel or self._abs:
                    x, y = Fraction(x_num, x_den), Fraction(y_num, y_den)
                    if abs(x - y) <= max(self._rel * max(abs(x), abs(y)), self._abs):
                        return True
        return False

    def _symbolic(self, pred: _Answer, gold: _Answer, budget_s: float) -> AnswerVerdict:
        if budget_s <= 0:
            return AnswerVerdict(False, "symbolic", "timeout", "judge_timeout")
        parse, verify = _MathVerify.functions()
        until = time.monotonic() + budget_s
        for answer in (gold, pred):
            if answer.symbolic_state == _NOT_TRIED:
                note = _too_complex(answer.canonical, self.max_symbolic_chars)
                if note is not None:
                    answer.symbolic_state, answer.symbolic_note = _REJECTED, note
                    continue
                try:
                    with _time_limit(until):
                        parsed = parse(f"\\boxed{{{answer.canonical}}}", parsing_timeout=None)
                except _DeadlineExceeded:
                    if budget_s >= 0.95 * self.timeout_s:
                        # It had the whole budget: do not retry it for every rollout of the gold.
                        answer.symbolic_state, answer.symbolic_note = _REJECTED, "timeout"
                    return AnswerVerdict(False, "symbolic", "timeout", "judge_timeout")
                except Exception:  # math-verify catches its own errors; this is belt and braces
                    parsed = []
                answer.symbolic, answer.symbolic_state = parsed, _PARSED
        for side, answer in (("answer", pred), ("ground truth", gold)):
            if answer.symbolic_state == _REJECTED:
                if answer.symbolic_note == "timeout":
                    return AnswerVerdict(False, "symbolic", "timeout", "judge_timeout")
                return AnswerVerdict(False, "symbolic", f"{side} too complex to check: {answer.symbolic_note}")
            if not answer.symbolic:
                return AnswerVerdict(False, "symbolic", f"{side} could not be parsed")
        try:
            with _time_limit(until):
                equal = bool(
                    verify(
                        gold.symbolic,
                        pred.symbolic,
                        float_rounding=self.float_rounding if self.float_rounding is not None else 15,
                        timeout_seconds=None,
                    )
                )
        except _DeadlineExceeded:
            return AnswerVerdict(False, "symbolic", "timeout", "judge_timeout")
        except Exception:
            equal = False
        if equal:
            return AnswerVerdict(True, "symbolic", "equivalent (math-verify)")
        return AnswerVerdict(False, "symbolic", "not equivalent")
