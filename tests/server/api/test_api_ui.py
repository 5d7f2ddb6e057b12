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


def _policy(html: str) -> str:
    match = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)
    assert match, "the page carries its policy"
    return match.group(1).replace("&#x27;", "'")


KEY = {"Authorization": "Bearer k1"}


def test_ui_on_a_keyed_service_is_a_shell_that_asks_for_the_key(
    make_client: Callable[..., TestClient], tmp_path: Path, parity_cases: list[dict[str, Any]]
) -> None:
    service = make_client(record_backend="jsonl", record_path=tmp_path / "r.jsonl", api_keys=["k1"])
    body = {"preset": "mentor", "items": [wire_item(c) for c in parity_cases[:3]], "run_id": "secret-run", "step": 0}
    assert service.post("/v1/score", json=body, headers=KEY).status_code == 200

    # A browser's navigation (no header): the page without data, which loads it from ui/data.
    shell = service.get("/ui")
    assert shell.status_code == 200 and shell.headers["content-type"].startswith("text/html")
    assert shell.headers["cache-control"] == "no-store"
    assert re.search(r'id="dashboard-data">null</script>', shell.text)
    assert 'data-load="ui/data"' in shell.text and 'id="key-form"' in shell.text
    assert "secret-run" not in shell.text and "r.jsonl" not in shell.text
    assert "connect-src 'self'" in _policy(shell.text)
    filtered = service.get("/ui", params={"run_id": "a b&c<"})
    assert 'data-load="ui/data?run_id=a+b%26c%3C"' in filtered.text

    # Any key header is checked: a wrong key, another scheme or an empty header is refused.
    for headers in ({"Authorization": "Bearer nope"}, {"Authorization": "Basic azE6"}, {"Authorization": ""}):
        assert_error(service.get("/ui", headers=headers), 401, "unauthorized")

    # The data the shell loads: behind the key like every route that reads the record.
    for path in ("/ui/data", "/v1/records"):
        assert_error(service.get(path), 401, "unauthorized")
        assert_error(service.get(path, headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    data = service.get("/ui/data", headers=KEY)
    assert data.status_code == 200 and data.headers["cache-control"] == "no-store"
    answer = data.json()
    assert set(answer) == {"subtitle", "summary"} and "3 records" in answer["subtitle"]
    assert [run["run_id"] for run in answer["summary"]["runs"]] == ["secret-run"]
    assert service.get("/ui/data", params={"run_id": "other"}, headers=KEY).json()["summary"]["n_records"] == 0

    # With the key, /ui is the page with its data inside, the same data (curl's way to a file).
    page = service.get("/ui", headers=KEY)
    assert page.status_code == 200
    assert _page_data(page.text) == answer["summary"]
    assert "connect-src 'none'" in _policy(page.text)


def test_ui_shell_tells_nothing_about_recording(make_client: Callable[..., TestClient]) -> None:
    service = make_client(api_keys=["k1"])
    assert service.get("/ui").status_code == 200  # the shell, even with recording off
    assert_error(service.get("/ui/data"), 401)
    assert_error(service.get("/ui/data", headers=KEY), 404, "recording_disabled")
    assert_error(service.get("/ui", headers=KEY), 404, "recording_disabled")


def test_ui_without_keys_needs_no_key(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    service = make_client(record_backend="sqlite", record_path=tmp_path / "r.sqlite3")
    page = service.get("/ui")
    assert page.status_code == 200 and _page_data(page.text)["n_records"] == 0
    assert 'id="dashboard-data">null' not in page.text and "data-load=" not in page.text
    assert service.get("/ui/data").json()["summary"] == _page_data(page.text)


def test_ui_without_recording_says_so(make_client: Callable[..., TestClient]) -> None:
    service = make_client()
    assert_error(service.get("/ui"), 404, "recording_disabled")
    assert_error(service.get("/ui/data"), 404, "recording_disabled")


def test_ui_refuses_an_unknown_query_parameter(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    service = make_client(record_backend="sqlite", record_path=tmp_path / "r.sqlite3")
    assert_error(service.get("/ui", params={"run": "x"}), 422)
