"""TRL tool callables built from tool schemas: the schema survives the round trip, calls execute."""

from __future__ import annotations

import inspect
import json
import pickle
from typing import Any

import pytest

from mentor_server.toolsets import get_toolset
from mentor_trainer.tools import (
    ToolRunner,
    build_tools,
    make_async_tool,
    make_tool,
    prompt_schemas,
    trl_schema,
)

TOOLSETS = ("calculator", "units", "dates")


def _schemas(toolset: str) -> list[dict[str, Any]]:
    return list(get_toolset(toolset).schemas())


def _json_type(schema: dict[str, Any]) -> Any:
    return schema.get("type")


@pytest.mark.parametrize("toolset", TOOLSETS)
def test_schema_round_trips_through_transformers(toolset: str) -> None:
    """What TRL renders for the callable names the same tool, parameters, types, enums and required set."""
    runner = ToolRunner(local=True)
    for schema in _schemas(toolset):
        original = schema["function"]
        rendered = trl_schema(make_tool(schema, runner, toolset))["function"]
        assert rendered["name"] == original["name"]
        assert rendered["description"] == original["description"]
        props, params = rendered["parameters"]["properties"], original["parameters"]["properties"]
        assert list(props) == list(params)
        for name, spec in params.items():
            assert props[name]["type"] == _json_type(spec), (original["name"], name)
            assert props[name]["description"] == " ".join(spec["description"].split())
            if "enum" in spec:
                assert props[name]["enum"] == spec["enum"]
            if spec.get("type") == "array":
                assert props[name]["items"]["type"] == spec["items"]["type"]
        assert sorted(rendered["parameters"].get("required", [])) == sorted(original["parameters"]["required"])
        assert "return" not in rendered


@pytest.mark.parametrize(
    ("toolset", "name", "arguments", "expected"),
    [
        ("calculator", "add", {"a": 2, "b": 3}, "5"),
        ("calculator", "divide", {"a": 7, "b": 2}, "3.5"),
        ("calculator", "sum_numbers", {"numbers": [1, 2, 3.5]}, "6.5"),
        ("calculator", "round_number", {"a": 2.675, "ndigits": 2}, "2.68"),
        ("units", "convert_length", {"value": 1, "from_unit": "foot", "to_unit": "inch"}, "12"),
        ("dates", "weekday_of", {"date": "2024-01-01"}, "Monday"),
    ],
    ids=["add", "divide", "sum-list", "round-optional-arg", "units", "dates"],
)
def test_local_tools_execute_with_the_toolset(
    toolset: str, name: str, arguments: dict[str, Any], expected: str
) -> None:
    tools = {t.__name__: t for t in build_tools(ToolRunner(local=True), toolset)}
    assert set(tools) == set(get_toolset(toolset).names)
    assert tools[name](**arguments) == expected


@pytest.mark.parametrize(
    ("name", "arguments", "error_word"),
    [
        ("divide", {"a": 1, "b": 0}, "zero"),
        ("add", {"a": "two", "b": 1}, "number"),
        ("sqrt", {"a": -4}, ""),
    ],
    ids=["division-by-zero", "bad-type", "domain-error"],
)
def test_tool_errors_reach_the_model_as_error_content(name: str, arguments: dict[str, Any], error_word: str) -> None:
    tools = {t.__name__: t for t in build_tools(ToolRunner(local=True), "calculator")}
    content = tools[name](**arguments)
    payload = json.loads(content)
    assert set(payload) == {"error"} and error_word in payload["error"].lower()


def test_async_tools_for_the_service_are_coroutine_functions() -> None:
    schema = _schemas("calculator")[0]
    tool = make_async_tool(schema, ToolRunner("http://127.0.0.1:9"), "calculator")
    assert inspect.iscoroutinefunction(tool)
    assert trl_schema(tool) == trl_schema(make_tool(schema, ToolRunner(local=True), "calculator"))


def test_runner_pickles_without_live_clients() -> None:
    runner = ToolRunner(local=True)
    assert runner.run("calculator", "add", {"a": 1, "b": 1}) == "2"
    clone = pickle.loads(pickle.dumps(runner))
    assert clone.local and clone._backend is None
    assert clone.run("calculator", "multiply", {"a": 3, "b": 4}) == "12"


def test_prompt_schemas_are_what_trl_renders() -> None:
    tools = build_tools(ToolRunner(local=True), "units")
    assert prompt_schemas(_schemas("units")) == [trl_schema(t) for t in tools]


def test_unknown_toolset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no toolset named 'nope'"):
        ToolRunner(local=True).schemas("nope")
