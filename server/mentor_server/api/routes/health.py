"""Health, readiness and metrics. None of these touches the scoring pool.

- `GET /healthz`: the process is up and its event loop answers (always open, no key); its
  `recording` field says whether the score record works (`off`, `ok`, or `degraded` with the
  reason: a corrupt file moved aside or refused at start-up, rows that could not be written);
- `GET /readyz`: the scoring workers have started and imported the engine (always open);
  a 503 with the error body until then. A degraded record does not make the service unready:
  scoring never depends on it;
- `GET /metrics`: Prometheus text format (needs the key when keys are configured), rendered
  in a thread so that a scrape never holds the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from mentor_client.protocol import HealthResponse, RecordingHealth

from ... import __version__
from ..errors import ERROR_RESPONSES, ApiError
from ..metrics import render
from ..state import ServiceState, StateDep

router = APIRouter(tags=["health"])


_QUERY_ERROR: dict[int | str, dict[str, Any]] = {422: ERROR_RESPONSES[422]}


def recording_health(request: Request, state: ServiceState) -> RecordingHealth:
    problem = getattr(request.app.state, "recording_problem", None)
    if state.store is None:
        return RecordingHealth(status="degraded", message=problem) if problem else RecordingHealth(status="off")
    status, message = state.store.health()
    if problem:
        return RecordingHealth(status="degraded", message="; ".join(filter(None, [problem, message])))
    return RecordingHealth(status="ok" if status == "ok" else "degraded", message=message)


@router.get("/healthz", response_model=HealthResponse, summary="Liveness", responses=_QUERY_ERROR)
async def healthz(request: Request, state: StateDep) -> HealthResponse:
    return HealthResponse(status="ok", version=__version__, recording=recording_health(request, state))


@router.get(
    "/readyz",
    response_model=HealthResponse,
    summary="Readiness",
    responses={**_QUERY_ERROR, 503: ERROR_RESPONSES[503]},
)
async def readyz(request: Request, state: StateDep) -> HealthResponse:
    if state.pool is None or not state.pool.ready:
        failure = state.pool.failure if state.pool is not None else None
        raise ApiError(503, failure or "the scoring workers are starting", type="not_ready")
    return HealthResponse(status="ready", version=__version__, recording=recording_health(request, state))


@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep) -> Response:
    return Response(await asyncio.to_thread(render, state.metrics), media_type=CONTENT_TYPE_LATEST)
