"""Per-app service state, its FastAPI dependencies, and the serving logic shared by the routes.

`ServiceState` holds what one app owns (settings, metrics, the scoring pool, the record store);
it lives on `app.state.service`, is filled by the lifespan, and reaches routes through the
`Annotated` dependencies below. There is no module-level singleton: two apps in one process
(as in the tests) never share anything but the engine's registries of presets and toolsets.

`resolve_config` validates a request's reward choice in this process (unknown preset, toolset
or parser, malformed spec: a 400 naming the field) and reduces it to the plain dict a worker
needs; `score_items` runs the pool, aggregates, updates metrics and appends records.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from ..records import RecordStore
from ..scoring import (
    ItemError,
    ItemScore,
    RewardSpec,
    ScoringEngine,
    batch_stats,
    resolve_spec,
    resolve_toolset,
    tools_key,
)
from ..scoring.parsing import get_parser
from .errors import ApiError
from .metrics import ServiceMetrics
from .pool import ScoringPool
from .settings import ServiceSettings

_CONFIG_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class ResolvedConfig:
    """A validated reward choice: the spec, a label for metrics/records, and the worker's config dict."""

    spec: RewardSpec
    preset: str | None
    worker_config: dict[str, Any]

    @property
    def label(self) -> str:
        return self.preset or "inline"


@dataclass
class ServiceState:
    settings: ServiceSettings
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    pool: ScoringPool | None = None
    store: RecordStore | None = None
    _configs: OrderedDict[str, ResolvedConfig] = field(default_factory=OrderedDict)

    # ------------------------------------------------------------------ validation
    def resolve_config(
        self,
        *,
        preset: str | None,
        spec: dict[str, Any] | None,
        overrides: dict[str, Any] | None,
        toolset: str | None,
        tools: list[dict[str, Any]] | None,
        parser: str,
    ) -> ResolvedConfig:
        """Validate a reward choice (cached: GRPO sends the same one every step)."""
        key = hashlib.sha256(
            json.dumps([preset, spec, overrides, toolset, tools, parser], sort_keys=True, default=str).encode()
        ).hexdigest()
        cached = self._configs.get(key)
        if cached is not None:
            self._configs.move_to_end(key)
            return cached
        resolved_spec = resolve_spec(preset=preset, spec=spec, overrides=overrides)
        toolset_obj = resolve_toolset(toolset, tools)
        # Building an engine here compiles every component option, so a bad one is a 400 now and
        # never a worker-side surprise.
        engine = ScoringEngine(resolved_spec, toolset_obj, parser)
        get_parser(engine.parser)  # an unknown name is a 400 naming `parser`
        resolved = ResolvedConfig(
            spec=resolved_spec,
            preset=preset if preset is not None else (resolved_spec.name if spec is None else None),
            worker_config={
                "spec": resolved_spec.to_dict(),
                "spec_hash": resolved_spec.hash,
                "toolset": None if tools else toolset,
                "tools": tools or None,
                "tools_key": tools_key(tools),
                "parser": parser,
            },
        )
        self._configs[key] = resolved
        if len(self._configs) > _CONFIG_CACHE_SIZE:
            self._configs.popitem(last=False)
        return resolved

    # ------------------------------------------------------------------ scoring
    async def score_items(
        self, config: ResolvedConfig, items: list[dict[str, Any]], *, run_id: str | None, step: int | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Score, aggregate, account and record one batch. Returns (result dicts, stats dict)."""
        pool = self.require_pool()
        self.metrics.batches_in_flight.inc()
        try:
            results = await pool.score(config.worker_config, items) if items else []
        finally:
            self.metrics.batches_in_flight.dec()
        stats = batch_stats([_to_item_score(r) for r in results])
        self.metrics.record_batch(config.label, results, stats)
        if self.store is not None and results:
            now = time.time()
            spec_hash = config.spec.hash
            self.store.append(
                [
                    {
                        "run_id": run_id,
                        "step": step,
                        "spec_hash": spec_hash,
                        "preset": config.preset,
                        "item": item,
                        "reward": result["reward"],
                        "components": result["components"],
                        "reason": result["reason"],
                        "error": result["error"],
                        "created_at": now,
                    }
                    for item, result in zip(items, results, strict=True)
                ]
            )
        return results, stats

    def require_pool(self) -> ScoringPool:
        if self.pool is None:
            raise ApiError(503, "the scoring workers are not running", type="not_ready")
        return self.pool


def _to_item_score(result: dict[str, Any]) -> ItemScore:
    error = result.get("error")
    return ItemScore(
        result.get("reward"),
        result.get("components") or {},
        result.get("reason", ""),
        None if error is None else ItemError(error["type"], error["message"], error.get("param")),
        result.get("n_calls", 0),
        result.get("n_invalid_tools", 0),
    )


def public_result(result: dict[str, Any]) -> dict[str, Any]:
    """A worker result as `protocol.ItemResult` (the call counts let a client that sent a batch in
    chunks recompute the batch's rates exactly; an item with an error has none)."""
    scored = result["error"] is None
    return {
        "reward": result["reward"],
        "components": result["components"],
        "reason": result["reason"],
        "error": result["error"],
        "n_tool_calls": result.get("n_calls", 0) if scored else None,
        "n_invalid_tools": result.get("n_invalid_tools", 0) if scored else None,
    }


# ---------------------------------------------------------------------------- dependencies
def get_state(request: Request) -> ServiceState:
    state = getattr(request.app.state, "service", None)
    if not isinstance(state, ServiceState):
        raise ApiError(503, "the service is not initialised", type="not_ready")
    return state


def get_settings(state: Annotated[ServiceState, Depends(get_state)]) -> ServiceSettings:
    return state.settings


StateDep = Annotated[ServiceState, Depends(get_state)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
