"""`mentor-reward report` and the record reader it streams from (`iter_records`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mentor_server.cli import main
from mentor_server.record_query import iter_records
from mentor_server.records import open_store

BACKENDS = [("sqlite", "records.sqlite3"), ("jsonl", "records.jsonl")]


def _rows(run: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run,
            "step": i // 2,
            "spec_hash": "h",
            "preset": "mentor",
            "item": {"completion": f'<tool_call>{{"name": "add", "arguments": {{"a": {i}}}}}</tool_call>'},
            "reward": i / n,
            "components": {"outcome": 1.0},
            "reason": "r",
            "error": None,
            "created_at": 1.0,
        }
        for i in range(n)
    ]


def _write(path: Path, backend: str, rows: list[dict[str, Any]]) -> None:
    store = open_store(backend, path)
    assert store is not None
    store.append(rows)
    store.close()


@pytest.mark.parametrize(("backend", "name"), BACKENDS, ids=[b for b, _ in BACKENDS])
def test_iter_records_streams_every_record_in_order_and_filters_by_run(tmp_path: Path, backend: str, name: str) -> None:
    path = tmp_path / name
    _write(path, backend, _rows("a", 5) + _rows("b", 3) + _rows("a", 2))
    everything = list(iter_records(path))
    assert [r["run_id"] for r in everything] == ["a"] * 5 + ["b"] * 3 + ["a"] * 2
    assert [r["reward"] for r in iter_records(path, run_id="b")] == [0.0, 1 / 3, 2 / 3]
    assert everything[0]["item"]["completion"].startswith("<tool_call>")
    # From an offset: what a reader that has seen the first records has not read yet.
    assert list(iter_records(path, offset=7)) == everything[7:]
    assert [r["reward"] for r in iter_records(path, run_id="a", offset=5)] == [0.0, 0.5]
    assert list(iter_records(tmp_path / "missing.sqlite3")) == []


@pytest.mark.parametrize(("backend", "name"), BACKENDS, ids=[b for b, _ in BACKENDS])
def test_report_writes_one_self_contained_page(
    tmp_path: Path, backend: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    _write(path, backend, _rows("exp1", 10) + _rows("exp2", 4))
    out = tmp_path / "out" / "report.html"
    assert main(["report", "--records", str(path), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    page = out.read_text()
    # Nothing is loaded from anywhere: no src/href attribute at all, every script inline.
    assert not re.search(r"\b(src|href)=", page)
    data = json.loads(re.search(r'id="dashboard-data">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
    assert [r["run_id"] for r in data["runs"]] == ["exp1", "exp2"]
    assert main(["report", "--records", str(path), "--out", str(out), "--run-id", "exp2"]) == 0
    data = json.loads(re.search(r'id="dashboard-data">(.*?)</script>', out.read_text(), re.S).group(1))  # type: ignore[union-attr]
    assert [r["run_id"] for r in data["runs"]] == ["exp2"] and data["n_records"] == 4


def test_report_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "--records", str(tmp_path / "missing.sqlite3"), "--out", str(out)]) == 2
    assert "no record file" in capsys.readouterr().err
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    assert main(["report", "--records", str(garbage), "--out", str(out)]) == 2
    assert "not a readable record file" in capsys.readouterr().err
    good = tmp_path / "r.sqlite3"
    _write(good, "sqlite", _rows("a", 2))
    assert main(["report", "--records", str(good), "--out", str(out), "--toolset", "nope"]) == 2
    assert "--toolset" in capsys.readouterr().err
    assert not out.exists()
