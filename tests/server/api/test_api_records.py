"""The score record: stores, the /v1/records endpoint and the `records` CLI command."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from _service_helpers import assert_error, wire_item
from fastapi.testclient import TestClient

from mentor_server.api.cli_commands import main as cli_main
from mentor_server.records import JSONLRecordStore, SQLiteRecordStore, open_store, query_records

BACKENDS = [("sqlite", "records.sqlite3"), ("jsonl", "records.jsonl")]


def _row(i: int, run: str = "run-a", step: int = 0) -> dict[str, Any]:
    return {
        "run_id": run,
        "step": step,
        "spec_hash": "h",
        "preset": "mentor",
        "item": {"completion": f"c{i}"},
        "reward": i / 10,
        "components": {"outcome": 1.0, "tool_names": None},
        "reason": f"r{i}",
        "error": None,
        "created_at": 1.0 + i,
    }


@pytest.mark.parametrize(("backend", "name"), BACKENDS, ids=[b for b, _ in BACKENDS])
def test_store_writes_in_order_and_close_drains_the_queue(tmp_path: Path, backend: str, name: str) -> None:
    # A long flush interval: without the drain in close(), nothing would be on disk yet.
    store = open_store(backend, tmp_path / name, flush_interval_s=60)
    assert store is not None
    for batch in range(5):
        store.append([_row(batch * 10 + i, step=batch) for i in range(10)])
    store.close()
    rows = query_records(tmp_path / name, limit=100)
    assert [r["item"]["completion"] for r in rows] == [f"c{i}" for i in range(50)]
    assert rows[3]["components"] == {"outcome": 1.0, "tool_names": None}
    assert [r["reward"] for r in query_records(tmp_path / name, step=2)] == [i / 10 for i in range(20, 30)]
    assert query_records(tmp_path / name, run_id="other") == []
    assert len(query_records(tmp_path / name, limit=5, offset=45)) == 5
    with pytest.raises(RuntimeError):
        store.append([_row(99)])


@pytest.mark.parametrize("cls", [SQLiteRecordStore, JSONLRecordStore], ids=["sqlite", "jsonl"])
def test_flush_makes_appended_rows_readable_and_concurrent_appends_all_land(tmp_path: Path, cls: type) -> None:
    store = cls(tmp_path / ("r.jsonl" if cls is JSONLRecordStore else "r.sqlite3"), flush_interval_s=60)

    def writer(run: str) -> None:
        for i in range(50):
            store.append([_row(i, run=run)])

    threads = [threading.Thread(target=writer, args=(f"run-{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.flush(5)
    for k in range(4):
        assert [r["reason"] for r in store.query(run_id=f"run-{k}", limit=1000)] == [f"r{i}" for i in range(50)]
    store.close()


def test_an_unserialisable_item_keeps_its_row(tmp_path: Path) -> None:
    store = SQLiteRecordStore(tmp_path / "r.sqlite3")
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    store.append([{**_row(0), "item": cyclic}, _row(1)])
    store.close()
    rows = query_records(tmp_path / "r.sqlite3")
    assert len(rows) == 2
    assert "unserialisable" in rows[0]["item"]


def test_sqlite_is_in_wal_mode(tmp_path: Path) -> None:
    SQLiteRecordStore(tmp_path / "r.sqlite3").close()
    with sqlite3.connect(tmp_path / "r.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(("backend", "name"), BACKENDS, ids=[b for b, _ in BACKENDS])
def test_scored_items_are_recorded_and_queryable(
    make_client: Any, parity_cases: list[dict[str, Any]], tmp_path: Path, backend: str, name: str
) -> None:
    service: TestClient = make_client(record_backend=backend, record_path=tmp_path / name)
    rewards = {}
    for step in (1, 2):
        items = [wire_item(c) for c in parity_cases[step * 10 : step * 10 + 7]]
        body = service.post(
            "/v1/score", json={"preset": "mentor", "items": items, "run_id": "exp", "step": step}
        ).json()
        rewards[step] = [r["reward"] for r in body["results"]]
    page = service.get("/v1/records", params={"run_id": "exp", "step": 2}).json()["records"]
    assert [r["reward"] for r in page] == rewards[2]
    assert page[0]["item"]["completion"] == parity_cases[20]["completion"]
    assert page[0]["spec_hash"] and page[0]["preset"] == "mentor" and page[0]["step"] == 2
    everything = service.get("/v1/records", params={"run_id": "exp"}).json()["records"]
    assert [r["reward"] for r in everything] == rewards[1] + rewards[2]
    assert len(service.get("/v1/records", params={"limit": 3}).json()["records"]) == 3


def test_records_endpoint_without_recording_is_a_404(client: TestClient) -> None:
    assert_error(client.get("/v1/records"), 404, "recording_disabled")


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 10**6}, {"step": -1}, {"offset": "x"}],
    ids=["limit-0", "limit-huge", "negative-step", "offset-not-int"],
)
def test_records_query_parameters_are_validated(client: TestClient, params: dict[str, Any]) -> None:
    assert_error(client.get("/v1/records", params=params), 422, "validation_error")


def test_records_cli_prints_the_filtered_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SQLiteRecordStore(tmp_path / "r.sqlite3")
    store.append([_row(i, step=i % 2) for i in range(6)])
    store.close()
    assert cli_main(["records", "--path", str(tmp_path / "r.sqlite3"), "--step", "1", "--limit", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["reason"] for line in lines] == ["r1", "r3"]
    assert cli_main(["records", "--path", str(tmp_path / "r.sqlite3"), "--format", "summary"]) == 0
    assert "reward=0.5000" in capsys.readouterr().out
    assert cli_main(["records", "--path", str(tmp_path / "missing.sqlite3")]) == 2


def test_an_item_error_is_recorded_and_served(make_client: Any, tmp_path: Path) -> None:
    service: TestClient = make_client(record_backend="sqlite", record_path=tmp_path / "r.sqlite3")
    good = {"completion": "\\boxed{4}<|im_end|>", "ground_truth": "4", "teacher_tools": ["add"]}
    bad = {"completion": "x", "reference": {"calls": [{"name": ""}]}}  # valid wire, invalid reference
    body = service.post("/v1/score", json={"preset": "mentor", "items": [good, bad], "run_id": "err"}).json()
    assert body["results"][1]["error"] is not None
    records = service.get("/v1/records", params={"run_id": "err"}).json()["records"]
    assert records[0]["error"] is None
    assert records[1]["error"]["type"] == body["results"][1]["error"]["type"]
    assert records[1]["reward"] is None
