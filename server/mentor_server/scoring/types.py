"""Typed values that flow through the scoring engine.

Model output is parsed once, at the boundary, into these values; every component reads
them and never the raw text again. Malformed model output is represented here as data
(`ToolCall.error`, `ParsedRollout.finished is False`, ...) so that scoring never raises on
what a model wrote. Malformed *configuration* or reference traces raise `ReferenceError_`
/ `SpecError` with a message that names the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

JSONValue = Any
"""A value decoded from JSON (dict, list, str, int, float, bool or None)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call as the student (or teacher) wrote it.

    `error` is set when the call could not be read (bad JSON, missing name, arguments that
    are not an object...). A malformed call keeps whatever could be recovered: `name` may
    still be known when only the arguments were broken.
    `result` is the tool result paired with this call inside the rollout (the content of the
    matching `<tool_response>` / `tool` message), when the rollout shows one.
    """

    name: str | None
    arguments: dict[str, JSONValue] = field(default_factory=dict)
    raw: str = ""
    error: str | None = None
    result: str | None = None

    @property
    def is_valid(self) -> bool:
        return self.error is None and self.name is not None


@dataclass(frozen=True, slots=True)
class ParsedRollout:
    """Everything the components need to know about one student rollout.

    - `calls`: every tool call block in order, malformed ones included (see `ToolCall.error`).
    - `tool_results`: the tool results the rollout shows, in order.
    - `answer_text`: the final assistant text, i.e. what follows the last tool call/result
      (the whole assistant text when there were no calls). Answer extraction (`\\boxed{}`)
      happens in the outcome component, not here.
    - `full_text`: the assistant-visible text the outcome gate searches (for the paper's
      presets, the whole completion: the last `\\boxed{}` anywhere counts).
    - `finished`: True when the rollout ended with the end-of-sequence token (or the caller
      said so), False when it was truncated, None when unknown.
    - `parser`: the registered parser name that produced this value.
    - `format_errors`: reasons the text breaks its format (unbalanced tags...), for `format`.
    """

    calls: tuple[ToolCall, ...]
    tool_results: tuple[str, ...]
    answer_text: str
    full_text: str
    finished: bool | None
    parser: str
    format_errors: tuple[str, ...] = ()

    @property
    def valid_calls(self) -> tuple[ToolCall, ...]:
        return tuple(c for c in self.calls if c.is_valid)

    @property
    def malformed_calls(self) -> tuple[ToolCall, ...]:
        return tuple(c for c in self.calls if not c.is_valid)


@dataclass(frozen=True, slots=True)
class ReferenceCall:
    """One call of the teacher's reference trace.

    `arguments` values may be *acceptable-value lists* when `possible_answers` is set on the
    trace (BFCL's convention: `{"unit": ["celsius", ""]}` where `""` marks the parameter as
    optional). `result` is what the tool returned to the teacher, when known.
    """

    name: str
    arguments: dict[str, JSONValue] = field(default_factory=dict)
    result: JSONValue = None


@dataclass(frozen=True, slots=True)
class ReferenceTrace:
    """The teacher's reference: calls in order and the final answer.

    `names_only` marks the paper's degenerate form (`teacher_tools: ["add", "divide"]`): the
    calls carry names but no arguments or results, so argument and result components are
    not applicable (they return None) rather than zero.
    `possible_answers` marks argument values as lists of acceptable values (BFCL style).
    """

    calls: tuple[ReferenceCall, ...] = ()
    answer: str | None = None
    names_only: bool = False
    possible_answers: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.calls)


@dataclass(frozen=True, slots=True)
class ScoringItem:
    """One rollout to score, with what it is scored against.

    `completion` is raw text or a chat message list (OpenAI/TRL format).
    `ground_truth` is a tuple of acceptable answers (one or more).
    `finished` overrides end-of-sequence detection (TRL strips special tokens, so its
    adapter knows termination from the token ids instead).
    """

    completion: str | list[dict[str, Any]]
    ground_truth: tuple[str, ...]
    reference: ReferenceTrace
    finished: bool | None = None


@dataclass(frozen=True, slots=True)
class ComponentResult:
    """A component's verdict: a score in [0, 1], or None when it does not apply."""

    score: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class ItemScore:
    """The scored item: total reward, every component's raw score, and why.

    `reward` is None only when the item could not be scored (`error` says why); a malformed
    rollout still gets a reward.
    """

    reward: float | None
    components: dict[str, float | None]
    reason: str
    error: ItemError | None = None
    # Facts for batch aggregates (tool-call rate, invalid-tool rate).
    n_calls: int = 0
    n_invalid_tools: int = 0
    # The gate that decided the reward, when one did (then `reward` is the gate's value).
    gate: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Every scored item crosses a pipe from the scoring process: by its constructor's
        # arguments, about four times faster both ways than the field-by-field state that
        # frozen slotted dataclasses pickle by default (bench/bench_verl_manager.py).
        return (
            ItemScore,
            (self.reward, self.components, self.reason, self.error, self.n_calls, self.n_invalid_tools, self.gate),
        )


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one item of a batch could not be scored (the rest of the batch still is)."""

    type: str
    message: str
    param: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (ItemError, (self.type, self.message, self.param))  # as ItemScore's


class ScoringConfigError(ValueError):
    """Malformed configuration (spec, toolset, reference trace). The message names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


# ---------------------------------------------------------------------------- field paths
def field_path(parts: Iterable[str | int]) -> str:
    """The one notation every error's `param` uses: keys joined by dots, list indices in brackets.

    `("items", 3, "reference", "calls", 0, "name")` -> `items[3].reference.calls[0].name`.
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def join_path(prefix: str, param: str | None) -> str:
    """`prefix` followed by a path relative to it (`items[3]` + `reference` -> `items[3].reference`)."""
    if not param:
        return prefix
    if not prefix:
        return param
    return prefix + param if param.startswith("[") else f"{prefix}.{param}"
