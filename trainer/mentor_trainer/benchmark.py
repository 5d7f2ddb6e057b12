"""A controlled executable-tool benchmark: generated problems, a programmatic teacher, seeded splits.

Each *task family* writes a word or number problem and solves it by calling real tools through the
toolset's executor: the teacher trace (calls with name, arguments and the result the tool actually
returned, then the final answer) is therefore correct by construction, and the ground truth is the
last tool result. Families fix their tool sequence, which lets the splits probe generalisation the
way the MENTOR paper does:

- `train` / `test`: in-domain, 1-2 calls, every calculator tool alone plus a fixed set of pairs;
- `ood_long`: chains of 3-4 calls built from in-domain tools;
- `ood_combo`: pairs of (seen) tools never paired in training;
- `ood_<toolset>`: another domain with different tools (e.g. `ood_units`).

Generation is seeded per split (`random.Random(f"{seed}:{split}")`) and test questions that also
occur in `train` are dropped, so two runs with one seed write identical files.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .chat import SYSTEM_INSTRUCTION, boxed, canonical_number, format_answer, tool_system_prompt

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


# ---------------------------------------------------------------------------- splits and rows
@dataclass(frozen=True, slots=True)
class BenchmarkSizes:
    """Rows per split: `train`, `test` (in-domain) and each out-of-domain split."""

    train: int = 2000
    test: int = 200
    ood: int = 200


def split_groups() -> dict[str, str]:
    """Split name → family group. Other domains appear when their toolset is registered."""
    from mentor_server.toolsets import list_toolsets

    registered = {ts.name for ts in list_toolsets()}
    splits = {"train": "in_domain", "test": "in_domain", "ood_long": "ood_long", "ood_combo": "ood_combo"}
    for group in FAMILIES:
        if group not in ("in_domain", "ood_long", "ood_combo") and group in registered:
            splits[f"ood_{group}"] = group
    return splits


def _row(split: str, index: int, fam: Family, question: str, teacher: Teacher, system: str) -> dict[str, Any]:
    answer = format_answer(teacher.calls[-1]["result"])
    prompt = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    messages = list(prompt)
    for call, content in zip(teacher.calls, teacher.contents, strict=True):
        call_message: dict[str, Any] = {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}],
        }
        messages.append(call_message)
        messages.append({"role": "tool", "name": call["name"], "content": content})
    messages.append({"role": "assistant", "content": f"The answer is {boxed(answer)}."})
    return {
        "id": f"{split}-{index:05d}",
        "split": split,
        "toolset": fam.toolset,
        "family": fam.name,
        "prompt": prompt,
        "ground_truth": answer,
        "reference": {"calls": teacher.calls, "answer": answer},
        "teacher_tools": list(dict.fromkeys(c["name"] for c in teacher.calls)),
        "messages": messages,
    }


def _system_prompts(toolset_names: Iterable[str]) -> dict[str, str]:
    from mentor_server.toolsets import get_toolset

    from .tools import prompt_schemas

    return {
        name: tool_system_prompt(prompt_schemas(get_toolset(name).schemas()), SYSTEM_INSTRUCTION)
        for name in set(toolset_names)
    }


def generate_split(
    split: str, group: str, n: int, seed: int, exclude: set[str] | None = None, progress: Any = None
) -> list[dict[str, Any]]:
    """`n` rows of one split; families are used in turn so every combo is represented."""
    from mentor_server.toolsets import get_toolset

    families = FAMILIES[group]
    systems = _system_prompts(f.toolset for f in families)
    rng = random.Random(f"{seed}:{split}")
    rows: list[dict[str, Any]] = []
    seen = set(exclude or ())
    # Families take turns; one whose problem space is used up (say, square roots of small
    # squares) drops out after MAX_MISSES draws in a row that fail or repeat, and the others
    # fill the split.
    active = list(range(len(families)))
    misses = [0] * len(families)
    turn = 0
    while len(rows) < n:
        if not active:
            raise GenerationError(
                f"split {split}: its families can write only {len(rows)} distinct problems, not {n}; ask for fewer rows"
            )
        index = active[turn % len(active)]
        fam = families[index]
        teacher = Teacher(get_toolset(fam.toolset))
        try:
            question = fam.build(rng, teacher)
        except GenerationError:
            question = None
        if question is None or question in seen:
            misses[index] += 1
            if misses[index] >= MAX_MISSES:
                active.remove(index)
            continue
        misses[index] = 0
        turn += 1
        seen.add(question)
        rows.append(_row(split, len(rows), fam, question, teacher, systems[fam.toolset]))
        if progress is not None:
            progress.update(1)
    return rows


def generate_benchmark(
    seed: int = 0, sizes: BenchmarkSizes | None = None, progress: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Every split, in memory. Test questions never repeat a training question."""
    sizes = sizes or BenchmarkSizes()
    groups = split_groups()
    counts = {name: sizes.train if name == "train" else sizes.test if name == "test" else sizes.ood for name in groups}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(counts.values()), desc="make-data", unit="row")
    out: dict[str, list[dict[str, Any]]] = {}
    train_questions: set[str] = set()
    for name, group in groups.items():
        rows = generate_split(
            name,
            group,
            counts[name],
            seed,
            exclude=train_questions if name != "train" else None,
            progress=bar,
        )
        if name == "train":
            train_questions = {r["prompt"][-1]["content"] for r in rows}
        out[name] = rows
    if bar is not None:
        bar.close()
    return out


# ---------------------------------------------------------------------------- files
JSON_TEXT_COLUMNS = ("reference", "messages")
"""Columns stored as JSON text in parquet and `datasets` (see `to_dataset`)."""


def dataset_features() -> Any:
    """The `datasets` schema of a benchmark split.

    `prompt` (strings only) uses the `Json` type, so TRL reads it as a message list. `reference`
    and `messages` hold tool arguments and results, i.e. floats, and `datasets`' `Json` type is
    lossy for floats (it encodes with pandas' ujson at 10 decimals and decodes imprecisely:
    0.0038608 comes back as 0.0038607999999999997), so they are exact JSON text instead;
    `json.loads` them, or read the JSONL files. The client's TRL reward accepts a JSON-text
    `reference` as it is.
    """
    from datasets import Features, Json, List, Value

    return Features(
        {
            "id": Value("string"),
            "split": Value("string"),
            "toolset": Value("string"),
            "family": Value("string"),
            "prompt": List(Json()),
            "ground_truth": Value("string"),
            "reference": Value("string"),
            "teacher_tools": List(Value("string")),
            "messages": Value("string"),
        }
    )


def to_dataset(rows: list[dict[str, Any]], features: Any) -> Any:
    """A `datasets.Dataset` of `rows` with `features`; JSON is encoded here, with exact floats.

    Values bound for a `Json` feature, or for a string feature while not yet strings (the
    `JSON_TEXT_COLUMNS`), are encoded with the standard library: `datasets` keeps a value that is
    already JSON text as it is, instead of re-encoding it at 10 decimal places.
    """
    from datasets import Dataset, Json, List, Value

    def encode(value: Any, feature: Any) -> Any:
        if isinstance(feature, Json) or (isinstance(feature, Value) and not isinstance(value, str)):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(feature, List) and isinstance(feature.feature, Json) and isinstance(value, list):
            return [json.dumps(v, ensure_ascii=False) for v in value]
        return value

    encoded = [{k: encode(r[k], f) for k, f in features.items()} for r in rows]
    return Dataset.from_list(encoded, features=features)


def write_benchmark(
    out: str | Path, splits: dict[str, list[dict[str, Any]]], seed: int, parquet: bool = True
) -> dict[str, Any]:
    """Write `<split>.jsonl` (and `.parquet`) plus `manifest.json` with counts and content hashes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"seed": seed, "splits": {}}
    for name, rows in splits.items():
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
        (out / f"{name}.jsonl").write_text(text, encoding="utf-8")
        if parquet:
            to_dataset(rows, dataset_features()).to_parquet(str(out / f"{name}.parquet"))
        manifest["splits"][name] = {
            "rows": len(rows),
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "families": dict(sorted(Counter(r["family"] for r in rows).items())),
            "toolsets": sorted({r["toolset"] for r in rows}),
        }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def load_rows(data_dir: str | Path, split: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of one split as plain dicts (from `<split>.jsonl`)."""
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.exists():
        available = sorted(p.stem for p in Path(data_dir).glob("*.jsonl"))
        raise FileNotFoundError(f"no split {split!r} in {data_dir} (available: {', '.join(available) or 'none'})")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
                if limit is not None and len(rows) >= limit:
                    break
    return rows


def load_split(data_dir: str | Path, split: str, limit: int | None = None) -> Any:
    """One split as a `datasets.Dataset` with `dataset_features()` (the parquet files' schema).

    Heterogeneous values (each tool's arguments have their own keys) never go through a struct
    column, which would add `None` for every key of every other tool.
    """
    from datasets import Features

    rows = load_rows(data_dir, split, limit)
    features = Features({k: v for k, v in dataset_features().items() if all(k in r for r in rows)})
    return to_dataset(rows, features)


# ---------------------------------------------------------------------------- verification
def verify_row(row: dict[str, Any]) -> list[str]:
    """Re-execute a row's reference trace with the toolset; return the problems found (none: correct).

    Checks: each recorded result is what the tool returns for the recorded arguments; the tool
    messages show the toolset's content; the final answer is the last result and is boxed.
    """
    from mentor_server.toolsets import get_toolset

    problems: list[str] = []
    toolset = get_toolset(row["toolset"])
    calls = row["reference"]["calls"]
    tool_messages = [m for m in row["messages"] if m["role"] == "tool"]
    if len(tool_messages) != len(calls):
        problems.append("tool messages and reference calls differ in number")
    for i, call in enumerate(calls):
        execution = toolset.execute(call["name"], call["arguments"])
        if not execution.ok:
            problems.append(f"call {i} ({call['name']}) fails: {execution.error_message}")
            continue
        if canonical_number(execution.result) != call["result"]:
            problems.append(f"call {i} ({call['name']}): recorded {call['result']!r}, tool says {execution.result!r}")
        if i < len(tool_messages) and tool_messages[i]["content"] != execution.content:
            problems.append(f"call {i}: the tool message is not the tool's content")
        if i > 0 and not _uses_previous(call["arguments"], calls[i - 1]["result"]):
            problems.append(f"call {i} does not use the previous result")
    answer = format_answer(calls[-1]["result"]) if calls else None
    if row["ground_truth"] != answer or row["reference"]["answer"] != answer:
        problems.append(f"ground truth {row['ground_truth']!r} is not the last result {answer!r}")
    if boxed(str(answer)) not in str(row["messages"][-1]["content"]):
        problems.append("the final message does not box the answer")
    if row["teacher_tools"] != list(dict.fromkeys(c["name"] for c in calls)):
        problems.append("teacher_tools does not list the trace's tools")
    return problems


def _uses_previous(arguments: dict[str, Any], previous: Any) -> bool:
    values = [v for value in arguments.values() for v in (value if isinstance(value, list) else [value])]
    return any(v == previous for v in values)
