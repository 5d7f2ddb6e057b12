"""The FastAPI app factory and the uvicorn entry point of the reward service.

`create_app(settings)` builds one independent app: it registers the settings' extra presets
and toolsets with the engine, installs the error handlers (one error body everywhere), the
guards (API keys, body size) and the metrics middleware, mounts the routers, and owns a
lifespan that starts the scoring pool and the record store and, on shutdown (SIGTERM
included: uvicorn turns it into a lifespan shutdown after in-flight requests finish), stops
the pool and flushes every accepted record to disk.

    uvicorn --factory mentor_server.api.app:create_app_from_env   # settings from MENTOR_* env
    mentor-reward serve --port 8000 --config service.yaml        # via run_server()

The service is stateless apart from the optional record, so it scales by replicas: run N
copies (one per machine, each using all its cores) behind any HTTP load balancer, or give
the client every base URL and it spreads chunks across them. With recording on, give each
replica its own record file, or point them all at one PostgreSQL table (`record_url`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import Depends, FastAPI
from fastapi.security import HTTPBearer

from mentor_client.protocol import API_PREFIX

from .. import __version__
from ..records import open_store_or_report
from ..records_postgres import open_postgres_store_or_report
from ..scoring import register_preset
from ..toolsets import load_toolsets_file, register_toolset
from .docs_ui import install_api_docs
from .errors import SafeJSONResponse, install_error_handlers
from .guards import ApiKeyMiddleware, BodySizeMiddleware, check_query_parameters
from .metrics import MetricsMiddleware
from .pool import ScoringPool
from .processes import die_with_parent
from .routes import discovery, health, openrlhf, records, score, tools, ui
from .settings import ServiceSettings
from .state import ServiceState

log = logging.getLogger("mentor_server.api")


def _register_extras(settings: ServiceSettings) -> None:
    """Make the settings' presets and toolsets known to the engine in this process."""
    for name, spec in settings.presets.items():
        register_preset(name, spec, replace=True)
    for path in settings.toolsets:
        for toolset in load_toolsets_file(path):
            register_toolset(toolset, replace=True)


_STARTUP_WAIT_S = 300.0
"""Start serving after this long even if the workers are still starting (`/readyz` says so)."""


def build_pool(settings: ServiceSettings) -> ScoringPool:
    return ScoringPool(
        settings.workers,
        item_timeout_s=settings.item_timeout_s,
        chunk_item_budget_s=settings.chunk_item_budget_s,
        toolset_files=[str(p) for p in settings.toolsets],
        nice=settings.worker_nice,
    )


def create_app(settings: ServiceSettings | None = None, *, pool: ScoringPool | None = None) -> FastAPI:
    """Build the reward service. `pool` replaces the default process pool (tests inject one)."""
    settings = settings if settings is not None else ServiceSettings()
    _register_extras(settings)
    state = ServiceState(settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A record file that cannot be opened is reported (/healthz), never a reason not to score.
        if settings.record_backend == "postgres" and settings.record_url is not None:
            state.store, app.state.recording_problem = await asyncio.to_thread(
                open_postgres_store_or_report,
                settings.record_url.get_secret_value(),
                flush_interval_s=settings.record_flush_interval_s,
            )
        else:
            state.store, app.state.recording_problem = open_store_or_report(
                settings.record_backend,
                Path(settings.record_path or "mentor_records.sqlite3"),
                flush_interval_s=settings.record_flush_interval_s,
                on_corrupt=settings.record_on_corrupt,
            )
        if app.state.recording_problem:
            log.error("%s", app.state.recording_problem)
        state.pool = pool if pool is not None else build_pool(settings)
        state.pool.open()
        # Serve once the workers run (or failed to start: then requests get a 503 that says
        # why), so that the first requests never queue behind the engine's import. The
        # processes start in threads: the event loop stays free meanwhile.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.pool.wait_ready(), _STARTUP_WAIT_S)
        # Everything loaded so far (engine, sympy, FastAPI) lives as long as the process: keep it
        # out of the collector, whose full passes over it would otherwise stall the event loop
        # for tens of milliseconds under load (and /healthz with it).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            # Workers hold nothing worth waiting for: close() kills them, stuck or not.
            await asyncio.to_thread(state.pool.close, shutdown_reserve_s(settings) / 2)
            state.pool = None
            if state.store is not None:
                await asyncio.to_thread(state.store.close)
                log.info("score record flushed: %d rows in %s", state.store.written, state.store.path)
                state.store = None

    guards = [Depends(check_query_parameters)]
    if settings.api_keys:
        # Only so the OpenAPI schema shows the bearer scheme: the check itself is the middleware,
        # which runs before any body is read.
        guards.append(Depends(HTTPBearer(auto_error=False)))
    app = FastAPI(
        title="MENTOR reward service",
        version=__version__,
        description="Teacher-guided tool-use rewards for RL trainers (after MENTOR, arXiv 2510.18383).",
        lifespan=lifespan,
        # Every answer encodes, whatever string a model sent (a lone surrogate becomes U+FFFD).
        default_response_class=SafeJSONResponse,
        docs_url=None,  # /docs and /redoc come from install_api_docs, with local assets
        redoc_url=None,
    )
    app.state.service = state
    install_error_handlers(app)
    for router in (score.router, discovery.router, tools.router, openrlhf.router, records.router, ui.router):
        app.include_router(router, dependencies=guards)
    app.include_router(health.router, dependencies=guards[:1])
    install_api_docs(app, secured=bool(settings.api_keys))

    # Starlette runs the last added middleware first: metrics see everything, auth runs before
    # the body-size check, and both run before any body is read.
    app.add_middleware(
        BodySizeMiddleware,
        limit=settings.max_body_bytes,
        # A tool call's arguments are small; a bigger body is refused before it is parsed.
        path_limits={f"{API_PREFIX}/tools/execute": min(settings.max_tool_request_bytes, settings.max_body_bytes)},
    )
    if settings.api_keys:
        app.add_middleware(ApiKeyMiddleware, keys=settings.api_key_values())
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


def create_app_from_env() -> FastAPI:
    """`uvicorn --factory mentor_server.api.app:create_app_from_env`: settings from MENTOR_* variables."""
    return create_app(ServiceSettings())


def _exit_after_graceful_shutdown(signum: int, frame: object) -> None:
    raise SystemExit(0)


def shutdown_reserve_s(settings: ServiceSettings) -> float:
    """The part of `graceful_shutdown_s` kept for stopping the workers and flushing the record."""
    return min(10.0, settings.graceful_shutdown_s / 4)


def _exit_now(limit_s: float) -> None:
    log.error("shutdown did not finish within graceful_shutdown_s=%g s: exiting now", limit_s)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    os._exit(1)


class _Server(uvicorn.Server):
    """uvicorn's server with a hard stop: once a stop signal arrives, the process ends within
    `limit_s` whatever happens (a request that never ends, a worker that cannot be killed).

    The forkserver sees this process go and exits; the workers, which asked for SIGKILL on
    their parent's death, go with it.
    """

    def __init__(self, config: uvicorn.Config, limit_s: float) -> None:
        super().__init__(config)
        self._limit_s = limit_s
        self._armed = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self._armed:
            self._armed = True
            timer = threading.Timer(self._limit_s, _exit_now, args=(self._limit_s,))
            timer.daemon = True
            timer.start()
        super().handle_exit(sig, frame)


def run_server(
    host: str | None = None,
    port: int | None = None,
    config_file: str | Path | None = None,
    workers: int | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (the `mentor-reward serve` command). Arguments override settings."""
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if config_file is not None:
        overrides["config_file"] = Path(config_file)
    if workers is not None:
        overrides["workers"] = workers
    settings = ServiceSettings(**overrides)  # type: ignore[arg-type]
    logging.basicConfig(
        level=settings.log_level.upper() if settings.log_level != "trace" else "DEBUG",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to whatever handler
    # was installed before it. The default one would kill the interpreter on the spot, skipping
    # its clean-up (multiprocessing's semaphores then leak, with warnings); this one exits.
    signal.signal(signal.SIGTERM, _exit_after_graceful_shutdown)
    if settings.exit_with_parent:
        # SIGTERM, not SIGKILL: the usual graceful shutdown (bounded by graceful_shutdown_s).
        die_with_parent(signal.SIGTERM)
    # In-flight requests get graceful_shutdown_s less the reserve; then they are cancelled, the
    # workers killed and the record flushed; `_Server` ends the process at graceful_shutdown_s.
    drain_s = max(1, int(settings.graceful_shutdown_s - shutdown_reserve_s(settings)))
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=drain_s,
    )
    _Server(config, settings.graceful_shutdown_s).run()
