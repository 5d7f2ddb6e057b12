"""Tools built from plain typed functions, so training and scoring describe a tool the same way.

TRL's `GRPOTrainer(tools=[fn, ...])` builds each tool's schema from the function's type hints
and Google-style docstring. `tool_from_function` reads the same two sources: the summary line
becomes the tool description, each `Args:` entry the argument's description, each hint the
argument's JSON type (`float` -> number, `int` -> integer, `str`, `bool`, `list[...]`,
`Literal[...]` -> enum, `X | None` -> X and optional). The schema therefore shows the model
the same names, types, enums and texts in both places; on top of that it may carry
validation-only constraints (`constraints`: bounds, patterns) and `additionalProperties:
false`, which TRL's builder cannot express.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args, get_origin

from ._core import Tool

_SECTION = re.compile(r"^\s*(Args|Arguments|Returns|Raises|Yields|Example|Examples|Note):\s*$")
_ARGUMENT = re.compile(r"^(\w+)(?:\s*\([^()]*\))?:\s*(.*)$")
_SCALARS: dict[Any, str] = {float: "number", int: "integer", str: "string", bool: "boolean"}


def parse_docstring(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (summary, {argument: description}).

    The summary is the text before the first section; an argument's continuation lines are
    joined with single spaces, as TRL's docstring parser does.
    """
    doc = inspect.getdoc(fn) or ""
    summary_lines: list[str] = []
    arguments: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    indent = 0
    for line in doc.splitlines():
        header = _SECTION.match(line)
        if header:
            section, current = header.group(1), None
            continue
        if section is None:
            summary_lines.append(line)
        elif section in ("Args", "Arguments") and line.strip():
            depth = len(line) - len(line.lstrip())
            match = _ARGUMENT.match(line.strip())
            if match and (current is None or depth <= indent):
                current, indent = match.group(1), depth
                arguments[current] = match.group(2).strip()
            elif current is not None:
                arguments[current] = f"{arguments[current]} {line.strip()}".strip()
    return "\n".join(summary_lines).strip(), arguments


def _schema_for_hint(hint: Any, where: str) -> dict[str, Any]:
    """JSON schema of a type hint; `X | None` maps to X's (None means "leave it out")."""
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(members) != 1:
            raise TypeError(f"{where}: only `X | None` unions are supported, got {hint!r}")
        return _schema_for_hint(members[0], where)
    if origin is Literal:
        values = list(get_args(hint))
        kinds = {_SCALARS.get(type(v)) for v in values}
        if None in kinds or len(kinds) != 1:
            raise TypeError(f"{where}: a Literal needs values of one JSON scalar type, got {hint!r}")
        return {"type": kinds.pop(), "enum": values}
    if origin is list:
        (item,) = get_args(hint) or (Any,)
        schema: dict[str, Any] = {"type": "array"}
        if item is not Any:
            schema["items"] = _schema_for_hint(item, where)
        return schema
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    raise TypeError(f"{where}: unsupported type hint {hint!r}")


def tool_from_function(
    fn: Callable[..., Any],
    constraints: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    name: str | None = None,
) -> Tool:
    """Build an executable Tool from a typed function with a Google-style docstring.

    `constraints` adds validation keywords per argument (`{"numbers": {"maxItems": 1000}}`).
    Raises TypeError for a hint it cannot express and ValueError when the docstring lacks a
    summary or an argument's description (TRL would refuse the same function).
    """
    summary, descriptions = parse_docstring(fn)
    tool_name = name or fn.__name__
    if not summary:
        raise ValueError(f"{tool_name}: the docstring needs a summary line")
    hints = typing.get_type_hints(fn)
    extra = dict(constraints or {})
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in inspect.signature(fn).parameters.values():
        arg = parameter.name
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise TypeError(f"{tool_name}.{arg}: tools take named arguments only")
        if arg not in hints:
            raise TypeError(f"{tool_name}.{arg}: the argument needs a type hint")
        if arg not in descriptions:
            raise ValueError(f"{tool_name}.{arg}: the docstring's Args: section does not describe it")
        schema = _schema_for_hint(hints[arg], f"{tool_name}.{arg}")
        properties[arg] = {**schema, **extra.pop(arg, {}), "description": descriptions[arg]}
        if parameter.default is parameter.empty:
            required.append(arg)
    if extra:
        raise ValueError(f"{tool_name}: constraints for unknown arguments {sorted(extra)}")
    parameters = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return Tool(name=tool_name, description=summary, parameters=parameters, fn=fn)
