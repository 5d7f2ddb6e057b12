"""The commands in README.md and docs/*.md are ones that work.

Every `mentor-reward` / `mentor-train` command in a shell block of any page (runnable or not) is
parsed by the real argparse parser of its entry point (a removed subcommand or a misspelt flag
fails here), every `make` target and variable the pages name exists in the Makefile, and every
path under `examples/` exists. The blocks a reader pastes first run as written, in a scratch
folder: "Score one rollout" (the shell block and the Python block) must print what the README
shows, and the OpenRLHF block's command prints the path of a file that is there.

Blocks are found by their `<!-- block: ID -->` comment (tests/doc_blocks.py). The training and
Docker blocks are marked not run (GPUs, long runs, a Docker engine); their commands are still
parsed here.
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
from doc_blocks import ROOT, all_blocks, block, doc_pages, shell_lines, shown_output, venv_paths

DOCS = doc_pages()
_ENTRY = re.compile(r"(?:\.venv/bin/)?(?:mentor-reward|mentor-train)")


def _blocks(path: Path, language: str) -> list[str]:
    return [b.body for b in all_blocks() if b.path == path and b.language == language]


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
        for body in _blocks(path, "bash"):
            for line in _logical_lines(body):
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


@pytest.mark.slow
def test_score_one_rollout_shell_block_runs_as_written(tmp_path: Path) -> None:
    body = block("readme-score").body
    (shown,) = shown_output(body)
    expected = json.loads(shown.replace('"(...); ..."', '""'))  # the reason is abridged on the page
    result = subprocess.run(
        ["bash", "-e", "-c", venv_paths(body)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    printed = json.loads(line)
    assert list(printed) == list(expected), "the shown line has the printed keys, in order"
    for key in set(expected) - {"reason"}:
        assert printed[key] == expected[key], key
    assert printed["reason"].startswith(shown.split('"reason":"')[1].split(" (...)")[0])


@pytest.mark.slow
def test_score_one_rollout_python_block_runs_as_written(tmp_path: Path) -> None:
    body = block("readme-score-python").body
    result = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    reward, _, components = result.stdout.strip().partition(" ")
    assert float(reward) == 1.0  # the teacher's own call and answer: full reward under `flexible`
    assert "'outcome': 1.0" in components


def test_openrlhf_block_names_the_reward_file() -> None:
    (line,) = shell_lines(block("readme-openrlhf-file").body)
    substitution = re.fullmatch(r'--reward\.remote_url "\$\((.*)\)"', line)
    assert substitution, line
    result = subprocess.run(
        ["bash", "-c", venv_paths(substitution.group(1))], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.name == "openrlhf_reward_func.py" and path.is_file()
