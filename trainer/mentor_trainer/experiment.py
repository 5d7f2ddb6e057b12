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
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from mentor_client.adapters.trl_tools import ToolExecutor

from .experiment_report import TOOL_METRICS, build_tables, render_report
from .experiment_sizes import EVAL_PRESET, METHODS, SIZES, ExperimentOptions, ExperimentSize
from .experiment_stages import (
    GRPOResult,
    _device,
    _environment,
    _say,
    build_base_model,
    build_data,
    evaluate_checkpoint,
    run_grpo_stage,
    run_sft_stage,
    start_service,
)
from .experiment_timing import CALIBRATION_STEPS, BudgetPlan, busy_seconds, plan_runs, plan_steps
from .runtime import configure_offline

__all__ = [
    "CALIBRATION_STEPS",
    "EVAL_PRESET",
    "METHODS",
    "SIZES",
    "TOOL_METRICS",
    "BudgetPlan",
    "ExperimentOptions",
    "ExperimentSize",
    "GRPOResult",
    "build_tables",
    "busy_seconds",
    "grpo_changes",
    "options_from_args",
    "plan_runs",
    "plan_steps",
    "prepare_workdir",
    "render_report",
    "run_experiment",
]


# ---------------------------------------------------------------------------- the run
Base = tuple[Path, dict[str, Any], list[str], dict[str, Any]]
Reused = tuple[Path, dict[str, Any], list[str], dict[str, Any], dict[str, Any]]


def reuse_base_model(options: ExperimentOptions) -> Base:
    """Data and base model left in `workdir` by an earlier run (`--reuse-base`): the data folder,
    manifest, evaluated splits and base model summary, as the stages give them."""
    data = options.workdir / "data"
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    names = [n for n in manifest["splits"] if n != "train"]
    known = [n for n in ("test", "ood_long", "ood_combo") if n in names]
    splits = known + sorted(n for n in names if n not in known)
    built = json.loads((options.workdir / "base" / "tiny-model.json").read_text(encoding="utf-8"))
    return data, manifest, splits, built


def reuse_checkpoint_a(options: ExperimentOptions) -> Reused:
    """Data, base model and checkpoint A left in `workdir` by an earlier run (`--reuse-sft`): what
    `reuse_base_model` gives, and the SFT summary."""
    sft = json.loads((options.workdir / "sft" / "run.json").read_text(encoding="utf-8"))
    return (*reuse_base_model(options), sft)


def clean_workdir(workdir: Path) -> None:
    """Remove what a run writes in `workdir` (and nothing else: it may be a folder the user gave)."""
    if not workdir.is_dir():
        return
    for path in workdir.iterdir():
        if path.name in ("data", "base", "sft", "retrieval") or path.name.startswith("grpo-"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name == "service.log":
            path.unlink()


def prepare_workdir(options: ExperimentOptions) -> str:
    """Clear what this run redoes from `workdir` and say what it keeps: "sft" (`--reuse-sft` found
    data, base model and checkpoint A), "base" (`--reuse-base`: data and base model kept, SFT runs
    again from the same decoder), or "" (nothing kept: the run's own folders are removed)."""
    work = options.workdir
    has_base = (work / "data" / "manifest.json").is_file() and (work / "base" / "tiny-model.json").is_file()
    if options.reuse_sft and (work / "sft" / "run.json").is_file():
        kept = "sft"
    elif options.reuse_base:
        if not has_base:  # building new data here would silently compare against a different benchmark
            raise FileNotFoundError(f"--reuse-base: no data/manifest.json and base/tiny-model.json in {work}")
        kept = "base"
    else:
        kept = ""
    if kept:  # the GRPO runs always start over; with "base" so does checkpoint A
        for stale in [*work.glob("grpo-*"), *([work / "sft"] if kept == "base" else [])]:
            shutil.rmtree(stale, ignore_errors=True)
    else:
        clean_workdir(work)
    work.mkdir(parents=True, exist_ok=True)
    return kept


def run_experiment(options: ExperimentOptions) -> dict[str, Any]:
    """Run every stage; write `out/experiment.json` and `out/experiment.txt` as results come in."""
    configure_offline()
    t0 = time.perf_counter()
    budget_s = options.budget_s if options.budget_s is not None else options.size.budget_s
    budget = BudgetPlan(budget_s, None if budget_s is None else t0 + budget_s)
    options.out.mkdir(parents=True, exist_ok=True)
    kept = prepare_workdir(options)
    reused = kept == "sft"
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
    service = start_service(options, workers)  # with the retrieval splits' search index
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
        "grpo_settings": options.size.grpo_settings(),
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

    runner: ToolExecutor | None = None
    try:
        if reused:
            data, manifest, splits, built, report["sft"] = reuse_checkpoint_a(options)
            report["reused_sft"] = str(options.workdir / "sft")
            _say(f"         reusing data, tokenizer, decoder and checkpoint A from {options.workdir}")
        elif kept == "base":
            data, manifest, splits, built = reuse_base_model(options)
            report["reused_base"] = str(options.workdir / "base")
            _say(f"         reusing data, tokenizer and decoder from {options.workdir}; SFT runs again")
        else:
            with phase("data", "generating the benchmark"):
                data, manifest, splits = build_data(options)
            with phase("model", "training the tokenizer and building the decoder"):
                built = build_base_model(options, data)
        report["splits"] = splits
        report["data"] = {
            name: {"rows": info["rows"], "sha256": info["sha256"]} for name, info in manifest["splits"].items()
        }
        report["model"] = {
            "parameters": built["parameters"],
            "vocab_size": built["vocab_size"],
            "config": built["config"],
        }
        _say(f"         {built['parameters']:,} parameters, vocabulary {built['vocab_size']}")
        if not reused:
            with phase("sft", f"SFT on in-domain teacher traces -> checkpoint A ({device})"):
                report["sft"] = run_sft_stage(options, data, device)
        sft = report["sft"]
        _say(
            f"         {sft['steps']} steps of {sft['batch']} rows, "
            f"loss {sft['first_loss']:.3f} -> {sft['last_loss']:.3f}"
        )
        report["service"]["ready_after_s"] = service.wait_ready()
        runner = ToolExecutor(service.base_url, timeout=120.0)
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


def grpo_changes(
    size: ExperimentSize,
    lr: float | None,
    beta: float | None,
    temperature: float | None,
    prompts: int | None,
) -> dict[str, Any]:
    """The size's GRPO fields that `--grpo-lr`, `--grpo-beta`, `--grpo-temperature` and `--grpo-prompts`
    replace (None: keep the size's). Prompts per step become gradient-accumulation micro-batches of the
    size's batch, so every prompt keeps its `num_generations` completions in one group."""
    changes: dict[str, Any] = {}
    if lr is not None:
        if not lr > 0:
            raise ValueError(f"--grpo-lr must be positive, got {lr}")
        changes["grpo_lr"] = lr
    if beta is not None:
        if not beta >= 0:
            raise ValueError(f"--grpo-beta must be zero or positive, got {beta}")
        changes["grpo_beta"] = beta
    if temperature is not None:
        if not temperature > 0:
            raise ValueError(f"--grpo-temperature must be positive (GRPO samples), got {temperature}")
        changes["temperature"] = temperature
    if prompts is not None:
        completions = prompts * size.num_generations
        if prompts < 1 or completions % size.grpo_batch:
            raise ValueError(
                f"--grpo-prompts: {prompts} prompts x {size.num_generations} completions must be a positive "
                f"multiple of the {size.name} size's batch of {size.grpo_batch}"
            )
        changes["grpo_grad_accum"] = completions // size.grpo_batch
    return changes


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
    reuse_sft: bool = False,
    sft_steps: int | None = None,
    grpo_lr: float | None = None,
    grpo_beta: float | None = None,
    grpo_temperature: float | None = None,
    grpo_prompts: int | None = None,
    reuse_base: bool = False,
) -> ExperimentOptions:
    """Validate the command line into `ExperimentOptions` (a bad value raises ValueError naming the flag)."""
    if size not in SIZES:
        raise ValueError(f"--size: expected one of {', '.join(SIZES)}, got {size!r}")
    chosen = SIZES[size]
    changes: dict[str, Any] = grpo_changes(chosen, grpo_lr, grpo_beta, grpo_temperature, grpo_prompts)
    if grpo_steps is not None:
        if grpo_steps < 1:
            raise ValueError("--grpo-steps must be at least 1")
        changes["grpo_steps"] = grpo_steps
    if sft_seconds is not None:
        changes.update(sft_seconds=sft_seconds, sft_steps=None)
    if sft_steps is not None:  # a step count alone lifts the size's time cap; with --sft-seconds, both apply
        if sft_steps < 1:
            raise ValueError("--sft-steps must be at least 1")
        changes.update(sft_steps=sft_steps, sft_seconds=sft_seconds)
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
    if reuse_sft and reuse_base:
        raise ValueError("--reuse-sft keeps checkpoint A and --reuse-base trains it again: give one")
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
        reuse_sft=reuse_sft,
        reuse_base=reuse_base,
        keep=keep,
        command=command or "mentor-train " + shlex.join(sys.argv[1:]),
    )
