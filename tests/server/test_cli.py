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
    # The parity file carries an `expected` column: without the flag that is each line's error.
    strict = run_cli("score", "--preset", "mentor-f1", str(PARITY))
    first = json.loads(strict.stdout.splitlines()[0])
    assert first["reward"] is None and first["error"]["param"] == "items[0].expected"
    out = run_cli("score", "--preset", "mentor-f1", "--ignore-unknown-fields", str(PARITY))
    assert out.returncode == 0, out.stderr
    expected = [json.loads(line)["expected"]["mentor-f1"] for line in PARITY.read_text().splitlines()]
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(got) == len(expected)
    for line, value in zip(got, expected, strict=True):
        assert set(line) == {"reward", "components", "reason", "error", "n_tool_calls", "n_invalid_tools", "gate"}
        assert line["error"] is None
        assert line["reward"] == pytest.approx(value, abs=1e-6)


def test_bad_lines_become_errors_and_the_rest_still_run() -> None:
    good = json.dumps({"completion": "\\boxed{4}<|im_end|>", "ground_truth": "4"})
    lines = [
        good,
        "{not json",
        json.dumps({"completion": 7}),
        "",
        json.dumps([1, 2]),
        json.dumps({"completion": "no answer<|im_end|>", "ground_truth": "4"}),
        json.dumps({"completion": "\\boxed{4}<|im_end|>", "ground_truht": "4"}),
        "1" + "0" * 5000,
    ]
    out = run_cli("score", "--preset", "sparse", "-", stdin="\n".join(lines) + "\n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == len(lines)
    assert rows[0]["reward"] == 1.0
    assert [rows[i]["error"]["param"] for i in (1, 2, 3, 4)] == [
        "items[1]",
        "items[2].completion",
        "items[3]",
        "items[4]",
    ]
    assert rows[1]["error"]["type"] == "invalid_json"
    assert rows[2]["error"]["type"] == "invalid_item"
    assert rows[5]["reward"] == pytest.approx(0.1)
    # A misspelt field is the line's error, never a silently different reward.
    assert rows[6]["reward"] is None and rows[6]["error"]["param"] == "items[6].ground_truht"
    assert rows[7]["error"]["type"] == "invalid_json"  # an integer over Python's digit limit


def test_spec_file_and_unknown_preset(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("components:\n  outcome: {weight: 2.0}\n")
    line = json.dumps({"completion": "\\boxed{4}", "ground_truth": "4"})
    out = run_cli("score", "--spec", str(spec), "-", stdin=line + "\n")
    assert json.loads(out.stdout)["reward"] == pytest.approx(2.0)
    bad = run_cli("score", "--preset", "nope", "-", stdin=line + "\n")
    assert bad.returncode == 2 and "unknown preset" in bad.stderr
    unnamed = run_cli("score", "-", stdin=line + "\n")
    assert unnamed.returncode == 2 and "--preset" in unnamed.stderr


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
            row = {k: v for k, v in rows[i % len(rows)].items() if k != "expected"}
            row["ground_truth"] = str(i)  # distinct golds: caches must stay bounded too
            fh.write(json.dumps(row) + "\n")
    code = (
        "import resource, subprocess, sys\n"
        f"command = {[*CLI, 'score', '--preset', 'mentor', str(source)]!r}\n"
        "subprocess.run(command, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    return int(out.stdout)


@pytest.mark.slow
def test_score_streams_in_bounded_memory(tmp_path: Path) -> None:
    # Ten times the input must not need ten times the memory: the CLI holds one chunk at a time.
    small, large = _peak_rss_kib(2_000, tmp_path), _peak_rss_kib(20_000, tmp_path)
    assert large < small + 30 * 1024, (small, large)
