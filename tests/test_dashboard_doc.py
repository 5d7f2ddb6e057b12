"""docs/dashboard.md says what is true: its commands parse, its paths and make targets exist."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from mentor_server.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "dashboard.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```bash\n(.*?)^```", DOC, re.MULTILINE | re.DOTALL)
COMMANDS = [
    shlex.split(line)
    for block in BLOCKS
    for line in block.splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


@pytest.mark.parametrize("words", [w for w in COMMANDS if "mentor-reward" in " ".join(w)], ids=shlex.join)
def test_every_mentor_reward_command_parses(words: list[str]) -> None:
    start = next(i for i, w in enumerate(words) if w.endswith("mentor-reward"))
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            build_parser().parse_args(words[start + 1 :])
    except SystemExit as exc:
        raise AssertionError(f"mentor-reward rejects {shlex.join(words)}: {err.getvalue()}") from exc


def test_the_paths_and_make_targets_it_names_exist() -> None:
    assert len(COMMANDS) >= 5
    (pytest_line,) = [w for w in COMMANDS if "pytest" in w]
    for path in pytest_line[pytest_line.index("pytest") + 1 :]:
        assert (ROOT / path).exists(), path
    for path in re.findall(r"`((?:server|tests|bench)/[\w./-]+)`", DOC):
        assert (ROOT / path).exists(), path
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"`make (\w+)`", DOC):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
