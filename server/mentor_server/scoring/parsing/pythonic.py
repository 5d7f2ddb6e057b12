"""Pythonic tool calls as in BFCL: `[f(a=1, b="x"), mod.g(c=[1, 2])]`, read with `ast`, never evaluated.

Only literal keyword arguments are accepted: constants, lists, tuples (read as lists),
dicts with string keys, and signed numbers, nested freely. Anything else (a variable, an
expression, a nested call, positional arguments, `**kwargs`) makes that call malformed with
the reason, while the other calls of the list are still read. Dotted names keep their dots.

Bounds. `ast` needs ~500 bytes of memory and a few microseconds per source character, so a
call list longer than `MAX_CALL_LIST_CHARS` is not parsed: it becomes one malformed call
saying so (under `auto`, text without any `(` is never handed to `ast`, since it cannot hold a
call). Integers past Python's int-to-str digit limit are refused like any other non-literal:
neither JSON nor `str()` could write them back. Each call's raw text is cut from the source by offsets computed
once, so reading n calls is linear (`ast.get_source_segment` re-splits the source per call).
"""

from __future__ import annotations

import ast
import re

from ..types import JSONValue, ParsedRollout
from ._core import _Accumulator, finished_from_text, unwritable_int
from ._registry import Completion, register_parser
from .messages import parse_messages

END_TOKENS = ("<|eot_id|>", "<|eot|>", "<|eom|>")
_WRAPPER_RE = re.compile(r"<\|python_start\|>|<\|python_end\|>|<\|eot_id\|>|<\|eot\|>|<\|eom\|>|<\|eom_id\|>")
_FENCE_RE = re.compile(r"^```(?:python|py)?\s*\n?(.*?)\n?```$", re.S)
_LOOKS_LIKE_CALLS = re.compile(r"\[\s*[A-Za-z_][\w.]*\s*\(")
# The line breaks of Python's tokenizer (and of `ast.get_source_segment`): not \f, \v, \x1c...
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")

MAX_CALL_LIST_CHARS = 128 * 1024
"""Longest source handed to `ast.parse` (~70 MB and ~0.5 s at this size)."""


class _NotLiteral(Exception):
    """An argument value that is not a plain literal (the reason is the message)."""


def _literal(node: ast.expr) -> JSONValue:
    if isinstance(node, ast.Constant):
        constant = node.value
        if isinstance(constant, int) and unwritable_int(constant):  # a hex literal has no digit limit
            raise _NotLiteral("integer too long to write in decimal")
        if constant is None or isinstance(constant, (str, int, float)):  # bool is an int
            return constant
        raise _NotLiteral(f"{type(constant).__name__} constant")
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        result: dict[str, JSONValue] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise _NotLiteral("** inside a dict")
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise _NotLiteral("dict key that is not a string")
            result[key.value] = _literal(value)
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = node.operand
        if (
            isinstance(operand, ast.Constant)
            and isinstance(operand.value, (int, float))
            and not isinstance(operand.value, bool)
        ):
            number = _literal(operand)
            assert isinstance(number, int | float)  # checked just above
            return -number if isinstance(node.op, ast.USub) else number
        raise _NotLiteral("sign applied to a non-number")
    if isinstance(node, ast.Name):
        raise _NotLiteral(f"name {node.id!r}")
    raise _NotLiteral(type(node).__name__)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


class _Segments:
    """The source text of AST nodes, in O(1) per node after one pass over the source.

    The same text `ast.get_source_segment(source, node)` returns: AST columns are UTF-8 byte
    offsets within lines split as the tokenizer splits them, and a node's text is the
    contiguous slice between its start and end.
    """

    __slots__ = ("data", "starts")

    def __init__(self, source: str) -> None:
        self.data: str | bytes
        if source.isascii():
            self.data = source  # byte offsets are character offsets
            self.starts = [0, *(m.end() for m in _LINE_BREAK.finditer(source))]
        else:
            self.data = source.encode()  # `ast.parse` already refused what cannot be encoded
            self.starts = [0, *(m.end() for m in _LINE_BREAK_BYTES.finditer(self.data))]

    def text(self, node: ast.expr) -> str:
        if node.end_lineno is None or node.end_col_offset is None:
            return ""
        try:
            start = self.starts[node.lineno - 1] + node.col_offset
            end = self.starts[node.end_lineno - 1] + node.end_col_offset
            piece = self.data[start:end]
            return piece if isinstance(piece, str) else piece.decode()
        except (IndexError, UnicodeDecodeError):
            return ""


def _add_call(node: ast.expr, segments: _Segments, acc: _Accumulator) -> None:
    raw = segments.text(node)
    if not isinstance(node, ast.Call):
        acc.add_call(None, {}, raw, f"list element is not a call ({type(node).__name__})")
        return
    name = _dotted(node.func)
    if name is None:
        acc.add_call(None, {}, raw, "callee is not a (dotted) name")
        return
    if node.args:
        acc.add_call(name, {}, raw, "positional arguments")
        return
    arguments: dict[str, JSONValue] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            acc.add_call(name, {}, raw, "**kwargs argument")
            return
        try:
            arguments[keyword.arg] = _literal(keyword.value)
        except _NotLiteral as exc:
            acc.add_call(name, {}, raw, f"non-literal argument {keyword.arg!r}: {exc}")
            return
    acc.add_call(name, arguments, raw, None)


def _unwrap(text: str) -> str:
    if "<|" in text:
        text = _WRAPPER_RE.sub("", text)
    text = text.strip()
    # The closing fence is checked first: without it the regex cannot match, and trying costs
    # quadratic time on a long whitespace run after the opening fence.
    if text.startswith("```") and text.endswith("```"):
        fenced = _FENCE_RE.match(text)
        if fenced is not None:
            text = fenced.group(1).strip()
    return text


def _parse_calls(source: str) -> list[ast.expr] | None:
    """The call nodes of a `[...]` call list (or of a single bare call); None if it is not one.

    The caller has checked the length (`MAX_CALL_LIST_CHARS`).
    """
    if "(" not in source:  # no call without a parenthesis: spare `ast` a huge list of numbers
        return None
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None
    body = tree.body
    if isinstance(body, ast.Call):
        return [body]
    if isinstance(body, (ast.List, ast.Tuple)) and any(isinstance(e, ast.Call) for e in body.elts):
        return list(body.elts)
    return None


def scan_pythonic(text: str, acc: _Accumulator, *, strict: bool = False) -> str:
    """Read a pythonic call list into `acc`; return the text's answer part ("" when it is all calls).

    With `strict`, text that is not a call list adds nothing and returns the text unchanged;
    otherwise call-list-looking text that does not parse becomes one malformed call.
    """
    source = _unwrap(text)
    too_long = len(source) > MAX_CALL_LIST_CHARS
    if too_long and _LOOKS_LIKE_CALLS.match(source):
        acc.add_call(None, {}, source, f"call list too long to read ({len(source)} > {MAX_CALL_LIST_CHARS} characters)")
        return ""
    nodes = None
    if not too_long and (source[:1] == "[" or source[:1].isalpha()):
        nodes = _parse_calls(source)
    if nodes is None and not strict:
        # Prose, then the call list on its own line.
        line_start = source.rfind("\n[")
        if line_start >= 0:
            tail = source[line_start + 1 :]
            nodes = _parse_calls(tail) if len(tail) <= MAX_CALL_LIST_CHARS else None
            if nodes is not None:
                source = tail
        if nodes is None and _LOOKS_LIKE_CALLS.match(source):
            acc.add_call(None, {}, source, "invalid Python call list")
            return ""
    if nodes is None:
        return source
    segments = _Segments(source)
    for node in nodes:
        _add_call(node, segments, acc)
    return ""


def try_pythonic(text: str, eos_token: str | None, finished: bool | None) -> ParsedRollout | None:
    """The rollout if `text` is a pythonic call list, else None (used by "auto")."""
    acc = _Accumulator()
    scan_pythonic(text, acc, strict=True)
    if not acc.names:
        return None
    return _build(acc, "", text, eos_token, finished)


def _build(acc: _Accumulator, answer: str, text: str, eos_token: str | None, finished: bool | None) -> ParsedRollout:
    if finished is None:
        finished = finished_from_text(text, eos_token, END_TOKENS)
    return acc.build(answer, text, finished, "pythonic")


@register_parser("pythonic")
def parse_pythonic(completion: Completion, *, eos_token: str | None, finished: bool | None) -> ParsedRollout:
    """BFCL-style pythonic text; a message list is read as chat messages with pythonic contents."""
    if not isinstance(completion, str):
        return parse_messages(completion, scan_pythonic, eos_token=eos_token, finished=finished, parser="openai")
    acc = _Accumulator()
    answer = scan_pythonic(completion, acc)
    return _build(acc, answer, completion, eos_token, finished)
