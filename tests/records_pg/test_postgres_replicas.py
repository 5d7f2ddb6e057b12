"""Two real service replicas recording into one PostgreSQL table under load: no row lost, none twice.

Four client threads score against both replicas at once (the client spreads chunks over the
two URLs and retries on the other when one stops answering). A third of the way in, replica A
gets SIGTERM, as an orchestrator scaling down would send: it finishes what it accepted,
flushes its records and exits; the clients carry on against B. Then every item sent must be
in the table exactly once, `/v1/records` on B must serve A's rows too (one store for all
replicas), and `mentor-reward records --url` must read the same table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pg_process import count_rows

from mentor_client import RewardClient

E2E = Path(__file__).resolve().parents[1] / "e2e"
sys.path.insert(0, str(E2E))
from service_process import ROOT, ServiceProcess, free_port, service_env  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GOOD = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>\\boxed{5}<|im_end|>'
THREADS = 4
REQUESTS = 12
BATCH = 64


def _items(tag: str) -> list[dict[str, object]]:
    return [{"completion": f"[{tag}-{i}] {GOOD}", "ground_truth": "5", "teacher_tools": ["add"]} for i in range(BATCH)]


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    try:
        for name in ("a", "b"):
            env = service_env(workers="1", record_url=pg_url)
            started.append(ServiceProcess(free_port(), env, tmp_path / f"replica-{name}.log").start(timeout_s=180))
        yield started
    finally:
        for service in started:
            service.stop()


def test_two_replicas_under_load_record_every_item_once(replicas: list[ServiceProcess], pg_url: str) -> None:
    a, b = replicas
    done = 0
    lock = threading.Lock()
    third = threading.Event()
    failures: list[BaseException] = []

    def client_thread(number: int) -> None:
        nonlocal done
        try:
            with RewardClient([a.base_url, b.base_url], timeout=120) as client:
                for request in range(REQUESTS):
                    step = number * 100 + request
                    response = client.score(_items(f"{step}"), preset="mentor", run_id="load", step=step)
                    assert [r.reward is not None for r in response.results] == [True] * BATCH
                    with lock:
                        done += 1
                        if done >= THREADS * REQUESTS // 3:
                            third.set()
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            third.set()

    threads = [threading.Thread(target=client_thread, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    third.wait(300)
    scored_by_a = httpx.get(a.base_url + "/metrics", timeout=30).text
    assert 'mentor_items_scored_total{preset="mentor"}' in scored_by_a  # A took part before it went
    assert a.terminate(120) == 0, a.log()  # SIGTERM mid-load: drains its requests and records, then exits
    for thread in threads:
        thread.join(600)
    assert not failures, failures
    assert done == THREADS * REQUESTS

    expected = Counter(f"[{n * 100 + r}-{i}]" for n in range(THREADS) for r in range(REQUESTS) for i in range(BATCH))
    # B serves the whole table, A's rows included, page by page.
    seen: Counter[str] = Counter()
    with RewardClient(b.base_url, timeout=120) as client:
        offset: int | None = 0
        while offset is not None:
            page = client.records(run_id="load", limit=5000, offset=offset)
            seen.update(record.item["completion"].split(" ", 1)[0] for record in page.records)  # type: ignore[index]
            offset = page.next_offset
    assert b.terminate(120) == 0, b.log()
    assert seen == expected  # every item once: none lost, none recorded twice
    assert count_rows(pg_url) == THREADS * REQUESTS * BATCH

    out = subprocess.run(
        [sys.executable, "-m", "mentor_server.cli", "records", "--url", pg_url, "--step", "101", "--limit", "1000"],
        cwd=ROOT,
        env=service_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sorted(json.loads(line)["item"]["completion"].split(" ", 1)[0] for line in out.splitlines()) == sorted(
        f"[101-{i}]" for i in range(BATCH)
    )
