"""Watching and keeping a TRL training run: experiment trackers, checkpoints and resume, LoRA, run ids.

`grpo` and `sft` share one `Tracking` value: which of transformers' reporting integrations receive the
metrics (`report_to`: tensorboard, wandb, trackio, mlflow, ...), how often a checkpoint is written and
whether to resume from one, whether GRPO's sampled completions are logged, and an optional LoRA
adapter (peft). The defaults change nothing: no tracker, no intermediate checkpoints, full fine-tuning.
Everything is checked before a model is loaded, so a tracker that is not installed, a `--resume` with
no checkpoint to resume from, or LoRA without peft fails in a second with a message, not after a
minute of loading. A run's id labels the reward service's score records and names the tracker's run;
it is kept in `OUT/run_id`, so a resumed run writes its records under the same id as the crashed one.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUN_ID_FILE = "run_id"
CHECKPOINTS = "checkpoints"  # OUT/checkpoints: TRL's output_dir (checkpoint-N, completions/, runs/)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# A complete checkpoint: transformers writes the trainer state last, after model, optimizer and RNG.
_STATE = "trainer_state.json"


@dataclass(frozen=True, slots=True)
class LoraOptions:
    """A LoRA adapter instead of full fine-tuning (peft's `LoraConfig`)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # None: every linear layer but the output head (peft's "all-linear"), which fits any architecture.
    target_modules: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"--lora-r must be at least 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--lora-dropout must be in [0, 1), got {self.dropout}")

    def peft_config(self) -> Any:
        if importlib.util.find_spec("peft") is None:
            raise ValueError("LoRA needs peft installed: pip install 'mentor-reward[train]' (or pip install peft)")
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules) if self.target_modules else "all-linear",
            task_type="CAUSAL_LM",
        )


@dataclass(frozen=True, slots=True)
class Tracking:
    """What a run reports and keeps. The defaults are the old behaviour: nothing of either."""

    report_to: tuple[str, ...] = ()  # transformers' integration names; () reports nowhere
    save_steps: int | None = None  # a checkpoint every N steps under OUT/checkpoints; None: none
    save_total_limit: int | None = None  # keep the newest N checkpoints; None: all
    resume: str | None = None  # "latest" (newest complete checkpoint in OUT/checkpoints) or a checkpoint folder
    log_completions: bool = False  # GRPO: a sample of prompts/completions/rewards each logging step
    num_completions_to_print: int | None = None
    lora: LoraOptions | None = None

    def __post_init__(self) -> None:
        if self.save_steps is not None and self.save_steps < 1:
            raise ValueError(f"--save-steps must be at least 1, got {self.save_steps}")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise ValueError(f"--save-total-limit must be at least 1, got {self.save_total_limit}")
        if "none" in self.report_to and len(self.report_to) > 1:
            raise ValueError("--report-to none cannot be combined with other integrations")

    def check(self, out: str | Path) -> None:
        """Fail before any model is loaded: unknown or uninstalled trackers, nothing to resume, no peft."""
        check_report_to(self.report_to)
        if self.resume is not None:
            resume_checkpoint(out, self.resume)
        if self.lora is not None:
            self.lora.peft_config()

    def config_kwargs(self, run_name: str | None) -> dict[str, Any]:
        """The `TrainingArguments` fields (shared by `GRPOConfig` and `SFTConfig`)."""
        names = [n for n in self.report_to if n != "none"]
        kwargs: dict[str, Any] = {
            "report_to": names or "none",
            "save_strategy": "steps" if self.save_steps else "no",
        }
        if self.save_steps:
            kwargs["save_steps"] = self.save_steps
            kwargs["save_total_limit"] = self.save_total_limit
        if run_name:
            kwargs["run_name"] = run_name
        return kwargs


def check_report_to(names: Sequence[str]) -> None:
    """Each name is one of transformers' reporting integrations, and installed."""
    wanted = [n for n in names if n not in ("none", "all")]
    if not wanted:
        return
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    unknown = [n for n in wanted if n not in INTEGRATION_TO_CALLBACK]
    if unknown:
        raise ValueError(
            f"--report-to: unknown integration {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(INTEGRATION_TO_CALLBACK))}, all, none"
        )
    available = set(get_available_reporting_integrations())  # type: ignore[no-untyped-call]
    missing = [n for n in wanted if n not in available]
    if missing:
        raise ValueError(
            f"--report-to {' '.join(missing)}: not installed here (pip install {' '.join(missing)}); "
            "tensorboard comes with mentor-reward[train]"
        )


def checkpoints_dir(out: str | Path) -> Path:
    return Path(out) / CHECKPOINTS


def complete_checkpoints(out: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint under OUT/checkpoints, oldest first.

    A process killed while saving leaves a `checkpoint-N` folder without its trainer state;
    resuming from it would fail, so it is skipped (transformers' own lookup would pick it).
    """
    folder = checkpoints_dir(out)
    found: list[tuple[int, Path]] = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = _CHECKPOINT.match(path.name)
            if match and (path / _STATE).is_file():
                found.append((int(match.group(1)), path))
    return sorted(found)


def resume_checkpoint(out: str | Path, resume: str) -> Path:
    """The checkpoint folder `--resume` names: the newest complete one for "latest", else the given folder."""
    if resume == "latest":
        found = complete_checkpoints(out)
        if not found:
            raise ValueError(
                f"--resume latest: no complete checkpoint-N folder in {checkpoints_dir(out)} "
                "(a run writes them with --save-steps N)"
            )
        return found[-1][1]
    path = Path(resume)
    if not (path / _STATE).is_file():
        raise ValueError(f"--resume {resume}: not a complete checkpoint folder (no {_STATE} in it)")
    return path


def new_run_id(label: str) -> str:
    """`<label>-<UTC date-time>-<4 hex>`: sortable, and distinct for runs started in the same second."""
    return f"{label}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def shared_run_id(out: str | Path, given: str | None, label: str, resume: bool) -> str:
    """The run's id, the same on every process of a distributed run, and kept in `OUT/run_id`.

    Given: used as it is. Resuming: the id the interrupted run kept, so its records continue under
    one id. Otherwise a new one. The main process decides and broadcasts it (accelerate's state
    is set up by the training config, which must be built first), and writes the file.
    """
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState()
    path = Path(out) / RUN_ID_FILE
    chosen = [given]
    if state.is_main_process and given is None:
        kept = path.read_text(encoding="utf-8").strip() if resume and path.is_file() else ""
        chosen = [kept or new_run_id(label)]
    run_id = str(broadcast_object_list(chosen)[0])
    if state.is_main_process:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id + "\n", encoding="utf-8")
    return run_id


def save_trained(trainer: Any, out: str | Path) -> Path | None:
    """Save `OUT/model` as a full model; with LoRA also `OUT/adapter`, and the model is the merged one
    (what `eval`, `sft` and the next `grpo` load). Returns the adapter folder, if any."""
    model, adapter = merge_lora(trainer.model, out)
    if adapter is None:
        trainer.save_model(str(Path(out) / "model"))
    else:
        model.save_pretrained(str(Path(out) / "model"))
    return adapter


def merge_lora(model: Any, out: str | Path) -> tuple[Any, Path | None]:
    """A LoRA model: its adapter saved to `OUT/adapter`, and the model with the adapter merged in
    (a plain model that loads without peft). Any other model: itself, and no adapter."""
    if importlib.util.find_spec("peft") is None or not _is_peft(model):
        return model, None
    adapter = Path(out) / "adapter"
    model.save_pretrained(str(adapter))
    return model.merge_and_unload(), adapter


def _is_peft(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


@dataclass
class StepSpan:
    """The steps this process trained: the first tells where a resumed run picked up."""

    first: int | None = None
    last: int | None = None
    resumed_from: str | None = None


def step_span_callback(span: StepSpan) -> Any:
    """A TrainerCallback recording the global steps trained in this process into `span`."""
    from transformers import TrainerCallback

    class _Span(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            step = int(state.global_step)
            span.first = step if span.first is None else span.first
            span.last = step

    return _Span()


def run_label(preset: str | None, spec: dict[str, Any] | None) -> str:
    """What names a reward in metrics and run ids: the preset, or `spec` for an inline spec."""
    if spec is not None or not preset:
        return "spec"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", preset)


# ---------------------------------------------------------------------------- command-line flags
def add_tracking_flags(p: argparse.ArgumentParser, *, completions: bool) -> None:
    """The flags of `Tracking`, in their own help group (`completions`: GRPO's sampled completions)."""
    g = p.add_argument_group("tracking and checkpoints")
    g.add_argument(
        "--report-to",
        action="append",
        default=None,
        metavar="NAME",
        help="send metrics to an experiment tracker (repeatable or comma-separated): tensorboard (logs in "
        "OUT/checkpoints/runs), wandb, trackio, mlflow, ... (any transformers integration installed), all, none",
    )
    g.add_argument("--save-steps", type=int, default=None, help="write OUT/checkpoints/checkpoint-N every N steps")
    g.add_argument("--save-total-limit", type=int, default=None, help="keep only the newest N checkpoints")
    g.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="CHECKPOINT",
        help="continue from the newest complete checkpoint in OUT/checkpoints (or the given checkpoint folder): "
        "model, optimizer, schedule, data order and step; the run keeps its run id",
    )
    if completions:
        g.add_argument(
            "--log-completions",
            action="store_true",
            help="each logging step, keep a sample of prompts, completions and rewards in "
            "OUT/checkpoints/completions/*.parquet (printed too; a wandb/trackio table when reporting there)",
        )
        g.add_argument("--num-completions-to-print", type=int, default=None, help="completions printed per step")
    lora = p.add_argument_group("LoRA (peft)")
    lora.add_argument("--lora-r", type=int, default=None, help="train a LoRA adapter of rank R, not all weights")
    lora.add_argument("--lora-alpha", type=int, default=None, help="LoRA scaling (default 2 × rank)")
    lora.add_argument("--lora-dropout", type=float, default=0.05)
    lora.add_argument(
        "--lora-target-modules",
        default=None,
        help="comma-separated module names (default: every linear layer but the output head)",
    )


def tracking_from_args(args: argparse.Namespace) -> Tracking:
    """The `Tracking` the flags of `add_tracking_flags` ask for."""
    report_to = tuple(n.strip() for v in (args.report_to or ()) for n in v.split(",") if n.strip())
    lora = None
    if args.lora_r is not None:
        targets = tuple(m.strip() for m in (args.lora_target_modules or "").split(",") if m.strip())
        lora = LoraOptions(
            r=args.lora_r,
            alpha=args.lora_alpha if args.lora_alpha is not None else 2 * args.lora_r,
            dropout=args.lora_dropout,
            target_modules=targets or None,
        )
    elif args.lora_alpha is not None or args.lora_target_modules is not None:
        raise ValueError("--lora-alpha/--lora-target-modules need --lora-r (the adapter's rank)")
    return Tracking(
        report_to=report_to,
        save_steps=args.save_steps,
        save_total_limit=args.save_total_limit,
        resume=args.resume,
        log_completions=bool(getattr(args, "log_completions", False)),
        num_completions_to_print=getattr(args, "num_completions_to_print", None),
        lora=lora,
    )
