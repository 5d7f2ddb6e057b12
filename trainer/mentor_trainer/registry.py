"""The registry of `mentor-train` subcommands: each command module registers itself here.

Kept apart from `cli` so that the command modules depend on the registry and the parser depends on
both, with no import cycle between the parser and the commands it lists.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    description: str
    examples: tuple[str, ...]
    configure: Configure
    run: Run


COMMANDS: dict[str, Command] = {}


def register_command(
    name: str, *, help: str, examples: Sequence[str], description: str = "", configure: Configure
) -> Callable[[Run], Run]:
    """Register `run` as `mentor-train NAME`; `configure` adds its arguments to the subparser."""

    def decorate(run: Run) -> Run:
        if name in COMMANDS:
            raise ValueError(f"command {name!r} is already registered")
        COMMANDS[name] = Command(name, help, description or help, tuple(examples), configure, run)
        return run

    return decorate


# ---------------------------------------------------------------------------- helpers the commands share
def print_summary(summary: dict[str, Any], as_json: bool, keys: tuple[str, ...] = ()) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    for key in keys or tuple(summary):
        if key in summary:
            print(f"{key}: {summary[key]}")


def json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def json_object_arg(value: str | None, flag: str) -> dict[str, Any] | None:
    """A flag whose value is a JSON object (`--overrides`, `--extra-body`); None when not given (or
    given empty); ValueError naming the flag otherwise."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{flag}: not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{flag}: expected a JSON object")
    return data
