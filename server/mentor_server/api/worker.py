"""Functions that run inside the scoring processes.

The API process validates a request's reward choice into an `EngineConfig` (the engine's own,
picklable, already checked) and ships a *job* to a worker:

    {"config": EngineConfig, "items": [(index in the request, raw item), ...]}

and gets back one `ItemScore` per item, in order. The raw items are read here, by the engine,
one at a time, so a malformed item is that item's error (named `items[index]`), and that work,
proportional to the request's size, never runs on the service's event loop.

Each process keeps its `ScoringEngine`s (keyed by `EngineConfig.key`) so the caches they hold
(parsed gold answers, compiled schemas, tool executions) survive across requests.
Nothing here may raise for an item: anything unexpected becomes that item's error.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import time
from typing import Any

from ..scoring import EngineCache, ItemError, ItemScore
from ..toolsets import get_toolset, list_toolsets, load_toolsets_file, register_toolset

_engines = EngineCache(size=64)


def init_worker(toolset_files: list[str], nice: int = 5) -> None:
    """Pool initializer: register the service's extra toolsets and step back in priority.

    Workers run at a lower priority than the API process so that, under full load, the event
    loop (and so `/healthz`) still gets the CPU as soon as it needs it. SIGINT is ignored: a
    Ctrl-C reaches the whole process group, and only the parent should decide how to stop.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    for path in toolset_files:
        for toolset in load_toolsets_file(path):
            register_toolset(toolset, replace=True)
    gc.freeze()  # the engine's modules stay for the process's life: no full collections over them


def warm_up(delay_ms: int = 0) -> int:
    """A no-op task: running it proves the process started and imported the engine.

    The short sleep keeps one process from answering every warm-up task while its siblings
    are still starting.
    """
    time.sleep(delay_ms / 1000)
    return os.getpid()


def toolset_names(job: dict[str, Any]) -> list[str]:
    """The toolsets this worker knows (built-in and from the toolset files), for a caller that
    registered others in its own process (`LocalBackend` checks before it relies on one)."""
    return [toolset.name for toolset in list_toolsets()]


def error_result(type: str, message: str, param: str | None = None) -> ItemScore:
    """An item that could not be scored (the pool uses it for timeouts and crashed workers)."""
    return ItemScore(None, {}, message, ItemError(type, message, param))


def score_chunk(job: dict[str, Any]) -> list[ItemScore]:
    """Score one chunk of items; always returns one result per item."""
    items: list[tuple[int, Any]] = job["items"]
    try:
        engine = _engines.get(job["config"])
    except Exception as exc:  # validated in the API process already; a failure here is a bug
        message = f"cannot build the scoring engine: {type(exc).__name__}: {exc}"
        return [error_result("internal_error", message, f"items[{index}]") for index, _ in items]
    out: list[ItemScore] = []
    for index, raw in items:
        try:
            out.append(engine.score_raw_item(raw, index))
        except Exception as exc:  # score_raw_item guards the item; this is belt and braces
            out.append(error_result("internal_error", f"{type(exc).__name__}: {exc}", f"items[{index}]"))
    return out


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def execute_tool(job: dict[str, Any]) -> dict[str, Any]:
    """Run one registered tool: `{"toolset", "name", "arguments", "timeout_s"}` -> an ExecuteToolResponse."""
    try:
        toolset = get_toolset(job["toolset"])
        execution = toolset.execute(job["name"], job["arguments"], timeout_s=job["timeout_s"])
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        return {
            "ok": False,
            "result": None,
            "content": json.dumps({"error": message}),
            "error": {"type": "tool_error", "message": message, "param": None},
        }
    error = None
    if not execution.ok:
        error = {
            "type": execution.error_type or "tool_error",
            "message": execution.error_message or "",
            "param": None,
        }
    result = execution.result if _json_safe(execution.result) else None
    return {"ok": execution.ok, "result": result, "content": execution.content, "error": error}
