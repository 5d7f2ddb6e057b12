"""A real one-node Ray cluster and `mentor-reward serve --ray` on it, for tests and the benchmark.

`RayHead` runs `ray start --head --block` in its own session with a private temp folder, every
port it opens chosen free (so it never meets another Ray on this machine), small resources and
no dashboard. `--block` makes Ray tie its processes to that command (kernel fate sharing), and
`setpriv --pdeathsig KILL` ties the command to the process that started it; `close()` stops it
with SIGTERM and then kills whatever is left in its session, and nothing else.
`ServeOnRay` is the documented command, `mentor-reward serve --ray`, run against that cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from service_process import free_port, session_processes  # noqa: E402

REPLICA_TITLE = "ServeReplica:mentor-reward:MentorReward"


def _kill_session(proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """SIGTERM the session's leader, wait, then SIGKILL what is left of its session."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout_s)
    for pid in session_processes(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MENTOR_", "RAY_"))}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # A busy machine can take more than the default 30 s to start the node's Python agents.
    env["RAY_agent_register_timeout_ms"] = "300000"
    env["RAY_raylet_start_wait_time_s"] = "300"
    # Serve's controller kills a proxy that does not answer its ready check within 5 s, which a
    # saturated machine can miss while the proxy imports; these are Serve's own knobs for that.
    env["RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S"] = "120"
    env["RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S"] = "60"
    paths = [str(ROOT / d) for d in ("server", "client", "trainer")]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


class _RayletGaveUp(RuntimeError):
    """Ray 2.x's raylet waits a fixed ~15 s for its Python agents' port files, then aborts."""


class RayHead:
    """`ray start --head` on this machine, private to the test that started it."""

    def __init__(self, num_cpus: int = 2) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mray-"))  # short: Ray's socket paths have a length limit
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.num_cpus = num_cpus
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 240.0, attempts: int = 3) -> RayHead:
        """Start the head; again (up to `attempts`) when its raylet gives up waiting for the node's
        Python agents, which a saturated machine can start later than Ray's fixed wait allows."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout_s)
            except BaseException as exc:
                if attempt == attempts or not isinstance(exc, _RayletGaveUp):
                    _kill_session(self.proc, 60)  # nothing of a failed start outlives it
                    raise
                _kill_session(self.proc, 60)
                shutil.rmtree(self.root, ignore_errors=True)  # a fresh session folder for the next try
                self.root.mkdir()
        raise AssertionError("unreachable")

    def _announce_agent_port(self, port: int) -> None:
        """Write the dashboard agent's port file for the raylet, with the port `ray start` was given.

        Ray 2.x's raylet does not get that port on its command line: it waits a fixed ~15 s for
        the agent to write it, and aborts the node when the agent (a heavy Python import) is
        slower, which it is on a saturated 2-core machine. The agent writes the same port
        again once it listens; nothing here serves the dashboard.
        """
        assert self.proc is not None
        for pid, cmd in session_processes(self.proc.pid).items():
            if "/raylet " not in cmd + " " or "--node_id=" not in cmd:
                continue
            args = dict(part.split("=", 1) for part in cmd.split() if part.startswith("--") and "=" in part)
            session, node_id = args.get("--session_dir"), args.get("--node_id")
            if not session or not node_id:
                continue
            target = Path(session) / f"dashboard_agent_listen_port_{node_id}"
            if not target.exists():
                partial = target.with_name(target.name + f".{pid}.tmp")
                partial.write_text(str(port))
                partial.replace(target)

    def _raylet_gave_up(self) -> bool:
        raylet_err = self.root / "session_latest" / "logs" / "raylet.err"
        with contextlib.suppress(OSError):
            return "Timed out waiting for file" in raylet_err.read_text(errors="replace")
        return False

    def _start_once(self, timeout_s: float) -> RayHead:
        ray = Path(sys.executable).with_name("ray")
        ports = {
            "--node-manager-port": free_port(),
            "--object-manager-port": free_port(),
            "--ray-client-server-port": free_port(),
            "--dashboard-agent-listen-port": free_port(),
            "--dashboard-agent-grpc-port": free_port(),
            "--metrics-export-port": free_port(),
            "--runtime-env-agent-port": free_port(),
        }
        argv = [
            "setpriv",
            "--pdeathsig",
            "KILL",
            str(ray),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={self.port}",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            "--object-store-memory=100000000",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self.root}",
            *(f"{flag}={port}" for flag, port in ports.items()),
        ]
        log = (self.root / "ray-start.log").open("ab")
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=_environment(), cwd=ROOT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while "Ray runtime started" not in self.log() and "will now block" not in self.log():
            self._announce_agent_port(ports["--dashboard-agent-listen-port"])
            if self._raylet_gave_up():
                raise _RayletGaveUp(f"the raylet gave up waiting for the node's agents:\n{self.log()}")
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"Ray did not start within {timeout_s} s:\n{self.log()}")
            time.sleep(0.5)
        return self

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "ray-start.log").read_text(errors="replace")[-5000:]
        return ""

    def replicas(self) -> dict[int, str]:
        """The live Serve replica processes of the reward service."""
        if self.proc is None:
            return {}
        return {pid: cmd for pid, cmd in session_processes(self.proc.pid).items() if REPLICA_TITLE in cmd}

    def close(self) -> None:
        _kill_session(self.proc, 60)
        shutil.rmtree(self.root, ignore_errors=True)


class ServeOnRay:
    """`mentor-reward serve --ray` against a `RayHead`, serving on a free port."""

    def __init__(self, head: RayHead, log_path: Path, *args: str, **settings: str) -> None:
        self.head = head
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.args = args
        self.env = _environment() | {f"MENTOR_{k.upper()}": v for k, v in settings.items()}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, replicas: int, timeout_s: float = 300.0) -> ServeOnRay:
        argv = [sys.executable, "-m", "mentor_server.cli", "serve", "--ray", "--address", self.head.address]
        argv += ["--port", str(self.port), *self.args]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT, start_new_session=True
        )
        log.close()
        self.wait_for(replicas, timeout_s)
        return self

    def wait_for(self, replicas: int, timeout_s: float) -> None:
        """Until the application is RUNNING (the command says so once `serve.run` returns), the
        proxy answers /readyz, and exactly `replicas` replica processes run."""
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve --ray exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(self.base_url + "/readyz", timeout=5).status_code == 200
                running = "reward service on Ray Serve" in self.log_path.read_text(errors="replace")
                if running and ready and len(self.head.replicas()) == replicas:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{replicas} replicas were not ready within {timeout_s} s:\n{self.log()}")
            time.sleep(0.5)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-5000:]
        return ""

    def stop(self) -> None:
        _kill_session(self.proc, 120)
