"""Strings a model can produce never raise out of parsing, matching or the toolsets: each item is scored.

Lone UTF-16 surrogates (`"\\ud800"`, which JSON escapes can carry), NULs, integers past
Python's 4,300-digit str() limit, NaN and Infinity literals: in completions, tool names,
argument keys and values, results, references and ground truths, for every parser and preset,
with and without a toolset. The engine turns an unexpected exception into an
`internal_error` item error, so that error type is what these tests look for.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from mentor_server.scoring import ScoringEngine, item_from_dict, preset_names, resolve_spec
from mentor_server.scoring.parsing import parse_completion
from mentor_server.toolsets import get_toolset

S = "\ud800"
BIG = "1" * 5000  # more digits than int() may read from text

COMPLETIONS: list[Any] = [
    f'<tool_call>{{"name": "{S}", "arguments": {{"{S}": "{S}"}}}}</tool_call>'
    f"<tool_response>{S}</tool_response>\\boxed{{{S}}}",
    '<tool_call>{"name": "\\ud800", "arguments": {"\\udc00": "\\u0000", "a": NaN, "b": Infinity}}</tool_call>'
    "\\boxed{NaN}",
    '<tool_call>{"name": "add", "arguments": {"a": ' + BIG + ', "b": 1}}</tool_call>\\boxed{' + BIG + "}",
    '<tool_call>{"name": "add", "arguments": {"a": 1e999, "b": -1e999}}</tool_call><tool_response>nan</tool_response>',
    "[add(a=0x" + "f" * 5000 + ", b=1)]",
    "[add(a=1e999, b=-1e999)]",
    f"[{S}(a=1)]",
    f'[TOOL_CALLS][{{"name": "{S}", "arguments": {{"{S}": 1}}}}][TOOL_RESULTS]{S}[/TOOL_RESULTS]\\boxed{{1}}',
    '[TOOL_CALLS]add[ARGS]{"a": NaN, "b": ' + BIG + "}",
    '<|python_tag|>{"name": "\\ud800", "parameters": {"\\ud800": NaN}}<|eot_id|>',
    "\x00<tool_call>\x00</tool_call>\\boxed{\x00}",
    [
        {
            "role": "assistant",
            "content": S,
            "tool_calls": [{"id": S, "function": {"name": S, "arguments": {S: math.nan, "x": 10**5000}}}],
        },
        {"role": "tool", "tool_call_id": S, "content": S},
    ],
    [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"function": {"name": "add", "arguments": json.dumps({"a": math.inf, "b": math.nan})}}],
        },
        {"role": "user", "content": f"<tool_response>{S}</tool_response>"},
    ],
]

REFERENCES: list[dict[str, Any]] = [
    {"teacher_tools": ["add", S]},
    {"reference": {"calls": [{"name": S, "arguments": {S: S, "n": math.nan}, "result": S}], "answer": S}},
    {"reference": {"calls": [{"name": "add", "arguments": {"a": 10**5000, "b": math.inf}, "result": math.nan}]}},
]


def _items() -> list[Any]:
    return [
        item_from_dict({"completion": completion, "ground_truth": [S, "1", BIG], **reference})
        for completion in COMPLETIONS
        for reference in REFERENCES
    ]


@pytest.mark.parametrize("parser", ["auto", "hermes", "openai", "llama3", "mistral", "pythonic"])
def test_every_item_gets_a_result_and_none_is_an_internal_error(parser: str) -> None:
    items = _items()
    for preset in preset_names():
        for toolset in (None, get_toolset("calculator")):
            engine = ScoringEngine(resolve_spec(preset), toolset=toolset)
            engine.parser = parser
            results = engine.score_batch(items)
            assert len(results) == len(items)
            for result in results:
                assert result.error is None or result.error.type != "internal_error", (preset, result.error)


@pytest.mark.parametrize("completion", COMPLETIONS, ids=lambda c: "messages" if isinstance(c, list) else c[:24])
@pytest.mark.parametrize("parser", ["auto", "hermes", "openai", "llama3", "mistral", "pythonic"])
def test_every_call_the_parsers_return_can_be_written_back(completion: Any, parser: str) -> None:
    rollout = parse_completion(completion, parser=parser)
    for call in rollout.calls:
        json.dumps(call.arguments)  # no int past the str() limit survives as a call's arguments
        assert isinstance(call.raw, str)


def test_an_integer_too_long_to_write_makes_that_call_malformed() -> None:
    pythonic = parse_completion("[add(a=0x" + "f" * 5000 + ", b=1), add(a=1, b=2)]", parser="pythonic")
    assert [c.error for c in pythonic.calls] == ["non-literal argument 'a': integer too long to write in decimal", None]
    messages = parse_completion(COMPLETIONS[11], parser="openai")
    assert [c.error for c in messages.calls] == ["arguments hold an integer too long to write in decimal"]
    assert messages.calls[0].name == S and messages.calls[0].arguments == {}
