"""The symbolic path of the judge: guards that keep inputs able to stall sympy away from it, the
per-item deadline a watchdog thread enforces in any thread, and math-verify loaded once per process."""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
import math
import os
import re
import sys
import threading
import time
from typing import Any, Final

from .boxed import _closing_brace

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
