"""The pool's deadlines hold against jobs that cannot be interrupted, and closing never waits on one.

A job stuck in C code (a big-integer power holding the GIL) is ended by killing exactly the
process that runs it: its siblings keep their processes, a replacement starts, and the next
jobs run. `close()` returns promptly with every process gone even when one is stuck. Bounds
are generous (a busy 2-core machine passes): what is tested is that the stuck job's process
goes, not how fast the machine is.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from _hostile_helpers import spin_or_echo

from mentor_server.api.pool import ScoringPool, WorkTimeout


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] not in "ZX"
    except OSError:
        return False


def _run(pool: ScoringPool, scenario: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        pool.open()
        await pool.wait_ready()
        try:
            return await scenario()
        finally:
            await asyncio.to_thread(pool.close, 10.0)

    return asyncio.run(main())


async def _wait_for_pids(pool: ScoringPool, count: int, timeout_s: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while len(pool.pids()) != count or not pool.ready:
        assert time.monotonic() < deadline, f"the pool did not get back to {count} processes"
        await asyncio.sleep(0.05)
    return pool.pids()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
def test_a_stuck_job_kills_only_its_own_process_and_the_pool_goes_on() -> None:
    pool = ScoringPool(2, item_timeout_s=1.0, chunk_item_budget_s=0.1, score_fn=spin_or_echo)

    async def scenario() -> None:
        before = await _wait_for_pids(pool, 2)
        # A slow sibling is in flight on the other process while the stuck job overruns.
        stuck = asyncio.ensure_future(pool.run_job(spin_or_echo, {"items": ["SPIN"]}, 1.0))
        sibling = asyncio.ensure_future(pool.run_job(spin_or_echo, {"items": ["fine"]}, 60.0))
        with pytest.raises(WorkTimeout):
            await stuck
        answer = await sibling
        assert answer[0]["pid"] in before  # the sibling finished on its own, undisturbed process
        after = await _wait_for_pids(pool, 2)
        killed = set(before) - set(after)
        assert len(killed) == 1 and answer[0]["pid"] not in killed
        for pid in killed:
            deadline = time.monotonic() + 30
            while _alive(pid):
                assert time.monotonic() < deadline, "the stuck process was not killed"
                await asyncio.sleep(0.05)
        assert pool.replacements == 1
        results = await pool.score({}, ["a", "b", "c"])
        assert [r["item"] for r in results] == ["a", "b", "c"]

    _run(pool, scenario)


def test_a_stuck_item_in_a_batch_is_its_own_timeout_error() -> None:
    pool = ScoringPool(2, item_timeout_s=1.0, chunk_item_budget_s=0.05, score_fn=spin_or_echo, min_chunk_items=2)

    async def scenario() -> list[Any]:
        await _wait_for_pids(pool, 2)
        return await pool.score({}, ["a", "b", "SPIN", "d"])

    results = _run(pool, scenario)
    assert [r["item"] for r in results if isinstance(r, dict)] == ["a", "b", "d"]
    # worker.error_result builds the timeout; whatever its shape, it names the limit.
    assert "timeout" in repr(results[2]) and "1 s" in repr(results[2])


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
def test_close_kills_a_stuck_process_at_once() -> None:
    pool = ScoringPool(1, item_timeout_s=600.0, score_fn=spin_or_echo)
    pids: list[int] = []

    async def scenario() -> float:
        pids.extend(await _wait_for_pids(pool, 1))
        job = asyncio.ensure_future(pool.run_job(spin_or_echo, {"items": ["SPIN"]}, 600.0))
        await asyncio.sleep(0.5)  # the job is running in the process now
        start = time.monotonic()
        await asyncio.to_thread(pool.close, 10.0)
        elapsed = time.monotonic() - start
        with pytest.raises(Exception):  # noqa: B017 - WorkerCrashed or PoolUnavailable, either says "gone"
            await job
        return elapsed

    elapsed = _run(pool, scenario)
    assert elapsed < 10.0
    assert not any(_alive(pid) for pid in pids)


def test_a_cancelled_job_does_not_hold_its_process() -> None:
    pool = ScoringPool(1, item_timeout_s=600.0, score_fn=spin_or_echo)

    async def scenario() -> Any:
        first = await _wait_for_pids(pool, 1)
        job = asyncio.ensure_future(pool.run_job(spin_or_echo, {"items": ["SPIN"]}, 600.0))
        await asyncio.sleep(0.5)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        second = await _wait_for_pids(pool, 1)
        assert second != first
        return await pool.run_job(spin_or_echo, {"items": ["after"]}, 60.0)

    assert _run(pool, scenario)[0]["item"] == "after"
