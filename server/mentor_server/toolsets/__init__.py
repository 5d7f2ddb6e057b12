"""Toolsets: registered tool schemas with safe, deterministic executors.

Shared by the scoring engine (known tool names, schema validity, executing student calls to
compare results), the service's tool-execution endpoint and the trainer (the same tools as
plain typed functions for TRL's `tools=`). Built-ins: `calculator` (the MENTOR paper's
twelve arithmetic tools), `units` (unit conversion) and `dates` (calendar arithmetic), so
evaluation can cross domains. Nothing here evaluates request text: a request can only name a
registered tool and pass arguments, which are validated against the tool's JSON schema before
the operator-installed implementation runs in a worker thread with a deadline.

    >>> from mentor_server.toolsets import get_toolset
    >>> calc = get_toolset("calculator")
    >>> calc.execute("divide", {"a": 7, "b": 2}).content
    '3.5'
    >>> calc.execute("divide", {"a": 1, "b": 0}).error_type
    'tool_error'
    >>> calc.validate_arguments("add", {"a": "two"})
    ["arguments.a: 'two' is not of type 'number'", 'arguments.b: missing required argument']

This package imports no web, HTTP or ML framework.
"""

from . import calculator, dates, units
from ._core import ErrorType, Tool, ToolExecution, Toolset, render_content
from ._functions import parse_docstring, tool_from_function
from ._registry import (
    ALL_BUILTIN,
    get_toolset,
    list_toolsets,
    load_toolsets_file,
    register_toolset,
    render_tools_for_prompt,
    toolset_from_schemas,
    unregister_toolset,
)

__all__ = [
    "ALL_BUILTIN",
    "ErrorType",
    "Tool",
    "ToolExecution",
    "Toolset",
    "calculator",
    "dates",
    "get_toolset",
    "list_toolsets",
    "load_toolsets_file",
    "parse_docstring",
    "register_toolset",
    "render_content",
    "render_tools_for_prompt",
    "tool_from_function",
    "toolset_from_schemas",
    "units",
    "unregister_toolset",
]
