"""Helpers for the service tests, importable by spawned scoring processes too.

`slow_or_crashing_score_chunk` wraps the real worker function: an item whose completion
contains `SLEEP:<seconds>` sleeps first, and `CRASH` kills the process, so the pool's deadline
and crash recovery can be tested with real processes.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from mentor_server.api import worker


def wire_item(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "completion": case["completion"],
        "ground_truth": case["ground_truth"],
        "teacher_tools": case["teacher_tools"],
    }


def slow_or_crashing_score_chunk(job: dict[str, Any]) -> list[Any]:
    for _index, item in job["items"]:
        completion = item.get("completion") if isinstance(item, dict) else None
        if not isinstance(completion, str):
            continue
        if "CRASH" in completion:
            os._exit(13)
        match = re.search(r"SLEEP:([0-9.]+)", completion)
        if match:
            time.sleep(float(match.group(1)))
    return worker.score_chunk(job)


def raising_score_chunk(job: dict[str, Any]) -> list[Any]:
    raise ValueError("a deliberate bug")


def slow_tool(seconds: float) -> float:
    """Sleep, then return the time slept.

    Args:
        seconds: how long to sleep.
    """
    time.sleep(seconds)
    return seconds


def assert_error(response: Any, status: int, type_: str | None = None, param: str | None = None) -> dict[str, Any]:
    """The response has `status` and the service's one error body (and the given type/param)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "message", "param"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if type_ is not None:
        assert body["error"]["type"] == type_, body
    if param is not None:
        assert body["error"]["param"] == param, body
    error: dict[str, Any] = body["error"]
    return error
