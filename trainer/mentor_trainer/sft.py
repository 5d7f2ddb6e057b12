"""Supervised fine-tuning on teacher traces: the SFT baseline (TRL `SFTTrainer`) and a plain-torch warm start.

`run_sft` trains on the benchmark's `messages` column (the teacher's whole conversation: tool calls,
tool results, boxed answer) with TRL, loss on the assistant turns only (the rows are tokenized here
with an assistant mask, from the exact JSONL values). `overfit` is a deliberately small plain-torch
loop for tests and demos: a randomly initialised model never writes a valid `<tool_call>`, so GRPO
has nothing to reward until the model has seen the format; a few seconds of this on a handful of
traces fixes that without TRL's start-up cost. Both mask out everything but assistant text, the
end-of-turn token included (so the model learns to stop).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .runtime import checkpointing_kwargs, configure_offline
from .tracking import Tracking, merge_lora, resume_checkpoint, shared_run_id

_ASSISTANT_OPEN = "<|im_start|>assistant\n"
_TURN_CLOSE = "<|im_end|>"


@dataclass(frozen=True, slots=True)
class SFTOptions:
    """CPU-friendly defaults; on a GPU raise `batch_size` and `max_steps`."""

    split: str = "train"
    limit: int | None = None
    max_steps: int = 50
    epochs: float = 1.0
    learning_rate: float = 2e-3
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 2048
    logging_steps: int = 5
    seed: int = 0
    use_cpu: bool | None = None  # None: the GPU when there is one
    tracking: Tracking = field(default_factory=Tracking)  # trackers, checkpoints, resume, LoRA (TRL SFT only)


def sft_dataset(tokenizer: Any, data_dir: str | Path, split: str = "train", limit: int | None = None) -> Any:
    """The split's teacher conversations, tokenized, with an assistant-token mask.

    Tokenized here from the JSONL rows (exact Python values: `datasets`' JSON type would round
    tool arguments) with the tokenizer's own chat template, the text GRPO and `eval` render;
    TRL builds the labels from `assistant_masks` (assistant text and its end-of-turn token).
    """
    from datasets import Dataset

    from .benchmark import load_rows

    encoded = [
        assistant_mask(tokenizer, tokenizer.apply_chat_template(r["messages"], tokenize=False))
        for r in load_rows(data_dir, split, limit)
    ]
    return Dataset.from_dict({"input_ids": [ids for ids, _ in encoded], "assistant_masks": [m for _, m in encoded]})


def run_sft(
    data_dir: str | Path, model_path: str | Path, out: str | Path, options: SFTOptions | None = None
) -> dict[str, Any]:
    """Train with TRL's SFTTrainer and save to `out/model` + `out/tokenizer`; return a summary."""
    configure_offline()
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    from .runtime import cuda_available, load_model, load_tokenizer, save_model, seed_everything

    options = options or SFTOptions()
    tracking = options.tracking
    tracking.check(out)
    resume_from = resume_checkpoint(out, tracking.resume) if tracking.resume is not None else None
    seed_everything(options.seed)
    use_cpu = (not cuda_available()) if options.use_cpu is None else options.use_cpu
    tokenizer = load_tokenizer(model_path)
    model = load_model(model_path)
    dataset = sft_dataset(tokenizer, data_dir, options.split, options.limit)
    config = SFTConfig(
        output_dir=str(Path(out) / "checkpoints"),
        max_steps=options.max_steps,
        num_train_epochs=options.epochs,
        learning_rate=options.learning_rate,
        per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        max_length=options.max_length,
        logging_steps=options.logging_steps,
        **tracking.config_kwargs(None),
        use_cpu=use_cpu,
        bf16=not use_cpu,
        fp16=False,
        seed=options.seed,
        dataloader_num_workers=0,
        lr_scheduler_type="constant_with_warmup",
        # TRL turns activation checkpointing on by default; on CPU and small models it only costs time.
        **checkpointing_kwargs(SFTConfig, not use_cpu),
        warmup_steps=min(5, max(options.max_steps // 10, 0)),
    )
    config.run_name = shared_run_id(out, None, "sft", resume=resume_from is not None)  # names the tracker's run
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=tracking.lora.peft_config() if tracking.lora is not None else None,
    )
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    elapsed = time.perf_counter() - started
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    summary = {
        "command": "sft",
        "data": str(data_dir),
        "base_model": str(model_path),
        "options": asdict(options),
        "rows": len(dataset),
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "losses": losses,
        "seconds": round(elapsed, 2),
        "device": "cpu" if use_cpu else "cuda",
        "run_id": config.run_name,
        "resumed_from": str(resume_from) if resume_from is not None else None,
    }
    trained, adapter = merge_lora(trainer.model, out)
    summary["adapter"] = str(adapter) if adapter is not None else None
    save_model(trained, tokenizer, out, summary)
    return summary


# ---------------------------------------------------------------------------- plain torch
def _assistant_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = text.find(_ASSISTANT_OPEN)
    while start != -1:
        body = start + len(_ASSISTANT_OPEN)
        end = text.find(_TURN_CLOSE, body)
        end = len(text) if end == -1 else end + len(_TURN_CLOSE)
        spans.append((body, end))
        start = text.find(_ASSISTANT_OPEN, end)
    return spans


def _mask(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[int]:
    return [int(any(s <= a and b <= e and b > a for s, e in spans)) for a, b in offsets]


def assistant_mask(tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    """Token ids of `text` and a 0/1 mask that is 1 on assistant text and its end-of-turn token."""
    encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    return list(encoded["input_ids"]), _mask(encoded["offset_mapping"], _assistant_spans(text))


def assistant_masks(tokenizer: Any, texts: list[str]) -> list[tuple[list[int], list[int]]]:
    """`assistant_mask` of many texts, each distinct system block tokenized once.

    The end-of-turn token is a special token, so tokenization never merges across it: the text up to
    the first one (the system prompt, shared by every row of a toolset) and the rest tokenize
    independently. A phrase-merging BPE is slow on the long tool block, hence the cache.
    """
    if not texts:
        return []
    cuts = []
    for text in texts:
        cut = text.find(_TURN_CLOSE)
        cuts.append(len(text) if cut == -1 else cut + len(_TURN_CLOSE))
    unique = list(dict.fromkeys(text[:cut] for text, cut in zip(texts, cuts, strict=True)))
    encoded_heads = tokenizer(unique, return_offsets_mapping=True, add_special_tokens=False)
    heads = {
        head: (list(ids), [tuple(o) for o in offsets])
        for head, ids, offsets in zip(unique, encoded_heads["input_ids"], encoded_heads["offset_mapping"], strict=True)
    }
    tails = tokenizer(
        [text[cut:] for text, cut in zip(texts, cuts, strict=True)],
        return_offsets_mapping=True,
        add_special_tokens=False,
    )
    result = []
    for text, cut, ids, offsets in zip(texts, cuts, tails["input_ids"], tails["offset_mapping"], strict=True):
        head_ids, head_offsets = heads[text[:cut]]
        all_offsets = [*head_offsets, *((a + cut, b + cut) for a, b in offsets)]
        result.append(([*head_ids, *ids], _mask(all_offsets, _assistant_spans(text))))
    return result


def cache_argument(model: Any) -> str:
    """The forward() keyword for a KV cache: `cache` in recent transformers, `past_key_values` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _common_prefix(sequences: list[list[int]]) -> int:
    first = sequences[0]
    length = min(len(s) for s in sequences)
    for other in sequences[1:]:
        i = 0
        while i < length and other[i] == first[i]:
            i += 1
        length = i
    return length


def overfit(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, Any]]],
    *,
    steps: int | None = None,
    seconds: float | None = None,
    learning_rate: float = 3e-3,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = False,
    log_every: int | None = None,
) -> list[float]:
    """Plain-torch teacher forcing on `conversations` (assistant tokens only); returns the losses.

    Stops after `steps` optimizer steps or `seconds` of wall time, whichever comes first (at
    least one must be given). The model is trained in place and left in eval mode.

    Every conversation of a toolset starts with the same long system prompt (the tool block is
    most of the tokens) and carries no loss there, so each step runs that shared prefix once,
    without gradients, and feeds its key/value cache to the batch. Only the short suffixes are
    back-propagated; the weights still learn everything the assistant turns need from the
    prefix (tests check that the loss equals the full-sequence loss).
    """
    import torch
    from transformers import DynamicCache

    if steps is None and seconds is None:
        raise ValueError("give steps or seconds")
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    encoded = assistant_masks(tokenizer, [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations])
    pad = int(tokenizer.pad_token_id)
    cache_kwarg = cache_argument(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    # A short warm-up, then cosine decay to a tenth over the step budget, or over the time budget when
    # only that is given: a tiny model at a high rate otherwise ends wherever its last oscillation left it.
    warmup = max(1, min(10, (steps or 100) // 10))
    clock_start = time.perf_counter()

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if steps is not None:
            progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        elif seconds:
            progress = min(1.0, (time.perf_counter() - clock_start) / seconds)
        else:
            return 1.0
        return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()
    started = time.perf_counter()
    total = steps if steps is not None else math.inf
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="overfit", unit="step")
    while len(losses) < total and (seconds is None or time.perf_counter() - started < seconds):
        order = torch.randperm(len(encoded), generator=generator)[:batch_size].tolist()
        batch = [encoded[i] for i in order]
        # The first supervised token is predicted from the position before it, so the cached
        # prefix must stop one token earlier (the suffix's logits cover every label).
        first_label = min(mask.index(1) if 1 in mask else len(mask) for _, mask in batch)
        prefix = min(_common_prefix([ids for ids, _ in batch]), first_label - 1)
        cache = None
        if prefix >= 16:
            with torch.no_grad():
                cache = DynamicCache(config=model.config)
                model(
                    input_ids=torch.tensor([batch[0][0][:prefix]], device=device),
                    use_cache=True,
                    **{cache_kwarg: cache},
                )
            cache.batch_repeat_interleave(len(batch))
        else:
            prefix = 0
        width = max(len(ids) for ids, _ in batch) - prefix
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        attention = torch.zeros((len(batch), prefix + width), dtype=torch.long)
        attention[:, :prefix] = 1
        for row, (ids, mask) in enumerate(batch):
            tail, tail_mask = ids[prefix:], mask[prefix:]
            input_ids[row, : len(tail)] = torch.tensor(tail)
            attention[row, prefix : prefix + len(tail)] = 1
            labels[row, : len(tail)] = torch.tensor([t if m else -100 for t, m in zip(tail, tail_mask, strict=True)])
        out = model(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            use_cache=cache is not None,
            **({cache_kwarg: cache} if cache is not None else {}),
        )
        logits = out.logits[:, :-1].float()
        target = labels[:, 1:].to(device)
        loss: Any = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if log_every and len(losses) % log_every == 0:
            recent = losses[-log_every:]
            print(
                f"      sft step {len(losses)}: loss {sum(recent) / len(recent):.3f} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if bar is not None:
        bar.close()
    model.eval()
    return losses


def run_overfit(
    data_dir: str | Path,
    model_path: str | Path,
    out: str | Path,
    *,
    split: str = "train",
    limit: int = 64,
    families: tuple[str, ...] | None = None,
    steps: int | None = None,
    seconds: float | None = 30.0,
    learning_rate: float = 3e-3,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """`overfit` on the first `limit` teacher conversations of a split (optionally of some task
    families only: one family's fixed format is learned in far fewer steps), then save like `run_sft`."""
    configure_offline()
    from .benchmark import load_rows
    from .runtime import cuda_available, load_model, load_tokenizer, save_model, seed_everything

    seed_everything(seed)
    tokenizer = load_tokenizer(model_path)
    model = load_model(model_path, "cuda" if cuda_available() else "cpu")
    rows = load_rows(data_dir, split)
    if families:
        rows = [r for r in rows if r.get("family") in families]
        if not rows:
            raise ValueError(f"no rows of families {', '.join(families)} in split {split!r}")
    rows = rows[:limit]
    started = time.perf_counter()
    losses = overfit(
        model,
        tokenizer,
        [r["messages"] for r in rows],
        steps=steps,
        seconds=seconds,
        learning_rate=learning_rate,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    summary = {
        "command": "sft --plain-torch-overfit",
        "data": str(data_dir),
        "base_model": str(model_path),
        "rows": len(rows),
        "steps": len(losses),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "seconds": round(time.perf_counter() - started, 2),
    }
    save_model(model.to("cpu"), tokenizer, out, summary)
    return summary
