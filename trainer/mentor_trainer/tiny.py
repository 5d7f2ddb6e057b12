"""Build a tiny tokenizer and Qwen2-style decoder locally, for tests, demos and CPU smoke runs.

No weights can be downloaded on the machines this project runs on, so everything a test trains
is built here: a byte-level BPE tokenizer trained with `tokenizers` on the benchmark's own text
(chat markup and tool markup as added tokens, TRL's Qwen 2.5 chat template so `GRPOTrainer(tools=...)`
recognises it) and a randomly initialised Qwen2 decoder of a configurable size. The tokenizer is
saved in its own folder: `AutoTokenizer` swaps in Qwen's pre-tokenizer when a qwen2 `config.json`
sits beside it, which would break the byte-level BPE trained here.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .chat import qwen_chat_template

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, IM_START, IM_END)
# Ordinary added tokens (not "special"): decoding with skip_special_tokens=True must keep them,
# because the tool-call parsers read them from the decoded text.
MARKUP_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>")


@dataclass(frozen=True, slots=True)
class TinyModelConfig:
    """Size of the tiny decoder. The defaults give ~100k parameters with a ~800-token vocabulary."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int | None = None  # None: 4 × hidden
    max_position_embeddings: int = 2048
    vocab_size: int = 800
    seed: int = 0
    # `phrases`: BPE merges cross word boundaries, so the fixed tool block of a system prompt becomes a
    # few dozen tokens instead of ~1,100 (prompts, rollouts and training get that much shorter), and
    # every digit is its own token, so the model copies numbers digit by digit (ten embeddings to learn)
    # instead of learning one token for every number BPE happened to merge.
    phrases: bool = False


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 800, phrases: bool = False) -> Any:
    """Train a byte-level BPE tokenizer on `corpus` and wrap it as a `PreTrainedTokenizerFast`
    (`phrases`: see `TinyModelConfig`)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = list(corpus)
    if not any(text.strip() for text in corpus):
        raise ValueError("the tokenizer needs text to train on: the corpus is empty")
    backend = Tokenizer(models.BPE())
    if phrases:
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    fast: Any = PreTrainedTokenizerFast
    tokenizer = fast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        unk_token=None,
        padding_side="left",
        model_max_length=2048,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": [IM_START]})
    tokenizer.add_tokens(list(MARKUP_TOKENS), special_tokens=False)
    tokenizer.chat_template = qwen_chat_template()
    return tokenizer


def build_model(tokenizer: Any, config: TinyModelConfig) -> Any:
    """A randomly initialised Qwen2 decoder sized by `config`, seeded for reproducibility."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(config.seed)
    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size or 4 * config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD_TOKEN),
    )
    model = Qwen2ForCausalLM(model_config)
    model.generation_config.eos_token_id = model_config.eos_token_id
    model.generation_config.pad_token_id = model_config.pad_token_id
    model.generation_config.bos_token_id = None
    return model


def benchmark_corpus(seed: int, n_rows: int = 600) -> list[str]:
    """Text for the BPE trainer: rendered teacher conversations of the benchmark, every split."""
    from .benchmark import BenchmarkSizes, generate_benchmark
    from .chat import render_conversation

    per_split = max(n_rows // 6, 10)
    sizes = BenchmarkSizes(train=per_split, test=per_split, ood=per_split)
    splits = generate_benchmark(seed=seed, sizes=sizes)
    rows = [row for split_rows in splits.values() for row in split_rows]
    random.Random(seed).shuffle(rows)
    return [render_conversation(row["messages"]) for row in rows[:n_rows]]


def build_tiny(
    out: str | Path, config: TinyModelConfig | None = None, corpus: list[str] | None = None
) -> dict[str, Any]:
    """Build and save the tokenizer (`out/tokenizer`) and the model (`out/model`); return a summary."""
    config = config or TinyModelConfig()
    out = Path(out)
    corpus = corpus if corpus is not None else benchmark_corpus(config.seed)
    tokenizer = build_tokenizer(corpus, vocab_size=config.vocab_size, phrases=config.phrases)
    model = build_model(tokenizer, config)
    tokenizer.save_pretrained(out / "tokenizer")
    model.save_pretrained(out / "model")
    summary = {
        "model_dir": str(out / "model"),
        "tokenizer_dir": str(out / "tokenizer"),
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": asdict(config),
    }
    (out / "tiny-model.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
