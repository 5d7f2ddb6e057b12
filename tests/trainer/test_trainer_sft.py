"""SFT on teacher traces: the assistant-only mask, the plain-torch warm start, TRL's SFTTrainer."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from trainer_helpers import WARM_FAMILY

from mentor_trainer.chat import parse_assistant_turn
from mentor_trainer.runtime import load_model
from mentor_trainer.sft import SFTOptions, assistant_mask, overfit, run_sft


def _expected_supervision(messages: list[dict[str, Any]]) -> str:
    """What the assistant wrote, in the template's spelling, each turn closed by <|im_end|>."""
    parts = []
    for m in messages:
        if m["role"] != "assistant":
            continue
        text = m["content"] or ""
        for call in m.get("tool_calls", []):
            f = call["function"]
            body = f'{{"name": "{f["name"]}", "arguments": {json.dumps(f["arguments"])}}}'
            text += f"\n<tool_call>\n{body}\n</tool_call>"
        parts.append(text.lstrip("\n") + "<|im_end|>")
    return "".join(parts)


@pytest.mark.parametrize("split", ["train", "ood_long", "ood_dates"])
def test_assistant_mask_covers_exactly_the_assistant_turns(
    split: str, tokenizer: Any, bench_rows: dict[str, list[dict[str, Any]]]
) -> None:
    row = max(bench_rows[split][:12], key=lambda r: len(r["messages"]))
    ids, mask = assistant_mask(tokenizer, tokenizer.apply_chat_template(row["messages"], tokenize=False))
    supervised = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert supervised == _expected_supervision(row["messages"])


def _batch_loss(model: Any, tokenizer: Any, conversations: list[list[dict[str, Any]]]) -> float:
    encoded = [assistant_mask(tokenizer, tokenizer.apply_chat_template(c, tokenize=False)) for c in conversations]
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), tokenizer.pad_token_id)
    labels = torch.full((len(encoded), width), -100)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, (ids, mask) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        labels[row, : len(ids)] = torch.tensor([t if m else -100 for t, m in zip(ids, mask, strict=True)])
    with torch.no_grad():
        return float(model(input_ids=input_ids, attention_mask=attention, labels=labels).loss)


def test_shared_prefix_cache_gives_the_full_sequence_loss(
    tiny: Path, tokenizer: Any, bench_rows: dict[str, list[dict[str, Any]]]
) -> None:
    """The warm start runs the common system prompt once; its loss must be the plain loss."""
    model = load_model(tiny)
    conversations = [r["messages"] for r in bench_rows["train"][:4]]
    expected = _batch_loss(model, tokenizer, conversations)
    losses = overfit(model, tokenizer, conversations, steps=1, learning_rate=0.0, batch_size=4)
    assert losses[0] == pytest.approx(expected, rel=1e-4)


def test_overfit_needs_a_budget(tiny: Path, tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="steps or seconds"):
        overfit(load_model(tiny), tokenizer, [])


def test_warm_start_learns_the_tool_call_format(
    warm: Path, tokenizer: Any, bench_rows: dict[str, list[dict[str, Any]]]
) -> None:
    from mentor_trainer.evaluate import _generate

    run = json.loads((warm / "run.json").read_text())
    assert run["last_loss"] < run["first_loss"] / 4
    rows = [r for r in bench_rows["train"] if r["family"] == WARM_FAMILY]
    model = load_model(warm).eval()
    texts = [tokenizer.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True) for r in rows]
    outputs = _generate(model, tokenizer, texts, max_new_tokens=40, temperature=0.0)
    calls = [c for text, _ in outputs for c in parse_assistant_turn(text).calls]
    assert any(c.is_valid and c.name == "add" for c in calls), [t for t, _ in outputs[:4]]
    assert sum(ended for _, ended in outputs) >= len(outputs) // 2  # it learned to stop


def test_trl_sft_trains_and_saves(tmp_path: Path, bench: Path, tiny: Path) -> None:
    summary = run_sft(bench, tiny, tmp_path / "sft", SFTOptions(max_steps=2, limit=8, batch_size=4, logging_steps=1))
    assert summary["steps"] == 2 and summary["rows"] == 8
    assert len(summary["losses"]) == 2 and all(math.isfinite(x) for x in summary["losses"])
    before, after = load_model(tiny), load_model(tmp_path / "sft")
    changed = [
        name
        for (name, p), (_, q) in zip(before.named_parameters(), after.named_parameters(), strict=True)
        if not torch.equal(p, q)
    ]
    assert changed
    assert (tmp_path / "sft" / "tokenizer" / "tokenizer.json").exists()
    assert json.loads((tmp_path / "sft" / "run.json").read_text())["command"] == "sft"
