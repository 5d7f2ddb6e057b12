"""Chat message lists (OpenAI and TRL): structured `tool_calls`, `tool` messages, raw markup in contents.

Assistant messages carry calls as `tool_calls: [{"type": "function", "function": {"name",
"arguments"}}]` (arguments a dict or a JSON string; the flattened `{"name", "arguments"}`
is accepted too). TRL leaves a call it could not parse as raw `<tool_call>` text in the
assistant content, so every content is also scanned with a text format (Hermes unless the
caller chose another). `tool` messages are results, paired by `tool_call_id` when present,
else in order. Anything that is not a well-formed message is recorded, not raised.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..types import ParsedRollout
from ._core import _Accumulator, call_from_object, holds_unwritable_int

TextScanner = Callable[[str, _Accumulator], str]
"""Reads calls/results from one text into the accumulator and returns the text's answer part."""

_OPEN_RESPONSE, _CLOSE_RESPONSE = "<tool_response>", "</tool_response>"
_RESULT_ROLES = frozenset(("tool", "ipython", "function"))


def content_text(content: Any) -> str | None:
    """A message content as text (a string, or the text parts of a content-part list); None if neither."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
                elif part.get("type") in ("text", None):
                    return None
                # other typed parts (images, audio) carry no text to read
            else:
                return None
        return "".join(parts)
    return None


def _closed_responses(text: str) -> list[str]:
    """The contents of the closed `<tool_response>...</tool_response>` blocks, left to right.

    What a non-greedy `<tool_response>(.*?)</tool_response>` finds, in one pass: the regex
    retried every unclosed opening tag against the rest of the text (quadratic: 16k unclosed
    tags took 24 s), while here the first opening tag without a closing one ends the search,
    since no later one can be closed either.
    """
    found: list[str] = []
    start = text.find(_OPEN_RESPONSE)
    while start >= 0:
        body = start + len(_OPEN_RESPONSE)
        close = text.find(_CLOSE_RESPONSE, body)
        if close < 0:
            break
        found.append(text[body:close])
        start = text.find(_OPEN_RESPONSE, close + len(_CLOSE_RESPONSE))
    return found


def _raw(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return repr(value)[:1000]
    except (ValueError, RecursionError):  # e.g. an int past the int-to-str digit limit
        return f"<{type(value).__name__} that cannot be written as text>"


def _structured_call(acc: _Accumulator, call: Any) -> None:
    if not isinstance(call, dict):
        acc.add_call(None, {}, _raw(call), "tool call is not an object")
        return
    function = call.get("function")
    body = function if isinstance(function, dict) else call
    name, arguments, error = call_from_object(body)
    if error is None and holds_unwritable_int(arguments):
        arguments, error = {}, "arguments hold an integer too long to write in decimal"
    call_id = call.get("id")
    acc.add_call(name, arguments, _raw(body), error, call_id if isinstance(call_id, str) else None)


def parse_messages(
    messages: Any,
    scan: TextScanner,
    *,
    eos_token: str | None,
    finished: bool | None,
    parser: str,
) -> ParsedRollout:
    """Read a chat message list; `scan` reads raw tool markup inside assistant contents."""
    acc = _Accumulator()
    if isinstance(messages, dict):
        messages = [messages]
    elif not isinstance(messages, (list, tuple)):
        acc.format_errors.append("completion is neither text nor a message list")
        messages = []
    assistant_texts: list[str] = []
    answer = ""
    last_assistant = ""
    for message in messages:
        if not isinstance(message, dict):
            acc.format_errors.append("message is not an object")
            continue
        role = message.get("role")
        if not isinstance(role, str):
            acc.format_errors.append("message role is not a string")
            continue
        content = content_text(message.get("content"))
        if content is None:
            acc.format_errors.append("message content is not text")
            content = ""
        if role == "assistant":
            assistant_texts.append(content)
            last_assistant = content
            answer = scan(content, acc) if content else ""
            tool_calls = message.get("tool_calls")
            if tool_calls:
                if isinstance(tool_calls, list):
                    for call in tool_calls:
                        _structured_call(acc, call)
                else:
                    acc.add_call(None, {}, _raw(tool_calls), "tool_calls is not a list")
                answer = ""  # the calls come after the content: nothing follows them yet
        elif role in _RESULT_ROLES:
            call_id = message.get("tool_call_id")
            acc.add_result(content.strip(), call_id if isinstance(call_id, str) else None)
            answer = ""
        elif role == "user" and "<tool_response>" in content:
            # Qwen-style templates deliver results inside a user turn.
            for result in _closed_responses(content):
                acc.add_result(result.strip())
            answer = ""
        elif role not in ("user", "system", "developer"):
            acc.format_errors.append(f"unknown message role {role[:40]!r}")
    if finished is None and eos_token and last_assistant.rstrip().endswith(eos_token):
        finished = True
    return acc.build(answer, "\n".join(assistant_texts), finished, parser)
