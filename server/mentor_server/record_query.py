"""Reading a score record file (SQLite or JSONL) without a running writer.

`query_records` returns rows as dicts (the `records` CLI command), `iter_records` streams them
(the dashboard); `query_page` returns a bounded page of records as JSON texts, the way
`/v1/records` serves them: stored JSON is passed through, never parsed and re-serialised, so a
page costs no more than its bytes.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

Backend = Literal["sqlite", "jsonl", "postgres"]
Row = dict[str, Any]


def backend_for(path: Path) -> Backend:
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "sqlite"


def _iter_jsonl(path: Path) -> Iterator[Row]:
    # errors="replace": a damaged byte costs its line, not the file.
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue  # a torn last line after a crash: skip it, keep the rest
            if isinstance(record, dict):
                yield record


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
    where, params = sql_filter(run_id, step)
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            f"SELECT * FROM score_records {where} ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset]
        ).fetchall()
    return [_from_sqlite_row(row) for row in rows]


def iter_records(
    path: Path, *, run_id: str | None = None, offset: int = 0, backend: Backend | None = None
) -> Iterator[Row]:
    """Every record (of one run, when given) in the order written, from the `offset`-th on, one
    at a time: a reader of a whole file (the dashboard) holds one row at a time, whatever the
    file's size, and a reader that has seen the first `offset` reads only what came since."""
    path = Path(path)
    if not path.exists():
        return
    backend = backend or backend_for(path)
    if backend == "jsonl":
        skipped = 0
        for record in _iter_jsonl(path):
            if run_id is None or record.get("run_id") == run_id:
                if skipped < offset:
                    skipped += 1
                    continue
                yield record
        return
    where, params = sql_filter(run_id, None)
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        query = f"SELECT * FROM score_records {where} ORDER BY id LIMIT -1 OFFSET ?"
        for row in conn.execute(query, [*params, offset]):
            yield _from_sqlite_row(row)


# ---------------------------------------------------------------------------- paging
_JSONL_KEYS = re.compile(r'^\{"run_id":(null|"(?:[^"\\]|\\.)*"),"step":(null|-?[0-9]+),')
"""The two filter fields at the start of a line this module wrote: read without parsing the rest."""


def _jsonl_key(line: str) -> tuple[Any, Any] | None:
    match = _JSONL_KEYS.match(line)
    if match:
        return json.loads(match.group(1)), json.loads(match.group(2))
    try:  # a line in another key order: parse it whole
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return (record.get("run_id"), record.get("step")) if isinstance(record, dict) else None


def _json_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "null"
    return json.dumps(value) if math.isfinite(value) else "null"


def _sqlite_record_text(row: tuple[Any, ...]) -> str:
    run_id, step, spec_hash, preset, item, reward, components, reason, error, created_at = row
    # The JSON columns are spliced in as stored: no parse and re-serialise, so a page costs
    # no more than its bytes, and an item nested hundreds of levels deep is served as it is.
    return (
        f'{{"run_id":{json.dumps(run_id)},"step":{_json_number(step)},"spec_hash":{json.dumps(spec_hash)},'
        f'"preset":{json.dumps(preset)},"item":{item},"reward":{_json_number(reward)},'
        f'"components":{components},"reason":{json.dumps(reason)},"error":{error or "null"},'
        f'"created_at":{_json_number(created_at)}}}'
    )


def query_page(
    path: Path,
    run_id: str | None = None,
    step: int | None = None,
    limit: int = 1000,
    offset: int = 0,
    max_bytes: int = 8 * 1024 * 1024,
    *,
    backend: Backend | None = None,
) -> tuple[list[str], int | None]:
    """Up to `limit` records from `offset`, each as its JSON text, and the next page's offset.

    A page stops early once its texts pass `max_bytes` (it holds at least one record), so a
    response is bounded whatever the records hold; the next offset is None after the last one.
    """
    path = Path(path)
    if not path.exists():
        return [], None
    backend = backend or backend_for(path)
    texts: list[str] = []
    size = 0
    more = False

    def take(text: str) -> bool:
        nonlocal size, more
        if len(texts) >= limit or (texts and size + len(text) > max_bytes):
            more = True
            return False
        texts.append(text)
        size += len(text) + 1
        return True

    if backend == "jsonl":
        skipped = 0
        with path.open(encoding="utf-8", errors="replace") as handle:
            for raw in handle:
                line = raw.strip()
                key = _jsonl_key(line) if line else None
                if key is None or (run_id is not None and key[0] != run_id) or (step is not None and key[1] != step):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                if not take(line):
                    break
    else:
        where, params = sql_filter(run_id, step)
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            cursor = conn.execute(
                "SELECT run_id, step, spec_hash, preset, item, reward, components, reason, error, created_at"
                f" FROM score_records {where} ORDER BY id LIMIT ? OFFSET ?",
                [*params, limit + 1, offset],
            )
            for row in cursor:
                if not take(_sqlite_record_text(row)):
                    break
    return texts, (offset + len(texts) if more else None)


def sql_filter(run_id: str | None, step: int | None, placeholder: str = "?") -> tuple[str, list[str | int]]:
    """The SQL WHERE clause and its parameters for a run and step filter (either may be None), with the
    driver's parameter placeholder (`?` for sqlite3, `%s` for psycopg)."""
    clauses: list[str] = []
    params: list[str | int] = []
    if run_id is not None:
        clauses.append(f"run_id = {placeholder}")
        params.append(run_id)
    if step is not None:
        clauses.append(f"step = {placeholder}")
        params.append(step)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params
