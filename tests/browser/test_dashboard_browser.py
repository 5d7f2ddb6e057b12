"""The reward dashboard in headless Chromium, over the records of a real run.

Real items (the paper-parity seed set) are scored through a real uvicorn service with
recording on, over several steps of two runs, with the client SDK over a socket. Then `/ui`
and the file `mentor-reward report` writes are opened offline: no console error, no request
outside the service, every chart drawn with the run's numbers (the mean reward per step the
chart shows is the one the service answered), a sampled rollout shown next to its teacher's
tools, and a full-page screenshot kept as an artefact.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _browser_helpers import PageWatch
from service_process import DATA, ROOT, ServiceProcess

from mentor_client import RewardClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEPS = 5
PER_STEP = 24
CHARTS = (
    "chart-reward",
    "chart-components",
    "chart-distribution",
    "chart-histogram",
    "chart-tools",
    "chart-invented",
    "chart-usage",
)


@pytest.fixture(scope="module")
def scored_run(recording_service: ServiceProcess) -> dict[str, Any]:
    """Score the seed items as run `exp-browser` (mentor, STEPS steps) and `exp-sparse` (2 steps);
    returns the mean reward per step the service answered for the first run."""
    with (DATA / "mentor_seed_public.jsonl").open() as handle:
        cases = [json.loads(line) for line in handle if line.strip()]
    items = [{k: c[k] for k in ("completion", "ground_truth", "teacher_tools")} for c in cases]
    means: dict[int, float] = {}
    with RewardClient(recording_service.base_url, timeout=300.0) as client:
        for step in range(STEPS):
            batch = items[step * PER_STEP : (step + 1) * PER_STEP]
            response = client.score(batch, preset="mentor", run_id="exp-browser", step=step)
            rewards = [r.reward for r in response.results if r.reward is not None]
            means[step] = sum(rewards) / len(rewards)
        for step in range(2):
            client.score(items[:PER_STEP], preset="sparse", run_id="exp-sparse", step=step)
        client.records(run_id="exp-browser", limit=1)  # waits until the writer has flushed
    return {"means": means, "records": Path(recording_service.env["MENTOR_RECORD_PATH"])}


def _wait_drawn(watch: PageWatch) -> None:
    watch.page.wait_for_selector("body[data-ready='1']")


def _chart_data(watch: PageWatch) -> dict[str, list[list[Any]]]:
    """Per canvas id, each dataset's y values (or bar values) as Chart.js holds them."""
    result: dict[str, list[list[Any]]] = watch.page.evaluate(
        """() => Object.fromEntries(Object.values(Chart.instances).map(c => [c.canvas.id,
             c.data.datasets.map(d => d.data.map(p => (p !== null && typeof p === 'object') ? p.y : p))]))"""
    )
    return result


def _canvas_has_ink(watch: PageWatch, canvas_id: str) -> bool:
    """True when the canvas holds drawn pixels (not only a blank surface)."""
    drawn: bool = watch.page.evaluate(
        """(id) => { const c = document.getElementById(id); const g = c.getContext('2d');
             const px = g.getImageData(0, 0, c.width, c.height).data;
             for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true; return false; }""",
        canvas_id,
    )
    return drawn


def _check_dashboard(watch: PageWatch, means: dict[int, float]) -> None:
    _wait_drawn(watch)
    charts = _chart_data(watch)
    assert set(charts) == set(CHARTS), f"charts drawn: {sorted(charts)}"
    for canvas_id in CHARTS:
        assert _canvas_has_ink(watch, canvas_id), canvas_id
    # The first run is selected: its mean reward per step, as the service answered it.
    (components_reward, *component_series) = charts["chart-components"]
    assert components_reward == pytest.approx([means[s] for s in range(STEPS)])
    assert component_series and all(len(series) == STEPS for series in component_series)
    reward_by_run = charts["chart-reward"]
    assert len(reward_by_run) == 2 and reward_by_run[0] == pytest.approx(components_reward)
    assert sum(charts["chart-histogram"][0]) == PER_STEP  # the last step's rollouts
    assert charts["chart-invented"][0], "the seed set calls tools the calculator does not have"
    assert sum(charts["chart-usage"][0]) > 0 and sum(charts["chart-usage"][1]) > 0

    # A sampled rollout is shown with its teacher's tools beside it.
    page = watch.page
    rows = page.locator("#sample-rows tr")
    assert rows.count() > 0
    rows.nth(1).click()
    detail = page.locator("#sample-detail")
    assert "Student rollout" in detail.inner_text() and "Teacher trace" in detail.inner_text()
    assert "Tools used (names only)" in detail.inner_text()
    page.select_option("#sample-filter", "invented")
    assert page.locator("#sample-rows tr").count() > 0
    # The other run, and the histogram of another step, redraw without errors.
    page.select_option("#run", "1")
    assert len(_chart_data(watch)["chart-components"][0]) == 2
    page.locator("#hist-all").check()
    watch.assert_clean()


def test_ui_draws_a_real_runs_records(
    recording_service: ServiceProcess, scored_run: dict[str, Any], open_page: Any, artefacts: Path
) -> None:
    watch: PageWatch = open_page(recording_service.base_url)
    response = watch.page.goto(recording_service.base_url + "/ui")
    assert response is not None and response.status == 200
    watch.page.select_option("#run", "0")
    _check_dashboard(watch, scored_run["means"])
    shot = artefacts / "dashboard-ui.png"
    watch.page.select_option("#run", "0")
    watch.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_report_file_opens_offline(
    recording_service: ServiceProcess, scored_run: dict[str, Any], open_page: Any, artefacts: Path
) -> None:
    out = artefacts / "report.html"
    env = {k: v for k, v in recording_service.env.items() if not k.startswith("MENTOR_")}
    # The CLI as a user runs it: a real process; no fixed short time limit (a busy machine).
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mentor_server.cli",
            "report",
            "--records",
            str(scored_run["records"]),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    watch: PageWatch = open_page(out.as_uri())  # the file itself, and nothing else
    watch.page.goto(out.as_uri())
    _check_dashboard(watch, scored_run["means"])
    shot = artefacts / "dashboard-report.png"
    watch.page.screenshot(path=str(shot), full_page=True)
    print(f"report: {out}\nscreenshot: {shot}")
