"""The PostgreSQL record store against a real server: order, filters, paging, bad rows, drains, outages.

Each test gets a fresh database on the session's server (conftest.py). The outage tests stop
and start the server under a running store, which is what a restart or a fail-over does to
the service's connection.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

import pytest
from pg_process import PostgresServer, count_rows

from mentor_server.api.cli_commands import main as cli_main
from mentor_server.records_postgres import (
    PostgresRecordStore,
    open_postgres_store_or_report,
    query_postgres_page,
    query_postgres_records,
    redacted,
)

pytestmark = pytest.mark.e2e


def _row(i: int, run: str = "run-a", step: int = 0, **extra: Any) -> dict[str, Any]:
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
        **extra,
    }


def test_rows_come_back_in_order_filtered_and_paged(pg_url: str) -> None:
    # A long flush interval: without the drain in close(), nothing would be in the table yet.
    store = PostgresRecordStore(pg_url, flush_interval_s=60)
    for batch in range(5):
        store.append([_row(batch * 10 + i, step=batch) for i in range(10)])
    store.close()
    rows = query_postgres_records(pg_url, limit=100)
    assert [r["item"]["completion"] for r in rows] == [f"c{i}" for i in range(50)]
    assert rows[3]["components"] == {"outcome": 1.0, "tool_names": None}
    assert rows[3] == {**_row(3), "step": 0}
    assert [r["reward"] for r in query_postgres_records(pg_url, step=2)] == [i / 10 for i in range(20, 30)]
    assert query_postgres_records(pg_url, run_id="other") == []
    assert len(query_postgres_records(pg_url, limit=5, offset=45)) == 5

    texts, next_offset = query_postgres_page(pg_url, "run-a", None, 20, 0)
    assert next_offset == 20 and [json.loads(t) for t in texts] == rows[:20]
    texts, next_offset = query_postgres_page(pg_url, None, None, 100, 40)
    assert next_offset is None and len(texts) == 10
    # A byte bound stops the page early but never below one record.
    texts, next_offset = query_postgres_page(pg_url, None, None, 100, 0, max_bytes=1)
    assert len(texts) == 1 and next_offset == 1
    with pytest.raises(RuntimeError):
        store.append([_row(99)])


def test_rows_the_server_refuses_cost_only_themselves(pg_url: str) -> None:
    store = PostgresRecordStore(pg_url, flush_interval_s=60)
    rows = [_row(i) for i in range(40)]
    rows[5]["step"] = 2**70  # out of BIGINT's range: the server refuses the whole COPY
    rows[9]["run_id"] = "a\x00b"  # PostgreSQL text cannot hold NUL
    rows[11]["reason"] = "lone \ud800 surrogate"
    rows[13]["reward"] = math.nan
    rows[17]["step"] = True  # not an integer to PostgreSQL
    store.append(rows)
    assert store.flush(60)
    store.close()
    stored = query_postgres_records(pg_url, limit=100)
    assert len(stored) == 40 and store.failed_rows == 0
    assert [r["item"]["completion"] for r in stored] == [f"c{i}" for i in range(40)]
    assert stored[5]["step"] is None and stored[17]["step"] is None  # kept, with what could be kept
    assert stored[9]["run_id"] == "a\ufffdb"
    assert stored[11]["reason"] == "lone \ufffd surrogate"
    assert math.isnan(stored[13]["reward"])
    assert store.sanitized_rows == 2
    assert store.health() == ("ok", None)


def test_concurrent_writers_sharing_one_table_lose_nothing(pg_url: str) -> None:
    stores = [PostgresRecordStore(pg_url, flush_interval_s=0.05, batch_size=64) for _ in range(2)]

    def writer(store: PostgresRecordStore, run: str) -> None:
        for step in range(40):
            store.append([_row(i, run=run, step=step) for i in range(25)])

    threads = [threading.Thread(target=writer, args=(s, f"run-{n}")) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert count_rows(pg_url) == 2 * 40 * 25
    for run in ("run-0", "run-1"):
        rows = query_postgres_records(pg_url, run_id=run, limit=10_000)
        # Each writer's rows keep their own order in the shared table.
        assert [(r["step"], r["item"]["completion"]) for r in rows] == [
            (step, f"c{i}") for step in range(40) for i in range(25)
        ]


def test_a_server_restart_under_load_loses_no_row(pg_server: PostgresServer, pg_url: str) -> None:
    store = PostgresRecordStore(pg_url, flush_interval_s=0.05, batch_size=50, reconnect_window_s=120)
    stop = threading.Event()
    sent = 0

    def writer() -> None:
        nonlocal sent
        while not stop.is_set():
            store.append([_row(sent + i, step=sent // 20) for i in range(20)])
            sent += 20
            time.sleep(0.005)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.5)
        pg_server.stop()  # cuts the writer's connection mid-stream
        time.sleep(1.0)  # rows keep arriving while the server is away
        pg_server.start()
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
        pg_server.start()  # no-op when running; a failed test leaves the server up for the others
    assert store.flush(120)
    store.close()
    rows = query_postgres_records(pg_url, limit=1_000_000)
    assert store.failed_rows == 0 and sent > 0
    # Every row once: the batch cut by the stop was rolled back and sent again.
    assert sorted(int(r["item"]["completion"][1:]) for r in rows) == list(range(sent))


def test_an_outage_past_the_window_is_counted_reported_and_recovered(pg_server: PostgresServer, pg_url: str) -> None:
    store = PostgresRecordStore(pg_url, flush_interval_s=0.05, reconnect_window_s=1.0)
    store.append([_row(i) for i in range(10)])
    assert store.flush(60)
    pg_server.stop()
    try:
        store.append([_row(i) for i in range(10, 15)])
        assert store.flush(60)
        status, message = store.health()
        assert store.failed_rows == 5 and status == "degraded"
        assert message is not None and "unreachable" in message and "5 score records" in message
    finally:
        pg_server.start()
    time.sleep(1.1)  # past the one-attempt-per-second pause
    store.append([_row(i) for i in range(15, 20)])
    assert store.flush(60)
    store.close()
    stored = [r["item"]["completion"] for r in query_postgres_records(pg_url, limit=100)]
    assert stored == [f"c{i}" for i in [*range(10), *range(15, 20)]]


def test_an_unreachable_server_at_start_leaves_recording_off_with_the_reason() -> None:
    url = "postgresql://mentor:secret@127.0.0.1:9/none"  # the discard port: nothing listens
    store, problem = open_postgres_store_or_report(url, reconnect_window_s=0.5)
    assert store is None and problem is not None
    assert "recording is off" in problem and "secret" not in problem and "mentor:***@" in problem
    assert redacted(url) == "postgresql://mentor:***@127.0.0.1:9/none"


def test_the_records_command_reads_the_store(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = PostgresRecordStore(pg_url)
    store.append([_row(i, step=i % 2) for i in range(6)])
    store.close()
    assert cli_main(["records", "--url", pg_url, "--step", "1", "--format", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["item"]["completion"] for line in lines] == ["c1", "c3", "c5"]
    assert cli_main(["records", "--url", pg_url, "--limit", "1", "--format", "summary"]) == 0
    assert capsys.readouterr().out.startswith("run=run-a step=0 preset=mentor reward=0.0000")
    assert cli_main(["records", "--url", "postgresql://mentor:pw@127.0.0.1:9/x"]) == 2
    err = capsys.readouterr().err
    assert "cannot read the records" in err and ":pw@" not in err
    assert cli_main(["records", "--url", "mysql://x"]) == 2
