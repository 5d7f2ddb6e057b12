"""GRPO with MENTOR rewards: TRL's `GRPOTrainer`, rewards and tool execution from the reward service.

The trainer needs only the client SDK: the reward is the client's TRL adapter
(`mentor_client.adapters.trl.trl_reward_func`, an async picklable callable that logs every reward
component's batch mean through TRL's `log_metric`), and the rollout tools are callables built from
the service's tool schemas that forward each call to `/v1/tools/execute` (see `tools.py`). With
`local=True` both run in-process instead (the engine and toolsets must be installed).

Scaling is TRL's and accelerate's: the same command runs under `accelerate launch` (every rank
scores its own slice with its own HTTP client) and passes `use_vllm` through to `GRPOConfig`. On a
machine with CUDA the GPU is used (bf16 when supported); otherwise the CPU settings from the
project's notes apply (`use_cpu=True`, no bf16, short completions).

What a run reports and keeps (`GRPOOptions.tracking`, see `tracking.py`): experiment trackers
(`report_to`), checkpoints every N steps and resuming from one, logged completions, LoRA. The reward's
metric is named after the preset (`rewards/flexible/mean`), and every run has a `run_id` (given, or
made and kept in `OUT/run_id`) that labels its score records in the service.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chat import prompt_without_tool_block
from .runtime import checkpointing_kwargs, configure_offline
from .tracking import StepSpan, Tracking, resume_checkpoint, run_label, save_trained, shared_run_id, step_span_callback

if TYPE_CHECKING:
    from mentor_client.adapters.trl_tools import ToolExecutor

REWARD_COLUMNS = ("prompt", "ground_truth", "reference", "teacher_tools")


@dataclass(frozen=True, slots=True)
class RewardSource:
    """Where rewards (and tool executions) come from, and which reward."""

    base_url: str | None = None
    local: bool = False
    api_key: str | None = None
    preset: str | None = "mentor"
    spec: dict[str, Any] | None = None
    overrides: dict[str, Any] | None = None
    toolset: str = "calculator"
    run_id: str | None = None

    def __post_init__(self) -> None:
        if self.local and self.base_url:
            raise ValueError("choose a reward service URL or local scoring, not both")


@dataclass(frozen=True, slots=True)
class GRPOOptions:
    """Sizes and schedule; the defaults are the CPU smoke-test settings."""

    split: str = "train"
    limit: int | None = None
    families: tuple[str, ...] | None = None
    max_steps: int = 20
    learning_rate: float = 1e-4
    num_generations: int = 4
    batch_size: int = 4  # per device; times grad accumulation must be divisible by num_generations
    gradient_accumulation_steps: int = 1
    max_completion_length: int = 64
    max_tool_calling_iterations: int = 4
    temperature: float = 1.0
    beta: float = 0.0
    logging_steps: int = 1
    seed: int = 0
    use_vllm: bool = False
    vllm_mode: str = "server"
    vllm_server_base_url: str | None = None
    use_cpu: bool | None = None  # None: the GPU when there is one
    extra: dict[str, Any] = field(default_factory=dict)  # more GRPOConfig fields, passed as they are
    tracking: Tracking = field(default_factory=Tracking)  # trackers, checkpoints, resume, completions, LoRA


def grpo_dataset(
    data_dir: str | Path,
    split: str = "train",
    limit: int | None = None,
    families: tuple[str, ...] | None = None,
) -> Any:
    """The split with the columns the reward reads; the tool block leaves the system prompt
    because `GRPOTrainer(tools=...)` renders it from the tool callables (the same text)."""
    from datasets import Features, Json, List, Value

    from .benchmark import load_rows, to_dataset

    rows = load_rows(data_dir, split)
    if families:
        rows = [r for r in rows if r.get("family") in families]
        if not rows:
            raise ValueError(f"no rows of families {', '.join(families)} in split {split!r}")
    rows = rows[:limit] if limit is not None else rows
    features = Features(
        {
            "prompt": List(Json()),
            "ground_truth": Value("string"),
            "reference": Value("string"),  # JSON text: exact floats (see benchmark.dataset_features)
            "teacher_tools": List(Value("string")),
        }
    )
    return to_dataset(
        [
            {
                "prompt": prompt_without_tool_block(r["prompt"]),
                "ground_truth": r["ground_truth"],
                "reference": r["reference"],
                "teacher_tools": r["teacher_tools"],
            }
            for r in rows
        ],
        features,
    )


def grpo_config(out: str | Path, options: GRPOOptions, run_name: str | None = None) -> Any:
    """A `GRPOConfig` for this machine: the GPU when CUDA is available, else TRL's CPU settings.

    Checkpoints, sampled completions (`completions/*.parquet`) and TensorBoard logs (`runs/`) go
    under `out/checkpoints`."""
    from trl.trainer.grpo_config import GRPOConfig

    from .runtime import cuda_available

    use_cpu = (not cuda_available()) if options.use_cpu is None else options.use_cpu
    bf16 = False
    if not use_cpu:
        import torch

        bf16 = bool(torch.cuda.is_bf16_supported())
    if options.use_vllm:
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise RuntimeError("--use-vllm needs vLLM installed (pip install vllm) on the training machine")
    vllm: dict[str, Any] = {}
    if options.use_vllm:
        vllm = {"use_vllm": True, "vllm_mode": options.vllm_mode}
        if options.vllm_server_base_url:
            vllm["vllm_server_base_url"] = options.vllm_server_base_url
    return GRPOConfig(
        output_dir=str(Path(out) / "checkpoints"),
        use_cpu=use_cpu,
        bf16=bf16,
        fp16=False,
        max_steps=options.max_steps,
        learning_rate=options.learning_rate,
        per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        num_generations=options.num_generations,
        max_completion_length=options.max_completion_length,
        max_tool_calling_iterations=options.max_tool_calling_iterations,
        temperature=options.temperature,
        beta=options.beta,
        logging_steps=options.logging_steps,
        seed=options.seed,
        dataloader_num_workers=0,
        log_completions=options.tracking.log_completions,
        num_completions_to_print=options.tracking.num_completions_to_print,
        # TRL turns activation checkpointing on by default; on CPU and small models it only costs time.
        # `extra` comes last and wins (e.g. checkpointing off on a GPU too, for a model this small).
        **{
            **options.tracking.config_kwargs(run_name),
            **checkpointing_kwargs(GRPOConfig, not use_cpu),
            **vllm,
            **options.extra,
        },
    )


@dataclass
class GRPORun:
    """A wired trainer plus what the reward is (the resolved spec's hash and component names), the
    run's id, and where it resumes from (pass `resume_from` to `trainer.train(resume_from_checkpoint=)`)."""

    trainer: Any
    spec_hash: str
    components: list[str]
    monitor: SignalMonitor = field(default_factory=lambda: SignalMonitor())
    run_id: str | None = None
    resume_from: Path | None = None
    span: StepSpan = field(default_factory=StepSpan)


def build_trainer(
    data_dir: str | Path,
    model_path: str | Path,
    out: str | Path,
    source: RewardSource,
    options: GRPOOptions | None = None,
    *,
    runner: ToolExecutor | None = None,
    wrap_reward: Callable[[Any], Any] | None = None,
    callbacks: Sequence[Any] = (),
    say: Callable[[str], None] | None = None,
) -> GRPORun:
    """Everything wired, not yet trained: model, tokenizer, dataset, reward, tools, config.

    The reward spec is resolved first (by the service, or locally), so a bad preset or spec,
    or a service that cannot be reached, fails before any model is loaded. `runner` executes the
    rollouts' tool calls (default: one for `source`), `wrap_reward` wraps the reward function (the
    experiment times it), `callbacks` are extra TrainerCallbacks, `say` prints learning-signal warnings
    (default: stderr). `options.tracking` is checked here too (trackers installed, a checkpoint to
    resume from, peft for LoRA). A run without `source.run_id` gets one (see `tracking.shared_run_id`).
    """
    configure_offline()
    from trl.trainer.grpo_trainer import GRPOTrainer

    from mentor_client.adapters.trl import trl_reward_func
    from mentor_client.adapters.trl_tools import ToolExecutor, trl_tools

    from .runtime import load_model, load_tokenizer, seed_everything

    options = options or GRPOOptions()
    runner = runner or ToolExecutor(source.base_url, local=source.local, api_key=source.api_key)
    resolved = runner.backend.validate_spec(
        preset=None if source.spec is not None else source.preset,
        spec=source.spec,
        overrides=source.overrides,
    )
    tracking = options.tracking
    tracking.check(out)
    resume_from = resume_checkpoint(out, tracking.resume) if tracking.resume is not None else None
    # The config sets up accelerate's process state, which the run id's broadcast needs.
    config = grpo_config(out, options)
    label = run_label(source.preset, source.spec)
    run_id = shared_run_id(out, source.run_id, label, resume=resume_from is not None)
    config.run_name = run_id  # the trackers' run is named like the score records
    seed_everything(options.seed)
    tokenizer = load_tokenizer(model_path)
    model = load_model(model_path)
    reward = trl_reward_func(
        source.base_url,
        preset=source.preset,
        spec=source.spec,
        overrides=source.overrides,
        toolset=source.toolset,
        eos_token_id=tokenizer.eos_token_id,
        api_key=source.api_key,
        local=source.local,
        run_id=run_id,
        # `rewards/<preset>/mean`: runs under different presets are told apart in one dashboard.
        name=label,
    )
    reward_funcs: list[Any] = [wrap_reward(reward) if wrap_reward is not None else reward]
    monitor = SignalMonitor()
    span = StepSpan(resumed_from=str(resume_from) if resume_from is not None else None)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=grpo_dataset(data_dir, options.split, options.limit, options.families),
        processing_class=tokenizer,
        tools=trl_tools(source.toolset, executor=runner),
        callbacks=[*callbacks, signal_callback(monitor, say), step_span_callback(span)],
        peft_config=tracking.lora.peft_config() if tracking.lora is not None else None,
    )
    return GRPORun(
        trainer,
        resolved.spec_hash,
        [str(c) for c in resolved.spec.get("components", {})],
        monitor,
        run_id=run_id,
        resume_from=resume_from,
        span=span,
    )


# ---------------------------------------------------------------------------- learning signal
ZERO_STD_KEY = "frac_reward_zero_std"  # TRL: share of groups whose rewards are all equal
CALL_RATE_KEY = "tools/call_frequency"  # TRL: tool calls per completion in the step


@dataclass
class SignalMonitor:
    """Watches GRPO's per-step logs and says when training cannot learn, in words a user can act on.

    GRPO's advantage is a reward minus its group mean: when (almost) every group's rewards are equal
    the loss and the gradient are zero, and a run that never calls a tool cannot learn tool use from
    rewards that pay for it. Each warning is given once per run, after `patience` steps in a row.
    """

    patience: int = 3
    zero_std_threshold: float = 0.95
    warnings: list[str] = field(default_factory=list)
    _flat: int = 0
    _silent: int = 0
    _said: set[str] = field(default_factory=set)

    def observe(self, step: int, logs: dict[str, Any]) -> list[str]:
        """Feed one step's log entry; returns the warnings raised by it (also kept in `warnings`)."""
        new: list[str] = []
        if ZERO_STD_KEY in logs:
            flat = float(logs[ZERO_STD_KEY]) >= self.zero_std_threshold
            self._flat = self._flat + 1 if flat else 0
            if self._flat >= self.patience and "flat" not in self._said:
                self._said.add("flat")
                new.append(
                    f"step {step}: the reward has had (almost) no variance within groups for {self._flat} steps "
                    f"({ZERO_STD_KEY} >= {self.zero_std_threshold}): advantages and gradients are zero, nothing "
                    "is learned. Raise num_generations or temperature, start from a better SFT checkpoint, or "
                    "use a reward with partial credit (e.g. the flexible preset)."
                )
        if CALL_RATE_KEY in logs:
            silent = float(logs[CALL_RATE_KEY]) == 0.0
            self._silent = self._silent + 1 if silent else 0
            if self._silent >= self.patience and "silent" not in self._said:
                self._said.add("silent")
                new.append(
                    f"step {step}: no rollout has called a tool for {self._silent} steps ({CALL_RATE_KEY} = 0): "
                    "the model does not write tool calls, so tool-use rewards cannot teach it. SFT it on teacher "
                    "traces first (mentor-train sft) until `mentor-train eval` shows a call rate above 0."
                )
        self.warnings.extend(new)
        return new


def signal_callback(monitor: SignalMonitor | None = None, say: Any = None) -> Any:
    """A TrainerCallback that feeds `monitor` every log entry and prints its warnings (built lazily:
    transformers is imported only when training starts)."""
    import sys

    from transformers import TrainerCallback

    watched = monitor or SignalMonitor()
    emit = say or (lambda text: print(f"warning: {text}", file=sys.stderr, flush=True))

    class LearningSignal(TrainerCallback):
        monitor = watched

        def on_log(
            self,
            args: Any,
            state: Any,
            control: Any,
            logs: dict[str, Any] | None = None,
            **kw: Any,
        ) -> None:
            for text in watched.observe(int(state.global_step), logs or {}):
                emit(text)

    return LearningSignal()


def reward_metrics(log_history: list[dict[str, Any]], component_names: list[str] | None = None) -> dict[str, list[Any]]:
    """Per-step series of the reward, its spread and each logged component, from TRL's log history."""
    series: dict[str, list[Any]] = {}
    for entry in log_history:
        if "step" not in entry or "loss" not in entry:  # the final summary entry has no per-step metrics
            continue
        for key, value in entry.items():
            if key.startswith(("reward", "rewards/", "frac_reward", "tools/")) or key in (component_names or ()):
                series.setdefault(key, []).append(value)
    return series


def run_grpo(
    data_dir: str | Path,
    model_path: str | Path,
    out: str | Path,
    source: RewardSource,
    options: GRPOOptions | None = None,
) -> dict[str, Any]:
    """Train (or resume); save `out/model`, `out/tokenizer`, `out/log_history.jsonl` (main process), with
    LoRA also `out/adapter` (`out/model` is then the merged model); return a summary."""
    options = options or GRPOOptions()
    run = build_trainer(data_dir, model_path, out, source, options)
    trainer = run.trainer
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(run.resume_from) if run.resume_from is not None else None)
    elapsed = time.perf_counter() - started
    history = list(trainer.state.log_history)
    summary = {
        "command": "grpo",
        "data": str(data_dir),
        "base_model": str(model_path),
        "run_id": run.run_id,
        "reward": {
            **{k: v for k, v in asdict(replace(source, run_id=run.run_id)).items() if k != "api_key"},
            "spec_hash": run.spec_hash,
            "components": run.components,
        },
        "options": asdict(options),
        "steps": trainer.state.global_step,
        # The steps trained by this process: after a resume the first is the checkpoint's step + 1.
        "trained_steps": [run.span.first, run.span.last],
        "resumed_from": run.span.resumed_from,
        "checkpoints": str(Path(out) / "checkpoints") if options.tracking.save_steps else None,
        "seconds": round(elapsed, 2),
        "device": str(trainer.accelerator.device),
        "processes": trainer.accelerator.num_processes,
        "warnings": list(run.monitor.warnings),
    }
    if trainer.accelerator.is_main_process:
        out = Path(out)
        adapter = save_trained(trainer, out)
        summary["adapter"] = str(adapter) if adapter is not None else None
        trainer.processing_class.save_pretrained(str(out / "tokenizer"))
        with (out / "log_history.jsonl").open("w", encoding="utf-8") as fh:
            for entry in history:
                fh.write(json.dumps(entry, default=str) + "\n")
        (out / "run.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    summary["log_history"] = history
    return summary
