"""GET /v1/records: the score record, filtered by run id and step, in the order it was written.

Reading first waits for the background writer to flush what was already accepted, so a
trainer that scored step 7 and then asks for step 7 sees all of it. Responses are pages: at
most `limit` records and about `max_record_page_bytes` of JSON (at least one record), with
`next_offset` to ask for the next page (null after the last). Stored JSON is passed through
as stored, so a page never holds more in memory than its own bytes, and an item nested
however deeply is served as it was recorded. Recording is off unless `record_backend` is
set; then this endpoint is a 404 (`recording_disabled`); a record file that could not be
opened at start-up makes it a 503 (`recording_unavailable`, the reason in the message).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from mentor_client.protocol import API_PREFIX, RecordList

from ...records import RecordStore
from ..errors import ERROR_RESPONSES, ApiError, JSONErrorRoute
from ..settings import ServiceSettings
from ..state import ServiceState, SettingsDep, StateDep

router = APIRouter(prefix=API_PREFIX, tags=["records"], route_class=JSONErrorRoute, responses=ERROR_RESPONSES)


@router.get("/records", response_model=RecordList, summary="Query the score record")
async def records(
    request: Request,
    state: StateDep,
    settings: SettingsDep,
    run_id: Annotated[str | None, Query(max_length=1024, description="only this run")] = None,
    step: Annotated[int | None, Query(ge=0, le=2**62, description="only this step")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> Response:
    store = recording_store(request, state, settings)
    body = await asyncio.to_thread(_page, store, run_id, step, limit, offset, settings.max_record_page_bytes)
    return Response(body, media_type="application/json")


def recording_store(request: Request, state: ServiceState, settings: ServiceSettings) -> RecordStore:
    """The service's record store, or the error that says why there is none (503 when it failed to open)."""
    store = state.store
    if store is None:
        problem = getattr(request.app.state, "recording_problem", None)
        if settings.record_backend != "none" and problem:
            raise ApiError(503, problem, type="recording_unavailable")
        raise ApiError(404, "recording is disabled on this service (set record_backend)", type="recording_disabled")
    return store


def _page(store: RecordStore, run_id: str | None, step: int | None, limit: int, offset: int, max_bytes: int) -> bytes:
    texts, next_offset = store.query_page(run_id, step, limit, offset, max_bytes)
    tail = "null" if next_offset is None else str(next_offset)
    return ('{"records":[' + ",".join(texts) + '],"next_offset":' + tail + "}").encode("utf-8", "backslashreplace")
