"""Hermes / Qwen tool-call text: `<tool_call>{json}</tool_call>` and `<tool_response>...</tool_response>`.

This is the paper's format and the hot path of the service, so it is one pass of a
precompiled tag regex plus `json.loads` per block. Each `<tool_call>` block is decoded as
JSON and its `name` read, exactly as the authors' reward code does; a block whose JSON does
not decode is a malformed call whose error starts with "invalid JSON" (its name, recovered
for diagnostics, is not a used tool for the paper's presets). One deliberate difference from
a plain non-greedy regex: an unclosed `<tool_call>` followed by another `<tool_call>` ends at
the second tag (the regex would swallow both into one unparseable block), so the second,
well-formed call still counts.
"""

from __future__ import annotations

import re

from ..types import ParsedRollout
from ._core import UNCLOSED_CALL, _Accumulator, call_from_json, finished_from_text, strip_think
from ._registry import Completion, register_parser
from .messages import parse_messages

# One pattern with a shared prefix: an alternation of four whole tags is ~8x slower in `re`.
# The tag is then told apart by its length alone.
_TAG_RE = re.compile(r"</?tool_(?:call|response)>")
# Qwen chat markup that is not part of what the assistant said.
_MARKUP_RE = re.compile(r"<\|(?:im_start\|>(?:assistant|user|system|tool)?\n?|im_end\|>|endoftext\|>)")
# What the Qwen template puts between a call and its response: skips the markup regex.
_TURN_GAPS = frozenset(
    (
        "",
        "\n",
        "<|im_end|>\n<|im_start|>user\n",
        "<|im_end|>\n<|im_start|>tool\n",
        "\n<|im_end|>\n<|im_start|>user\n",
        "<|im_end|>\n<|im_start|>user\n\n",
    )
)
_OPEN_CALL, _CLOSE_CALL = len("<tool_call>"), len("</tool_call>")
_OPEN_RESPONSE, _CLOSE_RESPONSE = len("<tool_response>"), len("</tool_response>")


def strip_markup(text: str) -> str:
    """Assistant text without chat markup and reasoning blocks, trimmed."""
    if "<|" in text:
        text = _MARKUP_RE.sub("", text)
    return strip_think(text).strip()


def _unclosed_call(block: str, acc: _Accumulator) -> None:
    # A truncated call often runs into the end-of-turn token: the JSON cannot include it.
    cut = block.find("<|im_end|>")
    if cut >= 0:
        block = block[:cut]
    raw = block.strip()
    name, arguments, error = call_from_json(raw)
    acc.add_call(name, arguments, raw, f"{UNCLOSED_CALL} (truncated)" + (f"; {error}" if error else ""))
    acc.format_errors.append(UNCLOSED_CALL)


def scan_hermes(text: str, acc: _Accumulator) -> str:
    """Read every call and response of `text` into `acc`; return the answer text after the last one."""
    if "tool_" not in text:
        return strip_markup(text)
    open_kind = 0
    open_at = 0
    last_end = 0
    call_closed_at = -1  # end of the latest </tool_call> not yet followed by a response
    stray = False
    for match in _TAG_RE.finditer(text):
        start, end = match.span()
        kind = end - start
        if kind == _OPEN_CALL or kind == _OPEN_RESPONSE:  # noqa: SIM109 (no tuple on the hot path)
            if open_kind == _OPEN_CALL:
                _unclosed_call(text[open_at:start], acc)
            elif open_kind == _OPEN_RESPONSE:
                acc.format_errors.append("unclosed <tool_response>")
            if kind == _OPEN_RESPONSE and call_closed_at >= 0:
                # Between a call and its response only chat markup belongs (the turn ends).
                gap = text[call_closed_at:start]
                if gap not in _TURN_GAPS:
                    if "<|" in gap:
                        gap = _MARKUP_RE.sub("", gap)
                    if gap and not gap.isspace():
                        acc.format_errors.append("text between </tool_call> and <tool_response>")
                call_closed_at = -1
            open_kind = kind
            open_at = end
        elif kind == _CLOSE_CALL:
            if open_kind == _OPEN_CALL:
                block = text[open_at:start].strip()
                name, arguments, error = call_from_json(block)
                acc.add_call(name, arguments, block, error)
                open_kind = 0
                last_end = call_closed_at = end
            else:
                acc.format_errors.append("stray </tool_call>")
                stray = True
        else:  # </tool_response>
            if open_kind == _OPEN_RESPONSE:
                acc.add_result(text[open_at:start].strip())
                open_kind = 0
                last_end = end
            else:
                acc.format_errors.append("stray </tool_response>")
                stray = True
    if open_kind == _OPEN_CALL:
        _unclosed_call(text[open_at:], acc)
        return ""
    if open_kind == _OPEN_RESPONSE:
        acc.format_errors.append("unclosed <tool_response>")
        return ""
    tail = text[last_end:]
    return strip_markup(_TAG_RE.sub("", tail) if stray else tail)


@register_parser("hermes")
def parse_hermes(completion: Completion, *, eos_token: str | None, finished: bool | None) -> ParsedRollout:
    """Hermes/Qwen text; a message list is read as chat messages with Hermes markup in the contents."""
    if not isinstance(completion, str):
        return parse_messages(completion, scan_hermes, eos_token=eos_token, finished=finished, parser="openai")
    acc = _Accumulator()
    answer = scan_hermes(completion, acc)
    if finished is None:
        finished = finished_from_text(completion, eos_token)
    return acc.build(answer, completion, finished, "hermes")
