"""The reward dashboard of a service with an API key, in headless Chromium.

A browser's navigation carries no bearer header, so `/ui` answers a shell without data that
asks for the key. The test opens it as a researcher would: the prompt and no data; a wrong key
(a clear message, still no data, the key forgotten); the right key (every chart drawn with the
numbers the service answered for a real run, no console error beyond the wrong key's 401); a
reload in the same tab (the key kept in sessionStorage, no prompt); "forget the key" (the prompt
again). The key never appears in a URL the page requested, nor in the service's log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _browser_helpers import BROWSER_KEY, PageWatch, check_dashboard, score_seed_runs
from service_process import ServiceProcess

from mentor_client import RewardClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REFUSED_LOAD = "status of 401"
"""Chromium logs a refused fetch as a console error ("Failed to load resource: ... 401")."""


def _stored_key(watch: PageWatch) -> str | None:
    key: str | None = watch.page.evaluate("() => sessionStorage.getItem('mentor-reward-api-key')")
    return key


def _no_data_shown(watch: PageWatch) -> None:
    page = watch.page
    assert page.evaluate("() => Object.keys(Chart.instances).length") == 0
    assert page.locator("body[data-ready]").count() == 0
    assert page.locator("#overview").inner_text() == ""
    assert page.locator("#sample-rows tr").count() == 0
    assert page.locator("#chart-reward").is_hidden()


def test_keyed_ui_asks_for_the_key_and_draws_with_it(
    keyed_service: ServiceProcess, open_page: Any, artefacts: Path
) -> None:
    with RewardClient(keyed_service.base_url, api_key=BROWSER_KEY, timeout=300.0) as client:
        means = score_seed_runs(client)
    watch: PageWatch = open_page(keyed_service.base_url)
    page = watch.page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    # The shell: a prompt, and nothing from the record.
    response = page.goto(keyed_service.base_url + "/ui")
    assert response is not None and response.status == 200
    page.wait_for_selector("#key-prompt", state="visible")
    _no_data_shown(watch)
    assert "exp-browser" not in page.content()
    page.screenshot(path=str(artefacts / "dashboard-key-prompt.png"), full_page=True)

    # A wrong key: a clear message, still no data, and the key is not kept.
    page.fill("#key-input", "not-the-key")
    page.press("#key-input", "Enter")
    message = page.locator("#key-message")
    message.wait_for(state="visible")
    assert "refused that key" in message.inner_text() and "invalid API key" in message.inner_text()
    _no_data_shown(watch)
    assert page.locator("#key-prompt").is_visible()
    assert _stored_key(watch) is None
    assert watch.errors and all(REFUSED_LOAD in e for e in watch.errors), watch.errors
    watch.errors.clear()

    # The right key: the dashboard of the run, every chart drawn with its numbers.
    page.fill("#key-input", BROWSER_KEY)
    page.click("#key-form button[type=submit]")
    page.select_option("#run", "0")
    check_dashboard(watch, means)  # also: no console error, no request outside the service
    assert page.locator("#key-prompt").is_hidden() and page.locator("#key-forget").is_visible()
    assert "records.sqlite3" in page.locator("#subtitle").inner_text()
    assert _stored_key(watch) == BROWSER_KEY
    page.select_option("#run", "0")
    shot = artefacts / "dashboard-keyed-ui.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # A reload in the same tab: the kept key, no prompt.
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#key-prompt").is_hidden()
    assert len(page.evaluate("() => Object.keys(Chart.instances)")) > 0

    # Forgetting the key: the prompt again, and nothing kept.
    page.click("#key-forget")
    page.wait_for_selector("#key-prompt", state="visible")
    _no_data_shown(watch)
    assert _stored_key(watch) is None
    watch.assert_clean()

    # The key went only in headers: in no URL, and not into the service's log.
    assert requested and not any(BROWSER_KEY in url for url in requested), requested
    assert BROWSER_KEY not in keyed_service.log_path.read_text(errors="replace")
    print(f"screenshot: {shot}")
