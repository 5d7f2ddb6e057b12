"""The built-in `mentor-train` subcommands: tiny-model, make-data, sft, grpo, eval.

Each is an argparse `configure` function plus a `run` function registered with the CLI. They
parse flags into the option dataclasses of the library modules and print a short summary (and
`--json` for machines). New commands (`teach`, `demo`) register here the same way.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from .registry import json_flag as _json_flag
from .registry import json_object_arg, register_command
from .registry import print_summary as _print
from .runtime import configure_offline
from .tracking import Tracking, add_tracking_flags, tracking_from_args


def _load_spec(path: str | None) -> dict[str, Any] | None:
    """A reward spec from a JSON (or, with PyYAML installed, YAML) file."""
    if path is None:
        return None
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - PyYAML ships with the server extra
            raise ValueError("reading a YAML spec needs PyYAML (pip install pyyaml), or give JSON") from exc
        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a reward spec must be a JSON object")
    return data


def _backend_flags(p: argparse.ArgumentParser, what: str) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--reward-url",
        default=None,
        help=f"the reward service ({what} go through it); default $MENTOR_REWARD_URL, else http://127.0.0.1:8000",
    )
    where.add_argument("--local", action="store_true", help=f"{what} in this process (engine + toolsets installed)")
    p.add_argument("--api-key", default=None, help="Bearer token for the service; default $MENTOR_REWARD_API_KEY")


# ---------------------------------------------------------------------------- tiny-model
def _configure_tiny(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder to write (OUT/model, OUT/tokenizer, OUT/tiny-model.json)")
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--intermediate-size", type=int, default=None, help="MLP width (default 4 × hidden)")
    p.add_argument("--vocab-size", type=int, default=800, help="BPE vocabulary before the added tokens")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="train the tokenizer on this benchmark folder's text instead")
    _json_flag(p)


@register_command(
    "tiny-model",
    help="build a tiny tokenizer + Qwen2 model locally (no downloads)",
    description="Train a byte-level BPE tokenizer on the benchmark's text and build a small randomly "
    "initialised Qwen2 decoder with TRL's Qwen 2.5 chat template, for tests, demos and CPU runs.",
    examples=(
        "mentor-train tiny-model --out runs/tiny",
        "mentor-train tiny-model --out runs/small --hidden-size 384 --layers 6 --heads 6 --kv-heads 2",
    ),
    configure=_configure_tiny,
)
def _run_tiny(args: argparse.Namespace) -> int:
    configure_offline()
    from .tiny import TinyModelConfig, build_tiny

    corpus = None
    if args.data:
        from .benchmark import load_rows
        from .chat import render_conversation

        files = sorted(Path(args.data).glob("*.jsonl"))
        if not files:
            raise FileNotFoundError(f"no <split>.jsonl files in {args.data} (run `mentor-train make-data` first)")
        corpus = [render_conversation(row["messages"]) for path in files for row in load_rows(args.data, path.stem)]
    config = TinyModelConfig(
        hidden_size=args.hidden_size,
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        intermediate_size=args.intermediate_size,
        vocab_size=args.vocab_size,
        seed=args.seed,
    )
    _print(build_tiny(args.out, config, corpus), args.json)
    return 0


# ---------------------------------------------------------------------------- make-data
def _configure_make_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder for <split>.jsonl, <split>.parquet and manifest.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--test-size", type=int, default=200)
    p.add_argument("--ood-size", type=int, default=200, help="rows in each out-of-domain split")
    p.add_argument("--no-parquet", action="store_true", help="write JSONL only")
    p.add_argument(
        "--retrieval",
        action="store_true",
        help="add the retrieval family's splits (ood_retrieval: one search, ood_retrieval_2hop: two) and write "
        "OUT/retrieval: its corpus, search index and the toolsets file a service needs to serve its tool",
    )
    _json_flag(p)


@register_command(
    "make-data",
    help="generate the executable-tool benchmark (train/test + out-of-domain splits)",
    description="Generate problems whose reference traces come from executing the real tools (correct by "
    "construction). Splits: train, test (in-domain, 1-2 calls), ood_long (3-4 calls), ood_combo (unseen "
    "tool pairs), ood_units and ood_dates (other domains). Seeded: one seed, identical files.",
    examples=(
        "mentor-train make-data --out data/bench --seed 0",
        "mentor-train make-data --out data/small --train-size 200 --test-size 50 --ood-size 50",
        "mentor-train make-data --out data/bench --retrieval",
    ),
    configure=_configure_make_data,
)
def _run_make_data(args: argparse.Namespace) -> int:
    from .benchmark import BenchmarkSizes, generate_benchmark, write_benchmark
    from .families_retrieval import enable, write_index

    if args.retrieval:
        enable()
    sizes = BenchmarkSizes(train=args.train_size, test=args.test_size, ood=args.ood_size)
    splits = generate_benchmark(seed=args.seed, sizes=sizes, progress=not args.json)
    manifest = write_benchmark(args.out, splits, seed=args.seed, parquet=not args.no_parquet)
    toolsets = write_index(Path(args.out) / "retrieval") if args.retrieval else None
    if args.json:
        _print({**manifest, "retrieval_toolsets": None if toolsets is None else str(toolsets)}, True)
    else:
        for name, info in manifest["splits"].items():
            print(f"{name:>10}: {info['rows']:>5} rows  {', '.join(info['families'])}")
        print(f"wrote {args.out}")
        if toolsets is not None:
            print(f"serve the retrieval splits' tool with: MENTOR_TOOLSETS={toolsets} mentor-reward serve")
    return 0


# ---------------------------------------------------------------------------- sft
def _configure_sft(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="benchmark folder (from make-data)")
    p.add_argument("--model", required=True, help="model folder (tiny-model output or a local checkpoint)")
    p.add_argument("--out", required=True, help="where to save OUT/model and OUT/tokenizer")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, default=None, help="use the first N rows")
    p.add_argument("--max-steps", type=int, default=50)
    p.add_argument("--epochs", type=float, default=1.0, help="used when --max-steps is -1")
    p.add_argument("--learning-rate", type=float, default=None, help="default 2e-3 (1e-2 with --plain-torch-overfit)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    fast = p.add_argument_group("plain-torch warm start (no TRL)")
    fast.add_argument(
        "--plain-torch-overfit",
        action="store_true",
        help="teacher-force a few conversations with a plain torch loop instead of SFTTrainer",
    )
    fast.add_argument("--seconds", type=float, default=None, help="wall-time budget of the plain-torch loop")
    fast.add_argument("--steps", type=int, default=None, help="step budget of the plain-torch loop")
    fast.add_argument("--family", action="append", default=None, help="only rows of this task family (repeatable)")
    add_tracking_flags(p, completions=False)
    _json_flag(p)


@register_command(
    "sft",
    help="supervised fine-tuning on teacher traces (the SFT baseline, TRL SFTTrainer)",
    description="Fine-tune on the benchmark's teacher conversations (loss on assistant turns only) with "
    "TRL's SFTTrainer, or with --plain-torch-overfit a quick plain-torch warm start that teaches a tiny "
    "model the tool-call format before GRPO.",
    examples=(
        "mentor-train sft --data data/bench --model runs/tiny --out runs/sft --max-steps 200",
        "mentor-train sft --data data/bench --model runs/tiny --out runs/warm --plain-torch-overfit "
        "--steps 100 --limit 16 --family add",
    ),
    configure=_configure_sft,
)
def _run_sft(args: argparse.Namespace) -> int:
    configure_offline()
    tracking = tracking_from_args(args)
    if args.plain_torch_overfit and tracking != Tracking():
        raise ValueError("tracking, checkpoint and LoRA flags apply to the TRL SFT, not --plain-torch-overfit")
    if args.plain_torch_overfit:
        from .sft import run_overfit

        steps, seconds = args.steps, args.seconds
        if steps is None and seconds is None:
            steps = 100
        summary = run_overfit(
            args.data,
            args.model,
            args.out,
            split=args.split,
            limit=args.limit or 64,
            families=tuple(args.family) if args.family else None,
            steps=steps,
            seconds=seconds,
            learning_rate=args.learning_rate or 1e-2,
            batch_size=args.batch_size,
            seed=args.seed,
            progress=not args.json,
        )
    else:
        from .sft import SFTOptions, run_sft

        options = SFTOptions(
            split=args.split,
            limit=args.limit,
            max_steps=args.max_steps,
            epochs=args.epochs,
            learning_rate=args.learning_rate or 2e-3,
            batch_size=args.batch_size,
            gradient_accumulation_steps=args.grad_accum,
            max_length=args.max_length,
            seed=args.seed,
            tracking=tracking,
        )
        summary = run_sft(args.data, args.model, args.out, options)
    _print(summary, args.json, ("command", "rows", "steps", "train_loss", "first_loss", "last_loss", "seconds"))
    print(f"saved {args.out}/model and {args.out}/tokenizer") if not args.json else None
    return 0


# ---------------------------------------------------------------------------- grpo
def _configure_grpo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="benchmark folder (from make-data)")
    p.add_argument("--model", required=True, help="model folder (sft/tiny-model output or a local checkpoint)")
    p.add_argument("--out", required=True, help="where to save OUT/model, OUT/tokenizer, OUT/log_history.jsonl")
    _backend_flags(p, "rewards and rollout tool calls")
    reward = p.add_argument_group("reward")
    reward.add_argument("--preset", default="mentor", help="reward preset (mentor, flexible, sparse, ...)")
    reward.add_argument("--spec", default=None, help="reward spec file (JSON, or YAML) replacing the preset")
    reward.add_argument("--overrides", default=None, help="JSON merged into the spec, e.g. '{\"components\": ...}'")
    reward.add_argument("--toolset", default="calculator", help="the toolset rollouts may call")
    reward.add_argument(
        "--run-id",
        default=None,
        help="labels the service's score records and names the tracker's run (default PRESET-DATE-TIME-HEX, "
        "kept in OUT/run_id; --resume reuses it)",
    )
    size = p.add_argument_group("training")
    size.add_argument("--split", default="train")
    size.add_argument("--limit", type=int, default=None)
    size.add_argument("--family", action="append", default=None, help="only prompts of this task family (repeatable)")
    size.add_argument("--max-steps", type=int, default=20)
    size.add_argument("--learning-rate", type=float, default=1e-4)
    size.add_argument("--num-generations", type=int, default=4)
    size.add_argument("--batch-size", type=int, default=4, help="per device (× grad accumulation ÷ generations)")
    size.add_argument("--grad-accum", type=int, default=1)
    size.add_argument("--max-completion-length", type=int, default=64, help="tokens, tool results included")
    size.add_argument("--max-tool-calls", type=int, default=4, help="tool-calling iterations per rollout")
    size.add_argument("--temperature", type=float, default=1.0)
    size.add_argument("--beta", type=float, default=0.0, help="KL coefficient")
    size.add_argument("--seed", type=int, default=0)
    size.add_argument("--logging-steps", type=int, default=1)
    gen = p.add_argument_group("generation server")
    gen.add_argument("--use-vllm", action="store_true", help="generate with vLLM (GRPOConfig.use_vllm)")
    gen.add_argument("--vllm-mode", default="server", choices=("server", "colocate"))
    gen.add_argument("--vllm-server-url", default=None, help="TRL vLLM server (`trl vllm-serve`)")
    add_tracking_flags(p, completions=True)
    _json_flag(p)


@register_command(
    "grpo",
    help="GRPO with MENTOR rewards from the service (or --local), tools executed through it",
    description="Train with TRL's GRPOTrainer. Rewards come from the client's TRL adapter (the service, or "
    "the in-process engine with --local); rollouts call tools through TRL's tools= loop, each call "
    "executed by the service's /v1/tools/execute (or locally). Reward components are logged per step. "
    "Runs unchanged under `accelerate launch -m mentor_trainer.cli grpo ...`.",
    examples=(
        "mentor-train grpo --data data/bench --model runs/sft --out runs/grpo --reward-url http://127.0.0.1:8000",
        "mentor-train grpo --data data/bench --model runs/sft --out runs/grpo --local --preset flexible",
        "accelerate launch -m mentor_trainer.cli grpo --data data/bench --model runs/sft --out runs/grpo "
        "--reward-url http://reward:8000 --spec my_spec.json --max-steps 500 --batch-size 16",
        "mentor-train grpo --data data/bench --model runs/sft --out runs/grpo --local --report-to tensorboard "
        "--save-steps 50 --log-completions",
        "mentor-train grpo --data data/bench --model runs/sft --out runs/grpo --local --save-steps 50 --resume",
        "mentor-train grpo --data data/bench --model runs/sft --out runs/grpo-lora --local --lora-r 16",
    ),
    configure=_configure_grpo,
)
def _run_grpo(args: argparse.Namespace) -> int:
    configure_offline()
    from .grpo import GRPOOptions, RewardSource, run_grpo

    source = RewardSource(
        base_url=None if args.local else args.reward_url or os.environ.get("MENTOR_REWARD_URL"),
        local=args.local,
        api_key=args.api_key,
        preset=args.preset,
        spec=_load_spec(args.spec),
        overrides=json_object_arg(args.overrides, "--overrides"),
        toolset=args.toolset,
        run_id=args.run_id,
    )
    options = GRPOOptions(
        split=args.split,
        limit=args.limit,
        families=tuple(args.family) if args.family else None,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        num_generations=args.num_generations,
        batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        max_completion_length=args.max_completion_length,
        max_tool_calling_iterations=args.max_tool_calls,
        temperature=args.temperature,
        beta=args.beta,
        logging_steps=args.logging_steps,
        seed=args.seed,
        use_vllm=args.use_vllm,
        vllm_mode=args.vllm_mode,
        vllm_server_base_url=args.vllm_server_url,
        tracking=tracking_from_args(args),
    )
    summary = run_grpo(args.data, args.model, args.out, source, options)
    from .grpo import reward_metrics

    series = reward_metrics(summary.pop("log_history"), summary["reward"]["components"])
    summary["reward_series"] = series
    _print(summary, args.json, ("command", "run_id", "steps", "trained_steps", "seconds", "device", "processes"))
    if not args.json:
        print(
            f"reward spec: {args.preset if source.spec is None else 'spec ' + str(args.spec)} "
            f"(spec hash {summary['reward']['spec_hash']})"
        )
        for key, values in series.items():
            print(f"{key}: {' '.join(f'{v:.3f}' for v in values)}")
    return 0


# ---------------------------------------------------------------------------- eval
def _configure_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, help="benchmark folder (from make-data); optional with --endpoint")
    p.add_argument("--model", required=True, help="model folder (with --endpoint: the model name it serves)")
    p.add_argument(
        "--split",
        action="append",
        default=None,
        help="split to evaluate (repeatable or comma-separated; default test); 'all' for every split",
    )
    _backend_flags(p, "tool calls and scoring")
    p.add_argument("--preset", default="flexible", help="scoring preset whose components give the metrics")
    p.add_argument("--limit", type=int, default=None, help="first N rows of each split")
    p.add_argument("--max-turns", type=int, default=6)
    p.add_argument("--max-new-tokens", type=int, default=96, help="per assistant turn")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--temperature", type=float, default=0.0, help="0 is greedy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        default=None,
        help="write OUT/eval.json and OUT/rollouts.jsonl (default MODEL/eval: read the rollouts when a number "
        "looks wrong)",
    )
    served = p.add_argument_group("a model served elsewhere (see docs/evaluation.md)")
    served.add_argument(
        "--endpoint", default=None, help="OpenAI-compatible base URL (vLLM, SGLang, transformers serve)"
    )
    served.add_argument(
        "--endpoint-api-key",
        default=None,
        help="its Bearer token; default $MENTOR_ENDPOINT_API_KEY, else $OPENAI_API_KEY",
    )
    served.add_argument(
        "--bfcl-categories",
        action="append",
        default=None,
        help="BFCL single-turn categories (repeatable or comma-separated; 'all'); --limit applies per category",
    )
    served.add_argument(
        "--bfcl-cache", default=None, help="folder for the bfcl-eval wheel (default $MENTOR_BFCL_CACHE)"
    )
    served.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    served.add_argument("--max-retries", type=int, default=3, help="retries on connection errors, 408/429 and 5xx")
    served.add_argument("--request-timeout", type=float, default=300.0, help="seconds per request")
    served.add_argument("--extra-body", default=None, help="JSON merged into every request, e.g. '{\"top_p\": 0.9}'")
    _json_flag(p)


@register_command(
    "eval",
    help="roll a model out with tool execution and report accuracy and tool-use metrics",
    description="Generate, execute each <tool_call>, feed back <tool_response>, until an answer or the turn "
    "limit; score with the engine (service or --local, preset 'flexible'); print a table of accuracy, "
    "call rate, invalid-tool rate, tool-name F1, argument score and average calls per split.",
    examples=(
        "mentor-train eval --data data/bench --model runs/grpo --split test --split ood_long --local",
        "mentor-train eval --data data/bench --model runs/grpo --split all "
        "--reward-url http://127.0.0.1:8000 --out runs/grpo/eval",
        "mentor-train eval --endpoint http://127.0.0.1:8001/v1 --model Qwen/Qwen2.5-7B-Instruct --local "
        "--data data/bench --split test --bfcl-categories all --out runs/eval-qwen",
    ),
    configure=_configure_eval,
)
def _run_eval(args: argparse.Namespace) -> int:
    configure_offline()
    if args.endpoint:
        from .endpoint_eval import endpoint_command

        return endpoint_command(args)
    if args.data is None:
        raise ValueError("--data is required (the benchmark folder), unless --endpoint is given")
    from mentor_client.adapters.trl_tools import ToolExecutor

    from .benchmark import split_names
    from .evaluate import EvalOptions, run_eval
    from .families_retrieval import local_toolset_files

    # In-process tools and scoring load the retrieval family's search index when make-data wrote one.
    runner = ToolExecutor(
        None if args.local else args.reward_url or os.environ.get("MENTOR_REWARD_URL"),
        local=args.local,
        api_key=args.api_key,
        toolset_files=local_toolset_files(args.data, args.local),
    )
    options = EvalOptions(
        splits=split_names(args.split, args.data),
        limit=args.limit,
        max_turns=args.max_turns,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        temperature=args.temperature,
        preset=args.preset,
        seed=args.seed,
    )
    out = args.out or str(Path(args.model) / "eval")
    try:
        result = run_eval(args.data, args.model, runner, options, out=out, progress=not args.json)
    finally:
        runner.close()
    if args.json:
        _print(result, True)
    else:
        print(result["table"])
        print(f"wrote {out}/eval.json and {out}/rollouts.jsonl")
    return 0


# ---------------------------------------------------------------------------- teach
from .teach import TEACH_DESCRIPTION, TEACH_EXAMPLES, TEACH_HELP, configure_teach, teach_command  # noqa: E402

register_command(
    "teach",
    help=TEACH_HELP,
    description=TEACH_DESCRIPTION,
    examples=TEACH_EXAMPLES,
    configure=configure_teach,
)(teach_command)


# ---------------------------------------------------------------------------- demo, experiment
from . import pipelines  # noqa: E402, F401  (registers `demo` and `experiment`)
