"""The reward dashboard in headless Chromium, over the records of a real run.

Real items (the paper-parity seed set) are scored through a real uvicorn service with
recording on, over several steps of two runs, with the client SDK over a socket. Then `/ui`
and the file `mentor-reward report` writes are opened offline: no console error, no request
outside the service, every chart drawn with the run's numbers (the mean reward per step the
chart shows is the one the service answered), a sampled rollout shown next to its teacher's
tools, and a full-page screenshot kept as an artefact.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _browser_helpers import PageWatch, check_dashboard, score_seed_runs
from service_process import ROOT, ServiceProcess

from mentor_client import RewardClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def scored_run(recording_service: ServiceProcess) -> dict[str, Any]:
    """The seed runs scored through the service (`score_seed_runs`), and its record file."""
    with RewardClient(recording_service.base_url, timeout=300.0) as client:
        means = score_seed_runs(client)
    return {"means": means, "records": Path(recording_service.env["MENTOR_RECORD_PATH"])}


def test_ui_draws_a_real_runs_records(
    recording_service: ServiceProcess, scored_run: dict[str, Any], open_page: Any, artefacts: Path
) -> None:
    watch: PageWatch = open_page(recording_service.base_url)
    response = watch.page.goto(recording_service.base_url + "/ui")
    assert response is not None and response.status == 200
    watch.page.select_option("#run", "0")
    check_dashboard(watch, scored_run["means"])
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
    check_dashboard(watch, scored_run["means"])
    shot = artefacts / "dashboard-report.png"
    watch.page.screenshot(path=str(shot), full_page=True)
    print(f"report: {out}\nscreenshot: {shot}")
