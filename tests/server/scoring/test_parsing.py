"""Rollout parsers: every format read into calls/results/answer, malformed output recorded, never raised."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mentor_server.scoring.parsing import (
    INVALID_JSON,
    UNCLOSED_CALL,
    _registry,
    get_parser,
    list_parsers,
    named_calls,
    parse_completion,
    register_parser,
)
from mentor_server.scoring.types import ParsedRollout, ScoringConfigError

PARITY_FILE = Path(__file__).resolve().parents[2] / "data" / "mentor_seed_public.jsonl"
PARITY = [json.loads(line) for line in PARITY_FILE.read_text().splitlines() if line.strip()]

ADD = '{"name": "add", "arguments": {"a": 1, "b": 2}}'
MUL = '{"name": "multiply", "arguments": {"a": 3, "b": 4}}'


def _names(parsed: ParsedRollout) -> list[str | None]:
    return [c.name for c in parsed.calls]


def _errors(parsed: ParsedRollout) -> list[str | None]:
    return [c.error for c in parsed.calls]


# ------------------------------------------------------------------------- parity (paper's reading)
def _authors_names(text: str) -> list[str]:
    names = []
    for block in re.findall(r"<tool_call>(.*?)</tool_call>", text, re.S):
        try:
            names.append(json.loads(block)["name"])
        except (ValueError, KeyError, TypeError):  # the authors' code skips such a block
            continue
    return names


def test_parity_file_is_complete() -> None:
    assert len(PARITY) == 150


@pytest.mark.parametrize("case", PARITY, ids=[f"parity-{i:03d}" for i in range(len(PARITY))])
def test_named_calls_match_the_authors_regex_and_json_loads(case: dict[str, Any]) -> None:
    text = case["completion"]
    parsed = parse_completion(text)
    assert parsed.parser == "hermes"
    assert [c.name for c in named_calls(parsed)] == _authors_names(text)
    # Every block is a call, the unreadable ones included (as malformed calls).
    assert len(parsed.calls) == len(re.findall(r"<tool_call>(.*?)</tool_call>", text, re.S))
    assert parsed.finished is text.endswith("<|im_end|>")
    assert parsed.full_text == text


hermes_pieces = st.one_of(
    st.builds(
        lambda name, args: f"<tool_call>\n{json.dumps({'name': name, 'arguments': args})}\n</tool_call>",
        st.sampled_from(["add", "sqrt", "made_up", ""]),
        st.dictionaries(st.sampled_from("ab"), st.integers(), max_size=2),
    ),
    st.sampled_from(
        [
            '<tool_call>{"name": "add", "arguments": {"a": 1</tool_call>',  # JSON cut short
            '<tool_call>{"arguments": {}}</tool_call>',  # no name
            '<tool_call>{"name": "add", "arguments": [1]}</tool_call>',  # name read, arguments unusable
            '<tool_call>["add"]</tool_call>',
            "<tool_call>",  # never closed
            "</tool_call>",
            "<tool_response>\n7\n</tool_response>",
            "<tool_response>",
            "<|im_end|>\n<|im_start|>user\n",
            "The answer is \\boxed{7}.",
        ]
    ),
    st.text(alphabet="ab {}<>/\n", max_size=6),
)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(hermes_pieces, max_size=10))
def test_named_calls_match_the_authors_reading_on_generated_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    blocks = re.findall(r"<tool_call>(.*?)</tool_call>", text, re.S)
    # The one documented difference: an unclosed call swallowing the next opening tag.
    assume(all("<tool_call>" not in block for block in blocks))
    assert [c.name for c in named_calls(parse_completion(text))] == _authors_names(text)


def test_parity_set_contains_unreadable_blocks() -> None:
    # Guards the test above: it must cover blocks whose JSON does not decode.
    malformed = [c for case in PARITY for c in parse_completion(case["completion"]).calls if not c.is_valid]
    assert malformed
    assert all(c.error is not None and c.error.startswith(INVALID_JSON) for c in malformed)


# ---------------------------------------------------------------------------------------- hermes
HERMES_CASES: list[tuple[str, str, list[str | None], list[str | None], list[str | None], str, list[str]]] = [
    # id, text, names, error prefixes (None = valid), results, answer_text, format errors
    (
        "one-call-result-answer",
        f"<tool_call>{ADD}</tool_call><tool_response>3</tool_response>The answer is \\boxed{{3}}.",
        ["add"],
        [None],
        ["3"],
        "The answer is \\boxed{3}.",
        [],
    ),
    (
        "qwen-markup-two-turns",
        f"<|im_start|>assistant\n<tool_call>\n{ADD}\n</tool_call><|im_end|>\n<|im_start|>user\n"
        f"<tool_response>\n3\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
        f"<tool_call>\n{MUL}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n12\n"
        "</tool_response><|im_end|>\n<|im_start|>assistant\nDone: 12<|im_end|>",
        ["add", "multiply"],
        [None, None],
        ["3", "12"],
        "Done: 12",
        [],
    ),
    (
        "parallel-calls-results-in-order",
        f"<tool_call>{ADD}</tool_call>\n<tool_call>{MUL}</tool_call>"
        "<tool_response>3</tool_response><tool_response>12</tool_response>ok",
        ["add", "multiply"],
        [None, None],
        ["3", "12"],
        "ok",
        [],
    ),
    (
        "arguments-as-json-string",
        '<tool_call>{"name": "add", "arguments": "{\\"a\\": 1}"}</tool_call>',
        ["add"],
        [None],
        [None],
        "",
        [],
    ),
    (
        "parameters-alias",
        '<tool_call>{"name": "add", "parameters": {"a": 1}}</tool_call>',
        ["add"],
        [None],
        [None],
        "",
        [],
    ),
    (
        "no-arguments-key",
        '<tool_call>{"name": "now"}</tool_call>',
        ["now"],
        [None],
        [None],
        "",
        [],
    ),
    ("plain-text", "<think>hmm</think>Just 42.<|im_end|>", [], [], [], "Just 42.", []),
    (
        "bad-json-keeps-recovered-name",
        '<tool_call>\n{"name": "subtract", "arguments": {"a": 9, "b": 53\n</tool_call>',
        ["subtract"],
        [INVALID_JSON],
        [None],
        "",
        [],
    ),
    (
        "missing-name",
        '<tool_call>{"arguments": {"a": 1}}</tool_call>',
        [None],
        ["missing name"],
        [None],
        "",
        [],
    ),
    (
        "name-not-a-string",
        '<tool_call>{"name": 7, "arguments": {}}</tool_call>',
        [None],
        ["name is not a string"],
        [None],
        "",
        [],
    ),
    (
        "empty-name",
        '<tool_call>{"name": " ", "arguments": {}}</tool_call>',
        [" "],
        ["empty name"],
        [None],
        "",
        [],
    ),
    (
        "arguments-not-object",
        '<tool_call>{"name": "add", "arguments": [1, 2]}</tool_call>',
        ["add"],
        ["arguments are not an object"],
        [None],
        "",
        [],
    ),
    (
        "arguments-string-not-json",
        '<tool_call>{"name": "add", "arguments": "a=1"}</tool_call>',
        ["add"],
        ["arguments are not valid JSON"],
        [None],
        "",
        [],
    ),
    (
        "block-is-a-list",
        f"<tool_call>[{ADD}]</tool_call>",
        [None],
        ["call is not a JSON object"],
        [None],
        "",
        [],
    ),
    (
        "truncated-call",
        '<tool_call>{"name": "add", "argum',
        ["add"],
        [UNCLOSED_CALL],
        [None],
        "",
        [UNCLOSED_CALL],
    ),
    (
        "unclosed-call-before-eos-keeps-json",
        f"<tool_call>{ADD}<|im_end|>",
        ["add"],
        [UNCLOSED_CALL],
        [None],
        "",
        [UNCLOSED_CALL],
    ),
    (
        "unclosed-then-closed-call",
        f'<tool_call>{{"name": "add"<tool_call>{MUL}</tool_call>',
        ["add", "multiply"],
        [UNCLOSED_CALL, None],
        [None, None],
        "",
        [UNCLOSED_CALL],
    ),
    ("stray-close", "</tool_call> answer", [], [], [], "answer", ["stray </tool_call>"]),
    (
        "response-without-call",
        "<tool_response>5</tool_response> answer",
        [],
        [],
        [],
        "answer",
        ["tool result without a pending call"],
    ),
    (
        "unclosed-response",
        f"<tool_call>{ADD}</tool_call><tool_response>3",
        ["add"],
        [None],
        [None],
        "",
        ["unclosed <tool_response>"],
    ),
    (
        "text-between-call-and-response",
        f"<tool_call>{ADD}</tool_call> the result will be 3 <tool_response>3</tool_response>",
        ["add"],
        [None],
        ["3"],
        "",
        ["text between </tool_call> and <tool_response>"],
    ),
    (
        "think-removed-from-answer",
        f"<tool_call>{ADD}</tool_call><tool_response>3</tool_response><think>so 3</think> Three.",
        ["add"],
        [None],
        ["3"],
        "Three.",
        [],
    ),
]


@pytest.mark.parametrize(
    ("text", "names", "errors", "results", "answer", "format_errors"),
    [case[1:] for case in HERMES_CASES],
    ids=[case[0] for case in HERMES_CASES],
)
def test_hermes(
    text: str,
    names: list[str | None],
    errors: list[str | None],
    results: list[str | None],
    answer: str,
    format_errors: list[str],
) -> None:
    parsed = parse_completion(text, parser="hermes")
    assert parsed.parser == "hermes"
    assert _names(parsed) == names
    for call, prefix in zip(parsed.calls, errors, strict=True):
        if prefix is None:
            assert call.error is None and call.is_valid
        else:
            assert call.error is not None and call.error.startswith(prefix), call.error
            assert not call.is_valid
    assert [c.result for c in parsed.calls] == results
    assert parsed.answer_text == answer
    assert list(parsed.format_errors) == format_errors
    assert parsed.full_text == text


def test_hermes_arguments_are_decoded() -> None:
    parsed = parse_completion(
        '<tool_call>{"name": "f", "arguments": "{\\"x\\": [1, {\\"y\\": null}]}"}</tool_call>'
    )
    assert parsed.calls[0].arguments == {"x": [1, {"y": None}]}
    assert parsed.calls[0].raw == '{"name": "f", "arguments": "{\\"x\\": [1, {\\"y\\": null}]}"}'


@pytest.mark.parametrize(
    ("text", "eos_token", "finished", "expected"),
    [
        ("done<|im_end|>", "<|im_end|>", None, True),
        ("done<|im_end|>\n  ", "<|im_end|>", None, True),
        ("done", "<|im_end|>", None, False),
        ("done<|im_end|>x", "<|im_end|>", None, False),
        ("done</s>", "</s>", None, True),
        ("done<|im_end|>", None, None, None),
        ("done", "<|im_end|>", True, True),
        ("done<|im_end|>", "<|im_end|>", False, False),
    ],
    ids=[
        "eos",
        "eos-then-space",
        "no-eos",
        "eos-not-last",
        "custom-eos",
        "eos-unknown",
        "told-finished",
        "told-not",
    ],
)
def test_finished(text: str, eos_token: str | None, finished: bool | None, expected: bool | None) -> None:
    assert (
        parse_completion(text, parser="hermes", eos_token=eos_token, finished=finished).finished is expected
    )


# -------------------------------------------------------------------------------- chat messages
def _tool_call(name: str, arguments: Any, call_id: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        call["id"] = call_id
    return call


MESSAGE_CASES: list[
    tuple[str, list[Any], list[str | None], list[str | None], list[str | None], str, list[str]]
] = [
    # id, messages, names, error prefixes, results per call, answer_text, format errors
    (
        "structured-call-dict-arguments",
        [
            {"role": "assistant", "content": "", "tool_calls": [_tool_call("add", {"a": 1}, "c1")]},
            {"role": "tool", "tool_call_id": "c1", "content": "1"},
            {"role": "assistant", "content": "It is 1."},
        ],
        ["add"],
        [None],
        ["1"],
        "It is 1.",
        [],
    ),
    (
        "arguments-json-string",
        [{"role": "assistant", "content": None, "tool_calls": [_tool_call("add", '{"a": 1}')]}],
        ["add"],
        [None],
        [None],
        "",
        [],
    ),
    (
        "flattened-call",
        [{"role": "assistant", "tool_calls": [{"name": "add", "arguments": {"a": 1}}]}],
        ["add"],
        [None],
        [None],
        "",
        [],
    ),
    (
        "results-paired-by-id-out-of-order",
        [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [_tool_call("add", {}, "c1"), _tool_call("multiply", {}, "c2")],
            },
            {"role": "tool", "tool_call_id": "c2", "content": "12"},
            {"role": "tool", "tool_call_id": "c1", "content": "3"},
        ],
        ["add", "multiply"],
        [None, None],
        ["3", "12"],
        "",
        [],
    ),
    (
        "results-paired-in-order-without-ids",
        [
            {"role": "assistant", "tool_calls": [_tool_call("add", {}), _tool_call("multiply", {})]},
            {"role": "tool", "content": "3"},
            {"role": "tool", "content": "12"},
        ],
        ["add", "multiply"],
        [None, None],
        ["3", "12"],
        "",
        [],
    ),
    (
        "trl-raw-malformed-call-in-content",
        [{"role": "assistant", "content": '<tool_call>{"name": "add", "arguments": {"a": </tool_call>'}],
        ["add"],
        [INVALID_JSON],
        [None],
        "",
        [],
    ),
    (
        "bad-json-arguments-string",
        [{"role": "assistant", "tool_calls": [_tool_call("add", '{"a": ')]}],
        ["add"],
        ["arguments are not valid JSON"],
        [None],
        "",
        [],
    ),
    (
        "tool-calls-not-a-list",
        [{"role": "assistant", "tool_calls": {"name": "add"}}],
        [None],
        ["tool_calls is not a list"],
        [None],
        "",
        [],
    ),
    (
        "call-not-an-object",
        [{"role": "assistant", "tool_calls": ["add(1)"]}],
        [None],
        ["tool call is not an object"],
        [None],
        "",
        [],
    ),
    (
        "content-parts",
        [
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "The answer "}, {"type": "text", "text": "is 4"}],
            }
        ],
        [],
        [],
        [],
        "The answer is 4",
        [],
    ),
    (
        "qwen-results-in-user-turn",
        [
            {"role": "assistant", "content": f"<tool_call>{ADD}</tool_call>"},
            {"role": "user", "content": "<tool_response>3</tool_response>"},
            {"role": "assistant", "content": "3"},
        ],
        ["add"],
        [None],
        ["3"],
        "3",
        [],
    ),
    (
        "not-a-message",
        ["hello", {"role": "assistant", "content": "hi"}],
        [],
        [],
        [],
        "hi",
        ["message is not an object"],
    ),
    (
        "content-not-text",
        [{"role": "assistant", "content": 5}],
        [],
        [],
        [],
        "",
        ["message content is not text"],
    ),
]


@pytest.mark.parametrize(
    ("messages", "names", "errors", "results", "answer", "format_errors"),
    [case[1:] for case in MESSAGE_CASES],
    ids=[case[0] for case in MESSAGE_CASES],
)
def test_openai_messages(
    messages: list[Any],
    names: list[str | None],
    errors: list[str | None],
    results: list[str | None],
    answer: str,
    format_errors: list[str],
) -> None:
    parsed = parse_completion(messages, parser="openai")
    assert parsed.parser == "openai"
    assert _names(parsed) == names
    for call, prefix in zip(parsed.calls, errors, strict=True):
        if prefix is None:
            assert call.is_valid, call.error
        else:
            assert call.error is not None and call.error.startswith(prefix), call.error
    assert [c.result for c in parsed.calls] == results
    assert parsed.answer_text == answer
    assert list(parsed.format_errors) == format_errors
    # A message list is also what "auto" reads as chat messages.
    assert parse_completion(messages) == parsed


def test_openai_full_text_and_finished() -> None:
    messages = [
        {"role": "assistant", "content": "step one", "tool_calls": [_tool_call("add", {})]},
        {"role": "tool", "content": "3"},
        {"role": "assistant", "content": "\\boxed{3}<|im_end|>"},
    ]
    parsed = parse_completion(messages)
    assert parsed.full_text == "step one\n\\boxed{3}<|im_end|>"
    assert parsed.answer_text == "\\boxed{3}"
    assert parsed.finished is True
    assert parse_completion(messages[:2]).finished is None  # TRL strips EOS: unknown, not False
    assert parse_completion(messages[:2], finished=True).finished is True


# ---------------------------------------------------------------------------------------- llama 3
LLAMA_CASES: list[tuple[str, str, list[str | None], list[str | None], list[str | None], str, bool | None]] = [
    # id, text, names, error prefixes, results, answer, finished (eos_token "<|im_end|>")
    (
        "python-tag-eom",
        '<|python_tag|>{"name": "add", "parameters": {"a": 1}}<|eom_id|>',
        ["add"],
        [None],
        [None],
        "",
        True,
    ),
    (
        "plain-json",
        '{"name": "add", "parameters": {"a": 1, "b": 2}}',
        ["add"],
        [None],
        [None],
        "",
        False,
    ),
    (
        "several-separated",
        '<|python_tag|>{"name": "add", "arguments": {}}; {"name": "multiply", "parameters": {}}\n'
        '{"name": "ceil", "parameters": {"a": 1.5}}<|eot_id|>',
        ["add", "multiply", "ceil"],
        [None, None, None],
        [None, None, None],
        "",
        True,
    ),
    ("json-answer-not-a-call", '{"name": "Ada", "age": 36}', [], [], [], '{"name": "Ada", "age": 36}', False),
    ("plain-text", "The answer is 4.<|eot_id|>", [], [], [], "The answer is 4.", True),
    (
        "multi-turn-with-ipython-result",
        '<|python_tag|>{"name": "add", "parameters": {"a": 1}}<|eom_id|>'
        "<|start_header_id|>ipython<|end_header_id|>\n\n3<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nIt is 3.<|eot_id|>",
        ["add"],
        [None],
        ["3"],
        "It is 3.",
        True,
    ),
    (
        "broken-json-after-tag",
        '<|python_tag|>{"name": "add", "parameters": {"a": 1',
        ["add"],
        [INVALID_JSON],
        [None],
        "",
        False,
    ),
    (
        "tagged-object-without-name",
        '<|python_tag|>{"parameters": {}}',
        [None],
        ["missing name"],
        [None],
        "",
        False,
    ),
]


@pytest.mark.parametrize(
    ("text", "names", "errors", "results", "answer", "finished"),
    [case[1:] for case in LLAMA_CASES],
    ids=[case[0] for case in LLAMA_CASES],
)
def test_llama3(
    text: str,
    names: list[str | None],
    errors: list[str | None],
    results: list[str | None],
    answer: str,
    finished: bool | None,
) -> None:
    parsed = parse_completion(text, parser="llama3")
    assert parsed.parser == "llama3"
    assert _names(parsed) == names
    for call, prefix in zip(parsed.calls, errors, strict=True):
        assert (call.error is None) if prefix is None else (call.error or "").startswith(prefix), call.error
    assert [c.result for c in parsed.calls] == results
    assert parsed.answer_text == answer
    assert parsed.finished is finished


def test_llama3_arguments() -> None:
    parsed = parse_completion('<|python_tag|>{"name": "f", "parameters": {"x": [1, 2]}}', parser="llama3")
    assert parsed.calls[0].arguments == {"x": [1, 2]}


# ---------------------------------------------------------------------------------------- mistral
MISTRAL_CASES: list[tuple[str, str, list[str | None], list[str | None], list[str | None], str, list[str]]] = [
    (
        "call-list-and-json-results",
        '[TOOL_CALLS] [{"name": "add", "arguments": {"a": 1}, "id": "abc"}, '
        '{"name": "multiply", "arguments": {"a": 2}, "id": "def"}]</s>'
        '[TOOL_RESULTS] {"content": 12, "call_id": "def"}[/TOOL_RESULTS]'
        '[TOOL_RESULTS] {"content": "1", "call_id": "abc"}[/TOOL_RESULTS] It is 12.</s>',
        ["add", "multiply"],
        [None, None],
        ["1", "12"],
        "It is 12.",
        [],
    ),
    (
        "v11-named-calls",
        '[TOOL_CALLS]add[ARGS]{"a": 1}[TOOL_CALLS]multiply[ARGS]{"a": 2}</s>',
        ["add", "multiply"],
        [None, None],
        [None, None],
        "",
        [],
    ),
    (
        "v11-with-call-id",
        '[TOOL_CALLS]add[CALL_ID]x1[ARGS]{"a": 1}[TOOL_RESULTS]5[/TOOL_RESULTS]Five.',
        ["add"],
        [None],
        ["5"],
        "Five.",
        [],
    ),
    (
        "unreadable-list",
        '[TOOL_CALLS] [{"name": "add", "arguments": {"a": </s>',
        ["add"],
        [INVALID_JSON],
        [None],
        "",
        ["unreadable [TOOL_CALLS] list"],
    ),
    ("v11-missing-args", "[TOOL_CALLS]add</s>", [None], ["[TOOL_CALLS] without"], [None], "", []),
    (
        "v11-bad-arguments",
        "[TOOL_CALLS]add[ARGS]{oops}",
        ["add"],
        ["arguments are not valid JSON"],
        [None],
        "",
        [],
    ),
    ("stray-close", "[/TOOL_RESULTS] hi", [], [], [], "hi", ["stray [/TOOL_RESULTS]"]),
    ("plain", "[INST] q [/INST] Hello</s>", [], [], [], "Hello", []),
]


@pytest.mark.parametrize(
    ("text", "names", "errors", "results", "answer", "format_errors"),
    [case[1:] for case in MISTRAL_CASES],
    ids=[case[0] for case in MISTRAL_CASES],
)
def test_mistral(
    text: str,
    names: list[str | None],
    errors: list[str | None],
    results: list[str | None],
    answer: str,
    format_errors: list[str],
) -> None:
    parsed = parse_completion(text, parser="mistral")
    assert parsed.parser == "mistral"
    assert _names(parsed) == names
    for call, prefix in zip(parsed.calls, errors, strict=True):
        assert (call.error is None) if prefix is None else (call.error or "").startswith(prefix), call.error
    assert [c.result for c in parsed.calls] == results
    assert parsed.answer_text == answer
    assert list(parsed.format_errors) == format_errors


def test_mistral_finished_and_arguments() -> None:
    parsed = parse_completion('[TOOL_CALLS]f[ARGS]{"x": {"y": -1}}</s>', parser="mistral")
    assert parsed.calls[0].arguments == {"x": {"y": -1}}
    assert parsed.finished is True


# --------------------------------------------------------------------------------------- pythonic
PYTHONIC_CASES: list[tuple[str, str, list[str | None], list[dict[str, Any]], list[str | None], str]] = [
    # id, text, names, arguments, error prefixes, answer
    (
        "two-calls",
        '[get_weather(city="Paris", unit="c"), add(a=1, b=2.5)]',
        ["get_weather", "add"],
        [{"city": "Paris", "unit": "c"}, {"a": 1, "b": 2.5}],
        [None, None],
        "",
    ),
    (
        "nested-literals",
        '[f(xs=[1, (2, 3)], d={"k": [True, None]}, n=-4, p=+2)]',
        ["f"],
        [{"xs": [1, [2, 3]], "d": {"k": [True, None]}, "n": -4, "p": 2}],
        [None],
        "",
    ),
    ("dotted-name", "[math.geometry.area(r=2)]", ["math.geometry.area"], [{"r": 2}], [None], ""),
    ("bare-call", "f(a=1)", ["f"], [{"a": 1}], [None], ""),
    ("positional", "[f(1, b=2)]", ["f"], [{}], ["positional arguments"], ""),
    ("variable", "[f(a=x)]", ["f"], [{}], ["non-literal argument 'a': name 'x'"], ""),
    ("expression", "[f(a=1+2)]", ["f"], [{}], ["non-literal argument 'a': BinOp"], ""),
    ("nested-call", "[f(a=g(b=1))]", ["f"], [{}], ["non-literal argument 'a': Call"], ""),
    ("kwargs", "[f(**opts)]", ["f"], [{}], ["**kwargs argument"], ""),
    ("set-literal", "[f(a={1, 2})]", ["f"], [{}], ["non-literal argument 'a': Set"], ""),
    ("one-bad-one-good", "[f(a=x), g(b=1)]", ["f", "g"], [{}, {"b": 1}], ["non-literal", None], ""),
    (
        "non-call-element",
        "[f(a=1), 3]",
        ["f", None],
        [{"a": 1}, {}],
        [None, "list element is not a call"],
        "",
    ),
    ("syntax-error", "[f(a=1, b=]", [None], [{}], ["invalid Python call list"], ""),
    ("plain-text", "The answer is 4.", [], [], [], "The answer is 4."),
    ("prose-then-list", "I will call it.\n[f(a=1)]", ["f"], [{"a": 1}], [None], ""),
    ("llama4-wrapper", "<|python_start|>[f(a='x')]<|python_end|><|eot|>", ["f"], [{"a": "x"}], [None], ""),
]


@pytest.mark.parametrize(
    ("text", "names", "arguments", "errors", "answer"),
    [case[1:] for case in PYTHONIC_CASES],
    ids=[case[0] for case in PYTHONIC_CASES],
)
def test_pythonic(
    text: str, names: list[str | None], arguments: list[dict[str, Any]], errors: list[str | None], answer: str
) -> None:
    parsed = parse_completion(text, parser="pythonic")
    assert parsed.parser == "pythonic"
    assert _names(parsed) == names
    assert [c.arguments for c in parsed.calls] == arguments
    for call, prefix in zip(parsed.calls, errors, strict=True):
        assert (call.error is None) if prefix is None else (call.error or "").startswith(prefix), call.error
    assert parsed.answer_text == answer


def test_pythonic_never_evaluates() -> None:
    parsed = parse_completion("[f(a=__import__('os').system('false'))]", parser="pythonic")
    assert parsed.calls[0].error is not None and "non-literal" in parsed.calls[0].error


# ------------------------------------------------------------------------------------------- auto
@pytest.mark.parametrize(
    ("completion", "parser"),
    [
        (f"<tool_call>{ADD}</tool_call>", "hermes"),
        ("<tool_response>3</tool_response>", "hermes"),
        ("[TOOL_CALLS]add[ARGS]{}", "mistral"),
        ('<|python_tag|>{"name": "add", "parameters": {}}', "llama3"),
        ('  {"name": "add", "parameters": {}}', "llama3"),
        ("<|start_header_id|>assistant<|end_header_id|>\n\nhi", "llama3"),
        ("[add(a=1)]", "pythonic"),
        ("<|python_start|>[add(a=1)]<|python_end|>", "pythonic"),
        ("[1, 2, 3]", "hermes"),
        ("[not a call", "hermes"),
        ("plain answer", "hermes"),
        ("", "hermes"),
        ([{"role": "assistant", "content": "hi"}], "openai"),
    ],
    ids=[
        "tool-call",
        "tool-response",
        "mistral",
        "python-tag",
        "leading-json",
        "llama-headers",
        "pythonic",
        "pythonic-wrapped",
        "list-answer",
        "bracket-text",
        "plain",
        "empty",
        "messages",
    ],
)
def test_auto_picks_the_format(completion: Any, parser: str) -> None:
    auto = parse_completion(completion)
    assert auto.parser == parser
    if isinstance(completion, str):
        assert auto == parse_completion(completion, parser=parser)


def test_text_parsers_read_message_lists_with_their_own_markup() -> None:
    messages = [{"role": "assistant", "content": '<|python_tag|>{"name": "add", "parameters": {"a": 1}}'}]
    parsed = parse_completion(messages, parser="llama3")
    assert parsed.parser == "openai"
    assert _names(parsed) == ["add"]


# --------------------------------------------------------------------------------------- registry
def test_registry_lists_every_format() -> None:
    assert {"auto", "hermes", "openai", "llama3", "mistral", "pythonic"} <= set(list_parsers())
    assert list_parsers() == sorted(list_parsers())


@pytest.mark.parametrize("name", ["nope", "", "HERMES"], ids=["unknown", "empty", "wrong-case"])
def test_unknown_parser_is_a_config_error(name: str) -> None:
    with pytest.raises(ScoringConfigError) as info:
        parse_completion("x", parser=name)
    assert info.value.param == "parser"
    assert "hermes" in str(info.value)  # the message lists the known names


def test_register_a_custom_parser() -> None:
    @register_parser("test-upper")
    def upper(completion: Any, *, eos_token: str | None, finished: bool | None) -> ParsedRollout:
        text = str(completion).upper()
        return ParsedRollout((), (), text, text, finished, "test-upper")

    try:
        assert get_parser("test-upper") is upper
        assert "test-upper" in list_parsers()
        assert parse_completion("abc", parser="test-upper").answer_text == "ABC"
    finally:
        del _registry._PARSERS["test-upper"]


# --------------------------------------------------------------------------------- never raises
FRAGMENTS = [
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<|im_start|>assistant\n",
    "<|im_end|>",
    "<think>",
    "</think>",
    ADD,
    '{"name": ',
    '"arguments": ',
    "[TOOL_CALLS]",
    "[ARGS]",
    "[CALL_ID]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "<|python_tag|>",
    "<|start_header_id|>ipython<|end_header_id|>",
    "<|eot_id|>",
    "[f(a=1)",
    "]",
    "(",
    "{",
    "}",
    ";",
    "\\boxed{",
    "\n",
]
texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=25).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
call_dicts = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=3), st.integers(), st.lists(st.integers(), max_size=2)),
        "type": st.just("function"),
        "function": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {}, optional={"name": json_values | st.text(max_size=6), "arguments": json_values | texts}
            ),
        ),
        "name": json_values,
        "arguments": json_values | texts,
    },
)
messages = st.lists(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "role": st.one_of(
                    st.sampled_from(["assistant", "tool", "user", "system", "ipython"]), json_values
                )
            },
            optional={
                "content": st.one_of(
                    texts,
                    json_values,
                    st.lists(st.one_of(st.fixed_dictionaries({"text": texts}), json_values), max_size=2),
                ),
                "tool_calls": st.one_of(st.lists(call_dicts | json_values, max_size=3), json_values),
                "tool_call_id": st.one_of(st.text(max_size=3), st.lists(st.integers(), max_size=2)),
            },
        ),
    ),
    max_size=6,
)
PARSERS = ["auto", "hermes", "openai", "llama3", "mistral", "pythonic"]


def _check(parsed: ParsedRollout) -> None:
    assert isinstance(parsed, ParsedRollout)
    assert all(isinstance(r, str) for r in parsed.tool_results)
    assert all(isinstance(c.arguments, dict) for c in parsed.calls)
    assert all(c.is_valid or c.error for c in parsed.calls)  # a malformed call always says why
    assert isinstance(parsed.answer_text, str) and isinstance(parsed.full_text, str)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, parser=st.sampled_from(PARSERS), finished=st.sampled_from([None, True, False]))
def test_never_raises_on_text(text: str, parser: str, finished: bool | None) -> None:
    parsed = parse_completion(text, parser=parser, finished=finished)
    _check(parsed)
    if finished is not None:
        assert parsed.finished is finished
    if parsed.parser == "hermes":
        # Every opening tag is one call, closed or not.
        assert len(parsed.calls) == text.count("<tool_call>")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(completion=messages, parser=st.sampled_from(PARSERS))
def test_never_raises_on_message_lists(completion: list[Any], parser: str) -> None:
    _check(parse_completion(completion, parser=parser))


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>" + "[" * 100_000 + "</tool_call>",
        "<|python_tag|>" + "{" * 100_000,
        "[f(a=" + "[" * 10_000 + ")]",
        "<tool_call>" * 5_000,
        "</think><think>" * 5_000,
        '<tool_call>{"name": "add", "arguments": {"a": ' + "9" * 5_000 + "}}</tool_call>",
    ],
    ids=["deep-json", "deep-llama", "deep-python", "many-opens", "many-thinks", "huge-int"],
)
def test_pathological_text_is_recorded_not_raised(text: str) -> None:
    for parser in PARSERS:
        _check(parse_completion(text, parser=parser))


@pytest.mark.parametrize(
    "completion", [None, 7, {"role": "assistant", "content": "hi"}], ids=["none", "int", "dict"]
)
def test_completion_of_another_type_is_recorded(completion: Any) -> None:
    for parser in PARSERS:
        parsed = parse_completion(completion, parser=parser)
        _check(parsed)
        if not isinstance(completion, dict):
            assert parsed.format_errors == ("completion is neither text nor a message list",)
