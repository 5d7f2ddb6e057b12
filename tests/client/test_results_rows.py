"""`mentor_client.results`: the plain-dict rows the service answers with say exactly what the
wire models say, and the one-pass aggregate equals `batch_stats` over the models."""

from __future__ import annotations

import json

import pytest

from mentor_client.protocol import BatchStats, ItemResult
from mentor_client.results import batch_stats, item_result, result_row, rows_and_stats
from mentor_server.scoring import ItemError, ItemScore

SCORES = [
    ItemScore(0.75, {"outcome": 1.0, "tool_names": 0.5, "arguments": None}, "ok → fine", None, 2, 1),
    ItemScore(1, {"outcome": 1, "tool_names": None, "arguments": 0}, "ints", None, 0, 0),  # ints, as a spec may give
    ItemScore(0.0, {"outcome": 0.0, "tool_names": 0.0, "arguments": None}, "gate", None, 1, 1, "not_finished"),
    ItemScore(None, {}, "", ItemError("invalid_item", "items[3]: bad \ud800", None)),
    ItemScore(None, {}, "why", ItemError("timeout", "too slow", "items[4]")),
]


def test_rows_serialise_as_the_models_do() -> None:
    for score in SCORES:
        row = result_row(score)
        assert json.loads(item_result(score).model_dump_json()) == row
        # The same bytes as the model's own writer, floats included (an int reward is 1.0).
        assert ItemResult.model_validate(row).model_dump_json() == item_result(score).model_dump_json()
    assert result_row(SCORES[1])["reward"] == 1.0 and type(result_row(SCORES[1])["reward"]) is float
    assert all(type(v) is float for v in result_row(SCORES[1])["components"].values() if v is not None)
    assert result_row(SCORES[3])["error"]["message"] == "items[3]: bad \\ud800"  # no lone surrogate left


@pytest.mark.parametrize("reasons", [True, False], ids=["reasons", "no-reasons"])
def test_rows_and_stats_equal_batch_stats(reasons: bool) -> None:
    rows, stats = rows_and_stats(SCORES, reasons)
    assert BatchStats(**stats) == batch_stats([item_result(s) for s in SCORES])
    assert stats["n_items"] == 5 and stats["n_errors"] == 2 and stats["invalid_tool_rate"] == 2 / 3
    assert all(("reason" in row) is reasons for row in rows)
    assert [{k: v for k, v in r.items() if k != "reason"} for r in rows] == [
        {k: v for k, v in result_row(s).items() if k != "reason"} for s in SCORES
    ]
