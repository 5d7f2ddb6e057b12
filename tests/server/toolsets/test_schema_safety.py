"""Hostile tool schemas and odd strings: schema regexes cannot backtrack, bad schemas are named config errors.

A request may carry its own tool schemas, so a schema is untrusted input: its regexes are
matched by RE2 (a pattern that backtracks catastrophically under `re` is linear here), a
pattern RE2 cannot compile is a ScoringConfigError naming the field, and oversized or
unusable schemas are refused the same way. Strings a model can produce (lone UTF-16
surrogates, NULs, huge integers, NaN) in tool names, argument keys and values are validated
and executed without an exception, and every text the toolset returns can be encoded as UTF-8.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from mentor_server.scoring.types import ScoringConfigError
from mentor_server.toolsets import Tool, Toolset, get_toolset, toolset_from_schemas
from mentor_server.toolsets._schemas import MAX_SCHEMA_CHARS, MAX_SCHEMA_DEPTH, pattern_search

SURROGATE = "\ud800"


def _tools(parameters: dict[str, Any], name: str = "probe", description: str = "") -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}]


def _string_schema(**rule: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"s": {"type": "string", **rule}}}


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param(_string_schema(pattern="^(a+)+$"), id="pattern"),
        pytest.param(_string_schema(pattern="^(a+)+$", minLength=1, description="x"), id="pattern-slow-path"),
        pytest.param(
            {"$schema": "http://json-schema.org/draft-07/schema#", **_string_schema(pattern="^(a|aa)+$")}, id="draft-7"
        ),
        pytest.param(
            {
                "type": "object",
                "properties": {"s": {"type": "array", "items": {"type": "string", "pattern": "^(a+)+$"}}},
            },
            id="nested",
        ),
    ],
)
def test_a_catastrophic_pattern_is_matched_in_linear_time(parameters: dict[str, Any]) -> None:
    toolset = toolset_from_schemas(_tools(parameters))
    hostile = "a" * 40 + "!"  # Python's `re` needs ~2^40 steps for this
    value: Any = [hostile] if parameters["properties"]["s"]["type"] == "array" else hostile
    start = time.process_time()
    errors = toolset.validate_arguments("probe", {"s": value})
    assert time.process_time() - start < 1.0
    assert len(errors) == 1 and "does not match" in errors[0]
    assert toolset.validate_arguments("probe", {"s": ["aaaa"] if isinstance(value, list) else "aaaa"}) == []


def test_pattern_properties_and_closed_objects_use_the_same_engine() -> None:
    parameters = {
        "type": "object",
        "patternProperties": {"^(x+)+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    toolset = toolset_from_schemas(_tools(parameters))
    hostile_key = "x" * 40 + "!"
    start = time.process_time()
    errors = toolset.validate_arguments("probe", {hostile_key: 1, "xxx": "not an int"})
    assert time.process_time() - start < 1.0
    assert errors == [
        "arguments.xxx: 'not an int' is not of type 'integer'",
        f"arguments.{hostile_key}: unexpected argument (not in the tool's schema)",
    ]


@pytest.mark.parametrize(
    ("parameters", "param"),
    [
        pytest.param(
            _string_schema(pattern="(a)\\1"), "tools[0].function.parameters.properties.s.pattern", id="backreference"
        ),
        pytest.param(
            _string_schema(pattern="(?=a)b"), "tools[0].function.parameters.properties.s.pattern", id="lookahead"
        ),
        pytest.param(
            {"type": "object", "patternProperties": {"(?<=a)b": {}}},
            "tools[0].function.parameters.patternProperties.(?<=a)b",
            id="pattern-properties-key",
        ),
        pytest.param(
            {"type": "object", "properties": {"s": {"anyOf": [{"type": "string", "pattern": "a{2000}"}]}}},
            "tools[0].function.parameters.properties.s.anyOf[0].pattern",
            id="repetition-too-large",
        ),
    ],
)
def test_a_pattern_re2_cannot_compile_is_a_config_error_naming_it(parameters: dict[str, Any], param: str) -> None:
    with pytest.raises(ScoringConfigError, match="is not a supported regular expression") as caught:
        toolset_from_schemas(_tools(parameters))
    assert caught.value.param == param


def test_a_pattern_key_inside_data_is_not_a_regex() -> None:
    # "pattern" as a property name, or inside an enum value, is not a regex to compile.
    parameters = {
        "type": "object",
        "properties": {"pattern": {"type": "string", "enum": [{"pattern": "(?=x)"}, "a"]}},
    }
    toolset = toolset_from_schemas(_tools(parameters))
    assert toolset.validate_arguments("probe", {"pattern": "a"}) == []


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        pytest.param(
            {"type": "object", "description": "x" * MAX_SCHEMA_CHARS}, "characters as JSON; at most", id="too-long"
        ),
        pytest.param({"type": "object", "$ref": "#"}, "refers to itself without end", id="endless-ref"),
        pytest.param({"$ref": "https://example.com/schema.json"}, "cannot be resolved", id="remote-ref"),
        pytest.param(
            {"type": "object", "patternProperties": {"^a": {}}, "unevaluatedProperties": False},
            "unevaluatedProperties cannot be combined with patternProperties",
            id="unevaluated-with-patterns",
        ),
        pytest.param({"type": "object", "description": SURROGATE}, "lone UTF-16 surrogate", id="surrogate-in-schema"),
    ],
)
def test_unusable_schemas_are_config_errors(parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(ScoringConfigError, match=message) as caught:
        toolset_from_schemas(_tools(parameters))
    assert caught.value.param == "tools[0].function.parameters"


@pytest.mark.parametrize(
    ("field", "tools"),
    [
        pytest.param("tools[0].function.name", _tools({"type": "object"}, name=SURROGATE), id="name"),
        pytest.param(
            "tools[0].function.description", _tools({"type": "object"}, description=SURROGATE), id="description"
        ),
    ],
)
def test_surrogates_in_names_and_descriptions_are_config_errors(field: str, tools: list[dict[str, Any]]) -> None:
    with pytest.raises(ScoringConfigError) as caught:
        toolset_from_schemas(tools)
    assert caught.value.param == field


ODD_ARGUMENTS = [
    pytest.param({SURROGATE: 1, "a": 1, "b": 2}, id="surrogate-key"),
    pytest.param({"a": SURROGATE, "b": 2}, id="surrogate-value"),
    pytest.param({"a\x00": 1, "b": "\x00"}, id="nul"),
    pytest.param({"a": 10**5000, "b": 1}, id="huge-int"),
    pytest.param({"a": math.nan, "b": math.inf}, id="nan-inf"),
    pytest.param({"a": [SURROGATE], "b": {SURROGATE: SURROGATE}}, id="nested"),
]


@pytest.mark.parametrize("arguments", ODD_ARGUMENTS)
@pytest.mark.parametrize("tool", ["add", "round_number", SURROGATE])
def test_odd_arguments_are_validated_and_executed_without_an_exception(arguments: dict[str, Any], tool: str) -> None:
    calculator = get_toolset("calculator")
    for message in calculator.validate_arguments(tool, arguments):
        assert _encodable(message)
    run = calculator.execute(tool, arguments)
    assert _encodable(run.content)
    assert run.error_message is None or _encodable(run.error_message)
    assert run.ok or run.error_type in ("unknown_tool", "invalid_arguments", "tool_error")


@pytest.mark.parametrize("value", [SURROGATE, "2024-01-0" + SURROGATE, "\x00", "1" * 5000])
def test_odd_strings_meet_a_pattern_without_an_exception(value: str) -> None:
    errors = get_toolset("dates").validate_arguments("weekday_of", {"date": value})
    assert len(errors) == 1 and errors[0].startswith("arguments.date: ") and _encodable(errors[0])


def test_inline_patterns_see_a_surrogate_in_its_escaped_form() -> None:
    toolset = toolset_from_schemas(
        _tools(
            {"type": "object", "patternProperties": {"^k": {"pattern": "^\\\\ud800$"}}, "additionalProperties": False}
        )
    )
    assert toolset.validate_arguments("probe", {"k": SURROGATE}) == []
    assert pattern_search("^x", SURROGATE) is False


def test_a_result_holding_a_surrogate_is_sent_escaped() -> None:
    def echo(text: str) -> str:
        return text

    toolset = Toolset(
        "echo", [Tool("echo", "Echo.", {"type": "object", "properties": {"text": {"type": "string"}}}, echo)]
    )
    run = toolset.execute("echo", {"text": "a" + SURROGATE})
    assert run.ok and run.content == "a\\ud800" and run.result == "a" + SURROGATE


def test_arguments_too_deep_for_a_recursive_schema_are_reported() -> None:
    tree = {
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/node"}},
        "$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}},
    }
    toolset = toolset_from_schemas(_tools(tree))
    deep: dict[str, Any] = {}
    for _ in range(5000):
        deep = {"child": deep}
    assert toolset.validate_arguments("probe", {"node": {"child": {}}}) == []
    assert toolset.validate_arguments("probe", {"node": deep}) == [
        "arguments: nest too deeply to check against the tool's schema"
    ]


@pytest.mark.parametrize("bfcl_types", [False, True])
def test_a_schema_nested_past_the_recursion_limit_is_a_config_error(bfcl_types: bool) -> None:
    deep: dict[str, Any] = {"type": "object"}
    for _ in range(5000):
        deep = {"type": "object", "properties": {"x": deep}}
    with pytest.raises(ScoringConfigError) as caught:
        toolset_from_schemas(_tools(deep), bfcl_types=bfcl_types)
    assert caught.value.param == "tools[0].function.parameters"


@pytest.mark.parametrize("levels", [31, 40, 100])
def test_schema_depth_is_bounded(levels: int) -> None:
    deep: dict[str, Any] = {"type": "object"}
    for _ in range(levels):  # two JSON levels each
        deep = {"type": "object", "properties": {"x": deep}}
    if 2 * levels + 1 <= MAX_SCHEMA_DEPTH:
        toolset = toolset_from_schemas(_tools(deep))
        assert toolset.validate_arguments("probe", {}) == []
        return
    with pytest.raises(ScoringConfigError, match="levels deep") as caught:
        toolset_from_schemas(_tools(deep))
    assert caught.value.param == "tools[0].function.parameters"
