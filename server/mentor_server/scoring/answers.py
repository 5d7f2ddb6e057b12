"""Answer judging for the `outcome` component: is a predicted final answer one of the acceptable ones?

`extract_boxed` pulls the final answer (the last `\\boxed{}` / `\\fbox{}`) out of a completion and
`AnswerJudge.judge` compares it with a list of acceptable ground truths, cheapest check first:
(1) exact equality after a light LaTeX/whitespace normalisation; (2) a numeric fast path, which
decides every pair of plain numbers (integers, decimals, `a/b`, `\\frac{a}{b}`, `\\dfrac`,
scientific notation, thousands separators, percentages) with exact integer ratios and never
imports sympy; (3) a normalised text comparison for worded answers; (4) a symbolic check with HF
math-verify only when the fast paths cannot decide. Gold answers are prepared once and kept in an
LRU cache (the `num_generations` rollouts of a prompt share one gold), and verdicts are cached per
(prediction, gold) pair.

With `mode="qa_em"` or `"qa_f1"` the judge scores worded answers instead, with SQuAD's exact
match or token F1 (`mentor_server.scoring.qa`); the verdict then carries the metric as `score`.

Time limit. math-verify's own timeout uses `signal.alarm`: whole seconds only, it replaces the
process's SIGALRM handler, and off the main thread it raises `ValueError` (the reward service may
score in worker threads). We call it with its timeouts disabled and enforce the per-item limit
ourselves, in any thread: inputs whose evaluation could sit inside one uninterruptible C call
(power towers, huge exponents or factorials, very long digit runs, deep nesting, long strings)
never reach sympy, and the rest runs under a deadline that a watchdog thread enforces by raising
an exception in the judging thread (see `_time_limit`). A timed-out judgement is not a verdict:
it carries `error="judge_timeout"` (an exception inside judging, `"judge_error"`), and the engine
reports the item as an error rather than as a wrong answer. The caller's time limit covers one
`judge` call, all its ground truths together.

Parity with the MENTOR authors' judge (math-verify metric, math-verify parse/verify and mathruler,
any one saying equal): every one of the 150 public parity cases gets the authors' verdict (see the
tests). Where this judge deliberately differs, it is the more accurate one:
- their judge rejects `x+1` vs `1+x`. A bare string given to math-verify's `parse` is read as a
  plain expression (`1+x` gives `1`, `x+1` nothing); we hand it the answer as LaTeX
  (`\\boxed{...}`), so algebraically equal expressions are accepted;
- likewise `1e5` (bare-string parse: `1`) is 100000 here; `\\frac12`, `1{,}000` and `1\\,000`
  are numbers;
- escaped braces `\\{ \\}` do not count when matching the braces of `\\boxed{...}`, so
  `\\boxed{\\left\\{ x>1 \\right.}` is extracted whole, where a raw brace count finds no answer;
- a percentage `p%` equals `p` or `p/100` (math-verify accepts `9% = 9` only for integers,
  mathruler drops the sign); a decimal agrees with a value when both round to the same
  `float_rounding` (6) decimals, as in math-verify.
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
import logging
import math
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, Generic, NamedTuple, TypeVar

from mentor_server.scoring.qa import qa_scores
from mentor_server.scoring.types import ScoringConfigError

__all__ = ["JUDGE_MODES", "AnswerJudge", "AnswerVerdict", "extract_boxed", "strip_boxed"]

# "math": numeric/symbolic equivalence (the default); "qa_em" / "qa_f1": SQuAD exact match or
# token F1 for worded answers (see `mentor_server.scoring.qa`).
JUDGE_MODES: Final = ("math", "qa_em", "qa_f1")

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# \boxed{} extraction
# --------------------------------------------------------------------------------------------

_BOX_COMMANDS: Final = ("\\boxed", "\\fbox")
# A backslash escape (`\{`, `\}`, `\\`, `\frac`...) is consumed as a unit so escaped braces are
# not counted; every other match is a real brace.
_BRACE_SCAN = re.compile(r"\\.|[{}]", re.S)


def _closing_brace(text: str, open_at: int) -> int:
    """Index of the `}` matching the `{` at `open_at`, or -1 when the braces never balance."""
    depth = 0
    for m in _BRACE_SCAN.finditer(text, open_at):
        ch = m.group()
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return -1


def _box_at(text: str, start: int, command: str) -> tuple[int, int] | None:
    """(content start, closing brace) of the box command at `start`; (x, -1) when unbalanced;
    None when the command is not followed by `{` (a mention, or a longer command name)."""
    j = start + len(command)
    n = len(text)
    while j < n and text[j] in " \t\r\n":
        j += 1
    if j >= n or text[j] != "{":
        return None
    return j + 1, _closing_brace(text, j)


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`, `\\boxed {...}`) of `text`.

    The last box command followed by a brace decides: its content is returned when its braces
    balance (escaped `\\{`/`\\}` excluded), and None is returned when they never do (a broken
    final answer is no answer). A bare mention of `\\boxed` without a brace is skipped. Returns
    None when there is no box, and "" for an empty box (callers treat "" as no answer).

    Example:
        >>> extract_boxed(r"first \\boxed{1}, finally \\boxed{\\frac{1}{2}}.")
        '\\\\frac{1}{2}'
        >>> extract_boxed("no answer") is None
        True
    """
    # Each command's last occurrence is searched again only after it was skipped: re-searching
    # both on every skip made many bare mentions of one command quadratic (the other's search
    # ran over the whole prefix each time). Linear: every character is passed by each search once.
    at_boxed = text.rfind(_BOX_COMMANDS[0])
    at_fbox = text.rfind(_BOX_COMMANDS[1])
    while True:
        start = max(at_boxed, at_fbox)
        if start < 0:
            return None
        command = _BOX_COMMANDS[0] if start == at_boxed else _BOX_COMMANDS[1]
        box = _box_at(text, start, command)
        if box is not None:
            content_start, close = box
            return None if close < 0 else text[content_start:close]
        if start == at_boxed:
            at_boxed = text.rfind(_BOX_COMMANDS[0], 0, start)
        else:
            at_fbox = text.rfind(_BOX_COMMANDS[1], 0, start)


def strip_boxed(gt: str) -> str:
    """`gt` without a `\\boxed{...}` / `\\fbox{...}` wrapper around the whole of it (stripped).

    Example:
        >>> strip_boxed(r" \\boxed{12} ")
        '12'
        >>> strip_boxed(r"\\boxed{1} + \\boxed{2}")
        '\\\\boxed{1} + \\\\boxed{2}'
    """
    s = gt.strip()
    for command in _BOX_COMMANDS:
        if s.startswith(command):
            box = _box_at(s, 0, command)
            if box is not None and box[1] == len(s) - 1:
                return s[box[0] : box[1]].strip()
    return s


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_DELIMITERS: Final = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_THIN_THOUSANDS = re.compile(r"(?<=\d)\\,(?=\d{3}(?!\d))")
_SPACING = re.compile(r"\\[,:;! ]|\\q?quad(?![a-zA-Z])|~")
_NOISE = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle|textstyle)(?![a-zA-Z])")
_SPACING_HINT = re.compile(r"\\[,:;! ]|quad|~")
_NOISE_HINT = re.compile(r"left|right|big|Big|style")
_WHITESPACE = re.compile(r"\s+")
# Keep a space only where it separates two word characters (`\pi r`, `2 3`).
_LOOSE_SPACE = re.compile(r" (?!\w)|(?<!\w) ")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}")


def _canonical(s: str) -> str:
    """Light normalisation that never changes a value: delimiters, spacing commands, `\\left`,
    `\\dfrac`, whitespace runs, unicode minus and a final full stop. Spaces are kept (collapsed)."""
    s = s.strip()
    for left, right in _DELIMITERS:
        if len(s) > len(left) + len(right) and s.startswith(left) and s.endswith(right):
            s = s[len(left) : -len(right)].strip()
            break
    # Substring tests first: most answers need none of these substitutions.
    if "\\" in s:
        if "\\," in s:
            s = _THIN_THOUSANDS.sub(",", s)
        if _SPACING_HINT.search(s):
            s = _SPACING.sub(" ", s)
        if _NOISE_HINT.search(s):
            s = _NOISE.sub("", s)
        if "frac" in s:
            s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    elif "~" in s:
        s = s.replace("~", " ")
    if "{," in s:
        s = s.replace("{,}", ",")
    if "\u2212" in s:
        s = s.replace("\u2212", "-")
    if " " in s or "\t" in s or "\n" in s or "\r" in s:
        s = _WHITESPACE.sub(" ", s).strip()
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1].rstrip()
    return s


_ARTICLES: Final = frozenset({"a", "an", "the"})
_SENTENCE_PUNCTUATION: Final = frozenset(".,;:!?'\"`")
_TEXT_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+|[^\w\s]")


def _text_tokens(s: str) -> tuple[str, ...]:
    """Word-level form for worded answers: `\\text{}` unwrapped, lower case, sentence punctuation
    and articles dropped. Math symbols stay tokens, so `x-1` and `x1` remain different."""
    for _ in range(3):  # nested wrappers such as \text{\textbf{x}}
        unwrapped = _TEXT_WRAPPER.sub(r"\1", s)
        if unwrapped == s:
            break
        s = unwrapped
    tokens = [t for t in _TEXT_TOKEN.findall(s.lower()) if t not in _SENTENCE_PUNCTUATION]
    content = [t for t in tokens if t not in _ARTICLES]
    # "A" (a choice) must not vanish entirely.
    return tuple(content if content else tokens)


# --------------------------------------------------------------------------------------------
# Numeric fast path
# --------------------------------------------------------------------------------------------

_N = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+"
_NUMBER = re.compile(
    rf"(?P<sign>[-+]?) ?(?:"
    rf"(?P<dec>{_N})(?:[eE](?P<e1>[-+]?\d{{1,4}})"
    rf"| ?\\(?:times|cdot) ?10 ?\^ ?(?:\{{ ?(?P<e2>[-+]?\d{{1,4}}) ?\}}|(?P<e3>\d)))?"
    rf"|\\frac(?:\{{ ?(?P<fn>[-+]?(?:{_N})) ?\}}\{{ ?(?P<fd>[-+]?(?:{_N})) ?\}}| ?(?P<fn1>\d) ?(?P<fd1>\d))"
    rf"|(?P<sn>{_N}) ?/ ?(?P<sd>[-+]?(?:{_N}))"
    rf") ?(?P<pct>\\?%)?"
)
_MAX_NUMBER_CHARS: Final = 320  # longer "numbers" are left to exact/text comparison
_MAX_EXPONENT: Final = 400
# Plain words (after `\text{}` unwrapping) that contain a letter other than e or i cannot be a
# number in any reading (math-verify would read `five` as the product E*f*i*v).
_PLAIN_WORDS = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_NON_CONSTANT_LETTER = re.compile(r"[a-df-hj-zA-DF-HJ-Z]")


# The common case (`42`, `-3.0`) without the general pattern's cost.
_SIMPLE_NUMBER = re.compile(r"([-+]?)(\d+)(?:\.(\d+))?")


class _Number(NamedTuple):
    """An exact value num/den (den > 0, not reduced): integer arithmetic is several times faster
    than `Fraction` for the equality tests that decide almost every item."""

    num: int
    den: int
    is_decimal: bool  # written with a decimal point or exponent: compared after rounding
    is_percent: bool


def _decimal(text: str) -> tuple[int, int]:
    digits = text.replace(",", "")
    if "." not in digits:
        return int(digits), 1
    whole, frac = digits.split(".")
    scale = 10 ** len(frac)
    return int(whole or "0") * scale + int(frac or "0"), scale


def _signed(text: str) -> tuple[int, int]:
    if text[0] in "+-":
        num, den = _decimal(text[1:])
        return (-num if text[0] == "-" else num), den
    return _decimal(text)


def _parse_number(s: str) -> _Number | None:
    if len(s) > _MAX_NUMBER_CHARS or not s:
        return None
    simple = _SIMPLE_NUMBER.fullmatch(s)
    if simple is not None:
        sign, whole, frac = simple.groups()
        if frac is None:
            num, den = int(whole), 1
        else:
            den = 10 ** len(frac)
            num = int(whole) * den + int(frac)
        return _Number(-num if sign == "-" else num, den, frac is not None, False)
    m = _NUMBER.fullmatch(s)
    if m is None:
        return None
    g = m.groupdict()
    try:
        if g["dec"] is not None:
            num, den = _decimal(g["dec"])
            exponent = g["e1"] or g["e2"] or g["e3"]
            is_decimal = "." in g["dec"] or exponent is not None
            if exponent is not None:
                power = int(exponent)
                if abs(power) > _MAX_EXPONENT:
                    return None
                num, den = (num * 10**power, den) if power >= 0 else (num, den * 10**-power)
        else:
            if g["fn"] is not None:
                top, bottom = g["fn"], g["fd"]
            elif g["fn1"] is not None:
                top, bottom = g["fn1"], g["fd1"]
            else:
                top, bottom = g["sn"], g["sd"]
            (a, b), (c, d) = _signed(top), _signed(bottom)
            if c == 0:
                return None
            num, den = (a * d, b * c) if c > 0 else (-a * d, -b * c)
            is_decimal = "." in top or "." in bottom
    except ValueError:  # digits over Python's int-string limit
        return None
    return _Number(-num if g["sign"] == "-" else num, den, is_decimal, g["pct"] is not None)


def _round_half_even(num: int, den: int, places: int) -> int:
    """round(num/den, places) * 10**places, ties to even (as `round` does)."""
    scale: int = 10**places
    q, r = divmod(num * scale, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q


# --------------------------------------------------------------------------------------------
# Symbolic path: guards, deadline, math-verify
# --------------------------------------------------------------------------------------------

_DIGIT_RUN = re.compile(r"\d+")
_POWER = re.compile(r"\^|\*\*")
_FACTORIAL = re.compile(r"(?<!\\)!(?!=)")
# `a^b` / `a^{b` inside an exponent: `2^{3^{4}}` is fine, `9^{9^{9}}` is a 370-million-digit power.
_NUMERIC_POWER = re.compile(r"(\d{1,6}) ?(?:\^|\*\*) ?\{? ?(\d{1,6})")
_MAX_DIGIT_RUN: Final = 60
_MAX_EXPONENT_DIGITS: Final = 5
_MAX_FACTORIAL_DIGITS: Final = 4
_MAX_BRACE_DEPTH: Final = 24
# Digits of an evaluated power past which sympy is not asked (an exact answer of a math problem
# that needs more than this is not one a grader can check by evaluation anyway).
_MAX_POWER_DIGITS: Final = 20_000


def _operand_after(s: str, i: int) -> tuple[str, int]:
    """The operand starting at `i` (a `{...}` group, a digit run, or one token) and its end."""
    n = len(s)
    while i < n and s[i] == " ":
        i += 1
    if i >= n:
        return "", i
    if s[i] == "{":
        close = _closing_brace(s, i)
        return (s[i + 1 :], n) if close < 0 else (s[i + 1 : close], close + 1)
    m = _DIGIT_RUN.match(s, i)
    if m is not None:
        return m.group(), m.end()
    if s[i] == "\\":
        j = i + 1
        while j < n and s[j].isalpha():
            j += 1
        return s[i:j], j
    return s[i], i + 1


def _power_digits(s: str) -> float:
    """A rough upper bound on the digits of the largest power in `s` if it were evaluated.

    `99999^{99999}` has 5e5 digits; `(99999^{99999})^{99}` raises that to the 99th power (5e7
    digits, minutes in one uninterruptible big-integer multiplication). Each numeric power counts
    `exponent * log10(base)`; a power of a bracketed group counts the group's digits (its digit
    runs and numeric powers) times a numeric exponent."""
    largest = 0.0
    for m in _NUMERIC_POWER.finditer(s):
        base, power = int(m.group(1)), int(m.group(2))
        if base > 1:
            largest = max(largest, power * math.log10(base))
    for m in _POWER.finditer(s):
        before = s[: m.start()].rstrip()
        if not before or before[-1] not in ")}":
            continue
        closer = before[-1]
        opener = "(" if closer == ")" else "{"
        depth = 0
        start = -1
        for i in range(len(before) - 1, -1, -1):
            if before[i] == closer:
                depth += 1
            elif before[i] == opener:
                depth -= 1
                if depth == 0:
                    start = i
                    break
        exponent, _end = _operand_after(s, m.end())
        if start < 0 or not exponent.strip().isdigit() or len(exponent.strip()) > _MAX_DIGIT_RUN:
            continue
        group = before[start + 1 : -1]
        group_digits = float(sum(len(run) for run in _DIGIT_RUN.findall(group)))
        for inner in _NUMERIC_POWER.finditer(group):
            base, power = int(inner.group(1)), int(inner.group(2))
            if base > 1:
                group_digits += power * math.log10(base)
        largest = max(largest, group_digits * int(exponent.strip()))
    return largest


def _small_factorial_operand(before: str) -> bool:
    """Whether the operand that ends `before` (the text left of a `!`) has a factorial sympy can
    afford to evaluate: a number of at most four digits, a letter, or a bracketed group with
    only small numbers and no power or product (`(n+1)!` yes, `(10^{9})!` no)."""
    if not before:
        return False
    last = before[-1]
    if last.isdigit():
        digits = re.search(r"\d+$", before)
        return digits is not None and len(digits.group()) <= _MAX_FACTORIAL_DIGITS
    if last.isalpha():
        return True
    if last not in ")}":
        return False
    opener = "(" if last == ")" else "{"
    depth = 0
    for i in range(len(before) - 1, -1, -1):
        if before[i] == last:
            depth += 1
        elif before[i] == opener:
            depth -= 1
            if depth == 0:
                group = before[i + 1 : -1]
                return not (
                    _POWER.search(group)
                    or "*" in group
                    or "\\cdot" in group
                    or "\\times" in group
                    or any(len(run) > 2 for run in _DIGIT_RUN.findall(group))
                )
    return False


def _too_complex(s: str, max_chars: int) -> str | None:
    """Why `s` must not reach sympy (its evaluation could not be interrupted), or None."""
    if len(s) > max_chars:
        return f"longer than {max_chars} characters"
    if any(len(run) > _MAX_DIGIT_RUN for run in _DIGIT_RUN.findall(s)):
        return f"a number longer than {_MAX_DIGIT_RUN} digits"
    depth = deepest = 0
    for ch in s:
        if ch in "{(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "})":
            depth -= 1
    if deepest > _MAX_BRACE_DEPTH:
        return f"nesting deeper than {_MAX_BRACE_DEPTH}"
    for m in _POWER.finditer(s):
        exponent, end = _operand_after(s, m.end())
        if _POWER.match(s, end) or "!" in exponent:
            return "a power tower"
        for inner in _NUMERIC_POWER.finditer(exponent):
            base, power = int(inner.group(1)), int(inner.group(2))
            if base > 1 and power * math.log10(base) > _MAX_EXPONENT_DIGITS:
                return "a power tower"
        if any(len(run) > _MAX_EXPONENT_DIGITS for run in _DIGIT_RUN.findall(exponent)):
            return "a huge exponent"
    if _power_digits(s) > _MAX_POWER_DIGITS:
        return "a power with too many digits"
    factorials = list(_FACTORIAL.finditer(s))
    if len(factorials) > 1:
        return "several factorials"
    for m in factorials:
        if not _small_factorial_operand(s[: m.start()].rstrip()):
            return "a factorial of a large operand"
    binomial = "\\binom" in s or "\\choose" in s
    if binomial and any(len(run) > _MAX_EXPONENT_DIGITS for run in _DIGIT_RUN.findall(s)):
        return "a huge binomial"
    return None


class _DeadlineExceeded(BaseException):
    """Raised inside the symbolic check when the item's time is up. A BaseException, so that
    the `except Exception` blocks of math-verify and sympy let it through."""


_SET_ASYNC_EXC = ctypes.pythonapi.PyThreadState_SetAsyncExc
_SET_ASYNC_EXC.argtypes = (ctypes.c_ulong, ctypes.c_void_p)
_SET_ASYNC_EXC.restype = ctypes.c_int


class _Region:
    """One thread's time-limited stretch of work; `lock` orders interruption against exit."""

    __slots__ = ("active", "fired", "lock", "thread_id")

    def __init__(self) -> None:
        self.thread_id = threading.get_ident()
        self.active = True
        self.fired = False
        self.lock = threading.Lock()

    def interrupt(self) -> None:
        with self.lock:
            if self.active and not self.fired:
                self.fired = True
                _SET_ASYNC_EXC(self.thread_id, id(_DeadlineExceeded))

    def close(self) -> None:
        with self.lock:
            self.active = False
            if self.fired:  # not yet delivered: cancel it, it must not escape the region
                _SET_ASYNC_EXC(self.thread_id, None)


class _Watchdog:
    """One daemon thread per process that interrupts regions whose deadline has passed."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the thread does not survive a fork

    def _reset(self) -> None:
        self._wake = threading.Condition()
        self._queue: list[tuple[float, int, _Region]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, until: float, region: _Region) -> None:
        with self._wake:
            heapq.heappush(self._queue, (until, next(self._order), region))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="answer-judge-deadline", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._queue and not self._queue[0][2].active:
                    heapq.heappop(self._queue)
                if not self._queue:
                    self._wake.wait()
                    continue
                wait_s = self._queue[0][0] - time.monotonic()
                if wait_s > 0:
                    self._wake.wait(wait_s)
                    continue
                heapq.heappop(self._queue)[2].interrupt()


_WATCHDOG = _Watchdog()


class _time_limit:
    """Raise `_DeadlineExceeded` in the calling thread if it is still inside the block at the
    monotonic time `until`.

    math-verify's `signal.alarm` works only in the main thread, so a watchdog thread delivers the
    exception with `PyThreadState_SetAsyncExc` instead: it works in any thread, costs nothing
    while the work runs (a trace hook made sympy about three times slower), and leaves the
    host's signal handlers alone. Like a signal, it lands between two bytecodes, so pure C work
    (a huge integer power) cannot be interrupted; `_too_complex` keeps such input away. An
    interruption can also land inside a library's `finally`; sympy's thread-local evaluation
    flags, the state that would then stay wrong, are restored on the way out.
    """

    __slots__ = ("_flags", "_region", "_until")

    def __init__(self, until: float) -> None:
        self._until = until
        self._region = _Region()
        self._flags: tuple[Any, ...] = ()

    def __enter__(self) -> None:
        self._flags = _sympy_flags()
        _WATCHDOG.watch(self._until, self._region)

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._region.close()
        finally:  # the exception may be delivered inside close() itself
            if self._region.fired:
                _restore_sympy_flags(self._flags)


_SYMPY_FLAGS: Final = ("evaluate", "distribute", "exp_is_pow")


def _sympy_flags() -> tuple[Any, ...]:
    parameters = sys.modules.get("sympy.core.parameters")
    if parameters is None:
        return ()
    return tuple(getattr(parameters.global_parameters, name) for name in _SYMPY_FLAGS)


def _restore_sympy_flags(flags: tuple[Any, ...]) -> None:
    parameters = sys.modules.get("sympy.core.parameters")
    if parameters is None or not flags:
        return
    for name, value in zip(_SYMPY_FLAGS, flags, strict=True):
        if getattr(parameters.global_parameters, name) != value:
            setattr(parameters.global_parameters, name, value)


class _MathVerify:
    """math-verify, imported and warmed up once per process (outside any deadline: the first
    parse builds parsers and compiles regexes, which would otherwise count as a timeout)."""

    _lock = threading.Lock()
    _loaded: tuple[Any, Any] | None = None

    @classmethod
    def functions(cls) -> tuple[Any, Any]:
        loaded = cls._loaded
        if loaded is not None:
            return loaded
        with cls._lock:
            if cls._loaded is None:
                import importlib

                from math_verify import parse, verify

                # We pass timeouts of None on purpose (our own deadline applies); silence the
                # one-time warning math-verify logs about that.
                for module in ("math_verify.parser", "math_verify.grader", "math_verify.utils"):
                    with contextlib.suppress(ImportError):
                        setattr(importlib.import_module(module), "TIMEOUT_WARNING_SHOWN", True)  # noqa: B010
                for gold, pred in ((r"\frac{1}{2}", "0.5"), ("x+1", "1+x"), ("x=2", r"\{1,2\}")):
                    verify(
                        parse(f"\\boxed{{{gold}}}", parsing_timeout=None),
                        parse(f"\\boxed{{{pred}}}", parsing_timeout=None),
                        timeout_seconds=None,
                    )
                cls._loaded = (parse, verify)
        assert cls._loaded is not None
        return cls._loaded


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
