"""The worker processes behind `LocalBackend`: the service's scoring pool, driven from plain threads.

`LocalBackend` gives every item the same hard time limit as the service and the
`mentor-reward score` command, and for the same reason: a judge bomb, a backtracking schema
regex or an uninterruptible tool runs in C and cannot be stopped from inside its thread. So
the items are scored by the service's own `ScoringPool` (worker processes, each job under a
deadline, a process that overruns killed and replaced, the item reported as its `timeout`
error), not by a second implementation of it. The pool is asyncio code; `PoolRunner` gives it
a private event loop on a daemon thread and exposes blocking calls, so any thread of the
caller (a trainer's, a notebook's, one inside someone else's running event loop) can use it.

The server package is imported only here and only when a runner is built (the SDK itself
never needs it). A runner that is never closed is stopped when it is garbage-collected or at
interpreter exit, and its workers die with this process in any case (see the pool).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .exceptions import ServerError
from .protocol import ErrorInfo

if TYPE_CHECKING:
    from mentor_server.api.pool import ScoringPool
    from mentor_server.scoring import EngineConfig, ItemScore

T = TypeVar("T")

_CLOSE_WAIT_S = 5.0


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread, pool: ScoringPool) -> None:
    # Runs from close(), the garbage collector or atexit: must not need the runner itself.
    pool.close(_CLOSE_WAIT_S)
    if not loop.is_closed():
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_CLOSE_WAIT_S)
        if not thread.is_alive():
            loop.close()


class PoolRunner:
    """A started `ScoringPool` with blocking `score` / `execute_tool`; safe to share between threads.

    Raises:
        ServerError: (503, `pool_unavailable`) when the processes cannot be started, at
            construction or, after they failed later, on the call that needs them.
    """

    def __init__(self, *, workers: int, item_timeout_s: float, toolset_files: list[str]) -> None:
        from mentor_server.api.pool import ScoringPool

        self.item_timeout_s = item_timeout_s
        self._pool = ScoringPool(workers, item_timeout_s=item_timeout_s, toolset_files=toolset_files, nice=0)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mentor-local-pool", daemon=True)
        self._thread.start()
        self._finalizer = weakref.finalize(self, _stop, self._loop, self._thread, self._pool)
        try:
            self._call(self._open())
            self.worker_toolsets: frozenset[str] = frozenset(self._call(self._worker_toolsets()))
        except BaseException:
            self.close()
            raise

    async def _open(self) -> None:
        self._pool.open()
        await self._pool.wait_ready()

    async def _worker_toolsets(self) -> list[str]:
        # What a worker knows: the built-in toolsets and those of `toolset_files`. A toolset
        # registered only in this process is not among them (workers start from a clean server).
        from mentor_server.api import worker

        names: list[str] = await self._pool.run_job(worker.toolset_names, {}, 60.0)
        return names

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        from mentor_server.api.pool import PoolUnavailable

        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except PoolUnavailable as exc:
            raise ServerError(503, ErrorInfo(type="pool_unavailable", message=str(exc))) from exc
        except BaseException:
            # The caller stopped waiting (Ctrl-C, its own time-out): the job's process goes too.
            future.cancel()
            raise

    def score(self, config: EngineConfig, items: list[tuple[int, Any]]) -> list[ItemScore]:
        """One `ItemScore` per `(index, wire item)`, in order; an item past the limit is its `timeout` error."""
        results: list[ItemScore] = self._call(self._pool.score(config, items))
        return results

    def execute_tool(self, job: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
        """`worker.execute_tool` in a worker; None when the process had to be killed at the deadline."""
        result: dict[str, Any] | None = self._call(self._pool.execute_tool(job, timeout_s))
        return result

    def close(self) -> None:
        """Kill the processes and stop the loop (idempotent)."""
        self._finalizer()
