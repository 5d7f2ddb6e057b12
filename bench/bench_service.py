"""Benchmark the reward service: HTTP overhead on a GRPO-sized batch, and 8 trainer ranks under load.

1. Overhead: a 1024-item batch (the public parity cases, replicated) scored through
   `mentor_client.RewardClient` over loopback against a real `mentor-reward serve` process,
   versus the in-process `ScoringEngine` on the same batch in the same run. Both are warmed
   up first; runs alternate; the figure is the median of the per-run ratios (target <= 1.5x).
2. Load: N client processes (default 8, as 8 trainer ranks) each score batches of
   `--rank-batch` items back to back for `--duration` seconds (default 60) against one
   service, while this process probes `/healthz` every 50 ms on a fresh connection. Reports
   throughput (items/s), p50/p99 request latency, failed requests (must be 0), and the
   slowest health answer (target < 100 ms).

    python bench/bench_service.py                 # full run, writes bench/RESULTS.md
    python bench/bench_service.py --duration 10   # shorter load phase
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _src in ("server", "client", "trainer"):
    if str(ROOT / _src) not in sys.path:
        sys.path.insert(0, str(ROOT / _src))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from _results import write_section  # noqa: E402

from mentor_client import RewardClient  # noqa: E402
from mentor_server.scoring import ScoringEngine, resolve_spec  # noqa: E402

PARITY = ROOT / "tests" / "data" / "mentor_seed_public.jsonl"


def load_items(n: int) -> list[dict[str, Any]]:
    cases = [json.loads(line) for line in PARITY.read_text().splitlines() if line.strip()]
    base = [
        {
            "completion": c["completion"],
            "ground_truth": c["ground_truth"],
            "teacher_tools": c["teacher_tools"],
        }
        for c in cases
    ]
    return [base[i % len(base)] for i in range(n)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    def __init__(self, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MENTOR_")}
        env["PYTHONPATH"] = os.pathsep.join(str(ROOT / s) for s in ("server", "client", "trainer"))
        env["MENTOR_LOG_LEVEL"] = "warning"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mentor_server.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("the service exited during start-up")
            time.sleep(0.1)
        raise TimeoutError("the service did not become ready")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# ---------------------------------------------------------------------------- 1. overhead
def overhead(url: str, items: list[dict[str, Any]], preset: str, runs: int) -> dict[str, Any]:
    engine = ScoringEngine(resolve_spec(preset))
    engine.score_dicts(items)  # warm: the judge's caches, as in a long training run
    engine_times, service_times, ratios = [], [], []
    with RewardClient(url, timeout=120) as client:
        reference = [s.reward for s in engine.score_dicts(items)]
        assert [r.reward for r in client.score(items, preset=preset).results] == reference
        for _ in range(runs):
            start = time.perf_counter()
            engine.score_dicts(items)
            engine_s = time.perf_counter() - start
            start = time.perf_counter()
            response = client.score(items, preset=preset)
            service_s = time.perf_counter() - start
            assert len(response.results) == len(items)
            engine_times.append(engine_s)
            service_times.append(service_s)
            ratios.append(service_s / engine_s)
    return {
        "engine_s": statistics.median(engine_times),
        "service_s": statistics.median(service_times),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
    }


# ---------------------------------------------------------------------------- 2. load
def _rank(
    url: str, items: list[dict[str, Any]], preset: str, duration_s: float, start_at: float, out: Any
) -> None:
    latencies: list[float] = []
    failures = 0
    scored = 0
    with RewardClient(url, timeout=120) as client:
        client.score(items[:4], preset=preset)  # connect before the clock starts
        while time.time() < start_at:
            time.sleep(0.005)
        end = start_at + duration_s
        step = 0
        while time.time() < end:
            started = time.perf_counter()
            try:
                response = client.score(items, preset=preset, run_id="bench", step=step)
                if len(response.results) != len(items) or any(r.error for r in response.results):
                    failures += 1
                else:
                    scored += len(items)
            except Exception:
                failures += 1
            latencies.append(time.perf_counter() - started)
            step += 1
    out.put({"latencies": latencies, "failures": failures, "scored": scored})


def load(
    url: str, items: list[dict[str, Any]], preset: str, clients: int, duration_s: float
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 5.0  # every rank starts (imports, connects) before the clock
    ranks = [
        context.Process(target=_rank, args=(url, items, preset, duration_s, start_at, queue))
        for _ in range(clients)
    ]
    for rank in ranks:
        rank.start()
    health: list[float] = []
    health_failures = 0
    while time.time() < start_at:
        time.sleep(0.01)
    end = start_at + duration_s
    # One client, no keep-alive: every probe opens a fresh connection, as an orchestrator's does,
    # without paying for a new httpx client (its TLS context) per probe on the measuring side.
    with httpx.Client(timeout=5, limits=httpx.Limits(max_keepalive_connections=0)) as prober:
        while time.time() < end:
            started = time.perf_counter()
            try:
                ok = prober.get(url + "/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            health.append(time.perf_counter() - started)
            health_failures += not ok
            time.sleep(0.05)
    reports = [queue.get(timeout=duration_s + 120) for _ in ranks]
    for rank in ranks:
        rank.join()
    latencies = sorted(x for r in reports for x in r["latencies"])
    return {
        "items_per_s": sum(r["scored"] for r in reports) / duration_s,
        "requests": len(latencies),
        "failures": sum(r["failures"] for r in reports),
        "p50_s": latencies[len(latencies) // 2],
        "p99_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "health_max_s": max(health),
        "health_p99_s": sorted(health)[min(len(health) - 1, int(len(health) * 0.99))],
        "health_probes": len(health),
        "health_failures": health_failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=1024, help="items in the overhead batch")
    parser.add_argument("--runs", type=int, default=11, help="overhead runs (median)")
    parser.add_argument("--preset", default="mentor")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="service scoring processes")
    parser.add_argument("--clients", type=int, default=8, help="client processes in the load phase")
    parser.add_argument("--rank-batch", type=int, default=64, help="items per request in the load phase")
    parser.add_argument("--duration", type=float, default=60.0, help="load phase seconds")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    service = Service(args.workers)
    try:
        first = overhead(service.url, load_items(args.batch), args.preset, args.runs)
        runs = ", ".join(f"{r:.2f}" for r in first["ratios"])
        print(
            f"overhead: engine {ms(first['engine_s'])}, service {ms(first['service_s'])}, "
            f"ratio {first['ratio']:.2f}x (runs: {runs})"
        )
        second = load(service.url, load_items(args.rank_batch), args.preset, args.clients, args.duration)
        print(
            f"load: {second['items_per_s']:.0f} items/s, {second['requests']} requests, "
            f"{second['failures']} failed, p50 {ms(second['p50_s'])}, p99 {ms(second['p99_s'])}, "
            f"/healthz max {ms(second['health_max_s'], 1)} over {second['health_probes']} probes"
        )
    finally:
        service.stop()
    load_after = os.getloadavg()[0]

    rows = [
        (f"{args.batch}-item batch, in-process engine (median of {args.runs})", ms(first["engine_s"]), ""),
        ("same batch through the client over loopback", ms(first["service_s"]), ""),
        (
            f"ratio service / engine (median of per-run ratios: {runs})",
            f"**{first['ratio']:.2f}x**",
            "<= 1.5x",
        ),
        (
            f"{args.clients} client processes x {args.duration:g} s, {args.rank_batch} items a request: "
            "throughput",
            f"{second['items_per_s']:.0f} items/s",
            "",
        ),
        ("requests (failed)", f"{second['requests']} ({second['failures']})", "0 failed"),
        ("request latency p50 / p99", f"{ms(second['p50_s'])} / {ms(second['p99_s'])}", ""),
        (
            f"`/healthz` latency max (p99) over {second['health_probes']} probes, a fresh connection each",
            f"**{ms(second['health_max_s'], 1)}** ({ms(second['health_p99_s'], 1)}), "
            f"{second['health_failures']} failed",
            "< 100 ms",
        ),
    ]
    body = (
        f"Preset `{args.preset}`; the service with {args.workers} scoring processes; client defaults "
        f"(chunks of 256 items, 4 in flight). Clients, service and prober share the machine's cores; "
        f"its 1-minute load average was {load_before:.1f} before and {load_after:.1f} after (other work "
        f"on the machine makes the figures noisier).\n\n| measure | value | target |\n|---|---|---|\n"
        + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    )
    if not args.no_write:
        write_section("service", "Reward service: HTTP overhead and 8 ranks under load", body)
    ok = first["ratio"] <= 1.5 and second["failures"] == 0 and second["health_max_s"] < 0.1
    return 0 if ok else 1


def ms(seconds: float, digits: int = 0) -> str:
    return f"{seconds * 1000:.{digits}f} ms"


if __name__ == "__main__":
    raise SystemExit(main())
