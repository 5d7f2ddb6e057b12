"""Scored items cross a pipe from the scoring processes: pickling keeps every field."""

from __future__ import annotations

import dataclasses
import pickle

from mentor_server.scoring.types import ItemError, ItemScore

# A value for every field, none of them the default: a field added to ItemScore but left out
# of its `__reduce__` comes back as its default (or fails) and this test says so.
NON_DEFAULT = {
    "reward": 0.25,
    "components": {"outcome": 1.0, "arguments": None},
    "reason": "outcome=1",
    "error": ItemError("timeout", "too slow", "items[3]"),
    "n_calls": 3,
    "n_invalid_tools": 1,
    "gate": "not_finished",
}


def test_every_field_of_item_score_survives_pickling() -> None:
    assert {f.name for f in dataclasses.fields(ItemScore)} == set(NON_DEFAULT)
    score = ItemScore(**NON_DEFAULT)  # type: ignore[arg-type]
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(score, protocol=protocol))
        assert copy == score and type(copy) is ItemScore and type(copy.error) is ItemError


def test_every_field_of_item_error_survives_pickling() -> None:
    error = ItemError("invalid_item", "bad", "items[0].reference")
    assert {f.name for f in dataclasses.fields(ItemError)} == {"type", "message", "param"}
    assert pickle.loads(pickle.dumps(error)) == error
