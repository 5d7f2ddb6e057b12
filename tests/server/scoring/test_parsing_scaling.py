"""Every parser and `extract_boxed` stays (near) linear in its input on adversarial shapes.

Each case builds an input of size n and one of size 8n, both shaped the way a hostile or broken
model output is (thousands of unclosed tags, bare `\\boxed` mentions, broken calls after many
tags, long call lists), and checks that reading the large one costs less than 3x the cost of
reading the small one 8 times. A quadratic path costs ~8x, a linear one ~1x, so the bound
leaves room for a noisy machine while still catching each super-linear path the service had
(`extract_boxed` on 100k mentions took 22 s; the Mistral parser on 40k tags, the pythonic
parser on 2,000 calls and a user turn of 16k unclosed `<tool_response>` were quadratic).
Costs are CPU time (`time.process_time`), best of 3, so other processes do not count.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from mentor_server.scoring.answers import extract_boxed, strip_boxed
from mentor_server.scoring.parsing import parse_completion

FACTOR = 8
BOUND = 3.0  # the large input may cost up to BOUND x (FACTOR x the small one)


def _cpu(fn: Callable[[Any], object], arg: Any, repeat: int) -> float:
    best = float("inf")
    gc.collect()
    gc.disable()  # a collection landing in one run but not the other is noise, not growth
    try:
        for _ in range(3):
            start = time.process_time()
            for _ in range(repeat):
                fn(arg)
            best = min(best, time.process_time() - start)
    finally:
        gc.enable()
    return best


def _parser(name: str) -> Callable[[Any], object]:
    return lambda completion: parse_completion(completion, parser=name)


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "done"}]


_PAD = "x" * 400
_CALL_GAP_RESPONSE = '<tool_call>{"name": "a"}</tool_call>x<tool_response>1</tool_response>'

# (id, function, input of size n, n): n is chosen so the large input takes tens of milliseconds.
CASES: list[tuple[str, Callable[[Any], object], Callable[[int], Any], int]] = [
    ("boxed-bare-mentions", extract_boxed, lambda n: "\\boxed " * n, 1000),
    ("fbox-bare-mentions", extract_boxed, lambda n: "\\fbox " * n + "\\boxed{1}", 1000),
    ("boxed-unclosed", extract_boxed, lambda n: "x \\boxed{" * n, 1000),
    ("boxed-escaped-braces", extract_boxed, lambda n: "\\boxed{" + "\\{" * n + "}", 1000),
    ("strip-boxed-unbalanced", strip_boxed, lambda n: "\\boxed{" + "{}" * n, 1000),
    ("hermes-unclosed-calls", _parser("hermes"), lambda n: "<tool_call>" * n, 500),
    ("hermes-unclosed-responses", _parser("hermes"), lambda n: "<tool_response>" * n, 1000),
    ("hermes-broken-json", _parser("hermes"), lambda n: '<tool_call>{"name": "x</tool_call>' * n, 250),
    ("hermes-stray-closes", _parser("hermes"), lambda n: "</tool_call></tool_response>" * n, 500),
    ("hermes-text-gaps", _parser("hermes"), lambda n: _CALL_GAP_RESPONSE * n, 125),
    ("hermes-unclosed-think", _parser("hermes"), lambda n: "<think><|im_start|>" * n, 1000),
    ("user-turn-unclosed-responses", _parser("openai"), lambda n: _messages("<tool_response>" * n), 1000),
    ("many-tool-messages", _parser("openai"), lambda n: [{"role": "tool", "content": "1"}] * n, 500),
    # Text between the tags makes a decode error's cost (counting lines up to it) visible.
    ("mistral-bare-tags", _parser("mistral"), lambda n: ("[TOOL_CALLS]" + _PAD) * n, 100),
    ("mistral-broken-lists", _parser("mistral"), lambda n: ("[TOOL_CALLS][" + _PAD) * n, 300),
    ("mistral-broken-named", _parser("mistral"), lambda n: ('[TOOL_CALLS]f[ARGS]{"a": ' + _PAD) * n, 300),
    ("mistral-strings-over-tags", _parser("mistral"), lambda n: ('[TOOL_CALLS]["' + _PAD) * n, 300),
    ("mistral-unclosed-results", _parser("mistral"), lambda n: "[TOOL_RESULTS]x[/TOOL_RESULTS]" * n, 500),
    ("llama3-headers", _parser("llama3"), lambda n: "<|start_header_id|>assistant<|end_header_id|>{" * n, 250),
    ("llama3-call-chain", _parser("llama3"), lambda n: "<|python_tag|>" + '{"name": "a", "parameters": {}};' * n, 250),
    ("pythonic-call-list", _parser("pythonic"), lambda n: "[" + ", ".join(["f(a=1)"] * n) + "]", 100),
    ("pythonic-fence-whitespace", _parser("pythonic"), lambda n: "```" + " " * n + "x", 1000),
    ("pythonic-prose-then-lists", _parser("pythonic"), lambda n: "x" + "\n[f(" * n, 500),
    ("auto-number-list", _parser("auto"), lambda n: "[" + "1," * n + "1]", 1000),
]


@pytest.mark.parametrize(("fn", "make", "n"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_cost_grows_linearly(fn: Callable[[Any], object], make: Callable[[int], Any], n: int) -> None:
    small, large = make(n), make(FACTOR * n)
    fn(small)  # imports, regex compilation, caches
    small_cost = _cpu(fn, small, FACTOR)
    large_cost = _cpu(fn, large, 1)
    # 2 ms of slack: timer granularity when both costs are tiny.
    assert large_cost <= BOUND * small_cost + 0.002, (
        f"{FACTOR}x the input cost {large_cost / max(small_cost, 1e-9):.1f}x "
        f"({small_cost * 1e3:.1f} ms for {FACTOR} small inputs, {large_cost * 1e3:.1f} ms for one large)"
    )


def test_auto_does_not_build_a_syntax_tree_for_a_long_number_list() -> None:
    # A 5 MB `[1,1,...]` under `auto` used to reach `ast.parse` (2.5 GB of worker memory).
    text = "[" + "1," * 500_000 + "1]"
    tracemalloc.start()
    try:
        rollout = parse_completion(text, parser="auto")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rollout.calls == ()
    assert peak < 20 * len(text), f"peak {peak / 2**20:.0f} MiB for {len(text) / 2**20:.1f} MiB of text"


@pytest.mark.parametrize("parser", ["pythonic", "auto"])
def test_a_call_list_past_the_limit_is_one_malformed_call(parser: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mentor_server.scoring.parsing import pythonic

    assert pythonic.MAX_CALL_LIST_CHARS >= 64 * 1024  # real call lists fit
    monkeypatch.setattr(pythonic, "MAX_CALL_LIST_CHARS", 800)  # the rule, at a size that is quick to test

    def call_list(calls: int) -> str:
        return "[" + ", ".join(["f(a=1)"] * calls) + "]"  # 8 characters a call

    rollout = parse_completion(call_list(101), parser=parser)
    assert [c.error for c in rollout.calls] == ["call list too long to read (808 > 800 characters)"]
    assert rollout.parser == "pythonic"
    just_under = parse_completion(call_list(99), parser=parser)
    assert len(just_under.calls) == 99
    assert all(c.is_valid and c.raw == "f(a=1)" and c.arguments == {"a": 1} for c in just_under.calls)
