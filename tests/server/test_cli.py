"""`mentor-reward score` / `presets`: the JSONL contract, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PARITY = Path(__file__).resolve().parents[1] / "data" / "mentor_seed_public.jsonl"
CLI = [sys.executable, "-m", "mentor_server.cli"]


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=300)


def test_score_matches_the_parity_file_line_for_line(tmp_path: Path) -> None:
    out = run_cli("score", "--preset", "mentor-f1", str(PARITY))
    assert out.returncode == 0, out.stderr
    expected = [json.loads(line)["expected"]["mentor-f1"] for line in PARITY.read_text().splitlines()]
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(got) == len(expected)
    for line, value in zip(got, expected, strict=True):
        assert set(line) == {"reward", "components", "reason"}
        assert line["reward"] == pytest.approx(value, abs=1e-6)


def test_bad_lines_become_errors_and_the_rest_still_run() -> None:
    good = json.dumps({"completion": "\\boxed{4}<|im_end|>", "ground_truth": "4"})
    lines = [
        good,
        "{not json",
        json.dumps({"completion": 7}),
        "",
        json.dumps([1, 2]),
        json.dumps({"completion": "no answer<|im_end|>", "ground_truth": "4", "extra": "ignored"}),
    ]
    out = run_cli("score", "--preset", "sparse", "-", stdin="\n".join(lines) + "\n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == len(lines)
    assert rows[0]["reward"] == 1.0
    assert [rows[i]["error"]["line"] for i in (1, 2, 3, 4)] == [2, 3, 4, 5]
    assert rows[1]["error"]["type"] == "invalid_json"
    assert rows[2]["error"]["type"] == "invalid_item" and rows[2]["error"]["param"] == "completion"
    assert rows[5]["reward"] == pytest.approx(0.1)


def test_spec_file_and_unknown_preset(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("eos_token: null\ncomponents:\n  outcome: {weight: 2.0}\n")
    line = json.dumps({"completion": "\\boxed{4}", "ground_truth": "4"})
    out = run_cli("score", "--spec", str(spec), "-", stdin=line + "\n")
    assert json.loads(out.stdout)["reward"] == pytest.approx(2.0)
    bad = run_cli("score", "--preset", "nope", "-", stdin=line + "\n")
    assert bad.returncode == 2 and "unknown preset" in bad.stderr


def test_presets_lists_every_formula() -> None:
    out = run_cli("presets", "--json")
    presets = {p["name"]: p for p in json.loads(out.stdout)}
    assert {
        "sparse",
        "mentor",
        "mentor-partial",
        "mentor-f1",
        "mentor-no-tool-match",
        "strict",
        "flexible",
        "toolrl",
    } <= set(presets)
    assert all(p["formula"] and p["spec_hash"] for p in presets.values())


def _peak_rss_kib(lines: int, tmp_path: Path) -> int:
    source = tmp_path / f"in_{lines}.jsonl"
    rows = [json.loads(x) for x in PARITY.read_text().splitlines()]
    with source.open("w") as fh:
        for i in range(lines):
            row = dict(rows[i % len(rows)])
            row["ground_truth"] = str(i)  # distinct golds: caches must stay bounded too
            fh.write(json.dumps(row) + "\n")
    code = (
        "import resource, subprocess, sys\n"
        f"command = {[*CLI, 'score', '--preset', 'mentor', str(source)]!r}\n"
        "subprocess.run(command, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    return int(out.stdout)


@pytest.mark.slow
def test_score_streams_in_bounded_memory(tmp_path: Path) -> None:
    # Ten times the input must not need ten times the memory: the CLI holds one chunk at a time.
    small, large = _peak_rss_kib(2_000, tmp_path), _peak_rss_kib(20_000, tmp_path)
    assert large < small + 30 * 1024, (small, large)
