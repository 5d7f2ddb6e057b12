"""Tools, toolsets, argument validation and time-limited execution.

A `Tool` is an OpenAI-format function schema plus, optionally, the Python callable that
implements it. A `Toolset` is a named group of tools that the scoring engine checks calls
against (known names, schema validity) and that the service and the scorer may *execute*:
only registered callables ever run, with the model's arguments as keyword arguments, after
those arguments validated against the tool's JSON schema; nothing a request contains is
ever evaluated as code. Each tool's validator is compiled once (and shared between toolsets
holding the same schema). Execution happens in a worker thread with a deadline: a tool that
raises or overruns becomes a `ToolExecution` with `ok=False` and an `error_type`, never an
exception for the caller.

Argument schemas are compiled by `_schemas` (RE2 for every regex, bounded size). Text this
module returns (messages, `content`) never holds a lone UTF-16 surrogate: one in a tool name,
an argument key or a result is written as a `\\udXXX` escape, so a response can always be sent.

Results are shown to the model as `content`, rendered canonically by `render_content`:
strings as they are; numbers, booleans and None as Python's `str()` spells them, except that
a float is first rounded to 15 significant digits and an integral float loses its `.0`
(`8.0` -> `8`, `0.30000000000000004` -> `0.3`); lists, tuples and dicts as JSON (with the same
number rule inside). For the built-in tools, whose results are already canonical, `content`
equals `str(result)`, the text TRL's tool loop shows the model, so scoring and training agree.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema
from jsonschema.protocols import Validator
from referencing.exceptions import Unresolvable

from ._errors import config_error
from ._schemas import _compile as _compile  # the shared validator cache, inspected by tests
from ._schemas import additional_keys, compile_validator, pattern_search, safe_text

ErrorType = Literal["unknown_tool", "invalid_arguments", "not_executable", "tool_error", "timeout", "overloaded"]
"""Why an execution failed: the tool is not in the toolset; its arguments break the schema;
it has no implementation; it raised; it overran its time limit; too many earlier calls are
still running past their limits."""

MAX_MESSAGES = 20
"""Validation messages reported per call; a list of 1,000 wrong items says so once, not 1,000 times."""

MAX_STRAGGLERS = 32
"""Timed-out tool threads still running before further executions are refused (see `Toolset.execute`)."""

_MESSAGE_CHARS = 200


@dataclass(frozen=True, slots=True)
class Tool:
    """One tool: its OpenAI function schema parts and, when it can run, its implementation.

    `parameters` is a JSON schema for the arguments object. `fn` is called as `fn(**arguments)`.
    """

    name: str
    description: str
    parameters: dict[str, Any] = field(hash=False)
    fn: Callable[..., Any] | None = None

    @property
    def executable(self) -> bool:
        return self.fn is not None

    def schema(self) -> dict[str, Any]:
        """The tool in OpenAI's function format (a copy: callers may change it freely)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.parameters),
            },
        }


@dataclass(frozen=True, slots=True)
class ToolExecution:
    """What running one tool call produced.

    `result` is the tool's return value (None on failure); `content` is the text shown to the
    model: the rendered result, or `{"error": "..."}` as JSON on failure (the shape TRL's tool
    loop uses). `error_type` and `error_message` are set exactly when `ok` is False.
    `elapsed_s` is the wall time spent, validation included.
    """

    ok: bool
    result: Any
    content: str
    error_type: ErrorType | None = None
    error_message: str | None = None
    elapsed_s: float = 0.0


# ---------------------------------------------------------------------------- rendering
def _canonical_float(value: float) -> int | float:
    if not math.isfinite(value):
        return value
    rounded = float(f"{value:.15g}")
    # Below 2**53 an integral float converts to int exactly; above it keep the float's spelling.
    if rounded.is_integer() and abs(rounded) < 2**53:
        return int(rounded)
    return rounded


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return _canonical_float(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def render_content(value: Any) -> str:
    """Render a tool result as the text the model sees (rules in the module docstring)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return str(_canonical_float(value))
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(_jsonable(value), ensure_ascii=False, default=str)
    return str(value)


def _error_content(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False)


# ---------------------------------------------------------------------------- validation
def _shorten(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 3] + "..."


def _no_fast_check(arguments: dict[str, Any]) -> bool:
    return False


_NO_FAST_CHECK: FastCheck = _no_fast_check
# Keyed by id() of the validator; the entry holds the validator itself, so the id cannot be reused.
_fast_checks: dict[int, tuple[Validator, FastCheck]] = {}


def _argument_path(path: Iterable[Any]) -> str:
    return "arguments" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _unexpected_keys(error: jsonschema.ValidationError) -> list[str]:
    instance, schema = error.instance, error.schema
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return []
    return [str(key) for key in additional_keys(instance, schema)]


def _messages(error: jsonschema.ValidationError) -> list[str]:
    path = _argument_path(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        return [f"{path}.{name}: missing required argument" for name in required if name not in error.instance]
    if error.validator == "additionalProperties" and error.validator_value is False:
        extra = _unexpected_keys(error)
        if extra:
            return [f"{path}.{key}: unexpected argument (not in the tool's schema)" for key in extra]
    return [f"{path}: {_shorten(error.message)}"]


# ---------------------------------------------------------------------------- fast path
# jsonschema costs ~100 µs per call even for a two-number schema; rewards validate every call
# of every rollout. Flat object schemas (the common tool shape) get a compiled checker that
# can only say "surely valid": anything it does not prove valid goes to jsonschema, so the
# messages and every edge case stay jsonschema's.
_FAST_PROPERTY_KEYS = frozenset({"type", "description", "enum", "minimum", "maximum", "pattern", "title"})
_FAST_TOP_KEYS = frozenset(
    {"type", "properties", "required", "additionalProperties", "description", "title", "$schema"}
)
_FAST_TYPES = frozenset({"number", "integer", "string", "boolean"})

FastCheck = Callable[[dict[str, Any]], bool]


def _fast_value_ok(value: Any, rule: Mapping[str, Any]) -> bool:
    kind = rule.get("type")
    if isinstance(value, bool):
        if kind != "boolean":
            return False
    elif kind == "boolean":
        return False
    elif kind == "string":
        if not isinstance(value, str):
            return False
        pattern = rule.get("pattern")
        if pattern is not None and not pattern_search(pattern, value):
            return False
    elif kind == "integer":
        if not isinstance(value, int):
            return False
    elif kind == "number":
        if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
            return False
    elif kind is not None:
        return False
    enum = rule.get("enum")
    if enum is not None and not any(type(value) is type(e) and value == e for e in enum):
        return False
    minimum, maximum = rule.get("minimum"), rule.get("maximum")
    if minimum is not None and not (isinstance(value, (int, float)) and value >= minimum):
        return False
    return maximum is None or (isinstance(value, (int, float)) and value <= maximum)


@functools.lru_cache(maxsize=4096)
def _compile_fast(canonical_schema: str) -> FastCheck | None:
    schema = json.loads(canonical_schema)
    if not isinstance(schema, dict) or schema.get("type") != "object" or set(schema) - _FAST_TOP_KEYS:
        return None
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    closed = schema.get("additionalProperties", True) is False
    if schema.get("additionalProperties", True) not in (True, False) or not isinstance(properties, dict):
        return None
    for rule in properties.values():
        if not isinstance(rule, dict) or set(rule) - _FAST_PROPERTY_KEYS or rule.get("type") not in _FAST_TYPES:
            return None

    def check(arguments: dict[str, Any]) -> bool:
        for key in required:
            if key not in arguments:
                return False
        for key, value in arguments.items():
            rule = properties.get(key)
            if rule is None:
                if closed:
                    return False
                continue
            if not _fast_value_ok(value, rule):
                return False
        return True

    return check


def _validate(validator: Validator, arguments: Any) -> list[str]:
    if not isinstance(arguments, dict):
        return [f"arguments: expected an object of named arguments, got {type(arguments).__name__}"]
    entry = _fast_checks.get(id(validator))
    if entry is None or entry[0] is not validator:
        compiled = _compile_fast(json.dumps(validator.schema, sort_keys=True, ensure_ascii=False, default=str))
        entry = _fast_checks[id(validator)] = (validator, compiled or _NO_FAST_CHECK)
    fast = entry[1]
    if fast is not _NO_FAST_CHECK and fast(arguments):
        return []
    found: dict[str, None] = {}  # ordered set: one missing key can be reported by several errors
    try:
        for error in validator.iter_errors(arguments):
            for message in _messages(error):
                found[safe_text(message)] = None  # a key may hold a lone surrogate
    except RecursionError:  # the schema was applied to `{}` at compile time: the arguments are too deep
        return ["arguments: nest too deeply to check against the tool's schema"]
    except Unresolvable as exc:  # a `$ref` reached only by some arguments
        return [safe_text(_shorten(f"arguments: the tool's schema refers to something unresolvable: {exc}"))]
    messages = sorted(found)
    if len(messages) > MAX_MESSAGES:
        hidden = len(messages) - MAX_MESSAGES
        messages = [*messages[:MAX_MESSAGES], f"... and {hidden} more"]
    return messages


# ---------------------------------------------------------------------------- execution
class _Stragglers:
    """Counts worker threads still running after their caller gave up on them.

    Python cannot stop a thread, so a tool that overruns keeps its thread until it returns.
    Past `MAX_STRAGGLERS` such threads, executions are refused instead of piling up more.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0


_STRAGGLERS = _Stragglers()


def _run_with_deadline(
    fn: Callable[..., Any], arguments: dict[str, Any], timeout_s: float, name: str
) -> tuple[Literal["ok"], Any] | tuple[Literal["error"], BaseException] | tuple[Literal["timeout"], None]:
    outcome: list[Any] = []
    done = threading.Event()
    abandoned = False

    def work() -> None:
        try:
            value = fn(**arguments)
            outcome.append(("ok", value))
        except BaseException as exc:  # a tool may raise anything, SystemExit included
            outcome.append(("error", exc))
        finally:
            with _STRAGGLERS.lock:
                done.set()
                if abandoned:
                    _STRAGGLERS.count -= 1

    # A fresh daemon thread per call: a stuck tool can never block other calls or interpreter exit.
    worker = threading.Thread(target=work, name=f"tool:{name}", daemon=True)
    worker.start()
    finished = done.wait(timeout_s)
    with _STRAGGLERS.lock:
        if not finished and not done.is_set():
            abandoned = True
            _STRAGGLERS.count += 1
            return ("timeout", None)
    status, value = outcome[0]
    if status == "ok":
        return ("ok", value)
    return ("error", value)


class Toolset:
    """A named group of tools with compiled argument validators.

    Build it from `Tool` values; every parameter schema is checked and compiled here, so a bad
    schema fails at construction (ScoringConfigError naming `tools.<name>.parameters`).
    """

    def __init__(self, name: str, tools: Iterable[Tool], description: str = "") -> None:
        if not isinstance(name, str) or not name.strip():
            raise config_error("toolset name must be a non-empty string", "name")
        self.name = name
        self.description = description
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, Validator] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise config_error(f"duplicate tool name {tool.name!r} in toolset {name!r}", f"tools.{tool.name}")
            self._tools[tool.name] = tool
            self._validators[tool.name] = compile_validator(tool.parameters, f"tools.{tool.name}.parameters")
        self.names: frozenset[str] = frozenset(self._tools)

    @property
    def tools(self) -> dict[str, Tool]:
        """The tools by name, in declaration order (a copy)."""
        return dict(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"Toolset(name={self.name!r}, tools={list(self._tools)!r})"

    def schemas(self) -> list[dict[str, Any]]:
        """Every tool in OpenAI's function format, in declaration order."""
        return [tool.schema() for tool in self._tools.values()]

    def functions(self) -> list[Callable[..., Any]]:
        """The implementations of the executable tools (e.g. for `GRPOTrainer(tools=...)`)."""
        return [tool.fn for tool in self._tools.values() if tool.fn is not None]

    def validate_arguments(self, name: str, arguments: Any) -> list[str]:
        """Check a call's arguments against the tool's schema.

        Returns the problems, each prefixed with the argument path (`arguments.numbers[2]: ...`),
        sorted; an empty list means valid. An unknown tool gives `["unknown tool 'x'"]`.
        """
        validator = self._validators.get(name)
        if validator is None:
            return [f"unknown tool {name!r}"]
        return _validate(validator, arguments)

    def execute(self, name: str, arguments: Any, timeout_s: float | None = 2.0) -> ToolExecution:
        """Validate the arguments, then run the tool with a time limit.

        Never raises for anything the call contains: an unknown tool, invalid arguments, a tool
        without implementation, an exception inside the tool and a result later than
        `timeout_s` seconds all come back as `ok=False` with an `error_type`. A late result is
        discarded. `timeout_s=None` runs the tool in the calling thread without a limit (for
        trusted, bounded tools on a hot path).
        """
        start = time.perf_counter()

        def failure(error_type: ErrorType, message: str, content: str | None = None) -> ToolExecution:
            message = safe_text(message)  # a tool name or a tool's error may hold a lone surrogate
            return ToolExecution(
                ok=False,
                result=None,
                content=_error_content(safe_text(content) if content is not None else message),
                error_type=error_type,
                error_message=message,
                elapsed_s=time.perf_counter() - start,
            )

        if timeout_s is not None and not (isinstance(timeout_s, int | float) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number or None, got {timeout_s!r}")
        tool = self._tools.get(name)
        if tool is None:
            return failure("unknown_tool", f"unknown tool {name!r}")
        problems = self.validate_arguments(name, arguments)
        if problems:
            return failure("invalid_arguments", "invalid arguments: " + "; ".join(problems))
        if tool.fn is None:
            return failure("not_executable", f"tool {name!r} has no implementation in toolset {self.name!r}")

        if timeout_s is None:
            try:
                status, value = "ok", tool.fn(**arguments)
            except (Exception, SystemExit) as exc:  # a tool calling sys.exit must not end the service
                status, value = "error", exc
        else:
            with _STRAGGLERS.lock:
                overloaded = _STRAGGLERS.count >= MAX_STRAGGLERS
            if overloaded:
                return failure("overloaded", "too many earlier tool calls are still running past their time limit")
            status, value = _run_with_deadline(tool.fn, arguments, timeout_s, name)
        if status == "timeout":
            return failure("timeout", f"tool {name!r} did not finish within {timeout_s:g} s")
        if status == "error":
            return failure("tool_error", f"{type(value).__name__}: {value}", content=str(value) or type(value).__name__)
        try:
            content = safe_text(render_content(value))
        except Exception as exc:  # e.g. a self-referencing structure, an int too long to write
            return failure("tool_error", f"the result could not be rendered: {type(exc).__name__}: {exc}")
        return ToolExecution(ok=True, result=value, content=content, elapsed_s=time.perf_counter() - start)
