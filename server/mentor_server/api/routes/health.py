"""Health, readiness and metrics. None of these touches the scoring pool.

- `GET /healthz`: the process is up and its event loop answers (always open, no key);
- `GET /readyz`: the scoring workers have started and imported the engine (always open);
  a 503 with the error body until then;
- `GET /metrics`: Prometheus text format (needs the key when keys are configured).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mentor_client.protocol import HealthResponse

from ... import __version__
from ..errors import ERROR_RESPONSES, ApiError
from ..state import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness")
async def healthz() -> HealthResponse:
    return HealthResponse(status="ok", version=__version__)


@router.get(
    "/readyz",
    response_model=HealthResponse,
    summary="Readiness",
    responses={503: {**ERROR_RESPONSES[500], "description": "The scoring workers are not ready yet."}},
)
async def readyz(state: StateDep) -> HealthResponse:
    if state.pool is None or not state.pool.ready:
        raise ApiError(503, "the scoring workers are starting", type="not_ready")
    return HealthResponse(status="ready", version=__version__)


@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
