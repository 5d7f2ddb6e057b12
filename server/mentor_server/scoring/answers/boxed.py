"""Final-answer extraction: the last `\\boxed{}` / `\\fbox{}` of a completion, linear in its length."""

from __future__ import annotations

import re
from typing import Final

# --------------------------------------------------------------------------------------------
# \boxed{} extraction
# --------------------------------------------------------------------------------------------

_BOX_COMMANDS: Final = ("\\boxed", "\\fbox")
# A backslash escape (`\{`, `\}`, `\\`, `\frac`...) is consumed as a unit so escaped braces are
# not counted; every other match is a real brace.
_BRACE_SCAN = re.compile(r"\\.|[{}]", re.S)


def _closing_brace(text: str, open_at: int) -> int:
    """Index of the `}` matching the `{` at `open_at`, or -1 when the braces never balance."""
    depth = 0
    for m in _BRACE_SCAN.finditer(text, open_at):
        ch = m.group()
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return -1


def _box_at(text: str, start: int, command: str) -> tuple[int, int] | None:
    """(content start, closing brace) of the box command at `start`; (x, -1) when unbalanced;
    None when the command is not followed by `{` (a mention, or a longer command name)."""
    j = start + len(command)
    n = len(text)
    while j < n and text[j] in " \t\r\n":
        j += 1
    if j >= n or text[j] != "{":
        return None
    return j + 1, _closing_brace(text, j)


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`, `\\boxed {...}`) of `text`.

    The last box command followed by a brace decides: its content is returned when its braces
    balance (escaped `\\{`/`\\}` excluded), and None is returned when they never do (a broken
    final answer is no answer). A bare mention of `\\boxed` without a brace is skipped. Returns
    None when there is no box, and "" for an empty box (callers treat "" as no answer).

    Example:
        >>> extract_boxed(r"first \\boxed{1}, finally \\boxed{\\frac{1}{2}}.")
        '\\\\frac{1}{2}'
        >>> extract_boxed("no answer") is None
        True
    """
    # Each command's last occurrence is searched again only after it was skipped: re-searching
    # both on every skip made many bare mentions of one command quadratic (the other's search
    # ran over the whole prefix each time). Linear: every character is passed by each search once.
    at_boxed = text.rfind(_BOX_COMMANDS[0])
    at_fbox = text.rfind(_BOX_COMMANDS[1])
    while True:
        start = max(at_boxed, at_fbox)
        if start < 0:
            return None
        command = _BOX_COMMANDS[0] if start == at_boxed else _BOX_COMMANDS[1]
        box = _box_at(text, start, command)
        if box is not None:
            content_start, close = box
            return None if close < 0 else text[content_start:close]
        if start == at_boxed:
            at_boxed = text.rfind(_BOX_COMMANDS[0], 0, start)
        else:
            at_fbox = text.rfind(_BOX_COMMANDS[1], 0, start)


def strip_boxed(gt: str) -> str:
    """`gt` without a `\\boxed{...}` / `\\fbox{...}` wrapper around the whole of it (stripped).

    Example:
        >>> strip_boxed(r" \\boxed{12} ")
        '12'
        >>> strip_boxed(r"\\boxed{1} + \\boxed{2}")
        '\\\\boxed{1} + \\\\boxed{2}'
    """
    s = gt.strip()
    for command in _BOX_COMMANDS:
        if s.startswith(command):
            box = _box_at(s, 0, command)
            if box is not None and box[1] == len(s) - 1:
                return s[box[0] : box[1]].strip()
    return s
