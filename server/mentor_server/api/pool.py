"""The scoring process pool: CPU-bound scoring off the event loop, on every core, with deadlines.

`ScoringPool.score(config, items)` splits a batch into chunks (about two per worker, so a slow
chunk does not leave a core idle), runs each chunk in a worker process (`worker.score_chunk`)
and returns one result dict per item, in order. At most `workers` jobs are in flight at once
(an asyncio semaphore), so a job starts as soon as it is handed to an idle process and its
deadline measures its run time, not its queueing; concurrent requests share the cores first
come, first served.

Deadlines that hold. Each worker is one process with its own pipe and courier thread
(`processes.WorkerProcess`), so the pool always knows which process runs which job. A chunk
of n items gets `item_timeout_s + n * chunk_item_budget_s`; when a job overruns, the process
running it is killed at once (a big integer power or a backtracking regex cannot be
interrupted any other way), a fresh process is forked in its place, and no other job is
disturbed. A chunk that overran, or whose process died, is scored again item by item, each
item with its own deadline; an item that overruns alone is reported as that item's `timeout`
error and the rest of the batch is scored as usual. A job whose caller went away (a cancelled
request) has its process killed too, so no process works for nobody.

Bounded shutdown. `close()` kills every worker, stuck or not, and nothing at interpreter exit
waits for a worker (couriers are daemon threads); the workers also die with the service on
`kill -9` (see `processes`). Workers run at a lower priority than the API process, which keeps
`/healthz` fast under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import CancelledError as FutureCancelled
from typing import Any

from . import worker
from .processes import PoolUnavailable, WorkerCrashed, WorkerProcess, WorkTimeout, mp_context

__all__ = ["PoolUnavailable", "ScoringPool", "WorkTimeout", "WorkerCrashed"]

log = logging.getLogger("mentor_server.api.pool")

Job = dict[str, Any]
Result = Any  # whatever the job function returns (`worker.score_chunk`: one result per item)


_RESTART_AFTER_S = 10.0
"""Processes that failed to start are tried again at most this often, not per request."""


class ScoringPool:
    """Process-pool scoring with chunking, per-job deadlines and crash recovery (module docstring)."""

    def __init__(
        self,
        workers: int,
        *,
        item_timeout_s: float = 10.0,
        chunk_item_budget_s: float = 0.25,
        toolset_files: list[str] | None = None,
        score_fn: Callable[[Job], list[Result]] = worker.score_chunk,
        tool_fn: Callable[[Job], Result] = worker.execute_tool,
        chunks_per_worker: int = 2,
        min_chunk_items: int = 8,
        nice: int = 5,
    ) -> None:
        self.workers = workers
        self.item_timeout_s = item_timeout_s
        self.chunk_item_budget_s = chunk_item_budget_s
        self._toolset_files = list(toolset_files or [])
        self._score_fn = score_fn
        self._tool_fn = tool_fn
        self._chunks_per_worker = chunks_per_worker
        self._min_chunk_items = min_chunk_items
        self._nice = nice
        self._context: multiprocessing.context.BaseContext | None = None
        self._all: set[WorkerProcess] = set()
        self._idle: list[WorkerProcess] = []
        self._changed: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._first_start: asyncio.Future[Any] | None = None
        self._watchers: set[asyncio.Task[None]] = set()
        self._failed: str | None = None
        self._failed_at = 0.0
        self._closed = False
        self.replacements = 0

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Start the processes (in the background; `wait_ready` says when). Needs a running event loop."""
        self._context = mp_context()
        self._slots = asyncio.Semaphore(self.workers)
        self._changed = asyncio.Event()
        self._closed = False
        starts = [self._spawn() for _ in range(self.workers)]
        self._first_start = asyncio.gather(*starts, return_exceptions=True)

    async def wait_ready(self) -> None:
        """Wait until every process of the first start has started and imported the engine (or failed)."""
        if self._first_start is not None:
            await asyncio.shield(self._first_start)

    def close(self, timeout_s: float = 10.0) -> None:
        """Kill every worker (a stuck one included) and wait up to `timeout_s` for them to be reaped.

        Safe to call from any thread. Jobs still queued or running fail with `WorkerCrashed`.
        """
        self._closed = True
        workers = list(self._all)
        self._all.clear()
        self._idle.clear()
        for w in workers:
            w.kill()
        end = time.monotonic() + timeout_s
        for w in workers:
            w.join(max(0.0, end - time.monotonic()))

    def pids(self) -> list[int]:
        """The process ids of the live workers (for tests and diagnostics)."""
        return [pid for w in list(self._all) if (pid := w.pid) is not None and not w.killed]

    def _spawn(self) -> asyncio.Task[None]:
        assert self._context is not None
        w = WorkerProcess(self._context, (self._toolset_files, self._nice, os.getpid()))
        self._all.add(w)
        task = asyncio.ensure_future(self._watch_start(w))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return task

    async def _watch_start(self, w: WorkerProcess) -> None:
        try:
            await asyncio.wrap_future(w.started)
        except PoolUnavailable as exc:
            self._all.discard(w)
            if w.killed or self._closed:
                return  # stopped on purpose while starting (a close, a replaced worker)
            self._failed = str(exc)
            self._failed_at = time.monotonic()
            log.error("%s", self._failed)
        else:
            if w.killed or self._closed:
                return
            self._failed = None
            self._idle.append(w)
        finally:
            if self._changed is not None:
                self._changed.set()

    def _top_up(self) -> None:
        while not self._closed and len(self._all) < self.workers:
            self._spawn()

    def _discard(self, w: WorkerProcess, why: str) -> None:
        """Kill a worker whose job overran or whose process died, and start its replacement."""
        w.kill()
        self._all.discard(w)
        if self._closed:
            return
        self.replacements += 1
        log.warning("replacing a scoring process (%s)", why)
        self._top_up()

    async def _take(self) -> WorkerProcess:
        """An idle, started worker; waits while replacements start.

        Processes that could not start are not retried on every request, which would fork
        without end: requests get `PoolUnavailable` (a 503) until the next attempt.
        """
        assert self._changed is not None
        while True:
            if self._closed:
                raise PoolUnavailable("the scoring pool is closed")
            if self._idle:
                return self._idle.pop()
            starting = any(not w.started.done() for w in self._all)
            if self._failed is not None and not starting:
                if time.monotonic() - self._failed_at < _RESTART_AFTER_S:
                    raise PoolUnavailable(self._failed)
                self._failed_at = time.monotonic()
                self._top_up()
            self._changed.clear()
            await self._changed.wait()

    # ------------------------------------------------------------------ running one job
    async def _run(self, fn: Callable[[Job], Any], job: Job, deadline_s: float) -> Any:
        if self._slots is None:
            raise PoolUnavailable("the scoring pool is not started")
        async with self._slots:
            w = await self._take()
            w.busy = True
            future = w.submit(fn, job)
            try:
                result = await asyncio.wait_for(asyncio.wrap_future(future), deadline_s)
            except TimeoutError:
                self._discard(w, f"a job overran its {deadline_s:g} s deadline")
                raise WorkTimeout from None
            except (WorkerCrashed, FutureCancelled):
                self._discard(w, "its process died")
                raise WorkerCrashed from None
            except asyncio.CancelledError:
                # Nobody waits for this job any more (a cancelled request, a shutdown): its
                # process may run for its whole deadline, so it goes now.
                self._discard(w, "its job was cancelled")
                raise
            except BaseException:
                self._release(w)  # the job raised inside the worker; the process is fine
                raise
            self._release(w)
            return result

    def _release(self, w: WorkerProcess) -> None:
        w.busy = False
        if w in self._all and not w.killed:
            self._idle.append(w)
        assert self._changed is not None
        self._changed.set()

    # ------------------------------------------------------------------ scoring
    def split(self, n_items: int) -> list[tuple[int, int]]:
        """Chunk bounds: about `chunks_per_worker` chunks per worker, none under `min_chunk_items`."""
        if n_items == 0:
            return []
        n_chunks = max(1, min(self.workers * self._chunks_per_worker, math.ceil(n_items / self._min_chunk_items)))
        size = math.ceil(n_items / n_chunks)
        return [(start, min(start + size, n_items)) for start in range(0, n_items, size)]

    async def score(self, config: Any, items: list[Any]) -> list[Result]:
        bounds = self.split(len(items))
        parts = await asyncio.gather(*(self._score_chunk(config, items[a:b]) for a, b in bounds))
        return [result for part in parts for result in part]

    async def _score_chunk(self, config: Any, items: list[Any]) -> list[Result]:
        deadline = self.item_timeout_s + self.chunk_item_budget_s * len(items)
        try:
            results = await self._run(self._score_fn, {"config": config, "items": items}, deadline)
            if isinstance(results, list) and len(results) == len(items):
                return results
            log.error("a scoring worker returned %r results for %d items", type(results).__name__, len(items))
        except WorkTimeout:
            if len(items) == 1:
                return [self._timeout_result()]
        except WorkerCrashed:
            if len(items) == 1:
                return [await self._score_alone(config, items[0], retry_crash=True)]
        return list(await asyncio.gather(*(self._score_alone(config, item, retry_crash=True) for item in items)))

    def _timeout_result(self) -> Result:
        return worker.error_result(
            "timeout", f"scoring this item took longer than its limit of {self.item_timeout_s:g} s"
        )

    async def _score_alone(self, config: Any, item: Any, *, retry_crash: bool) -> Result:
        try:
            results = await self._run(
                self._score_fn,
                {"config": config, "items": [item]},
                self.item_timeout_s + self.chunk_item_budget_s,
            )
        except WorkTimeout:
            return self._timeout_result()
        except WorkerCrashed:
            # A process that died alone on this item may have died of something else (the OOM
            # killer's choice, an operator's kill): try once more before blaming the item.
            if retry_crash:
                return await self._score_alone(config, item, retry_crash=False)
            return worker.error_result("worker_crashed", "the scoring process died while scoring this item")
        if isinstance(results, list) and len(results) == 1:
            return results[0]
        return worker.error_result("internal_error", "the scoring worker returned no result for this item")

    # ------------------------------------------------------------------ tools
    async def execute_tool(self, job: Job, timeout_s: float) -> Result | None:
        """Run `worker.execute_tool`; None when even the process-level deadline passed."""
        with contextlib.suppress(WorkTimeout):
            result: Result = await self._run(self._tool_fn, job, timeout_s + 1.0)
            return result
        return None

    async def run_job(self, fn: Callable[[Job], Any], job: Job, timeout_s: float) -> Any:
        """Run any picklable `fn(job)` in a worker under a hard deadline (`WorkTimeout` past it)."""
        return await self._run(fn, job, timeout_s)

    @property
    def failure(self) -> str | None:
        """Why the processes could not start, if they could not."""
        return self._failed

    @property
    def ready(self) -> bool:
        return (
            self._first_start is not None
            and self._first_start.done()
            and self._failed is None
            and not self._closed
            and bool(self._all)
        )
