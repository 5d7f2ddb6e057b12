"""`LocalBackend` against the real in-process engine (the `server` extra must be installed).

Not skipped when the engine is missing: the project installs it, and a missing engine should
fail here loudly rather than hide.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import pickle
import time
from typing import Any

import pytest

from mentor_client import BadRequestError, LocalBackend, RewardBackend, trl_reward_func
from mentor_client.adapters import verl
from mentor_client.results import batch_stats, item_result
from mentor_server.scoring import ScoringEngine, list_presets, resolve_spec

EOS = "<|im_end|>"


def hermes(name: str, **arguments: Any) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


ITEMS: list[dict[str, Any]] = [
    {  # right tool, right answer
        "completion": hermes("add", a=2, b=3) + "<tool_response>5</tool_response> so \\boxed{5}" + EOS,
        "ground_truth": "5",
        "teacher_tools": ["add"],
    },
    {  # right tool, wrong answer
        "completion": hermes("add", a=2, b=3) + "<tool_response>5</tool_response> so \\boxed{6}" + EOS,
        "ground_truth": "5",
        "teacher_tools": ["add"],
    },
    {  # hallucinated tool
        "completion": hermes("teleport", a=1) + " \\boxed{5}" + EOS,
        "ground_truth": "5",
        "teacher_tools": ["add"],
    },
    {  # truncated: no EOS
        "completion": hermes("add", a=2, b=3) + " \\boxed{5}",
        "ground_truth": "5",
        "teacher_tools": ["add"],
    },
    {  # TRL's conversational tool loop, termination told explicitly
        "completion": [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}],
            },
            {"role": "tool", "name": "add", "content": "5"},
            {"role": "assistant", "content": "\\boxed{5}"},
        ],
        "ground_truth": "5",
        "teacher_tools": ["add"],
        "finished": True,
    },
    {  # a reference the engine cannot read: an item error, not a failed batch
        "completion": "\\boxed{5}" + EOS,
        "reference": {"calls": [{"name": ""}]},
    },
]


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    return LocalBackend()


@pytest.mark.parametrize("preset", ["mentor", "sparse", "mentor-f1"])
def test_scores_equal_the_engine_directly(backend: LocalBackend, preset: str) -> None:
    response = backend.score(ITEMS, preset=preset)
    expected = ScoringEngine(resolve_spec(preset)).score_dicts(ITEMS)
    assert [r.reward for r in response.results] == [e.reward for e in expected]
    assert [r.components for r in response.results] == [e.components for e in expected]
    assert response.stats == batch_stats([item_result(e) for e in expected])
    assert response.spec_hash == resolve_spec(preset).hash
    assert response.preset == preset


def test_rewards_order_as_the_mentor_formula_says(backend: LocalBackend) -> None:
    right, wrong, hallucinated, truncated, conversational, broken = backend.score(ITEMS, preset="mentor").results
    assert right.reward is not None and wrong.reward is not None and hallucinated.reward is not None
    assert right.reward > hallucinated.reward and right.reward > wrong.reward
    assert conversational.reward == right.reward
    assert truncated.reward is not None and truncated.reward < right.reward
    assert broken.reward is None and broken.error is not None
    assert broken.error.param is not None and "reference" in broken.error.param
    assert broken.n_tool_calls is None  # as the service says it: no facts for an unscored item
    assert hallucinated.n_invalid_tools == 1


def test_discovery_matches_the_engine(backend: LocalBackend) -> None:
    presets = {p.name: p for p in backend.presets().presets}
    assert list(presets) == [p.name for p in list_presets()]
    assert presets["mentor"].spec_hash == backend.validate_spec(preset="mentor").spec_hash
    calculator = {t.name: t for t in backend.toolsets().toolsets}["calculator"]
    assert "add" in calculator.executable


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"preset": "no-such-preset"}, "preset"),
        ({"spec": {"components": {"bogus": {"weight": 1}}}}, "components"),
        ({"preset": "mentor", "spec": {"components": {"outcome": {"weight": 1}}}}, "spec"),
    ],
    ids=["unknown-preset", "unknown-component", "preset-and-spec"],
)
def test_bad_configuration_is_a_bad_request_naming_the_field(
    backend: LocalBackend, kwargs: dict[str, Any], param: str
) -> None:
    with pytest.raises(BadRequestError) as caught:
        backend.validate_spec(**kwargs)
    assert (caught.value.status_code, caught.value.error.type) == (400, "invalid_config")
    assert caught.value.error.param == param


def test_unknown_toolset_is_a_bad_request(backend: LocalBackend) -> None:
    with pytest.raises(BadRequestError) as caught:
        backend.score(ITEMS[:1], preset="mentor", toolset="no-such-toolset")
    assert caught.value.error.param == "toolset"


def test_tools_execute_and_fail_as_data(backend: LocalBackend) -> None:
    done = backend.execute_tool("add", {"a": 2, "b": 3})
    assert done.ok and done.content == "5"
    unknown = backend.execute_tool("teleport", {})
    assert not unknown.ok and unknown.error is not None and unknown.error.type == "unknown_tool"


def test_inline_tool_schemas(backend: LocalBackend) -> None:
    schema = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a word up.",
            "parameters": {
                "type": "object",
                "properties": {"word": {"type": "string"}},
                "required": ["word"],
            },
        },
    }
    item = {
        "completion": hermes("lookup", word="x") + " \\boxed{5}" + EOS,
        "ground_truth": "5",
        "teacher_tools": ["lookup"],
    }
    inline = backend.score([item], preset="mentor", tools=[schema]).results[0]
    named = backend.score([item], preset="mentor", toolset="calculator").results[0]
    assert inline.n_invalid_tools == 0 and named.n_invalid_tools == 1


def test_is_a_reward_backend(backend: LocalBackend) -> None:
    assert isinstance(backend, RewardBackend)


def test_trl_reward_func_local(backend: LocalBackend) -> None:
    rows = [ITEMS[0], ITEMS[1], ITEMS[4]]
    reward = pickle.loads(pickle.dumps(trl_reward_func(local=True, eos_token_id=7)))
    rewards = asyncio.run(
        reward(
            prompts=["p"] * 3,
            completions=[r["completion"] for r in rows],
            completion_ids=[[1, 7]] * 3,
            ground_truth=[r["ground_truth"] for r in rows],
            teacher_tools=[r["teacher_tools"] for r in rows],
        )
    )
    finished = [{**r, "finished": True} for r in rows]
    assert rewards == [r.reward for r in backend.score(finished, preset="mentor", toolset="calculator").results]


def test_verl_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTOR_REWARD_LOCAL", "1")
    monkeypatch.setattr(verl, "_SERVICES", {})
    sample = json.dumps({"ground_truth": "5", "teacher_tools": ["add"]})
    text = hermes("add", a=2, b=3) + " \\boxed{5}"
    answer = verl.compute_score_sync("calc", text, sample)
    assert set(answer) == {"score", *resolve_spec("mentor").components}
    async_answer = asyncio.run(verl.compute_score("calc", text, sample))
    assert set(async_answer) == set(answer)
    assert all(
        a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(answer.values(), async_answer.values(), strict=True)
    )


def test_toolset_and_tools_together_is_the_services_bad_request(backend: LocalBackend) -> None:
    from mentor_client import BadRequestError

    item = {"completion": "\\boxed{1}" + EOS, "ground_truth": "1"}
    tools = [{"name": "lookup", "parameters": {"type": "object"}}]
    with pytest.raises(BadRequestError) as info:
        backend.score([item], preset="mentor", toolset="calculator", tools=tools)
    assert info.value.error.type == "invalid_config" and info.value.error.param == "tools"


# ---------------------------------------------------------------------------- the per-item limit
# `builtins:pow` as a tool: `pow(99999, 10**8)` is one big-integer power in C that runs for
# minutes and cannot be interrupted inside its thread, like the judge bombs a model can write.
POWER_TOOLSET = {
    "name": "power",
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "power",
                "description": "Raise base to exp.",
                "parameters": {
                    "type": "object",
                    "properties": {"base": {"type": "integer"}, "exp": {"type": "integer"}},
                    "required": ["base", "exp"],
                },
            },
        }
    ],
    "implementations": {"power": "builtins:pow"},
}


def _power_item(exp: int) -> dict[str, Any]:
    # `flexible` executes the student's call (tool_results), so scoring it runs the power.
    reference = {"calls": [{"name": "power", "arguments": {"base": 2, "exp": 3}, "result": 8}], "answer": "8"}
    return {
        "completion": hermes("power", base=99999 if exp > 100 else 2, exp=exp) + " \\boxed{8}" + EOS,
        "reference": reference,
    }


@pytest.fixture(scope="module")
def power_backend(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("toolsets") / "power.json"
    path.write_text(json.dumps({"toolsets": [POWER_TOOLSET]}))
    with LocalBackend(item_timeout_s=2.0, tool_timeout_s=1.0, workers=1, toolset_files=[path]) as local:
        yield local


def test_an_item_past_the_limit_is_its_timeout_error_and_the_batch_goes_on(power_backend: LocalBackend) -> None:
    items = [_power_item(3), _power_item(100_000_000), _power_item(3)]
    start = time.monotonic()
    first, stuck, last = power_backend.score(items, preset="flexible", toolset="power").results
    elapsed = time.monotonic() - start
    assert stuck.reward is None and stuck.error is not None and stuck.error.type == "timeout"
    assert first.reward is not None and first.error is None
    assert last.reward == first.reward
    # The stuck power alone would run for minutes: the limit held (bound loose for a busy machine).
    assert elapsed < 60, elapsed
    # The killed process was replaced: the backend keeps scoring.
    again = power_backend.score([_power_item(3)], preset="flexible", toolset="power").results[0]
    assert again.reward == first.reward


def test_a_tool_call_past_its_limit_is_a_timeout_failure(power_backend: LocalBackend) -> None:
    done = power_backend.execute_tool("power", {"base": 2, "exp": 10}, toolset="power")
    assert done.ok and done.result == 1024
    stuck = power_backend.execute_tool("power", {"base": 99999, "exp": 100_000_000}, toolset="power")
    assert not stuck.ok and stuck.error is not None and stuck.error.type == "timeout"
    assert power_backend.execute_tool("power", {"base": 3, "exp": 2}, toolset="power").result == 9


def test_close_stops_the_worker_processes() -> None:
    backend = LocalBackend(item_timeout_s=5.0)
    backend.score(ITEMS[:1], preset="mentor")
    runner = backend._runner
    assert runner is not None
    pids = runner._pool.pids()
    assert pids
    backend.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # A closed backend starts its processes again when used.
    assert backend.score(ITEMS[:1], preset="mentor").results[0].reward is not None
    backend.close()


def test_a_toolset_registered_only_here_is_refused_with_the_way_out() -> None:
    from mentor_server.toolsets import Toolset, get_toolset, register_toolset, unregister_toolset

    register_toolset(Toolset("only-here", get_toolset("calculator").tools.values()))
    try:
        with LocalBackend(item_timeout_s=5.0) as bounded:
            with pytest.raises(BadRequestError) as info:
                bounded.score(ITEMS[:1], preset="mentor", toolset="only-here")
            assert info.value.error.param == "toolset" and "item_timeout_s=None" in info.value.error.message
        with LocalBackend(item_timeout_s=None) as unbounded:
            assert unbounded.score(ITEMS[:1], preset="mentor", toolset="only-here").results[0].reward is not None
    finally:
        unregister_toolset("only-here")
