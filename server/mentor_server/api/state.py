"""Per-app service state, its FastAPI dependencies, and the serving logic shared by the routes.

`ServiceState` holds what one app owns (settings, metrics, the scoring pool, the record store);
it lives on `app.state.service`, is filled by the lifespan, and reaches routes through the
`Annotated` dependencies below. There is no module-level singleton: two apps in one process
(as in the tests) never share anything but the engine's registries of presets and toolsets.

`resolve_config` validates a request's reward choice with the engine's own
`resolve_engine_config` (a 400 naming the field), off the event loop and cached, since GRPO
sends the same choice every step; `score_rows` runs the pool, builds the public results as
plain dicts and aggregates them in one pass (`mentor_client.results.rows_and_stats`), updates
metrics and appends records (`score_items` gives the same results as wire models).
docs/architecture.md follows one request through these steps.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from fastapi import Depends, Request

from mentor_client.protocol import BatchStats, ItemResult
from mentor_client.results import result_model, rows_and_stats

from ..records import RecordStore
from ..scoring import EngineConfig, ItemScore, RewardSpec, resolve_engine_config
from .errors import ApiError
from .metrics import ServiceMetrics
from .pool import ScoringPool
from .settings import ServiceSettings

_CONFIG_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class ResolvedConfig:
    """A validated reward choice: what the workers build engines from, and a label for metrics/records."""

    engine: EngineConfig
    preset: str | None

    @property
    def spec(self) -> RewardSpec:
        return self.engine.spec.spec

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
    _configs_lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ validation
    async def resolve_config(self, **choice: Any) -> ResolvedConfig:
        """`resolve_config_now` in a thread: its cost grows with the inline spec and tools."""
        return await asyncio.to_thread(functools.partial(self.resolve_config_now, **choice))

    def resolve_config_now(
        self,
        *,
        preset: str | None,
        spec: dict[str, Any] | None,
        overrides: dict[str, Any] | None = None,
        toolset: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        parser: str = "auto",
        eos_tokens: Sequence[str] | None = None,
    ) -> ResolvedConfig:
        """Validate a reward choice (cached: GRPO sends the same one every step)."""
        key = hashlib.sha256(
            json.dumps(
                [preset, spec, overrides, toolset, tools, parser, eos_tokens], sort_keys=True, default=str
            ).encode()
        ).hexdigest()
        with self._configs_lock:
            cached = self._configs.get(key)
            if cached is not None:
                self._configs.move_to_end(key)
                return cached
        engine = resolve_engine_config(
            preset=preset,
            spec=spec,
            overrides=overrides,
            toolset=toolset,
            tools=tools,
            parser=parser,
            eos_tokens=eos_tokens,
        )
        resolved = ResolvedConfig(engine=engine, preset=preset if spec is None else None)
        with self._configs_lock:
            self._configs[key] = resolved
            if len(self._configs) > _CONFIG_CACHE_SIZE:
                self._configs.popitem(last=False)
        return resolved

    # ------------------------------------------------------------------ scoring
    async def score_items(
        self,
        config: ResolvedConfig,
        items: list[Any],
        *,
        run_id: str | None,
        step: int | None,
        refused: Mapping[int, ItemScore] | None = None,
    ) -> tuple[list[ItemResult], BatchStats]:
        """`score_rows` as wire models (for routes that read the results rather than send them)."""
        rows, stats = await self.score_rows(config, items, run_id=run_id, step=step, refused=refused)
        return [result_model(row) for row in rows], BatchStats.model_construct(**stats)

    async def score_rows(
        self,
        config: ResolvedConfig,
        items: list[Any],
        *,
        run_id: str | None,
        step: int | None,
        refused: Mapping[int, ItemScore] | None = None,
        reasons: bool = True,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Score, aggregate, account and record one batch: each item's result as the plain dict
        of its JSON (`result_row`), in the order of `items`, and the `BatchStats` fields.

        `refused` holds the items already answered by a cheap check (e.g. over a size limit):
        they are not sent to the workers but are reported, counted and recorded like the rest.
        `reasons=False` may leave each row's `reason` out (the record, when on, still keeps it).
        """
        pool = self.require_pool()
        refused = refused or {}
        # Each item travels with its index in the request, so errors name `items[i]` whatever chunk it is in.
        jobs = [(index, item) for index, item in enumerate(items) if index not in refused]
        self.metrics.batches_in_flight.inc()
        try:
            scored = iter(await pool.score(config.engine, jobs) if jobs else [])
        finally:
            self.metrics.batches_in_flight.dec()
        scores = [_named(refused[index] if index in refused else next(scored), index) for index in range(len(items))]
        rows, stats = rows_and_stats(scores, reasons or self.store is not None)
        self.metrics.record_batch(config.label, scores, BatchStats.model_construct(**stats))
        if self.store is not None and rows:
            now = time.time()
            spec_hash = config.engine.spec.hash
            self.store.append(
                [
                    {
                        "run_id": run_id,
                        "step": step,
                        "spec_hash": spec_hash,
                        "preset": config.preset,
                        "item": item,
                        "reward": row["reward"],
                        "components": row["components"],
                        "reason": row["reason"],
                        "error": row["error"],
                        "created_at": now,
                    }
                    for item, row in zip(items, rows, strict=True)
                ]
            )
        return rows, stats

    def require_pool(self) -> ScoringPool:
        if self.pool is None:
            raise ApiError(503, "the scoring workers are not running", type="not_ready")
        return self.pool


# ---------------------------------------------------------------------------- dependencies
# `async def` although they do no I/O: FastAPI runs a plain `def` dependency in its thread pool,
# and two thread round trips per request (on every route, /healthz included) cost more than the
# work itself and, on a busy machine, most of /healthz's latency.
async def get_state(request: Request) -> ServiceState:
    state = getattr(request.app.state, "service", None)
    if not isinstance(state, ServiceState):
        raise ApiError(503, "the service is not initialised", type="not_ready")
    return state


async def get_settings(state: Annotated[ServiceState, Depends(get_state)]) -> ServiceSettings:
    return state.settings


StateDep = Annotated[ServiceState, Depends(get_state)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]


def _named(score: ItemScore, index: int) -> ItemScore:
    # Errors the pool reports (a timeout, a crashed worker) do not know the item's place.
    if score.error is None or score.error.param is not None:
        return score
    return replace(score, error=replace(score.error, param=f"items[{index}]"))
