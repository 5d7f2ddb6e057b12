"""The tiny local model: a byte-level BPE tokenizer with TRL's Qwen template and a small Qwen2 decoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mentor_trainer.chat import render_conversation
from mentor_trainer.tiny import (
    IM_END,
    IM_START,
    MARKUP_TOKENS,
    PAD_TOKEN,
    TinyModelConfig,
    build_tiny,
    qwen_chat_template,
)


def test_tokenizer_tokens_and_template(tokenizer: Any) -> None:
    assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.padding_side) == (IM_END, PAD_TOKEN, "left")
    assert 600 <= len(tokenizer) <= 1000
    assert tokenizer.chat_template == qwen_chat_template()
    for token in (IM_START, IM_END, PAD_TOKEN, *MARKUP_TOKENS):
        ids = tokenizer.encode(token, add_special_tokens=False)
        assert len(ids) == 1, token
    text = f"{IM_START}assistant\n<tool_call>\n{{}}\n</tool_call><think>x</think>{IM_END}"
    kept = tokenizer.decode(tokenizer.encode(text, add_special_tokens=False), skip_special_tokens=True)
    # Chat markers go, tool markup stays: the parsers read it from decoded text.
    assert kept == "assistant\n<tool_call>\n{}\n</tool_call><think>x</think>"


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "add", "arguments": {"a": 1.5, "b": -2}}',
        "Ünïcödé ∑ 2024-02-29 \\boxed{x}",
        "  spaces\n\ttabs  ",
    ],
    ids=["json", "unicode", "whitespace"],
)
def test_byte_level_round_trip(tokenizer: Any, text: str) -> None:
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_model_shape(tiny: Path) -> None:
    from mentor_trainer.runtime import load_model

    model = load_model(tiny)
    config = model.config
    assert (
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.num_key_value_heads,
    ) == (
        64,
        2,
        4,
        2,
    )
    assert config.tie_word_embeddings and model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert sum(p.numel() for p in model.parameters()) < 300_000
    assert (tiny / "tokenizer" / "tokenizer.json").exists() and not (tiny / "tokenizer" / "config.json").exists()


def test_build_is_seeded(tmp_path: Path, corpus: list[str]) -> None:
    import torch
    from safetensors.torch import load_file

    config = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, seed=3)
    a = build_tiny(tmp_path / "a", config, corpus[:200])
    b = build_tiny(tmp_path / "b", config, corpus[:200])
    build_tiny(
        tmp_path / "c",
        TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, seed=4),
        corpus[:200],
    )
    assert a["vocab_size"] == b["vocab_size"]
    assert (tmp_path / "a/tokenizer/tokenizer.json").read_text() == (
        tmp_path / "b/tokenizer/tokenizer.json"
    ).read_text()
    wa, wb, wc = (load_file(str(tmp_path / n / "model" / "model.safetensors")) for n in "abc")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


@pytest.mark.parametrize("split", ["train", "ood_long", "ood_units", "ood_dates"])
def test_tokenizer_free_rendering_matches_the_tokenizer(
    split: str, tokenizer: Any, bench_rows: dict[str, list[dict[str, Any]]]
) -> None:
    """`render_conversation` (used to train the tokenizer) is exactly `apply_chat_template`."""
    for row in bench_rows[split][:3]:
        assert render_conversation(row["messages"]) == tokenizer.apply_chat_template(row["messages"], tokenize=False)
        assert render_conversation(row["prompt"], add_generation_prompt=True) == tokenizer.apply_chat_template(
            row["prompt"], tokenize=False, add_generation_prompt=True
        )


def test_tokenizer_loads_with_trl_tool_support(tiny: Path) -> None:
    """GRPOTrainer(tools=...) accepts the tokenizer: a recognised template that renders tool calls."""
    from trl.chat_template_utils import add_response_schema, supports_tool_calling

    from mentor_trainer.runtime import load_tokenizer

    tokenizer = load_tokenizer(tiny)
    assert supports_tool_calling(tokenizer)
    parsed = add_response_schema(tokenizer).parse_response(
        '<tool_call>\n{"name": "add", "arguments": {"a": 3, "b": 4}}\n</tool_call><|im_end|>', prefix=""
    )
    assert parsed["tool_calls"] == [{"type": "function", "function": {"name": "add", "arguments": {"a": 3, "b": 4}}}]
