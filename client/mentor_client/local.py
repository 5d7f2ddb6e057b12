"""`LocalBackend`: the reward service's operations, computed in this process by the engine.

For notebooks, CI and single-machine training where an HTTP hop buys nothing. It answers with
the same wire models as the clients (so code written against `RewardBackend` runs on either)
and raises the same exceptions: a bad spec, preset or toolset is a `BadRequestError` naming
the field. The engine (`mentor_server.scoring`) is imported only when a `LocalBackend` is
built, so the SDK itself keeps depending on httpx and pydantic alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    from mentor_server.scoring import EngineConfig, ScoringConfigError

_INSTALL_HINT = "pip install 'mentor-reward[server]'"
_ENGINE_CACHE_SIZE = 32


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
    Safe to share between threads.

    Raises:
        ImportError: at construction, when the engine is not installed (with the pip command).
    """

    def __init__(self) -> None:
        _require_engine()
        from mentor_server.scoring import EngineCache

        self._engines = EngineCache(size=_ENGINE_CACHE_SIZE)

    def __repr__(self) -> str:
        return "LocalBackend()"

    # Same shape as the clients, so `with LocalBackend() as backend:` works interchangeably.
    def close(self) -> None:
        self._engines.clear()

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        engine = self._engines.get(config)
        results = [item_result(score) for score in engine.score_dicts([item_payload(item) for item in items])]
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

        Raises BadRequestError for the caller's mistakes: an unknown toolset, a tool without
        implementation.
        """
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
        run = found.execute(name, dict(arguments or {}))
        error = None
        if not run.ok:
            error = ErrorInfo(type=run.error_type or "tool_error", message=run.error_message or run.content)
        return ExecuteToolResponse(ok=run.ok, result=run.result, content=run.content, error=error)
