"""The engine end to end: components per case, gates, batch behaviour, invariants."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mentor_client.results import batch_stats, item_result
from mentor_server.scoring import (
    COMPONENT_NAMES,
    ScoringEngine,
    item_from_dict,
    list_presets,
    resolve_spec,
)
from mentor_server.scoring.spec import RewardSpec
from mentor_server.scoring.types import ScoringConfigError

EOS = "<|im_end|>"


def call(name: str, **arguments: Any) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def response(value: Any) -> str:
    return f"<tool_response>\n{value}\n</tool_response>"


def rollout(*parts: str, answer: str | None = None, eos: bool = True) -> str:
    text = "\n".join(parts)
    if answer is not None:
        text += f"\nThe answer is \\boxed{{{answer}}}."
    return text + (EOS if eos else "")


TRACE = {
    "calls": [
        {"name": "add", "arguments": {"a": 2, "b": 3}, "result": 5},
        {"name": "multiply", "arguments": {"a": 5, "b": 4}, "result": 20},
    ],
    "answer": "20",
}
GOOD = rollout(call("add", a=2, b=3), response(5), call("multiply", a=5, b=4), response(20), answer="20")
SWAPPED_ARGS = rollout(call("add", a=3, b=2), response(5), call("multiply", a=4, b=5), response(20), answer="20")
HALLUCINATED = rollout(call("plus", a=2, b=3), response("error"), call("multiply", a=5, b=4), response(20), answer="20")
WRONG_ARGS = rollout(call("add", a=2, b=9), response(11), call("multiply", a=11, b=4), response(44), answer="44")
NO_CALLS = rollout(answer="20")
BAD_JSON = rollout('<tool_call>{"name": "add", "arguments": {"a": 2,</tool_call>', answer="20")
SCHEMA_BAD = rollout(
    call("add", a="two", b=3), response("error"), call("multiply", a=5, b=4), response(20), answer="20"
)
REDUNDANT = rollout(*(call("add", a=2, b=3) for _ in range(4)), call("multiply", a=5, b=4), answer="20")
# Results equal the teacher's although the arguments differ (a different but valid route).
OTHER_ROUTE = rollout(call("add", a=1, b=4), response(5), call("multiply", a=10, b=2), response(20), answer="20")

COMPONENT_CASES = [
    # (id, completion, component, expected score or None, comparison)
    ("outcome-correct", GOOD, "outcome", 1.0, "eq"),
    ("outcome-wrong", WRONG_ARGS, "outcome", 0.0, "eq"),
    ("outcome-no-answer", rollout(call("add", a=2, b=3)), "outcome", 0.0, "eq"),
    ("names-f1-perfect", GOOD, "tool_names", 1.0, "eq"),
    ("names-f1-hallucinated-half", HALLUCINATED, "tool_names", 0.5, "approx"),
    ("names-no-calls", NO_CALLS, "tool_names", 0.0, "eq"),
    ("arguments-exact", GOOD, "arguments", 1.0, "eq"),
    ("arguments-wrong-partial", WRONG_ARGS, "arguments", 1.0, "lt"),
    ("arguments-no-calls", NO_CALLS, "arguments", 0.0, "eq"),
    ("results-equal", GOOD, "tool_results", 1.0, "eq"),
    ("results-other-route-credited", OTHER_ROUTE, "tool_results", 1.0, "eq"),
    ("results-wrong", WRONG_ARGS, "tool_results", 0.0, "eq"),
    ("no-hallucination-clean", GOOD, "no_hallucination", 1.0, "eq"),
    ("no-hallucination-unknown-tool", HALLUCINATED, "no_hallucination", 0.0, "eq"),
    ("schema-valid-all", GOOD, "schema_valid", 1.0, "eq"),
    ("schema-invalid-string-number", SCHEMA_BAD, "schema_valid", 0.5, "approx"),
    ("schema-no-calls-not-applicable", NO_CALLS, "schema_valid", None, "eq"),
    ("efficiency-same-count", GOOD, "efficiency", 1.0, "eq"),
    ("efficiency-three-extra", REDUNDANT, "efficiency", 0.25, "approx"),
    ("format-clean", GOOD, "format", 1.0, "eq"),
    ("format-bad-json", BAD_JSON, "format", 0.75, "approx"),
    ("strict-exact", GOOD, "strict_sequence", 1.0, "eq"),
    ("strict-swapped-args", SWAPPED_ARGS, "strict_sequence", 0.0, "eq"),
]

ALL_COMPONENTS_SPEC = {
    "toolset": "calculator",
    "components": {name: {"weight": 0.0} for name in COMPONENT_NAMES},
}


@pytest.mark.parametrize(
    ("completion", "component", "expected", "comparison"),
    [pytest.param(c, comp, exp, cmp, id=i) for i, c, comp, exp, cmp in COMPONENT_CASES],
)
def test_component(completion: str, component: str, expected: float | None, comparison: str) -> None:
    engine = ScoringEngine(resolve_spec(spec=ALL_COMPONENTS_SPEC))
    result = engine.score_batch([item_from_dict({"completion": completion, "reference": TRACE})])[0]
    assert result.error is None, result.error
    score = result.components[component]
    if comparison == "eq":
        assert score == expected, result.reason
    elif comparison == "approx":
        assert score == pytest.approx(expected), result.reason
    else:
        assert score is not None and expected is not None and 0.0 < score < expected, result.reason


def test_names_only_reference_makes_argument_terms_not_applicable() -> None:
    engine = ScoringEngine(resolve_spec(spec=ALL_COMPONENTS_SPEC))
    item = item_from_dict({"completion": GOOD, "ground_truth": "20", "teacher_tools": ["add", "multiply"]})
    result = engine.score_batch([item])[0]
    assert result.components["arguments"] is None
    assert result.components["tool_results"] is None
    assert result.components["tool_names"] == 1.0


def test_flexible_prefers_the_teachers_behaviour_and_damps_tool_terms_when_wrong() -> None:
    engine = ScoringEngine(resolve_spec("flexible"))
    rewards = {
        name: engine.score_batch([item_from_dict({"completion": text, "reference": TRACE})])[0].reward
        for name, text in {
            "good": GOOD,
            "other_route": OTHER_ROUTE,
            "no_calls": NO_CALLS,
            "wrong": WRONG_ARGS,
            "hallucinated": HALLUCINATED,
        }.items()
    }
    assert rewards["good"] == pytest.approx(1.0)
    assert rewards["no_calls"] < rewards["other_route"] < rewards["good"]
    assert rewards["hallucinated"] < rewards["good"]
    assert rewards["wrong"] < rewards["no_calls"]  # a wrong answer earns less than a right one without tools


def test_flexible_redistributes_weight_for_names_only_references() -> None:
    engine = ScoringEngine(resolve_spec("flexible"))
    item = item_from_dict({"completion": GOOD, "ground_truth": "20", "teacher_tools": ["add", "multiply"]})
    assert engine.score_batch([item])[0].reward == pytest.approx(1.0)


def test_toolrl_extremes() -> None:
    engine = ScoringEngine(resolve_spec("toolrl"))
    exact, malformed = engine.score_batch(
        [
            item_from_dict({"completion": GOOD, "reference": TRACE}),
            item_from_dict({"completion": BAD_JSON, "reference": TRACE}),
        ]
    )
    assert exact.reward == pytest.approx(4.0)  # format 1 + correctness 3
    assert malformed.reward == pytest.approx(-3.0)  # format 0 + correctness -3


@pytest.mark.parametrize(
    ("item", "param"),
    [
        pytest.param({"completion": 5}, "completion", id="completion-number"),
        pytest.param({"completion": ["text"]}, "completion[0]", id="message-not-object"),
        pytest.param({"completion": "x", "teacher_tools": "add"}, "teacher_tools", id="teacher-tools-string"),
        pytest.param(
            {"completion": "x", "reference": {"calls": [{"arguments": {}}]}},
            "reference.calls[0].name",
            id="reference-call-without-name",
        ),
        pytest.param(
            {"completion": "x", "reference": {"calls": [{"name": "add", "arguments": [1]}]}},
            "reference.calls[0].arguments",
            id="reference-arguments-list",
        ),
        pytest.param({"completion": "x", "ground_truth": {"a": 1}}, "ground_truth", id="ground-truth-object"),
        pytest.param({"completion": "x", "finished": "yes"}, "finished", id="finished-string"),
    ],
)
def test_bad_items_name_the_field(item: dict, param: str) -> None:
    with pytest.raises(ScoringConfigError) as info:
        item_from_dict(item)
    assert info.value.param == param


def test_one_bad_item_never_fails_its_batch() -> None:
    engine = ScoringEngine(resolve_spec("mentor"))
    results = engine.score_dicts(
        [
            {"completion": GOOD, "ground_truth": "20", "teacher_tools": ["add", "multiply"]},
            {"completion": 42},
            {"completion": BAD_JSON, "ground_truth": "20", "teacher_tools": ["add"]},
        ]
    )
    assert results[0].reward == pytest.approx(1.1)
    assert results[1].reward is None and results[1].error is not None
    assert results[1].error.param == "items[1].completion"
    assert results[2].reward is not None  # malformed model output is scored, not an error
    stats = batch_stats([item_result(r) for r in results])
    assert stats.n_items == 3 and stats.n_errors == 1
    assert stats.tool_call_rate == 1.0


def test_batch_stats_rates() -> None:
    engine = ScoringEngine(resolve_spec("flexible"))
    results = engine.score_batch(
        [item_from_dict({"completion": text, "reference": TRACE}) for text in (GOOD, HALLUCINATED, NO_CALLS)]
    )
    stats = batch_stats([item_result(r) for r in results])
    assert stats.tool_call_rate == pytest.approx(2 / 3)
    assert stats.invalid_tool_rate == pytest.approx(1 / 4)
    assert set(stats.component_means) == set(resolve_spec("flexible").components)


# ---------------------------------------------------------------------------- properties
TOOL_NAMES = ["add", "subtract", "multiply", "divide", "sqrt", "plus", "search"]
numbers = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False), st.text(max_size=5))


@st.composite
def rollouts(draw: st.DrawFn) -> dict[str, Any]:
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["call", "call", "bad", "response", "text"]))
        if kind == "call":
            parts.append(call(draw(st.sampled_from(TOOL_NAMES)), a=draw(numbers), b=draw(numbers)))
        elif kind == "bad":
            parts.append("<tool_call>" + draw(st.text(max_size=20)) + "</tool_call>")
        elif kind == "response":
            parts.append(response(draw(numbers)))
        else:
            parts.append(draw(st.text(max_size=30)))
    answer = draw(st.one_of(st.none(), st.sampled_from(["20", "0.5", "\\frac{1}{2}", "x+1", ""]), st.text(max_size=8)))
    completion = rollout(*parts, answer=answer, eos=draw(st.booleans()))
    reference = draw(st.sampled_from([TRACE, None]))
    item: dict[str, Any] = {
        "completion": completion,
        "ground_truth": draw(st.sampled_from(["20", "0.5", ["5", "five"]])),
    }
    if reference is None:
        item["teacher_tools"] = draw(st.lists(st.sampled_from(TOOL_NAMES), max_size=3))
    else:
        item["reference"] = reference
    return item


PRESETS = {p.name: p for p in list_presets()}
# A generous judge time limit: this property is about rewards, and on a loaded machine a symbolic
# check (`x+1` against `five`) can pass the default 2 s, which is then the item's judge_timeout.
_PATIENT = {"components": {"outcome": {"options": {"judge": {"timeout_s": 120}}}}}
ENGINES = {
    name: ScoringEngine(resolve_spec(name, overrides=_PATIENT) if "outcome" in p.spec.components else p.spec)
    for name, p in PRESETS.items()
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(rollouts(), min_size=1, max_size=6),
    preset=st.sampled_from(sorted(PRESETS)),
    seed=st.randoms(),
)
def test_rewards_bounded_deterministic_and_independent_of_batch_order(
    batch: list[dict[str, Any]], preset: str, seed: Any
) -> None:
    engine = ENGINES[preset]
    low, high = PRESETS[preset].reward_range
    first = engine.score_dicts(batch)
    again = engine.score_dicts(batch)
    order = list(range(len(batch)))
    seed.shuffle(order)
    shuffled = engine.score_dicts([batch[i] for i in order])
    for position, index in enumerate(order):
        assert shuffled[position].reward == first[index].reward
    for a, b in zip(first, again, strict=True):
        assert a.reward == b.reward and a.components == b.components
        assert a.error is None, a.error
        assert a.reward is not None and low - 1e-9 <= a.reward <= high + 1e-9
        for value in a.components.values():
            assert value is None or 0.0 <= value <= 1.0


def test_engine_cache_reuses_engines_and_evicts_the_least_recent() -> None:
    from mentor_server.scoring import EngineCache, resolve_engine_config

    cache = EngineCache(size=2)
    mentor = cache.get(resolve_engine_config(preset="mentor"))
    assert cache.get(resolve_engine_config(preset="mentor")) is mentor  # an equal config, built again
    inline = cache.get(
        resolve_engine_config(preset="mentor", tools=[{"name": "add", "parameters": {"type": "object"}}])
    )
    assert inline is not mentor and inline.toolset is not None and inline.toolset.names == {"add"}
    llama = cache.get(resolve_engine_config(preset="mentor", eos_tokens=["<|eot_id|>"]))
    assert llama is not mentor and llama.eos_tokens == ("<|eot_id|>",)
    assert cache.get(resolve_engine_config(preset="mentor")) is not mentor  # evicted (least recent)


def test_a_judge_that_cannot_decide_is_the_items_error_never_a_wrong_answer() -> None:
    # A symbolic check that runs out of time: not "wrong" (which would still pay tool bonuses).
    spec = resolve_spec("mentor", overrides={"components": {"outcome": {"options": {"judge": {"timeout_s": 1e-9}}}}})
    engine = ScoringEngine(spec)
    text = '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 1}}</tool_call> \\boxed{x + 1}<|im_end|>'
    timed_out, plain = engine.score_batch(
        [
            item_from_dict({"completion": text, "ground_truth": "1 + x", "teacher_tools": ["add"]}),
            item_from_dict({"completion": text.replace("x + 1", "7"), "ground_truth": "8", "teacher_tools": ["add"]}),
        ]
    )
    assert timed_out.reward is None and timed_out.error is not None
    assert timed_out.error.type == "judge_timeout"
    assert plain.error is None and plain.reward == pytest.approx(0.16)  # a decided "wrong" still scores


def test_a_judge_exception_is_the_items_error(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ScoringEngine(resolve_spec("sparse"))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in a judge path")

    monkeypatch.setattr(engine.judge, "_judge", broken)
    result = engine.score_batch([item_from_dict({"completion": "\\boxed{2}<|im_end|>", "ground_truth": "2"})])[0]
    assert result.reward is None and result.error is not None and result.error.type == "judge_error"
    assert "a bug in a judge path" in result.error.message


@pytest.mark.parametrize("answer", ["(99999^{99999})^{99}", "99999^{99999}", "(9^{999})^{999}"])
def test_a_power_too_large_to_evaluate_never_reaches_the_symbolic_check(answer: str) -> None:
    # One uninterruptible big-integer power would hold the process for minutes: it is refused.
    engine = ScoringEngine(resolve_spec("sparse"))
    item = item_from_dict({"completion": f"\\boxed{{{answer}}}<|im_end|>", "ground_truth": "5"})
    result = engine.score_batch([item])[0]
    assert result.error is None and result.reward == 0.1
    assert "too complex to check" in result.reason


def test_a_spec_that_never_reads_the_answer_does_not_judge_it() -> None:
    # Tools only (no outcome, no wrong-answer scaling): the verdict is unused, so it is not asked
    # for, and a judge that could not decide cannot fail the item.
    text = '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 1}}</tool_call> \\boxed{x + 1}<|im_end|>'
    item = item_from_dict({"completion": text, "ground_truth": "1 + x"})
    tools_only = RewardSpec.from_dict({"toolset": "calculator", "components": {"no_hallucination": {"weight": 1.0}}})
    engine = ScoringEngine(tools_only)
    result = engine.score_batch([item])[0]
    assert result.error is None and result.reward == 1.0
    assert engine.judge._verdicts.get(("x + 1", "1 + x")) is None  # never judged
    # Logged with weight 0, the outcome is still computed, so its judge's failure is the item's.
    logged = RewardSpec.from_dict(
        {
            "toolset": "calculator",
            "components": {
                "no_hallucination": {"weight": 1.0},
                "outcome": {"weight": 0, "options": {"judge": {"timeout_s": 1e-9}}},
            },
        }
    )
    failed = ScoringEngine(logged).score_batch([item])[0]
    assert failed.error is not None and failed.error.type == "judge_timeout"
