"""Functions that run inside the scoring processes: plain dicts in, plain dicts out.

The API process resolves and validates every request, then ships a *job* to a worker:

    {"config": {"spec": <canonical spec dict>, "spec_hash": str, "toolset": str | None,
                "tools": [<OpenAI tool schema>] | None, "parser": str},
     "items": [<protocol.ScoreItem as a dict>, ...]}

and gets back one result dict per item, in order:

    {"reward": float | None, "components": {name: float | None}, "reason": str,
     "error": {"type", "message", "param"} | None, "n_calls": int, "n_invalid_tools": int}

Each process keeps its `ScoringEngine`s (keyed by spec hash, toolset and parser) so the caches
they hold (parsed gold answers, compiled schemas, tool executions) survive across requests.
Nothing here may raise for an item: anything unexpected becomes that item's error.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import signal
import time
from typing import Any

from ..scoring import EngineCache, ItemScore, ScoringEngine
from ..toolsets import get_toolset, load_toolsets_file, register_toolset

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


def engine_for(config: dict[str, Any]) -> ScoringEngine:
    return _engines.get(
        config["spec"],
        spec_hash=config["spec_hash"],
        toolset=config.get("toolset"),
        tools=config.get("tools"),
        parser=config.get("parser"),
    )


def error_result(type: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {
        "reward": None,
        "components": {},
        "reason": message,
        "error": {"type": type, "message": message, "param": param},
        "n_calls": 0,
        "n_invalid_tools": 0,
    }


def result_dict(score: ItemScore) -> dict[str, Any]:
    if score.error is not None:
        error = score.error
        return {
            **error_result(error.type, error.message, error.param),
            "reason": score.reason or error.message,
        }
    if score.reward is None or not math.isfinite(score.reward):
        # A spec with extreme weights can overflow; say so rather than send a null or inf reward.
        return error_result("non_finite_reward", f"the reward is not a finite number ({score.reward!r})")
    components = {k: (v if v is None or math.isfinite(v) else None) for k, v in score.components.items()}
    return {
        "reward": float(score.reward),
        "components": components,
        "reason": score.reason,
        "error": None,
        "n_calls": score.n_calls,
        "n_invalid_tools": score.n_invalid_tools,
    }


def score_chunk(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Score one chunk of items; always returns one result per item."""
    items: list[dict[str, Any]] = job["items"]
    try:
        engine = engine_for(job["config"])
    except Exception as exc:  # validated in the API process already; a failure here is a bug
        message = f"cannot build the scoring engine: {type(exc).__name__}: {exc}"
        return [error_result("internal_error", message) for _ in items]
    try:
        return [result_dict(score) for score in engine.score_dicts(items)]
    except Exception:
        # The engine guards each item; if the batch call itself fails, isolate the culprit.
        out = []
        for item in items:
            try:
                out.append(result_dict(engine.score_dicts([item])[0]))
            except Exception as exc:
                out.append(error_result("internal_error", f"{type(exc).__name__}: {exc}"))
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
