"""docs/scale-out.md's PostgreSQL block runs as written against a real server.

The block exports `MENTOR_RECORD_URL`, starts `mentor-reward serve` and reads the records back
with `mentor-reward records --url`. Here the URL is a fresh database of the test's own server
(pg_process.py) instead of the page's example host, and the bare command names are the venv's
(the page says to activate it). The service scores two steps of run `exp1`; the records command
must print exactly the step-7 rows, as the service stored them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from doc_blocks import BIN, block, shell_lines
from doc_services import documented_service, run_documented

ITEM = {
    "completion": '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>\\boxed{5}<|im_end|>',
    "ground_truth": "5",
    "teacher_tools": ["add"],
}


@pytest.mark.e2e
def test_the_postgres_block_runs_as_written(pg_url: str, tmp_path: Path) -> None:
    export, serve, records = shell_lines(block("scale-postgres").body)
    assert export.startswith("export MENTOR_RECORD_URL=postgresql://")
    env = {"MENTOR_RECORD_URL": pg_url, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    with documented_service(serve, tmp_path, tmp_path / "serve.log", **env) as (url, _):
        for step, items in ((7, [ITEM, {**ITEM, "ground_truth": "6"}]), (8, [ITEM])):
            body = {"preset": "mentor", "items": items, "run_id": "exp1", "step": step}
            assert httpx.post(f"{url}/v1/score", json=body, timeout=120).status_code == 200
        deadline = time.monotonic() + 120
        while len(httpx.get(f"{url}/v1/records", params={"run_id": "exp1"}, timeout=30).json()["records"]) < 3:
            assert time.monotonic() < deadline, "the service never stored its rows"
            time.sleep(0.3)
    result = run_documented(records, tmp_path, **env)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["run_id"], r["step"], r["item"]["ground_truth"]) for r in rows] == [("exp1", 7, "5"), ("exp1", 7, "6")]
    assert [r["reward"] for r in rows] == pytest.approx([1.1, 0.16])
