"""The service's API docs in headless Chromium, offline (issue 12, item 3).

`/docs` (Swagger UI) and `/redoc` load their files from the service itself: with every other
host blocked, both pages draw the operations, Swagger UI offers its Authorize button (the
bearer scheme), and neither logs an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _browser_helpers import PageWatch
from service_process import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OPERATIONS = {"/v1/score", "/v1/presets", "/v1/records", "/v1/tools/execute", "/healthz", "/readyz"}


def test_swagger_ui_shows_the_operations_offline(
    recording_service: ServiceProcess, open_page: Any, artefacts: Path
) -> None:
    watch: PageWatch = open_page(recording_service.base_url)
    page = watch.page
    response = page.goto(recording_service.base_url + "/docs")
    assert response is not None and response.status == 200
    page.wait_for_selector(".opblock-summary-path")
    paths = {text.strip() for text in page.locator(".opblock-summary-path").all_inner_texts()}
    assert paths >= OPERATIONS, f"operations shown: {sorted(paths)}"
    assert page.locator("button.authorize").count() == 1
    # An operation opens with its description and its parameters or body.
    page.locator(".opblock-summary-path", has_text="/v1/score").first.click()
    page.wait_for_selector(".opblock-body")
    assert "Score a batch of rollouts" in page.locator(".opblock.is-open").first.inner_text()
    shot = artefacts / "docs-swagger.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
    watch.assert_clean()


def test_redoc_shows_the_operations_offline(recording_service: ServiceProcess, open_page: Any) -> None:
    watch: PageWatch = open_page(recording_service.base_url)
    page = watch.page
    response = page.goto(recording_service.base_url + "/redoc")
    assert response is not None and response.status == 200
    # ReDoc draws the operations after it has read the schema: wait for their titles as text.
    page.wait_for_function("document.body.innerText.includes('Score a batch of rollouts')")
    text = page.inner_text("body")
    assert "Query the score record" in text and "/v1/tools/execute" in text
    watch.assert_clean()
