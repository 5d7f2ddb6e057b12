"""The score record: every scored item, appended to SQLite (the embedded default) or JSONL.

What the paper's training code saved per step, made queryable: the item's inputs, its reward,
components and reason, the spec hash and preset, and the run id and step the trainer gave.
The request path only puts rows on a queue (`RecordStore.append`); one background thread
writes them in batches (one transaction per batch; SQLite in WAL mode, so readers never block
the writer). `flush()` waits until everything appended so far is on disk, and `close()` drains
the queue before it returns: the service calls it on shutdown (SIGTERM included, which uvicorn
turns into a lifespan shutdown), so nothing it answered for is lost.

`query_records(path, ...)` reads a record file without a running writer (the CLI uses it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("mentor_server.records")

Backend = Literal["sqlite", "jsonl"]
Row = dict[str, Any]

RECORD_FIELDS = (
    "run_id",
    "step",
    "spec_hash",
    "preset",
    "item",
    "reward",
    "components",
    "reason",
    "error",
    "created_at",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS score_records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT,
    step        INTEGER,
    spec_hash   TEXT NOT NULL,
    preset      TEXT,
    item        TEXT NOT NULL,
    reward      REAL,
    components  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    error       TEXT,
    created_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS score_records_run_step ON score_records (run_id, step, id);
"""


def backend_for(path: Path) -> Backend:
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "sqlite"


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        # The record must not lose the row because one input cannot be serialised.
        return json.dumps({"unserialisable": f"{type(exc).__name__}: {exc}"[:200]})


class RecordStore(ABC):
    """A write-behind record store. `append` never blocks on disk."""

    def __init__(self, path: Path, *, flush_interval_s: float = 0.5, batch_size: int = 2000) -> None:
        self.path = Path(path)
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        self.written = 0
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open()
        self._thread = threading.Thread(target=self._writer, name=f"records:{self.path.name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ request side
    def append(self, rows: list[Row]) -> None:
        if not rows:
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("the record store is closed")
            self._queue.put(("rows", rows))

    def flush(self, timeout_s: float | None = 10.0) -> bool:
        """Wait until every row appended before this call is written. False on timeout."""
        done = threading.Event()
        with self._lock:
            if self._closed:
                return True
            self._queue.put(("flush", done))
        return done.wait(timeout_s)

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Write everything still queued, then stop the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(("close", None))
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("the record writer did not finish within %s s; rows may be missing", timeout_s)

    def query(
        self, run_id: str | None = None, step: int | None = None, limit: int = 1000, offset: int = 0
    ) -> list[Row]:
        self.flush()
        return query_records(self.path, run_id=run_id, step=step, limit=limit, offset=offset, backend=self.backend)

    # ------------------------------------------------------------------ writer thread
    def _writer(self) -> None:
        pending: list[Row] = []
        waiters: list[threading.Event] = []
        first_at: float | None = None
        stop = False
        while not stop:
            timeout = None if first_at is None else max(0.0, first_at + self.flush_interval_s - time.monotonic())
            try:
                kind, payload = self._queue.get(timeout=timeout)
            except queue.Empty:
                kind, payload = "tick", None
            if kind == "rows":
                pending.extend(payload)
                first_at = first_at or time.monotonic()
            elif kind == "flush":
                waiters.append(payload)
            elif kind == "close":
                stop = True
            due = first_at is not None and time.monotonic() - first_at >= self.flush_interval_s
            if pending and (stop or waiters or due or len(pending) >= self.batch_size):
                self._safe_write(pending)
                pending = []
                first_at = None
            for event in waiters:
                event.set()
            waiters = []
        with contextlib.suppress(Exception):
            self._close()

    def _safe_write(self, rows: list[Row]) -> None:
        try:
            self._write(rows)
            self.written += len(rows)
        except Exception:
            log.exception("failed to write %d score records to %s", len(rows), self.path)

    # ------------------------------------------------------------------ backend
    @property
    @abstractmethod
    def backend(self) -> Backend: ...

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _write(self, rows: list[Row]) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...


class SQLiteRecordStore(RecordStore):
    _conn: sqlite3.Connection | None = None

    @property
    def backend(self) -> Backend:
        return "sqlite"

    def _open(self) -> None:
        # Create the schema up front (so a bad path fails at start-up, not in the thread).
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:  # created in, and used only by, the writer thread
            self._conn = sqlite3.connect(self.path)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        return self._conn

    def _write(self, rows: list[Row]) -> None:
        conn = self._connection()
        with conn:
            conn.executemany(
                "INSERT INTO score_records (run_id, step, spec_hash, preset, item, reward, components,"
                " reason, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        row.get("run_id"),
                        row.get("step"),
                        row.get("spec_hash", ""),
                        row.get("preset"),
                        _dumps(row.get("item")),
                        row.get("reward"),
                        _dumps(row.get("components") or {}),
                        row.get("reason", ""),
                        None if row.get("error") is None else _dumps(row["error"]),
                        row.get("created_at", time.time()),
                    )
                    for row in rows
                ],
            )

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class JSONLRecordStore(RecordStore):
    _file: Any = None

    @property
    def backend(self) -> Backend:
        return "jsonl"

    def _open(self) -> None:
        self.path.touch(exist_ok=True)

    def _write(self, rows: list[Row]) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        lines = []
        for row in rows:
            record = {name: row.get(name) for name in RECORD_FIELDS}
            try:
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
            except (TypeError, ValueError, RecursionError):
                # Keep the row; only the input that cannot be serialised is replaced.
                record["item"] = json.loads(_dumps(record["item"]))
                line = _dumps(record)
            lines.append(line + "\n")
        self._file.write("".join(lines))
        self._file.flush()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def open_store(backend: str, path: Path, *, flush_interval_s: float = 0.5) -> RecordStore | None:
    """The store for a settings pair; None when recording is off."""
    if backend == "none":
        return None
    if backend == "sqlite":
        return SQLiteRecordStore(path, flush_interval_s=flush_interval_s)
    if backend == "jsonl":
        return JSONLRecordStore(path, flush_interval_s=flush_interval_s)
    raise ValueError(f"unknown record backend {backend!r}")


# ---------------------------------------------------------------------------- reading
def _iter_jsonl(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line after a crash: skip it, keep the rest


def _from_sqlite_row(row: sqlite3.Row) -> Row:
    return {
        "run_id": row["run_id"],
        "step": row["step"],
        "spec_hash": row["spec_hash"],
        "preset": row["preset"],
        "item": json.loads(row["item"]),
        "reward": row["reward"],
        "components": json.loads(row["components"]),
        "reason": row["reason"],
        "error": None if row["error"] is None else json.loads(row["error"]),
        "created_at": row["created_at"],
    }


def query_records(
    path: Path,
    *,
    run_id: str | None = None,
    step: int | None = None,
    limit: int = 1000,
    offset: int = 0,
    backend: Backend | None = None,
) -> list[Row]:
    """Records in the order they were written, filtered by run id and step."""
    path = Path(path)
    if not path.exists():
        return []
    backend = backend or backend_for(path)
    if backend == "jsonl":
        out: list[Row] = []
        skipped = 0
        for record in _iter_jsonl(path):
            if run_id is not None and record.get("run_id") != run_id:
                continue
            if step is not None and record.get("step") != step:
                continue
            if skipped < offset:
                skipped += 1
                continue
            out.append(record)
            if len(out) >= limit:
                break
        return out
    clauses: list[str] = []
    params: list[str | int] = []
    if run_id is not None:
        clauses.append("run_id = ?")
        params.append(run_id)
    if step is not None:
        clauses.append("step = ?")
        params.append(step)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            f"SELECT * FROM score_records {where} ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset]
        ).fetchall()
    return [_from_sqlite_row(row) for row in rows]
