"""Shared, session-scoped artefacts for the trainer tests: a small benchmark, a tiny model, a warm start.

Everything is built locally (no hub) and once per session: the benchmark (seeded), the tiny
tokenizer + Qwen2 model trained on its text, and a copy warmed up with the plain-torch loop on
one task family so that it writes `<tool_call>` blocks (a random model never does, and GRPO
needs rollouts that call tools). The CPU is forced so the GPU machine runs the same thing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
from trainer_helpers import WARM_FAMILY, WARM_ROWS, WARM_STEPS


@pytest.fixture(scope="session")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mentor_trainer.benchmark import BenchmarkSizes, generate_benchmark, write_benchmark

    out = tmp_path_factory.mktemp("bench")
    # 256 train rows: 16 in-domain families in turn, so 16 rows of the warm-start family.
    splits = generate_benchmark(seed=0, sizes=BenchmarkSizes(train=256, test=32, ood=12))
    write_benchmark(out, splits, seed=0)
    return out


@pytest.fixture(scope="session")
def bench_rows(bench: Path) -> dict[str, list[dict[str, Any]]]:
    from mentor_trainer.benchmark import load_rows

    return {p.stem: load_rows(bench, p.stem) for p in sorted(bench.glob("*.jsonl"))}


@pytest.fixture(scope="session")
def corpus(bench_rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    from mentor_trainer.chat import render_conversation

    return [render_conversation(r["messages"]) for rows in bench_rows.values() for r in rows]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory, corpus: list[str]) -> Path:
    from mentor_trainer.tiny import build_tiny

    out = tmp_path_factory.mktemp("tiny")
    build_tiny(out, corpus=corpus)
    return out


@pytest.fixture(scope="session")
def tokenizer(tiny: Path) -> Any:
    from mentor_trainer.runtime import load_tokenizer

    return load_tokenizer(tiny)


@pytest.fixture(scope="session")
def warm(tmp_path_factory: pytest.TempPathFactory, bench: Path, tiny: Path) -> Path:
    from mentor_trainer.sft import run_overfit

    out = tmp_path_factory.mktemp("warm")
    run_overfit(
        bench,
        tiny,
        out,
        families=(WARM_FAMILY,),
        limit=WARM_ROWS,
        steps=WARM_STEPS,
        seconds=None,
        learning_rate=1e-2,
        progress=False,
    )
    return out
