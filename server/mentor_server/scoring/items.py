"""Reading one item to score: a wire/JSONL object becomes a `ScoringItem`, or an error naming the field.

This is the only place an item's shape is checked, for every entry point (the service's workers,
the CLI, the client's local backend, the adapters through them). Rules:

- an item is a JSON object with `completion` (text, or a list of chat messages) and optionally
  `ground_truth` (a string, a number, or a list of them), `reference` (a full teacher trace) or
  `teacher_tools` (names only), and `finished` (true/false);
- an unknown field is an error naming it: a misspelt `ground_truht` must not quietly score the
  item without its ground truth;
- a `null` field is the same as an absent one, and so is a `null` argument value in a reference
  call: Arrow-backed datasets (parquet in verl, `datasets` in TRL) store a column of dicts as one
  struct with the union of every row's keys and fill the missing ones with null, so
  `{"a": 2, "b": 3}` comes back as `{"a": 2, "b": 3, "x": null}`. A tool argument whose
  reference value is JSON null therefore cannot be required; BFCL-style optional parameters
  (`possible_answers` with `""`) are the way to say "may be left out".

Malformed *completion content* is not an error here: it is scored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .answers import strip_boxed
from .types import ReferenceCall, ReferenceTrace, ScoringConfigError, ScoringItem

ITEM_FIELDS: tuple[str, ...] = ("completion", "ground_truth", "reference", "teacher_tools", "finished")
_REFERENCE_FIELDS = ("calls", "answer", "possible_answers")
_CALL_FIELDS = ("name", "arguments", "result")


def item_from_dict(data: Any) -> ScoringItem:
    """Read one item (the shape of `protocol.ScoreItem`).

    Raises ScoringConfigError whose `param` is relative to the item (`reference.calls[0].name`).
    """
    if not isinstance(data, Mapping):
        raise ScoringConfigError(f"an item must be a JSON object, not {_kind(data)}", param=None)
    _no_unknown(data, ITEM_FIELDS, "")
    if "completion" not in data or data["completion"] is None:
        raise ScoringConfigError("'completion' is required (the rollout's text or messages)", param="completion")
    completion = data["completion"]
    if isinstance(completion, list):
        for i, message in enumerate(completion):
            if not isinstance(message, dict):
                raise ScoringConfigError("each message must be an object", param=f"completion[{i}]")
    elif not isinstance(completion, str):
        raise ScoringConfigError(
            f"'completion' must be a string or a list of messages, not {_kind(completion)}", param="completion"
        )
    reference = _reference_from(data)
    ground_truth = _ground_truth_from(data.get("ground_truth"), reference)
    finished = data.get("finished")
    if finished is not None and not isinstance(finished, bool):
        raise ScoringConfigError("'finished' must be true, false or null", param="finished")
    return ScoringItem(completion, ground_truth, reference, finished)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, Mapping) else type(value).__name__


def _no_unknown(data: Mapping[Any, Any], known: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in known:
            param = f"{where}.{key}" if where else str(key)
            raise ScoringConfigError(f"unknown field {str(key)!r}; known: {', '.join(known)}", param=param)


def _answer_text(value: Any, param: str) -> str:
    """An acceptable answer as text: strings as given, numbers as written (math data stores them)."""
    if isinstance(value, str):
        return strip_boxed(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise ScoringConfigError(f"an acceptable answer must be a string or a finite number, not {_kind(value)}", param)


def _ground_truth_from(value: Any, reference: ReferenceTrace) -> tuple[str, ...]:
    if value is None:
        return (strip_boxed(reference.answer),) if reference.answer else ()
    if isinstance(value, list):
        return tuple(_answer_text(entry, f"ground_truth[{i}]") for i, entry in enumerate(value))
    return (_answer_text(value, "ground_truth"),)


def _reference_from(data: Mapping[str, Any]) -> ReferenceTrace:
    raw = data.get("reference")
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise ScoringConfigError("'reference' must be an object with 'calls' and 'answer'", param="reference")
        _no_unknown(raw, _REFERENCE_FIELDS, "reference")
        calls_raw = raw.get("calls")
        if calls_raw is None:
            calls_raw = []
        if not isinstance(calls_raw, list):
            raise ScoringConfigError("'reference.calls' must be a list", param="reference.calls")
        calls = [_reference_call(call, f"reference.calls[{i}]") for i, call in enumerate(calls_raw)]
        answer = raw.get("answer")
        if answer is not None:
            answer = _answer_text(answer, "reference.answer")
        possible = raw.get("possible_answers")
        if possible is None:
            possible = False
        if not isinstance(possible, bool):
            raise ScoringConfigError(
                "'reference.possible_answers' must be a boolean", param="reference.possible_answers"
            )
        return ReferenceTrace(tuple(calls), answer, False, possible)
    names = data.get("teacher_tools")
    if names is None:
        return ReferenceTrace((), None, True, False)
    if not isinstance(names, list):
        raise ScoringConfigError("'teacher_tools' must be a list of tool names", param="teacher_tools")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise ScoringConfigError("each teacher tool must be a non-empty name", param=f"teacher_tools[{i}]")
    return ReferenceTrace(tuple(ReferenceCall(n) for n in names), None, True, False)


def _reference_call(call: Any, where: str) -> ReferenceCall:
    if not isinstance(call, Mapping):
        raise ScoringConfigError("each reference call must be an object", param=where)
    _no_unknown(call, _CALL_FIELDS, where)
    name = call.get("name")
    if not isinstance(name, str) or not name:
        raise ScoringConfigError("a reference call needs a non-empty 'name'", param=f"{where}.name")
    arguments = call.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise ScoringConfigError("'arguments' must be an object", param=f"{where}.arguments")
    # Null means absent (the Arrow union fill, module docstring).
    present = {str(key): value for key, value in arguments.items() if value is not None}
    return ReferenceCall(name, present, call.get("result"))
