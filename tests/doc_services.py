"""A `mentor-reward serve` line from the docs, run as written on a free port, for the docs' tests.

The line runs under bash exactly as a reader pastes it (its own `VAR=value` prefixes included),
with two changes only: `.venv/bin/` becomes this interpreter's folder, and the port becomes a
free one (`--port 8000` replaced, or `--port N` added), since another service may hold 8000.
The test's own environment drops every `MENTOR_*` variable and asks for one scoring worker (the
machine is shared); what a test passes in `env` is added. The process runs in its own session
and the whole session is killed when the block ends, so no service outlives its test; the wait
for `/readyz` is generous because a busy machine is slow, and the process's death ends it early.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from doc_blocks import venv_paths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def on_port(command: str, port: int) -> str:
    """`command` with its `--port`/`localhost:8000`/`127.0.0.1:8000` pointing at `port`."""
    command = re.sub(r"(?<=localhost:)8000\b|(?<=127\.0\.0\.1:)8000\b", str(port), command)
    if " serve" in command:
        command, count = re.subn(r"--port 8000\b", f"--port {port}", command)
        if not count:
            command = f"{command} --port {port}"
    return command


def run_documented(command: str, cwd: Path, port: int = 8000, **env: str) -> subprocess.CompletedProcess[str]:
    """One documented (non-serving) shell command, as written, against the service on `port`."""
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", on_port(venv_paths(command), port)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@contextlib.contextmanager
def documented_service(line: str, cwd: Path, log: Path, **env: str) -> Iterator[tuple[str, int]]:
    """Serve `line` (a documented `mentor-reward serve` command) until the block ends: (url, port)."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MENTOR_")}
    environment.update(MENTOR_WORKERS="1", **env)
    with log.open("ab") as out:
        process = subprocess.Popen(
            ["bash", "-c", on_port(venv_paths(line), port)],
            cwd=cwd,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, f"`{line}` exited:\n{log.read_text(errors='replace')[-3000:]}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"`{line}` was not ready within 300 s"
            time.sleep(0.3)
        yield url, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a scoring worker left behind by the SIGTERM
