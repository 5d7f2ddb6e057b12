"""The score record: every scored item, appended to SQLite (the embedded default) or JSONL.

What the paper's training code saved per step, made queryable: the item's inputs, its reward,
components and reason, the spec hash and preset, and the run id and step the trainer gave.
The request path only puts rows on a queue (`RecordStore.append`); one background thread
writes them in batches (one transaction per batch; SQLite in WAL mode, so readers never block
the writer). `flush()` waits until everything appended so far is on disk, and `close()` drains
the queue before it returns: the service calls it on shutdown (SIGTERM included, which uvicorn
turns into a lifespan shutdown), so nothing it answered for is lost.

`query_records(path, ...)` reads a record file without a running writer (the CLI uses it);
`query_page` serves `/v1/records` (both live in `record_query`). A row the backend refuses
never costs its batch: the rest is written, the row is stored sanitised, and only a row that
cannot be stored at all is counted (the health endpoint reports it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from .record_query import Backend, Row, query_page
from .record_query import backend_for as backend_for  # re-exported: the readers live there
from .record_query import query_records as query_records

log = logging.getLogger("mentor_server.records")


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


_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8_safe(text: str) -> str:
    """`text`, with any lone surrogate (a model can emit one) replaced by U+FFFD.

    A lone surrogate cannot be stored as UTF-8 (SQLite refuses the row) and, escaped as
    `\\ud800`, is refused by strict JSON parsers (pydantic's among them) when served, so the
    record keeps the row with that one character replaced.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _dumps(value: Any) -> str:
    try:
        return _utf8_safe(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError) as exc:
        # The record must not lose the row because one input cannot be serialised.
        return json.dumps({"unserialisable": f"{type(exc).__name__}: {exc}"[:200]})


def _text(value: Any) -> str | None:
    """A text column's value that SQLite can store."""
    if value is None:
        return None
    return _utf8_safe(value if isinstance(value, str) else str(value))


def _number(value: Any, kind: type) -> Any:
    """An INTEGER/REAL column's value, or None when it is not one (a row is never refused for it)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if kind is int:
        return int(value) if isinstance(value, int) and -(2**63) <= value < 2**63 else None
    return float(value) if math.isfinite(value) else None


def sanitized(row: Row) -> Row:
    """`row` with every field forced into what its column holds; what could not be kept is said."""
    out: Row = {
        "run_id": _text(row.get("run_id")),
        "step": _number(row.get("step"), int),
        "spec_hash": _text(row.get("spec_hash")) or "",
        "preset": _text(row.get("preset")),
        "item": json.loads(_dumps(row.get("item"))),
        "reward": _number(row.get("reward"), float),
        "components": json.loads(_dumps(row.get("components") or {})),
        "reason": _text(row.get("reason")) or "",
        "error": None if row.get("error") is None else json.loads(_dumps(row.get("error"))),
        "created_at": _number(row.get("created_at"), float) or time.time(),
    }
    return out


class RecordStore(ABC):
    """A write-behind record store. `append` never blocks on disk."""

    def __init__(self, path: Path, *, flush_interval_s: float = 0.5, batch_size: int = 2000) -> None:
        self.path = Path(path)
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        self.written = 0
        self.sanitized_rows = 0
        self.failed_rows = 0
        self.last_error: str | None = None
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
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
        """Write a batch; if it fails, write its rows one by one so that one bad row (a value
        the backend refuses) never costs the others: a row that still fails is written
        sanitised, and only a row that cannot be written at all is counted and reported."""
        try:
            self._write(rows)
            self.written += len(rows)
            return
        except Exception as exc:
            log.warning("a batch of %d score records failed (%s); writing them one by one", len(rows), exc)
        for row in rows:
            try:
                self._write([row])
                self.written += 1
                continue
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            try:
                self._write([sanitized(row)])
                self.written += 1
                self.sanitized_rows += 1
                log.warning("a score record was stored sanitised (%s)", problem)
            except Exception as exc:
                self.failed_rows += 1
                self.last_error = f"a score record could not be written: {type(exc).__name__}: {exc}"
                log.error("%s", self.last_error)

    def health(self) -> tuple[str, str | None]:
        """("ok", None), or ("degraded", why) once a row was lost or the writer stopped."""
        if not self._thread.is_alive() and not self._closed:
            return "degraded", "the record writer stopped"
        if self.failed_rows:
            return "degraded", f"{self.failed_rows} score records could not be written ({self.last_error})"
        return "ok", None

    def query_page(
        self, run_id: str | None, step: int | None, limit: int, offset: int, max_bytes: int
    ) -> tuple[list[str], int | None]:
        """Records as JSON texts (see `query_page`), after waiting for pending rows to be written."""
        self.flush()
        return query_page(self.path, run_id, step, limit, offset, max_bytes, backend=self.backend)

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
                        _text(row.get("run_id")),
                        row.get("step"),
                        _text(row.get("spec_hash", "")),
                        _text(row.get("preset")),
                        _dumps(row.get("item")),
                        row.get("reward"),
                        _dumps(row.get("components") or {}),
                        _text(row.get("reason", "")),
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        # A torn last line (a crash mid-write) would swallow the next record appended to it.
        with self.path.open("rb+") as handle:
            if handle.seek(0, 2) > 0:
                handle.seek(-1, 2)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")

    def _write(self, rows: list[Row]) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        lines = []
        for row in rows:
            record = {name: row.get(name) for name in RECORD_FIELDS}
            try:
                line = _utf8_safe(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
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


# ---------------------------------------------------------------------------- opening
def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(target.with_name(target.name + suffix))
    return target


def open_store_or_report(
    backend: str, path: Path, *, flush_interval_s: float = 0.5, on_corrupt: str = "move_aside"
) -> tuple[RecordStore | None, str | None]:
    """`open_store`, but a record file that cannot be opened never stops the caller from starting.

    Returns (store, problem). A corrupt file is moved aside (`<name>.corrupt-<time>`) and a
    fresh one started, or, with `on_corrupt="refuse"`, left alone with recording off; any
    other failure (a directory that cannot be written) leaves recording off. `problem` says
    what happened, for the health endpoint; it is None when all is well.
    """
    path = Path(path)
    try:
        return open_store(backend, path, flush_interval_s=flush_interval_s), None
    except sqlite3.DatabaseError as exc:
        problem = f"the record file {str(path)!r} is not a readable SQLite database ({exc})"
    except (OSError, ValueError) as exc:
        return None, f"recording is off: the record file {str(path)!r} cannot be opened ({type(exc).__name__}: {exc})"
    if on_corrupt == "refuse":
        return None, f"recording is off: {problem}; it was left as it is (record_on_corrupt=refuse)"
    try:
        moved = _move_aside(path)
        store = open_store(backend, path, flush_interval_s=flush_interval_s)
    except (OSError, sqlite3.DatabaseError) as exc:
        return None, f"recording is off: {problem}, and a fresh one could not be started ({exc})"
    return store, f"{problem}; it was moved to {str(moved)!r} and recording goes on in a fresh file"
