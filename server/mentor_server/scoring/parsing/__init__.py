"""Rollout parsers: turn one completion (text or chat messages) into a typed `ParsedRollout`, once.

Formats are registered by name: `hermes` (Hermes/Qwen `<tool_call>` JSON, the paper's
format), `openai` (OpenAI/TRL message lists), `llama3`, `mistral`, `pythonic` (BFCL), and
`auto`, which picks one from the content with a few substring checks. Parsers never raise on
model output: broken calls become `ToolCall(error=...)`, broken markup becomes
`ParsedRollout.format_errors`. Only an unknown parser name is an error (configuration).

    >>> rollout = parse_completion('<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>'
    ...                            '<tool_response>1</tool_response>The answer is 1.<|im_end|>')
    >>> rollout.parser, [c.name for c in rollout.calls], rollout.calls[0].result, rollout.answer_text
    ('hermes', ['add'], '1', 'The answer is 1.')
    >>> rollout.finished
    True
"""

from __future__ import annotations

from typing import Any

from ..types import ParsedRollout, ToolCall
from ._core import INVALID_JSON, UNCLOSED_CALL
from ._registry import Completion, Parser, get_parser, list_parsers, register_parser
from .hermes import parse_hermes, scan_hermes
from .llama3 import parse_llama3
from .messages import parse_messages
from .mistral import parse_mistral
from .pythonic import parse_pythonic, try_pythonic

_NOT_NAMED = (INVALID_JSON, UNCLOSED_CALL)


@register_parser("openai")
def parse_openai(completion: Completion, *, eos_token: str | None, finished: bool | None) -> ParsedRollout:
    """OpenAI/TRL chat messages (raw `<tool_call>` text in contents is read too).

    A text completion is read as one assistant message.
    """
    messages: Any = [{"role": "assistant", "content": completion}] if isinstance(completion, str) else completion
    return parse_messages(messages, scan_hermes, eos_token=eos_token, finished=finished, parser="openai")


@register_parser("auto")
def parse_auto(completion: Completion, *, eos_token: str | None, finished: bool | None) -> ParsedRollout:
    """Pick the format from the content; `ParsedRollout.parser` records the one chosen."""
    if not isinstance(completion, str):
        return parse_messages(completion, scan_hermes, eos_token=eos_token, finished=finished, parser="openai")
    text = completion
    if "<tool_call>" in text or "<tool_response>" in text:
        return parse_hermes(text, eos_token=eos_token, finished=finished)
    if "[TOOL_CALLS]" in text:
        return parse_mistral(text, eos_token=eos_token, finished=finished)
    if "<|python_tag|>" in text or "<|start_header_id|>" in text:
        return parse_llama3(text, eos_token=eos_token, finished=finished)
    head = text.lstrip()[:1]
    if head == "{" and '"name"' in text:
        return parse_llama3(text, eos_token=eos_token, finished=finished)
    if head in ("[", "<", "`"):
        pythonic = try_pythonic(text, eos_token, finished)
        if pythonic is not None:
            return pythonic
    return parse_hermes(text, eos_token=eos_token, finished=finished)


def named_calls(rollout: ParsedRollout) -> tuple[ToolCall, ...]:
    """The calls whose name was read the way the paper's reward code reads it.

    The authors take `json.loads(block)["name"]` of every closed `<tool_call>` block: a block
    whose JSON does not decode, or that never closes, names no tool, while a call whose name
    was read but whose arguments are unusable still does. These are the paper's "used tools"
    (and, outside the registry, its hallucinated ones).
    """
    return tuple(
        call
        for call in rollout.calls
        if call.name is not None and (call.error is None or not call.error.startswith(_NOT_NAMED))
    )


def parse_completion(
    completion: Completion,
    *,
    parser: str = "auto",
    eos_token: str | None = "<|im_end|>",
    finished: bool | None = None,
) -> ParsedRollout:
    """Parse one rollout with the parser registered as `parser`.

    Args:
        completion: the decoded rollout text, or an OpenAI/TRL chat message list.
        parser: a registered parser name (`list_parsers()`); "auto" picks from the content.
        eos_token: the end-of-sequence token that marks a finished rollout (None: unknown).
        finished: overrides end-of-sequence detection when the caller knows (TRL strips tokens).

    Returns:
        The `ParsedRollout`; malformed output is recorded in it, never raised.

    Raises:
        ScoringConfigError: `parser` is not a registered name (param="parser").
    """
    return get_parser(parser)(completion, eos_token=eos_token, finished=finished)


__all__ = [
    "INVALID_JSON",
    "UNCLOSED_CALL",
    "Completion",
    "Parser",
    "get_parser",
    "list_parsers",
    "named_calls",
    "parse_auto",
    "parse_completion",
    "parse_hermes",
    "parse_llama3",
    "parse_mistral",
    "parse_openai",
    "parse_pythonic",
    "register_parser",
]
