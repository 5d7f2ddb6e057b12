"""The commands in README.md, docs/presets.md and docs/bring-your-own.md are ones that work.

Every `mentor-reward` / `mentor-train` command in a shell block is parsed by the real argparse
parser of its entry point (a removed subcommand or a misspelt flag fails here), every `make`
target and variable it names exists in the Makefile, and every path under `examples/` exists.
The blocks a reader pastes first run as written, in a scratch folder: "Score one rollout" (the
shell block and the Python block) must print the reward the README shows.

Not run here: the training and Docker blocks (GPUs, long runs, a Docker engine; the training
commands are still parsed), and the adapters section's trainer commands, which need verl or
OpenRLHF (the TRL script runs in tests/trainers/test_trl_readme_example.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "presets.md", ROOT / "docs" / "bring-your-own.md"]
BIN = Path(sys.executable).parent
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ENTRY = re.compile(r"(?:\.venv/bin/)?(?:mentor-reward|mentor-train)")


def _blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(path.read_text(encoding="utf-8")) if lang == language]


def _logical_lines(block: str) -> list[str]:
    """Shell lines with continuations joined, heredoc bodies and comments dropped."""
    lines: list[str] = []
    pending = ""
    heredoc: str | None = None
    for raw in block.splitlines():
        if heredoc is not None:
            if raw.strip() == heredoc:
                heredoc = None
            continue
        marker = re.search(r"<<-?'?(\w+)'?", raw)
        if marker:
            heredoc = marker.group(1)
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _commands() -> list[tuple[str, str, list[str]]]:
    """(where, entry point, argv) for every project command in the docs' shell blocks."""
    found: list[tuple[str, str, list[str]]] = []
    for path in DOCS:
        for block in _blocks(path, "bash"):
            for line in _logical_lines(block):
                words = shlex.split(line, comments=True)
                starts = [i for i, word in enumerate(words) if _ENTRY.fullmatch(word)]
                if not starts:
                    continue
                argv = []
                for word in words[starts[0] + 1 :]:
                    if word in ("&", "&&", "|", ">", ";"):
                        break
                    argv.append(word)
                found.append((f"{path.name}: {line[:70]}", words[starts[0]].rsplit("/", 1)[-1], argv))
    return found


def _parser(entry: str) -> argparse.ArgumentParser:
    if entry == "mentor-reward":
        from mentor_server.cli import build_parser

        return build_parser()
    from mentor_trainer.cli import build_parser as build_train_parser

    return build_train_parser()


COMMANDS = _commands()


def test_the_docs_name_both_entry_points() -> None:
    assert {entry for _, entry, _ in COMMANDS} == {"mentor-reward", "mentor-train"}
    assert len(COMMANDS) >= 12


@pytest.mark.parametrize(("entry", "argv"), [(e, a) for _, e, a in COMMANDS], ids=[w for w, _, _ in COMMANDS])
def test_every_documented_command_parses(entry: str, argv: list[str]) -> None:
    # PRESET in docs/presets.md stands for any preset name.
    argv = ["mentor" if word == "PRESET" else word for word in argv]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            _parser(entry).parse_args(argv)
    except SystemExit as exc:
        raise AssertionError(f"{entry} rejects {shlex.join(argv)}: {err.getvalue()}") from exc


def test_make_targets_and_variables_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, re.MULTILINE))
    variables = set(re.findall(r"^(\w+) \?=", makefile, re.MULTILINE))
    text = "\n".join(path.read_text(encoding="utf-8") for path in DOCS)
    for target, assignments in re.findall(r"`make ([\w-]+)((?: \w+=\S+)*)`", text):
        assert target in targets, f"make {target}"
        for name in re.findall(r" (\w+)=", assignments):
            assert name in variables, f"make {target} {name}=..."


def test_every_examples_path_exists() -> None:
    text = "\n".join(path.read_text(encoding="utf-8") for path in DOCS)
    paths = set(re.findall(r"(?<![\w/])(examples/[\w./-]*\w)", text))
    assert paths
    for path in paths:
        assert (ROOT / path).exists(), path


def _score_block() -> str:
    (block,) = [b for b in _blocks(ROOT / "README.md", "bash") if "rollout.jsonl" in b]
    return block


@pytest.mark.slow
def test_score_one_rollout_shell_block_runs_as_written(tmp_path: Path) -> None:
    block = _score_block()
    shown = re.search(r"^# (\{.*\})$", block, re.MULTILINE)
    assert shown, "the block shows the output line it prints"
    expected = json.loads(shown.group(1))
    script = block.replace(".venv/bin/", f"{BIN}/")
    result = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    printed = json.loads(line)
    for key in ("reward", "components", "error", "n_tool_calls", "n_invalid_tools"):
        assert printed[key] == expected[key], key


@pytest.mark.slow
def test_score_one_rollout_python_block_runs_as_written(tmp_path: Path) -> None:
    (block,) = [b for b in _blocks(ROOT / "README.md", "python") if "ScoringEngine" in b]
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    reward, _, components = result.stdout.strip().partition(" ")
    assert float(reward) == 1.0  # the teacher's own call and answer: full reward under `flexible`
    assert "'outcome': 1.0" in components
