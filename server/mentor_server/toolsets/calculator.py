"""The `calculator` toolset: the twelve arithmetic tools of the MENTOR paper's math setting.

The tool names and argument names are the paper's (`add`, `subtract`, `multiply`, `divide`,
`sum_numbers`, `floor`, `ceil`, `round_number`, `power`, `sqrt`, `abs_value`, `modulo`), so
teacher traces written against it score unchanged. Each tool is also a plain, typed Python
function with a Google-style docstring, which is what TRL's `GRPOTrainer(tools=FUNCTIONS)`
needs to build its own schema. The tools are deterministic and safe to run on any input:
inputs and results are bounded by 1e15, arithmetic is decimal on the inputs' spelling, and an
impossible operation (division by zero, the square root of a negative number, a power too
large to hold) raises a ValueError/ZeroDivisionError/TypeError with a short message, which
`Toolset.execute` reports as a tool error. An integral result is an `int` (`divide(6, 3)` is
`2`, `sqrt(16)` is `4`); other results are floats rounded to 15 significant digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from ._core import Toolset
from ._functions import tool_from_function
from ._numeric import DECIMAL_CONTEXT, MAX_MAGNITUDE, canonical_number, check_int, check_number, to_decimal

__all__ = [
    "CALCULATOR",
    "FUNCTIONS",
    "abs_value",
    "add",
    "ceil",
    "divide",
    "floor",
    "modulo",
    "power",
    "round_number",
    "sqrt",
    "subtract",
    "sum_numbers",
]

MAX_LIST_LENGTH = 1000
"""Most numbers `sum_numbers` accepts in one call."""

MAX_NDIGITS = 15
"""`round_number` accepts ndigits in [-15, 15]."""


def _two(a: Any, b: Any) -> tuple[Decimal, Decimal]:
    return to_decimal(check_number("a", a)), to_decimal(check_number("b", b))


def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.

    Returns:
        The sum a + b.
    """
    x, y = _two(a, b)
    with localcontext(DECIMAL_CONTEXT):
        return canonical_number(x + y)


def subtract(a: float, b: float) -> float:
    """Subtract the second number from the first.

    Args:
        a: The number to subtract from.
        b: The number to subtract.

    Returns:
        The difference a - b.
    """
    x, y = _two(a, b)
    with localcontext(DECIMAL_CONTEXT):
        return canonical_number(x - y)


def multiply(a: float, b: float) -> float:
    """Multiply two numbers.

    Args:
        a: The first factor.
        b: The second factor.

    Returns:
        The product a * b.
    """
    x, y = _two(a, b)
    with localcontext(DECIMAL_CONTEXT):
        return canonical_number(x * y)


def divide(a: float, b: float) -> float:
    """Divide the first number by the second.

    Args:
        a: The dividend.
        b: The divisor; must not be zero.

    Returns:
        The quotient a / b.
    """
    x, y = _two(a, b)
    if y == 0:
        raise ZeroDivisionError("division by zero")
    with localcontext(DECIMAL_CONTEXT):
        return canonical_number(x / y)


def sum_numbers(numbers: list[float]) -> float:
    """Add up a list of numbers.

    Args:
        numbers: The numbers to add (at most 1000); an empty list sums to 0.

    Returns:
        The sum of all the numbers.
    """
    if not isinstance(numbers, list):
        raise TypeError(f"numbers must be a list of numbers, got {type(numbers).__name__}")
    if len(numbers) > MAX_LIST_LENGTH:
        raise ValueError(f"numbers may hold at most {MAX_LIST_LENGTH} values, got {len(numbers)}")
    values = [to_decimal(check_number(f"numbers[{i}]", v)) for i, v in enumerate(numbers)]
    with localcontext(DECIMAL_CONTEXT):
        return canonical_number(sum(values, Decimal(0)))


def floor(a: float) -> int:
    """Round a number down to the nearest integer.

    Args:
        a: The number to round down.

    Returns:
        The largest integer not greater than a.
    """
    return int(to_decimal(check_number("a", a)).to_integral_value(rounding=ROUND_FLOOR))


def ceil(a: float) -> int:
    """Round a number up to the nearest integer.

    Args:
        a: The number to round up.

    Returns:
        The smallest integer not less than a.
    """
    return int(to_decimal(check_number("a", a)).to_integral_value(rounding=ROUND_CEILING))


def round_number(a: float, ndigits: int | None = None) -> float:
    """Round a number to a given number of decimal places, halves away from zero.

    Args:
        a: The number to round.
        ndigits: Decimal places to keep, from -15 to 15 (negative values round to tens,
            hundreds...); omit it to round to an integer.

    Returns:
        The rounded number (2.5 rounds to 3, 2.675 to 2.68 with ndigits=2).
    """
    x = to_decimal(check_number("a", a))
    places = 0 if ndigits is None else check_int("ndigits", ndigits, -MAX_NDIGITS, MAX_NDIGITS)
    with localcontext(DECIMAL_CONTEXT):
        return canonical_number(x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def power(a: float, b: float) -> float:
    """Raise a number to a power.

    Args:
        a: The base.
        b: The exponent; a negative base needs an integer exponent.

    Returns:
        a raised to the power b.
    """
    x, y = _two(a, b)
    if x == 0 and y < 0:
        raise ZeroDivisionError("zero cannot be raised to a negative power")
    if x < 0 and y != y.to_integral_value():
        raise ValueError("a negative base with a fractional exponent has no real result")
    # Refuse before computing: |a|**b has about b*log10(|a|) digits, and a request must not be
    # able to make the tool build a number with millions of them.
    if x != 0 and abs(x) != 1 and float(y) * math.log10(abs(float(x))) > math.log10(MAX_MAGNITUDE) + 1:
        raise ValueError("the result is out of range: its absolute value exceeds 1e15")
    if y == 0:
        return 1  # including 0**0, as Python and most calculators define it
    with localcontext(DECIMAL_CONTEXT):
        return canonical_number(x**y)


def sqrt(a: float) -> float:
    """Take the square root of a number.

    Args:
        a: The number; must not be negative.

    Returns:
        The non-negative square root of a.
    """
    x = to_decimal(check_number("a", a))
    if x < 0:
        raise ValueError("the square root of a negative number is not a real number")
    with localcontext(DECIMAL_CONTEXT):
        return canonical_number(x.sqrt())


def abs_value(a: float) -> float:
    """Take the absolute value of a number.

    Args:
        a: The number.

    Returns:
        The absolute value |a|.
    """
    return canonical_number(abs(to_decimal(check_number("a", a))))


def modulo(a: float, b: float) -> float:
    """Take the remainder of dividing the first number by the second.

    Args:
        a: The dividend.
        b: The divisor; must not be zero.

    Returns:
        a modulo b, with the sign of b (as Python's % operator: modulo(-7, 3) is 2).
    """
    x, y = _two(a, b)
    if y == 0:
        raise ZeroDivisionError("modulo by zero")
    with localcontext(DECIMAL_CONTEXT):
        quotient = (x / y).to_integral_value(rounding=ROUND_FLOOR)
        return canonical_number(x - y * quotient)


# ---------------------------------------------------------------------------- the toolset
FUNCTIONS: tuple[Callable[..., Any], ...] = (
    add,
    subtract,
    multiply,
    divide,
    sum_numbers,
    floor,
    ceil,
    round_number,
    power,
    sqrt,
    abs_value,
    modulo,
)
"""The twelve tools as plain functions, in the paper's order (for `GRPOTrainer(tools=list(FUNCTIONS))`)."""

_CONSTRAINTS: dict[str, dict[str, dict[str, Any]]] = {
    "sum_numbers": {"numbers": {"maxItems": MAX_LIST_LENGTH}},
    "round_number": {"ndigits": {"minimum": -MAX_NDIGITS, "maximum": MAX_NDIGITS}},
}

CALCULATOR = Toolset(
    "calculator",
    [tool_from_function(fn, _CONSTRAINTS.get(fn.__name__)) for fn in FUNCTIONS],
    description="Arithmetic on numbers up to 1e15: the twelve calculator tools of the MENTOR paper.",
)
