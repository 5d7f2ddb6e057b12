"""The score record under hostile input: no good row lost, bounded pages, deep items, a corrupt file.

Stated answers: a lone surrogate anywhere in a row costs nothing (every row of the batch is
stored, the odd one with its surrogate replaced by U+FFFD); `/v1/records` pages stop at
`max_record_page_bytes` and `next_offset` walks every record exactly once; an item nested
400 levels deep is served (no 500); a corrupt SQLite file is moved aside (or, with
`record_on_corrupt=refuse`, left alone with recording off) while scoring starts, and
`/healthz` says recording is degraded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _service_helpers import assert_error
from fastapi.testclient import TestClient

from mentor_client.protocol import RecordList
from mentor_server.records import open_store, query_page, query_records

BACKENDS = [("sqlite", "r.sqlite3"), ("jsonl", "r.jsonl")]
IDS = [b for b, _ in BACKENDS]


def _row(i: int, run: str = "good", **fields: Any) -> dict[str, Any]:
    row = {
        "run_id": run,
        "step": 1,
        "spec_hash": "h",
        "preset": "mentor",
        "item": {"completion": f"c{i}"},
        "reward": 0.5,
        "components": {"outcome": 1.0},
        "reason": f"r{i}",
        "error": None,
        "created_at": 1.0,
    }
    row.update(fields)
    return row


@pytest.mark.parametrize(("backend", "name"), BACKENDS, ids=IDS)
@pytest.mark.parametrize(
    "bad",
    [
        {"item": {"completion": "\ud800"}},
        {"reason": "tool '\ud800' is unknown"},
        {"run_id": "run-\udfff"},
        {"components": {"\ud800": 1.0}},
        {"step": 2**70},
        {"reward": "not a number"},
    ],
    ids=["item", "reason", "run-id", "component-name", "huge-step", "text-reward"],
)
def test_one_bad_row_costs_no_other_row(tmp_path: Path, backend: str, name: str, bad: dict[str, Any]) -> None:
    store = open_store(backend, tmp_path / name, flush_interval_s=60)
    assert store is not None
    # Other clients' rows before and after the bad one, all in one pending batch.
    store.append([_row(i) for i in range(100)])
    store.append([_row(100, run="bad", **bad)])
    store.append([_row(i) for i in range(101, 201)])
    store.close()
    good = query_records(tmp_path / name, run_id="good", limit=1000)
    assert [r["reason"] for r in good] == [f"r{i}" for i in range(201) if i != 100]
    everything = query_records(tmp_path / name, limit=1000)
    assert len(everything) == 201 and store.failed_rows == 0
    assert store.health() == ("ok", None)


@pytest.mark.parametrize(("backend", "name"), BACKENDS, ids=IDS)
def test_pages_are_bounded_and_next_offset_walks_every_record_once(tmp_path: Path, backend: str, name: str) -> None:
    store = open_store(backend, tmp_path / name, flush_interval_s=60)
    assert store is not None
    store.append([_row(i, item={"completion": f"c{i}-" + "x" * 2000}) for i in range(300)])
    store.close()
    seen: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        texts, offset = query_page(tmp_path / name, "good", None, 1000, offset, max_bytes=64 * 1024)
        assert sum(len(t) for t in texts) <= 64 * 1024
        seen.extend(json.loads(t)["reason"] for t in texts)
        pages += 1
    assert seen == [f"r{i}" for i in range(300)]
    assert pages >= 300 * 2000 // (64 * 1024)


@pytest.mark.parametrize(("backend", "name"), BACKENDS, ids=IDS)
def test_records_pages_with_deep_items_and_surrogates_are_served(
    make_client: Any, tmp_path: Path, backend: str, name: str
) -> None:
    service: TestClient = make_client(record_backend=backend, record_path=tmp_path / name)
    store = service.app.state.service.store  # type: ignore[attr-defined]
    deep: Any = "leaf"
    for _ in range(400):
        deep = {"d": deep}
    store.append([_row(0, item={"completion": "x", "reference": deep}), _row(1, reason="\ud800"), _row(2)])
    response = service.get("/v1/records", params={"run_id": "good"})
    assert response.status_code == 200, response.text[:500]
    body = json.loads(response.content)
    # A lone surrogate cannot be stored as UTF-8 nor served to strict JSON parsers: the row is
    # kept with that one character replaced by U+FFFD.
    assert [r["reason"] for r in body["records"]] == ["r0", "\ufffd", "r2"]
    assert body["next_offset"] is None
    page = service.get("/v1/records", params={"run_id": "good", "limit": 2}).json()
    assert len(page["records"]) == 2 and page["next_offset"] == 2
    # Without the deep item (pydantic's JSON reader stops at a few hundred levels, the
    # service's own nesting limit is far below), a page reads as the client reads it.
    strict = RecordList.model_validate_json(service.get("/v1/records", params={"offset": 1}).content)
    assert [r.reason for r in strict.records] == ["\ufffd", "r2"]


def _corrupt(path: Path) -> bytes:
    garbage = b"this is not a database\x00" * 100
    path.write_bytes(garbage)
    return garbage


def test_a_corrupt_record_file_is_moved_aside_and_scoring_starts(make_client: Any, tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    garbage = _corrupt(path)
    service: TestClient = make_client(record_backend="sqlite", record_path=path)
    health = service.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["recording"]["status"] == "degraded" and "moved" in health["recording"]["message"]
    assert service.get("/readyz").status_code == 200
    moved = list(tmp_path.glob("records.sqlite3.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == garbage
    score = service.post(
        "/v1/score",
        json={"preset": "mentor", "items": [{"completion": "\\boxed{4}", "ground_truth": "4"}], "run_id": "x"},
    )
    assert score.status_code == 200, score.text
    assert len(service.get("/v1/records", params={"run_id": "x"}).json()["records"]) == 1


def test_a_corrupt_record_file_can_be_refused_and_scoring_still_starts(make_client: Any, tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    garbage = _corrupt(path)
    service: TestClient = make_client(record_backend="sqlite", record_path=path, record_on_corrupt="refuse")
    recording = service.get("/healthz").json()["recording"]
    assert recording["status"] == "degraded" and "refuse" in recording["message"]
    assert path.read_bytes() == garbage
    score = service.post(
        "/v1/score", json={"preset": "mentor", "items": [{"completion": "\\boxed{4}", "ground_truth": "4"}]}
    )
    assert score.status_code == 200, score.text
    assert_error(service.get("/v1/records"), 503, "recording_unavailable")


def test_a_torn_jsonl_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(_row(0)) + "\n" + '{"run_id": "good", "ste')
    store = open_store("jsonl", path, flush_interval_s=60)
    assert store is not None
    store.append([_row(1)])
    store.close()
    assert [r["reason"] for r in query_records(path)] == ["r0", "r1"]


def test_the_records_command_names_a_corrupt_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mentor_server.api.cli_commands import main as cli_main

    path = tmp_path / "records.sqlite3"
    _corrupt(path)
    assert cli_main(["records", "--path", str(path)]) == 2
    assert "not a readable record file" in capsys.readouterr().err
