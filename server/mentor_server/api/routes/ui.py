"""GET /ui: the reward dashboard over this service's score records (see `mentor_server.report`).

The page is built from the record file on each request, after the background writer has
flushed what was already accepted, so a reload shows every batch answered so far. It is the
page `mentor-reward report` writes: self-contained, no network. Like every route but the
health probes it needs the API key when keys are configured (a browser cannot send the
header: use `curl -H 'Authorization: Bearer ...' .../ui > dashboard.html`, or the `report`
command on the record file). Recording off answers as `/v1/records` does: 404
`recording_disabled`, or 503 `recording_unavailable` when the record file could not be opened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from ...record_query import Row, iter_records
from ...records import RecordStore
from ...report import build_dashboard
from ..errors import ApiError, JSONErrorRoute
from ..state import SettingsDep, StateDep

router = APIRouter(tags=["dashboard"], route_class=JSONErrorRoute)


@router.get("/ui", include_in_schema=False)
async def dashboard(
    request: Request,
    state: StateDep,
    settings: SettingsDep,
    run_id: Annotated[str | None, Query(max_length=1024, description="only this run")] = None,
) -> HTMLResponse:
    store = state.store
    if store is None:
        problem = getattr(request.app.state, "recording_problem", None)
        if settings.record_backend != "none" and problem:
            raise ApiError(503, problem, type="recording_unavailable")
        raise ApiError(404, "recording is disabled on this service (set record_backend)", type="recording_disabled")
    # Reading and summarising a run is CPU and disk work: off the event loop.
    page = await asyncio.to_thread(_page, store, run_id)
    return HTMLResponse(page)


_PAGE_ROWS = 5000


def _rows(store: RecordStore, run_id: str | None) -> Iterator[Row]:
    """The store's records one at a time: a file is streamed; another backend is read in pages."""
    store.flush()
    if store.backend in ("sqlite", "jsonl"):
        yield from iter_records(store.path, run_id=run_id, backend=store.backend)
        return
    offset = 0
    while True:
        page = store.query(run_id=run_id, limit=_PAGE_ROWS, offset=offset)
        yield from page
        if len(page) < _PAGE_ROWS:
            return
        offset += len(page)


def _page(store: RecordStore, run_id: str | None) -> str:
    return build_dashboard(_rows(store, run_id), source=f"{store.path} (this service's record)")
