"""Tool-call matching: how close a student's calls are to a teacher's, as pure functions.

Everything here is pure (no I/O, no global state) and sized for real traces (1–8 calls), so it
runs per rollout without caching. Values are compared type-aware (a bool is not an int, an int
stands for a float, `"5"` against `5` earns only partial credit by default), numbers within a
tolerance, strings after BFCL's normalisation and, failing equality, by a thresholded fuzzy
ratio that never reaches full credit. Reference arguments may be BFCL *acceptable-value lists*
(`{"unit": ["celsius", ""]}`, where `""` marks the parameter optional). Calls are paired by a
maximum-weight assignment (Hungarian algorithm, pure Python) rather than greedily, so a student
is never scored against the wrong teacher call because of call order.

Bounds (see `pairing`): calls are paired optimally while both sides have at most
`OPTIMAL_PAIRING_MAX_CALLS` (64) calls; above that greedily by similarity while at most
`MAX_SIMILARITY_PAIRS` (16,384) similarities are needed; beyond, in order by tool name, calls
with equal arguments first (results: by canonical value). The reason says which rule ran.
Fuzzy string credit is skipped for pairs of strings longer than `FUZZY_MAX_CELLS` together (its
cost is the product of the lengths), and the `order` tool-name mode counts a longest common
subsequence with bit-parallel integers (O(n·m/word size)). Beside the flexible
scores, the module reproduces two baselines exactly: the MENTOR paper's strict trajectory
match and ToolRL's correctness reward. Bad options raise `ScoringConfigError` naming the field;
malformed student calls are scored (as zero), never raised.
"""

from __future__ import annotations

from ..pairing import MAX_SIMILARITY_PAIRS, OPTIMAL_PAIRING_MAX_CALLS, greedy_pairing, optimal_pairing
from .traces import (
    TOOL_NAME_MODES,
    arguments_score,
    call_similarity,
    result_matches,
    results_score,
    strict_sequence_match,
    tool_name_score,
    toolrl_correctness,
    toolrl_to_unit,
)
from .values import (
    FUZZY_MAX_CELLS,
    MISSING,
    ValueMatchOptions,
    acceptable_value_score,
    standardize_string,
    value_similarity,
)

__all__ = [
    "FUZZY_MAX_CELLS",
    "MAX_SIMILARITY_PAIRS",
    "MISSING",
    "OPTIMAL_PAIRING_MAX_CALLS",
    "TOOL_NAME_MODES",
    "ValueMatchOptions",
    "acceptable_value_score",
    "arguments_score",
    "call_similarity",
    "greedy_pairing",
    "optimal_pairing",
    "result_matches",
    "results_score",
    "standardize_string",
    "strict_sequence_match",
    "tool_name_score",
    "toolrl_correctness",
    "toolrl_to_unit",
    "value_similarity",
]
