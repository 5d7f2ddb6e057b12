"""The chat format every command shares: system prompts with tools, rendering, answers, tool-call parsing.

Training and evaluation must show the model the same text. Prompts are rendered with TRL's Qwen 2.5
template (the one `tiny-model` installs on the tokenizer), so a dataset's system message carries the
tool block exactly as `apply_chat_template(..., tools=...)` would write it. `GRPOTrainer(tools=...)`
writes that block itself, so the GRPO command strips it back off with `split_tool_block`; the test
suite checks both renderings are byte-identical. Tool calls in generated text are read here with a
small tolerant parser: malformed output becomes data (`ParsedCall.error`), never an exception.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

SYSTEM_INSTRUCTION = (
    "You are a careful assistant that solves problems with tools. Call one tool at a time and wait for "
    "its result. When you know the answer, reply with it in \\boxed{}."
)
TOOL_BLOCK_MARKER = "\n\n# Tools\n\n"
_SYSTEM_PREFIX = "<|im_start|>system\n"
_SYSTEM_SUFFIX = "<|im_end|>\n"
_TOOL_CALL_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
_BOXED_RE = re.compile(r"\\boxed\{")


@functools.lru_cache(maxsize=1)
def _template() -> Any:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from .tiny import qwen_chat_template

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    # transformers' own `tojson` (no HTML escaping, non-ASCII kept): the rendering must match it.
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
    return env.from_string(qwen_chat_template())


def render_conversation(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    add_generation_prompt: bool = False,
) -> str:
    """Render messages with the Qwen 2.5 template, without needing a tokenizer (used to train one)."""
    rendered: str = _template().render(
        messages=messages, tools=tools, add_generation_prompt=add_generation_prompt
    )
    return rendered


def tool_system_prompt(tool_schemas: list[dict[str, Any]], instruction: str = SYSTEM_INSTRUCTION) -> str:
    """The system message content with the tool block embedded the Qwen way."""
    text = render_conversation([{"role": "system", "content": instruction}], tools=tool_schemas)
    if not (text.startswith(_SYSTEM_PREFIX) and text.endswith(_SYSTEM_SUFFIX)):
        raise RuntimeError("the chat template no longer renders a leading system block")
    return text[len(_SYSTEM_PREFIX) : -len(_SYSTEM_SUFFIX)]


def split_tool_block(system_content: str) -> tuple[str, bool]:
    """(instruction without the tool block, whether there was one)."""
    head, marker, _ = system_content.partition(TOOL_BLOCK_MARKER)
    return head, bool(marker)


def prompt_without_tool_block(prompt: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The prompt for `GRPOTrainer(tools=...)`, which writes the tool block itself."""
    if prompt and prompt[0].get("role") == "system":
        instruction, _ = split_tool_block(str(prompt[0].get("content") or ""))
        return [{**prompt[0], "content": instruction}, *prompt[1:]]
    return list(prompt)


# ---------------------------------------------------------------------------- numbers and answers
def canonical_number(value: Any) -> Any:
    """Integral floats become ints, others keep 15 significant digits: the toolsets' own rule, so
    this is the identity on tool results and only tidies numbers a generator drew."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        value = float(f"{value:.15g}")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def format_answer(value: Any) -> str:
    """The ground-truth text of a result: canonical numbers, strings as they are."""
    value = canonical_number(value)
    return (
        value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, list | dict)
        else str(value)
    )


def boxed(answer: str) -> str:
    return f"\\boxed{{{answer}}}"


def extract_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (balanced braces), or None."""
    starts = [m.end() for m in _BOXED_RE.finditer(text)]
    if not starts:
        return None
    start, depth = starts[-1], 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start:i].strip()
    return None


# ---------------------------------------------------------------------------- generated text
@dataclass(frozen=True, slots=True)
class ParsedCall:
    """One `<tool_call>` block of generated text; `error` says why it could not be read."""

    name: str | None
    arguments: dict[str, Any] = field(default_factory=dict)
    raw: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.name is not None


@dataclass(frozen=True, slots=True)
class ParsedTurn:
    """An assistant turn: the text outside tool calls and the calls in order."""

    content: str
    calls: tuple[ParsedCall, ...]


def _parse_call(raw: str) -> ParsedCall:
    body = raw.strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        return ParsedCall(None, raw=raw, error=f"invalid JSON: {exc.msg}")
    if not isinstance(data, dict):
        return ParsedCall(None, raw=raw, error="the call is not a JSON object")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        return ParsedCall(None, raw=raw, error="missing tool name")
    arguments = data.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return ParsedCall(name, raw=raw, error="arguments are not valid JSON")
    if not isinstance(arguments, dict):
        return ParsedCall(name, raw=raw, error="arguments are not an object")
    return ParsedCall(name, arguments, raw=raw)


def parse_assistant_turn(text: str) -> ParsedTurn:
    """Split generated assistant text into free text and tool calls (an unclosed call counts, malformed)."""
    calls = tuple(_parse_call(m.group(1)) for m in _TOOL_CALL_RE.finditer(text))
    content = _TOOL_CALL_RE.sub("", text).strip()
    return ParsedTurn(content=content, calls=calls)


def assistant_message(turn: ParsedTurn) -> dict[str, Any]:
    """The turn as a chat message in TRL's shape (malformed calls stay as raw text in `content`)."""
    good = [c for c in turn.calls if c.ok]
    bad = [c for c in turn.calls if not c.ok]
    content = turn.content
    if bad:
        content = (content + "\n" if content else "") + "\n".join(
            f"<tool_call>{c.raw}</tool_call>" for c in bad
        )
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if good:
        message["tool_calls"] = [
            {"type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in good
        ]
    return message
