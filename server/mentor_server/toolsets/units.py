"""The `units` toolset: unit conversion, a second domain for out-of-domain evaluation.

A student trained with the calculator meets different tool names, argument names and
enum-constrained string arguments here (`convert_length(value=3, from_unit="mile",
to_unit="kilometer")`), so an evaluation can ask whether tool-use skill transfers across
domains. Factors are the exact legal definitions (the international inch is 0.0254 m, the
avoirdupois pound 0.45359237 kg, the US gallon 3.785411784 L) applied in decimal arithmetic,
so `convert_length(1, "foot", "inch")` is exactly `12`. Values and results follow the
calculator's rules: bounded by 1e15, integral results are ints, others floats with 15
significant digits. Each tool is also a typed function with a Google-style docstring whose
`Literal` hints give TRL's schema builder the same enums.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, localcontext
from typing import Any, Literal

from ._core import Toolset
from ._functions import tool_from_function
from ._numeric import DECIMAL_CONTEXT, canonical_number, check_number, to_decimal

__all__ = [
    "FUNCTIONS",
    "UNITS",
    "convert_length",
    "convert_mass",
    "convert_temperature",
    "convert_time",
    "convert_volume",
]

LengthUnit = Literal["millimeter", "centimeter", "meter", "kilometer", "inch", "foot", "yard", "mile", "nautical_mile"]
MassUnit = Literal["milligram", "gram", "kilogram", "tonne", "ounce", "pound", "stone"]
TemperatureUnit = Literal["celsius", "fahrenheit", "kelvin"]
TimeUnit = Literal["millisecond", "second", "minute", "hour", "day", "week"]
VolumeUnit = Literal[
    "milliliter",
    "liter",
    "cubic_meter",
    "teaspoon",
    "tablespoon",
    "fluid_ounce",
    "cup",
    "pint",
    "quart",
    "gallon",
]

# Size of one unit in the dimension's base unit (meter, kilogram, second, liter), exactly.
_LENGTH = {
    "millimeter": "0.001",
    "centimeter": "0.01",
    "meter": "1",
    "kilometer": "1000",
    "inch": "0.0254",
    "foot": "0.3048",
    "yard": "0.9144",
    "mile": "1609.344",
    "nautical_mile": "1852",
}
_MASS = {
    "milligram": "0.000001",
    "gram": "0.001",
    "kilogram": "1",
    "tonne": "1000",
    "ounce": "0.028349523125",  # a sixteenth of the pound
    "pound": "0.45359237",
    "stone": "6.35029318",  # fourteen pounds
}
_TIME = {
    "millisecond": "0.001",
    "second": "1",
    "minute": "60",
    "hour": "3600",
    "day": "86400",
    "week": "604800",
}
# US customary: gallon = 231 cubic inches; quart, pint, cup, fluid ounce, tablespoon and
# teaspoon are 1/4, 1/8, 1/16, 1/128, 1/256 and 1/768 of it.
_GALLON = Decimal("3.785411784")
_VOLUME = {
    "milliliter": Decimal("0.001"),
    "liter": Decimal(1),
    "cubic_meter": Decimal(1000),
    "gallon": _GALLON,
    "quart": _GALLON / 4,
    "pint": _GALLON / 8,
    "cup": _GALLON / 16,
    "fluid_ounce": _GALLON / 128,
    "tablespoon": _GALLON / 256,
    "teaspoon": _GALLON / 768,
}


def _unit(name: str, value: Any, table: Mapping[str, Any]) -> Decimal:
    if not isinstance(value, str) or value not in table:
        raise ValueError(f"{name} must be one of {', '.join(table)}; got {value!r}")
    return Decimal(table[value])


def _convert(value: Any, from_unit: Any, to_unit: Any, table: Mapping[str, Any]) -> float:
    amount = to_decimal(check_number("value", value))
    source, target = _unit("from_unit", from_unit, table), _unit("to_unit", to_unit, table)
    with localcontext(DECIMAL_CONTEXT):
        # Multiply before dividing so that exact conversions (1 foot = 12 inches) stay exact.
        return canonical_number(amount * source / target)


def convert_length(value: float, from_unit: LengthUnit, to_unit: LengthUnit) -> float:
    """Convert a length from one unit to another.

    Args:
        value: The length to convert.
        from_unit: The unit value is given in.
        to_unit: The unit to convert to.

    Returns:
        The same length expressed in to_unit.
    """
    return _convert(value, from_unit, to_unit, _LENGTH)


def convert_mass(value: float, from_unit: MassUnit, to_unit: MassUnit) -> float:
    """Convert a mass from one unit to another.

    Args:
        value: The mass to convert.
        from_unit: The unit value is given in.
        to_unit: The unit to convert to.

    Returns:
        The same mass expressed in to_unit.
    """
    return _convert(value, from_unit, to_unit, _MASS)


def convert_time(value: float, from_unit: TimeUnit, to_unit: TimeUnit) -> float:
    """Convert a duration from one unit to another (a day is 86400 seconds).

    Args:
        value: The duration to convert.
        from_unit: The unit value is given in.
        to_unit: The unit to convert to.

    Returns:
        The same duration expressed in to_unit.
    """
    return _convert(value, from_unit, to_unit, _TIME)


def convert_volume(value: float, from_unit: VolumeUnit, to_unit: VolumeUnit) -> float:
    """Convert a volume from one unit to another (cups, pints, quarts and gallons are US units).

    Args:
        value: The volume to convert.
        from_unit: The unit value is given in.
        to_unit: The unit to convert to.

    Returns:
        The same volume expressed in to_unit.
    """
    return _convert(value, from_unit, to_unit, _VOLUME)


_ABSOLUTE_ZERO_C = Decimal("-273.15")


def convert_temperature(value: float, from_unit: TemperatureUnit, to_unit: TemperatureUnit) -> float:
    """Convert a temperature between celsius, fahrenheit and kelvin.

    Args:
        value: The temperature to convert; it may not be below absolute zero.
        from_unit: The scale value is given in.
        to_unit: The scale to convert to.

    Returns:
        The same temperature on the to_unit scale.
    """
    scales = ("celsius", "fahrenheit", "kelvin")
    amount = to_decimal(check_number("value", value))
    for name, unit in (("from_unit", from_unit), ("to_unit", to_unit)):
        if unit not in scales:
            raise ValueError(f"{name} must be one of {', '.join(scales)}; got {unit!r}")
    with localcontext(DECIMAL_CONTEXT):
        if from_unit == "celsius":
            celsius = amount
        elif from_unit == "fahrenheit":
            celsius = (amount - 32) * 5 / 9
        else:
            celsius = amount + _ABSOLUTE_ZERO_C
        if celsius < _ABSOLUTE_ZERO_C:
            raise ValueError(f"{value} {from_unit} is below absolute zero")
        if to_unit == "celsius":
            return canonical_number(celsius)
        if to_unit == "fahrenheit":
            return canonical_number(celsius * 9 / 5 + 32)
        return canonical_number(celsius - _ABSOLUTE_ZERO_C)


# ---------------------------------------------------------------------------- the toolset
FUNCTIONS: tuple[Callable[..., Any], ...] = (
    convert_length,
    convert_mass,
    convert_temperature,
    convert_time,
    convert_volume,
)
"""The conversion tools as plain functions (for `GRPOTrainer(tools=list(FUNCTIONS))`)."""

UNITS = Toolset(
    "units",
    [tool_from_function(fn) for fn in FUNCTIONS],
    description="Unit conversion of lengths, masses, temperatures, durations and volumes.",
)
