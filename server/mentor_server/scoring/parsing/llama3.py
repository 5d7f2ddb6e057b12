"""Llama 3.x JSON tool calls: `{"name": ..., "parameters": {...}}`, optionally after `<|python_tag|>`.

A turn may hold several call objects separated by `;` or newlines and ends with `<|eot_id|>`
(or `<|eom_id|>` when it waits for a tool). Multi-turn text is split on the role headers
(`<|start_header_id|>ipython<|end_header_id|>` turns are tool results). Without
`<|python_tag|>` a JSON object is only a call when it has a `name` and `parameters` (or
`arguments`): a model may well answer in JSON.
"""

from __future__ import annotations

import json
import re

from ..types import ParsedRollout
from ._core import (
    INVALID_JSON,
    _Accumulator,
    call_from_object,
    finished_from_text,
    json_error,
    recover_name,
)
from ._registry import Completion, register_parser
from .messages import parse_messages

END_TOKENS = ("<|eot_id|>", "<|eom_id|>")
_PYTHON_TAG = "<|python_tag|>"
_HEADER_RE = re.compile(r"<\|start_header_id\|>([^<]{0,40})<\|end_header_id\|>")
_SPECIAL_RE = re.compile(r"<\|(?:eot_id|eom_id|begin_of_text|end_of_text|finetune_right_pad_id)\|>")
_SEPARATORS = " \t\r\n;,"
_decoder = json.JSONDecoder()


def _is_call(obj: object) -> bool:
    return isinstance(obj, dict) and "name" in obj and ("parameters" in obj or "arguments" in obj)


def scan_llama3(text: str, acc: _Accumulator) -> str:
    """Read the calls of one assistant text into `acc`; return the text that is not a call."""
    body = _SPECIAL_RE.sub("", text) if "<|" in text else text
    tag_at = body.find(_PYTHON_TAG)
    tagged = tag_at >= 0
    if tagged:
        body = body[tag_at + len(_PYTHON_TAG) :]
    stripped = body.strip()
    if not tagged and not stripped.startswith("{"):
        return stripped
    pos, end, n = 0, len(stripped), 0
    while True:
        while pos < end and stripped[pos] in _SEPARATORS:
            pos += 1
        if pos >= end:
            break
        try:
            obj, after = _decoder.raw_decode(stripped, pos)
        except (ValueError, RecursionError) as exc:
            rest = stripped[pos:]
            if n == 0 and not tagged and '"parameters"' not in rest and '"arguments"' not in rest:
                return stripped  # JSON-looking prose, not a call
            acc.add_call(recover_name(rest), {}, rest, f"{INVALID_JSON}: {json_error(exc)}")
            return ""
        if not tagged and not _is_call(obj):
            if n == 0:
                return stripped  # a JSON answer, not a call
            acc.format_errors.append("text after the tool calls")
            return stripped[pos:].strip()
        name, arguments, error = call_from_object(obj)
        acc.add_call(name, arguments, stripped[pos:after], error)
        n += 1
        pos = after
    return ""


def parse_llama3_text(text: str, acc: _Accumulator) -> str:
    """Read a (possibly multi-turn) Llama 3 completion; return the last assistant answer text."""
    headers = list(_HEADER_RE.finditer(text)) if "<|start_header_id|>" in text else []
    if not headers:
        return scan_llama3(text, acc)
    answer = scan_llama3(text[: headers[0].start()], acc)
    for i, header in enumerate(headers):
        segment = text[header.end() : headers[i + 1].start() if i + 1 < len(headers) else len(text)]
        role = header.group(1).strip()
        if role in ("ipython", "tool"):
            acc.add_result(_SPECIAL_RE.sub("", segment).strip())
            answer = ""
        elif role == "assistant":
            answer = scan_llama3(segment, acc)
    return answer


@register_parser("llama3")
def parse_llama3(completion: Completion, *, eos_token: str | None, finished: bool | None) -> ParsedRollout:
    """Llama 3 text; a message list is read as chat messages with Llama 3 calls in the contents."""
    if not isinstance(completion, str):
        return parse_messages(completion, scan_llama3, eos_token=eos_token, finished=finished, parser="openai")
    acc = _Accumulator()
    answer = parse_llama3_text(completion, acc)
    if finished is None:
        finished = finished_from_text(completion, eos_token, END_TOKENS)
    return acc.build(answer, completion, finished, "llama3")
