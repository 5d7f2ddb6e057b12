"""GET /ui: the reward dashboard over the service's own score records (in-process; the browser
tests in tests/browser open the page in Chromium)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _service_helpers import assert_error, wire_item
from fastapi.testclient import TestClient

from mentor_server.record_query import iter_records
from mentor_server.report import summarize_records
from mentor_server.report.page import json_safe


def _page_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', html, re.S)
    assert match, "the page carries its data block"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_ui_shows_the_records_the_service_just_wrote(
    make_client: Callable[..., TestClient], tmp_path: Path, parity_cases: list[dict[str, Any]]
) -> None:
    service = make_client(record_backend="sqlite", record_path=tmp_path / "r.sqlite3")
    items = [wire_item(c) for c in parity_cases[:12]]
    for step in range(3):
        body = {"preset": "mentor", "items": items[step * 4 : step * 4 + 4], "run_id": "exp-ui", "step": step}
        assert service.post("/v1/score", json=body).status_code == 200
    # No wait: the route flushes the writer before it reads.
    response = service.get("/ui")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    data = _page_data(response.text)
    assert data["n_records"] == 12
    (run,) = data["runs"]
    assert run["run_id"] == "exp-ui"
    assert run["steps"] == [0, 1, 2]
    assert run["series"]["n"] == [4, 4, 4]
    assert run["presets"] == {"mentor": 12}
    assert set(run["components"]) >= {"outcome", "tool_names"}
    assert len(data["samples"]) == 12

    # A run filter that matches nothing is an empty page, not an error.
    assert _page_data(service.get("/ui", params={"run_id": "other"}).text)["n_records"] == 0

    # More steps after a first look: the kept summary, fed only the new records, is the summary
    # of the whole record (and a filtered view is kept apart from the unfiltered one).
    for step in (3, 4):
        body = {"preset": "sparse", "items": items[:4], "run_id": "exp-ui", "step": step}
        assert service.post("/v1/score", json=body).status_code == 200
    assert service.post("/v1/score", json={"preset": "mentor", "items": items[:2], "run_id": "b"}).status_code == 200
    grown = _page_data(service.get("/ui").text)
    whole = json.loads(json.dumps(json_safe(summarize_records(iter_records(tmp_path / "r.sqlite3")))))
    assert grown == whole and grown["n_records"] == 22
    assert _page_data(service.get("/ui", params={"run_id": "b"}).text)["n_records"] == 2


def test_ui_is_behind_the_api_key(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    service = make_client(record_backend="jsonl", record_path=tmp_path / "r.jsonl", api_keys=["k1"])
    assert_error(service.get("/ui"), 401)
    response = service.get("/ui", headers={"Authorization": "Bearer k1"})
    assert response.status_code == 200
    assert _page_data(response.text)["runs"] == []


def test_ui_without_recording_says_so(make_client: Callable[..., TestClient]) -> None:
    assert_error(make_client().get("/ui"), 404, "recording_disabled")


def test_ui_refuses_an_unknown_query_parameter(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    service = make_client(record_backend="sqlite", record_path=tmp_path / "r.sqlite3")
    assert_error(service.get("/ui", params={"run": "x"}), 422)
