"""docs/search.md's retrieval-family snippet runs as written and does what its comments say.

The block runs in its own interpreter, in a scratch folder (its `enable()` registers toolsets and
families for the whole process). What its comments promise is read from the block itself, so a
change of numbers or names on the page is checked as written: the split names in the result
comment and their sizes from the `retrieval_splits(...)` call, no test question among the train
questions, the `ood_*` groups `benchmark.split_groups()` gains, and the files `write_index` makes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from doc_blocks import block

pytest.importorskip("Stemmer", reason="the search extra is not installed")

REPORT = """
import json as _json
from mentor_trainer import benchmark as _benchmark
def _question(row):
    return _json.dumps(row["prompt"][-1], sort_keys=True)
print(_json.dumps({
    "sizes": {name: len(split) for name, split in rows.items()},
    "questions": {name: sorted({_question(row) for row in split}) for name, split in rows.items()},
    "groups": sorted(_benchmark.split_groups()),
}))
"""


@pytest.mark.slow
def test_the_family_snippet_runs_as_written(tmp_path: Path) -> None:
    body = block("search-family").body
    result = subprocess.run(
        [sys.executable, "-c", body + REPORT], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])

    (comment,) = [line for line in body.splitlines() if line.startswith("# {")]
    names = re.findall(r'"(\w+)":', comment)
    call = re.search(r"retrieval_splits\((.*?)\)", body)
    assert call, "the block calls retrieval_splits"
    sizes = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", call.group(1)) if key != "seed"}
    assert report["sizes"] == dict(zip(names, [sizes["train"], sizes["test"], sizes["ood"]], strict=True))

    train, test = report["questions"][names[0]], report["questions"][names[1]]
    assert not set(train) & set(test), "a test question is also a train question"

    assert set(re.findall(r"`(ood_\w+)`", body)) <= set(report["groups"])
    for path in re.findall(r"\b(world/[\w./]*)", body):
        assert (tmp_path / path).exists(), path
