"""`LocalBackend`: the reward service's operations, computed in this process by the engine.

For notebooks, CI and single-machine training where an HTTP hop buys nothing. It answers with
the same wire models as the clients (so code written against `RewardBackend` runs on either)
and raises the same exceptions: a bad spec, preset or toolset is a `BadRequestError` naming
the field. The engine (`mentor_server.scoring`) is imported only when a `LocalBackend` is
built, so the SDK itself keeps depending on httpx and pydantic alone.

Items and tool calls have the service's hard per-item limit: they run in worker processes
(`local_pool`, the service's own scoring pool), and an item past `item_timeout_s` gets a
`timeout` error while the rest of the batch is scored as usual, whatever the item was doing
(a judge bomb or a backtracking regex cannot be interrupted inside a thread). Validation of
the reward choice stays in this process, so mistakes are reported before any process starts;
the processes start on the first `score` or `execute_tool`. `item_timeout_s=None` scores in
the calling thread instead, with no limit (for a debugger, or toolsets registered only in
this process, which workers do not see).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._base import ItemLike, item_payload
from .exceptions import BadRequestError
from .protocol import (
    ErrorInfo,
    ExecuteToolResponse,
    PresetInfo,
    PresetList,
    ScoreResponse,
    ToolsetInfo,
    ToolsetList,
    ValidateSpecResponse,
)
from .results import batch_stats, item_result

if TYPE_CHECKING:
    from mentor_server.scoring import EngineConfig, ItemScore, ScoringConfigError

    from .local_pool import PoolRunner

_INSTALL_HINT = "pip install 'mentor-reward[server]'"
_ENGINE_CACHE_SIZE = 32
_DEFAULT_ITEM_TIMEOUT_S = 10.0  # the service's default `item_timeout_s`
_DEFAULT_TOOL_TIMEOUT_S = 2.0  # the service's default `tool_timeout_s`


def _require_engine() -> None:
    try:
        import mentor_server.scoring
        import mentor_server.toolsets  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"LocalBackend scores in this process and needs the scoring engine ({exc}); "
            f"install it with: {_INSTALL_HINT}"
        ) from exc


def _bad_request(exc: ScoringConfigError) -> BadRequestError:
    # The service's answer to the same mistake: 400 `invalid_config` naming the field.
    return BadRequestError(400, ErrorInfo(type="invalid_config", message=str(exc), param=exc.param))


class LocalBackend:
    """Scores with the in-process engine; same methods and answers as `RewardClient`.

    Engines (one per spec, toolset and parser) are built once and reused, as the service
    does. `run_id` / `step` are accepted for signature compatibility; nothing is recorded.
    Safe to share between threads; `close()` (or `with`) stops the worker processes.

    Args:
        item_timeout_s: hard limit per scored item, as the service's `item_timeout_s`; an item
            past it is that item's `timeout` error. None scores in the calling thread, unbounded.
        tool_timeout_s: limit of one `execute_tool` call, as the service's `tool_timeout_s`.
        workers: scoring processes (started on first use).
        toolset_files: toolset files the workers load, as the service's `toolsets` setting.

    Raises:
        ImportError: at construction, when the engine is not installed (with the pip command).
    """

    def __init__(
        self,
        *,
        item_timeout_s: float | None = _DEFAULT_ITEM_TIMEOUT_S,
        tool_timeout_s: float = _DEFAULT_TOOL_TIMEOUT_S,
        workers: int = 1,
        toolset_files: Sequence[str | Path] = (),
    ) -> None:
        _require_engine()
        from mentor_server.scoring import EngineCache
        from mentor_server.toolsets import load_toolsets_file, register_toolset

        if item_timeout_s is not None and not item_timeout_s > 0:
            raise ValueError(f"item_timeout_s must be positive or None, not {item_timeout_s!r}")
        if not tool_timeout_s > 0:
            raise ValueError(f"tool_timeout_s must be positive, not {tool_timeout_s!r}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers!r}")
        self.item_timeout_s = item_timeout_s
        self.tool_timeout_s = tool_timeout_s
        self.workers = workers
        self._toolset_files = [str(path) for path in toolset_files]
        # Registered here too, so validation (and discovery) here agree with the workers.
        for path in self._toolset_files:
            for loaded in load_toolsets_file(path):
                register_toolset(loaded, replace=True)
        self._engines = EngineCache(size=_ENGINE_CACHE_SIZE)
        self._runner: PoolRunner | None = None
        self._runner_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalBackend(item_timeout_s={self.item_timeout_s!r}, workers={self.workers})"

    # Same shape as the clients, so `with LocalBackend() as backend:` works interchangeably.
    def close(self) -> None:
        """Stop the worker processes and drop the engines; a later call starts them again."""
        with self._runner_lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()
        self._engines.clear()

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _pool(self) -> PoolRunner | None:
        """The worker processes (started on first use), or None when items run in this thread."""
        if self.item_timeout_s is None:
            return None
        with self._runner_lock:
            if self._runner is None:
                from .local_pool import PoolRunner

                self._runner = PoolRunner(
                    workers=self.workers, item_timeout_s=self.item_timeout_s, toolset_files=self._toolset_files
                )
            return self._runner

    def _check_workers_know(self, runner: PoolRunner, toolset: str | None) -> None:
        if toolset is not None and toolset not in runner.worker_toolsets:
            message = (
                f"toolset {toolset!r} is registered only in this process, and the scoring processes do not "
                "see it: pass its file as LocalBackend(toolset_files=[...]), or use item_timeout_s=None to "
                "score in this thread without a time limit"
            )
            raise BadRequestError(400, ErrorInfo(type="invalid_config", message=message, param="toolset"))

    # ------------------------------------------------------------------ helpers
    def _config(
        self,
        *,
        preset: str | None,
        spec: Mapping[str, Any] | None,
        overrides: Mapping[str, Any] | None,
        toolset: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        parser: str = "auto",
        eos_tokens: Sequence[str] | None = None,
    ) -> EngineConfig:
        # The engine's one validation of a reward choice, as the service runs it.
        from mentor_server.scoring import ScoringConfigError, resolve_engine_config

        try:
            return resolve_engine_config(
                preset=preset,
                spec=spec,
                overrides=overrides,
                toolset=toolset,
                tools=tools,
                parser=parser,
                eos_tokens=eos_tokens,
            )
        except ScoringConfigError as exc:
            raise _bad_request(exc) from exc

    # ------------------------------------------------------------------ API
    def score(
        self,
        items: Sequence[ItemLike],
        *,
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        toolset: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        parser: str = "auto",
        eos_tokens: Sequence[str] | None = None,
        run_id: str | None = None,
        step: int | None = None,
        reasons: bool = True,
    ) -> ScoreResponse:
        """Score a batch in this process; see `RewardClient.score`."""
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise TypeError("items must be a sequence of ScoreItem or dicts")
        config = self._config(
            preset=preset,
            spec=spec,
            overrides=overrides,
            toolset=toolset,
            tools=tools,
            parser=parser,
            eos_tokens=eos_tokens,
        )
        payloads = [item_payload(item) for item in items]
        runner = self._pool()
        scores: list[ItemScore]
        if runner is None:
            scores = self._engines.get(config).score_dicts(payloads)
        else:
            self._check_workers_know(runner, config.toolset)
            scores = runner.score(config, list(enumerate(payloads))) if payloads else []
        results = [item_result(score) for score in scores]
        if not reasons:  # as the service answers `reasons: false`; errors keep their message
            for result in results:
                result.reason = ""
        return ScoreResponse(
            results=results,
            spec_hash=config.spec.hash,
            preset=preset if spec is None else None,
            stats=batch_stats(results),
        )

    def presets(self) -> PresetList:
        from mentor_server.scoring import list_presets

        return PresetList(
            presets=[
                PresetInfo(
                    name=p.name,
                    description=p.description,
                    formula=p.formula,
                    reward_range=p.reward_range,
                    spec=p.spec.to_dict(),
                    spec_hash=p.spec.hash,
                )
                for p in list_presets()
            ]
        )

    def toolsets(self) -> ToolsetList:
        from mentor_server.toolsets import list_toolsets

        return ToolsetList(
            toolsets=[
                ToolsetInfo(
                    name=ts.name,
                    description=ts.description,
                    tools=ts.schemas(),
                    executable=sorted(name for name, tool in ts.tools.items() if tool.executable),
                )
                for ts in list_toolsets()
            ]
        )

    def validate_spec(
        self,
        *,
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ValidateSpecResponse:
        config = self._config(preset=preset, spec=spec, overrides=overrides)
        resolved = config.spec.spec
        return ValidateSpecResponse(
            spec=resolved.to_dict(), spec_hash=config.spec.hash, reward_range=resolved.reward_range
        )

    def execute_tool(
        self, name: str, arguments: Mapping[str, Any] | None = None, *, toolset: str = "calculator"
    ) -> ExecuteToolResponse:
        """Run a registered tool; a failing tool is `ok=False` with `error`, as from the service.

        The tool runs in a worker process under `tool_timeout_s`, killed past it (`ok=False`,
        error `timeout`), unless `item_timeout_s` is None.

        Raises BadRequestError for the caller's mistakes: an unknown toolset, a tool without
        implementation.
        """
        from mentor_server.api.pool import WorkerCrashed
        from mentor_server.scoring import ScoringConfigError
        from mentor_server.toolsets import get_toolset

        try:
            found = get_toolset(toolset)
        except ScoringConfigError as exc:
            raise _bad_request(exc) from exc
        tool = found.tools.get(name)
        if tool is not None and not tool.executable:
            message = f"tool {name!r} has no implementation here"
            raise BadRequestError(400, ErrorInfo(type="not_executable", message=message, param="name"))
        runner = self._pool()
        if runner is not None:
            self._check_workers_know(runner, found.name)
            job = {
                "toolset": found.name,
                "name": name,
                "arguments": dict(arguments or {}),
                "timeout_s": self.tool_timeout_s,
            }
            try:
                answer = runner.execute_tool(job, self.tool_timeout_s)
            except WorkerCrashed:
                return _tool_failure("tool_error", "the process running the tool died")
            if answer is None:
                return _tool_failure("timeout", f"the tool did not finish within {self.tool_timeout_s:g} s")
            return ExecuteToolResponse.model_validate(answer)
        run = found.execute(name, dict(arguments or {}), timeout_s=self.tool_timeout_s)
        error = None
        if not run.ok:
            error = ErrorInfo(type=run.error_type or "tool_error", message=run.error_message or run.content)
        return ExecuteToolResponse(ok=run.ok, result=run.result, content=run.content, error=error)


def _tool_failure(kind: str, message: str) -> ExecuteToolResponse:
    # The service's answer for a tool that did not finish (routes/tools.py).
    content = json.dumps({"error": message})
    return ExecuteToolResponse(ok=False, result=None, content=content, error=ErrorInfo(type=kind, message=message))
