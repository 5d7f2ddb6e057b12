"""An item's public result and a batch's statistics: built in one place, used by every side.

The service, the client's local backend and the client's merging of chunked batches all turn
scored items into `ItemResult`s with `item_result` and aggregate them with `batch_stats`, so
the numbers a trainer logs are the same whichever way a batch was scored. Pure: it depends on
the wire models only (the engine's `ItemScore` fits `ScoredItem` structurally).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from .protocol import BatchStats, ErrorInfo, ItemResult

__all__ = ["ScoredItem", "batch_stats", "item_result"]


class _ErrorLike(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def param(self) -> str | None: ...


class ScoredItem(Protocol):
    """What `item_result` reads: the engine's `ItemScore` has exactly these attributes."""

    @property
    def reward(self) -> float | None: ...
    @property
    def components(self) -> Mapping[str, float | None]: ...
    @property
    def reason(self) -> str: ...
    @property
    def error(self) -> _ErrorLike | None: ...
    @property
    def n_calls(self) -> int: ...
    @property
    def n_invalid_tools(self) -> int: ...
    @property
    def gate(self) -> str | None: ...


def _text(value: str) -> str:
    # Reasons quote model output, which may hold lone UTF-16 surrogates that no JSON encoder
    # writes as UTF-8; escape them rather than fail the whole response.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def item_result(score: ScoredItem) -> ItemResult:
    """The public result of one scored item. An item with an error has no reward and no counts."""
    error = score.error
    if error is not None:
        info = ErrorInfo.model_construct(
            type=error.type, message=_text(error.message), param=_text(error.param or "") or None
        )
        return ItemResult.model_construct(
            reward=None,
            components={},
            reason=_text(score.reason or error.message),
            error=info,
            n_tool_calls=None,
            n_invalid_tools=None,
            gate=None,
        )
    return ItemResult.model_construct(
        reward=score.reward,
        components=dict(score.components),
        reason=_text(score.reason),
        error=None,
        n_tool_calls=score.n_calls,
        n_invalid_tools=score.n_invalid_tools,
        gate=score.gate,
    )


def batch_stats(results: Sequence[ItemResult]) -> BatchStats:
    """Aggregates over a batch: items with an error are left out of the means, a component's
    mean leaves out its None (not applicable) values; the tool-call rate is the share of scored
    items that called a tool, the invalid-tool rate the share of calls naming no known tool
    (both None when an item does not carry its call counts)."""
    n_scored = 0
    reward_sum = 0.0
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    with_calls = 0
    total_calls = 0
    invalid = 0
    counted = True  # every scored item says how many calls it made (servers before 0.2 did not)
    for r in results:
        if r.error is not None or r.reward is None:
            continue
        n_scored += 1
        reward_sum += r.reward
        for name, value in r.components.items():
            if name not in counts:
                counts[name] = 0
                sums[name] = 0.0
            if value is not None:
                sums[name] += value
                counts[name] += 1
        if r.n_tool_calls is None or r.n_invalid_tools is None:
            counted = False
        calls = r.n_tool_calls or 0
        with_calls += 1 if calls else 0
        total_calls += calls
        invalid += r.n_invalid_tools or 0
    return BatchStats(
        n_items=len(results),
        n_errors=len(results) - n_scored,
        mean_reward=reward_sum / n_scored if n_scored else None,
        component_means={name: (sums[name] / counts[name] if counts[name] else None) for name in counts},
        # Without per-item counts the rates cannot be known: None, never a guess.
        tool_call_rate=with_calls / n_scored if n_scored and counted else None,
        invalid_tool_rate=invalid / total_calls if total_calls and counted else None,
    )
