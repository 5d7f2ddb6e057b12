"""An item's public result and a batch's statistics: built in one place, used by every side.

The service, the client's local backend and the client's merging of chunked batches all turn
scored items into results with `result_row` (a plain dict: the service writes its answer from
these; `item_result` wraps one in an `ItemResult`) and aggregate them with `StatsTotals`
(`batch_stats`, or `rows_and_stats` in the same pass as the rows), so the numbers a trainer
logs are the same whichever way a batch was scored. Pure: it depends on the wire models only
(the engine's `ItemScore` fits `ScoredItem` structurally).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from .protocol import BatchStats, ErrorInfo, ItemResult

__all__ = [
    "ScoredItem",
    "StatsTotals",
    "batch_stats",
    "item_result",
    "result_model",
    "result_row",
    "rows_and_stats",
]


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
    if value.isascii():  # most reasons: no copy made to find out
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def result_row(score: ScoredItem, reasons: bool = True) -> dict[str, Any]:
    """The public result of one scored item as the plain dict of its JSON, in `ItemResult`'s
    field order. An item with an error has no reward and no counts. `reasons=False` leaves the
    `reason` key out (an answer to `reasons: false` that nothing records).

    The service writes its answer from these rows without building a model per item (a
    pydantic model per result cost about 11 ms per 1024 items); numbers are floats, as the
    models' float fields write them.
    """
    error = score.error
    if error is not None:
        row: dict[str, Any] = {"reward": None, "components": {}}
        if reasons:
            row["reason"] = _text(score.reason or error.message)
        row["error"] = {"type": error.type, "message": _text(error.message), "param": _text(error.param or "") or None}
        row["n_tool_calls"] = row["n_invalid_tools"] = row["gate"] = None
        return row
    reward = score.reward
    components = dict(score.components)
    for value in components.values():
        if value is not None and type(value) is not float:  # an int from a component or a gate
            components = {k: v if v is None else float(v) for k, v in components.items()}
            break
    row = {"reward": reward if reward is None or type(reward) is float else float(reward), "components": components}
    if reasons:
        row["reason"] = _text(score.reason)
    row["error"] = None
    row["n_tool_calls"] = score.n_calls
    row["n_invalid_tools"] = score.n_invalid_tools
    row["gate"] = score.gate
    return row


def item_result(score: ScoredItem) -> ItemResult:
    """The public result of one scored item, as the wire model (`result_row`'s values)."""
    return result_model(result_row(score))


def result_model(row: dict[str, Any]) -> ItemResult:
    """An `ItemResult` from a `result_row` dict (built without validation: the values are typed)."""
    error = row["error"]
    fields = {**row, "error": None if error is None else ErrorInfo.model_construct(**error)}
    return ItemResult.model_construct(**fields)


class StatsTotals:
    """The running sums behind `BatchStats`, one item at a time: `batch_stats` and the service's
    one-pass answer (`rows_and_stats`) aggregate with this same code.

    Items with an error are left out of the means, a component's mean leaves out its None (not
    applicable) values; the tool-call rate is the share of scored items that called a tool, the
    invalid-tool rate the share of calls naming no known tool (both None when an item does not
    carry its call counts).
    """

    __slots__ = (
        "counted",
        "counts",
        "invalid",
        "n_items",
        "n_scored",
        "reward_sum",
        "sums",
        "total_calls",
        "with_calls",
    )

    def __init__(self) -> None:
        self.n_items = 0
        self.n_scored = 0
        self.reward_sum = 0.0
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.with_calls = 0
        self.total_calls = 0
        self.invalid = 0
        self.counted = True  # every scored item says how many calls it made (servers before 0.2 did not)

    def add(
        self,
        errored: bool,
        reward: float | None,
        components: Mapping[str, float | None],
        n_tool_calls: int | None,
        n_invalid_tools: int | None,
    ) -> None:
        self.n_items += 1
        if errored or reward is None:
            return
        self.n_scored += 1
        self.reward_sum += reward
        sums, counts = self.sums, self.counts
        for name, value in components.items():
            if name not in counts:
                counts[name] = 0
                sums[name] = 0.0
            if value is not None:
                sums[name] += value
                counts[name] += 1
        if n_tool_calls is None or n_invalid_tools is None:
            self.counted = False
        calls = n_tool_calls or 0
        self.with_calls += 1 if calls else 0
        self.total_calls += calls
        self.invalid += n_invalid_tools or 0

    def fields(self) -> dict[str, Any]:
        """`BatchStats`' fields, in its order."""
        n_scored, counts, sums = self.n_scored, self.counts, self.sums
        counted = self.counted
        return {
            "n_items": self.n_items,
            "n_errors": self.n_items - n_scored,
            "mean_reward": self.reward_sum / n_scored if n_scored else None,
            "component_means": {name: (sums[name] / counts[name] if counts[name] else None) for name in counts},
            # Without per-item counts the rates cannot be known: None, never a guess.
            "tool_call_rate": self.with_calls / n_scored if n_scored and counted else None,
            "invalid_tool_rate": self.invalid / self.total_calls if self.total_calls and counted else None,
        }


def batch_stats(results: Sequence[ItemResult]) -> BatchStats:
    """Aggregates over a batch of results (see `StatsTotals`)."""
    totals = StatsTotals()
    for r in results:
        totals.add(r.error is not None, r.reward, r.components, r.n_tool_calls, r.n_invalid_tools)
    return BatchStats(**totals.fields())


def rows_and_stats(scores: Iterable[ScoredItem], reasons: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every item's `result_row` and the batch's `BatchStats` fields, in one pass."""
    totals = StatsTotals()
    rows = []
    for score in scores:
        row = result_row(score, reasons)
        totals.add(
            row["error"] is not None, row["reward"], row["components"], row["n_tool_calls"], row["n_invalid_tools"]
        )
        rows.append(row)
    return rows, totals.fields()
