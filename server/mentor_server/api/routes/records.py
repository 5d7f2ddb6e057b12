"""GET /v1/records: the score record, filtered by run id and step, in the order it was written.

Reading first waits for the background writer to flush what was already accepted, so a
trainer that scored step 7 and then asks for step 7 sees all of it. Recording is off unless
`record_backend` is set; then this endpoint is a 404 (`recording_disabled`).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from mentor_client.protocol import API_PREFIX, RecordList, ScoreRecord

from ..errors import ERROR_RESPONSES, ApiError, JSONErrorRoute
from ..state import StateDep

router = APIRouter(prefix=API_PREFIX, tags=["records"], route_class=JSONErrorRoute, responses=ERROR_RESPONSES)


@router.get("/records", response_model=RecordList, summary="Query the score record")
async def records(
    state: StateDep,
    run_id: Annotated[str | None, Query(max_length=1024, description="only this run")] = None,
    step: Annotated[int | None, Query(ge=0, le=2**62, description="only this step")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> RecordList:
    store = state.store
    if store is None:
        raise ApiError(404, "recording is disabled on this service (set record_backend)", type="recording_disabled")
    rows = await asyncio.to_thread(store.query, run_id, step, limit, offset)
    return RecordList(records=[ScoreRecord.model_validate(row) for row in rows])
