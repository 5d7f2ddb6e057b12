"""Pythonic tool calls as in BFCL: `[f(a=1, b="x"), mod.g(c=[1, 2])]`, read with `ast`, never evaluated.

Only literal keyword arguments are accepted: constants, lists, tuples (read as lists),
dicts with string keys, and signed numbers, nested freely. Anything else (a variable, an
expression, a nested call, positional arguments, `**kwargs`) makes that call malformed with
the reason, while the other calls of the list are still read. Dotted names keep their dots.
"""

from __future__ import annotations

import ast
import re

from ..types import JSONValue, ParsedRollout
from ._core import _Accumulator, finished_from_text
from ._registry import Completion, register_parser
from .messages import parse_messages

END_TOKENS = ("<|eot_id|>", "<|eot|>", "<|eom|>")
_WRAPPER_RE = re.compile(r"<\|python_start\|>|<\|python_end\|>|<\|eot_id\|>|<\|eot\|>|<\|eom\|>|<\|eom_id\|>")
_FENCE_RE = re.compile(r"^```(?:python|py)?\s*\n?(.*?)\n?```$", re.S)
_LOOKS_LIKE_CALLS = re.compile(r"\[\s*[A-Za-z_][\w.]*\s*\(")


class _NotLiteral(Exception):
    """An argument value that is not a plain literal (the reason is the message)."""


def _literal(node: ast.expr) -> JSONValue:
    if isinstance(node, ast.Constant):
        constant = node.value
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
            return -operand.value if isinstance(node.op, ast.USub) else operand.value
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


def _add_call(node: ast.expr, source: str, acc: _Accumulator) -> None:
    raw = ast.get_source_segment(source, node) or ""
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
    if text.startswith("```"):
        fenced = _FENCE_RE.match(text)
        if fenced is not None:
            text = fenced.group(1).strip()
    return text


def _parse_calls(source: str) -> list[ast.expr] | None:
    """The call nodes of a `[...]` call list (or of a single bare call); None if it is not one."""
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
    nodes = _parse_calls(source) if source[:1] == "[" or source[:1].isalpha() else None
    if nodes is None and not strict:
        # Prose, then the call list on its own line.
        line_start = source.rfind("\n[")
        if line_start >= 0:
            tail = source[line_start + 1 :]
            nodes = _parse_calls(tail)
            if nodes is not None:
                source = tail
        if nodes is None and _LOOKS_LIKE_CALLS.match(source):
            acc.add_call(None, {}, source, "invalid Python call list")
            return ""
    if nodes is None:
        return source
    for node in nodes:
        _add_call(node, source, acc)
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
