"""Hostile traffic against a real `mentor-reward serve`: bounded state, no lost record, a free event loop.

Stated answers: thousands of requests with made-up methods and paths (no key) leave
`/metrics` small; a lone surrogate in one client's items costs no other client's record; a
corrupt record file is moved aside while the service starts and scores; a non-ASCII API key
works from the Python client; an oversized tool call is refused at once; `/healthz` keeps
answering while items that never finish scoring occupy every worker (the bound here is
generous; the measured latency is printed with `pytest -s`).
"""

from __future__ import annotations

import json
import random
import statistics
import string
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile import HostileServices, stuck_score_body
from service_process import ServiceProcess

from mentor_client import RewardClient

pytestmark = pytest.mark.e2e

GOOD = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>\\boxed{5}<|im_end|>'


def _item(completion: str = GOOD) -> dict[str, Any]:
    return {"completion": completion, "ground_truth": "5", "teacher_tools": ["add"]}


def test_made_up_methods_and_paths_do_not_grow_the_metrics(start_service: Any) -> None:
    service: ServiceProcess = start_service(api_keys="k")
    rng = random.Random(11)
    statuses = set()
    with httpx.Client(base_url=service.base_url, timeout=60) as http:
        for _ in range(2000):
            method = "".join(rng.choices(string.ascii_uppercase, k=10))
            statuses.add(http.request(method, "/" + "".join(rng.choices(string.ascii_lowercase, k=30))).status_code)
        text = http.get("/metrics", headers={"Authorization": "Bearer k"}).text
    assert len(text.encode()) < 50_000, len(text.encode())
    # uvicorn's httptools parser refuses unknown methods itself (400, never reaching the app);
    # with h11 they reach the app, are refused there (401, no key) and counted under one label.
    assert statuses in ({400}, {401}), statuses
    assert statuses == {400} or 'method="other"' in text


def test_a_surrogate_in_one_clients_items_costs_no_other_clients_record(start_service: Any, tmp_path: Path) -> None:
    records = tmp_path / "records.sqlite3"
    service: ServiceProcess = start_service(record_backend="sqlite", record_path=str(records))
    errors: list[BaseException] = []

    def send(run_id: str, completion: str, n: int) -> None:
        try:
            for step in range(n):
                body = {"preset": "mentor", "items": [_item(completion)] * 5, "run_id": run_id, "step": step}
                content = json.dumps(body)  # the surrogate travels as a JSON escape
                response = httpx.post(
                    service.base_url + "/v1/score",
                    content=content,
                    headers={"content-type": "application/json"},
                    timeout=120,
                )
                assert response.status_code == 200, response.text
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(f"clean-{k}", GOOD, 20)) for k in range(3)]
    threads.append(threading.Thread(target=send, args=("odd", GOOD + "\ud800", 20)))
    threads.append(threading.Thread(target=send, args=("odd-\udfff", GOOD, 5)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    with RewardClient(service.base_url, timeout=60) as client:
        for k in range(3):
            assert len(client.records(run_id=f"clean-{k}", limit=1000).records) == 100
        assert len(client.records(run_id="odd", limit=1000).records) == 100
    health = httpx.get(service.base_url + "/healthz", timeout=30).json()
    assert health["recording"]["status"] == "ok", health


def test_a_corrupt_record_file_is_moved_aside_and_the_service_scores(start_service: Any, tmp_path: Path) -> None:
    records = tmp_path / "records.sqlite3"
    records.write_bytes(b"\x00garbage, not SQLite" * 1000)
    service: ServiceProcess = start_service(record_backend="sqlite", record_path=str(records))
    health = httpx.get(service.base_url + "/healthz", timeout=30).json()
    assert health["recording"]["status"] == "degraded" and "moved" in health["recording"]["message"]
    with RewardClient(service.base_url, timeout=60) as client:
        response = client.score([_item()], preset="mentor", run_id="after")
        assert response.results[0].reward == pytest.approx(1.1)
        assert len(client.records(run_id="after").records) == 1
    assert len(list(tmp_path.glob("records.sqlite3.corrupt-*"))) == 1


def test_a_non_ascii_api_key_works_from_the_client(start_service: Any) -> None:
    key = "clé-ünïcode-密钥"
    service: ServiceProcess = start_service(api_keys=key)
    with RewardClient(service.base_url, api_key=key, timeout=60) as client:
        assert client.score([_item()], preset="mentor").results[0].reward == pytest.approx(1.1)
    refused = httpx.get(service.base_url + "/v1/presets", headers={"Authorization": b"Bearer cl\xc3\xa9"}, timeout=30)
    assert refused.status_code == 401


def test_healthz_answers_while_stuck_items_and_huge_tool_calls_arrive(tmp_path: Path) -> None:
    services = HostileServices(tmp_path)
    try:
        _healthz_under_attack(services.start(item_timeout_s="3"))
    finally:
        services.close()


def _healthz_under_attack(service: ServiceProcess) -> None:
    stop = threading.Event()

    def stuck_items() -> None:
        while not stop.is_set():
            httpx.post(service.base_url + "/v1/score", json=stuck_score_body(), timeout=120)

    def huge_tool_calls() -> None:
        body = json.dumps({"name": "add", "arguments": {"a": list(range(1_000_000)), "b": 1}})
        while not stop.is_set():
            response = httpx.post(
                service.base_url + "/v1/tools/execute",
                content=body,
                headers={"content-type": "application/json"},
                timeout=120,
            )
            assert response.status_code == 413

    attackers = [threading.Thread(target=stuck_items, daemon=True) for _ in range(3)]
    attackers.append(threading.Thread(target=huge_tool_calls, daemon=True))
    for thread in attackers:
        thread.start()
    latencies = []
    try:
        with httpx.Client(base_url=service.base_url, timeout=60) as http:
            end = time.monotonic() + 15
            while time.monotonic() < end:
                start = time.perf_counter()
                assert http.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - start)
                time.sleep(0.05)
    finally:
        stop.set()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    median = statistics.median(latencies)
    print(f"/healthz under attack: n={len(latencies)} median={median * 1000:.1f} ms p99={p99 * 1000:.1f} ms")
    assert p99 < 2.0  # generous for a busy 2-core machine; the target is 0.1 s
