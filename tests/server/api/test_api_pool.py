"""The scoring pool: chunking, per-item deadlines, and recovery from stuck or dead workers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from _service_helpers import slow_or_crashing_score_chunk

from mentor_server.api.pool import ScoringPool
from mentor_server.api.worker import score_chunk
from mentor_server.scoring import ItemScore, resolve_engine_config

GOOD = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>\\boxed{5}<|im_end|>'
CONFIG = resolve_engine_config(preset="mentor")


def _item(text: str = GOOD) -> dict[str, Any]:
    return {"completion": text, "ground_truth": "5", "teacher_tools": ["add"]}


def _indexed(items: list[Any]) -> list[tuple[int, Any]]:
    # The pool's items travel with their index in the request (errors name `items[i]`).
    return list(enumerate(items))


@pytest.mark.parametrize(
    ("workers", "n", "chunks"),
    [(1, 0, 0), (1, 5, 1), (2, 16, 2), (2, 1000, 4), (4, 9, 2), (8, 4096, 16)],
    ids=["empty", "tiny", "two-min-chunks", "grpo-step", "few-items-many-workers", "max-batch"],
)
def test_split_covers_every_item_once(workers: int, n: int, chunks: int) -> None:
    bounds = ScoringPool(workers).split(n)
    assert len(bounds) == chunks
    covered = [i for a, b in bounds for i in range(a, b)]
    assert covered == list(range(n))


def _run(pool: ScoringPool, coro_factory: Any) -> Any:
    async def main() -> Any:
        pool.open()
        await pool.wait_ready()
        try:
            return await coro_factory()
        finally:
            await asyncio.to_thread(pool.close, 5.0)

    return asyncio.run(main())


def test_a_stuck_item_times_out_alone_and_the_pool_recovers() -> None:
    pool = ScoringPool(
        2,
        item_timeout_s=1.0,
        chunk_item_budget_s=0.05,
        score_fn=slow_or_crashing_score_chunk,
        min_chunk_items=4,
    )
    items = [_item() for _ in range(7)] + [_item(GOOD + " SLEEP:30")]

    async def scenario() -> tuple[list[ItemScore], list[ItemScore], float]:
        start = time.monotonic()
        first = await pool.score(CONFIG, _indexed(items))
        elapsed = time.monotonic() - start
        second = await pool.score(CONFIG, _indexed([_item() for _ in range(3)]))
        return first, second, elapsed

    first, second, elapsed = _run(pool, scenario)
    assert [r.error.type for r in first if r.error] == ["timeout"]
    assert first[-1].reward is None and first[-1].error is not None and "limit" in first[-1].error.message
    assert all(r.reward == pytest.approx(1.1) for r in first[:-1])
    assert [r.reward for r in second] == [pytest.approx(1.1)] * 3
    assert elapsed < 10  # the chunk's deadline, then one item's, plus process start-up
    assert pool.replacements >= 1


def test_a_crashing_item_is_isolated_and_its_neighbours_are_scored() -> None:
    pool = ScoringPool(1, item_timeout_s=5.0, score_fn=slow_or_crashing_score_chunk)
    items = [_item(), _item(GOOD + " CRASH"), _item()]

    results = _run(pool, lambda: pool.score(CONFIG, _indexed(items)))
    assert results[0].reward == results[2].reward == pytest.approx(1.1)
    assert results[1].error is not None and results[1].error.type == "worker_crashed"


def test_worker_function_matches_the_engine_and_never_raises() -> None:
    out = score_chunk({"config": CONFIG, "items": [(40, _item()), (41, {"completion": 5})]})
    assert out[0].reward == pytest.approx(1.1) and out[0].error is None
    assert out[1].reward is None and out[1].error is not None
    assert out[1].error.type == "invalid_item" and out[1].error.param == "items[41].completion"
    broken = score_chunk({"config": "not a config", "items": [(0, _item())]})
    assert broken[0].error is not None and broken[0].error.type == "internal_error"
