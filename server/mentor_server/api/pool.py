"""The scoring process pool: CPU-bound scoring off the event loop, on every core, with deadlines.

`ScoringPool.score(config, items)` splits a batch into chunks (about two per worker, so a slow
chunk does not leave a core idle), runs each chunk in a `ProcessPoolExecutor` worker
(`worker.score_chunk`) and returns one result dict per item, in order. At most `workers` jobs
are in flight at once (an asyncio semaphore), so a job starts as soon as it is submitted and
its deadline measures its run time, not its queueing; concurrent requests share the cores
first come, first served.

Deadlines. The engine guards each item, so a deadline is a backstop for the pathological: a
chunk of n items gets `item_timeout_s + n * chunk_item_budget_s`. A chunk that overruns, or
whose worker died, is scored again item by item, each item with its own deadline; an item that
overruns alone is reported as that item's `timeout` error and the rest of the batch is scored
as usual. A process cannot be interrupted, so the pool that holds an overrunning job is
*retired*: new work goes to a fresh pool at once, the old one finishes what it still has and
its stuck processes are then killed.

Workers are forked from a `forkserver` that has imported the engine once (never forked from
this process, which runs an event loop and threads; `spawn` where there is no forkserver),
and run at a lower priority than the API process, which keeps `/healthz` fast under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from . import worker

log = logging.getLogger("mentor_server.api.pool")

Job = dict[str, Any]
Result = dict[str, Any]


class WorkTimeout(Exception):
    """A job overran its deadline (its process is abandoned)."""


class WorkerCrashed(Exception):
    """The process running a job died."""


class PoolUnavailable(Exception):
    """The scoring processes cannot be started (the message says why)."""


_RESTART_AFTER_S = 10.0
"""A pool whose processes failed to start is tried again at most this often, not per request."""


def _mp_context() -> multiprocessing.context.BaseContext:
    # forkserver: a clean single-threaded server process imports the engine once, and every
    # worker (a replacement after a timeout included) is forked from it in milliseconds. Never
    # plain fork from this process, which runs an event loop and threads.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([worker.__name__, f"{__package__}._preload"])
        return context
    return multiprocessing.get_context("spawn")


class _Generation:
    """One ProcessPoolExecutor and the futures submitted to it.

    Retiring stops new work; once every future that is not abandoned has finished, the
    processes still alive (those stuck on abandoned jobs) are killed.
    """

    def __init__(self, executor: ProcessPoolExecutor) -> None:
        self.executor = executor
        self._lock = threading.Lock()
        self._outstanding: set[Future[Any]] = set()
        self._abandoned: set[Future[Any]] = set()
        self.retired = False
        self.ready: asyncio.Future[None] | None = None
        self.failed: str | None = None
        self.created_at = time.monotonic()

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future[Any]:
        future = self.executor.submit(fn, arg)
        with self._lock:
            self._outstanding.add(future)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: Future[Any]) -> None:
        with self._lock:
            self._outstanding.discard(future)
            self._abandoned.discard(future)
            reap = self.retired and self._outstanding <= self._abandoned
        if reap:
            self._kill_processes()

    def abandon(self, future: Future[Any]) -> None:
        with self._lock:
            if not future.done():
                self._abandoned.add(future)

    def retire(self) -> None:
        with self._lock:
            if self.retired:
                return
            self.retired = True
            reap = self._outstanding <= self._abandoned
        self.executor.shutdown(wait=False, cancel_futures=False)
        if reap:
            self._kill_processes()

    def _processes(self) -> list[multiprocessing.process.BaseProcess]:
        # The executor exposes no public handle on its processes; this is the documented-by-use one.
        processes = getattr(self.executor, "_processes", None) or {}
        return list(processes.values())

    def _kill_processes(self) -> None:
        for process in self._processes():
            if process.is_alive():
                process.kill()

    def close(self, timeout_s: float) -> None:
        """Stop: cancel queued jobs, let running ones end within `timeout_s`, then kill."""
        processes = self._processes()
        with self._lock:
            self.retired = True
        self.executor.shutdown(wait=False, cancel_futures=True)
        end = time.monotonic() + timeout_s
        for process in processes:
            process.join(max(0.0, end - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(1.0)
        # Every process is gone: this only joins the executor's manager thread, so its queues
        # and semaphores are released before the interpreter exits.
        self.executor.shutdown(wait=True)


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
        self._gen: _Generation | None = None
        self._retired: list[_Generation] = []
        self._slots: asyncio.Semaphore | None = None
        self.replacements = 0

    # ------------------------------------------------------------------ lifecycle
    def _new_generation(self) -> _Generation:
        executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=_mp_context(),
            initializer=worker.init_worker,
            initargs=(self._toolset_files, self._nice),
        )
        gen = _Generation(executor)
        gen.ready = asyncio.ensure_future(self._warm(gen))
        return gen

    async def _warm(self, gen: _Generation) -> None:
        # Processes start on demand; keep submitting no-op tasks until every one has answered,
        # so that no job's deadline later pays for a process start-up.
        seen: set[int] = set()
        for _ in range(10):
            try:
                pids = await asyncio.gather(
                    *(asyncio.wrap_future(gen.submit(worker.warm_up, 20)) for _ in range(self.workers))
                )
            except (BrokenProcessPool, RuntimeError, OSError) as exc:
                gen.failed = f"the scoring processes failed to start ({type(exc).__name__}: {exc})"
                log.error("%s", gen.failed)
                return
            seen.update(pids)
            if len(seen) >= self.workers:
                return

    def open(self) -> None:
        """Start the processes (in the background; `ready` says when). Needs a running event loop."""
        self._slots = asyncio.Semaphore(self.workers)
        self._gen = self._new_generation()

    async def wait_ready(self) -> None:
        """Wait until every process of the current pool has started and imported the engine."""
        if self._gen is not None and self._gen.ready is not None:
            await asyncio.shield(self._gen.ready)

    def close(self, timeout_s: float = 10.0) -> None:
        for gen in [*self._retired, *([self._gen] if self._gen else [])]:
            gen.close(timeout_s)
        self._retired.clear()
        self._gen = None

    def _replace(self, gen: _Generation) -> _Generation:
        """Swap in a fresh pool if `gen` is still the current one; retire `gen`."""
        if self._gen is gen:
            self.replacements += 1
            log.warning("replacing the scoring pool (a job overran or a worker died)")
            self._gen = self._new_generation()
            self._retired.append(gen)
            gen.retire()
        self._retired = [g for g in self._retired if any(p.is_alive() for p in g._processes())]
        assert self._gen is not None
        return self._gen

    async def _usable(self, replacing: _Generation | None = None) -> _Generation:
        """The current pool once its processes run (after replacing `replacing`, a broken one).

        A pool whose processes could not start is not replaced on every request, which would
        fork without end: requests get `PoolUnavailable` (a 503) until the next attempt.
        """
        if self._gen is None:
            raise PoolUnavailable("the scoring pool is not started")
        if replacing is not None:
            self._replace(replacing)
        gen = self._gen
        assert gen is not None
        if gen.failed is not None and time.monotonic() - gen.created_at > _RESTART_AFTER_S:
            gen = self._replace(gen)
        if gen.ready is not None and not gen.ready.done():
            await asyncio.shield(gen.ready)
        if gen.failed is not None:
            raise PoolUnavailable(gen.failed)
        return gen

    # ------------------------------------------------------------------ running one job
    async def _run(self, fn: Callable[[Job], Any], job: Job, deadline_s: float) -> Any:
        if self._slots is None:
            raise PoolUnavailable("the scoring pool is not started")
        async with self._slots:
            gen = await self._usable()
            try:
                future = gen.submit(fn, job)
            except (BrokenProcessPool, RuntimeError):
                gen = await self._usable(replacing=gen)
                try:
                    future = gen.submit(fn, job)
                except (BrokenProcessPool, RuntimeError) as exc:
                    raise PoolUnavailable(f"the scoring processes are not usable ({exc})") from exc
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), deadline_s)
            except TimeoutError:
                gen.abandon(future)
                self._replace(gen)
                raise WorkTimeout from None
            except BrokenProcessPool:
                self._replace(gen)
                raise WorkerCrashed from None

    # ------------------------------------------------------------------ scoring
    def split(self, n_items: int) -> list[tuple[int, int]]:
        """Chunk bounds: about `chunks_per_worker` chunks per worker, none under `min_chunk_items`."""
        if n_items == 0:
            return []
        n_chunks = max(1, min(self.workers * self._chunks_per_worker, math.ceil(n_items / self._min_chunk_items)))
        size = math.ceil(n_items / n_chunks)
        return [(start, min(start + size, n_items)) for start in range(0, n_items, size)]

    async def score(self, config: dict[str, Any], items: list[dict[str, Any]]) -> list[Result]:
        bounds = self.split(len(items))
        parts = await asyncio.gather(*(self._score_chunk(config, items[a:b]) for a, b in bounds))
        return [result for part in parts for result in part]

    async def _score_chunk(self, config: dict[str, Any], items: list[dict[str, Any]]) -> list[Result]:
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

    async def _score_alone(self, config: dict[str, Any], item: dict[str, Any], *, retry_crash: bool) -> Result:
        try:
            results = await self._run(
                self._score_fn,
                {"config": config, "items": [item]},
                self.item_timeout_s + self.chunk_item_budget_s,
            )
        except WorkTimeout:
            return self._timeout_result()
        except WorkerCrashed:
            # A crash fails every job in flight in that pool, not just the culprit's: try once more.
            if retry_crash:
                return await self._score_alone(config, item, retry_crash=False)
            return worker.error_result("worker_crashed", "the scoring process died while scoring this item")
        if isinstance(results, list) and len(results) == 1:
            return dict(results[0])
        return worker.error_result("internal_error", "the scoring worker returned no result for this item")

    # ------------------------------------------------------------------ tools
    async def execute_tool(self, job: Job, timeout_s: float) -> Result | None:
        """Run `worker.execute_tool`; None when even the process-level deadline passed."""
        with contextlib.suppress(WorkTimeout):
            result: Result = await self._run(self._tool_fn, job, timeout_s + 1.0)
            return result
        return None

    @property
    def failure(self) -> str | None:
        """Why the current processes could not start, if they could not."""
        return self._gen.failed if self._gen is not None else None

    @property
    def ready(self) -> bool:
        gen = self._gen
        return gen is not None and gen.ready is not None and gen.ready.done() and gen.failed is None
