"""Throughput of the service on Ray Serve (1 and 2 replicas) against the single-process service.

All configurations run in one invocation, one after another on the same machine, with the
same load: `--clients` threads, each scoring `--batch`-item batches (the public parity cases)
back to back for `--duration` seconds, after a warm-up. Reported: items/s per configuration
and ratios to the single process with one scoring worker, so that the figures compare within
one run whatever else the machine is doing. Configurations:

- `single w1` / `single w2`: `mentor-reward serve --workers 1` / `--workers 2`;
- `serve r1 w1`: `mentor-reward serve --ray --replicas 1 --workers 1` on a local `ray start --head`;
- `serve r2 w1`: the same with `--replicas 2` (the issue's target: >= 1.6x `serve r1 w1`).

    python bench/bench_ray_serve.py                  # writes the "Issue 14" section of bench/RESULTS.md
    python bench/bench_ray_serve.py --duration 10 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _src in ("server", "client", "trainer"):
    sys.path.insert(0, str(ROOT / _src))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "ray"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from _results import write_section  # noqa: E402
from ray_cluster import RayHead, ServeOnRay  # noqa: E402
from service_process import ServiceProcess, free_port, service_env  # noqa: E402

from mentor_client import RewardClient  # noqa: E402

PARITY = ROOT / "tests" / "data" / "mentor_seed_public.jsonl"


def load_items(n: int) -> list[dict[str, Any]]:
    cases = [json.loads(line) for line in PARITY.read_text().splitlines() if line.strip()]
    base = [
        {"completion": c["completion"], "ground_truth": c["ground_truth"], "teacher_tools": c["teacher_tools"]}
        for c in cases
    ]
    return [base[i % len(base)] for i in range(n)]


def measure(base_url: str, clients: int, batch: int, duration_s: float, warmup_s: float) -> float:
    """Items per second over `duration_s`, `clients` threads scoring back to back."""
    items = load_items(batch)
    counted = 0
    lock = threading.Lock()
    start_at = time.monotonic() + warmup_s
    stop_at = start_at + duration_s
    errors: list[BaseException] = []

    def run() -> None:
        nonlocal counted
        try:
            with RewardClient(base_url, timeout=300) as client:
                while time.monotonic() < stop_at:
                    began = time.monotonic()
                    response = client.score(items, preset="mentor")
                    assert len(response.results) == batch
                    # Only requests wholly inside the window count (no partial credit at its ends).
                    if began >= start_at and time.monotonic() <= stop_at:
                        with lock:
                            counted += batch
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return counted / duration_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per configuration")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    measure_args = (args.clients, args.batch, args.duration, args.warmup)
    results: dict[str, float] = {}
    logs = Path(tempfile.mkdtemp(prefix="bench-ray-"))

    for workers in (1, 2):
        service = ServiceProcess(free_port(), service_env(workers=str(workers)), logs / f"single-{workers}.log")
        try:
            service.start(timeout_s=180)
            results[f"single w{workers}"] = measure(service.base_url, *measure_args)
        finally:
            service.stop()
        print(f"single w{workers}: {results[f'single w{workers}']:.0f} items/s", flush=True)

    head = RayHead(num_cpus=os.cpu_count() or 2)
    try:
        head.start()
        for replicas in (1, 2):
            serve = ServeOnRay(head, logs / f"serve-{replicas}.log", "--replicas", str(replicas), "--workers", "1")
            try:
                serve.start(replicas=replicas)
                results[f"serve r{replicas} w1"] = measure(serve.base_url, *measure_args)
            finally:
                serve.stop()
            print(f"serve r{replicas} w1: {results[f'serve r{replicas} w1']:.0f} items/s", flush=True)
    finally:
        head.close()

    base = results["single w1"]
    rows = [f"| {name} | {rate:,.0f} | {rate / base:.2f}x |" for name, rate in results.items()]
    scale = results["serve r2 w1"] / results["serve r1 w1"]
    load = os.getloadavg()
    body = "\n".join(
        [
            f"Load: {args.clients} client threads, {args.batch}-item `mentor` batches, {args.duration:.0f} s measured"
            f" per configuration after {args.warmup:.0f} s warm-up; load average at the end {load[0]:.1f}.",
            "",
            "| configuration | items/s | vs single w1 |",
            "| --- | ---: | ---: |",
            *rows,
            "",
            f"Two Serve replicas vs one: **{scale:.2f}x** (target >= 1.6x).",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("issue14-ray-serve", "Issue 14: throughput on Ray Serve, 1 and 2 replicas vs one process", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
