"""The `dates` toolset: calendar arithmetic on ISO dates, a third domain for transfer tests.

Its arguments are strings in a fixed format (`YYYY-MM-DD`) and small integers, and its
results are dates, weekday names, counts and booleans rather than numbers to carry into the
next step, which makes it a useful contrast to the calculator. Everything is pure
proleptic-Gregorian arithmetic from Python's `datetime` (years 1 to 9999), so results depend
on no clock, time zone or locale. Bad input (a malformed or impossible date such as
2023-02-30, a result outside years 1 to 9999) raises a ValueError with a short message, which
`Toolset.execute` reports as a tool error.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from ._core import Toolset
from ._functions import tool_from_function
from ._numeric import check_int

__all__ = [
    "DATES",
    "FUNCTIONS",
    "add_days",
    "add_months",
    "day_of_year",
    "days_between",
    "days_in_month",
    "is_leap_year",
    "weekday_of",
]

ISO_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_ISO_DATE = re.compile(ISO_DATE_PATTERN)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MAX_DAYS = 3_652_059  # 9999-12-31 minus 0001-01-01: any larger offset leaves the calendar
_MAX_MONTHS = 119_988


def _parse(name: str, value: Any) -> dt.date:
    # fromisoformat alone would also accept "20240105" and week dates; one spelling only.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError(f"{name} must be a date written YYYY-MM-DD, got {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{name} is not a valid date: {value} ({exc})") from None


def days_between(start_date: str, end_date: str) -> int:
    """Count the days from one date to another.

    Args:
        start_date: The first date, written YYYY-MM-DD.
        end_date: The second date, written YYYY-MM-DD.

    Returns:
        The number of days from start_date to end_date (negative when end_date is earlier).
    """
    return (_parse("end_date", end_date) - _parse("start_date", start_date)).days


def add_days(date: str, days: int) -> str:
    """Add a number of days to a date.

    Args:
        date: The starting date, written YYYY-MM-DD.
        days: The number of days to add (negative to go back).

    Returns:
        The resulting date, written YYYY-MM-DD.
    """
    start = _parse("date", date)
    offset = check_int("days", days, -_MAX_DAYS, _MAX_DAYS)
    try:
        return (start + dt.timedelta(days=offset)).isoformat()
    except OverflowError:
        raise ValueError("the resulting date is outside years 1 to 9999") from None


def add_months(date: str, months: int) -> str:
    """Add a number of calendar months to a date, keeping the day where the month allows.

    Args:
        date: The starting date, written YYYY-MM-DD.
        months: The number of months to add (negative to go back).

    Returns:
        The resulting date, written YYYY-MM-DD; a day past the new month's end becomes
        its last day (2024-01-31 plus one month is 2024-02-29).
    """
    start = _parse("date", date)
    offset = check_int("months", months, -_MAX_MONTHS, _MAX_MONTHS)
    index = start.year * 12 + (start.month - 1) + offset
    year, month = divmod(index, 12)
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise ValueError("the resulting date is outside years 1 to 9999")
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return dt.date(year, month + 1, day).isoformat()


def weekday_of(date: str) -> str:
    """Name the day of the week a date falls on.

    Args:
        date: The date, written YYYY-MM-DD.

    Returns:
        The English weekday name, e.g. Monday.
    """
    return _WEEKDAYS[_parse("date", date).weekday()]


def day_of_year(date: str) -> int:
    """Give a date's ordinal day within its year.

    Args:
        date: The date, written YYYY-MM-DD.

    Returns:
        The day of the year, from 1 (January 1) to 366.
    """
    return _parse("date", date).timetuple().tm_yday


def days_in_month(year: int, month: int) -> int:
    """Count the days in a month.

    Args:
        year: The year, from 1 to 9999.
        month: The month, from 1 (January) to 12.

    Returns:
        The number of days in that month of that year.
    """
    y = check_int("year", year, dt.MINYEAR, dt.MAXYEAR)
    m = check_int("month", month, 1, 12)
    return calendar.monthrange(y, m)[1]


def is_leap_year(year: int) -> bool:
    """Tell whether a year is a leap year in the Gregorian calendar.

    Args:
        year: The year, from 1 to 9999.

    Returns:
        True when the year has a February 29.
    """
    return calendar.isleap(check_int("year", year, dt.MINYEAR, dt.MAXYEAR))


# ---------------------------------------------------------------------------- the toolset
FUNCTIONS: tuple[Callable[..., Any], ...] = (
    days_between,
    add_days,
    add_months,
    weekday_of,
    day_of_year,
    days_in_month,
    is_leap_year,
)
"""The date tools as plain functions (for `GRPOTrainer(tools=list(FUNCTIONS))`)."""

_DATE = {"pattern": ISO_DATE_PATTERN}
_YEAR = {"minimum": dt.MINYEAR, "maximum": dt.MAXYEAR}
_CONSTRAINTS: dict[str, dict[str, dict[str, Any]]] = {
    "days_between": {"start_date": _DATE, "end_date": _DATE},
    "add_days": {"date": _DATE, "days": {"minimum": -_MAX_DAYS, "maximum": _MAX_DAYS}},
    "add_months": {"date": _DATE, "months": {"minimum": -_MAX_MONTHS, "maximum": _MAX_MONTHS}},
    "weekday_of": {"date": _DATE},
    "day_of_year": {"date": _DATE},
    "days_in_month": {"year": _YEAR, "month": {"minimum": 1, "maximum": 12}},
    "is_leap_year": {"year": _YEAR},
}

DATES = Toolset(
    "dates",
    [tool_from_function(fn, _CONSTRAINTS[fn.__name__]) for fn in FUNCTIONS],
    description="Calendar arithmetic on ISO dates (YYYY-MM-DD): differences, offsets, weekdays.",
)
