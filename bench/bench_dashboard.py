"""How long the reward dashboard takes to show a 10,000-record run (issue 12's target: <= 2 s).

1. Builds a record file the way the service writes one: the paper-parity seed rollouts, scored
   in-process by the engine under the `mentor` preset, 100 steps x 100 items, written by the
   real SQLite record store.
2. Times the server side (`build_dashboard` over the file: one read, summary, page) and the
   page's size.
3. Opens the page in headless Chromium (Debian's, driven by Playwright) from a file, several
   times, each in a fresh page: the time from navigation to the page's script having drawn
   every chart (`performance.now()` at its end), and the wall time seen by the driver.
4. Starts the real service on that file, with an API key, and times `/ui` in Chromium end to
   end (request, server-side summary, transfer, drawing): with the key as a header (the page
   with its data inside, as on a service without keys), and as a browser opens it, with the key
   the user typed kept in the tab (the page without data, then its data from `/ui/data`).

    python bench/bench_dashboard.py                 # writes its section of bench/RESULTS.md
    python bench/bench_dashboard.py --no-write --records 2000
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from _results import write_section
from playwright.sync_api import Browser, sync_playwright

from mentor_server.record_query import iter_records
from mentor_server.records import SQLiteRecordStore
from mentor_server.report import build_dashboard
from mentor_server.scoring import ScoringEngine, resolve_spec

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "tests" / "data" / "mentor_seed_public.jsonl"
CHROMIUM = os.environ.get("MENTOR_CHROMIUM", "/usr/bin/chromium")


def make_records(path: Path, n_records: int, steps: int) -> float:
    """Score seed rollouts into a record file; returns the seconds the scoring took."""
    cases = [json.loads(line) for line in SEED.read_text().splitlines() if line.strip()]
    items = [{k: c[k] for k in ("completion", "ground_truth", "teacher_tools")} for c in cases]
    engine = ScoringEngine(resolve_spec("mentor"))
    per_step = n_records // steps
    store = SQLiteRecordStore(path, flush_interval_s=5.0)
    started = time.perf_counter()
    for step in range(steps):
        batch = [items[(step * 7 + i) % len(items)] for i in range(per_step)]
        scores = engine.score_dicts(batch)
        store.append(
            [
                {
                    "run_id": "bench-run",
                    "step": step,
                    "spec_hash": engine.spec.hash,
                    "preset": "mentor",
                    "item": item,
                    "reward": s.reward,
                    "components": s.components,
                    "reason": s.reason,
                    "error": None if s.error is None else {"type": s.error.type, "message": s.error.message},
                    "created_at": time.time(),
                }
                for item, s in zip(batch, scores, strict=True)
            ]
        )
    store.close()
    return time.perf_counter() - started


@dataclass(frozen=True)
class Load:
    """One page load: wall times and the CPU the renderer spent (Chromium's own counters)."""

    drawn_s: float  # navigation -> the page's script has drawn every chart (performance.now())
    script_s: float  # of which the page's script: read the data, draw the charts
    wall_s: float  # the driver's view: goto -> ready
    main_thread_cpu_s: float  # the renderer's main thread (CDP Performance metric ThreadTime)
    renderer_cpu_s: float  # the whole renderer process (CDP ProcessTime)
    errors: int


KEY = "bench-dashboard-key"


def time_page(browser: Browser, url: str, *, key_header: bool = False, key_kept: bool = False) -> Load:
    """One load of `url`; `key_header`: the navigation sends the API key; `key_kept`: the tab
    holds the key as the page keeps it once typed (its sessionStorage)."""
    # A context of its own: a fresh renderer process, whose counters are this load's alone.
    headers = {"Authorization": f"Bearer {KEY}"} if key_header else None
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, extra_http_headers=headers)
    if key_kept:
        context.add_init_script(f"sessionStorage.setItem('mentor-reward-api-key', {json.dumps(KEY)})")
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    # Thread ticks: the metrics count CPU time, which a machine shared with other work does not
    # inflate the way it inflates wall time.
    cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    started = time.perf_counter()
    page.goto(url, timeout=300_000)
    page.wait_for_selector("body[data-ready='1']", timeout=300_000)
    wall = time.perf_counter() - started
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    drawn, script = page.evaluate("[Number(document.body.dataset.renderMs), Number(document.body.dataset.drawMs)]")
    context.close()
    return Load(drawn / 1000, script / 1000, wall, metrics["ThreadTime"], metrics["ProcessTime"], len(errors))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_service(records: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTOR_")}
    env.update(MENTOR_WORKERS="1", MENTOR_RECORD_BACKEND="sqlite", MENTOR_RECORD_PATH=str(records), MENTOR_API_KEYS=KEY)
    env["MENTOR_LOG_LEVEL"] = "warning"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mentor_server.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the service did not become ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--loads", type=int, default=5, help="page loads timed per way of opening it")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--note", default="", help="what else the machine was doing, written beside the load")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    records = folder / "records.sqlite3"
    scoring_s = make_records(records, args.records, args.steps)
    n = sum(1 for _ in iter_records(records))
    print(f"{n} records ({args.steps} steps) scored and recorded in {scoring_s:.1f} s: {records}")

    server_s: list[float] = []
    server_cpu_s: list[float] = []
    page = ""
    for _ in range(3):
        started, cpu = time.perf_counter(), time.process_time()
        page = build_dashboard(iter_records(records), source=str(records))
        server_s.append(time.perf_counter() - started)
        server_cpu_s.append(time.process_time() - cpu)
    html = folder / "report.html"
    html.write_text(page, encoding="utf-8")
    size_kib = len(page.encode("utf-8")) / 1024
    print(f"server side (read + summary + page), 3 runs: {[round(s, 2) for s in server_s]} s; page {size_kib:.0f} KiB")

    proc, base = start_service(records, folder / "service.log")
    try:
        with sync_playwright() as driver:
            chromium_args = ["--disable-dev-shm-usage", *(["--no-sandbox"] if os.geteuid() == 0 else [])]
            browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args)
            version = browser.version
            time_page(browser, html.as_uri())  # warm-up: the browser's first page pays its own start
            file_runs = [time_page(browser, html.as_uri()) for _ in range(args.loads)]
            # The first /ui builds the service's summary of the record; later ones reuse it.
            ui_first = time_page(browser, base + "/ui", key_header=True)
            ui_runs = [time_page(browser, base + "/ui", key_header=True) for _ in range(args.loads)]
            shell_runs = [time_page(browser, base + "/ui", key_kept=True) for _ in range(args.loads)]
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)

    errors = sum(r.errors for r in [*file_runs, ui_first, *ui_runs, *shell_runs])
    load = os.getloadavg()

    def row(label: str, values: list[float]) -> str:
        return f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |"

    lines = [
        f"{n:,} records ({args.steps} steps x {n // args.steps}), the seed rollouts scored under `mentor`; "
        f"page {size_kib:.0f} KiB (Chart.js inline). Chromium {version}, headless, {args.loads} loads each. "
        f"Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores"
        f"{f' ({args.note})' if args.note else ''}. Console errors over all loads: {errors}.",
        "",
        "| what | median s | min s | max s |",
        "| --- | ---: | ---: | ---: |",
        row("report file: renderer main-thread CPU (load, parse, draw)", [r.main_thread_cpu_s for r in file_runs]),
        row("report file: renderer process CPU (all its threads)", [r.renderer_cpu_s for r in file_runs]),
        row("report file: wall, navigation → every chart drawn", [r.drawn_s for r in file_runs]),
        row("… of which the page's script (read the data, draw 7 charts), wall", [r.script_s for r in file_runs]),
        row("`/ui` first request (service summarises the record): wall, request → drawn", [ui_first.wall_s]),
        row("`/ui` reloads (summary kept, no new records): wall, request → drawn", [r.wall_s for r in ui_runs]),
        row("`/ui` reloads: renderer main-thread CPU", [r.main_thread_cpu_s for r in ui_runs]),
        row(
            "`/ui` as a browser opens it, key kept in the tab (page, then `/ui/data`): wall",
            [r.wall_s for r in shell_runs],
        ),
        row("… renderer main-thread CPU", [r.main_thread_cpu_s for r in shell_runs]),
        row("server side alone (read + summary + page, in Python): wall", server_s),
        row("server side alone: CPU", server_cpu_s),
    ]
    cpu = statistics.median([r.main_thread_cpu_s for r in file_runs])
    wall = statistics.median([r.wall_s for r in ui_runs])
    shell_wall = statistics.median([r.wall_s for r in shell_runs])
    lines += [
        "",
        f"Target (a 10,000-record run drawn in <= 2 s in headless Chromium): the browser's own work is "
        f"{cpu:.2f} s of main-thread CPU ({'within' if cpu <= 2 else 'over'} the target); wall time on this "
        f"machine was {wall:.2f} s per `/ui` reload ({'within' if wall <= 2 else 'over'} it), "
        f"{shell_wall:.2f} s when the browser sends the key from the page ({'within' if shell_wall <= 2 else 'over'}), "
        f"{ui_first.wall_s:.2f} s for the first `/ui`, which pays the service's summary of the whole record "
        f"({statistics.median(server_cpu_s):.2f} s of CPU here).",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(
            "issue12-dashboard",
            "Issue 12: reward dashboard render time, 10,000 records (bench/bench_dashboard.py)",
            body,
            command=shlex.join([".venv/bin/python", "bench/bench_dashboard.py", *sys.argv[1:]]),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
