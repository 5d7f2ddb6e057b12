"""Every code block in README.md and docs/*.md is run or checked by a test, or says why it cannot be.

The rule (issue 10 item 7, issue 12's targets): a block a reader pastes runs in a test with its
shown output checked. This file enforces it for every page, new ones included (doc_blocks.py
finds them by glob): each fenced block carries `<!-- block: ID -->` on the line above it, and
that ID must be named by a test under tests/ that looks the block up (`block("ID")`) and runs
or checks it; a block that cannot run here (a cluster, a registry, a GPU, a Docker engine, hours
of training) says so instead, `<!-- block: ID | not run: REASON -->`. Indented code blocks are
refused, since nothing could mark them: a command is fenced or it is prose.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from doc_blocks import ROOT, all_blocks, doc_pages

TESTS = ROOT / "tests"
_LOOKUP = re.compile(r"""\bblock\(\s*["']([a-z0-9-]+)["']\s*\)""")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")


def _test_sources() -> dict[Path, str]:
    """The test code that may run blocks: every .py under tests/ but this file and the helper."""
    skip = {Path(__file__).resolve(), (TESTS / "doc_blocks.py").resolve()}
    return {p: p.read_text(encoding="utf-8") for p in sorted(TESTS.rglob("*.py")) if p.resolve() not in skip}


def test_the_pages_have_blocks_to_check() -> None:
    names = {p.name for p in doc_pages()}
    assert {"README.md", "search.md", "dashboard.md", "rewards.md", "scale-out.md"} <= names
    assert len(all_blocks()) >= 35


def test_every_block_is_marked() -> None:
    unmarked = [b.where for b in all_blocks() if b.id is None]
    assert not unmarked, (
        "fenced blocks without `<!-- block: ID -->` (a test that runs them) or "
        f"`<!-- block: ID | not run: REASON -->` on the line above: {unmarked}"
    )


def test_block_ids_are_unique() -> None:
    seen: dict[str, str] = {}
    for b in all_blocks():
        if b.id is not None:
            assert b.id not in seen, f"{b.id} marks both {seen[b.id]} and {b.where}"
            seen[b.id] = b.where


def test_every_runnable_block_is_run_by_a_test() -> None:
    named = {block_id for text in _test_sources().values() for block_id in _LOOKUP.findall(text)}
    orphans = [f"{b.id} ({b.where})" for b in all_blocks() if b.id and b.not_run is None and b.id not in named]
    assert not orphans, f"blocks no test looks up with block(ID); run them or mark them not run: {orphans}"


def test_every_block_a_test_names_exists() -> None:
    ids = {b.id for b in all_blocks()}
    for path, text in _test_sources().items():
        for block_id in _LOOKUP.findall(text):
            assert block_id in ids, f"{path.relative_to(ROOT)} looks up block {block_id!r}, which no page marks"


def test_a_not_run_block_says_why() -> None:
    for b in all_blocks():
        if b.not_run is not None:
            assert len(b.not_run.split()) >= 4, f"{b.id} ({b.where}): give the reason in words"


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: p.name)
def test_no_indented_code_blocks(page: Path) -> None:
    """An indented code block cannot carry a marker: commands are fenced."""
    lines = page.read_text(encoding="utf-8").splitlines()
    fenced = {i for b in all_blocks() if b.path == page for i in range(b.line - 1, b.line + b.body.count("\n") + 1)}
    in_list = False
    for index, line in enumerate(lines):
        if index in fenced or not line.strip():
            continue
        if not line.startswith((" ", "\t")):
            in_list = bool(_LIST_ITEM.match(line)) or line.startswith("|")
            continue
        after_blank = index > 0 and not lines[index - 1].strip()
        indented_code = line.startswith(("    ", "\t")) and after_blank and not in_list
        assert not indented_code, f"{page.name}:{index + 1}: an indented code block; fence and mark it"
