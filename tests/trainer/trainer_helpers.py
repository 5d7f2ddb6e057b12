"""Constants and helpers shared by the trainer tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = [ROOT / "server", ROOT / "client", ROOT / "trainer"]
E2E_DIR = ROOT / "tests" / "e2e"

# The warm start: one task family's fixed format is learned in ~100 steps (~10 s on 2 cores).
WARM_FAMILY = "add"
WARM_ROWS = 16
WARM_STEPS = 100


def subprocess_env() -> dict[str, str]:
    """Environment for `mentor-train` child processes: offline, CPU, the source tree importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTOR_")}
    env.update(
        CUDA_VISIBLE_DEVICES="",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=os.pathsep.join([*map(str, SOURCE_DIRS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    return env


def cli(*args: str) -> list[str]:
    """The `mentor-train` command line as a child process runs it."""
    return [sys.executable, "-m", "mentor_trainer.cli", *args]


# ---------------------------------------------------------------------------- scripted rollouts
Script = Callable[[dict[str, Any], int], str]
"""A stand-in policy: (the benchmark row, the assistant turn number) -> the completion text."""


def scripted_generate(rows: list[dict[str, Any]], script: Script) -> Callable[[list[str]], list[tuple[str, bool]]]:
    """A `generate` for `evaluate.rollout` that answers each prompt with `script`, finding the row by
    the prompt's user message and the turn by the assistant turns already in it."""
    by_question = {r["prompt"][-1]["content"]: r for r in rows}

    def generate(texts: list[str]) -> list[tuple[str, bool]]:
        out = []
        for text in texts:
            question = re.search(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", text, re.S)
            assert question is not None
            turn = text.count("<|im_start|>assistant") - 1  # the generation prompt opens one
            out.append((script(by_question[question.group(1)], turn), True))
        return out

    return generate


class ChatRenderer:
    """A stand-in for the tokenizer's `apply_chat_template` (the only tokenizer method the loop uses)."""

    @staticmethod
    def apply_chat_template(messages: list[dict[str, Any]], **kwargs: Any) -> str:
        from mentor_trainer.chat import render_conversation

        return render_conversation(messages, add_generation_prompt=kwargs.get("add_generation_prompt", False))


def save_served_model(rows: list[dict[str, Any]], out: Path, *, sample: bool = False) -> Path:
    """A tiny Qwen2 (random weights) and a 400-token tokenizer trained on `rows`' conversations, saved
    in ONE folder, as `transformers serve` loads both from its path. `sample` switches sampling on in
    the generation config (the server sends `temperature`, never `do_sample`)."""
    from mentor_trainer.chat import render_conversation
    from mentor_trainer.tiny import TinyModelConfig, build_model, build_tokenizer

    tokenizer = build_tokenizer([render_conversation(r["messages"]) for r in rows] * 4, vocab_size=400)
    model = build_model(tokenizer, TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1))
    model.generation_config.do_sample = sample
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
