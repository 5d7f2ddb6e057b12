"""A minute of mixed good and hostile traffic against a real `mentor-reward serve`.

Good clients score batches all along; meanwhile judge bombs, items that never finish scoring
(an operator tool the engine executes for minutes), made-up HTTP methods, oversized tool calls
and items holding lone surrogates arrive. Stated answers: no 500 and no failed good
request; every good item is recorded; after the attack the process count is what it was,
memory has not grown without bound, and throughput is back near its level before.

`/healthz` is probed from a process of its own (`healthz_probe.py`, so the timings are not this
process's GIL queue behind its client threads), alternately with an idle service of the same
build: both see the same machine in the same rounds, and the target (p99 < 100 ms) is checked
scaled by the idle service's p99 (100 ms + 5x it): on a quiet machine that is the target itself,
and on a busy shared one the bound grows with what the machine costs any service. Throughput
after the attack is compared with before both as items/s (bound generous: on a shared machine
one 10-second window varies by tens of percent; bench/bench_hostile_recovery.py measures it
over repeated cycles) and as CPU seconds per item of the service's processes, which the
machine's other load moves less.
The measured values are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile import HERE, JUDGE_BOMB, HostileServices, session_processes, stuck_score_body
from service_process import ServiceProcess

from mentor_client import RewardClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GOOD = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>\\boxed{5}<|im_end|>'
ITEM = {"completion": GOOD, "ground_truth": "5", "teacher_tools": ["add"]}
BATCH = 64


def _rss_kib(sid: int) -> int:
    total = 0
    for pid in session_processes(sid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(sid: int) -> float:
    """CPU seconds used so far by the live processes of the session (API process and workers)."""
    total = 0
    for pid in session_processes(sid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICK


def _throughput(service: ServiceProcess, seconds: float, run_id: str) -> tuple[float, int, float]:
    """Items per second one good client gets for `seconds`, how many items it sent, and the
    service's CPU seconds per 1,000 of them (no process dies in the window, so none is lost)."""
    assert service.proc is not None
    sent = 0
    cpu_start = _cpu_s(service.proc.pid)
    with RewardClient(service.base_url, timeout=120) as client:
        start = time.monotonic()
        step = 0
        while time.monotonic() - start < seconds:
            response = client.score([ITEM] * BATCH, preset="mentor", run_id=run_id, step=step)
            assert all(r.reward is not None for r in response.results)
            sent += BATCH
            step += 1
        rate = sent / (time.monotonic() - start)
    return rate, sent, (_cpu_s(service.proc.pid) - cpu_start) * 1000 / sent


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)]


@pytest.fixture
def hostile_service(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    services = HostileServices(tmp_path)
    yield services.start
    services.close()


def test_a_minute_of_mixed_traffic_leaves_the_service_as_it_was(
    hostile_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    service = hostile_service(
        item_timeout_s="2", record_backend="sqlite", record_path=str(tmp_path / "records.sqlite3")
    )
    idle = hostile_service(workers="1")  # the probe's baseline: same build, same machine, no load
    assert service.proc is not None
    sid = service.proc.pid
    _throughput(service, 3, "warm-up")
    processes_before = len(session_processes(sid))
    rss_before = _rss_kib(sid)
    before, sent_before, cpu_before = _throughput(service, 10, "before")

    stop = threading.Event()
    problems: list[str] = []
    counts = {"good": 0}

    def guarded(name: str, body: Any) -> Any:
        def run() -> None:
            try:
                while not stop.is_set():
                    body()
            except BaseException as exc:  # reported by the assertion below
                problems.append(f"{name}: {type(exc).__name__}: {exc}")

        return threading.Thread(target=run, name=name, daemon=True)

    http = httpx.Client(base_url=service.base_url, timeout=120)
    rng = random.Random(5)
    oversized = json.dumps({"name": "add", "arguments": {"a": list(range(500_000)), "b": 1}})

    def expect(response: httpx.Response, *statuses: int) -> None:
        if response.status_code not in statuses:
            problems.append(f"{response.request.method} {response.request.url.path}: {response.status_code}")

    def bomb() -> None:
        expect(http.post("/v1/score", json={"preset": "mentor", "items": [{**ITEM, "completion": JUDGE_BOMB}]}), 200)

    def stuck() -> None:
        expect(http.post("/v1/score", json=stuck_score_body()), 200)

    def made_up_methods() -> None:
        method = "".join(rng.choices(string.ascii_uppercase, k=10))
        # 400 where uvicorn parses HTTP with httptools, which refuses unknown methods itself.
        expect(http.request(method, "/v1/" + "".join(rng.choices(string.ascii_lowercase, k=12))), 400, 404, 405)
        time.sleep(0.01)

    def oversized_tool_call() -> None:
        headers = {"content-type": "application/json"}
        expect(http.post("/v1/tools/execute", content=oversized, headers=headers), 413)
        time.sleep(0.05)

    def surrogates() -> None:
        body = json.dumps({"preset": "mentor", "items": [{**ITEM, "completion": GOOD + "\ud800"}] * 8, "run_id": "odd"})
        expect(http.post("/v1/score", content=body, headers={"content-type": "application/json"}), 200)
        time.sleep(0.1)

    def good() -> None:
        with RewardClient(service.base_url, timeout=120) as client:
            step = 0
            while not stop.is_set():
                client.score([ITEM] * BATCH, preset="mentor", run_id="during", step=step)
                counts["good"] += BATCH
                step += 1

    threads = [
        guarded("bomb", bomb),
        guarded("stuck", stuck),
        guarded("methods", made_up_methods),
        guarded("oversized", oversized_tool_call),
        guarded("surrogates", surrogates),
        guarded("good", good),
    ]
    for thread in threads:
        thread.start()
    probed = [service.base_url + "/healthz", idle.base_url + "/healthz"]
    probe = subprocess.Popen(
        [sys.executable, str(HERE / "healthz_probe.py"), "57", *probed], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1)  # the probe's interpreter starts while the attack ramps up
        # The probe ends itself after its 57 s; the time-out here only catches a hang.
        output, _ = probe.communicate(timeout=600)
    finally:
        probe.kill()
        probe.wait()
    stop.set()
    for thread in threads:
        thread.join(180)
    http.close()

    after, sent_after, cpu_after = _throughput(service, 10, "after")
    deadline = time.monotonic() + 60
    while len(session_processes(sid)) != processes_before and time.monotonic() < deadline:
        time.sleep(0.2)
    processes_after = len(session_processes(sid))
    rss_after = _rss_kib(sid)
    attacked, baseline = (json.loads(output)[url] for url in probed)
    p99, p99_idle = _p99([t for t in attacked if t is not None]), _p99([t for t in baseline if t is not None])
    print(
        f"\nsoak: throughput before {before:.0f} items/s, after {after:.0f} items/s ({after / before:.0%});"
        f" service CPU per 1k items {cpu_before:.3f} s -> {cpu_after:.3f} s ({cpu_after / cpu_before:.0%});"
        f" /healthz p99 {p99 * 1000:.0f} ms (idle service in the same rounds: {p99_idle * 1000:.0f} ms)"
        f" over {len(attacked)} probes; processes {processes_before} -> {processes_after};"
        f" RSS {rss_before // 1024} -> {rss_after // 1024} MiB; good items during the attack {counts['good']}"
    )
    assert not problems, problems[:10]
    assert None not in attacked, "a /healthz probe failed during the attack"
    assert processes_after == processes_before
    assert after >= 0.5 * before
    assert cpu_after <= 1.5 * cpu_before
    # The target, p99 < 100 ms, scaled by what this machine costs an idle service in the same
    # rounds: on a quiet machine (idle p99 a few ms) this is the target itself; on a shared,
    # overloaded one every wait for a CPU is longer, for both services alike.
    assert p99 < 0.1 + 5 * p99_idle, (p99, p99_idle)
    assert p99 < 2.0
    assert rss_after < 1.5 * rss_before + 200 * 1024
    with RewardClient(service.base_url, timeout=120) as client:
        for run_id, sent in (("before", sent_before), ("during", counts["good"]), ("after", sent_after)):
            recorded = 0
            step = 0
            while recorded < sent:
                page = client.records(run_id=run_id, step=step, limit=BATCH).records
                assert len(page) == BATCH, (run_id, step, len(page))
                recorded += len(page)
                step += 1
            assert recorded == sent
