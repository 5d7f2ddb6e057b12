"""The stages of `mentor-train experiment`: the reward service (with the retrieval family's search
index), benchmark, tokenizer + decoder from scratch, SFT (checkpoint A), GRPO from A under one
reward with timed rewards and tools, and greedy evaluation."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mentor_client.adapters.trl_tools import ToolExecutor

from .experiment_report import _mean
from .experiment_sizes import EVAL_PRESET, ExperimentOptions, ExperimentSize
from .experiment_timing import Planner, TimedReward, TimedToolRunner, _step_clock, busy_seconds
from .runtime import configure_offline
from .service import RewardServiceProcess


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


# ---------------------------------------------------------------------------- stages
def start_service(options: ExperimentOptions, workers: int) -> RewardServiceProcess:
    """Start the reward service with the built-in toolsets plus `retrieval`: the generated world's
    corpus indexed in `workdir/retrieval` (as `mentor-reward index build` does), so the retrieval
    splits' `search` calls run in the service like every other tool call. Returns at once."""
    from .families_retrieval import write_index

    toolsets = write_index(options.workdir / "retrieval")
    return RewardServiceProcess(
        workers=workers, log_path=options.workdir / "service.log", toolset_files=[toolsets]
    ).start()


def build_data(options: ExperimentOptions) -> tuple[Path, dict[str, Any], list[str]]:
    """Write the benchmark, the retrieval family's two out-of-domain splits included; returns its
    folder, manifest, and the evaluated splits (test first)."""
    from .benchmark import BenchmarkSizes, generate_benchmark, write_benchmark
    from .families_retrieval import enable

    enable()
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
    runner: ToolExecutor,
    size: ExperimentSize,
    device: str,
    rollouts_path: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Greedy tool-executing rollouts on every split at once (`evaluate.evaluate_splits`: one batch
    stream), scored by the service; the rollouts go to `rollouts_path` (JSONL) so a surprising
    number can be read back."""
    from .benchmark import load_rows
    from .evaluate import EvalOptions, evaluate_splits, finish_warnings
    from .runtime import load_model, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, device).eval()
    options = EvalOptions(
        splits=tuple(splits),
        max_turns=size.eval_max_turns,
        max_new_tokens=size.eval_max_new_tokens,
        batch_size=size.eval_batch,
        temperature=0.0,
        preset=EVAL_PRESET,
    )
    with _autocast(device):
        report, details = evaluate_splits(
            model, tokenizer, {s: load_rows(data, s, size.eval_rows) for s in splits}, runner, options
        )
    for text in finish_warnings(report):
        _say(f"      warning ({model_dir.name}): {text}")
    if rollouts_path is not None:
        rollouts_path.parent.mkdir(parents=True, exist_ok=True)
        with rollouts_path.open("w", encoding="utf-8") as fh:
            for entry in details:
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
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
    """GRPO from checkpoint A with `method` as the reward; saves `workdir/grpo-<method>-s<seed>`.

    The trainer is `grpo.build_trainer`'s, with the reward and the tool runner wrapped in clocks and a
    step clock that lets the budget fix the step count after calibration.
    """
    configure_offline()
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl.trainer.grpo_config import GRPOConfig

    from .grpo import GRPOOptions, RewardSource, build_trainer, reward_metrics
    from .runtime import checkpointing_kwargs

    size = options.size
    out = options.workdir / f"grpo-{method}-s{seed}"
    started = time.perf_counter()
    sft = options.workdir / "sft"
    grpo_options = GRPOOptions(
        max_steps=size.grpo_steps if stop_at is None else max(stop_at, 1),
        learning_rate=size.grpo_lr,
        num_generations=size.num_generations,
        batch_size=size.grpo_batch,
        gradient_accumulation_steps=size.grpo_grad_accum,
        max_completion_length=size.max_completion_length,
        max_tool_calling_iterations=size.max_tool_calls,
        temperature=size.temperature,
        beta=size.grpo_beta,
        seed=seed,
        logging_steps=1,
        extra={
            # A constant rate: a run the budget stops early has had the same schedule as the others.
            "lr_scheduler_type": "constant",
            "disable_tqdm": True,
            # Activation checkpointing (on by default on GPU) only costs time at this model size.
            **checkpointing_kwargs(GRPOConfig, False),
        },
    )
    runner = TimedToolRunner(base_url)
    timed: list[TimedReward] = []

    def wrap(reward: Any) -> TimedReward:
        timed.append(TimedReward(reward))
        return timed[-1]

    clock = _step_clock()(stop_at, plan, f"{method} s{seed}")
    run = build_trainer(
        data,
        sft,
        out,
        RewardSource(base_url=base_url, preset=method, toolset="calculator", run_id=f"{method}-s{seed}"),
        grpo_options,
        runner=runner,
        wrap_reward=wrap,
        callbacks=[clock],
        say=lambda text: _say(f"      warning ({method} seed {seed}): {text}"),
    )
    trainer, reward, components, monitor = run.trainer, timed[0], run.components, run.monitor
    tokenizer = trainer.processing_class
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
