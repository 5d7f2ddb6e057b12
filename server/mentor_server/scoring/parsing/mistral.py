"""Mistral tool calls: `[TOOL_CALLS] [{"name", "arguments"}, ...]` and the v11+ `[TOOL_CALLS]name[ARGS]{...}`.

Results come as `[TOOL_RESULTS]...[/TOOL_RESULTS]`, either bare text or a JSON object with
`content` (and `call_id`, used to pair the result with its call). `</s>` ends the sequence.
The JSON after a tag is decoded by `decode_at`, whose cost does not grow with the tag's
position, so a text of many broken calls reads in linear time.
"""

from __future__ import annotations

import json
import re

from ..types import ParsedRollout
from ._core import (
    INVALID_JSON,
    _Accumulator,
    call_from_object,
    decode_arguments,
    decode_at,
    finished_from_text,
    recover_name,
)
from ._registry import Completion, register_parser
from .messages import parse_messages

END_TOKENS = ("</s>",)
_TAG_RE = re.compile(r"\[TOOL_CALLS\]|\[TOOL_RESULTS\]|\[/TOOL_RESULTS\]")
_MARKUP_RE = re.compile(r"</?s>|\[/TOOL_RESULTS\]|\[/?INST\]|\[/?AVAILABLE_TOOLS\]|\[/?SYSTEM_PROMPT\]")
_NAME_RE = re.compile(r"\s*([A-Za-z0-9_.:\-]{1,256})\s*(?:\[CALL_ID\]\s*([A-Za-z0-9_\-]{1,64})\s*)?\[ARGS\]")


def strip_markup(text: str) -> str:
    return _MARKUP_RE.sub("", text).strip() if "[" in text or "<" in text else text.strip()


def _next_tag(text: str, pos: int) -> int:
    match = _TAG_RE.search(text, pos)
    return match.start() if match else len(text)


def _call_list(text: str, start: int, acc: _Accumulator) -> int:
    """`[TOOL_CALLS] [{...}, ...]`: returns where the list ended."""
    calls, end, problem = decode_at(text, start)
    if problem is not None:
        stop = _next_tag(text, start)
        raw = text[start:stop].strip()
        acc.add_call(recover_name(raw), {}, raw, f"{INVALID_JSON}: {problem}")
        acc.format_errors.append("unreadable [TOOL_CALLS] list")
        return stop
    if not isinstance(calls, list):
        calls = [calls]
    for call in calls:
        name, arguments, error = call_from_object(call)
        call_id = call.get("id") if isinstance(call, dict) else None
        raw = json.dumps(call, ensure_ascii=False)
        acc.add_call(name, arguments, raw, error, call_id if isinstance(call_id, str) else None)
    return end


def _named_call(text: str, start: int, acc: _Accumulator) -> int:
    """`[TOOL_CALLS]name[CALL_ID]id[ARGS]{...}` (v11+): returns where the arguments ended."""
    stop = _next_tag(text, start)
    match = _NAME_RE.match(text, start, stop)
    if match is None:
        raw = text[start:stop].strip()
        acc.add_call(None, {}, raw, "[TOOL_CALLS] without a name and [ARGS]")
        return stop
    name, call_id = match.group(1), match.group(2)
    value, end, problem = decode_at(text, _skip_space(text, match.end()))
    if problem is not None:
        raw = text[start:stop].strip()
        acc.add_call(name, {}, raw, f"arguments are not valid JSON: {problem}", call_id)
        return stop
    arguments, error = decode_arguments(value)
    acc.add_call(name, arguments, text[start:end].strip(), error, call_id)
    return end


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _result(body: str, acc: _Accumulator) -> None:
    body = body.strip()
    call_id = None
    if body.startswith("{"):
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict) and "content" in obj:
            content = obj["content"]
            body = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
            found = obj.get("call_id", obj.get("tool_call_id"))
            call_id = found if isinstance(found, str) else None
    acc.add_result(body, call_id)


def scan_mistral(text: str, acc: _Accumulator) -> str:
    """Read the calls and results of `text` into `acc`; return the answer text after the last one."""
    pos = 0
    last_end = 0
    while True:
        match = _TAG_RE.search(text, pos)
        if match is None:
            break
        tag = match.group()
        if tag == "[TOOL_CALLS]":
            start = _skip_space(text, match.end())
            if start < len(text) and text[start] in "[{":
                pos = _call_list(text, start, acc)
            else:
                pos = _named_call(text, start, acc)
            last_end = pos
        elif tag == "[TOOL_RESULTS]":
            close = text.find("[/TOOL_RESULTS]", match.end())
            if close < 0:
                acc.format_errors.append("unclosed [TOOL_RESULTS]")
                _result(text[match.end() :], acc)
                return ""
            _result(text[match.end() : close], acc)
            pos = last_end = close + len("[/TOOL_RESULTS]")
        else:
            acc.format_errors.append("stray [/TOOL_RESULTS]")
            pos = match.end()
    tail = text[last_end:]
    user_turn_end = tail.rfind("[/INST]")
    if user_turn_end >= 0:  # a user turn inside the completion is not the answer
        tail = tail[user_turn_end + len("[/INST]") :]
    return strip_markup(tail)


@register_parser("mistral")
def parse_mistral(completion: Completion, *, eos_token: str | None, finished: bool | None) -> ParsedRollout:
    """Mistral text; a message list is read as chat messages with Mistral calls in the contents."""
    if not isinstance(completion, str):
        return parse_messages(completion, scan_mistral, eos_token=eos_token, finished=finished, parser="openai")
    acc = _Accumulator()
    answer = scan_mistral(completion, acc)
    if finished is None:
        finished = finished_from_text(completion, eos_token, END_TOKENS)
    return acc.build(answer, completion, finished, "mistral")
