"""Client-side clocks and the wall-time budget of `mentor-train experiment`.

During GRPO the reward function and the tools are wrapped with clocks, so each step's wall time splits
into time spent awaiting rewards, awaiting tool results, and everything else; after the first run's
first steps, the budget fixes every run's step count from the measured step and evaluation times.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mentor_client.adapters.trl_tools import ToolExecutor

CALIBRATION_STEPS = 3  # GRPO steps timed before the budget fixes the step count (the first is warm-up)


# ---------------------------------------------------------------------------- client-side clocks
Interval = tuple[float, float]
Planner = Callable[[list[float], float], int]  # (step times so far, set-up seconds) -> steps per run


class TimedReward:
    """Wraps the client's async TRL reward and records (start, end) of every awaited batch.

    TRL awaits async rewards on its own event loop thread and blocks the training step until
    they return, so the recorded wall time is exactly what a step spends waiting for rewards.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.__name__ = str(inner.__name__)  # TRL names its reward metrics after this
        self.intervals: list[Interval] = []
        self.sizes: list[int] = []

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[Any]:
        started = time.perf_counter()
        try:
            values: list[Any] = await self.inner(prompts=prompts, completions=completions, **kwargs)
            return values
        finally:
            self.intervals.append((started, time.perf_counter()))
            self.sizes.append(len(completions))


class TimedToolRunner(ToolExecutor):
    """A `ToolExecutor` that records (start, end) of every tool call sent to the service during rollouts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intervals: list[Interval] = []

    async def arun(self, toolset: str, name: str, arguments: dict[str, Any]) -> str:
        started = time.perf_counter()
        try:
            return await super().arun(toolset, name, arguments)
        finally:
            self.intervals.append((started, time.perf_counter()))


def busy_seconds(intervals: Sequence[Interval], start: float, end: float) -> float:
    """Wall time inside [start, end) covered by at least one interval (overlaps count once)."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in intervals if b > start and a < end)
    total, cursor = 0.0, start
    for a, b in clipped:
        a = max(a, cursor)
        if b > a:
            total += b - a
            cursor = b
    return total


def _step_clock() -> Any:
    """A TrainerCallback (built lazily: transformers is imported only when training starts)."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        """Per-step wall clock; stops training at `stop_at`, which `plan` may fix after calibration."""

        def __init__(self, stop_at: int | None, plan: Planner | None, label: str) -> None:
            self.begins: list[float] = []
            self.ends: list[float] = []
            self.stop_at = stop_at
            self.plan = plan
            self.label = label
            self.on_progress: Callable[[int], None] | None = None
            self.run_started = time.perf_counter()  # reset by the run; set-up = first step's begin - this

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.begins.append(time.perf_counter())

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.ends.append(time.perf_counter())
            if self.plan is not None and len(self.ends) == CALIBRATION_STEPS:
                times = [b - a for a, b in zip(self.begins, self.ends, strict=False)]
                self.stop_at = self.plan(times, self.begins[0] - self.run_started)
            if self.on_progress is not None:
                self.on_progress(state.global_step)
            if self.stop_at is not None and state.global_step >= self.stop_at:
                control.should_training_stop = True

    return StepClock


# ---------------------------------------------------------------------------- budget
@dataclass
class BudgetPlan:
    """How the wall-time budget fixed the GRPO step count (all of it goes into the JSON)."""

    budget_s: float | None
    deadline: float | None  # perf_counter value
    eval_seconds: float = 0.0
    runs: int = 0
    steps: int | None = None
    step_seconds: float | None = None
    setup_seconds: float | None = None
    dropped_seeds: list[int] = field(default_factory=list)
    skipped_runs: list[str] = field(default_factory=list)
    note: str = ""

    def remaining(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.perf_counter()


def plan_steps(
    remaining_s: float, step_s: float, setup_s: float, eval_s: float, runs: int, done_steps: int, cap: int
) -> int:
    """Steps per run so the current run (`done_steps` in), the `runs - 1` after it, and every
    run's evaluation fit in `remaining_s`:

        (N - done)·step + eval + (runs - 1)·(setup + N·step + eval) <= remaining
    """
    free = remaining_s - eval_s - (runs - 1) * (setup_s + eval_s) + done_steps * step_s
    return max(done_steps, min(cap, int(free // (runs * step_s))))


def plan_runs(
    remaining_s: float,
    step_s: float,
    setup_s: float,
    eval_s: float,
    seeds: tuple[int, ...],
    methods: int,
    done_steps: int,
    cap: int,
    min_steps_per_seed: int,
) -> tuple[int, tuple[int, ...]]:
    """(steps per run, seeds kept): every seed if each run still gets `min_steps_per_seed` steps,
    else the first seed alone with the steps that frees up."""
    steps = plan_steps(remaining_s, step_s, setup_s, eval_s, len(seeds) * methods, done_steps, cap)
    if steps < min_steps_per_seed and len(seeds) > 1:
        seeds = seeds[:1]
        steps = plan_steps(remaining_s, step_s, setup_s, eval_s, methods, done_steps, cap)
    return steps, seeds
