"""The shared chat format: tool-call parsing of generated text, answers, system prompts with tools."""

from __future__ import annotations

from typing import Any

import pytest

from mentor_trainer.chat import (
    SYSTEM_INSTRUCTION,
    TOOL_BLOCK_MARKER,
    assistant_message,
    canonical_number,
    extract_boxed,
    format_answer,
    parse_assistant_turn,
    prompt_without_tool_block,
    split_tool_block,
    tool_system_prompt,
)

CALL = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'


@pytest.mark.parametrize(
    ("text", "names", "errors", "content"),
    [
        (CALL, ["add"], [None], ""),
        ("Let me add.\n" + CALL, ["add"], [None], "Let me add."),
        (CALL + CALL.replace("add", "multiply"), ["add", "multiply"], [None, None], ""),
        ('<tool_call>{"name": "add", "arguments": "{\\"a\\": 1}"}</tool_call>', ["add"], [None], ""),
        ('<tool_call>{"name": "add", "arguments": {"a": 1,}}</tool_call>', [None], ["invalid JSON"], ""),
        ('<tool_call>{"arguments": {"a": 1}}</tool_call>', [None], ["missing tool name"], ""),
        ('<tool_call>["add", 1]</tool_call>', [None], ["not a JSON object"], ""),
        ('<tool_call>{"name": "add", "arguments": [1, 2]}</tool_call>', ["add"], ["not an object"], ""),
        ('<tool_call>{"name": "add", "arguments": "nope"}</tool_call>', ["add"], ["not valid JSON"], ""),
        ('<tool_call>\n{"name": "add", "arguments": {"a": 1', [None], ["invalid JSON"], ""),
        ("The answer is \\boxed{3}.", [], [], "The answer is \\boxed{3}."),
        ("", [], [], ""),
    ],
    ids=[
        "one-call",
        "text-then-call",
        "two-calls",
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
            assert call.ok and call.error is None
        else:
            assert not call.ok and expected in (call.error or "")
    assert turn.content == content


def test_assistant_message_keeps_malformed_calls_as_text() -> None:
    turn = parse_assistant_turn(CALL + '<tool_call>{"name": </tool_call>')
    message = assistant_message(turn)
    assert message["tool_calls"] == [
        {"type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}}
    ]
    assert message["content"] == '<tool_call>{"name": </tool_call>'


def test_assistant_message_without_calls_has_no_tool_calls_key() -> None:
    assert assistant_message(parse_assistant_turn("\\boxed{4}")) == {
        "role": "assistant",
        "content": "\\boxed{4}",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{42}", "42"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{ 2024-01-05 }", "2024-01-05"),
        ("\\boxed{12", None),
        ("no box", None),
    ],
    ids=["plain", "last-wins", "nested-braces", "stripped", "unbalanced", "none"],
)
def test_extract_boxed(text: str, expected: str | None) -> None:
    assert extract_boxed(text) == expected


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
