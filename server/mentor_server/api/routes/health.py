"""Health, readiness and metrics. None of these touches the scoring pool.

- `GET /healthz`: the process is up and its event loop answers (always open, no key);
- `GET /readyz`: the scoring workers have started and imported the engine (always open);
  a 503 with the error body until then;
- `GET /metrics`: Prometheus text format (needs the key when keys are configured).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mentor_client.protocol import HealthResponse

from ... import __version__
from ..errors import ERROR_RESPONSES, ApiError
from ..state import StateDep

router = APIRouter(tags=["health"])


_QUERY_ERROR: dict[int | str, dict[str, Any]] = {422: ERROR_RESPONSES[422]}


@router.get("/healthz", response_model=HealthResponse, summary="Liveness", responses=_QUERY_ERROR)
async def healthz() -> HealthResponse:
    return HealthResponse(status="ok", version=__version__)


@router.get(
    "/readyz",
    response_model=HealthResponse,
    summary="Readiness",
    responses={**_QUERY_ERROR, 503: ERROR_RESPONSES[503]},
)
async def readyz(state: StateDep) -> HealthResponse:
    if state.pool is None or not state.pool.ready:
        failure = state.pool.failure if state.pool is not None else None
        raise ApiError(503, failure or "the scoring workers are starting", type="not_ready")
    return HealthResponse(status="ready", version=__version__)


@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
