"""The experiment's sizes (toy, cpu, gpu) and options: everything that differs between runs.

`toy` runs every stage in about a minute on a CPU (a test runs it); `cpu` is the comparison sized to
learn on a 2-core CPU in about an hour; `gpu` is sized for one H100.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

METHODS = ("sparse", "mentor", "flexible")
EVAL_PRESET = "flexible"  # its components are the paper's metrics: outcome, tool-name F1, arguments


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
    # GRPO's KL coefficient (TRL's `beta`); 0 loads no reference model. Non-zero keeps the policy near
    # checkpoint A, which the issue-11 settings study needed (lr 2e-4 without it lowered A's accuracy).
    grpo_beta: float = 0.0

    @property
    def completions_per_step(self) -> int:
        return self.grpo_batch * self.grpo_grad_accum

    @property
    def prompts_per_step(self) -> int:
        return self.completions_per_step // self.num_generations

    def grpo_settings(self) -> dict[str, float | int]:
        """The GRPO hyper-parameters a study varies, as recorded in experiment.json and its tables."""
        return {
            "learning_rate": self.grpo_lr,
            "beta": self.grpo_beta,
            "temperature": self.temperature,
            "prompts_per_step": self.prompts_per_step,
            "num_generations": self.num_generations,
            "completions_per_step": self.completions_per_step,
        }


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
    # ~0.7M parameters on 20,000 teacher traces, sized from measurements on the 2-core CPU (bench/RESULTS.md,
    # issue 11): a tokenizer whose phrase merges turn the calculator's tool block into ~107 tokens and whose
    # digits are single tokens; 1,000 plain-torch SFT steps of 32 (at 438 steps the model wrote every tool
    # name right but could not yet copy digits: 2.5% accuracy; the 1,000-step run reached 92.5% in domain),
    # capped at 30 min (a loaded machine needs `--sft-steps 1000` to lift the cap); then up to 40 GRPO steps,
    # fixed by the budget so all runs (2 seeds x 4 rewards on the command line) and their evaluations fit,
    # each checkpoint evaluated on 40 rows per split (whole splits would triple the evaluation time).
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
        sft_steps=1000,
        sft_seconds=1800.0,
        sft_batch=32,
        sft_lr=1e-3,
        grpo_steps=40,
        num_generations=8,
        grpo_batch=8,
        grpo_grad_accum=2,
        max_completion_length=96,
        max_tool_calls=3,
        grpo_lr=2e-4,
        temperature=1.0,
        eval_rows=40,
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
    reuse_sft: bool = False  # reuse data, base model and checkpoint A found in `workdir`
    reuse_base: bool = False  # reuse data and base model found in `workdir`; SFT runs again
    keep: bool = False
    command: str = ""
