"""Shared building blocks of the rollout parsers: the call accumulator and JSON call decoding.

Every parser walks its format once and feeds what it finds into an `_Accumulator`, which
pairs tool results with calls (by call id when the format carries one, else in order) and
builds the immutable `ParsedRollout` at the end. Keeping the mutable state here lets the
hot path (Hermes text) avoid rebuilding frozen dataclasses when a result arrives.

Error strings are part of the contract with the engine: an error that starts with
`INVALID_JSON` means the call's JSON could not be read at all, so the paper's presets do
not count its (recovered) name as a used tool; every other error keeps a name that was read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ..types import JSONValue, ParsedRollout, ToolCall

INVALID_JSON = "invalid JSON"
UNCLOSED_CALL = "unclosed <tool_call>"

_json_loads = json.loads
# The decoder's scanner, as `json.loads` uses it (typeshed does not declare the attribute).
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
# Only used on the failure path, to keep the name of a call whose JSON is broken.
_NAME_RE = re.compile(r'"name"\s*:\s*("(?:[^"\\\n]|\\.)*")')


class _Accumulator:
    """Calls, results and format errors of one rollout, in the order they were read.

    Calls are kept as parallel lists (the result of a call may arrive later) and become
    frozen `ToolCall`s only once, in `build`: this is the per-item hot path.
    """

    __slots__ = (
        "arguments",
        "call_errors",
        "call_results",
        "format_errors",
        "ids",
        "names",
        "next_unanswered",
        "raws",
        "results",
    )

    def __init__(self) -> None:
        self.names: list[str | None] = []
        self.arguments: list[dict[str, JSONValue]] = []
        self.raws: list[str] = []
        self.call_errors: list[str | None] = []
        self.call_results: list[str | None] = []
        self.results: list[str] = []
        self.format_errors: list[str] = []
        self.ids: dict[str, int] | None = None
        self.next_unanswered = 0

    def add_call(
        self,
        name: str | None,
        arguments: dict[str, JSONValue],
        raw: str,
        error: str | None,
        call_id: str | None = None,
    ) -> None:
        if call_id is not None:
            if self.ids is None:
                self.ids = {}
            self.ids.setdefault(call_id, len(self.names))
        self.names.append(name)
        self.arguments.append(arguments)
        self.raws.append(raw)
        self.call_errors.append(error)
        self.call_results.append(None)

    def add_result(self, content: str, call_id: str | None = None) -> None:
        self.results.append(content)
        call_results = self.call_results
        if call_id is not None and self.ids is not None:
            index = self.ids.get(call_id)
            if index is not None and call_results[index] is None:
                call_results[index] = content
                return
        # No usable id: the earliest call still waiting for its result gets it.
        i = self.next_unanswered
        n = len(call_results)
        while i < n and call_results[i] is not None:
            i += 1
        if i < n:
            call_results[i] = content
            self.next_unanswered = i + 1
        else:
            self.next_unanswered = i
            self.format_errors.append("tool result without a pending call")

    def build(self, answer_text: str, full_text: str, finished: bool | None, parser: str) -> ParsedRollout:
        errors = self.format_errors
        return ParsedRollout(
            tuple(map(ToolCall, self.names, self.arguments, self.raws, self.call_errors, self.call_results)),
            tuple(self.results),
            answer_text,
            full_text,
            finished,
            parser,
            tuple(dict.fromkeys(errors)) if len(errors) > 1 else tuple(errors),
        )


# Below this many bits every int has at most ~4,200 digits: under Python's str() limit (4,300
# by default), so the exact check (which converts) only runs for the rare larger ones.
_SURELY_WRITABLE_BITS = 14_000


def unwritable_int(value: int) -> bool:
    """True for an int that `str()`/`json.dumps` refuse to write (past the int-to-str digit limit)."""
    if value.bit_length() <= _SURELY_WRITABLE_BITS:
        return False
    try:
        str(value)
    except ValueError:
        return True
    return False


def holds_unwritable_int(value: Any) -> bool:
    """True when a decoded value (dicts and lists, any depth) holds an int `str()` cannot write.

    Only values that did not come from `json.loads` can (chat messages built in Python); such an
    int would fail whatever writes the call later (its raw text, a cache key, a response).
    Iterative, so depth costs no recursion.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool):
            if unwritable_int(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def json_error(exc: BaseException) -> str:
    """A short description of why a JSON text did not decode."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at char {exc.pos}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:120]


_FIRST_WINDOW = 1024
# Errors this close to a window's end may be caused by the cut (a literal such as `-Infinity`
# or a `\uXXXX` escape that runs past it), so they are retried on a wider window.
_CUT_MARGIN = 16
_COMPLETE_ENDS = frozenset('}]"')


def decode_at(text: str, start: int) -> tuple[Any, int, str | None]:
    """`(value, end, None)` as `json.JSONDecoder().raw_decode(text, start)` gives, or `(None, -1, error)`.

    The error reads as `json_error` would write the decoder's own (positions in `text`). The cost
    is proportional to the JSON read, not to `start`: a decode error built on `text` itself
    counts the newlines before its position (`JSONDecodeError.lineno`), which made a text with
    many broken values after many tags quadratic. So the value is decoded from a window starting
    at `start`, doubled until the result cannot depend on where the window was cut.
    """
    n = len(text)
    width = _FIRST_WINDOW
    previous: str | None = None
    while True:
        stop = min(n, start + width)
        last = stop == n
        piece = text[start:stop]
        try:
            value, end = _scan_once(piece, 0)
        except StopIteration as stop_at:  # no value where one must start (`raw_decode`'s "Expecting value")
            at = stop_at.value
            if last or at < len(piece) - _CUT_MARGIN:
                return None, -1, f"Expecting value at char {at + start}"
        except json.JSONDecodeError as exc:
            if last or (exc.pos < len(piece) - _CUT_MARGIN and not exc.msg.startswith("Unterminated string")):
                return None, -1, f"{exc.msg} at char {exc.pos + start}"
        except RecursionError:
            return None, -1, "nested too deeply"  # reached inside the window: the same on the whole text
        except ValueError as exc:  # a number past the int limit: its message counts the digits
            message = str(exc)[:120]
            if last or message == previous:
                return None, -1, message
            previous = message
        else:
            # A number read up to near the cut may go on (`1e` is 1 until the `5` arrives).
            if last or end <= len(piece) - _CUT_MARGIN or piece[end - 1] in _COMPLETE_ENDS:
                return value, start + end, None
        width *= 2


def recover_name(text: str) -> str | None:
    """The `"name": "..."` of a call whose JSON is broken, when it can still be read."""
    match = _NAME_RE.search(text)
    if match is None:
        return None
    try:
        name = _json_loads(match.group(1))
    except ValueError:
        return None
    return name if isinstance(name, str) else None


def decode_arguments(value: Any) -> tuple[dict[str, JSONValue], str | None]:
    """Arguments as a dict, or `({}, error)`: accepts an object or a JSON string holding one."""
    if isinstance(value, dict):
        return value, None
    if isinstance(value, str):
        if not value.strip():
            return {}, None  # "" is how some chat templates write "no arguments"
        try:
            decoded = _json_loads(value)
        except (ValueError, RecursionError) as exc:
            return {}, f"arguments are not valid JSON: {json_error(exc)}"
        if isinstance(decoded, dict):
            return decoded, None
        return {}, f"arguments are not an object (got {_kind(decoded)} in a string)"
    if value is None:
        return {}, "arguments are not an object (got null)"
    return {}, f"arguments are not an object (got {_kind(value)})"


def call_from_object(obj: Any) -> tuple[str | None, dict[str, JSONValue], str | None]:
    """(name, arguments, error) of a decoded `{"name": ..., "arguments"|"parameters": ...}` object."""
    if not isinstance(obj, dict):
        return None, {}, f"call is not a JSON object (got {_kind(obj)})"
    name = obj.get("name")
    error: str | None = None
    if name is None:
        error = "missing name" if "name" not in obj else "name is null"
        name = None
    elif not isinstance(name, str):
        error = f"name is not a string (got {_kind(name)})"
        name = None
    elif not name.strip():
        error = "empty name"
    if "arguments" in obj:
        arguments, arg_error = decode_arguments(obj["arguments"])
    elif "parameters" in obj:
        arguments, arg_error = decode_arguments(obj["parameters"])
    else:
        arguments, arg_error = {}, None  # a call without arguments is a call with none
    return name, arguments, error or arg_error


def call_from_json(block: str) -> tuple[str | None, dict[str, JSONValue], str | None]:
    """(name, arguments, error) of one stripped JSON call text; broken JSON keeps a recoverable name.

    Decodes exactly as `json.loads(block)` would; the common case goes straight to the
    decoder's scanner (2-3x cheaper than `loads`), anything unusual takes `loads` for its error.
    """
    if block[:1] == "{":
        try:
            obj, end = _scan_once(block, 0)
        except (StopIteration, ValueError, RecursionError):
            end = -1
        if end == len(block):
            return call_from_object(obj)
    try:
        obj = _json_loads(block)
    except (ValueError, RecursionError) as exc:
        return recover_name(block), {}, f"{INVALID_JSON}: {json_error(exc)}"
    return call_from_object(obj)


def finished_from_text(text: str, eos_token: str | None, extra: tuple[str, ...] = ()) -> bool | None:
    """True when the text (trailing whitespace ignored) ends with an end-of-sequence token."""
    if not eos_token:
        return None
    tail = text.rstrip()
    if tail.endswith(eos_token):
        return True
    return bool(extra) and tail.endswith(extra)


def strip_think(text: str) -> str:
    """Remove complete `<think>...</think>` blocks (linear: no regex backtracking on many opens)."""
    start = text.find("<think>")
    if start < 0:
        return text
    parts: list[str] = []
    pos = 0
    while start >= 0:
        end = text.find("</think>", start + 7)
        if end < 0:
            break
        parts.append(text[pos:start])
        pos = end + 8
        start = text.find("<think>", pos)
    parts.append(text[pos:])
    return "".join(parts)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    return type(value).__name__
