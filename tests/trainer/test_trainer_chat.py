"""The shared chat format: tool-call parsing of generated text, answers, system prompts with tools."""

from __future__ import annotations

from typing import Any

import pytest

from mentor_trainer.chat import (
    SYSTEM_INSTRUCTION,
    TOOL_BLOCK_MARKER,
    assistant_message,
    canonical_number,
    format_answer,
    parse_assistant_turn,
    prompt_without_tool_block,
    split_tool_block,
    tool_system_prompt,
)
from mentor_trainer.evaluate import rollout

CALL = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'


@pytest.mark.parametrize(
    ("text", "names", "errors", "content"),
    [
        (CALL, ["add"], [None], ""),
        ("Let me add.\n" + CALL, ["add"], [None], "Let me add."),
        (CALL + CALL.replace("add", "multiply"), ["add", "multiply"], [None, None], ""),
        (CALL + " so \\boxed{3}", ["add"], [None], "so \\boxed{3}"),
        ('<tool_call>{"name": "add", "arguments": "{\\"a\\": 1}"}</tool_call>', ["add"], [None], ""),
        # The engine recovers the name of a call whose JSON is broken; it is still not runnable.
        ('<tool_call>{"name": "add", "arguments": {"a": 1,}}</tool_call>', ["add"], ["invalid JSON"], ""),
        ('<tool_call>{"arguments": {"a": 1}}</tool_call>', [None], ["missing name"], ""),
        ('<tool_call>["add", 1]</tool_call>', [None], ["not a JSON object"], ""),
        ('<tool_call>{"name": "add", "arguments": [1, 2]}</tool_call>', ["add"], ["not an object"], ""),
        ('<tool_call>{"name": "add", "arguments": "nope"}</tool_call>', ["add"], ["not valid JSON"], ""),
        ('<tool_call>\n{"name": "add", "arguments": {"a": 1', ["add"], ["unclosed <tool_call>"], ""),
        ("The answer is \\boxed{3}.", [], [], "The answer is \\boxed{3}."),
        ("", [], [], ""),
    ],
    ids=[
        "one-call",
        "text-then-call",
        "two-calls",
        "call-then-text",
        "arguments-as-json-string",
        "trailing-comma",
        "no-name",
        "not-an-object",
        "arguments-list",
        "arguments-bad-string",
        "unclosed-call",
        "answer-only",
        "empty",
    ],
)
def test_parse_assistant_turn(text: str, names: list[Any], errors: list[Any], content: str) -> None:
    turn = parse_assistant_turn(text)
    assert [c.name for c in turn.calls] == names
    for call, expected in zip(turn.calls, errors, strict=True):
        if expected is None:
            assert call.is_valid and call.error is None
        else:
            assert not call.is_valid and expected in (call.error or "")
    assert turn.content == content


def test_parameters_key_is_read_like_arguments_and_executed_with_them() -> None:
    """`{"name": ..., "parameters": {...}}`: the engine reads the arguments, so evaluation must run the
    tool with them (a second parser once ran `add` with no arguments while the reward scored them)."""
    text = '<tool_call>{"name": "add", "parameters": {"a": 2, "b": 5}}</tool_call>'
    turn = parse_assistant_turn(text)
    assert [(c.name, dict(c.arguments), c.error) for c in turn.calls] == [("add", {"a": 2, "b": 5}, None)]
    executed: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        local = True

        def run(self, toolset: str, name: str, arguments: dict[str, Any]) -> str:
            executed.append((name, dict(arguments)))
            return str(arguments["a"] + arguments["b"])

    replies = iter([(text, True), ("\\boxed{7}", True)])
    rollouts = rollout(
        None,
        _TemplateOnly(),
        [[{"role": "user", "content": "What is 2 plus 5?"}]],
        ["calculator"],
        Recorder(),  # type: ignore[arg-type]
        generate=lambda texts: [next(replies) for _ in texts],
    )
    assert executed == [("add", {"a": 2, "b": 5})]
    assert rollouts[0].completion[1] == {"role": "tool", "name": "add", "content": "7"}
    assert rollouts[0].finished


class _TemplateOnly:
    """Just enough tokenizer for `rollout` with a scripted generator: it renders the conversation."""

    def apply_chat_template(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        return "\n".join(str(m.get("content")) for m in messages)


def test_parse_assistant_turn_auto_reads_other_formats() -> None:
    turn = parse_assistant_turn('[TOOL_CALLS][{"name": "add", "arguments": {"a": 1, "b": 2}}]', parser="auto")
    assert [(c.name, dict(c.arguments)) for c in turn.calls] == [("add", {"a": 1, "b": 2})]


def test_assistant_message_keeps_malformed_calls_as_text() -> None:
    turn = parse_assistant_turn(CALL + '<tool_call>{"name": </tool_call>')
    message = assistant_message(turn)
    assert message["tool_calls"] == [{"type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}}]
    assert message["content"] == '<tool_call>{"name":</tool_call>'  # the engine's raw block, stripped


def test_assistant_message_without_calls_has_no_tool_calls_key() -> None:
    assert assistant_message(parse_assistant_turn("\\boxed{4}")) == {
        "role": "assistant",
        "content": "\\boxed{4}",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (8.0, "8"),
        (0.30000000000000004, "0.3"),
        (-3, "-3"),
        (2.5, "2.5"),
        ("Monday", "Monday"),
        (True, "True"),
    ],
    ids=["integral-float", "binary-artefact", "negative-int", "fraction", "string", "bool"],
)
def test_format_answer(value: Any, expected: str) -> None:
    assert format_answer(value) == expected


def test_canonical_number_is_the_identity_on_canonical_values() -> None:
    for value in (1, 1.5, 1.49129086137001, -7, 0.001):
        assert canonical_number(canonical_number(value)) == canonical_number(value)


def test_tool_system_prompt_embeds_every_tool_after_the_instruction() -> None:
    schemas = [
        {
            "type": "function",
            "function": {"name": "add", "description": "Add.", "parameters": {"type": "object"}},
        },
        {
            "type": "function",
            "function": {"name": "ping", "description": "Ping.", "parameters": {"type": "object"}},
        },
    ]
    system = tool_system_prompt(schemas)
    assert system.startswith(SYSTEM_INSTRUCTION + TOOL_BLOCK_MARKER)
    assert '"name": "add"' in system and '"name": "ping"' in system
    assert "<tools>" in system and system.endswith("</tool_call>")
    assert split_tool_block(system) == (SYSTEM_INSTRUCTION, True)
    assert split_tool_block("plain") == ("plain", False)


def test_prompt_without_tool_block_only_touches_the_system_message() -> None:
    schemas = [{"type": "function", "function": {"name": "add", "description": "", "parameters": {}}}]
    prompt = [{"role": "system", "content": tool_system_prompt(schemas)}, {"role": "user", "content": "1+1?"}]
    stripped = prompt_without_tool_block(prompt)
    assert stripped == [
        {"role": "system", "content": SYSTEM_INSTRUCTION},
        {"role": "user", "content": "1+1?"},
    ]
    assert prompt[0]["content"] != SYSTEM_INSTRUCTION  # the input is left as it was
    user_only = [{"role": "user", "content": "hi"}]
    assert prompt_without_tool_block(user_only) == user_only
