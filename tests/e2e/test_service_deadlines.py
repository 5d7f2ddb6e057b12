"""Deadlines that hold, against a real `mentor-reward serve`: stuck jobs are killed, no process leaks.

Every case starts its own service (2 workers) in its own session, so its processes can be
counted through /proc even after their parent died. The stuck job is deterministic: an item
whose tool call the engine executes (the `tool_results` component) with arguments that make
an operator's tool (`hostile.burn`) compute for minutes in C, or that tool called directly.
The stated answers: such an item, or such a tool call, is that item's `timeout` answer; a
judge bomb is a `timeout` or, once the judge's own guard refuses it, a prompt score; the
worker count returns to the configured 2; SIGTERM ends the service within 10 s with nothing
left; `kill -9` of the API process alone leaves nothing either. Waits poll with deadlines of
tens of seconds, so a busy 2-core machine passes; the 10 s SIGTERM bound is the issue's
target, measured, not slept.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile import JUDGE_BOMB, STUCK, HostileServices, session_processes, stuck_score_body, worker_pids
from service_process import ServiceProcess, free_port, service_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="counts processes through /proc (Linux)"),
]

GOOD = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>\\boxed{5}<|im_end|>'
BOMB = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>' + JUDGE_BOMB + "<|im_end|>"
SIGTERM_LIMIT_S = 10.0


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll `condition` until it holds; return the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.fixture
def hostile_service(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    services = HostileServices(tmp_path)
    yield services.start
    services.close()


def _score(service: ServiceProcess, completion: str) -> dict[str, Any]:
    if completion == STUCK:
        body = stuck_score_body()
    else:
        item = {"completion": completion, "ground_truth": "5", "teacher_tools": ["add"]}
        body = {"preset": "mentor", "items": [item]}
    start = time.monotonic()
    response = httpx.post(service.base_url + "/v1/score", json=body, timeout=300)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["results"][0]
    result["elapsed_s"] = time.monotonic() - start
    return result


def _sigterm_and_time(service: ServiceProcess) -> float:
    assert service.proc is not None
    start = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    service.proc.wait(120)
    return time.monotonic() - start


def test_stuck_items_time_out_their_workers_are_replaced_and_sigterm_is_prompt(
    hostile_service: Callable[..., ServiceProcess],
) -> None:
    service = hostile_service(item_timeout_s="2")
    assert service.proc is not None
    sid = service.proc.pid
    workers_before = worker_pids(sid)
    assert len(workers_before) == 2
    processes_before = len(session_processes(sid))

    results: dict[str, list[dict[str, Any]]] = {STUCK: [], BOMB: []}
    threads = [
        threading.Thread(target=lambda c=completion: results[c].append(_score(service, c)))
        for completion in (STUCK, STUCK, BOMB, BOMB)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert len(results[STUCK]) == len(results[BOMB]) == 2
    for result in results[STUCK]:
        assert result["reward"] is None and result["error"]["type"] == "timeout", result
    for result in results[BOMB]:
        timed_out = result["error"] is not None and result["error"]["type"] == "timeout"
        assert timed_out or result["elapsed_s"] < 60, result

    # Every stuck process was killed and replaced: back to 2 workers, nothing else added.
    _wait_for(
        lambda: len(worker_pids(sid)) == 2 and not set(worker_pids(sid)) & set(workers_before),
        60,
        "both stuck workers replaced and the worker count back to 2",
    )
    _wait_for(lambda: len(session_processes(sid)) == processes_before, 60, "the process count settling")
    assert _score(service, GOOD)["reward"] == pytest.approx(1.1)

    elapsed = _sigterm_and_time(service)
    assert elapsed < SIGTERM_LIMIT_S, f"SIGTERM took {elapsed:.1f} s"
    _wait_for(lambda: not session_processes(sid), 30, "every process of the service ending")


def test_an_uninterruptible_tool_is_killed_at_its_deadline(hostile_service: Callable[..., ServiceProcess]) -> None:
    service = hostile_service(tool_timeout_s="1")
    assert service.proc is not None
    sid = service.proc.pid
    before = set(worker_pids(sid))
    start = time.monotonic()
    response = httpx.post(
        service.base_url + "/v1/tools/execute",
        json={"toolset": "hostile", "name": "burn", "arguments": {"digits": 10**8}},
        timeout=300,
    )
    elapsed = time.monotonic() - start
    body = response.json()
    assert response.status_code == 200 and body["ok"] is False and body["error"]["type"] == "timeout", body
    assert elapsed < 60
    # The killed process can still be listed for a moment after its replacement starts (until it
    # is reaped): wait for both facts together rather than read them one after the other.
    _wait_for(
        lambda: len(worker_pids(sid)) == 2 and len(before - set(worker_pids(sid))) == 1,
        60,
        "exactly the stuck worker replaced and the worker count back to 2",
    )
    quick = httpx.post(
        service.base_url + "/v1/tools/execute",
        json={"toolset": "hostile", "name": "burn", "arguments": {"digits": 10}},
        timeout=60,
    ).json()
    assert quick["ok"] is True and quick["result"] == (99999**10).bit_length()


def test_sigterm_with_jobs_stuck_in_every_worker_ends_within_the_grace(
    hostile_service: Callable[..., ServiceProcess],
) -> None:
    # Items may run for 10 minutes, and the grace is 6 s: the service must not wait for them.
    service = hostile_service(item_timeout_s="600", graceful_shutdown_s="6")
    assert service.proc is not None
    sid = service.proc.pid
    for _ in range(2):
        threading.Thread(target=_post_ignoring_errors, args=(service,), daemon=True).start()
    _wait_for(lambda: _busy_workers(sid) == 2, 60, "both workers running a stuck item")
    elapsed = _sigterm_and_time(service)
    assert elapsed < SIGTERM_LIMIT_S, f"SIGTERM took {elapsed:.1f} s"
    _wait_for(lambda: not session_processes(sid), 30, "every process of the service ending")


def test_kill_9_of_the_api_process_leaves_no_worker_behind(hostile_service: Callable[..., ServiceProcess]) -> None:
    service = hostile_service(item_timeout_s="600")
    assert service.proc is not None
    sid = service.proc.pid
    threading.Thread(target=_post_ignoring_errors, args=(service,), daemon=True).start()
    _wait_for(lambda: _busy_workers(sid) >= 1, 60, "a worker running a stuck item")
    os.kill(service.proc.pid, signal.SIGKILL)  # the API process only, as an OOM killer would
    service.proc.wait(30)
    _wait_for(lambda: not session_processes(sid), 30, "the forkserver, workers and resource tracker ending")


def _post_ignoring_errors(service: ServiceProcess) -> None:
    with contextlib.suppress(httpx.HTTPError, AssertionError):  # the service is being stopped under it
        _score(service, STUCK)


def _busy_workers(sid: int) -> int:
    """Workers using CPU right now (state R), read from /proc."""
    busy = 0
    for pid in worker_pids(sid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] == "R":
            busy += 1
    return busy


def test_with_exit_with_parent_the_service_goes_when_its_parent_is_killed(tmp_path: Path) -> None:
    port = free_port()
    env = service_env(exit_with_parent="true")
    launcher = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-m', 'mentor_server.cli', 'serve', '--port', '{port}'])\n"
        "time.sleep(3600)\n"
    )
    log = (tmp_path / "parent.log").open("wb")
    parent = subprocess.Popen(
        [sys.executable, "-c", launcher], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    sid = parent.pid
    try:
        _wait_for(lambda: _ready(port), 180, "the service started by the launcher answering /readyz")
        assert len(worker_pids_of_any_server(sid)) == 2
        os.kill(parent.pid, signal.SIGKILL)  # an experiment runner killed by its time-out
        parent.wait(30)
        _wait_for(lambda: not session_processes(sid), 60, "the orphaned service and its workers ending")
    finally:
        for pid in session_processes(sid):
            os.kill(pid, signal.SIGKILL)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def worker_pids_of_any_server(sid: int) -> list[int]:
    """The scoring workers in session `sid`, whichever process of it runs the service."""
    processes = session_processes(sid)
    servers = [pid for pid, cmd in processes.items() if "multiprocessing.forkserver" in cmd]
    return [pid for pid in processes if any(_parent(pid) == server for server in servers)]


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat[stat.rindex(")") + 2 :].split()[1])
