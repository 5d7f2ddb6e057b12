"""GET /ui: the reward dashboard over this service's score records (see `mentor_server.report`).

The page is the one `mentor-reward report` writes: self-contained, no network. Each request
first waits for the background writer to flush what was already accepted, so a reload shows
every batch answered so far. A training run's record only grows, so the route keeps its
summary between requests (per run filter, a few at most) and feeds it only the records written
since: a reload costs the new records, not the whole run. A record file is read from where the
summary stopped; another backend (PostgreSQL, written by several replicas) is read whole.

Like every route but the health probes and the API docs it needs the API key when keys are
configured; a browser cannot send the header: use
`curl -H 'Authorization: Bearer KEY' .../ui > dashboard.html`, or the `report` command on the
record file. Recording off answers as `/v1/records` does: 404 `recording_disabled`, or 503
`recording_unavailable` when the record file could not be opened.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from ...record_query import Row, iter_records
from ...records import RecordStore
from ...report import RecordSummary, render_dashboard
from ..errors import JSONErrorRoute
from ..state import SettingsDep, StateDep
from .records import recording_store

router = APIRouter(tags=["dashboard"], route_class=JSONErrorRoute)

_PAGE_ROWS = 5000
_KEPT_SUMMARIES = 4


@router.get("/ui", include_in_schema=False)
async def dashboard(
    request: Request,
    state: StateDep,
    settings: SettingsDep,
    run_id: Annotated[str | None, Query(max_length=1024, description="only this run")] = None,
) -> HTMLResponse:
    store = recording_store(request, state, settings)
    summaries = getattr(request.app.state, "dashboard_summaries", None)
    if summaries is None:
        summaries = request.app.state.dashboard_summaries = _Summaries()
    # Reading and summarising records is CPU and disk work: off the event loop.
    page = await asyncio.to_thread(summaries.page, store, run_id)
    return HTMLResponse(page)


class _Summaries:
    """The summaries kept between requests, by run filter (least recently used dropped first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[str | None, tuple[threading.Lock, RecordSummary]] = OrderedDict()

    def _entry(self, run_id: str | None) -> tuple[threading.Lock, RecordSummary]:
        with self._lock:
            entry = self._kept.get(run_id)
            if entry is None:
                entry = self._kept[run_id] = (threading.Lock(), RecordSummary())
            self._kept.move_to_end(run_id)
            while len(self._kept) > _KEPT_SUMMARIES:
                self._kept.popitem(last=False)
            return entry

    def page(self, store: RecordStore, run_id: str | None) -> str:
        store.flush()
        source = f"{store.path} (this service's record)"
        if store.backend not in ("sqlite", "jsonl"):
            # Other replicas write there too: nothing says which records are new; read it all.
            return render_dashboard(RecordSummary().add(_all_pages(store, run_id)).result(), source=source)
        lock, summary = self._entry(run_id)
        with lock:  # one request at a time feeds a summary; the others then find it current
            summary.add(iter_records(store.path, run_id=run_id, offset=summary.n_records, backend=store.backend))
            data = summary.result()
        return render_dashboard(data, source=source)


def _all_pages(store: RecordStore, run_id: str | None) -> Iterator[Row]:
    offset = 0
    while True:
        page = store.query(run_id=run_id, limit=_PAGE_ROWS, offset=offset)
        yield from page
        if len(page) < _PAGE_ROWS:
            return
        offset += len(page)
