"""The fenced code blocks of README.md and docs/*.md, each found by the id in the comment above it.

Every fenced block in those pages has an HTML comment on the line just above its opening fence
(a rendered page does not show it), in one of two forms:

    <!-- block: search-build -->                            a test looks it up and runs or checks it
    <!-- block: k8s-apply | not run: needs a cluster -->     not runnable here, and why

A test takes a block with `block("search-build")` (its text, language and place), so moving or
rewording a block never detaches it from its test, and deleting the comment fails that test.
tests/test_docs_blocks.py walks every page and fails for a block without a comment, an id used
twice, or a runnable block whose id no test under tests/ names. Pages are found by glob, so a new
page under docs/ is covered the moment it exists.

Shell helpers: `shell_lines` joins continuation lines and drops comments, `shown_output` returns
the `# ...` lines a block shows as its output, and `venv_paths` turns the blocks' `.venv/bin/`
into this interpreter's own folder, so a block runs as a reader pastes it, from any checkout.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MARKER = re.compile(r"^<!-- block: (?P<id>[a-z0-9][a-z0-9-]*)(?: \| not run: (?P<reason>\S.*?))? -->$")
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")


@dataclass(frozen=True)
class Block:
    """One fenced block: its id (None when the comment is missing), where it is, and its text."""

    id: str | None
    path: Path
    line: int  # the opening fence's line, 1-based
    language: str
    body: str
    not_run: str | None  # the reason, for a block marked "not run"

    @property
    def where(self) -> str:
        return f"{_name(self.path)}:{self.line}"


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _closes(line: str, fence: str) -> bool:
    text = line.strip()
    return len(text) >= len(fence) and set(text) == {fence[0]}


def doc_pages() -> list[Path]:
    """README.md and every page under docs/ (new pages are picked up by the glob)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def parse_page(path: Path) -> list[Block]:
    """Every fenced block of one page, in order; an unclosed fence is an error naming its line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening.group("fence")
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not _closes(lines[index], fence):
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise ValueError(f"{_name(path)}:{start + 1}: a fence that is never closed")
        index += 1
        marker = MARKER.match(lines[start - 1].strip()) if start > 0 else None
        blocks.append(
            Block(
                id=marker.group("id") if marker else None,
                path=path,
                line=start + 1,
                language=opening.group("info").strip(),
                body="\n".join(body) + "\n",
                not_run=marker.group("reason") if marker else None,
            )
        )
    return blocks


def indented_code_lines(path: Path) -> list[int]:
    """Lines (1-based) that open an indented code block: after a blank line, indented four spaces,
    outside a fence, a list item or a table. Such a block cannot carry a marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fenced = {i for b in parse_page(path) for i in range(b.line - 1, b.line + b.body.count("\n") + 1)}
    found: list[int] = []
    in_list = False
    for index, line in enumerate(lines):
        if index in fenced or not line.strip():
            continue
        if not line.startswith((" ", "\t")):
            in_list = bool(_LIST_ITEM.match(line)) or line.startswith("|")
            continue
        if line.startswith(("    ", "\t")) and index > 0 and not lines[index - 1].strip() and not in_list:
            found.append(index + 1)
    return found


@cache
def all_blocks() -> tuple[Block, ...]:
    return tuple(b for page in doc_pages() for b in parse_page(page))


def block(block_id: str) -> Block:
    """The block whose comment names `block_id` (a KeyError naming it when none does)."""
    found = [b for b in all_blocks() if b.id == block_id]
    if len(found) != 1:
        raise KeyError(f"{len(found)} blocks in README.md and docs/ are marked `<!-- block: {block_id} -->`")
    return found[0]


def _without_comment(line: str) -> str:
    """`line` without a trailing `# comment` (a `#` outside quotes, after a space)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line


def shell_lines(body: str) -> list[str]:
    """A shell block's commands: continuation lines joined, comments and blank lines dropped."""
    commands: list[str] = []
    pending = ""
    for raw in body.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1].rstrip() + " "
            continue
        line = _without_comment(pending + (raw.lstrip() if pending else raw)).strip()
        pending = ""
        if line:
            commands.append(line)
    return commands


def shown_output(body: str) -> list[str]:
    """The lines a shell block shows as its output: comment lines, without their `# `."""
    return [line.strip()[2:] for line in body.splitlines() if line.strip().startswith("# ")]


def venv_paths(command: str) -> str:
    """`.venv/bin/X` in a block is this interpreter's own X, wherever the test runs."""
    return command.replace(".venv/bin/", f"{BIN}/")
