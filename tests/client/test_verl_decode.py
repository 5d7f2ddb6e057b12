"""The verl manager's decoding: one call into the Rust tokenizer when that gives exactly what
`batch_decode` gives, the tokenizer's own `batch_decode` otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from mentor_client.adapters._verl_decode import batch_decoder

pytest.importorskip("transformers")

CORPUS = [
    '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>',
    "So the answer is \\boxed{5}. Das Ergebnis ist fünf — 五.",
    "The weather in Paris is sunny; 12.5 °C.",
]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from mentor_trainer.tiny import build_tokenizer

    return build_tokenizer(CORPUS, vocab_size=300)


def _ids(tokenizer: Any) -> list[list[int]]:
    eos = tokenizer.eos_token_id
    encoded = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in CORPUS]
    # finished and truncated responses, an EOS in the middle, a lone EOS, an empty response
    return [*([*ids, eos] for ids in encoded), encoded[0][:5], [*encoded[1][:3], eos, *encoded[2][:4]], [eos], []]


@pytest.mark.parametrize("skip", [True, False], ids=["skip-special", "keep-special"])
def test_the_rust_path_is_taken_and_equals_batch_decode(tokenizer: Any, skip: bool) -> None:
    decode = batch_decoder(tokenizer, skip_special_tokens=skip)
    assert decode.__name__ == "decode_in_rust"
    ids = _ids(tokenizer)
    assert decode(ids) == tokenizer.batch_decode(ids, skip_special_tokens=skip)
    assert (tokenizer.eos_token in decode(ids)[0]) is not skip


def test_cleaning_up_spaces_keeps_the_tokenizers_own_path(tokenizer: Any) -> None:
    import copy

    cleaning = copy.deepcopy(tokenizer)
    cleaning.clean_up_tokenization_spaces = True
    decode = batch_decoder(cleaning, skip_special_tokens=True)
    assert decode.__name__ == "decode"
    ids = _ids(cleaning)
    assert decode(ids) == cleaning.batch_decode(ids, skip_special_tokens=True)


def test_a_subclass_that_post_processes_keeps_its_own_path(tokenizer: Any) -> None:
    class Shouting(type(tokenizer)):  # type: ignore[misc]
        def _decode(self, token_ids: Any, skip_special_tokens: bool = False, **kwargs: Any) -> str:
            return str(super()._decode(token_ids, skip_special_tokens=skip_special_tokens, **kwargs)).upper()

    shouting = Shouting(tokenizer_object=tokenizer.backend_tokenizer, eos_token=tokenizer.eos_token)
    decode = batch_decoder(shouting, skip_special_tokens=True)
    assert decode.__name__ == "decode"
    assert decode(_ids(shouting)[:1]) == [CORPUS[0].upper()]


def test_any_object_with_batch_decode_works_and_an_empty_batch_is_empty() -> None:
    class Chars:
        def batch_decode(self, ids: list[list[int]], skip_special_tokens: bool = True) -> list[str]:
            return ["".join(map(chr, seq)) for seq in ids]

    decode = batch_decoder(Chars(), skip_special_tokens=True)
    assert decode([[104, 105]]) == ["hi"]
    assert decode([]) == []


# ---------------------------------------------------------------------------- reading a step
def _per_sample(data: Any) -> list[int]:
    """What verl's own managers read: `data[-1]`, its valid length, its ids."""
    item = data[-1]
    ids = item.batch["responses"]
    valid = int(item.batch["attention_mask"][-ids.shape[-1] :].sum())
    return list(ids[:valid].tolist())


def _step(rows: int = 6, width: int = 5) -> Any:
    import numpy as np
    import torch

    verl = pytest.importorskip("verl")
    lengths = [0, 1, 3, width, 2, 4][:rows]
    responses = torch.arange(1, rows * width + 1).reshape(rows, width)  # a view of a 1-D tensor
    mask = torch.tensor([[1, 1] + [1] * n + [0] * (width - n) for n in lengths])
    return verl.DataProto.from_dict(
        tensors={"responses": responses, "attention_mask": mask, "input_ids": torch.cat([mask[:, :2], responses], 1)},
        non_tensors={"extra_info": np.array([{"index": i} for i in range(rows)], dtype=object)},
    )


def _read(samples: list[Any]) -> tuple[list[list[int]], int]:
    """The ids `read_rows` reads, and the number of distinct roots they were read from."""
    from mentor_client.adapters._verl_decode import read_rows, sample_row
    from mentor_client.adapters._verl_settings import Pending

    pending, roots = [], set()
    for data in samples:
        spot = sample_row(data)
        assert spot is not None
        roots.add(id(spot.ids_root))
        pending.append(Pending([], None, {}, None, None, None, row=spot))  # type: ignore[arg-type]
    read_rows(pending)
    assert all(p.row is None for p in pending)  # the tensors are let go
    return [p.response_ids for p in pending], len(roots)


def test_step_slices_are_read_at_once_and_equal_verls_per_sample_reading() -> None:
    data = _step()
    samples = [data[i : i + 1] for i in range(len(data))]  # RewardLoopWorker.compute_score_batch
    ids, roots = _read(samples)
    assert roots == 1  # one gather for the whole step
    assert ids == [_per_sample(s) for s in samples]
    assert ids[0] == [] and len(ids[3]) == 5  # an empty and a full-length response


def test_chunks_of_a_padded_step_keep_their_rows() -> None:
    data = _step()
    chunks = data.chunk(2)  # RewardLoopManager.compute_rm_score: one chunk per worker
    samples = [chunk[i : i + 1] for chunk in chunks for i in range(len(chunk))]
    ids, roots = _read(samples)
    assert roots == 1 and ids == [_per_sample(s) for s in samples]


def test_samples_that_are_not_row_slices_are_read_as_verl_reads_them() -> None:
    data = _step()
    # A sample built on its own (the agent loop), several sequences in one sample (the last one
    # is scored), responses that are a column slice of another tensor, and a copied step.
    own = data[2:3]
    own.batch = own.batch.clone()
    multi = data[1:4]
    columns = data[0:2]
    columns.batch["responses"] = columns.batch["input_ids"][:, 2:]
    copied = data[4:6]
    copied.batch = copied.batch.clone()
    samples = [own, multi, columns, copied]
    ids, _ = _read(samples)
    assert ids == [_per_sample(s) for s in samples]


def test_anything_else_is_left_to_verls_item_reading() -> None:
    from types import SimpleNamespace

    from mentor_client.adapters._verl_decode import sample_row

    assert sample_row([SimpleNamespace(batch={})]) is None  # not a DataProto
    data = _step()
    no_mask = data[0:1]
    del no_mask.batch["attention_mask"]
    assert sample_row(no_mask) is None
    import torch

    strided = data[0:1]
    strided.batch["responses"] = torch.arange(30).reshape(6, 5).T[:1]  # a row whose elements are 5 apart
    assert strided.batch["responses"].stride(1) != 1
    assert sample_row(strided) is None
