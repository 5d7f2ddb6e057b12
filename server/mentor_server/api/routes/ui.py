"""GET /ui: the reward dashboard over this service's score records (see `mentor_server.report`).

The page is the one `mentor-reward report` writes: self-contained, no network. Each request
first waits for the background writer to flush what was already accepted, so a reload shows
every batch answered so far. A training run's record only grows, so the route keeps its
summary between requests (per run filter, a few at most) and feeds it only the records written
since: a reload costs the new records, not the whole run. A record file is read from where the
summary stopped; another backend (PostgreSQL, written by several replicas) is read whole.

API keys: a browser's navigation sends no bearer header, so the auth middleware lets `/ui`
through when a request has no `Authorization` header at all (`guards.KEY_PROMPT_PATHS`); with
keys configured, such a request gets the page's shell, which holds nothing from the record,
asks for the key and loads `GET /ui/data` with it. `/ui/data` is guarded like every other
route, and so is `/ui` with a header (a wrong key is a 401; the right one gets the page with
its data, as `curl -H 'Authorization: Bearer KEY' .../ui > dashboard.html` does). Recording
off answers as `/v1/records` does, on the data: 404 `recording_disabled`, or 503
`recording_unavailable` when the record file could not be opened.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from ...record_query import Row, iter_records
from ...records import RecordStore
from ...report import RecordSummary, dashboard_json, render_dashboard, render_dashboard_shell
from ..errors import JSONErrorRoute
from ..settings import ServiceSettings
from ..state import ServiceState, SettingsDep, StateDep
from .records import recording_store

router = APIRouter(tags=["dashboard"], route_class=JSONErrorRoute)

_PAGE_ROWS = 5000
_KEPT_SUMMARIES = 4


RunFilter = Annotated[str | None, Query(max_length=1024, description="only this run")]


@router.get("/ui", include_in_schema=False)
async def dashboard(request: Request, state: StateDep, settings: SettingsDep, run_id: RunFilter = None) -> HTMLResponse:
    if settings.api_keys and "authorization" not in request.headers:
        # Only a request without any key header gets here unchecked (the middleware checks every
        # header it sees): the shell, which holds no data and tells nothing about the record.
        data_url = "ui/data" if run_id is None else "ui/data?" + urlencode({"run_id": run_id})
        return HTMLResponse(render_dashboard_shell(data_url=data_url), headers=_NOT_STORED)
    summary, source = await _summary(request, state, settings, run_id)
    return HTMLResponse(await asyncio.to_thread(render_dashboard, summary, source=source))


@router.get("/ui/data", include_in_schema=False)
async def dashboard_data(
    request: Request, state: StateDep, settings: SettingsDep, run_id: RunFilter = None
) -> Response:
    """The page's data, for the shell a service with keys serves (`{"subtitle", "summary"}`)."""
    summary, source = await _summary(request, state, settings, run_id)
    body = await asyncio.to_thread(dashboard_json, summary, source=source)
    # Fetched with a key: no cache keeps it for whoever uses the browser next.
    return Response(body, media_type="application/json", headers=_NOT_STORED)


_NOT_STORED = {"Cache-Control": "no-store"}


async def _summary(
    request: Request, state: ServiceState, settings: ServiceSettings, run_id: str | None
) -> tuple[dict[str, Any], str]:
    store = recording_store(request, state, settings)
    summaries = getattr(request.app.state, "dashboard_summaries", None)
    if summaries is None:
        summaries = request.app.state.dashboard_summaries = _Summaries()
    # Reading and summarising records is CPU and disk work: off the event loop.
    summary = await asyncio.to_thread(summaries.summary, store, run_id)
    return summary, f"{store.path} (this service's record)"


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

    def summary(self, store: RecordStore, run_id: str | None) -> dict[str, Any]:
        store.flush()
        if store.backend not in ("sqlite", "jsonl"):
            # Other replicas write there too: nothing says which records are new; read it all.
            return RecordSummary().add(_all_pages(store, run_id)).result()
        lock, summary = self._entry(run_id)
        with lock:  # one request at a time feeds a summary; the others then find it current
            summary.add(iter_records(store.path, run_id=run_id, offset=summary.n_records, backend=store.backend))
            return summary.result()


def _all_pages(store: RecordStore, run_id: str | None) -> Iterator[Row]:
    offset = 0
    while True:
        page = store.query(run_id=run_id, limit=_PAGE_ROWS, offset=offset)
        yield from page
        if len(page) < _PAGE_ROWS:
            return
        offset += len(page)
