"""Throughput of the reward service before and after hostile requests, and where the CPU goes.

One real `mentor-reward serve` (2 workers, `item_timeout_s` 2, the `hostile` toolset of the
end-to-end tests). Each cycle measures one good client's throughput (batches of 64 items, as
the soak test) for `--seconds`, then runs a phase, then measures again:

- `attack`: judge bombs and items that never finish scoring, enough to occupy and get killed
  every worker (`--attackers` concurrent requests, twice), so the "after" measurement runs on
  replacement processes;
- `idle`: the same wall time doing nothing (the control: how much two back-to-back
  measurements differ on this machine without any attack).

Cycles alternate attack / idle, so both see the same machine; the figure to read is the median
over cycles of after / before for each phase. Beside throughput it reports the CPU seconds per
1,000 good items of the API process and of the workers in each measurement (from /proc), which
says whether a slower "after" comes from colder workers or from the API process.

    python bench/bench_hostile_recovery.py                  # 5 cycles of each, writes bench/RESULTS.md
    python bench/bench_hostile_recovery.py --cycles 2 --no-write
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _src in ("server", "client", "trainer", "tests/e2e", "bench"):
    if str(ROOT / _src) not in sys.path:
        sys.path.insert(0, str(ROOT / _src))

import httpx  # noqa: E402
from _results import write_section  # noqa: E402
from hostile import JUDGE_BOMB, HostileServices, session_processes, stuck_score_body  # noqa: E402
from service_process import ServiceProcess  # noqa: E402

from mentor_client import RewardClient  # noqa: E402

GOOD = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>\\boxed{5}<|im_end|>'
ITEM = {"completion": GOOD, "ground_truth": "5", "teacher_tools": ["add"]}
BATCH = 64
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def session_cpu(service: ServiceProcess) -> tuple[float, float]:
    """CPU seconds so far of the API process and of the other processes of its session.

    Processes that died (killed workers) are not counted, so only differences over a window
    in which no process died are meaningful: the measurement windows have no attack in them.
    """
    assert service.proc is not None
    api = service.proc.pid
    others = sum(cpu_seconds(pid) for pid in session_processes(api) if pid != api)
    return cpu_seconds(api), others


def measure(service: ServiceProcess, seconds: float) -> dict[str, float]:
    sent = 0
    api0, workers0 = session_cpu(service)
    with RewardClient(service.base_url, timeout=300) as client:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            response = client.score([ITEM] * BATCH, preset="mentor")
            if any(r.reward is None for r in response.results):
                raise RuntimeError(f"a good item was not scored: {response.results[0]}")
            sent += BATCH
        elapsed = time.monotonic() - start
    api1, workers1 = session_cpu(service)
    per_k = 1000 / sent
    return {
        "items_s": sent / elapsed,
        "api_cpu_per_k": (api1 - api0) * per_k,
        "worker_cpu_per_k": (workers1 - workers0) * per_k,
    }


def attack(service: ServiceProcess, attackers: int) -> float:
    """Bombs and stuck items, `attackers` at a time, twice; returns the wall time it took."""
    start = time.monotonic()
    bomb = {"preset": "mentor", "items": [{**ITEM, "completion": JUDGE_BOMB}]}
    for _ in range(2):
        threads = []
        for k in range(attackers):
            body = stuck_score_body() if k % 2 == 0 else bomb
            threads.append(threading.Thread(target=_post, args=(service, body)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return time.monotonic() - start


def _post(service: ServiceProcess, body: dict[str, Any]) -> None:
    response = httpx.post(service.base_url + "/v1/score", json=body, timeout=300)
    if response.status_code != 200:
        raise RuntimeError(f"an attack request got {response.status_code}: {response.text[:200]}")


def wait_for_workers(service: ServiceProcess, count: int) -> None:
    """Until the session has `count` processes again (killed workers reaped, replacements up)."""
    assert service.proc is not None
    deadline = time.monotonic() + 120
    while len(session_processes(service.proc.pid)) != count and time.monotonic() < deadline:
        time.sleep(0.1)


def run(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    with tempfile.TemporaryDirectory() as tmp:
        services = HostileServices(Path(tmp))
        try:
            service = services.start(workers=str(args.workers), item_timeout_s=str(args.item_timeout))
            assert service.proc is not None
            measure(service, args.seconds)  # warm-up
            count = len(session_processes(service.proc.pid))
            cycles: dict[str, list[dict[str, float]]] = {"attack": [], "idle": []}
            attack_s = 0.0
            for cycle in range(args.cycles):
                for phase in ("attack", "idle"):
                    before = measure(service, args.seconds)
                    if phase == "attack":
                        attack_s = attack(service, args.attackers)
                        wait_for_workers(service, count)
                    else:
                        time.sleep(attack_s)
                    after = measure(service, args.seconds)
                    row = {
                        "before": before["items_s"],
                        "after": after["items_s"],
                        "ratio": after["items_s"] / before["items_s"],
                        "api_before": before["api_cpu_per_k"],
                        "api_after": after["api_cpu_per_k"],
                        "workers_before": before["worker_cpu_per_k"],
                        "workers_after": after["worker_cpu_per_k"],
                    }
                    cycles[phase].append(row)
                    print(
                        f"cycle {cycle} {phase:6s}: {row['before']:6.0f} -> {row['after']:6.0f} items/s"
                        f" ({row['ratio']:.0%}); CPU s per 1k items: API {row['api_before']:.3f} ->"
                        f" {row['api_after']:.3f}, workers {row['workers_before']:.3f} -> {row['workers_after']:.3f}",
                        flush=True,
                    )
            return cycles
        finally:
            services.close()


def summary(cycles: dict[str, list[dict[str, float]]]) -> str:
    lines = [
        "| phase | cycles | median after/before | min | max | API CPU/1k items before → after |"
        " worker CPU/1k items before → after |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase, rows in cycles.items():
        ratios = [r["ratio"] for r in rows]

        def median(key: str, rows: list[dict[str, float]] = rows) -> float:
            return statistics.median(r[key] for r in rows)

        lines.append(
            f"| {phase} | {len(rows)} | {statistics.median(ratios):.1%} | {min(ratios):.1%} | {max(ratios):.1%} |"
            f" {median('api_before'):.3f} s → {median('api_after'):.3f} s |"
            f" {median('workers_before'):.3f} s → {median('workers_after'):.3f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one throughput measurement")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--item-timeout", type=float, default=2.0)
    parser.add_argument("--attackers", type=int, default=4, help="concurrent hostile requests (twice per attack)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    cycles = run(args)
    table = summary(cycles)
    print(table)
    if not args.no_write:
        body = (
            "One good client (batches of 64) before and after a phase, on one service (2 workers,\n"
            "`item_timeout_s` 2); `attack` = judge bombs and never-finishing items that get every worker\n"
            "killed and replaced, `idle` = the same wall time without requests (the machine's noise).\n"
            "Medians over cycles that alternate the two phases.\n\n" + table
        )
        write_section("hostile_recovery", "Issue 9: throughput after hostile requests", body)


if __name__ == "__main__":
    main()
