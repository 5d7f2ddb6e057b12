"""The parser registry: format names (`"hermes"`, `"openai"`, ...) to parser functions.

A parser turns one completion (raw text or a chat message list) into a `ParsedRollout` and
never raises on what a model wrote; only an unknown parser *name* is an error, because that
is configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from ..types import ParsedRollout, ScoringConfigError

Completion = str | list[dict[str, Any]]
"""What a parser reads: decoded rollout text, or an OpenAI/TRL chat message list."""


class Parser(Protocol):
    """`parser(completion, eos_token=..., finished=...) -> ParsedRollout`; never raises on model output."""

    def __call__(self, completion: Completion, *, eos_token: str | None, finished: bool | None) -> ParsedRollout: ...


_P = TypeVar("_P", bound=Parser)
_PARSERS: dict[str, Parser] = {}


def register_parser(name: str) -> Callable[[_P], _P]:
    """Register a parser under `name` (decorator). Re-registering a name replaces it."""
    if not isinstance(name, str) or not name:
        raise ScoringConfigError("a parser name must be a non-empty string", param="parser")

    def decorate(fn: _P) -> _P:
        _PARSERS[name] = fn
        return fn

    return decorate


def get_parser(name: str) -> Parser:
    """The parser registered as `name`; an unknown name raises `ScoringConfigError(param="parser")`."""
    try:
        return _PARSERS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_PARSERS))
        raise ScoringConfigError(f"unknown parser {name!r}; known: {known}", param="parser") from None


def list_parsers() -> list[str]:
    """Registered parser names, sorted."""
    return sorted(_PARSERS)
