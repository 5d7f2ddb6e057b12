"""Pairing student calls with teacher calls: optimal when small, bounded in cost always.

`optimal_pairing` is a maximum-weight assignment (Kuhn–Munkres with potentials, pure Python):
exact, and the right tool for real traces (1–8 calls), but O(n²·m) in time and O(n·m) in
similarity evaluations, so 800 × 800 calls took 17 s. `pair_bounded` therefore picks a rule by
size, and says which in `Pairing.note` so the component's reason shows it:

- both sides at most `OPTIMAL_PAIRING_MAX_CALLS` (64) calls: optimal pairing over the full
  similarity matrix (results identical to calling `optimal_pairing` directly);
- otherwise, at most `MAX_SIMILARITY_PAIRS` (16,384, e.g. 128 × 128) similarities to compute:
  greedy pairing by similarity (the largest remaining similarity first);
- beyond that the matrix is not built: calls are paired by key in order of appearance, first
  calls with the same name and equal arguments (canonical form), then the rest by name alone
  (results: by canonical value), computing one similarity per pair, so the cost is linear in
  the number of calls.

A call left unpaired scores 0 in every rule; only the choice of partners differs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_SIMILARITY_PAIRS",
    "OPTIMAL_PAIRING_MAX_CALLS",
    "Pairing",
    "greedy_pairing",
    "optimal_pairing",
    "pair_bounded",
]

OPTIMAL_PAIRING_MAX_CALLS: Final = 64
"""Most calls on either side that are paired optimally (64³ steps: a few milliseconds)."""

MAX_SIMILARITY_PAIRS: Final = 16_384
"""Most (student, teacher) similarities computed for one pairing; beyond it, pairing by key."""


def _check_matrix(sim: Sequence[Sequence[float]]) -> int:
    width = len(sim[0]) if sim else 0
    for row in sim:
        if len(row) != width:
            raise ValueError("similarity matrix rows must all have the same length")
        for value in row:
            if not math.isfinite(value):
                raise ValueError(f"similarity matrix holds a non-finite value {value!r}")
    return width


def optimal_pairing(sim: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """Maximum-weight assignment of rows to columns (Kuhn–Munkres), rectangular allowed.

    Returns `min(rows, cols)` pairs `(row, col)` sorted by row; zero-weight pairs are included
    (callers that count "paired" calls filter them). O(n²·m) with potentials, pure Python: the
    matrices here are a handful of calls, where importing scipy would cost more than solving.
    Callers with unbounded inputs go through `pair_bounded`.

    >>> optimal_pairing([[0.9, 0.8], [0.8, 0.0]])
    [(0, 1), (1, 0)]
    """
    width = _check_matrix(sim)
    if not sim or width == 0:
        return []
    transpose = len(sim) > width
    rows = [list(col) for col in zip(*sim, strict=True)] if transpose else [list(r) for r in sim]
    n, m = len(rows), len(rows[0])
    inf = math.inf
    # Minimise the negated weights: shortest augmenting paths with row/column potentials.
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    owner = [0] * (m + 1)  # owner[j]: 1-based row assigned to column j (0: free)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        min_to = [inf] * (m + 1)
        came_from = [0] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = owner[j0]
            delta = inf
            j1 = 0
            for j in range(1, m + 1):
                if used[j]:
                    continue
                reduced = -rows[i0 - 1][j - 1] - u[i0] - v[j]
                if reduced < min_to[j]:
                    min_to[j] = reduced
                    came_from[j] = j0
                if min_to[j] < delta:
                    delta = min_to[j]
                    j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    min_to[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            previous = came_from[j0]
            owner[j0] = owner[previous]
            j0 = previous
    pairs = [(owner[j] - 1, j - 1) for j in range(1, m + 1) if owner[j]]
    if transpose:
        pairs = [(col, row) for row, col in pairs]
    return sorted(pairs)


def greedy_pairing(sim: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """Pair rows to columns by repeatedly taking the largest remaining entry (ties: first row, column)."""
    _check_matrix(sim)
    entries = sorted(
        ((value, i, j) for i, row in enumerate(sim) for j, value in enumerate(row)),
        key=lambda e: (-e[0], e[1], e[2]),
    )
    rows: set[int] = set()
    cols: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _value, i, j in entries:
        if i not in rows and j not in cols:
            rows.add(i)
            cols.add(j)
            pairs.append((i, j))
    return sorted(pairs)


@dataclass(frozen=True, slots=True)
class Pairing:
    """The pairs chosen, `(row, col, similarity)` sorted by row, and how they were chosen.

    `rule` is "optimal", "greedy" or "by_key"; `note` is "" for the optimal rule, else a
    sentence for the component's reason naming the rule and the bound that chose it.
    """

    pairs: list[tuple[int, int, float]]
    rule: str
    note: str


def pair_bounded(
    rows: int,
    cols: int,
    similarity: Callable[[int, int], float],
    row_keys: Callable[[int], Sequence[Collection[Hashable]]],
    col_keys: Callable[[int], Sequence[Collection[Hashable]]],
    *,
    what: str = "calls",
    key_name: str = "key",
) -> Pairing:
    """Pair `rows` student items with `cols` teacher items under the bounds of the module docstring.

    `similarity(i, j)` is the weight of a pair (in [0, 1]). The keys are only used above
    `MAX_SIMILARITY_PAIRS`. Each item gives its keys by tier (tier 0 first, e.g. a call's name
    with its exact arguments, then its name alone); within a tier a row and a column are
    candidates when they share a key, and each still unpaired column, in order, takes the first
    unpaired candidate row; the next tier pairs what is left. `what` and `key_name` name the
    items and the key in the note.
    """
    if rows == 0 or cols == 0:
        return Pairing([], "optimal", "")
    if rows <= OPTIMAL_PAIRING_MAX_CALLS and cols <= OPTIMAL_PAIRING_MAX_CALLS:
        matrix = [[similarity(i, j) for j in range(cols)] for i in range(rows)]
        return Pairing([(i, j, matrix[i][j]) for i, j in optimal_pairing(matrix)], "optimal", "")
    if rows * cols <= MAX_SIMILARITY_PAIRS:
        matrix = [[similarity(i, j) for j in range(cols)] for i in range(rows)]
        note = f"paired greedily: {max(rows, cols)} {what} above the optimal-pairing cap of {OPTIMAL_PAIRING_MAX_CALLS}"
        return Pairing([(i, j, matrix[i][j]) for i, j in greedy_pairing(matrix)], "greedy", note)
    row_tiers = [row_keys(i) for i in range(rows)]
    col_tiers = [col_keys(j) for j in range(cols)]
    taken: set[int] = set()
    paired_cols: set[int] = set()
    pairs: list[tuple[int, int, float]] = []
    for tier in range(max((len(t) for t in (*row_tiers, *col_tiers)), default=0)):
        waiting: dict[Hashable, list[int]] = {}
        for i, tiers in enumerate(row_tiers):
            if i not in taken and tier < len(tiers):
                for key in dict.fromkeys(tiers[tier]):
                    waiting.setdefault(key, []).append(i)
        cursor = dict.fromkeys(waiting, 0)
        for j, tiers in enumerate(col_tiers):
            if j in paired_cols or tier >= len(tiers):
                continue
            for key in tiers[tier]:
                queue = waiting.get(key)
                if queue is None:
                    continue
                k = cursor[key]
                while k < len(queue) and queue[k] in taken:
                    k += 1
                cursor[key] = k
                if k < len(queue):
                    i = queue[k]
                    taken.add(i)
                    paired_cols.add(j)
                    cursor[key] = k + 1
                    pairs.append((i, j, similarity(i, j)))
                    break
    note = (
        f"paired in order by {key_name}: {rows}x{cols} {what} exceed the similarity-matrix cap "
        f"of {MAX_SIMILARITY_PAIRS} pairs"
    )
    return Pairing(sorted(pairs), "by_key", note)
