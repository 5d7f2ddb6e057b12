"""The docs' blocks that need a live service run as written against one: README's "The reward
service" and client blocks, and docs/dashboard.md's serve, report and curl blocks.

Each service is the documented `mentor-reward serve` line itself (tests/doc_services.py: bash,
the venv's path, a free port for 8000, one scoring worker), stopped with its test. What the page
shows or promises is what is checked: the README's rollout scores 1.1 under `mentor` over HTTP
too; the keyed service refuses a request without its key and the client block prints the
service's own reward, batch mean and spec hash; the dashboard's record file appears where the
command says, `report` writes both pages (the run filter keeps the other run out), and curl with
the key saves the page with its data.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from doc_blocks import ROOT, block, shell_lines
from doc_services import documented_service, run_documented

pytestmark = pytest.mark.e2e


def _readme_item() -> dict[str, Any]:
    """The README's "Score one rollout" line (the heredoc's one JSON line)."""
    (line,) = [line for line in block("readme-score").body.splitlines() if line.startswith("{")]
    item: dict[str, Any] = json.loads(line)
    return item


def test_readme_service_lines_and_client_block(tmp_path: Path) -> None:
    plain, with_config, with_keys = shell_lines(block("readme-serve").body)
    assert "--config examples/service.yaml" in with_config  # run as written by tests/test_examples.py
    item = _readme_item()

    with documented_service(plain, tmp_path, tmp_path / "plain.log") as (url, _):
        answer = httpx.post(f"{url}/v1/score", json={"preset": "mentor", "items": [item]}, timeout=120).json()
        assert answer["results"][0]["reward"] == pytest.approx(1.1)  # what the CLI line printed

    assert with_keys.startswith("MENTOR_API_KEYS=secret1,secret2 ")
    # The sample file records into the repository's runs/; the environment wins over the file.
    records = str(tmp_path / "records.sqlite3")
    with documented_service(with_keys, ROOT, tmp_path / "keys.log", MENTOR_RECORD_PATH=records) as (url, _):
        body = {"preset": "mentor-f1", "items": [{**item, "teacher_tools": ["add"]}]}
        assert httpx.post(f"{url}/v1/score", json=body, timeout=120).status_code == 401
        expected = httpx.post(
            f"{url}/v1/score", json=body, headers={"Authorization": "Bearer secret1"}, timeout=120
        ).json()

        code = block("readme-client").body.replace("http://127.0.0.1:8000", url)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "README.md", "exec"), {"text": item["completion"]})  # the page's own code
        reward, mean, spec_hash = printed.getvalue().split()
        assert float(reward) == expected["results"][0]["reward"] == pytest.approx(1.1)
        assert float(mean) == expected["stats"]["mean_reward"]
        assert spec_hash == expected["spec_hash"]


def _wait_for_records(url: str, headers: dict[str, str], runs: set[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        seen = {
            run
            for run in runs
            if httpx.get(f"{url}/v1/records", params={"run_id": run}, headers=headers, timeout=30).json()["records"]
        }
        if seen == runs:
            return
        assert time.monotonic() < deadline, f"records of {runs - seen} never appeared"
        time.sleep(0.3)


def test_dashboard_serve_report_and_curl_blocks(tmp_path: Path) -> None:
    (serve,) = shell_lines(block("dashboard-serve").body)
    (curl,) = shell_lines(block("dashboard-curl").body)
    assert "YOUR_KEY" in curl
    headers = {"Authorization": "Bearer YOUR_KEY"}
    item = _readme_item()
    # The curl block is for a service with keys: the documented line, given one in its environment.
    with documented_service(serve, tmp_path, tmp_path / "serve.log", MENTOR_API_KEYS="YOUR_KEY") as (url, port):
        for run, steps in (("exp1", 3), ("exp2", 2)):
            for step in range(steps):
                body = {"preset": "mentor", "items": [item, {**item, "finished": False}], "run_id": run, "step": step}
                assert httpx.post(f"{url}/v1/score", json=body, headers=headers, timeout=120).status_code == 200
        _wait_for_records(url, headers, {"exp1", "exp2"})
        assert (tmp_path / "runs" / "scores.sqlite3").is_file()  # where the command said, made by the service

        result = run_documented(curl, tmp_path, port)
        assert result.returncode == 0, result.stderr
        page = (tmp_path / "dashboard.html").read_text(encoding="utf-8")
        assert "<title>MENTOR reward dashboard</title>" in page
        assert '"exp1"' in page and '"exp2"' in page  # the page with its data, not the key prompt's shell

        for command in shell_lines(block("dashboard-report").body):
            result = run_documented(command, tmp_path)
            assert result.returncode == 0, result.stderr
    everything = (tmp_path / "report.html").read_text(encoding="utf-8")
    one_run = (tmp_path / "exp1.html").read_text(encoding="utf-8")
    assert '"exp1"' in everything and '"exp2"' in everything
    assert '"exp1"' in one_run and '"exp2"' not in one_run
