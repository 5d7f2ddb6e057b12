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
from doc_blocks import ROOT, all_blocks, doc_pages, indented_code_lines, parse_page, shell_lines

TESTS = ROOT / "tests"
_LOOKUP = re.compile(r"""\bblock\(\s*["']([a-z0-9-]+)["']\s*\)""")


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
    assert indented_code_lines(page) == [], f"{page.name}: indented code blocks; fence and mark them"


# The walker itself, on pages made for the purpose: it must see what the checks above rely on.

SAMPLE = """# A page

<!-- block: sample-run -->
```bash
echo one   # a comment
echo two \\
  three
```

<!-- block: sample-skip | not run: needs a cluster to talk to -->
~~~yaml
a: 1
~~~

```json
{}
```

Prose, then an indented block:

    rm -rf /

- a list item
    continued, not code
"""


def test_the_walker_reads_markers_fences_and_indented_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(SAMPLE, encoding="utf-8")
    run, skip, unmarked = parse_page(page)
    assert (run.id, run.language, run.not_run, run.line) == ("sample-run", "bash", None, 4)
    assert shell_lines(run.body) == ["echo one", "echo two three"]
    assert (skip.id, skip.language, skip.not_run, skip.body) == (
        "sample-skip",
        "yaml",
        "needs a cluster to talk to",
        "a: 1\n",
    )
    assert unmarked.id is None
    assert indented_code_lines(page) == [SAMPLE.splitlines().index("    rm -rf /") + 1]


def test_an_unclosed_fence_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- block: x -->\n```bash\necho\n", encoding="utf-8")
    with pytest.raises(ValueError, match="never closed"):
        parse_page(page)
