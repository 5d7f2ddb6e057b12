"""The whole-pipeline `mentor-train` commands: `demo` (every stage in minutes) and `experiment`
(the paper's comparison in miniature). Registered by importing this module (`commands` does)."""

from __future__ import annotations

import argparse
from typing import Any

from .registry import json_flag as _json_flag
from .registry import print_summary as _print
from .registry import register_command


# ---------------------------------------------------------------------------- demo
def _configure_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", default="runs/demo", help="where data, models and reports go (default runs/demo)")
    p.add_argument("--port", type=int, default=None, help="port for the reward service (default: a free one)")
    p.add_argument("--keep", action="store_true", help="keep the data and model folders (reports are always kept)")
    p.add_argument("--quick", action="store_true", help="smallest sizes (a smoke test, ~30 s)")
    p.add_argument("--grpo-steps", type=int, default=None, help="GRPO steps (default 8, --quick 3)")
    p.add_argument("--eval-rows", type=int, default=None, help="rows per evaluated split (default 50, --quick 6)")
    p.add_argument("--seed", type=int, default=0)
    _json_flag(p)


@register_command(
    "demo",
    help="the whole stack on CPU: data, tiny model, reward service, SFT, GRPO over HTTP, eval",
    description="Generate the benchmark, build a tiny model, start the reward service as a subprocess on a free "
    "port, warm the model up on teacher traces, train a few GRPO steps with rewards and tool calls served "
    "over HTTP, evaluate on the in-domain and out-of-domain splits and print the table. No Docker, no GPU, "
    "no downloads; a few minutes on 2 cores. `make demo` runs it.",
    examples=(
        "mentor-train demo",
        "mentor-train demo --workdir runs/demo --keep",
        "mentor-train demo --quick --port 8123",
    ),
    configure=_configure_demo,
)
def _run_demo(args: argparse.Namespace) -> int:
    from .demo import DemoOptions, print_report, run_demo

    changes: dict[str, Any] = {"seed": args.seed}
    if args.grpo_steps is not None:
        changes["grpo_steps"] = args.grpo_steps
    if args.eval_rows is not None:
        changes["eval_rows"] = args.eval_rows
    options = DemoOptions.quick(**changes) if args.quick else DemoOptions(**changes)
    report = run_demo(args.workdir, options, port=args.port, keep=args.keep)
    if args.json:
        _print(report, True)
    else:
        print_report(report, args.keep)
    return 0


# ---------------------------------------------------------------------------- experiment
def _configure_experiment(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--size",
        default="toy",
        choices=("toy", "cpu", "gpu"),
        help="toy: CPU test size; cpu: the hour-long 2-core comparison; gpu: one H100",
    )
    p.add_argument("--out", default=None, help="experiment.json and experiment.txt (default runs/experiment-SIZE)")
    p.add_argument("--workdir", default=None, help="data and checkpoints (default OUT/work; removed unless --keep)")
    p.add_argument(
        "--methods", default=None, help="GRPO reward presets, comma-separated (default sparse,mentor,flexible)"
    )
    p.add_argument("--with-strict", action="store_true", help="add the 'strict' preset to the methods")
    p.add_argument("--seeds", default="1", help="GRPO seeds, comma-separated, e.g. 1,2 (the first also seeds SFT)")
    p.add_argument("--data-seed", type=int, default=0, help="benchmark generation seed")
    p.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="wall-time budget of the whole run; GRPO steps are scaled to fit from measured step times "
        "(default: none for toy, 450 for gpu)",
    )
    p.add_argument("--grpo-steps", type=int, default=None, help="GRPO steps per run (with a budget: the cap)")
    p.add_argument("--sft-seconds", type=float, default=None, help="SFT wall time instead of the size's default")
    p.add_argument(
        "--sft-steps",
        type=int,
        default=None,
        help="SFT optimizer steps, with no time cap unless --sft-seconds is also given (a loaded machine "
        "would otherwise cut SFT short)",
    )
    p.add_argument(
        "--eval-rows", type=int, default=None, help="rows per evaluated split (default: 40 for cpu, all otherwise)"
    )
    grpo = p.add_argument_group("GRPO settings (default: the size's; recorded in experiment.json)")
    grpo.add_argument("--grpo-lr", type=float, default=None, help="GRPO learning rate (cpu: 2e-4)")
    grpo.add_argument(
        "--grpo-beta", type=float, default=None, help="KL coefficient to checkpoint A, TRL's beta (default 0: no KL)"
    )
    grpo.add_argument("--grpo-temperature", type=float, default=None, help="GRPO sampling temperature (default 1.0)")
    grpo.add_argument(
        "--grpo-prompts",
        type=int,
        default=None,
        help="prompts per GRPO step, each with the size's completions per prompt (cpu: 2 x 8)",
    )
    p.add_argument("--service-workers", type=int, default=None, help="scoring processes (default: one per core)")
    p.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch CPU threads (default: one per core; 1 is much faster on a CPU other jobs share)",
    )
    p.add_argument("--keep", action="store_true", help="keep the data and checkpoints")
    p.add_argument(
        "--reuse-sft",
        action="store_true",
        help="reuse the data, decoder and checkpoint A an earlier run (same size and data seed) left in the workdir",
    )
    p.add_argument(
        "--reuse-base",
        action="store_true",
        help="reuse the data and decoder an earlier run left in the workdir, but run SFT again (e.g. with "
        "another --sft-steps)",
    )
    p.add_argument("--command-label", default="", help="the command to record in the JSON (default: this one)")
    _json_flag(p)


@register_command(
    "experiment",
    help="SFT vs GRPO under sparse/mentor/flexible rewards, evaluated in and out of domain, with reward cost",
    description="The MENTOR paper's comparison in miniature: start the reward service, build a tokenizer and "
    "decoder from scratch, SFT on in-domain teacher traces (checkpoint A), GRPO from A under each reward "
    "with tools executed by the service, evaluate every checkpoint on the in-domain and out-of-domain "
    "splits, and time each GRPO step's wait for rewards and tools (client side). Prints three tables and "
    "writes experiment.json. --size toy runs on a CPU in about a minute; --size gpu is the H100 run "
    "(bench/gpu_replication.sh).",
    examples=(
        "mentor-train experiment --size toy --out runs/toy",
        "mentor-train experiment --size gpu --seeds 1,2 --budget-s 450 --out runs/gpu",
        "mentor-train experiment --size toy --methods sparse,mentor --with-strict --grpo-steps 4",
    ),
    configure=_configure_experiment,
)
def _run_experiment(args: argparse.Namespace) -> int:
    from .experiment import options_from_args, render_report, run_experiment

    options = options_from_args(
        size=args.size,
        out=args.out,
        workdir=args.workdir,
        methods=args.methods,
        with_strict=args.with_strict,
        seeds=args.seeds,
        budget_s=args.budget_s,
        grpo_steps=args.grpo_steps,
        sft_seconds=args.sft_seconds,
        sft_steps=args.sft_steps,
        eval_rows=args.eval_rows,
        service_workers=args.service_workers,
        data_seed=args.data_seed,
        keep=args.keep,
        command=args.command_label,
        torch_threads=args.torch_threads,
        reuse_sft=args.reuse_sft,
        reuse_base=args.reuse_base,
        grpo_lr=args.grpo_lr,
        grpo_beta=args.grpo_beta,
        grpo_temperature=args.grpo_temperature,
        grpo_prompts=args.grpo_prompts,
    )
    report = run_experiment(options)
    if args.json:
        _print(report, True)
    else:
        print()
        print(render_report(report))
        print()
        print(f"wrote {options.out / 'experiment.json'} and {options.out / 'experiment.txt'}")
    return 0
