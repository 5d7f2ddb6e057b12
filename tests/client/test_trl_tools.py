"""`trl_tools` and `prompt_schemas`, the one implementation of TRL rollout tools (the trainer
uses it too): the registered toolsets' schemas survive the round trip through transformers,
local tools execute, errors reach the model as content, and an executor of the caller's own
(the trainer's timed one) runs the calls."""

from __future__ import annotations

import asyncio
import inspect
import json
import pickle
from collections.abc import Iterator
from typing import Any

import pytest

from mentor_client.adapters.trl_tools import ToolExecutor, prompt_schemas, tool_schemas, trl_tools
from mentor_server.toolsets import get_toolset

TOOLSETS = ("calculator", "units", "dates")


@pytest.fixture(scope="module")
def local() -> Iterator[ToolExecutor]:
    """One in-process executor for the module (its tool processes start once)."""
    executor = ToolExecutor(local=True)
    yield executor
    executor.close()


def _schemas(toolset: str) -> list[dict[str, Any]]:
    return list(get_toolset(toolset).schemas())


@pytest.mark.parametrize("toolset", TOOLSETS)
def test_schema_round_trips_through_transformers(toolset: str, local: ToolExecutor) -> None:
    """What TRL renders for each callable names the same tool, parameters, types, enums and required set."""
    tools = trl_tools(toolset, executor=local)
    rendered_by_name = {r["function"]["name"]: r["function"] for r in tool_schemas(tools)}
    assert set(rendered_by_name) == set(get_toolset(toolset).names)
    for schema in _schemas(toolset):
        original = schema["function"]
        rendered = rendered_by_name[original["name"]]
        assert rendered["description"] == original["description"]
        props, params = rendered["parameters"]["properties"], original["parameters"]["properties"]
        assert list(props) == list(params)
        for name, spec in params.items():
            assert props[name]["type"] == spec.get("type"), (original["name"], name)
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
    toolset: str, name: str, arguments: dict[str, Any], expected: str, local: ToolExecutor
) -> None:
    tools = {t.__name__: t for t in trl_tools(toolset, executor=local)}
    assert not inspect.iscoroutinefunction(tools[name])
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
def test_tool_errors_reach_the_model_as_error_content(
    name: str, arguments: dict[str, Any], error_word: str, local: ToolExecutor
) -> None:
    tools = {t.__name__: t for t in trl_tools("calculator", executor=local)}
    payload = json.loads(tools[name](**arguments))
    assert set(payload) == {"error"} and error_word in payload["error"].lower()


class _Recording(ToolExecutor):
    """An executor of the caller's own, as the trainer's timed one: it sees every async call."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9")
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def arun(self, toolset: str, name: str, arguments: dict[str, Any]) -> str:
        self.calls.append((toolset, name, arguments))
        return "ran"

    def schemas(self, toolset: str) -> list[dict[str, Any]]:
        return _schemas(toolset)


def test_a_given_executor_runs_the_calls_and_remote_tools_are_async(local: ToolExecutor) -> None:
    executor = _Recording()
    tools = {t.__name__: t for t in trl_tools("calculator", executor=executor)}
    assert all(inspect.iscoroutinefunction(t) for t in tools.values())
    assert tool_schemas([tools["add"]]) == tool_schemas(trl_tools("calculator", executor=local)[:1])
    assert asyncio.run(tools["add"](a=1, b=2)) == "ran"
    assert executor.calls == [("calculator", "add", {"a": 1, "b": 2})]
    with pytest.raises(ValueError, match="either an executor or"):
        trl_tools("calculator", "http://svc", executor=executor)


def test_local_executor_runs_async_calls_in_process_and_pickles_without_live_clients() -> None:
    executor = ToolExecutor(local=True)
    assert executor.run("calculator", "add", {"a": 1, "b": 1}) == "2"
    assert asyncio.run(executor.arun("calculator", "multiply", {"a": 3, "b": 4})) == "12"
    clone = pickle.loads(pickle.dumps(executor))
    assert clone.local and clone._backend is None
    assert clone.run("calculator", "multiply", {"a": 3, "b": 4}) == "12"
    executor.close()
    clone.close()


def test_prompt_schemas_are_what_trl_renders(local: ToolExecutor) -> None:
    assert prompt_schemas(_schemas("units")) == tool_schemas(trl_tools("units", executor=local))


def test_unknown_toolset_is_a_clear_error(local: ToolExecutor) -> None:
    with pytest.raises(ValueError, match="no toolset named 'nope'"):
        local.schemas("nope")
