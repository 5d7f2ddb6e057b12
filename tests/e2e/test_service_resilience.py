"""Reliability against a real process: kill -9 mid-run and restart; SIGTERM flushes the record."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_process import ServiceProcess

from mentor_client import RetryPolicy, RewardClient
from mentor_server.records import query_records
from mentor_server.scoring import ScoringEngine, resolve_spec

pytestmark = pytest.mark.e2e


def _metric(service: ServiceProcess, name: str) -> float:
    try:
        text = httpx.get(service.base_url + "/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if re.match(rf"^{name}(\{{.*\}})? ", line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_kill_9_mid_run_and_restart_every_item_gets_one_reward_in_order(
    start_service: Any, parity_items: list[dict[str, Any]]
) -> None:
    service: ServiceProcess = start_service(workers="1")
    # Rewards vary from item to item, so an answer out of place or given twice would show.
    n = 3000
    items = [parity_items[(i * 7) % len(parity_items)] for i in range(n)]
    expected = [s.reward for s in ScoringEngine(resolve_spec("flexible")).score_dicts(items)]
    outcome: dict[str, Any] = {}

    def run() -> None:
        retry = RetryPolicy(max_retries=60, backoff_base=0.05, backoff_max=0.5)
        with RewardClient(
            service.base_url, chunk_size=40, max_concurrency=2, retry=retry, timeout=30
        ) as client:
            try:
                outcome["response"] = client.score(items, preset="flexible")
            except Exception as exc:  # reported below
                outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while _metric(service, "mentor_items_scored_total") < n * 0.2 and time.monotonic() < deadline:
        time.sleep(0.02)
    scored_before_kill = _metric(service, "mentor_items_scored_total")
    service.kill()
    assert 0 < scored_before_kill < n, "the kill must land mid-run"
    time.sleep(0.5)  # clients see refused connections and keep retrying
    service.start()
    thread.join(120)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    results = outcome["response"].results
    assert len(results) == n
    assert [r.reward for r in results] == expected
    assert all(r.error is None for r in results)
    assert _metric(service, "mentor_items_scored_total") > 0  # the restarted process did part of the work


def test_sigterm_flushes_every_accepted_record(
    start_service: Any, tmp_path: Path, parity_items: list[dict[str, Any]]
) -> None:
    records = tmp_path / "records.sqlite3"
    # A long flush interval: only the shutdown drain can put these rows on disk in time.
    service: ServiceProcess = start_service(
        workers="2", record_backend="sqlite", record_path=str(records), record_flush_interval_s="60"
    )
    items = [parity_items[i % len(parity_items)] for i in range(300)]
    with RewardClient(service.base_url, chunk_size=100, max_concurrency=1) as client:
        answered = client.score(items, preset="mentor", run_id="sigterm", step=1)

        # A batch still being scored when SIGTERM arrives is finished, answered and recorded.
        big = [parity_items[i % len(parity_items)] for i in range(3000)]
        in_flight: dict[str, Any] = {}

        def late() -> None:
            with RewardClient(service.base_url, chunk_size=3000) as late_client:
                in_flight["response"] = late_client.score(big, preset="mentor", run_id="sigterm", step=2)

        thread = threading.Thread(target=late)
        thread.start()
        deadline = time.monotonic() + 20
        while _metric(service, "mentor_scoring_batches_in_flight") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.proc is not None
        service.proc.send_signal(signal.SIGTERM)
        thread.join(60)
        assert service.proc.wait(60) == 0  # a graceful shutdown, finished
    assert len(in_flight["response"].results) == 3000
    step1 = query_records(records, run_id="sigterm", step=1, limit=10_000)
    assert [r["reward"] for r in step1] == [r.reward for r in answered.results]
    step2 = query_records(records, run_id="sigterm", step=2, limit=10_000)
    assert [r["reward"] for r in step2] == [r.reward for r in in_flight["response"].results]
