"""Process setup shared by the training commands: offline hub, device choice, seeds, model folders.

Nothing is ever downloaded: the commands set the Hugging Face offline switches before the
libraries are imported. A "model folder" is either what `tiny-model`, `sft` and `grpo` write
(`DIR/model` + `DIR/tokenizer`, the tokenizer apart so `AutoTokenizer` keeps its byte-level
pre-tokenizer) or any ordinary local Hugging Face checkpoint holding both.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def configure_offline() -> None:
    """No hub access, quiet tokenizers fork warnings. Call before importing transformers/datasets/trl."""
    for key, value in _OFFLINE.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def checkpointing_kwargs(config_class: Any, enabled: bool) -> dict[str, Any]:
    """Activation checkpointing on or off for a TrainingArguments subclass, under either name.

    transformers 5.24 renamed `gradient_checkpointing` to `activation_checkpointing` (the old
    name warns); the GPU machines run 5.17, which knows only the old one.
    """
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_class)}
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return {key: enabled}


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True, slots=True)
class ModelPaths:
    model_dir: Path
    tokenizer_dir: Path


def resolve_model_paths(path: str | Path) -> ModelPaths:
    """The model and tokenizer folders of `path`: a `tiny-model`/`sft`/`grpo` output or a checkpoint."""
    root = Path(path)
    if (root / "model" / "config.json").exists():
        tokenizer_dir = root / "tokenizer" if (root / "tokenizer").exists() else root / "model"
        return ModelPaths(root / "model", tokenizer_dir)
    if (root / "config.json").exists():
        sibling = root.parent / "tokenizer"
        has_own = (root / "tokenizer.json").exists() or (root / "tokenizer_config.json").exists()
        return ModelPaths(root, root if has_own or not sibling.exists() else sibling)
    raise FileNotFoundError(
        f"{root} is not a model folder: expected {root}/model/config.json (from `mentor-train tiny-model`) "
        f"or {root}/config.json"
    )


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model_paths(path).tokenizer_dir))
    tokenizer.padding_side = "left"  # batched generation appends on the right
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str | Path, device: str | None = None) -> Any:
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(str(resolve_model_paths(path).model_dir))
    if device is not None:
        model = model.to(device)
    return model


def save_model(model: Any, tokenizer: Any, out: str | Path, info: dict[str, Any] | None = None) -> ModelPaths:
    """Save as `out/model` + `out/tokenizer` (+ `out/run.json`), the layout every command reads."""
    out = Path(out)
    model.save_pretrained(str(out / "model"))
    tokenizer.save_pretrained(str(out / "tokenizer"))
    if info is not None:
        (out / "run.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    return ModelPaths(out / "model", out / "tokenizer")
