"""`mentor-train experiment`: the MENTOR paper's comparison in miniature, and what the remote reward costs.

One command runs the whole study on one machine: start the reward service on the CPU cores, train a
tokenizer on the benchmark's text and build a decoder from scratch (no pretrained weights exist
here), SFT it on the in-domain teacher traces (checkpoint A, the SFT baseline), then from A run
GRPO with rollout tool execution for the same number of steps under each reward (`sparse`,
`mentor`, `flexible`, optionally `strict`), rewards and tool calls served by the service over HTTP.
Every checkpoint is evaluated greedily on the in-domain test split and every out-of-domain split.
During GRPO the reward function and the tools are wrapped with client-side clocks, so each step's
wall time splits into time spent awaiting rewards, awaiting tool results, and everything else.

`--size toy` runs in about a minute on a 2-core CPU (a test runs it, so the GPU run is never the
first run); `--size gpu` is sized for one H100 (a ~13M-parameter decoder, 256 completions per GRPO
step). `--budget-s` bounds the wall time: after the first GRPO run's first steps, the step count
for every run is fixed from the measured step time and the measured evaluation time, and the
output says so. Results: `experiment.json` (every number, seeds, the exact command) and
`experiment.txt` (the tables) in `--out`, rewritten after every evaluated checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .demo import RewardServiceProcess
from .runtime import configure_offline
from .tools import ToolRunner

METHODS = ("sparse", "mentor", "flexible")
EVAL_PRESET = "flexible"  # its components are the paper's metrics: outcome, tool-name F1, arguments
TOOL_METRICS = (
    ("call_rate", "call"),
    ("invalid_tool_rate", "invalid"),
    ("tool_name_f1", "name F1"),
    ("argument_score", "args"),
)
CALIBRATION_STEPS = 3  # GRPO steps timed before the budget fixes the step count (the first is warm-up)


# ---------------------------------------------------------------------------- sizes
@dataclass(frozen=True, slots=True)
class ExperimentSize:
    """Everything that differs between the CPU toy run and the GPU run."""

    name: str
    # benchmark rows
    train_rows: int
    test_rows: int
    ood_rows: int  # per out-of-domain split
    # decoder (Qwen2-style) and BPE tokenizer
    hidden_size: int
    layers: int
    heads: int
    kv_heads: int
    vocab_size: int
    # SFT: plain-torch teacher forcing on in-domain traces (assistant tokens only)
    sft_rows: int
    sft_steps: int | None
    sft_seconds: float | None
    sft_batch: int
    sft_lr: float
    # GRPO (TRL GRPOTrainer); completions per step = batch × grad_accum
    grpo_steps: int  # with a budget: the most steps a run may take
    num_generations: int
    grpo_batch: int
    grpo_grad_accum: int
    max_completion_length: int
    max_tool_calls: int
    grpo_lr: float
    temperature: float
    # greedy evaluation
    eval_rows: int | None  # per split; None: the whole split
    eval_max_turns: int
    eval_max_new_tokens: int
    eval_batch: int
    budget_s: float | None  # default wall-time budget of the whole run
    # With several seeds, the later seeds are dropped when the budget leaves fewer GRPO steps per run:
    # one seed with enough steps to move says more than two that barely start.
    min_steps_per_seed: int
    intermediate_size: int | None = None  # None: 4 × hidden
    phrases: bool = False  # the tokenizer's phrase merges and one token per digit (see tiny.TinyModelConfig)

    @property
    def completions_per_step(self) -> int:
        return self.grpo_batch * self.grpo_grad_accum


SIZES: dict[str, ExperimentSize] = {
    # ~175k parameters; every stage runs, none learns much. A CPU test runs this.
    "toy": ExperimentSize(
        name="toy",
        train_rows=256,
        test_rows=8,
        ood_rows=4,
        hidden_size=64,
        layers=2,
        heads=4,
        kv_heads=2,
        vocab_size=800,
        sft_rows=256,
        sft_steps=150,  # enough for well-formed calculator calls, so GRPO rollouts execute tools
        sft_seconds=None,
        sft_batch=8,
        sft_lr=1e-2,
        grpo_steps=2,
        num_generations=4,
        grpo_batch=4,
        grpo_grad_accum=2,
        max_completion_length=48,
        max_tool_calls=2,
        grpo_lr=1e-4,
        temperature=1.0,
        eval_rows=None,
        eval_max_turns=3,
        eval_max_new_tokens=40,
        eval_batch=64,
        budget_s=None,
        min_steps_per_seed=2,
    ),
    # ~0.8M parameters, sized from measurements on a 2-core CPU (docs: cpu-training-notes): 20,000 teacher
    # traces, a tokenizer whose phrase merges turn the calculator's tool block into ~90 tokens and whose
    # digits are single tokens, ~15 minutes of plain-torch SFT, then GRPO steps fixed by the budget so
    # all runs (2 seeds x 4 rewards by default on the command line) and their evaluations fit in an hour.
    "cpu": ExperimentSize(
        name="cpu",
        train_rows=20000,
        test_rows=200,
        ood_rows=100,
        hidden_size=128,
        layers=4,
        heads=4,
        kv_heads=2,
        vocab_size=1000,
        intermediate_size=256,
        phrases=True,
        sft_rows=20000,
        sft_steps=None,
        sft_seconds=900.0,
        sft_batch=32,
        sft_lr=1e-3,
        grpo_steps=60,
        num_generations=8,
        grpo_batch=8,
        grpo_grad_accum=2,
        max_completion_length=96,
        max_tool_calls=3,
        grpo_lr=2e-4,
        temperature=1.0,
        eval_rows=None,
        eval_max_turns=4,
        eval_max_new_tokens=64,
        eval_batch=128,
        budget_s=3300.0,
        min_steps_per_seed=5,
    ),
    # ~13M parameters (hidden 384, 6 layers), the size the GPU notes measured learning the call format
    # in ~90 s; 256 completions per GRPO step (32 prompts × 8), evaluation on 200 rows per split.
    "gpu": ExperimentSize(
        name="gpu",
        train_rows=8000,
        test_rows=200,
        ood_rows=200,
        hidden_size=384,
        layers=6,
        heads=6,
        kv_heads=2,
        vocab_size=1000,
        sft_rows=6000,
        sft_steps=None,
        sft_seconds=75.0,
        sft_batch=256,
        sft_lr=1e-3,
        grpo_steps=60,
        num_generations=8,
        grpo_batch=64,
        grpo_grad_accum=4,
        max_completion_length=128,
        max_tool_calls=2,  # in-domain tasks take 1-2 calls; each extra iteration is one more generate()
        grpo_lr=1e-4,
        temperature=1.0,
        eval_rows=None,
        eval_max_turns=6,
        eval_max_new_tokens=96,
        eval_batch=512,
        budget_s=450.0,
        min_steps_per_seed=10,
    ),
}


@dataclass(frozen=True, slots=True)
class ExperimentOptions:
    size: ExperimentSize
    out: Path
    workdir: Path
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = (1,)
    data_seed: int = 0
    budget_s: float | None = None
    service_workers: int | None = None  # default: one per core
    torch_threads: int | None = None  # None: torch's default (one per core)
    keep: bool = False
    command: str = ""


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


class TimedToolRunner(ToolRunner):
    """A `ToolRunner` that records (start, end) of every tool call sent to the service during rollouts."""

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


# ---------------------------------------------------------------------------- helpers
def _say(text: str) -> None:
    print(text, flush=True)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def _autocast(device: str) -> Iterator[None]:
    """bf16 autocast on CUDA (the H100 path); nothing on CPU."""
    if device != "cuda":
        yield
        return
    import torch

    with torch.autocast("cuda", dtype=torch.bfloat16):
        yield


def _environment(device: str) -> dict[str, Any]:
    import importlib.metadata as md

    env: dict[str, Any] = {"python": platform.python_version(), "device": device, "cpu_count": os.cpu_count()}
    for name in ("torch", "transformers", "trl", "accelerate", "datasets"):
        with contextlib.suppress(md.PackageNotFoundError):
            env[name] = md.version(name)
    if device == "cuda":
        import torch

        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def _mean(values: Sequence[float | None]) -> float | None:
    real = [v for v in values if v is not None]
    return sum(real) / len(real) if real else None


def _fmt(value: float | None, spread: float | None = None, pct: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{100 * value:.1f}%" if pct else f"{value:.3f}"
    return text if spread is None else f"{text}±{spread:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- stages
def build_data(options: ExperimentOptions) -> tuple[Path, dict[str, Any], list[str]]:
    """Write the benchmark; returns its folder, manifest, and the evaluated splits (test first)."""
    from .benchmark import BenchmarkSizes, generate_benchmark, write_benchmark

    size = options.size
    sizes = BenchmarkSizes(train=size.train_rows, test=size.test_rows, ood=size.ood_rows)
    splits = generate_benchmark(seed=options.data_seed, sizes=sizes)
    data = options.workdir / "data"
    manifest = write_benchmark(data, splits, seed=options.data_seed, parquet=False)
    # The paper's order: in-domain, then harder chains and unseen combinations, then other domains.
    known = ["test", "ood_long", "ood_combo"]
    evaluated = [n for n in known if n in splits] + sorted(n for n in splits if n not in (*known, "train"))
    return data, manifest, evaluated


def build_base_model(options: ExperimentOptions, data: Path) -> dict[str, Any]:
    """Tokenizer + randomly initialised decoder in `workdir/base`.

    The BPE is trained on in-domain training conversations plus each toolset's system prompt (the
    tool descriptions a deployed model is shown), never on out-of-domain questions or traces.
    """
    from .benchmark import load_rows
    from .chat import render_conversation
    from .tiny import TinyModelConfig, build_tiny

    size = options.size
    train = load_rows(data, "train", 3000)
    corpus = [render_conversation(r["messages"]) for r in train]
    systems: dict[str, str] = {}
    for path in sorted(data.glob("*.jsonl")):
        for row in load_rows(data, path.stem, 1):
            systems.setdefault(row["toolset"], render_conversation(row["prompt"][:1]))
    corpus += [text for text in systems.values() for _ in range(20)]
    config = TinyModelConfig(
        hidden_size=size.hidden_size,
        num_layers=size.layers,
        num_heads=size.heads,
        num_kv_heads=size.kv_heads,
        vocab_size=size.vocab_size,
        intermediate_size=size.intermediate_size,
        phrases=size.phrases,
        seed=options.data_seed,
    )
    return build_tiny(options.workdir / "base", config, corpus)


def run_sft_stage(options: ExperimentOptions, data: Path, device: str) -> dict[str, Any]:
    """Checkpoint A: teacher forcing on in-domain traces, bf16 autocast on CUDA; saved to `workdir/sft`."""
    from .benchmark import load_rows
    from .runtime import load_model, load_tokenizer, save_model, seed_everything
    from .sft import overfit

    size = options.size
    seed_everything(options.seeds[0])
    tokenizer = load_tokenizer(options.workdir / "base")
    model = load_model(options.workdir / "base", device)
    rows = load_rows(data, "train", size.sft_rows)
    started = time.perf_counter()
    with _autocast(device):
        losses = overfit(
            model,
            tokenizer,
            [r["messages"] for r in rows],
            steps=size.sft_steps,
            seconds=size.sft_seconds,
            learning_rate=size.sft_lr,
            batch_size=size.sft_batch,
            seed=options.seeds[0],
            log_every=50 if size.name != "toy" else None,
        )
    summary = {
        "rows": len(rows),
        "steps": len(losses),
        "batch": size.sft_batch,
        "learning_rate": size.sft_lr,
        "first_loss": losses[0] if losses else None,
        "last_loss": statistics.fmean(losses[-10:]) if losses else None,
        "seconds": round(time.perf_counter() - started, 2),
        "loss_every_10": losses[::10],
    }
    save_model(model.to("cpu"), tokenizer, options.workdir / "sft", summary)
    return summary


def evaluate_checkpoint(
    model_dir: Path,
    data: Path,
    splits: Sequence[str],
    runner: ToolRunner,
    size: ExperimentSize,
    device: str,
    rollouts_path: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Greedy tool-executing rollouts on every split at once (one batch stream), scored by the service;
    the rollouts go to `rollouts_path` (JSONL) so a surprising number can be read back."""
    from .benchmark import load_rows
    from .evaluate import finish_warnings, rollout, score_rollouts, summarise
    from .runtime import load_model, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, device).eval()
    per_split = {s: load_rows(data, s, size.eval_rows) for s in splits}
    rows = [r for s in splits for r in per_split[s]]
    with _autocast(device):
        rollouts = rollout(
            model,
            tokenizer,
            [r["prompt"] for r in rows],
            [r.get("toolset") or "calculator" for r in rows],
            runner,
            max_turns=size.eval_max_turns,
            max_new_tokens=size.eval_max_new_tokens,
            batch_size=size.eval_batch,
            temperature=0.0,
        )
    scores = score_rollouts(rows, rollouts, runner, EVAL_PRESET)
    report: dict[str, dict[str, Any]] = {}
    start = 0
    for split in splits:
        n = len(per_split[split])
        report[split] = summarise(rows[start : start + n], rollouts[start : start + n], scores[start : start + n])
        start += n
    for text in finish_warnings(report):
        _say(f"      warning ({model_dir.name}): {text}")
    if rollouts_path is not None:
        rollouts_path.parent.mkdir(parents=True, exist_ok=True)
        with rollouts_path.open("w", encoding="utf-8") as fh:
            for row, r, score in zip(rows, rollouts, scores, strict=True):
                fh.write(json.dumps({"id": row["id"], **asdict(r), "score": score}, ensure_ascii=False) + "\n")
    del model
    return report


@dataclass
class GRPOResult:
    method: str
    seed: int
    steps: int
    setup_seconds: float
    train_seconds: float
    step_seconds: list[float]
    reward_wait_seconds: list[float]
    tool_wait_seconds: list[float]
    tool_calls: list[int]
    reward_batches: list[int]
    completions_per_step: int
    reward_series: dict[str, list[Any]]
    service_requests: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        """Per-step means over the steps after the first (the first pays compilation and warm-up)."""
        rest = slice(1, None) if self.steps > 1 else slice(0, None)
        step = statistics.median(self.step_seconds[rest]) if self.step_seconds else None
        total = sum(self.step_seconds[rest])
        reward = sum(self.reward_wait_seconds[rest])
        tools = sum(self.tool_wait_seconds[rest])
        return {
            "median_step_s": step,
            "first_step_s": self.step_seconds[0] if self.step_seconds else None,
            "reward_wait_s_per_step": _mean(self.reward_wait_seconds[rest]),
            "reward_wait_share": reward / total if total else None,
            "tool_wait_s_per_step": _mean(self.tool_wait_seconds[rest]),
            "tool_wait_share": tools / total if total else None,
            "tool_calls_per_step": _mean([float(c) for c in self.tool_calls[rest]]),
        }


def run_grpo_stage(
    options: ExperimentOptions,
    data: Path,
    method: str,
    seed: int,
    base_url: str,
    *,
    stop_at: int | None,
    plan: Planner | None = None,
) -> GRPOResult:
    """GRPO from checkpoint A with `method` as the reward; saves `workdir/grpo-<method>-s<seed>`."""
    configure_offline()
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl.trainer.grpo_trainer import GRPOTrainer

    from mentor_client.adapters.trl import trl_reward_func

    from .grpo import GRPOOptions, SignalMonitor, grpo_config, grpo_dataset, reward_metrics, signal_callback
    from .runtime import load_model, load_tokenizer, seed_everything
    from .tools import build_tools

    size = options.size
    out = options.workdir / f"grpo-{method}-s{seed}"
    started = time.perf_counter()
    seed_everything(seed)
    sft = options.workdir / "sft"
    tokenizer = load_tokenizer(sft)
    grpo_options = GRPOOptions(
        max_steps=size.grpo_steps if stop_at is None else max(stop_at, 1),
        learning_rate=size.grpo_lr,
        num_generations=size.num_generations,
        batch_size=size.grpo_batch,
        gradient_accumulation_steps=size.grpo_grad_accum,
        max_completion_length=size.max_completion_length,
        max_tool_calling_iterations=size.max_tool_calls,
        temperature=size.temperature,
        seed=seed,
        logging_steps=1,
        # A constant rate: a run the budget stops early has had the same schedule as the others.
        extra={"lr_scheduler_type": "constant", "disable_tqdm": True},
    )
    config = grpo_config(out, grpo_options)
    # Activation checkpointing (on by default on GPU) only costs time at this model size.
    for name in ("gradient_checkpointing", "activation_checkpointing"):
        if hasattr(config, name):
            setattr(config, name, False)
    runner = TimedToolRunner(base_url)
    # Resolved by the service first: a bad preset fails before any model loads, and the spec names
    # the reward components TRL logs per step.
    components = [str(c) for c in runner.backend.validate_spec(preset=method).spec.get("components", {})]
    reward = TimedReward(
        trl_reward_func(
            base_url,
            preset=method,
            toolset="calculator",
            eos_token_id=tokenizer.eos_token_id,
            run_id=f"{method}-s{seed}",
        )
    )
    reward_funcs: list[Any] = [reward]
    clock = _step_clock()(stop_at, plan, f"{method} s{seed}")
    monitor = SignalMonitor()
    trainer = GRPOTrainer(
        model=load_model(sft),
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=grpo_dataset(data, "train"),
        processing_class=tokenizer,
        tools=build_tools(runner, "calculator"),
        callbacks=[clock, signal_callback(monitor, lambda text: _say(f"      warning ({method} seed {seed}): {text}"))],
    )
    for callback in (PrinterCallback, ProgressCallback):  # one line per step below instead of log dicts
        trainer.remove_callback(callback)

    def progress(step: int) -> None:
        begin, end = clock.begins[-1], clock.ends[-1]
        target = clock.stop_at or grpo_options.max_steps
        last = trainer.state.log_history[-1] if trainer.state.log_history else {}
        _say(
            f"      {method} seed {seed} step {step}/{target}: {end - begin:.2f} s "
            f"(rewards {busy_seconds(reward.intervals, begin, end):.3f} s, "
            f"tools {busy_seconds(runner.intervals, begin, end):.3f} s)"
            + (f" reward {last['reward']:.3f}" if "reward" in last else "")
        )

    clock.on_progress = progress
    clock.run_started = started
    setup = time.perf_counter() - started
    trained = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - trained
    trainer.save_model(str(out / "model"))
    tokenizer.save_pretrained(str(out / "tokenizer"))
    runner.close()
    steps = list(zip(clock.begins, clock.ends, strict=False))
    history = list(trainer.state.log_history)
    with (out / "log_history.jsonl").open("w", encoding="utf-8") as fh:
        for entry in history:
            fh.write(json.dumps(entry, default=str) + "\n")
    return GRPOResult(
        method=method,
        seed=seed,
        steps=trainer.state.global_step,
        # Model loading, trainer construction and train()'s own start-up: everything before step 1.
        setup_seconds=round(clock.begins[0] - started if clock.begins else setup, 2),
        train_seconds=round(train_seconds, 2),
        step_seconds=[round(b - a, 4) for a, b in steps],
        reward_wait_seconds=[round(busy_seconds(reward.intervals, a, b), 4) for a, b in steps],
        tool_wait_seconds=[round(busy_seconds(runner.intervals, a, b), 4) for a, b in steps],
        tool_calls=[sum(1 for s, _ in runner.intervals if a <= s < b) for a, b in steps],
        reward_batches=list(reward.sizes),
        completions_per_step=size.completions_per_step,
        reward_series=reward_metrics(history, components),
        warnings=list(monitor.warnings),
    )


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


# ---------------------------------------------------------------------------- tables
def _label(method: str) -> str:
    return "SFT (A)" if method == "sft" else f"GRPO {method}"


def _aggregate(evals: list[dict[str, dict[str, Any]]], split: str, metric: str) -> tuple[float | None, float | None]:
    """Mean over seeds and half the range between them (None with one seed)."""
    values = [e[split].get(metric) for e in evals if split in e]
    real = [float(v) for v in values if v is not None]
    if not real:
        return None, None
    spread = (max(real) - min(real)) / 2 if len(real) > 1 else None
    return sum(real) / len(real), spread


def _ood_mean(evaluation: dict[str, dict[str, Any]], metric: str) -> float | None:
    return _mean([m.get(metric) for s, m in evaluation.items() if s.startswith("ood_")])


def build_tables(report: dict[str, Any]) -> dict[str, str]:
    """The three tables: accuracy (paper-shaped), tool use, and GRPO step cost."""
    splits: list[str] = report["splits"]
    by_method: dict[str, list[dict[str, dict[str, Any]]]] = {}
    for entry in report["evaluations"]:
        evaluation = dict(entry["splits"])
        evaluation["ood_mean"] = {k: _ood_mean(entry["splits"], k) for k in ("accuracy", *[m for m, _ in TOOL_METRICS])}
        by_method.setdefault(entry["method"], []).append(evaluation)
    order = [m for m in ("sft", *report["methods"]) if m in by_method]
    n = {s: next((e[s]["n"] for e in by_method.get("sft", []) if s in e), "?") for s in splits}
    seeds = len(report["seeds"])

    columns = [*splits, "ood_mean"]
    header = [
        "method",
        *[f"{'in-domain' if s == 'test' else s} (n={n[s]})" if s != "ood_mean" else "OOD mean" for s in columns],
    ]
    rows = [[_label(m), *[_fmt(*_aggregate(by_method[m], s, "accuracy")) for s in columns]] for m in order]
    accuracy = _table(header, rows)
    if seeds > 1:
        accuracy += f"\n(GRPO cells: mean over {seeds} seeds ± half their range; SFT is one checkpoint)"

    header = ["method", *[f"ID {short}" for _, short in TOOL_METRICS], *[f"OOD {short}" for _, short in TOOL_METRICS]]
    rows = [
        [
            _label(m),
            *[_fmt(_aggregate(by_method[m], "test", metric)[0]) for metric, _ in TOOL_METRICS],
            *[_fmt(_aggregate(by_method[m], "ood_mean", metric)[0]) for metric, _ in TOOL_METRICS],
        ]
        for m in order
    ]
    tool_use = _table(header, rows)

    header = [
        "run",
        "steps",
        "compl/step",
        "s/step",
        "1st step s",
        "reward s/step",
        "reward share",
        "tools s/step",
        "tools share",
    ]
    rows = []
    for run in report["grpo_runs"]:
        st = run["stats"]
        rows.append(
            [
                f"{run['method']} seed {run['seed']}",
                str(run["steps"]),
                str(run["completions_per_step"]),
                _fmt(st["median_step_s"]),
                _fmt(st["first_step_s"]),
                _fmt(st["reward_wait_s_per_step"]),
                _fmt(st["reward_wait_share"], pct=True),
                _fmt(st["tool_wait_s_per_step"]),
                _fmt(st["tool_wait_share"], pct=True),
            ]
        )
    cost = _table(header, rows) if rows else "(no GRPO run finished)"
    return {"accuracy": accuracy, "tool_use": tool_use, "cost": cost}


def render_report(report: dict[str, Any]) -> str:
    tables = report["tables"]
    size = report["size"]
    lines = [
        f"MENTOR in miniature ({size['name']} size, {report['environment']['device']}"
        + (f", {report['environment']['gpu']}" if "gpu" in report["environment"] else "")
        + f"), seeds {','.join(map(str, report['seeds']))}, data seed {report['data_seed']}",
        "",
        "Answer accuracy, greedy decoding (rows: method; columns: in-domain test and each out-of-domain split):",
        tables["accuracy"],
        "",
        "Tool use (ID = in-domain test, OOD = mean of the out-of-domain splits): call rate, invalid-tool rate, "
        "tool-name F1 and argument score against the teacher:",
        tables["tool_use"],
        "",
        "GRPO step cost, client-side (steps after the first; share = waiting time / step time):",
        tables["cost"],
    ]
    se = report.get("accuracy_standard_error")
    if se:
        lines += [
            "",
            f"Noise: at n={se['n']} rows a split's accuracy has a standard error up to {se['max_se']:.3f} (p=0.5).",
        ]
    budget = report.get("budget") or {}
    if budget.get("note"):
        lines += ["", budget["note"]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the run
def clean_workdir(workdir: Path) -> None:
    """Remove what a run writes in `workdir` (and nothing else: it may be a folder the user gave)."""
    if not workdir.is_dir():
        return
    for path in workdir.iterdir():
        if path.name in ("data", "base", "sft") or path.name.startswith("grpo-"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name == "service.log":
            path.unlink()


def run_experiment(options: ExperimentOptions) -> dict[str, Any]:
    """Run every stage; write `out/experiment.json` and `out/experiment.txt` as results come in."""
    configure_offline()
    t0 = time.perf_counter()
    budget_s = options.budget_s if options.budget_s is not None else options.size.budget_s
    budget = BudgetPlan(budget_s, None if budget_s is None else t0 + budget_s)
    options.out.mkdir(parents=True, exist_ok=True)
    clean_workdir(options.workdir)
    options.workdir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(name: str, what: str) -> Iterator[None]:
        _say(f"[{time.perf_counter() - t0:6.1f} s] {what} ...")
        started = time.perf_counter()
        yield
        timings[name] = round(time.perf_counter() - started, 2)
        _say(f"[{time.perf_counter() - t0:6.1f} s] {name} done in {timings[name]:.1f} s")

    device = _device()
    if options.torch_threads:
        import torch

        # On a CPU shared with other jobs, one thread per core makes every small op wait at a barrier
        # for a descheduled thread: measured here, greedy decoding ran 13x faster on one thread.
        torch.set_num_threads(options.torch_threads)
    workers = options.service_workers or (os.cpu_count() or 1)
    service = RewardServiceProcess(workers=workers, log_path=options.workdir / "service.log").start()
    report: dict[str, Any] = {
        "command": options.command,
        "argv": sys.argv,
        "size": asdict(options.size),
        "methods": list(options.methods),
        "seeds": list(options.seeds),
        "data_seed": options.data_seed,
        "eval_preset": EVAL_PRESET,
        "environment": _environment(device),
        "service": {"base_url": service.base_url, "workers": workers},
        "torch_threads": options.torch_threads,
        "timings": timings,
        "evaluations": [],
        "grpo_runs": [],
        "complete": False,
    }
    _say(
        f"experiment: size {options.size.name} on {device}; reward service on {service.base_url} with {workers} "
        f"workers; methods {', '.join(options.methods)}; seeds {', '.join(map(str, options.seeds))}"
        + (f"; budget {budget_s:.0f} s" if budget_s else "")
    )

    def save() -> None:
        report["budget"] = {k: v for k, v in asdict(budget).items() if k != "deadline"}
        report["elapsed_s"] = round(time.perf_counter() - t0, 2)
        if report["evaluations"]:
            report["tables"] = build_tables(report)
            (options.out / "experiment.txt").write_text(render_report(report) + "\n", encoding="utf-8")
        (options.out / "experiment.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")

    runner: ToolRunner | None = None
    try:
        with phase("data", "generating the benchmark"):
            data, manifest, splits = build_data(options)
        report["splits"] = splits
        report["data"] = {
            name: {"rows": info["rows"], "sha256": info["sha256"]} for name, info in manifest["splits"].items()
        }
        with phase("model", "training the tokenizer and building the decoder"):
            built = build_base_model(options, data)
        report["model"] = {
            "parameters": built["parameters"],
            "vocab_size": built["vocab_size"],
            "config": built["config"],
        }
        _say(f"         {built['parameters']:,} parameters, vocabulary {built['vocab_size']}")
        with phase("sft", f"SFT on in-domain teacher traces -> checkpoint A ({device})"):
            report["sft"] = run_sft_stage(options, data, device)
        sft = report["sft"]
        _say(
            f"         {sft['steps']} steps of {sft['batch']} rows, "
            f"loss {sft['first_loss']:.3f} -> {sft['last_loss']:.3f}"
        )
        report["service"]["ready_after_s"] = service.wait_ready()
        runner = ToolRunner(service.base_url, timeout_s=120.0)
        with phase("eval_sft", "evaluating checkpoint A on every split"):
            evaluation = evaluate_checkpoint(
                options.workdir / "sft",
                data,
                splits,
                runner,
                options.size,
                device,
                options.out / "rollouts" / "sft.jsonl",
            )
        report["evaluations"].append({"method": "sft", "seed": None, "splits": evaluation})
        budget.eval_seconds = timings["eval_sft"]
        save()

        runs = [(seed, method) for seed in options.seeds for method in options.methods]
        budget.runs = len(runs)
        stop_at: int | None = None if budget.deadline is not None else options.size.grpo_steps

        def plan(step_times: list[float], setup: float) -> int:
            # Step 1 pays warm-up; steps 2..CALIBRATION_STEPS give the steady step time.
            budget.step_seconds = statistics.median(step_times[1:]) if len(step_times) > 1 else step_times[0]
            eval_s = budget.eval_seconds * 1.25 + 2.0  # trained models write longer rollouts
            budget.setup_seconds = round(setup, 2)
            margin = 20.0  # saving, the service's shutdown, the tables
            steps, kept = plan_runs(
                budget.remaining() - margin,
                budget.step_seconds,
                setup,
                eval_s,
                options.seeds,
                len(options.methods),
                len(step_times),
                options.size.grpo_steps,
                options.size.min_steps_per_seed,
            )
            if kept != options.seeds:
                budget.dropped_seeds = [s for s in options.seeds if s not in kept]
                runs[:] = [r for r in runs if r[0] in kept]
            budget.steps = steps
            budget.runs = len(runs)
            budget.note = (
                f"Budget: {budget.budget_s:.0f} s wall; GRPO steps per run scaled to {steps} (cap "
                f"{options.size.grpo_steps}) from a measured {budget.step_seconds:.2f} s/step, {setup:.1f} s of "
                f"trainer setup and {budget.eval_seconds:.1f} s per evaluation, for {len(runs)} runs"
                + (f"; seeds {budget.dropped_seeds} dropped to fit" if budget.dropped_seeds else "")
                + "."
            )
            _say("         " + budget.note)
            return steps

        index = 0
        while index < len(runs):
            seed, method = runs[index]
            index += 1
            if budget.steps is not None and budget.deadline is not None:
                need = (budget.setup_seconds or 0) + budget.steps * (budget.step_seconds or 0) + budget.eval_seconds
                # The plan already fits the budget; this guards the caller's hard limit when runs came out
                # slower than planned: a run that would overshoot the budget by more than a quarter is skipped.
                if need > budget.remaining() + 0.25 * (budget.budget_s or 0):
                    budget.skipped_runs.append(f"{method} seed {seed}")
                    _say(
                        f"         skipping {method} seed {seed}: {budget.remaining():.0f} s left, "
                        f"it needs ~{need:.0f} s"
                    )
                    continue
            first = budget.deadline is not None and budget.steps is None
            before = service.request_counts()
            with phase(f"grpo_{method}_s{seed}", f"GRPO with the '{method}' reward, seed {seed}"):
                result = run_grpo_stage(
                    options,
                    data,
                    method,
                    seed,
                    service.base_url,
                    stop_at=budget.steps if budget.deadline is not None and not first else stop_at,
                    plan=plan if first else None,
                )
            if first:
                budget.setup_seconds = budget.setup_seconds or result.setup_seconds
                if budget.steps is None:  # the run ended before calibration finished
                    budget.steps = result.steps
            after = service.request_counts()
            result.service_requests = {k: after[k] - before[k] for k in after}
            run_entry = {**asdict(result), "stats": result.stats()}
            report["grpo_runs"].append(run_entry)
            with phase(f"eval_{method}_s{seed}", f"evaluating GRPO '{method}' seed {seed}"):
                evaluation = evaluate_checkpoint(
                    options.workdir / f"grpo-{method}-s{seed}",
                    data,
                    splits,
                    runner,
                    options.size,
                    device,
                    options.out / "rollouts" / f"grpo-{method}-s{seed}.jsonl",
                )
            report["evaluations"].append({"method": method, "seed": seed, "splits": evaluation})
            save()
            if not options.keep:
                shutil.rmtree(options.workdir / f"grpo-{method}-s{seed}", ignore_errors=True)
        n_eval = max((m["n"] for e in report["evaluations"] for m in e["splits"].values()), default=0)
        if n_eval:
            report["accuracy_standard_error"] = {"n": n_eval, "max_se": round(math.sqrt(0.25 / n_eval), 4)}
        report["service"]["requests_total"] = service.request_counts()
        report["complete"] = True
    finally:
        if runner is not None:
            runner.close()
        service.stop()
        report["elapsed_s"] = round(time.perf_counter() - t0, 2)
        save()
        if not options.keep:
            clean_workdir(options.workdir)
            with contextlib.suppress(OSError):
                options.workdir.rmdir()  # only if nothing else was in it
    return report


def options_from_args(
    size: str,
    out: str | None,
    workdir: str | None,
    methods: str | None,
    with_strict: bool,
    seeds: str,
    budget_s: float | None,
    grpo_steps: int | None,
    sft_seconds: float | None,
    eval_rows: int | None,
    service_workers: int | None,
    data_seed: int,
    keep: bool,
    command: str,
    torch_threads: int | None = None,
) -> ExperimentOptions:
    """Validate the command line into `ExperimentOptions` (a bad value raises ValueError naming the flag)."""
    if size not in SIZES:
        raise ValueError(f"--size: expected one of {', '.join(SIZES)}, got {size!r}")
    chosen = SIZES[size]
    changes: dict[str, Any] = {}
    if grpo_steps is not None:
        if grpo_steps < 1:
            raise ValueError("--grpo-steps must be at least 1")
        changes["grpo_steps"] = grpo_steps
    if sft_seconds is not None:
        changes.update(sft_seconds=sft_seconds, sft_steps=None)
    if eval_rows is not None:
        changes["eval_rows"] = eval_rows
    chosen = replace(chosen, **changes)
    names = tuple(m.strip() for m in (methods or ",".join(METHODS)).split(",") if m.strip())
    if with_strict and "strict" not in names:
        names = (*names, "strict")
    from mentor_server.scoring import preset_names

    unknown = [m for m in names if m not in preset_names()]
    if unknown or not names:
        raise ValueError(f"--methods: unknown reward preset(s) {unknown} (known: {', '.join(preset_names())})")
    try:
        seed_values = tuple(int(s) for s in seeds.split(",") if s.strip())
    except ValueError as exc:
        raise ValueError(f"--seeds: expected comma-separated integers, got {seeds!r}") from exc
    if not seed_values:
        raise ValueError("--seeds: give at least one seed")
    if budget_s is not None and budget_s <= 0:
        raise ValueError("--budget-s must be positive")
    out_dir = Path(out or f"runs/experiment-{size}")
    return ExperimentOptions(
        size=chosen,
        out=out_dir,
        workdir=Path(workdir) if workdir else out_dir / "work",
        methods=names,
        seeds=seed_values,
        data_seed=data_seed,
        budget_s=budget_s,
        service_workers=service_workers,
        torch_threads=torch_threads,
        keep=keep,
        command=command or "mentor-train " + shlex.join(sys.argv[1:]),
    )
