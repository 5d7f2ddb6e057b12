"""The chat format every command shares: system prompts with tools, rendering, answers, tool-call parsing.

Training and evaluation must show the model the same text. Prompts are rendered with TRL's Qwen 2.5
template (the one `tiny-model` installs on the tokenizer), so a dataset's system message carries the
tool block exactly as `apply_chat_template(..., tools=...)` would write it. `GRPOTrainer(tools=...)`
writes that block itself, so the GRPO command strips it back off with `split_tool_block`; the test
suite checks both renderings are byte-identical. Tool calls and `\\boxed{}` answers in generated text
are read with the scoring engine's own parser (`parse_completion`; answers with its `extract_boxed`), so what
evaluation executes is what the reward scores; malformed output becomes data (`ToolCall.error`).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mentor_server.scoring.parsing import parse_completion
from mentor_server.scoring.types import ToolCall

SYSTEM_INSTRUCTION = (
    "You are a careful assistant that solves problems with tools. Call one tool at a time and wait for "
    "its result. When you know the answer, reply with it in \\boxed{}."
)
TOOL_BLOCK_MARKER = "\n\n# Tools\n\n"
_SYSTEM_PREFIX = "<|im_start|>system\n"
_SYSTEM_SUFFIX = "<|im_end|>\n"


def qwen_chat_template() -> str:
    """TRL's Qwen 2.5 chat template, read from the installed trl package.

    TRL recognises a tokenizer's template by string equality (to pick its response parser and
    its prefix-preserving training template), so the text must be the installed file's, verbatim.
    """
    import trl

    path = Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja"
    return path.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _template() -> Any:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

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
    rendered: str = _template().render(messages=messages, tools=tools, add_generation_prompt=add_generation_prompt)
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
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, list | dict) else str(value)


def boxed(answer: str) -> str:
    return f"\\boxed{{{answer}}}"


# ---------------------------------------------------------------------------- generated text
@dataclass(frozen=True, slots=True)
class ParsedTurn:
    """An assistant turn: the text outside tool calls, and the calls in order as the engine reads them
    (`ToolCall.error` says why a call could not be read; such a call is never executed)."""

    content: str
    calls: tuple[ToolCall, ...]


def parse_assistant_turn(text: str, parser: str = "hermes") -> ParsedTurn:
    """Read one generated assistant turn with the scoring engine's parser (`auto`: any format it reads).

    Evaluation executes exactly the calls the reward will score: one reading of the text (an
    unclosed or malformed call is data, never an exception; `parameters` is read like `arguments`).
    """
    rollout = parse_completion(text, parser=parser, eos_token=None, finished=True)
    if not rollout.calls:
        return ParsedTurn(content=text.strip(), calls=())
    if rollout.parser != "hermes":
        return ParsedTurn(content="", calls=rollout.calls)  # other formats: no prose to tell apart safely
    # The prose around the calls: the engine's answer text is what follows the last call; what came
    # before the first one is the turn's preamble ("Let me add.").
    head = text.split("<tool_call>", 1)[0].strip()
    content = "\n".join(part for part in (head, rollout.answer_text) if part)
    return ParsedTurn(content=content, calls=rollout.calls)


def assistant_message(turn: ParsedTurn) -> dict[str, Any]:
    """The turn as a chat message in TRL's shape (malformed calls stay as raw text in `content`)."""
    good = [c for c in turn.calls if c.is_valid]
    bad = [c for c in turn.calls if not c.is_valid]
    content = turn.content
    if bad:
        content = (content + "\n" if content else "") + "\n".join(f"<tool_call>{c.raw}</tool_call>" for c in bad)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if good:
        message["tool_calls"] = [
            {"type": "function", "function": {"name": c.name, "arguments": dict(c.arguments)}} for c in good
        ]
    return message
