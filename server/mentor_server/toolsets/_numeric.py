"""Number handling shared by the built-in numeric tools (calculator, units).

The tools compute in decimal arithmetic on the decimal spelling of their inputs, the way a
person or a teacher model reads `0.1`: `add(0.1, 0.2)` is `0.3` and `modulo(0.3, 0.1)` is `0`,
not binary-float artefacts. Every input and result is bounded by `MAX_MAGNITUDE` (1e15):
below 2**53, so every integer in range is exact as a float too, and a request cannot make a
tool build enormous numbers. Results come back in one canonical form (`canonical_number`):
an `int` whenever the value is integral, otherwise a float rounded to 15 significant digits
(the precision a double guarantees), so `str(result)` is the same text the scoring side
renders and the text TRL's tool loop shows the model.
"""

from __future__ import annotations

import decimal
import math
from decimal import Decimal
from typing import Any

MAX_MAGNITUDE = 10**15
"""Largest accepted absolute value of any input or result."""

SIGNIFICANT_DIGITS = 15
"""Significant digits kept in a non-integral result."""

# 34 digits (IEEE decimal128) hold any product of two in-range inputs exactly; the traps
# turn impossible operations into exceptions that the tools report as errors.
DECIMAL_CONTEXT = decimal.Context(
    prec=34,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)


def check_number(name: str, value: Any) -> int | float:
    """Return `value` if it is a finite, in-range int or float; raise a readable error otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"{name} is out of range: the absolute value must be at most 1e15")
    return value


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """Return `value` as an int if it is an integer in [low, high] (2.0 counts, as in JSON schema)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def to_decimal(value: int | float) -> Decimal:
    """The decimal a number's shortest spelling denotes (`0.1` -> Decimal('0.1'), not the binary value)."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def canonical_number(value: int | float | Decimal) -> int | float:
    """Bring a computed value into the tools' canonical form, or raise when it is out of range."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("the result is not a finite number")
        if abs(value) > MAX_MAGNITUDE:
            raise ValueError("the result is out of range: its absolute value exceeds 1e15")
        if value == value.to_integral_value():
            return int(value)
        value = float(value)
    if isinstance(value, bool):
        raise TypeError("a boolean is not a numeric result")
    if isinstance(value, int):
        if abs(value) > MAX_MAGNITUDE:
            raise ValueError("the result is out of range: its absolute value exceeds 1e15")
        return value
    if not math.isfinite(value):
        raise ValueError("the result is not a finite number")
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if abs(rounded) > MAX_MAGNITUDE:
        raise ValueError("the result is out of range: its absolute value exceeds 1e15")
    if rounded.is_integer():
        return int(rounded)
    return rounded
