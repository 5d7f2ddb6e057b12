"""Toolsets: built-in tools, argument validation, time-limited execution, registry and loading."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mentor_server.scoring.types import ScoringConfigError
from mentor_server.toolsets import (
    ALL_BUILTIN,
    Tool,
    Toolset,
    _core,
    calculator,
    dates,
    get_toolset,
    list_toolsets,
    load_toolsets_file,
    parse_docstring,
    register_toolset,
    render_content,
    render_tools_for_prompt,
    tool_from_function,
    toolset_from_schemas,
    units,
    unregister_toolset,
)

HERE = Path(__file__).parent
DATA = HERE / "data"
PAPER_CALCULATOR_TOOLS = (
    "add",
    "subtract",
    "multiply",
    "divide",
    "sum_numbers",
    "floor",
    "ceil",
    "round_number",
    "power",
    "sqrt",
    "abs_value",
    "modulo",
)


@dataclass(frozen=True)
class Case:
    toolset: str
    tool: str
    arguments: dict[str, Any]
    expected: Any
    label: str

    @property
    def id(self) -> str:
        return f"{self.tool}-{self.label}"


def ok(toolset: str, tool: str, arguments: dict[str, Any], expected: Any, label: str) -> Any:
    case = Case(toolset, tool, arguments, expected, label)
    return pytest.param(case, id=case.id)


def conv(tool: str, value: float, source: str, target: str, expected: Any, label: str) -> Any:
    return ok("units", tool, {"value": value, "from_unit": source, "to_unit": target}, expected, label)


# (toolset, tool, arguments, expected result, label). The result's *type* is checked too:
# integral values come back as int, everything else as float.
SUCCESS_CASES = [
    ok("calculator", "add", {"a": 2, "b": 3}, 5, "ints"),
    ok("calculator", "add", {"a": 0.1, "b": 0.2}, 0.3, "decimal-not-binary"),
    ok("calculator", "add", {"a": -1.5, "b": 1.5}, 0, "integral-float-becomes-int"),
    ok("calculator", "add", {"a": 1e15, "b": -1}, 999_999_999_999_999, "at-the-bound"),
    ok("calculator", "subtract", {"a": 10, "b": 4}, 6, "ints"),
    ok("calculator", "subtract", {"a": 0.3, "b": 0.1}, 0.2, "decimal-not-binary"),
    ok("calculator", "subtract", {"a": 2, "b": 5}, -3, "negative"),
    ok("calculator", "multiply", {"a": 6, "b": 7}, 42, "ints"),
    ok("calculator", "multiply", {"a": 1.1, "b": 1.1}, 1.21, "floats"),
    ok("calculator", "multiply", {"a": -2, "b": 0.5}, -1, "integral-result"),
    ok("calculator", "multiply", {"a": 0, "b": -5}, 0, "no-negative-zero"),
    ok("calculator", "divide", {"a": 6, "b": 3}, 2, "exact-int"),
    ok("calculator", "divide", {"a": 7, "b": 2}, 3.5, "half"),
    ok("calculator", "divide", {"a": 1, "b": 3}, 0.333333333333333, "fifteen-digits"),
    ok("calculator", "divide", {"a": -9, "b": 3}, -3, "negative"),
    ok("calculator", "sum_numbers", {"numbers": [1, 2, 3]}, 6, "ints"),
    ok("calculator", "sum_numbers", {"numbers": []}, 0, "empty"),
    ok("calculator", "sum_numbers", {"numbers": [0.1] * 10}, 1, "tenths"),
    ok("calculator", "sum_numbers", {"numbers": [1.5, 2.25]}, 3.75, "floats"),
    ok("calculator", "floor", {"a": 2.7}, 2, "positive"),
    ok("calculator", "floor", {"a": -2.5}, -3, "negative"),
    ok("calculator", "floor", {"a": 5}, 5, "int"),
    ok("calculator", "ceil", {"a": 2.1}, 3, "positive"),
    ok("calculator", "ceil", {"a": -2.5}, -2, "negative"),
    ok("calculator", "ceil", {"a": 5}, 5, "int"),
    ok("calculator", "round_number", {"a": 2.5}, 3, "half-up"),
    ok("calculator", "round_number", {"a": -2.5}, -3, "half-away-from-zero"),
    ok("calculator", "round_number", {"a": 2.675, "ndigits": 2}, 2.68, "decimal-half"),
    ok("calculator", "round_number", {"a": 1234.5678, "ndigits": -2}, 1200, "negative-ndigits"),
    ok("calculator", "round_number", {"a": 3.14159, "ndigits": 3}, 3.142, "three-places"),
    ok("calculator", "round_number", {"a": 3.14159, "ndigits": 2.0}, 3.14, "integral-float-ndigits"),
    ok("calculator", "round_number", {"a": 7, "ndigits": 2}, 7, "int-stays-int"),
    ok("calculator", "power", {"a": 2, "b": 10}, 1024, "ints"),
    ok("calculator", "power", {"a": 2, "b": -2}, 0.25, "negative-exponent"),
    ok("calculator", "power", {"a": 9, "b": 0.5}, 3, "root"),
    ok("calculator", "power", {"a": 2, "b": 0.5}, 1.4142135623731, "irrational"),
    ok("calculator", "power", {"a": -2, "b": 3}, -8, "negative-base"),
    ok("calculator", "power", {"a": 0, "b": 0}, 1, "zero-to-zero"),
    ok("calculator", "power", {"a": 10, "b": 15}, 10**15, "at-the-bound"),
    ok("calculator", "power", {"a": 1, "b": 1e15}, 1, "one-to-huge"),
    ok("calculator", "power", {"a": 0.5, "b": 1e6}, 0, "underflow-to-zero"),
    ok("calculator", "sqrt", {"a": 16}, 4, "perfect-square"),
    ok("calculator", "sqrt", {"a": 2.25}, 1.5, "decimal-square"),
    ok("calculator", "sqrt", {"a": 2}, 1.4142135623731, "irrational"),
    ok("calculator", "sqrt", {"a": 0}, 0, "zero"),
    ok("calculator", "abs_value", {"a": -3}, 3, "negative-int"),
    ok("calculator", "abs_value", {"a": 2.5}, 2.5, "float"),
    ok("calculator", "abs_value", {"a": -0.0}, 0, "negative-zero"),
    ok("calculator", "modulo", {"a": 10, "b": 3}, 1, "ints"),
    ok("calculator", "modulo", {"a": -7, "b": 3}, 2, "sign-of-divisor"),
    ok("calculator", "modulo", {"a": 7, "b": -3}, -2, "negative-divisor"),
    ok("calculator", "modulo", {"a": 5.5, "b": 2}, 1.5, "float"),
    ok("calculator", "modulo", {"a": 0.3, "b": 0.1}, 0, "decimal-not-binary"),
    conv("convert_length", 1, "foot", "inch", 12, "exact"),
    conv("convert_length", 1, "mile", "kilometer", 1.609344, "mile"),
    conv("convert_length", 5, "kilometer", "meter", 5000, "metric"),
    conv("convert_length", 100, "centimeter", "inch", 39.3700787401575, "inexact"),
    conv("convert_length", 1852, "meter", "nautical_mile", 1, "nautical"),
    conv("convert_mass", 1, "pound", "ounce", 16, "ounces"),
    conv("convert_mass", 1, "stone", "pound", 14, "stone"),
    conv("convert_mass", 1, "kilogram", "pound", 2.20462262184878, "inexact"),
    conv("convert_mass", 2500, "gram", "kilogram", 2.5, "metric"),
    conv("convert_temperature", 100, "celsius", "fahrenheit", 212, "boiling"),
    conv("convert_temperature", 32, "fahrenheit", "celsius", 0, "freezing"),
    conv("convert_temperature", 0, "kelvin", "celsius", -273.15, "zero-k"),
    conv("convert_temperature", -40, "celsius", "fahrenheit", -40, "minus-40"),
    conv("convert_temperature", 98.6, "fahrenheit", "celsius", 37, "body"),
    conv("convert_temperature", 300, "kelvin", "fahrenheit", 80.33, "k-to-f"),
    conv("convert_time", 90, "minute", "hour", 1.5, "minutes"),
    conv("convert_time", 1, "week", "second", 604800, "week"),
    conv("convert_time", 1500, "millisecond", "second", 1.5, "ms"),
    conv("convert_volume", 1, "gallon", "quart", 4, "quarts"),
    conv("convert_volume", 1, "cup", "tablespoon", 16, "cup"),
    conv("convert_volume", 1, "tablespoon", "teaspoon", 3, "spoons"),
    conv("convert_volume", 1, "gallon", "liter", 3.785411784, "gallon"),
    conv("convert_volume", 2, "cubic_meter", "liter", 2000, "metric"),
    ok("dates", "days_between", {"start_date": "2024-01-01", "end_date": "2024-03-01"}, 60, "leap-february"),
    ok("dates", "days_between", {"start_date": "2024-03-01", "end_date": "2024-01-01"}, -60, "backwards"),
    ok("dates", "days_between", {"start_date": "2023-12-31", "end_date": "2024-01-01"}, 1, "new-year"),
    ok("dates", "add_days", {"date": "2024-02-28", "days": 1}, "2024-02-29", "leap-day"),
    ok("dates", "add_days", {"date": "2023-02-28", "days": 1}, "2023-03-01", "no-leap-day"),
    ok("dates", "add_days", {"date": "2024-01-01", "days": -1}, "2023-12-31", "backwards"),
    ok("dates", "add_months", {"date": "2024-01-31", "months": 1}, "2024-02-29", "clamp-leap"),
    ok("dates", "add_months", {"date": "2023-01-31", "months": 1}, "2023-02-28", "clamp"),
    ok("dates", "add_months", {"date": "2024-11-15", "months": 3}, "2025-02-15", "year-wrap"),
    ok("dates", "add_months", {"date": "2024-03-31", "months": -1}, "2024-02-29", "backwards"),
    ok("dates", "weekday_of", {"date": "2024-01-01"}, "Monday", "monday"),
    ok("dates", "weekday_of", {"date": "2000-02-29"}, "Tuesday", "leap-day"),
    ok("dates", "day_of_year", {"date": "2024-12-31"}, 366, "leap-year-end"),
    ok("dates", "day_of_year", {"date": "2023-12-31"}, 365, "year-end"),
    ok("dates", "day_of_year", {"date": "2024-03-01"}, 61, "march"),
    ok("dates", "days_in_month", {"year": 2024, "month": 2}, 29, "leap"),
    ok("dates", "days_in_month", {"year": 1900, "month": 2}, 28, "century"),
    ok("dates", "days_in_month", {"year": 2000, "month": 2}, 29, "quad-century"),
    ok("dates", "days_in_month", {"year": 2023, "month": 4}, 30, "april"),
    ok("dates", "is_leap_year", {"year": 2024}, True, "leap"),
    ok("dates", "is_leap_year", {"year": 1900}, False, "century"),
    ok("dates", "is_leap_year", {"year": 2000}, True, "quad-century"),
]


def err(
    toolset: str, tool: str, arguments: dict[str, Any], error_type: str, fragment: str, label: str
) -> Any:
    return pytest.param(toolset, tool, arguments, error_type, fragment, id=f"{tool}-{label}")


def conv_err(
    tool: str, value: float, source: str, target: str, error_type: str, fragment: str, label: str
) -> Any:
    arguments = {"value": value, "from_unit": source, "to_unit": target}
    return err("units", tool, arguments, error_type, fragment, label)


# (toolset, tool, arguments, error_type, fragment of error_message, label)
ERROR_CASES = [
    err("calculator", "divide", {"a": 1, "b": 0}, "tool_error", "division by zero", "by-zero"),
    err("calculator", "modulo", {"a": 1, "b": 0}, "tool_error", "modulo by zero", "by-zero"),
    err("calculator", "sqrt", {"a": -4}, "tool_error", "negative number", "negative"),
    err("calculator", "power", {"a": 10, "b": 16}, "tool_error", "out of range", "too-large"),
    err("calculator", "power", {"a": 1e15, "b": 1e15}, "tool_error", "out of range", "huge-exponent"),
    err("calculator", "power", {"a": -8, "b": 0.5}, "tool_error", "fractional exponent", "complex"),
    err("calculator", "power", {"a": 0, "b": -1}, "tool_error", "negative power", "zero-negative"),
    err("calculator", "add", {"a": 1e16, "b": 1}, "tool_error", "a is out of range", "input-too-large"),
    err(
        "calculator", "multiply", {"a": 10**8, "b": 10**8}, "tool_error", "result is out of range", "overflow"
    ),
    err("calculator", "sum_numbers", {"numbers": [1e15, 1e15]}, "tool_error", "out of range", "overflow"),
    err(
        "calculator",
        "sum_numbers",
        {"numbers": [1] * 1001},
        "invalid_arguments",
        "arguments.numbers",
        "too-long",
    ),
    err(
        "calculator",
        "round_number",
        {"a": 1, "ndigits": 16},
        "invalid_arguments",
        "arguments.ndigits",
        "ndigits",
    ),
    err(
        "calculator",
        "round_number",
        {"a": 1, "ndigits": 1.5},
        "invalid_arguments",
        "arguments.ndigits",
        "frac",
    ),
    err("calculator", "add", {"a": "1", "b": 2}, "invalid_arguments", "arguments.a", "string"),
    err("calculator", "add", {"a": True, "b": 2}, "invalid_arguments", "arguments.a", "bool"),
    err(
        "calculator",
        "abs_value",
        {},
        "invalid_arguments",
        "arguments.a: missing required argument",
        "missing",
    ),
    err(
        "calculator",
        "floor",
        {"a": 1, "b": 2},
        "invalid_arguments",
        "arguments.b: unexpected argument",
        "extra",
    ),
    err("calculator", "exp", {"a": 1}, "unknown_tool", "unknown tool 'exp'", "unknown"),
    conv_err(
        "convert_temperature", -300, "celsius", "kelvin", "tool_error", "below absolute zero", "below-zero-c"
    ),
    conv_err(
        "convert_temperature", -1, "kelvin", "celsius", "tool_error", "below absolute zero", "below-zero-k"
    ),
    conv_err(
        "convert_length", 1, "furlong", "meter", "invalid_arguments", "arguments.from_unit", "unknown-unit"
    ),
    conv_err("convert_mass", 1, "gram", "meter", "invalid_arguments", "arguments.to_unit", "wrong-dimension"),
    conv_err(
        "convert_length", 1e16, "meter", "meter", "tool_error", "value is out of range", "input-too-large"
    ),
    conv_err(
        "convert_length", 1e15, "kilometer", "millimeter", "tool_error", "result is out of range", "overflow"
    ),
    err(
        "dates", "add_days", {"date": "2024-02-30", "days": 1}, "tool_error", "not a valid date", "impossible"
    ),
    err("dates", "add_days", {"date": "9999-12-31", "days": 1}, "tool_error", "outside years", "past-9999"),
    err(
        "dates", "add_months", {"date": "0001-01-15", "months": -1}, "tool_error", "outside years", "before-1"
    ),
    err(
        "dates",
        "days_between",
        {"start_date": "2024/01/01", "end_date": "2024-01-02"},
        "invalid_arguments",
        "arguments.start_date",
        "slashes",
    ),
    err("dates", "weekday_of", {"date": "20240101"}, "invalid_arguments", "arguments.date", "compact"),
    err(
        "dates", "days_in_month", {"year": 2024, "month": 13}, "invalid_arguments", "arguments.month", "month"
    ),
    err("dates", "is_leap_year", {"year": 0}, "invalid_arguments", "arguments.year", "year-zero"),
]


@pytest.mark.parametrize("case", SUCCESS_CASES)
def test_builtin_tool_results(case: Case) -> None:
    run = get_toolset(case.toolset).execute(case.tool, case.arguments)
    assert run.ok, run.error_message
    assert (run.error_type, run.error_message) == (None, None)
    assert run.result == case.expected
    assert type(run.result) is type(case.expected)
    # Canonical results render as str(result): the text TRL's tool loop shows the model.
    assert run.content == str(case.expected)


@pytest.mark.parametrize(("toolset", "tool", "arguments", "error_type", "fragment"), ERROR_CASES)
def test_builtin_tool_errors(
    toolset: str, tool: str, arguments: dict[str, Any], error_type: str, fragment: str
) -> None:
    run = get_toolset(toolset).execute(tool, arguments)
    assert not run.ok
    assert run.result is None
    assert run.error_type == error_type
    assert run.error_message is not None and fragment in run.error_message
    assert "error" in json.loads(run.content)


def test_every_builtin_tool_has_success_and_error_cases() -> None:
    tested_ok = {(c.values[0].toolset, c.values[0].tool) for c in SUCCESS_CASES}
    tested_err = {(c.values[0], c.values[1]) for c in ERROR_CASES}
    every = {(name, tool) for name in ALL_BUILTIN for tool in get_toolset(name).names}
    assert every - tested_ok == set()
    # Each domain's error behaviour is covered (not every tool can fail the same ways).
    assert {name for name, _ in tested_err} == set(ALL_BUILTIN)


def test_calculator_has_the_papers_twelve_tools() -> None:
    ts = get_toolset("calculator")
    assert tuple(ts.tools) == PAPER_CALCULATOR_TOOLS
    assert tuple(fn.__name__ for fn in calculator.FUNCTIONS) == PAPER_CALCULATOR_TOOLS
    assert all(tool.executable for tool in ts.tools.values())
    arguments = {name: set(tool.parameters["properties"]) for name, tool in ts.tools.items()}
    assert {name for name, args in arguments.items() if args == {"a", "b"}} == {
        "add", "subtract", "multiply", "divide", "power", "modulo",
    }  # fmt: skip
    assert {name for name, args in arguments.items() if args == {"a"}} == {
        "floor",
        "ceil",
        "sqrt",
        "abs_value",
    }
    assert arguments["sum_numbers"] == {"numbers"}
    assert arguments["round_number"] == {"a", "ndigits"}
    assert ts.tools["round_number"].parameters["required"] == ["a"]


@pytest.mark.parametrize(
    ("fn", "args", "exc"),
    [
        pytest.param(calculator.add, ("1", 2), TypeError, id="string"),
        pytest.param(calculator.add, (True, 1), TypeError, id="bool"),
        pytest.param(calculator.add, (float("nan"), 1), ValueError, id="nan"),
        pytest.param(calculator.add, (float("inf"), 1), ValueError, id="inf"),
        pytest.param(calculator.floor, (1e16,), ValueError, id="too-large"),
        pytest.param(calculator.sum_numbers, ("123",), TypeError, id="not-a-list"),
        pytest.param(calculator.sum_numbers, ([1] * 1001,), ValueError, id="too-long"),
        pytest.param(calculator.round_number, (1.0, True), TypeError, id="bool-ndigits"),
        pytest.param(units.convert_length, (1, "furlong", "meter"), ValueError, id="unknown-unit"),
        pytest.param(units.convert_temperature, (1, "rankine", "kelvin"), ValueError, id="unknown-scale"),
        pytest.param(dates.weekday_of, ("20240101",), ValueError, id="compact-date"),
        pytest.param(dates.add_days, ("2024-01-01", "3"), TypeError, id="string-days"),
    ],
)
def test_plain_functions_reject_bad_input_without_a_schema(fn: Any, args: tuple[Any, ...], exc: type) -> None:
    # TRL calls the functions directly with whatever the model wrote; they must fail cleanly.
    with pytest.raises(exc):
        fn(*args)


@pytest.mark.parametrize("tool", units.FUNCTIONS, ids=lambda fn: fn.__name__)
def test_every_enum_unit_converts(tool: Any) -> None:
    enum = get_toolset("units").tools[tool.__name__].parameters["properties"]["from_unit"]["enum"]
    for unit in enum:
        assert tool(7, unit, unit) == 7
        for other in enum:
            there = tool(7, unit, other)
            assert tool(there, other, unit) == pytest.approx(7, rel=1e-12)


_bounded = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=150, deadline=None)
@given(a=_bounded, b=_bounded, op=st.sampled_from(["add", "subtract", "multiply", "divide", "modulo"]))
def test_binary_tools_agree_with_float_arithmetic(a: float, b: float, op: str) -> None:
    reference = {
        "add": lambda: a + b,
        "subtract": lambda: a - b,
        "multiply": lambda: a * b,
        "divide": lambda: a / b,
        "modulo": lambda: a % b,
    }
    run = get_toolset("calculator").execute(op, {"a": a, "b": b})
    if b == 0 and op in ("divide", "modulo"):
        assert run.error_type == "tool_error"
        return
    expected = reference[op]()
    if abs(expected) > 1.0001e15:
        assert run.error_type == "tool_error"
        return
    if not run.ok:  # only the boundary of the range may go either way
        assert "out of range" in (run.error_message or "") and abs(expected) > 0.9999e15
        return
    assert isinstance(run.result, int) or not float(run.result).is_integer()
    assert run.content == str(run.result)
    if op == "modulo":  # float % loses the decimal remainder; check the identity instead
        # Exact rationals: a / b can overflow a float when b is tiny.
        quotient = math.floor(Fraction(a) / Fraction(b))
        remainder = float(Fraction(a) - Fraction(b) * quotient)
        assert run.result == pytest.approx(remainder, rel=1e-9, abs=1e-6 * max(1.0, abs(b)))
    else:
        assert run.result == pytest.approx(expected, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------------- validation
NESTED = toolset_from_schemas(
    [
        {
            "type": "function",
            "function": {
                "name": "search",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "query": {"type": "string"},
                        "filters": {
                            "type": "object",
                            "properties": {"limit": {"type": "integer"}},
                            "required": ["limit"],
                        },
                    },
                    "required": ["query"],
                },
            },
        }
    ],
    name="nested",
)


@pytest.mark.parametrize(
    ("toolset", "tool", "arguments", "expected"),
    [
        pytest.param(get_toolset("calculator"), "add", {"a": 1, "b": 2.5}, [], id="valid"),
        pytest.param(
            get_toolset("calculator"), "add", {"a": "two"},
            ["arguments.a: 'two' is not of type 'number'", "arguments.b: missing required argument"],
            id="type-and-missing",
        ),
        pytest.param(
            get_toolset("calculator"), "add", {"a": 1, "b": 2, "c": 3, "d": 4},
            ["arguments.c: unexpected argument", "arguments.d: unexpected argument"],
            id="unexpected",
        ),
        pytest.param(
            get_toolset("calculator"), "sum_numbers", {"numbers": [1, "x", 3, None]},
            ["arguments.numbers[1]: 'x' is not of type 'number'", "arguments.numbers[3]: None is not of"],
            id="array-index",
        ),
        pytest.param(
            get_toolset("calculator"), "round_number", {"a": 1, "ndigits": 99},
            ["arguments.ndigits: 99 is greater than the maximum of 15"],
            id="maximum",
        ),
        pytest.param(
            get_toolset("units"), "convert_length", {"value": 1, "from_unit": "furlong", "to_unit": "meter"},
            ["arguments.from_unit: 'furlong' is not one of ['millimeter'"],
            id="enum",
        ),
        pytest.param(
            get_toolset("dates"), "weekday_of", {"date": "next monday"},
            ["arguments.date: 'next monday' does not match"],
            id="pattern",
        ),
        pytest.param(NESTED, "search", {"query": "x", "filters": {}},
                     ["arguments.filters.limit: missing required argument"], id="nested-missing"),
        pytest.param(NESTED, "search", {"query": "x", "filters": {"limit": "ten"}},
                     ["arguments.filters.limit: 'ten' is not of type 'integer'"], id="nested-type"),
        pytest.param(get_toolset("calculator"), "add", [1, 2],
                     ["arguments: expected an object of named arguments, got list"], id="not-an-object"),
        pytest.param(get_toolset("calculator"), "add", None,
                     ["arguments: expected an object of named arguments, got NoneType"], id="none"),
        pytest.param(get_toolset("calculator"), "exp", {"a": 1}, ["unknown tool 'exp'"], id="unknown-tool"),
    ],
)  # fmt: skip
def test_validation_messages_name_the_argument(
    toolset: Toolset, tool: str, arguments: Any, expected: list[str]
) -> None:
    messages = toolset.validate_arguments(tool, arguments)
    assert len(messages) == len(expected), messages
    for message, prefix in zip(messages, expected, strict=True):
        assert message.startswith(prefix), (message, prefix)


def test_validation_reports_a_bounded_number_of_short_messages() -> None:
    calc = get_toolset("calculator")
    messages = calc.validate_arguments("sum_numbers", {"numbers": [f"n{i:02d}" for i in range(25)]})
    assert len(messages) == _core.MAX_MESSAGES + 1
    assert messages[-1] == "... and 5 more"
    long = calc.validate_arguments("add", {"a": "x" * 10_000, "b": 1})
    assert len(long) == 1 and long[0].startswith("arguments.a: ") and len(long[0]) < 250


def test_validators_are_compiled_once_per_schema() -> None:
    schema = {"type": "function", "function": {"name": "cache_probe", "parameters": {
        "type": "object", "properties": {"x": {"type": "integer", "minimum": 12345}}}}}  # fmt: skip
    toolset_from_schemas([schema], name="first")
    misses = _core._compile.cache_info().misses
    second = toolset_from_schemas([schema], name="second")
    for _ in range(5):
        assert second.validate_arguments("cache_probe", {"x": 1}) == [
            "arguments.x: 1 is less than the minimum of 12345"
        ]
    assert _core._compile.cache_info().misses == misses


def test_schema_draft_follows_dollar_schema() -> None:
    pair = {"type": "array", "items": [{"type": "number"}, {"type": "string"}]}  # draft-07 tuple form
    draft7 = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"pair": pair},
    }
    ts = toolset_from_schemas([{"name": "t", "parameters": draft7}])
    assert ts.validate_arguments("t", {"pair": ["a", 1]}) == [
        "arguments.pair[0]: 'a' is not of type 'number'",
        "arguments.pair[1]: 1 is not of type 'string'",
    ]
    # Without $schema it is Draft 2020-12, where `items` must be a single schema.
    with pytest.raises(ScoringConfigError) as info:
        toolset_from_schemas([{"name": "t", "parameters": {"type": "object", "properties": {"pair": pair}}}])
    assert info.value.param == "tools[0].parameters.properties.pair.items"


# ---------------------------------------------------------------------------- execution
@pytest.fixture
def operator_toolsets(monkeypatch: pytest.MonkeyPatch) -> dict[str, Toolset]:
    monkeypatch.syspath_prepend(str(HERE))
    return {ts.name: ts for ts in load_toolsets_file(DATA / "operator_toolsets.yaml")}


@pytest.fixture
def slow_tool(operator_toolsets: dict[str, Toolset]) -> Iterator[Any]:
    import operator_tools

    operator_tools.release.clear()
    operator_tools.finished.clear()
    yield operator_tools
    operator_tools.release.set()  # never leave a worker thread waiting
    assert operator_tools.finished.wait(5)


def test_slow_tool_times_out_and_its_late_result_is_discarded(
    operator_toolsets: dict[str, Toolset], slow_tool: Any
) -> None:
    failing = operator_toolsets["failing_tools"]
    start = time.perf_counter()
    run = failing.execute("slow", {"seconds": 30}, timeout_s=0.05)
    elapsed = time.perf_counter() - start
    assert (run.ok, run.error_type, run.result) == (False, "timeout", None)
    assert 0.05 <= elapsed < 1.0
    assert run.error_message == "tool 'slow' did not finish within 0.05 s"
    slow_tool.release.set()
    assert slow_tool.finished.wait(5)  # the tool did finish, later, and its "late" went nowhere
    assert run.result is None and "late" not in run.content
    # The same tool within its limit returns normally.
    assert failing.execute("slow", {"seconds": 0}, timeout_s=2).content == "late"


def test_too_many_stragglers_refuse_new_executions(
    operator_toolsets: dict[str, Toolset], slow_tool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_core, "MAX_STRAGGLERS", 1)
    failing, text = operator_toolsets["failing_tools"], operator_toolsets["text_tools"]
    assert failing.execute("slow", {"seconds": 30}, timeout_s=0.02).error_type == "timeout"
    refused = text.execute("word_count", {"text": "a b"})
    assert (refused.ok, refused.error_type) == (False, "overloaded")
    slow_tool.release.set()
    deadline = time.monotonic() + 5
    while (run := text.execute("word_count", {"text": "a b"})).error_type == "overloaded":
        assert time.monotonic() < deadline, "the finished straggler was never released"
        time.sleep(0.01)
    assert run.ok and run.result == 2


@pytest.mark.parametrize("timeout_s", [2.0, None], ids=["worker-thread", "inline"])
@pytest.mark.parametrize(
    ("tool", "message", "content"),
    [
        pytest.param("broken", "RuntimeError: the backend is down", "the backend is down", id="raises"),
        pytest.param("exits", "SystemExit: 3", "3", id="sys-exit"),
    ],
)
def test_exceptions_inside_tools_become_tool_errors(
    operator_toolsets: dict[str, Toolset], tool: str, message: str, content: str, timeout_s: float | None
) -> None:
    run = operator_toolsets["failing_tools"].execute(tool, {}, timeout_s=timeout_s)
    assert (run.ok, run.error_type, run.error_message) == (False, "tool_error", message)
    assert json.loads(run.content) == {"error": content}


@pytest.mark.parametrize("timeout_s", [0, -1.0, "2"], ids=["zero", "negative", "string"])
def test_execute_rejects_a_meaningless_time_limit(timeout_s: Any) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        get_toolset("calculator").execute("add", {"a": 1, "b": 2}, timeout_s=timeout_s)


def test_concurrent_executions_keep_their_own_results() -> None:
    calc = get_toolset("calculator")
    failures: list[str] = []

    def worker(offset: int) -> None:
        for i in range(100):
            run = calc.execute("multiply", {"a": offset, "b": i})
            if run.result != offset * i:
                failures.append(f"{offset}*{i} -> {run}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(8.0, "8", id="integral-float"),
        pytest.param(0.1 + 0.2, "0.3", id="float-noise"),
        pytest.param(2.5, "2.5", id="float"),
        pytest.param(1e20, "1e+20", id="huge-float"),
        pytest.param(1e-7, "1e-07", id="tiny-float"),
        pytest.param(-0.0, "0", id="negative-zero"),
        pytest.param(float("nan"), "nan", id="nan"),
        pytest.param(12, "12", id="int"),
        pytest.param(True, "True", id="bool"),
        pytest.param(None, "None", id="none"),
        pytest.param("plain text", "plain text", id="string"),
        pytest.param([1.0, 2.5, "x"], '[1, 2.5, "x"]', id="list"),
        pytest.param((1, 2), "[1, 2]", id="tuple"),
        pytest.param({"t": 21.0, "city": "Zürich"}, '{"t": 21, "city": "Zürich"}', id="dict-unicode"),
        pytest.param({"nested": {"v": [0.1 + 0.2]}}, '{"nested": {"v": [0.3]}}', id="nested"),
    ],
)
def test_render_content(value: Any, expected: str) -> None:
    assert render_content(value) == expected


def test_operator_tool_results_are_rendered_canonically(operator_toolsets: dict[str, Toolset]) -> None:
    run = operator_toolsets["text_tools"].execute("echo_upper", {"text": "hé"})
    assert run.ok and run.result == {"upper": "HÉ", "original": "hé"}
    assert run.content == '{"upper": "HÉ", "original": "hé"}'


# ---------------------------------------------------------------------------- registry
@pytest.fixture
def restore_registry() -> Iterator[None]:
    before = {ts.name: ts for ts in list_toolsets()}
    yield
    for ts in list_toolsets():
        if ts.name not in before:
            unregister_toolset(ts.name)
    for ts in before.values():
        register_toolset(ts, replace=True)


def test_builtins_are_registered() -> None:
    names = [ts.name for ts in list_toolsets()]
    assert set(ALL_BUILTIN) <= set(names)
    assert names == sorted(names)
    for name in ALL_BUILTIN:
        ts = get_toolset(name)
        assert ts.name == name and ts.description and len(ts) == len(ts.names) > 0


def test_unknown_toolset_lists_the_known_ones() -> None:
    with pytest.raises(ScoringConfigError) as info:
        get_toolset("calculater")
    assert info.value.param == "toolset"
    assert "calculater" in str(info.value)
    assert all(name in str(info.value) for name in ALL_BUILTIN)


def test_register_replace_and_unregister(restore_registry: None) -> None:
    mine = Toolset("mine", [Tool("ping", "Ping.", {"type": "object", "properties": {}}, fn=lambda: "pong")])
    register_toolset(mine)
    assert get_toolset("mine").execute("ping", {}).content == "pong"
    with pytest.raises(ScoringConfigError, match="already registered") as info:
        register_toolset(Toolset("mine", []))
    assert info.value.param == "toolset"
    register_toolset(Toolset("mine", []), replace=True)
    assert get_toolset("mine").names == frozenset()
    with pytest.raises(ScoringConfigError):
        register_toolset(Toolset("calculator", []))
    unregister_toolset("mine")
    with pytest.raises(ScoringConfigError):
        get_toolset("mine")


def test_toolset_rejects_duplicate_tools_and_bad_schemas() -> None:
    tool = Tool("t", "", {"type": "object"})
    with pytest.raises(ScoringConfigError) as info:
        Toolset("dup", [tool, tool])
    assert info.value.param == "tools.t"
    with pytest.raises(ScoringConfigError) as info:
        Toolset("bad", [Tool("t", "", {"type": "object", "properties": {"x": {"type": 5}}})])
    assert info.value.param == "tools.t.parameters.properties.x.type"


def test_schemas_and_prompt_rendering() -> None:
    calc = get_toolset("calculator")
    schemas = calc.schemas()
    assert [s["function"]["name"] for s in schemas] == list(PAPER_CALCULATOR_TOOLS)
    assert all(s["type"] == "function" and set(s["function"]) == {"name", "description", "parameters"}
               for s in schemas)  # fmt: skip
    schemas[0]["function"]["parameters"]["properties"].clear()  # a copy: the toolset is unchanged
    assert calc.tools["add"].parameters["properties"]
    lines = render_tools_for_prompt(calc).split("\n")
    assert [json.loads(line) for line in lines] == calc.schemas()
    assert lines[0].startswith('{"type": "function", "function": {"name": "add"')


# ---------------------------------------------------------------------------- inline schemas
ADD = {"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {}}}}


def test_toolset_from_schemas_accepts_openai_and_bare_forms() -> None:
    ts = toolset_from_schemas(
        [
            ADD,
            {"name": "lookup", "description": "Find a key.", "parameters": {
                "type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}},
            {"type": "function", "function": {"name": "now"}},
        ]
    )  # fmt: skip
    assert ts.name == "inline"
    assert ts.names == frozenset({"add", "lookup", "now"})
    assert not any(tool.executable for tool in ts.tools.values())
    assert ts.schemas()[2] == {
        "type": "function",
        "function": {"name": "now", "description": "", "parameters": {"type": "object", "properties": {}}},
    }
    assert ts.validate_arguments("lookup", {}) == ["arguments.key: missing required argument"]
    run = ts.execute("lookup", {"key": "k"})
    assert (run.ok, run.error_type) == (False, "not_executable")
    # Arguments are still validated first, so a bad call says why before anything else.
    assert ts.execute("lookup", {}).error_type == "invalid_arguments"


def _fn(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, **extra}}


@pytest.mark.parametrize(
    ("schemas", "param"),
    [
        pytest.param({"type": "function"}, "tools", id="not-a-list"),
        pytest.param([42], "tools[0]", id="not-an-object"),
        pytest.param([{"type": "retrieval", "function": {"name": "a"}}], "tools[0].type", id="wrong-type"),
        pytest.param(
            [{"type": "function", "function": "add"}], "tools[0].function", id="function-not-object"
        ),
        pytest.param([{"description": "neither"}], "tools[0].function", id="no-function"),
        pytest.param(
            [ADD, {"type": "function", "function": {"description": "x"}}],
            "tools[1].function.name",
            id="missing-name",
        ),
        pytest.param([_fn("two words")], "tools[0].function.name", id="name-with-space"),
        pytest.param([_fn("")], "tools[0].function.name", id="empty-name"),
        pytest.param([_fn("a", description=5)], "tools[0].function.description", id="description-not-string"),
        pytest.param(
            [ADD, _fn("b"), _fn("c", parameters="string")],
            "tools[2].function.parameters",
            id="parameters-not-object",
        ),
        pytest.param(
            [_fn("a", parameters={"type": "array"})],
            "tools[0].function.parameters.type",
            id="parameters-not-object-type",
        ),
        pytest.param(
            [_fn("a", parameters={"type": "object", "properties": {"x": {"type": "float"}}})],
            "tools[0].function.parameters.properties.x.type",
            id="invalid-json-schema",
        ),
        pytest.param(
            [_fn("a", parameters={"type": "object", "properties": {"x": {"maximum": math.nan}}})],
            "tools[0].function.parameters",
            id="not-plain-json",
        ),
        pytest.param([ADD, ADD], "tools[1].function.name", id="duplicate"),
        pytest.param(
            [{"name": "a", "parameters": []}], "tools[0].parameters", id="bare-parameters-not-object"
        ),
    ],
)
def test_inline_schema_errors_name_the_field(schemas: Any, param: str) -> None:
    with pytest.raises(ScoringConfigError) as info:
        toolset_from_schemas(schemas)
    assert info.value.param == param
    assert str(info.value).startswith(param)


def test_bfcl_type_names_are_translated_on_request() -> None:
    bfcl = {
        "name": "math.factorial",
        "description": "Factorial.",
        "parameters": {
            "type": "dict",
            "properties": {
                "n": {"type": "integer"},
                "weights": {"type": "array", "items": {"type": "float"}},
                "extra": {"type": "any"},
                "pair": {"type": "tuple", "items": {"type": "string"}},
            },
            "required": ["n"],
        },
    }
    ts = toolset_from_schemas([bfcl], bfcl_types=True)
    assert (
        ts.validate_arguments("math.factorial", {"n": 5, "weights": [1.5], "extra": {"a": 1}, "pair": ["x"]})
        == []
    )
    assert ts.validate_arguments("math.factorial", {"n": 5, "weights": ["x"]}) == [
        "arguments.weights[0]: 'x' is not of type 'number'"
    ]
    with pytest.raises(ScoringConfigError) as info:
        toolset_from_schemas([bfcl])
    assert info.value.param == "tools[0].parameters.type"


# ---------------------------------------------------------------------------- toolsets files
def test_load_toolsets_file_yaml(operator_toolsets: dict[str, Toolset]) -> None:
    text = operator_toolsets["text_tools"]
    assert text.description == "Text utilities installed by the operator."
    assert list(text.tools) == ["word_count", "echo_upper", "shout", "lookup"]
    assert [t.name for t in text.tools.values() if t.executable] == ["word_count", "echo_upper", "shout"]
    assert text.execute("word_count", {"text": "one two  three"}).result == 3
    assert text.execute("shout", {"text": "hey"}).content == "HEY!"
    assert text.execute("word_count", {"text": 5}).error_message == (
        "invalid arguments: arguments.text: 5 is not of type 'string'"
    )
    assert text.execute("lookup", {"key": "k"}).error_type == "not_executable"
    assert operator_toolsets["failing_tools"].names == frozenset({"slow", "broken", "exits"})


def test_load_toolsets_file_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    path = tmp_path / "toolsets.json"
    path.write_text(json.dumps({"toolsets": [{
        "name": "counting",
        "tools": [{"type": "function", "function": {
            "name": "count", "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}}],
        "implementations": {"count": "operator_tools:word_count"},
    }]}))  # fmt: skip
    (ts,) = load_toolsets_file(path)
    assert (ts.name, ts.execute("count", {"text": "a b c"}).result) == ("counting", 3)
    # The built-in functions can be named too.
    path.write_text(json.dumps({"toolsets": [{
        "name": "tiny_calc", "tools": [get_toolset("calculator").tools["add"].schema()],
        "implementations": {"add": "mentor_server.toolsets.calculator:add"},
    }]}))  # fmt: skip
    assert load_toolsets_file(str(path))[0].execute("add", {"a": 0.1, "b": 0.2}).content == "0.3"


TOOL_A = (
    "{type: function, function: {name: a, parameters: {type: object, properties: {text: {type: string}}}}}"
)


def _with_impl(mapping: str) -> str:
    """A one-toolset file whose single tool `a` has the given `implementations` value."""
    return f"toolsets: [{{name: x, tools: [{TOOL_A}], implementations: {mapping}}}]\n"


BAD_SCHEMA = "{name: a, parameters: {type: object, properties: {n: {type: float}}}}"
IMPL = "toolsets[0].implementations"


@pytest.mark.parametrize(
    ("text", "param", "fragment"),
    [
        pytest.param("- a\n- b\n", "toolsets", "top-level 'toolsets' list", id="root-not-mapping"),
        pytest.param("foo: 1\n", "toolsets", "top-level 'toolsets' list", id="no-toolsets"),
        pytest.param("toolsets: [\n", "path", "not valid", id="invalid-yaml"),
        pytest.param("toolsets: [42]\n", "toolsets[0]", "expected an object", id="entry-not-mapping"),
        pytest.param(
            "toolsets: [{name: x, tools: [], implementation: {}}]\n",
            "toolsets[0].implementation",
            "unknown key",
            id="typo-key",
        ),
        pytest.param("toolsets: [{tools: []}]\n", "toolsets[0].name", "non-empty name", id="no-name"),
        pytest.param("toolsets: [{name: x}]\n", "toolsets[0].tools", "list of tool schemas", id="no-tools"),
        pytest.param(
            f"toolsets: [{{name: x, tools: [{BAD_SCHEMA}]}}]\n",
            "toolsets[0].tools[0].parameters.properties.n.type",
            "not a valid JSON schema",
            id="bad-schema",
        ),
        pytest.param(_with_impl("[a]"), IMPL, "mapping", id="implementations-not-mapping"),
        pytest.param(
            _with_impl("{b: 'operator_tools:slow'}"), f"{IMPL}.b", "no tool named 'b'", id="unknown-tool"
        ),
        pytest.param(
            _with_impl("{a: operator_tools.slow}"), f"{IMPL}.a", "import path", id="not-an-import-path"
        ),
        pytest.param(_with_impl("{a: 'operator_tools:'}"), f"{IMPL}.a", "import path", id="empty-attribute"),
        pytest.param(
            _with_impl("{a: 'no_such_module_q:f'}"), f"{IMPL}.a", "cannot import", id="module-missing"
        ),
        pytest.param(
            _with_impl("{a: 'operator_tools:nope'}"), f"{IMPL}.a", "no attribute", id="attribute-missing"
        ),
        pytest.param(
            _with_impl("{a: 'operator_tools:NOT_CALLABLE'}"), f"{IMPL}.a", "not callable", id="not-callable"
        ),
        pytest.param(
            "toolsets: [{name: x, tools: []}, {name: x, tools: []}]\n",
            "toolsets[1].name",
            "duplicate toolset name",
            id="duplicate-toolset",
        ),
    ],
)
def test_toolsets_file_errors_name_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, param: str, fragment: str
) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    path = tmp_path / "toolsets.yaml"
    path.write_text(text)
    with pytest.raises(ScoringConfigError) as info:
        load_toolsets_file(path)
    assert info.value.param == param
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("missing.yaml", None, id="missing-file"),
        pytest.param("broken.json", "{", id="invalid-json"),
    ],
)
def test_unreadable_toolsets_file(tmp_path: Path, name: str, content: str | None) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ScoringConfigError) as info:
        load_toolsets_file(path)
    assert info.value.param == "path"


# ---------------------------------------------------------------------------- functions for TRL
def test_parse_docstring() -> None:
    def f(x: int, y: str = "") -> None:
        """Do a thing.

        Longer explanation.

        Args:
            x: The first
                argument, over two lines.
            y (str): The second.

        Returns:
            Nothing.
        """

    assert parse_docstring(f) == (
        "Do a thing.\n\nLonger explanation.",
        {"x": "The first argument, over two lines.", "y": "The second."},
    )


def _no_description(a: int) -> int:
    """Summary.

    Args:
        b: Not a.
    """
    return a


def _bad_hint(a: dict[str, int]) -> int:
    """Summary.

    Args:
        a: A mapping.
    """
    return 0


def _varargs(*a: int) -> int:
    """Summary.

    Args:
        a: Numbers.
    """
    return 0


def _no_docstring(a: int) -> int:
    return a


@pytest.mark.parametrize(
    ("fn", "constraints", "exc", "fragment"),
    [
        pytest.param(_no_description, None, ValueError, "does not describe", id="undocumented-argument"),
        pytest.param(_bad_hint, None, TypeError, "unsupported type hint", id="dict-hint"),
        pytest.param(_varargs, None, TypeError, "named arguments only", id="varargs"),
        pytest.param(_no_docstring, None, ValueError, "summary", id="no-docstring"),
        pytest.param(
            calculator.add, {"c": {"minimum": 0}}, ValueError, "unknown arguments", id="stray-constraint"
        ),
    ],
)
def test_tool_from_function_errors(fn: Any, constraints: Any, exc: type, fragment: str) -> None:
    with pytest.raises(exc, match=fragment):
        tool_from_function(fn, constraints)


def test_tool_from_function_types() -> None:
    tool = get_toolset("calculator").tools["round_number"]
    assert tool.parameters["properties"]["ndigits"]["type"] == "integer"
    assert tool.parameters["required"] == ["a"]
    assert get_toolset("calculator").tools["sum_numbers"].parameters["properties"]["numbers"]["items"] == {
        "type": "number"
    }
    assert get_toolset("units").tools["convert_time"].parameters["properties"]["to_unit"]["enum"][:2] == [
        "millisecond",
        "second",
    ]


BUILTIN_FUNCTIONS = [*calculator.FUNCTIONS, *units.FUNCTIONS, *dates.FUNCTIONS]


def test_builtin_tools_match_their_functions() -> None:
    by_name = {fn.__name__: fn for fn in BUILTIN_FUNCTIONS}
    tools = [tool for name in ALL_BUILTIN for tool in get_toolset(name).tools.values()]
    assert {t.name for t in tools} == set(by_name)
    for tool in tools:
        assert tool.fn is by_name[tool.name]


@pytest.mark.slow
def test_trl_sees_the_same_schemas() -> None:
    """TRL builds schemas from the functions (transformers' `get_json_schema`); they must agree with ours."""
    chat_template_utils = pytest.importorskip("transformers.utils.chat_template_utils")
    tools = {t.name: t for name in ALL_BUILTIN for t in get_toolset(name).tools.values()}
    for fn in BUILTIN_FUNCTIONS:
        theirs = chat_template_utils.get_json_schema(fn)["function"]
        ours = tools[fn.__name__].schema()["function"]
        assert theirs["name"] == ours["name"]
        assert theirs["description"] == ours["description"], fn.__name__
        assert theirs["parameters"]["required"] == ours["parameters"]["required"], fn.__name__
        for arg, schema in theirs["parameters"]["properties"].items():
            mine = ours["parameters"]["properties"][arg]
            for key in ("type", "enum", "items", "description"):
                assert schema.get(key) == mine.get(key), (fn.__name__, arg, key)


@pytest.mark.slow
def test_prompt_rendering_matches_the_qwen_template() -> None:
    trl = pytest.importorskip("trl")
    chat_template_utils = pytest.importorskip("transformers.utils.chat_template_utils")
    template = (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text()
    for name in ALL_BUILTIN:
        ts = get_toolset(name)
        rendered, _ = chat_template_utils.render_jinja_template(
            conversations=[[{"role": "user", "content": "hi"}]], tools=ts.schemas(), chat_template=template
        )
        assert f"<tools>\n{render_tools_for_prompt(ts)}\n</tools>" in rendered[0]


# ---------------------------------------------------------------------------- imports
def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout


def test_toolsets_import_no_framework() -> None:
    code = (
        "import json, sys\n"
        "import mentor_server.toolsets as t\n"
        "t.get_toolset('calculator').execute('add', {'a': 1, 'b': 2})\n"
        "bad = ('fastapi', 'starlette', 'uvicorn', 'httpx', 'torch', 'trl', 'transformers', 'yaml')\n"
        "print(json.dumps(sorted(m for m in bad if m in sys.modules)))\n"
    )
    assert json.loads(_python(code)) == []


def test_toolsets_imported_before_the_engine() -> None:
    # The engine imports this package; importing this package first must not trip over the cycle.
    code = (
        "import mentor_server.toolsets as t\n"
        "import mentor_server.scoring as s\n"
        "try:\n"
        "    t.get_toolset('nope')\n"
        "except s.ScoringConfigError as e:\n"
        "    print(e.param)\n"
    )
    assert _python(code).strip() == "toolset"


# ---------------------------------------------------------------------------- fast validation path
_FAST_SCHEMA_CASES = [
    {"a": 1, "b": 2.5},
    {"a": 1},
    {"a": True, "b": 1},
    {"a": "1", "b": 2},
    {"a": 1, "b": 2, "c": 3},
    {"a": float("nan"), "b": 1},
    {"a": 1.0, "b": 2},
    {"value": 3, "from_unit": "meter", "to_unit": "mile"},
    {"value": 3, "from_unit": "metre", "to_unit": "mile"},
    {"value": True, "from_unit": "meter", "to_unit": "mile"},
    {"date": "2024-01-31", "days": 3},
    {"date": "31/01/2024", "days": 3},
    {"date": "2024-01-31", "days": 3.0},
    {"date": "2024-01-31", "days": 10**9},
]


@pytest.mark.parametrize("arguments", _FAST_SCHEMA_CASES, ids=lambda a: json.dumps(a, default=str)[:60])
@pytest.mark.parametrize(
    ("toolset_name", "tool"), [("calculator", "add"), ("units", "convert_length"), ("dates", "add_days")]
)
def test_fast_validation_agrees_with_jsonschema(toolset_name: str, tool: str, arguments: dict) -> None:
    import jsonschema as js

    from mentor_server.toolsets import get_toolset

    toolset = get_toolset(toolset_name)
    schema = toolset.tools[tool].parameters
    expected_valid = js.Draft202012Validator(schema).is_valid(arguments)
    assert (toolset.validate_arguments(tool, arguments) == []) == expected_valid
