"""The reward service as a child process of a training run: the one launcher the trainer uses.

`mentor-train demo` and `mentor-train experiment` start `python -m mentor_server.cli serve` (the
same command the compose file runs) on a free port, with extra toolsets files if asked (the
experiment's `retrieval` search index), wait for `/readyz`, read its request counters from
`/metrics`, and stop it with its scoring workers. The service also dies with its parent, so a
run that is killed leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


# ---------------------------------------------------------------------------- the service process
def free_port() -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _source_paths() -> list[str]:
    """Folders holding the server, client and trainer packages, for the child's PYTHONPATH.

    An installed project needs none of this, but the GPU machine runs it from a plain copy of
    the tree, where the child must find `mentor_server` exactly where this process found it.
    """
    import importlib.util

    paths = []
    for name in ("mentor_trainer", "mentor_client", "mentor_server"):
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        # Editable installs map packages through a finder (`origin` may be unset); the search
        # locations always name the package folder.
        folders = list(spec.submodule_search_locations or [])
        if folders:
            paths.append(str(Path(folders[0]).resolve().parent))
    return list(dict.fromkeys(paths))


def _requests(metrics: str, route: str) -> int:
    pattern = rf'^mentor_http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*status="200"[^}}]*\}} (\S+)$'
    return int(sum(float(m) for m in re.findall(pattern, metrics, re.M)))


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGTERM when the parent thread exits (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class RewardServiceProcess:
    """`python -m mentor_server.cli serve` as a child process in its own process group.

    `start()` returns at once (the service boots while the caller builds data and models);
    `wait_ready()` blocks until `/readyz` answers 200. `stop()` sends SIGTERM, then kills
    whatever is left of the group (the scoring workers). Use it as a context manager.

    The service dies with its parent: on Linux the child asks the kernel for SIGTERM when the
    thread that started it exits (however it exits: a crash, SIGKILL, Ctrl-C), so a killed run
    leaves no server (or scoring workers) behind. Start it from the thread that outlives it.
    """

    def __init__(
        self,
        port: int | None = None,
        workers: int | None = None,
        log_path: Path | None = None,
        toolset_files: Sequence[Path] = (),
    ) -> None:
        self.port = port or free_port()
        self.workers = workers or (os.cpu_count() or 1)
        self.log_path = log_path
        self.toolset_files = [Path(p).resolve() for p in toolset_files]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None
        self._started = 0.0

    def start(self) -> RewardServiceProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MENTOR_")}
        env.update(MENTOR_WORKERS=str(self.workers), MENTOR_LOG_LEVEL="warning")
        if self.toolset_files:  # the service's `toolsets` setting: files of extra toolsets (e.g. `retrieval`)
            env["MENTOR_TOOLSETS"] = os.pathsep.join(map(str, self.toolset_files))
        env["PYTHONPATH"] = os.pathsep.join([*_source_paths(), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        out: Any = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = self.log_path.open("ab")
        self._started = time.perf_counter()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mentor_server.cli", "serve", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() reaches the scoring workers too
                preexec_fn=functools.partial(_die_with_parent, os.getpid())
                if sys.platform.startswith("linux")
                else None,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        return self

    def log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-3000:]

    def wait_ready(self, timeout_s: float = 120.0) -> float:
        """Block until `/readyz` is 200; returns seconds since `start()`."""
        import httpx

        if self.proc is None:
            raise RuntimeError("the service was not started")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the reward service exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + "/readyz", timeout=1.0).status_code == 200:
                    self.ready_s = round(time.perf_counter() - self._started, 2)
                    return self.ready_s
            time.sleep(0.1)
        raise TimeoutError(f"the reward service was not ready within {timeout_s} s:\n{self.log_tail()}")

    def metrics(self) -> str:
        import httpx

        return httpx.get(self.base_url + "/metrics", timeout=10.0).text

    def request_counts(self) -> dict[str, int]:
        """Successful requests so far, per route the trainer uses."""
        text = self.metrics()
        return {route: _requests(text, route) for route in ("/v1/score", "/v1/tools/execute")}

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(10)

    def __enter__(self) -> RewardServiceProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
