"""What the browser tests share besides fixtures (a module of its own: test files import it):
the page watch, the seed runs scored into a service's record, and the dashboard's checks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from mentor_client import RewardClient

SEED = Path(__file__).resolve().parents[1] / "data" / "mentor_seed_public.jsonl"
BROWSER_KEY = "browser-test-key-5f2c9a"
"""The API key of the `keyed_service` fixture."""
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


@dataclass
class PageWatch:
    """What a page did besides drawing: console errors, uncaught exceptions, blocked requests."""

    page: Page
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.blocked == [], f"the page reached outside the service: {self.blocked}"
        assert self.errors == [], f"the page logged errors: {self.errors}"


def score_seed_runs(client: RewardClient) -> dict[int, float]:
    """Score the seed items as run `exp-browser` (mentor, STEPS steps) and `exp-sparse` (2 steps);
    returns the mean reward per step the service answered for the first run."""
    with SEED.open() as handle:
        cases = [json.loads(line) for line in handle if line.strip()]
    items = [{k: c[k] for k in ("completion", "ground_truth", "teacher_tools")} for c in cases]
    means: dict[int, float] = {}
    for step in range(STEPS):
        batch = items[step * PER_STEP : (step + 1) * PER_STEP]
        response = client.score(batch, preset="mentor", run_id="exp-browser", step=step)
        rewards = [r.reward for r in response.results if r.reward is not None]
        means[step] = sum(rewards) / len(rewards)
    for step in range(2):
        client.score(items[:PER_STEP], preset="sparse", run_id="exp-sparse", step=step)
    client.records(run_id="exp-browser", limit=1)  # waits until the writer has flushed
    return means


def wait_drawn(watch: PageWatch) -> None:
    watch.page.wait_for_selector("body[data-ready='1']")


def chart_data(watch: PageWatch) -> dict[str, list[list[Any]]]:
    """Per canvas id, each dataset's y values (or bar values) as Chart.js holds them."""
    result: dict[str, list[list[Any]]] = watch.page.evaluate(
        """() => Object.fromEntries(Object.values(Chart.instances).map(c => [c.canvas.id,
             c.data.datasets.map(d => d.data.map(p => (p !== null && typeof p === 'object') ? p.y : p))]))"""
    )
    return result


def canvas_has_ink(watch: PageWatch, canvas_id: str) -> bool:
    """True when the canvas holds drawn pixels (not only a blank surface)."""
    drawn: bool = watch.page.evaluate(
        """(id) => { const c = document.getElementById(id); const g = c.getContext('2d');
             const px = g.getImageData(0, 0, c.width, c.height).data;
             for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true; return false; }""",
        canvas_id,
    )
    return drawn


def check_dashboard(watch: PageWatch, means: dict[int, float]) -> None:
    """The page shows the runs `score_seed_runs` scored: every chart drawn with their numbers, a
    sampled rollout beside its teacher's tools, the other run and the whole-run histogram."""
    wait_drawn(watch)
    charts = chart_data(watch)
    assert set(charts) == set(CHARTS), f"charts drawn: {sorted(charts)}"
    for canvas_id in CHARTS:
        assert canvas_has_ink(watch, canvas_id), canvas_id
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
    assert len(chart_data(watch)["chart-components"][0]) == 2
    page.locator("#hist-all").check()
    watch.assert_clean()
