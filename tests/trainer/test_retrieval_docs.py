"""docs/search.md's retrieval-family blocks run as written.

The Python block runs in its own interpreter in a scratch folder and must give the splits and files
its comments name. The command block runs line by line there: `make-data --retrieval` with its
default sizes, the service started with the toolsets file it wrote, and `eval` of both retrieval
splits (their first rows, as the block asks) through that service; the session's tiny (untrained)
model stands in for `runs/grpo`, so the numbers mean nothing, but every row must be rolled out
and scored without an error.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from doc_blocks import block, shell_lines
from doc_services import documented_service, run_documented

pytest.importorskip("Stemmer", reason="the search extra is not installed")


def test_the_python_block_gives_the_splits_and_files_it_names(tmp_path: Path) -> None:
    body = block("search-family").body
    after = (
        "\nimport json\nfrom mentor_trainer.benchmark import split_groups\n"
        "print(json.dumps({'rows': {k: len(v) for k, v in rows.items()}, 'file': str(toolsets_file), "
        "'splits': sorted(s for s in split_groups() if 'retrieval' in s)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", body + after], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shown = json.loads(done.stdout.splitlines()[-1])
    sizes = re.search(r"train=(\d+), test=(\d+), ood=(\d+)", body)
    assert sizes is not None
    named = re.findall(r'"(\w+)": ', body)  # the comment's keys, in its order
    assert shown["rows"] == dict(zip(named, map(int, sizes.groups()), strict=True))
    assert shown["splits"] == ["ood_retrieval", "ood_retrieval_2hop"]
    assert shown["file"] == "world/toolsets.json"
    assert {p.name for p in (tmp_path / "world").iterdir()} == {"corpus.jsonl", "index", "toolsets.json"}


@pytest.mark.e2e
@pytest.mark.slow
def test_the_make_data_serve_eval_block_runs(tmp_path: Path, tiny: Path) -> None:
    make_data, serve, evaluate = shell_lines(block("search-family-eval").body)
    done = run_documented(make_data, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    shutil.copytree(tiny, tmp_path / "runs" / "grpo")
    with documented_service(serve, tmp_path, tmp_path / "serve.log") as (_, port):
        done = run_documented(evaluate, tmp_path, port)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "runs" / "grpo" / "eval" / "eval.json").read_text(encoding="utf-8"))
    assert list(report["splits"]) == ["ood_retrieval", "ood_retrieval_2hop"]
    limit = re.search(r"--limit (\d+)", evaluate)
    assert limit is not None
    for metrics in report["splits"].values():
        assert metrics["n"] == int(limit.group(1)) and metrics["scoring_errors"] == 0
    manifest = json.loads((tmp_path / "data" / "bench" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["splits"]["ood_retrieval_2hop"]["rows"] == 200  # make-data's default --ood-size
