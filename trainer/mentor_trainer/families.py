"""The benchmark's task families and the programmatic teacher that solves them with real tools.

Each family draws numbers, solves its problem by calling the toolset's tools through `Teacher`
(which records every call with the result the tool returned), and returns the question text.
Families register into `FAMILIES` by group: "in_domain" (the `train`/`test` splits), "ood_long"
(longer chains of in-domain tools), "ood_combo" (pairs never seen together in training), and a
toolset name for another domain (`units`, `dates`). `benchmark` turns them into seeded splits.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .chat import canonical_number

IN_DOMAIN_SPLITS = ("train", "test")
CALCULATOR = "calculator"


class GenerationError(ValueError):
    """A teacher call failed (the generator retries with fresh numbers), or a split asked for more
    distinct problems than its families can write."""


MAX_MISSES = 200
"""Consecutive failed or repeated draws after which a family counts as exhausted for a split."""


# ---------------------------------------------------------------------------- the teacher
@dataclass
class Teacher:
    """Runs tools for a family and records the reference trace.

    `call(name, *values)` binds positional values to the tool's parameters in schema order (so
    families do not hard-code argument names), executes the tool, and returns the result.
    """

    toolset: Any
    calls: list[dict[str, Any]] = field(default_factory=list)
    contents: list[str] = field(default_factory=list)
    answer: Any = None
    """The final answer when it is not the last tool result (a retrieval family reads it from documents)."""

    def call(self, name: str, *values: Any, **named: Any) -> Any:
        tool = self.toolset.tools[name]
        order = list((tool.parameters.get("properties") or {}).keys())
        arguments = {order[i]: canonical_number(v) for i, v in enumerate(values)}
        arguments.update({k: canonical_number(v) for k, v in named.items()})
        execution = self.toolset.execute(name, arguments)
        if not execution.ok:
            raise GenerationError(f"{name}({arguments}) failed: {execution.error_message}")
        result = canonical_number(execution.result)
        self.calls.append({"name": name, "arguments": arguments, "result": result})
        self.contents.append(str(execution.content))
        return result


Builder = Callable[[random.Random, Teacher], str]
"""Draws numbers, calls the teacher's tools, and returns the question text."""


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    toolset: str
    tools: tuple[str, ...]
    build: Builder


FAMILIES: dict[str, list[Family]] = {}
"""Families by split group: "in_domain", "ood_long", "ood_combo", or a toolset name (other domains)."""


def family(group: str, toolset: str, *tools: str) -> Callable[[Builder], Builder]:
    def register(build: Builder) -> Builder:
        FAMILIES.setdefault(group, []).append(Family(build.__name__.lstrip("_"), toolset, tools, build))
        return build

    return register


def _pick(rng: random.Random, *templates: str) -> str:
    return rng.choice(templates)


def _listing(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values[:-1]) + f" and {values[-1]}"


# ---------------------------------------------------------------------------- in-domain: calculator
@family("in_domain", CALCULATOR, "add")
def _add(rng: random.Random, t: Teacher) -> str:
    a, b = rng.randint(2, 999), rng.randint(2, 999)
    t.call("add", a, b)
    return _pick(
        rng,
        f"What is {a} plus {b}?",
        f"Add {a} and {b}.",
        f"A library has {a} books and receives {b} more. How many books does it have now?",
    )


@family("in_domain", CALCULATOR, "subtract")
def _subtract(rng: random.Random, t: Teacher) -> str:
    b = rng.randint(2, 500)
    a = b + rng.randint(1, 500)
    t.call("subtract", a, b)
    return _pick(
        rng,
        f"What is {a} minus {b}?",
        f"Subtract {b} from {a}.",
        f"A farmer had {a} eggs and sold {b}. How many eggs are left?",
    )


@family("in_domain", CALCULATOR, "multiply")
def _multiply(rng: random.Random, t: Teacher) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 30)
    t.call("multiply", a, b)
    return _pick(
        rng,
        f"What is {a} times {b}?",
        f"Multiply {a} by {b}.",
        f"A box holds {a} pencils. How many pencils are in {b} boxes?",
    )


@family("in_domain", CALCULATOR, "divide")
def _divide(rng: random.Random, t: Teacher) -> str:
    b, q = rng.randint(2, 20), rng.randint(2, 50)
    a = b * q
    t.call("divide", a, b)
    return _pick(
        rng,
        f"What is {a} divided by {b}?",
        f"Divide {a} by {b}.",
        f"{a} cookies are shared equally among {b} children. How many cookies does each child get?",
    )


@family("in_domain", CALCULATOR, "sum_numbers")
def _sum_numbers(rng: random.Random, t: Teacher) -> str:
    values = [rng.randint(1, 99) for _ in range(rng.randint(3, 5))]
    t.call("sum_numbers", values)
    return _pick(rng, f"What is the sum of {_listing(values)}?", f"Add up {_listing(values)}.")


@family("in_domain", CALCULATOR, "floor")
def _floor(rng: random.Random, t: Teacher) -> str:
    a = round(rng.uniform(1, 500), 2)
    t.call("floor", a)
    return _pick(rng, f"What is {a} rounded down to a whole number?", f"Take the floor of {a}.")


@family("in_domain", CALCULATOR, "ceil")
def _ceil(rng: random.Random, t: Teacher) -> str:
    a = round(rng.uniform(1, 500), 2)
    t.call("ceil", a)
    return _pick(rng, f"What is {a} rounded up to a whole number?", f"Take the ceiling of {a}.")


@family("in_domain", CALCULATOR, "round_number")
def _round_number(rng: random.Random, t: Teacher) -> str:
    a = round(rng.uniform(1, 500), 3)
    if rng.random() < 0.5:
        t.call("round_number", a)
        return _pick(rng, f"Round {a} to the nearest whole number.", f"What is {a} rounded to an integer?")
    t.call("round_number", a, 1)
    return f"Round {a} to one decimal place."


@family("in_domain", CALCULATOR, "power")
def _power(rng: random.Random, t: Teacher) -> str:
    a, b = rng.randint(2, 30), rng.randint(2, 4)
    t.call("power", a, b)
    return _pick(rng, f"What is {a} to the power of {b}?", f"Raise {a} to the power {b}.")


@family("in_domain", CALCULATOR, "sqrt")
def _sqrt(rng: random.Random, t: Teacher) -> str:
    a = rng.randint(2, 300) ** 2
    t.call("sqrt", a)
    return _pick(rng, f"What is the square root of {a}?", f"Find the square root of {a}.")


@family("in_domain", CALCULATOR, "abs_value")
def _abs_value(rng: random.Random, t: Teacher) -> str:
    a = -rng.randint(1, 999)
    t.call("abs_value", a)
    return _pick(rng, f"What is the absolute value of {a}?", f"How far is {a} from zero?")


@family("in_domain", CALCULATOR, "modulo")
def _modulo(rng: random.Random, t: Teacher) -> str:
    a, b = rng.randint(10, 999), rng.randint(2, 12)
    t.call("modulo", a, b)
    return _pick(rng, f"What is {a} modulo {b}?", f"What is the remainder when {a} is divided by {b}?")


@family("in_domain", CALCULATOR, "add", "multiply")
def _add_multiply(rng: random.Random, t: Teacher) -> str:
    a, b, c = rng.randint(2, 60), rng.randint(2, 60), rng.randint(2, 12)
    t.call("multiply", t.call("add", a, b), c)
    return _pick(
        rng,
        f"What is ({a} + {b}) times {c}?",
        f"A shop sells {a} red and {b} blue pens each day. How many pens does it sell in {c} days?",
    )


@family("in_domain", CALCULATOR, "subtract", "divide")
def _subtract_divide(rng: random.Random, t: Teacher) -> str:
    c, q, b = rng.randint(2, 12), rng.randint(2, 40), rng.randint(1, 200)
    a = b + c * q
    t.call("divide", t.call("subtract", a, b), c)
    return _pick(
        rng,
        f"What is ({a} - {b}) divided by {c}?",
        f"Out of {a} apples, {b} are rotten. The rest are packed equally into {c} crates. "
        "How many apples go in each crate?",
    )


@family("in_domain", CALCULATOR, "sum_numbers", "divide")
def _average(rng: random.Random, t: Teacher) -> str:
    n = rng.randint(3, 5)
    values = [rng.randint(1, 99) for _ in range(n - 1)]
    values.append(rng.randint(1, 20) * n + (-sum(values)) % n)  # the sum is divisible by n
    t.call("divide", t.call("sum_numbers", values), n)
    return _pick(
        rng,
        f"What is the average of {_listing(values)}?",
        f"A student scored {_listing(values)} on {n} tests. What is the mean score?",
    )


@family("in_domain", CALCULATOR, "multiply", "round_number")
def _multiply_round(rng: random.Random, t: Teacher) -> str:
    price, qty = round(rng.uniform(0.5, 20), 2), rng.randint(2, 15)
    t.call("round_number", t.call("multiply", price, qty))
    return _pick(
        rng,
        f"What is {price} times {qty}, rounded to the nearest whole number?",
        f"A notebook costs {price} dollars. What do {qty} notebooks cost, rounded to whole dollars?",
    )


# ---------------------------------------------------------------------------- out of domain: longer chains
@family("ood_long", CALCULATOR, "add", "multiply", "subtract")
def _add_multiply_subtract(rng: random.Random, t: Teacher) -> str:
    a, b, c, d = rng.randint(2, 50), rng.randint(2, 50), rng.randint(2, 9), rng.randint(1, 90)
    t.call("subtract", t.call("multiply", t.call("add", a, b), c), d)
    return f"What is ({a} + {b}) times {c}, minus {d}?"


@family("ood_long", CALCULATOR, "sum_numbers", "divide", "multiply")
def _average_times(rng: random.Random, t: Teacher) -> str:
    n = rng.randint(3, 4)
    values = [rng.randint(1, 60) for _ in range(n - 1)]
    values.append(rng.randint(1, 20) * n + (-sum(values)) % n)
    k = rng.randint(2, 9)
    t.call("multiply", t.call("divide", t.call("sum_numbers", values), n), k)
    return f"Take the average of {_listing(values)} and multiply it by {k}."


@family("ood_long", CALCULATOR, "multiply", "add", "divide")
def _multiply_add_divide(rng: random.Random, t: Teacher) -> str:
    d, a, b = rng.randint(2, 9), rng.randint(2, 30), rng.randint(2, 30)
    c = d * rng.randint(1, 40) + (-(a * b)) % d
    t.call("divide", t.call("add", t.call("multiply", a, b), c), d)
    return f"What is ({a} times {b} plus {c}) divided by {d}?"


@family("ood_long", CALCULATOR, "add", "multiply", "subtract", "divide")
def _four_steps(rng: random.Random, t: Teacher) -> str:
    a, b, c, e = rng.randint(2, 40), rng.randint(2, 40), rng.randint(2, 6), rng.randint(2, 9)
    total = (a + b) * c
    d = rng.randint(1, total - 1)
    d -= (total - d) % e  # make the difference divisible by e
    if d <= 0:
        d += e
    t.call("divide", t.call("subtract", t.call("multiply", t.call("add", a, b), c), d), e)
    return f"Add {a} and {b}, multiply by {c}, subtract {d}, then divide by {e}. What is the result?"


@family("ood_long", CALCULATOR, "power", "add", "round_number")
def _power_add_round(rng: random.Random, t: Teacher) -> str:
    a, b, c = rng.randint(2, 9), rng.randint(2, 3), round(rng.uniform(0.1, 50), 2)
    t.call("round_number", t.call("add", t.call("power", a, b), c))
    return f"What is {a} to the power of {b} plus {c}, rounded to the nearest whole number?"


# ---------------------------------------------------------------------------- out of domain: unseen pairs
@family("ood_combo", CALCULATOR, "add", "modulo")
def _add_modulo(rng: random.Random, t: Teacher) -> str:
    a, b, c = rng.randint(2, 500), rng.randint(2, 500), rng.randint(2, 12)
    t.call("modulo", t.call("add", a, b), c)
    return f"What is the remainder when {a} + {b} is divided by {c}?"


@family("ood_combo", CALCULATOR, "subtract", "abs_value")
def _subtract_abs(rng: random.Random, t: Teacher) -> str:
    a = rng.randint(2, 400)
    b = a + rng.randint(1, 400)
    t.call("abs_value", t.call("subtract", a, b))
    return f"What is the absolute value of {a} minus {b}?"


@family("ood_combo", CALCULATOR, "divide", "ceil")
def _divide_ceil(rng: random.Random, t: Teacher) -> str:
    b = rng.randint(3, 40)
    a = b * rng.randint(2, 20) + rng.randint(1, b - 1)
    t.call("ceil", t.call("divide", a, b))
    return f"{a} students go on a trip and each bus seats {b}. How many buses are needed?"


@family("ood_combo", CALCULATOR, "divide", "floor")
def _divide_floor(rng: random.Random, t: Teacher) -> str:
    b = rng.randint(3, 24)
    a = b * rng.randint(2, 30) + rng.randint(1, b - 1)
    t.call("floor", t.call("divide", a, b))
    return f"{a} eggs are packed in cartons of {b}. How many full cartons are there?"


@family("ood_combo", CALCULATOR, "multiply", "sqrt")
def _multiply_sqrt(rng: random.Random, t: Teacher) -> str:
    k, m, n = rng.randint(1, 6), rng.randint(1, 9), rng.randint(1, 9)
    a, b = k * m * m, k * n * n  # a * b is a perfect square
    t.call("sqrt", t.call("multiply", a, b))
    return f"What is the square root of {a} times {b}?"


@family("ood_combo", CALCULATOR, "power", "subtract")
def _power_subtract(rng: random.Random, t: Teacher) -> str:
    a, b = rng.randint(2, 12), rng.randint(2, 3)
    c = rng.randint(1, a**b - 1)
    t.call("subtract", t.call("power", a, b), c)
    return f"What is {a} to the power of {b} minus {c}?"


# ---------------------------------------------------------------------------- out of domain: units
_PLURAL = {
    "foot": "feet",
    "inch": "inches",
    "celsius": "Celsius",
    "fahrenheit": "Fahrenheit",
    "kelvin": "kelvin",
}
_UNIT_CHOICES = {
    "convert_length": ("millimeter", "centimeter", "meter", "kilometer", "inch", "foot", "yard", "mile"),
    "convert_mass": ("gram", "kilogram", "ounce", "pound", "tonne"),
    "convert_time": ("second", "minute", "hour", "day", "week"),
    "convert_volume": ("milliliter", "liter", "cup", "pint", "quart", "gallon"),
}


def _units(unit: str) -> str:
    return _PLURAL.get(unit, unit.replace("_", " ") + "s")


def _unit_pair(rng: random.Random, tool: str) -> tuple[str, str]:
    src, dst = rng.sample(_UNIT_CHOICES[tool], 2)
    return src, dst


def _conversion_family(tool: str) -> Builder:
    def build(rng: random.Random, t: Teacher) -> str:
        src, dst = _unit_pair(rng, tool)
        value = rng.randint(1, 500) if rng.random() < 0.7 else round(rng.uniform(0.5, 100), 1)
        t.call(tool, value, src, dst)
        return _pick(
            rng,
            f"Convert {value} {_units(src)} to {_units(dst)}.",
            f"How many {_units(dst)} are in {value} {_units(src)}?",
        )

    build.__name__ = tool
    return build


for _tool in _UNIT_CHOICES:
    family("units", "units", _tool)(_conversion_family(_tool))


@family("units", "units", "convert_temperature")
def _convert_temperature(rng: random.Random, t: Teacher) -> str:
    src, dst = rng.sample(("celsius", "fahrenheit", "kelvin"), 2)
    value = rng.randint(-40, 120) if src != "kelvin" else rng.randint(230, 400)
    t.call("convert_temperature", value, src, dst)
    degrees = "" if src == "kelvin" else "degrees "
    return f"What is {value} {degrees}{_units(src)} in {_units(dst)}?"


@family("units", "units", "convert_length", "convert_length")
def _length_two_steps(rng: random.Random, t: Teacher) -> str:
    src, mid, dst = rng.sample(_UNIT_CHOICES["convert_length"], 3)
    value = rng.randint(1, 200)
    t.call("convert_length", t.call("convert_length", value, src, mid), mid, dst)
    return f"Convert {value} {_units(src)} to {_units(mid)}, then convert that to {_units(dst)}."


# ---------------------------------------------------------------------------- out of domain: dates
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _iso(rng: random.Random) -> str:
    return f"{rng.randint(1990, 2040):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


@family("dates", "dates", "days_between")
def _days_between(rng: random.Random, t: Teacher) -> str:
    start, end = sorted((_iso(rng), _iso(rng)))
    t.call("days_between", start, end)
    return f"How many days are there from {start} to {end}?"


@family("dates", "dates", "add_days")
def _add_days(rng: random.Random, t: Teacher) -> str:
    date, days = _iso(rng), rng.randint(1, 400)
    t.call("add_days", date, days)
    return f"What date is {days} days after {date}? Answer as YYYY-MM-DD."


@family("dates", "dates", "weekday_of")
def _weekday_of(rng: random.Random, t: Teacher) -> str:
    date = _iso(rng)
    t.call("weekday_of", date)
    return f"What day of the week is {date}?"


@family("dates", "dates", "days_in_month")
def _days_in_month(rng: random.Random, t: Teacher) -> str:
    year, month = rng.randint(1900, 2100), rng.randint(1, 12)
    t.call("days_in_month", year, month)
    return f"How many days does {_MONTHS[month - 1]} {year} have?"


@family("dates", "dates", "add_days", "weekday_of")
def _add_days_weekday(rng: random.Random, t: Teacher) -> str:
    date, days = _iso(rng), rng.randint(1, 200)
    t.call("weekday_of", t.call("add_days", date, days))
    return f"A parcel ships on {date} and arrives {days} days later. On what day of the week does it arrive?"


@family("dates", "dates", "add_months", "day_of_year")
def _add_months_day_of_year(rng: random.Random, t: Teacher) -> str:
    date, months = _iso(rng), rng.randint(1, 11)
    t.call("day_of_year", t.call("add_months", date, months))
    return f"Which day of the year is {months} months after {date}?"
