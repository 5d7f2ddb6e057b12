"""POST /v1/tools/execute: registered tools only, arguments validated, time-limited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _service_helpers import assert_error
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("name", "arguments", "result"),
    [("add", {"a": 2, "b": 3}, 5), ("divide", {"a": 7, "b": 2}, 3.5), ("sqrt", {"a": 16}, 4)],
    ids=["add", "divide", "sqrt"],
)
def test_a_registered_tool_runs(
    client: TestClient, name: str, arguments: dict[str, Any], result: Any
) -> None:
    body = client.post("/v1/tools/execute", json={"name": name, "arguments": arguments}).json()
    assert body["ok"] is True
    assert body["result"] == result
    assert body["content"] == str(result)
    assert body["error"] is None


@pytest.mark.parametrize(
    ("request_body", "kind"),
    [
        ({"name": "add", "arguments": {"a": "two", "b": 3}}, "invalid_arguments"),
        ({"name": "add", "arguments": {"a": 1}}, "invalid_arguments"),
        ({"name": "add", "arguments": {"a": 1, "b": 2, "c": 3}}, "invalid_arguments"),
        ({"name": "teleport", "arguments": {}}, "unknown_tool"),
        ({"name": "divide", "arguments": {"a": 1, "b": 0}}, "tool_error"),
        ({"name": "__import__", "arguments": {"name": "os"}}, "unknown_tool"),
    ],
    ids=["wrong-type", "missing", "extra", "unknown-tool", "tool-raises", "no-python-names"],
)
def test_what_a_model_got_wrong_is_an_ok_false_answer(
    client: TestClient, request_body: dict[str, Any], kind: str
) -> None:
    response = client.post("/v1/tools/execute", json=request_body)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["error"]["type"] == kind
    assert body["content"]  # the text the rollout loop shows the model


def test_an_unknown_toolset_is_a_400(client: TestClient) -> None:
    response = client.post("/v1/tools/execute", json={"toolset": "nope", "name": "add", "arguments": {}})
    assert_error(response, 400, "invalid_config", "toolset")


@pytest.fixture
def slow_toolset_file(tmp_path: Path) -> Path:
    path = tmp_path / "tools.json"
    path.write_text(
        json.dumps(
            {
                "toolsets": [
                    {
                        "name": "slowpoke",
                        "tools": [
                            {
                                "type": "function",
                                "function": {
                                    "name": "slow_tool",
                                    "description": "sleeps",
                                    "parameters": {
                                        "type": "object",
                                        "properties": {"seconds": {"type": "number"}},
                                        "required": ["seconds"],
                                    },
                                },
                            },
                            {
                                "type": "function",
                                "function": {
                                    "name": "schema_only",
                                    "description": "no implementation",
                                    "parameters": {"type": "object", "properties": {}},
                                },
                            },
                        ],
                        "implementations": {"slow_tool": "_service_helpers:slow_tool"},
                    }
                ]
            }
        )
    )
    return path


def test_operator_toolsets_run_and_are_time_limited(make_client: Any, slow_toolset_file: Path) -> None:
    service = make_client(toolsets=[slow_toolset_file], tool_timeout_s=0.5)
    quick = service.post(
        "/v1/tools/execute", json={"toolset": "slowpoke", "name": "slow_tool", "arguments": {"seconds": 0.01}}
    ).json()
    assert quick["ok"] is True and quick["result"] == 0.01
    slow = service.post(
        "/v1/tools/execute", json={"toolset": "slowpoke", "name": "slow_tool", "arguments": {"seconds": 3}}
    ).json()
    assert slow["ok"] is False and slow["error"]["type"] == "timeout"
    not_executable = service.post("/v1/tools/execute", json={"toolset": "slowpoke", "name": "schema_only"})
    assert_error(not_executable, 400, "not_executable", "name")
