"""A minute of mixed good and hostile traffic against a real `mentor-reward serve`.

Good clients score batches all along; meanwhile judge bombs, items that never finish scoring
(an operator tool the engine executes for minutes), made-up HTTP methods, oversized tool calls
and items holding lone surrogates arrive. Stated answers: no 500 and no failed good
request; every good item is recorded; after the attack the process count is what it was,
memory has not grown without bound, and throughput is back near its level before.

The bounds are generous (a busy, shared 2-core machine must pass: throughput after >= half of
before, /healthz p99 under 2 s, RSS under 1.5x + 200 MB); the measured values are printed
(`pytest -s`) for the issue's targets (throughput within 10%, /healthz p99 < 100 ms).
"""

from __future__ import annotations

import json
import random
import string
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile import JUDGE_BOMB, HostileServices, session_processes, stuck_score_body
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


def _throughput(service: ServiceProcess, seconds: float, run_id: str) -> tuple[float, int]:
    """Items per second one good client gets for `seconds`, and how many items it sent."""
    sent = 0
    with RewardClient(service.base_url, timeout=120) as client:
        start = time.monotonic()
        step = 0
        while time.monotonic() - start < seconds:
            response = client.score([ITEM] * BATCH, preset="mentor", run_id=run_id, step=step)
            assert all(r.reward is not None for r in response.results)
            sent += BATCH
            step += 1
        return sent / (time.monotonic() - start), sent


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
    assert service.proc is not None
    sid = service.proc.pid
    _throughput(service, 3, "warm-up")
    processes_before = len(session_processes(sid))
    rss_before = _rss_kib(sid)
    before, sent_before = _throughput(service, 10, "before")

    stop = threading.Event()
    problems: list[str] = []
    latencies: list[float] = []
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
        expect(http.request(method, "/v1/" + "".join(rng.choices(string.ascii_lowercase, k=12))), 404, 405)
        time.sleep(0.01)

    def oversized_tool_call() -> None:
        headers = {"content-type": "application/json"}
        expect(http.post("/v1/tools/execute", content=oversized, headers=headers), 413)
        time.sleep(0.05)

    def surrogates() -> None:
        body = json.dumps({"preset": "mentor", "items": [{**ITEM, "completion": GOOD + "\ud800"}] * 8, "run_id": "odd"})
        expect(http.post("/v1/score", content=body, headers={"content-type": "application/json"}), 200)
        time.sleep(0.1)

    def probe() -> None:
        start = time.perf_counter()
        expect(http.get("/healthz"), 200)
        latencies.append(time.perf_counter() - start)
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
        guarded("probe", probe),
        guarded("good", good),
    ]
    for thread in threads:
        thread.start()
    time.sleep(60)
    stop.set()
    for thread in threads:
        thread.join(180)
    http.close()

    after, sent_after = _throughput(service, 10, "after")
    deadline = time.monotonic() + 60
    while len(session_processes(sid)) != processes_before and time.monotonic() < deadline:
        time.sleep(0.2)
    processes_after = len(session_processes(sid))
    rss_after = _rss_kib(sid)
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    print(
        f"\nsoak: throughput before {before:.0f} items/s, after {after:.0f} items/s ({after / before:.0%});"
        f" /healthz p99 {p99 * 1000:.0f} ms over {len(latencies)} probes;"
        f" processes {processes_before} -> {processes_after}; RSS {rss_before // 1024} -> {rss_after // 1024} MiB;"
        f" good items during the attack {counts['good']}"
    )
    assert not problems, problems[:10]
    assert processes_after == processes_before
    assert after >= 0.5 * before
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
