"""docs/dashboard.md says what is true: the paths, test files and make targets it names exist.

Its commands are parsed with every other page's (tests/test_readme_commands.py) and its serve,
report and curl blocks run against a live service (tests/test_docs_service_blocks.py). The one
block not run, the pytest command for the dashboard's own tests, must name test paths that exist.
"""

from __future__ import annotations

import re
import shlex

from doc_blocks import ROOT, block, shell_lines

DOC = (ROOT / "docs" / "dashboard.md").read_text(encoding="utf-8")


def test_the_test_command_names_existing_paths() -> None:
    (command,) = shell_lines(block("dashboard-tests").body)
    words = shlex.split(command)
    assert words[:3] == [".venv/bin/python", "-m", "pytest"]
    for path in words[3:]:
        assert (ROOT / path).exists(), path


def test_the_paths_and_make_targets_it_names_exist() -> None:
    for path in re.findall(r"`((?:server|tests|bench)/[\w./-]+)`", DOC):
        assert (ROOT / path).exists(), path
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"`make (\w+)`", DOC):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
