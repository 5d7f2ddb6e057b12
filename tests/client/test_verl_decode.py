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
