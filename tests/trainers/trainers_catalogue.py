"""The shared catalogue of completions the trainer-path tests score, and the service's own answers.

Each case is a completion text (special tokens left out: each trainer adds or strips them its
own way), whether generation ended with EOS, and a label: a names-only teacher trace or a full
reference trace. Written to Arrow (parquet, `datasets`), the labels' dicts are merged into one
struct type: names-only rows get `reference: null`, trace rows `teacher_tools: null`, and every
call's `arguments` gains the other rows' argument names as null (`add` gets `x: null`).

`service_answers` asks the service directly (JSON labels, explicit finish state, the model's
EOS token): the number every trainer path must reproduce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mentor_client import RewardClient

ADD = '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>\n'
SQRT = '<tool_call>\n{"name": "sqrt", "arguments": {"x": 16}}\n</tool_call>\n'
NAMES = {"ground_truth": "5", "teacher_tools": ["add"]}
TRACE_ADD = {
    "ground_truth": "5",
    "reference": {"calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}], "answer": "5"},
}
TRACE_SQRT = {
    "ground_truth": "4",
    "reference": {"calls": [{"name": "sqrt", "arguments": {"x": 16}, "result": 4}], "answer": "4"},
}


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    finished: bool
    label: dict[str, Any]


CASES = [
    Case("names-finished", ADD + "So the answer is \\boxed{5}.", True, NAMES),
    Case("names-truncated", ADD + "So the answer is \\boxed{5}.", False, NAMES),
    Case("names-wrong", ADD + "So the answer is \\boxed{6}.", True, NAMES),
    Case("no-call", "It is \\boxed{5}.", True, NAMES),
    Case("trace-finished", ADD + "\\boxed{5}", True, TRACE_ADD),
    Case("trace-truncated", ADD + "\\boxed{5}", False, TRACE_ADD),
    Case("trace-sqrt", SQRT + "The root is \\boxed{4}", True, TRACE_SQRT),
    Case("trace-wrong-tool", SQRT + "\\boxed{4}", True, TRACE_ADD),
]
PRESETS = ("flexible", "strict")


def corpus() -> list[str]:
    """Text for the tiny tokenizers: the catalogue itself, and some prose."""
    return [c.text for c in CASES] * 4 + ["The answer is a number. Add two and three."] * 4


def label_column(form: str) -> list[Any]:
    """The labels as a dataset stores them: JSON text (the robust form) or dicts."""
    return [json.dumps(c.label) if form == "json" else dict(c.label) for c in CASES]


def service_answers(
    client: RewardClient,
    preset: str,
    *,
    eos_tokens: list[str] | None = None,
    finished: bool | None = None,
) -> list[tuple[float | None, dict[str, float | None]]]:
    """(reward, components) per case from the service itself; `finished` overrides the cases'."""
    items = [{"completion": c.text, **c.label, "finished": c.finished if finished is None else finished} for c in CASES]
    kwargs: dict[str, Any] = {"eos_tokens": eos_tokens} if eos_tokens else {}
    response = client.score(items, preset=preset, **kwargs)
    return [(r.reward, dict(r.components)) for r in response.results]
