"""Score records in PostgreSQL: one table that every replica of the service writes to.

SQLite stays the embedded default; this backend is for many replicas (Ray Serve, a Kubernetes
Deployment) whose records must land in one place a user can query. It is chosen by a URL
(`record_url: postgresql://user:password@host:5432/db`) and keeps `RecordStore`'s contract:
requests only queue rows, one writer thread per replica sends them in batches (one `COPY` per
batch, in one transaction), a batch the server refuses is written row by row and a refused row
is stored sanitised, and `close()` (run on SIGTERM) drains the queue. The table has the SQLite
columns; `id` comes from an identity column, so rows from all replicas are read back in the
order the server took them, and the JSON columns hold JSON text exactly as SQLite does (cast
them to `jsonb` in SQL to query inside them).

A connection the server drops (a restart, a fail-over) is not a refused row: the writer keeps
the batch, reconnects with backoff and sends it again. Only an outage longer than
`reconnect_window_s` costs rows; they are counted and `/healthz` reports recording as
degraded, and the next batch tries the server again, so recording resumes by itself. psycopg
3 is the driver (the `postgres` extra); importing this module does not need it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import re
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .record_query import Backend, Row, _sqlite_record_text, sql_filter
from .records import RecordStore, _dumps, _text

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("mentor_server.records")

URL_SCHEMES = ("postgresql://", "postgres://")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS score_records (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      TEXT,
    step        BIGINT,
    spec_hash   TEXT NOT NULL,
    preset      TEXT,
    item        TEXT NOT NULL,
    reward      DOUBLE PRECISION,
    components  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    error       TEXT,
    created_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS score_records_run_step ON score_records (run_id, step, id);
"""

_SCHEMA_LOCK = 0x6D656E746F72
"""An advisory lock id ("mentor"): replicas starting together would otherwise race to create the table."""

_COLUMNS = "run_id, step, spec_hash, preset, item, reward, components, reason, error, created_at"
_COPY = f"COPY score_records ({_COLUMNS}) FROM STDIN"


class StoreUnavailableError(ConnectionError):
    """The PostgreSQL server could not be reached within the reconnect window."""


def is_postgres_url(value: str | None) -> bool:
    return bool(value) and str(value).startswith(URL_SCHEMES)


def redacted(url: str) -> str:
    """`url` without its password, for logs and health messages."""
    return re.sub(r"^(postgres(?:ql)?://[^:/@]*):[^@]*@", r"\1:***@", url)


def _driver() -> ModuleType:
    try:
        return importlib.import_module("psycopg")
    except ImportError as exc:
        raise ImportError(
            "PostgreSQL score records need the psycopg driver: pip install 'mentor-reward[postgres]'"
        ) from exc


def _connect(url: str, connect_timeout_s: float) -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] = _driver().connect(
        url, autocommit=True, connect_timeout=max(1, round(connect_timeout_s)), application_name="mentor-reward"
    )
    return conn


def _pg_text(value: Any) -> str | None:
    # PostgreSQL text cannot hold NUL; like a lone surrogate, it becomes U+FFFD rather than cost the row.
    text = _text(value)
    return None if text is None else text.replace("\x00", "\ufffd")


def _values(row: Row) -> tuple[Any, ...]:
    return (
        _pg_text(row.get("run_id")),
        row.get("step"),
        _pg_text(row.get("spec_hash", "")),
        _pg_text(row.get("preset")),
        _dumps(row.get("item")),
        row.get("reward"),
        _dumps(row.get("components") or {}),
        _pg_text(row.get("reason", "")),
        None if row.get("error") is None else _dumps(row["error"]),
        row.get("created_at", time.time()),
    )


def _connection_lost(exc: BaseException, conn: psycopg.Connection[Any]) -> bool:
    """True when `exc` means the connection is gone (retry elsewhere), not that the data was refused."""
    driver = _driver()
    return isinstance(exc, driver.OperationalError | driver.InterfaceError) and (conn.closed or conn.broken)


# ---------------------------------------------------------------------------- reading
def _select(
    url: str, run_id: str | None, step: int | None, limit: int, offset: int, connect_timeout_s: float
) -> list[tuple[Any, ...]]:
    where, params = sql_filter(run_id, step, "%s")
    with _connect(url, connect_timeout_s) as conn:
        rows: list[tuple[Any, ...]] = conn.execute(
            f"SELECT {_COLUMNS} FROM score_records {where} ORDER BY id LIMIT %s OFFSET %s",
            [*params, limit, offset],
        ).fetchall()
    return rows


def query_postgres_records(
    url: str,
    *,
    run_id: str | None = None,
    step: int | None = None,
    limit: int = 1000,
    offset: int = 0,
    connect_timeout_s: float = 10.0,
) -> list[Row]:
    """Records in the order the server stored them, filtered by run id and step (the CLI's reader)."""
    out: list[Row] = []
    for values in _select(url, run_id, step, limit, offset, connect_timeout_s):
        run, step_, spec_hash, preset, item, reward, components, reason, error, created_at = values
        out.append(
            {
                "run_id": run,
                "step": step_,
                "spec_hash": spec_hash,
                "preset": preset,
                "item": json.loads(item),
                "reward": reward,
                "components": json.loads(components),
                "reason": reason,
                "error": None if error is None else json.loads(error),
                "created_at": created_at,
            }
        )
    return out


def query_postgres_page(
    url: str,
    run_id: str | None = None,
    step: int | None = None,
    limit: int = 1000,
    offset: int = 0,
    max_bytes: int = 8 * 1024 * 1024,
    *,
    connect_timeout_s: float = 10.0,
) -> tuple[list[str], int | None]:
    """A page of records as JSON texts and the next offset, as `record_query.query_page` serves SQLite."""
    texts: list[str] = []
    size = 0
    more = False
    for values in _select(url, run_id, step, limit + 1, offset, connect_timeout_s):
        text = _sqlite_record_text(values)  # same columns, same stored JSON text: spliced as is
        if len(texts) >= limit or (texts and size + len(text) > max_bytes):
            more = True
            break
        texts.append(text)
        size += len(text) + 1
    return texts, (offset + len(texts) if more else None)


# ---------------------------------------------------------------------------- the store
class PostgresRecordStore(RecordStore):
    """A `RecordStore` writing to a PostgreSQL table shared by every replica."""

    def __init__(
        self,
        url: str,
        *,
        flush_interval_s: float = 0.5,
        batch_size: int = 2000,
        reconnect_window_s: float = 20.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if not is_postgres_url(url):
            raise ValueError(f"a PostgreSQL record URL starts with postgresql:// (got {redacted(url)!r})")
        self.url = url
        self.reconnect_window_s = reconnect_window_s
        self.connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection[Any] | None = None
        self._down_since: float | None = None
        self._last_attempt = 0.0
        self._read_lock = threading.Lock()
        # `path` is only a label here (logs, the writer thread's name): never a file.
        super().__init__(Path(redacted(url)), flush_interval_s=flush_interval_s, batch_size=batch_size)

    @property
    def backend(self) -> Backend:
        return "postgres"

    # ------------------------------------------------------------------ connection
    def _open(self) -> None:
        # Start-up checks the URL, the credentials and the table at once, so that a wrong URL is
        # reported by /healthz now, not found later by the writer thread.
        conn = self._connect_within(time.monotonic() + self.reconnect_window_s)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
            conn.execute(_SCHEMA)
        conn.close()

    def _connect_within(self, deadline: float) -> psycopg.Connection[Any]:
        delay = 0.1
        while True:
            self._last_attempt = time.monotonic()
            try:
                return _connect(self.url, self.connect_timeout_s)
            except _driver().OperationalError as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreUnavailableError(
                        f"PostgreSQL at {redacted(self.url)!r} is unreachable ({str(exc).strip()[:300]})"
                    ) from exc
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)

    def _connection(self) -> psycopg.Connection[Any]:
        """The writer's connection; reconnects within the window that started when it was lost."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        deadline = self._down_since + self.reconnect_window_s
        if now >= deadline and now - self._last_attempt < 1.0:
            # Past the window: one attempt per second at most, so an unreachable host does not
            # cost a connect time-out for every row of a batch.
            raise StoreUnavailableError(f"PostgreSQL at {redacted(self.url)!r} is still unreachable")
        self._conn = self._connect_within(max(deadline, now))
        if self._down_since is not None and now - self._down_since > 0.5:
            log.warning("reconnected to PostgreSQL at %s", redacted(self.url))
        self._down_since = None
        return self._conn

    # ------------------------------------------------------------------ writer thread
    def _safe_write(self, rows: list[Row]) -> None:
        try:
            self._connection()
        except StoreUnavailableError as exc:
            # Nothing to isolate: no row was refused, the server is away. Count them and say so.
            self.failed_rows += len(rows)
            self.last_error = f"{len(rows)} score records could not be written: {exc}"
            log.error("%s", self.last_error)
            return
        super()._safe_write(rows)

    def _write(self, rows: list[Row]) -> None:
        values = [_values(row) for row in rows]
        while True:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cursor, cursor.copy(_COPY) as copy:
                    for value in values:
                        copy.write_row(value)
                return
            except Exception as exc:
                if not _connection_lost(exc, conn):
                    raise  # the server refused the data: the caller isolates the bad row
                log.warning("the PostgreSQL connection was lost (%s); sending the batch again", exc)
                with contextlib.suppress(Exception):
                    conn.close()
                self._conn = None

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ reading
    def query(
        self, run_id: str | None = None, step: int | None = None, limit: int = 1000, offset: int = 0
    ) -> list[Row]:
        self.flush()
        with self._read_lock:
            return query_postgres_records(
                self.url, run_id=run_id, step=step, limit=limit, offset=offset, connect_timeout_s=self.connect_timeout_s
            )

    def query_page(
        self, run_id: str | None, step: int | None, limit: int, offset: int, max_bytes: int
    ) -> tuple[list[str], int | None]:
        self.flush()
        with self._read_lock:
            return query_postgres_page(
                self.url, run_id, step, limit, offset, max_bytes, connect_timeout_s=self.connect_timeout_s
            )


def open_postgres_store_or_report(
    url: str, *, flush_interval_s: float = 0.5, reconnect_window_s: float = 20.0
) -> tuple[PostgresRecordStore | None, str | None]:
    """The store, or (None, why) when the server cannot be reached or the table not created.

    Like a SQLite file that cannot be opened, this never keeps the service from scoring: it
    leaves recording off and `/healthz` and `/v1/records` (503) say why.
    """
    try:
        store = PostgresRecordStore(url, flush_interval_s=flush_interval_s, reconnect_window_s=reconnect_window_s)
        return store, None
    except ImportError as exc:
        return None, f"recording is off: {exc}"
    except Exception as exc:
        return None, f"recording is off: the PostgreSQL record store {redacted(url)!r} cannot be opened ({exc})"
