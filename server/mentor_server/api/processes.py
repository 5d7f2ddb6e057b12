"""The scoring pool's processes: how a worker is started, serves jobs and dies with the service.

`WorkerProcess` is one worker process plus one daemon thread in the service (its *courier*)
that starts it (a blocking step, never done on the event loop), hands it one job at a time
over its own pipe and resolves each job's future; so the pool always knows which process runs
which job, and killing that process ends exactly that job. `serve` is the worker's main loop.

Workers are forked from a `forkserver` that has imported the engine once (never forked from
the service, which runs an event loop and threads; `spawn` where there is no forkserver). On
Linux each asks the kernel for SIGKILL when its parent goes (`PR_SET_PDEATHSIG`), and drops its
inherited end of the forkserver's "alive" pipe, so the forkserver exits as soon as the service
does, even while a worker is stuck in C code, and takes the workers with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

from . import worker


class WorkTimeout(Exception):
    """A job overran its deadline (the process running it was killed)."""


class WorkerCrashed(Exception):
    """The process running a job died."""


class PoolUnavailable(Exception):
    """The scoring processes cannot be started (the message says why)."""


_PR_SET_PDEATHSIG = 1


def mp_context() -> multiprocessing.context.BaseContext:
    # forkserver: a clean single-threaded server process imports the engine once, and every
    # worker (a replacement after a timeout included) is forked from it in milliseconds. Never
    # plain fork from this process, which runs an event loop and threads.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([worker.__name__, __name__, f"{__package__}._preload"])
        return context
    return multiprocessing.get_context("spawn")


# ---------------------------------------------------------------------------- worker side
def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Ask Linux to send `signum` to this process when its parent exits (a no-op elsewhere).

    The signal is tied to the thread that forked this process: for a worker that is the
    forkserver's only thread, which lives exactly as long as the service. A parent that is
    already gone (the request raced its death) gets the signal sent at once.
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if parent == 1 or not _alive(parent):
        os.kill(os.getpid(), signum)


def _release_forkserver() -> None:
    """Close this worker's copy of the forkserver's "alive" pipe.

    The forkserver exits when every holder of that pipe is gone, and the processes it forks
    inherit one: a worker stuck in C code would keep the forkserver alive after the service
    died, and so itself (its parent-death signal waits for the forkserver). Workers start no
    processes, so they do not need it. (multiprocessing has no public handle on it.)
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(fd, int):
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(conn: Connection, toolset_files: list[str], nice: int, service_pid: int) -> None:
    """A worker process's main loop: `(fn, job)` in, `("ok", result)` or `("raise", exc)` out."""
    die_with_parent()
    _release_forkserver()
    if not _alive(service_pid) or os.getppid() == 1:
        os._exit(0)  # the service died before the parent-death signal was armed
    try:
        worker.init_worker(toolset_files, nice)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the service closed the pipe: stop
        fn, job = message
        try:
            reply: tuple[str, Any] = ("ok", fn(job))
        except Exception as exc:
            reply = ("raise", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # an unpicklable result or exception: say so, keep serving
            conn.send(("raise", RuntimeError(f"the worker's answer cannot be sent back: {type(exc).__name__}: {exc}")))


# ---------------------------------------------------------------------------- service side
class WorkerProcess:
    """One scoring process and its courier thread.

    The courier starts the process (a blocking step, never done on the event loop), then
    takes jobs from `jobs` one at a time and resolves each job's future. When the process dies
    the courier fails the job in hand with `WorkerCrashed`, reaps the process and ends.
    """

    def __init__(self, context: multiprocessing.context.BaseContext, init_args: tuple[Any, ...]) -> None:
        self.started: Future[int] = Future()
        self.jobs: queue.SimpleQueue[tuple[Any, Future[Any]] | None] = queue.SimpleQueue()
        self.process: multiprocessing.process.BaseProcess | None = None
        self.killed = False
        self.busy = False
        self._dead = False  # the courier has ended: nothing submitted now would ever run
        self._lock = threading.Lock()
        self._context = context
        self._init_args = init_args
        self._thread = threading.Thread(target=self._courier, name="scoring-courier", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None else None

    def submit(self, fn: Callable[[Any], Any], job: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._dead:  # the process died while idle: say so now, not at the deadline
                future.set_exception(WorkerCrashed())
            else:
                self.jobs.put(((fn, job), future))
        return future

    def kill(self) -> None:
        """SIGKILL the process (at once: whatever it is doing has no value any more)."""
        self.killed = True
        self.jobs.put(None)
        process = self.process
        if process is not None:
            with contextlib.suppress(Exception):
                process.kill()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def _courier(self) -> None:
        conn: Connection | None = None
        try:
            conn, child = self._context.Pipe()
            process = self._context.Process(  # type: ignore[attr-defined]
                target=serve, args=(child, *self._init_args), daemon=True, name="mentor-scoring"
            )
            process.start()
            child.close()
            self.process = process
            if self.killed:
                process.kill()
            status, value = conn.recv()
            if status != "ready":
                raise RuntimeError(value)
        except BaseException as exc:
            message = f"the scoring processes failed to start ({type(exc).__name__}: {exc})"
            self.started.set_exception(PoolUnavailable(message))
            self._end(conn)
            return
        self.started.set_result(int(value))
        self._serve_jobs(conn)
        self._end(conn)

    def _serve_jobs(self, conn: Connection) -> None:
        while True:
            task = self.jobs.get()
            if task is None:
                return
            message, future = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                conn.send(message)
            except (EOFError, OSError):
                future.set_exception(WorkerCrashed())
                return
            except Exception as exc:  # the job cannot be pickled: nothing was written
                future.set_exception(exc)
                continue
            try:
                status, value = conn.recv()
            except (EOFError, OSError):
                future.set_exception(WorkerCrashed())
                return
            except Exception as exc:  # the answer cannot be unpickled
                future.set_exception(exc)
                continue
            if status == "ok":
                future.set_result(value)
            else:
                future.set_exception(value)

    def _end(self, conn: Connection | None) -> None:
        if conn is not None:
            conn.close()  # an idle worker reads EOF and exits
        process = self.process
        if process is not None:
            process.join(1.0)
            if process.is_alive():
                process.kill()
                process.join(5.0)
        with self._lock:
            self._dead = True
        while True:  # fail whatever is still queued
            try:
                task = self.jobs.get_nowait()
            except queue.Empty:
                return
            if task is not None and task[1].set_running_or_notify_cancel():
                task[1].set_exception(WorkerCrashed())
