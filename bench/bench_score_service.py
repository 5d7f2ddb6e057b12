"""The service's own CPU per `/v1/score` request of 1024 items, for two source trees in one run.

`bench_verl_manager.py` times the whole manager step against the engine in this thread; on a
loaded 2-core machine its phases move by more than the service's share of the step, so it
cannot resolve a change of a few milliseconds on the service. This bench isolates that share:
it starts one service per source tree (one scoring worker each, both at this process's
priority), sends both the same 1024-item request (the trainer catalogue repeated, preset
`flexible`, `reasons: false` as the verl manager sends it) in alternation, and reads from
/proc the CPU time each request cost the API process (request parsing and checks, pickling to
the worker and back, building and writing the answer) and the scoring worker (the engine, and
its side of the pickling), separately. /proc counts CPU in clock ticks (10 ms here), so the
bench reports the mean over many requests (total CPU / requests), not a per-request minimum.
Interleaving puts both trees under the same load. It also checks that both trees answered
with the same bytes.

    nice -n 10 .venv/bin/python bench/bench_score_service.py --baseline /tmp/old-tree --requests 30

`--baseline` is a checkout of another commit (e.g. `git archive <commit> | tar -x -C DIR`);
the other service runs this checkout's code.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "tests" / "trainers"))

from service_process import ServiceProcess, free_port, service_env  # noqa: E402
from trainers_catalogue import CASES  # noqa: E402

PRESET = "flexible"


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(root: int) -> list[int]:
    """Every live descendant of `root` (the fork server and the scoring worker)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(kids)
        frontier.extend(kids)
    return found


def _tree_env(tree: Path) -> dict[str, str]:
    env: dict[str, str] = service_env(workers="1", worker_nice="0")
    env["PYTHONPATH"] = os.pathsep.join(str(tree / part) for part in ("server", "client", "trainer"))
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the commit to compare with")
    parser.add_argument("--items", type=int, default=1024)
    parser.add_argument("--requests", type=int, default=30, help="requests per tree")
    args = parser.parse_args()

    items = [{"completion": c.text, **c.label, "finished": c.finished} for c in (CASES * args.items)[: args.items]]
    body = json.dumps({"preset": PRESET, "items": items, "reasons": False}).encode()
    trees = {"baseline": args.baseline.resolve(), "this checkout": ROOT}
    api: dict[str, list[float]] = {name: [] for name in trees}
    workers: dict[str, list[float]] = {name: [] for name in trees}
    answers: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp, httpx.Client(timeout=120) as http:
        services = {
            name: ServiceProcess(free_port(), _tree_env(tree), Path(tmp) / f"{i}.log")
            for i, (name, tree) in enumerate(trees.items())
        }
        try:
            for service in services.values():
                service.start()
            headers = {"content-type": "application/json"}
            for name, service in services.items():  # warm: engine caches, connections, the config cache
                for _ in range(3):
                    answers[name] = http.post(service.base_url + "/v1/score", content=body, headers=headers).content
            for _ in range(args.requests):
                for name, service in services.items():
                    assert service.proc is not None
                    pid = service.proc.pid
                    kids = _children(pid)
                    api0, kids0 = _cpu_s(pid), sum(_cpu_s(k) for k in kids)
                    response = http.post(service.base_url + "/v1/score", content=body, headers=headers)
                    assert response.status_code == 200, response.text[:500]
                    api[name].append(_cpu_s(pid) - api0)
                    workers[name].append(sum(_cpu_s(k) for k in kids) - kids0)
        finally:
            for service in services.values():
                service.stop()

    same = len(set(answers.values())) == 1
    print(f"{args.items} items, preset {PRESET}, reasons false, {args.requests} requests per tree, interleaved")
    print(f"both trees answered the same bytes: {same}")
    print("CPU ms per request (mean): API process; scoring worker (its fork server included)")
    mean = {name: statistics.fmean(api[name]) * 1000 for name in trees}
    for name in trees:
        print(f"  {name}: {mean[name]:.1f}; {statistics.fmean(workers[name]) * 1000:.1f}")
    print(f"API process, this checkout / baseline: {mean['this checkout'] / mean['baseline']:.2f}")


if __name__ == "__main__":
    main()
