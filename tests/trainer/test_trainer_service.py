"""The trainer's reward-service launcher: the service (and its scoring workers) dies with its parent."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from trainer_helpers import subprocess_env

pytestmark = [pytest.mark.e2e]

PARENT = """
import sys
from mentor_trainer.service import RewardServiceProcess
service = RewardServiceProcess(workers=1).start()
service.wait_ready()
print(service.proc.pid, flush=True)
sys.stdin.read()  # stay alive until the test kills this process
"""


def _stat(pid: str) -> list[str] | None:
    """State, ppid, pgrp, ... of a process (the fields after its name), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[-1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _alive(pid: int) -> bool:
    fields = _stat(str(pid))
    return fields is not None and fields[0] != "Z"  # a zombie has exited (init may reap it late)


def _group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                found.append(int(entry))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_service_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        env=subprocess_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    service_pid = 0
    try:
        assert parent.stdout is not None
        service_pid = int(parent.stdout.readline())
        assert _alive(service_pid)
        parent.send_signal(signal.SIGKILL)  # no finally, no atexit: only the kernel can tell the child
        parent.wait()
        deadline = time.monotonic() + 120  # a generous bound for a busy machine, not a timing claim
        while _alive(service_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(service_pid)
        # Its scoring workers were in its process group; the group empties once the service shut down.
        while _group_alive(service_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _group_alive(service_pid) == [], "scoring workers outlived the service"
    finally:
        if parent.poll() is None:
            parent.kill()
        if service_pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service_pid, signal.SIGKILL)
