"""Reading and decoding a step's responses for the verl reward manager (`verl_manager.py`), fast and exact.

Reading. verl's reward loop hands the manager each sample as a one-row slice of the step
(`RewardLoopWorker.compute_score_batch` calls `data[i : i + 1]`), whose tensors are views of
the step's tensors. Reading each sample on its own (`data[-1]`, then the valid length from its
attention mask, then its ids) costs several tensor operations per sample, more than the
scoring's own per-sample work on a 1024-item step. `sample_row` finds where a sample's row
lies in the storage its tensors view, and `read_rows` reads every row of a batch that shares a
storage in one numpy gather (the valid lengths in one vectorised sum). A sample built on its
own (the agent loop's streaming reward builds one `DataProto` per trajectory) is read from its
own tensors the same way, through numpy rather than one torch operation after another.

verl's own reward managers call `tokenizer.decode` once per sample. For a Hugging Face fast
tokenizer that is a Python loop around the Rust tokenizer's `decode`; its `decode_batch` does
the same work in one call, outside the GIL and across cores, and is about three times faster
on a 1024-item step (bench/bench_verl_manager.py). It is used only when it returns exactly
what `batch_decode` would: a `TokenizersBackend` whose decoding methods are transformers' own
(a model-specific subclass may post-process) and that does not clean up tokenization spaces
(a Python step on top of the Rust decode). Any other tokenizer is called through its
`batch_decode`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ._verl_settings import Pending

__all__ = ["RowSpot", "batch_decoder", "read_rows", "sample_row"]

Decoder = Callable[[Sequence[list[int]]], list[str]]


def batch_decoder(tokenizer: Any, *, skip_special_tokens: bool) -> Decoder:
    """A function from token id lists to texts, equal to `tokenizer.batch_decode(ids, ...)`."""
    rust = _rust_decoder(tokenizer)
    if rust is not None:

        def decode_in_rust(ids: Sequence[list[int]]) -> list[str]:
            texts: list[str] = rust(list(ids), skip_special_tokens=skip_special_tokens)
            return texts

        return decode_in_rust

    def decode(ids: Sequence[list[int]]) -> list[str]:
        if not ids:  # transformers reads an empty batch as one empty sequence
            return []
        texts: list[str] = tokenizer.batch_decode(list(ids), skip_special_tokens=skip_special_tokens)
        return texts

    return decode


def _rust_decoder(tokenizer: Any) -> Callable[..., list[str]] | None:
    try:
        from transformers.tokenization_utils_base import PreTrainedTokenizerBase
        from transformers.tokenization_utils_tokenizers import TokenizersBackend
    except ImportError:  # transformers 4 (PreTrainedTokenizerFast) or none: the tokenizer's own path
        return None
    cls = type(tokenizer)
    if not isinstance(tokenizer, TokenizersBackend) or getattr(tokenizer, "clean_up_tokenization_spaces", True):
        return None
    own = (
        getattr(cls, "_decode", None) is TokenizersBackend._decode
        and getattr(cls, "decode", None) is PreTrainedTokenizerBase.decode
        and getattr(cls, "batch_decode", None) is PreTrainedTokenizerBase.batch_decode
    )
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decode_batch = getattr(backend, "decode_batch", None)
    return decode_batch if own and callable(decode_batch) else None


# ---------------------------------------------------------------------------- reading a step
class RowSpot(NamedTuple):
    """Where a sample's scored response lies in memory: the tensor that owns the storage of
    its token ids (`ids_root`) and of its attention mask (`mask_root`), each row's offset in
    that storage, and the rows' widths. Samples sharing roots are read together."""

    ids_root: Any
    mask_root: Any
    ids_offset: int
    mask_offset: int
    width: int
    mask_width: int


def sample_row(data: Any) -> RowSpot | None:
    """Where a `DataProto` sample's response is (its last sequence: multi-sequence samples
    score the last one, as verl's own managers do), or None for anything else, which the
    manager reads item by item (`data[-1]`).

    A one-row slice of a step (verl's `data[i : i + 1]`) is a view: its root is the step's
    tensor, shared by every slice, so `read_rows` reads a whole batch's rows of a step in one
    gather. A sample built on its own (the agent loop's) is its own root.
    """
    batch = getattr(data, "batch", None)
    if batch is None or not hasattr(data, "non_tensor_batch"):
        return None
    # A TensorDict's `get` and `[]` accept every kind of key and cost more per call than the
    # rest of the sample's reading; its tensors are in a plain dict (`_tensordict`, tensordict
    # 0.10), read directly when it is there, else through `get`.
    tensors = getattr(batch, "_tensordict", None)
    if not isinstance(tensors, dict):
        tensors = batch
    ids = _last_row(tensors.get("responses", None))
    mask = _last_row(tensors.get("attention_mask", None))
    if ids is None or mask is None:
        return None
    return RowSpot(ids[0], mask[0], ids[1], mask[1], ids[2], mask[2])


def _last_row(tensor: Any) -> tuple[Any, int, int] | None:
    # (root, offset of the last row in the root's storage, width), when that row's elements are
    # contiguous in a contiguous root: true of verl's row slices, of column slices (responses
    # cut out of input_ids) and of a sample's own tensors.
    if getattr(tensor, "ndim", None) != 2 or not tensor.shape[0]:
        return None
    rows, width = tensor.shape
    if width > 1 and tensor.stride(1) != 1:
        return None
    root = tensor._base if tensor._base is not None else tensor
    if not root.is_contiguous():
        return None
    offset = tensor.storage_offset() + (rows - 1) * tensor.stride(0) - root.storage_offset()
    return root, offset, width


def read_rows(samples: Sequence[Pending]) -> None:
    """Fill in `response_ids` of the samples located by `sample_row` (`Pending.row`): the rows
    sharing a root are gathered at once, and their valid lengths are one vectorised sum (the
    attention mask's sum over the response's positions, as verl's managers compute it)."""
    import numpy as np

    groups: dict[tuple[int, int, int, int], list[Pending]] = {}
    for sample in samples:
        spot = sample.row
        if spot is not None:
            key = (id(spot.ids_root), id(spot.mask_root), spot.width, spot.mask_width)
            groups.setdefault(key, []).append(sample)
    for members in groups.values():
        first = members[0].row
        assert first is not None
        ids_flat = first.ids_root.detach().cpu().numpy().reshape(-1)
        mask_flat = first.mask_root.detach().cpu().numpy().reshape(-1)
        if len(members) == 1:
            # A sample with tensors of its own (the agent loop's): plain slices, since the
            # gather's index arithmetic costs more than it saves for one row.
            mask = mask_flat[first.mask_offset : first.mask_offset + first.mask_width]
            length = int(mask[-first.width :].sum()) if first.width else 0
            members[0].response_ids = ids_flat[first.ids_offset : first.ids_offset + length].tolist()
            members[0].row = None
            continue
        spots = [m.row for m in members if m.row is not None]
        ids = ids_flat[np.array([s.ids_offset for s in spots])[:, None] + np.arange(first.width)]
        masks = mask_flat[np.array([s.mask_offset for s in spots])[:, None] + np.arange(first.mask_width)]
        valid = masks[:, -first.width :].sum(axis=1).tolist() if first.width else [0] * len(spots)
        for sample, row, length in zip(members, ids, valid, strict=True):
            sample.response_ids = row[:length].tolist()
            sample.row = None  # the tensors are no longer held
